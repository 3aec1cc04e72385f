import { spawn } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ProcSampler, clockTicksPerSecond, decodeHistogram, encodeHistogram, newLatencyHistogram, readProc, readSelf, recordMs, summarizeLatency } from '../client-sim/measure.js';
import { packageRoot, runEnvironment } from '../client-sim/results.js';

const t = suite('crowd: measurement (HDR histograms, /proc sampling, run environment)');
const HAVE_PROC = readProc(process.pid) !== undefined;

t('latency histograms: percentiles in ms, coordinated-omission correction, interchange encoding', () => {
  const h = newLatencyHistogram();
  assert.equal(summarizeLatency(h), { count: 0, min: 0, mean: 0, stddev: 0, p50: 0, p75: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 });
  for (let i = 1; i <= 100; i++) recordMs(h, i);
  const s = summarizeLatency(h);
  assert.is(s.count, 100);
  assert.ok(Math.abs(s.p50 - 50) < 0.1 && Math.abs(s.p99 - 99) < 0.1 && Math.abs(s.max - 100) < 0.1, JSON.stringify(s));
  recordMs(h, 0); // clamped to 1 µs
  recordMs(h, 1e12); // clamped to the top
  assert.is(h.totalCount, 102);
  // One 100 ms stall when a response was expected every 10 ms hides 9 more slow ones.
  const c = newLatencyHistogram();
  recordMs(c, 100, 10);
  assert.is(c.totalCount, 10);
  const back = decodeHistogram(encodeHistogram(h));
  assert.is(back.totalCount, h.totalCount);
  assert.is(back.getValueAtPercentile(50), h.getValueAtPercentile(50));
});

t('a process sampled from /proc every interval: RSS and CPU%', async () => {
  if (!HAVE_PROC) {
    console.log('note: no /proc: sampling tests skipped');
    return;
  }
  assert.ok(clockTicksPerSecond() > 0);
  const r = readProc(process.pid)!;
  assert.ok(r.rssBytes > 10e6 && r.cpuSeconds > 0);
  // A child that burns CPU for a moment.
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 700; while (Date.now() < end) {}']);
  const s = new ProcSampler(child.pid!, { intervalMs: 100 }).start();
  await new Promise((resolve) => child.on('exit', resolve));
  const sum = s.stop();
  assert.ok(sum.available);
  assert.ok(sum.samples.length >= 3, `${sum.samples.length} samples`);
  assert.ok(sum.cpuPercentMax > 30, `busy child: max ${sum.cpuPercentMax}%`);
  assert.ok(sum.rssMaxBytes > 1e6);
  assert.is(sum.label, `pid ${child.pid}`);
  // Gone: nothing to read.
  assert.is(readProc(child.pid!), undefined);
  const gone = new ProcSampler(child.pid!, { intervalMs: 0 }).start().stop();
  assert.not.ok(gone.available);
  assert.is(gone.cpuPercentMean, 0);
});

t('this process through Node (no /proc needed), sampled by hand', () => {
  const self = readSelf();
  assert.ok(self.rssBytes > 0 && self.cpuSeconds > 0);
  const s = new ProcSampler('self', { intervalMs: 0 }).start();
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
  assert.ok(x > 0);
  assert.ok(s.sample());
  assert.is(s.latest, s.samples[0]);
  const sum = s.stop();
  assert.ok(sum.available && sum.pid === process.pid && sum.label === 'this process');
  assert.is(sum.samples.length, 1, 'stop() right after a sample takes no final sample over a few ms');
});

t('stop() takes a final sample when enough time has passed since the last', async () => {
  const s = new ProcSampler('self', { intervalMs: 0 }).start();
  s.sample();
  await new Promise((r) => setTimeout(r, 300));
  assert.is(s.stop().samples.length, 2);
});

t('the run environment: tool version, Node, CPU model and count, git commit when in a checkout', () => {
  const env = runEnvironment();
  assert.is(env, runEnvironment(), 'computed once');
  assert.is(env.tool, 'jpip-bench');
  assert.match(env.toolVersion, /^\d+\.\d+\.\d+/);
  assert.is(env.node, process.version);
  assert.ok(env.cpus >= 1 && env.cpuModel.length > 0);
  assert.ok(env.gitCommit === undefined || /^[0-9a-f]{40}$/.test(env.gitCommit));
  assert.ok(packageRoot().length > 1);
});

t.run();
