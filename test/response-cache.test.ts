import { copyFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { COMPLETE, CacheModel, sharedHoldings } from '../jpip/cache-model.js';
import { decodeStream } from '../jpip/messages.js';
import { ResponseCache, ResponseRecorder, type CachedResponse } from '../server/response-cache.js';
import { validateConfig } from '../server/config.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { FIXTURES, fixtureBytes, copyMovie } from './helpers.js';
import { writeBigMovie } from './supervisor-client.js';

const unit = suite('response cache: budget, order, recorder');

const kept = (n: number, eor = 2): CachedResponse => ({ body: new Uint8Array(n), updates: [], holdings: sharedHoldings([]), eor, served: { view: undefined, layers: undefined } });

unit('keeps bodies within its budget, least recently used out, none over an eighth of it', () => {
  const c = new ResponseCache(8 * 1024);
  assert.ok(c.enabled);
  assert.ok(c.fits(1024));
  assert.not.ok(c.fits(1025));
  c.put('too-big', kept(2000));
  assert.is(c.stats().entries, 0, 'a body over an eighth of the budget is not kept');
  for (let i = 0; i < 6; i++) c.put(`k${i}`, kept(700));
  assert.ok(c.get('k0'), 'touched: now the most recently used');
  for (let i = 6; i < 12; i++) c.put(`k${i}`, kept(700));
  const s = c.stats();
  assert.ok(s.bytes <= 8 * 1024, `within the budget (${s.bytes})`);
  assert.ok(s.evictions > 0);
  assert.ok(c.get('k0') === undefined || c.get('k11') !== undefined);
  assert.ok(c.get('k11'), 'the newest is kept');
  assert.is(c.get('k1'), undefined, 'an old untouched one went first');
  c.setBudget(0);
  assert.not.ok(c.enabled);
  assert.is(c.stats().entries, 0, 'a zero budget drops everything');
  const hits = c.stats().hits;
  const misses = c.stats().misses;
  c.get('nothing');
  assert.is(c.stats().misses, misses + 1);
  assert.is(c.stats().hits, hits);
});

unit('the recorder copies what it is given, keeps the last update per bin, needs the end, and records a key once at a time', () => {
  const c = new ResponseCache(64 * 1024); // bodies up to 8 KiB
  const served = { view: undefined, layers: undefined };
  const rec = c.record('k')!;
  assert.ok(rec);
  assert.is(c.record('k'), undefined, 'the same key is not recorded twice at once');
  const a = Uint8Array.of(1, 2, 3);
  rec.add(a, [{ codestream: 0, classId: 0, binId: 5, held: 10 }], undefined);
  a[0] = 9; // a pooled buffer written again after its write completed
  assert.is(c.recordingNow, 3);
  assert.is(rec.result(served), undefined, 'no EOR yet: nothing to keep');
  rec.add(Uint8Array.of(4, 5), [{ codestream: 0, classId: 0, binId: 5, held: COMPLETE }, { codestream: 0, classId: 2, binId: 0, held: COMPLETE }], 4);
  rec.keep(served);
  assert.is(c.recordingNow, 0, 'the copy is the cache\'s now, not the recording\'s');
  const r = c.get('k')!;
  assert.equal([...r.body], [1, 2, 3, 4, 5]);
  assert.is(r.eor, 4);
  assert.equal(
    r.updates.map((u) => [u.classId, u.binId, u.held]),
    [
      [0, 5, COMPLETE],
      [2, 0, COMPLETE],
    ],
  );
  assert.ok(Object.isFrozen(r.updates) && Object.isFrozen(r.updates[0]), 'shared by every hit: frozen');
  rec.release();
  assert.ok(c.record('k'), 'recorded again once released');
});

unit('recordings give up beyond what one body may be, and all of them together within the budget', () => {
  const c = new ResponseCache(64 * 1024); // bodies up to 8 KiB
  const served = { view: undefined, layers: undefined };
  const big = c.record('big')!;
  big.add(new Uint8Array(5000), [], undefined);
  big.add(new Uint8Array(5000), [], 2);
  assert.is(c.recordingNow, 0, 'gave up: its copy is freed at once');
  assert.is(c.record('big'), undefined, 'the key stays taken until the response ends');
  big.keep(served);
  assert.is(c.get('big'), undefined, 'too big: not kept');
  assert.ok(c.record('big'), 'free again');
  const many = Array.from({ length: 9 }, (_, i) => c.record(`k${i}`)!);
  for (const r of many) r.add(new Uint8Array(7500), [], 2);
  assert.ok(c.recordingNow <= 64 * 1024, `recordings within the budget (${c.recordingNow})`);
  assert.is(many[8]!.result(served), undefined, 'the one that did not fit gave up');
  assert.ok(many[0]!.result(served), 'the others go on');
  for (const r of many) r.release();
  assert.is(c.recordingNow, 0);
});

unit('models share a kept response\'s holdings until one takes bytes away', () => {
  const holdings = sharedHoldings([
    { codestream: 0, classId: 2, binId: 0, held: COMPLETE },
    { codestream: 0, classId: 0, binId: 7, held: 120 },
    { codestream: 0, classId: 0, binId: 7, held: 300 },
    { codestream: 1, classId: 0, binId: 2 ** 30, held: 5 },
  ]);
  const a = new CacheModel();
  const b = new CacheModel();
  assert.ok(a.adopt(holdings));
  assert.ok(b.adopt(holdings));
  assert.is(a.size, 3, 'one per bin, the last update');
  assert.is(a.held(0, 0, 7), 300);
  assert.is(a.held(1, 0, 2 ** 30), 5, 'a bin id beyond the packed range');
  assert.ok(a.isComplete(0, 2, 0));
  const changes = a.changes;
  a.add(0, 0, 7, 200);
  assert.is(a.changes, changes, 'holds more already: no change');
  a.add(0, 0, 7, 400);
  a.add(0, 0, 9, 50);
  assert.is(a.size, 4, 'a grown bin counts once, a new one adds');
  assert.is(a.held(0, 0, 7), 400);
  assert.is(b.held(0, 0, 7), 300, 'the other model is untouched');
  a.remove(0, 0, 7, 100);
  assert.is(a.held(0, 0, 7), 100);
  a.remove(0, 2, 0);
  assert.is(a.held(0, 2, 0), 0);
  assert.is(a.size, 3);
  assert.is(b.held(0, 0, 7), 300);
  assert.ok(b.isComplete(0, 2, 0), 'taking bytes away in one model leaves the shared holdings alone');
  assert.is(b.size, 3);
  assert.equal(
    [...a.entries()].map((e) => `${e.codestream}:${e.classId}:${e.binId}=${e.held === COMPLETE ? 'all' : e.held}`).sort(),
    ['0:0:7=100', '0:0:9=50', '1:0:1073741824=5'],
  );
  b.add(0, 0, 9, 10);
  assert.equal([...b.entries()].length, 4, 'own bins and shared ones, each once');
  assert.not.ok(b.adopt(holdings), 'only an empty model adopts');
  b.clear();
  assert.is(b.size, 0);
  assert.is(b.held(0, 0, 7), 0);
  const c = new CacheModel();
  c.add(0, 0, 1, 5);
  assert.not.ok(c.adopt(holdings));
  assert.is(c.held(0, 0, 7), 0);
});

unit.run();

const srv = suite('response cache: the same bytes as a server without it, sessions go on exactly');

let root = '';
let cached: JpipServer;
let plain: JpipServer;
let cachedBase = '';
let plainBase = '';

const IMAGES = ['g256-irrev-8l-cb32.j2k', 'rgb200x150-t64-rpcl-plt-tpr.jp2', 'g200x150-t64-lrcp.j2k', 'rgb160x120-t80x60-pcrl-sop-eph.j2k'];

srv.before(async () => {
  root = mkdtempSync(join(tmpdir(), 'jpip-rcache-'));
  for (const f of IMAGES) copyFileSync(join(FIXTURES, f), join(root, f));
  // Small chunks: kept bodies span several of them when produced.
  const common = { root, port: 0, chunkBytes: 1024, fileRecheckSeconds: 0, log: () => {} };
  cached = createJpipServer({ ...common, responseCacheBytes: 4 * 1024 * 1024 });
  plain = createJpipServer({ ...common, responseCacheBytes: 0 });
  cachedBase = await cached.listen();
  plainBase = await plain.listen();
});
srv.after(async () => {
  await cached.close();
  await plain.close();
  rmSync(root, { recursive: true, force: true });
});

async function get(base: string, path: string): Promise<{ status: number; headers: Headers; body: Uint8Array }> {
  const r = await fetch(`${base}${path}`);
  return { status: r.status, headers: r.headers, body: new Uint8Array(await r.arrayBuffer()) };
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m![1]);
}

