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

export class CacheModel {
  /** key -> held bytes (COMPLETE when the client has the whole bin). */
  private readonly bins = new Map<number | string, number>();
  /** Changes that took bytes away (remove, clear): a window noted as held is trusted only while this is unchanged. */
  private losses = 0;
  /** Every change of what is held (add that grew a bin, remove, clear). */
  private changeCount = 0;
  /** Windows noted as wholly held: key -> the EOR reason their last answer ended with, and `losses` then. */
  private done: Map<string, { eor: number; losses: number }> | undefined;

  /** Bytes of the bin the client holds from its start (0 when none). */
  held(codestream: number, classId: number, binId: number): number {
    return this.bins.get(binKey(codestream, classId, binId)) ?? 0;
  }

  isComplete(codestream: number, classId: number, binId: number): boolean {
    return this.held(codestream, classId, binId) === COMPLETE;
  }

  /** Records that the client now holds `bytes` from the start (only grows), or all of it. */
  add(codestream: number, classId: number, binId: number, bytes: number, complete = false): void {
    const k = binKey(codestream, classId, binId);
    const before = this.bins.get(k) ?? 0;
    const now = complete ? COMPLETE : Math.max(before, bytes);
    if (now !== before) {
      this.bins.set(k, now);
      this.changeCount++;
    }
  }

  /** Records that the client no longer holds more than `bytes` of the bin (subtractive model). */
  remove(codestream: number, classId: number, binId: number, bytes = 0): void {
    const k = binKey(codestream, classId, binId);
    const before = this.bins.get(k);
    if (before === undefined) return;
    if (bytes <= 0) this.bins.delete(k);
    else if (bytes < before) this.bins.set(k, bytes);
    else return;
    this.losses++;
    this.changeCount++;
  }

  /** Forgets everything (the target changed). */
  clear(): void {
    this.bins.clear();
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
    return this.bins.size;
  }

  /** Every tracked bin (for journals and tests). */
  *entries(): IterableIterator<{ codestream: number; classId: number; binId: number; held: number }> {
    for (const [k, held] of this.bins) {
      const [cs, cls, id] = unpackKey(k);
      yield { codestream: cs, classId: cls, binId: id, held };
    }
  }
}
