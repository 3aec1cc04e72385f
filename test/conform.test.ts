import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { register } from '../bin/commands/conform.js';
import {
  CHECKS,
  DEFAULT_FIXTURE_SET,
  defaultOriginalsRoot,
  failsProfile,
  formatJson,
  formatJunit,
  formatMarkdown,
  formatTable,
  GROUPS,
  parseFixtureSet,
  runConformance,
  selectChecks,
  STATUS,
  type ConformReport,
} from '../conform/index.js';
import { loadFixtures } from '../conform/fixtures.js';
import { HttpConnection, HttpTimeout } from '../conform/http.js';
import { analyzeStream } from '../conform/stream.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { FIXTURES, freePort, runCommand } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Expects a promise to reject with an error matching `want` (a pattern or a predicate). */
async function rejects(p: Promise<unknown>, want: RegExp | ((e: unknown) => boolean)): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, 'expected a rejection');
  if (want instanceof RegExp) assert.match(String((err as Error).message), want);
  else assert.ok(want(err), String(err));
}

// ---------------------------------------------------------------------------
const registry = suite('conform: the checks');

registry('at least 60 checks, each with a unique id in its group, a title, a reason and profiles (all in full)', () => {
  assert.ok(CHECKS.length >= 60, `${CHECKS.length} checks`);
  const ids = new Set<string>();
  for (const c of CHECKS) {
    assert.ok(!ids.has(c.id), `duplicate id ${c.id}`);
    ids.add(c.id);
    assert.ok(c.id.startsWith(`${c.group}.`), `${c.id} is not named after its group ${c.group}`);
    assert.ok(c.group in GROUPS);
    assert.ok(c.title.length > 10 && c.why.length > 30, c.id);
    assert.ok(c.profiles.includes('full'), `${c.id} is not in the full profile`);
  }
  for (const g of Object.keys(GROUPS)) assert.ok(CHECKS.some((c) => c.group === g), `group ${g} has no check`);
  assert.ok(CHECKS.filter((c) => c.profiles.includes('jhv')).length >= 15, 'a JHelioviewer profile of substance');
});

registry('profiles select their checks; --only takes ids and group names; unknown or empty selections are refused', () => {
  assert.is(selectChecks('full').length, CHECKS.length);
  assert.ok(selectChecks('core').every((c) => c.profiles.includes('core')));
  assert.ok(selectChecks('jhv').every((c) => c.profiles.includes('jhv')));
  assert.equal(selectChecks('full', ['framing.']).map((c) => c.group), CHECKS.filter((c) => c.group === 'framing').map(() => 'framing'));
  assert.equal(selectChecks('full', ['headers.qid']).map((c) => c.id), ['headers.qid']);
  assert.equal(selectChecks('full', ['framing']).map((c) => c.id), selectChecks('full', ['framing.']).map((c) => c.id), 'a group with or without the dot');
  assert.throws(() => selectChecks('core', ['headers.qid']), /not in the core profile/, 'a full-only check is not in core');
  assert.throws(() => selectChecks('full', ['nope.nothing']), /unknown check id/);
  assert.throws(() => selectChecks('full', ['fram']), /unknown check id/, 'a bare prefix is not a group');
  assert.throws(() => selectChecks('full', ['framing.', 'headers.q']), /unknown check id or group: headers\.q/);
  assert.throws(() => selectChecks('full', [], []), /no check selected/);
});

registry('UNIMPLEMENTED fails only the full profile; FAILED fails every profile', () => {
  for (const p of ['core', 'jhv', 'full'] as const) {
    assert.ok(failsProfile(STATUS.FAILED, p));
    assert.not.ok(failsProfile(STATUS.OK, p));
    assert.not.ok(failsProfile(STATUS.NON_STRICT, p));
  }
  assert.ok(failsProfile(STATUS.UNIMPLEMENTED, 'full'));
  assert.not.ok(failsProfile(STATUS.UNIMPLEMENTED, 'core'));
  assert.not.ok(failsProfile(STATUS.UNIMPLEMENTED, 'jhv'));
});

