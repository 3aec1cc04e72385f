/**
 * Response buffers, reused. A busy server writes hundreds of megabytes a second; allocating each
 * reply's chunks anew leaves the freeing to the garbage collector, which lets the resident size
 * climb far above what is in use (240 MB for 2,000 responses/s of 200 KB here). A chunk whose
 * write has completed (its bytes are in the kernel) comes back here and serves the next reply.
 *
 * Sizes are powers of two from 4 KiB; each size keeps at most `maxBytes / 8` of free buffers, so
 * the pool never holds more than about `maxBytes` (beyond, buffers are left to the collector).
 *
 * With `sharedBytes`, buffers come on SharedArrayBuffers (worker threads fill them: the assembly
 * pool) up to that many bytes in existence, and those are always taken back, never left to the
 * collector: a SharedArrayBuffer a worker thread has seen stays alive until that thread collects
 * its garbage too, which a thread that allocates little almost never does (measured: 1.8 GB
 * resident under the paper crowd when they were dropped like the others). Beyond the budget the
 * pool hands out ordinary buffers (read on the main thread). A shared buffer lost without being
 * given back (a cut response) is credited back when the collector frees it.
 */

const MIN_BITS = 12;

export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>();
  private readonly perClassBytes: number;
  private held = 0;
  /** Buffers handed out from the pool, and allocated new (for metrics and tests). */
  reused = 0;
  allocated = 0;

  private readonly sharedBudget: number;
  private readonly sharedFree = new Map<number, Uint8Array[]>();
  /** Bytes of shared buffers in existence (handed out or free). */
  private sharedBytes = 0;
  private readonly lost = new FinalizationRegistry<number>((len) => (this.sharedBytes -= len));

  /** `sharedBytes`: budget of buffers on SharedArrayBuffers, which worker threads can fill (0: none). */
  constructor(maxBytes = 16 * 1024 * 1024, opts: { sharedBytes?: number } = {}) {
    this.perClassBytes = Math.max(0, Math.floor(maxBytes / 8));
    this.sharedBudget = opts.sharedBytes ?? 0;
  }

  /** Bytes of shared buffers in existence (tests). */
  get shared(): number {
    return this.sharedBytes;
  }

  /** Bytes of free buffers held. */
  get bytes(): number {
    return this.held;
  }

  /** A buffer of at least `size` bytes (its length is a power of two); contents are undefined. */
  get(size: number): Uint8Array {
    const cls = Math.max(MIN_BITS, Math.ceil(Math.log2(Math.max(1, size))));
    if (this.sharedBudget > 0) {
      const free = this.sharedFree.get(cls)?.pop();
      if (free) {
        this.lost.register(free, free.length, free);
        this.reused++;
        return free;
      }
      if (this.sharedBytes + 2 ** cls <= this.sharedBudget) {
        this.allocated++;
        this.sharedBytes += 2 ** cls;
        const buf = Buffer.from(new SharedArrayBuffer(2 ** cls));
        this.lost.register(buf, buf.length, buf);
        return buf;
      }
    }
    const list = this.free.get(cls);
    const have = list?.pop();
    if (have) {
      this.held -= have.length;
      this.reused++;
      return have;
    }
    this.allocated++;
    return Buffer.allocUnsafeSlow(2 ** cls);
  }

  /** Gives a buffer back once nothing reads it any more (its write completed). Others are ignored. */
  put(buf: Uint8Array): void {
    const len = buf.byteLength;
    if (buf.byteOffset !== 0 || buf.buffer.byteLength !== len || len < 2 ** MIN_BITS || (len & (len - 1)) !== 0) return;
    const cls = Math.log2(len);
    if (buf.buffer instanceof SharedArrayBuffer) {
      // Always kept (see above); no longer counted as lost if the collector finds it.
      if (!this.lost.unregister(buf)) return; // not handed out by this pool, or already given back
      let shared = this.sharedFree.get(cls);
      if (!shared) {
        shared = [];
        this.sharedFree.set(cls, shared);
      }
      shared.push(buf);
      return;
    }
    let list = this.free.get(cls);
    if (!list) {
      list = [];
      this.free.set(cls, list);
    }
    if ((list.length + 1) * len > this.perClassBytes) return;
    list.push(buf);
    this.held += len;
  }
}
