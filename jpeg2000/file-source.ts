import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { J2K_ERROR, J2kError } from './errors.js';
import type { RandomAccess } from './source.js';

/*
 * The Node side of RandomAccess: a file read with synchronous positional reads
 * (pread), fast from the page cache and safe to share between worker threads.
 */

/** A RandomAccess over an open file descriptor. `close()` releases it. */
export interface FileSource extends RandomAccess {
  readInto(pos: number, len: number, out: Uint8Array, outPos: number): void;
  readonly fd: number;
  readonly mtimeMs: number;
  close(): void;
}

export function openFileSource(path: string, name: string = path): FileSource {
  const fd = openSync(path, 'r');
  let st;
  try {
    st = fstatSync(fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const size = st.size;
  let closed = false;
  const readInto = (pos: number, len: number, out: Uint8Array, outPos: number): void => {
    if (pos < 0 || len < 0 || pos + len > size) {
      throw new J2kError(J2K_ERROR.TRUNCATED, `read of ${len} bytes past the end (size ${size})`, { file: name, offset: pos });
    }
    if (outPos < 0 || outPos + len > out.length) throw new RangeError(`readInto: ${len} bytes at ${outPos} do not fit a buffer of ${out.length}`);
    let done = 0;
    while (done < len) {
      const n = readSync(fd, out, outPos + done, len - done, pos + done);
      if (n === 0) {
        throw new J2kError(J2K_ERROR.TRUNCATED, `file shrank while reading`, { file: name, offset: pos + done });
      }
      done += n;
    }
  };
  return {
    fd,
    size,
    name,
    mtimeMs: st.mtimeMs,
    read(pos: number, len: number): Uint8Array {
      const out = new Uint8Array(len);
      readInto(pos, len, out, 0);
      return out;
    },
    readInto,
    close(): void {
      if (!closed) {
        closed = true;
        closeSync(fd);
      }
    },
  };
}

