/**
 * Window of interest -> frame size, region and the precincts that carry it
 * (ISO/IEC 15444-9 view-window fields fsiz/roff/rsiz; geometry of 15444-1 Annex B).
 *
 * Plain JS only (no Node APIs): the browser client reuses this file.
 *
 * Conventions. A "frame" is the image at d discarded resolution levels: its
 * size is resolutionSizeAtDiscard(siz, d), its sample (0, 0) is the
 * resolution-grid sample (ceil(XOsiz/2^d), ceil(YOsiz/2^d)). Rectangles are
 * half-open. The standard projects a reference-grid rect to a tile-component
 * with ceil(x / XRsiz) and to resolution r with ceil(x / 2^(NL-r)), both ends;
 * every projection here is that one, so a window and its region are exact
 * inverses of each other.
 */
import {
  numTilesX,
  numTilesY,
  precinctBinId,
  resolutionSizeAtDiscard,
  type Rect,
  type TileGeometry,
} from '../jpeg2000/geometry.js';
import type { Siz } from '../jpeg2000/markers.js';
import { JpipError } from './errors.js';

// ---------------------------------------------------------------------------
// View: fsiz / roff / rsiz -> discard levels, served window, reference region
// ---------------------------------------------------------------------------

export type RoundDirection = 'round-down' | 'round-up' | 'closest';

/** The view-window fields of a request, already parsed. */
export interface ViewRequest {
  fsiz?: { fx: number; fy: number; round?: RoundDirection | undefined } | undefined;
  roff?: { x: number; y: number } | undefined;
  rsiz?: { w: number; h: number } | undefined;
}

export interface View {
  /** d: resolution levels discarded. */
  readonly discard: number;
  /** The frame size actually used: resolutionSizeAtDiscard(siz, d). */
  readonly fsiz: { readonly w: number; readonly h: number };
  /**
   * The region served, in that frame's coordinates, clipped to the frame.
   * When `empty`, rsiz is 0,0 and roff the (clipped) rescaled offset.
   */
  readonly roff: { readonly x: number; readonly y: number };
  readonly rsiz: { readonly w: number; readonly h: number };
  /**
   * Which served values differ from the request (a missing roff counts as
   * 0,0, a missing rsiz as "to the edge of the requested frame"): the server
   * answers JPIP-fsiz / JPIP-roff / JPIP-rsiz for each true flag.
   */
  readonly modified: { readonly fsiz: boolean; readonly roff: boolean; readonly rsiz: boolean };
  /** The region on the reference grid (empty rect when `empty`). */
  readonly region: Rect;
  /** True when the window holds no sample (outside the frame, or rsiz 0). Not an error. */
  readonly empty: boolean;
}

const MAX_LEVELS = 32;

function badField(field: string, msg: string): JpipError {
  return new JpipError('BAD_FIELD', msg, field);
}

function checkUint(field: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) throw badField(field, `${v} is not an integer >= ${min}`);
}

function floorDiv(a: bigint, b: bigint): bigint {
  return a / b; // a >= 0, b > 0
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b; // a >= 0, b > 0
}

/**
 * Chooses d for a requested frame size. `sizes[d]` is the frame at d; sizes
 * never grow with d.
 *  - round-down: the first (largest) frame with W <= fx and H <= fy; none: d = maxDiscard.
 *  - round-up: the last (smallest) frame with W >= fx and H >= fy; none: d = 0.
 *  - closest: the frame minimising |W·H - fx·fy| (exact, BigInt); on a tie
 *    the larger frame wins, because it never delivers less detail than asked
 *    and a tie means the client's size lies between two frames.
 * Frames of identical size at several d (only possible for a 1x1 frame)
 * resolve to the smallest such d: same pixels count, most levels kept.
 */
function chooseDiscard(sizes: readonly { width: number; height: number }[], fx: number, fy: number, round: RoundDirection): number {
  const max = sizes.length - 1;
  let d: number;
  if (round === 'round-down') {
    d = sizes.findIndex((s) => s.width <= fx && s.height <= fy);
    if (d < 0) d = max;
  } else if (round === 'round-up') {
    d = 0;
    for (let i = 0; i <= max; i++) if (sizes[i]!.width >= fx && sizes[i]!.height >= fy) d = i;
  } else {
    const want = BigInt(fx) * BigInt(fy);
    let best = -1n;
    d = 0;
    for (let i = 0; i <= max; i++) {
      let diff = BigInt(sizes[i]!.width) * BigInt(sizes[i]!.height) - want;
      if (diff < 0n) diff = -diff;
      if (best < 0n || diff < best) {
        best = diff;
        d = i;
      }
    }
  }
  while (d > 0 && sizes[d - 1]!.width === sizes[d]!.width && sizes[d - 1]!.height === sizes[d]!.height) d--;
  return d;
}

