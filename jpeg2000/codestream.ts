import { ByteReader } from './bytes.js';
import { J2K_ERROR, J2kError } from './errors.js';
import {
  MARKER,
  markerName,
  parseCoc,
  parseCod,
  parseCom,
  parsePoc,
  parseQcc,
  parseQcd,
  parseSiz,
  parseSot,
  parseTlm,
  type Cod,
  type Coc,
  type Com,
  type ComponentCoding,
  type IndexedSegmentRef,
  type PocEntry,
  type Qcc,
  type Quant,
  type SegmentRef,
  type Siz,
  type TileCoding,
  type Tlm,
} from './markers.js';
import { numTiles as tilesOf } from './geometry.js';
import type { RandomAccess } from './source.js';

/**
 * Walks a codestream's structure through positional reads: the main header
 * (parsed), then every tile-part (its header parsed, its body only located).
 * Packet-length payloads (PLT, PLM, PPM, PPT) are located, not read: the packet
 * index reads them later, as far as it needs.
 */

export interface MainHeader {
  siz: Siz;
  cod: Cod;
  /** COC per component, undefined where the component follows COD. */
  coc: (ComponentCoding | undefined)[];
  qcd: Quant;
  qcc: (Quant | undefined)[];
  poc: PocEntry[];
  tlm: Tlm[];
  plm: IndexedSegmentRef[];
  ppm: IndexedSegmentRef[];
  com: Com[];
  /** Every marker of the main header, SOC included, in file order. */
  segments: SegmentRef[];
  /** Offset of the first SOT: the main header is bytes [0, end). */
  end: number;
}

export interface TilePart {
  tile: number;
  partIndex: number;
  /** TNsot (0 when the encoder did not say). */
  partCount: number;
  /** Offset of the SOT marker. */
  offset: number;
  /** Tile-part length from SOT to the end of its body. */
  length: number;
  /** Offset of the first body byte (just after SOD). */
  bodyOffset: number;
  bodyLength: number;
  segments: SegmentRef[];
  plt: IndexedSegmentRef[];
  ppt: IndexedSegmentRef[];
  cod: Cod | undefined;
  coc: Coc[];
  qcd: Quant | undefined;
  qcc: Qcc[];
  poc: PocEntry[];
}

export interface Codestream {
  /** Name for messages (file path). */
  name: string | undefined;
  /** Bytes of the codestream (SOC to EOC inclusive). */
  size: number;
  main: MainHeader;
  tileParts: TilePart[];
  /** For each tile, the indices into `tileParts` of its tile-parts, in order. */
  tiles: number[][];
}

/** Most marker segments a header may have before it is taken as hostile. */
const MAX_SEGMENTS = 1 << 20;

function err(code: (typeof J2K_ERROR)[keyof typeof J2K_ERROR], reason: string, src: RandomAccess, offset: number): J2kError {
  return new J2kError(code, reason, { file: src.name, offset: offset + (src.origin ?? 0) });
}

/** Reader over one marker segment's body (after the marker), with absolute offsets in messages. */
function segmentReader(src: RandomAccess, pos: number, len: number): ByteReader {
  const bytes = src.read(pos + 2, len);
  return new ByteReader(bytes, { base: pos + 2 + (src.origin ?? 0), file: src.name });
}

