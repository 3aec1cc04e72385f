import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import yargs from 'yargs';
import { findBox, readContainer, readXml, boxContent } from '../jpeg2000/boxes.js';
import { inspectFile } from '../jpeg2000/inspect.js';
import { JpipClient } from '../client-sim/client.js';
import { decodeWasm, imagesEqual } from '../client-sim/decode.js';
import { createJpipServer } from '../server/server.js';
import { findTool } from '../fixtures-gen/opj.js';
import {
  codestreamMismatches,
  detectEncoders,
  encoderArgs,
  encoderName,
  EncoderError,
  hasPacketLengths,
  parseVersion,
  pickEncoder,
  writesPlt,
} from '../fixtures-gen/encoders.js';
import { commandFor, expandImages, generateFixtures, movieName, type GenerateResult } from '../fixtures-gen/generate.js';
import { canonicalJson, fileState, keyOf, ManifestError, readManifest, sha256, type FixtureManifest } from '../fixtures-gen/manifest.js';
import { codingOf, ParamError, PRESETS, rateLadder, resolveParams } from '../fixtures-gen/presets.js';
import { fitsDate, frameXml, loadImage, readPnm, sinCos, solarGeometry, SourceError, synthSolarFrame } from '../fixtures-gen/sources.js';
import { encodePnm } from '../fixtures-gen/synth.js';
import { verifyFixtures } from '../fixtures-gen/verify.js';
import { parseRates, parseSize, register } from '../bin/commands/fixtures.js';
import type { CliIo } from '../bin/io.js';
import { catchError, dumpValues, fixtureBytes } from './helpers.js';

const SHIPPED = join(import.meta.dirname, '..', 'fixtures', 'small');
const HAVE_OPJ = findTool('opj_compress') !== undefined;
const HAVE_DUMP = findTool('opj_dump') !== undefined;

const tmp = (name: string): string => mkdtempSync(join(tmpdir(), `jpip-fx-${name}-`));

function throwsParam(fn: () => unknown, param: string): void {
  const e = catchError(fn);
  assert.instance(e, ParamError);
  assert.is((e as ParamError).param, param, (e as Error).message);
}

/** Runs `jpip-bench fixtures ...` through the command's own yargs registration. */
async function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (s) => void (out += `${s}\n`), err: (s) => void (err += `${s}\n`), tty: false };
  const before = process.exitCode;
  process.exitCode = 0;
  const y = yargs()
    .strict()
    .exitProcess(false)
    .fail((msg, e) => {
      throw e ?? new Error(msg);
    });
  await register(y, io).parseAsync(args);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, err, code };
}

// ---------------------------------------------------------------------------
const units = suite('fixtures-gen: presets, encoders, sources, manifest');

units('presets resolve, overrides apply, and bad parameters name their flag', () => {
  const small = resolveParams('small');
  assert.equal([small.width, small.height, small.layers, small.levels + 1, small.progression, small.precincts], [1024, 1024, 8, 6, 'RPCL', [128, 128]]);
  const paper = resolveParams('paper');
  assert.equal([paper.width, paper.layers, paper.levels + 1, paper.rates, paper.frames, paper.movies], [4096, 8, 8, [320, 160, 80, 40, 20, 10, 5, 2.5], 1000, 20]);
  assert.is(resolveParams('jhv').layout, 'per-frame');
  const o = resolveParams('small', { size: 512, layers: 4, precincts: [64, 32], codeBlock: 32, progression: 'lrcp', format: 'j2k', seed: 7 });
  assert.equal([o.width, o.height, o.layers, o.rates, o.precincts, o.codeBlock, o.progression, o.format, o.seed], [512, 512, 4, [40, 20, 10, 5], [64, 32], [32, 32], 'LRCP', 'j2k', 7]);
  assert.equal(resolveParams('small', { rates: [50, 10] }).layers, 2);
  assert.equal(rateLadder(3, 2.5), [10, 5, 2.5]);
  assert.equal(PRESETS.small.rates.length, PRESETS.small.layers);
  throwsParam(() => resolveParams('small', { size: 64, levels: 7 }), 'levels');
  throwsParam(() => resolveParams('small', { rates: [10, 20] }), 'rates');
  throwsParam(() => resolveParams('small', { rates: [10, 5], layers: 3 }), 'rates');
  throwsParam(() => resolveParams('small', { precincts: 100 }), 'precincts');
  throwsParam(() => resolveParams('small', { codeBlock: [128, 64] }), 'code-block');
  throwsParam(() => resolveParams('small', { progression: 'XYZ' }), 'progression');
  throwsParam(() => resolveParams('small', { format: 'png' }), 'format');
  throwsParam(() => resolveParams('small', { frames: 0 }), 'frames');
  throwsParam(() => resolveParams('small', { size: 0 }), 'width');
  throwsParam(() => resolveParams('nope' as 'small'), 'preset');
});

