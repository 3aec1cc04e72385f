import { BIN_CLASS, EOR, STREAM_TYPE } from '../jpip/constants.js';
import type { DataBinStore } from '../jpip/databins.js';
import { parseMainHeaderBin } from '../jpip/reassemble.js';
import type { JpipRequest, MetaRequest, SampledRange } from '../jpip/request.js';
import { parseBoxes } from '../jpeg2000/boxes.js';
import { resolutionSizeAtDiscard } from '../jpeg2000/geometry.js';
import type { Siz } from '../jpeg2000/markers.js';
import { OPEN_FIELDS, type ClientError, type JpipClient, type JpipResponse } from './client.js';

/**
 * What one simulated client asks for, request after request: the paper's
 * movie player (the default), and JHelioviewer's exact sequence. A pattern is
 * an async function over a `PatternContext`, which the crowd provides: it
 * sends (and measures) requests, says when the session is over, and applies
 * the retry policy. Patterns hold no timers and no counters of their own.
 */

/** What a client knows of a movie before it starts. */
export interface MovieInfo {
  /** Path of the movie on the server (as in the URL, unescaped). */
  target: string;
  /** Codestreams (frames). */
  frames: number;
  /** Frame size at each discard level 0..levels (index = levels discarded). */
  sizes: { width: number; height: number }[];
}

export interface PatternOptions {
  /** Consecutive frames per request (paper pattern). */
  framesPerQuery: number;
  /** Window size, clipped to the frame at `level`. */
  woi: { w: number; h: number };
  /** Resolution levels discarded (0 = full size). */
  level: number;
  /** Byte limit per request. */
  len: number;
}

export interface PatternContext {
  readonly clientId: number;
  readonly movie: MovieInfo;
  readonly opts: PatternOptions;
  /** The client of the current connection (replaced by `reconnect`). */
  readonly client: JpipClient;
  /** True once the session's time is up or the run stops. */
  stopped(): boolean;
  /** Sends one request (measured); a status other than 200 or any failure throws ClientError. */
  send(fields: Partial<JpipRequest>, target?: string): Promise<JpipResponse>;
  /** The server granted a channel. */
  sessionOpened(): void;
  /** The channel was given up without cclose (after an error or EOR 6). */
  sessionAbandoned(): void;
  /** The server said a window is complete (EOR 1 or 2). */
  windowDone(): void;
  /** Sends cclose for the open channel (counted, not in the latency histogram). */
  close(): Promise<void>;
  /**
   * After a failure: counts a retry and waits a little, or returns false when
   * the client must give up (`limit` failures in a row, or the session is over).
   */
  retry(err: ClientError, failuresInARow: number, limit?: number): Promise<boolean>;
  /** Drops the connection and opens a new one (new transport and client). */
  reconnect(): Promise<void>;
}

export type Pattern = (ctx: PatternContext) => Promise<void>;

export const PATTERN_NAMES = ['paper', 'jhelioviewer'] as const;
export type PatternName = (typeof PATTERN_NAMES)[number];

const isDone = (r: JpipResponse): boolean => r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE;

// ---------------------------------------------------------------------------
// Movie facts from what a client received

/**
 * The number of codestreams a file has, from its metadata-bin 0: the
 * placeholder boxes (phld) that stand for codestreams (flag 4) name a
 * codestream id (CSID), and with flag 8 a count (NCS). Undefined when there
 * is no placeholder (a raw codestream, or a server that sends none).
 */
export function codestreamCountFromMetadata(bin0: Uint8Array): number | undefined {
  let count: number | undefined;
  let boxes;
  try {
    boxes = parseBoxes(bin0, { superboxes: new Set() });
  } catch {
    return undefined;
  }
  for (const b of boxes) {
    if (b.type !== 'phld' || b.contentLength < 12 + 8 + 16 + 8) continue;
    const c = bin0.subarray(b.contentOffset, b.contentOffset + b.contentLength);
    const dv = new DataView(c.buffer, c.byteOffset, c.byteLength);
    const flags = dv.getUint32(0);
    if ((flags & 4) === 0) continue;
    // Flags(4) OrigID(8) OrigBH(8, or 16 when its LBox is 1) EquivID(8) EquivBH(8) CSID(8) [NCS(4)]
    const origBh = dv.getUint32(12) === 1 ? 16 : 8;
    const at = 12 + origBh + 16;
    if (at + 8 > c.length) continue;
    const csid = dv.getUint32(at) * 2 ** 32 + dv.getUint32(at + 4);
    const ncs = (flags & 8) !== 0 && at + 12 <= c.length ? dv.getUint32(at + 8) : 1;
    count = Math.max(count ?? 0, csid + Math.max(1, ncs));
  }
  return count;
}