/** A viewer's session: opens on a window, then pans and zooms; the bodies of every response. */
async function session(base: string, image: string): Promise<Uint8Array[]> {
  const first = await get(base, `/${image}?fsiz=128,128&rsiz=64,64&roff=0,0&type=jpp-stream&len=1500&cnew=http`);
  assert.is(first.status, 200);
  const cid = /cid=([^,]+)/.exec(first.headers.get('jpip-cnew') ?? '')![1]!;
  const bodies = [first.body];
  for (const q of ['fsiz=128,128&rsiz=64,64&roff=0,0&len=4000', 'fsiz=256,256&rsiz=128,128&roff=64,64&len=3000', 'fsiz=256,256&rsiz=256,256']) {
    const r = await get(base, `/jpip?cid=${cid}&type=jpp-stream&${q}`);
    assert.is(r.status, 200);
    bodies.push(r.body);
  }
  await get(base, `/jpip?cclose=${cid}`);
  return bodies;
}

srv('new sessions after the first get the kept body, and every later response is what a server without the cache sends', async () => {
  for (const image of IMAGES) {
    const reference = await session(plainBase, image);
    const hitsBefore = await metric(cachedBase, 'jpip_response_cache_hits_total');
    const produced = await session(cachedBase, image);
    const replayed = await session(cachedBase, image);
    const hits = (await metric(cachedBase, 'jpip_response_cache_hits_total')) - hitsBefore;
    assert.ok(hits >= 1, `${image}: the second session's first window came from the cache (${hits} hits)`);
    for (const [name, got] of [
      ['produced', produced],
      ['replayed', replayed],
    ] as const) {
      got.forEach((b, i) => assert.equal(Buffer.from(b).equals(Buffer.from(reference[i]!)), true, `${image}: ${name} response ${i} is byte for byte the uncached server's`));
    }
    // The replayed first body is a whole JPP-stream ending in its EOR.
    const msgs = [...decodeStream(replayed[0]!)];
    assert.ok(msgs.length > 2, `${image}: messages in the first body`);
  }
  assert.ok((await metric(cachedBase, 'jpip_response_cache_entries')) > 0);
  assert.ok((await metric(cachedBase, 'jpip_response_cache_bytes')) > 0);
  assert.is(await metric(plainBase, 'jpip_response_cache_entries'), 0, 'responseCacheBytes 0: nothing kept');
});

