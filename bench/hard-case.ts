/**
 * The ESA paper's hardest case, scaled by environment: BENCH_CONNECTIONS
 * simultaneous connections (default 1500) asking for images among
 * BENCH_FILES files (default 20,000; the paper's 1,500,000 works the same
 * but takes minutes to create). Shows that memory and descriptors stay
 * bounded by the budgets (maxOpenFiles, indexCacheBytes), not by the number
 * of files or connections.
 *
 * The files are hard links to one small fixture: distinct paths, so the
 * server opens and indexes each as its own image.
 *
 *   npm run build && node --import tsx bench/hard-case.ts
 *   BENCH_FILES=200000 BENCH_ROUNDS=5 node --import tsx bench/hard-case.ts
 *
 * Network: 127.0.0.1 only. Prints figures; asserts nothing.
 */
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../server/config.js';
import { Supervisor } from '../server/supervisor.js';

const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 1500);
const FILES = Number(process.env['BENCH_FILES'] ?? 20_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const MAX_OPEN = Number(process.env['BENCH_MAX_OPEN_FILES'] ?? 512);
const INDEX_BYTES = Number(process.env['BENCH_INDEX_BYTES'] ?? 8 * 1024 * 1024);
const here = dirname(fileURLToPath(import.meta.url));
const distWorker = join(here, '..', 'dist', 'server', 'worker-main.js');

function status(pid: number): { rssKb: number; fds: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rssKb: Number(/VmRSS:\s+(\d+)/.exec(s)![1]), fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** One request on a raw keep-alive socket; resolves with the status code when the whole response is in. */
function ask(s: Socket, path: string): Promise<number> {
  return askText(s, path).then((t) => Number(t.slice(9, 12)));
}

function askText(s: Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      data = Buffer.concat([data, d]);
      const text = data.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = /content-length: (\d+)/i.exec(text.slice(0, head));
      const done = len ? data.length >= head + 4 + Number(len[1]) : text.endsWith('\r\n0\r\n\r\n');
      if (done) {
        s.off('data', onData);
        s.off('error', reject);
        resolve(text);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

async function main(): Promise<void> {
  const built = existsSync(distWorker);
  if (!built) process.stderr.write('note: dist/ is not built (npm run build): the worker runs under tsx\n');
  const root = mkdtempSync(join(tmpdir(), 'jpip-bench-hard-'));
  const source = join(here, '..', 'test', 'fixtures', 'g64-n1-cb32-prec32.j2k');
  const t0 = performance.now();
  for (let i = 0; i < FILES; i++) {
    const d = join(root, String(i % 1000).padStart(3, '0'));
    if (i < 1000) mkdirSync(d);
    linkSync(source, join(d, `f${i}.j2k`));
  }
  const createMs = performance.now() - t0;
  const config = validateConfig([
    { root, port: 0, stateDir: join(root, '.state'), logLevel: 'error', maxConnections: CONNECTIONS + 100, maxOpenFiles: MAX_OPEN, indexCacheBytes: INDEX_BYTES },
  ]);
  const sup = new Supervisor({ config, workerModule: built ? distWorker : join(here, '..', 'server', 'worker-main.ts'), execArgv: built ? [] : ['--import', 'tsx'] });
  const base = new URL(await sup.start());
  const worker = sup.workerPid!;
  const idle = status(worker);
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = connect(Number(base.port), '127.0.0.1');
      s.on('error', () => {});
      sockets.push(s);
    }
    await Promise.all(sockets.map((s) => new Promise((r) => s.once('connect', r))));
    let requests = 0;
    let errors = 0;
    const peak = { rssKb: 0, fds: 0, supervisorFds: 0 };
    const t1 = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        sockets.map(async (s) => {
          const f = Math.floor(Math.random() * FILES);
          const code = await ask(s, `/${String(f % 1000).padStart(3, '0')}/f${f}.j2k?fsiz=64,64&len=2000`);
          requests++;
          if (code !== 200) errors++;
        }),
      );
      const now = status(worker);
      peak.rssKb = Math.max(peak.rssKb, now.rssKb);
      peak.fds = Math.max(peak.fds, now.fds);
      peak.supervisorFds = Math.max(peak.supervisorFds, readdirSync('/proc/self/fd').length);
    }
    const runMs = performance.now() - t1;
    const metrics = await askText(sockets[0]!, '/metrics');
    const metric = (name: string): number => Number(new RegExp(`\\n${name} (\\d+)`).exec(metrics)?.[1] ?? NaN);
    const lines = [
      `hard-case: ${CONNECTIONS} simultaneous connections, ${FILES} image files (created in ${(createMs / 1000).toFixed(1)} s), ${ROUNDS} rounds`,
      `  machine: ${cpus().length} cores, Node ${process.version}; budgets: maxOpenFiles ${MAX_OPEN}, indexCacheBytes ${(INDEX_BYTES / 1024 / 1024).toFixed(0)} MB`,
      `  ${requests} requests in ${(runMs / 1000).toFixed(1)} s, ${errors} not 200`,
      `  worker RSS: ${(idle.rssKb / 1024).toFixed(1)} MB idle -> ${(peak.rssKb / 1024).toFixed(1)} MB peak`,
      `  worker descriptors: ${idle.fds} idle -> ${peak.fds} peak (= connections + at most maxOpenFiles image files + a few)`,
      `  at the end: ${metric('jpip_open_image_files')} image files open, ${metric('jpip_index_cache_entries')} indexes, ${(metric('jpip_index_cache_bytes') / 1024).toFixed(0)} KB of index`,
      `  this process (clients and supervisor, each connection counted twice): ${peak.supervisorFds} descriptors at peak`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const s of sockets) s.destroy();
    await sup.drain();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
