import { appendFileSync, closeSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { COMPLETE, sharedHoldings } from '../jpip/cache-model.js';
import { EOR } from '../jpip/constants.js';
import { decodeWasm, imagesEqual } from '../client-sim/decode.js';
import { JOURNAL_FILE, SessionJournal, fnv1a, journaledResponses } from '../server/journal.js';
import { createJpipServer } from '../server/server.js';
import { SessionTable, type Session } from '../server/sessions.js';
import { copyMovie } from './helpers.js';
import { KeepAliveSession, movieFrames } from './supervisor-client.js';

/**
 * The session journal: what it records, how it replays (also a file cut by
 * a kill in the middle of a write), compaction, the SENT records the
 * supervisor looks for, and an in-process "crash" (a server stopped without
 * closing its sessions, then a new one on the same state directory) after
 * which a client goes on with its cid, receives nothing twice and misses
 * nothing.
 */
const journal = suite('session journal');
let dir = '';
journal.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'jpip-journal-'));
});
journal.after.each(() => rmSync(dir, { recursive: true, force: true }));

const table = (): SessionTable => new SessionTable({ maxSessions: 100, idleMs: 1e9 });

function modelOf(s: Session): string[] {
  return [...s.model.entries()].map((e) => `${e.codestream}:${e.classId}:${e.binId}=${e.held === COMPLETE ? 'all' : e.held}`).sort();
}

function snapshot(t: SessionTable): Record<string, { key: string; tid: string; sno: number; model: string[] }> {
  const out: Record<string, { key: string; tid: string; sno: number; model: string[] }> = {};
  for (const s of t.all()) out[s.cid] = { key: s.key, tid: s.tid, sno: s.sno, model: modelOf(s) };
  return out;
}

/** Opens sessions and records what a server would: held data, model statements, resets, closes. */
function populate(t: SessionTable, j: SessionJournal): Session[] {
  const a = t.open('movie/linked.jpx', 'tidA');
  const b = t.open('g128-default.j2k', 'tidB');
  const c = t.open('x.j2k', 'tidC');
  for (const [s, cs] of [
    [a, 0],
    [a, 2],
    [b, 0],
  ] as const) {
    const updates = [
      { codestream: cs, classId: 2, binId: 0, held: COMPLETE },
      { codestream: cs, classId: 0, binId: 3, held: 150 },
      { codestream: cs, classId: 0, binId: 300_000, held: 2 ** 40 },
    ];
    for (const u of updates) s.model.add(u.codestream, u.classId, u.binId, u.held, u.held === COMPLETE);
    j.held(s, updates);
  }
  b.model.remove(0, 0, 3, 100);
  j.removed(b, 0, 0, 3, 100);
  a.model.add(0, 8, 0, COMPLETE, true);
  j.responseSent(a, [{ codestream: 0, classId: 8, binId: 0, held: COMPLETE }], { pid: 42, slot: 3, seq: 7, framing: 0 });
  j.responseDone({ pid: 42, slot: 3, seq: 7, framing: 0 });
  c.model.add(1, 0, 1, 10);
  j.held(c, [{ codestream: 1, classId: 0, binId: 1, held: 10 }]);
  c.model.clear();
  c.tid = 'tidC2';
  j.cleared(c);
  t.close([b.cid]);
  j.held(a, []);
  return [a, b, c];
}

journal('replay gives back every open session with its cid, target, tid and cache model', () => {
  const t1 = table();
  const j1 = new SessionJournal(dir, { compactBytes: 1 << 20 });
  const r0 = j1.open(t1);
  assert.is(r0.sessions, 0);
  populate(t1, j1);
  const want = snapshot(t1);
  assert.is(Object.keys(want).length, 2, 'b was closed');
  j1.close();
  const t2 = table();
  const j2 = new SessionJournal(dir, { compactBytes: 1 << 20 });
  const r = j2.open(t2);
  assert.is(r.sessions, 2);
  assert.not.ok(r.torn);
  assert.equal(snapshot(t2), want);
  // New sessions get numbers after the recovered ones.
  assert.ok(t2.open('y', 't').sno > Math.max(...Object.values(want).map((s) => s.sno)));
  // The replayed file was rewritten compactly and replays the same.
  j2.close();
  const t3 = table();
  new SessionJournal(dir, { compactBytes: 1 << 20 }).open(t3);
  assert.equal(Object.keys(snapshot(t3)).length, 3);
});

