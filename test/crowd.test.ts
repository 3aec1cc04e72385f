import { spawn } from 'node:child_process';
import { readProc } from '../client-sim/measure.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import yargs from 'yargs';
import { EOR } from '../jpip/constants.js';
import { placeholderBox } from '../jpip/metadata.js';
import { CLIENT_ERROR_KINDS } from '../client-sim/client.js';
import { CROWD_DEFAULTS, DEFAULT_FIXTURE_ROOTS, defaultRoot, findMovies, presetDir, probeMovie, resolveCrowdSettings, runCrowd } from '../client-sim/crowd.js';
import { decodeHistogram } from '../client-sim/measure.js';
import { codestreamCountFromMetadata, frameRanges, paperWindow, roundRobinOrder, type MovieInfo } from '../client-sim/patterns.js';
import { CROWD_SCHEMA, RESULT_SCHEMA_VERSION, crowdCsvRow, formatBytes, formatCrowdSummary, formatCrowdTick, writeCsvRow, type CrowdResult } from '../client-sim/results.js';
import { crowdOptionsFromArgs, parseSize, register as registerCrowd, type CrowdArgs } from '../bin/commands/crowd.js';
import type { CliIo } from '../bin/io.js';
import { createJpipServer } from '../server/server.js';
import { FIXTURES } from './helpers.js';

/**
 * The flash crowd against our embedded server: short runs (about a second
 * each) of the paper's pattern, the open-loop mode, JHelioviewer's sequence
 * and the other dialects; the result's fields; the files; the command line.
 */

const t = suite('crowd: flash crowds against the embedded server');
const MOVIE_ROOT = join(FIXTURES, 'movie');
const SHORT = { root: MOVIE_ROOT, clients: 3, every: 0.5, duration: 1.2, sessionLength: 0.8, woi: { w: 128, h: 128 }, level: 0, framesPerQuery: 2, tickMs: 250 } as const;
let tmp = '';

t.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'jpip-crowd-'));
});
t.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function checkClean(r: CrowdResult, what: string): void {
  assert.is(r.errors.total, 0, `${what}: ${JSON.stringify(r.errors)}`);
  assert.ok(r.totals.responses > 0, `${what}: responses`);
  assert.is(r.totals.sessionsOpened, r.totals.clients, `${what}: one session per client`);
  assert.is(r.totals.sessionsClosed, r.totals.sessionsOpened, `${what}: every session closed`);
  assert.is(r.totals.sessionsAbandoned, 0);
  assert.is(r.totals.clientsGaveUp, 0);
  assert.is(r.totals.requests, r.totals.responses + r.totals.abortedAtEnd);
}

t("the paper's pattern: zero errors, responses, sessions opened and closed, and every field of the result", async () => {
  const r = await runCrowd({ ...SHORT });
  checkClean(r, 'paper');
  assert.is(r.schema, CROWD_SCHEMA);
  assert.is(r.schemaVersion, RESULT_SCHEMA_VERSION);
  assert.is(r.totals.clients, 9, '3 crowds of 3');
  assert.ok(r.target.embedded);
  assert.match(r.target.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(r.target.movies, [{ target: 'linked.jpx', frames: 3, sizes: [{ width: 128, height: 128 }, { width: 64, height: 64 }, { width: 32, height: 32 }, { width: 16, height: 16 }] }]);
  for (const k of ['toolVersion', 'node', 'cpuModel', 'platform'] as const) assert.ok(r.env[k], k);
  assert.ok(r.env.cpus >= 1);
  if (existsSync(join(FIXTURES, '..', '..', '.git'))) assert.match(r.env.gitCommit ?? '', /^[0-9a-f]{40}$/);
  assert.ok(r.rates.responsesPerSecond > 0 && r.rates.bytesPerSecond > 0);
  assert.is(r.latencyMs.count, r.totals.responses);
  assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p99 >= r.latencyMs.p50 && r.latencyMs.max >= r.latencyMs.p99);
  assert.is(decodeHistogram(r.latencyHistogram).totalCount, r.totals.responses);
  assert.is(r.serviceTimeMs, undefined, 'closed loop: no separate service time');
  assert.ok(r.totals.windowsDone > 0 && r.totals.windowsDone <= r.totals.responses);
  assert.is(Object.values(r.eor).reduce((a, b) => a + b, 0), r.totals.responses);
  assert.ok(r.server?.sameProcessAsSimulator, 'the embedded server is this process');
  assert.ok(r.server!.available && r.server!.rssMaxBytes > 10e6);
  assert.ok(r.simulator.available);
  assert.ok(r.timeline.length >= 3, `${r.timeline.length} ticks`);
  assert.is(r.timeline.reduce((a, x) => a + x.responses, 0) <= r.totals.responses, true);
  assert.ok(r.elapsedSeconds > 0.8 && r.elapsedSeconds < 3, `${r.elapsedSeconds} s`);
  const text = formatCrowdSummary(r);
  for (const s of ['no errors', 'responses', 'latency (ms)', 'p99', 'sessions', '9 opened, 9 closed', 'INCLUDE the simulator', 'linked.jpx (3 frames, 128x128)']) assert.ok(text.includes(s), `summary has ${s}:\n${text}`);
  assert.match(formatCrowdTick(r.timeline[0]!, 1), /clients/);
  // The result is plain data: JSON round trip.
  assert.equal(JSON.parse(JSON.stringify(r)), JSON.parse(JSON.stringify(r)));
});

