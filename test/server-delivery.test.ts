import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream } from '../jpeg2000/codestream.js';
import { resolutionSizeAtDiscard } from '../jpeg2000/geometry.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { EOR } from '../jpip/constants.js';
import { JpipClient } from '../client-sim/client.js';
import { cropImage, decodeOpj, decodeWasm, imagesEqual, opjDecompressAvailable, psnr, type DecodedImage } from '../client-sim/decode.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { FIXTURES, fixtureBytes, fixtures } from './helpers.js';

/**
 * End to end: our server serves a window, our client reassembles what it
 * received, and the decode equals the original's decode of that window at
 * that resolution, sample for sample.
 */
const e2e = suite('window delivery, end to end');
let srv: JpipServer;
let base = '';

e2e.before(async () => {
  srv = createJpipServer({ root: FIXTURES, port: 0 });
  base = await srv.listen();
});
e2e.after(async () => {
  await srv.close();
});

function original(file: string): { codestream: Uint8Array; siz: ReturnType<typeof readCodestream>['main']['siz']; levels: number } {
  const bytes = fixtureBytes(file);
  const ref = readContainer(bytes, { file }).codestreams[0]!;
  const codestream = bytes.slice(ref.offset, ref.offset + ref.length);
  const cs = readCodestream(subSource(bufferSource(bytes), ref.offset, ref.length));
  return { codestream, siz: cs.main.siz, levels: Math.min(cs.main.cod.coding.levels, ...cs.main.coc.filter((c) => c !== undefined).map((c) => c!.levels)) };
}

async function fetchWindow(file: string, fields: Record<string, unknown>, len: number): Promise<JpipClient> {
  const client = new JpipClient(base);
  const first = await client.request({ cnew: ['http'], type: [{ name: 'jpp-stream', ext: false }], len, ...fields }, file);
  assert.is(first.status, 200, first.text);
  if (first.eor !== EOR.WINDOW_DONE && first.eor !== EOR.IMAGE_DONE) await client.untilDone({ len, ...fields });
  return client;
}

const sameSubsampling = (f: { args: string[] }): boolean => !f.args.includes('-s') && !f.args.some((a) => a.includes('@'));

for (const f of fixtures()) {
  e2e(`${f.name}: the whole image, delivered in 4 KB responses, decodes exactly`, async () => {
    const o = original(f.file);
    const w = o.siz.xsiz - o.siz.xOsiz;
    const h = o.siz.ysiz - o.siz.yOsiz;
    const client = await fetchWindow(f.file, { fsiz: { fx: w, fy: h, round: 'round-down' } }, 4096);
    const rebuilt = client.reassemble(0);
    assert.is(rebuilt.emptyPackets, 0, 'every packet arrived');
    const want = await decodeWasm(o.codestream);
    const got = await decodeWasm(rebuilt.codestream);
    assert.ok(imagesEqual(got, want), 'same pixels');
    await client.close();
  });

  const levels = o1(f.file).levels;
  const windows: [string, number, (w: number, h: number) => { roff: { x: number; y: number }; rsiz: { w: number; h: number } }][] = [
    // runs past the right edge: clipped
    ['at half size, across the image edge', 1, (w, h) => ({ roff: { x: Math.floor(w / 3), y: Math.floor(h / 4) }, rsiz: { w, h: Math.ceil(h / 2) } })],
    // starts and ends on multiples of 16 (a precinct boundary for the usual precinct sizes)
    ['at quarter size, on precinct boundaries', 2, (w, h) => ({ roff: { x: Math.min(16, w - 1), y: Math.min(16, h - 1) }, rsiz: { w: 16, h: 16 } })],
    ['at full size, a small window inside', 0, (w, h) => ({ roff: { x: Math.floor(w / 2), y: Math.floor(h / 3) }, rsiz: { w: 9, h: 7 } })],
  ];
  for (const [label, d, make] of windows) {
    if (!sameSubsampling(f) || levels < d) continue;
    e2e(`${f.name}: a window ${label} decodes exactly`, async () => {
      const o = original(f.file);
      const size = resolutionSizeAtDiscard(o.siz, d);
      const { roff, rsiz } = make(size.width, size.height);
      const client = await fetchWindow(f.file, { fsiz: { fx: size.width, fy: size.height, round: 'round-down' }, roff, rsiz }, 2048);
      const rebuilt = client.reassemble(0);
      const rect = { x: roff.x, y: roff.y, width: Math.min(rsiz.w, size.width - roff.x), height: Math.min(rsiz.h, size.height - roff.y) };
      const want = cropImage(await decodeWasm(o.codestream, { reduce: d }), rect);
      const got = cropImage(await decodeWasm(rebuilt.codestream, { reduce: d }), rect);
      assert.ok(imagesEqual(got, want), 'same pixels in the window');
      if (opjDecompressAvailable()) {
        const wantOpj = cropImage(decodeOpj(o.codestream, { reduce: d }), rect);
        const gotOpj = cropImage(decodeOpj(rebuilt.codestream, { reduce: d }), rect);
        assert.ok(imagesEqual(gotOpj, wantOpj), 'opj_decompress agrees');
      }
      await client.close();
    });
  }
}

function o1(file: string) {
  return original(file);
}

e2e('a response cut by len continues in the next one; quality rises with bytes', async () => {
  const f = fixtures().find((x) => x.name === 'g256-irrev-8l-cb32') ?? fixtures()[0]!;
  const o = original(f.file);
  const want = await decodeWasm(o.codestream);
  const client = new JpipClient(base);
  const fsiz = { fx: o.siz.xsiz, fy: o.siz.ysiz, round: 'round-down' as const };
  let r = await client.request({ cnew: ['http'], fsiz, len: 1500 }, f.file);
  const quality: number[] = [];
  let rounds = 0;
  for (;;) {
    assert.is(r.status, 200);
    rounds++;
    const rebuilt = client.reassemble(0);
    const got: DecodedImage = await decodeWasm(rebuilt.codestream);
    quality.push(psnr(got, want));
    if (r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE) break;
    assert.is(r.eor, EOR.BYTE_LIMIT_REACHED);
    assert.ok(r.bodyLength <= 1500 + 3, `body ${r.bodyLength} within len`);
    r = await client.request({ fsiz, len: 1500 });
  }
  assert.ok(rounds > 3, `${rounds} rounds`);
  for (let i = 1; i < quality.length; i++) assert.ok(quality[i]! >= quality[i - 1]! - 1e-9, `PSNR ${quality.join(', ')}`);
  assert.is(quality.at(-1), Infinity, 'exact at the end');
  // Asking again for a complete window sends nothing but the EOR.
  const again = await client.request({ fsiz, len: 1500 });
  assert.is(again.items.length, 1);
  assert.is(again.eor, EOR.IMAGE_DONE);
  await client.close();
});

e2e.run();
