import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImageRegistry } from '../server/images.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import type { ThreadPool } from '../server/thread-pool.js';
import { FIXTURES } from './helpers.js';

/**
 * The index threads (indexThreads > 0) change where packet headers are parsed, and the assembly
 * threads (assemblyThreads > 0) where image bytes are read into responses, never what is sent:
 * every response is byte-identical to the one the main thread alone gives; a thread that dies is
 * replaced and its job is done on the main thread instead.
 */

const SMALL = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'small');

function images(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && /\.(j2k|jp2|jpx)$/.test(e.name)) out.push(relative(dir, join(e.parentPath, e.name)).split('\\').join('/'));
  }
  return out.sort();
}

const WINDOWS = [
  'fsiz=64,64,closest&len=1000000',
  'fsiz=4096,4096,closest&len=1000000',
  'fsiz=200,200,closest&roff=30,20&rsiz=60,50&len=1000000',
  'fsiz=128,128,closest&len=3000',
  'fsiz=1024,1024,closest&layers=1&len=1000000',
  'fsiz=512,512,closest&comps=0&type=jpt-stream&len=1000000',
];

interface Answer {
  status: number;
  headers: string;
  body: Buffer;
}

async function get(url: string): Promise<Answer & { cnew: string | undefined }> {
  const r = await fetch(url);
  const body = Buffer.from(await r.arrayBuffer());
  const headers = [...r.headers].filter(([k]) => k.startsWith('jpip-') && k !== 'jpip-cnew' && k !== 'jpip-tid').map(([k, v]) => `${k}: ${v}`).sort().join('\n');
  return { status: r.status, headers, body, cnew: r.headers.get('jpip-cnew') ?? undefined };
}

/** Every answer of a fixed script of requests: stateless windows, then one session's sequence. */
async function script(root: string, threads: number | { indexThreads?: number; assemblyThreads?: number; assemblyMinBytes?: number }): Promise<{ answers: Answer[]; server: JpipServer }> {
  const opts = typeof threads === 'number' ? { indexThreads: threads } : threads;
  const server = createJpipServer({ root, port: 0, ...opts, logLevel: 'error', log: () => {} });
  const base = await server.listen();
  const answers: Answer[] = [];
  try {
    for (const img of images(root)) {
      const target = `/${img.split('/').map(encodeURIComponent).join('/')}`;
      for (const w of WINDOWS) answers.push(await get(`${base}${target}?${w}`));
      // A session: each answer depends on what the earlier ones sent.
      const first = await get(`${base}${target}?cnew=http&type=jpp-stream&fsiz=64,64,closest&len=2000`);
      answers.push(first);
      if (first.status !== 200) continue; // a corrupt image opens no session
      const cid = /cid=([^,]+)/.exec(first.cnew ?? '')?.[1];
      assert.ok(cid, `${img}: a session opened`);
      for (const w of ['fsiz=64,64,closest&len=5000', 'fsiz=256,256,closest&len=20000', 'fsiz=256,256,closest&roff=10,10&rsiz=100,100&len=1000000']) {
        answers.push(await get(`${base}/jpip?cid=${cid}&${w}`));
      }
    }
    return { answers, server };
  } finally {
    await server.close();
  }
}

function compare(a: Answer[], b: Answer[], what: string): void {
  assert.is(a.length, b.length);
  a.forEach((x, i) => {
    const y = b[i]!;
    assert.is(y.status, x.status, `${what} #${i}: status`);
    assert.is(y.headers, x.headers, `${what} #${i}: JPIP headers`);
    assert.ok(y.body.equals(x.body), `${what} #${i}: ${x.body.length} bytes in-thread, ${y.body.length} threaded, not identical`);
  });
}

test('threaded indexing gives byte-identical answers over the test fixtures', async () => {
  const plain = await script(FIXTURES, 0);
  const threaded = await script(FIXTURES, 2);
  compare(plain.answers, threaded.answers, 'test/fixtures');
  assert.ok(plain.answers.some((a) => a.status === 200 && a.body.length > 100));
  // Most fixtures have no PLT: their tiles were indexed on the threads, none failed.
  assert.ok(threaded.server.indexPool!.tilesIndexed > 20, `tiles indexed on threads: ${threaded.server.indexPool!.tilesIndexed}`);
  assert.is(threaded.server.indexPool!.failures, 0);
  assert.is(plain.server.indexPool, undefined);
  const text = await threaded.server.metrics.text();
  assert.is(Number(/jpip_index_thread_tiles_total (\d+)/.exec(text)?.[1]), threaded.server.indexPool!.tilesIndexed, 'tiles in /metrics');
  assert.match(text, /jpip_index_thread_failures_total 0\n/);
  assert.match(text, /jpip_index_thread_restarts_total 0\n/);
});

