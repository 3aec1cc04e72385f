import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MATRIX,
  MATRIX_JSON,
  README_BEGIN,
  README_END,
  cmdFileText,
  commandLine,
  generateMatrix,
  matrixJsonText,
  readmeTable,
  sha256,
  sourceBytes,
  sourceFileName,
  type MatrixJson,
} from '../fixtures-gen/matrix.js';
import { OPJ_INSTALL_HINT, OpjToolError, findTool, runTool, toolVersion } from '../fixtures-gen/opj.js';
import { encodePnm, mulberry32, synthSun, yuv420FromRgb } from '../fixtures-gen/synth.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const json = JSON.parse(readFileSync(join(FIXTURES, MATRIX_JSON), 'utf8')) as MatrixJson;
const specByName = new Map(MATRIX.map((s) => [s.name, s]));

/** Files in the fixture directory that the generator owns. */
const GENERATED = /\.(j2k|jp2|cmd|dump\.txt)$/;

test('matrix.json lists exactly the MATRIX specs, in order, with their arguments', () => {
  assert.equal(
    json.fixtures.map((e) => e.name),
    MATRIX.map((s) => s.name),
  );
  for (const e of json.fixtures) {
    const spec = specByName.get(e.name)!;
    assert.equal(e.args, [...spec.args], e.name);
    assert.is(e.ext, spec.ext, e.name);
    assert.is(e.file, `${e.name}.${e.ext}`, e.name);
    assert.is(e.command, commandLine(spec), e.name);
    assert.is(e.why, spec.why, e.name);
    assert.is(e.source.file, sourceFileName(spec), e.name);
    assert.is(e.source.width, spec.source.width, e.name);
    assert.is(e.source.height, spec.source.height, e.name);
    assert.is(e.source.components, spec.source.components, e.name);
    assert.is(e.source.seed, spec.source.seed, e.name);
  }
});

test('every committed fixture, dump and .cmd exists and matches matrix.json', () => {
  for (const e of json.fixtures) {
    const bytes = readFileSync(join(FIXTURES, e.file));
    assert.is(bytes.length, e.size, `${e.file} size`);
    assert.is(sha256(bytes), e.sha256, `${e.file} sha256`);
    const dump = readFileSync(join(FIXTURES, e.dump), 'utf8');
    assert.is(sha256(dump), e.dumpSha256, `${e.dump} sha256`);
    assert.ok(dump.includes('Image info {'), `${e.dump} looks like opj_dump output`);
    const cmd = readFileSync(join(FIXTURES, `${e.name}.cmd`), 'utf8');
    assert.is(cmd, cmdFileText(specByName.get(e.name)!), `${e.name}.cmd`);
    // The codestream starts with SOC+SIZ (J2K) or the JP2 signature box.
    if (e.ext === 'j2k') assert.equal([...bytes.subarray(0, 4)], [0xff, 0x4f, 0xff, 0x51], e.file);
    else assert.equal([...bytes.subarray(4, 12)], [0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a], e.file);
  }
});

test('no stray generated files, and the fixture set stays small', () => {
  const expected = new Set(json.fixtures.flatMap((e) => [e.file, e.dump, `${e.name}.cmd`]));
  const present = readdirSync(FIXTURES).filter((f) => GENERATED.test(f));
  assert.equal(present.filter((f) => !expected.has(f)), [], 'files not in matrix.json');
  let total = 0;
  for (const f of readdirSync(FIXTURES)) {
    const st = statSync(join(FIXTURES, f));
    if (st.isFile()) total += st.size;
  }
  assert.ok(total < 1_500_000, `fixtures total ${total} bytes`);
});

test('README.md has the generated table for this matrix.json', () => {
  const readme = readFileSync(join(FIXTURES, 'README.md'), 'utf8');
  const a = readme.indexOf(README_BEGIN);
  const b = readme.indexOf(README_END);
  assert.ok(a >= 0 && b > a, 'README markers');
  assert.fixture(readme.slice(a, b + README_END.length), readmeTable(json));
  assert.is(readFileSync(join(FIXTURES, MATRIX_JSON), 'utf8'), matrixJsonText(json));
});

