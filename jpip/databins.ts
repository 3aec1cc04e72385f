import { BIN_CLASS } from './constants.js';
import { JpipError } from './errors.js';
import { binClassName, type DecodedItem } from './messages.js';

/**
 * The client's data-bin cache: the bytes of every data-bin received so far,
 * as the union of the messages that carried them (they may arrive out of
 * order, overlap or repeat), plus what the client can tell the server it
 * holds (`cacheModelString`, the `model=` field).
 *
 * Extended classes share their bins with the plain ones (ISO/IEC 15444-9
 * Table A.2: extended precinct 1 is precinct 0 plus Aux, extended tile 5 is
 * tile 4 plus Aux): a bin is stored under the even class and keeps the last
 * Aux it was given.
 *
 * Pure: Uint8Array and plain JavaScript only. Inconsistent input (data past a
 * bin's known end, two different ends) throws `JpipError` BAD_STREAM.
 */

/** Default bound on a data-bin's length (offset + length of any message): 256 MiB. */
export const DEFAULT_MAX_BIN_LENGTH = 256 * 1024 * 1024;

/** What the store needs of a message: a `DecodedMessage` fits. */
export interface BinMessage {
  classId: number;
  codestream: number;
  binId: number;
  offset: number;
  /** If given, must equal `data.length`. */
  length?: number | undefined;
  complete: boolean;
  aux?: number | undefined;
  data: Uint8Array;
}

/** The class a bin is stored under: 1 → 0 (precinct), 5 → 4 (tile), others unchanged. */
export function storeClassOf(classId: number): number {
  if (classId === BIN_CLASS.EXTENDED_PRECINCT) return BIN_CLASS.PRECINCT;
  if (classId === BIN_CLASS.EXTENDED_TILE) return BIN_CLASS.TILE;
  return classId;
}

const EMPTY = new Uint8Array(0);
/** First allocation of a bin whose length is not known yet. */
const MIN_CAPACITY = 64;

function badStream(message: string): JpipError {
  return new JpipError('BAD_STREAM', message);
}

/**
 * One data-bin: the bytes received and where they are. Bytes live in one
 * Uint8Array that grows by doubling (to the exact length once the bin's end
 * is known); received byte ranges are kept sorted, disjoint and merged.
 */
export class DataBin {
  readonly codestream: number;
  /** The storage class (0, 2, 4, 6, 8...; never 1 or 5). */
  readonly classId: number;
  readonly binId: number;
  /** The last Aux received (extended classes), if any. */
  aux: number | undefined = undefined;

  private buf: Uint8Array = EMPTY;
  /** Received ranges, flat: [start0, end0, start1, end1, ...], half-open, sorted, not touching. */
  private spans: number[] = [];
  private total: number | undefined = undefined;
  private held = 0;
  private readonly maxLength: number;

  constructor(codestream: number, classId: number, binId: number, maxLength = DEFAULT_MAX_BIN_LENGTH) {
    this.codestream = codestream;
    this.classId = storeClassOf(classId);
    this.binId = binId;
    this.maxLength = maxLength;
  }

  /** Bytes held from offset 0 without a gap. */
  get contiguousLength(): number {
    return this.spans.length > 0 && this.spans[0] === 0 ? this.spans[1]! : 0;
  }

  /** The bin's length, known once a message with c=1 arrived; otherwise undefined. */
  get totalLength(): number | undefined {
    return this.total;
  }

  /** Every byte of the bin is held: its end is known and nothing before it is missing. */
  get complete(): boolean {
    return this.total !== undefined && this.contiguousLength >= this.total;
  }

  /** Bytes held in all ranges. */
  get receivedLength(): number {
    return this.held;
  }

