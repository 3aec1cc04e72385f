import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'csv-stringify/sync';
import type { ClientErrorKind } from './client.js';
import type { LatencySummary, ProcSummary } from './measure.js';
import type { MergedPart } from './merge.js';
import type { MovieInfo, PatternName } from './patterns.js';

/**
 * The results of the load generators as plain data (what `jpip-bench report`
 * reads), their JSON and CSV files, and their text rendering. Every file
 * records the schema and its version, the tool version, Node, the CPU model
 * and count, and the git commit when the tool runs from a git checkout.
 */

export const CROWD_SCHEMA = 'jpip-bench/crowd';
export const HAMMER_SCHEMA = 'jpip-bench/hammer';
/** Bumped when a field changes meaning or goes away (adding fields keeps it). */
export const RESULT_SCHEMA_VERSION = 1;

export interface RunEnvironment {
  tool: 'jpip-bench';
  toolVersion: string;
  node: string;
  platform: string;
  arch: string;
  cpuModel: string;
  cpus: number;
  hostname: string;
  /** HEAD of the checkout the tool runs from; undefined outside git. */
  gitCommit: string | undefined;
  /** The checkout had uncommitted changes. */
  gitDirty: boolean | undefined;
}

let root: string | undefined;

/** The directory of this package's package.json (source tree or dist/ alike). */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'jpip-bench') return (root = dir);
    } catch {
      // not here
    }
    dir = dirname(dir);
  }
  return (root = process.cwd());
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: packageRoot(), encoding: 'utf8', timeout: 3000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

let env: RunEnvironment | undefined;

/** Where and with what a run happens (computed once per process). */
export function runEnvironment(): RunEnvironment {
  if (env) return env;
  let toolVersion = 'unknown';
  try {
    toolVersion = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    // keep unknown
  }
  const commit = git(['rev-parse', 'HEAD']);
  const status = commit === undefined ? undefined : git(['status', '--porcelain', '--untracked-files=no']);
  const cpuList = cpus();
  env = {
    tool: 'jpip-bench',
    toolVersion,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cpus: cpuList.length,
    hostname: hostname(),
    gitCommit: commit && /^[0-9a-f]{40}$/.test(commit) ? commit : undefined,
    gitDirty: status === undefined ? undefined : status !== '',
  };
  return env;
}

// ---------------------------------------------------------------------------
// Crowd result

export interface CrowdTick {
  /** Seconds since the start. */
  t: number;
  /** Clients running. */
  active: number;
  /** Requests waiting for their response. */
  inFlight: number;
  /** In the last second: */
  requests: number;
  responses: number;
  bytes: number;
  errors: number;
  /** Latency percentiles of the responses of the last second (ms; 0 when none). */
  p50: number;
  p99: number;
  serverRssBytes: number | undefined;
  serverCpuPercent: number | undefined;
  simulatorCpuPercent: number | undefined;
  /** Totals so far. */
  totalResponses: number;
  totalErrors: number;
}

export interface CrowdSettings {
  pattern: PatternName;
  dialect: string;
  clients: number;
  every: number;
  duration: number;
  sessionLength: number;
  framesPerQuery: number;
  woi: { w: number; h: number };
  level: number;
  len: number;
  /** Requests per second per client (open loop); undefined: closed loop. */
  rate: number | undefined;
  timeoutMs: number;
  maxRetries: number;
}

export interface CrowdResult {
  schema: typeof CROWD_SCHEMA;
  schemaVersion: number;
  env: RunEnvironment;
  startedAt: string;
  settings: CrowdSettings;
  target: {
    url: string;
    /** Our server, started by the run in this process. */
    embedded: boolean;
    /** Image root of the embedded server (or the root the movies were listed from). */
    root: string | undefined;
    movies: MovieInfo[];
  };
  /** Wall time from the first crowd to the end of the last data request, seconds. */
  elapsedSeconds: number;
  totals: {
    clients: number;
    /** Most clients running at once (each holds its own connection). Added in schema 1; absent in early files. */
    peakClients?: number;
    /** Most requests waiting for their response at once. */
    peakInFlight?: number;
    /** Clients that stopped after too many failures in a row. */
    clientsGaveUp: number;
    requests: number;
    responses: number;
    /** Body bytes of the responses (content-decoded). */
    bytes: number;
    messages: number;
    windowsDone: number;
    sessionsOpened: number;
    sessionsClosed: number;
    /** Channels given up without cclose (after an error, or EOR 6). */
    sessionsAbandoned: number;
    retries: number;
    /** Requests still running when the run stopped, aborted (not errors). */
    abortedAtEnd: number;
  };
  rates: { requestsPerSecond: number; responsesPerSecond: number; bytesPerSecond: number };
  errors: { total: number; byKind: Partial<Record<ClientErrorKind, number>>; byStatus: Record<string, number>; samples: { kind: ClientErrorKind; message: string; count: number }[] };
  /** Final EOR reasons of the responses, by reason code. */
  eor: Record<string, number>;
  /** Request latency in ms (in --rate mode from the time the request was due: coordinated omission corrected). */
  latencyMs: LatencySummary;
  /** --rate mode only: from the time the request was sent. */
  serviceTimeMs: LatencySummary | undefined;
  /** The latency histogram, HdrHistogram compressed base64 (microseconds). */
  latencyHistogram: string;
  server: (ProcSummary & { sameProcessAsSimulator: boolean }) | undefined;
  simulator: ProcSummary;
  timeline: CrowdTick[];
  /** A result merged from several load-generator processes (`report --merge`, client-sim/merge.ts): its parts. */
  mergedFrom?: MergedPart[];
}