test('synth: deterministic, seed-sensitive, and pinned to the committed sources', () => {
  const p = { width: 61, height: 37, components: 3 as const, seed: 42 };
  const a = synthSun(p);
  const b = synthSun(p);
  assert.is(a.length, 61 * 37 * 3);
  assert.equal(a, b);
  assert.not.equal(synthSun({ ...p, seed: 43 }), a);
  // Same bytes on every machine: the sources the fixtures were encoded from.
  for (const e of json.fixtures) {
    const src = sourceBytes(specByName.get(e.name)!.source);
    assert.is(src.length, e.source.size, `${e.name} source size`);
    assert.is(sha256(src), e.source.sha256, `${e.name} source sha256`);
  }
});

test('synth: a bright disk on a dark sky', () => {
  const w = 96;
  const h = 80;
  const g = synthSun({ width: w, height: h, components: 1, seed: 5 });
  let centre = 0;
  let corner = 0;
  for (let y = -2; y <= 2; y++) {
    for (let x = -2; x <= 2; x++) {
      centre += g[(h / 2 + y) * w + w / 2 + x]!;
      corner += g[(4 + y) * w + 4 + x]!;
    }
  }
  assert.ok(centre / 25 > 120, `centre ${centre / 25}`);
  assert.ok(corner / 25 < 40, `corner ${corner / 25}`);
  assert.throws(() => synthSun({ width: 0, height: 4, components: 1, seed: 1 }), /bad size/);
  assert.throws(() => synthSun({ width: 4, height: 4, components: 2 as 1, seed: 1 }), /components/);
  assert.throws(() => synthSun({ width: 4, height: 4, components: 1, seed: 0.5 }), /seed/);
});

test('synth: mulberry32, PNM and 4:2:0 encodings', () => {
  const r1 = mulberry32(7);
  const r2 = mulberry32(7);
  for (let i = 0; i < 100; i++) {
    const v = r1();
    assert.is(v, r2());
    assert.ok(v >= 0 && v < 1);
  }
  const pgm = encodePnm({ width: 3, height: 2, components: 1, samples: new Uint8Array([1, 2, 3, 4, 5, 6]) });
  assert.is(new TextDecoder().decode(pgm.subarray(0, 11)), 'P5\n3 2\n255\n');
  assert.equal([...pgm.subarray(11)], [1, 2, 3, 4, 5, 6]);
  const ppm = encodePnm({ width: 1, height: 1, components: 3, samples: new Uint8Array([9, 8, 7]) });
  assert.is(new TextDecoder().decode(ppm.subarray(0, 2)), 'P6');
  assert.throws(() => encodePnm({ width: 2, height: 2, components: 1, samples: new Uint8Array(3) }), /samples/);

  // A flat grey RGB image maps to Y = grey, Cb = Cr = 128.
  const flat = new Uint8Array(4 * 2 * 3).fill(100);
  const yuv = yuv420FromRgb(flat, 4, 2);
  assert.is(yuv.length, 4 * 2 + 2 * 2 * 1);
  assert.equal([...yuv], [100, 100, 100, 100, 100, 100, 100, 100, 128, 128, 128, 128]);
  // Pure red: Y ~ 0.299*255, Cr high, Cb low.
  const red = new Uint8Array(2 * 2 * 3);
  for (let i = 0; i < 4; i++) red[i * 3] = 255;
  const [y0, , , , cb, cr] = yuv420FromRgb(red, 2, 2);
  assert.is(y0, 76);
  assert.ok(cb! < 100 && cr! === 255, `cb ${cb} cr ${cr}`);
  assert.throws(() => yuv420FromRgb(new Uint8Array(3 * 3 * 3), 3, 3), /even/);
});

