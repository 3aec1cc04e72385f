import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { BIN_CLASS, EOR } from '../jpip/constants.js';
import { decodeStream } from '../jpip/messages.js';
import { JpipClient } from '../client-sim/client.js';
import { decodeWasm, imagesEqual } from '../client-sim/decode.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { linkedFrameFor, writeLinkedJpx } from '../fixtures-gen/containers.js';
import { FIXTURES, fixtureBytes, copyMovie } from './helpers.js';

const proto = suite('JPIP server: protocol, sessions, bad input');
let srv: JpipServer;
let base = '';
let root = '';
let port = 0;
const logged: Record<string, unknown>[] = [];

const IMG = 'g128-default.j2k';
const MOVIE = 'movie/movie.jpx';
const LINKED = 'movie/linked.jpx';

proto.before(async () => {
  root = mkdtempSync(join(tmpdir(), 'jpip-root-'));
  for (const f of [IMG, 'rgb200x150-t64-rpcl-plt-tpr.jp2', 'g200x150-t64-lrcp.j2k', 'g256-irrev-8l-cb32.j2k']) copyFileSync(join(FIXTURES, f), join(root, f));
  copyMovie(root, { container: true });
  writeFileSync(join(root, 'notes.txt'), 'not an image\n');
  const good = fixtureBytes(IMG);
  writeFileSync(join(root, 'broken.j2k'), good.subarray(0, good.length - 500));
  const outside = mkdtempSync(join(tmpdir(), 'jpip-outside-'));
  copyFileSync(join(FIXTURES, IMG), join(outside, 'secret.j2k'));
  symlinkSync(join(outside, 'secret.j2k'), join(root, 'link-out.j2k'));
  // A linked JPX inside the root whose reference leads out of it.
  const frame = linkedFrameFor(join(root, 'movie/frames/frame 000.jp2'), fixtureBytes('movie/frames/frame 000.jp2'));
  writeFileSync(join(root, 'movie', 'escape.jpx'), writeLinkedJpx([{ ...frame, path: undefined, url: '../../' + outside.split('/').pop() + '/secret.j2k' }]));
  // Files are replaced under this server by some tests: it checks them on every request.
  srv = createJpipServer({ root, port: 0, log: (e) => logged.push(e), defaultLenBytes: 300, fileRecheckSeconds: 0 });
  base = await srv.listen();
  port = Number(new URL(base).port);
});
proto.after(async () => {
  await srv.close();
  rmSync(root, { recursive: true, force: true });
});

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Uint8Array; text: string }> {
  const r = await fetch(`${base}${path}`, { headers });
  const body = new Uint8Array(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, body, text: new TextDecoder().decode(body) };
}

/** Raw HTTP exchange (to see the exact status line and framing). */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d) => {
      out += d;
      if (/\r\n0\r\n\r\n$/.test(out) || /Content-Length: 0\r\n\r\n$/.test(out)) s.end();
    });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      resolve(out);
    }, 3000).unref();
  });
}

proto('answers with exactly HTTP/1.1 200 OK, image/jpp-stream, chunked, no-cache, CORS, and a JPIP-cnew JHelioviewer accepts', async () => {
  const res = await raw(`GET /${IMG}?cnew=http&type=jpp-stream&tid=0&len=512 HTTP/1.1\r\nHost: x\r\nOrigin: http://viewer.example\r\nConnection: close\r\n\r\n`);
  const lines = res.split('\r\n');
  assert.is(lines[0], 'HTTP/1.1 200 OK');
  assert.match(res, /\r\nContent-Type: image\/jpp-stream\r\n/);
  assert.match(res, /\r\nTransfer-Encoding: chunked\r\n/);
  assert.match(res, /\r\nCache-Control: no-cache\r\n/);
  assert.match(res, /\r\nAccess-Control-Allow-Origin: \*\r\n/);
  assert.match(res, /\r\nAccess-Control-Expose-Headers: [^\r]*JPIP-cnew[^\r]*JPIP-tid/);
  assert.match(res, /\r\nJPIP-cnew: cid=[A-Za-z0-9_-]{8,},path=jpip,transport=http\r\n/);
  const tid = /\r\nJPIP-tid: ([^\r]+)\r\n/.exec(res)?.[1];
  assert.ok(tid && !tid.includes('/') && !tid.includes(root), 'tid reveals no path');
});

