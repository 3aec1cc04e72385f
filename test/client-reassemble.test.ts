import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { bufferSource } from '../jpeg2000/source.js';
import { resolutionSizeAtDiscard } from '../jpeg2000/geometry.js';
import { FetchTransport, JpipClient, type Transport } from '../client-sim/client.js';
import { cropImage, decodeOpj, decodeWasm, firstDifference, imagesEqual, opjDecompressAvailable, sizOf, type DecodedImage } from '../client-sim/decode.js';
import { UndiciTransport } from '../client-sim/node-transport.js';
import { mainHeaderFacts, one } from '../client-sim/patterns.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { FIXTURES, fixtureBytes } from './helpers.js';

/**
 * The client end to end: windows fetched from our server until it says they
 * are done, rebuilt into a codestream from the data-bin store, decoded: the
 * pixels of the window equal those of the original file decoded at the same
 * level (WASM OpenJPEG, and opj_decompress when it is installed).
 */

const HAVE_OPJ = opjDecompressAvailable();
const t = suite('client: complete windows rebuild to the original pixels');
let srv: JpipServer;
let base = '';

t.before(async () => {
  srv = createJpipServer({ root: FIXTURES, port: 0 });
  base = await srv.listen();
});
t.after(async () => {
  await srv.close();
});

/** The codestream of `file` (codestream `cs` of a JPX, which for our movies lives in the frame files). */
function original(file: string): Uint8Array {
  const bytes = fixtureBytes(file);
  const c = readContainer(bufferSource(bytes));
  const ref = c.codestreams[0]!;
  return bytes.slice(ref.offset, ref.offset + ref.length);
}

function same(a: DecodedImage, b: DecodedImage, what: string): void {
  assert.is(`${a.width}x${a.height}x${a.components}`, `${b.width}x${b.height}x${b.components}`, `${what}: size`);
  if (!imagesEqual(a, b)) assert.unreachable(`${what}: first difference ${JSON.stringify(firstDifference(a, b))}`);
}

interface Case {
  target: string;
  /** The file holding the codestream to compare with. */
  file: string;
  stream: number;
  level: number;
  region?: { x: number; y: number; w: number; h: number };
}

const CASES: Case[] = [
  { target: 'g128-default.j2k', file: 'g128-default.j2k', stream: 0, level: 0 },
  { target: 'g128-default.j2k', file: 'g128-default.j2k', stream: 0, level: 2 },
  { target: 'g128-default.j2k', file: 'g128-default.j2k', stream: 0, level: 0, region: { x: 40, y: 24, w: 50, h: 30 } },
  { target: 'rgb200x150-t64-rpcl-plt-tpr.jp2', file: 'rgb200x150-t64-rpcl-plt-tpr.jp2', stream: 0, level: 1 },
  { target: 'rgb200x150-t64-rpcl-plt-tpr.jp2', file: 'rgb200x150-t64-rpcl-plt-tpr.jp2', stream: 0, level: 0, region: { x: 70, y: 60, w: 64, h: 40 } },
  { target: 'g97x61-odd-t32-rpcl.j2k', file: 'g97x61-odd-t32-rpcl.j2k', stream: 0, level: 1 },
  { target: 'movie/linked.jpx', file: 'movie/frames/frame 001.jp2', stream: 1, level: 0 },
  { target: 'movie/linked.jpx', file: 'movie/frames/frame 002.jp2', stream: 2, level: 1, region: { x: 10, y: 20, w: 33, h: 21 } },
];

async function fetchCase(c: Case, transport: Transport): Promise<{ rebuilt: Uint8Array; requests: number }> {
  const client = new JpipClient(base, { transport });
  const siz = sizOf(fixtureBytes(c.file));
  const size = resolutionSizeAtDiscard(siz, c.level);
  const win = {
    stream: one(c.stream),
    fsiz: { fx: size.width, fy: size.height, round: 'round-down' as const },
    ...(c.region ? { roff: { x: c.region.x, y: c.region.y }, rsiz: { w: c.region.w, h: c.region.h } } : {}),
    // A small len: windows take several responses, bins arrive in pieces.
    len: 1500,
  };
  await client.open(c.target, win);
  const rounds = await client.untilDone(win, undefined, 500);
  assert.ok(rounds.length >= 1);
  assert.ok(mainHeaderFacts(client.store, c.stream), 'main header held');
  const r = client.reassemble(c.stream);
  assert.is(r.problems.length, 0, JSON.stringify(r.problems));
  await client.dispose();
  return { rebuilt: r.codestream, requests: rounds.length + 1 };
}

for (const [name, make] of [
  ['undici', () => new UndiciTransport()],
  ['fetch', () => new FetchTransport()],
] as const) {
  t(`${name}: whole frames and regions at several levels equal the original, decoded with WASM OpenJPEG`, async () => {
    let multi = 0;
    for (const c of CASES) {
      const what = `${c.target} stream ${c.stream} level ${c.level}${c.region ? ` region ${JSON.stringify(c.region)}` : ''}`;
      const { rebuilt, requests } = await fetchCase(c, make());
      if (requests > 2) multi++;
      let got = await decodeWasm(rebuilt, { reduce: c.level });
      let want = await decodeWasm(original(c.file), { reduce: c.level });
      if (c.region) {
        const rect = { x: c.region.x, y: c.region.y, width: c.region.w, height: c.region.h };
        got = cropImage(got, rect);
        want = cropImage(want, rect);
      }
      same(got, want, what);
    }
    assert.ok(multi >= 3, 'several windows took more than one response');
  });
}

t('opj_decompress decodes the rebuilt codestreams to the pixels it decodes from the originals', async () => {
  if (!HAVE_OPJ) {
    console.log('note: opj_decompress is not on PATH: skipped (apt-get install libopenjp2-tools)');
    return;
  }
  for (const c of CASES.filter((x) => !x.region)) {
    const { rebuilt } = await fetchCase(c, new UndiciTransport());
    same(decodeOpj(rebuilt, { reduce: c.level }), decodeOpj(original(c.file), { reduce: c.level }), `${c.target} level ${c.level} (opj)`);
    // And both decoders agree on the rebuilt stream.
    same(await decodeWasm(rebuilt, { reduce: c.level }), decodeOpj(rebuilt, { reduce: c.level }), `${c.target} level ${c.level} (wasm = opj)`);
  }
});

t('a window not yet complete still rebuilds into a decodable codestream (missing packets are empty)', async () => {
  const client = new JpipClient(base, { transport: new UndiciTransport() });
  await client.open('g128-default.j2k', { fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 1200 });
  const r = client.reassemble(0);
  assert.ok(r.emptyPackets > 0, 'some packets missing');
  const img = await decodeWasm(r.codestream);
  assert.is(img.width, 128);
  await client.dispose();
  const nothing = new JpipClient(base);
  assert.throws(() => nothing.reassemble(0), /main header/);
});

t.run();
