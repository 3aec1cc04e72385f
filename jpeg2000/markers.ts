import { ByteReader } from './bytes.js';
import { J2K_ERROR, J2kError } from './errors.js';

/** Marker codes of ISO/IEC 15444-1 Annex A (the ones this project reads). */
export const MARKER = {
  SOC: 0xff4f,
  CAP: 0xff50,
  SIZ: 0xff51,
  COD: 0xff52,
  COC: 0xff53,
  TLM: 0xff55,
  PLM: 0xff57,
  PLT: 0xff58,
  CPF: 0xff59,
  QCD: 0xff5c,
  QCC: 0xff5d,
  RGN: 0xff5e,
  POC: 0xff5f,
  PPM: 0xff60,
  PPT: 0xff61,
  CRG: 0xff63,
  COM: 0xff64,
  SOT: 0xff90,
  SOP: 0xff91,
  EPH: 0xff92,
  SOD: 0xff93,
  EOC: 0xffd9,
} as const;

const MARKER_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(MARKER).map(([k, v]) => [v, k]));

/** "SIZ", or "FFxx" for a marker this table does not name. */
export function markerName(code: number): string {
  return MARKER_NAMES.get(code) ?? `FF${(code & 0xff).toString(16).toUpperCase().padStart(2, '0')}`;
}

/** Progression orders, as coded in COD/POC. */
export const PROGRESSION = { LRCP: 0, RLCP: 1, RPCL: 2, PCRL: 3, CPRL: 4 } as const;
export type Progression = (typeof PROGRESSION)[keyof typeof PROGRESSION];
export const PROGRESSION_NAMES = ['LRCP', 'RLCP', 'RPCL', 'PCRL', 'CPRL'] as const;

export interface SizComponent {
  /** Bit depth (1..38). */
  precision: number;
  signed: boolean;
  /** Horizontal and vertical subsampling (XRsiz, YRsiz), 1..255. */
  dx: number;
  dy: number;
}

/** SIZ: image and tile grid. */
export interface Siz {
  rsiz: number;
  /** Reference grid: the image area is [xOsiz, xsiz) x [yOsiz, ysiz). */
  xsiz: number;
  ysiz: number;
  xOsiz: number;
  yOsiz: number;
  /** Tile size and tile grid origin. */
  xTsiz: number;
  yTsiz: number;
  xTOsiz: number;
  yTOsiz: number;
  components: SizComponent[];
}

/** Per-component coding style (the SPcod/SPcoc part of COD/COC). */
export interface ComponentCoding {
  /** Number of decomposition levels NL (0..32). Resolutions are 0..NL. */
  levels: number;
  /** Code-block size exponents (xcb = log2 width), each 2..10, xcb+ycb <= 12. */
  xcb: number;
  ycb: number;
  /** Code-block style flags (bypass, reset, termall, vcausal, predictable term, segmentation symbols). */
  cbStyle: number;
  /** Wavelet: 0 = 9/7 irreversible, 1 = 5/3 reversible. */
  transform: number;
  /** Precinct size exponents per resolution 0..NL (15,15 when not user-defined). */
  precincts: { ppx: number; ppy: number }[];
  /** True when Scod/Scoc bit 0 set (precinct sizes given explicitly). */
  userPrecincts: boolean;
}

/** COD: default coding style. */
export interface Cod {
  sop: boolean;
  eph: boolean;
  progression: Progression;
  layers: number;
  /** Multiple component transform (0 none, 1 used). */
  mct: number;
  coding: ComponentCoding;
}

/**
 * The coding parameters in force for one tile: main-header COD/COC/POC as
 * overridden by the tile's own headers (tile COC > tile COD > main COC > main COD).
 */
export interface TileCoding {
  layers: number;
  progression: Progression;
  sop: boolean;
  eph: boolean;
  mct: number;
  /** One entry per component. */
  components: ComponentCoding[];
  /** Progression changes in force for the tile (tile POC replaces main POC); empty when none. */
  poc: PocEntry[];
}

export interface Coc {
  component: number;
  coding: ComponentCoding;
}

/** QCD/QCC quantization. */
export interface Quant {
  /** 0 none, 1 scalar derived, 2 scalar expounded. */
  style: number;
  guardBits: number;
  /** Per sub-band step: exponent (and mantissa for scalar quantization). */
  steps: { exponent: number; mantissa: number }[];
}

