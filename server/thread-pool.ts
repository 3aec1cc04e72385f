import { Worker, type TransferListItem } from 'node:worker_threads';

/**
 * Worker threads of the worker process, each running one job module (server/thread-main.ts loads
 * it): jobs go to the least busy thread, a thread that dies is replaced at once and its jobs end
 * with `undefined` (the caller then does the work on the main thread). The index pool and the
 * assembly pool are built on it.
 */

/** Every job carries an id; every answer repeats it. */
export interface ThreadAnswer {
  id: number;
}

interface Thread<Out> {
  worker: Worker;
  jobs: Map<number, (r: Out | undefined) => void>;
}

export class ThreadPool<In extends object, Out extends ThreadAnswer> {
  readonly size: number;
  private readonly module: string;
  private readonly threads: Thread<Out>[] = [];
  private nextId = 1;
  protected closed = false;
  /** Threads started to replace dead ones. */
  restarts = 0;

  /** `module`: the job module's base name in server/ (e.g. 'index-thread'). */
  constructor(module: string, size: number) {
    this.module = module;
    this.size = size;
    for (let i = 0; i < size; i++) this.threads.push(this.spawn());
  }

  private spawn(): Thread<Out> {
    // From the sources (tests, node --import tsx) a .ts thread entry does not load on Node 20, even
    // under tsx: a .mjs bootstrap registers tsx first. From dist/ the compiled .js runs directly.
    const fromSources = import.meta.url.endsWith('.ts');
    const entry = new URL(fromSources ? './thread-main.mjs' : './thread-main.js', import.meta.url);
    const worker = new Worker(entry, { workerData: { module: `./${this.module}.${fromSources ? 'ts' : 'js'}` } });
    worker.unref();
    const th: Thread<Out> = { worker, jobs: new Map() };
    worker.on('message', (m: Out) => {
      const done = th.jobs.get(m.id);
      th.jobs.delete(m.id);
      done?.(m);
    });
    worker.on('error', () => {
      /* followed by 'exit' */
    });
    worker.on('exit', () => {
      for (const done of th.jobs.values()) done(undefined);
      th.jobs.clear();
      const i = this.threads.indexOf(th);
      if (i < 0 || this.closed) return;
      this.threads[i] = this.spawn();
      this.restarts++;
    });
    return th;
  }

  /** Worker thread ids (tests). */
  get threadIds(): number[] {
    return this.threads.map((t) => t.worker.threadId);
  }

  /** Jobs waiting or running, over all threads. */
  get busy(): number {
    let n = 0;
    for (const t of this.threads) n += t.jobs.size;
    return n;
  }

  /** Terminates one thread, as a crash would (tests). */
  kill(i: number): Promise<number> {
    return this.threads[i]!.worker.terminate();
  }

  /** Runs a job on the least busy thread; undefined if its thread died (or the pool is closed). */
  run(job: In, transfer?: readonly TransferListItem[]): Promise<Out | undefined> {
    if (this.closed || this.threads.length === 0) return Promise.resolve(undefined);
    let th = this.threads[0]!;
    for (const t of this.threads) if (t.jobs.size < th.jobs.size) th = t;
    const id = this.nextId++;
    return new Promise((resolve) => {
      th.jobs.set(id, resolve);
      th.worker.postMessage({ ...job, id }, transfer);
    });
  }

  /** Blocks one thread for ms (tests: a job to kill it under); resolves undefined. */
  async stall(ms: number): Promise<undefined> {
    await this.run({ op: 'stall', ms } as unknown as In);
    return undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads.length = 0;
  }
}