test('threaded indexing gives byte-identical answers over fixtures/small', async () => {
  compare((await script(SMALL, 0)).answers, (await script(SMALL, 1)).answers, 'fixtures/small');
});

test('assembly threads give byte-identical answers over the test fixtures and fixtures/small', async () => {
  const plain = await script(FIXTURES, 0);
  const threaded = await script(FIXTURES, { assemblyThreads: 2, assemblyMinBytes: 0 });
  compare(plain.answers, threaded.answers, 'test/fixtures');
  const pool = threaded.server.assemblyPool!;
  assert.ok(pool.chunks > 100, `chunks filled on threads: ${pool.chunks}`);
  assert.ok(pool.preads < pool.chunks * 4, `neighbouring pieces are read together: ${pool.preads} reads for ${pool.chunks} chunks`);
  assert.is(pool.failures, 0);
  assert.is(plain.server.assemblyPool, undefined);
  const text = await threaded.server.metrics.text();
  assert.is(Number(/jpip_assembly_thread_chunks_total (\d+)/.exec(text)?.[1]), pool.chunks, 'chunks in /metrics');
  assert.is(Number(/jpip_assembly_thread_bytes_total (\d+)/.exec(text)?.[1]), pool.bytes, 'bytes in /metrics');
  assert.match(text, /jpip_assembly_thread_failures_total 0\n/);
  // Both kinds of threads at once, and the default threshold (small chunks stay on the main thread).
  compare((await script(SMALL, 0)).answers, (await script(SMALL, { indexThreads: 1, assemblyThreads: 1 })).answers, 'fixtures/small');
});

/**
 * Kills the only thread of a pool while a response's job waits behind a stalled one: the answer
 * of a server without threads first (the reference), then the same request to a server with
 * `opts`, queued behind a stalled job on its one thread, which is then killed.
 */
async function killUnderJob(
  root: string,
  opts: { indexThreads?: number; assemblyThreads?: number; assemblyMinBytes?: number },
  poolOf: (s: JpipServer) => Pick<ThreadPool<never, never>, 'threadIds' | 'busy' | 'restarts' | 'kill' | 'stall'>,
  check: (r: { server: JpipServer; base: string; expected: Answer; got: Answer; before: number }) => Promise<void>,
): Promise<void> {
  const q = '?fsiz=256,256&len=100000';
  const ref = createJpipServer({ root, port: 0, logLevel: 'error', log: () => {} });
  const expected = await get(`${await ref.listen()}/a.j2k${q}`);
  await ref.close();
  const server = createJpipServer({ root, port: 0, ...opts, logLevel: 'error', log: () => {} });
  const base = await server.listen();
  const pool = poolOf(server);
  try {
    const before = pool.threadIds[0]!;
    // Keep the only thread busy, queue the response's job behind it, then kill the thread.
    const stalled = pool.stall(10_000);
    const answer = get(`${base}/a.j2k${q}`);
    while (pool.busy < 2) await new Promise((r) => setTimeout(r, 5));
    await pool.kill(0);
    assert.is(await stalled, undefined);
    const got = await answer;
    assert.is(got.status, 200);
    assert.ok(got.body.equals(expected.body), 'the answer is the in-thread one');
    assert.is(pool.restarts, 1);
    assert.is.not(pool.threadIds[0], before);
    await check({ server, base, expected, got, before });
  } finally {
    await server.close();
  }
}

