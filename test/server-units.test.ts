import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CacheModel, COMPLETE } from '../jpip/cache-model.js';
import { EOR } from '../jpip/constants.js';
import { JpipError } from '../jpip/errors.js';
import { decodeStream } from '../jpip/messages.js';
import { parseRequest } from '../jpip/request.js';
import { ImageRegistry } from '../server/images.js';
import { MAX_CODESTREAMS_PER_REQUEST, expandRanges, planRequest } from '../server/request-plan.js';
import { planResponse } from '../server/responder.js';
import { SessionTable } from '../server/sessions.js';
import { FIXTURES, catchError, copyMovie } from './helpers.js';

const units = suite('server parts');

units('sessions expire when idle, not while a request is being answered, and the table has a limit', () => {
  let now = 0;
  const t = new SessionTable({ maxSessions: 2, idleMs: 1000, now: () => now });
  const a = t.open('a.jp2', 'tid');
  const b = t.open('b.jp2', 'tid');
  assert.match(a.cid, /^C[A-Za-z0-9_-]{16}$/);
  assert.is.not(a.cid, b.cid);
  const e = catchError(() => t.open('c.jp2', 'tid'));
  assert.instance(e, JpipError);
  assert.is((e as JpipError).status, 503);
  now = 500;
  t.get(a.cid); // touches a
  now = 1400;
  b.active = 1; // b is busy
  assert.is(t.expire(), 0);
  b.active = 0;
  assert.is(t.expire(), 1, 'b expired');
  assert.is((catchError(() => t.get(b.cid)) as JpipError).status, 404);
  assert.is(t.get(a.cid), a);
  now = 5000;
  assert.is((catchError(() => t.get(a.cid)) as JpipError).code, 'JPIP_ERR_UNKNOWN_CHANNEL');
  const c = t.open('c.jp2', 'tid');
  assert.is(t.close('*', c), 1);
  assert.is(t.size, 0);
});

units('the cache model holds prefixes, completes, forgets', () => {
  const m = new CacheModel();
  m.add(0, 0, 7, 100);
  m.add(0, 0, 7, 50);
  assert.is(m.held(0, 0, 7), 100);
  m.add(0, 1, 7, 0, true); // extended precinct class shares the bin
  assert.ok(m.isComplete(0, 0, 7));
  m.remove(0, 0, 7, 10);
  assert.is(m.held(0, 0, 7), 10);
  m.remove(0, 0, 7);
  assert.is(m.held(0, 0, 7), 0);
  m.add(3, 6, 0, 0, true);
  assert.equal([...m.entries()], [{ codestream: 3, classId: 6, binId: 0, held: COMPLETE }]);
  m.clear();
  assert.is(m.size, 0);
});

units('cache models that hold nothing share no state: one adds, cleared, adds again; the others stay empty', () => {
  const a = new CacheModel();
  const b = new CacheModel();
  a.add(0, 0, 1, 10);
  assert.is(a.held(0, 0, 1), 10);
  assert.is(b.held(0, 0, 1), 0);
  assert.is(b.size, 0);
  a.clear();
  a.add(0, 0, 2, 5);
  assert.is(a.size, 1);
  b.remove(0, 0, 2);
  assert.is(a.held(0, 0, 2), 5);
  const c = new CacheModel();
  assert.is(c.size, 0);
  assert.equal([...c.entries()], []);
});

units('codestream ranges are expanded against what exists, never by the number the client wrote', () => {
  assert.equal(expandRanges([{ from: 0, to: 4294967295, step: 1 }], 3, 'stream'), { list: [0, 1, 2], clipped: true });
  assert.equal(expandRanges([{ from: 1, step: 2 }], 6, 'stream'), { list: [1, 3, 5], clipped: false }, 'open-ended: to the last');
  assert.equal(expandRanges([{ from: 4294967295, to: 0, step: 1 }], 3, 'stream'), { list: [2, 1, 0], clipped: true });
  assert.equal(expandRanges([{ from: 9, to: 3, step: 3 }], 20, 'stream'), { list: [9, 6, 3], clipped: false });
  const e = catchError(() => expandRanges([{ from: 0, to: 10 ** 6, step: 1 }], 10 ** 6, 'stream'));
  assert.match((e as Error).message, new RegExp(`${MAX_CODESTREAMS_PER_REQUEST}`));
});