journal('a file cut in the middle of a record (a kill during a write) replays up to the cut', () => {
  const t1 = table();
  const j1 = new SessionJournal(dir, { compactBytes: 1 << 20 });
  j1.open(t1);
  const s = t1.open('a.j2k', 'tid');
  j1.held(s, [{ codestream: 0, classId: 0, binId: 1, held: 10 }]);
  const good = statSync(j1.path).size;
  j1.held(s, [{ codestream: 0, classId: 0, binId: 2, held: 20 }]);
  j1.close();
  truncateSync(j1.path, statSync(j1.path).size - 3);
  const events: string[] = [];
  const t2 = table();
  const r = new SessionJournal(dir, { compactBytes: 1 << 20, onEvent: (e) => events.push(e) }).open(t2);
  assert.ok(r.torn);
  assert.equal(events, ['journal-torn', 'journal-compacted']);
  const got = [...t2.all()][0]!;
  assert.equal(modelOf(got), ['0:0:1=10']);
  assert.ok(statSync(j1.path).size <= good, 'the torn tail is gone after the rewrite');
  // A record whose checksum does not match stops the replay too.
  const j3 = new SessionJournal(dir, { compactBytes: 1 << 20 });
  const t3 = table();
  j3.open(t3);
  j3.held([...t3.all()][0]!, [{ codestream: 0, classId: 0, binId: 5, held: 5 }]);
  j3.close();
  const bytes = readFileSync(j3.path);
  bytes[bytes.length - 1] ^= 0xff;
  writeFileSync(j3.path, bytes);
  const t4 = table();
  assert.ok(new SessionJournal(dir, { compactBytes: 1 << 20 }).open(t4).torn);
  assert.equal(modelOf([...t4.all()][0]!), ['0:0:1=10']);
});

journal('a file that is not a journal is set aside as empty; records of unknown type stop the replay', () => {
  writeFileSync(join(dir, JOURNAL_FILE), 'hello, not a journal');
  const events: string[] = [];
  const t = table();
  const r = new SessionJournal(dir, { compactBytes: 1 << 20, onEvent: (e) => events.push(e) }).open(t);
  assert.is(r.sessions, 0);
  assert.ok(r.torn);
  assert.ok(events.includes('journal-unreadable'));
  // A well-framed record with an unknown type.
  const payload = Buffer.from([99, 1]);
  const rec = Buffer.alloc(8 + payload.length);
  rec.writeUInt32BE(payload.length, 0);
  rec.writeUInt32BE(fnv1a(payload, 0, payload.length), 4);
  payload.copy(rec, 8);
  appendFileSync(join(dir, JOURNAL_FILE), rec);
  assert.ok(new SessionJournal(dir, { compactBytes: 1 << 20 }).open(table()).torn);
});

journal('compaction keeps the file near the size of the live sessions, waiting for no response to be half-recorded', async () => {
  const t = table();
  const j = new SessionJournal(dir, { compactBytes: 4096 });
  j.open(t);
  const s = t.open('a.j2k', 'tid');
  const mark = { pid: 1, slot: 0, seq: 1, framing: 0 as const };
  j.responseSent(s, [{ codestream: 0, classId: 0, binId: 0, held: 1 }], mark);
  assert.is(j.pendingResponses, 1);
  for (let i = 0; i < 400; i++) {
    s.model.add(0, 0, i % 20, i);
    j.held(s, [{ codestream: 0, classId: 0, binId: i % 20, held: i }]);
  }
  const before = j.compactions;
  await new Promise((r) => setTimeout(r, 60));
  assert.is(j.compactions, before, 'no compaction while a response is between its SENT record and its end');
  j.responseDone(mark);
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(j.compactions > before, 'compacted once the response ended');
  assert.ok(j.bytes < 1000, `${j.bytes} bytes after compaction`);
  j.close();
  const t2 = table();
  new SessionJournal(dir, { compactBytes: 4096 }).open(t2);
  assert.equal(modelOf([...t2.all()][0]!), modelOf(s));
});

