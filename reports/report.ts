/**
 * `jpip-bench report`: one self-contained HTML page from crowd and
 * rate-distortion results (JSON only: results are data, this is the
 * rendering). The page inlines its CSS and its plots as SVG, and forbids
 * itself every external load (Content-Security-Policy), so it opens
 * anywhere, offline. Beside it go the same plots as PNG and the tables as
 * CSV.
 *
 * Sections: the paper's Table I (memory and CPU of each server, average and
 * deviation, and responses/s under the crowd), latency percentiles,
 * throughput, memory and CPU over time, and the rate-distortion curves with
 * their summary.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { InputError } from './errors.js';
import { isLoadResultJson, readLoadResult, type LoadRun } from './crowd-input.js';
import { svgToPng } from './png.js';
import { rdCsv, rdPlotSvg } from './rd-output.js';
import { isRdResultJson, psnrOut, rdResultFromJson, type RdResult } from './rd-result.js';
import { mean, stddev } from './stats.js';
import { escapeXml, formatBytes, renderLinePlot, type PlotSeries } from './svg-plot.js';
import { CROWD_SCHEMA, runEnvironment, type CrowdResult } from '../client-sim/results.js';
import { MergeError, mergeCrowdResults } from '../client-sim/merge.js';

export interface ReportInput {
  /** Crowd and hammer runs, one per server measured. */
  crowd: LoadRun[];
  rd: { source: string; result: RdResult }[];
  /** With `merge`: the crowd results merged from several files, by label ('' without one). */
  merged?: { label: string; result: CrowdResult }[];
}

const MiB = 1024 * 1024;

/**
 * Reads result files. Each argument is a JSON file or a directory whose
 * *.json files are read (an `rd` output directory holds rd.json), with an
 * optional `LABEL=` prefix naming the server of a crowd or hammer result in
 * the tables and plots. rd, crowd and hammer results are told apart by
 * their schema; other JSON is an error.
 */
export function loadResults(args: readonly string[], opts: { merge?: boolean } = {}): ReportInput {
  const files: { file: string; label: string | undefined }[] = [];
  for (const arg of args) {
    const m = /^([^=/\\]{1,60})=(.+)$/.exec(arg);
    const [label, p] = m && !existsSync(arg) ? [m[1], m[2]!] : [undefined, arg];
    if (!existsSync(p)) throw new InputError(`${p}: no such file or directory`);
    if (statSync(p).isDirectory()) {
      const inDir = readdirSync(p).filter((f) => f.endsWith('.json')).sort();
      if (inDir.length === 0) throw new InputError(`${p}: a directory without result files (*.json)`);
      files.push(...inDir.map((f) => ({ file: join(p, f), label })));
    } else files.push({ file: p, label });
  }
  const out: ReportInput = { crowd: [], rd: [] };
  /** With merge: crowd results by label, in order of first appearance. */
  const groups = new Map<string, { files: string[]; results: CrowdResult[] }>();
  for (const { file, label } of files) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new InputError(`${file}: not JSON: ${(e as Error).message}`);
    }
    if (isRdResultJson(json)) out.rd.push({ source: file, result: rdResultFromJson(json, file) });
    else if (opts.merge && (json as { schema?: unknown }).schema === CROWD_SCHEMA) {
      readLoadResult(json, file, label); // checks the fields the report reads
      const g = groups.get(label ?? '') ?? { files: [], results: [] };
      g.files.push(file);
      g.results.push(json as CrowdResult);
      groups.set(label ?? '', g);
    } else if (isLoadResultJson(json)) out.crowd.push(readLoadResult(json, file, label));
    else throw new InputError(`${file}: neither an rd result (rd.json) nor a crowd or hammer result (--json)`);
  }
  if (opts.merge) {
    out.merged = [];
    for (const [label, g] of groups) {
      let merged: CrowdResult;
      try {
        merged = mergeCrowdResults(g.results, g.files);
      } catch (e) {
        if (e instanceof MergeError) throw new InputError(`cannot merge${label ? ` ${label}` : ''}: ${e.message}`);
        throw e;
      }
      out.merged.push({ label, result: merged });
      out.crowd.push(readLoadResult(merged, g.files.join(' + '), label || undefined));
    }
  }
  return out;
}