/** Frame sizes at discard levels 0..levels of a main header's SIZ. */
export function frameSizes(siz: Siz, levels: number): { width: number; height: number }[] {
  const out: { width: number; height: number }[] = [];
  for (let d = 0; d <= levels; d++) out.push(resolutionSizeAtDiscard(siz, d));
  return out;
}

/** SIZ and the fewest decomposition levels of the main header of codestream `cs`, if the store holds it whole. */
export function mainHeaderFacts(store: DataBinStore, cs = 0): { siz: Siz; levels: number } | undefined {
  const bin = store.get(cs, BIN_CLASS.MAIN_HEADER, 0);
  if (!bin?.complete) return undefined;
  const main = parseMainHeaderBin(bin.bytes());
  let levels = main.cod.coding.levels;
  for (const coc of main.coc) if (coc) levels = Math.min(levels, coc.levels);
  return { siz: main.siz, levels };
}

/** metareq=[*]!! : every box of metadata-bin 0, metadata only (JHelioviewer's step 2). */
export const ALL_METADATA: MetaRequest = { groups: [{ boxes: [{ boxType: '*', priority: false }] }], metadataOnly: true };

/** A single codestream as a stream= value. */
export const one = (i: number): SampledRange[] => [{ from: i, to: i, step: 1 }];

// ---------------------------------------------------------------------------
// The paper's movie player

/**
 * `count` consecutive frames from `first`, wrapping around a movie of
 * `frames` frames: one range, or two when the run passes the end; all
 * frames when count >= frames.
 */
export function frameRanges(first: number, count: number, frames: number): SampledRange[] {
  if (count >= frames) return [{ from: 0, to: frames - 1, step: 1 }];
  const last = first + count - 1;
  if (last < frames) return [{ from: first, to: last, step: 1 }];
  return [
    { from: first, to: frames - 1, step: 1 },
    { from: 0, to: last - frames, step: 1 },
  ];
}

/** The view-window fields of the paper pattern: the frame at `level`, a woi from (0,0) clipped to it. */
export function paperWindow(movie: MovieInfo, opts: PatternOptions): Pick<JpipRequest, 'fsiz' | 'roff' | 'rsiz'> {
  const size = movie.sizes[opts.level];
  if (!size) throw new RangeError(`level ${opts.level}: ${movie.target} has ${movie.sizes.length - 1} resolution levels to discard`);
  return {
    fsiz: { fx: size.width, fy: size.height, round: 'closest' },
    roff: { x: 0, y: 0 },
    rsiz: { w: Math.min(opts.woi.w, size.width), h: Math.min(opts.woi.h, size.height) },
  };
}

/**
 * The paper's client: opens a channel with its first window, then asks for
 * `framesPerQuery` consecutive frames per request with the same window,
 * moving to the next frames when the server says the window is done (EOR 1
 * or 2) and asking again otherwise, wrapping around the movie, until its
 * time is up; then cclose. After a failure it retries on a new channel (the
 * old one may be out of step with what arrived).
 */
export const paperPattern: Pattern = async (ctx) => {
  const { movie, opts } = ctx;
  const win = paperWindow(movie, opts);
  let first = 0;
  let open = false;
  let failures = 0;
  while (!ctx.stopped()) {
    const fields: Partial<JpipRequest> = { stream: frameRanges(first, opts.framesPerQuery, movie.frames), ...win, len: opts.len };
    let r: JpipResponse;
    try {
      r = open ? await ctx.send(fields) : await ctx.send({ ...OPEN_FIELDS, ...fields }, movie.target);
    } catch (e) {
      // The run or the session ended while the request waited or ran: close as usual.
      if ((e as ClientError).kind === 'aborted') break;
      if (open) ctx.sessionAbandoned();
      open = false;
      if (!(await ctx.retry(e as ClientError, ++failures))) return;
      continue;
    }
    if (!open) {
      open = true;
      ctx.sessionOpened();
    }
    failures = 0;
    if (isDone(r)) {
      ctx.windowDone();
      first = (first + opts.framesPerQuery) % movie.frames;
    } else if (r.eor === EOR.SESSION_LIMIT_REACHED) {
      // The server ended the channel: open another.
      ctx.sessionAbandoned();
      open = false;
    }
  }
  if (open) await ctx.close();
};

// ---------------------------------------------------------------------------
// JHelioviewer

/** Most requests one step of the JHelioviewer sequence repeats before going on. */
const MAX_STEP_ROUNDS = 100;
/** JHelioviewer retries up to 13 times in a row, each time on a new connection. */
export const JHV_MAX_RETRIES = 13;
/** The request headers JHelioviewer sends (Host and Connection come with the connection). */
export const JHV_HEADERS: Readonly<Record<string, string>> = {
  'User-Agent': 'JHelioviewer-SWHV (jpip-bench simulator)',
  'Accept-Encoding': 'gzip',
  'Cache-Control': 'no-cache',
};