/**
 * Resolves the view-window of a request against an image.
 *
 * `maxDiscard` is the most levels that may be discarded: the minimum NL over
 * all components and tiles. Returns undefined when the request has no fsiz:
 * whether that means "no image data" or "the whole image" is the caller's
 * choice ({@link fullView} gives the latter). roff/rsiz are in the requested
 * frame's coordinates; when the chosen frame differs they are rescaled to it
 * (starts floor(x·W/fx), ends ceil((x+w)·W/fx), exact), then clipped.
 * Malformed values throw JpipError BAD_FIELD (field fsiz/roff/rsiz).
 */
export function resolveView(siz: Siz, maxDiscard: number, req: ViewRequest): View | undefined {
  if (!Number.isInteger(maxDiscard) || maxDiscard < 0 || maxDiscard > MAX_LEVELS) throw new RangeError(`maxDiscard ${maxDiscard}`);
  const f = req.fsiz;
  if (f === undefined) return undefined;
  checkUint('fsiz', f.fx, 1);
  checkUint('fsiz', f.fy, 1);
  const round = f.round ?? 'round-down';
  if (round !== 'round-down' && round !== 'round-up' && round !== 'closest') throw badField('fsiz', `unknown rounding '${String(round)}'`);
  const rx = req.roff?.x ?? 0;
  const ry = req.roff?.y ?? 0;
  checkUint('roff', rx, 0);
  checkUint('roff', ry, 0);
  // A missing rsiz runs to the edge of the requested frame (0 when roff is past it).
  const rw = req.rsiz?.w ?? Math.max(0, f.fx - rx);
  const rh = req.rsiz?.h ?? Math.max(0, f.fy - ry);
  checkUint('rsiz', rw, 0);
  checkUint('rsiz', rh, 0);

  const sizes: { width: number; height: number }[] = [];
  for (let d = 0; d <= maxDiscard; d++) sizes.push(resolutionSizeAtDiscard(siz, d));
  const d = chooseDiscard(sizes, f.fx, f.fy, round);
  const W = sizes[d]!.width;
  const H = sizes[d]!.height;

  const ax = axis(rx, rw, f.fx, W);
  const ay = axis(ry, rh, f.fy, H);
  const empty = ax.empty || ay.empty;
  const roff = { x: ax.start, y: ay.start };
  const rsiz = empty ? { w: 0, h: 0 } : { w: ax.size, h: ay.size };
  const k = 2 ** d;
  const ox = Math.ceil(siz.xOsiz / k);
  const oy = Math.ceil(siz.yOsiz / k);
  const region: Rect = empty
    ? { x0: siz.xOsiz, y0: siz.yOsiz, x1: siz.xOsiz, y1: siz.yOsiz }
    : frameToReference(siz, d, { x0: ax.start + ox, y0: ay.start + oy, x1: ax.start + ax.size + ox, y1: ay.start + ay.size + oy });
  return {
    discard: d,
    fsiz: { w: W, h: H },
    roff,
    rsiz,
    modified: { fsiz: W !== f.fx || H !== f.fy, roff: roff.x !== rx || roff.y !== ry, rsiz: rsiz.w !== rw || rsiz.h !== rh },
    region,
    empty,
  };
}

/** One axis of the window: rescale from the requested frame size `req` to `size`, then clip to [0, size). */
function axis(start: number, len: number, req: number, size: number): { start: number; size: number; empty: boolean } {
  let s = start;
  let e = start + len;
  if (req !== size) {
    const R = BigInt(req);
    const S = BigInt(size);
    s = Number(floorDiv(BigInt(start) * S, R));
    e = Number(ceilDiv((BigInt(start) + BigInt(len)) * S, R));
  }
  const cs = Math.min(s, size);
  const ce = Math.min(e, size);
  const empty = len === 0 || ce <= cs;
  return { start: cs, size: empty ? 0 : ce - cs, empty };
}