export interface Qcc {
  component: number;
  quant: Quant;
}

/** One POC progression change. Ranges are [start, end) as in the standard. */
export interface PocEntry {
  resStart: number;
  compStart: number;
  layerEnd: number;
  resEnd: number;
  compEnd: number;
  progression: Progression;
}

export interface Tlm {
  index: number;
  entries: { tile: number | undefined; length: number }[];
}

/** A marker segment found in a header: where it is and how long. */
export interface SegmentRef {
  marker: number;
  /** Offset of the marker (FFxx) relative to the codestream start. */
  offset: number;
  /** Lxxx: length of the segment after the marker (includes the 2 length bytes); 0 for SOC/SOD/EOC. */
  length: number;
}

/** A PLT/PPM/PPT/PLM segment: its index Z and where its payload is (after Z). */
export interface IndexedSegmentRef {
  index: number;
  /** Codestream offset of the first payload byte after Z (and after Nppm for nothing: raw payload). */
  dataOffset: number;
  dataLength: number;
}

function checkLength(r: ByteReader, marker: number, len: number, min: number): void {
  if (len < min) throw r.error(J2K_ERROR.BAD_MARKER, `${markerName(marker)}: length ${len} is below the minimum ${min}`, r.offset - 2);
}

export function parseSiz(r: ByteReader): Siz {
  const start = r.offset;
  const len = r.u16('Lsiz');
  checkLength(r, MARKER.SIZ, len, 41);
  r.need(len - 2, 'SIZ');
  const rsiz = r.u16();
  const xsiz = r.u32();
  const ysiz = r.u32();
  const xOsiz = r.u32();
  const yOsiz = r.u32();
  const xTsiz = r.u32();
  const yTsiz = r.u32();
  const xTOsiz = r.u32();
  const yTOsiz = r.u32();
  const csiz = r.u16();
  const bad = (why: string): J2kError => new J2kError(J2K_ERROR.BAD_VALUE, `SIZ: ${why}`, { file: r.file, offset: start });
  if (csiz < 1 || csiz > 16384) throw bad(`${csiz} components (1..16384 allowed)`);
  if (len !== 38 + 3 * csiz) throw bad(`Lsiz ${len} does not match ${csiz} components (expected ${38 + 3 * csiz})`);
  if (xsiz <= xOsiz || ysiz <= yOsiz) throw bad(`empty image area (${xOsiz},${yOsiz})-(${xsiz},${ysiz})`);
  if (xTsiz === 0 || yTsiz === 0) throw bad('zero tile size');
  if (xTOsiz > xOsiz || yTOsiz > yOsiz) throw bad('tile origin is right of or below the image origin');
  if (xTOsiz + xTsiz <= xOsiz || yTOsiz + yTsiz <= yOsiz) throw bad('first tile does not overlap the image');
  const components: SizComponent[] = [];
  for (let i = 0; i < csiz; i++) {
    const s = r.u8();
    const dx = r.u8();
    const dy = r.u8();
    const precision = (s & 0x7f) + 1;
    if (precision > 38) throw bad(`component ${i} precision ${precision} (1..38 allowed)`);
    if (dx === 0 || dy === 0) throw bad(`component ${i} subsampling ${dx}x${dy}`);
    components.push({ precision, signed: (s & 0x80) !== 0, dx, dy });
  }
  const tiles = Math.ceil((xsiz - xTOsiz) / xTsiz) * Math.ceil((ysiz - yTOsiz) / yTsiz);
  if (tiles > 65535) throw bad(`${tiles} tiles (at most 65535)`);
  return { rsiz, xsiz, ysiz, xOsiz, yOsiz, xTsiz, yTsiz, xTOsiz, yTOsiz, components };
}