/**
 * The incomplete frames in JHelioviewer's movie-mode order: round-robin
 * starting at the first partial frame (else the first incomplete one).
 */
export function roundRobinOrder(frames: number, complete: ReadonlySet<number>, partial: ReadonlySet<number>): number[] {
  const todo: number[] = [];
  for (let i = 0; i < frames; i++) if (!complete.has(i)) todo.push(i);
  const start = Math.max(0, todo.findIndex((i) => partial.has(i)));
  return [...todo.slice(start), ...todo.slice(0, start)];
}

/**
 * JHelioviewer's exact request sequence (jpip-protocol.md section 7):
 * 1 cnew with tid=0 and len=512; 2 metareq=[*]!! on stream 0 until EOR 1/2;
 * 3 a 64x64 view of stream 0 until EOR 1/2 or the main header is complete;
 * 4 in movie mode, the whole frame at the chosen level, one frame per
 * request, round-robin over the incomplete frames (a frame drops out after
 * EOR 1/2); 5 cclose=C&len=0 once every frame is complete (or the session's
 * time is up). On any error it drops the connection, reconnects with a new
 * cnew and starts again, up to 13 times in a row; completed frames stay in
 * its local cache and are not asked for again.
 */
export const jhelioviewerPattern: Pattern = async (ctx) => {
  const { movie, opts } = ctx;
  const complete = new Set<number>();
  const partial = new Set<number>();
  let failures = 0;
  let open = false;
  const sendOk = async (fields: Partial<JpipRequest>, target?: string): Promise<JpipResponse> => {
    const r = await ctx.send(fields, target);
    failures = 0;
    return r;
  };
  while (!ctx.stopped()) {
    try {
      // 1
      await sendOk({ cnew: ['http'], type: [{ name: STREAM_TYPE.JPP, ext: false }], tid: '0', len: 512 }, movie.target);
      open = true;
      ctx.sessionOpened();
      // 2
      for (let n = 0; n < MAX_STEP_ROUNDS && !ctx.stopped(); n++) {
        if (isDone(await sendOk({ stream: one(0), metareq: ALL_METADATA, len: 2000000 }))) break;
      }
      const bin0 = ctx.client.store.get(0, BIN_CLASS.METADATA, 0);
      const frames = (bin0 && codestreamCountFromMetadata(bin0.bytes())) ?? movie.frames;
      // 3
      const small = { stream: one(0), fsiz: { fx: 64, fy: 64, round: 'closest' as const }, rsiz: { w: 64, h: 64 }, roff: { x: 0, y: 0 }, len: 2097152 };
      for (let n = 0; n < MAX_STEP_ROUNDS && !ctx.stopped(); n++) {
        const r = await sendOk(small);
        if (isDone(r) || mainHeaderFacts(ctx.client.store) !== undefined) break;
      }
      const facts = mainHeaderFacts(ctx.client.store);
      const size = facts ? resolutionSizeAtDiscard(facts.siz, Math.min(opts.level, facts.levels)) : movie.sizes[Math.min(opts.level, movie.sizes.length - 1)]!;
      const view = { fsiz: { fx: size.width, fy: size.height, round: 'closest' as const }, rsiz: { w: size.width, h: size.height }, roff: { x: 0, y: 0 }, len: 2097152 };
      // 4
      let order = roundRobinOrder(frames, complete, partial);
      let k = 0;
      while (order.length > 0 && !ctx.stopped()) {
        const i = order[k % order.length]!;
        const r = await sendOk({ stream: one(i), ...view });
        if (isDone(r)) {
          ctx.windowDone();
          complete.add(i);
          partial.delete(i);
          order = order.filter((x) => x !== i);
          // The next frame after i, which now sits at the same position.
        } else {
          partial.add(i);
          k++;
        }
        if (order.length > 0) k %= order.length;
      }
      // 5
      await ctx.close();
      open = false;
      return;
    } catch (e) {
      if ((e as ClientError).kind === 'aborted') break;
      if (open) ctx.sessionAbandoned();
      open = false;
      // The limit is the run's maxRetries (--retries; JHV_MAX_RETRIES when not given).
      if (!(await ctx.retry(e as ClientError, ++failures))) return;
      await ctx.reconnect();
    }
  }
  if (open) await ctx.close();
};

export const PATTERNS: Readonly<Record<PatternName, Pattern>> = { paper: paperPattern, jhelioviewer: jhelioviewerPattern };
