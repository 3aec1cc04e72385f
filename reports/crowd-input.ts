/**
 * Reading load results for the report: `jpip-bench crowd --json` (schema
 * `jpip-bench/crowd`, client-sim/results.ts `CrowdResult`) and
 * `jpip-bench hammer --json` (`jpip-bench/hammer`, `HammerResult`).
 *
 * The report needs a few fields of each run, so this reader takes those and
 * tolerates the others being absent: a run whose server was not measured
 * has no memory/CPU figures, a hammer run has no timeline. A field that is
 * present with the wrong type is an error naming the file and the field.
 */
import { CROWD_SCHEMA, HAMMER_SCHEMA, RESULT_SCHEMA_VERSION, type CrowdResult, type HammerResult } from '../client-sim/results.js';

export interface LoadLatency {
  count?: number | undefined;
  min?: number | undefined;
  mean?: number | undefined;
  stddev?: number | undefined;
  p50?: number | undefined;
  p75?: number | undefined;
  p90?: number | undefined;
  p95?: number | undefined;
  p99?: number | undefined;
  p999?: number | undefined;
  max?: number | undefined;
}

export interface LoadProcSample {
  /** Seconds since the run started. */
  t: number;
  rssBytes?: number | undefined;
  /** 100 = one core busy. */
  cpuPercent?: number | undefined;
}

export interface LoadTimelinePoint {
  /** Seconds since the run started (end of the interval). */
  t: number;
  /** Responses completed in the interval ending at t. */
  responses: number;
}

/** One load run against one server, as the report uses it. */
export interface LoadRun {
  /** The file it came from. */
  source: string;
  kind: 'crowd' | 'hammer';
  /** Label of the server (given on the command line, or made from the dialect and URL). */
  server: string;
  dialect?: string | undefined;
  url?: string | undefined;
  /** Clients per crowd (crowd), connections (hammer). */
  clients?: number | undefined;
  durationSeconds?: number | undefined;
  responses?: number | undefined;
  responsesPerSecond?: number | undefined;
  errors?: number | undefined;
  bytes?: number | undefined;
  /** Milliseconds. */
  latency: LoadLatency;
  /** Samples of the server process (empty: not measured). */
  process: LoadProcSample[];
  /** The server ran inside the load generator's process: its figures include the generator. */
  serverIncludesSimulator: boolean;
  /** The load generator's own mean CPU (% of one core). */
  simulatorCpuPercent?: number | undefined;
  timeline: LoadTimelinePoint[];
}

const LATENCY_KEYS = ['count', 'min', 'mean', 'stddev', 'p50', 'p75', 'p90', 'p95', 'p99', 'p999', 'max'] as const;

type Obj = Record<string, unknown>;