function parseSpcod(r: ByteReader, userPrecincts: boolean, what: string): ComponentCoding {
  const at = r.offset;
  const levels = r.u8();
  const xcb = (r.u8() & 0x0f) + 2;
  const ycb = (r.u8() & 0x0f) + 2;
  const cbStyle = r.u8();
  const transform = r.u8();
  const bad = (why: string): J2kError => new J2kError(J2K_ERROR.BAD_VALUE, `${what}: ${why}`, { file: r.file, offset: at });
  if (levels > 32) throw bad(`${levels} decomposition levels (at most 32)`);
  if (xcb > 10 || ycb > 10 || xcb + ycb > 12) throw bad(`code-block size 2^${xcb} x 2^${ycb} not allowed`);
  if (transform > 1) throw bad(`unknown wavelet transform ${transform}`);
  const precincts: { ppx: number; ppy: number }[] = [];
  if (userPrecincts) {
    for (let i = 0; i <= levels; i++) {
      const b = r.u8('precinct size');
      const ppx = b & 0x0f;
      const ppy = b >> 4;
      if (i > 0 && (ppx === 0 || ppy === 0)) throw bad(`precinct exponent 0 at resolution ${i}`);
      precincts.push({ ppx, ppy });
    }
  } else {
    for (let i = 0; i <= levels; i++) precincts.push({ ppx: 15, ppy: 15 });
  }
  return { levels, xcb, ycb, cbStyle, transform, precincts, userPrecincts };
}

export function parseCod(r: ByteReader): Cod {
  const len = r.u16('Lcod');
  checkLength(r, MARKER.COD, len, 12);
  const end = r.pos + len - 2;
  r.need(len - 2, 'COD');
  const scod = r.u8();
  const progression = r.u8();
  const layers = r.u16();
  const mct = r.u8();
  if (progression > 4) throw r.error(J2K_ERROR.BAD_VALUE, `COD: unknown progression order ${progression}`);
  if (layers === 0) throw r.error(J2K_ERROR.BAD_VALUE, 'COD: zero quality layers');
  const coding = parseSpcod(r, (scod & 1) !== 0, 'COD');
  if (r.pos !== end) throw r.error(J2K_ERROR.BAD_MARKER, `COD: length ${len} does not match its content`);
  return { sop: (scod & 2) !== 0, eph: (scod & 4) !== 0, progression: progression as Progression, layers, mct, coding };
}

export function parseCoc(r: ByteReader, numComponents: number): Coc {
  const len = r.u16('Lcoc');
  checkLength(r, MARKER.COC, len, 9);
  const end = r.pos + len - 2;
  r.need(len - 2, 'COC');
  const component = numComponents < 257 ? r.u8() : r.u16();
  if (component >= numComponents) throw r.error(J2K_ERROR.BAD_VALUE, `COC: component ${component} of ${numComponents}`);
  const scoc = r.u8();
  const coding = parseSpcod(r, (scoc & 1) !== 0, 'COC');
  if (r.pos !== end) throw r.error(J2K_ERROR.BAD_MARKER, `COC: length ${len} does not match its content`);
  return { component, coding };
}

function parseQuantBody(r: ByteReader, end: number, what: string): Quant {
  const sq = r.u8();
  const style = sq & 0x1f;
  const guardBits = sq >> 5;
  if (style > 2) throw r.error(J2K_ERROR.BAD_VALUE, `${what}: unknown quantization style ${style}`);
  const steps: { exponent: number; mantissa: number }[] = [];
  if (style === 0) {
    while (r.pos < end) steps.push({ exponent: r.u8() >> 3, mantissa: 0 });
  } else {
    if ((end - r.pos) % 2 !== 0) throw r.error(J2K_ERROR.BAD_MARKER, `${what}: odd number of step bytes`);
    while (r.pos < end) {
      const v = r.u16();
      steps.push({ exponent: v >> 11, mantissa: v & 0x7ff });
    }
  }
  if (steps.length === 0) throw r.error(J2K_ERROR.BAD_MARKER, `${what}: no quantization steps`);
  return { style, guardBits, steps };
}

export function parseQcd(r: ByteReader): Quant {
  const len = r.u16('Lqcd');
  checkLength(r, MARKER.QCD, len, 4);
  r.need(len - 2, 'QCD');
  return parseQuantBody(r, r.pos + len - 2, 'QCD');
}

export function parseQcc(r: ByteReader, numComponents: number): Qcc {
  const len = r.u16('Lqcc');
  checkLength(r, MARKER.QCC, len, 5);
  const end = r.pos + len - 2;
  r.need(len - 2, 'QCC');
  const component = numComponents < 257 ? r.u8() : r.u16();
  if (component >= numComponents) throw r.error(J2K_ERROR.BAD_VALUE, `QCC: component ${component} of ${numComponents}`);
  return { component, quant: parseQuantBody(r, end, 'QCC') };
}

