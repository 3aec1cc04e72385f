import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { ServerResponse } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ImageIndex, type ImageIndexOptions } from '../jpeg2000/index-cache.js';
import { validateConfig } from '../server/config.js';
import { InflightFlags } from '../server/flags.js';
import type { FromWorker, ToWorker } from '../server/ipc.js';
import { WorkerHost, type WorkerChannel } from '../server/worker.js';
import { FIXTURES } from './helpers.js';

/**
 * The worker side of the supervisor protocol, in-process (a worker process
 * killed with -9 writes no coverage): a fake channel stands for the IPC
 * channel, and real sockets, accepted paused as the supervisor does, are
 * handed in as the `conn` messages' handles.
 */
const worker = suite('worker protocol, in-process');
let dir = '';
let listener: Server;
let accepted: Socket[] = [];

worker.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jpip-worker-'));
  listener = createServer({ pauseOnConnect: true }, (s) => accepted.push(s));
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
});
worker.after(() => {
  listener.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Fake {
  channel: WorkerChannel;
  sent: FromWorker[];
  deliver: (msg: ToWorker, handle?: Socket) => void;
  disconnect: () => void;
  exited: Promise<number>;
}

function fakeChannel(): Fake {
  const sent: FromWorker[] = [];
  let onMessage: ((msg: ToWorker, handle: Socket | undefined) => void) | undefined;
  let onDisconnect: (() => void) | undefined;
  let exit!: (code: number) => void;
  const exited = new Promise<number>((r) => (exit = r));
  return {
    channel: {
      send: (m, done) => {
        sent.push(m);
        done?.();
      },
      onMessage: (fn) => (onMessage = fn),
      onDisconnect: (fn) => (onDisconnect = fn),
      exit: (code) => exit(code),
    },
    sent,
    deliver: (msg, handle) => onMessage!(msg, handle),
    disconnect: () => onDisconnect!(),
    exited,
  };
}

/** A client connection, and the paused server-side socket the "supervisor" accepted for it. */
async function pair(): Promise<{ client: Socket; server: Socket }> {
  accepted = [];
  const port = (listener.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  client.on('error', () => {});
  client.resume();
  await new Promise((r) => client.once('connect', r));
  while (accepted.length === 0) await new Promise((r) => setTimeout(r, 2));
  return { client, server: accepted[0]! };
}

function exchange(client: Socket, path: string): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const onData = (d: Buffer): void => {
      data += d.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      const len = /Content-Length: (\d+)/i.exec(data);
      if (end >= 0 && len && data.length >= end + 4 + Number(len[1])) {
        client.off('data', onData);
        resolve(data);
      }
    };
    client.on('data', onData);
    client.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

worker('init, connections handed in, close reports batched, reload, stats, drain', async () => {
  const fake = fakeChannel();
  const logs: Record<string, unknown>[] = [];
  const host = new WorkerHost(fake.channel, { logSink: (e) => logs.push(e) });
  const flagsFile = join(dir, 'flags');
  const flags = new InflightFlags(flagsFile, 'create');
  // A connection before init is refused (closed).
  const early = await pair();
  fake.deliver({ t: 'conn', id: 1, slot: 0, inherited: false }, early.server);
  await new Promise((r) => early.client.once('close', r));

  const config = validateConfig([{ root: FIXTURES, port: 0, stateDir: join(dir, 'state'), logLevel: 'info' }]);
  fake.deliver({ t: 'init', config: { ...config }, flagsFile, restarts: 3, rejected: 2 });
  assert.equal(fake.sent[0], { t: 'ready', pid: process.pid, sessions: 0, replayMs: fake.sent[0]!.t === 'ready' ? fake.sent[0]!.replayMs : 0, torn: false });

  const a = await pair();
  const b = await pair();
  fake.deliver({ t: 'conn', id: 10, slot: 4, inherited: false }, a.server);
  fake.deliver({ t: 'conn', id: 11, slot: 5, inherited: false }, b.server);
  const health = await exchange(a.client, '/health');
  assert.match(health, /^HTTP\/1\.1 200 OK/);
  assert.match(health, /"connections":2/);
  assert.equal([...flags.pending()], [], 'no request in flight once answered');
  const metrics = await exchange(b.client, '/metrics');
  assert.match(metrics, /jpip_worker_restarts_total 3\n/);
  assert.match(metrics, /jpip_connections_rejected_total 2\n/);
  fake.deliver({ t: 'stats', restarts: 4, rejected: 2 });
  assert.match(await host.server!.metrics.text(), /jpip_worker_restarts_total 4\n/);

  // Both clients leave in the same turn: one report.
  a.client.destroy();
  b.client.destroy();
  await new Promise((r) => setTimeout(r, 30));
  const closed = fake.sent.filter((m) => m.t === 'closed');
  assert.is(closed.length, 1, 'one report');
  assert.equal((closed[0] as { ids: number[] }).ids.sort(), [10, 11]);

  fake.deliver({ t: 'config', config: { ...config, maxSessions: 3, logLevel: 'debug' } });
  assert.is(host.server!.config.maxSessions, 3);
  assert.is(host.server!.logger.level, 'debug');
  assert.ok(logs.some((e) => e['event'] === 'reconfigured'));

  const c = await pair();
  fake.deliver({ t: 'conn', id: 12, slot: 6, inherited: false }, c.server);
  const cClosed = new Promise((r) => c.client.once('close', r));
  fake.deliver({ t: 'drain' });
  assert.is(await fake.exited, 0);
  await cClosed;
  assert.ok(fake.sent.some((m) => m.t === 'drained'));
  assert.not.ok(fake.sent.some((m) => m.t === 'closed' && m.ids.includes(12)), 'no reports once stopping');
  flags.close();
});

worker('a worker that cannot start says why and exits 1', async () => {
  const fake = fakeChannel();
  new WorkerHost(fake.channel, { logSink: () => {} });
  const config = validateConfig([{ root: join(dir, 'no-such-root'), port: 0 }]);
  fake.deliver({ t: 'init', config: { ...config }, flagsFile: join(dir, 'flags2'), restarts: 0, rejected: 0 });
  assert.is(await fake.exited, 1);
  assert.is(fake.sent[0]!.t, 'fatal');
  assert.match((fake.sent[0] as { message: string }).message, /ENOENT|no such file/);
});

worker('when the supervisor goes away, the worker finishes and exits 0', async () => {
  const fake = fakeChannel();
  new WorkerHost(fake.channel, { logSink: () => {} });
  const flags = new InflightFlags(join(dir, 'flags3'), 'create');
  fake.deliver({ t: 'init', config: { ...validateConfig([{ root: FIXTURES, port: 0 }]) }, flagsFile: flags.path, restarts: 0, rejected: 0 });
  fake.disconnect();
  fake.disconnect();
  assert.is(await fake.exited, 0);
  assert.not.ok(fake.sent.some((m) => m.t === 'drained'), 'nobody to tell');
  flags.close();
});

worker('a connection inherited from a dead worker may stay idle as keep-alive allows; a new one that sends nothing is cut', async () => {
  const fake = fakeChannel();
  const host = new WorkerHost(fake.channel, { logSink: () => {} });
  const flags = new InflightFlags(join(dir, 'flags-idle'), 'create');
  const config = validateConfig([{ root: FIXTURES, port: 0, stateDir: join(dir, 'state-idle'), logLevel: 'error', headersTimeoutSeconds: 1, keepAliveSeconds: 30 }]);
  fake.deliver({ t: 'init', config: { ...config }, flagsFile: join(dir, 'flags-idle'), restarts: 1, rejected: 0 });
  const fresh = await pair();
  fake.deliver({ t: 'conn', id: 20, slot: 1, inherited: false }, fresh.server);
  const old = await pair();
  fake.deliver({ t: 'conn', id: 21, slot: 2, inherited: true }, old.server);
  let freshClosedAt = 0;
  fresh.client.once('close', () => (freshClosedAt = Date.now()));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 1600));
  assert.ok(freshClosedAt > 0 && freshClosedAt - t0 < 1500, 'the silent new connection was cut after headersTimeoutSeconds');
  assert.not.ok(old.client.destroyed, 'the inherited connection is still open');
  assert.match(await exchange(old.client, '/health'), /^HTTP\/1\.1 200 OK/);
  old.client.destroy();
  fake.deliver({ t: 'drain' });
  assert.is(await fake.exited, 0);
  flags.close();
});

/** One GET over a raw socket; resolves with the status line, the headers and the chunked body decoded. */
function chunkedExchange(client: Socket, path: string): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      data = Buffer.concat([data, d]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.subarray(0, end).toString('latin1');
      if (!/transfer-encoding: chunked/i.test(head)) return reject(new Error(`not chunked: ${head}`));
      const parts: Buffer[] = [];
      let pos = end + 4;
      for (;;) {
        const nl = data.indexOf('\r\n', pos);
        if (nl < 0) return;
        const n = parseInt(data.subarray(pos, nl).toString('latin1'), 16);
        if (data.length < nl + 2 + n + 2) return;
        if (n === 0) break;
        parts.push(data.subarray(nl + 2, nl + 2 + n));
        pos = nl + 2 + n + 2;
      }
      client.off('data', onData);
      resolve({ head, body: Buffer.concat(parts) });
    };
    client.on('data', onData);
    client.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

worker('in-flight flags: set before any slow step of a request; a bare EOR of a held window writes none; the same request after a change is flagged before it is handled', async () => {
  const calls: [number, number][] = [];
  const set = InflightFlags.prototype.set;
  InflightFlags.prototype.set = function (this: InflightFlags, slot: number, seq: number): void {
    calls.push([slot, seq]);
    set.call(this, slot, seq);
  };
  // What the flags file says for the slot when each response's status line is written and when an
  // image is indexed (a slow step: a worker killed there must leave the connection flagged).
  const SLOT = 9;
  let flags: InflightFlags | undefined;
  const atHead: (number | undefined)[] = [];
  const atOpen: (number | undefined)[] = [];
  const writeHead = ServerResponse.prototype.writeHead;
  ServerResponse.prototype.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (flags) atHead.push(flags.pending().get(SLOT));
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof writeHead;
  const open = ImageIndex.open;
  ImageIndex.open = (path: string, opts?: ImageIndexOptions): ImageIndex => {
    if (flags) atOpen.push(flags.pending().get(SLOT));
    return open.call(ImageIndex, path, opts);
  };
  try {
    const root = join(dir, 'root-flags');
    mkdirSync(root);
    copyFileSync(join(FIXTURES, 'g128-default.j2k'), join(root, 'img.j2k'));
    const fake = fakeChannel();
    new WorkerHost(fake.channel, { logSink: () => {} });
    const flagsFile = join(dir, 'flags-eor');
    flags = new InflightFlags(flagsFile, 'create');
    const config = validateConfig([{ root, port: 0, stateDir: join(dir, 'state-eor'), logLevel: 'error', fileRecheckSeconds: 2 }]);
    fake.deliver({ t: 'init', config: { ...config }, flagsFile, restarts: 0, rejected: 0 });
    const c = await pair();
    fake.deliver({ t: 'conn', id: 30, slot: SLOT, inherited: false }, c.server);
    const window = 'fsiz=64,64&type=jpp-stream';
    const mine = (): number[] => calls.filter(([slot]) => slot === SLOT).map(([, seq]) => seq);

    const first = await chunkedExchange(c.client, `/img.j2k?${window}&cnew=http`);
    assert.match(first.head, /^HTTP\/1\.1 200 OK/);
    const cid = /cid=([^,\r]+)/.exec(first.head)![1]!;
    assert.ok(first.body.length > 100);
    assert.equal(first.body.subarray(-3), Buffer.from([0, 2, 0]), 'the window is done (EOR 2)');
    const [seq1] = mine();
    assert.ok(seq1! > 0);
    assert.equal(atOpen, [seq1], 'flagged while the image was opened and indexed');
    assert.equal(atHead, [seq1]);

    // The same window again: the session holds it all, the answer is the EOR alone. The first time
    // its plan is made (a slow step: flagged); then, its file checked a moment ago and its plan
    // kept, no flag is written.
    const repeat = `/jpip?cid=${cid}&${window}`;
    for (let i = 0; i < 3; i++) {
      const again = await chunkedExchange(c.client, repeat);
      assert.match(again.head, /^HTTP\/1\.1 200 OK/);
      assert.equal([...again.body], [0, 2, 0]);
    }
    const seqs = mine();
    assert.is(seqs.length, 4, `set and cleared for the first two requests only: ${seqs.join(',')}`);
    assert.ok(seqs[1] === 0 && seqs[2]! > seq1! && seqs[3] === 0, seqs.join(','));
    assert.equal(atHead, [seq1, seqs[2], undefined, undefined], 'the bare EORs of a kept plan were not flagged');

    // The file changes on disk: the same URL is no bare EOR any more. Flagged before the file is
    // checked, opened and indexed again, and while its answer is produced.
    copyFileSync(join(FIXTURES, 'g128-lrcp-tpl-4l.j2k'), join(root, 'img.j2k'));
    await new Promise((r) => setTimeout(r, 2100));
    const changed = await chunkedExchange(c.client, repeat);
    assert.match(changed.head, /^HTTP\/1\.1 200 OK/);
    assert.ok(changed.body.length > 100, 'the new file is sent');
    const seq5 = mine()[4];
    assert.ok(seq5! > seqs[2]!, mine().join(','));
    assert.equal(atOpen, [seq1, seq5], 'flagged while the changed file was indexed');
    assert.is(atHead.at(-1), seq5);
    assert.equal([...flags.pending()], [], 'nothing flagged once answered');
    c.client.destroy();
    fake.deliver({ t: 'drain' });
    assert.is(await fake.exited, 0);
    flags.close();
  } finally {
    ImageIndex.open = open;
    ServerResponse.prototype.writeHead = writeHead;
    InflightFlags.prototype.set = set;
  }
});

worker.run();
