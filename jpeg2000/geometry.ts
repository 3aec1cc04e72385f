import { J2K_ERROR, J2kError } from './errors.js';
import type { Siz, TileCoding } from './markers.js';

/**
 * Canvas geometry of ISO/IEC 15444-1 Annex B: tiles, tile-components,
 * resolutions, sub-bands, precincts and code-blocks, plus the JPIP precinct
 * data-bin numbering built on them.
 *
 * All coordinates are plain JS numbers. The reference grid is at most 2^32
 * wide, so every value here is an exact integer in a double: divisions by
 * powers of two are exact and `Math.ceil(a / 2 ** k)` is the standard's
 * ceil(a / 2^k). Rectangles are half-open: [x0, x1) x [y0, y1).
 */

export interface Rect {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

/** Sub-band orientation. The value's bit 0 is xob and bit 1 is yob of equation B-15. */
export const BAND = { LL: 0, HL: 1, LH: 2, HH: 3 } as const;
export type Band = (typeof BAND)[keyof typeof BAND];
export const BAND_NAMES = ['LL', 'HL', 'LH', 'HH'] as const;

/** The sub-bands that make resolution r (r = 0: LL only; r > 0: HL, LH, HH in packet order). */
const BANDS_R0: readonly Band[] = [BAND.LL];
const BANDS_RN: readonly Band[] = [BAND.HL, BAND.LH, BAND.HH];
export function resolutionBands(r: number): readonly Band[] {
  return r === 0 ? BANDS_R0 : BANDS_RN;
}

function bad(reason: string): J2kError {
  return new J2kError(J2K_ERROR.BAD_VALUE, reason);
}

function checkIndex(what: string, v: number, n: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= n) throw new RangeError(`${what} ${v} out of range [0, ${n})`);
}

// ---------------------------------------------------------------------------
// Tiles and tile-components (B.3)
// ---------------------------------------------------------------------------

/** Number of tile columns: ceil((Xsiz - XTOsiz) / XTsiz). */
export function numTilesX(siz: Siz): number {
  return Math.ceil((siz.xsiz - siz.xTOsiz) / siz.xTsiz);
}

/** Number of tile rows: ceil((Ysiz - YTOsiz) / YTsiz). */
export function numTilesY(siz: Siz): number {
  return Math.ceil((siz.ysiz - siz.yTOsiz) / siz.yTsiz);
}

export function numTiles(siz: Siz): number {
  return numTilesX(siz) * numTilesY(siz);
}

/** Tile t on the reference grid, clipped to the image area (B-7). */
export function tileRect(siz: Siz, t: number): Rect {
  const ntx = numTilesX(siz);
  checkIndex('tile', t, ntx * numTilesY(siz));
  const p = t % ntx;
  const q = (t - p) / ntx;
  return {
    x0: Math.max(siz.xTOsiz + p * siz.xTsiz, siz.xOsiz),
    y0: Math.max(siz.yTOsiz + q * siz.yTsiz, siz.yOsiz),
    x1: Math.min(siz.xTOsiz + (p + 1) * siz.xTsiz, siz.xsiz),
    y1: Math.min(siz.yTOsiz + (q + 1) * siz.yTsiz, siz.ysiz),
  };
}

/** Tile-component rect: the tile's rect divided (ceil) by the component's subsampling (B-12). */
export function tileComponentRect(siz: Siz, t: number, c: number): Rect {
  checkIndex('component', c, siz.components.length);
  const { dx, dy } = siz.components[c]!;
  const tr = tileRect(siz, t);
  return { x0: Math.ceil(tr.x0 / dx), y0: Math.ceil(tr.y0 / dy), x1: Math.ceil(tr.x1 / dx), y1: Math.ceil(tr.y1 / dy) };
}

/** Resolution r (0..NL) of a tile-component: trx0 = ceil(tcx0 / 2^(NL-r)) etc. (B-14). */
export function resolutionRect(tc: Rect, levels: number, r: number): Rect {
  if (!Number.isInteger(r) || r < 0 || r > levels) throw new RangeError(`resolution ${r} of a component with ${levels} levels`);
  const f = 2 ** (levels - r);
  return { x0: Math.ceil(tc.x0 / f), y0: Math.ceil(tc.y0 / f), x1: Math.ceil(tc.x1 / f), y1: Math.ceil(tc.y1 / f) };
}

