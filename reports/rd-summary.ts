/**
 * Summary figures of a rate-distortion run, per window and server:
 * PSNR at fixed byte budgets, bytes needed to reach fixed PSNRs, and the
 * mean PSNR difference between each server and the reference server over
 * the byte range both curves cover.
 *
 * A curve is a step function of the bytes received in the window: at b
 * bytes the client shows what it decoded after the last response that
 * brought it to at most b bytes. An infinite PSNR (exact) counts, in
 * differences, as the PSNR of one sample off by one in the window,
 * 10·log10(peak²·samples): just above any PSNR an inexact reconstruction
 * can reach, so a difference stays finite and ranks servers correctly.
 */
import type { RdPoint, RdWindowSpec } from './rd-result.js';

export interface RdSummaryOptions {
  /** Byte budgets (per window). Default: powers of two from 1 KiB to the largest window total (at most 16). */
  budgets?: number[] | undefined;
  /** PSNR targets (dB). Default 25, 30, 35, 40, 50. */
  psnrTargets?: number[] | undefined;
  /** Server every other is compared with. Default: the first. */
  reference?: string | undefined;
}

export interface WindowServerSummary {
  server: string;
  window: number;
  points: number;
  /** Bytes the window took (its last point). */
  bytes: number;
  /** PSNR of the last point (Infinity = exact, null = nothing decodable). */
  finalPsnr: number | null;
  psnrAtBudget: { bytes: number; psnr: number | null }[];
  bytesToPsnr: { psnr: number; bytes: number | null }[];
  /** Bytes after which the window decoded exactly (null: never). */
  bytesToExact: number | null;
}

export interface WindowComparison {
  window: number;
  server: string;
  reference: string;
  /** The byte range compared, or null when the curves share none. */
  from: number | null;
  to: number | null;
  /** Mean of (server − reference) PSNR over the range, dB (positive: the server is better). */
  meanPsnrDiff: number | null;
}

export interface ServerComparison {
  server: string;
  reference: string;
  /** Mean over the windows that have one of their meanPsnrDiff. */
  meanPsnrDiff: number | null;
  windows: number;
}

export interface RdSummary {
  budgets: number[];
  psnrTargets: number[];
  reference: string | null;
  /** Per window: the dB value an exact reconstruction counts as in differences. */
  exactAsDb: number[];
  windows: WindowServerSummary[];
  comparisons: WindowComparison[];
  servers: ServerComparison[];
}

const DEFAULT_TARGETS = [25, 30, 35, 40, 50];
const MAX_BUDGETS = 16;

/** Powers of two from 1 KiB up to the first one >= max (at most 16, thinned evenly when more). */
export function defaultBudgets(max: number): number[] {
  const out: number[] = [];
  for (let b = 1024; out.length < 64; b *= 2) {
    out.push(b);
    if (b >= max) break;
  }
  if (out.length <= MAX_BUDGETS) return out;
  const step = Math.ceil(out.length / MAX_BUDGETS);
  return out.filter((_, i) => i % step === 0 || i === out.length - 1);
}

/** The PSNR an exact reconstruction counts as: one sample off by one in `samples` samples. */
export function exactAsDb(bitDepth: number, samples: number): number {
  const peak = 2 ** bitDepth - 1;
  return 10 * Math.log10(peak * peak * Math.max(1, samples));
}

/** A window's curve: points sorted by bytes (they are, as received). */
type Curve = readonly Pick<RdPoint, 'windowBytes' | 'psnr'>[];

/** PSNR shown after `bytes` bytes: the last point at or below it (null when none, or not decodable). */
export function psnrAt(curve: Curve, bytes: number): number | null {
  let v: number | null = null;
  for (const p of curve) {
    if (p.windowBytes > bytes) break;
    v = p.psnr;
  }
  return v;
}

/** Bytes of the first point reaching `target` dB (null: never). */
export function bytesToReach(curve: Curve, target: number): number | null {
  for (const p of curve) if (p.psnr !== null && p.psnr >= target) return p.windowBytes;
  return null;
}

/**
 * Mean of b − a over the bytes both curves cover: from the first byte count
 * at which both show something decodable, to the smaller of their last
 * byte counts; a curve whose window is `done` keeps its last value beyond
 * its last point, so the range runs to the other's end. Infinite values
 * count as `exact`. Null when the range is empty. When it is a single
 * point, the difference there.
 */
