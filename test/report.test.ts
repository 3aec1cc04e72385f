import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import yargs from 'yargs';
import { register as registerReport } from '../bin/commands/report.js';
import type { CliIo } from '../bin/io.js';
import { CROWD_DEFAULTS } from '../client-sim/crowd.js';
import type { LatencySummary, ProcSummary } from '../client-sim/measure.js';
import { CROWD_SCHEMA, HAMMER_SCHEMA, RESULT_SCHEMA_VERSION, type CrowdResult, type HammerResult } from '../client-sim/results.js';
import { isLoadResultJson, loadRunOf, readLoadResult } from '../reports/crowd-input.js';
import { rdResultToJson } from '../reports/rd-result.js';
import { runRd } from '../reports/rd.js';
import { buildReport, loadResults, loadTable, runLabels, throughputSeries, writeReport } from '../reports/report.js';
import { loadSequence } from '../reports/sequence.js';
import { mean, percentile, stddev } from '../reports/stats.js';
import { byteTicks, escapeXml, formatBytes, formatNumber, niceTicks, renderLinePlot } from '../reports/svg-plot.js';
import { createJpipServer } from '../server/server.js';
import { FIXTURES, fixtureBytes } from './helpers.js';

const MiB = 2 ** 20;

/** A complete crowd result as `jpip-bench crowd --json` writes it (typed: it follows client-sim/results.ts). */
function sampleCrowd(o: { dialect: string; url: string; embedded: boolean; responsesPerSecond: number; rss: number[]; cpu: number[]; serverMeasured?: boolean }): CrowdResult {
  const samples = o.rss.map((r, i) => ({ t: i + 1, rssBytes: r * MiB, cpuPercent: o.cpu[i]! }));
  const proc = (label: string, s: typeof samples): ProcSummary => ({
    pid: 1234,
    label,
    available: s.length > 0,
    samples: s,
    cpuPercentMean: 0,
    cpuPercentMax: 0,
    rssMaxBytes: Math.max(0, ...s.map((x) => x.rssBytes)),
    rssLastBytes: s.at(-1)?.rssBytes ?? 0,
  });
  const latency: LatencySummary = { count: 2000, min: 1, mean: 16, stddev: 9, p50: 12.5, p75: 20, p90: 30.1, p95: 44, p99: 80.2, p999: 120, max: 150 };
  return {
    schema: CROWD_SCHEMA,
    schemaVersion: RESULT_SCHEMA_VERSION,
    env: { tool: 'jpip-bench', toolVersion: '0.1.0', node: process.version, platform: 'linux', arch: 'x64', cpuModel: 'test', cpus: 2, hostname: 'h', gitCommit: undefined, gitDirty: undefined },
    startedAt: '2026-01-01T00:00:00.000Z',
    settings: { ...CROWD_DEFAULTS, dialect: o.dialect, clients: 100, duration: 4 },
    target: { url: o.url, embedded: o.embedded, root: undefined, movies: [{ target: 'movie.jpx', frames: 3, sizes: [{ width: 64, height: 64 }] }] },
    elapsedSeconds: 4,
    totals: { clients: 100, clientsGaveUp: 0, requests: 2000, responses: 2000, bytes: 1e8, messages: 1e5, windowsDone: 300, sessionsOpened: 100, sessionsClosed: 100, sessionsAbandoned: 0, retries: 0, abortedAtEnd: 0 },
    rates: { requestsPerSecond: o.responsesPerSecond, responsesPerSecond: o.responsesPerSecond, bytesPerSecond: 25e6 },
    errors: { total: 0, byKind: {}, byStatus: {}, samples: [] },
    eor: { '2': 2000 },
    latencyMs: latency,
    serviceTimeMs: undefined,
    latencyHistogram: '',
    server: o.serverMeasured === false ? undefined : { ...proc('server', samples), sameProcessAsSimulator: o.embedded },
    simulator: { ...proc('this process', samples), cpuPercentMean: 42 },
    timeline: samples.map((x, i) => ({
      t: x.t,
      active: 100,
      inFlight: 3,
      requests: 500,
      responses: 400 + 100 * i,
      bytes: 1e6,
      errors: 0,
      p50: 12,
      p99: 80,
      serverRssBytes: x.rssBytes,
      serverCpuPercent: x.cpuPercent,
      simulatorCpuPercent: 40,
      totalResponses: 0,
      totalErrors: 0,
    })),
  };
}

