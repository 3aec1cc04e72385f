/**
 * Side by side, in one run: our server against nginx serving plain byte ranges of the same size
 * from the same file (the practical limit of an HTTP server on this machine), driven by the same
 * client (wrk), runs alternating, figures printed as ratios (issue #9).
 *
 *   npm run build && node --import tsx bench/versus-nginx.ts
 *   BENCH_SECONDS=5 BENCH_ROUNDS=3 BENCH_CONNECTIONS=8 BENCH_JSON=out.json node --import tsx bench/versus-nginx.ts
 *   BENCH_ONLY=cache node --import tsx bench/versus-nginx.ts      (scenarios whose name starts so: big, small, cache)
 *
 * Scenarios (a 4096x4096 frame of the paper's class, made once with opj_compress):
 * - big:   each request a new connection and a new session, a 512x512 window at fsiz=2048,2048,
 *          len=200000 (~200 KB replies); nginx: `Range: bytes=0-(N-1)` of the same file, N our
 *          reply's body size, also a new connection per request.
 * - small: the same with len=20000 (~20 KB replies).
 * - hits:  keep-alive connections on 8 sessions that already hold the window: each reply is an
 *          EOR alone; nginx: a range of the same few bytes, keep-alive.
 * Our server runs as deployed (`jpip-bench serve`: supervisor + worker, the worker accepting new
 * connections itself; JPIP_BENCH_WORKER_ACCEPTS=false to measure the hand-off of every connection
 * instead) and, to measure what supervision costs, in a single process. Other server settings go
 * through JPIP_BENCH_* variables (JPIP_BENCH_RESPONSE_CACHE_BYTES=0: every response produced).
 *
 * Needs nginx, wrk and opj_compress: installed with apt-get when missing and running as root
 * (Debian: nginx-light, wrk, libopenjp2-tools); otherwise the script says what to install.
 * Network: 127.0.0.1 only. Prints figures; asserts nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readProc } from '../client-sim/measure.js';
import { generateFixtures } from '../fixtures-gen/generate.js';
import { CLI, startServe, type ServeProcess } from './serve-process.js';
import { ensureTool, freePort, waitFor } from './tools.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 8);
const WORK = join(tmpdir(), 'jpip-bench-versus');
const FRAME = 'frames/frame-000.jp2';
const WINDOW = 'fsiz=2048,2048&roff=768,768&rsiz=512,512&type=jpp-stream';

/** Targets of issue #9, as ratios to nginx (hits: an absolute rate, the ESA server's). */
const TARGETS = { big: 0.9, small: 0.6, hitsPerSecond: 35_000 };

interface Nginx {
  base: string;
  pids: () => number[];
  stop(): void;
}

async function startNginx(root: string): Promise<Nginx> {
  const port = await freePort();
  const dir = join(WORK, 'nginx');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'worker_processes auto;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'logs', 'error.log')};`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      '  sendfile on; tcp_nopush on; tcp_nodelay on;',
      '  keepalive_requests 1000000;',
      `  client_body_temp_path ${join(dir, 'tmp')};`,
      `  server { listen 127.0.0.1:${port}; root ${root}; }`,
      '}',
      '',
    ].join('\n'),
  );
  execFileSync('nginx', ['-c', conf, '-p', dir]);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/${FRAME}`, () => get(`${base}/${FRAME}`));
  const pidFile = join(dir, 'nginx.pid');
  const master = Number(readFileSync(pidFile, 'utf8').trim());
  return {
    base,
    pids: () => {
      const out = spawnSync('pgrep', ['-P', String(master)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
      return [master, ...out];
    },
    stop: () => {
      try {
        execFileSync('nginx', ['-c', conf, '-p', dir, '-s', 'stop']);
      } catch {
        /* already gone */
      }
    },
  };
}

async function startOurs(root: string, single: boolean): Promise<ServeProcess> {
  const args = ['--root', root, '--port', '0', '--log-level', 'error', '--cache-dir', join(WORK, 'index-cache')];
  // Each request of the big and small scenarios opens a session the client never uses again
  // (as the ESA server's one session per connection): let them expire after a second, not 5 minutes.
  args.push('--session-idle-seconds', '1', '--max-sessions', '100000');
  if (single) args.push('--single-process');
  const srv = await startServe(args);
  await waitFor(`${srv.url}/health`, () => get(`${srv.url}/health`));
  return srv;
}

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** One wrk run (one thread: the other core is the server's). */
function wrk(url: string, opts: { close: boolean; headers?: string[]; script?: string; seconds?: number | undefined }): WrkResult {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${opts.seconds ?? SECONDS}s`, '--latency', '--timeout', '10s'];
  if (opts.close) args.push('-H', 'Connection: close');
  for (const h of opts.headers ?? []) args.push('-H', h);
  if (opts.script) args.push('-s', opts.script);
  args.push(url);
  const out = execFileSync('wrk', args, { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out)?.[1];
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1];
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50Ms: p50 ? ms(p50) : NaN, p99Ms: p99 ? ms(p99) : NaN, errors, non2xx };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** A GET on a connection of its own (none kept between the runs, when servers may close them). */
function get(url: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function bodyBytes(url: string): Promise<number> {
  const r = await get(url);
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  return r.bytes;
}

/** Sessions that already hold the window, and a wrk script that cycles through them. */
async function warmSessions(base: string, count: number): Promise<string> {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await get(`${base}/${FRAME}?${WINDOW}&len=2000000&cnew=http`);
    const cid = /cid=([^,]+)/.exec(String(r.headers['jpip-cnew'] ?? ''))?.[1];
    if (!cid) throw new Error('no channel granted');
    paths.push(`/${FRAME}?${WINDOW}&len=2000000&cid=${cid}`);
  }
  const script = join(WORK, `hits-${Date.now()}.lua`);
  writeFileSync(script, [`local paths = {${paths.map((p) => JSON.stringify(p)).join(', ')}}`, 'local i = 0', 'request = function()', '  i = i % #paths + 1', '  return wrk.format("GET", paths[i])', 'end', ''].join('\n'));
  return script;
}

