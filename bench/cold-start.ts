/**
 * Cold start (issue #9): how long the first response for a 4096x4096 image the server has never
 * opened takes, without and then with its index cache file.
 *
 *   npm run build && node --import tsx bench/cold-start.ts
 *   BENCH_IMAGES=40 node --import tsx bench/cold-start.ts
 *
 * Makes one frame of the paper's class (opj_compress, PLT markers) and BENCH_IMAGES copies of it
 * under distinct names, so that each copy is an image the server never opened. Starts the server
 * as deployed (supervisor + worker, compiled) with an empty index cache directory and asks each
 * copy once, on a new connection, for a first window (a 512x512 window at fsiz=2048,2048,
 * len=20000, with a new session, as a viewer opening the image does): the time from sending the
 * request to the last byte of the reply; then the same on one kept connection for all (a viewer
 * opening another image on the connection it has). Each time, it then restarts the server (a new process: nothing in
 * memory) with the cache files the first pass wrote, and asks again. The files are in the page
 * cache in both passes (this measures the server, not the disk).
 *
 * Targets: under 20 ms cold, under 2 ms with the cache file. Prints figures; asserts nothing.
 * Network: 127.0.0.1 only.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateFixtures } from '../fixtures-gen/generate.js';
import { CLI, startServe } from './serve-process.js';

const IMAGES = Number(process.env['BENCH_IMAGES'] ?? 20);
const WORK = join(tmpdir(), 'jpip-bench-cold-start');
const QUERY = 'fsiz=2048,2048&roff=768,768&rsiz=512,512&len=20000&type=jpp-stream&cnew=http';

/** Milliseconds from sending the request to the last byte of the reply: on a new connection, or on `agent`'s kept one. */
function timeRequest(url: string, agent?: Agent): Promise<{ ms: number; bytes: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, agent ? { agent } : { agent: false, headers: { connection: 'close' } }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ ms: performance.now() - t0, bytes, status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `median ${q(0.5).toFixed(2)} ms, p90 ${q(0.9).toFixed(2)} ms, min ${s[0]!.toFixed(2)} ms, max ${s.at(-1)!.toFixed(2)} ms`;
}

/** How long each server took to finish warming up after its start line (ms). */
const warmUpMs: number[] = [];

async function pass(root: string, cacheDir: string, names: string[], keepAlive: boolean): Promise<{ first: number[]; open: number[] }> {
  const srv = await startServe(['--root', root, '--port', '0', '--log-level', 'error', '--cache-dir', cacheDir]);
  const base = srv.url;
  // keepAlive: one connection for every request (a viewer opening another image on the connection
  // it has): what is measured is the server's work, without a new connection's hand-off.
  const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : undefined;
  try {
    // The server warms itself up after it starts (config warmUp, on in `jpip-bench serve`): wait for
    // that, as a server in service has, then one request to another image: only the image is new.
    const warmFrom = performance.now();
    while ((await (await fetch(`${base}/health`)).json() as { warmingUp?: boolean }).warmingUp) await new Promise((r) => setTimeout(r, 20));
    warmUpMs.push(performance.now() - warmFrom);
    await timeRequest(`${base}/warm/frame-000.jp2?${QUERY}`, agent);
    const first: number[] = [];
    for (const n of names) {
      const r = await timeRequest(`${base}/${n}?${QUERY}`, agent);
      if (r.status !== 200 || r.bytes < 1000) throw new Error(`${n}: HTTP ${r.status}, ${r.bytes} bytes`);
      first.push(r.ms);
    }
    // The same requests again, the images now open: the floor (connection, hand-off, the reply itself).
    const open: number[] = [];
    for (const n of names) open.push((await timeRequest(`${base}/${n}?${QUERY}`, agent)).ms);
    return { first, open };
  } finally {
    agent?.destroy();
    await srv.stop();
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  if (spawnSync('sh', ['-c', 'command -v opj_compress'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('opj_compress is missing: install it (Debian/Ubuntu: sudo apt-get install libopenjp2-tools) and run again');
  }
  const set = join(WORK, 'set');
  await generateFixtures({ preset: 'paper', out: set, overrides: { movies: 1, frames: 1, pool: 1 } });
  const frame = join(set, 'frames', 'frame-000.jp2');
  const root = join(WORK, 'root');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'warm'), { recursive: true });
  copyFileSync(frame, join(root, 'warm', 'frame-000.jp2'));
  const names: string[] = [];
  for (let i = 0; i < IMAGES; i++) {
    const n = `copy-${String(i).padStart(3, '0')}.jp2`;
    copyFileSync(frame, join(root, n));
    names.push(n);
  }
  const cacheDir = join(WORK, 'index-cache');

  for (const keepAlive of [false, true]) {
    rmSync(cacheDir, { recursive: true, force: true });
    mkdirSync(cacheDir, { recursive: true });
    const cold = await pass(root, cacheDir, names, keepAlive);
    const cacheFiles = readdirSync(cacheDir, { recursive: true }).length;
    const cached = await pass(root, cacheDir, names, keepAlive);
    console.log(`${IMAGES} images of 4096x4096 (${frame}), first window ${QUERY}, ${keepAlive ? 'all on one kept connection' : 'a new connection each'}, time to the last byte:`);
    console.log(`  never opened, no cache file: ${stats(cold.first)}   (target < 20 ms)`);
    console.log(`  never opened by this process, cache file present (${cacheFiles} entries in the cache dir): ${stats(cached.first)}   (target < 2 ms)`);
    console.log(`  the same requests once the images are open (the floor): ${stats([...cold.open, ...cached.open])}`);
  }
  console.log(`each server warmed itself up in ${stats(warmUpMs)} after its start line (jpip-bench serve's warmUp; a request meanwhile waits a slice of 1-2 ms at most)`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
