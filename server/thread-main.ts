import { parentPort, workerData } from 'node:worker_threads';

/**
 * The body of every worker thread of the pools (server/thread-pool.ts): loads its job module
 * (workerData.module, which exports `handle`), answers each job with the module's result, or with
 * `{ ok: false, message }` when it throws. A `stall` job blocks the thread (tests kill it so).
 */

interface Job {
  id: number;
  op: string;
  ms?: number;
}

const port = parentPort;
if (!port) throw new Error('thread-main: started as a worker thread by a thread pool only');
const { handle } = (await import(String((workerData as { module: string }).module))) as { handle: (job: Job) => object };
port.on('message', (m: Job) => {
  let out: object;
  try {
    if (m.op === 'stall') {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, m.ms ?? 0);
      out = { ok: false, message: 'stalled' };
    } else {
      out = handle(m);
    }
  } catch (e) {
    out = { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage({ ...out, id: m.id });
});
