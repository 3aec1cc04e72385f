import { BIN_CLASS } from './constants.js';

/**
 * What a client holds, as the server keeps track of it for one session: for
 * every data-bin, how many bytes from its start the client has (a bin is held
 * as a prefix: JPIP servers send each bin in order). `COMPLETE` marks a bin
 * the client has entirely.
 *
 * Bins are keyed by (codestream, class, in-class id) packed into one number
 * (a string only for ids beyond the packed range), so a session costs one
 * small Map entry per bin it has touched and a look-up allocates nothing.
 */

/** Held-bytes value of a complete bin. */
export const COMPLETE = Number.MAX_SAFE_INTEGER;

/** Classes as the model stores them (extended forms share their base class). */
function modelClass(classId: number): number {
  if (classId === BIN_CLASS.EXTENDED_PRECINCT) return BIN_CLASS.PRECINCT;
  if (classId === BIN_CLASS.EXTENDED_TILE) return BIN_CLASS.TILE;
  return classId;
}


/** Codestreams and bin ids below these pack into one safe integer: ((id * 16) + class) * 2^20 + codestream. */
const CS_LIMIT = 2 ** 20;
const ID_LIMIT = 2 ** 29;

/** The model's key of a bin: a number when it packs, else a string (never equal to any number). */
export function binKey(codestream: number, classId: number, binId: number): number | string {
  const cls = modelClass(classId);
  if (codestream < CS_LIMIT && binId < ID_LIMIT && codestream >= 0 && binId >= 0) return (binId * 16 + cls) * CS_LIMIT + codestream;
  return `${codestream}:${cls}:${binId}`;
}

function unpackKey(k: number | string): [number, number, number] {
  if (typeof k === 'string') return k.split(':').map(Number) as [number, number, number];
  const codestream = k % CS_LIMIT;
  const rest = (k - codestream) / CS_LIMIT;
  const cls = rest % 16;
  return [codestream, cls, (rest - cls) / 16];
}

/** Windows a model remembers as wholly held (the most recent ones). */
const DONE_WINDOWS = 16;

/** What a model holds as a shared, read-only base (see `CacheModel.adopt`). */
export interface SharedHoldings {
  readonly bins: ReadonlyMap<number | string, number>;
  /** The same, one update per bin (what journals write). */
  readonly updates: readonly BinHeld[];
}

export interface BinHeld {
  codestream: number;
  classId: number;
  binId: number;
  held: number;
}

/** Holdings to share between models: one entry per bin, the last update of each. */
export function sharedHoldings(updates: Iterable<BinHeld>): SharedHoldings {
  const last = new Map<number | string, BinHeld>();
  for (const u of updates) last.set(binKey(u.codestream, u.classId, u.binId), u);
  const bins = new Map<number | string, number>();
  for (const [k, u] of last) bins.set(k, u.held);
  return Object.freeze({ bins, updates: Object.freeze([...last.values()].map((u) => Object.freeze({ codestream: u.codestream, classId: u.classId, binId: u.binId, held: u.held }))) });
}

/**
 * The `bins` of a model with nothing of its own: shared and never written. A new session's model
 * makes its map with its first bin (a crowd's sessions adopt kept holdings and may add none).
 */
const NO_BINS: Map<number | string, number> = new Map();

export class CacheModel {
  /** key -> held bytes (COMPLETE when the client has the whole bin); over `base`, which it overrides. */
  private bins = NO_BINS;
  /**
   * Holdings shared with other models (clients that were sent the same kept response), never
   * written: what this model adds goes to `bins`; anything that takes bytes away copies it first.
   */
  private base: ReadonlyMap<number | string, number> | undefined;
  private baseHoldings: SharedHoldings | undefined;
  /** Keys of `bins` that are not in `base`. */
  private own = 0;
  /** Changes that took bytes away (remove, clear): a window noted as held is trusted only while this is unchanged. */
  private losses = 0;
  /** Every change of what is held (add that grew a bin, remove, clear). */
  private changeCount = 0;
  /** Windows noted as wholly held: key -> the EOR reason their last answer ended with, and `losses` then. */
  private done: Map<string, { eor: number; losses: number }> | undefined;

  /** Bytes of the bin the client holds from its start (0 when none). */
  held(codestream: number, classId: number, binId: number): number {
    const k = binKey(codestream, classId, binId);
    return this.bins.get(k) ?? this.base?.get(k) ?? 0;
  }

  isComplete(codestream: number, classId: number, binId: number): boolean {
    return this.held(codestream, classId, binId) === COMPLETE;
  }

