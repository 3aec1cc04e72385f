import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import yargs from 'yargs';
import { register as registerRd, numberList } from '../bin/commands/rd.js';
import type { CliIo } from '../bin/io.js';
import { parseServerSpec } from '../reports/dialects.js';
import { resolveTarget, runRdJob, defaultFixture } from '../reports/rd-job.js';
import { formatRdText, rdCsv, rdPlotSvg } from '../reports/rd-output.js';
import { psnrIn, rdResultFromJson, rdResultToJson, type RdPoint, type RdResult } from '../reports/rd-result.js';
import { bytesToReach, defaultBudgets, exactAsDb, meanDifference, psnrAt, summarize } from '../reports/rd-summary.js';
import { originalCodestream, runRd } from '../reports/rd.js';
import { fitSequence, loadSequence, parseSequence, PAPER_SEQUENCE } from '../reports/sequence.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { FIXTURES, fixtureBytes } from './helpers.js';

const FIXTURE = 'g256-irrev-8l-cb32.j2k';

/** Fails unless fn rejects with a message matching re. */
async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match(String((e as Error).message), re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}

// ---------------------------------------------------------------------------
const seq = suite('rd: window sequences');

const square = (n: number) => (d: number) => ({ width: Math.ceil(n / 2 ** d), height: Math.ceil(n / 2 ** d) });

seq("the paper's sequence stays as it is on a 4096x4096 image", () => {
  const w = fitSequence(loadSequence('paper'), square(4096), 5);
  assert.equal(w, PAPER_SEQUENCE.map((x) => ({ ...x })));
});

seq('on a 256x256 image it covers the same fractions of the image', () => {
  const w = fitSequence(loadSequence('paper'), square(256), 5);
  assert.equal(w, [
    { x: 0, y: 0, w: 32, h: 32, r: 3 },
    { x: 32, y: 32, w: 32, h: 32, r: 2 },
    { x: 64, y: 64, w: 32, h: 32, r: 1 },
  ]);
});

seq('a level the image lacks becomes its coarsest, same fraction of a larger frame', () => {
  const w = fitSequence(loadSequence('paper'), square(256), 2);
  assert.equal(w[0], { x: 0, y: 0, w: 64, h: 64, r: 2 });
  assert.equal(w[1], { x: 32, y: 32, w: 32, h: 32, r: 2 });
});

seq('non-square images scale each axis; windows are clipped to the frame', () => {
  const frame = (d: number) => ({ width: Math.ceil(200 / 2 ** d), height: Math.ceil(150 / 2 ** d) });
  const w = fitSequence(loadSequence('paper'), frame, 4);
  assert.equal(w[0], { x: 0, y: 0, w: 25, h: 19, r: 3 });
  const edge = fitSequence({ windows: [{ x: 90, y: 70, w: 50, h: 50, r: 1 }] }, frame, 4);
  assert.equal(edge, [{ x: 90, y: 70, w: 10, h: 5, r: 1 }]);
});

seq('a JSON sequence: arrays or objects, with or without the image size it was written for', () => {
  assert.equal(parseSequence([[0, 0, 8, 8, 1]]), { windows: [{ x: 0, y: 0, w: 8, h: 8, r: 1 }], base: undefined });
  const s = parseSequence({ windows: [{ x: 0, y: 0, w: 64, h: 64, r: 0 }], imageSize: { width: 512, height: 512 } });
  assert.equal(fitSequence(s, square(256), 5), [{ x: 0, y: 0, w: 32, h: 32, r: 0 }]);
  assert.throws(() => fitSequence(parseSequence([[0, 0, 8, 8, 6]]), square(256), 5), /r=6 but the image has only 5 levels/);
});