proto('CORS headers go with requests that name an Origin (browsers), on answers and errors alike, and only with them', async () => {
  const plain = await raw(`GET /${IMG}?cnew=http&type=jpp-stream&len=512 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.match(plain, /^HTTP\/1\.1 200 OK\r\n/);
  assert.not.match(plain, /\r\nAccess-Control-/i);
  const missing = await raw(`GET /no-such.jp2?len=512 HTTP/1.1\r\nHost: x\r\nOrigin: http://viewer.example\r\nConnection: close\r\n\r\n`);
  assert.match(missing, /^HTTP\/1\.1 404 /);
  assert.match(missing, /\r\nAccess-Control-Allow-Origin: \*\r\n/);
  const missingPlain = await raw(`GET /no-such.jp2?len=512 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.not.match(missingPlain, /\r\nAccess-Control-/i);
  const health = await fetch(`${base}/health`, { headers: { Origin: 'http://viewer.example' } });
  assert.is(health.headers.get('access-control-allow-origin'), '*');
  await health.arrayBuffer();
});

proto('stats.responses counts every finished response once: produced, kept and bare EOR alike', async () => {
  // Quiet first: earlier tests' connections may still be closing.
  await new Promise((r) => setTimeout(r, 100));
  const before = srv.stats.responses;
  const first = await get(`/${IMG}?cnew=http&type=jpp-stream&fsiz=64,64&len=4000`);
  assert.is(first.status, 200);
  const cid = /cid=([^,]+)/.exec(first.headers.get('jpip-cnew') ?? '')?.[1];
  assert.ok(cid);
  assert.is((await get(`/${IMG}?cnew=http&type=jpp-stream&fsiz=64,64&len=4000`)).status, 200); // kept body
  assert.is((await get(`/jpip?cid=${cid}&type=jpp-stream&fsiz=64,64&len=4000`)).status, 200); // the rest of the window
  assert.is((await get(`/jpip?cid=${cid}&type=jpp-stream&fsiz=64,64&len=4000`)).status, 200); // held: bare EOR
  for (let i = 0; i < 50 && srv.stats.responses < before + 4; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  assert.is(srv.stats.responses, before + 4);
});

proto('the target id is stable across server instances and changes when the file changes', async () => {
  const a = await get(`/${IMG}?tid=0&len=0`);
  const other = createJpipServer({ root, port: 0 });
  const otherBase = await other.listen();
  const b = await fetch(`${otherBase}/${IMG}?tid=0&len=0`);
  await b.arrayBuffer();
  assert.is(b.headers.get('JPIP-tid'), a.headers.get('JPIP-tid'));
  await other.close();
  const t = new Date(Date.now() + 10_000);
  utimesSync(join(root, IMG), t, t);
  const c = await get(`/${IMG}?tid=0&len=0`);
  assert.ok(c.headers.get('JPIP-tid') && c.headers.get('JPIP-tid') !== a.headers.get('JPIP-tid'), 'new tid');
});

proto('stateless requests are served without a channel; sessions are not tied to a connection', async () => {
  const s = await get(`/${IMG}?fsiz=32,32&len=100000`);
  assert.is(s.status, 200);
  assert.is(s.headers.get('JPIP-cnew'), null);
  const items = decodeStream(s.body);
  assert.is(items.at(-1)?.kind, 'eor');
  const client = new JpipClient(base);
  await client.request({ cnew: ['http'], len: 200 }, IMG);
  const cid = client.cid!;
  // The same channel from a brand-new TCP connection.
  const body = await new Promise<Buffer>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path: `/jpip?cid=${cid}&fsiz=128,128&len=100000`, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve(Buffer.concat(parts)));
    })
      .on('error', reject)
      .end();
  });
  const got = decodeStream(new Uint8Array(body));
  assert.ok(got.some((m) => m.kind === 'message' && m.classId === BIN_CLASS.PRECINCT), 'precincts on the second connection');
  // and the main header the first connection received is not sent again
  assert.not.ok(got.some((m) => m.kind === 'message' && m.classId === BIN_CLASS.MAIN_HEADER && m.offset === 0), 'no resend of what the client holds');
  const closed = await client.close();
  assert.is(closed?.status, 200);
  const after = await get(`/jpip?cid=${cid}&len=10`);
  assert.is(after.status, 404, 'closed channel is unknown');
  assert.match(after.text, /JPIP_ERR_UNKNOWN_CHANNEL/);
});

proto('qid is echoed; an adjusted window is reported; layers beyond the file are reported', async () => {
  const r = await get(`/${IMG}?fsiz=100,100&qid=7&layers=9&len=50`);
  assert.is(r.status, 200);
  assert.is(r.headers.get('JPIP-qid'), '7');
  assert.is(r.headers.get('JPIP-fsiz'), '64,64');
  assert.is(r.headers.get('JPIP-layers'), '1');
  const exact = await get(`/${IMG}?fsiz=64,64&len=50`);
  assert.is(exact.headers.get('JPIP-fsiz'), null, 'nothing to report when nothing changed');
});

proto('metadata answers are gzip-compressed for clients that accept it', async () => {
  const res = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path: `/${MOVIE}?metareq=[*]!!&len=100000`, headers: { 'Accept-Encoding': 'gzip' }, agent: false }, (r) => {
      const parts: Buffer[] = [];
      r.on('data', (d: Buffer) => parts.push(d));
      r.on('end', () => resolve({ headers: r.headers, body: Buffer.concat(parts) }));
    })
      .on('error', reject)
      .end();
  });
  assert.is(res.headers['content-encoding'], 'gzip');
  const items = decodeStream(new Uint8Array(gunzipSync(res.body)));
  const meta = items.find((m) => m.kind === 'message' && m.classId === BIN_CLASS.METADATA);
  assert.ok(meta && meta.kind === 'message' && meta.complete, 'metadata-bin 0 complete');
  assert.ok(!items.some((m) => m.kind === 'message' && m.classId === BIN_CLASS.PRECINCT), 'metadata only');
  assert.is(items.at(-1)?.kind === 'eor' && items.at(-1)!.kind === 'eor' ? (items.at(-1) as { reason: number }).reason : -1, EOR.WINDOW_DONE);
  // Placeholder boxes stand for the three codestreams.
  const bin0 = (meta as { data: Uint8Array }).data;
  const phld = [...Buffer.from(bin0).toString('latin1').matchAll(/phld/g)].length;
  assert.is(phld, 3);
});

proto('POST carries the same fields as GET', async () => {
  const r = await fetch(`${base}/${IMG}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'fsiz=32,32&len=100000' });
  assert.is(r.status, 200);
  const items = decodeStream(new Uint8Array(await r.arrayBuffer()));
  assert.ok(items.some((m) => m.kind === 'message' && m.classId === BIN_CLASS.MAIN_HEADER));
});

