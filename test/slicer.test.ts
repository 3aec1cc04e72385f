import { stat } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Slicer } from '../server/slicer.js';
import { fixturePath } from './helpers.js';

const test = suite('slicer: short event-loop turns');

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('within its slice a turn goes on; past it, the work waits until the loop has polled (I/O that completed meanwhile runs first)', async () => {
  const slicer = new Slicer(5);
  await new Promise((r) => setImmediate(r));
  assert.is(slicer.pause(), undefined, 'fresh turn: go on');
  let ioDone = false;
  stat(fixturePath('g256-irrev-8l-cb32.j2k'), () => {
    ioDone = true;
  });
  busy(30); // the stat completes in the thread pool meanwhile; its callback waits for a poll
  const wait = slicer.pause();
  assert.ok(wait instanceof Promise, 'the slice is used up');
  assert.is(ioDone, false);
  await wait;
  assert.is(ioDone, true, 'the loop polled before the work went on');
  assert.is(slicer.pauses, 1);
  // A new turn has a new slice.
  assert.is(slicer.pause(), undefined);
});

test.run();
