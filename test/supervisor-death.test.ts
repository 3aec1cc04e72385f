import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { validateConfig } from '../server/config.js';
import { createLogger } from '../server/log.js';
import { Supervisor, type WorkerDeath, type WorkerReady } from '../server/supervisor.js';
import { FIXTURES } from './helpers.js';

/**
 * Every way the supervisor handles a worker's death, made deterministic by a
 * stand-in worker (test/supervisor-fake-worker.ts) that dies at chosen points
 * of a response: a response cut in the middle (reset), one whose data was all
 * written and journaled but not its last chunk (the supervisor sends it), one
 * whose last chunk was sent too (harmless), and an idle connection (kept, on
 * the same TCP connection, by the next worker).
 */
const death = suite('supervisor: what happens to connections when the worker dies');
let scratch = '';
let sup: Supervisor;
let port = 0;
const deaths: WorkerDeath[] = [];

death.before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'jpip-death-'));
  const config = validateConfig([{ root: FIXTURES, port: 0, stateDir: join(scratch, 'state'), logLevel: 'error' }]);
  sup = new Supervisor({
    config,
    logger: createLogger({ level: 'error', sink: () => {} }),
    workerModule: join(dirname(fileURLToPath(import.meta.url)), 'supervisor-fake-worker.ts'),
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_V8_COVERAGE: join(scratch, 'coverage') },
  });
  sup.on('worker-exit', (d: WorkerDeath) => deaths.push(d));
  port = Number(new URL(await sup.start()).port);
});

death.after(async () => {
  await sup.drain();
  rmSync(scratch, { recursive: true, force: true });
});

interface Outcome {
  data: string;
  how: 'end' | 'reset' | 'timeout';
  ms: number;
}

/** Sends a request and reads until the connection ends or resets. */
function untilClosed(socket: Socket, path: string, timeoutMs = 5000): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let data = '';
    let how: Outcome['how'] | undefined;
    const done = (h: Outcome['how']): void => {
      how ??= h;
      resolve({ data, how, ms: Date.now() - t0 });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNRESET' ? 'reset' : 'end'));
    socket.on('close', () => done('end'));
    setTimeout(() => {
      socket.destroy();
      done('timeout');
    }, timeoutMs).unref();
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

/** Sends a request and reads one whole chunked response. */
function oneResponse(socket: Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (d: Buffer): void => {
      data += d.toString('latin1');
      if (data.endsWith('\r\n0\r\n\r\n')) {
        socket.off('data', onData);
        resolve(data);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

function open(): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
  });
}

function nextReady(): Promise<WorkerReady> {
  return new Promise((resolve) => sup.once('worker-ready', resolve));
}

const body = (http: string): string => http.slice(http.indexOf('\r\n\r\n') + 4);

death('a response cut in the middle: the connection is reset at once, and a new worker serves', async () => {
  const ready = nextReady();
  const s = await open();
  const r = await untilClosed(s, '/cut');
  assert.is(r.how, 'reset', `reset, not a hang: ${JSON.stringify(r)}`);
  assert.ok(r.ms < 2000, `failed ${r.ms} ms after the request`);
  assert.ok(!body(r.data).includes('0\r\n\r\n'), 'the body stays incomplete');
  const info = await ready;
  assert.is(deaths.at(-1)!.reset, 1);
  assert.ok(info.restartMs !== undefined && info.restartMs < 3000);
  const next = await open();
  assert.match(await oneResponse(next, '/ok'), /hello/);
  next.destroy();
});

death('a response whose data was journaled (SENT): the supervisor sends its last chunk and closes', async () => {
  const ready = nextReady();
  const s = await open();
  const r = await untilClosed(s, '/sent');
  assert.is(r.how, 'end', JSON.stringify(r));
  assert.is(body(r.data), '5\r\nhello\r\n0\r\n\r\n', 'a complete chunked body');
  await ready;
  assert.is(deaths.at(-1)!.completed, 1);
  assert.is(deaths.at(-1)!.reset, 0);
});

death('a response sent whole but still flagged: a second last chunk is harmless, the connection closes', async () => {
  const ready = nextReady();
  const s = await open();
  const r = await untilClosed(s, '/sent-all');
  assert.is(r.how, 'end', JSON.stringify(r));
  assert.ok(body(r.data).startsWith('5\r\nhello\r\n0\r\n\r\n'), 'the response is whole');
  await ready;
  assert.is(deaths.at(-1)!.completed, 1);
});

death('an idle connection is handed to the next worker: same TCP connection, new worker', async () => {
  const s = await open();
  const first = await oneResponse(s, '/pid');
  const pidBefore = Number(body(first).split('\r\n')[1]);
  await oneResponse(s, '/ok-then-die');
  const info = await nextReady();
  const second = await oneResponse(s, '/pid');
  const pidAfter = Number(body(second).split('\r\n')[1]);
  assert.is.not(pidAfter, pidBefore);
  assert.is(pidAfter, info.pid);
  assert.ok(deaths.at(-1)!.kept >= 1);
  assert.ok(sup.restarts >= 4);
  s.destroy();
});

death.run();
