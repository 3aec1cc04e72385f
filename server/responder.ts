import { BIN_CLASS, EOR, type StreamType } from '../jpip/constants.js';
import { COMPLETE, binKey, type CacheModel } from '../jpip/cache-model.js';
import { mainHeaderBin, precinctBin, rangesLength, tileBin, tileHeaderBin, type ByteRange, type PrecinctBin } from '../jpip/databin-map.js';
import { JpipError } from '../jpip/errors.js';
import { MAX_HEADER_LENGTH, MessageWriter, encodeEor, type MessageHeader } from '../jpip/messages.js';
import { fullView, maxDiscardLevels, orderPrecincts, planWindow, resolveView, type DeliveryItem, type TilePlan, type View, type ViewRequest } from '../jpip/window.js';
import type { CodestreamIndex } from '../jpeg2000/packet-index.js';
import { readInto, type RandomAccess } from '../jpeg2000/source.js';
import type { CodestreamHandle, ImageEntry } from './images.js';

/**
 * Turns one request into the messages of its response: metadata-bin 0, the
 * main header of every requested codestream, the tile headers, then the
 * precincts of the window layer by layer (LRCP inside the window, codestreams
 * interleaved packet by packet), skipping what the client's cache model says
 * it holds, within the `len` byte budget. Ends with an EOR whose reason is
 * the truth: 1 image done, 2 window done, 4 byte limit.
 *
 * The body comes out as chunks; each chunk carries the cache-model updates of
 * the messages it holds, which the caller commits once the whole response is
 * written (a client takes a cut response for a failed one).
 */

export interface ResponseInput {
  type: StreamType;
  /** Codestreams to serve, in the order the client asked for them. */
  codestreams: number[];
  view: ViewRequest;
  /** Highest number of quality layers to send (undefined: all). */
  layers: number | undefined;
  /** Components (undefined: all). */
  comps: number[] | undefined;
  /** Byte budget of the body (messages, EOR excluded). */
  len: number;
  /** The budget is the server's cap, smaller than the client's len: running out of it is EOR 7, not 4. */
  capped?: boolean;
  /** Send metadata-bin 0 (always, first) and, with `metadataOnly`, nothing else. */
  metadataOnly: boolean;
}

/** What the server reports about the window it served (JPIP-fsiz/roff/rsiz, JPIP-layers). */
export interface ServedWindow {
  view: View | undefined;
  /** Layers actually available, when the request asked for more. */
  layers: number | undefined;
}

export interface ModelUpdate {
  codestream: number;
  classId: number;
  binId: number;
  held: number;
}

export interface BodyChunk {
  /** Messages; the model updates below are those of the bins whose sending ended in this chunk. */
  bytes: Uint8Array;
  /** The whole buffer `bytes` is a view of: give it back to the pool once its write completed. */
  buffer?: Uint8Array;
  updates: ModelUpdate[];
  /** On the last chunk: the reason of the EOR that ends the body. */
  eor?: number;
  /**
   * With `deferReads`: image bytes not copied into `buffer` yet. Before the chunk is written,
   * a thread fills them (`threadReads`) or the main thread does (`performReads`).
   */
  reads?: DeferredReads;
}

/** Reads a chunk still needs: read i copies `at[3i+1]` bytes at `at[3i]` of `srcs[i]` into the chunk's buffer at `at[3i+2]`. */
export interface DeferredReads {
  srcs: RandomAccess[];
  at: number[];
  /** Bytes to read in all. */
  bytes: number;
}

export interface ResponsePlan {
  served: ServedWindow;
  /** Produces the body. Reads the image files synchronously as it goes. */
  body(): Generator<BodyChunk, void, void>;
}

export interface ResponderOptions {
  /** Bytes per body chunk. */
  chunkSize: number;
  /** Where chunk buffers come from (a pool: see BodyChunk.buffer); default: new ones. */
  alloc?: (size: number) => Uint8Array;
  /**
   * Leave the copies of image bytes from files (sources with an `fd`) to the caller: chunks come
   * out with `reads` (message headers and other bytes are in place). Bounds are checked here, so a
   * read out of its codestream still fails while the body is produced.
   */
  deferReads?: boolean;
}