/**
 * The reference-grid region of a window given in absolute resolution-grid
 * coordinates at discard d (frame sample x is absolute sample x + ceil(XOsiz/2^d)):
 * sample u covers [u·2^d, (u+1)·2^d), clipped to the image [XOsiz, Xsiz).
 * Projecting the result back with ceil(x/2^d) gives the window again.
 */
export function frameToReference(siz: Siz, d: number, w: Rect): Rect {
  const k = 2 ** d;
  return {
    x0: Math.max(siz.xOsiz, w.x0 * k),
    y0: Math.max(siz.yOsiz, w.y0 * k),
    x1: Math.min(siz.xsiz, w.x1 * k),
    y1: Math.min(siz.ysiz, w.y1 * k),
  };
}

/** The whole image at full resolution, as a view (for requests without fsiz, if the caller wants that). */
export function fullView(siz: Siz): View {
  const { width, height } = resolutionSizeAtDiscard(siz, 0);
  const empty = width === 0 || height === 0;
  return {
    discard: 0,
    fsiz: { w: width, h: height },
    roff: { x: 0, y: 0 },
    rsiz: { w: width, h: height },
    modified: { fsiz: false, roff: false, rsiz: false },
    region: empty ? { x0: siz.xOsiz, y0: siz.yOsiz, x1: siz.xOsiz, y1: siz.yOsiz } : { x0: siz.xOsiz, y0: siz.yOsiz, x1: siz.xsiz, y1: siz.ysiz },
    empty,
  };
}

/** The most levels a view may discard: min NL over every component of every tile's coding. */
export function maxDiscardLevels(codings: Iterable<{ readonly components: readonly { readonly levels: number }[] }>): number {
  let m = MAX_LEVELS;
  for (const c of codings) for (const cc of c.components) m = Math.min(m, cc.levels);
  return m;
}

// ---------------------------------------------------------------------------
// Tiles and precincts of a region
// ---------------------------------------------------------------------------

/** The tiles whose rect overlaps `region` (reference grid), in raster order. */
export function windowTiles(siz: Siz, region: Rect): number[] {
  const x0 = Math.max(region.x0, siz.xOsiz);
  const y0 = Math.max(region.y0, siz.yOsiz);
  const x1 = Math.min(region.x1, siz.xsiz);
  const y1 = Math.min(region.y1, siz.ysiz);
  if (x1 <= x0 || y1 <= y0) return [];
  const ntx = numTilesX(siz);
  const nty = numTilesY(siz);
  const p0 = Math.max(0, Math.floor((x0 - siz.xTOsiz) / siz.xTsiz));
  const p1 = Math.min(ntx - 1, Math.floor((x1 - 1 - siz.xTOsiz) / siz.xTsiz));
  const q0 = Math.max(0, Math.floor((y0 - siz.yTOsiz) / siz.yTsiz));
  const q1 = Math.min(nty - 1, Math.floor((y1 - 1 - siz.yTOsiz) / siz.yTsiz));
  const out: number[] = [];
  for (let q = q0; q <= q1; q++) for (let p = p0; p <= p1; p++) out.push(q * ntx + p);
  return out;
}

/**
 * Samples added on each side of the window at every kept resolution, in
 * that resolution's coordinates, so that decoding only the selected
 * precincts gives the window's samples exactly. One level of inverse lifting
 * reaches e = 2 samples (5/3, two lifting steps) or e = 4 (9/7, four steps);
 * across levels the need is bounded by w' = ceil(w/2) + e, which settles at
 * 2e. Exact dependency tracking (test/window.test.ts) measures 3 and 7 as the
 * true worst case: these values keep one sample of margin.
 */
export const FILTER_REACH = { REVERSIBLE_5_3: 4, IRREVERSIBLE_9_7: 8 } as const;

export type FilterReach = number | 'auto';

/** Per-component wavelet (COD/COC transform: 1 = 5/3, 0 = 9/7): TileCoding fits. */
export interface TransformInfo {
  readonly components: readonly { readonly transform: number }[];
}

export interface WindowOptions {
  /** Components wanted (default all). Indices past the last component are ignored; duplicates count once. */
  components?: readonly number[] | undefined;
  /** Default 'auto': 4 for a 5/3 component, 8 for 9/7, and 8 when `coding` is not given. */
  filterReach?: FilterReach | undefined;
  /** The tile's coding style, for 'auto'. */
  coding?: TransformInfo | undefined;
}