proto('a client model= is honoured: what it says it holds is not sent', async () => {
  const r = await get(`/${IMG}?fsiz=128,128&len=100000&model=Hm,M0`);
  const items = decodeStream(r.body);
  assert.not.ok(items.some((m) => m.kind === 'message' && (m.classId === BIN_CLASS.MAIN_HEADER || m.classId === BIN_CLASS.METADATA)));
  assert.ok(items.some((m) => m.kind === 'message' && m.classId === BIN_CLASS.PRECINCT));
});

proto('JPT-stream: tile data-bins reassemble into the original codestream', async () => {
  const r = await get(`/g200x150-t64-lrcp.j2k?type=jpt-stream&fsiz=200,150&len=10000000`);
  assert.is(r.status, 200);
  assert.is(r.headers.get('Content-Type'), 'image/jpt-stream');
  const items = decodeStream(r.body);
  const main = items.find((m) => m.kind === 'message' && m.classId === BIN_CLASS.MAIN_HEADER) as { data: Uint8Array };
  const tiles = items.filter((m) => m.kind === 'message' && m.classId === BIN_CLASS.TILE) as { binId: number; data: Uint8Array; offset: number }[];
  assert.is(new Set(tiles.map((t) => t.binId)).size, 12);
  const parts = [main.data, ...tiles.sort((a, b) => a.binId - b.binId || a.offset - b.offset).map((t) => t.data), Uint8Array.of(0xff, 0xd9)];
  const cs = new Uint8Array(Buffer.concat(parts));
  const orig = fixtureBytes('g200x150-t64-lrcp.j2k');
  assert.ok(imagesEqual(await decodeWasm(cs), await decodeWasm(orig)));
});

