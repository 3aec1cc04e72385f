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
 *   listen  (workerAccepts) the listening socket's raw handle: accept on it
 *   kept    (workerAccepts) the supervisor holds this connection now, with this flag slot
 * worker -> supervisor
 *   ready   sessions recovered from the journal; connections may come
 *   listening (workerAccepts) the worker accepts; a raw handle of the listening socket comes back
 *   keep    (workerAccepts) a connection that has had a response: its socket, for safekeeping
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
  /** workerAccepts: accept on the listening socket (the raw handle travels); `back`: send a handle of it back. */
  | { t: 'listen'; back: boolean }
  /** workerAccepts: the supervisor holds connection `id` now, with this flag slot. */
  | { t: 'kept'; id: number; slot: number }
  | { t: 'drain' };

export type FromWorker =
  | { t: 'ready'; pid: number; sessions: number; replayMs: number; torn: boolean }
  | { t: 'closed'; ids: number[] }
  /** workerAccepts: the worker listens; the raw listening handle travels back (the supervisor keeps it, unpolled). */
  | { t: 'listening' }
  /** workerAccepts: a connection the worker accepted has had a response: the socket travels, for safekeeping. */
  | { t: 'keep'; id: number }
  | { t: 'drained' }
  | { t: 'fatal'; message: string };