/** One row of Table I. */
export interface LoadRow {
  label: string;
  server: string;
  clients: number | null;
  memoryMeanMiB: number | null;
  memoryStdMiB: number | null;
  cpuMeanPercent: number | null;
  cpuStdPercent: number | null;
  responsesPerSecond: number | null;
  responses: number | null;
  errors: number | null;
  /** The load generator's mean CPU (% of one core). */
  simulatorCpuPercent: number | null;
  /** The server shared the generator's process: memory and CPU include the generator. */
  includesSimulator: boolean;
}

/** Labels that tell runs apart: the server name, plus the file when a name repeats. */
export function runLabels(runs: readonly LoadRun[]): string[] {
  const count = new Map<string, number>();
  for (const r of runs) count.set(r.server, (count.get(r.server) ?? 0) + 1);
  const seen = new Map<string, number>();
  return runs.map((r) => {
    if (count.get(r.server) === 1) return r.server;
    const n = (seen.get(r.server) ?? 0) + 1;
    seen.set(r.server, n);
    const extra = r.clients !== undefined ? `${r.clients} clients` : basename(r.source);
    return `${r.server} (${extra}, #${n})`;
  });
}

/** Table I: per run, memory and CPU of the server process (mean and sample deviation over the samples) and responses/s. */
export function loadTable(runs: readonly LoadRun[]): LoadRow[] {
  const labels = runLabels(runs);
  return runs.map((r, i) => {
    const rss = r.process.filter((s) => s.rssBytes !== undefined).map((s) => s.rssBytes! / MiB);
    const cpu = r.process.filter((s) => s.cpuPercent !== undefined).map((s) => s.cpuPercent!);
    return {
      label: labels[i]!,
      server: r.server,
      clients: r.clients ?? null,
      memoryMeanMiB: mean(rss),
      memoryStdMiB: stddev(rss),
      cpuMeanPercent: mean(cpu),
      cpuStdPercent: stddev(cpu),
      responsesPerSecond: r.responsesPerSecond ?? null,
      responses: r.responses ?? null,
      errors: r.errors ?? null,
      simulatorCpuPercent: r.simulatorCpuPercent ?? null,
      includesSimulator: r.serverIncludesSimulator,
    };
  });
}

const LATENCY_COLUMNS = [
  ['p50', 'p50'],
  ['p90', 'p90'],
  ['p99', 'p99'],
  ['p999', 'p99.9'],
  ['max', 'max'],
  ['mean', 'mean'],
] as const;

/** Responses per second in each timeline interval: [t, rate]. */
export function throughputSeries(r: LoadRun): [number, number][] {
  const out: [number, number][] = [];
  let prev = 0;
  for (const p of [...r.timeline].sort((a, b) => a.t - b.t)) {
    const dt = p.t - prev;
    if (dt > 0) out.push([p.t, p.responses / dt]);
    prev = p.t;
  }
  return out;
}

function fmt(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (v === Infinity) return '∞';
  return v.toFixed(digits);
}

function fmtPsnr(v: number | null | undefined): string {
  if (v === Infinity) return 'exact (∞)';
  return fmt(v, 2);
}

function fmtBytes(v: number | null | undefined): string {
  return v === null || v === undefined ? '—' : formatBytes(v);
}

function table(head: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  const th = head.map((h) => `<th>${escapeXml(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${escapeXml(c)}</th>` : `<td>${escapeXml(c)}</td>`)).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

export interface ReportFile {
  name: string;
  /** Text (CSV, SVG) or binary (PNG) content. */
  content: string | Buffer;
}

export interface BuiltReport {
  html: string;
  /** Plots by file stem (PNG rendering is done by writeReport). */
  plots: { name: string; title: string; svg: string }[];
  csvs: { name: string; text: string }[];
}

