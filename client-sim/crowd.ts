import { setMaxListeners } from 'node:events';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { BIN_CLASS, EOR } from '../jpip/constants.js';
import { listImages } from '../jpeg2000/archive.js';
import { readBoxTree } from '../jpeg2000/boxes.js';
import { openFileSource } from '../jpeg2000/file-source.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { CLIENT_ERROR_KINDS, ClientError, JpipClient, isClientError, type ClientErrorKind, type JpipResponse, type Transport } from './client.js';
import { dialectByName, type Dialect } from './dialects.js';
import { encodeHistogram, newLatencyHistogram, ProcSampler, recordMs, summarizeLatency, type Histogram } from './measure.js';
import { UndiciTransport } from './node-transport.js';
import {
  ALL_METADATA,
  JHV_HEADERS,
  JHV_MAX_RETRIES,
  PATTERNS,
  PATTERN_NAMES,
  codestreamCountFromMetadata,
  frameSizes,
  mainHeaderFacts,
  one,
  paperWindow,
  type MovieInfo,
  type PatternContext,
} from './patterns.js';
import { CROWD_SCHEMA, RESULT_SCHEMA_VERSION, packageRoot, runEnvironment, type CrowdResult, type CrowdSettings, type CrowdTick } from './results.js';

/**
 * The flash-crowd simulator (`jpip-bench crowd`): the ESA JPIP paper's load
 * scenario. Every `every` seconds a crowd of `clients` new clients arrives;
 * each opens a session on one of the movies and plays it for
 * `sessionLength` seconds (see patterns.ts), then closes it. The run lasts
 * `duration` seconds: crowds arrive until then, and sessions are cut at the
 * end of the run (clients still playing then stop and close their sessions),
 * so rates are over `duration` seconds. Each client has its own keep-alive
 * connection.
 *
 * The target is a running server (`server`), or by default an embedded one
 * of ours, started in this process on a free 127.0.0.1 port over the small
 * fixture set of the repository. Measured: requests, responses, bytes,
 * latency (HDR histogram), errors by kind, retries, sessions; every second
 * the server's RSS and CPU% (from /proc, with `serverPid` or the embedded
 * server, which IS this process: the figures then include the simulator and
 * say so) and the simulator's own CPU.
 *
 * Closed loop by default (a client sends its next request when the response
 * is in). With `rate`, each client's requests are due at fixed intervals and
 * latency counts from when a request was due, so a stalled server is not
 * hidden by the requests it kept from being sent (coordinated omission).
 */

/**
 * Image roots tried in order for the default set: the shipped small fixture
 * set, then the movie the tests use. Switching the default is this one line.
 */
export const DEFAULT_FIXTURE_ROOTS = ['fixtures/small', 'test/fixtures/movie'] as const;

/** The default image root: the first of DEFAULT_FIXTURE_ROOTS that exists in the package. */
export function defaultRoot(): string {
  for (const r of DEFAULT_FIXTURE_ROOTS) {
    const p = join(packageRoot(), r);
    if (existsSync(p)) return p;
  }
  throw new Error(`no fixture set found (looked for ${DEFAULT_FIXTURE_ROOTS.join(', ')} under ${packageRoot()}): give --root or --server`);
}

export const CROWD_DEFAULTS: Readonly<CrowdSettings> = Object.freeze({
  pattern: 'paper',
  dialect: 'ours',
  clients: 100,
  every: 5, // seconds between crowds
  duration: 60, // seconds of crowds
  sessionLength: 30, // seconds per client session
  framesPerQuery: 15,
  woi: Object.freeze({ w: 1024, h: 1024 }),
  // Resolution levels discarded. 2 is the paper's view: a 4096x4096 frame seen at 1024x1024 (the
  // paper preset); the shipped small set's 1024x1024 frames then come at 256x256.
  level: 2,
  len: 2097152, // bytes per request (JHelioviewer's)
  rate: undefined, // requests/s per client; undefined = closed loop
  timeoutMs: 30_000, // per request
  maxRetries: 3, // failures in a row before a client gives up (JHelioviewer's pattern: 13)
}) as CrowdSettings;

