/**
 * Memory per idle session, and the worker's restart time.
 *
 * Starts the supervisor and its worker (the compiled worker from dist/ when it
 * is built, with --expose-gc), opens BENCH_SESSIONS sessions (default 2000)
 * on the movie fixture over a few keep-alive connections (so TCP connections
 * are not what is measured), each with one window served (what an idle
 * JHelioviewer session holds), then reads the worker's heap after a forced
 * collection. Then kills the worker with -9 and measures how long until a
 * client's next request, on its same connection, is answered by the new
 * worker with its session intact (the journal replay included).
 *
 *   npm run build && node --import tsx bench/sessions-memory.ts
 *   BENCH_SESSIONS=5000 BENCH_CONNECTIONS=16 node --import tsx bench/sessions-memory.ts
 *
 * Network: 127.0.0.1 only. Prints figures; asserts nothing.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../server/config.js';
import { JOURNAL_FILE } from '../server/journal.js';
import { Supervisor, type WorkerReady } from '../server/supervisor.js';

const SESSIONS = Number(process.env['BENCH_SESSIONS'] ?? 2000);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 8);
const WINDOW_LEN = Number(process.env['BENCH_WINDOW_LEN'] ?? 4000);
const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(here, '..', 'test', 'fixtures');
const distWorker = join(here, '..', 'dist', 'server', 'worker-main.js');

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

function get(agent: Agent, base: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function memory(agent: Agent, base: string): Promise<Memory & { pid: number; sessions: number }> {
  // Two collections apart: ArrayBuffer backing stores are released after the first one's sweep.
  await get(agent, base, '/health?gc=1');
  await new Promise((r) => setTimeout(r, 200));
  const r = await get(agent, base, '/health?gc=1');
  const h = JSON.parse(r.body.toString()) as { pid: number; sessions: number; collected?: boolean; memory?: Memory };
  if (!h.collected || !h.memory) throw new Error('the worker was not started with --expose-gc');
  return { ...h.memory, pid: h.pid, sessions: h.sessions };
}

const kb = (n: number): string => `${(n / 1024).toFixed(1)} KB`;
const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'jpip-bench-sessions-'));
  const stateDir = join(root, '.state');
  mkdirSync(join(root, 'movie', 'frames'), { recursive: true });
  for (const f of ['movie.jpx', 'linked.jpx', 'frames/frame 000.jp2', 'frames/frame 001.jp2', 'frames/frame 002.jp2']) copyFileSync(join(FIXTURES, 'movie', f), join(root, 'movie', f));
  const built = existsSync(distWorker);
  if (!built) process.stderr.write('note: dist/ is not built (npm run build): the worker runs under tsx, its restart is slower than in production\n');
  const config = validateConfig([{ root, port: 0, host: '127.0.0.1', stateDir, logLevel: 'error', maxSessions: Math.max(10_000, SESSIONS * 2), sessionIdleSeconds: 3600 }]);
  const sup = new Supervisor({
    config,
    workerModule: built ? distWorker : join(here, '..', 'server', 'worker-main.ts'),
    execArgv: built ? ['--expose-gc'] : ['--expose-gc', '--import', 'tsx'],
  });
  const base = await sup.start();
  const agents = Array.from({ length: CONNECTIONS }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
  try {
    const path = (extra: string): string => `/movie/movie.jpx?cnew=http&type=jpp-stream&stream=0&fsiz=128,128&len=${WINDOW_LEN}${extra}`;
    // Warm up: the image and its index are loaded once, shared by every session (not counted).
    await get(agents[0]!, base, '/movie/movie.jpx?stream=0-2&fsiz=128,128&len=100000');
    const before = await memory(agents[0]!, base);

    const t0 = performance.now();
    const cids: string[] = [];
    let next = 0;
    let bytes = 0;
    await Promise.all(
      agents.map(async (agent) => {
        while (next < SESSIONS) {
          next++;
          const r = await get(agent, base, path(''));
          if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body.toString()}`);
          bytes += r.body.length;
          cids.push(/cid=([^,]+)/.exec(String(r.headers['jpip-cnew']))![1]!);
        }
      }),
    );
    const openMs = performance.now() - t0;
    const after = await memory(agents[0]!, base);
    const n = after.sessions - before.sessions;
    const heap = after.heapUsed + after.external - (before.heapUsed + before.external);
    const rss = after.rss - before.rss;
    const journal = statSync(join(stateDir, JOURNAL_FILE)).size;

    // Restart: kill -9 the worker; time until an idle client's next request, on its connection,
    // is answered by the new worker with its session.
    const readyInfo = new Promise<WorkerReady>((resolve) => sup.once('worker-ready', resolve));
    const victim = sup.workerPid!;
    const probe = agents[1]!;
    const killedAt = performance.now();
    process.kill(victim, 'SIGKILL');
    const r = await get(probe, base, `/jpip?cid=${cids[0]}&stream=0&fsiz=64,64&len=10`);
    const answeredMs = performance.now() - killedAt;
    const ready = await readyInfo;
    let alive = 0;
    for (let i = 0; i < cids.length; i += Math.ceil(cids.length / 50)) {
      const x = await get(agents[i % CONNECTIONS]!, base, `/jpip?cid=${cids[i]}&stream=0&fsiz=64,64&len=10`);
      if (x.status === 200) alive++;
    }
    const restarted = await memory(agents[0]!, base);

    const lines = [
      `sessions-memory: ${n} idle sessions (one ${WINDOW_LEN}-byte window each) over ${CONNECTIONS} keep-alive connections`,
      `  machine: ${cpus().length} cores, Node ${process.version}; worker ${built ? 'dist/ (compiled)' : 'tsx (sources)'}`,
      `  opened in ${(openMs / 1000).toFixed(2)} s (${Math.round((n / openMs) * 1000)} sessions/s), ${mb(bytes)} served`,
      `  worker heap + external: ${mb(before.heapUsed + before.external)} -> ${mb(after.heapUsed + after.external)}: ${kb(heap / n)} per session (target < 20 KB)`,
      `  worker RSS:             ${mb(before.rss)} -> ${mb(after.rss)}: ${kb(rss / n)} per session`,
      `  session journal:        ${mb(journal)} on disk, ${kb(journal / n)} per session`,
      `  restart after kill -9:  worker ready in ${ready.restartMs} ms (journal replay of ${ready.sessions} sessions: ${ready.replayMs.toFixed(1)} ms);`,
      `                          an idle client's next request answered ${answeredMs.toFixed(0)} ms after the kill (status ${r.status}, same connection)`,
      `  after the restart:      ${alive} of 50 sampled sessions answer; worker heap + external ${mb(restarted.heapUsed + restarted.external)}, RSS ${mb(restarted.rss)}:`,
      `                          over a fresh worker without sessions (no garbage from serving): ${kb((restarted.heapUsed + restarted.external - before.heapUsed - before.external) / n)} heap + external, ${kb((restarted.rss - before.rss) / n)} RSS per session`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const a of agents) a.destroy();
    await sup.drain();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