/**
 * Sub-band `band` of resolution r (B-15): tbx0 = ceil((tcx0 - 2^(nb-1)·xob) / 2^nb),
 * with nb = NL for the LL band of r = 0 and nb = NL - r + 1 for the bands of r > 0.
 */
export function subbandRect(tc: Rect, levels: number, r: number, band: Band): Rect {
  if (!Number.isInteger(r) || r < 0 || r > levels) throw new RangeError(`resolution ${r} of a component with ${levels} levels`);
  if ((r === 0) !== (band === BAND.LL)) throw new RangeError(`band ${BAND_NAMES[band] ?? band} is not part of resolution ${r}`);
  const nb = r === 0 ? levels : levels - r + 1;
  const f = 2 ** nb;
  const ox = band & 1 ? f / 2 : 0;
  const oy = band & 2 ? f / 2 : 0;
  return {
    x0: Math.ceil((tc.x0 - ox) / f) + 0, // + 0 turns -0 into 0
    y0: Math.ceil((tc.y0 - oy) / f) + 0,
    x1: Math.ceil((tc.x1 - ox) / f) + 0,
    y1: Math.ceil((tc.y1 - oy) / f) + 0,
  };
}

export interface PrecinctGrid {
  /** Index of the first precinct column/row on the grid anchored at 0: floor(trx0 / 2^PPx). */
  readonly firstX: number;
  readonly firstY: number;
  /** numprecincts wide/high (B-16); both 0 when the resolution is empty. */
  readonly numX: number;
  readonly numY: number;
}

/** The precinct partition of a resolution rect with precinct size 2^ppx x 2^ppy (B-16). */
export function precinctGrid(res: Rect, ppx: number, ppy: number): PrecinctGrid {
  const fx = 2 ** ppx;
  const fy = 2 ** ppy;
  const firstX = Math.floor(res.x0 / fx);
  const firstY = Math.floor(res.y0 / fy);
  if (res.x1 <= res.x0 || res.y1 <= res.y0) return { firstX, firstY, numX: 0, numY: 0 };
  return { firstX, firstY, numX: Math.ceil(res.x1 / fx) - firstX, numY: Math.ceil(res.y1 / fy) - firstY };
}

/** Image size when d resolution levels are discarded: ceil(Xsiz/2^d) - ceil(XOsiz/2^d) (JPIP fsiz mapping). */
export function resolutionSizeAtDiscard(siz: Siz, d: number): { width: number; height: number } {
  if (!Number.isInteger(d) || d < 0) throw new RangeError(`discard levels ${d}`);
  const f = 2 ** d;
  return {
    width: Math.ceil(siz.xsiz / f) - Math.ceil(siz.xOsiz / f),
    height: Math.ceil(siz.ysiz / f) - Math.ceil(siz.yOsiz / f),
  };
}

// ---------------------------------------------------------------------------
// JPIP precinct data-bin identifiers
// ---------------------------------------------------------------------------

/**
 * In-class identifier of a precinct data-bin: I = t + (c + s·Nc)·Nt, where s is
 * the precinct's sequence number within its tile-component (all precincts of
 * resolution 0 in raster order, then resolution 1, ...).
 * Throws BAD_VALUE if the result is not a safe integer.
 */
export function precinctBinId(t: number, c: number, s: number, numComponents: number, numTiles: number): number {
  checkIndex('tile', t, numTiles);
  checkIndex('component', c, numComponents);
  if (!Number.isSafeInteger(s) || s < 0) throw new RangeError(`precinct sequence number ${s}`);
  const id = t + (c + s * numComponents) * numTiles;
  if (!Number.isSafeInteger(id)) throw bad(`precinct data-bin id for tile ${t}, component ${c}, precinct ${s} exceeds 2^53`);
  return id;
}

export interface PrecinctBinRef {
  t: number;
  c: number;
  /** Sequence number within the tile-component. */
  s: number;
}

/**
 * Inverse of {@link precinctBinId}. The id usually comes from a client (cache
 * model), so a non-integer, negative or unsafe id is a BAD_VALUE J2kError. The
 * returned s is not checked against any tile-component's precinct count.
 */
