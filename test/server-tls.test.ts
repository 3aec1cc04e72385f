import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { EOR } from '../jpip/constants.js';
import { JpipClient } from '../client-sim/client.js';
import { runCrowd } from '../client-sim/crowd.js';
import { decodeWasm, imagesEqual } from '../client-sim/decode.js';
import { UndiciTransport } from '../client-sim/node-transport.js';
import { runConformance } from '../conform/runner.js';
import { ConfigError, validateConfig } from '../server/config.js';
import { createLogger } from '../server/log.js';
import { createJpipServer } from '../server/server.js';
import { Supervisor, type WorkerDeath } from '../server/supervisor.js';
import { FIXTURES, fixtureBytes } from './helpers.js';
import { KeepAliveSession } from './supervisor-client.js';

/**
 * HTTPS (`serve --tls-cert --tls-key`): the same answers as over HTTP, in process and under the
 * supervisor; after a worker's death TLS connections are closed and clients go on with their cid
 * over new ones. The certificates are made here with openssl (CI installs it; elsewhere the suite
 * says it skipped).
 */
const tls = suite('HTTPS: serve --tls-cert/--tls-key, clients with --insecure');
const OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
let dir = '';
let cert = '';
let key = '';

tls.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'jpip-tls-'));
  cert = join(dir, 'cert.pem');
  key = join(dir, 'key.pem');
  if (!OPENSSL) return;
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl could not make a certificate: ${r.stderr}`);
});
tls.after(() => rmSync(dir, { recursive: true, force: true }));

const quiet = { logLevel: 'error' as const, log: (): void => {} };
const WINDOW = { fsiz: { fx: 128, fy: 128, round: 'round-down' as const }, len: 1500 };

function skipped(): boolean {
  if (!OPENSSL) console.log('  (skipped: no openssl to make a certificate; apt-get install openssl)');
  return !OPENSSL;
}

tls('config: a certificate needs its key, and an unreadable one is a clear error at start', () => {
  try {
    validateConfig([{ root: FIXTURES, tlsCert: '/nonexistent/cert.pem' }]);
    assert.unreachable('accepted a certificate without a key');
  } catch (e) {
    assert.instance(e, ConfigError);
    assert.match((e as Error).message, /tlsCert and tlsKey: give both/);
  }
  assert.throws(() => createJpipServer({ root: FIXTURES, tlsCert: join(dir, 'missing.pem'), tlsKey: join(dir, 'missing.pem'), ...quiet }), /cannot read the TLS certificate .*missing\.pem/);
});

tls('an HTTPS server streams a window that decodes exactly, with the same bytes as over HTTP', async () => {
  if (skipped()) return;
  const plain = createJpipServer({ root: FIXTURES, port: 0, ...quiet });
  const secure = createJpipServer({ root: FIXTURES, port: 0, tlsCert: cert, tlsKey: key, ...quiet });
  const httpUrl = await plain.listen();
  const httpsUrl = await secure.listen();
  try {
    assert.match(httpsUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const q = '/g256-irrev-8l-cb32.j2k?fsiz=256,256&len=100000&type=jpp-stream';
    const a = await new UndiciTransport().send({ url: `${httpUrl}${q}`, headers: {}, signal: new AbortController().signal });
    const t = new UndiciTransport({ insecure: true });
    const b = await t.send({ url: `${httpsUrl}${q}`, headers: {}, signal: new AbortController().signal });
    const body = async (r: { body: AsyncIterable<Uint8Array> }): Promise<Buffer> => {
      const parts: Uint8Array[] = [];
      for await (const c of r.body) parts.push(c);
      return Buffer.concat(parts);
    };
    assert.is(b.status, 200);
    assert.ok((await body(b)).equals(await body(a)), 'same body over HTTPS');
    await t.close();

    // A session streamed in small responses over one TLS connection decodes exactly.
    const client = new JpipClient(httpsUrl, { transport: new UndiciTransport({ insecure: true }) });
    const first = await client.request({ cnew: ['http'], ...WINDOW }, 'g128-default.j2k');
    assert.is(first.status, 200);
    await client.untilDone(WINDOW);
    const rebuilt = client.reassemble(0);
    assert.ok(imagesEqual(await decodeWasm(rebuilt.codestream), await decodeWasm(fixtureBytes('g128-default.j2k'))), 'decodes exactly');
    await client.close();

    // Without --insecure a self-signed certificate is refused, and says so.
    const strict = new UndiciTransport();
    const refused = await strict.send({ url: `${httpsUrl}${q}`, headers: {}, signal: new AbortController().signal }).then(
      () => 'accepted',
      (e: Error) => e.message,
    );
    assert.match(refused, /self-signed certificate/);
    await strict.close();
  } finally {
    await plain.close();
    await secure.close();
  }
});

tls('the conformance suite and the crowd accept https:// servers with insecure', async () => {
  if (skipped()) return;
  const secure = createJpipServer({ root: FIXTURES, port: 0, tlsCert: cert, tlsKey: key, ...quiet });
  const url = await secure.listen();
  try {
    const ok = await runConformance({ url, insecure: true, only: ['framing', 'sessions'] });
    assert.ok(ok.passed, JSON.stringify(ok.results.filter((r) => r.status !== 'OK').map((r) => [r.id, r.message])));
    assert.ok(ok.results.length >= 5);
    // Without insecure the run stops once, saying why (not one failure per check).
    const refused = await runConformance({ url, only: ['framing.len-respected'] }).then(
      () => 'ran',
      (e: Error) => e.message,
    );
    assert.match(refused, /TLS certificate is not trusted \(self-signed certificate\); for a self-signed test certificate, use --insecure/);

    const movie = 'movie/linked.jpx';
    const frames = readContainer(fixtureBytes('movie/movie.jpx'), { file: 'movie.jpx' }).codestreams.length;
    const result = await runCrowd({ server: url, insecure: true, root: FIXTURES, targets: [movie], clients: 3, every: 10, duration: 1.5, sessionLength: 1.5, level: 0, woi: { w: 64, h: 64 }, len: 4000, framesPerQuery: frames });
    assert.is(result.errors.total, 0, JSON.stringify(result.errors));
    assert.ok(result.totals.responses > 3, `responses over HTTPS: ${result.totals.responses}`);
  } finally {
    await secure.close();
  }
});

tls('supervised over TLS: a worker killed with -9 closes TLS connections; clients reconnect and go on by cid, nothing missed, nothing twice; 503s go out over TLS', async () => {
  if (skipped()) return;
  const scratch = mkdtempSync(join(tmpdir(), 'jpip-tls-sup-'));
  const config = validateConfig([{ root: FIXTURES, port: 0, stateDir: join(scratch, 'state'), logLevel: 'error', tlsCert: cert, tlsKey: key, maxConnections: 2 }]);
  const sup = new Supervisor({ config, logger: createLogger({ level: 'error', sink: () => {} }), env: { ...process.env, NODE_V8_COVERAGE: join(scratch, 'coverage') } });
  const deaths: WorkerDeath[] = [];
  sup.on('worker-exit', (d: WorkerDeath) => deaths.push(d));
  const base = await sup.start();
  const s = new KeepAliveSession(base);
  try {
    assert.match(base, /^https:/);
    const frame = (len: number): Partial<Parameters<KeepAliveSession['request']>[0]> => ({ fsiz: { fx: 128, fy: 128, round: 'round-down' }, len });
    const first = await s.request({ cnew: ['http'], ...frame(800) }, 'g128-default.j2k');
    assert.is(first.status, 200);
    const cid = s.cid;
    assert.ok(cid);
    await s.request(frame(800));

    // Over the connection limit: the supervisor's 503 is readable over TLS.
    const other = new KeepAliveSession(base);
    const third = new KeepAliveSession(base);
    await other.request({ fsiz: { fx: 8, fy: 8, round: 'round-down' }, len: 10 }, 'g128-default.j2k');
    const busy = await third.request({ fsiz: { fx: 8, fy: 8, round: 'round-down' }, len: 10 }, 'g128-default.j2k');
    assert.is(busy.status, 503);
    assert.ok(busy.headers['retry-after'], 'Retry-After');
    other.close();
    third.close();

    const victim = sup.workerPid!;
    const ready = new Promise<void>((r) => sup.once('worker-ready', () => r()));
    process.kill(victim, 'SIGKILL');
    await ready;
    assert.is(deaths.length, 1);
    assert.is(deaths[0]!.kept, 0, 'no TLS connection is handed to the next worker');

    // The client goes on: the first request may find its connection closed; then a new TLS connection, the same cid.
    let done = false;
    for (let round = 0; round < 100 && !done; round++) {
      try {
        const r = await s.request(frame(800));
        assert.is(r.status, 200, r.text);
        done = r.eor === EOR.WINDOW_DONE || r.eor === EOR.IMAGE_DONE;
      } catch {
        /* the connection the dead worker held: retried on a new one */
      }
    }
    assert.ok(done, 'the window was completed after the crash');
    assert.is(s.cid, cid, 'the same channel');
    assert.ok(s.connects >= 2, `reconnected (${s.connects} connections)`);
    assert.equal(s.duplicates(), [], 'no byte delivered twice');
    const rebuilt = s.jc.reassemble(0);
    assert.is(rebuilt.emptyPackets, 0, 'nothing missed');
    assert.ok(imagesEqual(await decodeWasm(rebuilt.codestream), await decodeWasm(fixtureBytes('g128-default.j2k'))), 'decodes exactly');
  } finally {
    s.close();
    await sup.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
});

tls.run();
