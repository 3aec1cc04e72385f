import { readInto, type RandomAccess } from '../jpeg2000/source.js';

/**
 * A process-wide cache of image file blocks, least recently used out, within
 * a byte budget. A response's data-bins are many small pieces of a file (a
 * precinct's next layer is often a few hundred bytes): read one by one they
 * cost a system call each (~480 preads for a 200 KB window of a 4096x4096
 * frame, 1 ms of the response's 1.1 ms). Through this cache a file is read in
 * aligned blocks, once, and every later piece is a memory copy; the images
 * a crowd looks at (the latest frames of a few movies) stay in memory.
 *
 * Blocks belong to one open version of a file (the registry reopens a file
 * that changed on disk, under a new id), so nothing stale is served; closing
 * the file drops its blocks.
 */

export const DEFAULT_BLOCK_BYTES = 16 * 1024;

/** Highest number of blocks of one file (2^32 blocks: far more than any file). */
const BLOCKS_PER_FILE = 2 ** 32;
/** Ids of the files open at once (key = id * BLOCKS_PER_FILE + block stays below 2^53). */
const MAX_IDS = 2 ** 21;

export interface BlockCacheStats {
  /** Bytes of blocks held. */
  bytes: number;
  blocks: number;
  /** Pieces served from memory, and blocks read from their file. */
  hits: number;
  misses: number;
  evictions: number;
}

/** A source reading through the cache; `drop()` forgets its blocks (call it when the file is closed). */
export interface CachedSource extends RandomAccess {
  readInto(pos: number, len: number, out: Uint8Array, outPos: number): void;
  drop(): void;
}

interface Block {
  bytes: Uint8Array;
  owner: Set<number>;
  /** Used since it was (re)inserted: trimming gives it a second chance instead of dropping it. */
  used: boolean;
}

export class BlockCache {
  budget: number;
  readonly blockSize: number;
  /**
   * Oldest first (a Map iterates in insertion order). A hit only marks the block used; trimming
   * moves used blocks to the end (second chance, an approximation of least recently used that
   * costs nothing per hit).
   */
  private readonly blocks = new Map<number, Block>();
  private readonly liveIds = new Set<number>();
  private nextId = 0;
  private held = 0;
  private hitCount = 0;
  private missCount = 0;
  private evictionCount = 0;

  constructor(budget: number, blockSize = DEFAULT_BLOCK_BYTES) {
    if (!Number.isInteger(blockSize) || blockSize < 512) throw new RangeError(`block size ${blockSize}: at least 512 bytes`);
    this.budget = budget;
    this.blockSize = blockSize;
  }

  stats(): BlockCacheStats {
    return { bytes: this.held, blocks: this.blocks.size, hits: this.hitCount, misses: this.missCount, evictions: this.evictionCount };
  }

  /** Changes the budget (a config reload) and applies it. */
  setBudget(bytes: number): void {
    this.budget = bytes;
    this.trim();
  }

  /** Reads `file` through the cache. With a zero budget every read goes to the file. */
  wrap(file: RandomAccess): CachedSource {
    const id = this.allocateId();
    const keys = new Set<number>();
    const base = id * BLOCKS_PER_FILE;
    const size = file.size;
    const B = this.blockSize;
    let dropped = false;
    // The last block used: a response's next piece is most often in the same block (no look-up).
    let lastB = -1;
    let lastBytes: Uint8Array | undefined;
    const block = (b: number): Uint8Array => {
      if (b === lastB) {
        this.hitCount++;
        return lastBytes!;
      }
      const key = base + b;
      const have = this.blocks.get(key);
      if (have) {
        this.hitCount++;
        have.used = true;
        lastB = b;
        lastBytes = have.bytes;
        return have.bytes;
      }
      this.missCount++;
      const start = b * B;
      const bytes = new Uint8Array(Math.min(B, size - start));
      readInto(file, start, bytes.length, bytes, 0);
      if (this.budget >= bytes.length) {
        this.blocks.set(key, { bytes, owner: keys, used: false });
        keys.add(key);
        this.held += bytes.length;
        this.trim();
      }
      lastB = b;
      lastBytes = bytes;
      return bytes;
    };
    const into = (pos: number, len: number, out: Uint8Array, outPos: number): void => {
      // Straight to the file: no cache (budget below a block, file dropped), or a read past the
      // end, for which the file's own read throws the right error (TRUNCATED, with its name).
      if (this.budget < B || dropped || pos < 0 || len < 0 || pos + len > size) {
        readInto(file, pos, len, out, outPos);
        return;
      }
      if (outPos < 0 || outPos + len > out.length) throw new RangeError(`readInto: ${len} bytes at ${outPos} do not fit a buffer of ${out.length}`);
      let p = pos;
      let o = outPos;
      const end = pos + len;
      while (p < end) {
        const b = Math.floor(p / B);
        const bytes = block(b);
        const from = p - b * B;
        const n = Math.min(bytes.length - from, end - p);
        out.set(from === 0 && n === bytes.length ? bytes : bytes.subarray(from, from + n), o);
        p += n;
        o += n;
      }
    };
    return {
      size,
      name: file.name,
      origin: file.origin,
      fd: file.fd,
      read(pos: number, len: number): Uint8Array {
        const out = new Uint8Array(len);
        into(pos, len, out, 0);
        return out;
      },
      readInto: into,
      drop: (): void => {
        if (dropped) return;
        dropped = true;
        lastB = -1;
        lastBytes = undefined;
        for (const key of keys) {
          const blk = this.blocks.get(key);
          if (blk) {
            this.blocks.delete(key);
            this.held -= blk.bytes.length;
          }
        }
        keys.clear();
        this.liveIds.delete(id);
      },
    };
  }

  private allocateId(): number {
    if (this.liveIds.size >= MAX_IDS) throw new RangeError(`more than ${MAX_IDS} files open in the block cache`);
    while (this.liveIds.has(this.nextId)) this.nextId = (this.nextId + 1) % MAX_IDS;
    const id = this.nextId;
    this.liveIds.add(id);
    this.nextId = (this.nextId + 1) % MAX_IDS;
    return id;
  }

  private trim(): void {
    if (this.held <= this.budget) return;
    // Each block is looked at most twice: once to clear its mark, once to drop it.
    let visits = 2 * this.blocks.size;
    for (const [key, blk] of this.blocks) {
      if (this.held <= this.budget || visits-- <= 0) break;
      this.blocks.delete(key);
      if (blk.used) {
        blk.used = false;
        this.blocks.set(key, blk);
        continue;
      }
      blk.owner.delete(key);
      this.held -= blk.bytes.length;
      this.evictionCount++;
    }
  }
}
