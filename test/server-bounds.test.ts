import { copyFileSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EOR } from '../jpip/constants.js';
import { decodeWasm, imagesEqual } from '../client-sim/decode.js';
import { createJpipServer, type JpipServer, type ServerOptions } from '../server/server.js';
import { FIXTURES } from './helpers.js';
import { KeepAliveSession, movieFrames, writeBigMovie } from './supervisor-client.js';

/**
 * The bounds of one server process, in-process (no supervisor): connections
 * (503 + Retry-After), slow clients (headers sent byte by byte, a body that
 * never comes, a connection that says nothing, a client that does not read),
 * open image files and index memory, and that slow clients do not starve
 * the others.
 */
const bounds = suite('server bounds');
let root = '';
const IMAGES = ['g128-default.j2k', 'g200x150-t64-lrcp.j2k', 'g256-irrev-8l-cb32.j2k', 'rgb128-poc.j2k', 'g64-n1-cb32-prec32.j2k', 'g97x61-odd-t32-rpcl.j2k'];
const BIG = 'big.jpx';
const servers: JpipServer[] = [];

bounds.before(() => {
  root = mkdtempSync(join(tmpdir(), 'jpip-bounds-'));
  for (const f of IMAGES) copyFileSync(join(FIXTURES, f), join(root, f));
  writeBigMovie(join(root, BIG), 2500);
});
bounds.after(() => rmSync(root, { recursive: true, force: true }));
bounds.after.each(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(opts: Partial<ServerOptions> = {}): Promise<{ srv: JpipServer; base: string; port: number; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const srv = createJpipServer({ root, port: 0, log: (e) => logs.push(e), ...opts });
  servers.push(srv);
  const base = await srv.listen();
  return { srv, base, port: Number(new URL(base).port), logs };
}

function rawExchange(port: number, text: string | undefined, timeoutMs = 5000): Promise<{ data: string; ms: number; closed: boolean }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      if (text !== undefined) s.write(text);
    });
    let data = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (data += d));
    s.on('error', () => {});
    s.on('close', () => resolve({ data, ms: Date.now() - t0, closed: true }));
    setTimeout(() => {
      s.destroy();
      resolve({ data, ms: Date.now() - t0, closed: false });
    }, timeoutMs).unref();
  });
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => {});
    s.resume(); // read (and drop) what comes, to see the server's close
  });
}

/** Descriptors of this process open on files of the image root. */
function imageFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(root)) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