units('a linked movie\'s frame files are looked at on disk again only once recheckMs has passed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'jpip-linked-'));
  try {
    copyMovie(root);
    const frame = join(root, 'movie', 'frames', 'frame 001.jp2');
    for (const [recheckMs, fresh] of [
      [60_000, false],
      [0, true],
    ] as const) {
      const reg = new ImageRegistry({ root, recheckMs });
      const movie = reg.open('movie/linked.jpx');
      const before = movie.codestream(1).owner;
      assert.is(movie.codestream(1).owner, before, 'the same frame image');
      // The frame file changes on disk (a new mtime: a new version).
      utimesSync(frame, new Date(), new Date(Date.now() + 10_000 * (recheckMs + 1)));
      const after = movie.codestream(1).owner;
      if (fresh) assert.is.not(after.tid, before.tid, 'recheckMs 0: checked on every use, the new version');
      else assert.is(after, before, 'within recheckMs: trusted unchanged, no look at the disk');
      reg.closeAll();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

units('a response makes at most one model update per bin (the server collects them in a list, not by bin)', () => {
  const root = mkdtempSync(join(tmpdir(), 'jpip-updates-'));
  try {
    copyMovie(root);
    const reg = new ImageRegistry({ root, recheckMs: 60_000 });
    const fixtures = new ImageRegistry({ root: FIXTURES });
    const cases: [string, string][] = [
      ['movie/linked.jpx', 'stream=0-2&fsiz=64,64&type=jpp-stream'],
      ['movie/linked.jpx', 'stream=0-2&fsiz=128,128&roff=10,20&rsiz=60,50&type=jpp-stream,jpt-stream'],
      ['movie/linked.jpx', 'stream=0-2&type=jpt-stream'],
      ['g256-irrev-8l-cb32.j2k', 'fsiz=256,256&layers=3'],
    ];
    let total = 0;
    for (const [target, query] of cases) {
      const entry = (target.startsWith('movie/') ? reg : fixtures).open(target);
      // From an empty model, then again and again from what the responses before left (cut ones
      // included: small budgets end inside bins).
      for (const len of [300, 2000, 100_000_000]) {
        const model = new CacheModel();
        for (let round = 0; round < 4; round++) {
          const planned = planRequest(parseRequest(`${query}&len=${len}`), entry, { defaultLen: 1 << 30, maxLen: 1 << 30 });
          const updates = [...planResponse(entry, planned.input, model, { chunkSize: 512 }).body()].flatMap((c) => c.updates);
          const keys = updates.map((u) => `${u.codestream}/${u.classId}/${u.binId}`);
          assert.is(new Set(keys).size, keys.length, `${target}?${query}&len=${len}, round ${round}: ${keys.length} updates`);
          total += keys.length;
          for (const u of updates) model.add(u.codestream, u.classId, u.binId, u.held, u.held === COMPLETE);
        }
      }
    }
    assert.ok(total > 200, `${total} updates in all`);
    reg.closeAll();
    fixtures.closeAll();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

units('a len above the server cap is served up to the cap and ends with EOR 7', () => {
  const reg = new ImageRegistry({ root: FIXTURES });
  const entry = reg.open('g256-irrev-8l-cb32.j2k');
  const planned = planRequest(parseRequest('fsiz=256,256&len=100000000'), entry, { defaultLen: 1000, maxLen: 2000 });
  assert.is(planned.input.len, 2000);
  const chunks = [...planResponse(entry, planned.input, new CacheModel(), { chunkSize: 512 }).body()];
  const bytes = new Uint8Array(Buffer.concat(chunks.map((c) => c.bytes)));
  assert.ok(bytes.length <= 2003);
  const last = decodeStream(bytes).at(-1);
  assert.is(last?.kind === 'eor' ? last.reason : -1, EOR.RESPONSE_LIMIT_REACHED);
  reg.closeAll();
});

units('a cache model trusts a window noted as held until a bin is taken away, and keeps the last 16', () => {
  const m = new CacheModel();
  assert.is(m.windowHeld('a'), undefined);
  m.add(0, 2, 0, 100, true);
  m.noteWindowHeld('a', 2);
  assert.is(m.windowHeld('a'), 2);
  m.add(0, 2, 1, 50); // more held: still held
  assert.is(m.windowHeld('a'), 2);
  m.remove(0, 2, 9); // a bin it never had: nothing taken away
  assert.is(m.windowHeld('a'), 2);
  m.remove(0, 2, 1, 80); // not less than held: nothing taken away
  assert.is(m.windowHeld('a'), 2);
  m.remove(0, 2, 1, 10);
  assert.is(m.windowHeld('a'), undefined, 'a bin shrank');
  m.noteWindowHeld('a', 1);
  assert.is(m.windowHeld('a'), 1);
  m.clear();
  assert.is(m.windowHeld('a'), undefined, 'cleared');
  for (let i = 0; i < 17; i++) m.noteWindowHeld(`w${i}`, 2);
  assert.is(m.windowHeld('w0'), undefined, 'the oldest went');
  assert.is(m.windowHeld('w1'), 2);
  assert.is(m.windowHeld('w16'), 2);
});

units.run();