units('each encoder gets our parameters in its own flags', () => {
  const coding = codingOf(resolveParams('small'));
  const job = { input: 'in.pgm', output: 'out.j2k', width: 1024, height: 1024, components: 1 as const, coding };
  const opj = encoderArgs({ name: 'opj_compress', version: '2.5.0' }, job);
  assert.equal(opj, ['-i', 'in.pgm', '-o', 'out.j2k', '-p', 'RPCL', '-n', '6', '-b', '64,64', '-c', Array(6).fill('[128,128]').join(','), '-r', '320,160,80,40,20,10,7,5', '-PLT']);
  // OpenJPEG before 2.4 has no -PLT: the generator adds the markers itself.
  assert.not.ok(encoderArgs({ name: 'opj_compress', version: '2.3.1' }, job).includes('-PLT'));
  assert.ok(encoderArgs({ name: 'opj_compress', version: '2.5.0' }, { ...job, coding: { ...coding, reversible: false } }).includes('-I'));
  const grk = encoderArgs({ name: 'grk_compress', version: '10.0.5' }, job);
  assert.ok(grk.includes('-H') && !grk.includes('-L') && !grk.includes('-PLT'), grk.join(' '));
  assert.not.ok(writesPlt({ name: 'grk_compress', version: '10.0.5' }));
  const kdu = encoderArgs({ name: 'kdu_compress', version: '8.4.1' }, { ...job, output: 'out.j2c', components: 3, coding: { ...coding, precincts: [128, 64], codeBlock: [64, 32] } });
  for (const want of ['Corder=RPCL', 'Clevels=5', 'Clayers=8', 'Cblk={32,64}', 'Cprecincts={64,128}', 'Creversible=yes', 'ORGgen_plt=yes']) assert.ok(kdu.includes(want), `${want} in ${kdu.join(' ')}`);
  // Ratios become bits per pixel (8 bits x 3 components / ratio), layer 1 first.
  assert.is(kdu[kdu.indexOf('-rate') + 1], '0.075,0.15,0.3,0.6,1.2,2.4,3.42857142857,4.8');
});