/** A data-bin to send: where its bytes are, and up to which byte this response may go. */
interface BinJob {
  codestream: number;
  classId: number;
  binId: number;
  src: RandomAccess | Uint8Array;
  ranges: ByteRange[];
  /** Total bin length: the message holding its last byte sets the completeness bit. */
  total: number;
  /** Send up to this many bytes of the bin. */
  upTo: number;
}

export function planResponse(entry: ImageEntry, input: ResponseInput, model: CacheModel, opts: ResponderOptions): ResponsePlan {
  const handles = new Map<number, CodestreamHandle>();
  const handle = (i: number): CodestreamHandle => {
    let h = handles.get(i);
    if (!h) {
      h = entry.codestream(i);
      handles.set(i, h);
    }
    return h;
  };
  for (const i of input.codestreams) {
    if (!Number.isInteger(i) || i < 0 || i >= entry.codestreamCount) {
      throw new JpipError('BAD_FIELD', `codestream ${i} does not exist (the target has ${entry.codestreamCount})`, 'stream');
    }
  }
  const first = input.codestreams.length > 0 ? handle(input.codestreams[0]!) : undefined;
  let view: View | undefined;
  let availableLayers: number | undefined;
  if (first && !input.metadataOnly) {
    const siz = first.layout.main.siz;
    const codings = first.layout.tiles.map((_, t) => first.index.tile(t).coding);
    const maxD = maxDiscardLevels(codings);
    view = input.view.fsiz ? resolveView(siz, maxD, input.view) : fullView(siz);
    const layers = Math.max(...codings.map((c) => c.layers));
    if (input.layers !== undefined && input.layers > layers) availableLayers = layers;
  }

  return {
    served: { view, layers: availableLayers },
    // A generator function made here would be a new closure per plan, each with its own prototype
    // object: ~0.8 us a response, measured. A module-level one is made once.
    body: () => produceBody(entry, input, model, opts, handle, view),
  };
}

