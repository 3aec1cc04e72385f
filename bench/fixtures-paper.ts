/**
 * How long the `paper` fixture set takes to make, and how big it is: 20
 * movies of 1000 frames (linked JPX) over a pool of K distinct 4096x4096
 * frames (8 layers, 8 resolutions, RPCL, 128x128 precincts, PLT). Then the
 * same command again (nothing to make: every file hashed against the
 * manifest) and `--verify` (every file hashed and parsed, every packet of
 * every frame indexed, every movie reference resolved).
 *
 *   node --import tsx bench/fixtures-paper.ts          (needs opj_compress: apt-get install libopenjp2-tools)
 *
 * A part of it, through environment variables: BENCH_SIZE (4096), BENCH_POOL
 * (16), BENCH_MOVIES (20), BENCH_FRAMES (1000), BENCH_JOBS (one per core),
 * BENCH_ENCODER (auto), BENCH_FORMAT (jp2). The set goes to a temporary
 * directory, removed at the end, or to BENCH_OUT (kept).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateFixtures, type GenerateResult } from '../fixtures-gen/generate.js';
import type { SetOverrides } from '../fixtures-gen/presets.js';
import { verifyFixtures } from '../fixtures-gen/verify.js';

const env = (name: string): number | undefined => (process.env[name] !== undefined ? Number(process.env[name]) : undefined);
const overrides: SetOverrides = {};
const size = env('BENCH_SIZE');
if (size !== undefined) overrides.size = size;
const pool = env('BENCH_POOL');
if (pool !== undefined) overrides.pool = pool;
const movies = env('BENCH_MOVIES');
if (movies !== undefined) overrides.movies = movies;
const frames = env('BENCH_FRAMES');
if (frames !== undefined) overrides.frames = frames;
if (process.env['BENCH_FORMAT']) overrides.format = process.env['BENCH_FORMAT'];
const jobs = env('BENCH_JOBS') ?? availableParallelism();
const out = process.env['BENCH_OUT'] ?? mkdtempSync(join(tmpdir(), 'jpip-bench-paper-'));

const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

async function run(label: string): Promise<GenerateResult> {
  let last = 0;
  const r = await generateFixtures({
    preset: 'paper',
    out,
    overrides,
    jobs,
    ...(process.env['BENCH_ENCODER'] ? { encoder: process.env['BENCH_ENCODER'] } : {}),
    onProgress: (p) => {
      const now = performance.now();
      if (p.phase === 'encode' && (now - last > 2000 || p.done === p.total)) {
        process.stderr.write(`  ${label}: ${p.done}/${p.total} pool frames\n`);
        last = now;
      }
    },
  });
  return r;
}

try {
  process.stderr.write(`making the paper set in ${out} (${jobs} encoders at once, ${cpus()[0]?.model ?? '?'})\n`);
  const cold = await run('cold');
  const p = cold.manifest.params;
  const warm = await run('again');
  const t = performance.now();
  const v = verifyFixtures(out);
  const verifyMs = performance.now() - t;
  if (!v.ok) throw new Error(`the set does not verify: ${JSON.stringify(v.problems.slice(0, 5))}`);

  const frameFiles = cold.manifest.files.filter((f) => f.role === 'frame');
  const movieFiles = cold.manifest.files.filter((f) => f.role === 'movie');
  const frameBytes = frameFiles.reduce((n, f) => n + f.size, 0);
  const movieBytes = movieFiles.reduce((n, f) => n + f.size, 0);
  const perEncode = (cold.ms.encode * jobs) / Math.max(1, cold.encoded);
  console.log(`paper set: ${p.movies} movies x ${p.frames} frames of ${p.width}x${p.height} over a pool of ${p.pool} (${cold.manifest.encoder.name} ${cold.manifest.encoder.version ?? '?'}, ${p.format})`);
  console.log('');
  console.log('| step | time | what |');
  console.log('|---|---|---|');
  console.log(`| make (cold) | ${s(cold.ms.total)} | ${cold.encoded} encodes (${s(perEncode)} each, ${jobs} at once), ${cold.written.length} files written; movies ${s(cold.ms.movies)} |`);
  console.log(`| make again | ${s(warm.ms.total)} | ${warm.encoded} encodes, ${warm.written.length} written, ${warm.kept} files hashed and found current |`);
  console.log(`| verify | ${s(verifyMs)} | ${v.files} files hashed and parsed, ${v.packets.toLocaleString('en-US')} packets indexed, ${v.movieFrames.toLocaleString('en-US')} movie frames resolved |`);
  console.log('');
  console.log(`size: ${mb(cold.bytes)} in ${cold.manifest.totals.files} files: ${frameFiles.length} frames ${mb(frameBytes)} (${mb(frameBytes / Math.max(1, frameFiles.length))} each), ${movieFiles.length} movies ${mb(movieBytes)} (${(movieBytes / Math.max(1, movieFiles.length) / 1e3).toFixed(1)} kB each)`);
} finally {
  if (!process.env['BENCH_OUT']) rmSync(out, { recursive: true, force: true });
}
