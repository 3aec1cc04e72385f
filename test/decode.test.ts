import { readdirSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream, tileCoding } from '../jpeg2000/codestream.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { synthSun } from '../fixtures-gen/synth.js';
import { OpjToolError } from '../fixtures-gen/opj.js';
import {
  DecodeError,
  componentSize,
  cropImage,
  decodeOpj,
  decodeWasm,
  firstDifference,
  imagesEqual,
  mse,
  opjDecompressAvailable,
  psnr,
  sizOf,
  type DecodedImage,
} from '../client-sim/decode.js';
import { FIXTURES, fixtureBytes, fixtures } from './helpers.js';

const HAVE_OPJ = opjDecompressAvailable();
if (!HAVE_OPJ) console.log('note: opj_decompress is not on PATH: the opj_decompress tests are skipped (apt-get install libopenjp2-tools)');

const MOVIE_FRAMES = readdirSync(`${FIXTURES}/movie/frames`)
  .filter((f) => f.endsWith('.jp2'))
  .sort()
  .map((f) => `movie/frames/${f}`);
const ALL = [...fixtures().map((f) => f.file), ...MOVIE_FRAMES];

/** Largest reduce every tile-component of the file's first codestream allows. */
function maxReduce(bytes: Uint8Array): number {
  const whole = bufferSource(bytes);
  const ref = readContainer(whole).codestreams[0]!;
  const cs = readCodestream(subSource(whole, ref.offset, ref.length));
  let m = Infinity;
  for (let t = 0; t < cs.tiles.length; t++) for (const cc of tileCoding(cs, t).components) m = Math.min(m, cc.levels);
  return m;
}

function layersOf(bytes: Uint8Array): number {
  const whole = bufferSource(bytes);
  const ref = readContainer(whole).codestreams[0]!;
  return readCodestream(subSource(whole, ref.offset, ref.length)).main.cod.layers;
}

function sameImage(a: DecodedImage, b: DecodedImage, what: string): void {
  assert.is(`${a.width}x${a.height}x${a.components}`, `${b.width}x${b.height}x${b.components}`, `${what}: size`);
  if (!imagesEqual(a, b)) assert.unreachable(`${what}: first difference ${JSON.stringify(firstDifference(a, b))}`);
}

function image(width: number, height: number, components: number, values: number[]): DecodedImage {
  return { width, height, components, bitDepth: 8, signed: false, samples: Uint8Array.from(values) };
}

// ---------------------------------------------------------------------------

const dec = suite('decode');

for (const info of fixtures()) {
  // matrix.json also records the source each fixture was encoded from.
  const src = (info as unknown as { source: { width: number; height: number; components: 1 | 3; seed: number; format: string } }).source;
  if (src.format !== 'pnm') continue;
  dec(`${info.name}: the WASM decode is the encoder's source image${info.lossless ? ' exactly' : ' (within the rate it was coded at)'}`, async () => {
    const img = await decodeWasm(fixtureBytes(info.file));
    const want: DecodedImage = {
      width: src.width,
      height: src.height,
      components: src.components,
      bitDepth: 8,
      signed: false,
      samples: synthSun({ width: src.width, height: src.height, components: src.components, seed: src.seed }),
    };
    assert.is(img.bitDepth, 8);
    assert.ok(img.samples instanceof Uint8Array);
    if (info.lossless) sameImage(img, want, 'lossless');
    else {
      // A layout mistake (planar vs interleaved, wrong stride) lands near 10 dB.
      const q = psnr(want, img);
      assert.ok(q > 24, `PSNR ${q.toFixed(2)} dB against the source`);
    }
  });
}

for (const f of ALL) {
  dec(`${f}: WASM and opj_decompress agree at every reduce level, all layers and 1 layer`, async () => {
    if (!HAVE_OPJ) return;
    const bytes = fixtureBytes(f);
    const siz = sizOf(bytes);
    for (let r = 0; r <= maxReduce(bytes); r++) {
      for (const layers of [0, 1]) {
        const w = await decodeWasm(bytes, { reduce: r, layers });
        const o = decodeOpj(bytes, { reduce: r, layers });
        sameImage(w, o, `reduce ${r}, layers ${layers || 'all'}`);
        const want = componentSize(siz, 0, r);
        assert.is(w.width, want.width);
        assert.is(w.height, want.height);
      }
    }
  });
}

dec('layers: each added layer brings the decode closer to the full one', async () => {
  for (const f of ['g256-irrev-8l-cb32.j2k', 'rgb160x120-t80x60-pcrl-sop-eph.j2k', 'g128-lrcp-tpl-4l.j2k']) {
    const bytes = fixtureBytes(f);
    const L = layersOf(bytes);
    const full = await decodeWasm(bytes);
    let last = -Infinity;
    for (let l = 1; l <= L; l++) {
      const q = psnr(full, await decodeWasm(bytes, { layers: l }));
      assert.ok(q > last, `${f}: ${l} layers ${q.toFixed(2)} dB after ${last.toFixed(2)}`);
      last = q;
    }
    assert.is(last, Infinity);
  }
});