/** The body of a plan (planResponse): chunks in order, the last with the EOR. */
function* produceBody(entry: ImageEntry, input: ResponseInput, model: CacheModel, opts: ResponderOptions, handle: (i: number) => CodestreamHandle, view: View | undefined): Generator<BodyChunk, void, void> {
  const writer = new MessageWriter();
  let budget = input.len;
  // Not zero-filled: every byte handed out is written first. No bigger than what the rest of the
  // budget can fill (a 20 KB reply does not take a 64 KB buffer), with room for the EOR.
  const alloc = opts.alloc ?? ((n: number): Uint8Array => Buffer.allocUnsafe(n));
  const allocate = (): Uint8Array => alloc(Math.max(256, Math.min(opts.chunkSize, budget + 64)));
  let chunk: Uint8Array = allocate();
  let fill = 0;
  let updates: ModelUpdate[] = [];
  let reads: DeferredReads | undefined;
  const defer = opts.deferReads
    ? (src: RandomAccess, pos: number, len: number, outPos: number): void => {
        reads ??= { srcs: [], at: [], bytes: 0 };
        reads.srcs.push(src);
        reads.at.push(pos, len, outPos);
        reads.bytes += len;
      }
    : undefined;
  /** The chunk being filled, handed out: its bytes, buffer, updates and reads. */
  const seal = (extra?: { eor: number }): BodyChunk => {
    const c: BodyChunk = { bytes: chunk.subarray(0, fill), buffer: chunk, updates, ...extra };
    if (reads) c.reads = reads;
    reads = undefined;
    return c;
  };
  /** Full chunks waiting to be handed out (the generator yields them between bins). */
  const ready: BodyChunk[] = [];
  /** Bytes held after what this response has queued so far, by the model's bin key. */
  const overlay = new Map<number | string, number>();
  const limitReason = input.capped ? EOR.RESPONSE_LIMIT_REACHED : EOR.BYTE_LIMIT_REACHED;

  const flush = (): void => {
    if (fill > 0) {
      ready.push(seal());
      chunk = allocate();
      fill = 0;
      updates = [];
    }
  };
  const drain = function* (): Generator<BodyChunk, void, void> {
    for (const c of ready.splice(0)) yield c;
  };

  /** When sendFrom returns -1: what the client holds of that bin after the messages it did send. */
  let partial = 0;
  /** One message header, refilled for every message (a 15-frame reply has thousands: no object each). */
  const hdr: MessageHeader = { classId: 0, codestream: 0, binId: 0, offset: 0, length: 0, complete: false };
  /** The model update of a bin sent from `from` to `held` bytes (none if nothing was sent). */
  const note = (job: BinJob, from: number, held: number): void => {
    if (held !== from) updates.push({ codestream: job.codestream, classId: job.classId, binId: job.binId, held });
  };
  /**
   * Queues bytes [held, upTo) of a bin the client holds `held` bytes of, as far as the budget
   * allows. Returns what the client will hold after this response, or -1 when the budget is spent
   * (then `partial`). With `record`, adds the bin's model update to the chunk.
   */
  const sendFrom = (job: BinJob, held: number, record = true): number => {
    if (held === COMPLETE) return held;
    const target = Math.min(job.upTo, job.total);
    // An empty, complete bin (an empty tile header, an empty metadata-bin 0) is still announced once.
    if (held >= target && !(job.total === 0 && target === 0)) return held;
    // One model update per bin and call (not one per message): what the client holds after it.
    const from = held;
    while (held < target || (job.total === 0 && held === 0)) {
      if (budget < MAX_HEADER_LENGTH + 1 && !(job.total === 0 && budget >= MAX_HEADER_LENGTH)) {
        if (record) note(job, from, held);
        partial = held;
        return -1;
      }
      if (chunk.length - fill < MAX_HEADER_LENGTH + Math.min(target - held, 1)) flush();
      const room = Math.min(budget - MAX_HEADER_LENGTH, chunk.length - MAX_HEADER_LENGTH);
      const n = Math.min(target - held, room, chunk.length - fill - MAX_HEADER_LENGTH);
      const complete = held + n === job.total;
      const start = fill;
      hdr.classId = job.classId;
      hdr.codestream = job.codestream;
      hdr.binId = job.binId;
      hdr.offset = held;
      hdr.length = n;
      hdr.complete = complete;
      fill = writer.writeHeader(hdr, chunk, fill);
      copyBin(job, held, n, chunk, fill, defer);
      fill += n;
      budget -= fill - start;
      held = complete ? COMPLETE : held + n;
      if (complete) break;
      if (fill >= chunk.length - MAX_HEADER_LENGTH) flush();
    }
    if (record) note(job, from, held);
    return held;
  };

  /** sendFrom for a bin whose held bytes are looked up (this response's progress, else the model). False when the budget is spent. */
  const send = (job: BinJob): boolean => {
    const key = binKey(job.codestream, job.classId, job.binId);
    const before = overlay.get(key) ?? model.held(job.codestream, job.classId, job.binId);
    const after = sendFrom(job, before);
    if (after < 0) return false;
    if (after !== before) overlay.set(key, after);
    return true;
  };

  const finish = function* (reason: number): Generator<BodyChunk, void, void> {
    const eor = encodeEor(reason);
    if (chunk.length - fill < eor.length) flush();
    yield* drain();
    chunk.set(eor, fill);
    fill += eor.length;
    yield seal({ eor: reason });
  };

  // 1. Metadata-bin 0, first, always (also for raw codestreams: then it is empty).
  const meta = entry.metadata();
  if (!send({ codestream: 0, classId: BIN_CLASS.METADATA, binId: 0, src: meta, ranges: [{ offset: 0, length: meta.length }], total: meta.length, upTo: meta.length })) {
    return yield* finish(limitReason);
  }
  if (ready.length > 0) yield* drain();
  if (input.metadataOnly || !view) return yield* finish(EOR.WINDOW_DONE);

  // 2. Main headers, then the window's tile headers, of every codestream.
  const plans = input.codestreams.map((i) => {
    const h = handle(i);
    const siz = h.layout.main.siz;
    const v = i === input.codestreams[0] ? view! : input.view.fsiz ? resolveView(siz, maxDiscardLevels(h.layout.tiles.map((_, t) => h.index.tile(t).coding)), input.view)! : fullView(siz);
    const plan = windowPlan(h, v, input.comps);
    return { i, h, view: v, tiles: plan.tiles, items: plan.items, plan };
  });
  for (const p of plans) {
    const ranges = mainHeaderBin(p.h.layout);
    const total = rangesLength(ranges);
    if (!send({ codestream: p.i, classId: BIN_CLASS.MAIN_HEADER, binId: 0, src: p.h.src, ranges, total, upTo: total })) {
      return yield* finish(limitReason);
    }
    if (ready.length > 0) yield* drain();
  }
  if (input.type === 'jpt-stream') {
    for (const p of plans) {
      for (const tp of p.tiles) {
        const ranges = tileBin(p.h.layout, tp.tile);
        const total = rangesLength(ranges);
        if (!send({ codestream: p.i, classId: BIN_CLASS.TILE, binId: tp.tile, src: p.h.src, ranges, total, upTo: total })) {
          return yield* finish(limitReason);
        }
        if (ready.length > 0) yield* drain();
      }
    }
    return yield* finish(doneReason(plans, input));
  }
  for (const p of plans) {
    for (const tp of p.tiles) {
      const ranges = tileHeaderBin(p.h.layout, tp.tile);
      const total = rangesLength(ranges);
      if (!send({ codestream: p.i, classId: BIN_CLASS.TILE_HEADER, binId: tp.tile, src: p.h.src, ranges, total, upTo: total })) {
        return yield* finish(limitReason);
      }
      if (ready.length > 0) yield* drain();
    }
  }

  // 3. Precincts, layer by layer; within a layer by resolution, component, tile, precinct; codestreams interleaved.
  const maxLayers = Math.min(input.layers ?? Infinity, Math.max(...plans.map((p) => Math.max(...p.h.layout.tiles.map((_, t) => p.h.index.tile(t).coding.layers)))));
  const bins = plans.map((p) => precinctBins(p.plan, p.h));
  // What the client holds of each precinct: looked up in the model once (first), then kept
  // here (now); the model updates are made from these at the end, one per precinct sent.
  const first = plans.map((p) => new Array<number>(p.items.length).fill(-1));
  const now = plans.map((p) => new Array<number>(p.items.length).fill(-1));
  const recordPrecincts = (): void => {
    plans.forEach((p, q) => {
      const f = first[q]!;
      const n = now[q]!;
      for (let k = 0; k < p.items.length; k++) {
        if (n[k]! >= 0 && n[k] !== f[k]) updates.push({ codestream: p.i, classId: BIN_CLASS.PRECINCT, binId: p.items[k]!.id, held: n[k]! });
      }
    });
  };
  // One job object, refilled for every precinct and layer (no allocation per message).
  const job: BinJob = { codestream: 0, classId: BIN_CLASS.PRECINCT, binId: 0, src: entry.metadata(), ranges: [], total: 0, upTo: 0 };
  const longest = Math.max(0, ...plans.map((p) => p.items.length));
  for (let l = 0; l < maxLayers; l++) {
    // Precincts that still have bytes to send in a later layer: none left (a cache hit, or a
    // window whose every layer is sent), and the remaining layer passes are skipped.
    let open = 0;
    for (let k = 0; k < longest; k++) {
      for (let q = 0; q < plans.length; q++) {
        const p = plans[q]!;
        const it = p.items[k];
        if (!it) continue;
        const bin = bins[q]![k]!;
        if (l >= bin.layerEnds.length) continue;
        const nq = now[q]!;
        let before = nq[k]!;
        if (before < 0) {
          before = model.held(p.i, BIN_CLASS.PRECINCT, it.id);
          first[q]![k] = before;
          nq[k] = before;
        }
        const last = bin.layerEnds[Math.min(maxLayers, bin.layerEnds.length) - 1]!;
        if (before === COMPLETE || (before >= last && last > 0)) continue;
        open++;
        job.codestream = p.i;
        job.binId = it.id;
        job.src = p.h.src;
        job.ranges = bin.ranges;
        job.total = bin.layerEnds[bin.layerEnds.length - 1]!;
        job.upTo = bin.layerEnds[l]!;
        const after = sendFrom(job, before, false);
        if (after < 0) {
          // The budget ran out inside this bin: what it sent of it still counts.
          nq[k] = partial;
          recordPrecincts();
          return yield* finish(limitReason);
        }
        nq[k] = after;
        if (ready.length > 0) yield* drain();
      }
    }
    if (open === 0) break;
  }
  recordPrecincts();
  return yield* finish(doneReason(plans, input));
}