// ---------------------------------------------------------------------------
// Hammer result

export interface HammerResult {
  schema: typeof HAMMER_SCHEMA;
  schemaVersion: number;
  env: RunEnvironment;
  startedAt: string;
  settings: { target: string; connections: number; duration: number; windows: string[]; len: number; timeoutSeconds: number };
  target: { url: string; embedded: boolean; root: string | undefined };
  elapsedSeconds: number;
  totals: { requests: number; responses: number; bytes: number; errors: number; timeouts: number; non2xx: number; resets: number };
  rates: { requestsPerSecond: number; bytesPerSecond: number };
  statusCodes: Record<string, number>;
  /** autocannon's latency, ms (1 ms resolution). */
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  server: (ProcSummary & { sameProcessAsSimulator: boolean }) | undefined;
  simulator: ProcSummary;
}

// ---------------------------------------------------------------------------
// Files

export function writeJsonResult(file: string, result: CrowdResult | HammerResult): void {
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}

type Cell = string | number | boolean | undefined;

function envColumns(r: CrowdResult | HammerResult): Record<string, Cell> {
  return {
    schema: r.schema,
    schema_version: r.schemaVersion,
    tool_version: r.env.toolVersion,
    node: r.env.node,
    cpu_model: r.env.cpuModel,
    cpus: r.env.cpus,
    git_commit: r.env.gitCommit ?? '',
    git_dirty: r.env.gitDirty ?? '',
    started_at: r.startedAt,
  };
}

function procColumns(server: CrowdResult['server'], sim: ProcSummary): Record<string, Cell> {
  return {
    server_measured: server?.available ?? false,
    server_same_process: server?.sameProcessAsSimulator ?? false,
    server_rss_max_mb: server?.available ? round(server.rssMaxBytes / 1048576, 1) : '',
    server_sockets_max: server?.socketsMax ?? '',
    server_cpu_mean_pct: server?.available ? server.cpuPercentMean : '',
    server_cpu_max_pct: server?.available ? server.cpuPercentMax : '',
    simulator_cpu_mean_pct: sim.available ? sim.cpuPercentMean : '',
    simulator_rss_max_mb: sim.available ? round(sim.rssMaxBytes / 1048576, 1) : '',
  };
}

/** One CSV row of a crowd run: the columns of the paper's Table I and what produced them. */
export function crowdCsvRow(r: CrowdResult, kinds: readonly ClientErrorKind[]): Record<string, Cell> {
  const s = r.settings;
  const row: Record<string, Cell> = {
    ...envColumns(r),
    pattern: s.pattern,
    dialect: s.dialect,
    target: r.target.url,
    embedded: r.target.embedded,
    movies: r.target.movies.length,
    clients: s.clients,
    every_s: s.every,
    duration_s: s.duration,
    session_length_s: s.sessionLength,
    frames_per_query: s.framesPerQuery,
    woi: `${s.woi.w}x${s.woi.h}`,
    level: s.level,
    len: s.len,
    rate_per_client: s.rate ?? '',
    elapsed_s: r.elapsedSeconds,
    clients_total: r.totals.clients,
    peak_clients: r.totals.peakClients ?? '',
    peak_in_flight: r.totals.peakInFlight ?? '',
    requests: r.totals.requests,
    responses: r.totals.responses,
    responses_per_s: r.rates.responsesPerSecond,
    bytes: r.totals.bytes,
    bytes_per_s: r.rates.bytesPerSecond,
    windows_done: r.totals.windowsDone,
    sessions_opened: r.totals.sessionsOpened,
    sessions_closed: r.totals.sessionsClosed,
    sessions_abandoned: r.totals.sessionsAbandoned,
    retries: r.totals.retries,
    clients_gave_up: r.totals.clientsGaveUp,
    errors: r.errors.total,
  };
  for (const k of kinds) if (k !== 'aborted') row[`errors_${k.replace(/-/g, '_')}`] = r.errors.byKind[k] ?? 0;
  Object.assign(row, {
    latency_p50_ms: r.latencyMs.p50,
    latency_p90_ms: r.latencyMs.p90,
    latency_p99_ms: r.latencyMs.p99,
    latency_p999_ms: r.latencyMs.p999,
    latency_max_ms: r.latencyMs.max,
    latency_mean_ms: r.latencyMs.mean,
    ...procColumns(r.server, r.simulator),
  });
  return row;
}