const CSS = `
body{font-family:"DejaVu Sans","Liberation Sans",Arial,Helvetica,sans-serif;margin:24px auto;max-width:1100px;color:#222;line-height:1.4;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ccc;padding-bottom:4px}h3{font-size:16px}
.meta{color:#555;font-size:13px}
table{border-collapse:collapse;margin:12px 0;font-size:14px}
th,td{border:1px solid #c8c8c8;padding:4px 10px;text-align:right}
td{white-space:nowrap}
thead th{background:#eef2f6;text-align:center}
tbody th{text-align:left;font-weight:normal}
figure{margin:16px 0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:13px;color:#555}
.note{color:#666;font-size:13px}
code{background:#f3f3f3;padding:0 3px}
`;

/** Builds the page and the data beside it (no I/O). */
export function buildReport(input: ReportInput, opts: { title?: string; generatedAt?: string } = {}): BuiltReport {
  const title = opts.title ?? 'JPIP server benchmark report';
  const env = runEnvironment();
  const generatedAt = opts.generatedAt ?? new Date().toISOString();
  const plots: BuiltReport['plots'] = [];
  const csvs: BuiltReport['csvs'] = [];
  const body: string[] = [];
  const sources = [...new Set([...input.crowd.map((r) => r.source), ...input.rd.map((r) => r.source)])];

  body.push(`<h1>${escapeXml(title)}</h1>`);
  body.push(`<p class="meta">Generated ${escapeXml(generatedAt)} by ${escapeXml(env.tool)} ${escapeXml(env.toolVersion)}${env.gitCommit ? ` (${escapeXml(env.gitCommit.slice(0, 12))}${env.gitDirty ? ', modified' : ''})` : ''} on Node ${escapeXml(env.node)} from ${sources.length} result file(s): ${sources.map((s) => `<code>${escapeXml(basename(s))}</code>`).join(', ') || 'none'}.</p>`);

  // --- Flash crowd
  body.push(`<h2 id="load">Server load under the flash crowd (Table I)</h2>`);
  if (input.crowd.length === 0) {
    body.push(`<p class="note">No crowd or hammer result was given.</p>`);
  } else {
    const rows = loadTable(input.crowd);
    body.push(
      table(
        ['Server', 'Clients', 'Memory avg (MiB)', 'Memory dev (MiB)', 'CPU avg (%)', 'CPU dev (%)', 'Responses/s', 'Responses', 'Errors', 'Load generator CPU (%)'],
        rows.map((r) => [
          r.includesSimulator ? `${r.label} *` : r.label,
          fmt(r.clients, 0),
          fmt(r.memoryMeanMiB),
          fmt(r.memoryStdMiB),
          fmt(r.cpuMeanPercent),
          fmt(r.cpuStdPercent),
          fmt(r.responsesPerSecond),
          fmt(r.responses, 0),
          fmt(r.errors, 0),
          fmt(r.simulatorCpuPercent),
        ]),
        'table1',
      ),
    );
    body.push(
      `<p class="note">Memory is the resident set of the server process, CPU its use in percent of one core (100 = one core busy), both over the samples taken during the run (— : the server was not measured); deviations are sample standard deviations. Clients: per crowd (crowd runs) or connections (hammer runs).${rows.some((r) => r.includesSimulator) ? ' * The server ran inside the load generator\'s process: its memory and CPU include the generator.' : ''}</p>`,
    );
    csvs.push({
      name: 'table1.csv',
      text: stringify(
        rows.map((r) => [r.label, r.server, r.clients ?? '', r.memoryMeanMiB ?? '', r.memoryStdMiB ?? '', r.cpuMeanPercent ?? '', r.cpuStdPercent ?? '', r.responsesPerSecond ?? '', r.responses ?? '', r.errors ?? '', r.simulatorCpuPercent ?? '', r.includesSimulator]),
        {
          header: true,
          columns: ['run', 'server', 'clients', 'memory_mean_mib', 'memory_std_mib', 'cpu_mean_percent', 'cpu_std_percent', 'responses_per_s', 'responses', 'errors', 'generator_cpu_percent', 'server_includes_generator'],
          cast: { boolean: (v) => (v ? 'true' : 'false') },
        },
      ),
    });

    const labels = runLabels(input.crowd);
    body.push(`<h2 id="latency">Latency percentiles (ms)</h2>`);
    body.push(table(['Server', ...LATENCY_COLUMNS.map(([, h]) => h)], input.crowd.map((r, i) => [labels[i]!, ...LATENCY_COLUMNS.map(([k]) => fmt(r.latency[k], 2))])));
    csvs.push({
      name: 'latency.csv',
      text: stringify(
        input.crowd.map((r, i) => [labels[i]!, ...LATENCY_COLUMNS.map(([k]) => r.latency[k] ?? '')]),
        { header: true, columns: ['run', ...LATENCY_COLUMNS.map(([k]) => `${k}_ms`)] },
      ),
    });

    body.push(`<h2 id="time">Over time</h2>`);
    const mk = (values: (r: LoadRun) => [number, number][]): PlotSeries[] => input.crowd.map((r, i) => ({ name: labels[i]!, points: values(r) }));
    const timePlots = [
      { name: 'throughput', title: 'Throughput (responses/s)', yLabel: 'responses/s', series: mk(throughputSeries) },
      { name: 'memory', title: 'Server memory (RSS, MiB)', yLabel: 'MiB', series: mk((r) => r.process.filter((s) => s.rssBytes !== undefined).map((s) => [s.t, s.rssBytes! / MiB])) },
      { name: 'cpu', title: 'Server CPU (% of one core)', yLabel: '% of one core', series: mk((r) => r.process.filter((s) => s.cpuPercent !== undefined).map((s) => [s.t, s.cpuPercent!])) },
    ];
    for (const p of timePlots) {
      const svg = renderLinePlot({ title: p.title, xLabel: 'time since the start of the run (s)', yLabel: p.yLabel, series: p.series, xMin: 0, yFromZero: true, width: 880, height: 380 });
      plots.push({ name: p.name, title: p.title, svg });
      body.push(`<figure id="plot-${p.name}">${svg}<figcaption>${escapeXml(p.title)} (<a href="${p.name}.png">PNG</a>)</figcaption></figure>`);
    }
    const ts: (string | number)[][] = [];
    input.crowd.forEach((r, i) => {
      for (const s of r.process) ts.push([labels[i]!, 'process', s.t, s.rssBytes !== undefined ? s.rssBytes / MiB : '', s.cpuPercent ?? '', '']);
      for (const [t, v] of throughputSeries(r)) ts.push([labels[i]!, 'timeline', t, '', '', v]);
    });
    csvs.push({ name: 'timeseries.csv', text: stringify(ts, { header: true, columns: ['run', 'kind', 't_s', 'rss_mib', 'cpu_percent', 'responses_per_s'] }) });
  }

  // --- Rate-distortion
  body.push(`<h2 id="rd">Rate-distortion</h2>`);
  if (input.rd.length === 0) body.push(`<p class="note">No rate-distortion result was given.</p>`);
  input.rd.forEach(({ source, result: r }, k) => {
    const stem = input.rd.length === 1 ? 'rd' : `rd-${k + 1}`;
    const svg = rdPlotSvg(r);
    plots.push({ name: stem, title: `PSNR against bytes: ${r.target}`, svg });
    csvs.push({ name: `${stem}.csv`, text: rdCsv(r) });
    body.push(`<h3>${escapeXml(r.target)} <span class="meta">(${escapeXml(basename(source))}; ${r.original.width}x${r.original.height}, ${r.original.components} component(s), ${r.original.bitDepth} bits; len step ${r.step} B)</span></h3>`);
    body.push(`<figure id="plot-${stem}">${svg}<figcaption>PSNR of the client's reconstruction of each window against the full-quality decode of that window, after each response; dashed lines: the next window of the sequence (<a href="${stem}.png">PNG</a>, <a href="${stem}.csv">CSV</a>).</figcaption></figure>`);
    const s = r.summary;
    const win = (w: number): string => {
      const x = r.sequence.windows[w]!;
      return `w${w + 1} (${x.x},${x.y},${x.w},${x.h}, r=${x.r})`;
    };
    const serverOf = (name: string): string => {
      const run = r.servers.find((x) => x.name === name);
      return run?.error ? `${name} (error: ${run.error})` : name;
    };
    body.push(
      table(
        ['Window / server', 'Bytes', 'Final PSNR (dB)', 'Bytes to exact', ...s.psnrTargets.map((t) => `Bytes to ${t} dB`)],
        s.windows.map((w) => [`${win(w.window)} ${serverOf(w.server)}`, fmtBytes(w.bytes), fmtPsnr(w.finalPsnr), fmtBytes(w.bytesToExact), ...w.bytesToPsnr.map((b) => fmtBytes(b.bytes))]),
      ),
    );
    body.push(
      table(
        ['Window / server', ...s.budgets.map((b) => `PSNR at ${formatBytes(b)}`)],
        s.windows.map((w) => [`${win(w.window)} ${w.server}`, ...w.psnrAtBudget.map((b) => fmtPsnr(b.psnr))]),
      ),
    );
    if (s.comparisons.length > 0) {
      body.push(
        table(
          ['Server vs reference', 'Window', 'Byte range', 'Mean PSNR difference (dB)'],
          [
            ...s.comparisons.map((c) => [`${c.server} − ${c.reference}`, win(c.window), c.from === null ? '—' : `${formatBytes(c.from)} – ${formatBytes(c.to!)}`, fmt(c.meanPsnrDiff, 2)]),
            ...s.servers.map((c) => [`${c.server} − ${c.reference}`, `all (${c.windows})`, '', fmt(c.meanPsnrDiff, 2)]),
          ],
        ),
      );
      body.push(`<p class="note">Positive: the server shows a better picture than the reference for the same bytes. An exact window counts as ${s.exactAsDb.map((d) => d.toFixed(1)).join(' / ')} dB (one sample off by one).</p>`);
    }
    csvs.push({
      name: `${stem}-summary.csv`,
      text: stringify(
        s.windows.map((w) => [w.server, w.window + 1, w.bytes, psnrOut(w.finalPsnr) ?? '', w.bytesToExact ?? '', ...w.psnrAtBudget.map((b) => psnrOut(b.psnr) ?? ''), ...w.bytesToPsnr.map((b) => b.bytes ?? '')]),
        { header: true, columns: ['server', 'window', 'bytes', 'final_psnr_db', 'bytes_to_exact', ...s.budgets.map((b) => `psnr_at_${b}`), ...s.psnrTargets.map((t) => `bytes_to_${t}db`)] },
      ),
    });
  });

  body.push(`<h2 id="files">Files</h2><p>${[...plots.map((p) => `${p.name}.png`), ...csvs.map((c) => c.name)].map((f) => `<a href="${escapeXml(f)}">${escapeXml(f)}</a>`).join(' · ')}</p>`);

  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
  return { html, plots, csvs };
}

/** Writes report.html, a PNG per plot and the CSVs into `dir`; returns the paths written. */
export async function writeReport(input: ReportInput, dir: string, opts: { title?: string } = {}): Promise<{ html: string; files: string[] }> {
  mkdirSync(dir, { recursive: true });
  const built = buildReport(input, opts);
  const html = join(dir, 'report.html');
  writeFileSync(html, built.html);
  const files = [html];
  for (const p of built.plots) {
    const f = join(dir, `${p.name}.png`);
    writeFileSync(f, await svgToPng(p.svg));
    files.push(f);
  }
  for (const c of built.csvs) {
    const f = join(dir, c.name);
    writeFileSync(f, c.text);
    files.push(f);
  }
  return { html, files };
}