test('opj: findTool searches PATH, errors name the tool and the install command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jpip-opj-'));
  try {
    const fake = join(dir, 'fake_tool');
    writeFileSync(fake, '#!/bin/sh\nexit 0\n');
    chmodSync(fake, 0o755);
    writeFileSync(join(dir, 'not_exec'), 'x');
    assert.is(findTool('fake_tool', `/nonexistent-dir:${dir}`), fake);
    assert.is(findTool('not_exec', dir), undefined);
    assert.is(findTool('fake_tool', ''), undefined);
    assert.is(findTool('fake_tool', undefined), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const savedPath = process.env['PATH'];
  process.env['PATH'] = '/nonexistent-dir';
  try {
    assert.is(toolVersion('opj_compress'), undefined);
    try {
      runTool('opj_dump', ['-i', 'x.j2k']);
      assert.unreachable('runTool should throw without opj_dump on PATH');
    } catch (err) {
      assert.instance(err, OpjToolError);
      assert.is((err as OpjToolError).tool, 'opj_dump');
      assert.match((err as Error).message, /opj_dump was not found on PATH/);
      assert.match((err as Error).message, /apt-get install libopenjp2-tools/);
    }
  } finally {
    process.env['PATH'] = savedPath;
  }
  assert.match(OPJ_INSTALL_HINT, /libopenjp2-tools/);
});

const haveTools = findTool('opj_compress') !== undefined && findTool('opj_dump') !== undefined;

test('opj: a failing run names the tool, the arguments and the exit status', () => {
  if (!findTool('opj_dump')) {
    console.log('  [matrix] opj_dump not on PATH: skipping the failing-run check');
    return;
  }
  try {
    runTool('opj_dump', ['-i', '/nonexistent-dir/none.j2k']);
    assert.unreachable('opj_dump on a missing file should fail');
  } catch (err) {
    assert.instance(err, OpjToolError);
    assert.match((err as Error).message, /^opj_dump -i \/nonexistent-dir\/none\.j2k: exit status \d+/);
  }
});

test('regenerating the matrix with opj_compress reproduces the committed files byte for byte', () => {
  if (!haveTools) {
    console.log(`  [matrix] opj_compress/opj_dump not on PATH: byte comparison skipped (${OPJ_INSTALL_HINT})`);
    return;
  }
  const version = toolVersion('opj_compress');
  if (version !== json.openjpeg) {
    console.log(
      `  [matrix] opj_compress is OpenJPEG ${version ?? 'unknown'}, fixtures were made with ${json.openjpeg}: byte comparison skipped`,
    );
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'jpip-matrix-'));
  try {
    const regenerated = generateMatrix(out, { readme: false });
    assert.is(readFileSync(join(out, MATRIX_JSON), 'utf8'), readFileSync(join(FIXTURES, MATRIX_JSON), 'utf8'), 'matrix.json');
    for (const e of regenerated.fixtures) {
      for (const f of [e.file, e.dump, `${e.name}.cmd`]) {
        const fresh = readFileSync(join(out, f));
        const committed = readFileSync(join(FIXTURES, f));
        assert.ok(fresh.equals(committed), `${f} differs from the committed copy (regenerate: node --import tsx fixtures-gen/matrix.ts)`);
      }
    }
    assert.ok(!existsSync(join(out, 'README.md')));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('lossless fixtures decode (opj_decompress) to exactly their source samples', () => {
  if (!findTool('opj_decompress')) {
    console.log(`  [matrix] opj_decompress not on PATH: decode check skipped (${OPJ_INSTALL_HINT})`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'jpip-decode-'));
  try {
    // opj_decompress treats any 3-component image with subsampled chroma as
    // sYCC and writes it upsampled and converted to RGB, so the 4:2:0 fixture
    // cannot be compared to its planar source this way.
    const lossless = json.fixtures.filter((e) => e.lossless && e.source.format !== 'yuv420');
    assert.ok(lossless.length >= 5, 'several lossless fixtures');
    for (const e of lossless) {
      const src = sourceBytes(specByName.get(e.name)!.source);
      const outName = `${e.name}.out.${e.source.components === 1 ? 'pgm' : 'ppm'}`;
      runTool('opj_decompress', ['-i', join(FIXTURES, e.file), '-o', outName], { cwd: dir });
      const decoded = readFileSync(join(dir, outName));
      const n = e.source.width * e.source.height * e.source.components;
      assert.ok(decoded.length >= n, `${e.name} decoded size`);
      // PNM headers may differ in layout; compare the sample bytes at the end.
      assert.ok(Buffer.from(decoded.subarray(decoded.length - n)).equals(Buffer.from(src.subarray(src.length - n))), `${e.name} samples`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
