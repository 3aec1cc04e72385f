import type { AssemblyAnswer, ToAssemblyThread } from './assembly-thread.js';
import { threadReads, type BodyChunk } from './responder.js';
import { ThreadPool } from './thread-pool.js';

/**
 * Worker threads that fill the image bytes of response chunks (config `assemblyThreads`). The
 * main thread plans a response and lays out each chunk (message headers, room for the bytes of
 * each data-bin piece) in a pooled buffer on a SharedArrayBuffer, with `deferReads`; a thread
 * reads the pieces into it (assembly-thread.ts) while the main thread serves other requests.
 * Whatever goes wrong on a thread (a read error, a thread that dies: it is replaced at once) only
 * means the main thread reads the pieces itself, as without threads, with the same errors: a
 * response's bytes never depend on where they were read.
 */
export class AssemblyPool extends ThreadPool<ToAssemblyThread, AssemblyAnswer & { id: number }> {
  /** Chunks filled on the threads, their bytes and the reads that took (tests, metrics). */
  chunks = 0;
  bytes = 0;
  preads = 0;
  /** Chunks a thread could not fill (the main thread then did). */
  failures = 0;

  constructor(size: number) {
    super('assembly-thread', size);
  }

  /** Whether `fill` can take the chunk: its buffer is a whole SharedArrayBuffer (threads write into it). */
  static canFill(chunk: BodyChunk): boolean {
    const b = chunk.buffer;
    return b !== undefined && b.byteOffset === 0 && b.buffer instanceof SharedArrayBuffer && b.buffer.byteLength === b.byteLength;
  }

  /** Fills the chunk's deferred reads on a thread; false when it could not (read them on the main thread then). */
  async fill(chunk: BodyChunk): Promise<boolean> {
    const reads = chunk.reads;
    if (!reads) return true;
    if (!AssemblyPool.canFill(chunk)) return false;
    const answer = await this.run({ op: 'fill', buffer: chunk.buffer!.buffer as SharedArrayBuffer, reads: threadReads(reads) });
    if (!answer?.ok) {
      this.failures++;
      return false;
    }
    this.chunks++;
    this.bytes += reads.bytes;
    this.preads += answer.preads;
    delete chunk.reads;
    return true;
  }
}
