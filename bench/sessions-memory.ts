/**
 * Memory per idle session, and the worker's restart time.
 *
 * Starts `jpip-bench serve` (supervisor and worker, compiled: run npm run build
 * first; with --expose-gc), opens BENCH_SESSIONS sessions (default 2000)
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
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readProc } from '../client-sim/measure.js';
import { JOURNAL_FILE } from '../server/journal.js';
import { startServe } from './serve-process.js';

const SESSIONS = Number(process.env['BENCH_SESSIONS'] ?? 2000);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 8);
const WINDOW_LEN = Number(process.env['BENCH_WINDOW_LEN'] ?? 4000);
const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(here, '..', 'test', 'fixtures');

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
  // The server as deployed (jpip-bench serve: supervisor and worker, compiled), in processes of
  // its own, so that each one's memory is its own; --expose-gc (through NODE_OPTIONS, inherited by
  // the worker) lets /health?gc=1 collect before the figures.
  const start = await startServe(
    ['--root', root, '--port', '0', '--state-dir', stateDir, '--log-level', 'warn', '--max-sessions', String(Math.max(10_000, SESSIONS * 2)), '--max-connections', String(Math.max(2048, CONNECTIONS + 64)), '--session-idle-seconds', '3600'],
    { stderr: 'pipe', env: { ...process.env, NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --expose-gc` } },
  );
  const restartLog = new Promise<{ restartMs: number; sessions: number; replayMs: number }>((resolve) => {
    let buf = '';
    start.child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes('"worker-restarted"')) resolve(JSON.parse(line) as { restartMs: number; sessions: number; replayMs: number });
      }
    });
  });
  const base = start.url;
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
      agents.map(async (agent, i) => {
        // Connections open in waves of 500 (10,000 at once would overflow the accept queue).
        await new Promise((r) => setTimeout(r, Math.floor(i / 500) * 100));
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
    const readyInfo = restartLog;
    const victim = start.worker;
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

    // "In all": the worker, plus this process (the supervisor, with the clients' own sockets and
    // agents: an upper bound of the supervisor's share).
    const supervisorRss = start.supervisor !== null ? (readProc(start.supervisor)?.rssBytes ?? NaN) : NaN;
    const lines = [
      `sessions-memory: ${n} idle sessions (one ${WINDOW_LEN}-byte window each) over ${CONNECTIONS} keep-alive connections`,
      `  machine: ${cpus().length} cores, Node ${process.version}; jpip-bench serve from dist/ (compiled)`,
      `  opened in ${(openMs / 1000).toFixed(2)} s (${Math.round((n / openMs) * 1000)} sessions/s), ${mb(bytes)} served`,
      `  worker heap + external: ${mb(before.heapUsed + before.external)} -> ${mb(after.heapUsed + after.external)}: ${kb(heap / n)} per session (target < 20 KB)`,
      `  worker RSS:             ${mb(before.rss)} -> ${mb(after.rss)}: ${kb(rss / n)} per session`,
      `  session journal:        ${mb(journal)} on disk, ${kb(journal / n)} per session`,
      `  in all, with ${CONNECTIONS} connections open: worker RSS ${mb(after.rss)} + supervisor RSS ${mb(supervisorRss)} = ${mb(after.rss + supervisorRss)} (target for 10,000 sessions and connections: < 500 MB)`,
      `  restart after kill -9:  worker ready in ${ready.restartMs} ms (journal replay of ${ready.sessions} sessions: ${ready.replayMs.toFixed(1)} ms);`,
      `                          an idle client's next request answered ${answeredMs.toFixed(0)} ms after the kill (status ${r.status}, same connection)`,
      `  after the restart:      ${alive} of 50 sampled sessions answer; worker heap + external ${mb(restarted.heapUsed + restarted.external)}, RSS ${mb(restarted.rss)}:`,
      `                          over a fresh worker without sessions (no garbage from serving): ${kb((restarted.heapUsed + restarted.external - before.heapUsed - before.external) / n)} heap + external, ${kb((restarted.rss - before.rss) / n)} RSS per session`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const a of agents) a.destroy();
    await start.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