journal('the supervisor finds the SENT records of the dead worker\'s requests in flight, and only those', () => {
  const t = table();
  const j = new SessionJournal(dir, { compactBytes: 1 << 20 });
  j.open(t);
  const s = t.open('a.j2k', 'tid');
  j.responseSent(s, [], { pid: 10, slot: 1, seq: 5, framing: 0 });
  j.responseSent(s, [], { pid: 10, slot: 2, seq: 6, framing: 1 });
  j.responseSent(s, [], { pid: 11, slot: 3, seq: 9, framing: 0 });
  j.close();
  const inFlight = new Map([
    [1, 5],
    [2, 6],
    [3, 9],
    [4, 1],
  ]);
  assert.equal([...journaledResponses(j.path, 10, inFlight)], [
    [1, 0],
    [2, 1],
  ]);
  assert.equal([...journaledResponses(j.path, 10, new Map([[1, 4]]))], [], 'another request on that slot');
  assert.equal([...journaledResponses(j.path, 10, new Map())], []);
  assert.equal([...journaledResponses(join(dir, 'none'), 10, inFlight)], []);
  writeFileSync(join(dir, 'bad'), 'xx');
  assert.equal([...journaledResponses(join(dir, 'bad'), 10, inFlight)], []);
});

journal('destroy removes the journal (sessions closed); close keeps it', () => {
  const j = new SessionJournal(dir, { compactBytes: 1 << 20 });
  j.open(table());
  j.close();
  assert.ok(existsSync(j.path));
  const k = new SessionJournal(dir, { compactBytes: 1 << 20 });
  k.open(table());
  k.destroy();
  assert.not.ok(existsSync(k.path));
  k.destroy();
});

/**
 * After an in-process "crash" and a new server on the same state directory: the client asks its
 * window of the movie's three frames until the image is done, on the same channel; nothing arrived
 * twice, nothing is missing, every frame decodes exactly.
 */
async function finishAfterRestart(client: KeepAliveSession, fields: Parameters<KeepAliveSession['request']>[0], cid: string | undefined, who: string): Promise<void> {
  let rounds = 0;
  let last;
  do {
    last = await client.request(fields);
    assert.is(last.status, 200, last.text);
    rounds++;
  } while (last.eor === EOR.BYTE_LIMIT_REACHED && rounds < 50);
  assert.is(last.eor, EOR.IMAGE_DONE);
  assert.is(client.cid, cid, 'same channel');
  assert.equal(client.duplicates(), [], `${who}nothing arrived twice across the restart`);
  const frames = movieFrames();
  for (const cs of [0, 1, 2]) {
    const rebuilt = client.jc.reassemble(cs);
    assert.is(rebuilt.emptyPackets, 0, `${who}nothing missing`);
    assert.ok(imagesEqual(await decodeWasm(rebuilt.codestream), await decodeWasm(frames[cs]!)), `${who}frame ${cs} decodes exactly`);
  }
}