  /** Records that the client now holds `bytes` from the start (only grows), or all of it. */
  add(codestream: number, classId: number, binId: number, bytes: number, complete = false): void {
    const k = binKey(codestream, classId, binId);
    const mine = this.bins.get(k);
    const before = mine ?? this.base?.get(k) ?? 0;
    const now = complete ? COMPLETE : Math.max(before, bytes);
    if (now !== before) {
      if (mine === undefined && (this.base === undefined || !this.base.has(k))) this.own++;
      if (this.bins === NO_BINS) this.bins = new Map();
      this.bins.set(k, now);
      this.changeCount++;
    }
  }

  /**
   * An empty model takes `holdings` as what it holds, shared with other models and not copied
   * (one response body kept for many clients: server/response-cache.ts). Returns false, and
   * changes nothing, when the model is not empty.
   */
  adopt(holdings: SharedHoldings): boolean {
    if (this.size !== 0) return false;
    // Empty (size 0): its own map is empty too and stays.
    this.base = holdings.bins;
    this.baseHoldings = holdings;
    this.own = 0;
    this.changeCount++;
    return true;
  }

  /** The shared base becomes this model's own (before anything is taken away). */
  private unshare(): void {
    const base = this.base;
    if (!base) return;
    const mine = this.bins;
    this.bins = new Map(base);
    for (const [k, v] of mine) this.bins.set(k, v);
    this.base = undefined;
    this.baseHoldings = undefined;
    this.own = this.bins.size;
  }

  /** Records that the client no longer holds more than `bytes` of the bin (subtractive model). */
  remove(codestream: number, classId: number, binId: number, bytes = 0): void {
    const k = binKey(codestream, classId, binId);
    if (this.base?.has(k)) this.unshare();
    const before = this.bins.get(k);
    if (before === undefined) return;
    if (bytes <= 0) {
      this.bins.delete(k);
      if (this.base === undefined) this.own = this.bins.size;
      else this.own--;
    } else if (bytes < before) this.bins.set(k, bytes);
    else return;
    this.losses++;
    this.changeCount++;
  }

  /** Forgets everything (the target changed). */
  clear(): void {
    this.bins = NO_BINS;
    this.base = undefined;
    this.baseHoldings = undefined;
    this.own = 0;
    this.losses++;
    this.changeCount++;
    this.done = undefined;
  }

  /**
   * Notes that the client now holds everything a window (`key`: whatever decides the answer but
   * the byte budget) asks for, its answer having ended with `eor` (window or image done). Until a
   * bin is taken away, a repeat of it is answered with that EOR alone, without walking the window.
   */
  noteWindowHeld(key: string, eor: number): void {
    this.done ??= new Map();
    this.done.delete(key);
    this.done.set(key, { eor, losses: this.losses });
    if (this.done.size > DONE_WINDOWS) this.done.delete(this.done.keys().next().value!);
  }

  /** Whether any window is noted (else `windowHeld` is undefined for every key). */
  get notesWindows(): boolean {
    return this.done !== undefined && this.done.size > 0;
  }

  /** The EOR reason of a window noted as wholly held and still so; undefined otherwise. */
  windowHeld(key: string): number | undefined {
    const d = this.done?.get(key);
    return d && d.losses === this.losses ? d.eor : undefined;
  }

  /** A counter of changes of what is held: equal twice, nothing was added or taken away in between. */
  get changes(): number {
    return this.changeCount;
  }

  /** Number of bins tracked. */
  get size(): number {
    return this.base === undefined ? this.bins.size : this.base.size + this.own;
  }

  /** The holdings this model shares with others (what it adopted and still holds unchanged beneath its own bins). */
  get shared(): SharedHoldings | undefined {
    return this.baseHoldings;
  }

  /** The bins this model holds beyond its shared holdings (all of them when it shares none); each grows a shared one or is new. */
  *ownEntries(): IterableIterator<BinHeld> {
    for (const [k, held] of this.bins) {
      const [cs, cls, id] = unpackKey(k);
      yield { codestream: cs, classId: cls, binId: id, held };
    }
  }

  /** Every tracked bin (for journals and tests). */
  *entries(): IterableIterator<BinHeld> {
    yield* this.ownEntries();
    if (this.base) {
      for (const [k, held] of this.base) {
        if (this.bins.has(k)) continue;
        const [cs, cls, id] = unpackKey(k);
        yield { codestream: cs, classId: cls, binId: id, held };
      }
    }
  }
}