class Reader {
  readonly where: string;
  constructor(where: string) {
    this.where = where;
  }
  fail(path: string, msg: string): never {
    throw new RangeError(`${this.where}: ${path}: ${msg}`);
  }
  obj(v: unknown, path: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'must be an object');
    return v as Obj;
  }
  /** The object at o[key], or undefined when absent (null counts as absent). */
  optObj(o: Obj, key: string, path: string): Obj | undefined {
    const v = o[key];
    return v === undefined || v === null ? undefined : this.obj(v, `${path}.${key}`);
  }
  /** A finite number >= 0, or undefined when absent. */
  num(o: Obj | undefined, key: string, path: string): number | undefined {
    const v = o?.[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) this.fail(`${path}.${key}`, `must be a number >= 0, got ${JSON.stringify(v)}`);
    return v;
  }
  str(o: Obj | undefined, key: string, path: string): string | undefined {
    const v = o?.[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(`${path}.${key}`, 'must be a string');
    return v;
  }
  bool(o: Obj | undefined, key: string, path: string): boolean | undefined {
    const v = o?.[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(`${path}.${key}`, 'must be true or false');
    return v;
  }
  arr(o: Obj | undefined, key: string, path: string): unknown[] {
    const v = o?.[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail(`${path}.${key}`, 'must be an array');
    return v;
  }
}

function latencyOf(r: Reader, o: Obj): LoadLatency {
  const lo = r.optObj(o, 'latencyMs', '');
  const out: LoadLatency = {};
  for (const k of LATENCY_KEYS) out[k] = r.num(lo, k, 'latencyMs');
  return out;
}

/** Server process samples (`server.samples`, when the server was measured). */
function serverOf(r: Reader, o: Obj): { process: LoadProcSample[]; same: boolean; sim: number | undefined } {
  const srv = r.optObj(o, 'server', '');
  const sim = r.optObj(o, 'simulator', '');
  const simCpu = r.bool(sim, 'available', 'simulator') === false ? undefined : r.num(sim, 'cpuPercentMean', 'simulator');
  if (!srv || r.bool(srv, 'available', 'server') === false) return { process: [], same: false, sim: simCpu };
  const process = r.arr(srv, 'samples', 'server').map((x, i) => {
    const p = `server.samples[${i}]`;
    const so = r.obj(x, p);
    const t = r.num(so, 't', p);
    if (t === undefined) r.fail(p, 'has no t');
    return { t, rssBytes: r.num(so, 'rssBytes', p), cpuPercent: r.num(so, 'cpuPercent', p) };
  });
  return { process, same: r.bool(srv, 'sameProcessAsSimulator', 'server') ?? false, sim: simCpu };
}

function labelOf(dialect: string | undefined, url: string | undefined, embedded: boolean | undefined): string {
  if (embedded) return `${dialect ?? 'ours'} (embedded)`;
  let host = url;
  try {
    if (url) host = new URL(url).host;
  } catch {
    // keep the text
  }
  return [dialect, host].filter((x) => x).join(' ') || 'server';
}

function readCrowd(r: Reader, o: Obj, label: string | undefined): LoadRun {
  const settings = r.optObj(o, 'settings', '');
  const target = r.optObj(o, 'target', '');
  const totals = r.optObj(o, 'totals', '');
  const rates = r.optObj(o, 'rates', '');
  const errors = r.optObj(o, 'errors', '');
  const dialect = r.str(settings, 'dialect', 'settings');
  const url = r.str(target, 'url', 'target');
  const { process: samples, same, sim } = serverOf(r, o);
  const ticks = r.arr(o, 'timeline', '').map((x, i) => {
    const p = `timeline[${i}]`;
    const to = r.obj(x, p);
    const t = r.num(to, 't', p);
    const n = r.num(to, 'responses', p);
    if (t === undefined || n === undefined) r.fail(p, 'needs t and responses');
    return { t, responses: n, rssBytes: r.num(to, 'serverRssBytes', p), cpuPercent: r.num(to, 'serverCpuPercent', p) };
  });
  // Without process samples, the server figures of the timeline ticks (same sampler, per second) serve.
  const process = samples.length > 0 ? samples : ticks.filter((k) => k.rssBytes !== undefined || k.cpuPercent !== undefined).map(({ t, rssBytes, cpuPercent }) => ({ t, rssBytes, cpuPercent }));
  return {
    source: r.where,
    kind: 'crowd',
    server: label ?? labelOf(dialect, url, r.bool(target, 'embedded', 'target')),
    dialect,
    url,
    clients: r.num(settings, 'clients', 'settings'),
    durationSeconds: r.num(o, 'elapsedSeconds', ''),
    responses: r.num(totals, 'responses', 'totals'),
    responsesPerSecond: r.num(rates, 'responsesPerSecond', 'rates'),
    errors: r.num(errors, 'total', 'errors'),
    bytes: r.num(totals, 'bytes', 'totals'),
    latency: latencyOf(r, o),
    process,
    serverIncludesSimulator: same,
    simulatorCpuPercent: sim,
    timeline: ticks.map(({ t, responses }) => ({ t, responses })),
  };
}

function readHammer(r: Reader, o: Obj, label: string | undefined): LoadRun {
  const settings = r.optObj(o, 'settings', '');
  const target = r.optObj(o, 'target', '');
  const totals = r.optObj(o, 'totals', '');
  const rates = r.optObj(o, 'rates', '');
  const url = r.str(target, 'url', 'target');
  const { process, same, sim } = serverOf(r, o);
  const errs = r.num(totals, 'errors', 'totals');
  const non2xx = r.num(totals, 'non2xx', 'totals');
  return {
    source: r.where,
    kind: 'hammer',
    server: label ?? `${labelOf(undefined, url, r.bool(target, 'embedded', 'target'))} (hammer)`,
    url,
    clients: r.num(settings, 'connections', 'settings'),
    durationSeconds: r.num(o, 'elapsedSeconds', ''),
    responses: r.num(totals, 'responses', 'totals'),
    responsesPerSecond: r.num(rates, 'requestsPerSecond', 'rates'),
    errors: errs === undefined && non2xx === undefined ? undefined : (errs ?? 0) + (non2xx ?? 0),
    bytes: r.num(totals, 'bytes', 'totals'),
    latency: latencyOf(r, o),
    process,
    serverIncludesSimulator: same,
    simulatorCpuPercent: sim,
    timeline: [],
  };
}

/** True for parsed JSON of a crowd or hammer result. */
export function isLoadResultJson(json: unknown): boolean {
  const s = typeof json === 'object' && json !== null ? (json as Obj)['schema'] : undefined;
  return s === CROWD_SCHEMA || s === HAMMER_SCHEMA;
}

/**
 * A load run from a parsed crowd or hammer result. `label` names the server
 * in the report (default: dialect and host, or "(embedded)"). Throws
 * RangeError naming the file and the field for a malformed one.
 */
export function readLoadResult(json: unknown, where = 'result', label?: string): LoadRun {
  const r = new Reader(where);
  const o = r.obj(json, '(top)');
  const schema = o['schema'];
  if (schema !== CROWD_SCHEMA && schema !== HAMMER_SCHEMA) r.fail('schema', `not a crowd or hammer result (${JSON.stringify(schema)})`);
  const v = o['schemaVersion'];
  if (v !== undefined && v !== RESULT_SCHEMA_VERSION) r.fail('schemaVersion', `version ${JSON.stringify(v)}; this tool reads version ${RESULT_SCHEMA_VERSION}`);
  return schema === CROWD_SCHEMA ? readCrowd(r, o, label) : readHammer(r, o, label);
}

/** The typed results, for callers that hold them in memory. */
export function loadRunOf(result: CrowdResult | HammerResult, where = 'result', label?: string): LoadRun {
  return readLoadResult(result as unknown, where, label);
}