registry('docs/conformance.md explains every check, and no check that does not exist', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'conformance.md'), 'utf8');
  const missing = CHECKS.filter((c) => !doc.includes(`\`${c.id}\``)).map((c) => c.id);
  assert.equal(missing, []);
  const named = new Set([...doc.matchAll(/`((?:syntax|headers|framing|data|window|cache|sessions|jpx|errors|jhv)\.[a-z0-9-]+)`/g)].map((m) => m[1]!));
  const unknown = [...named].filter((id) => !CHECKS.some((c) => c.id === id));
  assert.equal(unknown, []);
});

registry.run();

// ---------------------------------------------------------------------------
const fixtures = suite('conform: the fixture set');

fixtures('the default set names every role and its originals are the committed fixtures', () => {
  const root = defaultOriginalsRoot();
  assert.is(root, FIXTURES);
  const loaded = loadFixtures(DEFAULT_FIXTURE_SET, root!);
  try {
    assert.is(loaded.original('jpx').codestreamCount, 3);
    assert.is(loaded.original('linked').codestream(2).siz.xsiz, 128, 'linked frames resolve under the root');
    assert.throws(() => loaded.original('not-image'), /no JPEG 2000 original/);
  } finally {
    loaded.close();
  }
});

fixtures('a set description is parsed strictly: every role, known roles, sha256 pinned', () => {
  const targets = Object.fromEntries(Object.entries(DEFAULT_FIXTURE_SET.targets).map(([k, v]) => [k, { path: `conformance/${v.path}`, original: v.original }]));
  const set = parseFixtureSet(JSON.stringify({ name: 'mine', targets }));
  assert.is(set.name, 'mine');
  assert.is(set.targets.jpx.path, 'conformance/movie/movie.jpx');
  assert.throws(() => parseFixtureSet('{'), /not JSON/);
  assert.throws(() => parseFixtureSet(JSON.stringify({ targets: { frame: { path: 'a.jp2' } } })), /targets\.tiled\.path is missing/);
  assert.throws(() => parseFixtureSet(JSON.stringify({ targets: { ...targets, extra: { path: 'x' } } })), /unknown role "extra"/);
  assert.throws(() => parseFixtureSet(JSON.stringify({ targets: { ...targets, frame: { path: 'x', sha256: 'abc' } } })), /sha256/);
  const pinned = { ...DEFAULT_FIXTURE_SET, targets: { ...DEFAULT_FIXTURE_SET.targets, frame: { ...DEFAULT_FIXTURE_SET.targets.frame, sha256: '0'.repeat(64) } } };
  assert.throws(() => loadFixtures(pinned, FIXTURES), /has sha256 [0-9a-f]{64}, the set expects 0{64}/);
  assert.throws(() => loadFixtures(DEFAULT_FIXTURE_SET, tmpdir()), /does not exist \(give the originals' directory with --root\)/);
});

fixtures.run();

// ---------------------------------------------------------------------------
const ours = suite('conform: our server passes');
let srv: JpipServer;
let url = '';

ours.before(async () => {
  srv = createJpipServer({ root: FIXTURES, port: 0 });
  url = await srv.listen();
});
ours.after(async () => {
  await srv.close();
});

ours('the full profile, every check OK', async () => {
  const seen: string[] = [];
  const report = await runConformance({ url, profile: 'full', timeoutMs: 5000, concurrency: 8, onResult: (r) => seen.push(r.id) });
  const bad = report.results.filter((r) => r.status !== STATUS.OK);
  assert.equal(bad.map((r) => `${r.id}: ${r.status} ${r.message}`), []);
  assert.is(report.results.length, CHECKS.length);
  assert.is(seen.length, CHECKS.length);
  assert.ok(report.passed);
  assert.is(report.summary.OK, CHECKS.length);
});

ours('the core and jhv profiles run their checks only, and pass', async () => {
  for (const profile of ['core', 'jhv'] as const) {
    const report = await runConformance({ url, profile, concurrency: 8 });
    assert.ok(report.passed, profile);
    assert.is(report.results.length, selectChecks(profile).length);
  }
});

ours('the query target style (target=) and a prefix reach the same files', async () => {
  const report = await runConformance({ url: `${url}/`, profile: 'full', only: ['data.', 'jpx.stream'], targetStyle: 'query', concurrency: 8 });
  assert.equal(report.results.filter((r) => r.status !== STATUS.OK).map((r) => `${r.id}: ${r.message}`), []);
  const prefixed = await runConformance({ url, profile: 'full', only: ['data.main-header'], prefix: 'movie/../' });
  assert.is(prefixed.results[0]!.status, STATUS.FAILED, 'a prefix the server refuses fails the checks');
});

ours('a run refuses a bad URL or a missing originals directory', async () => {
  await rejects(runConformance({ url: 'not a url' }), /not a URL/);
  await rejects(runConformance({ url: 'ftp://127.0.0.1:1/' }), /only http:\/\/ and https:\/\//);
  await rejects(runConformance({ url, root: join(tmpdir(), 'no-such-dir-conform') }), /does not exist/);
});

ours('a server that is not there fails every check quickly', async () => {
  const closed = await freePort();
  const report = await runConformance({ url: `http://127.0.0.1:${closed}/`, profile: 'core', timeoutMs: 500 });
  assert.ok(report.results.every((r) => r.status === STATUS.FAILED));
  assert.match(report.results[0]!.message, /connect/);
});

ours('the CLI runs the suite, writes JSON, JUnit and Markdown, and exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conform-cli-'));
  try {
    const r = await cli(['conform', url, '--profile', 'jhv', '--json', join(dir, 'r.json'), '--junit', join(dir, 'r.xml'), '--markdown', join(dir, 'r.md'), '--no-colour']);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /JHelioviewer compatibility/);
    assert.match(r.out, /profile jhv PASSED/);
    const json = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as ConformReport;
    assert.is(json.profile, 'jhv');
    assert.ok(json.passed);
    assert.match(readFileSync(join(dir, 'r.xml'), 'utf8'), /<testsuites name="jpip-bench conform \(jhv\)" tests="\d+" failures="0"/);
    assert.match(readFileSync(join(dir, 'r.md'), 'utf8'), /\| `jhv\.sequence` /);
    // A fixture set file naming the same files.
    writeFileSync(join(dir, 'set.json'), JSON.stringify({ name: 'copy', targets: DEFAULT_FIXTURE_SET.targets }));
    const withSet = await cli(['conform', url, '--fixtures', join(dir, 'set.json'), '--root', FIXTURES, '--only', 'data.main-header,jpx.stream']);
    assert.is(withSet.code, 0, withSet.err + withSet.out);
    assert.match(withSet.out, /2 OK/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

ours('the CLI exits 1 when a check of the profile fails, 2 when the run cannot start, and lists checks', async () => {
  const fail = await cli(['conform', url, '--only', 'data.main-header', '--prefix', 'nowhere/']);
  assert.is(fail.code, 1);
  assert.match(fail.out, /FAILED/);
  const bad = await cli(['conform', url, '--fixtures', join(tmpdir(), 'no-such-set.json')]);
  assert.is(bad.code, 2);
  assert.match(bad.err, /jpip-bench conform: /);
  for (const only of ['framing', 'headers.qid', 'nope']) {
    const none = await cli(['conform', url, '--only', only, '--profile', only === 'framing' ? 'full' : 'core']);
    if (only === 'framing') {
      assert.is(none.code, 0, none.err + none.out);
      assert.match(none.out, /framing\./);
    } else {
      assert.is(none.code, 2, `--only ${only}: ${none.out}`);
      assert.match(none.err, /jpip-bench conform: /);
      assert.not.match(none.out, /PASSED/);
    }
  }
  const listBad = await cli(['conform', '--list', '--only', 'nope']);
  assert.is(listBad.code, 2);
  const nourl = await cli(['conform']);
  assert.is(nourl.code, 2);
  const list = await cli(['conform', '--list', '--profile', 'jhv']);
  assert.is(list.code, 0);
  assert.match(list.out, /jhv\.sequence/);
  assert.not.match(list.out, /headers\.qid/);
});

ours.run();

function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  return runCommand(register, args);
}

// ---------------------------------------------------------------------------
const reports = suite('conform: reports');

const sample: ConformReport = {
  tool: 'jpip-bench conform',
  url: 'http://127.0.0.1:1/',
  profile: 'full',
  fixtures: 'test',
  startedAt: '2026-01-01T00:00:00.000Z',
  durationMs: 1234,
  summary: { OK: 1, 'NON-STRICT': 1, FAILED: 1, UNIMPLEMENTED: 1 },
  passed: false,
  results: [
    { id: 'headers.status-line', group: 'headers', title: 'Status', why: 'w', profiles: ['core', 'full'], status: 'OK', message: 'HTTP/1.1 200 OK', durationMs: 3 },
    { id: 'headers.qid', group: 'headers', title: 'qid', why: 'w', profiles: ['full'], status: 'UNIMPLEMENTED', message: 'no JPIP-qid', durationMs: 2 },
    { id: 'framing.vbas', group: 'framing', title: 'VBAS <ok> & "fine"', why: 'w', profiles: ['full'], status: 'NON-STRICT', message: 'a | b', durationMs: 1 },
    { id: 'framing.decodes', group: 'framing', title: 'Decodes', why: 'why <x>', profiles: ['full'], status: 'FAILED', message: 'bad \x01 byte & <tag>', durationMs: 1 },
  ],
};

reports('the table lists every check under its group with a summary line', () => {
  const t = formatTable(sample, { width: 80 });
  assert.match(t, /Response headers\n {2}OK {12}headers\.status-line/);
  assert.match(t, /1 OK, 1 NON-STRICT, 1 FAILED, 1 UNIMPLEMENTED: profile full FAILED/);
  assert.match(formatTable(sample, { colour: true }), /\x1b\[31mFAILED/);
});

reports('JSON is the report itself', () => {
  assert.equal(JSON.parse(formatJson(sample)), sample);
});

reports('JUnit XML: failures (UNIMPLEMENTED too in full), skipped elsewhere, escaped text', () => {
  const x = formatJunit(sample);
  assert.match(x, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="jpip-bench conform \(full\)" tests="4" failures="2" errors="0" skipped="0"/);
  assert.match(x, /<testcase classname="jpip.conform.framing" name="framing.vbas: VBAS &lt;ok&gt; &amp; &quot;fine&quot;"/);
  assert.match(x, /<failure message="FAILED: bad  byte &amp; &lt;tag&gt;" type="FAILED">why &lt;x&gt;<\/failure>/);
  assert.not.match(x, /\x01/);
  const core = formatJunit({ ...sample, profile: 'core' });
  assert.match(core, /failures="1" errors="0" skipped="1"/);
  assert.match(core, /<skipped message="UNIMPLEMENTED: no JPIP-qid"\/>/);
  assert.is((x.match(/<testcase /g) ?? []).length, 4);
  assert.is((x.match(/<\/testcase>/g) ?? []).length, 4);
});

reports('Markdown: a table per group, pipes escaped', () => {
  const md = formatMarkdown(sample);
  assert.match(md, /^# JPIP conformance: http:\/\/127.0.0.1:1\//);
  assert.match(md, /## JPP-stream framing\n\n\| Check \| Result \| Explanation \|/);
  assert.match(md, /\| `framing.vbas` VBAS <ok> & "fine" \| NON-STRICT \| a \\\| b \|/);
});

reports.run();

// ---------------------------------------------------------------------------
const http = suite('conform: the raw HTTP client and the stream scanner');

/** A one-shot TCP server answering each connection with fixed bytes (or nothing). */
async function rawServer(answer: Buffer | undefined, closeAfter = true): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<import('node:net').Socket>();
  const s = createNetServer((sock) => {
    socks.add(sock);
    sock.once('data', () => {
      if (answer) sock.write(answer);
      if (answer && closeAfter) sock.end();
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as { port: number }).port,
    close: () => new Promise((r) => {
      for (const x of socks) x.destroy();
      s.close(() => r());
    }),
  };
}

http('framing problems are reported, not thrown: bad chunks, length and chunked, short bodies, bad gzip', async () => {
  const cases: [string, Buffer, RegExp | undefined, string][] = [
    ['chunked ok', Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'), undefined, 'abc'],
    ['bad chunk size', Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'), /bad chunk size line/, ''],
    ['no last chunk', Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'), /without its last/, 'abc'],
    ['no CRLF after chunk', Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n'), /not followed by CRLF/, 'ab'],
    ['both', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'), /both Transfer-Encoding and Content-Length/, 'abc'],
    ['short body', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), /closed after 3 of 10/, 'abc'],
    ['close-delimited', Buffer.from('HTTP/1.0 200 OK\r\n\r\nabcdef'), undefined, 'abcdef'],
    ['bad gzip', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Encoding: gzip\r\n\r\nabc'), /does not decode/, 'abc'],
    ['gzip', Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${gzipSync('abc').length}\r\nContent-Encoding: gzip\r\n\r\n`), gzipSync('abc')]), undefined, 'abc'],
    ['unknown coding', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Encoding: br\r\n\r\nabc'), /unknown Content-Encoding/, 'abc'],
    ['bad header line', Buffer.from('HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n'), /malformed header line/, ''],
  ];
  for (const [name, bytes, err, body] of cases) {
    const srv = await rawServer(bytes);
    try {
      const c = new HttpConnection('127.0.0.1', srv.port);
      const r = await c.request('/', { timeoutMs: 2000 });
      c.destroy();
      if (err) assert.match(r.framingError ?? '', err, name);
      else assert.is(r.framingError, undefined, `${name}: ${r.framingError}`);
      assert.is(Buffer.from(r.body).toString('latin1'), body, name);
    } finally {
      await srv.close();
    }
  }
});

http('no answer is a timeout; a close without an answer and a non-HTTP answer are connection errors', async () => {
  const silent = await rawServer(undefined);
  try {
    const c = new HttpConnection('127.0.0.1', silent.port);
    await rejects(c.request('/', { timeoutMs: 200 }), (e: unknown) => e instanceof HttpTimeout);
    c.destroy();
  } finally {
    await silent.close();
  }
  const junk = await rawServer(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'));
  try {
    const c = new HttpConnection('127.0.0.1', junk.port);
    await rejects(c.request('/', { timeoutMs: 1000 }), /not an HTTP status line/);
  } finally {
    await junk.close();
  }
  const hangup = await rawServer(Buffer.alloc(0));
  try {
    const c = new HttpConnection('127.0.0.1', hangup.port);
    await rejects(c.request('/', { timeoutMs: 1000 }), /closed the connection without answering/);
  } finally {
    await hangup.close();
  }
});

http('the scanner reports Bin-ID forms, non-minimal VBAS and bad streams', () => {
  // bb=11 metadata-bin 0 (4 bytes), then bb=01 with a non-minimal offset VBAS (0x80 0x04), then EOR 2.
  const bytes = Uint8Array.of(0x70, 8, 0, 0, 4, 1, 2, 3, 4, 0x20, 0x80, 0x04, 1, 9, 0, 2, 0);
  const a = analyzeStream(bytes);
  assert.is(a.error, undefined);
  assert.equal(a.framed.map((f) => f.form), [3, 1, 0]);
  assert.equal(a.framed.map((f) => f.nonMinimal), [false, true, false]);
  assert.is(analyzeStream(Uint8Array.of(0x10, 0, 0)).error !== undefined, true, 'bb=00');
  assert.match(analyzeStream(Uint8Array.of(0x70, 8, 0, 0, 9, 1)).error ?? '', /past the end|truncated|missing/);
  assert.match(analyzeStream(Uint8Array.of(0)).error ?? '', /no reason byte|ends inside/);
  assert.match(analyzeStream(Uint8Array.of(0xf0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0)).error ?? '', /longer than|exceeds/);
});

http.run();