srv('stateless requests are answered from it too; a client that says it holds bins is not', async () => {
  const image = IMAGES[0]!;
  const q = `/${image}?fsiz=256,256&rsiz=128,128&type=jpp-stream&len=3000`;
  const a = await get(cachedBase, q);
  const hitsBefore = await metric(cachedBase, 'jpip_response_cache_hits_total');
  const b = await get(cachedBase, q);
  assert.is((await metric(cachedBase, 'jpip_response_cache_hits_total')) - hitsBefore, 1);
  assert.ok(Buffer.from(a.body).equals(Buffer.from(b.body)));
  // model= says the client holds the main header: a different answer, produced for it.
  const withModel = `${q}&model=Hm`;
  const missesBefore = await metric(cachedBase, 'jpip_response_cache_misses_total');
  const hitsBefore2 = await metric(cachedBase, 'jpip_response_cache_hits_total');
  const c = await get(cachedBase, withModel);
  const ref = await get(plainBase, withModel);
  assert.is(c.status, 200);
  assert.ok(Buffer.from(c.body).equals(Buffer.from(ref.body)), 'the same as without the cache');
  assert.not.ok(Buffer.from(c.body).equals(Buffer.from(a.body)), 'not the kept body');
  assert.is(await metric(cachedBase, 'jpip_response_cache_hits_total'), hitsBefore2, 'no hit');
  assert.is(await metric(cachedBase, 'jpip_response_cache_misses_total'), missesBefore, 'not even looked up');
});

srv('a file changed on disk is answered fresh, never from a body kept for its old version', async () => {
  const name = 'changing.j2k';
  const path = join(root, name);
  copyFileSync(join(FIXTURES, IMAGES[0]!), path);
  const q = `/${name}?fsiz=128,128&rsiz=128,128&type=jpp-stream&len=2000&cnew=http`;
  await get(cachedBase, q);
  const old = await get(cachedBase, q);
  writeFileSync(path, fixtureBytes(IMAGES[2]!));
  utimesSync(path, new Date(), new Date(Date.now() + 5000));
  const fresh = await get(cachedBase, q);
  const ref = await get(plainBase, q);
  assert.not.ok(Buffer.from(fresh.body).equals(Buffer.from(old.body)), 'not the old image');
  assert.ok(Buffer.from(fresh.body).equals(Buffer.from(ref.body)), 'the new image, as the uncached server sends it');
  assert.is.not(fresh.headers.get('jpip-tid'), old.headers.get('jpip-tid'));
});