  /** The received byte ranges as `[start, end)` pairs, in order. */
  ranges(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.spans.length; i += 2) out.push([this.spans[i]!, this.spans[i + 1]!]);
    return out;
  }

  /** True if every byte of `[start, end)` is held (an empty range is). */
  has(start: number, end: number): boolean {
    if (end <= start) return true;
    const s = this.spans;
    for (let i = 0; i < s.length; i += 2) {
      if (s[i]! <= start) {
        if (s[i + 1]! >= end) return true;
      } else {
        return false;
      }
    }
    return false;
  }

  /**
   * The contiguous prefix (`contiguousLength` bytes): a view of the bin's
   * buffer, valid until the bin grows (copy it to keep it).
   */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.contiguousLength);
  }

  /** A view of `[start, end)`; RangeError unless all of it is held. */
  read(start: number, end: number): Uint8Array {
    if (!this.has(start, end)) throw new RangeError(`bytes [${start}, ${end}) of ${this.describe()} are not all held`);
    return this.buf.subarray(start, Math.max(start, end));
  }

  /** `precinct 7 of codestream 0`. */
  describe(): string {
    return `${binClassName(this.classId)} ${this.binId} of codestream ${this.codestream}`;
  }

  /**
   * Adds `data` at `offset`; `complete` says it ends the bin. Returns the
   * number of bytes newly held. Throws BAD_STREAM (leaving the bin unchanged)
   * if it contradicts what the bin already knows or exceeds the length bound.
   * Overlapping bytes are overwritten (a consistent server sends the same).
   * Clients use `DataBinStore.add`: writing to a bin directly bypasses the
   * store's `byteLength` count.
   */
  write(offset: number, data: Uint8Array, complete: boolean, aux?: number): number {
    if (!Number.isSafeInteger(offset) || offset < 0) throw badStream(`${this.describe()}: bad offset ${String(offset)}`);
    const end = offset + data.length;
    if (end > this.maxLength) {
      throw badStream(`${this.describe()}: bytes up to ${end} exceed the bound of ${this.maxLength} per data-bin`);
    }
    const s = this.spans;
    const highest = s.length > 0 ? s[s.length - 1]! : 0;
    if (complete) {
      if (this.total !== undefined && this.total !== end) {
        throw badStream(`${this.describe()}: ends at ${end}, but an earlier message ended it at ${this.total}`);
      }
      if (highest > end) throw badStream(`${this.describe()}: ends at ${end}, but bytes up to ${highest} were received`);
    } else if (this.total !== undefined && end > this.total) {
      throw badStream(`${this.describe()}: bytes up to ${end} are past its end at ${this.total}`);
    }

    if (aux !== undefined) this.aux = aux;
    if (complete) this.total = end;
    if (data.length === 0) return 0;

    if (end > this.buf.length) this.grow(end);
    this.buf.set(data, offset);
    return this.insert(offset, end);
  }

  private grow(needed: number): void {
    let cap = Math.max(needed, this.buf.length * 2, MIN_CAPACITY);
    if (this.total !== undefined) cap = Math.min(cap, this.total);
    cap = Math.min(cap, this.maxLength);
    const buf = new Uint8Array(cap);
    // Only held bytes matter; the highest range end bounds them.
    const s = this.spans;
    if (s.length > 0) buf.set(this.buf.subarray(0, s[s.length - 1]!));
    this.buf = buf;
  }

  /** Merges `[start, end)` into the ranges; returns the bytes newly covered. */
  private insert(start: number, end: number): number {
    const s = this.spans;
    const k = s.length >> 1;
    // First range that ends at or after start (it touches or overlaps).
    let lo = 0;
    let hi = k;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[2 * mid + 1]! < start) lo = mid + 1;
      else hi = mid;
    }
    const first = lo;
    // First range that starts after end; the one before it is the last to merge.
    hi = k;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[2 * mid]! <= end) lo = mid + 1;
      else hi = mid;
    }
    const last = lo - 1;
    if (first > last) {
      s.splice(2 * first, 0, start, end);
      this.held += end - start;
      return end - start;
    }
    const newStart = Math.min(start, s[2 * first]!);
    const newEnd = Math.max(end, s[2 * last + 1]!);
    let before = 0;
    for (let j = first; j <= last; j++) before += s[2 * j + 1]! - s[2 * j]!;
    s.splice(2 * first, 2 * (last - first + 1), newStart, newEnd);
    const added = newEnd - newStart - before;
    this.held += added;
    return added;
  }
}

