import autocannon from 'autocannon';
import { STREAM_TYPE } from '../jpip/constants.js';
import { formatRequest, parseRequest, type JpipRequest } from '../jpip/request.js';
import { mulberry32 } from '../fixtures-gen/synth.js';
import { findMovies, openTarget, probeMovie } from './crowd.js';
import { ProcSampler } from './measure.js';
import type { MovieInfo } from './patterns.js';
import { HAMMER_SCHEMA, RESULT_SCHEMA_VERSION, runEnvironment, type HammerResult } from './results.js';

/**
 * `jpip-bench hammer`: the most requests a server answers per second for a
 * fixed mix of windows, driven by autocannon (raw HTTP/1.1 keep-alive load,
 * `connections` connections each sending its next request when the last
 * response is in). Requests are stateless (no channel), so every response
 * carries its whole window: this measures serving, not caching. autocannon
 * does not decode bodies: use `crowd` to check what arrives.
 */

export interface HammerOptions {
  /** URL of a running server; absent: the embedded server over `root`. */
  server?: string | undefined;
  root?: string | undefined;
  /** Image path on the server; default the first movie of the set (or the first image of `root`). */
  target?: string | undefined;
  /**
   * The windows, each as a JPIP query fragment (`fsiz=512,512&roff=0,0&rsiz=256,256&stream=3`),
   * or `random`; default: the whole frame at levels 0, 1, 2 and the four quadrants at level 0.
   */
  windows?: string[] | 'random' | undefined;
  /** How many random windows (default 16), and their seed (default 1). */
  randomCount?: number | undefined;
  seed?: number | undefined;
  connections?: number | undefined;
  /** Seconds. */
  duration?: number | undefined;
  /** len of each request (default 2097152). */
  len?: number | undefined;
  timeoutSeconds?: number | undefined;
  /** The server's process, or its processes (a supervisor and its worker: summed). */
  serverPid?: number | readonly number[] | undefined;
  /** Called about every second with the requests answered in it. */
  onTick?: ((t: { t: number; responses: number; bytes: number }) => void) | undefined;
}

export const HAMMER_DEFAULTS = { connections: 10, duration: 10, len: 2097152, timeoutSeconds: 10, randomCount: 16, seed: 1 } as const;

const JPP = [{ name: STREAM_TYPE.JPP, ext: false }];

/** The default mix: whole frame 0 at levels 0..2 (those the movie has), and its four quadrants at level 0. */
export function defaultWindows(movie: MovieInfo): Partial<JpipRequest>[] {
  const out: Partial<JpipRequest>[] = [];
  for (let d = 0; d <= Math.min(2, movie.sizes.length - 1); d++) {
    const s = movie.sizes[d]!;
    out.push({ stream: [{ from: 0, to: 0, step: 1 }], fsiz: { fx: s.width, fy: s.height, round: 'closest' } });
  }
  const s = movie.sizes[0]!;
  const w = Math.ceil(s.width / 2);
  const h = Math.ceil(s.height / 2);
  for (const [x, y] of [[0, 0], [w, 0], [0, h], [w, h]] as const) {
    if (x >= s.width || y >= s.height) continue;
    out.push({ stream: [{ from: 0, to: 0, step: 1 }], fsiz: { fx: s.width, fy: s.height, round: 'closest' }, roff: { x, y }, rsiz: { w: Math.min(w, s.width - x), h: Math.min(h, s.height - y) } });
  }
  return out;
}

/** `count` windows drawn with a seeded PRNG: a frame, a level, and a region of at least 1x1 inside it. */
export function randomWindows(movie: MovieInfo, count: number, seed: number): Partial<JpipRequest>[] {
  const rnd = mulberry32(seed);
  const pick = (n: number): number => Math.floor(rnd() * n);
  const out: Partial<JpipRequest>[] = [];
  for (let i = 0; i < count; i++) {
    const d = pick(movie.sizes.length);
    const s = movie.sizes[d]!;
    const x = pick(s.width);
    const y = pick(s.height);
    const w = 1 + pick(s.width - x);
    const h = 1 + pick(s.height - y);
    const f = pick(movie.frames);
    out.push({ stream: [{ from: f, to: f, step: 1 }], fsiz: { fx: s.width, fy: s.height, round: 'closest' }, roff: { x, y }, rsiz: { w, h } });
  }
  return out;
}

/** A window given as a query fragment, checked by the request parser. */
export function parseWindow(fragment: string): Partial<JpipRequest> {
  const r = parseRequest(fragment);
  const { ignored, ...fields } = r;
  if (ignored.length > 0) throw new RangeError(`window ${JSON.stringify(fragment)}: not JPIP fields: ${ignored.join(', ')}`);
  if (fields.cid !== undefined || fields.cnew !== undefined || fields.cclose !== undefined) throw new RangeError(`window ${JSON.stringify(fragment)}: hammer requests are stateless (no cid, cnew, cclose)`);
  return fields;
}

