import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import yargs from 'yargs';
import { readContainer } from '../jpeg2000/boxes.js';
import { bufferSource } from '../jpeg2000/source.js';
import { cropImage, decodeOpj, decodeWasm, firstDifference, imagesEqual, opjDecompressAvailable, type DecodedImage } from '../client-sim/decode.js';
import { decodeWindow, fetchWindow, saveWindow, splitJpipUrl, writePng } from '../client-sim/fetch-window.js';
import { register as registerFetch } from '../bin/commands/fetch.js';
import type { CliIo } from '../bin/io.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { FIXTURES, fixtureBytes } from './helpers.js';

/** `jpip-bench fetch`: one window fetched to completion, saved as a codestream that decodes to it, or as a PNG of it. */

const t = suite('fetch: one window, to a .j2k or a .png');
let srv: JpipServer;
let base = '';
let tmp = '';

t.before(async () => {
  srv = createJpipServer({ root: FIXTURES, port: 0 });
  base = await srv.listen();
  tmp = mkdtempSync(join(tmpdir(), 'jpip-fetch-'));
});
t.after(async () => {
  await srv.close();
  rmSync(tmp, { recursive: true, force: true });
});

function codestreamOf(file: string): Uint8Array {
  const bytes = fixtureBytes(file);
  const ref = readContainer(bufferSource(bytes)).codestreams[0]!;
  return bytes.slice(ref.offset, ref.offset + ref.length);
}

function same(a: DecodedImage, b: DecodedImage, what: string): void {
  assert.is(`${a.width}x${a.height}x${a.components}`, `${b.width}x${b.height}x${b.components}`, `${what}: size`);
  if (!imagesEqual(a, b)) assert.unreachable(`${what}: ${JSON.stringify(firstDifference(a, b))}`);
}

t('a region of a movie frame at half size: the .j2k decodes to the window of the original', async () => {
  const w = await fetchWindow({ url: `${base}/movie/linked.jpx`, fsiz: { w: 64, h: 64 }, roff: { x: 8, y: 12 }, rsiz: { w: 40, h: 30 }, stream: 2, len: 800 });
  assert.ok(w.complete);
  assert.ok(w.requests > 1, `${w.requests} requests (len 800)`);
  assert.is(w.view.discard, 1);
  assert.equal(w.view.rsiz, { w: 40, h: 30 });
  const file = join(tmp, 'win.j2k');
  assert.equal(await saveWindow(file, w), { format: 'j2k', width: 40, height: 30 });
  const rect = { x: 8, y: 12, width: 40, height: 30 };
  const got = cropImage(await decodeWasm(new Uint8Array(readFileSync(file)), { reduce: 1 }), rect);
  const want = cropImage(await decodeWasm(codestreamOf('movie/frames/frame 002.jp2'), { reduce: 1 }), rect);
  same(got, want, 'wasm');
  if (opjDecompressAvailable()) same(cropImage(decodeOpj(new Uint8Array(readFileSync(file)), { reduce: 1 }), rect), want, 'opj');
});

t('a PNG of an RGB window holds exactly the decoded pixels', async () => {
  const w = await fetchWindow({ url: `jpip://${base.slice('http://'.length)}/rgb200x150-t64-rpcl-plt-tpr.jp2`, fsiz: { w: 200, h: 150 }, roff: { x: 50, y: 40 }, rsiz: { w: 70, h: 50 } });
  const file = join(tmp, 'win.png');
  assert.equal(await saveWindow(file, w), { format: 'png', width: 70, height: 50 });
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  assert.is(`${info.width}x${info.height}x${info.channels}`, '70x50x3');
  const want = cropImage(await decodeWasm(codestreamOf('rgb200x150-t64-rpcl-plt-tpr.jp2')), { x: 50, y: 40, width: 70, height: 50 });
  assert.ok(Buffer.from(want.samples).equals(data), 'PNG pixels = original pixels');
  if (opjDecompressAvailable()) same(await decodeWindow(w, 'opj'), want, 'opj decode of the window');
});

t('a gray PNG, and 16-bit samples as a 16-bit PNG', async () => {
  const w = await fetchWindow({ url: `${base}/g128-default.j2k`, fsiz: { w: 32, h: 32 } });
  const file = join(tmp, 'g.png');
  await saveWindow(file, w);
  const meta = await sharp(file).metadata();
  assert.is(meta.channels, 1);
  assert.is(meta.width, 32);
  const img16: DecodedImage = { width: 2, height: 1, components: 1, bitDepth: 12, signed: false, samples: Uint16Array.of(4095, 7) };
  await writePng(join(tmp, 'w.png'), img16);
  const back = await sharp(join(tmp, 'w.png')).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  assert.is((back.info as { depth?: string }).depth, 'ushort');
  assert.equal([...new Uint16Array(back.data.buffer, back.data.byteOffset, 2)], [4095, 7]);
  const signed = await writePng(join(tmp, 's.png'), { ...img16, signed: true }).catch((e: Error) => e);
  assert.match(String(signed), /unsigned samples/);
  const four = await writePng(join(tmp, 'f.png'), { ...img16, components: 2, width: 1 }).catch((e: Error) => e);
  assert.match(String(four), /1 or 3 components/);
});

t('bad URLs and outputs are clear errors', async () => {
  assert.throws(() => splitJpipUrl('nope'), /not a URL/);
  assert.throws(() => splitJpipUrl('https://h/x.jp2'), /only http/);
  assert.throws(() => splitJpipUrl('http://h/'), /names no image/);
  assert.equal(splitJpipUrl('jpip://h:8090/a%20b/c.jpx'), { base: 'http://h:8090', target: 'a b/c.jpx' });
  const w = await fetchWindow({ url: `${base}/g128-default.j2k`, fsiz: { w: 16, h: 16 } });
  let e: unknown;
  try {
    await saveWindow(join(tmp, 'x.tiff'), w);
  } catch (x) {
    e = x;
  }
  assert.match(String(e), /\.png .* \.j2k/);
});

t('jpip-bench fetch URL --fsiz --roff --rsiz --stream --out', async () => {
  let out = '';
  const io: CliIo = { out: (s) => void (out += `${s}\n`), err: () => {}, tty: false };
  const run = (args: string[]): Promise<unknown> =>
    registerFetch(yargs(), io)
      .strict()
      .exitProcess(false)
      .fail((m, e) => {
        throw e ?? new Error(m);
      })
      .parseAsync(args);
  const file = join(tmp, 'cli.j2k');
  await run(['fetch', `${base}/movie/linked.jpx`, '--fsiz', '128,128', '--roff', '0,64', '--rsiz', '128,64', '--stream', '1', '--out', file]);
  assert.match(out, /wrote .*cli\.j2k: codestream of \d+ bytes, window 128x64 at 0,64 of frame 1 at 128x128 \(0 levels discarded\); 1 request/);
  const rect = { x: 0, y: 64, width: 128, height: 64 };
  same(cropImage(await decodeWasm(new Uint8Array(readFileSync(file))), rect), cropImage(await decodeWasm(codestreamOf('movie/frames/frame 001.jp2')), rect), 'cli .j2k');
  await run(['fetch', `${base}/movie/linked.jpx`, '--fsiz', '64,64', '--out', join(tmp, 'cli.png')]);
  assert.match(out, /cli\.png: 64x64 pixels/);
  let e: unknown;
  try {
    await run(['fetch', `${base}/movie/linked.jpx`, '--fsiz', '64', '--out', join(tmp, 'x.png')]);
  } catch (x) {
    e = x;
  }
  assert.match(String(e), /--fsiz must be/);
});

t.run();