const OURS = sampleCrowd({ dialect: 'ours', url: 'http://127.0.0.1:8090', embedded: false, responsesPerSecond: 500, rss: [80, 84, 88, 84], cpu: [60, 80, 100, 80] });
const ESA = sampleCrowd({ dialect: 'esajpip', url: 'http://127.0.0.1:8091', embedded: false, responsesPerSecond: 300, rss: [30, 32], cpu: [50, 54] });

const HAMMER: HammerResult = {
  schema: HAMMER_SCHEMA,
  schemaVersion: RESULT_SCHEMA_VERSION,
  env: OURS.env,
  startedAt: OURS.startedAt,
  settings: { target: 'a.jp2', connections: 8, duration: 2, windows: ['fsiz=64,64'], len: 4096, timeoutSeconds: 10 },
  target: { url: 'http://127.0.0.1:8090', embedded: true, root: '/x' },
  elapsedSeconds: 2,
  totals: { requests: 1000, responses: 1000, bytes: 1e6, errors: 1, timeouts: 0, non2xx: 2, resets: 0 },
  rates: { requestsPerSecond: 500, bytesPerSecond: 5e5 },
  statusCodes: { '200': 998 },
  latencyMs: { p50: 1, p90: 2, p99: 3, p999: 4, max: 5, mean: 1.5 },
  server: undefined,
  simulator: { pid: 1, label: 'self', available: false, samples: [], cpuPercentMean: 0, cpuPercentMax: 0, rssMaxBytes: 0, rssLastBytes: 0 },
};

/** JSON as written to a file and parsed back (undefined fields disappear). */
const asJson = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

// ---------------------------------------------------------------------------
const input = suite('report: reading crowd and hammer results');

input('a crowd result gives the figures of Table I, the latency and the timeline', () => {
  const r = readLoadResult(asJson(OURS), 'crowd.json');
  assert.is(r.kind, 'crowd');
  assert.is(r.server, 'ours 127.0.0.1:8090');
  assert.is(r.dialect, 'ours');
  assert.is(r.url, 'http://127.0.0.1:8090');
  assert.is(r.clients, 100);
  assert.is(r.responsesPerSecond, 500);
  assert.is(r.responses, 2000);
  assert.is(r.errors, 0);
  assert.is(r.latency.p999, 120);
  assert.is(r.process.length, 4);
  assert.is(r.process[2]!.cpuPercent, 100);
  assert.is(r.simulatorCpuPercent, 42);
  assert.is(r.serverIncludesSimulator, false);
  assert.equal(r.timeline.map((t) => t.responses), [400, 500, 600, 700]);
  assert.is(r.source, 'crowd.json');
  assert.is(readLoadResult(asJson(OURS), 'crowd.json', 'mine').server, 'mine');
});

input('optional parts may be missing: an unmeasured server falls back to the timeline, or to nothing', () => {
  const noServer = asJson(sampleCrowd({ dialect: 'ours', url: 'http://h:1', embedded: true, responsesPerSecond: 1, rss: [10, 20], cpu: [1, 3], serverMeasured: false })) as Record<string, unknown>;
  const r = readLoadResult(noServer, 'x.json');
  assert.is(r.server, 'ours (embedded)');
  assert.equal(r.process, [
    { t: 1, rssBytes: 10 * MiB, cpuPercent: 1 },
    { t: 2, rssBytes: 20 * MiB, cpuPercent: 3 },
  ]);
  const bare = readLoadResult({ schema: CROWD_SCHEMA }, 'bare.json');
  assert.equal([bare.server, bare.process, bare.timeline, bare.latency.p50, bare.responsesPerSecond], ['server', [], [], undefined, undefined]);
  const embedded = readLoadResult(asJson(sampleCrowd({ dialect: 'ours', url: 'http://h:1', embedded: true, responsesPerSecond: 1, rss: [1], cpu: [1] })));
  assert.is(embedded.serverIncludesSimulator, true);
});

input('a hammer result is a load run too', () => {
  const h = readLoadResult(asJson(HAMMER), 'hammer.json');
  assert.is(h.kind, 'hammer');
  assert.is(h.server, 'ours (embedded) (hammer)');
  assert.is(h.clients, 8);
  assert.is(h.responsesPerSecond, 500);
  assert.is(h.errors, 3);
  assert.equal(h.process, []);
  assert.is(h.simulatorCpuPercent, undefined, 'not measured');
  assert.is(loadRunOf(HAMMER).latency.p99, 3);
});