/** A rectangle of precincts of one (c, r) of a tile. */
export interface PrecinctRange {
  readonly c: number;
  readonly r: number;
  /** Selected precinct columns [px0, px1) and rows [py0, py1), indices into the resolution's precinct grid. */
  readonly px0: number;
  readonly py0: number;
  readonly px1: number;
  readonly py1: number;
  /** Precincts per grid row: raster index p = py·numX + px. */
  readonly numX: number;
  /** Sequence number of precinct 0 of (c, r) in the tile-component: s = seq0 + p. */
  readonly seq0: number;
}

export interface WindowPrecinct {
  readonly c: number;
  readonly r: number;
  /** Raster index within the resolution. */
  readonly p: number;
  /** Sequence number within the tile-component (for the precinct data-bin id). */
  readonly s: number;
}

function reachOf(opts: WindowOptions, c: number): number {
  const fr = opts.filterReach ?? 'auto';
  if (fr !== 'auto') return fr;
  const t = opts.coding?.components[c]?.transform;
  return t === 1 ? FILTER_REACH.REVERSIBLE_5_3 : FILTER_REACH.IRREVERSIBLE_9_7;
}

function wantedComponents(n: number, list: readonly number[] | undefined): number[] {
  if (list === undefined) return Array.from({ length: n }, (_, i) => i);
  const seen = new Uint8Array(n);
  for (const c of list) {
    if (!Number.isInteger(c) || c < 0) throw new RangeError(`component ${c}`);
    if (c < n) seen[c] = 1;
  }
  const out: number[] = [];
  for (let c = 0; c < n; c++) if (seen[c]) out.push(c);
  return out;
}

/**
 * The precincts of one tile needed for `region` (reference grid) at `discard`
 * levels discarded, as one rectangle of precinct indices per (c, r), c
 * ascending then r ascending.
 *
 * Per component c: r_max = max(0, NL(c) - d). A component with fewer levels
 * than d keeps only its resolution 0 (its coarsest image, still coarser-or-
 * equal data the client can upsample) rather than vanishing from the view.
 * The region is projected to the tile-component (ceil(x/XRsiz)) and to each
 * resolution r <= r_max (ceil(x/2^(NL-r))). When that projection at r_max
 * holds no sample of this tile the component gives nothing here (the filter
 * does not cross tile edges). Otherwise each resolution's projection is
 * widened by the filter reach (none when r_max = 0: no synthesis happens),
 * clipped to the resolution, and mapped to precinct columns
 * floor(x0/2^PPx) - floor(trx0/2^PPx) ... floor((x1-1)/2^PPx) - floor(trx0/2^PPx):
 * with a zero reach a window ending on a precinct edge does not take the next one.
 */
export function windowPrecinctRanges(geom: TileGeometry, region: Rect, discard: number, opts: WindowOptions = {}): PrecinctRange[] {
  if (!Number.isInteger(discard) || discard < 0) throw new RangeError(`discard levels ${discard}`);
  const fr = opts.filterReach;
  if (fr !== undefined && fr !== 'auto' && !(Number.isSafeInteger(fr) && fr >= 0)) throw new RangeError(`filter reach ${fr}`);
  const comps = wantedComponents(geom.numComponents, opts.components);
  const tr = geom.rect;
  if (Math.max(region.x0, tr.x0) >= Math.min(region.x1, tr.x1) || Math.max(region.y0, tr.y0) >= Math.min(region.y1, tr.y1)) return [];
  const out: PrecinctRange[] = [];
  for (const c of comps) {
    const { dx, dy } = geom.siz.components[c]!;
    const NL = geom.levels(c);
    const rmax = Math.max(0, NL - discard);
    // The region on the tile-component grid (B-12 projection).
    const cx0 = Math.ceil(region.x0 / dx);
    const cy0 = Math.ceil(region.y0 / dy);
    const cx1 = Math.ceil(region.x1 / dx);
    const cy1 = Math.ceil(region.y1 / dy);
    const top = geom.resolutionRect(c, rmax);
    const f = 2 ** (NL - rmax);
    if (
      Math.max(Math.ceil(cx0 / f), top.x0) >= Math.min(Math.ceil(cx1 / f), top.x1) ||
      Math.max(Math.ceil(cy0 / f), top.y0) >= Math.min(Math.ceil(cy1 / f), top.y1)
    ) {
      continue;
    }
    const reach = rmax === 0 ? 0 : reachOf(opts, c);
    for (let r = 0; r <= rmax; r++) {
      const res = geom.resolutionRect(c, r);
      const g = 2 ** (NL - r);
      const x0 = Math.max(res.x0, Math.ceil(cx0 / g) - reach);
      const y0 = Math.max(res.y0, Math.ceil(cy0 / g) - reach);
      const x1 = Math.min(res.x1, Math.ceil(cx1 / g) + reach);
      const y1 = Math.min(res.y1, Math.ceil(cy1 / g) + reach);
      if (x1 <= x0 || y1 <= y0) continue;
      const grid = geom.precinctGrid(c, r);
      const { ppx, ppy } = geom.precinctExponents(c, r);
      const w = 2 ** ppx;
      const h = 2 ** ppy;
      out.push({
        c,
        r,
        px0: Math.floor(x0 / w) - grid.firstX,
        py0: Math.floor(y0 / h) - grid.firstY,
        px1: Math.floor((x1 - 1) / w) - grid.firstX + 1,
        py1: Math.floor((y1 - 1) / h) - grid.firstY + 1,
        numX: grid.numX,
        seq0: geom.precinctsBefore(c, r),
      });
    }
  }
  return out;
}

