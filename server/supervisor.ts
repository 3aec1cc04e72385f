import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LISTEN_BACKLOG, reloadable, type ServerConfig } from './config.js';
import { InflightFlags } from './flags.js';
import { JOURNAL_FILE, journaledResponses } from './journal.js';
import type { FromWorker, ToWorker } from './ipc.js';
import { createLogger, type Logger } from './log.js';
import { rejectBusy } from './reject.js';
import { acceptTls, tlsContext } from './tls.js';
import type { SecureContext } from 'node:tls';

/**
 * The supervisor: it owns the listening socket and every accepted
 * connection, and keeps one worker process alive to serve them.
 *
 * - Connections are accepted paused (`pauseOnConnect`): the supervisor never
 *   reads from them. Each is handed to the worker with the socket as the IPC
 *   handle and `keepOpen`, so the supervisor keeps its own descriptor; it
 *   closes it when the worker reports the connection closed (until then the
 *   client would see no FIN, as the descriptor keeps the connection open).
 * - When the worker dies (crash, kill -9, out of memory), the supervisor
 *   reads the in-flight flags (flags.ts): connections that had a request in
 *   flight are reset at once (their client sees an error now, not after its
 *   own timeout; the bytes the dead worker had read are gone, so the request
 *   cannot be answered); every other connection is handed, as it is, to a
 *   new worker, started at once (with a growing delay only when workers keep
 *   dying right after their start). Clients keep their TCP connections.
 * - Sessions live on in the journal of the state directory: the new worker
 *   replays it before it takes connections.
 * - Over `maxConnections`, a new connection gets 503 with Retry-After.
 * - `drain()` (SIGTERM) stops accepting, lets the worker finish responses in
 *   flight and close sessions, then closes everything. `reload()` (SIGHUP)
 *   re-reads the config and passes it on.
 */

export interface SupervisorOptions {
  config: Readonly<ServerConfig>;
  /** Re-reads the config (file, environment, flags) for `reload()`. */
  reload?: () => Readonly<ServerConfig>;
  logger?: Logger;
  /** Worker entry module (default: worker-main beside this module; the .ts one under tsx when run from source). */
  workerModule?: string;
  /** Node options of the worker (default: none for .js, `--import tsx` for .ts). */
  execArgv?: string[];
  /** Worker environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

export interface WorkerReady {
  pid: number;
  generation: number;
  /** From the previous worker's death to this one's ready message (undefined for the first worker). */
  restartMs: number | undefined;
  sessions: number;
  replayMs: number;
}

export interface WorkerDeath {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Connections reset because a request was in flight. */
  reset: number;
  /** Connections kept for the next worker. */
  kept: number;
  /** Responses the supervisor ended for the dead worker (their data was all sent and journaled). */
  completed: number;
}

/** The end of a chunked HTTP/1.1 body. */
const LAST_CHUNK = '0\r\n\r\n';

/** With workerAccepts: descriptors of the listening socket the worker accepts on (connections per event-loop turn). */
const LISTEN_HANDLES = 8;

/** A raw libuv handle received over IPC (the listening socket, with workerAccepts). */
interface RawHandle {
  close?: () => void;
}

interface Conn {
  id: number;
  slot: number;
  socket: Socket;
  /** Generation of the worker holding it (0: not handed yet). */
  handedTo: number;
  /** It served a worker that died: an established keep-alive connection, allowed to idle. */
  inherited: boolean;
}

/** Where the worker entry is, and how to run it. */
export function defaultWorkerModule(): { module: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return { module: join(dirname(here), 'worker-main.ts'), execArgv: ['--import', 'tsx'] };
  return { module: join(dirname(here), 'worker-main.js'), execArgv: [] };
}

type State = 'new' | 'running' | 'draining' | 'stopped';