export function hammerCsvRow(r: HammerResult): Record<string, Cell> {
  return {
    ...envColumns(r),
    target: r.target.url,
    path: r.settings.target,
    embedded: r.target.embedded,
    connections: r.settings.connections,
    duration_s: r.settings.duration,
    windows: r.settings.windows.length,
    elapsed_s: r.elapsedSeconds,
    requests: r.totals.requests,
    requests_per_s: r.rates.requestsPerSecond,
    bytes: r.totals.bytes,
    bytes_per_s: r.rates.bytesPerSecond,
    errors: r.totals.errors,
    timeouts: r.totals.timeouts,
    non2xx: r.totals.non2xx,
    latency_p50_ms: r.latencyMs.p50,
    latency_p90_ms: r.latencyMs.p90,
    latency_p99_ms: r.latencyMs.p99,
    latency_max_ms: r.latencyMs.max,
    latency_mean_ms: r.latencyMs.mean,
    ...procColumns(r.server, r.simulator),
  };
}

/**
 * Writes one CSV row with its header (csv-stringify). When `file` already
 * starts with the same header, the row is appended instead: a series of runs
 * builds one table. A file with another header is refused (an Error).
 */
export function writeCsvRow(file: string, row: Record<string, Cell>): 'created' | 'appended' {
  const columns = Object.keys(row);
  const header = stringify([columns]).trimEnd();
  const line = stringify([row], { columns, cast: { boolean: (v) => (v ? 'true' : 'false') } });
  if (existsSync(file)) {
    const first = readFileSync(file, 'utf8').split(/\r?\n/, 1)[0] ?? '';
    if (first === header) {
      appendFileSync(file, line);
      return 'appended';
    }
    if (first !== '') throw new Error(`${file} holds another table (its header differs): choose another file`);
  }
  writeFileSync(file, `${header}\n${line}`);
  return 'created';
}

// ---------------------------------------------------------------------------
// Text

const round = (v: number, digits = 0): number => {
  const k = 10 ** digits;
  return Math.round(v * k) / k;
};

