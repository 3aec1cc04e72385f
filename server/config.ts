import { readFileSync } from 'node:fs';

/**
 * The server's configuration: one defaults object (units in the key names),
 * one schema that says what each key accepts, and one validation step that
 * rejects unknown keys, checks types and ranges, and freezes the result.
 *
 * Precedence, lowest first: defaults < JSON config file < environment
 * (`JPIP_BENCH_<KEY_IN_SCREAMING_SNAKE>`) < command-line flags. Everything
 * ends in {@link validateConfig}; a validated config is frozen and can be
 * passed on (to the worker process, to `createJpipServer`) without being
 * checked again.
 */

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServerConfig {
  /** Image root: every target is a file under it. */
  root: string;
  host: string;
  port: number;
  /** Index cache files directory (null: indexes are built in memory only). */
  cacheDir: string | null;
  /** Session journal and connection flags (null: the supervisor makes a temporary one; in-process: no journal). */
  stateDir: string | null;
  defaultLenBytes: number;
  maxLenBytes: number;
  chunkBytes: number;
  maxUrlBytes: number;
  maxBodyBytes: number;
  maxSessions: number;
  maxSessionBins: number;
  sessionIdleSeconds: number;
  maxConnections: number;
  retryAfterSeconds: number;
  keepAliveSeconds: number;
  headersTimeoutSeconds: number;
  requestTimeoutSeconds: number;
  sendStallSeconds: number;
  drainSeconds: number;
  maxOpenFiles: number;
  indexCacheBytes: number;
  /** How long an open image file is trusted unchanged before its size and mtime are checked again (0: every request). */
  fileRecheckSeconds: number;
  /** Memory budget of the image block cache that responses read through (0: read the files directly). */
  blockCacheBytes: number;
  responseCacheBytes: number;
  /** Worker threads that index codestreams without PLT (0: the main thread does; -1: one per core but one). */
  indexThreads: number;
  /** Worker threads that read the image bytes of response chunks (0: the main thread does; -1: one per core but one). */
  assemblyThreads: number;
  /** Chunks with fewer image bytes than this are filled on the main thread (through the block cache). */
  assemblyMinBytes: number;
  journalCompactBytes: number;
  logLevel: LogLevel;
  metricsAllowRemote: boolean;
  /** Serve the browser viewer at /viewer (and its listing of the root at /viewer/api/list). */
  viewer: boolean;
  /** The worker accepts new connections itself (no hand-off per connection); see docs/server.md. */
  workerAccepts: boolean;
  /** Run the response path over the shipped small frames at start, so the first requests run compiled code. */
  warmUp: boolean;
  /** Channel ids start with this (several instances behind a load balancer: it routes on it); null: "C". */
  cidPrefix: string | null;
  /** PEM certificate (chain) file: serve HTTPS (with tlsKey). */
  tlsCert: string | null;
  /** PEM private key file of tlsCert. */
  tlsKey: string | null;
}

const KiB = 1024;
const MiB = 1024 * 1024;

/** Every key's default. `root` has none: it must be given. */
export const DEFAULT_CONFIG: Readonly<ServerConfig> = Object.freeze({
  root: '',
  host: '127.0.0.1',
  port: 8090,
  cacheDir: null,
  stateDir: null,
  defaultLenBytes: 2 * MiB, // JHelioviewer's len
  maxLenBytes: 64 * MiB,
  chunkBytes: 64 * KiB,
  maxUrlBytes: 16 * KiB,
  maxBodyBytes: 1 * MiB,
  maxSessions: 10_000,
  maxSessionBins: 2_000_000,
  sessionIdleSeconds: 300,
  maxConnections: 2048,
  retryAfterSeconds: 2,
  keepAliveSeconds: 65,
  headersTimeoutSeconds: 20,
  requestTimeoutSeconds: 60,
  sendStallSeconds: 60,
  drainSeconds: 30,
  maxOpenFiles: 512,
  indexCacheBytes: 256 * MiB,
  fileRecheckSeconds: 1,
  blockCacheBytes: 32 * MiB,
  responseCacheBytes: 32 * MiB,
  indexThreads: 0,
  assemblyThreads: 0,
  assemblyMinBytes: 32 * KiB,
  journalCompactBytes: 64 * MiB,
  logLevel: 'warn',
  metricsAllowRemote: false,
  viewer: true,
  workerAccepts: true,
  warmUp: false,
  cidPrefix: null,
  tlsCert: null,
  tlsKey: null,
});

type Spec =
  | { type: 'string'; nullable?: true; describe: string; restart?: true }
  | { type: 'integer' | 'number'; min: number; max: number; describe: string; restart?: true }
  | { type: 'boolean'; describe: string; restart?: true }
  | { type: 'enum'; values: readonly string[]; describe: string; restart?: true };