export function meanDifference(a: Curve, aDone: boolean, b: Curve, bDone: boolean, exact: number): { from: number; to: number; mean: number } | null {
  const firstA = a.find((p) => p.psnr !== null);
  const firstB = b.find((p) => p.psnr !== null);
  const lastA = a.at(-1);
  const lastB = b.at(-1);
  if (!firstA || !firstB || !lastA || !lastB) return null;
  const from = Math.max(firstA.windowBytes, firstB.windowBytes);
  const endA = aDone ? Infinity : lastA.windowBytes;
  const endB = bDone ? Infinity : lastB.windowBytes;
  let to = Math.min(endA, endB);
  if (to === Infinity) to = Math.max(lastA.windowBytes, lastB.windowBytes);
  if (to < from) return null;
  // Null inside the range (a decode that failed) leaves that stretch out of the mean.
  const val = (c: Curve, x: number): number | null => {
    const v = psnrAt(c, x);
    return v === null ? null : Math.min(v, exact);
  };
  const diff = (x: number): number | null => {
    const va = val(a, x);
    const vb = val(b, x);
    return va === null || vb === null ? null : vb - va;
  };
  if (to === from) {
    const d = diff(from);
    return d === null ? null : { from, to, mean: d };
  }
  const cuts = new Set<number>([from, to]);
  for (const p of a) if (p.windowBytes > from && p.windowBytes < to) cuts.add(p.windowBytes);
  for (const p of b) if (p.windowBytes > from && p.windowBytes < to) cuts.add(p.windowBytes);
  const xs = [...cuts].sort((x, y) => x - y);
  let sum = 0;
  let span = 0;
  for (let i = 0; i + 1 < xs.length; i++) {
    const d = diff(xs[i]!);
    if (d === null) continue;
    sum += d * (xs[i + 1]! - xs[i]!);
    span += xs[i + 1]! - xs[i]!;
  }
  return span === 0 ? null : { from, to, mean: sum / span };
}

export interface SummaryInput {
  windows: readonly RdWindowSpec[];
  servers: readonly { name: string; windows: readonly { window: number; stop: string }[] }[];
  points: readonly RdPoint[];
  bitDepth: number;
}

/** Computes the summary of a run. */
export function summarize(input: SummaryInput, opts: RdSummaryOptions = {}): RdSummary {
  const curves = new Map<string, RdPoint[]>();
  const key = (s: string, w: number): string => `${w}\u0000${s}`;
  for (const p of input.points) {
    const k = key(p.server, p.window);
    let c = curves.get(k);
    if (!c) curves.set(k, (c = []));
    c.push(p);
  }
  let maxBytes = 0;
  for (const c of curves.values()) maxBytes = Math.max(maxBytes, c.at(-1)!.windowBytes);
  const budgets = [...(opts.budgets ?? defaultBudgets(maxBytes))].sort((a, b) => a - b);
  const psnrTargets = [...(opts.psnrTargets ?? DEFAULT_TARGETS)].sort((a, b) => a - b);
  const names = input.servers.map((s) => s.name);
  const reference = opts.reference ?? names[0] ?? null;
  if (reference !== null && !names.includes(reference)) throw new RangeError(`reference server '${reference}' is not among ${names.join(', ')}`);
  const exact = input.windows.map((w) => exactAsDb(input.bitDepth, w.samples));
  const done = (s: string, w: number): boolean => input.servers.find((x) => x.name === s)?.windows.find((x) => x.window === w)?.stop === 'window-done';

  const windows: WindowServerSummary[] = [];
  const comparisons: WindowComparison[] = [];
  for (let w = 0; w < input.windows.length; w++) {
    for (const s of names) {
      const c = curves.get(key(s, w));
      if (!c) continue;
      windows.push({
        server: s,
        window: w,
        points: c.length,
        bytes: c.at(-1)!.windowBytes,
        finalPsnr: c.at(-1)!.psnr,
        psnrAtBudget: budgets.map((b) => ({ bytes: b, psnr: psnrAt(c, b) })),
        bytesToPsnr: psnrTargets.map((t) => ({ psnr: t, bytes: bytesToReach(c, t) })),
        bytesToExact: bytesToReach(c, Infinity),
      });
    }
    if (reference === null) continue;
    const ref = curves.get(key(reference, w));
    for (const s of names) {
      if (s === reference) continue;
      const c = curves.get(key(s, w));
      const d = ref && c ? meanDifference(ref, done(reference, w), c, done(s, w), exact[w]!) : null;
      comparisons.push({ window: w, server: s, reference, from: d?.from ?? null, to: d?.to ?? null, meanPsnrDiff: d?.mean ?? null });
    }
  }
  const servers: ServerComparison[] = [];
  if (reference !== null) {
    for (const s of names) {
      if (s === reference) continue;
      const ds = comparisons.filter((c) => c.server === s && c.meanPsnrDiff !== null).map((c) => c.meanPsnrDiff!);
      servers.push({ server: s, reference, windows: ds.length, meanPsnrDiff: ds.length ? ds.reduce((a, b) => a + b, 0) / ds.length : null });
    }
  }
  return { budgets, psnrTargets, reference, exactAsDb: exact, windows, comparisons, servers };
}