srv('a movie whose frames are other files: a frame file changed on disk is not answered from a body kept for its old version', async () => {
  copyMovie(root);
  const q = '/movie/linked.jpx?stream=0-2&fsiz=64,64&type=jpp-stream&len=4000';
  const first = await get(cachedBase, q);
  const hits0 = await metric(cachedBase, 'jpip_response_cache_hits_total');
  const again = await get(cachedBase, q);
  assert.is(await metric(cachedBase, 'jpip_response_cache_hits_total'), hits0 + 1, 'kept');
  assert.ok(Buffer.from(again.body).equals(Buffer.from(first.body)));
  // The same bytes, a new version (mtime): the frame's tid changes, so does the key.
  const frame = join(root, 'movie', 'frames', 'frame 001.jp2');
  utimesSync(frame, new Date(), new Date(Date.now() + 7000));
  const after = await get(cachedBase, q);
  assert.is(after.status, 200);
  assert.is(await metric(cachedBase, 'jpip_response_cache_hits_total'), hits0 + 1, 'not answered from the old version\'s body');
  assert.ok(Buffer.from(after.body).equals(Buffer.from((await get(plainBase, q)).body)), 'as the uncached server answers');
});

srv('a client that leaves while its response is produced leaves nothing recorded behind; the window is kept later', async () => {
  const image = IMAGES[2]!;
  const path = `/${image}?fsiz=200,150&type=jpp-stream&len=60000`;
  const port = Number(new URL(cachedBase).port);
  for (let i = 0; i < 5; i++) {
    await new Promise<void>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        sock.destroy();
        resolve();
      });
      sock.on('error', () => resolve());
    });
  }
  for (let i = 0; i < 100 && (await metric(cachedBase, 'jpip_response_cache_recording_bytes')) !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.is(await metric(cachedBase, 'jpip_response_cache_recording_bytes'), 0, 'no copy left behind');
  const a = await get(cachedBase, path);
  const hits = await metric(cachedBase, 'jpip_response_cache_hits_total');
  const b = await get(cachedBase, path);
  assert.is(await metric(cachedBase, 'jpip_response_cache_hits_total'), hits + 1, 'kept (the key was not left taken)');
  assert.ok(Buffer.from(a.body).equals(Buffer.from(b.body)));
  assert.ok(Buffer.from(b.body).equals(Buffer.from((await get(plainBase, path)).body)));
});

srv('a response cut while it is recorded (the client stopped reading, then left) frees its copy and its key', async () => {
  const movie = join(root, 'big.jpx');
  writeBigMovie(movie, 2500); // ~8 MB for all frames: more than a loopback connection buffers
  const big = createJpipServer({ root, port: 0, fileRecheckSeconds: 0, responseCacheBytes: 256 * 1024 * 1024, log: () => {} });
  const base = await big.listen();
  try {
    const path = '/big.jpx?stream=0-2499&fsiz=128,128&type=jpp-stream&len=67108864';
    const port = Number(new URL(base).port);
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.pause();
    sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    let recording = 0;
    for (let i = 0; i < 200 && recording === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      recording = await metric(base, 'jpip_response_cache_recording_bytes');
    }
    assert.ok(recording > 0, 'being recorded while the client does not read');
    sock.destroy();
    for (let i = 0; i < 200 && (await metric(base, 'jpip_response_cache_recording_bytes')) !== 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.is(await metric(base, 'jpip_response_cache_recording_bytes'), 0, 'the cut response\'s copy is freed');
    assert.is(await metric(base, 'jpip_response_cache_entries'), 0, 'a cut response is not kept');
    const whole = await get(base, path);
    assert.ok(whole.body.length > 4 * 1024 * 1024);
    assert.is(await metric(base, 'jpip_response_cache_entries'), 1, 'the same window recorded again and kept: its key was freed');
  } finally {
    await big.close();
  }
});

srv('plans kept for repeated queries follow a reload of the default len', async () => {
  const s2 = createJpipServer({ root, port: 0, defaultLenBytes: 600, log: () => {} });
  const base = await s2.listen();
  try {
    const q = `/${IMAGES[0]}?fsiz=256,256&type=jpp-stream`;
    const small = await get(base, q);
    assert.ok(small.body.length <= 600 + 3, `within the default len (${small.body.length})`);
    assert.ok((await get(base, q)).body.length === small.body.length, 'the same again');
    s2.reconfigure(validateConfig([{ ...s2.config, defaultLenBytes: 5000 }]));
    const bigger = await get(base, q);
    assert.ok(bigger.body.length > 600 + 3, `the new default len applies to the same query (${bigger.body.length})`);
  } finally {
    await s2.close();
  }
});

srv('HEAD requests and metadata requests are not answered from it', async () => {
  const image = IMAGES[1]!;
  const q = `/${image}?fsiz=64,64&type=jpp-stream&len=2000`;
  await get(cachedBase, q);
  const hitsBefore = await metric(cachedBase, 'jpip_response_cache_hits_total');
  const head = await fetch(`${cachedBase}${q}`, { method: 'HEAD' });
  assert.is(head.status, 200);
  const meta = await get(cachedBase, `${q}&metareq=[ihdr]`);
  assert.is(meta.status, 200);
  assert.is(await metric(cachedBase, 'jpip_response_cache_hits_total'), hitsBefore);
});

srv.run();