/**
 * What each key accepts, and what it means (the CLI's flags and docs/server.md
 * are made from these). `restart: true` keys are not changed by a reload
 * (SIGHUP): they take effect at the next start.
 */
export const CONFIG_SCHEMA: { readonly [K in keyof ServerConfig]: Spec } = {
  root: { type: 'string', describe: 'image root: every target is a file under it', restart: true },
  host: { type: 'string', describe: 'address to listen on', restart: true },
  port: { type: 'integer', min: 0, max: 65535, describe: 'TCP port (0 picks a free one)', restart: true },
  cacheDir: { type: 'string', nullable: true, describe: 'directory for index cache files (null: none)', restart: true },
  stateDir: { type: 'string', nullable: true, describe: 'directory for the session journal (null: a temporary one, removed at exit)', restart: true },
  defaultLenBytes: { type: 'integer', min: 0, max: 2 ** 40, describe: 'byte budget of a request that gives no len' },
  maxLenBytes: { type: 'integer', min: 1, max: 2 ** 40, describe: 'largest len honoured; beyond it the response ends with EOR 7' },
  chunkBytes: { type: 'integer', min: 1 * KiB, max: 16 * MiB, describe: 'bytes per response chunk written to the socket' },
  maxUrlBytes: { type: 'integer', min: 256, max: 1 * MiB, describe: 'longest request target (path and query); longer is 414', restart: true },
  maxBodyBytes: { type: 'integer', min: 0, max: 256 * MiB, describe: 'longest POST body; longer is 413' },
  maxSessions: { type: 'integer', min: 1, max: 10_000_000, describe: 'sessions open at once; more is 503 with Retry-After' },
  maxSessionBins: { type: 'integer', min: 1, max: 2 ** 31, describe: 'data-bins one session may track; beyond, its channel ends with EOR 6' },
  sessionIdleSeconds: { type: 'number', min: 0.001, max: 365 * 86400, describe: 'idle time after which a session is dropped' },
  maxConnections: { type: 'integer', min: 1, max: 1_000_000, describe: 'TCP connections open at once; more get 503 with Retry-After and are closed' },
  retryAfterSeconds: { type: 'integer', min: 0, max: 86400, describe: 'Retry-After of 503 answers' },
  keepAliveSeconds: { type: 'number', min: 1, max: 86400, describe: 'idle time after which a keep-alive connection is closed' },
  headersTimeoutSeconds: { type: 'number', min: 0.05, max: 3600, describe: 'time a client has to send a request\'s headers (slow clients are cut with 408)' },
  requestTimeoutSeconds: { type: 'number', min: 0.05, max: 86400, describe: 'time a client has to send a whole request, body included' },
  sendStallSeconds: { type: 'number', min: 0.05, max: 86400, describe: 'a response the client does not read for this long is cut' },
  drainSeconds: { type: 'number', min: 0, max: 86400, describe: 'on SIGTERM, how long responses in flight may take to finish' },
  maxOpenFiles: { type: 'integer', min: 1, max: 1_000_000, describe: 'image files kept open (least recently used are closed, never while read)' },
  indexCacheBytes: { type: 'integer', min: 0, max: 2 ** 48, describe: 'memory budget of the open images\' indexes (least recently used are dropped)' },
  fileRecheckSeconds: { type: 'number', min: 0, max: 3600, describe: 'how long an open image file is trusted unchanged before its size and mtime are checked again (a file replaced on disk is served fresh within this time; 0: checked on every request)' },
  blockCacheBytes: { type: 'integer', min: 0, max: 2 ** 48, describe: 'memory budget of the cache of image file blocks that responses read through (least recently used are dropped; 0: read the files directly)' },
  responseCacheBytes: { type: 'integer', min: 0, max: 2 ** 48, describe: 'memory budget of whole response bodies kept for clients that hold nothing yet (a new session\'s first window: a flash crowd asks the same); least recently used are dropped, a body over an eighth of it is not kept; 0: every response is produced' },
  indexThreads: { type: 'integer', min: -1, max: 256, describe: 'worker threads that index images without PLT markers (packet-header parsing) off the main thread; 0: none, -1: one per core but one', restart: true },
  assemblyThreads: { type: 'integer', min: -1, max: 256, describe: 'worker threads that read the image bytes of response chunks off the main thread (it plans the response and writes the message headers); 0: none, -1: one per core but one', restart: true },
  assemblyMinBytes: { type: 'integer', min: 0, max: 16 * MiB, describe: 'with assemblyThreads: chunks with fewer image bytes than this are filled on the main thread, through the block cache (0: every chunk goes to a thread)' },
  journalCompactBytes: { type: 'integer', min: 4 * KiB, max: 2 ** 40, describe: 'session journal size that triggers its compaction' },
  logLevel: { type: 'enum', values: LOG_LEVELS, describe: 'log level (info: one line per request; errors are always logged)' },
  metricsAllowRemote: { type: 'boolean', describe: 'answer GET /metrics to non-loopback clients too' },
  viewer: { type: 'boolean', describe: 'serve the browser viewer at /viewer (--no-viewer: 404 there)' },
  workerAccepts: { type: 'boolean', describe: 'the worker accepts new connections itself, on the listening socket the supervisor keeps open (no hand-off per connection); the supervisor takes a connection into safekeeping once it has had a response, so a worker crash loses only connections that had none yet (on by default; --no-worker-accepts: the supervisor accepts and hands every connection over)', restart: true },
  warmUp: { type: 'boolean', describe: 'at start, run the response path over the shipped small frames (in slices, between requests) so that the first requests run compiled code (jpip-bench serve turns it on; --no-warm-up)', restart: true },
  cidPrefix: { type: 'string', nullable: true, describe: 'channel ids start with this (1-16 letters or digits; several instances behind a load balancer, which routes a session to the instance that granted it: docs/deploy.md); null: "C"', restart: true },
  tlsCert: { type: 'string', nullable: true, describe: 'PEM certificate (chain) file: serve HTTPS instead of HTTP (with tlsKey; a worker crash closes TLS connections, sessions go on by cid)', restart: true },
  tlsKey: { type: 'string', nullable: true, describe: 'PEM private key file of tlsCert', restart: true },
};

