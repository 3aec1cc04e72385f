import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCrowd } from '../client-sim/crowd.js';
import type { MovieInfo } from '../client-sim/patterns.js';
import { formatCrowdSummary } from '../client-sim/results.js';
import { startMisbehavingServer, type MisbehavingServer } from './client-test-server.js';

/**
 * The flash crowd against a server that misbehaves in every way a test can
 * provoke (client-test-server.ts): wrong status, wrong content type, garbage
 * JPP, cut and truncated bodies, a hang beyond the client timeout. The
 * simulator counts each by kind, reports them, retries, gives up after too
 * many failures in a row, and ends on time.
 */

const t = suite('crowd: a misbehaving server');
let bad: MisbehavingServer;

t.before(async () => {
  bad = await startMisbehavingServer();
});
t.after(async () => {
  await bad.close();
});

const movie = (mode: string): MovieInfo => ({ target: `${mode}.jpx`, frames: 3, sizes: [{ width: 128, height: 128 }] });

t('every failure is counted by kind and reported; good clients go on; the run ends on time', async () => {
  const modes = ['ok', 'status', 'ctype', 'garbage', 'cut', 'truncated', 'hang', 'flaky'];
  const t0 = Date.now();
  const r = await runCrowd({
    server: bad.url,
    level: 0,
    movieInfo: modes.map(movie),
    serverPid: process.pid,
    clients: modes.length,
    every: 0.5,
    duration: 1.2,
    sessionLength: 1,
    woi: { w: 128, h: 128 },
    framesPerQuery: 2,
    timeoutMs: 300,
    maxRetries: 2,
    graceMs: 300,
    tickMs: 250,
  });
  const took = Date.now() - t0;
  assert.ok(took < 4000, `took ${took} ms`);
  const k = r.errors.byKind;
  for (const kind of ['status', 'content-type', 'bad-stream', 'cut', 'truncated', 'timeout'] as const) assert.ok((k[kind] ?? 0) > 0, `${kind}: ${JSON.stringify(k)}`);
  assert.is(r.errors.total, Object.values(k).reduce((a, b) => a + (b ?? 0), 0));
  assert.ok((r.errors.byStatus['500'] ?? 0) > 0);
  assert.ok(r.totals.responses > 0, 'the good clients got answers');
  assert.ok(r.totals.retries > 0);
  assert.ok(r.totals.clientsGaveUp > 0, 'clients gave up after too many failures in a row');
  assert.ok(r.totals.sessionsOpened > 0 && r.totals.sessionsClosed > 0);
  assert.ok(r.totals.sessionsAbandoned > 0, 'flaky channels are given up after a cut');
  assert.ok(r.errors.samples.length > 0 && r.errors.samples.length <= 10);
  assert.ok(r.errors.samples.every((s) => s.count >= 1 && s.message.length > 0));
  assert.ok(r.server?.available);
  const text = formatCrowdSummary(r);
  assert.match(text, /jpip-bench crowd: \d+ errors/);
  assert.match(text, /cut \d+/);
  assert.match(text, /HTTP 500: \d+/);
  assert.match(text, /first errors:/);
});

t('requests still running when the run ends are aborted, not counted as errors, and the run does not wait for them', async () => {
  const t0 = Date.now();
  const r = await runCrowd({
    server: bad.url,
    level: 0,
    movieInfo: [movie('hang')],
    clients: 2,
    every: 5,
    duration: 0.4,
    sessionLength: 5,
    woi: { w: 128, h: 128 },
    timeoutMs: 20_000,
    graceMs: 200,
  });
  assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
  assert.is(r.errors.total, 0);
  assert.is(r.totals.abortedAtEnd, 2);
  assert.is(r.totals.responses, 0);
  assert.match(formatCrowdSummary(r), /aborted at end\s+2 requests/);
  assert.is(r.latencyMs.count, 0);
  assert.match(formatCrowdSummary(r), /no responses/);
});

t("JHelioviewer's pattern: on errors it reconnects with a new cnew, retries, and gives up after its limit", async () => {
  const before = { ...bad.hits };
  const r = await runCrowd({
    server: bad.url,
    level: 0,
    movieInfo: ['ok', 'cut', 'garbage'].map(movie),
    pattern: 'jhelioviewer',
    clients: 3,
    every: 1,
    duration: 0.9,
    sessionLength: 0.9,
    timeoutMs: 300,
    maxRetries: 3,
    graceMs: 300,
  });
  assert.ok((r.errors.byKind.cut ?? 0) >= 2, JSON.stringify(r.errors));
  assert.ok((r.errors.byKind['bad-stream'] ?? 0) >= 2);
  assert.ok(r.totals.retries >= 4);
  assert.ok(r.totals.windowsDone >= 3, 'the good client completed its frames');
  assert.ok(bad.hits['cut']! - (before['cut'] ?? 0) >= 3, 'each retry is a new cnew');
  assert.ok(r.totals.sessionsClosed >= 1);
});

t.run();
