import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { CacheModel, COMPLETE, binKey } from '../jpip/cache-model.js';
import { openFileSource } from '../jpeg2000/file-source.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { bufferSource, readInto, subSource } from '../jpeg2000/source.js';
import { parseRequest } from '../jpip/request.js';
import { BlockCache } from '../server/block-cache.js';
import { ImageRegistry } from '../server/images.js';
import { planRequest } from '../server/request-plan.js';
import { planResponse, windowPlanStats } from '../server/responder.js';
import { FIXTURES, catchError, fixturePath } from './helpers.js';

const test = suite('block cache');
const FILE = 'g256-irrev-8l-cb32.j2k';

/** A deterministic sequence of pieces over a file: small and large, across block edges. */
function pieces(size: number, count: number): [number, number][] {
  const out: [number, number][] = [];
  let x = 12345;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const pos = x % size;
    const len = Math.min(size - pos, i % 7 === 0 ? 5000 : x % 700);
    out.push([pos, len]);
  }
  return out;
}

test('reads through the cache equal the file, at every offset, across block edges and for the last partial block', () => {
  const bytes = readFileSync(fixturePath(FILE));
  const file = openFileSource(fixturePath(FILE));
  const cache = new BlockCache(1 << 20, 1024);
  const src = cache.wrap(file);
  try {
    for (const [pos, len] of [...pieces(bytes.length, 400), [0, bytes.length] as [number, number], [bytes.length - 1, 1] as [number, number], [1023, 2] as [number, number]]) {
      const out = new Uint8Array(len + 3);
      src.readInto(pos, len, out, 3);
      assert.equal(Buffer.from(out.subarray(3)), bytes.subarray(pos, pos + len), `piece ${pos}+${len}`);
      assert.equal(Buffer.from(src.read(pos, len)), bytes.subarray(pos, pos + len));
    }
    const s = cache.stats();
    assert.is(s.misses, Math.ceil(bytes.length / 1024), 'each block read from the file once');
    assert.ok(s.hits > s.misses);
    assert.is(s.bytes, bytes.length);
  } finally {
    file.close();
  }
});

test('stays within its budget, keeps blocks used since they were cached, and drops a closed file\'s blocks', () => {
  const file = openFileSource(fixturePath(FILE));
  const cache = new BlockCache(4 * 1024, 1024);
  const src = cache.wrap(file);
  const out = new Uint8Array(1024);
  try {
    src.readInto(0, 10, out, 0); // block 0
    for (let b = 1; b <= 3; b++) src.readInto(b * 1024, 10, out, 0);
    assert.is(cache.stats().bytes, 4096);
    src.readInto(5, 10, out, 0); // block 0 used again: it gets a second chance
    src.readInto(4 * 1024, 10, out, 0); // block 4: over budget, block 1 goes
    const s = cache.stats();
    assert.ok(s.bytes <= 4096, `bytes ${s.bytes}`);
    assert.is(s.evictions, 1);
    const misses = s.misses;
    src.readInto(7, 1, out, 0);
    assert.is(cache.stats().misses, misses, 'block 0 was kept');
    src.readInto(1024 + 7, 1, out, 0);
    assert.is(cache.stats().misses, misses + 1, 'block 1 was dropped');
    src.drop();
    assert.is(cache.stats().bytes, 0);
    assert.is(cache.stats().blocks, 0);
    // After drop it still reads, straight from the file.
    src.readInto(0, 4, out, 0);
    assert.is(cache.stats().blocks, 0);
    cache.setBudget(0);
  } finally {
    file.close();
  }
});

test('a zero budget reads the file directly; errors are the file\'s (TRUNCATED past the end), and a too-small buffer is a RangeError', () => {
  const file = openFileSource(fixturePath(FILE));
  try {
    const off = new BlockCache(0, 1024).wrap(file);
    const out = new Uint8Array(8);
    off.readInto(16, 8, out, 0);
    assert.equal(Buffer.from(out), readFileSync(fixturePath(FILE)).subarray(16, 24));
    const on = new BlockCache(1 << 16, 1024).wrap(file);
    for (const s of [off, on]) {
      const e = catchError(() => s.readInto(file.size - 2, 4, out, 0));
      assert.instance(e, J2kError);
      assert.is((e as J2kError).code, J2K_ERROR.TRUNCATED);
    }
    assert.instance(catchError(() => on.readInto(0, 16, out, 0)), RangeError);
    assert.instance(catchError(() => file.readInto(0, 16, out, 0)), RangeError);
    assert.instance(catchError(() => new BlockCache(1, 100)), RangeError);
  } finally {
    file.close();
  }
});

