/**
 * Response buffers, reused. A busy server writes hundreds of megabytes a second; allocating each
 * reply's chunks anew leaves the freeing to the garbage collector, which lets the resident size
 * climb far above what is in use (240 MB for 2,000 responses/s of 200 KB here). A chunk whose
 * write has completed (its bytes are in the kernel) comes back here and serves the next reply.
 *
 * Sizes are powers of two from 4 KiB; each size keeps at most `maxBytes / 8` of free buffers, so
 * the pool never holds more than about `maxBytes` (beyond, buffers are left to the collector).
 */

const MIN_BITS = 12;

export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>();
  private readonly perClassBytes: number;
  private held = 0;
  /** Buffers handed out from the pool, and allocated new (for metrics and tests). */
  reused = 0;
  allocated = 0;

  private readonly shared: boolean;

  /** `shared`: buffers on SharedArrayBuffers, which worker threads can fill (the assembly pool). */
  constructor(maxBytes = 16 * 1024 * 1024, opts: { shared?: boolean } = {}) {
    this.perClassBytes = Math.max(0, Math.floor(maxBytes / 8));
    this.shared = opts.shared === true;
  }

  /** Bytes of free buffers held. */
  get bytes(): number {
    return this.held;
  }

  /** A buffer of at least `size` bytes (its length is a power of two); contents are undefined. */
  get(size: number): Uint8Array {
    const cls = Math.max(MIN_BITS, Math.ceil(Math.log2(Math.max(1, size))));
    const list = this.free.get(cls);
    const have = list?.pop();
    if (have) {
      this.held -= have.length;
      this.reused++;
      return have;
    }
    this.allocated++;
    return this.shared ? Buffer.from(new SharedArrayBuffer(2 ** cls)) : Buffer.allocUnsafeSlow(2 ** cls);
  }

  /** Gives a buffer back once nothing reads it any more (its write completed). Others are ignored. */
  put(buf: Uint8Array): void {
    const len = buf.byteLength;
    if (buf.byteOffset !== 0 || buf.buffer.byteLength !== len || len < 2 ** MIN_BITS || (len & (len - 1)) !== 0) return;
    const cls = Math.log2(len);
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
