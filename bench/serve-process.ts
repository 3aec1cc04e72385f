/**
 * `jpip-bench serve` (compiled, from dist/) in processes of its own, for the benchmarks: started
 * with the given flags, known by its start line (supervisor and worker pids, URL), stopped with
 * SIGTERM (the server drains and exits).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin', 'jpip-bench.js');

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** null with --single-process. */
  supervisor: number | null;
  worker: number;
  /** The server's processes (supervisor and worker, or the single one). */
  pids: number[];
  stop(): Promise<void>;
}

/**
 * Starts `jpip-bench serve --quiet` with `args`; resolves on its start line. stderr is inherited
 * unless `stderr: 'pipe'` (then read it from `child.stderr`); `env` replaces the environment.
 */
export function startServe(args: readonly string[], opts: { stderr?: 'inherit' | 'pipe'; env?: NodeJS.ProcessEnv } = {}): Promise<ServeProcess> {
  if (!existsSync(CLI)) return Promise.reject(new Error(`${CLI} is missing: run npm run build first`));
  const child = spawn(process.execPath, [CLI, 'serve', '--quiet', ...args], { stdio: ['ignore', 'pipe', opts.stderr ?? 'inherit'], env: opts.env ?? process.env });
  return new Promise((resolve, reject) => {
    let buf = '';
    let started = false;
    const onExit = (code: number | null): void => reject(new Error(`jpip-bench serve exited (${code}) before it started`));
    child.once('exit', onExit);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (started || nl < 0) return;
      started = true;
      child.off('exit', onExit);
      const start = JSON.parse(buf.slice(0, nl)) as { supervisor: number | null; worker: number; url: string };
      resolve({
        child,
        url: start.url,
        supervisor: start.supervisor,
        worker: start.worker,
        pids: [start.supervisor, start.worker].filter((p): p is number => typeof p === 'number'),
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}