/** 1234567 -> '1.23 MB' (decimal units, as throughput is usually given). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}

function procLine(p: ProcSummary): string {
  if (!p.available) return `${p.label}: not measured (no /proc, or the process is gone)`;
  const sockets = p.socketsMax !== undefined ? `, ${int(p.socketsMax)} sockets open at most` : '';
  return `RSS max ${formatBytes(p.rssMaxBytes)}, CPU mean ${p.cpuPercentMean}% (max ${p.cpuPercentMax}%) of one core${sockets}`;
}

function serverLines(server: CrowdResult['server'], sim: ProcSummary, cores: number): [string, string][] {
  const rows: [string, string][] = [];
  if (!server) rows.push(['server', 'not measured (give --server-pid)']);
  else if (server.sameProcessAsSimulator) {
    rows.push(['server', `${procLine(server)}`]);
    rows.push(['', 'the embedded server runs in this process: these figures INCLUDE the simulator (nothing subtracted)']);
  } else rows.push([server.pids ? `server (pids ${server.pids.join('+')}, summed)` : `server (pid ${server.pid})`, procLine(server)]);
  rows.push(['simulator', `${procLine(sim)}; ${cores} cores`]);
  return rows;
}

function latencyLine(l: LatencySummary): string {
  if (l.count === 0) return 'no responses';
  return `p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}  mean ${l.mean}  (${int(l.count)} responses)`;
}

/** The end-of-run summary of a crowd, as text. */
export function formatCrowdSummary(r: CrowdResult): string {
  const s = r.settings;
  const t = r.totals;
  const movies = r.target.movies.map((m) => `${m.target} (${m.frames} frames, ${m.sizes[0]!.width}x${m.sizes[0]!.height})`).join(', ');
  const where = r.target.embedded ? `embedded server over ${r.target.root ?? '?'}` : 'external server';
  const mode = s.rate === undefined ? 'closed loop' : `open loop, ${s.rate} requests/s per client`;
  const errKinds = Object.entries(r.errors.byKind)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const statuses = Object.entries(r.errors.byStatus)
    .map(([k, n]) => `HTTP ${k}: ${n}`)
    .join(', ');
  const rows: [string, string][] = [
    ['target', `${r.target.url} (${where}), dialect ${s.dialect}`],
    ['movies', movies],
    ['scenario', `${s.pattern} pattern, ${s.clients} clients every ${s.every} s, sessions of ${s.sessionLength} s, ${s.duration} s in all, ${mode}`],
    ['window', s.pattern === 'paper' ? `${s.framesPerQuery} frames per request, woi ${s.woi.w}x${s.woi.h} at level ${s.level}, len ${s.len}` : `whole frames at level ${s.level}, JHelioviewer's sequence`],
    ['elapsed', `${r.elapsedSeconds} s`],
    ['clients', `${int(t.clients)}${t.peakClients !== undefined ? `, at most ${int(t.peakClients)} at once (one connection each)` : ''}${t.clientsGaveUp > 0 ? `; ${t.clientsGaveUp} gave up` : ''}`],
    ['requests', `${int(t.requests)} (${r.rates.requestsPerSecond}/s)`],
    ['responses', `${int(t.responses)} (${r.rates.responsesPerSecond}/s)`],
    ['bytes', `${formatBytes(t.bytes)} (${formatBytes(r.rates.bytesPerSecond)}/s)`],
    ['windows done', int(t.windowsDone)],
    ['sessions', `${int(t.sessionsOpened)} opened, ${int(t.sessionsClosed)} closed, ${int(t.sessionsAbandoned)} abandoned`],
    ['retries', int(t.retries)],
    ['errors', r.errors.total === 0 ? '0' : `${int(r.errors.total)}: ${errKinds}${statuses ? ` (${statuses})` : ''}`],
    ['latency (ms)', latencyLine(r.latencyMs)],
  ];
  if (r.serviceTimeMs) rows.push(['service time (ms)', latencyLine(r.serviceTimeMs)]);
  if (t.abortedAtEnd > 0) rows.push(['aborted at end', `${t.abortedAtEnd} requests still running when the run stopped`]);
  rows.push(...serverLines(r.server, r.simulator, r.env.cpus));
  const lines = [`jpip-bench crowd: ${r.errors.total === 0 ? 'no errors' : `${r.errors.total} errors`}`, table(rows)];
  if (r.errors.samples.length > 0) {
    lines.push('first errors:');
    for (const e of r.errors.samples) lines.push(`  [${e.kind}] x${e.count} ${e.message}`);
  }
  return lines.join('\n');
}

/** One progress line (for a terminal). */
export function formatCrowdTick(t: CrowdTick, duration: number): string {
  const srv = t.serverCpuPercent === undefined ? '' : ` | server ${formatBytes(t.serverRssBytes ?? 0)} ${t.serverCpuPercent}% CPU`;
  return `${String(Math.round(t.t)).padStart(3)}/${duration}s | ${t.active} clients, ${t.inFlight} in flight | ${t.responses} resp/s ${formatBytes(t.bytes)}/s | p50 ${t.p50} p99 ${t.p99} ms | ${t.totalErrors} errors${srv}`;
}

export function formatHammerSummary(r: HammerResult): string {
  const t = r.totals;
  const rows: [string, string][] = [
    ['target', `${r.target.url}/${r.settings.target} (${r.target.embedded ? `embedded server over ${r.target.root ?? '?'}` : 'external server'})`],
    ['load', `${r.settings.connections} connections, ${r.settings.duration} s, ${r.settings.windows.length} windows (stateless, len ${r.settings.len})`],
    ['responses', `${int(t.responses)} (${r.rates.requestsPerSecond}/s); ${int(t.requests)} requests sent`],
    ['bytes', `${formatBytes(t.bytes)} (${formatBytes(r.rates.bytesPerSecond)}/s)`],
    ['errors', `${t.errors} (timeouts ${t.timeouts}, non-2xx ${t.non2xx}, resets ${t.resets})`],
    ['status codes', Object.entries(r.statusCodes).map(([k, n]) => `${k}: ${int(n)}`).join(', ') || '-'],
    ['latency (ms)', `p50 ${r.latencyMs.p50}  p90 ${r.latencyMs.p90}  p99 ${r.latencyMs.p99}  p99.9 ${r.latencyMs.p999}  max ${r.latencyMs.max}  mean ${r.latencyMs.mean}  (autocannon: 1 ms resolution)`],
    ...serverLines(r.server, r.simulator, r.env.cpus),
  ];
  return [`jpip-bench hammer: ${t.errors + t.non2xx === 0 ? 'no errors' : `${t.errors + t.non2xx} errors`}`, table(rows)].join('\n');
}