export const CONFIG_KEYS = Object.keys(CONFIG_SCHEMA) as (keyof ServerConfig)[];

/** The config is invalid; `problems` lists every problem found, one per line of the message. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'JPIP_ERR_CONFIG';
  readonly problems: readonly string[];
  constructor(source: string, problems: string[]) {
    super(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

const validated = new WeakSet<object>();

/** Whether a value is a config that {@link validateConfig} produced (frozen, complete). */
export function isValidatedConfig(c: unknown): c is Readonly<ServerConfig> {
  return typeof c === 'object' && c !== null && validated.has(c);
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Checks one value against its spec; returns the problem or undefined. */
function checkValue(key: string, spec: Spec, v: unknown): string | undefined {
  switch (spec.type) {
    case 'string':
      if (v === null && spec.nullable) return undefined;
      if (typeof v !== 'string' || v === '') return `${key}: expected a non-empty string${spec.nullable ? ' or null' : ''}, got ${describeValue(v)}`;
      return undefined;
    case 'integer':
    case 'number': {
      const whole = spec.type === 'integer';
      if (typeof v !== 'number' || !Number.isFinite(v) || (whole && !Number.isInteger(v)) || v < spec.min || v > spec.max) {
        return `${key}: expected ${whole ? 'an integer' : 'a number'} between ${spec.min} and ${spec.max}, got ${describeValue(v)}`;
      }
      return undefined;
    }
    case 'boolean':
      return typeof v === 'boolean' ? undefined : `${key}: expected true or false, got ${describeValue(v)}`;
    case 'enum':
      return typeof v === 'string' && spec.values.includes(v) ? undefined : `${key}: expected one of ${spec.values.join(', ')}, got ${describeValue(v)}`;
  }
}

/**
 * Validates layers of settings over the defaults (later layers win) and
 * returns the frozen config. Unknown keys, wrong types, values out of range
 * and contradictions are all reported at once in a {@link ConfigError}.
 * `undefined` values are skipped (an absent flag), `null` is a value.
 */
export function validateConfig(layers: readonly (object | undefined)[], source = 'config', labels: readonly string[] = []): Readonly<ServerConfig> {
  const problems: string[] = [];
  const out: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const [i, layer] of layers.entries()) {
    if (layer === undefined) continue;
    const from = labels[i] ? ` (from ${labels[i]})` : '';
    if (typeof layer !== 'object' || layer === null || Array.isArray(layer)) {
      problems.push(`expected an object of settings, got ${describeValue(layer)}`);
      continue;
    }
    for (const [key, v] of Object.entries(layer as Record<string, unknown>)) {
      if (v === undefined) continue;
      if (!Object.hasOwn(CONFIG_SCHEMA, key)) {
        problems.push(`${key}${from}: unknown key (known keys: ${CONFIG_KEYS.join(', ')})`);
        continue;
      }
      const p = checkValue(key, CONFIG_SCHEMA[key as keyof ServerConfig], v);
      if (p) problems.push(from ? p.replace(':', `${from}:`) : p);
      else out[key] = v;
    }
  }
  const c = out as unknown as ServerConfig;
  if (c.root === '') problems.push('root: required (the directory whose JPEG 2000 files are served)');
  if (c.headersTimeoutSeconds > c.requestTimeoutSeconds) {
    problems.push(`headersTimeoutSeconds (${c.headersTimeoutSeconds}) must not exceed requestTimeoutSeconds (${c.requestTimeoutSeconds})`);
  }
  if (c.cidPrefix !== null && !/^[A-Za-z0-9]{1,16}$/.test(c.cidPrefix)) problems.push(`cidPrefix: 1 to 16 letters or digits, got ${JSON.stringify(c.cidPrefix)}`);
  if ((c.tlsCert === null) !== (c.tlsKey === null)) problems.push('tlsCert and tlsKey: give both (HTTPS) or neither (HTTP)');
  if (problems.length > 0) throw new ConfigError(source, problems);
  const frozen = Object.freeze(c);
  validated.add(frozen);
  return frozen;
}