units('encoders are found on PATH, their versions read, and a missing one says how to install one', () => {
  assert.is(parseVersion('opj_compress', 'It has been compiled against openjp2 library v2.5.0.'), '2.5.0');
  assert.is(parseVersion('grk_compress', 'grk_compress  version: 10.0.5'), '10.0.5');
  assert.is(parseVersion('kdu_compress', 'Compiled against the Kakadu core system, version v8.4.1'), '8.4.1');
  assert.is(parseVersion('kdu_compress', 'no banner'), undefined);
  assert.is(encoderName('kakadu'), 'kdu_compress');
  assert.is(encoderName('grk_compress'), 'grk_compress');
  assert.is(encoderName('gimp'), undefined);
  const empty = tmp('path');
  try {
    let e = catchError(() => pickEncoder('auto', empty));
    assert.instance(e, EncoderError);
    assert.match((e as Error).message, /apt-get install libopenjp2-tools/);
    assert.throws(() => pickEncoder('gimp', empty), /unknown encoder/);
    // A kdu_compress on PATH (a script printing Kakadu's banner) is found and its version read.
    const fake = join(empty, 'kdu_compress');
    writeFileSync(fake, '#!/bin/sh\necho "This is Kakadu\'s \\"kdu_compress\\" application."\necho "  Compiled against the Kakadu core system, version v8.4.1"\n');
    chmodSync(fake, 0o755);
    assert.equal(detectEncoders(empty), [{ name: 'kdu_compress', path: fake, version: '8.4.1' }]);
    assert.is(pickEncoder('auto', empty).name, 'kdu_compress');
    e = catchError(() => pickEncoder('opj', empty));
    assert.match((e as Error).message, /opj_compress was not found on PATH \(found: kdu_compress/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

units('a codestream is checked against the parameters, and one without PLT is recognised', () => {
  const cs = fixtureBytes('g128-default.j2k');
  assert.not.ok(hasPacketLengths(cs));
  const coding = { ...codingOf(resolveParams('small')), levels: 5 };
  const wrong = codestreamMismatches(cs, { width: 128, height: 128, components: 1, coding });
  assert.ok(wrong.some((w) => w.startsWith('layers 1')), wrong.join('; '));
  assert.ok(wrong.some((w) => w.startsWith('progression "LRCP"')), wrong.join('; '));
});

units('sinCos is the platform sin/cos to 1e-15, with basic arithmetic only', () => {
  for (let x = -1000; x <= 1000; x += 0.0137) {
    const { sin, cos } = sinCos(x);
    assert.ok(Math.abs(sin - Math.sin(x)) < 1e-15 && Math.abs(cos - Math.cos(x)) < 1e-15, `x=${x}`);
  }
  assert.ok(Number.isNaN(sinCos(Infinity).sin));
});

units('synthetic solar frames: deterministic, a disk where the metadata says, slowly evolving', () => {
  const p = { width: 256, height: 256, components: 1 as const, seed: 3 };
  const f0 = synthSolarFrame({ ...p, frame: 0 });
  assert.is(sha256(f0), sha256(synthSolarFrame({ ...p, frame: 0 })));
  const g = solarGeometry(256, 256, 3);
  const at = (img: Uint8Array, x: number, y: number): number => img[Math.round(y) * 256 + Math.round(x)]!;
  assert.ok(at(f0, g.cx, g.cy) > 120, 'bright disk centre');
  assert.ok(at(f0, 2, 2) < 40, 'dark sky');
  assert.ok(g.radius > 90 && g.radius < 110);
  const diff = (a: Uint8Array, b: Uint8Array): number => a.reduce((n, v, i) => n + Math.abs(v - b[i]!), 0) / a.length;
  const d1 = diff(f0, synthSolarFrame({ ...p, frame: 1 }));
  const d40 = diff(f0, synthSolarFrame({ ...p, frame: 40 }));
  assert.ok(d1 > 0.5 && d1 < 4, `next frame differs a little (${d1})`);
  // Beyond the noise (which alone differs by ~2 per sample), features move: 16x16 block means drift further apart with time.
  const blocks = (img: Uint8Array): number[] =>
    Array.from({ length: 16 * 16 }, (_, b) => {
      let s = 0;
      for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) s += img[((b >> 4) * 16 + y) * 256 + (b & 15) * 16 + x]!;
      return s / 256;
    });
  const blockDiff = (a: Uint8Array, b: Uint8Array): number => {
    const ba = blocks(a);
    const bb = blocks(b);
    return ba.reduce((n, v, i) => n + Math.abs(v - bb[i]!), 0) / ba.length;
  };
  const b1 = blockDiff(f0, synthSolarFrame({ ...p, frame: 1 }));
  const b10 = blockDiff(f0, synthSolarFrame({ ...p, frame: 10 }));
  const b40 = blockDiff(f0, synthSolarFrame({ ...p, frame: 40 }));
  assert.ok(b1 < b10 && b10 < b40 && b40 > 2.5 * b1, `block differences: next frame ${b1}, 40 frames on ${b40} (samples: ${d1}, ${d40})`);
  const rgb = synthSolarFrame({ ...p, components: 3, frame: 0 });
  assert.is(rgb.length, 256 * 256 * 3);
  const c = (Math.round(g.cy) * 256 + Math.round(g.cx)) * 3;
  assert.ok(rgb[c]! > rgb[c + 2]!, 'a warm tint');
  assert.throws(() => synthSolarFrame({ ...p, frame: -1 }), /frame/);
  assert.throws(() => synthSolarFrame({ ...p, width: 0, frame: 0 }), /size/);
});

units('PGM/PPM are read (comments, maxval), bad ones refused with the file named', () => {
  const enc = new TextEncoder();
  const pgm = new Uint8Array([...enc.encode('P5\n# a comment\n3 2\n# another\n255\n'), 1, 2, 3, 4, 5, 6]);
  assert.equal(readPnm(pgm), { width: 3, height: 2, components: 1, samples: new Uint8Array([1, 2, 3, 4, 5, 6]) });
  const ppm = new Uint8Array([...enc.encode('P6 1 1 100 '), 100, 50, 0]);
  assert.equal(readPnm(ppm).samples, new Uint8Array([255, 128, 0]));
  assert.throws(() => readPnm(enc.encode('P2\n1 1\n255\n1'), 'x.pgm'), /x\.pgm: not a binary PGM/);
  assert.throws(() => readPnm(new Uint8Array([...enc.encode('P5 2 2 65535 '), 0, 0])), /16-bit/);
  assert.throws(() => readPnm(new Uint8Array([...enc.encode('P5 2 2 255 '), 0])), /truncated/);
  assert.throws(() => readPnm(enc.encode('P5 2')), /ends early/);
  assert.throws(() => readPnm(enc.encode('P5 a 2 255 ')), /bad PNM size/);
});

units('PNG and TIFF images are read through sharp; other types are refused', async () => {
  const dir = tmp('img');
  try {
    const grey = synthSolarFrame({ width: 64, height: 48, components: 1, seed: 1, frame: 0 });
    await sharp(grey, { raw: { width: 64, height: 48, channels: 1 } }).toColourspace('b-w').png().toFile(join(dir, 'g.png'));
    const g = await loadImage(join(dir, 'g.png'));
    assert.equal([g.width, g.height, g.components], [64, 48, 1]);
    assert.ok(imagesEqual({ ...g, bitDepth: 8, signed: false }, { width: 64, height: 48, components: 1, bitDepth: 8, signed: false, samples: grey }));
    const rgb = synthSolarFrame({ width: 32, height: 32, components: 3, seed: 1, frame: 0 });
    await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } }).tiff({ compression: 'lzw' }).toFile(join(dir, 'c.tif'));
    const c = await loadImage(join(dir, 'c.tif'));
    assert.equal([c.components, sha256(c.samples)], [3, sha256(rgb)]);
    writeFileSync(join(dir, 'x.bmp'), 'BM');
    let err: unknown;
    await loadImage(join(dir, 'x.bmp')).catch((e) => (err = e));
    assert.instance(err, SourceError);
    writeFileSync(join(dir, 'bad.png'), 'not a png');
    err = undefined;
    await loadImage(join(dir, 'bad.png')).catch((e) => (err = e));
    assert.match(String(err), /bad\.png: cannot read/);
    assert.equal(expandImages([dir]).map((f) => f.slice(dir.length + 1)), ['bad.png', 'c.tif', 'g.png']);
    assert.throws(() => expandImages([join(dir, 'none')]), /no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

units('frame XML carries FITS-style keywords matching the disk drawn', () => {
  const g = { cx: 511.5, cy: 500.25, radius: 400 };
  const xml = frameXml({ width: 1024, height: 1024, date: new Date('2026-01-01T00:00:12.000Z'), wavelength: 193, geometry: g, comment: 'a < b & c' });
  assert.match(xml, /^<meta><fits>.*<\/fits><\/meta>$/);
  for (const k of ['<TELESCOP>SDO/AIA</TELESCOP>', '<WAVELNTH>193</WAVELNTH>', '<DATE-OBS>2026-01-01T00:00:12.000</DATE-OBS>', '<CRPIX1>512.5</CRPIX1>', '<CRPIX2>523.75</CRPIX2>', '<NAXIS1>1024</NAXIS1>', '<COMMENT>a &lt; b &amp; c</COMMENT>']) {
    assert.ok(xml.includes(k), k);
  }
  assert.is(fitsDate(new Date(0)), '1970-01-01T00:00:00.000');
  assert.is(movieName(0), 'AIA_171');
  assert.is(movieName(10), 'AIA_193_2');
});

units('manifest: canonical keys, strict reading, file states', () => {
  assert.is(canonicalJson({ b: 1, a: [2, { d: undefined, c: 'x' }] }), '{"a":[2,{"c":"x"}],"b":1}');
  assert.is(keyOf({ a: 1, b: 2 }), keyOf({ b: 2, a: 1 }));
  const dir = tmp('manifest');
  try {
    assert.is(readManifest(dir), undefined);
    writeFileSync(join(dir, 'manifest.json'), '{');
    assert.throws(() => readManifest(dir), (e: unknown) => e instanceof ManifestError && /not JSON/.test((e as Error).message));
    writeFileSync(join(dir, 'manifest.json'), '{"format":"other"}');
    assert.throws(() => readManifest(dir), /not a jpip-bench fixtures manifest/);
    const base = { format: 'jpip-bench-fixtures', version: 1, params: {}, encoder: {}, pool: [] };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...base, version: 9, files: [] }));
    assert.throws(() => readManifest(dir), /version 9/);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...base, files: [{ path: '../x', size: 1, sha256: 'a', key: 'k' }] }));
    assert.throws(() => readManifest(dir), /leaves the set/);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...base, files: [{ path: 'x' }] }));
    assert.throws(() => readManifest(dir), /lacks path/);
    writeFileSync(join(dir, 'a.bin'), 'abc');
    const entry = { path: 'a.bin', role: 'frame' as const, container: 'j2k' as const, size: 3, sha256: sha256('abc'), key: 'k1' };
    assert.is(fileState(dir, entry, 'k1'), 'ok');
    assert.is(fileState(dir, entry, 'k2'), 'stale');
    assert.is(fileState(dir, { ...entry, sha256: sha256('abd') }), 'changed');
    assert.is(fileState(dir, { ...entry, path: 'b.bin' }), 'missing');
    assert.is(fileState(dir, undefined), 'missing');
    const v = verifyFixtures(dir);
    assert.not.ok(v.ok);
    assert.match(v.problems[0]!.problem, /lacks path/);
    assert.match(verifyFixtures(join(dir, 'nope')).problems[0]!.problem, /no manifest\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

units('the command line: sizes, rates, errors as one line', async () => {
  assert.equal(parseSize('precincts', '128'), 128);
  assert.equal(parseSize('precincts', '128x64'), [128, 64]);
  assert.equal(parseSize('precincts', '64,32'), [64, 32]);
  assert.throws(() => parseSize('precincts', 'big'), /--precincts/);
  assert.equal(parseRates('40, 20,2.5'), [40, 20, 2.5]);
  assert.throws(() => parseRates('40,,2'), /--rates/);
  assert.is(commandFor({ preset: 'small', out: 'fixtures/small' }), 'jpip-bench fixtures --preset small --out fixtures/small');
  assert.is(
    commandFor({ preset: 'paper', out: '/d', overrides: { pool: 32, precincts: [64, 32], rates: [8, 4], reversible: false }, encoder: 'kdu', images: ['a b.png'] }),
    "jpip-bench fixtures --preset paper --out /d --pool 32 --precincts 64x32 --rates 8,4 --irreversible --encoder kdu --images 'a b.png'",
  );
  const dir = tmp('cli');
  try {
    let r = await cli(['fixtures', '--out', dir, '--encoder', 'gimp']);
    assert.is(r.code, 1);
    assert.match(r.err, /^jpip-bench: unknown encoder 'gimp'/);
    r = await cli(['fixtures', '--out', dir, '--size', '100', '--levels', '7']);
    assert.is(r.code, 1);
    assert.match(r.err, /--levels: 7 levels need frames of at least 128 pixels/);
    r = await cli(['fixtures', '--out', dir, '--precincts', 'huge']);
    assert.is(r.code, 1);
    r = await cli(['fixtures', '--verify', dir]);
    assert.is(r.code, 1);
    assert.match(r.out, /no manifest\.json/);
    r = await cli(['fixtures', '--encoders', '--json']);
    assert.equal(JSON.parse(r.out), detectEncoders());
    r = await cli(['fixtures', '--encoders']);
    assert.ok(detectEncoders().every((e) => r.out.includes(e.path)), r.out);
    let err: unknown;
    await cli(['fixtures']).catch((e) => (err = e));
    assert.match(String(err), /--out DIR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------
const shipped = suite('fixtures-gen: the shipped small set');

shipped('fixtures/small verifies against its manifest and our parser', () => {
  const r = verifyFixtures(SHIPPED);
  assert.ok(r.ok, JSON.stringify(r.problems, null, 2));
  assert.equal(r.unlisted, []);
  const m = readManifest(SHIPPED)!;
  assert.is(m.command, 'jpip-bench fixtures --preset small --out fixtures/small');
  assert.is(m.preset, 'small');
  const movies = m.files.filter((f) => f.role === 'movie');
  assert.ok(movies.length >= 2);
  assert.ok(r.bytes < 4e6, `${r.bytes} bytes`);
  for (const mv of movies) {
    assert.is(mv.container, 'linked-jpx');
    const rep = inspectFile(join(SHIPPED, mv.path));
    assert.is(rep.codestreams.length, mv.frames);
    assert.ok(rep.codestreams.every((c) => c.kind === 'fragment'));
  }
  for (const f of m.files.filter((x) => x.role === 'frame')) {
    const d = inspectFile(join(SHIPPED, f.path)).codestreams[0]!.details!;
    assert.ok(d.width >= 1024 && d.height >= 1024 && d.levels >= 5 && d.packetSource === 'plt', f.path);
    assert.ok(f.size > 100e3 && f.size < 300e3, `${f.path}: ${f.size} bytes`);
  }
  const readme = readFileSync(join(SHIPPED, 'README.md'), 'utf8');
  assert.ok(readme.includes('jpip-bench fixtures --preset small --out fixtures/small'));
  assert.ok(readme.includes(`${m.encoder.name} ${m.encoder.version}`));
});

shipped('the shipped movies are served by our server, and a frame decodes to its file', async () => {
  const srv = createJpipServer({ root: SHIPPED, port: 0 });
  const base = await srv.listen();
  try {
    for (const movie of ['movie-00.jpx', 'movie-01.jpx']) {
      const client = new JpipClient(base);
      const fields = { stream: [{ from: 3, to: 3, step: 1 }], fsiz: { fx: 1024, fy: 1024, round: 'round-down' as const }, len: 4_000_000 };
      const open = await client.request({ cnew: ['http'], ...fields }, movie);
      assert.is(open.status, 200, open.text);
      await client.untilDone(fields);
      const m = movie === 'movie-00.jpx' ? 0 : 1;
      const bytes = new Uint8Array(readFileSync(join(SHIPPED, `frames/frame-00${(3 + m) % 4}.jp2`)));
      const ref = readContainer(bytes).codestreams[0]!;
      assert.ok(imagesEqual(await decodeWasm(client.reassemble(3).codestream), await decodeWasm(bytes.slice(ref.offset, ref.offset + ref.length))), movie);
      await client.close();
    }
  } finally {
    await srv.close();
  }
});

// ---------------------------------------------------------------------------
const gen = suite('fixtures-gen: generating with a real encoder');
let dir = '';
let first: GenerateResult;
const TINY = { size: 256, frames: 6, pool: 3, levels: 4 };

gen.before(async () => {
  dir = tmp('set');
  first = await generateFixtures({ preset: 'small', out: dir, overrides: TINY, jobs: 2 });
});
gen.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

gen('makes the frames and linked movies, with a manifest our parser agrees with', () => {
  assert.is(first.encoded, 3);
  assert.equal(first.written.sort(), ['frames/frame-000.jp2', 'frames/frame-001.jp2', 'frames/frame-002.jp2', 'movie-00.jpx', 'movie-01.jpx']);
  const m = first.manifest;
  assert.is(m.encoder.name, 'opj_compress');
  assert.is(m.pool.length, 3);
  assert.ok(m.pool.every((p) => p.command.startsWith('opj_compress -i source-') && p.command.includes('-PLT') && !p.pltAdded));
  for (const f of m.files) {
    assert.is(statSync(join(dir, f.path)).size, f.size);
    assert.is(sha256(readFileSync(join(dir, f.path))), f.sha256);
  }
  const frame = inspectFile(join(dir, 'frames/frame-001.jp2'));
  assert.is(frame.format, 'jp2');
  const d = frame.codestreams[0]!.details!;
  assert.equal([d.width, d.height, d.layers, d.levels, d.progression, d.codeBlock, d.packetSource], [256, 256, 8, 4, 'RPCL', [64, 64], 'plt']);
  assert.equal(d.precincts, Array(5).fill([128, 128]));
  // Frame 1's XML box: FITS-style keywords, DATE-OBS one cadence after frame 0.
  const bytes = new Uint8Array(readFileSync(join(dir, 'frames/frame-001.jp2')));
  const xml = readXml(boxContent(bytes, findBox(readContainer(bytes).boxes, 'xml ')!));
  assert.match(xml, /<DATE-OBS>2026-01-01T00:00:12\.000<\/DATE-OBS>/);
  assert.match(xml, /<NAXIS1>256<\/NAXIS1>/);
  // Movie m frame i is pool frame (i + m) mod 3, through relative references.
  const movie = inspectFile(join(dir, 'movie-01.jpx'));
  assert.is(movie.format, 'jpx');
  assert.equal(movie.codestreams.map((c) => c.url), ['frames/frame-001.jp2', 'frames/frame-002.jp2', 'frames/frame-000.jp2', 'frames/frame-001.jp2', 'frames/frame-002.jp2', 'frames/frame-000.jp2']);
  const entry = m.files.find((f) => f.path === 'frames/frame-001.jp2')!;
  assert.equal([movie.codestreams[0]!.offset, movie.codestreams[0]!.length], [entry.codestreamOffset, entry.codestreamLength]);
  const readme = readFileSync(join(dir, 'README.md'), 'utf8');
  assert.ok(readme.includes(`jpip-bench fixtures --preset small --out ${dir} --size 256 --frames 6 --pool 3 --levels 4`));
});

gen('opj_dump reads the frames with the parameters asked for', () => {
  if (!HAVE_DUMP) return console.log('  (opj_dump not on PATH: its cross-check is skipped)');
  const r = spawnSync('opj_dump', ['-i', join(dir, 'frames', 'frame-002.jp2')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.equal(dumpValues(r.stdout, 'numresolutions'), [5]);
  assert.equal(dumpValues(r.stdout, 'numlayers'), [8]);
  assert.equal(dumpValues(r.stdout, 'prg'), [2]); // RPCL
  assert.equal(dumpValues(r.stdout, 'x1'), [256]);
  assert.match(r.stdout, /preccintsize \(w,h\)=(\(7,7\) ){5}/);
  assert.match(r.stdout, /cblkw=2\^6/);
});

gen('a re-run makes nothing; a changed parameter remakes only what depends on it', async () => {
  const again = await generateFixtures({ preset: 'small', out: dir, overrides: TINY });
  assert.equal([again.encoded, again.reused, again.written, again.kept, again.removed], [0, 0, [], 5, []]);
  assert.is(canonicalJson(again.manifest), canonicalJson(first.manifest));
  // Longer movies: the same frames, new movies.
  const longer = await generateFixtures({ preset: 'small', out: dir, overrides: { ...TINY, frames: 7 } });
  assert.equal([longer.encoded, longer.written.sort(), longer.kept], [0, ['movie-00.jpx', 'movie-01.jpx'], 3]);
  assert.is(inspectFile(join(dir, 'movie-00.jpx')).codestreams.length, 7);
  // A smaller pool: frame 2 goes, the others stay.
  const fewer = await generateFixtures({ preset: 'small', out: dir, overrides: { ...TINY, pool: 2 } });
  assert.equal([fewer.encoded, fewer.removed], [0, ['frames/frame-002.jp2']]);
  assert.not.ok(existsSync(join(dir, 'frames/frame-002.jp2')));
  assert.ok(verifyFixtures(dir).ok);
  // Back to the first set: frame 2 is encoded again, bit for bit the same.
  const back = await generateFixtures({ preset: 'small', out: dir, overrides: TINY });
  assert.is(back.encoded, 1);
  assert.is(canonicalJson(back.manifest.files), canonicalJson(first.manifest.files));
  // Raw codestream frames: new files and movies, codestreams taken from the JP2 files before they go.
  const raw = await generateFixtures({ preset: 'small', out: dir, overrides: { ...TINY, format: 'j2k' } });
  assert.equal([raw.encoded, raw.reused, raw.removed.length, raw.written.length], [0, 3, 3, 5]);
  assert.is(sha256(readFileSync(join(dir, 'frames/frame-001.j2k'))), first.manifest.pool[1]!.sha256);
  assert.ok(verifyFixtures(dir).ok);
  const jp2 = await generateFixtures({ preset: 'small', out: dir, overrides: TINY });
  assert.equal([jp2.encoded, jp2.reused], [0, 3]);
  assert.is(canonicalJson(jp2.manifest.files), canonicalJson(first.manifest.files));
});

gen('--verify finds a modified, a truncated and a missing file; a re-run repairs them', async () => {
  const f = join(dir, 'frames', 'frame-001.jp2');
  const good = readFileSync(f);
  const bad = Buffer.from(good);
  bad[bad.length - 100] ^= 0xff;
  writeFileSync(f, bad);
  let v = verifyFixtures(dir);
  assert.not.ok(v.ok);
  assert.equal(v.problems[0], { file: 'frames/frame-001.jp2', problem: 'size or sha256 differs from the manifest (modified since it was made)' });
  // Both movies reference it (movie 0 as its frames 1 and 4, movie 1 as 0 and 3).
  assert.equal(
    v.problems.slice(1).map((p) => `${p.file} ${p.problem}`),
    [1, 4].map((i) => `movie-00.jpx frame ${i} references frames/frame-001.jp2, which did not verify`).concat([0, 3].map((i) => `movie-01.jpx frame ${i} references frames/frame-001.jp2, which did not verify`)),
  );
  const byCli = await cli(['fixtures', '--verify', dir]);
  assert.is(byCli.code, 1);
  assert.match(byCli.out, /frames\/frame-001\.jp2: size or sha256 differs/);
  unlinkSync(join(dir, 'movie-01.jpx'));
  writeFileSync(join(dir, 'stray.txt'), 'x');
  v = verifyFixtures(dir);
  assert.ok(v.problems.some((p) => p.file === 'movie-01.jpx' && p.problem === 'missing'));
  assert.equal(v.unlisted, ['stray.txt']);
  const fixed = await generateFixtures({ preset: 'small', out: dir, overrides: TINY });
  assert.equal([fixed.encoded, fixed.written.sort()], [1, ['frames/frame-001.jp2', 'movie-01.jpx']]);
  assert.ok(good.equals(readFileSync(f)), 'the same bytes as the first run');
  unlinkSync(join(dir, 'stray.txt'));
  const ok = await cli(['fixtures', '--verify', dir]);
  assert.is(ok.code, 0, ok.out);
  assert.match(ok.out, /: OK, 5 files/);
  // A structurally broken frame whose manifest entry was updated to match is caught by the parser.
  const m = readManifest(dir)!;
  const e = m.files.find((x) => x.path === 'frames/frame-000.jp2')!;
  const cut = readFileSync(join(dir, e.path)).subarray(0, e.size - 500);
  writeFileSync(join(dir, e.path), cut);
  const edited: FixtureManifest = { ...m, files: m.files.map((x) => (x === e ? { ...x, size: cut.length, sha256: sha256(cut) } : x)) };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(edited));
  v = verifyFixtures(dir);
  assert.ok(v.problems.some((p) => p.file === 'frames/frame-000.jp2' && /J2K_ERR|codestream/.test(p.problem)), JSON.stringify(v.problems));
  // A re-run trusts the manifest's hashes; --force remakes everything.
  assert.is((await generateFixtures({ preset: 'small', out: dir, overrides: TINY })).encoded, 0);
  const repaired = await generateFixtures({ preset: 'small', out: dir, overrides: TINY, force: true });
  assert.equal([repaired.encoded, repaired.written.length], [3, 5]);
  assert.ok(verifyFixtures(dir).ok);
});

gen('a generated linked JPX is served by our server and its frames decode', async () => {
  const srv = createJpipServer({ root: dir, port: 0 });
  const base = await srv.listen();
  try {
    const client = new JpipClient(base);
    const fields = { stream: [{ from: 0, to: 5, step: 1 }], fsiz: { fx: 256, fy: 256, round: 'round-down' as const }, len: 2_000_000 };
    const open = await client.request({ cnew: ['http'], ...fields }, 'movie-01.jpx');
    assert.is(open.status, 200, open.text);
    await client.untilDone(fields);
    for (let i = 0; i < 6; i++) {
      const path = `frames/frame-${String((i + 1) % 3).padStart(3, '0')}.jp2`;
      const bytes = new Uint8Array(readFileSync(join(dir, path)));
      const ref = readContainer(bytes).codestreams[0]!;
      const want = await decodeWasm(bytes.slice(ref.offset, ref.offset + ref.length));
      assert.ok(imagesEqual(await decodeWasm(client.reassemble(i).codestream), want), `frame ${i} (${path})`);
    }
    await client.close();
  } finally {
    await srv.close();
  }
});

gen('the jhv preset: one JP2 per frame with its own DATE-OBS, a linked JPX per wavelength', async () => {
  const out = tmp('jhv');
  try {
    const r = await generateFixtures({ preset: 'jhv', out, overrides: { size: 128, levels: 3, frames: 3, movies: 2, pool: 2 } });
    assert.is(r.encoded, 2);
    const paths = r.manifest.files.map((f) => f.path).sort();
    assert.equal(paths, [
      'AIA_171.jpx',
      'AIA_171/2026_01_01__00_00_00_000__SDO_AIA_AIA_171.jp2',
      'AIA_171/2026_01_01__00_00_12_000__SDO_AIA_AIA_171.jp2',
      'AIA_171/2026_01_01__00_00_24_000__SDO_AIA_AIA_171.jp2',
      'AIA_193.jpx',
      'AIA_193/2026_01_01__00_00_00_000__SDO_AIA_AIA_193.jp2',
      'AIA_193/2026_01_01__00_00_12_000__SDO_AIA_AIA_193.jp2',
      'AIA_193/2026_01_01__00_00_24_000__SDO_AIA_AIA_193.jp2',
    ]);
    const bytes = new Uint8Array(readFileSync(join(out, 'AIA_193/2026_01_01__00_00_24_000__SDO_AIA_AIA_193.jp2')));
    const xml = readXml(boxContent(bytes, findBox(readContainer(bytes).boxes, 'xml ')!));
    assert.match(xml, /<WAVELNTH>193<\/WAVELNTH>/);
    assert.match(xml, /<DATE-OBS>2026-01-01T00:00:24\.000<\/DATE-OBS>/);
    const movie = inspectFile(join(out, 'AIA_193.jpx'));
    assert.equal(movie.codestreams.map((c) => c.url), ['AIA_193/2026_01_01__00_00_00_000__SDO_AIA_AIA_193.jp2', 'AIA_193/2026_01_01__00_00_12_000__SDO_AIA_AIA_193.jp2', 'AIA_193/2026_01_01__00_00_24_000__SDO_AIA_AIA_193.jp2']);
    assert.ok(verifyFixtures(out).ok);
    // A deleted frame file is rebuilt from a codestream another frame still holds: no encode.
    unlinkSync(join(out, 'AIA_171/2026_01_01__00_00_24_000__SDO_AIA_AIA_171.jp2'));
    const again = await generateFixtures({ preset: 'jhv', out, overrides: { size: 128, levels: 3, frames: 3, movies: 2, pool: 2 } });
    assert.equal([again.encoded, again.reused, again.written], [0, 1, ['AIA_171/2026_01_01__00_00_24_000__SDO_AIA_AIA_171.jp2']]);
    assert.ok(verifyFixtures(out).ok);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

gen('raw codestream frames with linked movies, and JPX movies embedding their frames, through the CLI', async () => {
  for (const format of ['j2k', 'jpx']) {
    const out = tmp(format);
    try {
      const r = await cli(['fixtures', '--out', out, '--size', '128', '--levels', '3', '--frames', '4', '--pool', '2', '--movies', '1', '--format', format, '--components', '3', '--precincts', '64x32', '--layers', '3']);
      assert.is(r.code, 0, r.err);
      assert.match(r.out, /made {5}3 files \(2 encoded/);
      const v = await cli(['fixtures', '--verify', out, '--json']);
      assert.is(v.code, 0, v.out);
      assert.ok(JSON.parse(v.out).ok);
      const movie = inspectFile(join(out, 'movie-00.jpx'));
      assert.is(movie.codestreams.length, 4);
      if (format === 'jpx') {
        assert.ok(movie.codestreams.every((c) => c.kind === 'embedded'));
        assert.equal(movie.codestreams[1]!.details!.precincts, Array(4).fill([64, 32]));
        // The embedded codestream is the frame file's, byte for byte.
        const frame = new Uint8Array(readFileSync(join(out, 'frames/frame-001.jp2')));
        const ref = readContainer(frame).codestreams[0]!;
        const jpx = new Uint8Array(readFileSync(join(out, 'movie-00.jpx')));
        assert.is(sha256(jpx.subarray(movie.codestreams[1]!.offset, movie.codestreams[1]!.offset + movie.codestreams[1]!.length)), sha256(frame.subarray(ref.offset, ref.offset + ref.length)));
      } else {
        assert.is(movie.codestreams[0]!.url, 'frames/frame-000.j2k');
        assert.is(inspectFile(join(out, 'frames/frame-000.j2k')).format, 'raw');
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
});

gen("the user's images: one pool frame each, at their size, decoding to exactly their samples when lossless", async () => {
  const src = tmp('src');
  const out = tmp('mine');
  try {
    const a = synthSolarFrame({ width: 96, height: 80, components: 1, seed: 5, frame: 0 });
    const b = synthSolarFrame({ width: 96, height: 80, components: 1, seed: 5, frame: 9 });
    await sharp(a, { raw: { width: 96, height: 80, channels: 1 } }).toColourspace('b-w').png().toFile(join(src, 'a.png'));
    writeFileSync(join(src, 'b.pgm'), encodePnm({ width: 96, height: 80, components: 1, samples: b }));
    const r = await generateFixtures({ preset: 'small', out, images: [src], overrides: { levels: 2, frames: 3, movies: 1, rates: [1] } });
    assert.equal([r.manifest.params.width, r.manifest.params.height, r.manifest.pool.length, r.encoded], [96, 80, 2, 2]);
    assert.equal(r.manifest.pool.map((p) => p.source.kind === 'image' && p.source.file), ['a.png', 'b.pgm']);
    for (const [i, want] of [a, b].entries()) {
      const bytes = new Uint8Array(readFileSync(join(out, `frames/frame-00${i}.jp2`)));
      const ref = readContainer(bytes).codestreams[0]!;
      const got = await decodeWasm(bytes.slice(ref.offset, ref.offset + ref.length));
      assert.is(sha256(got.samples as Uint8Array), sha256(want), `frame ${i}`);
    }
    assert.ok(verifyFixtures(out).ok);
    // Editing an image makes its frame stale.
    writeFileSync(join(src, 'b.pgm'), encodePnm({ width: 96, height: 80, components: 1, samples: a }));
    const again = await generateFixtures({ preset: 'small', out, images: [src], overrides: { levels: 2, frames: 3, movies: 1, rates: [1] } });
    assert.equal([again.encoded, again.written.sort()], [1, ['frames/frame-001.jp2', 'movie-00.jpx']]);
    // Images of different sizes, and flags the images decide, are refused.
    await sharp(a, { raw: { width: 96, height: 80, channels: 1 } }).resize(48, 40).toColourspace('b-w').png().toFile(join(src, 'c.png'));
    let err: unknown;
    await generateFixtures({ preset: 'small', out, images: [src] }).catch((e) => (err = e));
    assert.match(String(err), /c\.png: is 48x40x1, but .*a\.png is 96x80x1/);
    err = undefined;
    await generateFixtures({ preset: 'small', out, images: [join(src, 'a.png')], overrides: { size: 64 } }).catch((e) => (err = e));
    assert.instance(err, ParamError);
  } finally {
    rmSync(src, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
});

gen('grk_compress, when installed, makes a set whose PLT markers jpip-bench adds', async () => {
  if (!findTool('grk_compress')) return console.log('  (grk_compress not on PATH: skipped)');
  const out = tmp('grk');
  try {
    const r = await generateFixtures({ preset: 'small', out, encoder: 'grk', overrides: { size: 128, levels: 3, frames: 2, pool: 1, movies: 1 } });
    assert.is(r.manifest.encoder.name, 'grk_compress');
    assert.ok(r.manifest.pool[0]!.pltAdded);
    const v = verifyFixtures(out);
    assert.ok(v.ok, JSON.stringify(v.problems));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

units.run();
shipped.run();
if (HAVE_OPJ) gen.run();
else console.log('fixtures-gen: opj_compress is not on PATH, so the generation tests are skipped (apt-get install libopenjp2-tools)');