export interface CrowdOptions extends Partial<CrowdSettings> {
  /** URL of a running server; absent: the embedded server. */
  server?: string | undefined;
  /** Image root of the embedded server, and where movies are listed from. Default `defaultRoot()`. */
  root?: string | undefined;
  /** `paper` generates the paper's set with the fixture generator. Default `small` (the shipped set). */
  preset?: 'small' | 'paper' | undefined;
  /** Movie paths on the server; default: the linked JPX files under `root` (all JPX if none is linked). */
  targets?: string[] | undefined;
  /** Use only the first N movies of the set. */
  movies?: number | undefined;
  /** What clients know of the movies; default: asked from the server before the run (not measured). */
  movieInfo?: MovieInfo[] | undefined;
  /** Sample this process's RSS and CPU as the server's. */
  /** The server's process, or its processes (a supervisor and its worker: summed). */
  serverPid?: number | readonly number[] | undefined;
  /** After `duration`, how long running requests may take before they are aborted (ms; default min(timeoutMs, 10 s)). */
  graceMs?: number | undefined;
  /** Sampling and tick interval (ms, default 1000). */
  tickMs?: number | undefined;
  /** Called every tick (the progress line). */
  onTick?: ((t: CrowdTick) => void) | undefined;
  /** Stops the run early (running requests are aborted, sessions closed). */
  signal?: AbortSignal | undefined;
  /** Transport of each client (default: an UndiciTransport with one connection). */
  transport?: (() => Transport) | undefined;
  /** https:// servers: accept any certificate (self-signed test certificates). */
  insecure?: boolean | undefined;
  /** Count the server's open sockets at every tick (/proc/<pid>/fd; costs a readlink per descriptor). */
  countSockets?: boolean | undefined;
  /** Server log events of the embedded server. */
  serverLog?: ((e: Record<string, unknown>) => void) | undefined;
}

function invalid(name: string, expected: string, actual: unknown): RangeError {
  return new RangeError(`${name} must be ${expected}, got ${JSON.stringify(actual) ?? String(actual)}`);
}

function checkInt(name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(v) || v < min || v > max) throw invalid(name, `an integer in [${min}, ${max}]`, v);
  return v;
}

function checkPositive(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw invalid(name, 'a number > 0', v);
  return v;
}

