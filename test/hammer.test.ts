import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import yargs from 'yargs';
import { defaultWindows, parseWindow, randomWindows, runHammer, windowPath } from '../client-sim/hammer.js';
import type { MovieInfo } from '../client-sim/patterns.js';
import { HAMMER_SCHEMA, formatHammerSummary, type HammerResult } from '../client-sim/results.js';
import { hammerOptionsFromArgs, register as registerHammer, type HammerArgs } from '../bin/commands/hammer.js';
import type { CliIo } from '../bin/io.js';
import { createJpipServer } from '../server/server.js';
import { FIXTURES } from './helpers.js';

const t = suite('hammer: autocannon against the server');
const MOVIE_ROOT = join(FIXTURES, 'movie');
const MOVIE: MovieInfo = { target: 'linked.jpx', frames: 3, sizes: [{ width: 128, height: 128 }, { width: 64, height: 64 }, { width: 32, height: 32 }, { width: 16, height: 16 }] };

t('a one-second run against the embedded server: requests answered, no errors, the result filled in', async () => {
  const r = await runHammer({ root: MOVIE_ROOT, duration: 1, connections: 2 });
  assert.is(r.schema, HAMMER_SCHEMA);
  assert.ok(r.totals.responses > 10, `${r.totals.responses} responses`);
  assert.is(r.totals.errors, 0);
  assert.is(r.totals.non2xx, 0);
  assert.is(r.statusCodes['200'], r.totals.responses);
  assert.ok(r.totals.bytes > 1000 * r.totals.responses, 'bodies carry whole windows (stateless)');
  assert.ok(r.rates.requestsPerSecond > 0 && r.rates.bytesPerSecond > 0);
  assert.is(r.settings.target, 'linked.jpx');
  assert.is(r.settings.windows.length, 7);
  assert.ok(r.target.embedded && r.server?.sameProcessAsSimulator);
  assert.ok(r.latencyMs.max >= r.latencyMs.p50);
  const text = formatHammerSummary(r);
  assert.match(text, /jpip-bench hammer: no errors/);
  assert.match(text, /2 connections, 1 s, 7 windows/);
});

t('a given window list, random windows (seeded), against a running server', async () => {
  const srv = createJpipServer({ root: MOVIE_ROOT, port: 0 });
  const url = await srv.listen();
  try {
    const one = await runHammer({ server: url, target: 'linked.jpx', windows: ['stream=2&fsiz=64,64'], duration: 0.5, connections: 1, serverPid: process.pid });
    assert.equal(one.settings.windows, ['/linked.jpx?type=jpp-stream&stream=2&fsiz=64,64,round-down&len=2097152']);
    assert.ok(one.totals.responses > 0 && one.totals.errors === 0);
    assert.not.ok(one.target.embedded);
    assert.ok(one.server?.available);
    const rnd = await runHammer({ server: url, target: 'linked.jpx', windows: 'random', randomCount: 5, seed: 3, duration: 0.5, connections: 1 });
    assert.is(rnd.settings.windows.length, 5);
    assert.is(rnd.totals.non2xx, 0, JSON.stringify(rnd.statusCodes));
  } finally {
    await srv.close();
  }
});

t('windows: defaults, seeded random ones inside the frame, fragments checked by the request parser', () => {
  const d = defaultWindows(MOVIE);
  assert.is(d.length, 7);
  assert.equal(d[1]!.fsiz, { fx: 64, fy: 64, round: 'closest' });
  const a = randomWindows(MOVIE, 20, 9);
  assert.equal(a, randomWindows(MOVIE, 20, 9));
  assert.not.equal(a, randomWindows(MOVIE, 20, 10));
  for (const w of a) {
    assert.ok(w.roff!.x + w.rsiz!.w <= w.fsiz!.fx && w.roff!.y + w.rsiz!.h <= w.fsiz!.fy);
    assert.ok(w.stream![0]!.from < MOVIE.frames);
  }
  assert.equal(parseWindow('fsiz=10,10&roff=1,2&rsiz=3,4'), { fsiz: { fx: 10, fy: 10, round: 'round-down' }, roff: { x: 1, y: 2 }, rsiz: { w: 3, h: 4 } });
  assert.throws(() => parseWindow('fsiz=abc'), /fsiz/);
  assert.throws(() => parseWindow('fsiz=1,1&foo=2'), /not JPIP fields: foo/);
  assert.throws(() => parseWindow('cid=C1&fsiz=1,1'), /stateless/);
  assert.is(windowPath('a b/c.jpx', { fsiz: { fx: 1, fy: 1, round: 'closest' } }, 5), '/a%20b/c.jpx?type=jpp-stream&fsiz=1,1,closest&len=5');
});

t('jpip-bench hammer: summary, --json and --csv; bad options are clear', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'jpip-hammer-'));
  try {
    let out = '';
    let err = '';
    const io: CliIo = { out: (s) => void (out += `${s}\n`), err: (s) => void (err += `${s}\n`), tty: false };
    const run = (args: string[]): Promise<unknown> =>
      registerHammer(yargs(), io)
        .strict()
        .exitProcess(false)
        .fail((m, e) => {
          throw e ?? new Error(m);
        })
        .parseAsync(args);
    await run(['hammer', '--root', MOVIE_ROOT, '--duration', '0.5', '--connections', '1', '--json', join(tmp, 'h.json'), '--csv', join(tmp, 'h.csv')]);
    assert.match(out, /jpip-bench hammer: no errors/);
    assert.match(err, /wrote .*h\.json/);
    assert.is((JSON.parse(readFileSync(join(tmp, 'h.json'), 'utf8')) as HammerResult).schema, HAMMER_SCHEMA);
    assert.match(readFileSync(join(tmp, 'h.csv'), 'utf8'), /^schema,schema_version,tool_version,/);
    let e: unknown;
    try {
      await run(['hammer', '--root', MOVIE_ROOT, '--connections', '0']);
    } catch (x) {
      e = x;
    }
    assert.match(String((e as Error).message), /connections/);
    assert.is((e as { code?: string }).code, 'JPIP_BENCH_ERR_RUN');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const args: HammerArgs = { 'random-count': 4, seed: 2, connections: 3, duration: 2, len: 10, timeout: 1, windows: ['random'] };
  assert.is(hammerOptionsFromArgs(args).windows, 'random');
  assert.equal(hammerOptionsFromArgs({ ...args, windows: ['fsiz=1,1'] }).windows, ['fsiz=1,1']);
});

t.run();