input('malformed results name the file and the field', () => {
  assert.throws(() => readLoadResult({ schema: 'x' }, 'c.json'), /c\.json: schema: not a crowd or hammer result/);
  assert.throws(() => readLoadResult({ schema: CROWD_SCHEMA, schemaVersion: 9 }, 'c.json'), /schemaVersion: version 9/);
  assert.throws(() => readLoadResult({ schema: CROWD_SCHEMA, totals: { responses: 'many' } }, 'c.json'), /c\.json: totals\.responses: must be a number/);
  assert.throws(() => readLoadResult({ schema: CROWD_SCHEMA, server: { samples: [{ rssBytes: 1 }] } }), /server\.samples\[0\]: has no t/);
  assert.throws(() => readLoadResult({ schema: CROWD_SCHEMA, timeline: [{ t: 1 }] }), /timeline\[0\]: needs t and responses/);
  assert.throws(() => readLoadResult({ schema: CROWD_SCHEMA, timeline: 5 }), /timeline: must be an array/);
  assert.throws(() => readLoadResult({ schema: CROWD_SCHEMA, target: { url: 5 } }), /target\.url: must be a string/);
  assert.throws(() => readLoadResult({ schema: CROWD_SCHEMA, target: { embedded: 'yes' } }), /target\.embedded: must be true or false/);
  assert.throws(() => readLoadResult({ schema: CROWD_SCHEMA, settings: 3 }), /settings: must be an object/);
  assert.throws(() => readLoadResult(7), /must be an object/);
  assert.ok(isLoadResultJson(OURS) && isLoadResultJson(HAMMER) && !isLoadResultJson({}) && !isLoadResultJson(null));
});

input.run();

// ---------------------------------------------------------------------------
const math = suite('report: tables and plots');

math('statistics', () => {
  assert.is(mean([]), null);
  assert.is(mean([1, 2, 3]), 2);
  assert.is(stddev([5]), 0);
  assert.is(stddev([]), null);
  assert.ok(Math.abs(stddev([2, 4, 4, 4, 5, 5, 7, 9])! - 2.138089935) < 1e-8);
  assert.is(percentile([3, 1, 2, 4], 50), 2.5);
  assert.is(percentile([3, 1, 2, 4], 100), 4);
  assert.is(percentile([], 50), null);
});

math("Table I: memory and CPU average and deviation, responses/s", () => {
  const rows = loadTable([readLoadResult(asJson(OURS), 'a.json'), readLoadResult(asJson(ESA), 'b.json')]);
  assert.is(rows[0]!.memoryMeanMiB, 84);
  assert.ok(Math.abs(rows[0]!.memoryStdMiB! - Math.sqrt(32 / 3)) < 1e-9);
  assert.is(rows[0]!.cpuMeanPercent, 80);
  assert.ok(Math.abs(rows[0]!.cpuStdPercent! - Math.sqrt(800 / 3)) < 1e-9);
  assert.is(rows[0]!.responsesPerSecond, 500);
  assert.is(rows[1]!.memoryMeanMiB, 31);
  assert.is(rows[1]!.cpuMeanPercent, 52);
  assert.is(rows[0]!.simulatorCpuPercent, 42);
  const none = loadTable([readLoadResult({ schema: CROWD_SCHEMA }, 'n.json')])[0]!;
  assert.equal([none.memoryMeanMiB, none.cpuStdPercent, none.responsesPerSecond], [null, null, null]);
});

math('runs of one server in several files get told apart', () => {
  const runs = [
    readLoadResult({ schema: CROWD_SCHEMA, settings: { clients: 10 } }, 'a.json', 'ours'),
    readLoadResult({ schema: CROWD_SCHEMA }, 'dir/b.json', 'ours'),
    readLoadResult({ schema: CROWD_SCHEMA }, 'c.json', 'x'),
  ];
  assert.equal(runLabels(runs), ['ours (10 clients, #1)', 'ours (b.json, #2)', 'x']);
});

math('throughput per interval', () => {
  const r = readLoadResult({ schema: CROWD_SCHEMA, timeline: [{ t: 2, responses: 100 }, { t: 1, responses: 30 }, { t: 2, responses: 5 }] });
  assert.equal(throughputSeries(r), [
    [1, 30],
    [2, 100],
  ]);
});