bounds('over maxConnections a connection gets 503 with Retry-After and is closed, never left hanging', async () => {
  const { srv, port, base } = await start({ maxConnections: 2, retryAfterSeconds: 3 });
  const held = [await openSocket(port), await openSocket(port)];
  await sleep(20);
  const r = await rawExchange(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.ok(r.closed, 'closed by the server');
  assert.match(r.data, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.match(r.data, /\r\nRetry-After: 3\r\n/);
  assert.match(r.data, /JPIP_ERR_BUSY/);
  for (const s of held) s.destroy();
  await sleep(20);
  assert.is((await fetch(`${base}/health`)).status, 200, 'served again once below the limit');
  assert.match(await srv.metrics.text(), /jpip_connections_rejected_total 1\n/);
});

bounds('over maxSessions a new session gets 503 with Retry-After', async () => {
  const { base } = await start({ maxSessions: 1, retryAfterSeconds: 4 });
  assert.is((await fetch(`${base}/${IMAGES[0]}?cnew=http&len=10`)).status, 200);
  const r = await fetch(`${base}/${IMAGES[0]}?cnew=http&len=10`);
  assert.is(r.status, 503);
  assert.is(r.headers.get('retry-after'), '4');
  assert.match(await r.text(), /JPIP_ERR_BUSY: cnew: session limit \(1\) reached/);
});

bounds('slowloris: headers sent byte by byte are cut (408) after headersTimeoutSeconds, and others are served meanwhile', async () => {
  const { port, base, logs } = await start({ headersTimeoutSeconds: 0.4, requestTimeoutSeconds: 0.8 });
  const t0 = Date.now();
  const slow = new Promise<{ data: string; ms: number }>((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (data += d));
    s.on('error', () => {});
    const text = 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
    let i = 0;
    const timer = setInterval(() => {
      if (s.writable && i < text.length) s.write(text[i++]!);
    }, 20);
    s.on('close', () => {
      clearInterval(timer);
      resolve({ data, ms: Date.now() - t0 });
    });
  });
  // Others are served while the slow client trickles.
  const latencies: number[] = [];
  while (Date.now() - t0 < 300) {
    const t = Date.now();
    assert.is((await fetch(`${base}/${IMAGES[0]}?fsiz=64,64&len=2000`)).status, 200);
    latencies.push(Date.now() - t);
  }
  const r = await slow;
  assert.match(r.data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.ok(r.ms >= 350 && r.ms < 1500, `cut after ${r.ms} ms`);
  assert.ok(Math.max(...latencies) < 250, `others were served in ${Math.max(...latencies)} ms at most`);
  assert.ok(logs.some((e) => e['event'] === 'client-error' && e['status'] === 408));
});

bounds('a body that never comes is cut after requestTimeoutSeconds; a silent connection after headersTimeoutSeconds', async () => {
  const { port } = await start({ headersTimeoutSeconds: 0.3, requestTimeoutSeconds: 0.6 });
  const body = await rawExchange(port, 'POST /jpip HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ntarget=', 3000);
  assert.ok(body.closed, 'closed');
  assert.match(body.data, /^HTTP\/1\.1 408 /);
  assert.ok(body.ms >= 550 && body.ms < 2000, `cut after ${body.ms} ms`);
  const silent = await rawExchange(port, undefined, 3000);
  assert.ok(silent.closed, 'a connection that sends nothing is closed');
  assert.ok(silent.ms >= 250 && silent.ms < 2000, `closed after ${silent.ms} ms`);
});

bounds('an idle keep-alive connection is closed after keepAliveSeconds', async () => {
  const { port } = await start({ keepAliveSeconds: 1 });
  const s = await openSocket(port);
  const t0 = Date.now();
  s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  const closedAt = await new Promise<number>((resolve) => s.on('close', () => resolve(Date.now())));
  assert.ok(closedAt - t0 >= 900 && closedAt - t0 < 3500, `closed after ${closedAt - t0} ms`);
});

bounds('a client that does not read does not starve the others, and its response is cut after sendStallSeconds', async () => {
  const { srv, base } = await start({ sendStallSeconds: 0.5 });
  const slow = new KeepAliveSession(base);
  let paused: IncomingMessage | undefined;
  const stalled = slow
    .request({ cnew: ['http'], stream: [{ from: 0, to: 2499, step: 1 }], len: 64 * 1024 * 1024 }, BIG, {
      pauseBody: (res) => {
        res.pause();
        paused = res;
      },
    })
    .then(
      () => 'completed',
      (e: Error) => e.message,
    );
  while (!paused) await sleep(5);
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) assert.is((await fetch(`${base}/${IMAGES[i % IMAGES.length]}?fsiz=64,64&len=5000`)).status, 200);
  const othersMs = Date.now() - t0;
  assert.ok(othersMs < 400, `20 other requests took ${othersMs} ms while one client did not read`);
  await sleep(700);
  paused.resume();
  assert.not.equal(await stalled, 'completed', 'the stalled response was cut');
  assert.match(await srv.metrics.text(), /jpip_responses_cut_total\{why="stall"\} 1\n/);
  assert.is(srv.activeResponses, 0);
  slow.close();
});

bounds('file-descriptor budget: at most maxOpenFiles images stay open, never one a response is reading', async () => {
  const { srv, base } = await start({ maxOpenFiles: 2, sendStallSeconds: 30 });
  const slow = new KeepAliveSession(base);
  let paused: IncomingMessage | undefined;
  const stalled = slow.request({ cnew: ['http'], stream: [{ from: 0, to: 2499, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 64 * 1024 * 1024 }, BIG, {
    pauseBody: (res) => {
      res.pause();
      paused = res;
    },
  });
  while (!paused) await sleep(5);
  for (const f of IMAGES) {
    assert.is((await fetch(`${base}/${f}?fsiz=32,32&len=3000`)).status, 200);
    assert.ok(srv.registry.openFiles <= 2, `${srv.registry.openFiles} images open`);
  }
  assert.ok(srv.registry.evictions >= IMAGES.length - 1, 'least recently used images were closed');
  assert.ok(imageFds() <= 2, `${imageFds()} descriptors of image files open`);
  paused.resume();
  const r = await stalled;
  assert.is(r.status, 200);
  assert.is(r.eor, EOR.IMAGE_DONE, 'the image being read was never closed under the response');
  const frames = movieFrames();
  for (const k of [0, 1, 2, 2499]) {
    const got = await decodeWasm(slow.jc.reassemble(k).codestream);
    assert.ok(imagesEqual(got, await decodeWasm(frames[k % 3]!)), `frame ${k} decodes exactly`);
  }
  slow.close();
});

bounds('every ended response lets go of its images and its session, whether its end went out with its last bytes or after them', async () => {
  const { srv, base } = await start({ maxOpenFiles: 64 });
  const stateDir = mkdtempSync(join(tmpdir(), 'jpip-bounds-journal-'));
  const journaled = await start({ maxOpenFiles: 64, stateDir });
  try {
    for (const b of [base, journaled.base]) {
      for (const f of IMAGES.slice(0, 4)) {
        for (const close of [false, true]) {
          const headers = close ? { connection: 'close' } : undefined;
          assert.is((await fetch(`${b}/${f}?fsiz=32,32&len=3000`, { headers }).then((r) => r.arrayBuffer())).byteLength > 0, true);
          const r = await fetch(`${b}/${f}?fsiz=64,64&len=5000&cnew=http`, { headers });
          await r.arrayBuffer();
          const cid = /cid=([^,]+)/.exec(r.headers.get('JPIP-cnew') ?? '')![1]!;
          // The session holds what it was sent: asking again sends nothing new (EOR only).
          const res2 = await fetch(`${b}/${f}?fsiz=64,64&len=5000&cid=${cid}`, { headers });
          const again = new Uint8Array((await res2.arrayBuffer()) as ArrayBuffer);
          assert.ok(again.length < 16, `${f}: ${again.length} bytes sent again`);
        }
      }
    }
    await sleep(50);
    for (const s of [srv, journaled.srv]) {
      for (const sess of s.sessions.all()) assert.is(sess.active, 0, 'no session is left busy');
      // Images in use would stay open: with a budget of none, every image closes.
      s.reconfigure({ ...s.config, maxOpenFiles: 1, indexCacheBytes: 0 } as typeof s.config);
      assert.is(s.registry.openFiles, 0, 'no image is left in use');
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});

bounds('index memory budget: least recently used indexes are dropped to stay under indexCacheBytes', async () => {
  const budget = 16_000; // two or three of these images (3.6 to 8.7 KB of index each)
  const { srv, base } = await start({ indexCacheBytes: budget });
  const sizes: number[] = [];
  for (const f of IMAGES) {
    assert.is((await fetch(`${base}/${f}?len=100000`)).status, 200);
    sizes.push(srv.registry.bytes);
    assert.ok(srv.registry.bytes <= budget, `${srv.registry.bytes} bytes of index after ${f}`);
  }
  assert.ok(srv.registry.evictions > 0, 'images were dropped');
  assert.ok(srv.registry.openCount < IMAGES.length);
  const text = await srv.metrics.text();
  const bytes = Number(/jpip_index_cache_bytes (\d+)/.exec(text)![1]);
  assert.ok(bytes > 0 && bytes <= budget, `metric ${bytes}`);
  // A config reload can tighten the budget at once.
  srv.reconfigure({ ...srv.config, indexCacheBytes: 0 } as typeof srv.config);
  assert.is(srv.registry.bytes, 0);
  assert.is(srv.registry.openCount, 0);
});

bounds('/metrics (Prometheus text) answers loopback clients only unless metricsAllowRemote; /health reports', async () => {
  const { base, srv } = await start();
  await fetch(`${base}/${IMAGES[0]}?cnew=http&fsiz=64,64&len=500`).then((r) => r.arrayBuffer());
  await fetch(`${base}/nothing.j2k?len=5`).then((r) => r.arrayBuffer());
  const m = await fetch(`${base}/metrics`);
  assert.is(m.status, 200);
  assert.match(m.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  const text = await m.text();
  for (const name of [
    'jpip_connections',
    'jpip_connections_total',
    'jpip_sessions 1',
    'jpip_responses_total{status="200"}',
    'jpip_responses_total{status="404"} 1',
    'jpip_response_body_bytes_total',
    'jpip_eor_total{reason="4"} 1',
    'jpip_request_duration_seconds_bucket',
    'jpip_worker_restarts_total 0',
    'jpip_index_cache_entries 1',
    'jpip_index_cache_bytes',
    'jpip_open_image_files 1',
    'jpip_block_cache_bytes',
    'jpip_block_cache_misses_total',
    'process_resident_memory_bytes',
  ]) {
    assert.ok(text.includes(name), `${name} in /metrics`);
  }
  // The duration histogram: cumulative buckets, +Inf and _count equal to the responses counted.
  const responses = [...text.matchAll(/^jpip_responses_total\{status="\d+"\} (\d+)$/gm)].reduce((n, x) => n + Number(x[1]), 0);
  assert.is(responses, 2);
  const buckets = [...text.matchAll(/^jpip_request_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((x) => [x[1], Number(x[2])] as const);
  assert.is(buckets.length, 15);
  assert.equal(buckets.at(-1), ['+Inf', 2]);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]![1] >= buckets[i - 1]![1], 'cumulative');
  assert.match(text, /^jpip_request_duration_seconds_count 2$/m);
  assert.ok(Number(/^jpip_request_duration_seconds_sum (\S+)$/m.exec(text)![1]) > 0);
  assert.is(text.match(/^# TYPE jpip_request_duration_seconds histogram$/gm)?.length, 1);
  // The response's bytes came through the block cache: blocks were read, pieces served from them.
  assert.ok(Number(/jpip_block_cache_hits_total (\d+)/.exec(text)![1]) > 0, 'block cache hits');
  assert.ok(Number(/jpip_block_cache_bytes (\d+)/.exec(text)![1]) > 0, 'block cache bytes');
  assert.not.ok(text.includes('jpip_index_thread_tiles_total'), 'no index-thread metrics without index threads');
  const health = await fetch(`${base}/health`);
  assert.is(health.status, 200);
  const h = (await health.json()) as Record<string, unknown>;
  assert.is(h['ok'], true);
  assert.is(h['pid'], process.pid);
  assert.is(h['sessions'], 1);
  srv.metrics.supervisorCounts(2, 5);
  srv.metrics.supervisorCounts(1, 5);
  assert.match(await srv.metrics.text(), /jpip_worker_restarts_total 2\n/);
  // A client on another address of this machine is not on the loopback.
  const other = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  if (!other) {
    console.log('  [bounds] no non-loopback IPv4 address: the remote /metrics check is skipped');
    return;
  }
  const outside = await start({ host: '0.0.0.0' });
  const remote = await fetch(`http://${other.address}:${outside.port}/metrics`);
  assert.is(remote.status, 403);
  assert.is((await fetch(`http://${other.address}:${outside.port}/health`)).status, 200, '/health is for everyone');
  const open = await start({ host: '0.0.0.0', metricsAllowRemote: true });
  assert.is((await fetch(`http://${other.address}:${open.port}/metrics`)).status, 200);
});

bounds('one log line per request: request id, cid, target, status, bytes, EOR reason, duration', async () => {
  const { base, logs } = await start({ logLevel: 'error' });
  const r = await fetch(`${base}/${IMAGES[0]}?cnew=http&fsiz=64,64&len=700`);
  const cid = /cid=([^,]+)/.exec(r.headers.get('jpip-cnew')!)![1];
  const n = (await r.arrayBuffer()).byteLength;
  await fetch(`${base}/jpip?cid=${cid}&len=3`).then((x) => x.arrayBuffer());
  await fetch(`${base}/jpip?cid=nope&len=3`).then((x) => x.arrayBuffer());
  const lines = logs.filter((e) => e['event'] === 'request');
  assert.is(lines.length, 3);
  const [a, b, c] = lines as Record<string, unknown>[];
  assert.match(String(a!['reqId']), /^[0-9a-z]+-[0-9a-z]+$/);
  assert.is.not(a!['reqId'], b!['reqId']);
  assert.is(a!['cid'], cid);
  assert.is(a!['target'], IMAGES[0]);
  assert.is(a!['status'], 200);
  assert.is(a!['bytes'], n);
  assert.is(a!['eor'], EOR.BYTE_LIMIT_REACHED);
  assert.type(a!['ms'], 'number');
  assert.is(a!['level'], 30);
  assert.is(b!['cid'], cid);
  assert.is(c!['status'], 404);
  assert.is(c!['eor'], undefined);
});

bounds('drain: responses in flight finish, new requests are refused, sessions close', async () => {
  const { srv, base, port } = await start();
  const slow = new KeepAliveSession(base);
  let paused: IncomingMessage | undefined;
  const inFlight = slow.request({ cnew: ['http'], stream: [{ from: 0, to: 2499, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 64 * 1024 * 1024 }, BIG, {
    pauseBody: (res) => {
      res.pause();
      paused = res;
    },
  });
  while (!paused) await sleep(5);
  const idle = await openSocket(port);
  const idleClosed = new Promise<void>((r) => idle.on('close', () => r()));
  const drained = srv.drain();
  await idleClosed;
  const health = await rawExchange(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', 1000);
  assert.is(health.data, '', 'the listener is closed');
  paused.resume();
  const r = await inFlight;
  assert.is(r.status, 200);
  assert.is(r.eor, EOR.IMAGE_DONE);
  await drained;
  assert.is(srv.sessions.size, 0);
  assert.is(srv.connectionCount, 0);
  slow.close();
});

bounds.run();
