import pino from 'pino';
import type { LogLevel } from './config.js';

/**
 * Structured logs: pino, one JSON object per line on stderr. Levels:
 * `error` (always on: internal errors, corrupt images, worker crashes),
 * `warn` (restarts, reload problems), `info` (one line per request),
 * `debug`/`trace` (connection hand-offs, journal compaction).
 */
export type Logger = pino.Logger;

export interface LoggerOptions {
  level: LogLevel;
  /** Fields on every line (e.g. role and pid). */
  base?: Record<string, unknown>;
  /**
   * Receives every entry as an object instead of stderr (tests, embedding);
   * the level is then `trace` whatever `level` says.
   */
  sink?: (entry: Record<string, unknown>) => void;
}

export function createLogger(opts: LoggerOptions): Logger {
  if (opts.sink) {
    const sink = opts.sink;
    return pino(
      { level: 'trace', base: opts.base ?? null },
      {
        write(line: string): void {
          sink(JSON.parse(line) as Record<string, unknown>);
        },
      },
    );
  }
  // Synchronous writes: a worker killed with -9 loses no line it had logged.
  return pino({ level: opts.level, base: opts.base ?? { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}

/** What one request's log line holds. */
export interface RequestLogEntry {
  reqId: string;
  method: string;
  /** Channel id (sessions), when there is one. */
  cid: string | undefined;
  /** Target (path under the root), when resolved. */
  target: string | undefined;
  status: number;
  /** Body bytes written. */
  bytes: number;
  /** Reason of the final EOR, when the response carried one. */
  eor: number | undefined;
  ms: number;
  /** The response was cut (client gone, stall, drain timeout). */
  cut?: boolean;
}