/** The request path of a stateless window request on `target`. */
export function windowPath(target: string, w: Partial<JpipRequest>, len: number): string {
  const path = `/${target.split('/').map(encodeURIComponent).join('/')}`;
  return `${path}?${formatRequest({ type: JPP, len, ...w })}`;
}

function checkCount(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

export async function runHammer(o: HammerOptions = {}): Promise<HammerResult> {
  const connections = checkCount('connections', o.connections ?? HAMMER_DEFAULTS.connections, 1);
  const duration = o.duration ?? HAMMER_DEFAULTS.duration;
  if (!(duration > 0)) throw new RangeError(`duration must be > 0 seconds, got ${duration}`);
  const len = checkCount('len', o.len ?? HAMMER_DEFAULTS.len, 0);
  const timeoutSeconds = o.timeoutSeconds ?? HAMMER_DEFAULTS.timeoutSeconds;
  const env = runEnvironment();
  const startedAt = new Date().toISOString();
  const tgt = await openTarget({ server: o.server, root: o.root, needRoot: o.target === undefined, maxConnections: connections + 16 });
  try {
    const target = o.target ?? findMovies(tgt.root!)[0];
    if (target === undefined) throw new Error(`no movie (JPX file) under ${tgt.root}: give --target`);
    let windows: Partial<JpipRequest>[];
    if (Array.isArray(o.windows) && o.windows.length > 0) {
      windows = o.windows.map(parseWindow);
    } else {
      const movie = await probeMovie(tgt.base, target, { timeoutMs: timeoutSeconds * 1000 });
      windows = o.windows === 'random' ? randomWindows(movie, checkCount('randomCount', o.randomCount ?? HAMMER_DEFAULTS.randomCount, 1), o.seed ?? HAMMER_DEFAULTS.seed) : defaultWindows(movie);
    }
    const paths = windows.map((w) => windowPath(target, w, len));

    const serverSampler =
      tgt.embedded !== undefined
        ? new ProcSampler('self', { label: 'embedded server (this process)' })
        : o.serverPid !== undefined
          ? new ProcSampler(o.serverPid, { label: `server pid ${[o.serverPid].flat().join('+')}` })
          : undefined;
    const simSampler = new ProcSampler('self', { label: 'load generator (this process)' });
    serverSampler?.start();
    simSampler.start();
    const t0 = performance.now();
    let finished: (r: autocannon.Result) => void = () => {};
    let failed: (e: unknown) => void = () => {};
    const done = new Promise<autocannon.Result>((resolve, reject) => {
      finished = resolve;
      failed = reject;
    });
    const instance = autocannon(
      {
        url: tgt.base,
        connections,
        duration,
        pipelining: 1,
        timeout: timeoutSeconds,
        requests: paths.map((path) => ({ method: 'GET' as const, path })),
      },
      (err, result) => (err ? failed(err) : finished(result)),
    );
    let tickResponses = 0;
    let tickBytes = 0;
    instance.on('response', (_client: unknown, _status: number, bytes: number) => {
      tickResponses++;
      tickBytes += bytes;
    });
    const ticker = setInterval(() => {
      o.onTick?.({ t: Math.round((performance.now() - t0) / 100) / 10, responses: tickResponses, bytes: tickBytes });
      tickResponses = 0;
      tickBytes = 0;
    }, 1000);
    let res: autocannon.Result;
    try {
      res = await done;
    } finally {
      clearInterval(ticker);
    }
    const serverSummary = serverSampler?.stop();
    const simSummary = simSampler.stop();
    const statusCodes: Record<string, number> = {};
    for (const [code, v] of Object.entries(res.statusCodeStats ?? {})) statusCodes[code] = (v as { count?: number }).count ?? 0;
    const elapsed = Math.max(0.001, res.duration);
    const responses = Object.values(statusCodes).reduce((a, b) => a + b, 0);
    const round1 = (v: number): number => Math.round(v * 10) / 10;
    return {
      schema: HAMMER_SCHEMA,
      schemaVersion: RESULT_SCHEMA_VERSION,
      env,
      startedAt,
      settings: { target, connections, duration, windows: paths, len, timeoutSeconds },
      target: { url: tgt.base, embedded: tgt.embedded !== undefined, root: tgt.root },
      elapsedSeconds: Math.round(elapsed * 1000) / 1000,
      totals: { requests: res.requests.sent, responses, bytes: res.throughput.total, errors: res.errors, timeouts: res.timeouts, non2xx: res.non2xx, resets: res.resets },
      rates: { requestsPerSecond: round1(responses / elapsed), bytesPerSecond: Math.round(res.throughput.total / elapsed) },
      statusCodes,
      latencyMs: { p50: res.latency.p50, p90: res.latency.p90, p99: res.latency.p99, p999: res.latency.p99_9, max: res.latency.max, mean: res.latency.mean },
      server: serverSummary ? { ...serverSummary, sameProcessAsSimulator: (serverSummary.pids ?? [serverSummary.pid]).includes(process.pid) } : undefined,
      simulator: simSummary,
    };
  } finally {
    await tgt.embedded?.close();
  }
}