t('a small len makes windows take several responses (EOR 4 then 2): the client asks again, then moves on', async () => {
  const r = await runCrowd({ ...SHORT, clients: 2, duration: 0.6, sessionLength: 0.6, len: 1500, framesPerQuery: 3 });
  checkClean(r, 'small len');
  assert.ok((r.eor[String(EOR.BYTE_LIMIT_REACHED)] ?? 0) > 0, JSON.stringify(r.eor));
  assert.ok(r.totals.windowsDone > 0 && r.totals.windowsDone < r.totals.responses);
});

t('open loop (--rate): requests are paced, latency counts from when each was due', async () => {
  const r = await runCrowd({ ...SHORT, clients: 2, rate: 20, duration: 1, sessionLength: 1, every: 1 });
  checkClean(r, 'rate');
  // 2 clients, 20 requests/s each, for about a second (the first is due at once).
  assert.ok(r.totals.requests >= 20 && r.totals.requests <= 44, `${r.totals.requests} requests`);
  assert.ok(r.serviceTimeMs, 'service time reported');
  assert.ok(r.latencyMs.max >= r.serviceTimeMs!.max - 0.01, 'latency from due >= service time');
  assert.match(formatCrowdSummary(r), /open loop, 20 requests\/s per client/);
});

t('open loop, slow rate: nothing is sent or awaited past the session; rates use the whole window', async () => {
  const t0 = Date.now();
  // The second request of each client is due at 5 s, long after the 1 s session.
  const r = await runCrowd({ ...SHORT, clients: 2, rate: 0.2, duration: 1, sessionLength: 1, every: 1 });
  assert.ok(Date.now() - t0 < 3000, `the run took ${Date.now() - t0} ms`);
  assert.is(r.totals.requests, 2, 'one request per client: the next was due after the session');
  assert.ok(r.elapsedSeconds > 0.8 && r.elapsedSeconds <= 1, `${r.elapsedSeconds} s`);
  assert.ok(r.rates.requestsPerSecond <= 2.5, `${r.rates.requestsPerSecond} requests/s`);
});

t('an already-aborted signal ends the run at once', async () => {
  const t0 = Date.now();
  const r = await runCrowd({ ...SHORT, clients: 1, duration: 4, sessionLength: 4, every: 1, signal: AbortSignal.abort() });
  assert.ok(Date.now() - t0 < 1500, `${Date.now() - t0} ms`);
  assert.is(r.totals.clients, 0);
});