journal('in-process crash: a new server on the same state directory takes over the sessions; nothing twice, nothing missing', async () => {
  const root = join(dir, 'root');
  copyMovie(root, { container: true });
  const stateDir = join(dir, 'state');
  const a = createJpipServer({ root, port: 0, stateDir, logLevel: 'error' });
  const client = new KeepAliveSession(await a.listen());
  const fields = { stream: [{ from: 0, to: 2, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' as const }, len: 3000 };
  const first = await client.request({ cnew: ['http'], ...fields }, 'movie/linked.jpx');
  assert.is(first.status, 200);
  assert.is(first.eor, EOR.BYTE_LIMIT_REACHED);
  await client.request(fields);
  // A model= statement (journaled as the client's own), then "crash": stop without closing sessions.
  await client.request({ ...fields, model: [{ subtract: false, bin: { kind: 'metadata', id: 0 } }] });
  const cid = client.cid;
  await a.close({ keepJournal: true });

  const b = createJpipServer({ root, port: 0, stateDir, logLevel: 'error' });
  assert.is(b.recovered?.sessions, 1);
  client.rebase(await b.listen());
  await finishAfterRestart(client, fields, cid, '');
  await b.close();
  assert.not.ok(existsSync(join(stateDir, JOURNAL_FILE)), 'a normal close ends the sessions');
  client.close();
});

journal('sessions sent the same kept response: one SHARED record, an ADOPT each; replay and compaction give the same models', () => {
  const t = table();
  const j = new SessionJournal(dir, { compactBytes: 1 << 30 });
  j.open(t);
  const holdings = sharedHoldings([
    { codestream: 0, classId: 2, binId: 0, held: COMPLETE },
    { codestream: 0, classId: 0, binId: 3, held: 150 },
    { codestream: 0, classId: 0, binId: 300_000, held: 2 ** 40 },
  ]);
  const [a, b, c] = ['a.jp2', 'a.jp2', 'a.jp2'].map((k) => t.open(k, 'tidA')) as [Session, Session, Session];
  for (const s of [a, b, c]) {
    assert.ok(s.model.adopt(holdings));
    j.adopted(s, holdings);
  }
  // a grows a shared bin and gets a new one; c has one taken away (its model copies the holdings).
  a.model.add(0, 0, 3, 400);
  a.model.add(0, 0, 4, 10);
  j.held(a, [
    { codestream: 0, classId: 0, binId: 3, held: 400 },
    { codestream: 0, classId: 0, binId: 4, held: 10 },
  ]);
  c.model.remove(0, 0, 3, 100);
  j.removed(c, 0, 0, 3, 100);
  const expected = snapshot(t);
  j.close();
  const replayed = table();
  const r = new SessionJournal(dir, { compactBytes: 1 << 30 }).open(replayed);
  assert.equal(snapshot(replayed), expected);
  // Records: 3 OPEN, 1 SHARED, 3 ADOPT, 1 HELD, 1 REMOVE (the file as written before the replay).
  assert.is(r.records, 9);
  const ra = [...replayed.all()].find((s) => s.cid === a.cid)!;
  const rb = [...replayed.all()].find((s) => s.cid === b.cid)!;
  assert.ok(ra.model.shared && ra.model.shared === rb.model.shared, 'the replayed sessions share their holdings again');
  // The replay compacted the file: again one SHARED record for the sessions that still share.
  const again = table();
  const r2 = new SessionJournal(dir, { compactBytes: 1 << 30 }).open(again);
  assert.equal(snapshot(again), expected);
  // 3 OPEN, 1 SHARED, 2 ADOPT (a, b), a's own bins (1 HELD), c's bins (1 HELD).
  assert.is(r2.records, 8);
});

journal('in-process crash after kept responses: every session goes on; nothing twice, nothing missing', async () => {
  const root = join(dir, 'root');
  copyMovie(root, { container: true });
  const stateDir = join(dir, 'state');
  const a = createJpipServer({ root, port: 0, stateDir, logLevel: 'error' });
  const base = await a.listen();
  const fields = { stream: [{ from: 0, to: 2, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' as const }, len: 3000 };
  const clients = [0, 1, 2].map(() => new KeepAliveSession(base));
  for (const c of clients) {
    const first = await c.request({ cnew: ['http'], ...fields }, 'movie/linked.jpx');
    assert.is(first.status, 200);
  }
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^jpip_response_cache_hits_total 2$/m, 'the second and third sessions were sent the kept response');
  // One session goes further before the crash.
  await clients[0]!.request(fields);
  const cids = clients.map((c) => c.cid);
  await a.close({ keepJournal: true });

  const b = createJpipServer({ root, port: 0, stateDir, logLevel: 'error' });
  assert.is(b.recovered?.sessions, 3);
  const base2 = await b.listen();
  for (const [i, c] of clients.entries()) {
    c.rebase(base2);
    await finishAfterRestart(c, fields, cids[i]!, `client ${i}: `);
    c.close();
  }
  await b.close();
});

journal('a write that fails (disk full, I/O error) turns the journal off without throwing', () => {
  const t = table();
  const events: string[] = [];
  const j = new SessionJournal(dir, { compactBytes: 1 << 20, onEvent: (e) => events.push(e) });
  j.open(t);
  // The descriptor goes bad behind the journal's back: the next write fails with EBADF.
  closeSync((j as unknown as { fd: number }).fd);
  const s = t.open('x.jp2', 'tid');
  assert.not.throws(() => j.opened(s), 'waits for the end of the turn');
  assert.not.throws(() => j.cleared(s), 'written at once, with the waiting record: fails');
  assert.ok(events.includes('journal-failed'));
  assert.not.throws(() => j.closed(s), 'later writes are skipped');
  assert.not.throws(() => j.held(s, [{ codestream: 0, classId: 2, binId: 0, held: COMPLETE }]));
});

journal('records that may wait go out together at the end of the turn, in order with those that may not', async () => {
  const t = table();
  const j = new SessionJournal(dir, { compactBytes: 1 << 30 });
  j.open(t);
  const start = j.bytes;
  // The table tells the journal of opened and closed sessions.
  const a = t.open('a.jp2', 'tidA');
  const b = t.open('b.jp2', 'tidB');
  const upd = [{ codestream: 0, classId: 2, binId: 0, held: COMPLETE }];
  a.model.add(0, 2, 0, COMPLETE, true);
  j.held(a, upd, true);
  assert.is(j.bytes, start, 'nothing written yet');
  await new Promise((r) => setImmediate(r));
  const afterTurn = j.bytes;
  assert.ok(afterTurn > start, 'written at the end of the turn');
  // A record that may not wait takes the waiting ones along, first.
  t.close([b.cid]);
  assert.is(j.bytes, afterTurn);
  const c = t.open('c.jp2', 'tidC');
  j.cleared(c);
  assert.ok(j.bytes > afterTurn, 'written at once, with the waiting ones');
  j.close();
  const replayed = table();
  new SessionJournal(dir, { compactBytes: 1 << 30 }).open(replayed);
  assert.equal(Object.keys(snapshot(replayed)).sort(), [a.cid, c.cid].sort(), 'b closed, a and c open');
  assert.equal(snapshot(replayed)[a.cid]!.model, ['0:2:0=all']);
});

journal('a compaction takes over the waiting records; close writes them', () => {
  const t = table();
  const j = new SessionJournal(dir, { compactBytes: 1 << 30 });
  j.open(t);
  const a = t.open('a.jp2', 'tidA');
  a.model.add(0, 2, 0, COMPLETE, true);
  j.held(a, [{ codestream: 0, classId: 2, binId: 0, held: COMPLETE }], true);
  j.compact();
  t.open('b.jp2', 'tidB');
  j.close();
  const replayed = table();
  const r = new SessionJournal(dir, { compactBytes: 1 << 30 }).open(replayed);
  assert.is(r.torn, false);
  assert.is(r.sessions, 2, 'each session once: the snapshot, then the record written at close');
  assert.is(r.records, 3, 'open a, held a (the snapshot), open b: the waiting records were not written again after the snapshot');
  assert.equal(snapshot(replayed)[a.cid]!.model, ['0:2:0=all']);
  assert.is(Object.keys(snapshot(replayed)).length, 2);
});

journal.run();
