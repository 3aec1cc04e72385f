/**
 * Where the CPU goes under load: is one worker thread enough?
 *
 * Starts the supervisor and its worker (compiled, from dist/), loads it with
 * autocannon (stateless window requests on the movie fixture, keep-alive
 * connections) for BENCH_SECONDS, and reports requests/s, MB/s and the CPU
 * time of the worker, the supervisor and the load generator (this process)
 * from /proc. Then times, in this process and without any network, the part
 * of the worker's work that worker threads could take over: planning and
 * assembling the same responses (index look-ups, file reads, message
 * encoding).
 *
 *   npm run build && node --import tsx bench/worker-load.ts
 *   BENCH_SECONDS=10 BENCH_CONNECTIONS=32 BENCH_LEN=65536 node --import tsx bench/worker-load.ts
 *
 * Then compares index threads (config indexThreads) 0 and N (BENCH_THREADS,
 * default one per core but one) in one run, on two loads: the same warm
 * requests, and a cold archive: BENCH_COLD copies (distinct files) of a
 * 1024x1024 codestream without PLT markers (made with opj_compress when it is
 * installed, else the largest such fixture), with maxOpenFiles 8, so that
 * every request to a copy opens it and indexes it again by parsing packet
 * headers (the paper's case of an archive far larger than the index cache).
 *
 * Network: 127.0.0.1 only. Prints figures; asserts nothing.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { CacheModel } from '../jpip/cache-model.js';
import { parseRequest } from '../jpip/request.js';
import { validateConfig } from '../server/config.js';
import { ImageRegistry } from '../server/images.js';
import { planRequest } from '../server/request-plan.js';
import { planResponse } from '../server/responder.js';
import { defaultIndexThreads } from '../server/index-pool.js';
import { Supervisor } from '../server/supervisor.js';
import { readProc } from '../client-sim/measure.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 16);
const LEN = Number(process.env['BENCH_LEN'] ?? 16384);
const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(here, '..', 'test', 'fixtures');
const distWorker = join(here, '..', 'dist', 'server', 'worker-main.js');
const THREADS = Number(process.env['BENCH_THREADS'] ?? defaultIndexThreads());
const COLD = Number(process.env['BENCH_COLD'] ?? 64);

/** A codestream without PLT markers, so that indexing it parses packet headers. */
function noPltCodestream(dir: string): string {
  const out = join(dir, 'noplt.j2k');
  try {
    const w = 1024;
    const pgm = Buffer.alloc(w * w);
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) pgm[y * w + x] = (Math.sin(x / 17) * Math.cos(y / 23) * 100 + 128 + ((x * 7 + y * 13) % 29)) & 0xff;
    const src = join(dir, 'noplt.pgm');
    writeFileSync(src, Buffer.concat([Buffer.from(`P5\n${w} ${w}\n255\n`), pgm]));
    execFileSync('opj_compress', ['-i', src, '-o', out, '-p', 'RPCL', '-n', '6', '-r', '80,40,20,10,5,2.5', '-c', '[128,128],[128,128],[128,128],[128,128],[128,128],[128,128]'], { stdio: 'ignore' });
    rmSync(src);
  } catch {
    copyFileSync(join(FIXTURES, 'g200x150-offsets-t64-rpcl.j2k'), out);
  }
  return out;
}

interface LoadFigures {
  reqs: number;
  mbps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  workerCpu: number;
  genCpu: number;
}

async function load(root: string, queries: string[], extra: object): Promise<LoadFigures> {
  const config = validateConfig([{ root, port: 0, stateDir: join(root, '.state'), logLevel: 'error', ...extra }]);
  const sup = new Supervisor({ config, workerModule: distWorker, execArgv: [] });
  const base = await sup.start();
  try {
    const worker = sup.workerPid!;
    const w0 = cpuSeconds(worker);
    const c0 = process.cpuUsage();
    let k = 0;
    const result = await autocannon({
      url: base,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: [{ setupRequest: (req) => ({ ...req, path: queries[k++ % queries.length]! }) }],
    });
    const c1 = process.cpuUsage(c0);
    return {
      reqs: result.requests.total,
      mbps: result.throughput.average / 1024 / 1024,
      p50: result.latency.p50,
      p99: result.latency.p99,
      errors: result.errors,
      non2xx: result.non2xx,
      workerCpu: cpuSeconds(worker) - w0,
      genCpu: (c1.user + c1.system) / 1e6,
    };
  } finally {
    await sup.drain();
  }
}