export function decomposePrecinctBinId(id: number, numComponents: number, numTiles: number): PrecinctBinRef {
  if (!Number.isSafeInteger(id) || id < 0) throw bad(`precinct data-bin id ${id} is not a non-negative safe integer`);
  if (!(numComponents >= 1 && numTiles >= 1)) throw new RangeError(`${numComponents} components, ${numTiles} tiles`);
  const t = id % numTiles;
  const q = (id - t) / numTiles;
  const c = q % numComponents;
  const s = (q - c) / numComponents;
  return { t, c, s };
}

// ---------------------------------------------------------------------------
// Precincts and code-blocks inside sub-bands
// ---------------------------------------------------------------------------

export interface SubbandGeometry {
  readonly band: Band;
  /** The sub-band rect in sub-band coordinates (B-15). */
  readonly rect: Rect;
}

/** The part of one sub-band covered by one precinct, and its code-blocks. */
export interface PrecinctSubband {
  readonly band: Band;
  /** Precinct ∩ sub-band in sub-band coordinates; x0 = x1 or y0 = y1 when empty. */
  readonly rect: Rect;
  /** Code-block size exponents in force: min(xcb, PPx - 1) for r > 0, min(xcb, PPx) for r = 0. */
  readonly xcb: number;
  readonly ycb: number;
  /** Column/row of the first code-block on the sub-band's code-block grid (anchored at 0). */
  readonly cbX0: number;
  readonly cbY0: number;
  /** Code-blocks of this sub-band in the precinct, in x and y (0 when the part is empty). */
  readonly numCbX: number;
  readonly numCbY: number;
}

/** Code-block (i, j) of a precinct's sub-band (i column, j row, from 0), clipped to the precinct's part. */
export function codeBlockRect(sb: PrecinctSubband, i: number, j: number): Rect {
  checkIndex('code-block column', i, sb.numCbX);
  checkIndex('code-block row', j, sb.numCbY);
  const w = 2 ** sb.xcb;
  const h = 2 ** sb.ycb;
  const gx = (sb.cbX0 + i) * w;
  const gy = (sb.cbY0 + j) * h;
  return {
    x0: Math.max(gx, sb.rect.x0),
    y0: Math.max(gy, sb.rect.y0),
    x1: Math.min(gx + w, sb.rect.x1),
    y1: Math.min(gy + h, sb.rect.y1),
  };
}

// ---------------------------------------------------------------------------
// Tile geometry
// ---------------------------------------------------------------------------

/** Largest number of precincts of one tile accepted (every packet table is sized from it). */
export const MAX_TILE_PRECINCTS = 2 ** 28;

/**
 * Everything about one tile that depends only on SIZ and the tile's coding
 * style, precomputed once into flat typed arrays indexed by c·R + r
 * (R = `maxResolutions`). Resolutions r > NL(c) of a component exist in the
 * arrays with no precinct.
 */
export class TileGeometry {
  readonly siz: Siz;
  readonly tile: number;
  readonly numTiles: number;
  readonly numComponents: number;
  /** max over components of NL + 1. */
  readonly maxResolutions: number;
  /** The tile on the reference grid, clipped to the image area. */
  readonly rect: Rect;
  /** Sum over components of their precinct totals. */
  readonly totalPrecincts: number;

  private readonly nl: Uint8Array;
  private readonly tc: Float64Array; // 4 per component
  private readonly res: Float64Array; // 4 per (c, r)
  private readonly pp: Uint8Array; // 2 per (c, r): ppx, ppy
  private readonly cb: Uint8Array; // 2 per (c, r): effective xcb, ycb
  private readonly first: Float64Array; // 2 per (c, r): first precinct column, row on the anchored grid
  private readonly num: Float64Array; // 2 per (c, r): precincts wide, high
  private readonly before: Float64Array; // per (c, r): precincts of resolutions < r of component c
  private readonly totals: Float64Array; // per c
  private readonly compBase: Float64Array; // per c: precinct totals of components < c
  private readonly bands: Float64Array; // 3 sub-band rects (x0, y0, x1, y1) per (c, r), packet-header band order
  private readonly part = new Float64Array(4); // scratch for precinctPart