/** The settings of a run: defaults filled in, every value checked (RangeError naming the option), frozen. */
export function resolveCrowdSettings(o: Partial<CrowdSettings>): Readonly<CrowdSettings> {
  const s: CrowdSettings = { ...CROWD_DEFAULTS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  // JHelioviewer retries more than the default unless told otherwise.
  if (o.maxRetries === undefined && s.pattern === 'jhelioviewer') s.maxRetries = JHV_MAX_RETRIES;
  if (!(PATTERN_NAMES as readonly string[]).includes(s.pattern)) throw invalid('pattern', `one of ${PATTERN_NAMES.join(', ')}`, s.pattern);
  dialectByName(s.dialect);
  checkInt('clients', s.clients, 1, 100_000);
  checkPositive('every', s.every);
  checkPositive('duration', s.duration);
  checkPositive('sessionLength', s.sessionLength);
  checkInt('framesPerQuery', s.framesPerQuery, 1, 4096);
  checkInt('woi width', s.woi.w, 1, 2 ** 32);
  checkInt('woi height', s.woi.h, 1, 2 ** 32);
  checkInt('level', s.level, 0, 32);
  checkInt('len', s.len, 0, 2 ** 32);
  if (s.rate !== undefined) checkPositive('rate', s.rate);
  checkPositive('timeoutMs', s.timeoutMs);
  checkInt('maxRetries', s.maxRetries, 0, 1000);
  return Object.freeze({ ...s, woi: Object.freeze({ ...s.woi }) });
}

// ---------------------------------------------------------------------------
// The set of movies

function isLinkedJpx(path: string): boolean {
  try {
    const src = openFileSource(path);
    try {
      return readBoxTree(src).some((b) => b.type === 'dtbl');
    } finally {
      src.close();
    }
  } catch {
    return false;
  }
}

/** The movies under `root`, as paths relative to it: the linked JPX files, or every JPX file if none is linked. */
export function findMovies(root: string): string[] {
  const jpx = listImages(root).filter((p) => ['.jpx', '.jpf'].includes(extname(p).toLowerCase()));
  const linked = jpx.filter(isLinkedJpx);
  return (linked.length > 0 ? linked : jpx).map((p) => relative(root, p).split(sep).join('/'));
}

const isDone = (r: JpipResponse): boolean => r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE;

/**
 * Asks the server what a client needs to know of a movie: its frame count
 * (from the placeholders of metadata-bin 0) and its frame size at each level
 * (from the main header of codestream 0). One short session, not measured.
 */
export async function probeMovie(base: string, target: string, o: { dialect?: Dialect; timeoutMs?: number; transport?: Transport } = {}): Promise<MovieInfo> {
  const client = new JpipClient(base, { transport: o.transport ?? new UndiciTransport(), dialect: o.dialect, timeoutMs: o.timeoutMs ?? 30_000, keepItems: false });
  try {
    const meta = { stream: one(0), metareq: ALL_METADATA, len: 2_000_000 };
    let r = await client.open(target, meta);
    for (let n = 0; !isDone(r) && n < 50; n++) r = await client.requestOk(meta);
    const bin0 = client.store.get(0, BIN_CLASS.METADATA, 0);
    const frames = bin0 ? codestreamCountFromMetadata(bin0.bytes()) : undefined;
    for (let n = 0; n < 50 && mainHeaderFacts(client.store) === undefined; n++) {
      r = await client.requestOk({ stream: one(0), fsiz: { fx: 1, fy: 1, round: 'round-up' }, len: 65536 });
      if (isDone(r)) break;
    }
    const facts = mainHeaderFacts(client.store);
    if (!facts) throw new Error(`${target}: the server sent no complete main header for codestream 0`);
    return { target, frames: frames ?? 1, sizes: frameSizes(facts.siz, facts.levels) };
  } finally {
    await client.dispose().catch(() => {});
  }
}

/** Where `--preset paper` writes the paper's set: $JPIP_BENCH_FIXTURES, else the user's cache directory. */
export function presetDir(preset: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env['JPIP_BENCH_FIXTURES']) return join(env['JPIP_BENCH_FIXTURES'], preset);
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'jpip-bench', 'fixtures', preset);
}

/**
 * The paper's set (20 linked-JPX movies of 1000 frames of 4096x4096), made by
 * the fixture generator, or brought up to date (a second run only checks).
 * It needs an encoder (opj_compress); the generator says so when there is none.
 */
export async function paperPresetRoot(out = presetDir('paper'), onProgress?: (p: { phase: string; done: number; total: number }) => void): Promise<string> {
  const { generateFixtures } = await import('../fixtures-gen/generate.js');
  const r = await generateFixtures({ preset: 'paper', out, onProgress });
  return r.dir;
}

export interface OpenedTarget {
  /** Base URL, no trailing slash. */
  base: string;
  /** The embedded server, when the run started one. */
  embedded: JpipServer | undefined;
  /** Absolute image root (embedded server, or where movies are listed from). */
  root: string | undefined;
}

/**
 * The server a run measures: `server` if given, else an embedded server of
 * ours on a free 127.0.0.1 port over `root` (default: `preset` paper's set, or
 * the shipped small set). The caller closes `embedded`.
 */
