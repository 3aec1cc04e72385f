import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import type { Codestream } from '../jpeg2000/codestream.js';
import { MARKER } from '../jpeg2000/markers.js';
import type { CodestreamIndex } from '../jpeg2000/packet-index.js';
import type { RandomAccess } from '../jpeg2000/source.js';

/**
 * What each JPIP data-bin of a codestream holds, as byte ranges of that
 * codestream (offset 0 = SOC). The server sends exactly these bytes; the
 * conformance suite checks received data against them; the client-side
 * reassembler (jpip/reassemble.ts) expects bins laid out this way.
 *
 * - main header bin (class 6): SOC up to, not including, the first SOT, unchanged;
 * - tile header bin (class 2): the marker segments of the tile's tile-part
 *   headers other than SOT, SOD, PLT and PPT, in codestream order (often empty);
 * - precinct bin (class 0/1): the packets of one precinct for layers 0..L-1, in
 *   layer order (SOP/EPH markers included, as they are in the codestream);
 * - tile bin (class 4/5, JPT-stream): the tile's tile-parts, SOT to the end of
 *   each body, concatenated.
 *
 * Plain JS: no Node API (reads go through the RandomAccess interface).
 */

/** `length` bytes at `offset` of the codestream. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** Total length of a list of ranges. */
export function rangesLength(ranges: readonly ByteRange[]): number {
  let n = 0;
  for (const r of ranges) n += r.length;
  return n;
}

/** Appends a range, merging it into the previous one when they touch. Empty ranges are dropped. */
function push(out: ByteRange[], offset: number, length: number): void {
  if (length <= 0) return;
  const last = out[out.length - 1];
  if (last !== undefined && last.offset + last.length === offset) last.length += length;
  else out.push({ offset, length });
}

/** Main header data-bin: [0, first SOT). */
export function mainHeaderBin(cs: Pick<Codestream, 'main'>): ByteRange[] {
  return [{ offset: 0, length: cs.main.end }];
}

/** Markers of a tile-part header that never go into the tile header data-bin. */
const NOT_IN_TILE_HEADER: ReadonlySet<number> = new Set([MARKER.SOT, MARKER.SOD, MARKER.PLT, MARKER.PPT]);

/**
 * Tile header data-bin of tile t: every marker segment of its tile-part
 * headers except SOT, SOD, PLT and PPT (COD, COC, QCD, QCC, POC, RGN, COM...,
 * byte for byte), in order. Empty when the tile-parts carry nothing else.
 */
export function tileHeaderBin(cs: Pick<Codestream, 'tileParts' | 'tiles'>, t: number): ByteRange[] {
  const parts = cs.tiles[t];
  if (parts === undefined) throw new RangeError(`tile ${t} of ${cs.tiles.length}`);
  const out: ByteRange[] = [];
  for (const i of parts) {
    for (const seg of cs.tileParts[i]!.segments) {
      if (NOT_IN_TILE_HEADER.has(seg.marker)) continue;
      push(out, seg.offset, 2 + seg.length);
    }
  }
  return out;
}

/** Tile data-bin of tile t (JPT-stream): its tile-parts, SOT included, in order. */
export function tileBin(cs: Pick<Codestream, 'tileParts' | 'tiles'>, t: number): ByteRange[] {
  const parts = cs.tiles[t];
  if (parts === undefined) throw new RangeError(`tile ${t} of ${cs.tiles.length}`);
  const out: ByteRange[] = [];
  for (const i of parts) {
    const tp = cs.tileParts[i]!;
    push(out, tp.offset, tp.length);
  }
  return out;
}

export interface PrecinctBin {
  /** Where the bin's bytes are in the codestream, in bin order (contiguous pieces merged). */
  ranges: ByteRange[];
  /**
   * layerEnds[l]: offset within the bin just past the packet of layer l (so the
   * first l+1 packets are bin bytes [0, layerEnds[l])). Its length is the
   * number of layers the codestream holds for this precinct: every layer,
   * unless a POC leaves the last layers of the precinct out.
   */
  layerEnds: number[];
}

/**
 * Precinct data-bin of precinct s (sequence number within the tile-component:
 * all precincts of resolution 0 in raster order, then resolution 1, ...) of
 * component c in tile t: its packets for layers 0, 1, ... in layer order.
 * Indexes the resolution it needs (`index.ensureResolution`).
 */
export function precinctBin(index: CodestreamIndex, t: number, c: number, s: number): PrecinctBin {
  const ti = index.tile(t);
  const g = ti.geometry;
  if (!Number.isInteger(c) || c < 0 || c >= g.numComponents) throw new RangeError(`component ${c} of ${g.numComponents}`);
  const r = g.seqResolution(c, s);
  if (r < 0) throw new RangeError(`precinct ${s} of component ${c} in tile ${t}: the tile-component has ${g.precinctTotal(c)}`);
  index.ensureResolution(t, r);
  const ranges: ByteRange[] = [];
  const layerEnds: number[] = [];
  let end = 0;
  for (let l = 0; l < ti.sequence.layers; l++) {
    const k = ti.sequence.packetOf(c, s, l);
    // A POC may end the precinct's layers early; layers are always a prefix.
    if (k < 0) break;
    if (k >= ti.known) {
      throw new J2kError(J2K_ERROR.BAD_PACKET_LENGTHS, `tile ${t}: packet ${k} is not indexed`, { file: index.src.name });
    }
    const len = ti.lengths[k]!;
    push(ranges, ti.offsets[k]!, len);
    end += len;
    layerEnds.push(end);
  }
  return { ranges, layerEnds };
}

/**
 * The first `length` bytes of a bin given as ranges (e.g. `layerEnds[k]` for
 * layers 0..k of a precinct bin): what a layer- or byte-limited server sends.
 */
export function cutRanges(ranges: readonly ByteRange[], length: number): ByteRange[] {
  const out: ByteRange[] = [];
  let left = length;
  for (const r of ranges) {
    if (left <= 0) break;
    const n = Math.min(r.length, left);
    out.push({ offset: r.offset, length: n });
    left -= n;
  }
  return out;
}

/** The bytes of a list of ranges of `src`, concatenated. */
export function readRanges(src: RandomAccess, ranges: readonly ByteRange[]): Uint8Array {
  const out = new Uint8Array(rangesLength(ranges));
  let at = 0;
  for (const r of ranges) {
    if (r.length === 0) continue;
    out.set(src.read(r.offset, r.length), at);
    at += r.length;
  }
  return out;
}
