import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EOR } from '../jpip/constants.js';
import { decodeWasm, imagesEqual, type DecodedImage } from '../client-sim/decode.js';
import { validateConfig } from '../server/config.js';
import { JOURNAL_FILE } from '../server/journal.js';
import { createLogger } from '../server/log.js';
import { Supervisor, type WorkerDeath, type WorkerReady } from '../server/supervisor.js';
import { copyMovie } from './helpers.js';
import { KeepAliveSession, movieFrames, writeBigMovie } from './supervisor-client.js';

/**
 * The supervisor and its worker process, for real: workers are forked
 * (from the TypeScript sources under tsx, as the supervisor does when it runs
 * from source; the build forks dist/server/worker-main.js) and killed with -9
 * while clients stream. Worker coverage goes to a scratch directory: a
 * process killed with -9 writes none, so the worker's logic is covered by the
 * in-process tests (server-*.test.ts, supervisor-worker.test.ts).
 */

/** ~8 MB of frames: more than the kernel buffers of a loopback client that stops reading (~4 MB measured). */
const FRAMES = 2500;
const MOVIE = 'big.jpx';
/** The same scenarios in both ways connections reach the worker (server/supervisor.ts). */
function define(workerAccepts: boolean): void {
  const test = suite(`supervisor (${workerAccepts ? 'the worker accepts: the default' : 'every connection handed over: workerAccepts off'}): worker killed with -9 while clients stream`);

  let root = '';
  let scratch = '';
  let sup: Supervisor;
  let base = '';
  const frames: Uint8Array[] = [];
  const decoded = new Map<number, DecodedImage>();

  async function reference(k: number): Promise<DecodedImage> {
    const f = k % 3;
    let img = decoded.get(f);
    if (!img) {
      img = await decodeWasm(frames[f]!);
      decoded.set(f, img);
    }
    return img;
  }

  const supervisorLog: Record<string, unknown>[] = [];
  /**
   * A request the dead worker had read but not yet parsed (microseconds, longer when the machine is
   * loaded) leaves its connection looking idle: the next worker closes it after this (docs/server.md,
   * "Known limits"). Requests whose response was under way fail at once.
   */
  const HEADERS_SECONDS = 3;

  function startSupervisor(extra: Record<string, unknown> = {}): Supervisor {
    const config = validateConfig([{ root, port: 0, stateDir: join(scratch, 'state'), logLevel: 'error', sendStallSeconds: 60, headersTimeoutSeconds: HEADERS_SECONDS, workerAccepts, ...extra }]);
    return new Supervisor({
      config,
      logger: createLogger({ level: 'error', sink: (e) => supervisorLog.push(e) }),
      env: { ...process.env, NODE_V8_COVERAGE: join(scratch, 'coverage') },
    });
  }

  test.before(async () => {
    root = mkdtempSync(join(tmpdir(), 'jpip-sup-root-'));
    scratch = mkdtempSync(join(tmpdir(), 'jpip-sup-'));
    frames.push(...movieFrames());
    // A movie big enough that a response to a client that stops reading stays in flight.
    writeBigMovie(join(root, MOVIE), FRAMES);
    copyMovie(root);
    sup = startSupervisor();
    base = await sup.start();
  });

  test.after(async () => {
    await sup.kill();
    rmSync(root, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  const open: KeepAliveSession[] = [];
  function session(): KeepAliveSession {
    const s = new KeepAliveSession(base);
    open.push(s);
    return s;
  }

  /** Requests a frame window until the server says it is done, retrying a request that fails. */
  async function fetchFrame(s: KeepAliveSession, k: number, len: number, log: { failedAt: number[] }): Promise<void> {
    for (let round = 0; round < 200; round++) {
      let r;
      try {
        r = await s.request({ stream: [{ from: k, to: k, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len });
      } catch {
        log.failedAt.push(Date.now());
        continue;
      }
      assert.is(r.status, 200, `frame ${k}: ${r.text}`);
      if (r.eor === EOR.WINDOW_DONE || r.eor === EOR.IMAGE_DONE) return;
    }
    throw new Error(`frame ${k} not done after 200 rounds`);
  }

  async function checkFrames(s: KeepAliveSession, ks: number[]): Promise<void> {
    for (const k of ks) {
      const rebuilt = s.jc.reassemble(k);
      assert.is(rebuilt.emptyPackets, 0, `frame ${k}: every packet arrived`);
      assert.ok(imagesEqual(await decodeWasm(rebuilt.codestream), await reference(k)), `frame ${k} decodes exactly`);
    }
  }

  test('clients keep their connections and sessions, in-flight requests fail fast and succeed again, nothing arrives twice, frames decode exactly', async () => {
    const readyEvents: WorkerReady[] = [];
    const deaths: WorkerDeath[] = [];
    sup.on('worker-ready', (r: WorkerReady) => readyEvents.push(r));
    sup.on('worker-exit', (d: WorkerDeath) => deaths.push(d));

    // Sessions, opened before the crash.
    const stalled = session();
    const idle = session();
    const streamers = [0, 1, 2].map(() => session());
    for (const s of [stalled, idle, ...streamers]) {
      // Metadata-bin 0 of this movie is ~100 KB (a header box per frame): fetch it once.
      const r = await s.request({ cnew: ['http'], type: [{ name: 'jpp-stream', ext: false }], fsiz: { fx: 1, fy: 1, round: 'round-down' }, len: 1_000_000 }, MOVIE);
      assert.is(r.status, 200);
      assert.ok(s.cid, 'a channel was opened');
    }
    const idleBefore = await idle.request({ stream: [{ from: 7, to: 7, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 1000 });
    const cids = [stalled, idle, ...streamers].map((s) => s.cid);

    // A response in flight for sure: the client stops reading a body of several megabytes (and reads
    // again after the kill: a client that reads nothing cannot notice anything).
    let stalledError: { at: number; message: string } | undefined;
    let stalledBody: import('node:http').IncomingMessage | undefined;
    const stalledReq = stalled
      .request({ stream: [{ from: 0, to: FRAMES - 1, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 64 * 1024 * 1024 }, undefined, {
        pauseBody: (res) => {
          res.pause();
          stalledBody = res;
        },
      })
      .catch((e: Error) => {
        stalledError = { at: Date.now(), message: e.message };
      });

    // Streaming clients: small responses, one after the other, frame after frame.
    const wanted = [
      [3, 4, 5, 6, 8, 9, 10, 11, 12, 13],
      [20, 21, 22, 23, 24, 25, 26, 27, 28, 29],
      [40, 41, 42, 43, 44, 45, 46, 47, 48, 49],
    ];
    const logs = streamers.map(() => ({ failedAt: [] as number[] }));
    let completed = 0;
    const streaming = streamers.map(async (s, i) => {
      for (const k of wanted[i]!) {
        await fetchFrame(s, k, 700, logs[i]!);
        completed++;
      }
    });

    // Kill the worker with -9 once the streams are under way.
    const t0 = Date.now();
    while ((completed < 3 || !stalledBody) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 5));
    const victim = sup.workerPid!;
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    setTimeout(() => stalledBody!.resume(), 50);
    await stalledReq;
    await Promise.all(streaming);
    await new Promise<void>((resolve) => {
      if (readyEvents.length > 0) resolve();
      else sup.once('worker-ready', () => resolve());
    });

    // One death, one restart, within a second or so (the worker runs under tsx here: slower than the build).
    assert.is(deaths.length, 1, 'one worker death');
    assert.is(deaths[0]!.signal, 'SIGKILL');
    assert.ok(deaths[0]!.reset >= 1, `the stalled connection was reset (reset ${deaths[0]!.reset}, kept ${deaths[0]!.kept})`);
    assert.ok(deaths[0]!.kept >= 1, 'idle connections were kept');
    assert.is(sup.restarts, 1);
    assert.ok(sup.workerPid !== undefined && sup.workerPid !== victim, 'a new worker runs');
    const ready = readyEvents[0]!;
    assert.ok(ready.restartMs !== undefined && ready.restartMs < 3000, `restarted in ${ready.restartMs} ms`);
    assert.ok(ready.sessions >= 5, `sessions recovered from the journal: ${ready.sessions}`);

    // The in-flight request failed fast (the client's timeout is 30 s), and succeeds when retried.
    assert.ok(stalledError, 'the stalled request failed');
    assert.ok(stalledError!.at - killedAt < 2000, `failed ${stalledError!.at - killedAt} ms after the kill (${stalledError!.message})`);
    for (const k of [0, 1, 2, FRAMES - 1]) await fetchFrame(stalled, k, 64 * 1024 * 1024, { failedAt: [] });
    for (const l of logs) for (const at of l.failedAt) assert.ok(at - killedAt < HEADERS_SECONDS * 1000 + 1500, `a streaming request failed ${at - killedAt} ms after the kill`);

    // The idle client goes on over the same TCP connection, with its session, even after staying
    // idle longer than the header timeout (the new worker must not take it for a silent new client).
    const idleUntil = killedAt + HEADERS_SECONDS * 1000 + 500;
    if (Date.now() < idleUntil) await new Promise((r) => setTimeout(r, idleUntil - Date.now()));
    const idleAfter = await idle.request({ stream: [{ from: 7, to: 7, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 1_000_000 });
    assert.is(idleAfter.status, 200);
    assert.is(idleAfter.localPort, idleBefore.localPort, `same TCP connection (local port); death ${JSON.stringify(deaths[0])}; log ${JSON.stringify(supervisorLog.slice(-8))}`);
    assert.is(idle.connects, 1, 'the idle client never reconnected');
    assert.ok(idleAfter.eor === EOR.WINDOW_DONE || idleAfter.eor === EOR.IMAGE_DONE);

    // Sessions: every cid still works (no 404), and nothing arrived twice.
    for (const [i, s] of [stalled, idle, ...streamers].entries()) {
      assert.is(s.cid, cids[i], 'same channel');
      const r = await s.request({ stream: [{ from: 0, to: 0, step: 1 }], fsiz: { fx: 16, fy: 16, round: 'round-down' }, len: 100 });
      assert.is(r.status, 200, `session ${i} still open: ${r.text}`);
      assert.equal(s.duplicates(), [], `session ${i}: no byte delivered twice (killed at ${killedAt})`);
    }

    // What each client reassembled decodes exactly.
    await checkFrames(stalled, [0, 1, 2, FRAMES - 1]);
    await checkFrames(idle, [7]);
    for (const [i, s] of streamers.entries()) await checkFrames(s, wanted[i]!);
    const failures = streamers.reduce((n, s) => n + s.failures, 0);
    assert.ok(supervisorLog.some((e) => e['event'] === 'worker-died' && e['signal'] === 'SIGKILL'), 'the death is logged');
    console.log(
      `  [supervisor] restart ${ready.restartMs} ms (tsx worker), ${ready.sessions} sessions replayed in ${ready.replayMs.toFixed(1)} ms; ` +
        `reset ${deaths[0]!.reset}, completed ${deaths[0]!.completed}, kept ${deaths[0]!.kept}; streaming requests failed and retried: ${failures}`,
    );
    for (const s of [stalled, idle, ...streamers]) s.close();
  });

  test.after.each(() => {
    for (const s of open.splice(0)) s.close();
  });

  test(`over maxConnections the ${workerAccepts ? 'worker' : 'supervisor'} answers 503 with Retry-After and closes`, async () => {
    const conns: Socket[] = [];
    const max = sup.config.maxConnections;
    const t0 = Date.now();
    while (sup.connectionCount > 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    assert.is(sup.connectionCount, 0, 'the connections of the test before are closed');
    // Lower the limit through a reload of an in-memory config.
    const opts = (sup as unknown as { opts: { reload?: () => unknown } }).opts;
    opts.reload = () => validateConfig([{ ...sup.config, maxConnections: 2, retryAfterSeconds: 7 }]);
    assert.ok(sup.reload().ok);
    try {
      for (let i = 0; i < 2; i++) {
        const s = connect(Number(new URL(base).port), '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        conns.push(s);
      }
      await new Promise((r) => setTimeout(r, 50));
      const answer = await new Promise<string>((resolve, reject) => {
        const s = connect(Number(new URL(base).port), '127.0.0.1', () => s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
        let out = '';
        s.setEncoding('latin1');
        s.on('data', (d) => (out += d));
        s.on('close', () => resolve(out));
        s.on('error', reject);
        setTimeout(() => reject(new Error(`no close: ${out}`)), 5000).unref();
      });
      assert.match(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(answer, /\r\nRetry-After: 7\r\n/);
      // With the worker accepting, the worker counts and answers (the supervisor never sees the connection).
      if (!workerAccepts) assert.ok(sup.rejected >= 1);
    } finally {
      for (const s of conns) s.destroy();
      opts.reload = () => validateConfig([{ ...sup.config, maxConnections: max }]);
      sup.reload();
      // The reload reaches the worker over IPC, the next test's connections over TCP: wait until
      // the limit is back where connections are counted (the worker, when it accepts).
      for (let i = 0; i < 100 && (await fetch(`${base}/health`).then((r) => r.status, () => 0)) !== 200; i++) await new Promise((r) => setTimeout(r, 20));
    }
  });

  test('SIGTERM drain: a response in flight finishes, sessions are closed, everything stops', async () => {
    const s = session();
    const r0 = await s.request({ cnew: ['http'], len: 0 }, MOVIE);
    assert.is(r0.status, 200);
    let paused: import('node:http').IncomingMessage | undefined;
    const inFlight = s.request({ stream: [{ from: 0, to: FRAMES - 1, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 64 * 1024 * 1024 }, undefined, {
      pauseBody: (res) => {
        res.pause();
        paused = res;
      },
    });
    while (!paused) await new Promise((r) => setTimeout(r, 5));
    const idle = session();
    await idle.request({ stream: [{ from: 0, to: 0, step: 1 }], len: 100 }, MOVIE);
    const drained = sup.drain();
    await new Promise((r) => setTimeout(r, 100));
    // New connections are refused once draining started.
    const refused = await new Promise<boolean>((resolve) => {
      const c = connect(Number(new URL(base).port), '127.0.0.1');
      c.on('error', () => resolve(true));
      c.on('connect', () => {
        c.destroy();
        resolve(false);
      });
    });
    assert.ok(refused, 'no new connections');
    paused.resume();
    const r = await inFlight;
    assert.is(r.status, 200);
    assert.is(r.eor, EOR.IMAGE_DONE);
    await drained;
    assert.not.ok(existsSync(join(scratch, 'state', JOURNAL_FILE)), 'sessions closed: the journal is gone');
    assert.is(sup.connectionCount, 0);
    assert.is(sup.workerPid, undefined);
    await checkFrames(s, [0, FRAMES - 1]);
    s.close();
    idle.close();
  });

  test.run();
}

define(true);
define(false);
