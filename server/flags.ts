import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';

/**
 * Which connections have a request in flight, as four bytes per connection
 * slot in a small file of the state directory: the worker writes there the
 * sequence number of the request it is answering on that connection (0: none)
 * when the request arrives and clears it when the response is finished; the
 * supervisor reads the file only when the worker has died. With the session
 * journal (which names the requests whose data it recorded) it tells which
 * connections to reset (a request the client will never get an answer to),
 * which responses only lack their last chunk (the supervisor sends it), and
 * which connections to hand as they are to the next worker.
 *
 * Why a file: IPC messages per request cost a large share of throughput,
 * and processes share no memory in Node; a positional write of 4 bytes goes
 * to the page cache (under a microsecond, measured) and outlives a worker
 * killed with -9. Nothing is fsynced: it must outlive the process, not the
 * machine.
 */
export class InflightFlags {
  readonly path: string;
  private fd: number;
  private readonly buf = Buffer.alloc(4);

  /** `create`: a new, empty file (supervisor); `open`: the existing one (worker). */
  constructor(path: string, mode: 'create' | 'open') {
    this.path = path;
    this.fd = openSync(path, mode === 'create' ? 'w+' : 'r+');
  }

  /** Request `seq` (1 to 2^32-1) is in flight on `slot`; 0: nothing is. */
  set(slot: number, seq: number): void {
    if (slot < 0) return;
    this.buf.writeUInt32LE(seq >>> 0, 0);
    writeSync(this.fd, this.buf, 0, 4, slot * 4);
  }

  /** Slot -> sequence number of the request in flight there. */
  pending(): Map<number, number> {
    const size = fstatSync(this.fd).size;
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(this.fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    const out = new Map<number, number>();
    for (let i = 0; i + 4 <= got; i += 4) {
      const seq = buf.readUInt32LE(i);
      if (seq !== 0) out.set(i / 4, seq);
    }
    return out;
  }

  /** Clears every slot (before the next worker starts). */
  clear(): void {
    ftruncateSync(this.fd, 0);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