/** {@link windowPrecinctRanges} expanded: one entry per precinct, c then r ascending, raster order within. */
export function windowPrecincts(geom: TileGeometry, region: Rect, discard: number, opts: WindowOptions = {}): WindowPrecinct[] {
  const out: WindowPrecinct[] = [];
  for (const g of windowPrecinctRanges(geom, region, discard, opts)) {
    for (let py = g.py0; py < g.py1; py++) {
      for (let px = g.px0; px < g.px1; px++) {
        const p = py * g.numX + px;
        out.push({ c: g.c, r: g.r, p, s: g.seq0 + p });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Whole-view plan and delivery order
// ---------------------------------------------------------------------------

export interface TilePlan {
  readonly tile: number;
  readonly geom: TileGeometry;
  readonly precincts: readonly WindowPrecinct[];
}

export interface PlanOptions {
  components?: readonly number[] | undefined;
  filterReach?: FilterReach | undefined;
}

/**
 * The precincts of a view, per tile (raster order). `tileOf(t)` gives the
 * tile's geometry and, for filterReach 'auto', its coding style. Tiles that
 * overlap the region but hold no precinct for it (no sample of theirs falls
 * in the window at the kept resolutions) are left out.
 */
export function planWindow(
  siz: Siz,
  view: Pick<View, 'region' | 'discard' | 'empty'>,
  tileOf: (t: number) => { geom: TileGeometry; coding?: TransformInfo | undefined },
  opts: PlanOptions = {},
): TilePlan[] {
  if (view.empty) return [];
  const out: TilePlan[] = [];
  for (const t of windowTiles(siz, view.region)) {
    const { geom, coding } = tileOf(t);
    const precincts = windowPrecincts(geom, view.region, view.discard, { components: opts.components, filterReach: opts.filterReach, coding });
    if (precincts.length > 0) out.push({ tile: t, geom, precincts });
  }
  return out;
}

export interface DeliveryItem {
  readonly t: number;
  readonly c: number;
  readonly r: number;
  readonly p: number;
  readonly s: number;
  /** In-class id of the precinct data-bin. */
  readonly id: number;
}

/**
 * One layer's delivery order for a plan; the server repeats it for layer 0,
 * 1, ... (LRCP inside the window: lowest frequencies of every tile first).
 * Within a layer: by resolution, coarsest first, then component, then tile
 * (raster), then precinct (raster). "Resolution" is compared as r - NL(t, c),
 * i.e. by scale, so components or tiles with different NL line up on the
 * same scale (with one NL everywhere this is plain r ascending).
 */
export function orderPrecincts(plan: readonly TilePlan[]): DeliveryItem[] {
  const items: (DeliveryItem & { key: number })[] = [];
  for (const tp of plan) {
    const g = tp.geom;
    for (const q of tp.precincts) {
      items.push({ t: tp.tile, c: q.c, r: q.r, p: q.p, s: q.s, id: precinctBinId(tp.tile, q.c, q.s, g.numComponents, g.numTiles), key: q.r - g.levels(q.c) });
    }
  }
  items.sort((a, b) => a.key - b.key || a.c - b.c || a.t - b.t || a.p - b.p);
  return items.map(({ t, c, r, p, s, id }) => ({ t, c, r, p, s, id }));
}