seq('malformed sequences are refused with the window named', () => {
  assert.throws(() => parseSequence([]), /no window/);
  assert.throws(() => parseSequence({ nope: 1 }), /array of windows/);
  assert.throws(() => parseSequence([[0, 0, 8, 8]]), /window 1.*\[x, y, w, h, r\]/);
  assert.throws(() => parseSequence([{ x: 0, y: 0, w: 0, h: 8, r: 0 }]), /window 1: w must be an integer >= 1/);
  assert.throws(() => parseSequence([{ x: -1, y: 0, w: 1, h: 8, r: 0 }]), /x must be/);
  assert.throws(() => parseSequence([7]), /window 1: a window is/);
  assert.throws(() => parseSequence({ windows: [[0, 0, 1, 1, 0]], imageSize: 4 }), /imageSize/);
});

seq('sequence files: read, or a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rd-seq-'));
  try {
    writeFileSync(join(dir, 'ok.json'), JSON.stringify([{ x: 1, y: 2, w: 3, h: 4, r: 0 }]));
    writeFileSync(join(dir, 'bad.json'), '{');
    assert.equal(loadSequence(join(dir, 'ok.json')).windows, [{ x: 1, y: 2, w: 3, h: 4, r: 0 }]);
    assert.throws(() => loadSequence(join(dir, 'bad.json')), /not JSON/);
    assert.throws(() => loadSequence(join(dir, 'none.json')), /cannot read the sequence file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

seq.run();

// ---------------------------------------------------------------------------
const sum = suite('rd: summary math');

const curve = (pts: [number, number | null][]) => pts.map(([windowBytes, psnr]) => ({ windowBytes, psnr }));

sum('PSNR at a budget is the last measurement within it', () => {
  const c = curve([
    [100, null],
    [200, 20],
    [400, 30],
    [600, Infinity],
  ]);
  assert.is(psnrAt(c, 50), null);
  assert.is(psnrAt(c, 150), null);
  assert.is(psnrAt(c, 200), 20);
  assert.is(psnrAt(c, 599), 30);
  assert.is(psnrAt(c, 1e9), Infinity);
  assert.is(bytesToReach(c, 25), 400);
  assert.is(bytesToReach(c, Infinity), 600);
  assert.is(bytesToReach(c, 1000), 600, 'exact beats any finite target');
  assert.is(bytesToReach(curve([[1, 10]]), 20), null);
});

sum('the mean difference integrates the step curves over the common range', () => {
  const a = curve([
    [100, 20],
    [300, 30],
  ]);
  const b = curve([
    [100, 22],
    [200, 40],
    [300, 40],
  ]);
  // [100,200): 22-20 = 2; [200,300): 40-20 = 20 -> mean 11
  assert.equal(meanDifference(a, false, b, false, 100), { from: 100, to: 300, mean: 11 });
  // Reversed: the sign flips.
  assert.is(meanDifference(b, false, a, false, 100)!.mean, -11);
  // A finished window keeps its last value: a done at 300 (30 dB), b runs to 500 at 40.
  const b2 = curve([
    [100, 22],
    [500, 50],
  ]);
  // [100,300): 22-20 = 2 for 200 B; [300,500): 22-30 = -8 for 200 B -> -3
  assert.equal(meanDifference(a, true, b2, false, 100), { from: 100, to: 500, mean: -3 });
  // Infinity counts as the exact value.
  const e = curve([[100, Infinity]]);
  assert.equal(meanDifference(e, true, curve([[100, 50]]), true, 80), { from: 100, to: 100, mean: -30 });
  assert.is(meanDifference(curve([[1, null]]), false, b, false, 100), null);
  assert.is(meanDifference(curve([[500, 1]]), false, curve([[100, 1]]), false, 100), null, 'no common range');
});

sum('exact counts as one sample off by one; budgets are powers of two', () => {
  assert.ok(Math.abs(exactAsDb(8, 1024) - 10 * Math.log10(255 * 255 * 1024)) < 1e-9);
  assert.equal(defaultBudgets(100), [1024]);
  assert.equal(defaultBudgets(5000), [1024, 2048, 4096, 8192]);
  const many = defaultBudgets(2 ** 40);
  assert.ok(many.length <= 16 && many[0] === 1024 && many.at(-1)! >= 2 ** 40);
});

sum('summarize: per window and server, and the comparison with the reference', () => {
  const pt = (server: string, window: number, windowBytes: number, psnr: number | null): RdPoint => ({ server, window, request: 1, bytes: windowBytes, windowBytes, responseBytes: 0, psnr, mse: null, eor: null, ms: 0 });
  const windows = [{ x: 0, y: 0, w: 2, h: 2, r: 0, frame: { width: 2, height: 2 }, samples: 4 }];
  const servers = [
    { name: 'a', windows: [{ window: 0, stop: 'window-done' }] },
    { name: 'b', windows: [{ window: 0, stop: 'window-done' }] },
  ];
  const s = summarize(
    { windows, servers, bitDepth: 8, points: [pt('a', 0, 1000, 20), pt('a', 0, 2000, Infinity), pt('b', 0, 1000, 30), pt('b', 0, 3000, Infinity)] },
    { budgets: [1500, 4000], psnrTargets: [25] },
  );
  assert.is(s.reference, 'a');
  assert.equal(s.windows[0]!.psnrAtBudget, [
    { bytes: 1500, psnr: 20 },
    { bytes: 4000, psnr: Infinity },
  ]);
  assert.equal(s.windows[0]!.bytesToPsnr, [{ psnr: 25, bytes: 2000 }]);
  assert.equal(s.windows[1]!.bytesToPsnr, [{ psnr: 25, bytes: 1000 }]);
  const exact = exactAsDb(8, 4);
  // [1000,2000): 30-20; [2000,3000): 30-exact
  const want = (10 * 1000 + (30 - exact) * 1000) / 2000;
  assert.ok(Math.abs(s.comparisons[0]!.meanPsnrDiff! - want) < 1e-9, `${s.comparisons[0]!.meanPsnrDiff} vs ${want}`);
  assert.is(s.servers[0]!.server, 'b');
  assert.throws(() => summarize({ windows, servers, bitDepth: 8, points: [] }, { reference: 'zz' }), /reference server 'zz'/);
});

sum.run();

// ---------------------------------------------------------------------------
const io = suite('rd: result files');

io('PSNRs read back: "inf" is Infinity, null stays null, junk is refused', () => {
  assert.is(psnrIn('inf', 'x'), Infinity);
  assert.is(psnrIn(null, 'x'), null);
  assert.is(psnrIn(12.5, 'x'), 12.5);
  assert.throws(() => psnrIn('12', 'here'), /here: a PSNR/);
  assert.throws(() => rdResultFromJson({ schema: 'other' }), /not a rate-distortion result/);
  assert.throws(() => rdResultFromJson({ schema: 'jpip-bench/rd', schemaVersion: 99 }), /schema version 99/);
  assert.throws(() => rdResultFromJson({ schema: 'jpip-bench/rd', schemaVersion: 1 }), /points, servers or sequence missing/);
  assert.throws(() => rdResultFromJson({ schema: 'jpip-bench/rd', schemaVersion: 1, points: [{}], servers: [], sequence: {} }), /point 0 lacks/);
});

io('server specs: NAME=URL[:DIALECT]', () => {
  assert.equal(parseServerSpec('ours=http://127.0.0.1:8090'), { name: 'ours', url: 'http://127.0.0.1:8090', dialect: 'jpip' });
  assert.equal(parseServerSpec('o=http://127.0.0.1:8091/fcgi:opj'), { name: 'o', url: 'http://127.0.0.1:8091/fcgi', dialect: 'opj' });
  assert.equal(parseServerSpec('e=embedded'), { name: 'e', url: 'embedded', dialect: 'ours' });
  assert.equal(parseServerSpec('http://127.0.0.1:1:ours', 3), { name: 'server3', url: 'http://127.0.0.1:1', dialect: 'ours' });
  assert.throws(() => parseServerSpec('x=nope'), /is not a URL/);
  assert.throws(() => parseServerSpec('x=https://127.0.0.1'), /only http/);
  assert.throws(() => parseServerSpec('bad name=http://127.0.0.1'), /the name must be/);
  assert.equal(numberList('budgets', '1024, 4096'), [1024, 4096]);
  assert.is(numberList('budgets', undefined), undefined);
  assert.throws(() => numberList('psnr', '30,x'), /--psnr 30,x/);
});

io('the original of a linked JPX codestream is read from the file it links to', () => {
  const file = join(FIXTURES, 'movie', 'linked.jpx');
  const linked = originalCodestream(new Uint8Array(readFileSync(file)), file, 1);
  const frame = readFileSync(join(FIXTURES, 'movie', 'frames', 'frame 001.jp2'));
  const fromFrame = originalCodestream(new Uint8Array(frame), 'frame 001.jp2', 0);
  assert.equal(Buffer.from(linked.codestream), Buffer.from(fromFrame.codestream));
  assert.is(linked.siz.xsiz, fromFrame.siz.xsiz);
});

io('target resolution: local file, root, original', () => {
  const local = resolveTarget({ target: join(FIXTURES, FIXTURE) }, true);
  assert.equal(local, { target: FIXTURE, root: FIXTURES, original: join(FIXTURES, FIXTURE) });
  assert.is(resolveTarget({ target: FIXTURE, root: FIXTURES }, true).original, join(FIXTURES, FIXTURE));
  assert.is(resolveTarget({}, true).original, defaultFixture());
  assert.throws(() => resolveTarget({}, false), /--target is required/);
  assert.throws(() => resolveTarget({ target: 'x.j2k' }, true), /no such file/);
  assert.throws(() => resolveTarget({ target: 'x.j2k' }, false), /give --original/);
  assert.throws(() => originalCodestream(fixtureBytes(FIXTURE), FIXTURE, 1), /no codestream 1/);
});

io.run();

// ---------------------------------------------------------------------------
const live = suite('rd against the embedded server');

let out = '';
let job: Awaited<ReturnType<typeof runRdJob>>;

live.before(async () => {
  out = mkdtempSync(join(tmpdir(), 'rd-live-'));
  job = await runRdJob({
    servers: [parseServerSpec('ours=embedded'), parseServerSpec('generic=embedded:jpip')],
    target: join(FIXTURES, FIXTURE),
    step: 200,
    summary: { budgets: [512, 1024, 4096] },
    out,
  });
});
live.after(() => {
  rmSync(out, { recursive: true, force: true });
});

live('every window of every server is received to the end, in several steps', () => {
  const r = job.result;
  assert.is(r.sequence.windows.length, 3);
  for (const s of r.servers) {
    assert.is(s.error, undefined, s.error);
    assert.is(s.windows.length, 3);
    for (const w of s.windows) {
      assert.is(w.stop, 'window-done');
      assert.ok(w.requests >= 3, `window ${w.window}: ${w.requests} requests`);
    }
  }
});

live('bytes never fall, and each response stays within len', () => {
  for (const s of job.result.servers) {
    const pts = job.result.points.filter((p) => p.server === s.name);
    for (let i = 1; i < pts.length; i++) {
      assert.ok(pts[i]!.bytes >= pts[i - 1]!.bytes, `${s.name}: ${pts[i - 1]!.bytes} -> ${pts[i]!.bytes}`);
      assert.is(pts[i]!.bytes, pts[i - 1]!.bytes + pts[i]!.responseBytes);
    }
    for (const p of pts) assert.ok(p.responseBytes <= 200 + 3, `response of ${p.responseBytes} B`);
  }
});

live('the last point of each window is its best, and equals the full-quality decode', () => {
  const r = job.result;
  for (const s of r.servers) {
    for (let w = 0; w < r.sequence.windows.length; w++) {
      const pts = r.points.filter((p) => p.server === s.name && p.window === w);
      const last = pts.at(-1)!;
      for (const p of pts) assert.ok(p.psnr === null || p.psnr <= last.psnr!, `${s.name} w${w}: ${p.psnr} > ${last.psnr}`);
      assert.is(last.psnr, Infinity, `${s.name} w${w} ends exact`);
      assert.is(last.mse, 0);
      assert.ok(pts.some((p) => p.psnr !== null && Number.isFinite(p.psnr)), 'some inexact point before');
    }
  }
  assert.is(r.summary.servers[0]!.meanPsnrDiff, 0, 'the same server twice: no difference');
});

live('rd.json writes "inf" and reads back as Infinity', () => {
  const text = readFileSync(job.files.json, 'utf8');
  assert.match(text, /"psnr": "inf"/);
  assert.not.match(text, /Infinity|NaN/);
  const back = rdResultFromJson(JSON.parse(text));
  assert.is(back.points.filter((p) => p.psnr === Infinity).length, job.result.points.filter((p) => p.psnr === Infinity).length);
  assert.is(back.summary.windows[0]!.finalPsnr, Infinity);
  assert.is(back.schemaVersion, 1);
  assert.is(back.env.tool, 'jpip-bench');
  assert.is(back.env.node, process.version);
  assert.match(back.env.toolVersion, /^\d+\.\d+\.\d+/);
  assert.equal(rdResultFromJson(JSON.parse(rdResultToJson(back))).points, back.points);
});

live('rd.csv lists every point, "inf" where exact', () => {
  const lines = readFileSync(job.files.csv, 'utf8').trim().split('\n');
  assert.is(lines[0], 'server,dialect,window,x,y,w,h,r,request,bytes,window_bytes,response_bytes,psnr_db,mse,eor,ms');
  assert.is(lines.length, job.result.points.length + 1);
  assert.ok(lines.some((l) => l.split(',')[12] === 'inf'));
  assert.is(rdCsv(job.result), readFileSync(job.files.csv, 'utf8'));
});

live('rd.svg has one curve per server, a legend, axes and the window changes; rd.png renders it', async () => {
  const svg = readFileSync(job.files.svg, 'utf8');
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.match(svg, /ours \(ours\)/);
  assert.match(svg, /generic \(jpip\)/);
  assert.match(svg, /PSNR of the window \(dB\)/);
  assert.match(svg, /bytes received/);
  assert.match(svg, /w2 r=2/);
  assert.match(svg, /w3 r=1/);
  assert.match(svg, /∞ exact/);
  assert.ok((svg.match(/<polyline/g) ?? []).length >= 6, 'a curve per window per server');
  const meta = await sharp(job.files.png).metadata();
  assert.is(meta.format, 'png');
  assert.is(meta.width, 880);
  assert.is(meta.height, 480);
  const text = formatRdText(job.result);
  assert.match(text, /generic vs ours: mean PSNR difference \+0\.00 dB over 3 window/);
  assert.match(text, /w1: x=0 y=0 w=32 h=32 r=3/);
});

live.run();

// ---------------------------------------------------------------------------
const other = suite('rd: other dialects and failures');

let srv: JpipServer;
let base = '';
let fake: Server;
let fakeUrl = '';
const seen: string[] = [];

/**
 * An opj_server look-alike in front of our server: the image in `target=`
 * on one path, JPIP-cnew without path, len ignored (everything at once) and
 * no EOR at the end of a response.
 */
function startFakeOpj(): Promise<string> {
  fake = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://x');
      seen.push(u.search);
      if (u.pathname.startsWith('/stuck')) {
        // Always "byte limit reached" and never a byte of data: a server that makes no progress.
        res.writeHead(200, { 'Content-Type': 'image/jpp-stream', 'JPIP-cnew': 'cid=S1,path=stuck,transport=http' }).end(Buffer.from([0, 4, 0]));
        return;
      }
      if (u.pathname !== '/fcgi') {
        res.writeHead(404).end();
        return;
      }
      const parts = u.search.slice(1).split('&');
      const target = parts.find((p) => p.startsWith('target='))?.slice('target='.length);
      const rest = [...parts.filter((p) => !p.startsWith('target=') && !p.startsWith('len=')), 'len=50000000'];
      const r = await fetch(`${base}${target ? `/${target}` : '/jpip'}?${rest.join('&')}`);
      let body = Buffer.from(await r.arrayBuffer());
      const headers: Record<string, string> = { 'Content-Type': r.headers.get('content-type') ?? 'text/plain' };
      const cnew = r.headers.get('JPIP-cnew');
      if (cnew) headers['JPIP-cnew'] = cnew.split(',').filter((p) => !p.startsWith('path=')).join(',');
      if (r.status === 200 && body.length >= 3 && body[body.length - 3] === 0 && body[body.length - 1] === 0) body = body.subarray(0, body.length - 3);
      res.writeHead(r.status, headers).end(body);
    })().catch((e: unknown) => res.writeHead(500).end(String(e)));
  });
  return new Promise((ok) => fake.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(fake.address() as AddressInfo).port}/fcgi`)));
}

other.before(async () => {
  srv = createJpipServer({ root: FIXTURES, port: 0 });
  base = await srv.listen();
  fakeUrl = await startFakeOpj();
});
other.after(async () => {
  await srv.close();
  await new Promise((ok) => fake.close(ok));
});

const paper = loadSequence('paper');
const original = { bytes: fixtureBytes(FIXTURE), file: FIXTURE };

other('opj dialect: target as a field, no path in JPIP-cnew, one response per window without EOR', async () => {
  const r = await runRd({ servers: [{ name: 'opj', url: fakeUrl, dialect: 'opj' }], target: FIXTURE, original, sequence: paper, sequenceSource: 'paper', step: 200 });
  assert.is(r.servers[0]!.error, undefined, r.servers[0]!.error);
  assert.ok(seen.some((q) => q.includes(`target=${FIXTURE}`) && q.includes('cnew=http')), 'the channel was asked for with target=');
  for (const w of r.servers[0]!.windows) {
    assert.is(w.stop, 'window-done');
    assert.is(w.requests, 1);
    assert.is(w.psnr, Infinity);
  }
  assert.ok(r.points.every((p) => p.eor === null));
});

other('a server that refuses the target: the run records the error and goes on with the next server', async () => {
  const r = await runRd({
    servers: [
      { name: 'bad', url: base, dialect: 'ours' },
      { name: 'good', url: base, dialect: 'ours' },
    ],
    target: 'no-such-image.j2k',
    original,
    sequence: paper,
    sequenceSource: 'paper',
    step: 4096,
  });
  assert.match(r.servers[0]!.error!, /HTTP 404/);
  assert.equal(r.servers[0]!.windows.map((w) => w.stop), ['error']);
  assert.match(r.servers[1]!.error!, /HTTP 404/);
  assert.is(r.points.length, 0);
  assert.equal(r.summary.windows, []);
  const svg = rdPlotSvg(r);
  assert.match(svg, /no data/);
});

other('a server that cannot be reached is an error of that server', async () => {
  const r = await runRd({ servers: [{ name: 'down', url: 'http://127.0.0.1:9', dialect: 'jpip' }], target: FIXTURE, original, sequence: paper, sequenceSource: 'paper', step: 4096, timeoutMs: 2000 });
  assert.ok(r.servers[0]!.error);
});

other('a window that stops progressing, and the request limit, end the window', async () => {
  const r = await runRd({
    servers: [{ name: 'ours', url: base, dialect: 'ours' }],
    target: FIXTURE,
    original,
    sequence: { windows: [{ x: 0, y: 0, w: 32, h: 32, r: 3 }, { x: 0, y: 0, w: 32, h: 32, r: 3 }] },
    sequenceSource: 'test',
    step: 64,
    maxRequestsPerWindow: 3,
  });
  const [w1, w2] = r.servers[0]!.windows;
  assert.is(w1!.stop, 'request-limit');
  assert.is(w1!.requests, 3);
  assert.ok(w2, 'the next window still runs');
  const stuck = await runRd({ servers: [{ name: 'stuck', url: fakeUrl.replace('/fcgi', ''), dialect: 'jpip' }], target: 'stuck', original, sequence: paper, sequenceSource: 'paper', step: 64 });
  assert.equal(stuck.servers[0]!.windows.map((w) => [w.stop, w.requests, w.psnr]), [
    ['no-progress', 1, null],
    ['no-progress', 1, null],
    ['no-progress', 1, null],
  ]);
  assert.equal(stuck.summary.windows.map((w) => w.finalPsnr), [null, null, null]);
});

other('bad options are refused before any request', async () => {
  const base0 = { target: FIXTURE, original, sequence: paper, sequenceSource: 'paper' };
  await rejects(() => runRd({ ...base0, servers: [], step: 100 }), /no server/);
  await rejects(() => runRd({ ...base0, servers: [{ name: 'a', url: base, dialect: 'ours' }], step: 0 }), /step 0/);
  await rejects(
    () =>
      runRd({
        ...base0,
        servers: [
          { name: 'a', url: base, dialect: 'ours' },
          { name: 'a', url: base, dialect: 'ours' },
        ],
        step: 100,
      }),
    /same name/,
  );
  // An unknown --reference is refused first: nothing is decoded or measured (a bad original would fail otherwise).
  const servers = [{ name: 'a', url: 'http://127.0.0.1:9', dialect: 'ours' as const }];
  await rejects(() => runRd({ ...base0, original: { bytes: new Uint8Array(0), file: 'none' }, servers, step: 100, summary: { reference: 'zz' } }), /reference server 'zz' is not among a/);
  await rejects(() => runRdJob({ servers, target: FIXTURE, original: join(tmpdir(), 'no-such-original.j2k'), summary: { reference: 'zz' }, out: join(tmpdir(), 'rd-never-written') }), /reference server 'zz' is not among a/);
});

other.run();

// ---------------------------------------------------------------------------
const cli = suite('jpip-bench rd (command)');

async function runCli(args: string[]): Promise<{ out: string; code: number }> {
  let text = '';
  const cio: CliIo = { out: (s) => void (text += `${s}\n`), err: (s) => void (text += `${s}\n`), tty: false };
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await registerRd(yargs().scriptName('jpip-bench'), cio)
      .strict()
      .exitProcess(false)
      .fail((msg, e) => {
        throw e ?? new Error(msg);
      })
      .parseAsync(args);
    return { out: text, code: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = before;
  }
}

cli('with no server it measures the embedded server and prints the summary', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rd-cli-'));
  try {
    const r = await runCli(['rd', '--target', join(FIXTURES, FIXTURE), '--out', dir, '--step', '1024', '--psnr', '30,40']);
    assert.is(r.code, 0, r.out);
    assert.match(r.out, /ours \(ours, http:\/\/127\.0\.0\.1:\d+\)/);
    assert.match(r.out, /w3: \d+ responses, .* final exact/);
    assert.match(r.out, /wrote .*rd\.json/);
    const json = await runCli(['rd', '--target', join(FIXTURES, FIXTURE), '--out', dir, '--step', '4096', '--json']);
    const back: RdResult = rdResultFromJson(JSON.parse(json.out));
    assert.is(back.step, 4096);
    assert.equal(back.summary.psnrTargets, [25, 30, 35, 40, 50]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

cli('a server that fails sets exit code 1; bad inputs are one line, exit code 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rd-cli-'));
  try {
    const r = await runCli(['rd', '--server', 'down=http://127.0.0.1:9', '--target', FIXTURE, '--original', join(FIXTURES, FIXTURE), '--out', dir, '--timeout', '2000']);
    assert.is(r.code, 1);
    assert.match(r.out, /down \(jpip, http:\/\/127\.0\.0\.1:9\): stopped:/);
    const bad = await runCli(['rd', '--server', 'x=ftp://h', '--out', dir]);
    assert.is(bad.code, 1);
    assert.match(bad.out, /^jpip-bench rd: --server x=ftp:\/\/h: only http/);
    const seqMissing = await runCli(['rd', '--sequence', join(dir, 'none.json'), '--out', dir]);
    assert.match(seqMissing.out, /jpip-bench rd: cannot read the sequence file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

cli.run();