math('plot helpers: ticks, units, escaping', () => {
  assert.equal(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  assert.equal(niceTicks(3, 3, 2), [2, 4]);
  assert.equal(niceTicks(0, Infinity), []);
  assert.equal(byteTicks(0, 4096, 4), [0, 1024, 2048, 3072, 4096]);
  assert.is(formatBytes(512), '512 B');
  assert.is(formatBytes(1536), '1.5 KiB');
  assert.is(formatBytes(3 * 2 ** 20), '3 MiB');
  assert.is(formatBytes(2 ** 31), '2 GiB');
  assert.is(formatNumber(Infinity), '∞');
  assert.is(formatNumber(1234567), '1.23e+6');
  assert.is(formatNumber(0.5), '0.5');
  assert.is(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
});

math('a line plot: series, gaps, infinity band, markers, no data', () => {
  const svg = renderLinePlot({
    title: 'T <1>',
    xLabel: 'x',
    yLabel: 'y',
    series: [
      { name: 'a', points: [[0, 1], [1, 2], [2, null], [3, Infinity], [4, 5]], shape: 'step' },
      { name: 'b', points: [[0, 3]] },
    ],
    markers: [{ x: 2, label: 'here' }, { x: 99, label: 'outside' }],
    xMax: 4,
  });
  assert.match(svg, /T &lt;1&gt;/);
  assert.is((svg.match(/<polyline/g) ?? []).length, 2, 'the gap splits a; b has one point');
  assert.match(svg, />∞</);
  assert.match(svg, />here</);
  assert.not.match(svg, /outside/);
  assert.match(renderLinePlot({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'e', points: [] }] }), /no data/);
  const flat = renderLinePlot({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'f', points: [[1, 7], [1, 7]] }] });
  assert.match(flat, /<circle/);
});

math.run();

// ---------------------------------------------------------------------------
const page = suite('report: the page and the files beside it');

let dir = '';
let rdPath = '';
let crowdPath = '';
let esaPath = '';

page.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'report-'));
  const srv = createJpipServer({ root: FIXTURES, port: 0 });
  const url = await srv.listen();
  try {
    const file = 'g256-irrev-8l-cb32.j2k';
    const rd = await runRd({
      servers: [{ name: 'ours', url, dialect: 'ours' }],
      target: file,
      original: { bytes: fixtureBytes(file), file },
      sequence: loadSequence('paper'),
      sequenceSource: 'paper',
      step: 512,
    });
    mkdirSync(join(dir, 'rd-out'));
    rdPath = join(dir, 'rd-out', 'rd.json');
    writeFileSync(rdPath, rdResultToJson(rd));
  } finally {
    await srv.close();
  }
  crowdPath = join(dir, 'crowd.json');
  writeFileSync(crowdPath, JSON.stringify(OURS));
  writeFileSync(join(dir, 'hammer.json'), JSON.stringify(HAMMER));
  esaPath = join(dir, 'crowd-esa.json');
  writeFileSync(esaPath, JSON.stringify(ESA));
});
page.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

page('results: files and directories; rd results recognised by their schema', () => {
  const inp = loadResults([crowdPath, `esa=${esaPath}`, join(dir, 'rd-out')]);
  assert.equal(inp.crowd.map((r) => r.server), ['ours 127.0.0.1:8090', 'esa']);
  assert.is(inp.rd.length, 1);
  assert.is(inp.rd[0]!.result.points.at(-1)!.psnr, Infinity);
  writeFileSync(join(dir, 'broken.json'), '{');
  assert.throws(() => loadResults([join(dir, 'broken.json')]), /broken\.json: not JSON/);
  writeFileSync(join(dir, 'other.json'), '{"a":1}');
  assert.throws(() => loadResults([join(dir, 'other.json')]), /other\.json: neither an rd result/);
  assert.throws(() => loadResults([join(dir, 'missing.json')]), /missing\.json: no such file/);
  mkdirSync(join(dir, 'empty'));
  assert.throws(() => loadResults([join(dir, 'empty')]), /without result files/);
});