test('a thread that dies is replaced; the response it was indexing for is indexed in-thread, identically', async () => {
  const root = mkdtempSync(join(tmpdir(), 'jpip-threads-'));
  try {
    copyFileSync(join(FIXTURES, 'g256-irrev-8l-cb32.j2k'), join(root, 'a.j2k'));
    copyFileSync(join(FIXTURES, 'g256-irrev-8l-cb32.j2k'), join(root, 'b.j2k'));
    await killUnderJob(root, { indexThreads: 1 }, (s) => s.indexPool!, async ({ server, base, expected }) => {
      const pool = server.indexPool!;
      assert.is(pool.failures, 1);
      assert.is(pool.tilesIndexed, 0);
      // The new thread works.
      const again = await get(`${base}/b.j2k?fsiz=256,256&len=100000`);
      assert.ok(again.body.equals(expected.body));
      assert.is(pool.tilesIndexed, 1);
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an assembly thread that dies under a chunk is replaced; the main thread reads that chunk, identically', async () => {
  const root = mkdtempSync(join(tmpdir(), 'jpip-threads-'));
  try {
    copyFileSync(join(FIXTURES, 'g256-irrev-8l-cb32.j2k'), join(root, 'a.j2k'));
    await killUnderJob(root, { assemblyThreads: 1, assemblyMinBytes: 0 }, (s) => s.assemblyPool!, async ({ server, base }) => {
      const pool = server.assemblyPool!;
      assert.is(pool.failures, 1);
      // The new thread works.
      const chunks = pool.chunks;
      const again = await get(`${base}/a.j2k?fsiz=255,255&len=100000`);
      assert.is(again.status, 200);
      assert.ok(pool.chunks > chunks, 'the new thread filled chunks');
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a file cut short on disk while open: the same answer with and without assembly threads', async () => {
  const answers: Answer[][] = [];
  for (const threads of [0, 1]) {
    const root = mkdtempSync(join(tmpdir(), 'jpip-threads-'));
    try {
      const file = join(root, 'a.j2k');
      copyFileSync(join(FIXTURES, 'g256-irrev-8l-cb32.j2k'), file);
      // The open file is trusted (no recheck) and read directly (no block cache): the cut shows as a short read.
      const server = createJpipServer({ root, port: 0, assemblyThreads: threads, assemblyMinBytes: 0, fileRecheckSeconds: 3600, blockCacheBytes: 0, logLevel: 'error', log: () => {} });
      const base = await server.listen();
      try {
        const got: Answer[] = [await get(`${base}/a.j2k?fsiz=16,16,closest&len=300`)];
        truncateSync(file, Math.floor(statSync(file).size * 0.6));
        got.push(await get(`${base}/a.j2k?fsiz=256,256&len=1000000`).catch(() => ({ status: -1, headers: 'cut', body: Buffer.alloc(0) })));
        answers.push(got);
        if (threads) assert.ok(server.assemblyPool!.failures > 0, 'the thread could not read it');
      } finally {
        await server.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  assert.is(answers[0]![0]!.status, 200);
  assert.is(answers[0]![1]!.status, 500, 'the short read is a 500 before any byte of the body');
  compare(answers[0]!, answers[1]!, 'cut file');
});

test('a corrupt image without PLT gets the same answer with and without threads', async () => {
  const root = mkdtempSync(join(tmpdir(), 'jpip-threads-'));
  try {
    const bytes = readFileSync(join(FIXTURES, 'g256-irrev-8l-cb32.j2k'));
    // Keep the headers, scramble the packet data: packet-header parsing fails or runs off the tile-part.
    const bad = Buffer.from(bytes);
    for (let i = Math.floor(bad.length / 3); i < bad.length - 2; i++) bad[i] = 0xff;
    writeFileSync(join(root, 'bad.j2k'), bad);
    const a = await script(root, 0);
    const b = await script(root, 1);
    compare(a.answers, b.answers, 'corrupt');
    assert.ok(a.answers.some((x) => x.status === 500), 'the corrupt image is a 500');
    assert.ok(b.server.indexPool!.failures > 0, 'the thread could not index it either');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an image just opened is never closed by its own eviction while every other image is in use', () => {
  // Found by the cold bench with index threads: responses waiting for their index kept every
  // other image in use, and the registry closed the image it had just opened (EBADF, 500).
  const root = mkdtempSync(join(tmpdir(), 'jpip-threads-'));
  try {
    for (const n of ['a', 'b', 'c']) copyFileSync(join(FIXTURES, 'g128-default.j2k'), join(root, `${n}.j2k`));
    const reg = new ImageRegistry({ root, maxOpen: 1 });
    const a = reg.open('a.j2k');
    reg.acquire(a);
    const b = reg.open('b.j2k');
    assert.is(b.closed, false);
    assert.ok(b.image.source.read(0, 2).length === 2, 'its file is readable');
    reg.acquire(b);
    reg.release(a);
    assert.is(a.closed, true, 'the budget holds again once a is released');
    reg.release(b);
    reg.closeAll();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
