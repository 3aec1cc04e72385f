import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCrowd } from '../client-sim/crowd.js';
import { decodeHistogram, encodeHistogram, newLatencyHistogram, recordMs, summarizeLatency } from '../client-sim/measure.js';
import { MergeError, mergeCrowdResults } from '../client-sim/merge.js';
import type { CrowdResult } from '../client-sim/results.js';
import { register as registerReport } from '../bin/commands/report.js';
import { FIXTURES, runCommand } from './helpers.js';

/**
 * Crowd results of several load-generator processes merged into one (`report --merge`): counts
 * summed, latency histograms added, so that the merged percentiles are those of the pooled
 * samples; timelines on one clock; settings that disagree refused.
 */
const m = suite('merging crowd results of several load generators');
const SHORT = { root: join(FIXTURES, 'movie'), clients: 2, every: 0.5, duration: 0.8, sessionLength: 0.6, woi: { w: 128, h: 128 }, level: 0, framesPerQuery: 2, tickMs: 250 } as const;
let a: CrowdResult;
let b: CrowdResult;
let tmp = '';

m.before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'jpip-merge-'));
  // Two real runs (one after the other: their clocks differ by about a second).
  a = await runCrowd({ ...SHORT });
  b = await runCrowd({ ...SHORT, clients: 3 });
});
m.after(() => rmSync(tmp, { recursive: true, force: true }));

/** Deterministic pseudo-random latencies (ms), skewed like a crowd's. */
function samples(n: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const u = x / 2 ** 31;
    return 1 + 400 * u ** 4 + (u > 0.97 ? 3000 * u : 0);
  });
}

function withSamples(r: CrowdResult, ms: number[]): CrowdResult {
  const h = newLatencyHistogram();
  for (const v of ms) recordMs(h, v);
  return { ...r, latencyHistogram: encodeHistogram(h), latencyMs: summarizeLatency(h) };
}

/** The exact percentile of raw samples (nearest rank, as HdrHistogram reports). */
function exactPercentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

m('two real runs: counts, errors and EOR reasons are summed; the timeline adds up to the totals', () => {
  const r = mergeCrowdResults([a, b], ['a.json', 'b.json']);
  assert.is(r.totals.clients, a.totals.clients + b.totals.clients);
  assert.is(r.totals.requests, a.totals.requests + b.totals.requests);
  assert.is(r.totals.responses, a.totals.responses + b.totals.responses);
  assert.is(r.totals.bytes, a.totals.bytes + b.totals.bytes);
  assert.is(r.totals.sessionsOpened, a.totals.sessionsOpened + b.totals.sessionsOpened);
  assert.is(r.errors.total, a.errors.total + b.errors.total);
  for (const k of new Set([...Object.keys(a.eor), ...Object.keys(b.eor)])) assert.is(r.eor[k], (a.eor[k] ?? 0) + (b.eor[k] ?? 0), `EOR ${k}`);
  assert.is(r.latencyMs.count, a.latencyMs.count + b.latencyMs.count);
  assert.is(r.settings.clients, a.settings.clients + b.settings.clients);
  assert.is(r.timeline.reduce((n, t) => n + t.responses, 0), a.timeline.reduce((n, t) => n + t.responses, 0) + b.timeline.reduce((n, t) => n + t.responses, 0));
  assert.is(r.timeline.at(-1)!.totalResponses, r.timeline.reduce((n, t) => n + t.responses, 0));
  // b started after a ended: the merged run spans both.
  assert.ok(r.elapsedSeconds >= a.elapsedSeconds + b.elapsedSeconds - 0.05, `elapsed ${r.elapsedSeconds}`);
  assert.is(r.rates.responsesPerSecond, Math.round((r.totals.responses / r.elapsedSeconds) * 10) / 10);
  assert.equal(r.mergedFrom!.map((p) => p.source), ['a.json', 'b.json']);
  assert.is(r.startedAt, a.startedAt);
});

m('the merged percentiles are those of the pooled samples', () => {
  const sa = samples(5000, 7);
  const sb = samples(3000, 99).map((v) => v * 3);
  const r = mergeCrowdResults([withSamples(a, sa), withSamples(b, sb)]);
  const pooled = newLatencyHistogram();
  for (const v of [...sa, ...sb]) recordMs(pooled, v);
  // As a histogram of the pooled samples written to a file (where the extremes are kept to their
  // bucket only: the merged summary has the parts' exact ones).
  const written = summarizeLatency(decodeHistogram(encodeHistogram(pooled)));
  assert.equal(r.latencyMs, { ...written, min: summarizeLatency(pooled).min, max: summarizeLatency(pooled).max }, 'identical to a histogram of the pooled samples');
  assert.equal(summarizeLatency(decodeHistogram(r.latencyHistogram)), written, 'the merged histogram is written');
  // And within the histograms' precision (3 significant digits) of the exact pooled percentiles.
  const sorted = [...sa, ...sb].sort((x, y) => x - y);
  for (const [p, key] of [[50, 'p50'], [90, 'p90'], [99, 'p99'], [99.9, 'p999']] as const) {
    const exact = exactPercentile(sorted, p);
    assert.ok(Math.abs(r.latencyMs[key] - exact) <= exact * 0.001 + 0.001, `p${p}: merged ${r.latencyMs[key]} ms, pooled exactly ${exact} ms`);
  }
  // Not the average of the parts' percentiles.
  assert.is.not(r.latencyMs.p99, (withSamples(a, sa).latencyMs.p99 + withSamples(b, sb).latencyMs.p99) / 2);
});

m('results of different runs are refused', () => {
  try {
    mergeCrowdResults([a, { ...b, settings: { ...b.settings, len: b.settings.len + 1 } }], ['a.json', 'b.json']);
    assert.unreachable('merged different settings');
  } catch (e) {
    assert.instance(e, MergeError);
    assert.match((e as Error).message, /b\.json: settings\.len/);
  }
  assert.throws(() => mergeCrowdResults([]), /nothing to merge/);
});

m('jpip-bench report --merge writes the merged result and a page from it', async () => {
  writeFileSync(join(tmp, 'a.json'), JSON.stringify(a));
  writeFileSync(join(tmp, 'b.json'), JSON.stringify(b));
  const dir = join(tmp, 'report');
  const ok = await runCommand(registerReport, ['report', '--merge', join(tmp, 'a.json'), join(tmp, 'b.json'), '--out', dir]);
  assert.is(ok.err, '');
  assert.is(ok.code, 0);
  assert.match(ok.out, /merged 2 crowd results/);
  const merged = JSON.parse(readFileSync(join(dir, 'crowd-merged.json'), 'utf8')) as CrowdResult;
  assert.is(merged.totals.responses, a.totals.responses + b.totals.responses);
  assert.is(merged.mergedFrom!.length, 2);
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  assert.ok(html.includes(merged.totals.responses.toLocaleString('en-US')) || html.includes(String(merged.totals.responses)), 'the page shows the merged count');

  // Labels merge per label; different settings are one clear line, exit code 1.
  const c = { ...b, settings: { ...b.settings, level: 1 } };
  writeFileSync(join(tmp, 'c.json'), JSON.stringify(c));
  const bad = await runCommand(registerReport, ['report', '--merge', `x=${join(tmp, 'a.json')}`, `x=${join(tmp, 'c.json')}`, '--out', dir]);
  assert.match(bad.err, /cannot merge x: .*settings\.level/);
  assert.is(bad.code, 1);
});

m.run();
