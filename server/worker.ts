import type { Socket } from 'node:net';
import { validateConfig } from './config.js';
import { InflightFlags } from './flags.js';
import type { FromWorker, ToWorker } from './ipc.js';
import { createLogger, type Logger } from './log.js';
import { createJpipServer, type JpipServer } from './server.js';

/**
 * The worker side of the supervisor protocol (see ipc.ts), written against a
 * small channel interface so that tests can drive it in-process with real
 * sockets; `worker-main.ts` binds it to the process's IPC channel.
 */

export interface WorkerChannel {
  /** `handle`: a socket (kept open here) or the listening socket's raw handle, sent along. */
  send(msg: FromWorker, done?: () => void, handle?: Socket | object): void;
  onMessage(fn: (msg: ToWorker, handle: Socket | undefined) => void): void;
  onDisconnect(fn: () => void): void;
  exit(code: number): void;
}

export interface WorkerOptions {
  /** Log entries as objects instead of stderr (tests). */
  logSink?: (entry: Record<string, unknown>) => void;
}

export class WorkerHost {
  server: JpipServer | undefined;
  private flags: InflightFlags | undefined;
  private logger: Logger | undefined;
  private readonly channel: WorkerChannel;
  private readonly opts: WorkerOptions;
  private closedIds: number[] = [];
  private flushScheduled = false;
  private stopping = false;

  constructor(channel: WorkerChannel, opts: WorkerOptions = {}) {
    this.channel = channel;
    this.opts = opts;
    channel.onMessage((msg, handle) => this.onMessage(msg, handle));
    // The supervisor is gone: no connection will come any more; finish what is in flight and go.
    channel.onDisconnect(() => void this.stop(false));
  }

  private onMessage(msg: ToWorker, handle: Socket | undefined): void {
    switch (msg.t) {
      case 'init':
        this.init(msg);
        break;
      case 'conn':
        if (!handle) return;
        if (!this.server) {
          handle.destroy();
          return;
        }
        this.server.adopt(handle, msg.id, msg.slot, msg.inherited);
        break;
      case 'listen':
        if (!handle || !this.server) return;
        // The raw handle of the listening socket: accept on it. The first worker sends a handle of it
        // back, which the supervisor keeps without polling (the socket outlives any worker).
        void this.server.acceptOn(handle).then(
          () => {
            if (msg.back) this.channel.send({ t: 'listening' }, undefined, handle);
          },
          (e: Error) => this.logger?.error({ event: 'listen-failed', message: e.message }),
        );
        break;
      case 'kept':
        this.server?.setSlot(msg.id, msg.slot);
        break;
      case 'config':
        this.server?.reconfigure(validateConfig([msg.config], 'reload from the supervisor'));
        break;
      case 'stats':
        this.server?.metrics.supervisorCounts(msg.restarts, msg.rejected);
        break;
      case 'drain':
        void this.stop(true);
        break;
    }
  }

  private init(msg: Extract<ToWorker, { t: 'init' }>): void {
    try {
      const config = validateConfig([msg.config], 'config from the supervisor');
      this.logger = createLogger({ level: config.logLevel, sink: this.opts.logSink, base: { role: 'worker', pid: process.pid } });
      this.flags = new InflightFlags(msg.flagsFile, 'open');
      this.server = createJpipServer(config, {
        logger: this.logger,
        flags: this.flags,
        defaultMetrics: !this.opts.logSink,
        onConnectionClosed: (id) => this.closed(id),
        keep: (id, socket) => this.channel.send({ t: 'keep', id }, undefined, socket),
      });
      this.server.metrics.supervisorCounts(msg.restarts, msg.rejected);
      const r = this.server.recovered;
      this.channel.send({ t: 'ready', pid: process.pid, sessions: r?.sessions ?? 0, replayMs: r?.ms ?? 0, torn: r?.torn ?? false });
    } catch (e) {
      this.channel.send({ t: 'fatal', message: (e as Error).message }, () => this.channel.exit(1));
    }
  }

  /** Connection close reports go out once per event-loop turn, however many closed in it. */
  private closed(id: number): void {
    this.closedIds.push(id);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const ids = this.closedIds;
      this.closedIds = [];
      if (ids.length > 0 && !this.stopping) this.channel.send({ t: 'closed', ids });
    });
  }

  /** Drains (responses in flight finish, sessions closed), tells the supervisor, exits 0. */
  async stop(tell: boolean): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.server) await this.server.drain();
    this.flags?.close();
    if (tell) this.channel.send({ t: 'drained' }, () => this.channel.exit(0));
    else this.channel.exit(0);
  }
}