export class Supervisor extends EventEmitter {
  config: Readonly<ServerConfig>;
  /** The TLS context with tlsCert/tlsKey (HTTPS), else undefined. */
  private readonly secure: SecureContext | undefined;
  url = '';
  /** Workers started after a death. */
  restarts = 0;
  /** Connections answered 503 (over maxConnections). */
  rejected = 0;
  generation = 0;
  readonly logger: Logger;
  readonly stateDir: string;
  private readonly ownsStateDir: boolean;
  private readonly opts: SupervisorOptions;
  private child: ChildProcess | undefined;
  private ready = false;
  private readonly conns = new Map<number, Conn>();
  private seq = 0;
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private flags: InflightFlags | undefined;
  private listener: Server | undefined;
  /** workerAccepts: the listening socket's raw handle, kept (not polled) while workers accept on it. */
  private raw: RawHandle | undefined;
  /** Sends of this process's own listening handle still queued (it is closed only after them). */
  private listenSends = 0;
  private state: State = 'new';
  private diedAt = 0;
  private readyAt = 0;
  private crashStreak = 0;
  private statsTimer: NodeJS.Timeout | undefined;
  private forkTimer: NodeJS.Timeout | undefined;
  private startWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private exitWaiter: (() => void) | undefined;
  private drainPromise: Promise<void> | undefined;
  private lockFile: string | undefined;

  constructor(opts: SupervisorOptions) {
    super();
    this.opts = opts;
    this.config = opts.config;
    // Read once: the certificate is checked before the first worker starts, and 503s go out over TLS.
    this.secure = tlsContext(opts.config);
    this.logger = opts.logger ?? createLogger({ level: opts.config.logLevel, base: { role: 'supervisor', pid: process.pid } });
    if (opts.config.stateDir) {
      mkdirSync(opts.config.stateDir, { recursive: true });
      this.stateDir = opts.config.stateDir;
      this.ownsStateDir = false;
    } else {
      this.stateDir = mkdtempSync(join(tmpdir(), 'jpip-bench-state-'));
      this.ownsStateDir = true;
    }
  }

  /** Pid of the worker now running (undefined between a death and the next start). */
  get workerPid(): number | undefined {
    return this.child?.pid;
  }

  /** Connections this process holds (all of them; with workerAccepts, those taken into safekeeping). */
  get heldConnections(): number {
    return this.conns.size;
  }

  /** Connections the supervisor holds (handed or waiting for a worker). */
  get connectionCount(): number {
    return this.conns.size;
  }

  /** Starts the first worker, waits until it has replayed the journal, then listens. Resolves with the URL. */
  async start(): Promise<string> {
    if (this.state !== 'new') throw new Error('supervisor already started');
    this.state = 'running';
    this.lock();
    this.flags = new InflightFlags(join(this.stateDir, 'inflight.flags'), 'create');
    try {
      await new Promise<void>((resolve, reject) => {
        this.startWaiter = { resolve, reject };
        this.fork();
      });
      this.url = await this.listen();
      if (this.config.workerAccepts) this.passListener();
    } catch (e) {
      this.state = 'stopped';
      this.child?.kill('SIGKILL');
      this.cleanup();
      throw e;
    }
    this.logger.info({ event: 'listening', url: this.url, worker: this.workerPid, stateDir: this.stateDir });
    return this.url;
  }