/**
 * What decides a response's bytes besides the client's cache model and the byte budget: the
 * image versions (tids of the target and of the files its codestreams are in) and every field of
 * the input but `len`. A session that holds all of a window answers its repeat by this key
 * (CacheModel.windowHeld) without walking it again.
 */
export function windowKey(entry: ImageEntry, input: ResponseInput): string {
  const tids = input.codestreams.map((i) => entry.codestream(i).owner.tid).join(',');
  const v = input.view;
  return `${entry.tid}|${tids}|${input.type}|${input.metadataOnly ? 'm' : ''}|${input.codestreams.join(',')}|${JSON.stringify(v)}|${input.layers ?? '*'}|${input.comps?.join(',') ?? '*'}`;
}

/** What a window needs of one codestream: its tiles, its precincts in delivery order, and (once asked) their bins. */
interface WindowPlan {
  tiles: TilePlan[];
  items: DeliveryItem[];
  bins?: PrecinctBin[];
}

/**
 * Window plans, kept: a viewer's requests repeat (the same window of the next frame, the same
 * window again once sent), and planning one (tiles, precincts, their byte ranges in the index)
 * is most of what a small or cache-hit reply costs. Keyed by codestream index (one per open
 * image version) and view; least recently used out beyond PLAN_CACHE_ENTRIES.
 */
