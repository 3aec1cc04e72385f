/**
 * Indexing speed and size: a 4096x4096, 8-layer, 8-resolution (7 levels) RPCL
 * image with 128x128 precincts, as in the ESA server's paper. Prints the time
 * and the bytes of the packet index, cold (scanning the file, no cache file)
 * and warm (from the cache file), for PLT markers and for packet-header
 * parsing (the same image encoded without PLT).
 *
 *   npm run bench:index              (needs opj_compress: apt-get install libopenjp2-tools)
 *   BENCH_SIZE=2048 npm run bench:index
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageIndex, cachePathFor } from '../jpeg2000/index-cache.js';
import { sequenceTableBytes } from '../jpeg2000/packet-index.js';
import { runTool } from '../fixtures-gen/opj.js';
import { synthSun, writePnm } from '../fixtures-gen/synth.js';

const size = Number(process.env['BENCH_SIZE'] ?? 4096);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 20);
const work = join(tmpdir(), `jpip-bench-index-${size}`);
mkdirSync(work, { recursive: true });

function encode(name: string, plt: boolean): string {
  const out = join(work, name);
  if (existsSync(out)) return out;
  const pgm = join(work, 'source.pgm');
  if (!existsSync(pgm)) writePnm(pgm, { width: size, height: size, components: 1, samples: synthSun({ width: size, height: size, components: 1, seed: 1 }) });
  const precincts = Array.from({ length: 8 }, () => '[128,128]').join(',');
  const args = ['-i', pgm, '-o', out, '-p', 'RPCL', '-n', '8', '-b', '64,64', '-r', '320,160,80,40,20,10,5,2.5', '-c', precincts];
  if (plt) args.push('-PLT');
  process.stderr.write(`encoding ${name} (${size}x${size}) ...\n`);
  runTool('opj_compress', args);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function measure(file: string, label: string): void {
  const cacheDir = join(work, `cache-${label}`);
  const cold: number[] = [];
  const warm: number[] = [];
  const lowRes: number[] = [];
  let bytes = 0;
  let packets = 0;
  let source = '';
  let status = '';
  for (let i = 0; i < rounds; i++) {
    rmSync(cacheDir, { recursive: true, force: true });
    let t = performance.now();
    const a = ImageIndex.open(file, { cacheDir });
    a.indexAll();
    cold.push(performance.now() - t);
    const ix = a.codestream(0);
    bytes = a.memoryBytes();
    packets = ix.tile(0).known;
    source = ix.lengthSource;
    a.close();
    t = performance.now();
    const b = ImageIndex.open(file, { cacheDir });
    b.indexAll();
    warm.push(performance.now() - t);
    status = b.cacheStatus;
    b.close();
    t = performance.now();
    const c = ImageIndex.open(file, { cacheDir });
    c.codestream(0).ensureResolution(0, 3);
    lowRes.push(performance.now() - t);
    c.close();
  }
  console.log(
    `${label.padEnd(8)} ${(statSync(file).size / 1e6).toFixed(2).padStart(7)} MB  ${String(packets).padStart(6)} packets (${source})  ` +
      `cold ${median(cold).toFixed(2).padStart(7)} ms  from cache (${status}) ${median(warm).toFixed(2).padStart(7)} ms  ` +
      `to resolution 3 ${median(lowRes).toFixed(2).padStart(6)} ms  in memory ${bytes} bytes (${(bytes / packets).toFixed(1)} B/packet)  ` +
      `cache file ${statSync(cachePathFor(cacheDir, file)).size} bytes; packet-order tables shared by same-parameter images ${sequenceTableBytes()} bytes`,
  );
}

console.log(`# index speed: ${size}x${size}, 8 layers, 8 resolutions, RPCL, 128x128 precincts; median of ${rounds}; node ${process.version}, ${cpus().length} cores`);
measure(encode('plt.j2k', true), 'PLT');
measure(encode('noplt.j2k', false), 'headers');
