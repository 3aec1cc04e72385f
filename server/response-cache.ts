import type { BodyChunk, ModelUpdate, ResponseInput, ResponsePlan, ServedWindow } from './responder.js';
import { windowKey } from './responder.js';
import type { ImageEntry } from './images.js';
import { sharedHoldings, type SharedHoldings } from '../jpip/cache-model.js';

/**
 * Whole response bodies for clients that hold nothing yet, kept by what decides them.
 *
 * What a response sends depends on the image (its version: tids), the request's window, type,
 * layers, components and byte budget, and the client's cache model. When the model is empty (a new
 * session's first request, a stateless request, a session that received nothing yet) the body is
 * the same for everyone who asks the same thing, and a flash crowd asks the same thing: the latest
 * frame at the viewer's opening window. Such a body is kept once produced, with the model updates
 * it makes, and the next client gets the same bytes without planning, walking layers or copying
 * image bytes: the session still records every bin exactly as if the body had been produced for it.
 *
 * Least recently used out beyond the byte budget; a body over an eighth of the budget is not kept.
 * Keys carry the image's version, so a file changed on disk is never answered from here.
 */

export interface CachedResponse {
  /** The whole body, EOR included. Shared: never written to. */
  body: Uint8Array;
  /** What the client holds afterwards, one update per bin (frozen). */
  updates: readonly ModelUpdate[];
  /** The same, as an empty session model adopts it (shared by every session it was sent to). */
  holdings: SharedHoldings;
  eor: number;
  served: ServedWindow;
}

export interface ResponseCacheStats {
  entries: number;
  bytes: number;
  /** Bytes copied by the recordings of responses being produced now. */
  recording: number;
  hits: number;
  misses: number;
  evictions: number;
}

/** Bytes counted per entry besides its body (key, updates, objects): a rough, conservative figure. */
const ENTRY_OVERHEAD = 256;
/** An update and its entry in the shared holdings. */
const UPDATE_BYTES = 120;

export class ResponseCache {
  private budget: number;
  private readonly entries = new Map<string, { value: CachedResponse; bytes: number }>();
  private held = 0;
  private hitCount = 0;
  private missCount = 0;
  private evictionCount = 0;
  /** Keys being recorded now (one recording per key: a crowd asking the same window at once copies it once). */
  private readonly recording = new Set<string>();
  /** Bytes the recordings under way have copied (within the budget too, whatever their number). */
  private recordingBytes = 0;

  constructor(budget: number) {
    this.budget = budget;
  }

  /** False with a zero budget: nothing is looked up or kept. */
  get enabled(): boolean {
    return this.budget > 0;
  }

  /** The cache key of a response to an empty model. */
  static key(entry: ImageEntry, input: ResponseInput): string {
    return `${windowKey(entry, input)}|${input.len}|${input.capped ? 1 : 0}`;
  }

  get(key: string): CachedResponse | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.missCount++;
      return undefined;
    }
    this.hitCount++;
    // Most recently used last.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** Whether a body of `bytes` may be kept. */
  fits(bytes: number): boolean {
    return this.budget > 0 && bytes * 8 <= this.budget;
  }

  /**
   * A recorder for the response to `key` about to be produced; undefined when the cache is off or
   * that key is being recorded already. Release it (`ResponseRecorder.release`) in every case.
   */
  record(key: string, sizeHint?: number): ResponseRecorder | undefined {
    if (!this.enabled || this.recording.has(key)) return undefined;
    this.recording.add(key);
    return new ResponseRecorder(this, key, sizeHint);
  }

  /** The largest body kept (an eighth of the budget, less an entry's own bytes). */
  get maxBody(): number {
    return Math.max(0, Math.floor(this.budget / 8) - ENTRY_OVERHEAD);
  }

  /** A recorder whose copy would grow to `total` by `more` bytes: false if it may not (too big, or the recordings' share is spent). */
  reserve(total: number, more: number): boolean {
    if (!this.fits(total) || this.recordingBytes + more > this.budget) return false;
    this.recordingBytes += more;
    return true;
  }

  /** A recorder freed `bytes` of its copy. */
  free(bytes: number): void {
    this.recordingBytes -= bytes;
  }

  /** A recording ended: its key may be recorded again. */
  ended(key: string): void {
    this.recording.delete(key);
  }

  /** Bytes copied by recordings under way (0 when none). */
  get recordingNow(): number {
    return this.recordingBytes;
  }

  put(key: string, value: CachedResponse): void {
    const bytes = value.body.length + ENTRY_OVERHEAD + key.length * 2 + value.updates.length * UPDATE_BYTES;
    if (!this.fits(bytes)) return;
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.held -= old.bytes;
    }
    this.entries.set(key, { value, bytes });
    this.held += bytes;
    this.trim();
  }

  setBudget(budget: number): void {
    this.budget = budget;
    this.trim();
  }

  clear(): void {
    this.entries.clear();
    this.held = 0;
  }

  stats(): ResponseCacheStats {
    return { entries: this.entries.size, bytes: this.held, recording: this.recordingBytes, hits: this.hitCount, misses: this.missCount, evictions: this.evictionCount };
  }

  private trim(): void {
    for (const [key, e] of this.entries) {
      if (this.held <= this.budget) break;
      this.entries.delete(key);
      this.held -= e.bytes;
      this.evictionCount++;
    }
  }
}

