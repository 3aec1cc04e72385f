import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EOR } from '../jpip/constants.js';
import { decodeWasm, imagesEqual } from '../client-sim/decode.js';
import { validateConfig } from '../server/config.js';
import { createLogger } from '../server/log.js';
import { Supervisor, type WorkerDeath } from '../server/supervisor.js';
import { FIXTURES, fixtureBytes } from './helpers.js';
import { KeepAliveSession } from './supervisor-client.js';

/**
 * workerAccepts: the worker accepts on the listening socket the supervisor keeps (no hand-off per
 * connection); a connection goes into the supervisor's safekeeping once it has had a response, so
 * it survives the worker's death as before; the listening socket (and its backlog) outlives the
 * worker; connections that never had a response are the worker's alone.
 */
const t = suite('supervisor: the worker accepts (workerAccepts)');
let scratch = '';
let sup: Supervisor;
let base = '';
const deaths: WorkerDeath[] = [];

t.before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'jpip-accepts-'));
  const config = validateConfig([{ root: FIXTURES, port: 0, stateDir: join(scratch, 'state'), logLevel: 'error', workerAccepts: true, headersTimeoutSeconds: 3 }]);
  sup = new Supervisor({ config, logger: createLogger({ level: 'error', sink: () => {} }), env: { ...process.env, NODE_V8_COVERAGE: join(scratch, 'coverage') } });
  sup.on('worker-exit', (d: WorkerDeath) => deaths.push(d));
  base = await sup.start();
});

t.after(async () => {
  await sup.drain();
  rmSync(scratch, { recursive: true, force: true });
});

/** One request on its own connection (Connection: close). */
function once(path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
    });
    req.on('error', reject);
    req.end();
  });
}

const FRAME = { fsiz: { fx: 128, fy: 128, round: 'round-down' as const }, len: 700 };

t('new connections are the worker\'s; one that has had a response is taken into safekeeping; a worker killed with -9 loses none of those, and the backlog waits for the next worker', async () => {
  // Connections that close after their response never reach the supervisor.
  for (let i = 0; i < 5; i++) assert.is((await once('/g128-default.j2k?fsiz=64,64&len=2000')).status, 200);
  await new Promise((r) => setTimeout(r, 100));
  assert.is(sup.heldConnections, 0, 'no connection was handed over or kept');
  // The worker accepts on several descriptors of the one listening socket (one accept per descriptor per turn).
  if (existsSync(`/proc/${sup.workerPid}/fd`)) {
    const inodes = new Map<string, number>();
    for (const fd of readdirSync(`/proc/${sup.workerPid}/fd`)) {
      try {
        const link = readlinkSync(`/proc/${sup.workerPid}/fd/${fd}`);
        if (link.startsWith('socket:')) inodes.set(link, (inodes.get(link) ?? 0) + 1);
      } catch {
        /* closed meanwhile */
      }
    }
    assert.ok(Math.max(...inodes.values()) >= 8, `descriptors of the listening socket in the worker: ${JSON.stringify([...inodes.values()])}`);
  }

  // A keep-alive session: after its first response the supervisor holds its connection.
  const s = new KeepAliveSession(base);
  const first = await s.request({ cnew: ['http'], ...FRAME }, 'g128-default.j2k');
  assert.is(first.status, 200);
  const until = Date.now() + 3000;
  while (sup.heldConnections < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assert.is(sup.heldConnections, 1, 'kept after its first response');
  const second = await s.request(FRAME);
  assert.is(second.localPort, first.localPort);

  // Kill the worker; connect while there is none: the connection waits in the backlog.
  const ready = new Promise<void>((r) => sup.once('worker-ready', () => r()));
  const victim = sup.workerPid!;
  process.kill(victim, 'SIGKILL');
  while (deaths.length === 0) await new Promise((r) => setTimeout(r, 5));
  const early = connect(Number(new URL(base).port), '127.0.0.1');
  let earlyAnswer = '';
  early.setEncoding('latin1');
  early.on('data', (d: string) => (earlyAnswer += d));
  early.on('error', () => {});
  early.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await ready;
  assert.is(deaths[0]!.kept, 1, 'the kept connection goes to the next worker');
  const untilEarly = Date.now() + 5000;
  while (!earlyAnswer.includes('"ok"') && Date.now() < untilEarly) await new Promise((r) => setTimeout(r, 10));
  assert.match(earlyAnswer, /^HTTP\/1\.1 200/, 'a connection made while no worker ran is answered by the next');
  early.destroy();

  // The session goes on over the same TCP connection, nothing twice, nothing missed.
  let done = false;
  for (let round = 0; round < 100 && !done; round++) {
    const r = await s.request(FRAME);
    assert.is(r.status, 200, r.text);
    assert.is(r.localPort, first.localPort, 'the same TCP connection');
    done = r.eor === EOR.WINDOW_DONE || r.eor === EOR.IMAGE_DONE;
  }
  assert.ok(done);
  assert.is(s.connects, 1);
  assert.equal(s.duplicates(), []);
  const rebuilt = s.jc.reassemble(0);
  assert.is(rebuilt.emptyPackets, 0);
  assert.ok(imagesEqual(await decodeWasm(rebuilt.codestream), await decodeWasm(fixtureBytes('g128-default.j2k'))));
  s.close();

  // New connections are accepted by the new worker.
  assert.is((await once('/g128-default.j2k?fsiz=32,32&len=500')).status, 200);
});

t('a drain closes the listening socket the supervisor kept, and the worker\'s', async () => {
  const port = Number(new URL(base).port);
  await sup.drain();
  const refused = await new Promise<string>((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve('connected');
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  assert.is(refused, 'ECONNREFUSED');
});

t.run();