const PLAN_CACHE_ENTRIES = 256;
/** Most precincts the kept plans may list in all (~100 bytes each with their bins). */
const PLAN_CACHE_ITEMS = 50_000;
let planItems = 0;
const planCache = new Map<string, WindowPlan>();
const planIds = new WeakMap<CodestreamIndex, number>();
let nextPlanId = 1;

/** Window plans computed and reused since the process started (tests, metrics). */
export const windowPlanStats = { computed: 0, reused: 0 };

function windowPlan(h: CodestreamHandle, v: View, comps: number[] | undefined): WindowPlan {
  let id = planIds.get(h.index);
  if (id === undefined) {
    id = nextPlanId++;
    planIds.set(h.index, id);
  }
  const r = v.region;
  const key = `${id}|${v.discard}|${v.empty ? 'e' : ''}${r.x0},${r.y0},${r.x1},${r.y1}|${comps ? comps.join(',') : '*'}`;
  const have = planCache.get(key);
  if (have) {
    // Most recently used last (the count of items is unchanged).
    planCache.delete(key);
    planCache.set(key, have);
    windowPlanStats.reused++;
    return have;
  }
  windowPlanStats.computed++;
  const tiles = planWindow(h.layout.main.siz, v, (t) => ({ geom: h.index.tile(t).geometry, coding: h.index.tile(t).coding }), { components: comps });
  const plan: WindowPlan = { tiles, items: orderPrecincts(tiles) };
  planCache.set(key, plan);
  planItems += plan.items.length;
  // Bounded in plans and in precincts (a plan of a huge window is not kept at the expense of many).
  while (planCache.size > PLAN_CACHE_ENTRIES || (planItems > PLAN_CACHE_ITEMS && planCache.size > 1)) {
    const oldest = planCache.keys().next().value!;
    planItems -= planCache.get(oldest)!.items.length;
    planCache.delete(oldest);
  }
  return plan;
}