function readMarkerAt(src: RandomAccess, pos: number, what: string): { marker: number; length: number } {
  if (pos + 2 > src.size) throw err(J2K_ERROR.TRUNCATED, `${what}: codestream ends where a marker was expected`, src, pos);
  const m = src.read(pos, 2);
  const marker = (m[0]! << 8) | m[1]!;
  if (m[0] !== 0xff || marker < 0xff30) throw err(J2K_ERROR.BAD_MARKER, `${what}: expected a marker, found 0x${marker.toString(16).padStart(4, '0')}`, src, pos);
  if (marker === MARKER.SOC || marker === MARKER.SOD || marker === MARKER.EOC || (marker >= 0xff30 && marker <= 0xff3f)) {
    return { marker, length: 0 };
  }
  if (pos + 4 > src.size) throw err(J2K_ERROR.TRUNCATED, `${what}: ${markerName(marker)} has no length`, src, pos);
  const l = src.read(pos + 2, 2);
  const length = (l[0]! << 8) | l[1]!;
  if (length < 2) throw err(J2K_ERROR.BAD_MARKER, `${markerName(marker)}: length ${length} below 2`, src, pos);
  if (pos + 2 + length > src.size) throw err(J2K_ERROR.TRUNCATED, `${markerName(marker)}: segment of ${length} bytes runs past the end`, src, pos);
  return { marker, length };
}

/** Reads and checks the main header (SOC, SIZ first; COD and QCD required). */
export function readMainHeader(src: RandomAccess): MainHeader {
  if (src.size < 4) throw err(J2K_ERROR.NOT_JPEG2000, 'too short to be a JPEG 2000 codestream', src, 0);
  const head = src.read(0, 4);
  if (head[0] !== 0xff || head[1] !== 0x4f) throw err(J2K_ERROR.NOT_JPEG2000, 'no SOC marker: not a JPEG 2000 codestream', src, 0);
  if (head[2] !== 0xff || head[3] !== 0x51) throw err(J2K_ERROR.MISSING_MARKER, 'SIZ must follow SOC', src, 2);
  const segments: SegmentRef[] = [{ marker: MARKER.SOC, offset: 0, length: 0 }];
  const sizAt = readMarkerAt(src, 2, 'main header');
  const siz = parseSiz(segmentReader(src, 2, sizAt.length));
  segments.push({ marker: MARKER.SIZ, offset: 2, length: sizAt.length });
  const nc = siz.components.length;
  let cod: Cod | undefined;
  let qcd: Quant | undefined;
  const coc: (ComponentCoding | undefined)[] = new Array(nc).fill(undefined);
  const qcc: (Quant | undefined)[] = new Array(nc).fill(undefined);
  const poc: PocEntry[] = [];
  const tlm: Tlm[] = [];
  const plm: IndexedSegmentRef[] = [];
  const ppm: IndexedSegmentRef[] = [];
  const com: Com[] = [];
  let pos = 4 + sizAt.length;
  for (;;) {
    if (segments.length > MAX_SEGMENTS) throw err(J2K_ERROR.BAD_MARKER, 'main header has too many marker segments', src, pos);
    const { marker, length } = readMarkerAt(src, pos, 'main header');
    if (marker === MARKER.SOT) break;
    segments.push({ marker, offset: pos, length });
    switch (marker) {
      case MARKER.COD:
        if (cod) throw err(J2K_ERROR.BAD_MARKER, 'second COD in the main header', src, pos);
        cod = parseCod(segmentReader(src, pos, length));
        break;
      case MARKER.COC: {
        const c = parseCoc(segmentReader(src, pos, length), nc);
        coc[c.component] = c.coding;
        break;
      }
      case MARKER.QCD:
        qcd = parseQcd(segmentReader(src, pos, length));
        break;
      case MARKER.QCC: {
        const q = parseQcc(segmentReader(src, pos, length), nc);
        qcc[q.component] = q.quant;
        break;
      }
      case MARKER.POC:
        poc.push(...parsePoc(segmentReader(src, pos, length), nc));
        break;
      case MARKER.TLM:
        tlm.push(parseTlm(segmentReader(src, pos, length)));
        break;
      case MARKER.PLM:
      case MARKER.PPM: {
        if (length < 3) throw err(J2K_ERROR.BAD_MARKER, `${markerName(marker)}: no index byte`, src, pos);
        const z = src.read(pos + 4, 1)[0]!;
        (marker === MARKER.PLM ? plm : ppm).push({ index: z, dataOffset: pos + 5, dataLength: length - 3 });
        break;
      }
      case MARKER.COM:
        com.push(parseCom(segmentReader(src, pos, length)));
        break;
      case MARKER.SOC:
      case MARKER.SOD:
      case MARKER.EOC:
      case MARKER.SIZ:
        throw err(J2K_ERROR.BAD_MARKER, `${markerName(marker)} is not allowed here in the main header`, src, pos);
      default:
        // RGN, CRG, CAP, CPF and unknown segments: located, not interpreted.
        break;
    }
    pos += 2 + length;
  }
  if (!cod) throw err(J2K_ERROR.MISSING_MARKER, 'main header has no COD', src, pos);
  if (!qcd) throw err(J2K_ERROR.MISSING_MARKER, 'main header has no QCD', src, pos);
  plm.sort((a, b) => a.index - b.index);
  ppm.sort((a, b) => a.index - b.index);
  return { siz, cod, coc, qcd, qcc, poc, tlm, plm, ppm, com, segments, end: pos };
}