/**
 * A plan that replays a kept response: the same served window, the same body, one chunk. Its
 * model updates are the entry's `updates`, which the caller takes as they are (one per bin).
 */
export function cachedPlan(hit: CachedResponse): ResponsePlan {
  // Not a generator method here: that would be a new generator function per plan, each with its
  // own prototype object (~0.8 us a response, measured); a module-level one is made once.
  return { served: hit.served, body: () => replay(hit) };
}

function* replay(hit: CachedResponse): Generator<BodyChunk, void, void> {
  yield { bytes: hit.body, updates: [], eor: hit.eor };
}

/**
 * Collects a response's body as it is written (copies: the chunks' buffers go back to a pool) and
 * its model updates, within what the cache lets it copy; it gives up (and frees its copy) once the
 * body outgrows that. `keep` puts the finished response in the cache; `release` ends the recording
 * either way (call it in every case: it frees the key and the bytes).
 */
export class ResponseRecorder {
  /** The copy, in one buffer (sized from the response's byte budget: no copy of the parts at the end). */
  private buf: Buffer | undefined;
  private readonly sizeHint: number;
  private readonly updates: ModelUpdate[] = [];
  private size = 0;
  private over = false;
  private released = false;
  private eor: number | undefined;
  private readonly cache: ResponseCache;
  private readonly key: string;

  /** `sizeHint`: at most how long the body can be (its byte budget, with room for the EOR). */
  constructor(cache: ResponseCache, key: string, sizeHint = 64 * 1024) {
    this.cache = cache;
    this.key = key;
    this.sizeHint = sizeHint;
  }

  add(bytes: Uint8Array, updates: readonly ModelUpdate[], eor: number | undefined): void {
    if (this.over || this.released) return;
    if (!this.cache.reserve(this.size + bytes.length, bytes.length)) {
      this.giveUp();
      return;
    }
    const need = this.size + bytes.length;
    if (!this.buf || this.buf.length < need) {
      // Not zero-filled: only what is written is read. Grown by doubling if the hint was short.
      const grown = Buffer.allocUnsafeSlow(Math.min(Math.max(need, this.buf ? this.buf.length * 2 : Math.min(this.sizeHint, this.cache.maxBody)), Math.max(need, this.cache.maxBody)));
      if (this.buf) this.buf.copy(grown, 0, 0, this.size);
      this.buf = grown;
    }
    this.buf.set(bytes, this.size);
    this.size = need;
    for (const u of updates) this.updates.push({ codestream: u.codestream, classId: u.classId, binId: u.binId, held: u.held });
    if (eor !== undefined) this.eor = eor;
  }

  /** The response as it would be kept, or undefined (given up, or it had no end). */
  result(served: ServedWindow): CachedResponse | undefined {
    if (this.over || this.released || this.eor === undefined || !this.buf) return undefined;
    // The kept body is exactly as long as the response (one copy, unless the buffer is that long already).
    const body = this.buf.length === this.size ? this.buf : Buffer.from(this.buf.subarray(0, this.size));
    // One update per bin, the last one (what the client holds after the whole body), frozen.
    const holdings = sharedHoldings(this.updates);
    return { body, updates: holdings.updates, holdings, eor: this.eor, served };
  }

  /** Keeps the recorded response in the cache (when it is whole) and ends the recording. */
  keep(served: ServedWindow): void {
    const r = this.result(served);
    this.release();
    if (r) this.cache.put(this.key, r);
  }

  /** Ends the recording (the key may be recorded again; the copied bytes are freed). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.drop();
    this.cache.ended(this.key);
  }

  /** Gives up: the copy is freed now; the key stays taken until release (the same too-big body is not recorded twice at once). */
  private giveUp(): void {
    this.over = true;
    this.drop();
  }

  private drop(): void {
    this.cache.free(this.size);
    this.size = 0;
    this.buf = undefined;
    this.updates.length = 0;
  }
}