proto('several codestreams of a JPX, interleaved, and the same through a linked JPX', async () => {
  for (const target of [MOVIE, LINKED]) {
    const client = new JpipClient(base);
    await client.request({ cnew: ['http'], len: 3000, stream: [{ from: 0, to: 2, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' } }, target);
    await client.untilDone({ len: 3000, stream: [{ from: 0, to: 2, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' } });
    for (let i = 0; i < 3; i++) {
      const frame = fixtureBytes(`movie/frames/frame 00${i}.jp2`);
      const ref = readContainer(frame).codestreams[0]!;
      const want = await decodeWasm(frame.slice(ref.offset, ref.offset + ref.length));
      assert.ok(imagesEqual(await decodeWasm(client.reassemble(i).codestream), want), `${target} frame ${i}`);
    }
    await client.close();
  }
  const ctx = await get(`/${MOVIE}?context=jpxl<1-2>&fsiz=16,16&len=100000`);
  assert.is(ctx.status, 200);
  assert.is(ctx.headers.get('JPIP-context'), 'jpxl<1-2>=1,2');
  const streams = new Set(decodeStream(ctx.body).flatMap((m) => (m.kind === 'message' && m.classId !== BIN_CLASS.METADATA ? [m.codestream] : [])));
  assert.equal([...streams].sort(), [1, 2]);
});

proto("JHelioviewer's exact request sequence works end to end", async () => {
  const client = new JpipClient(base, { headers: { 'Accept-Encoding': 'gzip' } });
  const open = await client.request({ cnew: ['http'], type: [{ name: 'jpp-stream', ext: false }], tid: '0', len: 512 }, LINKED);
  assert.is(open.status, 200);
  assert.ok(client.cid);
  let meta;
  do meta = await client.request({ stream: [{ from: 0, to: 0, step: 1 }], metareq: { groups: [{ boxes: [{ boxType: '*', priority: false }] }], metadataOnly: true }, len: 2000000 });
  while (meta.eor !== EOR.WINDOW_DONE && meta.eor !== EOR.IMAGE_DONE);
  const prime = await client.untilDone({ stream: [{ from: 0, to: 0, step: 1 }], fsiz: { fx: 64, fy: 64, round: 'closest' }, rsiz: { w: 64, h: 64 }, roff: { x: 0, y: 0 }, len: 2097152 });
  assert.ok(prime.length >= 1);
  for (let i = 0; i < 3; i++) {
    await client.untilDone({ stream: [{ from: i, to: i, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'closest' }, rsiz: { w: 128, h: 128 }, roff: { x: 0, y: 0 }, len: 2097152 });
    const frame = fixtureBytes(`movie/frames/frame 00${i}.jp2`);
    const ref = readContainer(frame).codestreams[0]!;
    assert.ok(imagesEqual(await decodeWasm(client.reassemble(i).codestream), await decodeWasm(frame.slice(ref.offset, ref.offset + ref.length))), `frame ${i}`);
  }
  const bye = await client.request({ cclose: [client.cid!], len: 0 });
  assert.is(bye.status, 200);
});

proto('bad input gets the right status and a message, and never disturbs another session', async () => {
  const client = new JpipClient(base);
  await client.request({ cnew: ['http'], len: 100 }, IMG);
  const cases: [string, number, RegExp][] = [
    ['/nope.j2k?len=10', 404, /NOT_FOUND/],
    ['/../etc/passwd?len=10', 404, /NOT_FOUND|FORBIDDEN/],
    ['/%2e%2e/%2e%2e/etc/passwd?len=10', 404, /NOT_FOUND|FORBIDDEN/],
    ['/jpip?target=../../etc/passwd&len=10', 404, /NOT_FOUND|FORBIDDEN/],
    ['/jpip?target=/etc/passwd&len=10', 404, /NOT_FOUND/],
    ['/link-out.j2k?len=10', 404, /FORBIDDEN/],
    ['/notes.txt?len=10', 415, /NOT_JPEG2000/],
    ['/broken.j2k?fsiz=128,128&len=100000', 500, /CORRUPT_IMAGE/],
    ['/jpip?cid=Cnosuchchannel&len=10', 404, /UNKNOWN_CHANNEL/],
    [`/${IMG}?fsiz=abc&len=10`, 400, /fsiz/],
    [`/${IMG}?len=-1`, 400, /len/],
    [`/${IMG}?fsiz=99999999999999999999,1&len=10`, 400, /fsiz/],
    [`/${IMG}?roff=1,1&len=10`, 400, /roff|fsiz/],
    [`/${IMG}?drate=1000&len=10`, 501, /drate/],
    [`/${IMG}?stream=7&len=10`, 400, /stream/],
    [`/${IMG}?len=10&len=20`, 400, /len/],
    [`/${IMG}?${'model=' + 'P1,'.repeat(6000)}`, 414, /URI_TOO_LONG/],
    ['/jpip?len=10', 400, /target/],
    ['/movie/escape.jpx?stream=0&fsiz=128,128&len=100000', 500, /BAD_REFERENCE/],
  ];
  for (const [path, status, why] of cases) {
    const r = await get(path);
    assert.is(r.status, status, `${path.slice(0, 60)}: ${r.text}`);
    assert.match(r.text, why, path.slice(0, 60));
  }
  const put = await fetch(`${base}/${IMG}`, { method: 'PUT' });
  assert.is(put.status, 405);
  assert.ok(logged.some((e) => e['event'] === 'corrupt-image'), 'corrupt image logged');
  // Non-JPIP fields are ignored, as other servers do.
  const ok = await get(`/${IMG}?len=10&_=12345&foo=bar`);
  assert.is(ok.status, 200);
  // The session opened before all this goes on.
  const r = await client.untilDone({ fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 100000 });
  assert.is(r.at(-1)!.status, 200);
  assert.ok(imagesEqual(await decodeWasm(client.reassemble(0).codestream), await decodeWasm(fixtureBytes(IMG))));
  const health = await get('/health');
  assert.is(health.status, 200);
});

proto('a request without len gets the configured default budget, not nothing', async () => {
  const r = await get(`/${IMG}?fsiz=128,128`);
  assert.is(r.status, 200);
  const items = decodeStream(r.body);
  assert.is((items.at(-1) as { reason: number }).reason, EOR.BYTE_LIMIT_REACHED);
  assert.ok(r.body.length > 200 && r.body.length <= 300 + 3, `${r.body.length} bytes for a default of 300`);
});

proto('a file replaced on disk gets a new tid and is served fresh', async () => {
  const client = new JpipClient(base);
  await client.request({ cnew: ['http'], len: 100000, fsiz: { fx: 128, fy: 128, round: 'round-down' } }, 'g200x150-t64-lrcp.j2k');
  const tid1 = client.tid;
  copyFileSync(join(FIXTURES, IMG), join(root, 'g200x150-t64-lrcp.j2k'));
  const t = new Date(Date.now() + 20_000);
  utimesSync(join(root, 'g200x150-t64-lrcp.j2k'), t, t);
  const fresh = new JpipClient(base);
  await fresh.request({ cnew: ['http'], len: 100000, fsiz: { fx: 128, fy: 128, round: 'round-down' } }, 'g200x150-t64-lrcp.j2k');
  assert.ok(fresh.tid && fresh.tid !== tid1);
  await fresh.untilDone({ fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 100000 });
  assert.ok(imagesEqual(await decodeWasm(fresh.reassemble(0).codestream), await decodeWasm(new Uint8Array(readFileSync(join(FIXTURES, IMG))))));
});

proto('with fileRecheckSeconds, a replaced file is served as it was until the interval passes, then fresh under a new tid', async () => {
  const name = 'recheck.j2k';
  copyFileSync(join(FIXTURES, IMG), join(root, name));
  const lazy = createJpipServer({ root, port: 0, fileRecheckSeconds: 1 });
  const lazyBase = await lazy.listen();
  try {
    const tidOf = async (): Promise<string | null> => {
      const r = await fetch(`${lazyBase}/${name}?tid=0&len=0`);
      await r.arrayBuffer();
      return r.headers.get('JPIP-tid');
    };
    const before = await tidOf();
    copyFileSync(join(FIXTURES, 'g200x150-t64-lrcp.j2k'), join(root, name));
    const t = new Date(Date.now() + 30_000);
    utimesSync(join(root, name), t, t);
    assert.is(await tidOf(), before, 'within the interval: the open version');
    await new Promise((r) => setTimeout(r, 1050));
    const after = await tidOf();
    assert.ok(after && after !== before, 'after it: the new file, a new tid');
  } finally {
    await lazy.close();
  }
});

proto('a subtractive or layer-form model makes the server send again what the client lost', async () => {
  const client = new JpipClient(base);
  const fsiz = { fx: 128, fy: 128, round: 'round-down' as const };
  assert.is((await client.request({ cnew: ['http'], fsiz, len: 100000 }, 'g256-irrev-8l-cb32.j2k')).status, 200);
  assert.is((await client.untilDone({ fsiz, len: 100000 })).at(-1)!.eor, EOR.WINDOW_DONE);
  // The client says it lost the main header and keeps only 2 layers of precinct 0.
  const r = await client.request({ fsiz, len: 100000, model: [{ subtract: true, bin: { kind: 'main' } }, { subtract: true, bin: { kind: 'precinct', id: 0 }, limit: { layers: 2 } }] });
  const msgs = r.items.filter((m) => m.kind === 'message');
  assert.ok(msgs.some((m) => m.kind === 'message' && m.classId === BIN_CLASS.MAIN_HEADER && m.offset === 0), 'main header again');
  const p0 = msgs.filter((m) => m.kind === 'message' && m.classId === BIN_CLASS.PRECINCT && m.binId === 0);
  assert.ok(p0.length > 0 && p0.every((m) => m.kind === 'message' && m.offset > 0), 'precinct 0 resent from layer 2 on');
  assert.is(msgs.length, 1 + p0.length, 'nothing else');
  await client.close();
});

proto('layers=, comps= and stream ranges with steps limit what is sent', async () => {
  // layers=1 of an 8-layer image: the rebuilt stream decodes like the original's first layer.
  const client = new JpipClient(base);
  const fsiz = { fx: 256, fy: 256, round: 'round-down' as const };
  await client.request({ cnew: ['http'], fsiz, layers: 1, len: 100000 }, 'g256-irrev-8l-cb32.j2k');
  await client.untilDone({ fsiz, layers: 1, len: 100000 });
  const orig = fixtureBytes('g256-irrev-8l-cb32.j2k');
  assert.ok(imagesEqual(await decodeWasm(client.reassemble(0).codestream), await decodeWasm(orig, { layers: 1 })), 'first layer only');
  assert.not.ok(imagesEqual(await decodeWasm(client.reassemble(0).codestream), await decodeWasm(orig)), 'and not more');
  await client.close();
  // comps=1 of an RGB image: only component 1's precincts (bin id = t + (c + s*3)*tiles).
  const rgb = await get(`/rgb200x150-t64-rpcl-plt-tpr.jp2?fsiz=200,150&comps=1&len=1000000`);
  const ids = decodeStream(rgb.body).flatMap((m) => (m.kind === 'message' && m.classId === BIN_CLASS.PRECINCT ? [m.binId] : []));
  assert.ok(ids.length > 0);
  assert.ok(ids.every((id) => Math.floor(id / 12) % 3 === 1), 'component 1 only');
  // stream=0-2:2 is codestreams 0 and 2.
  const two = await get(`/${MOVIE}?stream=0-2:2&fsiz=16,16&len=1000000`);
  const streams = new Set(decodeStream(two.body).flatMap((m) => (m.kind === 'message' && m.classId !== BIN_CLASS.METADATA ? [m.codestream] : [])));
  assert.equal([...streams].sort(), [0, 2]);
});

proto('review fixes: open-ended ranges past the end, bounded model=, no server path in errors, Allow on 405', async () => {
  const past = await get(`/${MOVIE}?stream=100-&fsiz=8,8&len=1000`);
  assert.is(past.status, 400, 'stream=100- on 3 codestreams names none');
  const ctx = await get(`/${MOVIE}?context=jpxl<100->&fsiz=8,8&len=1000`);
  assert.is(ctx.status, 400);
  const many = Array.from({ length: 30000 }, (_, i) => `P${i}`).join(',');
  const big = await fetch(`${base}/${IMG}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `model=${many}&len=10` });
  assert.is(big.status, 400);
  assert.match(await big.text(), /model/);
  const put = await fetch(`${base}/${IMG}`, { method: 'PUT' });
  await put.arrayBuffer();
  assert.is(put.headers.get('Allow'), 'GET, HEAD, POST, OPTIONS');
  const escape = await get('/movie/escape.jpx?stream=0&fsiz=8,8&len=1000');
  assert.is(escape.status, 500);
  assert.not.ok(escape.text.includes(root) || escape.text.includes('/tmp'), `no server path: ${escape.text}`);
});

proto('a model= on a linked movie, with fewer open files allowed than frames, serves the movie\'s own metadata', async () => {
  const tight = createJpipServer({ root, port: 0, maxOpenFiles: 2 });
  const url = await tight.listen();
  try {
    const want = await (await fetch(`${base}/${LINKED}?fsiz=8,8&stream=0-&len=100000`)).arrayBuffer();
    const got = await (await fetch(`${url}/${LINKED}?model=[0-2],Hm&stream=0-&fsiz=8,8&len=100000`)).arrayBuffer();
    const meta = (b: ArrayBuffer) => decodeStream(new Uint8Array(b)).find((m) => m.kind === 'message' && m.classId === BIN_CLASS.METADATA) as { data: Uint8Array };
    assert.equal([...meta(got).data], [...meta(want).data]);
  } finally {
    await tight.close();
  }
});

proto('a session whose bookkeeping reaches its limit is ended with EOR 6', async () => {
  const small = createJpipServer({ root, port: 0, maxSessionBins: 3 });
  const url = await small.listen();
  try {
    const client = new JpipClient(url);
    await client.request({ cnew: ['http'], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 100000 }, 'g200x150-t64-lrcp.j2k');
    const r = await client.request({ fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 100000 });
    assert.is(r.eor, EOR.SESSION_LIMIT_REACHED);
    const after = await client.request({ len: 10 });
    assert.is(after.status, 404, 'the channel is gone');
  } finally {
    await small.close();
  }
});

proto('a session repeating a window it holds all of gets the EOR alone, until the client drops a bin', async () => {
  const first = await get(`/${IMG}?cnew=http&type=jpp-stream&fsiz=64,64,closest&len=1000000`);
  const cid = /cid=([^,]+)/.exec(first.headers.get('JPIP-cnew') ?? '')?.[1];
  assert.ok(cid);
  const lastEor = (b: Uint8Array): number | undefined => (decodeStream(b).at(-1) as { kind: string; reason?: number }).reason;
  const firstEor = lastEor(first.body);
  assert.ok(firstEor === EOR.WINDOW_DONE || firstEor === EOR.IMAGE_DONE, `the first answer ends the window (${firstEor})`);
  // Asked again (any len): the same EOR, nothing else.
  for (const len of [1000000, 10]) {
    const again = await get(`/jpip?cid=${cid}&type=jpp-stream&fsiz=64,64,closest&len=${len}`);
    assert.is(again.status, 200);
    assert.is(again.headers.get('Content-Type'), 'image/jpp-stream');
    assert.equal([...again.body], [0, firstEor, 0], `len=${len}: the EOR alone`);
  }
  // The client says it dropped the main header: the repeat sends it again, then the EOR.
  const dropped = await get(`/jpip?cid=${cid}&type=jpp-stream&fsiz=64,64,closest&len=1000000&model=-Hm`);
  const items = decodeStream(dropped.body);
  assert.ok(items.some((m) => m.kind === 'message' && m.classId === BIN_CLASS.MAIN_HEADER), 'the main header again');
  assert.is(lastEor(dropped.body), firstEor);
  const third = await get(`/jpip?cid=${cid}&type=jpp-stream&fsiz=64,64,closest&len=1000000`);
  assert.equal([...third.body], [0, firstEor, 0], 'held again: the EOR alone');
  // Another window of the same session is walked: a larger one sends more.
  const bigger = await get(`/jpip?cid=${cid}&type=jpp-stream&fsiz=128,128,closest&len=1000000`);
  assert.ok(decodeStream(bigger.body).some((m) => m.kind === 'message' && m.classId === BIN_CLASS.PRECINCT), 'a new window sends precincts');
  // A HEAD of a held window: headers only.
  const head = await fetch(`${base}/jpip?cid=${cid}&type=jpp-stream&fsiz=64,64,closest&len=1000000`, { method: 'HEAD' });
  assert.is(head.status, 200);
  assert.is((await head.arrayBuffer()).byteLength, 0);
  await get(`/jpip?cclose=${cid}`);
});

proto('a session repeating a JPT-stream window it holds gets the EOR alone, as a JPT-stream', async () => {
  const q = 'type=jpt-stream&fsiz=200,150&len=10000000';
  const first = await get(`/g200x150-t64-lrcp.j2k?cnew=http&${q}`);
  const cid = /cid=([^,]+)/.exec(first.headers.get('JPIP-cnew') ?? '')?.[1];
  const again = await get(`/jpip?cid=${cid}&${q}`);
  assert.is(again.headers.get('Content-Type'), 'image/jpt-stream');
  assert.equal([...again.body], [0, EOR.IMAGE_DONE, 0]);
  await get(`/jpip?cclose=${cid}`);
});

proto('repeated queries (parsed once, then kept) are answered as the first time; a bad one is refused every time', async () => {
  const q = `/${IMG}?fsiz=64,64,closest&len=3000&type=jpp-stream`;
  const a = await get(q);
  for (let i = 0; i < 3; i++) {
    const b = await get(q);
    assert.is(b.status, 200);
    assert.equal([...b.body], [...a.body], `repeat ${i}`);
  }
  for (let i = 0; i < 2; i++) {
    const bad = await get(`/${IMG}?fsiz=64,64&len=abc`);
    assert.is(bad.status, 400, `bad query, time ${i}`);
    assert.match(bad.text, /len/);
  }
  // A session's repeated query: the session's own state still decides (the EOR alone once held).
  const first = await get(`/${IMG}?cnew=http&fsiz=32,32,closest&len=100000&type=jpp-stream`);
  const cid = /cid=([^,]+)/.exec(first.headers.get('JPIP-cnew') ?? '')?.[1];
  const again = `/jpip?cid=${cid}&fsiz=32,32,closest&len=100000&type=jpp-stream`;
  const r1 = await get(again);
  const r2 = await get(again);
  assert.equal([...r1.body], [...r2.body]);
  assert.is(r2.body.length, 3, 'held: the EOR alone');
  await get(`/jpip?cclose=${cid}`);
});

proto.run();