  constructor(siz: Siz, coding: TileCoding, t: number) {
    const nc = siz.components.length;
    if (coding.components.length !== nc) throw bad(`tile ${t}: coding style for ${coding.components.length} components, SIZ has ${nc}`);
    this.siz = siz;
    this.tile = t;
    this.numTiles = numTiles(siz);
    this.numComponents = nc;
    this.rect = tileRect(siz, t);
    let maxR = 0;
    for (let c = 0; c < nc; c++) {
      const cc = coding.components[c]!;
      if (!Number.isInteger(cc.levels) || cc.levels < 0 || cc.levels > 32) throw bad(`component ${c}: ${cc.levels} decomposition levels`);
      if (cc.precincts.length < cc.levels + 1) throw bad(`component ${c}: ${cc.precincts.length} precinct sizes for ${cc.levels + 1} resolutions`);
      maxR = Math.max(maxR, cc.levels + 1);
    }
    const R = maxR;
    this.maxResolutions = R;
    this.nl = new Uint8Array(nc);
    this.tc = new Float64Array(4 * nc);
    this.res = new Float64Array(4 * nc * R);
    this.pp = new Uint8Array(2 * nc * R);
    this.cb = new Uint8Array(2 * nc * R);
    this.first = new Float64Array(2 * nc * R);
    this.num = new Float64Array(2 * nc * R);
    this.before = new Float64Array(nc * R);
    this.totals = new Float64Array(nc);
    this.compBase = new Float64Array(nc);
    this.bands = new Float64Array(12 * nc * R);
    const tr = this.rect;
    let all = 0;
    for (let c = 0; c < nc; c++) {
      const cc = coding.components[c]!;
      const { dx, dy } = siz.components[c]!;
      const NL = cc.levels;
      this.nl[c] = NL;
      const tcx0 = Math.ceil(tr.x0 / dx);
      const tcy0 = Math.ceil(tr.y0 / dy);
      const tcx1 = Math.ceil(tr.x1 / dx);
      const tcy1 = Math.ceil(tr.y1 / dy);
      this.tc[4 * c] = tcx0;
      this.tc[4 * c + 1] = tcy0;
      this.tc[4 * c + 2] = tcx1;
      this.tc[4 * c + 3] = tcy1;
      this.compBase[c] = all;
      let sum = 0;
      for (let r = 0; r < R; r++) {
        const k = c * R + r;
        this.before[k] = sum;
        if (r > NL) continue;
        const { ppx, ppy } = cc.precincts[r]!;
        if (!(ppx >= 0 && ppx <= 15 && ppy >= 0 && ppy <= 15) || (r > 0 && (ppx === 0 || ppy === 0))) {
          throw bad(`component ${c}: precinct exponents (${ppx}, ${ppy}) at resolution ${r}`);
        }
        const f = 2 ** (NL - r);
        const x0 = Math.ceil(tcx0 / f);
        const y0 = Math.ceil(tcy0 / f);
        const x1 = Math.ceil(tcx1 / f);
        const y1 = Math.ceil(tcy1 / f);
        this.res[4 * k] = x0;
        this.res[4 * k + 1] = y0;
        this.res[4 * k + 2] = x1;
        this.res[4 * k + 3] = y1;
        const tcRect = { x0: tcx0, y0: tcy0, x1: tcx1, y1: tcy1 };
        resolutionBands(r).forEach((band, i) => {
          const b = subbandRect(tcRect, NL, r, band);
          this.bands.set([b.x0, b.y0, b.x1, b.y1], 4 * (3 * k + i));
        });
        this.pp[2 * k] = ppx;
        this.pp[2 * k + 1] = ppy;
        this.cb[2 * k] = Math.min(cc.xcb, r > 0 ? ppx - 1 : ppx);
        this.cb[2 * k + 1] = Math.min(cc.ycb, r > 0 ? ppy - 1 : ppy);
        const fx = 2 ** ppx;
        const fy = 2 ** ppy;
        const firstX = Math.floor(x0 / fx);
        const firstY = Math.floor(y0 / fy);
        this.first[2 * k] = firstX;
        this.first[2 * k + 1] = firstY;
        if (x1 > x0 && y1 > y0) {
          const nx = Math.ceil(x1 / fx) - firstX;
          const ny = Math.ceil(y1 / fy) - firstY;
          this.num[2 * k] = nx;
          this.num[2 * k + 1] = ny;
          sum += nx * ny;
          if (sum > MAX_TILE_PRECINCTS) {
            throw new J2kError(J2K_ERROR.UNSUPPORTED, `tile ${t} has more than ${MAX_TILE_PRECINCTS} precincts`);
          }
        }
      }
      this.totals[c] = sum;
      all += sum;
      if (all > MAX_TILE_PRECINCTS) throw new J2kError(J2K_ERROR.UNSUPPORTED, `tile ${t} has more than ${MAX_TILE_PRECINCTS} precincts`);
    }
    this.totalPrecincts = all;
  }