/** The byte ranges and layer ends of a plan's precincts (computed once per plan). */
function precinctBins(p: WindowPlan, h: CodestreamHandle): PrecinctBin[] {
  p.bins ??= p.items.map((it) => precinctBin(h.index, it.t, it.c, it.s));
  return p.bins;
}

/** 1 when the whole image (every codestream asked, full size, all layers and components) is now sent, else 2. */
function doneReason(plans: { view: View; h: CodestreamHandle }[], input: ResponseInput): number {
  const whole = plans.every((p) => {
    const siz = p.h.layout.main.siz;
    const v = p.view;
    return v.discard === 0 && !v.empty && v.roff.x === 0 && v.roff.y === 0 && v.rsiz.w === siz.xsiz - siz.xOsiz && v.rsiz.h === siz.ysiz - siz.yOsiz;
  });
  const allLayers = input.layers === undefined || plans.every((p) => p.h.layout.tiles.every((_, t) => input.layers! >= p.h.index.tile(t).coding.layers));
  const allComps = input.comps === undefined || plans.every((p) => p.h.layout.main.siz.components.every((_, c) => input.comps!.includes(c)));
  return whole && allLayers && allComps ? EOR.IMAGE_DONE : EOR.WINDOW_DONE;
}

/** Copies bin bytes [from, from+n) into out at pos; with `defer`, those of files are only noted. */
function copyBin(job: BinJob, from: number, n: number, out: Uint8Array, pos: number, defer?: (src: RandomAccess, pos: number, len: number, outPos: number) => void): void {
  if (n === 0) return;
  let skip = from;
  let left = n;
  for (const r of job.ranges) {
    if (skip >= r.length) {
      skip -= r.length;
      continue;
    }
    const take = Math.min(r.length - skip, left);
    const at = r.offset + skip;
    if (job.src instanceof Uint8Array) out.set(job.src.subarray(at, at + take), pos);
    else if (defer && job.src.fd !== undefined && at + take <= job.src.size) defer(job.src, at, take, pos);
    else readInto(job.src, at, take, out, pos);
    pos += take;
    left -= take;
    skip = 0;
    if (left === 0) return;
  }
  throw new RangeError(`bin ${job.classId}/${job.binId}: bytes ${from}+${n} are past its end`);
}

/** Does a chunk's deferred reads on this thread (through the sources: the block cache serves them). */
export function performReads(chunk: BodyChunk): void {
  const r = chunk.reads;
  if (!r) return;
  const out = chunk.buffer ?? chunk.bytes;
  for (let i = 0; i < r.srcs.length; i++) readInto(r.srcs[i]!, r.at[3 * i]!, r.at[3 * i + 1]!, out, r.at[3 * i + 2]!);
  delete chunk.reads;
}

/** A chunk's deferred reads for a thread: [fd, file offset, length, buffer offset] per read. */
export function threadReads(r: DeferredReads): Float64Array {
  const out = new Float64Array(r.srcs.length * 4);
  for (let i = 0; i < r.srcs.length; i++) {
    const src = r.srcs[i]!;
    out[4 * i] = src.fd!;
    out[4 * i + 1] = (src.origin ?? 0) + r.at[3 * i]!;
    out[4 * i + 2] = r.at[3 * i + 1]!;
    out[4 * i + 3] = r.at[3 * i + 2]!;
  }
  return out;
}