dec('silent WASM failures become DecodeErrors', async () => {
  const bytes = fixtureBytes('g128-default.j2k');
  const cases: [string, Uint8Array, number][] = [
    ['reduce beyond the levels', bytes, 6],
    ['cut after the first tile-part header', bytes.subarray(0, 200), 0],
    ['cut in the middle', bytes.subarray(0, 4000), 0],
    ['cut before EOC', bytes.subarray(0, bytes.length - 2), 0],
    ['0xFF bytes in the packet data', Uint8Array.from(bytes, (v, i) => (i >= 300 && i < 400 ? 0xff : v)), 0],
  ];
  for (const [what, data, reduce] of cases) {
    let err: unknown;
    try {
      await decodeWasm(data, { reduce });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof DecodeError, `${what}: ${String(err)}`);
    assert.match((err as Error).message, /WASM decoder returned 0 bytes/);
  }
  // Not JPEG 2000 at all: refused before the decoder runs.
  let err: unknown;
  try {
    await decodeWasm(Uint8Array.of(1, 2, 3, 4, 5, 6));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error);
  // The module survives failures.
  sameImage(await decodeWasm(bytes), await decodeWasm(bytes), 'after failures');
});

dec('concurrent WASM decodes share one module', async () => {
  const files = ['g128-default.j2k', 'rgb128-poc.j2k', 'g97x61-odd-t32-rpcl.j2k', 'yuv420-128x96-rpcl.j2k'];
  const one = await Promise.all(files.map((f) => decodeWasm(fixtureBytes(f))));
  const two = await Promise.all(files.map((f) => decodeWasm(fixtureBytes(f))));
  files.forEach((f, i) => sameImage(one[i]!, two[i]!, f));
});

dec('opj_decompress failures are errors too', () => {
  if (!HAVE_OPJ) return;
  let err: unknown;
  try {
    decodeOpj(fixtureBytes('g128-default.j2k'), { reduce: 6 });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof OpjToolError || err instanceof DecodeError, String(err));
});

dec('bad options are refused', async () => {
  const bytes = fixtureBytes('g128-default.j2k');
  for (const opts of [{ reduce: -1 }, { reduce: 1.5 }, { layers: -2 }]) {
    let err: unknown;
    try {
      await decodeWasm(bytes, opts);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof RangeError, JSON.stringify(opts));
  }
});

dec.run();

// ---------------------------------------------------------------------------

const px = suite('pixels');

px('psnr, mse, imagesEqual', () => {
  const a = image(2, 2, 1, [0, 10, 20, 30]);
  const b = image(2, 2, 1, [0, 10, 20, 40]);
  assert.is(mse(a, a), 0);
  assert.is(psnr(a, a), Infinity);
  assert.is(mse(a, b), 25);
  assert.ok(Math.abs(psnr(a, b) - 10 * Math.log10((255 * 255) / 25)) < 1e-12);
  assert.ok(Math.abs(psnr(a, b, 1) - 10 * Math.log10(1 / 25)) < 1e-12);
  assert.ok(imagesEqual(a, { ...a, samples: Uint16Array.from(a.samples) }), 'sample types may differ');
  assert.not.ok(imagesEqual(a, b));
  assert.not.ok(imagesEqual(a, image(4, 1, 1, [0, 10, 20, 30])));
  assert.equal(firstDifference(a, b), { x: 1, y: 1, c: 0, a: 30, b: 40 });
  assert.throws(() => psnr(a, image(1, 1, 1, [0])), /differ in size/);
});

px('cropImage: interleaved samples, clipped to the image', () => {
  // 3x2 RGB: sample value = 10 * pixel index + component.
  const vals: number[] = [];
  for (let i = 0; i < 6; i++) vals.push(10 * i, 10 * i + 1, 10 * i + 2);
  const img = image(3, 2, 3, vals);
  const c = cropImage(img, { x: 1, y: 0, width: 2, height: 2 });
  assert.is(c.width, 2);
  assert.is(c.height, 2);
  assert.equal(Array.from(c.samples), [10, 11, 12, 20, 21, 22, 40, 41, 42, 50, 51, 52]);
  const clipped = cropImage(img, { x: 2, y: 1, width: 10, height: 10 });
  assert.equal([clipped.width, clipped.height, ...clipped.samples], [1, 1, 50, 51, 52]);
  assert.is(cropImage(img, { x: 5, y: 5, width: 2, height: 2 }).samples.length, 0);
});

px('componentSize follows the reference grid (offsets, subsampling)', () => {
  const siz = sizOf(fixtureBytes('g97x61-odd-t32-rpcl.j2k'));
  assert.equal(componentSize(siz, 0, 0), { width: 97, height: 61 });
  assert.equal(componentSize(siz, 0, 1), { width: 48, height: 30 });
  const sub = sizOf(fixtureBytes('g100x80-sub2.j2k'));
  assert.equal(componentSize(sub, 0, 0), { width: 100, height: 80 });
});

px.run();
