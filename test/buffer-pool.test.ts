import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BufferPool } from '../server/buffer-pool.js';
import { createJpipServer } from '../server/server.js';
import { FIXTURES } from './helpers.js';

const test = suite('buffer pool');

test('hands out power-of-two buffers of at least the size asked, takes back only whole pooled-size buffers, within its budget', () => {
  const pool = new BufferPool(8 * 65536);
  const a = pool.get(20_000);
  assert.is(a.length, 32768);
  assert.is(pool.get(10).length, 4096);
  pool.put(a);
  assert.is(pool.bytes, 32768);
  assert.is(pool.get(17_000), a, 'the same buffer comes back');
  assert.is(pool.reused, 1);
  pool.put(a.subarray(0, 16384)); // a view: not taken
  pool.put(new Uint8Array(5000)); // not a pooled size: not taken
  assert.is(pool.bytes, 0);
  // Each size keeps at most budget/8 bytes: here one 64 KiB buffer.
  pool.put(pool.get(65536));
  pool.put(Buffer.allocUnsafeSlow(65536));
  assert.is(pool.bytes, 65536);
});

test('shared buffers: on SharedArrayBuffers up to their budget, ordinary ones beyond, always taken back', () => {
  const pool = new BufferPool(8 * 65536, { sharedBytes: 3 * 65536 });
  const got = [pool.get(65536), pool.get(40_000), pool.get(65536)];
  for (const b of got) assert.ok(b.buffer instanceof SharedArrayBuffer, 'within the budget: shared');
  assert.is(pool.shared, 3 * 65536);
  const beyond = pool.get(65536);
  assert.not.ok(beyond.buffer instanceof SharedArrayBuffer, 'beyond the budget: an ordinary buffer');
  // Given back: all kept, beyond the per-size cap of ordinary buffers (64 KiB here).
  for (const b of got) pool.put(b);
  assert.is(pool.bytes, 0, 'shared buffers are not counted with the ordinary free ones');
  assert.is(pool.get(65536).buffer instanceof SharedArrayBuffer, true, 'and handed out again');
  assert.is(pool.shared, 3 * 65536, 'no new shared buffer was made');
  // A shared buffer the pool did not make, or one given back twice, is not taken.
  pool.put(Buffer.from(new SharedArrayBuffer(65536)));
  pool.put(got[1]!);
  pool.put(got[1]!);
  const again = [pool.get(65536), pool.get(65536), pool.get(65536)];
  assert.is(new Set(again).size, 3, 'no buffer handed out twice');
  assert.not.ok(again[2]!.buffer instanceof SharedArrayBuffer, 'the budget is spent: ordinary');
});

test('a busy server reuses its reply buffers, and replies stay byte-identical', async () => {
  // Without the response cache: these stateless requests would be answered with one kept body.
  const srv = createJpipServer({ root: FIXTURES, port: 0, responseCacheBytes: 0 });
  const base = await srv.listen();
  try {
    const url = `${base}/g256-irrev-8l-cb32.j2k?fsiz=256,256&len=100000`;
    const first = Buffer.from(await (await fetch(url)).arrayBuffer());
    for (let i = 0; i < 20; i++) {
      const again = Buffer.from(await (await fetch(url)).arrayBuffer());
      assert.ok(again.equals(first), `reply ${i} identical`);
    }
    assert.ok(srv.buffers.reused >= 15, `reused ${srv.buffers.reused}, allocated ${srv.buffers.allocated}`);
    assert.ok(srv.buffers.allocated <= 5, `allocated ${srv.buffers.allocated}`);
  } finally {
    await srv.close();
  }
});

test.run();