  /** One supervisor per state directory: its journal would be written by two workers. */
  private lock(): void {
    const file = join(this.stateDir, 'supervisor.pid');
    try {
      const pid = Number(readFileSync(file, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(`state directory ${this.stateDir} is in use by process ${pid}`);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    writeFileSync(file, String(process.pid));
    this.lockFile = file;
  }

  /**
   * workerAccepts: gives the worker the listening socket to accept on. The first time it is this
   * process's own server's handle, and the worker sends a handle of it back (`listening`); then
   * this process stops accepting and keeps that handle, unpolled, for the next workers.
   */
  private passListener(): void {
    const child = this.child;
    if (!child || !this.ready) return;
    const handle = this.raw ?? (this.listener as unknown as { _handle?: object } | undefined)?._handle;
    if (!handle) return;
    // Several times: each arrives as a descriptor of its own, and Node accepts one connection per
    // descriptor per turn of the event loop (libuv 1.46: measured, 1 per 100 ms turn with one, 8
    // with eight), so a busy worker still takes a flash crowd in quickly.
    const own = !this.raw;
    for (let i = 0; i < LISTEN_HANDLES; i++) {
      if (own) this.listenSends++;
      child.send({ t: 'listen', back: i === 0 && own } satisfies ToWorker, handle as never, (err) => {
        if (err) this.logger.debug({ event: 'listen-handoff-failed', message: err.message });
        if (!own) return;
        this.listenSends--;
        this.stopOwnListener();
      });
    }
  }

  /** Once the worker accepts and a handle of the socket came back, and no send of this process's own handle is queued: stop accepting here. */
  private stopOwnListener(): void {
    if (!this.raw || this.listenSends > 0 || !this.listener) return;
    this.listener.close();
    this.listener = undefined;
  }

  private closeRaw(): void {
    this.raw?.close?.();
    this.raw = undefined;
  }

  private listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      const l = createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socket));
      this.listener = l;
      l.once('error', reject);
      l.listen({ port: this.config.port, host: this.config.host, backlog: LISTEN_BACKLOG }, () => {
        l.off('error', reject);
        const a = l.address() as AddressInfo;
        resolve(`${this.secure ? 'https' : 'http'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
      });
    });
  }

  private fork(): void {
    this.forkTimer = undefined;
    if (this.state !== 'running') return;
    const def = defaultWorkerModule();
    const module = this.opts.workerModule ?? def.module;
    const execArgv = this.opts.execArgv ?? (this.opts.workerModule ? [] : def.execArgv);
    const gen = ++this.generation;
    this.ready = false;
    const child = fork(module, [], { execArgv, env: this.opts.env ?? process.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    this.child = child;
    child.on('message', (msg: FromWorker, handle: unknown) => {
      if (gen === this.generation) this.onWorkerMessage(child, gen, msg, handle);
      else if (handle && typeof (handle as Socket).destroy === 'function') (handle as Socket).destroy();
    });
    child.on('error', (e) => this.logger.error({ event: 'worker-error', message: e.message }));
    child.on('exit', (code, signal) => this.onWorkerExit(child, gen, code, signal));
    const init: ToWorker = { t: 'init', config: this.workerConfig(), flagsFile: this.flags!.path, restarts: this.restarts, rejected: this.rejected };
    child.send(init);
  }

  /** The config as the worker gets it: with the state directory in use (a temporary one when none is configured). */
  private workerConfig(): ServerConfig {
    return { ...this.config, stateDir: this.stateDir };
  }

  private onWorkerMessage(child: ChildProcess, gen: number, msg: FromWorker, handle?: unknown): void {
    switch (msg.t) {
      case 'listening':
        // workerAccepts: a handle of the listening socket that this process keeps without polling
        // it (only the worker accepts); the socket, and its backlog, outlive any worker.
        if (handle && !this.raw) {
          this.raw = handle as RawHandle;
          this.stopOwnListener();
        }
        break;
      case 'keep': {
        const socket = handle as Socket | undefined;
        if (!socket) break;
        // Held, never read: stop the reading Node starts on a socket received over IPC (what the
        // client sends is the worker's). Synchronously, before the loop polls it.
        const h = (socket as unknown as { _handle?: { reading?: boolean; readStop?: () => number } })._handle;
        if (h?.readStop) {
          h.reading = false;
          h.readStop();
        }
        socket.on('error', () => {});
        if (this.state !== 'running') {
          socket.destroy();
          break;
        }
        const slot = this.freeSlots.pop() ?? this.nextSlot++;
        this.conns.set(msg.id, { id: msg.id, slot, socket, handedTo: gen, inherited: false });
        child.send({ t: 'kept', id: msg.id, slot } satisfies ToWorker);
        break;
      }
      case 'ready': {
        this.ready = true;
        this.readyAt = Date.now();
        const info: WorkerReady = { pid: msg.pid, generation: gen, restartMs: this.diedAt ? this.readyAt - this.diedAt : undefined, sessions: msg.sessions, replayMs: msg.replayMs };
        if (this.diedAt) this.logger.warn({ event: 'worker-restarted', ...info, torn: msg.torn });
        this.diedAt = 0;
        this.sendStats();
        for (const c of this.conns.values()) if (c.handedTo === 0) this.hand(c);
        // A new worker after a death: it accepts on the listening socket this process kept.
        if (this.config.workerAccepts && this.url) this.passListener();
        this.emit('worker-ready', info);
        this.startWaiter?.resolve();
        this.startWaiter = undefined;
        break;
      }
      case 'closed':
        for (const id of msg.ids) {
          const c = this.conns.get(id);
          if (c && c.handedTo === gen) this.drop(c, false);
        }
        break;
      case 'fatal':
        this.logger.error({ event: 'worker-fatal', message: msg.message });
        if (this.startWaiter) {
          this.startWaiter.reject(new Error(`the worker could not start: ${msg.message}`));
          this.startWaiter = undefined;
        }
        break;
      case 'drained':
        this.logger.info({ event: 'worker-drained', pid: child.pid });
        break;
    }
  }

  private onWorkerExit(child: ChildProcess, gen: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (gen !== this.generation) return;
    this.child = undefined;
    this.ready = false;
    this.diedAt = Date.now();
    // Connections with a request in flight: if the journal recorded the response's data (SENT),
    // all of it is in the kernel and at most its last piece is missing: send that piece and close
    // (a client whose next request was under way sees the close and sends it again). Otherwise
    // reset: nobody will answer the request (the dead worker had read it), and a response it had
    // begun is cut, so the client drops it, as the journal does. The others go on as they are.
    const inFlight = this.flags?.pending() ?? new Map<number, number>();
    const sent = journaledResponses(join(this.stateDir, JOURNAL_FILE), child.pid ?? -1, inFlight);
    let reset = 0;
    let kept = 0;
    let completed = 0;
    for (const c of [...this.conns.values()]) {
      if (c.handedTo === 0) continue;
      const framing = sent.get(c.slot);
      if (this.secure) {
        // A TLS connection's keys and sequence numbers died with the worker: close it (reset if a
        // request was in flight). The client reconnects and goes on with its cid. (With TLS the
        // worker journals a response once its end is out, never with a SENT record.)
        this.drop(c, inFlight.has(c.slot));
        reset++;
      } else if (framing !== undefined) {
        this.finishFor(c, framing);
        completed++;
      } else if (inFlight.has(c.slot)) {
        this.drop(c, true);
        reset++;
      } else {
        c.handedTo = 0;
        // An established keep-alive connection: the next worker lets it idle as keep-alive allows.
        c.inherited = true;
        kept++;
      }
    }
    this.flags?.clear();
    const death: WorkerDeath = { pid: child.pid ?? -1, code, signal, reset, kept, completed };
    this.emit('worker-exit', death);
    if (this.state !== 'running') {
      this.exitWaiter?.();
      return;
    }
    this.logger.error({ event: 'worker-died', ...death });
    if (this.startWaiter) {
      // The first worker never became ready: do not loop on a worker that cannot start.
      this.startWaiter.reject(new Error(`the worker exited during start (code ${code}, signal ${signal})`));
      this.startWaiter = undefined;
      return;
    }
    this.restarts++;
    const quick = this.readyAt === 0 || this.diedAt - this.readyAt < 5000;
    this.crashStreak = quick ? this.crashStreak + 1 : 1;
    const delay = this.crashStreak <= 1 ? 0 : Math.min(5000, 100 * 2 ** (this.crashStreak - 2));
    this.forkTimer = setTimeout(() => this.fork(), delay);
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => {});
    if (this.state !== 'running') {
      socket.destroy();
      return;
    }
    if (this.conns.size >= this.config.maxConnections) {
      this.rejected++;
      this.logger.warn({ event: 'connection-rejected', connections: this.conns.size, maxConnections: this.config.maxConnections });
      rejectBusy(this.secure ? acceptTls(socket, this.secure) : socket, this.config.retryAfterSeconds);
      this.statsSoon();
      return;
    }
    const slot = this.freeSlots.pop() ?? this.nextSlot++;
    const c: Conn = { id: ++this.seq, slot, socket, handedTo: 0, inherited: false };
    this.conns.set(c.id, c);
    if (this.ready) this.hand(c);
  }

  private hand(c: Conn): void {
    const child = this.child;
    if (!child || !this.ready) return;
    c.handedTo = this.generation;
    const msg: ToWorker = { t: 'conn', id: c.id, slot: c.slot, inherited: c.inherited };
    child.send(msg, c.socket, { keepOpen: true }, (err) => {
      // A worker that died meanwhile: the exit handler hands the connection to the next one.
      if (err) this.logger.debug({ event: 'hand-off-failed', id: c.id, message: err.message });
    });
  }

  /** Ends a response the dead worker had all but finished, then closes the connection (FIN, after the piece). */
  private finishFor(c: Conn, framing: 0 | 1): void {
    this.conns.delete(c.id);
    this.freeSlots.push(c.slot);
    const s = c.socket;
    const t = setTimeout(() => s.destroy(), 2000);
    t.unref();
    s.once('close', () => clearTimeout(t));
    // Discard what the client sends meanwhile, so that closing does not turn into a reset.
    s.resume();
    if (framing === 0) s.end(LAST_CHUNK);
    else s.end();
  }

  /** Forgets a connection and closes the supervisor's handle (`reset`: with RST). */
  private drop(c: Conn, reset: boolean): void {
    this.conns.delete(c.id);
    this.freeSlots.push(c.slot);
    if (reset) c.socket.resetAndDestroy();
    else c.socket.destroy();
  }

  private sendStats(): void {
    if (this.child && this.ready) this.child.send({ t: 'stats', restarts: this.restarts, rejected: this.rejected } satisfies ToWorker);
  }

  /** Reject counts reach the worker's /metrics at most once a second. */
  private statsSoon(): void {
    if (this.statsTimer) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = undefined;
      this.sendStats();
    }, 1000);
    this.statsTimer.unref();
  }

  /**
   * Re-reads the config (SIGHUP) and passes it to the worker. Keys that need
   * a restart keep their values (named in `ignored`); an invalid config is
   * logged and changes nothing.
   */
  reload(): { ok: boolean; ignored: (keyof ServerConfig)[]; error?: string } {
    if (!this.opts.reload) return { ok: false, ignored: [], error: 'no config source to reload from' };
    let next: Readonly<ServerConfig>;
    try {
      next = this.opts.reload();
    } catch (e) {
      this.logger.error({ event: 'reload-failed', message: (e as Error).message });
      return { ok: false, ignored: [], error: (e as Error).message };
    }
    const { config, ignored } = reloadable(this.config, next);
    this.config = config;
    this.logger.level = config.logLevel;
    if (ignored.length > 0) this.logger.warn({ event: 'reload-needs-restart', keys: ignored });
    this.logger.info({ event: 'reloaded' });
    if (this.child && this.ready) this.child.send({ t: 'config', config: this.workerConfig() } satisfies ToWorker);
    return { ok: true, ignored };
  }

  /**
   * SIGTERM: stops accepting, lets the worker finish the responses in flight
   * (up to drainSeconds) and close its sessions, then closes every
   * connection. Resolves when everything is closed.
   */
  drain(): Promise<void> {
    this.drainPromise ??= (async () => {
      if (this.state === 'new') {
        this.state = 'stopped';
        this.cleanup();
        return;
      }
      this.state = 'draining';
      this.listener?.close();
      // The worker closes its own handle of the listening socket as it drains.
      this.closeRaw();
      if (this.forkTimer) clearTimeout(this.forkTimer);
      const child = this.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        // Connections still waiting for a worker are handed over: the draining worker answers them 503.
        if (this.ready) for (const c of this.conns.values()) if (c.handedTo === 0) this.hand(c);
        const exited = new Promise<void>((resolve) => (this.exitWaiter = resolve));
        child.send({ t: 'drain' } satisfies ToWorker);
        const killer = setTimeout(() => child.kill('SIGKILL'), (this.config.drainSeconds + 5) * 1000);
        await exited;
        clearTimeout(killer);
      }
      this.state = 'stopped';
      this.cleanup();
      this.logger.info({ event: 'stopped', restarts: this.restarts });
    })();
    return this.drainPromise;
  }

  /** Kills the worker and closes everything at once (tests; a drain is the normal stop). */
  async kill(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.listener?.close();
    this.closeRaw();
    if (this.forkTimer) clearTimeout(this.forkTimer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
    this.cleanup();
  }

  private cleanup(): void {
    if (this.statsTimer) clearTimeout(this.statsTimer);
    for (const c of [...this.conns.values()]) this.drop(c, false);
    this.listener?.close();
    this.closeRaw();
    if (this.flags) {
      this.flags.close();
      try {
        unlinkSync(this.flags.path);
      } catch {
        /* gone */
      }
      this.flags = undefined;
    }
    if (this.lockFile) {
      try {
        unlinkSync(this.lockFile);
      } catch {
        /* gone */
      }
      this.lockFile = undefined;
    }
    if (this.ownsStateDir) rmSync(this.stateDir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