export async function openTarget(o: {
  server?: string | undefined;
  root?: string | undefined;
  preset?: 'small' | 'paper' | undefined;
  /** A root is needed even with `server` (to list movies). */
  needRoot?: boolean;
  /** Connections the embedded server must accept at once. */
  maxConnections?: number;
  serverLog?: ((e: Record<string, unknown>) => void) | undefined;
}): Promise<OpenedTarget> {
  if (o.server !== undefined) {
    let u: URL;
    try {
      u = new URL(o.server);
    } catch {
      throw new RangeError(`server must be an http:// or https:// URL, got ${JSON.stringify(o.server)}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new RangeError(`server must be an http:// or https:// URL, got ${o.server}`);
  }
  if (o.preset !== undefined && o.preset !== 'small' && o.preset !== 'paper') throw invalid('preset', 'small or paper', o.preset);
  let root = o.root;
  if (root === undefined && o.preset === 'paper') root = await paperPresetRoot();
  if (root === undefined && (o.server === undefined || o.needRoot)) root = defaultRoot();
  if (root !== undefined) root = isAbsolute(root) ? root : resolve(root);
  if (o.server !== undefined) return { base: o.server.replace(/\/+$/, ''), embedded: undefined, root };
  const embedded = createJpipServer({ root: root!, port: 0, host: '127.0.0.1', log: o.serverLog, maxConnections: Math.max(2048, o.maxConnections ?? 0) });
  const base = await embedded.listen();
  return { base, embedded, root };
}

// ---------------------------------------------------------------------------
// The run

/** Most distinct error messages kept as samples. */
const MAX_ERROR_SAMPLES = 10;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

class Counters {
  requests = 0;
  responses = 0;
  bytes = 0;
  messages = 0;
  errors = 0;
}

/** Everything a run counts. */
class Recorder {
  readonly total = new Counters();
  tick = new Counters();
  readonly latency: Histogram = newLatencyHistogram();
  readonly service: Histogram | undefined;
  readonly tickLatency: Histogram = newLatencyHistogram();
  readonly byKind: Partial<Record<ClientErrorKind, number>> = {};
  readonly byStatus: Record<string, number> = {};
  readonly samples = new Map<string, { kind: ClientErrorKind; message: string; count: number }>();
  readonly eor: Record<string, number> = {};
  clients = 0;
  active = 0;
  inFlight = 0;
  peakActive = 0;
  peakInFlight = 0;
  gaveUp = 0;
  windowsDone = 0;
  sessionsOpened = 0;
  sessionsClosed = 0;
  sessionsAbandoned = 0;
  retries = 0;
  abortedAtEnd = 0;
  lastResponseAt = 0;
  /** performance.now() when the last client's session ended (0: none has). */
  lastClientEndedAt = 0;

  constructor(openLoop: boolean) {
    this.service = openLoop ? newLatencyHistogram() : undefined;
  }

  response(r: JpipResponse, latencyMs: number, serviceMs: number | undefined, at: number): void {
    for (const c of [this.total, this.tick]) {
      c.responses++;
      c.bytes += r.bodyLength;
      c.messages += r.messages ?? 0;
    }
    recordMs(this.latency, latencyMs);
    recordMs(this.tickLatency, latencyMs);
    if (this.service && serviceMs !== undefined) recordMs(this.service, serviceMs);
    const key = r.eor === undefined ? 'none' : String(r.eor);
    this.eor[key] = (this.eor[key] ?? 0) + 1;
    this.lastResponseAt = Math.max(this.lastResponseAt, at);
  }

  error(e: ClientError): void {
    if (e.kind === 'aborted') {
      this.abortedAtEnd++;
      return;
    }
    this.total.errors++;
    this.tick.errors++;
    this.byKind[e.kind] = (this.byKind[e.kind] ?? 0) + 1;
    if (e.status !== undefined && e.kind === 'status') this.byStatus[String(e.status)] = (this.byStatus[String(e.status)] ?? 0) + 1;
    // Samples are keyed by kind and message without numbers (cids, byte counts differ).
    const message = e.message.replace(/^JPIP_CLIENT_ERR_[A-Z_]+: /, '');
    const key = `${e.kind}:${message.replace(/\d+/g, '#').slice(0, 160)}`;
    const s = this.samples.get(key);
    if (s) s.count++;
    else if (this.samples.size < MAX_ERROR_SAMPLES) this.samples.set(key, { kind: e.kind, message: message.slice(0, 300), count: 1 });
  }
}

/** A non-ClientError out of a pattern: the server sent something unusable (or a bug): counted, never thrown. */
function asClientError(e: unknown, url: string): ClientError {
  if (isClientError(e)) return e;
  return new ClientError('bad-stream', e instanceof Error ? e.message : String(e), { url, cause: e });
}

/** Runs a flash crowd and returns its result (plain data; see results.ts). */
export async function runCrowd(options: CrowdOptions = {}): Promise<CrowdResult> {
  const settings = resolveCrowdSettings(options);
  const env = runEnvironment();
  const startedAt = new Date().toISOString();
  const dialect = dialectByName(settings.dialect);
  if (options.serverPid !== undefined) for (const p of typeof options.serverPid === 'number' ? [options.serverPid] : options.serverPid) checkInt('serverPid', p, 1);
  if (options.serverPid !== undefined && typeof options.serverPid !== 'number' && options.serverPid.length === 0) throw invalid('serverPid', 'at least one pid', options.serverPid);
  const tickMs = options.tickMs ?? 1000;
  const graceMs = options.graceMs ?? Math.min(settings.timeoutMs, 10_000);
  const closeTimeoutMs = Math.min(settings.timeoutMs, 5_000);

  // Room for every client of the overlapping crowds, each on its own connection, plus probes.
  const peak = settings.clients * Math.ceil(settings.sessionLength / settings.every + 1) + 64;
  const needRoot = options.server === undefined || (options.targets === undefined && options.movieInfo === undefined);
  const tgt = await openTarget({ ...options, needRoot, maxConnections: peak });
  const { base, embedded, root } = tgt;
  const makeTransport = options.transport ?? ((): Transport => new UndiciTransport({ connections: 1, connectTimeoutMs: Math.min(settings.timeoutMs, 10_000), insecure: options.insecure === true }));

  try {
    // The movies and what clients know of them.
    const take = <T>(list: T[]): T[] => {
      if (options.movies === undefined) return list;
      checkInt('movies', options.movies, 1);
      if (options.movies > list.length) throw new RangeError(`movies: ${options.movies} asked, the set has ${list.length}`);
      return list.slice(0, options.movies);
    };
    let movies: MovieInfo[];
    if (options.movieInfo) {
      movies = take(options.movieInfo);
    } else {
      const targets = take(options.targets ?? findMovies(root!));
      if (targets.length === 0) throw new Error(`no movie (JPX file) under ${root}`);
      movies = [];
      for (const t of targets) movies.push(await probeMovie(base, t, { dialect, timeoutMs: settings.timeoutMs, transport: makeTransport() }));
    }
    if (movies.length === 0) throw new RangeError('no movie to play');
    if (settings.pattern === 'paper') for (const m of movies) paperWindow(m, settings);
    else for (const m of movies) if (settings.level > m.sizes.length - 1) throw new RangeError(`level ${settings.level}: ${m.target} has ${m.sizes.length - 1} resolution levels to discard`);

    const rec = new Recorder(settings.rate !== undefined);
    const pattern = PATTERNS[settings.pattern];
    const stop = new AbortController();
    // Every request and backoff of every client listens to it.
    setMaxListeners(0, stop.signal);
    const onOuterAbort = (): void => stop.abort();
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (options.signal?.aborted) stop.abort();

    const serverSampler =
      embedded !== undefined
        ? new ProcSampler('self', { intervalMs: 0, label: 'embedded server (this process)', countSockets: options.countSockets })
        : options.serverPid !== undefined
          ? new ProcSampler(options.serverPid, { intervalMs: 0, label: `server pid ${[options.serverPid].flat().join('+')}`, countSockets: options.countSockets })
          : undefined;
    // Sampled by the tick (intervalMs 0: no timer of their own), so samples and ticks line up.
    const simSampler = new ProcSampler('self', { intervalMs: 0, label: 'simulator (this process)' });

    const headers = settings.pattern === 'jhelioviewer' ? { ...JHV_HEADERS } : undefined;
    const keepClass =
      settings.pattern === 'jhelioviewer'
        ? (c: number): boolean => c === BIN_CLASS.METADATA || c === BIN_CLASS.MAIN_HEADER || c === BIN_CLASS.TILE_HEADER
        : (): boolean => false;
    const makeClient = (transport: Transport): JpipClient =>
      new JpipClient(base!, { transport, dialect, timeoutMs: settings.timeoutMs, keepItems: false, keepClass, headers });

    const t0 = performance.now();
    const deadline = t0 + settings.duration * 1000;
    const running: Promise<void>[] = [];

    const runClient = async (id: number, movie: MovieInfo, until: number): Promise<void> => {
      let transport = makeTransport();
      let client = makeClient(transport);
      let nextDue = performance.now();
      const stopped = (): boolean => stop.signal.aborted || performance.now() >= until;
      const ctx: PatternContext = {
        clientId: id,
        movie,
        opts: settings,
        get client() {
          return client;
        },
        stopped,
        send: async (fields, target) => {
          let due: number | undefined;
          if (settings.rate !== undefined) {
            due = nextDue;
            nextDue += 1000 / settings.rate;
            // Never past the end of the session: a request due after it is not sent.
            await sleep(Math.min(due, until) - performance.now(), stop.signal);
            if (due >= until || stopped()) throw new ClientError('aborted', 'the session ended before the request was due', { url: base! });
          }
          rec.total.requests++;
          rec.tick.requests++;
          rec.inFlight++;
          if (rec.inFlight > rec.peakInFlight) rec.peakInFlight = rec.inFlight;
          const start = performance.now();
          let r: JpipResponse;
          try {
            r = await client.request(fields, target, { signal: stop.signal });
            if (r.status !== 200) {
              throw new ClientError('status', `HTTP ${r.status}: ${(r.text ?? '').trim().slice(0, 200)}`, { url: base!, status: r.status, bytesReceived: r.bodyLength });
            }
          } catch (e) {
            const err = asClientError(e, base!);
            rec.error(err);
            throw err;
          } finally {
            rec.inFlight--;
          }
          const end = performance.now();
          // A timer may fire a little early: latency is never less than service time.
          rec.response(r, end - Math.min(due ?? start, start), due === undefined ? undefined : end - start, end);
          return r;
        },
        sessionOpened: () => {
          rec.sessionsOpened++;
        },
        sessionAbandoned: () => {
          rec.sessionsAbandoned++;
        },
        windowDone: () => {
          rec.windowsDone++;
        },
        close: async () => {
          if (client.cid === undefined) return;
          try {
            const r = await client.close({ timeoutMs: closeTimeoutMs });
            if (r && r.status === 200) rec.sessionsClosed++;
            else {
              rec.sessionsAbandoned++;
              if (r) rec.error(new ClientError('status', `cclose: HTTP ${r.status}: ${(r.text ?? '').trim().slice(0, 200)}`, { url: base!, status: r.status }));
            }
          } catch (e) {
            rec.sessionsAbandoned++;
            rec.error(asClientError(e, base!));
          }
        },
        retry: async (err, failures, limit = settings.maxRetries) => {
          if (stopped() || err.kind === 'aborted') return false;
          if (failures > limit) {
            rec.gaveUp++;
            return false;
          }
          rec.retries++;
          // A short backoff, so a failing server is not hammered in a tight loop.
          await sleep(Math.min(until - performance.now(), Math.min(2000, 50 * 2 ** (failures - 1))), stop.signal);
          return !stopped();
        },
        reconnect: async () => {
          await transport.close().catch(() => {});
          transport = makeTransport();
          client = makeClient(transport);
        },
      };
      rec.clients++;
      rec.active++;
      if (rec.active > rec.peakActive) rec.peakActive = rec.active;
      try {
        await pattern(ctx);
      } catch (e) {
        rec.error(asClientError(e, base!));
      } finally {
        rec.active--;
        rec.lastClientEndedAt = Math.max(rec.lastClientEndedAt, performance.now());
        await transport.close().catch(() => {});
      }
    };

    // Crowds.
    const crowdTimers: ReturnType<typeof setTimeout>[] = [];
    let launched = 0;
    const launch = (): void => {
      if (stop.signal.aborted) return;
      const now = performance.now();
      const until = Math.min(now + settings.sessionLength * 1000, deadline);
      for (let i = 0; i < settings.clients; i++) {
        const id = launched++;
        running.push(runClient(id, movies[id % movies.length]!, until));
      }
    };
    const crowds = Math.max(1, Math.ceil(settings.duration / settings.every - 1e-9));
    let crowdsDone: () => void = () => {};
    const allLaunched = new Promise<void>((r) => (crowdsDone = r));
    let pending = crowds;
    for (let k = 0; k < crowds && !stop.signal.aborted; k++) {
      crowdTimers.push(
        setTimeout(() => {
          launch();
          if (--pending === 0) crowdsDone();
        }, k * settings.every * 1000),
      );
    }
    // An outer signal aborted before the run began aborted `stop` already: no 'abort' event will come.
    if (stop.signal.aborted) crowdsDone();
    else stop.signal.addEventListener('abort', () => crowdsDone(), { once: true });

    // Ticks.
    const timeline: CrowdTick[] = [];
    serverSampler?.start();
    simSampler.start();
    const tick = (): void => {
      const c = rec.tick;
      rec.tick = new Counters();
      const srv = serverSampler?.sample();
      const sim = simSampler.sample();
      const n = rec.tickLatency.totalCount;
      const t: CrowdTick = {
        t: Math.round((performance.now() - t0) / 100) / 10,
        active: rec.active,
        inFlight: rec.inFlight,
        requests: c.requests,
        responses: c.responses,
        bytes: c.bytes,
        errors: c.errors,
        p50: n ? Math.round(rec.tickLatency.getValueAtPercentile(50) / 10) / 100 : 0,
        p99: n ? Math.round(rec.tickLatency.getValueAtPercentile(99) / 10) / 100 : 0,
        serverRssBytes: srv?.rssBytes,
        serverCpuPercent: srv?.cpuPercent,
        simulatorCpuPercent: sim?.cpuPercent,
        totalResponses: rec.total.responses,
        totalErrors: rec.total.errors,
      };
      rec.tickLatency.reset();
      timeline.push(t);
      options.onTick?.(t);
    };
    const ticker = setInterval(tick, tickMs);

    // The end: crowds launched, then every client done; a hard stop after deadline + grace.
    const hardStop = setTimeout(() => stop.abort(), Math.max(0, deadline - performance.now()) + graceMs);
    hardStop.unref();
    try {
      await allLaunched;
      for (const t of crowdTimers) clearTimeout(t);
      await Promise.allSettled(running);
    } finally {
      clearTimeout(hardStop);
      clearInterval(ticker);
      options.signal?.removeEventListener('abort', onOuterAbort);
    }
    // The measurement window: from t0 to when the last client ended (or now), never past the
    // deadline (clients still playing then were stopped). Not the last response: a server that
    // stalls, or an open-loop run with idle gaps, would otherwise shrink the window and inflate rates.
    const end = Math.min(rec.lastClientEndedAt > 0 ? rec.lastClientEndedAt : performance.now(), deadline);
    const elapsed = Math.max(0.001, (end - t0) / 1000);
    const serverSummary = serverSampler?.stop();
    const simSummary = simSampler.stop();
    const rate = (n: number): number => Math.round((n / elapsed) * 10) / 10;
    return {
      schema: CROWD_SCHEMA,
      schemaVersion: RESULT_SCHEMA_VERSION,
      env,
      startedAt,
      settings,
      target: { url: base, embedded: embedded !== undefined, root, movies },
      elapsedSeconds: Math.round(elapsed * 1000) / 1000,
      totals: {
        clients: rec.clients,
        peakClients: rec.peakActive,
        peakInFlight: rec.peakInFlight,
        clientsGaveUp: rec.gaveUp,
        requests: rec.total.requests,
        responses: rec.total.responses,
        bytes: rec.total.bytes,
        messages: rec.total.messages,
        windowsDone: rec.windowsDone,
        sessionsOpened: rec.sessionsOpened,
        sessionsClosed: rec.sessionsClosed,
        sessionsAbandoned: rec.sessionsAbandoned,
        retries: rec.retries,
        abortedAtEnd: rec.abortedAtEnd,
      },
      rates: { requestsPerSecond: rate(rec.total.requests), responsesPerSecond: rate(rec.total.responses), bytesPerSecond: Math.round(rec.total.bytes / elapsed) },
      errors: {
        total: rec.total.errors,
        byKind: Object.fromEntries(CLIENT_ERROR_KINDS.filter((k) => rec.byKind[k] !== undefined).map((k) => [k, rec.byKind[k]!])),
        byStatus: rec.byStatus,
        samples: [...rec.samples.values()],
      },
      eor: rec.eor,
      latencyMs: summarizeLatency(rec.latency),
      serviceTimeMs: rec.service ? summarizeLatency(rec.service) : undefined,
      latencyHistogram: encodeHistogram(rec.latency),
      server: serverSummary ? { ...serverSummary, sameProcessAsSimulator: (serverSummary.pids ?? [serverSummary.pid]).includes(process.pid) } : undefined,
      simulator: simSummary,
      timeline,
    };
  } finally {
    await embedded?.close();
  }
}