function line(label: string, f: LoadFigures): string {
  return `  ${label}: ${Math.round(f.reqs / SECONDS)} requests/s, ${f.mbps.toFixed(1)} MB/s, p50 ${f.p50} ms, p99 ${f.p99} ms, errors ${f.errors}, non-2xx ${f.non2xx}; worker CPU ${((f.workerCpu / SECONDS) * 100).toFixed(0)}% (${((f.workerCpu / f.reqs) * 1e6).toFixed(0)} us/request), generator + supervisor ${((f.genCpu / SECONDS) * 100).toFixed(0)}%`;
}

/** CPU seconds (user + system) a process has used, from /proc (client-sim/measure.ts reads it). */
function cpuSeconds(pid: number): number {
  const r = readProc(pid);
  if (!r) throw new Error(`cannot read /proc/${pid}`);
  return r.cpuSeconds;
}

async function main(): Promise<void> {
  if (!existsSync(distWorker)) throw new Error('build first: npm run build');
  const root = mkdtempSync(join(tmpdir(), 'jpip-bench-load-'));
  mkdirSync(join(root, 'movie', 'frames'), { recursive: true });
  for (const f of ['movie.jpx', 'linked.jpx', 'frames/frame 000.jp2', 'frames/frame 001.jp2', 'frames/frame 002.jp2']) copyFileSync(join(FIXTURES, 'movie', f), join(root, 'movie', f));
  for (const f of ['g256-irrev-8l-cb32.j2k', 'rgb200x150-t64-rpcl-plt-tpr.jp2']) copyFileSync(join(FIXTURES, f), join(root, f));
  const config = validateConfig([{ root, port: 0, stateDir: join(root, '.state'), logLevel: 'error' }]);
  const queries = [
    `/movie/movie.jpx?stream=0&fsiz=128,128&len=${LEN}`,
    `/movie/movie.jpx?stream=1&fsiz=64,64&len=${LEN}`,
    `/movie/linked.jpx?stream=2&fsiz=128,128&len=${LEN}`,
    `/g256-irrev-8l-cb32.j2k?fsiz=256,256&len=${LEN}`,
    `/rgb200x150-t64-rpcl-plt-tpr.jp2?fsiz=200,150&roff=20,20&rsiz=100,100&len=${LEN}`,
  ];
  try {
    // The supervisor runs in this process with autocannon: their CPU is reported together.
    const f = await load(root, queries, {});

    // The part threads could take: plan and assemble the same responses, in this process.
    const registry = new ImageRegistry({ root });
    const t0 = performance.now();
    let n = 0;
    let bytes = 0;
    while (performance.now() - t0 < 2000) {
      for (const q of queries) {
        const [path, query] = q.split('?') as [string, string];
        const entry = registry.open(path);
        const jr = parseRequest(query);
        const planned = planRequest(jr, entry, { defaultLen: config.defaultLenBytes, maxLen: config.maxLenBytes });
        registry.acquire(entry);
        for (const chunk of planResponse(entry, planned.input, new CacheModel(), { chunkSize: config.chunkBytes }).body()) bytes += chunk.bytes.length;
        registry.release(entry);
        n++;
      }
    }
    const assembleUs = ((performance.now() - t0) * 1000) / n;
    registry.closeAll();

    const reqs = f.reqs;
    const workerCpu = f.workerCpu;
    const lines = [
      `worker-load: ${SECONDS} s, ${CONNECTIONS} keep-alive connections, stateless window requests (len ${LEN}) on 5 images`,
      `  machine: ${cpus().length} cores, Node ${process.version}`,
      line('all in the worker thread', f),
      `  planning and assembling a response alone (what threads could take): ${assembleUs.toFixed(0)} us (${(bytes / n / 1024).toFixed(1)} KB), ${((assembleUs / ((workerCpu / reqs) * 1e6)) * 100).toFixed(0)}% of the worker's CPU per request`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);

    // Index threads 0 against N, warm and cold.
    mkdirSync(join(root, 'cold'));
    const noplt = noPltCodestream(root);
    for (let i = 0; i < COLD; i++) copyFileSync(noplt, join(root, 'cold', `c${i}.j2k`));
    const cold: string[] = [];
    for (let i = 0; i < COLD; i++) cold.push(`/cold/c${i}.j2k?fsiz=${i % 2 ? 256 : 1024},${i % 2 ? 256 : 1024},closest&len=${LEN}`);
    process.stdout.write(`index threads 0 against ${THREADS} (${(readFileSync(noplt).length / 1024).toFixed(0)} KB no-PLT codestream, ${COLD} copies, maxOpenFiles 8):\n`);
    for (const threads of [0, THREADS]) {
      process.stdout.write(`${line(`warm, indexThreads ${threads}`, await load(root, queries, { indexThreads: threads }))}\n`);
      process.stdout.write(`${line(`cold, indexThreads ${threads}`, await load(root, cold, { indexThreads: threads, maxOpenFiles: 8 }))}\n`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