export interface DataBinStoreOptions {
  /** Largest offset + length accepted in any bin (BAD_STREAM beyond). Default 256 MiB. */
  maxBinLength?: number | undefined;
}

/** Order of codestream classes in a model string, and their descriptor prefixes. */
const MODEL_CLASSES: ReadonlyArray<[number, string]> = [
  [BIN_CLASS.MAIN_HEADER, 'Hm'],
  [BIN_CLASS.TILE_HEADER, 'H'],
  [BIN_CLASS.TILE, 'T'],
  [BIN_CLASS.PRECINCT, 'P'],
];

/** `:<bytes>` when only a prefix is held, nothing when complete; undefined when nothing usable is held. */
function heldSuffix(bin: DataBin): string | undefined {
  if (bin.complete) return '';
  const n = bin.contiguousLength;
  return n > 0 ? `:${n}` : undefined;
}

/**
 * All the data-bins of a client, by codestream, class and in-class id.
 *
 * @example
 * const store = new DataBinStore();
 * for (const item of decoder.push(chunk)) if (item.kind === 'message') store.add(item);
 * store.get(0, BIN_CLASS.MAIN_HEADER, 0)?.complete;
 * store.cacheModelString(); // 'M0,[0-0],Hm,H0,P0,P7:300'
 */
export class DataBinStore {
  private readonly maxBinLength: number;
  /** codestream → storage class → bin id → bin. */
  private readonly byCodestream = new Map<number, Map<number, Map<number, DataBin>>>();
  private count = 0;
  private bytesHeld = 0;