  /** Number of decomposition levels NL of component c. */
  levels(c: number): number {
    return this.nl[c]!;
  }

  /** Tile-component rect of component c. */
  componentRect(c: number): Rect {
    checkIndex('component', c, this.numComponents);
    const tc = this.tc;
    return { x0: tc[4 * c]!, y0: tc[4 * c + 1]!, x1: tc[4 * c + 2]!, y1: tc[4 * c + 3]! };
  }

  /** True when resolution r exists for component c (r <= NL(c)). */
  hasResolution(c: number, r: number): boolean {
    return r >= 0 && r <= this.nl[c]!;
  }

  private k(c: number, r: number): number {
    checkIndex('component', c, this.numComponents);
    if (!Number.isInteger(r) || r < 0 || r > this.nl[c]!) throw new RangeError(`resolution ${r} of component ${c} (NL = ${this.nl[c]})`);
    return c * this.maxResolutions + r;
  }

  /** Resolution rect (resolution coordinates). */
  resolutionRect(c: number, r: number): Rect {
    const k = this.k(c, r);
    const a = this.res;
    return { x0: a[4 * k]!, y0: a[4 * k + 1]!, x1: a[4 * k + 2]!, y1: a[4 * k + 3]! };
  }

  /** Precinct size exponents PPx, PPy of resolution r. */
  precinctExponents(c: number, r: number): { ppx: number; ppy: number } {
    const k = this.k(c, r);
    return { ppx: this.pp[2 * k]!, ppy: this.pp[2 * k + 1]! };
  }

  /** Code-block size exponents in force at resolution r (clipped by the precinct size). */
  codeBlockExponents(c: number, r: number): { xcb: number; ycb: number } {
    const k = this.k(c, r);
    return { xcb: this.cb[2 * k]!, ycb: this.cb[2 * k + 1]! };
  }

  /** The precinct grid of resolution r. */
  precinctGrid(c: number, r: number): PrecinctGrid {
    const k = this.k(c, r);
    return { firstX: this.first[2 * k]!, firstY: this.first[2 * k + 1]!, numX: this.num[2 * k]!, numY: this.num[2 * k + 1]! };
  }

  /** Precincts wide at resolution r (0 when r > NL(c) or the resolution is empty). */
  precinctsX(c: number, r: number): number {
    return r > this.nl[c]! ? 0 : this.num[2 * (c * this.maxResolutions + r)]!;
  }

  precinctsY(c: number, r: number): number {
    return r > this.nl[c]! ? 0 : this.num[2 * (c * this.maxResolutions + r) + 1]!;
  }

  /** Precincts of resolution r of component c (0 when r > NL(c)). */
  precinctCount(c: number, r: number): number {
    if (r > this.nl[c]!) return 0;
    const k = 2 * (c * this.maxResolutions + r);
    return this.num[k]! * this.num[k + 1]!;
  }

  /** Sum of the precinct counts of resolutions < r of component c. */
  precinctsBefore(c: number, r: number): number {
    if (r >= this.maxResolutions) return this.totals[c]!;
    return this.before[c * this.maxResolutions + r]!;
  }

  /** All precincts of component c in this tile (the range of s). */
  precinctTotal(c: number): number {
    return this.totals[c]!;
  }

  /** Precincts of components < c: (componentBase(c) + s) is a tile-wide precinct number. */
  componentBase(c: number): number {
    return this.compBase[c]!;
  }

  /** Sequence number s within the tile-component of precinct p of resolution r. */
  precinctSeq(c: number, r: number, p: number): number {
    checkIndex('precinct', p, this.precinctCount(c, r));
    return this.before[c * this.maxResolutions + r]! + p;
  }

  /** The resolution holding sequence number s of component c, or -1 when s is out of range. */
  seqResolution(c: number, s: number): number {
    checkIndex('component', c, this.numComponents);
    if (!Number.isInteger(s) || s < 0 || s >= this.totals[c]!) return -1;
    const R = this.maxResolutions;
    const base = c * R;
    let r = this.nl[c]!;
    while (this.before[base + r]! > s) r--;
    return r;
  }