t('--retries applies to the jhelioviewer pattern too (13 only when not given)', async () => {
  assert.is(resolveCrowdSettings({ pattern: 'jhelioviewer' }).maxRetries, 13);
  assert.is(resolveCrowdSettings({ pattern: 'jhelioviewer', maxRetries: 1 }).maxRetries, 1);
  assert.is(resolveCrowdSettings({}).maxRetries, CROWD_DEFAULTS.maxRetries);
  const movieInfo: MovieInfo[] = [{ target: 'linked.jpx', frames: 3, sizes: [{ width: 128, height: 128 }, { width: 64, height: 64 }] }];
  const probe = createNetServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/`;
  await new Promise((r) => probe.close(r));
  // Nothing listens there: every request fails to connect.
  const r = await runCrowd({ server: url, movieInfo, pattern: 'jhelioviewer', clients: 1, every: 3, duration: 3, sessionLength: 3, level: 0, woi: { w: 16, h: 16 }, framesPerQuery: 1, maxRetries: 1, timeoutMs: 1000 });
  assert.is(r.totals.retries, 1);
  assert.is(r.totals.clientsGaveUp, 1);
});

t("JHelioviewer's sequence: every frame completes, then cclose; nothing fails", async () => {
  const r = await runCrowd({ ...SHORT, pattern: 'jhelioviewer', clients: 2, duration: 1, every: 0.5, sessionLength: 1 });
  checkClean(r, 'jhelioviewer');
  // Each client: cnew (EOR 4 at len=512), metadata, a 64x64 view, then the 3 frames one by one.
  assert.is(r.totals.windowsDone, 3 * r.totals.clients);
  assert.ok(r.totals.requests >= 6 * r.totals.clients);
  assert.ok((r.eor[String(EOR.BYTE_LIMIT_REACHED)] ?? 0) >= r.totals.clients, 'the len=512 cnew stops at the byte limit');
});

t('the other dialects drive our server without errors', async () => {
  for (const dialect of ['esajpip', 'openjpip', 'kakadu']) {
    const r = await runCrowd({ ...SHORT, dialect, clients: 2, duration: 0.5, sessionLength: 0.4, every: 0.5 });
    checkClean(r, dialect);
    assert.is(r.settings.dialect, dialect);
  }
});

t('a running server (--server) with --server-pid: the server is sampled from /proc', async () => {
  const srv = createJpipServer({ root: MOVIE_ROOT, port: 0 });
  const url = await srv.listen();
  try {
    const r = await runCrowd({ ...SHORT, root: undefined, server: url, targets: ['linked.jpx'], serverPid: process.pid, clients: 2, duration: 0.5, sessionLength: 0.5 });
    checkClean(r, 'external');
    assert.not.ok(r.target.embedded);
    assert.is(r.target.url, url);
    assert.is(r.server?.pid, process.pid);
    assert.ok(r.server?.available);
    // Several pids (a supervisor and its worker) are sampled together, their figures summed.
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const pids = [process.ppid, sleeper.pid!];
      const one = readProc(pids[0]!)!;
      const two = await runCrowd({ ...SHORT, root: undefined, server: url, movieInfo: r.target.movies, serverPid: pids, clients: 1, duration: 0.3, sessionLength: 0.3 });
      assert.equal(two.server?.pids, pids);
      assert.is(two.server?.sameProcessAsSimulator, false);
      assert.ok(two.server!.rssMaxBytes > one.rssBytes, `the RSS of both processes: ${two.server!.rssMaxBytes} > ${one.rssBytes}`);
      assert.match(formatCrowdSummary(two), new RegExp(`server \\(pids ${pids[0]}\\+${pids[1]}, summed\\)`));
      // This process among them: the figures include the simulator, and say so.
      const withSelf = await runCrowd({ ...SHORT, root: undefined, server: url, movieInfo: r.target.movies, serverPid: [sleeper.pid!, process.pid], clients: 1, duration: 0.3, sessionLength: 0.3 });
      assert.is(withSelf.server?.sameProcessAsSimulator, true);
    } finally {
      sleeper.kill();
    }
    const none = await runCrowd({ ...SHORT, root: undefined, server: `${url}/`, movieInfo: r.target.movies, clients: 1, duration: 0.3, sessionLength: 0.3 });
    assert.is(none.server, undefined, 'no pid: the server is not measured');
    assert.match(formatCrowdSummary(none), /not measured \(give --server-pid\)/);
  } finally {
    await srv.close();
  }
});

t('the default set is found without any flag, and serves a crowd', async () => {
  const root = defaultRoot();
  assert.ok(DEFAULT_FIXTURE_ROOTS.some((r) => root.endsWith(r)), root);
  const movies = findMovies(root);
  assert.ok(movies.length >= 1);
  const refused = await probeMovie('http://127.0.0.1:1', 'x.jpx', { timeoutMs: 2000 }).catch((e: Error) => e);
  assert.match(String(refused), /JPIP_CLIENT_ERR_CONNECT/);
  // The default set with the default level, a small window, one frame per request: a fast run.
  const r0 = await runCrowd({ clients: 1, duration: 0.3, every: 1, sessionLength: 0.3, woi: { w: 16, h: 16 }, framesPerQuery: 1, tickMs: 250 });
  checkClean(r0, 'default set');
  assert.is(r0.target.root, root);
});

t('every option is checked, with a message naming it', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ clients: 0 }, /clients/],
    [{ clients: 1.5 }, /clients/],
    [{ every: 0 }, /every/],
    [{ duration: -1 }, /duration/],
    [{ sessionLength: Number.NaN }, /sessionLength/],
    [{ framesPerQuery: 0 }, /framesPerQuery/],
    [{ woi: { w: 0, h: 5 } }, /woi width/],
    [{ level: 40 }, /level/],
    [{ len: -5 }, /len/],
    [{ rate: 0 }, /rate/],
    [{ pattern: 'storm' }, /pattern/],
    [{ dialect: 'gopher' }, /dialect/],
    [{ maxRetries: -1 }, /maxRetries/],
    [{ timeoutMs: 0 }, /timeoutMs/],
  ];
  for (const [o, re] of cases) assert.throws(() => resolveCrowdSettings(o), re, JSON.stringify(o));
  const s = resolveCrowdSettings({});
  assert.equal({ ...s, woi: { ...s.woi } }, { ...CROWD_DEFAULTS, woi: { w: 1024, h: 1024 } });
  assert.ok(Object.isFrozen(s));
  const fails = async (o: Parameters<typeof runCrowd>[0], re: RegExp): Promise<void> => {
    try {
      await runCrowd(o);
    } catch (e) {
      assert.match((e as Error).message, re);
      return;
    }
    assert.unreachable(`should fail: ${JSON.stringify(o)}`);
  };
  await fails({ ...SHORT, movies: 5 }, /movies: 5 asked, the set has 1/);
  await fails({ ...SHORT, level: 9 }, /level 9: linked\.jpx has 3 resolution levels/);
  await fails({ ...SHORT, server: 'ftp://x' }, /http:\/\//);
  await fails({ ...SHORT, server: 'not a url' }, /URL/);
  await fails({ ...SHORT, preset: 'huge' as 'small' }, /preset/);
  await fails({ ...SHORT, root: tmp }, /no movie/);
  await fails({ ...SHORT, serverPid: 0 }, /serverPid/);
  await fails({ ...SHORT, serverPid: [process.pid, -3] }, /serverPid/);
  await fails({ ...SHORT, serverPid: [] }, /serverPid/);
  assert.match(presetDir('paper', { JPIP_BENCH_FIXTURES: '/x' }), /^\/x\/paper$/);
  assert.match(presetDir('paper', { XDG_CACHE_HOME: '/c' }), /^\/c\/jpip-bench\/fixtures\/paper$/);
});

t('an abort stops the run at once; sessions still get their cclose', async () => {
  const ac = new AbortController();
  const t0 = Date.now();
  setTimeout(() => ac.abort(), 400);
  const r = await runCrowd({ ...SHORT, duration: 30, sessionLength: 30, clients: 2, signal: ac.signal });
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  assert.is(r.errors.total, 0, JSON.stringify(r.errors));
  assert.is(r.totals.sessionsClosed, r.totals.sessionsOpened);
  assert.is(r.totals.clients, 2, 'later crowds never came');
  assert.ok(r.elapsedSeconds >= 0.3 && r.elapsedSeconds < 2, `the window ends with the abort: ${r.elapsedSeconds} s`);
});

t('patterns: frame ranges wrap, JHelioviewer order, frame counts from placeholders, windows clipped', () => {
  assert.equal(frameRanges(0, 15, 30), [{ from: 0, to: 14, step: 1 }]);
  assert.equal(frameRanges(20, 15, 30), [{ from: 20, to: 29, step: 1 }, { from: 0, to: 4, step: 1 }]);
  assert.equal(frameRanges(2, 15, 3), [{ from: 0, to: 2, step: 1 }]);
  assert.equal(roundRobinOrder(5, new Set([0]), new Set([3])), [3, 4, 1, 2]);
  assert.equal(roundRobinOrder(3, new Set(), new Set()), [0, 1, 2]);
  assert.equal(roundRobinOrder(2, new Set([0, 1]), new Set()), []);
  const hdr8 = Uint8Array.of(0, 0, 0, 20, 0x6a, 0x70, 0x32, 0x63);
  const hdr16 = Uint8Array.of(0, 0, 0, 1, 0x6a, 0x70, 0x32, 0x63, 0, 0, 0, 0, 0, 0, 0, 99);
  const box = (type: string, content: number[]): Uint8Array => Uint8Array.from([0, 0, 0, 8 + content.length, ...[...type].map((c) => c.charCodeAt(0)), ...content]);
  const bin0 = new Uint8Array([...box('ftyp', [1, 2, 3, 4]), ...placeholderBox(hdr8, 0), ...placeholderBox(hdr16, 4), ...placeholderBox(hdr8, 2)]);
  assert.is(codestreamCountFromMetadata(bin0), 5);
  // Flag 8: a run of NCS codestreams from CSID.
  const multi = placeholderBox(hdr8, 10);
  const withNcs = new Uint8Array(multi.length + 4);
  withNcs.set(multi);
  new DataView(withNcs.buffer).setUint32(0, withNcs.length);
  new DataView(withNcs.buffer).setUint32(8, 4 | 8);
  new DataView(withNcs.buffer).setUint32(multi.length, 7);
  assert.is(codestreamCountFromMetadata(withNcs), 17);
  assert.is(codestreamCountFromMetadata(box('xml ', [60, 62])), undefined);
  assert.is(codestreamCountFromMetadata(Uint8Array.of(0, 0, 0, 99, 1)), undefined, 'garbage');
  const movie: MovieInfo = { target: 'm.jpx', frames: 3, sizes: [{ width: 200, height: 100 }, { width: 100, height: 50 }] };
  assert.equal(paperWindow(movie, { framesPerQuery: 1, woi: { w: 150, h: 150 }, level: 0, len: 1 }), { fsiz: { fx: 200, fy: 100, round: 'closest' }, roff: { x: 0, y: 0 }, rsiz: { w: 150, h: 100 } });
  assert.throws(() => paperWindow(movie, { framesPerQuery: 1, woi: { w: 1, h: 1 }, level: 2, len: 1 }), /level 2/);
});

// ---------------------------------------------------------------------------
// Files and the command line

async function cli(args: string[]): Promise<{ out: string; err: string; code: number; error: unknown }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (s) => void (out += `${s}\n`), err: (s) => void (err += `${s}\n`), tty: false };
  const before = process.exitCode;
  process.exitCode = 0;
  let error: unknown;
  try {
    await registerCrowd(yargs(), io)
      .strict()
      .exitProcess(false)
      .fail((msg, e) => {
        throw e ?? new Error(msg);
      })
      .parseAsync(args);
  } catch (e) {
    error = e;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, err, code, error };
}

t('jpip-bench crowd: summary, --json FILE, --csv FILE (appended on the next run), --json -', async () => {
  const json = join(tmp, 'r.json');
  const csv = join(tmp, 'r.csv');
  const args = ['crowd', '--root', MOVIE_ROOT, '--clients', '2', '--every', '0.5', '--duration', '0.5', '--session-length', '0.4', '--woi', '128x128', '--level', '0', '--frames-per-query', '2'];
  const a = await cli([...args, '--json', json, '--csv', csv]);
  assert.is(a.error, undefined, String(a.error));
  assert.is(a.code, 0, a.err);
  assert.match(a.out, /jpip-bench crowd: no errors/);
  assert.match(a.err, /wrote .*r\.json/);
  const saved = JSON.parse(readFileSync(json, 'utf8')) as CrowdResult;
  assert.is(saved.schema, CROWD_SCHEMA);
  assert.is(saved.settings.clients, 2);
  const b = await cli([...args, '--csv', csv, '--json', '-']);
  assert.is(b.code, 0);
  assert.is((JSON.parse(b.out) as CrowdResult).schemaVersion, RESULT_SCHEMA_VERSION);
  assert.match(b.err, /appended a row/);
  const lines = readFileSync(csv, 'utf8').trim().split('\n');
  assert.is(lines.length, 3, 'header and two rows');
  const header = lines[0]!.split(',');
  for (const c of ['schema_version', 'tool_version', 'node', 'cpu_model', 'cpus', 'git_commit', 'responses_per_s', 'bytes_per_s', 'latency_p99_ms', 'server_rss_max_mb', 'server_cpu_mean_pct', 'simulator_cpu_mean_pct', 'errors_timeout']) {
    assert.ok(header.includes(c), `column ${c}`);
  }
  assert.not.ok(header.includes('errors_aborted'));
});

t('jpip-bench crowd: bad flags are one clear error; errors in the run give exit code 1', async () => {
  const bad = await cli(['crowd', '--woi', '12', '--root', MOVIE_ROOT]);
  assert.match(String((bad.error as Error)?.message), /--woi must be/);
  assert.is((bad.error as { code?: string }).code, 'JPIP_BENCH_ERR_RUN', 'bin/cli.ts prints errors with a code as one line');
  const noMovie = await cli(['crowd', '--root', tmp, '--duration', '0.2']);
  assert.match(String((noMovie.error as Error)?.message), /no movie/);
  const refused = await cli(['crowd', '--server', 'http://127.0.0.1:1', '--targets', 'x.jpx', '--duration', '0.2']);
  assert.match(String((refused.error as Error)?.message), /JPIP_CLIENT_ERR_CONNECT/);
});

t('command-line flags map to the library options', () => {
  const base: CrowdArgs = {
    clients: 5,
    every: 2,
    duration: 9,
    'session-length': 4,
    'frames-per-query': 3,
    woi: '640,480',
    level: 1,
    len: 1000,
    pattern: 'jhelioviewer',
    dialect: 'esajpip',
    timeout: 2,
  };
  const o = crowdOptionsFromArgs(base);
  assert.equal(
    { ...o },
    {
      clients: 5,
      every: 2,
      duration: 9,
      sessionLength: 4,
      framesPerQuery: 3,
      woi: { w: 640, h: 480 },
      level: 1,
      len: 1000,
      movies: undefined,
      rate: undefined,
      pattern: 'jhelioviewer',
      dialect: 'esajpip',
      server: undefined,
      root: undefined,
      preset: undefined,
      targets: undefined,
      serverPid: undefined,
      timeoutMs: 2000,
      maxRetries: 13,
      insecure: undefined,
    },
  );
  assert.is(crowdOptionsFromArgs({ ...base, pattern: 'paper' }).maxRetries, 3);
  assert.is(crowdOptionsFromArgs({ ...base, retries: 0 }).maxRetries, 0);
  assert.equal(parseSize('woi', '1024x768'), { w: 1024, h: 768 });
  assert.throws(() => parseSize('woi', '0x5'), /--woi/);
});

t('results: CSV refuses a file holding another table; bytes are formatted', () => {
  const f = join(tmp, 'other.csv');
  writeFileSync(f, 'a,b\n1,2\n');
  const row = crowdCsvRow(
    { schema: CROWD_SCHEMA, schemaVersion: 1, env: { tool: 'jpip-bench', toolVersion: '0', node: 'v', platform: 'p', arch: 'a', cpuModel: 'c', cpus: 1, hostname: 'h', gitCommit: undefined, gitDirty: undefined }, startedAt: 'now', settings: resolveCrowdSettings({}), target: { url: 'u', embedded: false, root: undefined, movies: [] }, elapsedSeconds: 1, totals: { clients: 0, clientsGaveUp: 0, requests: 0, responses: 0, bytes: 0, messages: 0, windowsDone: 0, sessionsOpened: 0, sessionsClosed: 0, sessionsAbandoned: 0, retries: 0, abortedAtEnd: 0 }, rates: { requestsPerSecond: 0, responsesPerSecond: 0, bytesPerSecond: 0 }, errors: { total: 0, byKind: {}, byStatus: {}, samples: [] }, eor: {}, latencyMs: { count: 0, min: 0, mean: 0, stddev: 0, p50: 0, p75: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 }, serviceTimeMs: undefined, latencyHistogram: '', server: undefined, simulator: { pid: 1, label: 's', available: false, samples: [], cpuPercentMean: 0, cpuPercentMax: 0, rssMaxBytes: 0, rssLastBytes: 0 }, timeline: [] },
    CLIENT_ERROR_KINDS,
  );
  assert.throws(() => writeCsvRow(f, row), /another table/);
  assert.is(row['server_measured'], false);
  assert.is(formatBytes(999), '999 B');
  assert.is(formatBytes(1500), '1.50 kB');
  assert.is(formatBytes(123_456_789), '123 MB');
});

t.run();