/** `maxLenBytes` -> `JPIP_BENCH_MAX_LEN_BYTES`. */
export function envName(key: keyof ServerConfig): string {
  return `JPIP_BENCH_${key.replace(/[A-Z]/g, (m) => `_${m}`).toUpperCase()}`;
}

/** `maxLenBytes` -> `max-len-bytes`. */
export function flagName(key: keyof ServerConfig): string {
  return key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}

/**
 * Settings from the environment: `JPIP_BENCH_<KEY>` for every config key
 * (numbers and booleans parsed; `null` for nullable strings). Other
 * variables are ignored. Malformed values are reported by name.
 */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const key of CONFIG_KEYS) {
    const raw = env[envName(key)];
    if (raw === undefined) continue;
    const spec = CONFIG_SCHEMA[key];
    if (spec.type === 'integer' || spec.type === 'number') {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (Number.isNaN(n)) problems.push(`${envName(key)}: expected a number, got ${JSON.stringify(raw)}`);
      else out[key] = n;
    } else if (spec.type === 'boolean') {
      if (/^(true|1|yes)$/i.test(raw)) out[key] = true;
      else if (/^(false|0|no)$/i.test(raw)) out[key] = false;
      else problems.push(`${envName(key)}: expected true or false, got ${JSON.stringify(raw)}`);
    } else if (spec.type === 'string' && spec.nullable && raw === 'null') {
      out[key] = null;
    } else {
      out[key] = raw;
    }
  }
  if (problems.length > 0) throw new ConfigError('environment', problems);
  return out;
}

/** Reads a JSON config file (an object of config keys); syntax errors name the file. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [`cannot read the config file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`]);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, [`not valid JSON: ${(e as Error).message}`]);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(path, ['the file must hold one JSON object of settings']);
  return data as Record<string, unknown>;
}

export interface ConfigSources {
  /** Settings below the file (the CLI's own defaults, e.g. its cache directory). */
  base?: Record<string, unknown>;
  /** JSON config file path. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Settings from flags (undefined values: flag not given). */
  flags?: Record<string, unknown>;
}

/** defaults < base < file < environment < flags, validated once and frozen. */
export function loadConfig(src: ConfigSources): Readonly<ServerConfig> {
  const fileLayer = src.file ? readConfigFile(src.file) : undefined;
  const envLayer = configFromEnv(src.env ?? {});
  const flags = src.flags && Object.values(src.flags).some((v) => v !== undefined) ? src.flags : undefined;
  const labels = ['defaults', src.file ? `file ${src.file}` : '', 'environment', 'flags'];
  const used = [fileLayer && labels[1], Object.keys(envLayer).length > 0 && labels[2], flags && labels[3]].filter((x): x is string => Boolean(x));
  return validateConfig([src.base, fileLayer, envLayer, flags], used.join(', ') || 'defaults', used.length > 1 ? labels : []);
}

/** The keys whose values differ between two configs. */
export function changedKeys(a: Readonly<ServerConfig>, b: Readonly<ServerConfig>): (keyof ServerConfig)[] {
  return CONFIG_KEYS.filter((k) => a[k] !== b[k]);
}

/**
 * For a reload: the new config, with keys that need a restart kept at their
 * running values; `ignored` names those whose new value was not applied.
 */
export function reloadable(running: Readonly<ServerConfig>, next: Readonly<ServerConfig>): { config: Readonly<ServerConfig>; ignored: (keyof ServerConfig)[] } {
  const ignored = changedKeys(running, next).filter((k) => CONFIG_SCHEMA[k].restart);
  if (ignored.length === 0) return { config: next, ignored };
  const merged: Record<string, unknown> = { ...next };
  for (const k of ignored) merged[k] = running[k];
  return { config: validateConfig([merged], 'reload'), ignored };
}

/** Length of the listening socket's accept queue (the kernel caps it at net.core.somaxconn). */
export const LISTEN_BACKLOG = 4096;