  /** (r, p) of sequence number s of component c, or undefined when s is out of range. */
  seqToPrecinct(c: number, s: number): { r: number; p: number } | undefined {
    const r = this.seqResolution(c, s);
    if (r < 0) return undefined;
    return { r, p: s - this.before[c * this.maxResolutions + r]! };
  }

  /** JPIP precinct data-bin id of precinct p of resolution r of component c in this tile. */
  precinctBinId(c: number, r: number, p: number): number {
    return precinctBinId(this.tile, c, this.precinctSeq(c, r, p), this.numComponents, this.numTiles);
  }

  /** Precinct p (raster index) of resolution r, in resolution coordinates, clipped to the resolution. */
  precinctRect(c: number, r: number, p: number): Rect {
    const k = this.k(c, r);
    const nx = this.num[2 * k]!;
    checkIndex('precinct', p, nx * this.num[2 * k + 1]!);
    const px = p % nx;
    const py = (p - px) / nx;
    const w = 2 ** this.pp[2 * k]!;
    const h = 2 ** this.pp[2 * k + 1]!;
    const gx = (this.first[2 * k]! + px) * w;
    const gy = (this.first[2 * k + 1]! + py) * h;
    const a = this.res;
    return {
      x0: Math.max(gx, a[4 * k]!),
      y0: Math.max(gy, a[4 * k + 1]!),
      x1: Math.min(gx + w, a[4 * k + 2]!),
      y1: Math.min(gy + h, a[4 * k + 3]!),
    };
  }

  /**
   * Precinct p of resolution r projected on the reference grid: its cell
   * [(firstX + px)·2^PPx, +2^PPx) scaled by XRsiz·2^(NL-r), clipped to the tile.
   * x0/y0 are where the position-driven progressions reach the precinct
   * ({@link precinctPositionX}); the projections of the precincts of one
   * resolution do not overlap.
   */
  precinctRefRect(c: number, r: number, p: number): Rect {
    const k = this.k(c, r);
    const nx = this.num[2 * k]!;
    checkIndex('precinct', p, nx * this.num[2 * k + 1]!);
    const px = p % nx;
    const py = (p - px) / nx;
    const { dx, dy } = this.siz.components[c]!;
    const f = 2 ** (this.nl[c]! - r);
    const w = 2 ** this.pp[2 * k]! * f * dx;
    const h = 2 ** this.pp[2 * k + 1]! * f * dy;
    const gx = (this.first[2 * k]! + px) * w;
    const gy = (this.first[2 * k + 1]! + py) * h;
    const tr = this.rect;
    return { x0: Math.max(tr.x0, gx), y0: Math.max(tr.y0, gy), x1: Math.min(tr.x1, gx + w), y1: Math.min(tr.y1, gy + h) };
  }

  /**
   * The reference-grid x at which the position-driven progressions (RPCL,
   * PCRL, CPRL; B.12.1.3-5) reach precinct column px of resolution r: the
   * first x in the tile that is a multiple of XRsiz·2^(PPx+NL-r) inside the
   * column, or tx0 for a first column that starts left of the tile.
   */
  precinctPositionX(c: number, r: number, px: number): number {
    const k = c * this.maxResolutions + r;
    const m = this.siz.components[c]!.dx * 2 ** (this.pp[2 * k]! + this.nl[c]! - r);
    return Math.max(this.rect.x0, (this.first[2 * k]! + px) * m);
  }

  /** Like {@link precinctPositionX}, for precinct row py. */
  precinctPositionY(c: number, r: number, py: number): number {
    const k = c * this.maxResolutions + r;
    const m = this.siz.components[c]!.dy * 2 ** (this.pp[2 * k + 1]! + this.nl[c]! - r);
    return Math.max(this.rect.y0, (this.first[2 * k + 1]! + py) * m);
  }

  /** The sub-bands of resolution r with their rects. */
  subbands(c: number, r: number): SubbandGeometry[] {
    const k = this.k(c, r);
    const b = this.bands;
    return resolutionBands(r).map((band, i) => {
      const o = 4 * (3 * k + i);
      return { band, rect: { x0: b[o]!, y0: b[o + 1]!, x1: b[o + 2]!, y1: b[o + 3]! } };
    });
  }