/** Reads one tile-part header at `pos` (an SOT marker). */
export function readTilePart(src: RandomAccess, pos: number, main: MainHeader, numTiles: number): TilePart {
  const nc = main.siz.components.length;
  const sotAt = readMarkerAt(src, pos, 'tile-part');
  if (sotAt.marker !== MARKER.SOT) throw err(J2K_ERROR.MISSING_MARKER, `expected SOT, found ${markerName(sotAt.marker)}`, src, pos);
  const sot = parseSot(segmentReader(src, pos, sotAt.length));
  if (sot.tile >= numTiles) throw err(J2K_ERROR.BAD_VALUE, `SOT: tile ${sot.tile} of ${numTiles}`, src, pos);
  let length = sot.psot;
  if (length === 0) {
    // Runs to EOC: the last tile-part of the codestream.
    length = src.size - 2 - pos;
  }
  if (pos + length > src.size) throw err(J2K_ERROR.TRUNCATED, `tile-part of ${length} bytes runs past the end of the codestream`, src, pos);
  const end = pos + length;
  const segments: SegmentRef[] = [{ marker: MARKER.SOT, offset: pos, length: sotAt.length }];
  const plt: IndexedSegmentRef[] = [];
  const ppt: IndexedSegmentRef[] = [];
  const coc: Coc[] = [];
  const qcc: Qcc[] = [];
  const poc: PocEntry[] = [];
  let cod: Cod | undefined;
  let qcd: Quant | undefined;
  let p = pos + 2 + sotAt.length;
  for (;;) {
    if (p + 2 > end) throw err(J2K_ERROR.MISSING_MARKER, 'tile-part header has no SOD before its end', src, p);
    if (segments.length > MAX_SEGMENTS) throw err(J2K_ERROR.BAD_MARKER, 'tile-part header has too many marker segments', src, p);
    const { marker, length: len } = readMarkerAt(src, p, 'tile-part header');
    segments.push({ marker, offset: p, length: len });
    if (marker === MARKER.SOD) {
      p += 2;
      break;
    }
    if (p + 2 + len > end) throw err(J2K_ERROR.BAD_MARKER, `${markerName(marker)} runs past the end of its tile-part`, src, p);
    switch (marker) {
      case MARKER.COD:
        cod = parseCod(segmentReader(src, p, len));
        break;
      case MARKER.COC:
        coc.push(parseCoc(segmentReader(src, p, len), nc));
        break;
      case MARKER.QCD:
        qcd = parseQcd(segmentReader(src, p, len));
        break;
      case MARKER.QCC:
        qcc.push(parseQcc(segmentReader(src, p, len), nc));
        break;
      case MARKER.POC:
        poc.push(...parsePoc(segmentReader(src, p, len), nc));
        break;
      case MARKER.PLT:
      case MARKER.PPT: {
        if (len < 3) throw err(J2K_ERROR.BAD_MARKER, `${markerName(marker)}: no index byte`, src, p);
        const z = src.read(p + 4, 1)[0]!;
        (marker === MARKER.PLT ? plt : ppt).push({ index: z, dataOffset: p + 5, dataLength: len - 3 });
        break;
      }
      case MARKER.SOT:
      case MARKER.SOC:
      case MARKER.EOC:
      case MARKER.SIZ:
        throw err(J2K_ERROR.BAD_MARKER, `${markerName(marker)} inside a tile-part header`, src, p);
      default:
        break;
    }
    p += 2 + len;
  }
  plt.sort((a, b) => a.index - b.index);
  ppt.sort((a, b) => a.index - b.index);
  return {
    tile: sot.tile,
    partIndex: sot.partIndex,
    partCount: sot.partCount,
    offset: pos,
    length,
    bodyOffset: p,
    bodyLength: end - p,
    segments,
    plt,
    ppt,
    cod,
    coc,
    qcd,
    qcc,
    poc,
  };
}

