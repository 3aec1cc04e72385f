/**
 * The rate-distortion result: plain data, written as rd.json and read back by
 * `jpip-bench report`. JSON has no infinity, so an infinite PSNR (the
 * reconstruction equals the full-quality decode) is the string "inf" in the
 * file (and in the CSV); in memory it is Infinity. A PSNR that could not be
 * measured (nothing decodable received yet) is null.
 */
import type { Dialect } from './dialects.js';
import type { RdWindow } from './sequence.js';
import type { RunEnvironment } from '../client-sim/results.js';
import type { RdSummary } from './rd-summary.js';

export const RD_SCHEMA = 'jpip-bench/rd';
export const RD_SCHEMA_VERSION = 1;

/** A window of the run, fitted to the target. */
export interface RdWindowSpec extends RdWindow {
  /** The frame (image at r discarded levels) the window is on. */
  frame: { width: number; height: number };
  /** Samples in the window: w·h·components (for the PSNR of one sample off by one). */
  samples: number;
}

/** One measurement: after one response. */
export interface RdPoint {
  server: string;
  /** Index into `windows`. */
  window: number;
  /** Request number within the window, from 1. */
  request: number;
  /** Body bytes received in this session so far (never falls). */
  bytes: number;
  /** Body bytes received since this window's first request. */
  windowBytes: number;
  /** Body bytes of this response. */
  responseBytes: number;
  /** dB; Infinity when exact; null when nothing decodable was held. */
  psnr: number | null;
  mse: number | null;
  /** EOR reason of the response (null when it had none). */
  eor: number | null;
  /** Time of the request (ms). */
  ms: number;
}

export type WindowStop = 'window-done' | 'no-progress' | 'request-limit' | 'error';

export interface RdWindowRun {
  window: number;
  requests: number;
  bytes: number;
  stop: WindowStop;
  /** Final PSNR of the window (see RdPoint.psnr). */
  psnr: number | null;
}

export interface RdServerRun {
  name: string;
  url: string;
  dialect: Dialect;
  windows: RdWindowRun[];
  /** Set when the run against this server stopped on an error (HTTP status, network, protocol). */
  error?: string | undefined;
}

export interface RdResult {
  schema: typeof RD_SCHEMA;
  schemaVersion: typeof RD_SCHEMA_VERSION;
  /** Tool version, Node, CPU, git commit (the same record as the crowd's results). */
  env: RunEnvironment;
  createdAt: string;
  target: string;
  stream: number;
  original: {
    file: string;
    sha256: string;
    width: number;
    height: number;
    components: number;
    bitDepth: number;
    /** Resolution levels that can be discarded. */
    levels: number;
  };
  /** len of each request (bytes). */
  step: number;
  sequence: { source: string; windows: RdWindowSpec[] };
  servers: RdServerRun[];
  points: RdPoint[];
  summary: RdSummary;
}

/** A PSNR as written to JSON and CSV. */
export function psnrOut(v: number | null): number | string | null {
  if (v === null) return null;
  if (v === Infinity) return 'inf';
  return Math.round(v * 10000) / 10000;
}

/** A PSNR as read from JSON ("inf" -> Infinity). */
export function psnrIn(v: unknown, where: string): number | null {
  if (v === null || v === undefined) return null;
  if (v === 'inf' || v === 'Infinity') return Infinity;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw new RangeError(`${where}: a PSNR is a number, "inf" or null, got ${JSON.stringify(v)}`);
}

/** Any value of a result with every infinite number replaced by "inf" (the rule for PSNRs, applied throughout). */
function encodeInfinities(v: unknown): unknown {
  if (typeof v === 'number') return v === Infinity ? 'inf' : v === -Infinity ? '-inf' : Number.isNaN(v) ? null : v;
  if (Array.isArray(v)) return v.map(encodeInfinities);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeInfinities(x)]));
  return v;
}

/** Keys whose values are dB figures: only these turn "inf" back into Infinity (a server may be named "inf"). */
const DB_KEY = /psnr|db|diff/i;

function decodeInfinities(v: unknown, numeric = false): unknown {
  if (numeric && v === 'inf') return Infinity;
  if (numeric && v === '-inf') return -Infinity;
  if (Array.isArray(v)) return v.map((x) => decodeInfinities(x, numeric));
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeInfinities(x, numeric || DB_KEY.test(k))]));
  return v;
}

/** rd.json text. PSNRs are rounded to 1e-4 dB. */
export function rdResultToJson(r: RdResult): string {
  const rounded = { ...r, points: r.points.map((p) => ({ ...p, psnr: psnrOut(p.psnr), mse: p.mse === null ? null : Math.round(p.mse * 1e6) / 1e6 })) };
  return `${JSON.stringify(encodeInfinities(rounded), null, 1)}\n`;
}

/** True when parsed JSON looks like an rd result (any version). */
export function isRdResultJson(json: unknown): boolean {
  return typeof json === 'object' && json !== null && (json as Record<string, unknown>)['schema'] === RD_SCHEMA;
}

/** Reads rd.json (parsed), checking the schema and version and the shape of what `report` uses. */
export function rdResultFromJson(json: unknown, where = 'rd.json'): RdResult {
  if (!isRdResultJson(json)) throw new RangeError(`${where}: not a rate-distortion result (schema is not "${RD_SCHEMA}")`);
  const o = json as Record<string, unknown>;
  if (o['schemaVersion'] !== RD_SCHEMA_VERSION) throw new RangeError(`${where}: schema version ${String(o['schemaVersion'])}; this tool reads version ${RD_SCHEMA_VERSION}`);
  if (!Array.isArray(o['points']) || !Array.isArray(o['servers']) || typeof o['sequence'] !== 'object') throw new RangeError(`${where}: points, servers or sequence missing`);
  const points = (o['points'] as Record<string, unknown>[]).map((p, i) => {
    if (typeof p['bytes'] !== 'number' || typeof p['windowBytes'] !== 'number' || typeof p['server'] !== 'string' || typeof p['window'] !== 'number') {
      throw new RangeError(`${where}: point ${i} lacks server, window, bytes or windowBytes`);
    }
    return { ...p, psnr: psnrIn(p['psnr'], `${where}: point ${i}`) };
  });
  return decodeInfinities({ ...o, points }) as RdResult;
}
