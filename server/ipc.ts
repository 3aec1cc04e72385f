import type { ServerConfig } from './config.js';

/**
 * Messages between the supervisor and its worker process (Node IPC, JSON).
 * Kept off the hot path: nothing is sent per request. Per connection, the
 * supervisor sends one `conn` (with the socket handle) and the worker one
 * entry of a batched `closed`; which connections have a request in flight is
 * kept in the flags file (see flags.ts), read only after a crash.
 *
 * supervisor -> worker
 *   init    config, flags file path, restart and reject counts (first message)
 *   conn    a connection (the socket travels as the handle): its id and flag slot
 *   config  a reloaded config (SIGHUP)
 *   stats   restart and reject counts for /metrics, when they change
 *   drain   SIGTERM: finish responses in flight, close everything, exit 0
 * worker -> supervisor
 *   ready   sessions recovered from the journal; connections may come
 *   closed  ids of connections the worker closed (batched per event-loop turn)
 *   drained everything is closed; the worker exits next
 *   fatal   the worker cannot start (bad root...): not worth restarting
 */
export type ToWorker =
  | { t: 'init'; config: ServerConfig; flagsFile: string; restarts: number; rejected: number }
  /** `inherited`: the connection served an earlier worker (it may sit idle between requests, as keep-alive allows). */
  | { t: 'conn'; id: number; slot: number; inherited: boolean }
  | { t: 'config'; config: ServerConfig }
  | { t: 'stats'; restarts: number; rejected: number }
  | { t: 'drain' };

export type FromWorker =
  | { t: 'ready'; pid: number; sessions: number; replayMs: number; torn: boolean }
  | { t: 'closed'; ids: number[] }
  | { t: 'drained' }
  | { t: 'fatal'; message: string };
