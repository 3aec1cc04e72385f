import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createJpipServer } from '../server/server.js';
import { startWarmUp } from '../server/warmup.js';
import { FIXTURES } from './helpers.js';

/**
 * The warm-up of a fresh worker (config warmUp): it runs the response path over the shipped small
 * frames in slices, cleans up after itself, stops with the server, and changes no answer.
 */
const w = suite('warm-up');
const leftovers = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith('jpip-warmup-'));

w('runs its rounds over the shipped frames, in slices, and removes its cache directory', async () => {
  const before = new Set(leftovers());
  const warm = startWarmUp(3);
  assert.ok(warm.running);
  // Slices: the event loop turns while it runs.
  let turns = 0;
  const ticker = setInterval(() => turns++, 0);
  const r = await warm.done;
  clearInterval(ticker);
  assert.is(r.rounds, 3);
  assert.ok(r.ms > 0);
  assert.not.ok(warm.running);
  assert.ok(turns > 3, `the loop turned ${turns} times meanwhile`);
  assert.equal(leftovers().filter((f) => !before.has(f)), [], 'its temporary cache directory is gone');
});

w('stops when asked (the server closes)', async () => {
  const warm = startWarmUp(1000);
  warm.stop();
  const r = await warm.done;
  assert.ok(r.rounds < 1000);
});

w('a server warming up answers at once, the same bytes, and says so in /health', async () => {
  const plain = createJpipServer({ root: FIXTURES, port: 0, logLevel: 'error', log: () => {} });
  const warming = createJpipServer({ root: FIXTURES, port: 0, warmUp: true, logLevel: 'error', log: () => {} });
  const a = await plain.listen();
  const b = await warming.listen();
  try {
    const health = (await (await fetch(`${b}/health`)).json()) as { warmingUp: boolean };
    assert.is(health.warmingUp, true);
    const q = '/g256-irrev-8l-cb32.j2k?fsiz=256,256&len=100000';
    const t0 = performance.now();
    const got = Buffer.from(await (await fetch(`${b}${q}`)).arrayBuffer());
    assert.ok(performance.now() - t0 < 1000, 'answered while warming up');
    assert.ok(got.equals(Buffer.from(await (await fetch(`${a}${q}`)).arrayBuffer())), 'the same bytes');
    const until = Date.now() + 10_000;
    while (((await (await fetch(`${b}/health`)).json()) as { warmingUp: boolean }).warmingUp && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.is(((await (await fetch(`${b}/health`)).json()) as { warmingUp: boolean }).warmingUp, false, 'done within 10 s');
    assert.is(((await (await fetch(`${a}/health`)).json()) as { warmingUp: boolean }).warmingUp, false, 'off by default');
  } finally {
    await plain.close();
    await warming.close();
  }
});

w.run();
