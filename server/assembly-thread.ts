import { readSync } from 'node:fs';

/**
 * A worker thread of the assembly pool (assembly-pool.ts): fills the image bytes of a response
 * chunk. The main thread has laid out the chunk (message headers written, room left for each
 * piece of a data-bin) in a buffer on a SharedArrayBuffer and lists the pieces as
 * [fd, file offset, length, buffer offset]; the thread reads them with positional reads on the
 * main thread's descriptors (one process: the descriptors are shared, and the main thread keeps
 * the file open until the chunk is written). Pieces close together in the file are read with one
 * `pread` into scratch memory and copied out: a 200 KB reply is hundreds of pieces.
 */

export interface ToAssemblyThread {
  op: 'fill';
  buffer: SharedArrayBuffer;
  reads: Float64Array;
}

export type AssemblyAnswer = { ok: true; preads: number } | { ok: false; message: string };

/** Pieces at most this far apart in the file are read together. */
const GAP = 4096;
/** Largest span read at once. */
const SPAN = 1 << 20;

let scratch = Buffer.allocUnsafe(64 * 1024);

function readFully(fd: number, out: Uint8Array, outPos: number, len: number, pos: number): void {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, out, outPos + done, len - done, pos + done);
    if (n === 0) throw new Error(`file shrank: ${len} bytes at ${pos} wanted, ${done} read`);
    done += n;
  }
}

/** A job (run by server/thread-main.ts, which adds the id and turns a throw into ok: false). */
export function handle(m: ToAssemblyThread): AssemblyAnswer {
  const out = new Uint8Array(m.buffer);
  const r = m.reads;
  const count = r.length / 4;
  // In file order (descriptor, then offset), to merge neighbours.
  const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => r[4 * a]! - r[4 * b]! || r[4 * a + 1]! - r[4 * b + 1]!);
  let preads = 0;
  let i = 0;
  while (i < count) {
    const first = order[i]!;
    const fd = r[4 * first]!;
    const start = r[4 * first + 1]!;
    let end = start + r[4 * first + 2]!;
    let j = i + 1;
    for (; j < count; j++) {
      const k = order[j]!;
      const at = r[4 * k + 1]!;
      const stop = at + r[4 * k + 2]!;
      if (r[4 * k] !== fd || at > end + GAP || Math.max(end, stop) - start > SPAN) break;
      end = Math.max(end, stop);
    }
    preads++;
    if (j === i + 1) {
      readFully(fd, out, r[4 * first + 3]!, end - start, start);
    } else {
      if (scratch.length < end - start) scratch = Buffer.allocUnsafe(end - start);
      readFully(fd, scratch, 0, end - start, start);
      for (let q = i; q < j; q++) {
        const k = order[q]!;
        const at = r[4 * k + 1]! - start;
        out.set(scratch.subarray(at, at + r[4 * k + 2]!), r[4 * k + 3]!);
      }
    }
    i = j;
  }
  return { ok: true, preads };
}