export function parsePoc(r: ByteReader, numComponents: number): PocEntry[] {
  const len = r.u16('Lpoc');
  const entrySize = numComponents < 257 ? 7 : 9;
  if (len < 2 + entrySize || (len - 2) % entrySize !== 0) {
    throw r.error(J2K_ERROR.BAD_MARKER, `POC: length ${len} is not 2 + a multiple of ${entrySize}`, r.offset - 2);
  }
  r.need(len - 2, 'POC');
  const out: PocEntry[] = [];
  for (let i = 0; i < (len - 2) / entrySize; i++) {
    const resStart = r.u8();
    const compStart = numComponents < 257 ? r.u8() : r.u16();
    const layerEnd = r.u16();
    const resEnd = r.u8();
    let compEnd = numComponents < 257 ? r.u8() : r.u16();
    if (compEnd === 0) compEnd = 256; // CEpoc 0 means 256 in the 8-bit form
    const progression = r.u8();
    if (progression > 4) throw r.error(J2K_ERROR.BAD_VALUE, `POC: unknown progression order ${progression}`);
    out.push({ resStart, compStart, layerEnd, resEnd, compEnd, progression: progression as Progression });
  }
  return out;
}

export function parseTlm(r: ByteReader): Tlm {
  const len = r.u16('Ltlm');
  checkLength(r, MARKER.TLM, len, 4);
  const end = r.pos + len - 2;
  r.need(len - 2, 'TLM');
  const index = r.u8();
  const s = r.u8();
  const st = (s >> 4) & 3;
  const sp = (s >> 6) & 1;
  if (st === 3) throw r.error(J2K_ERROR.BAD_VALUE, 'TLM: tile index size 3 is reserved');
  const entrySize = st + (sp ? 4 : 2);
  if ((end - r.pos) % entrySize !== 0) throw r.error(J2K_ERROR.BAD_MARKER, 'TLM: entries do not fill the segment');
  const entries: { tile: number | undefined; length: number }[] = [];
  while (r.pos < end) {
    const tile = st === 0 ? undefined : st === 1 ? r.u8() : r.u16();
    entries.push({ tile, length: sp ? r.u32() : r.u16() });
  }
  return { index, entries };
}

export interface Sot {
  tile: number;
  /** Psot: tile-part length from the SOT marker to the end of its data; 0 = runs to EOC. */
  psot: number;
  partIndex: number;
  /** TNsot: number of tile-parts of this tile; 0 = not said. */
  partCount: number;
}

export function parseSot(r: ByteReader): Sot {
  const len = r.u16('Lsot');
  if (len !== 10) throw r.error(J2K_ERROR.BAD_MARKER, `SOT: length ${len} (must be 10)`, r.offset - 2);
  const tile = r.u16();
  const psot = r.u32();
  const partIndex = r.u8();
  const partCount = r.u8();
  return { tile, psot, partIndex, partCount };
}

/** COM: registration (0 binary, 1 Latin-1 text) and content. */
export interface Com {
  registration: number;
  text: string | undefined;
  bytes: Uint8Array;
}

export function parseCom(r: ByteReader): Com {
  const len = r.u16('Lcom');
  checkLength(r, MARKER.COM, len, 4);
  const registration = r.u16();
  const bytes = r.bytesOf(len - 4, 'COM');
  return { registration, bytes, text: registration === 1 ? String.fromCharCode(...bytes) : undefined };
}

/**
 * Decode the variable-length packet lengths of a PLT payload (or of one tile-part's
 * Iplm run): 7 bits per byte, high bit set on all but the last byte of each value.
 * Appends to `out`; returns whether the payload ended mid-value (an error in PLT,
 * where values may not span segments).
 */
export function decodePacketLengths(bytes: Uint8Array, start: number, end: number, out: number[]): boolean {
  let v = 0;
  let open = false;
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    v = v * 128 + (b & 0x7f);
    if (b & 0x80) {
      open = true;
      if (v > 0x1fffffff) return true; // more than 2^36: hostile, report as broken
    } else {
      out.push(v);
      v = 0;
      open = false;
    }
  }
  return open;
}
