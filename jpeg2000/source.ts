import { J2K_ERROR, J2kError } from './errors.js';

/**
 * Random access to the bytes of a file or buffer. Parsers read through this so
 * a multi-gigabyte file is never loaded whole: only headers and the byte ranges
 * asked for. Plain JS (a browser can use it); the file-backed source, with
 * synchronous positional reads (`pread`), is in file-source.ts.
 */
export interface RandomAccess {
  /** Total size in bytes. */
  readonly size: number;
  /** Name used in error messages. */
  readonly name?: string | undefined;
  /** Offset of byte 0 of this source in the file `name` (a codestream inside a JP2): error messages add it. */
  readonly origin?: number | undefined;
  /**
   * The descriptor of the file `name` when the bytes come straight from one (byte `pos` of this
   * source is byte `origin + pos` of it): worker threads of the same process may read it themselves.
   */
  readonly fd?: number | undefined;
  /** Exactly `len` bytes at `pos`; throws TRUNCATED if they are not all there. */
  read(pos: number, len: number): Uint8Array;
  /**
   * Copies exactly `len` bytes at `pos` into `out` at `outPos`, without an intermediate buffer
   * (optional: `readInto` below falls back to `read`). Same errors as `read`.
   */
  readInto?(pos: number, len: number, out: Uint8Array, outPos: number): void;
}

/** Copies `len` bytes at `pos` of `src` into `out` at `outPos`, directly when the source can. */
export function readInto(src: RandomAccess, pos: number, len: number, out: Uint8Array, outPos: number): void {
  if (src.readInto) src.readInto(pos, len, out, outPos);
  else out.set(src.read(pos, len), outPos);
}

/** A RandomAccess over an in-memory buffer (tests, small files). */
export function bufferSource(bytes: Uint8Array, name?: string): RandomAccess {
  const read = (pos: number, len: number): Uint8Array => {
    if (pos < 0 || len < 0 || pos + len > bytes.length) {
      throw new J2kError(J2K_ERROR.TRUNCATED, `read of ${len} bytes past the end (size ${bytes.length})`, { file: name, offset: pos });
    }
    return bytes.subarray(pos, pos + len);
  };
  return {
    size: bytes.length,
    name,
    read,
    readInto(pos: number, len: number, out: Uint8Array, outPos: number): void {
      out.set(read(pos, len), outPos);
    },
  };
}

/** A window [start, start+length) of another source, with offsets relative to start. */
export function subSource(src: RandomAccess, start: number, length: number): RandomAccess {
  if (start < 0 || length < 0 || start + length > src.size) {
    throw new J2kError(J2K_ERROR.TRUNCATED, `range ${start}+${length} is past the end (size ${src.size})`, { file: src.name, offset: start });
  }
  const check = (pos: number, len: number): void => {
    if (pos < 0 || len < 0 || pos + len > length) {
      throw new J2kError(J2K_ERROR.TRUNCATED, `read of ${len} bytes past the end of the codestream (size ${length})`, {
        file: src.name,
        offset: start + pos,
      });
    }
  };
  return {
    size: length,
    name: src.name,
    origin: (src.origin ?? 0) + start,
    fd: src.fd,
    read(pos: number, len: number): Uint8Array {
      check(pos, len);
      return src.read(start + pos, len);
    },
    readInto(pos: number, len: number, out: Uint8Array, outPos: number): void {
      check(pos, len);
      readInto(src, start + pos, len, out, outPos);
    },
  };
}