function rss(pids: number[]): number {
  return pids.reduce((s, p) => s + (readProc(p)?.rssBytes ?? 0), 0);
}

interface Row {
  scenario: string;
  replyBytes: number;
  nginx: WrkResult[];
  ours: WrkResult[];
  single: WrkResult[];
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) {
    console.error(`${CLI} is missing: run npm run build first`);
    process.exit(1);
  }
  ensureTool('nginx', 'nginx-light');
  ensureTool('wrk', 'wrk');
  ensureTool('opj_compress', 'libopenjp2-tools');
  mkdirSync(WORK, { recursive: true });
  const root = join(WORK, 'set');
  const made = await generateFixtures({ preset: 'paper', out: root, overrides: { movies: 1, frames: 1, pool: 1 } });
  console.log(`image: ${FRAME} of ${made.dir} (4096x4096, paper preset, opj_compress)`);
  rmSync(join(WORK, 'index-cache'), { recursive: true, force: true });

  const nginx = await startNginx(root);
  const ours = await startOurs(root, false);
  const single = await startOurs(root, true);
  const rows: Row[] = [];
  const memory = { oursPeakRss: 0, singlePeakRss: 0, nginxPeakRss: 0 };
  try {
    const big = await bodyBytes(`${ours.url}/${FRAME}?${WINDOW}&len=200000`);
    const small = await bodyBytes(`${ours.url}/${FRAME}?${WINDOW}&len=20000`);
    const hitBytes = await bodyBytes(`${ours.url}${/"([^"]+)"/.exec(readFileSync(await warmSessions(ours.url, 1), 'utf8'))![1]!}`);
    console.log(`reply bodies: big ${big} B, small ${small} B, cache hit ${hitBytes} B; ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s, alternating`);
    const scenarios = [
      { name: 'big (new connection + session, len=200000)', bytes: big, close: true, q: `len=200000&cnew=http` },
      { name: 'small (new connection + session, len=20000)', bytes: small, close: true, q: `len=20000&cnew=http` },
      { name: 'cache hits (keep-alive sessions)', bytes: hitBytes, close: false, q: '' },
    ];
    const only = process.env['BENCH_ONLY']?.split(',');
    for (const sc of scenarios.filter((x) => !only || only.some((o) => x.name.startsWith(o)))) {
      const row: Row = { scenario: sc.name, replyBytes: sc.bytes, nginx: [], ours: [], single: [] };
      const range = [`Range: bytes=0-${sc.bytes - 1}`];
      const runNginx = (): void => {
        row.nginx.push(wrk(`${nginx.base}/${FRAME}`, { close: sc.close, headers: range }));
        memory.nginxPeakRss = Math.max(memory.nginxPeakRss, rss(nginx.pids()));
      };
      // Sessions idle for a second expire (see startOurs): the hit scenario's are made just before each run.
      const one = async (srv: ServeProcess, seconds?: number): Promise<WrkResult> =>
        sc.q ? wrk(`${srv.url}/${FRAME}?${WINDOW}&${sc.q}`, { close: sc.close, seconds }) : wrk(`${srv.url}/${FRAME}`, { close: false, script: await warmSessions(srv.url, 8), seconds });
      const runOurs = async (): Promise<void> => {
        row.ours.push(await one(ours));
        memory.oursPeakRss = Math.max(memory.oursPeakRss, rss(ours.pids));
        row.single.push(await one(single));
        memory.singlePeakRss = Math.max(memory.singlePeakRss, rss(single.pids));
      };
      // A short unmeasured run on each side first: the JIT compiles the hot path, caches fill.
      await one(ours, 1);
      await one(single, 1);
      wrk(`${nginx.base}/${FRAME}`, { close: sc.close, headers: range, seconds: 1 });
      for (let r = 0; r < ROUNDS; r++) {
        if (r % 2 === 0) {
          runNginx();
          await runOurs();
        } else {
          await runOurs();
          runNginx();
        }
        process.stderr.write(`  ${sc.name}: round ${r + 1}/${ROUNDS} nginx ${row.nginx.at(-1)!.rps.toFixed(0)}/s, ours ${row.ours.at(-1)!.rps.toFixed(0)}/s, single ${row.single.at(-1)!.rps.toFixed(0)}/s\n`);
      }
      rows.push(row);
    }
  } finally {
    nginx.stop();
    await ours.stop();
    await single.stop();
  }

  const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
  console.log('');
  console.log('| scenario | reply | nginx resp/s | ours resp/s (ratio) | single process resp/s (ratio) | p99 nginx / ours / single | errors ours |');
  console.log('|---|---|---|---|---|---|---|');
  const summary = rows.map((row) => {
    const n = median(row.nginx.map((x) => x.rps));
    const o = median(row.ours.map((x) => x.rps));
    const s = median(row.single.map((x) => x.rps));
    const errors = [...row.ours, ...row.single].reduce((a, x) => a + x.errors + x.non2xx, 0);
    console.log(
      `| ${row.scenario} | ${fmt(row.replyBytes)} B | ${fmt(n)} | ${fmt(o)} (${(o / n).toFixed(2)}) | ${fmt(s)} (${(s / n).toFixed(2)}) | ${median(row.nginx.map((x) => x.p99Ms)).toFixed(1)} / ${median(row.ours.map((x) => x.p99Ms)).toFixed(1)} / ${median(row.single.map((x) => x.p99Ms)).toFixed(1)} ms | ${errors} |`,
    );
    return { scenario: row.scenario, replyBytes: row.replyBytes, nginx: n, ours: o, single: s, ratio: o / n, singleRatio: s / n, errors, runs: row };
  });
  const find = (prefix: string): (typeof summary)[number] | undefined => summary.find((x) => x.scenario.startsWith(prefix));
  const b = find('big');
  const sm = find('small');
  const h = find('cache');
  console.log('');
  if (b) console.log(`target (issue #9) big windows >= ${TARGETS.big} of nginx: ${b.ratio.toFixed(3)} ${b.ratio >= TARGETS.big ? 'MET' : 'not met'}`);
  if (sm) console.log(`target (issue #9) small windows >= ${TARGETS.small} of nginx: ${sm.ratio.toFixed(3)} ${sm.ratio >= TARGETS.small ? 'MET' : 'not met'}`);
  if (h) console.log(`target (issue #9) cache hits >= ${fmt(TARGETS.hitsPerSecond)}/s: ${fmt(h.ours)}/s ${h.ours >= TARGETS.hitsPerSecond ? 'MET' : 'not met'}`);
  if (b && sm) console.log(`supervision (supervised / single process): big ${(b.ours / b.single).toFixed(2)}, small ${(sm.ours / sm.single).toFixed(2)}`);
  console.log(`peak RSS: ours (supervisor + worker) ${(memory.oursPeakRss / 2 ** 20).toFixed(0)} MB, single process ${(memory.singlePeakRss / 2 ** 20).toFixed(0)} MB, nginx (all processes) ${(memory.nginxPeakRss / 2 ** 20).toFixed(0)} MB`);
  const jsonOut = process.env['BENCH_JSON'];
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, summary, memory }, null, 2));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? `${e.message}${e.cause ? ` (${String((e.cause as Error).message ?? e.cause)})` : ''}` : e);
  process.exit(1);
});
