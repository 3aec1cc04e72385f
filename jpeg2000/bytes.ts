import { J2K_ERROR, J2kError } from './errors.js';

/**
 * A bounds-checked big-endian cursor over a byte array. Every read past the
 * end throws a TRUNCATED J2kError naming the absolute offset, so hostile
 * lengths never read garbage or loop.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  /** Offset of `bytes[0]` in the file, for error messages. */
  readonly base: number;
  pos: number;
  readonly end: number;
  readonly file: string | undefined;

  constructor(bytes: Uint8Array, opts: { start?: number; end?: number; base?: number; file?: string | undefined } = {}) {
    this.bytes = bytes;
    this.pos = opts.start ?? 0;
    this.end = opts.end ?? bytes.length;
    this.base = opts.base ?? 0;
    this.file = opts.file;
    if (this.end > bytes.length || this.pos < 0 || this.pos > this.end) {
      throw new RangeError(`ByteReader: bad window ${this.pos}..${this.end} of ${bytes.length}`);
    }
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Absolute file offset of the cursor. */
  get offset(): number {
    return this.base + this.pos;
  }

  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new J2kError(J2K_ERROR.TRUNCATED, `${what}: needs ${n} bytes, ${this.end - this.pos} left`, {
        file: this.file,
        offset: this.offset,
      });
    }
  }

  u8(what = 'byte'): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const b = this.bytes;
    const v = (b[this.pos]! << 8) | b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const b = this.bytes;
    const v = b[this.pos]! * 0x1000000 + ((b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!);
    this.pos += 4;
    return v;
  }

  /** A 64-bit unsigned value; throws if it exceeds 2^53 (no file is that big). */
  u64(what = 'u64'): number {
    const hi = this.u32(what);
    const lo = this.u32(what);
    if (hi >= 0x200000) {
      throw new J2kError(J2K_ERROR.BAD_VALUE, `${what}: 64-bit value too large`, { file: this.file, offset: this.offset - 8 });
    }
    return hi * 0x100000000 + lo;
  }

  bytesOf(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(n: number, what = 'skip'): void {
    this.need(n, what);
    this.pos += n;
  }

  error(code: (typeof J2K_ERROR)[keyof typeof J2K_ERROR], reason: string, at = this.offset): J2kError {
    return new J2kError(code, reason, { file: this.file, offset: at });
  }
}

/** Big-endian writer that grows as needed (box and marker writers). */
export class ByteWriter {
  private buf: Uint8Array;
  length = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf[this.length++] = (v >>> 8) & 0xff;
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf[this.length++] = (v >>> 24) & 0xff;
    this.buf[this.length++] = (v >>> 16) & 0xff;
    this.buf[this.length++] = (v >>> 8) & 0xff;
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64: ${v} is not a safe non-negative integer`);
    this.u32(Math.floor(v / 0x100000000));
    return this.u32(v >>> 0);
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** Overwrite a u32 at an earlier position (box lengths written after the body). */
  patchU32(at: number, v: number): void {
    this.buf[at] = (v >>> 24) & 0xff;
    this.buf[at + 1] = (v >>> 16) & 0xff;
    this.buf[at + 2] = (v >>> 8) & 0xff;
    this.buf[at + 3] = v & 0xff;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Four-character code of a box type as a string ("jp2c"). */
export function fourcc(v: number): string {
  return String.fromCharCode((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** The u32 of a four-character code. */
export function typeCode(s: string): number {
  if (s.length !== 4) throw new RangeError(`box type must be 4 characters: ${JSON.stringify(s)}`);
  return ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
}