  constructor(options: DataBinStoreOptions = {}) {
    const max = options.maxBinLength ?? DEFAULT_MAX_BIN_LENGTH;
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`maxBinLength must be a non-negative integer, got ${String(max)}`);
    this.maxBinLength = max;
  }

  /** Number of bins. */
  get size(): number {
    return this.count;
  }

  /** Bytes held in all bins (the union of what was received, not what was sent). */
  get byteLength(): number {
    return this.bytesHeld;
  }

  /**
   * Adds one message's data to its bin (created if new) and returns the bin.
   * Throws BAD_STREAM if the message contradicts the bin (see `DataBin.write`).
   */
  add(m: BinMessage): DataBin {
    if (m.length !== undefined && m.length !== m.data.length) {
      throw badStream(`message length ${m.length} differs from its ${m.data.length} data bytes`);
    }
    const cls = storeClassOf(m.classId);
    let classes = this.byCodestream.get(m.codestream);
    if (classes === undefined) {
      classes = new Map();
      this.byCodestream.set(m.codestream, classes);
    }
    let bins = classes.get(cls);
    if (bins === undefined) {
      bins = new Map();
      classes.set(cls, bins);
    }
    let bin = bins.get(m.binId);
    const created = bin === undefined;
    if (bin === undefined) {
      bin = new DataBin(m.codestream, cls, m.binId, this.maxBinLength);
      bins.set(m.binId, bin);
      this.count++;
    }
    try {
      this.bytesHeld += bin.write(m.offset, m.data, m.complete, m.aux);
    } catch (e) {
      if (created) {
        bins.delete(m.binId);
        this.count--;
      }
      throw e;
    }
    return bin;
  }

  /** Adds the messages of `items`, skipping EORs; returns how many were added. */
  addItems(items: Iterable<DecodedItem>): number {
    let n = 0;
    for (const item of items) {
      if (item.kind === 'message') {
        this.add(item);
        n++;
      }
    }
    return n;
  }

  /** The bin, if any byte or its end was ever received. Class 1 finds class 0 bins, 5 finds 4. */
  get(codestream: number, classId: number, binId: number): DataBin | undefined {
    return this.byCodestream.get(codestream)?.get(storeClassOf(classId))?.get(binId);
  }

  /** The codestream ids that have bins, ascending. */
  codestreams(): number[] {
    return [...this.byCodestream.keys()].sort((a, b) => a - b);
  }

  /**
   * The bins of one codestream (all if omitted) and one class (all if
   * omitted; 1 and 5 mean 0 and 4), in the order they were first received.
   */
  *bins(codestream?: number, classId?: number): IterableIterator<DataBin> {
    const cls = classId === undefined ? undefined : storeClassOf(classId);
    const streams = codestream === undefined ? this.byCodestream.values() : [this.byCodestream.get(codestream)];
    for (const classes of streams) {
      if (classes === undefined) continue;
      if (cls !== undefined) {
        const bins = classes.get(cls);
        if (bins !== undefined) yield* bins.values();
      } else {
        for (const bins of classes.values()) yield* bins.values();
      }
    }
  }

  [Symbol.iterator](): IterableIterator<DataBin> {
    return this.bins();
  }

  /** Drops every bin. */
  clear(): void {
    this.byCodestream.clear();
    this.count = 0;
    this.bytesHeld = 0;
  }

  /**
   * The value of a `model=` request field describing what the store holds:
   * comma-separated descriptors, `Hm` main header, `H<n>` tile header, `T<n>`
   * tile, `P<n>` precinct, `M<n>` metadata, each with `:<bytes>` when only a
   * prefix of that many bytes is held and no suffix when complete. Bins of
   * which no prefix is held are left out (the syntax cannot say "bytes 100
   * to 200"); so are classes the syntax has no letter for.
   *
   * Metadata-bins are not tied to a codestream: they come first, before any
   * codestream qualifier, and `codestreams` does not filter them. Then, for
   * the codestreams (all, or those listed in `codestreams`), ascending,
   * `[a-b]` followed by their descriptors; consecutive codestreams holding
   * the same descriptors share one range. A single codestream is written
   * `[a-a]`. Empty string when nothing is held.
   *
   * @example 'M0,[0-9],Hm,H0,P0,P1:345,[10-10],Hm:120'
   */
  cacheModelString(codestreams?: Iterable<number>): string {
    const parts: string[] = [];

    // Metadata: the best of each bin id over all codestreams.
    const meta = new Map<number, DataBin>();
    for (const classes of this.byCodestream.values()) {
      const bins = classes.get(BIN_CLASS.METADATA);
      if (bins === undefined) continue;
      for (const bin of bins.values()) {
        const prev = meta.get(bin.binId);
        if (prev === undefined || rank(bin) > rank(prev)) meta.set(bin.binId, bin);
      }
    }
    for (const id of [...meta.keys()].sort((a, b) => a - b)) {
      const suffix = heldSuffix(meta.get(id)!);
      if (suffix !== undefined) parts.push(`M${id}${suffix}`);
    }

    const wanted = codestreams === undefined ? this.codestreams() : [...new Set(codestreams)].sort((a, b) => a - b);
    let runFirst = -1;
    let runLast = -1;
    let runText = '';
    const flush = (): void => {
      if (runText !== '') parts.push(`[${runFirst}-${runLast}],${runText}`);
    };
    for (const cs of wanted) {
      const text = this.codestreamDescriptors(cs);
      if (text === '') continue;
      if (text === runText && cs === runLast + 1) {
        runLast = cs;
      } else {
        flush();
        runFirst = runLast = cs;
        runText = text;
      }
    }
    flush();
    return parts.join(',');
  }

  /** The descriptors of one codestream's bins, comma-separated ('' if none). */
  private codestreamDescriptors(cs: number): string {
    const classes = this.byCodestream.get(cs);
    if (classes === undefined) return '';
    const out: string[] = [];
    for (const [cls, letter] of MODEL_CLASSES) {
      const bins = classes.get(cls);
      if (bins === undefined) continue;
      if (cls === BIN_CLASS.MAIN_HEADER) {
        const bin = bins.get(0);
        const suffix = bin === undefined ? undefined : heldSuffix(bin);
        if (suffix !== undefined) out.push(`${letter}${suffix}`);
        continue;
      }
      for (const id of [...bins.keys()].sort((a, b) => a - b)) {
        const suffix = heldSuffix(bins.get(id)!);
        if (suffix !== undefined) out.push(`${letter}${id}${suffix}`);
      }
    }
    return out.join(',');
  }
}

/** Complete beats any prefix; a longer prefix beats a shorter one. */
function rank(bin: DataBin): number {
  return bin.complete ? Infinity : bin.contiguousLength;
}