  /**
   * Writes into this.part the part of sub-band i (index in packet-header band
   * order) of resolution k = c·R + r that precinct (px, py) covers, in
   * sub-band coordinates, with x1 >= x0 and y1 >= y0. The precinct partition
   * of a sub-band is the resolution's, halved for r > 0 (B.6).
   */
  private precinctPart(k: number, r: number, p: number, i: number): void {
    const nx = this.num[2 * k]!;
    const px = p % nx;
    const py = (p - px) / nx;
    const w = 2 ** (r === 0 ? this.pp[2 * k]! : this.pp[2 * k]! - 1);
    const h = 2 ** (r === 0 ? this.pp[2 * k + 1]! : this.pp[2 * k + 1]! - 1);
    const gx = (this.first[2 * k]! + px) * w;
    const gy = (this.first[2 * k + 1]! + py) * h;
    const b = this.bands;
    const o = 4 * (3 * k + i);
    const part = this.part;
    const x0 = Math.max(gx, b[o]!);
    const y0 = Math.max(gy, b[o + 1]!);
    part[0] = x0;
    part[1] = y0;
    part[2] = Math.max(x0, Math.min(gx + w, b[o + 2]!));
    part[3] = Math.max(y0, Math.min(gy + h, b[o + 3]!));
  }

  /**
   * The sub-bands of precinct p of resolution r (LL for r = 0; HL, LH, HH
   * otherwise, in packet-header order), each with the precinct's code-block grid.
   */
  precinctSubbands(c: number, r: number, p: number): PrecinctSubband[] {
    const k = this.k(c, r);
    checkIndex('precinct', p, this.num[2 * k]! * this.num[2 * k + 1]!);
    const xcb = this.cb[2 * k]!;
    const ycb = this.cb[2 * k + 1]!;
    const cw = 2 ** xcb;
    const ch = 2 ** ycb;
    const part = this.part;
    return resolutionBands(r).map((band, i) => {
      this.precinctPart(k, r, p, i);
      const x0 = part[0]!;
      const y0 = part[1]!;
      const x1 = part[2]!;
      const y1 = part[3]!;
      const cbX0 = Math.floor(x0 / cw);
      const cbY0 = Math.floor(y0 / ch);
      const empty = x1 === x0 || y1 === y0;
      return {
        band,
        rect: { x0, y0, x1, y1 },
        xcb,
        ycb,
        cbX0,
        cbY0,
        numCbX: empty ? 0 : Math.ceil(x1 / cw) - cbX0,
        numCbY: empty ? 0 : Math.ceil(y1 / ch) - cbY0,
      };
    });
  }

  /**
   * Allocation-free form of {@link precinctSubbands} for packet-header
   * parsing: writes numCbX, numCbY of each sub-band of the precinct into
   * out[2i], out[2i+1] (i in packet-header band order) and returns the number
   * of sub-bands (1 or 3). `out` needs room for 6 values. Arguments are not
   * checked (hot path): c, r <= NL(c) and p < precinctCount(c, r) are the caller's.
   */
  precinctCodeBlockCounts(c: number, r: number, p: number, out: Uint32Array | Int32Array | Float64Array): number {
    const k = c * this.maxResolutions + r;
    const cw = 2 ** this.cb[2 * k]!;
    const ch = 2 ** this.cb[2 * k + 1]!;
    const part = this.part;
    const nBands = r === 0 ? 1 : 3;
    for (let i = 0; i < nBands; i++) {
      this.precinctPart(k, r, p, i);
      const x0 = part[0]!;
      const y0 = part[1]!;
      const x1 = part[2]!;
      const y1 = part[3]!;
      if (x1 === x0 || y1 === y0) {
        out[2 * i] = 0;
        out[2 * i + 1] = 0;
      } else {
        out[2 * i] = Math.ceil(x1 / cw) - Math.floor(x0 / cw);
        out[2 * i + 1] = Math.ceil(y1 / ch) - Math.floor(y0 / ch);
      }
    }
    return nBands;
  }
}

/** Precomputes the geometry of tile t. Throws BAD_VALUE when the coding style does not fit SIZ. */
export function buildTileGeometry(siz: Siz, coding: TileCoding, t: number): TileGeometry {
  return new TileGeometry(siz, coding, t);
}