page('the page: Table I, latency, plots over time, rate-distortion; nothing external', () => {
  const inp = loadResults([crowdPath, `esa=${esaPath}`, rdPath]);
  const { html, plots, csvs } = buildReport(inp, { title: 'Bench <test>', generatedAt: '2026-01-01T00:00:00Z' });
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<title>Bench &lt;test&gt;<\/title>/);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.match(html, /Table I/);
  for (const h of ['Memory avg (MiB)', 'Memory dev (MiB)', 'CPU avg (%)', 'CPU dev (%)', 'Responses/s', 'p99.9']) assert.ok(html.includes(h), h);
  assert.match(html, /<th scope="row">ours 127\.0\.0\.1:8090<\/th><td>100<\/td><td>84\.0<\/td><td>3\.3<\/td><td>80\.0<\/td><td>16\.3<\/td><td>500\.0<\/td><td>2000<\/td><td>0<\/td><td>42\.0<\/td>/);
  assert.match(html, /<th scope="row">esa<\/th><td>100<\/td><td>31\.0<\/td>/);
  assert.not.match(html, /include the generator/);
  assert.equal(plots.map((p) => p.name), ['throughput', 'memory', 'cpu', 'rd']);
  assert.is((html.match(/<svg /g) ?? []).length, 4);
  assert.match(html, /exact \(∞\)/);
  assert.equal(csvs.map((c) => c.name), ['table1.csv', 'latency.csv', 'timeseries.csv', 'rd.csv', 'rd-summary.csv']);
  // Self-contained: no script, no stylesheet link, no URL but the SVG namespace.
  assert.not.match(html, /<script|<link|<img|@import|url\(/i);
  const urls = (html.match(/https?:\/\/[^\s"'<)]+/g) ?? []).filter((u) => u !== 'http://www.w3.org/2000/svg');
  assert.equal(urls, []);
});

page('with only rd results, or only crowd results, the other sections say so', () => {
  const onlyRd = buildReport(loadResults([rdPath])).html;
  assert.match(onlyRd, /No crowd or hammer result was given/);
  const onlyCrowd = buildReport(loadResults([crowdPath])).html;
  assert.match(onlyCrowd, /No rate-distortion result was given/);
  const two = buildReport({ crowd: [], rd: [...loadResults([rdPath]).rd, ...loadResults([rdPath]).rd] });
  assert.equal(two.plots.map((p) => p.name), ['rd-1', 'rd-2']);
});

page('writeReport writes the page, a PNG per plot and the CSVs', async () => {
  const out = join(dir, 'report');
  const { html, files } = await writeReport(loadResults([crowdPath, esaPath, rdPath, `h=${join(dir, 'hammer.json')}`]), out);
  assert.is(html, join(out, 'report.html'));
  assert.is(files.length, 1 + 4 + 5);
  for (const name of ['throughput', 'memory', 'cpu', 'rd']) {
    const m = await sharp(join(out, `${name}.png`)).metadata();
    assert.is(m.format, 'png', name);
  }
  const t1 = readFileSync(join(out, 'table1.csv'), 'utf8').split('\n');
  assert.is(t1[0], 'run,server,clients,memory_mean_mib,memory_std_mib,cpu_mean_percent,cpu_std_percent,responses_per_s,responses,errors,generator_cpu_percent,server_includes_generator');
  assert.match(t1[1]!, /^ours 127\.0\.0\.1:8090,ours 127\.0\.0\.1:8090,100,84,.*,42,false$/);
  assert.match(readFileSync(join(out, 'rd.csv'), 'utf8'), /,inf,/);
  assert.match(readFileSync(join(out, 'rd-summary.csv'), 'utf8'), /^server,window,bytes,final_psnr_db,bytes_to_exact/);
});

async function reportCli(args: string[]): Promise<{ text: string; code: number }> {
  let text = '';
  const io: CliIo = { out: (s) => void (text += s), err: (s) => void (text += s), tty: false };
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await registerReport(yargs().scriptName('jpip-bench'), io)
      .strict()
      .exitProcess(false)
      .fail((msg, e) => {
        throw e ?? new Error(msg);
      })
      .parseAsync(args);
    return { text, code: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = before;
  }
}

page('jpip-bench report (command)', async () => {
  const out = join(dir, 'cli-report');
  const ok = await reportCli(['report', crowdPath, `esa=${esaPath}`, join(dir, 'rd-out'), '--out', out, '--title', 'CLI']);
  assert.is(ok.code, 0);
  assert.match(ok.text, /report: .*report\.html \(2 crowd run\(s\), 1 rd result\(s\); 9 file\(s\) beside it\)/);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<title>CLI<\/title>/);
  const bad = await reportCli(['report', join(dir, 'nope.json'), '--out', out]);
  assert.is(bad.code, 1);
  assert.match(bad.text, /^jpip-bench report: .*nope\.json: no such file or directory$/);
});

page.run();