/**
 * Reads the whole structure of a codestream: main header and every tile-part
 * header, checking that tile-parts chain from the first SOT to EOC.
 */
export function readCodestream(src: RandomAccess): Codestream {
  const main = readMainHeader(src);
  const numTiles = tilesOf(main.siz);
  const tileParts: TilePart[] = [];
  const tiles: number[][] = Array.from({ length: numTiles }, () => []);
  let pos = main.end;
  for (;;) {
    if (pos + 2 > src.size) throw err(J2K_ERROR.TRUNCATED, 'codestream ends without EOC', src, pos);
    const m = src.read(pos, 2);
    const marker = (m[0]! << 8) | m[1]!;
    if (marker === MARKER.EOC) break;
    if (marker !== MARKER.SOT) throw err(J2K_ERROR.MISSING_MARKER, `expected SOT or EOC after a tile-part, found 0x${marker.toString(16)}`, src, pos);
    const tp = readTilePart(src, pos, main, numTiles);
    const list = tiles[tp.tile]!;
    if (tp.partIndex !== list.length) {
      throw err(J2K_ERROR.BAD_VALUE, `tile ${tp.tile}: tile-part ${tp.partIndex} where ${list.length} was expected`, src, pos);
    }
    list.push(tileParts.length);
    tileParts.push(tp);
    pos += tp.length;
  }
  for (let t = 0; t < numTiles; t++) {
    const list = tiles[t]!;
    if (list.length === 0) throw err(J2K_ERROR.MISSING_MARKER, `tile ${t} has no tile-part`, src, main.end);
    const first = tileParts[list[0]!]!;
    if (first.partCount !== 0 && first.partCount !== list.length) {
      throw err(J2K_ERROR.TRUNCATED, `tile ${t} announces ${first.partCount} tile-parts, ${list.length} found`, src, first.offset);
    }
  }
  return { name: src.name, size: pos + 2, main, tileParts, tiles };
}

/** The coding parameters in force for tile `t` (tile headers override the main header). */
export function tileCoding(cs: Pick<Codestream, 'main' | 'tileParts' | 'tiles'>, t: number): TileCoding {
  const { main } = cs;
  const nc = main.siz.components.length;
  const parts = (cs.tiles[t] ?? []).map((i) => cs.tileParts[i]!);
  const first = parts[0];
  const tcod = first?.cod;
  const cod = tcod ?? main.cod;
  const components: ComponentCoding[] = [];
  for (let c = 0; c < nc; c++) {
    const tcoc = first?.coc.find((x) => x.component === c)?.coding;
    components.push(tcoc ?? tcod?.coding ?? main.coc[c] ?? main.cod.coding);
  }
  const tilePoc = parts.flatMap((p) => p.poc);
  return {
    layers: cod.layers,
    progression: cod.progression,
    sop: cod.sop,
    eph: cod.eph,
    mct: cod.mct,
    components,
    poc: tilePoc.length > 0 ? tilePoc : main.poc,
  };
}