test('readInto works over buffers, sub-sources and sources that only have read()', () => {
  const bytes = new Uint8Array(64).map((_, i) => i);
  const plain = { size: 64, read: (p: number, l: number) => bytes.slice(p, p + l) };
  for (const src of [bufferSource(bytes), plain, subSource(plain, 8, 40), subSource(bufferSource(bytes), 8, 40)]) {
    const out = new Uint8Array(6);
    readInto(src, 2, 4, out, 1);
    const base = src.size === 40 ? 10 : 2;
    assert.equal([...out], [0, base, base + 1, base + 2, base + 3, 0]);
  }
  const e = catchError(() => readInto(subSource(plain, 8, 40), 38, 4, new Uint8Array(4), 0));
  assert.instance(e, J2kError);
});

/** One reply to `q` from a registry's FILE, as hex; with `commit`, the model takes its updates (as the server does). */
function reply(registry: ImageRegistry, q: string, model = new CacheModel(), commit = false): string {
  const entry = registry.open(FILE);
  const planned = planRequest(parseRequest(q), entry, { defaultLen: 1 << 20, maxLen: 1 << 24 });
  const parts: Buffer[] = [];
  for (const c of planResponse(entry, planned.input, model, { chunkSize: 4096 }).body()) {
    parts.push(Buffer.from(c.bytes));
    if (commit) for (const u of c.updates) model.add(u.codestream, u.classId, u.binId, u.held, u.held === COMPLETE);
  }
  return Buffer.concat(parts).toString('hex');
}

test('responses read through the cache are byte-identical to responses read from the files', () => {
  const queries = ['fsiz=256,256&len=100000', 'fsiz=128,128&roff=16,16&rsiz=64,64&len=3000', 'fsiz=64,64&layers=3'];
  const bodies = (blockCache: BlockCache | undefined): string[] => {
    const registry = new ImageRegistry({ root: FIXTURES, blockCache });
    try {
      return queries.map((q) => reply(registry, q));
    } finally {
      registry.closeAll();
    }
  };
  const cache = new BlockCache(1 << 20, 2048);
  assert.equal(bodies(cache), bodies(undefined));
  assert.ok(cache.stats().hits > 0);
  assert.is(cache.stats().bytes, 0, 'closing the registry dropped the blocks');
});

test('window plans are computed once per image version and view, reused after, and replies stay identical', () => {
  const registry = new ImageRegistry({ root: FIXTURES });
  try {
    const body = (q: string, model?: CacheModel): string => reply(registry, q, model);
    const q = 'fsiz=128,128&roff=8,8&rsiz=96,64&len=50000';
    const c0 = windowPlanStats.computed;
    const first = body(q);
    assert.is(windowPlanStats.computed, c0 + 1);
    const r0 = windowPlanStats.reused;
    assert.is(body(q), first, 'same reply from the reused plan');
    assert.is(windowPlanStats.computed, c0 + 1);
    assert.is(windowPlanStats.reused, r0 + 1);
    // Another region, or other components: another plan, another reply.
    assert.is.not(body('fsiz=64,64&len=50000'), first);
    assert.is(windowPlanStats.computed, c0 + 2);
    // A session that holds everything gets nothing but the EOR from the reused plan.
    const holder = new CacheModel();
    reply(registry, q, holder, true);
    assert.ok(body(q, holder).length / 2 < 8, 'only the EOR is sent again');
  } finally {
    registry.closeAll();
  }
});

test('cache-model keys pack into numbers, fall back to strings beyond the packed range, and entries() gives them back', () => {
  assert.type(binKey(3, 0, 12345), 'number');
  assert.type(binKey(2 ** 20, 0, 1), 'string');
  assert.type(binKey(0, 0, 2 ** 29), 'string');
  assert.is(binKey(0, 1, 5), binKey(0, 0, 5), 'extended precinct shares the precinct class');
  assert.is.not(binKey(1, 0, 5), binKey(0, 0, 5 * 2 ** 20 + 1));
  const m = new CacheModel();
  const bins: [number, number, number, number][] = [
    [0, 0, 0, 10],
    [7, 6, 2, COMPLETE],
    [2 ** 20 - 1, 2, 2 ** 29 - 1, 3],
    [2 ** 20, 0, 4, 5],
    [1, 0, 2 ** 40, 6],
    [0, 8, 0, COMPLETE],
  ];
  for (const [cs, cls, id, held] of bins) m.add(cs, cls, id, held, held === COMPLETE);
  const back = [...m.entries()].map((e) => [e.codestream, e.classId, e.binId, e.held]);
  assert.equal(back, bins);
  for (const [cs, cls, id, held] of bins) assert.is(m.held(cs, cls, id), held);
});

test.run();
