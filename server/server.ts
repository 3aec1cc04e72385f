import { BlockCache } from './block-cache.js';
import { ConnTable } from './conn-table.js';
import { ResponseCache, ResponseRecorder, cachedPlan } from './response-cache.js';
import { rejectBusy } from './reject.js';
import { BufferPool } from './buffer-pool.js';
import { Slicer } from './slicer.js';
import { acceptTls, tlsContext } from './tls.js';
import { startWarmUp } from './warmup.js';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createGzip } from 'node:zlib';
import { CONTENT_TYPE, EOR } from '../jpip/constants.js';
import { CacheModel, COMPLETE } from '../jpip/cache-model.js';
import { JpipError, isJpipError } from '../jpip/errors.js';
import { parseRequest, type JpipRequest } from '../jpip/request.js';
import { isJ2kError } from '../jpeg2000/errors.js';
import { LISTEN_BACKLOG, isValidatedConfig, validateConfig, type ServerConfig } from './config.js';
import type { InflightFlags } from './flags.js';
import { ImageRegistry, type ImageEntry } from './images.js';
import { SessionJournal, type HeldUpdate, type ReplayResult, type ResponseMark } from './journal.js';
import { createLogger, type Logger, type RequestLogEntry } from './log.js';
import { createMetrics, isLoopback, type ServerMetrics } from './metrics.js';
import { applyModel, planRequest, type PlannedRequest } from './request-plan.js';
import { performReads, planResponse, windowKey, type BodyChunk, type ModelUpdate } from './responder.js';
import { AssemblyPool } from './assembly-pool.js';
import { IndexPool, defaultIndexThreads } from './index-pool.js';
import { SessionTable, type Session } from './sessions.js';
import { serveViewer } from './viewer.js';

/**
 * The JPIP server: HTTP/1.1 with keep-alive, JPP-stream (and JPT-stream)
 * responses, sessions that outlive connections, within bounds (connections,
 * sessions, timeouts against slow clients, index memory, open files).
 *
 * It runs in two ways. In-process, `listen()` accepts connections itself
 * (tests, `serve --single-process`). In a worker process, the supervisor owns
 * the listening socket and hands every connection in with `adopt()`; the
 * server tells it when a connection closes and, through `InflightFlags`,
 * which connections have a request in flight, and keeps a session journal so
 * that the next worker takes over the sessions if this one dies. Both ways
 * run the same code below.
 *
 * Cache-model updates of a response are committed (and journaled) once the
 * whole response has been written to the socket: a client takes a cut
 * response for a failed one, so the server must too.
 */

/** Parsed requests kept (by query string), and the longest query kept. */
const PARSED_QUERIES = 1024;
const PARSED_QUERY_CHARS = 2048;

/** Freezes an object and everything it holds (parsed requests are shared by the requests that repeat them). */
function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/** Reply buffers that assembly threads can fill (SharedArrayBuffers, never freed: see server/buffer-pool.ts). */
const SHARED_BUFFER_BYTES = 32 * 1024 * 1024;
/** Work per turn of the event loop before responses wait for the next poll (server/slicer.ts). */
const SLICE_MS = 10;

/** Bytes of a response written corked before it waits for the socket to drain. */
const CORK_BYTES = 64 * 1024;

export interface ServerOptions extends Partial<ServerConfig> {
  /** The image root: every target is a file under it. */
  root: string;
  /** Receives every log entry as an object (all levels), instead of stderr. */
  log?: (entry: Record<string, unknown>) => void;
}

/** What a process embedding the server passes besides the config. */
export interface ServerRuntime {
  logger?: Logger;
  /** In-flight flags shared with the supervisor (worker mode). */
  flags?: InflightFlags;
  /** Default process metrics (event loop, GC, heap) on /metrics. */
  defaultMetrics?: boolean;
  /** Told when an adopted connection closes (worker mode: the supervisor then closes its handle). */
  onConnectionClosed?: (id: number) => void;
  /**
   * workerAccepts: a connection this process accepted has had a response and is still open: hand
   * a handle of it to the supervisor for safekeeping (it answers with `setSlot`).
   */
  keep?: (id: number, socket: Socket) => void;
}

export interface ServerStats {
  requests: number;
  responses: number;
  errors: Record<number, number>;
  bytes: number;
}

export interface JpipServer {
  /** The effective config (frozen; replaced by `reconfigure`). */
  readonly config: Readonly<ServerConfig>;
  readonly server: Server;
  readonly registry: ImageRegistry;
  /** Response chunk buffers, reused once written. */
  readonly buffers: BufferPool;
  /** Worker threads indexing images without PLT (undefined: indexThreads 0, the main thread does). */
  readonly indexPool: IndexPool | undefined;
  /** Worker threads reading the image bytes of response chunks (undefined: assemblyThreads 0). */
  readonly assemblyPool: AssemblyPool | undefined;
  readonly sessions: SessionTable;
  /** The session journal (when `stateDir` is set). */
  readonly journal: SessionJournal | undefined;
  /** What the journal replay recovered at start. */
  readonly recovered: ReplayResult | undefined;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** Counters (also on /metrics). */
  readonly stats: ServerStats;
  /** TCP connections open. */
  readonly connectionCount: number;
  /** Responses being written. */
  readonly activeResponses: number;
  /** Accepts connections itself; resolves with the base URL. */
  listen(): Promise<string>;
  /** Takes a connection accepted elsewhere (the supervisor): `id` names it in close reports, `slot` is its in-flight flag. */
  adopt(socket: Socket, id: number, slot: number, inherited?: boolean): void;
  /** workerAccepts: accepts new connections itself on the listening socket the supervisor passed (its raw handle). */
  acceptOn(handle: object): Promise<void>;
  /** workerAccepts: the supervisor holds connection `id` now; its requests are flagged in `slot` from here on. */
  setSlot(id: number, slot: number): void;
  /** Applies a new config (a reload); keys that need a restart must be unchanged. */
  reconfigure(config: Readonly<ServerConfig>): void;
  /** Stops taking requests, lets responses in flight finish (up to drainSeconds), closes every connection and session. */
  drain(): Promise<void>;
  /**
   * Stops at once: connections are destroyed. The journal is removed
   * (sessions closed) unless `keepJournal`, which leaves it as a crash would.
   */
  close(opts?: { keepJournal?: boolean }): Promise<void>;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'JPIP-cnew, JPIP-tid, JPIP-qid, JPIP-fsiz, JPIP-roff, JPIP-rsiz, JPIP-layers, JPIP-stream, JPIP-context',
} as const;
const NO_CORS = {} as const;
const NOOP = (): void => {};

/**
 * The CORS headers for a request: only when it names its Origin, as a browser does for every
 * cross-origin request (a same-origin GET, a desktop client, a load generator need none). Two
 * headers fewer per response was 3% of a 20 KB window's cost. No cache may answer one request with
 * another's response (no-cache, and no validators to revalidate with), so no `Vary: Origin`.
 */
function corsFor(req: IncomingMessage): typeof CORS | typeof NO_CORS {
  return req.headers.origin !== undefined ? CORS : NO_CORS;
}

/** Paths the server keeps for itself (never targets). */
export const RESERVED_PATHS = ['/jpip', '/metrics', '/health', '/viewer'] as const;


interface Conn {
  id: number;
  slot: number;
  socket: Socket;
  /** Accepted by this process on the listening socket the supervisor gave it (workerAccepts), not handed over. */
  own?: boolean;
  /** Sent to the supervisor for safekeeping. */
  keeping?: boolean;
  /** Sequence numbers of the requests of this connection being answered, oldest first (its flag shows the first). */
  seqs: number[];
  /** No request yet (its socket has the first-request timeout). */
  fresh: boolean;
  /** What its slot in the flags file says now (0: nothing in flight): written only when it changes. */
  flagged: number;
  /** Its neighbours in the connection table (server/conn-table.ts). */
  prev?: Conn | undefined;
  next?: Conn | undefined;
}

/** A request's plan on one image version, kept (see plannedFor in createJpipServer). */
interface PlanMemo {
  defaultLen: number;
  maxLen: number;
  planned: PlannedRequest;
  /** Every codestream of the plan is in the image's own file. */
  local: boolean;
  /** The kept-response key (local plans only). */
  key?: string | undefined;
  /** The window's key for held-window notes (local plans only). */
  windowKey?: string | undefined;
}

interface RequestContext {
  reqId: string;
  /** Request sequence number (in the flags file and the journal's SENT records). */
  seq: number;
  /** Connection slot (-1: not from the supervisor). */
  slot: number;
  t0: number;
  cid: string | undefined;
  target: string | undefined;
  eor: number | undefined;
  bytes: number;
  /** Clears the request's in-flight flag (once). */
  settle: () => void;
  /** Sets the request's in-flight flag if it is not set yet (before any slow step: see onRequest). */
  flag: () => void;
  /** Why the response was cut, when the server cut it. */
  cutWhy?: 'stall';
  /** A produced response (not an early EOR, not an error): counted in stats.responses if it closes finished. */
  counted?: boolean;
}

/**
 * The model updates of a response, in the order they were made. The responder makes at most one
 * per bin in a response (headers and metadata as they are sent, precincts once at the end): a
 * list, not a map by bin (a 15-frame reply has ~2,300 of them, and a map's entries outlived the
 * response's scavenges: sampled, a quarter of what the paper crowd's responses promoted).
 */
class ResponseUpdates {
  private readonly all: ModelUpdate[] = [];
  /** A kept response's updates, taken as they are while nothing else is added. */
  private kept: readonly HeldUpdate[] | undefined;
  /** A new collection: starts with a kept response's updates. */
  preset(list: readonly HeldUpdate[]): void {
    this.kept = list;
  }
  add(u: ModelUpdate): void {
    if (this.kept) {
      for (const k of this.kept) this.all.push(k);
      this.kept = undefined;
    }
    this.all.push(u);
  }
  /** The updates; a kept response's own list when nothing was added to it. */
  list(): readonly HeldUpdate[] {
    return this.kept ?? this.all;
  }
  /** Whether `list()` is exactly this kept list. */
  isKept(list: readonly HeldUpdate[]): boolean {
    return this.kept === list;
  }
  get size(): number {
    return this.kept ? this.kept.length : this.all.length;
  }
}

/**
 * A cache model that forwards to a session's model and records what the
 * client's model= statements changed, for the journal.
 */
class RecordingModel extends CacheModel {
  readonly added: HeldUpdate[] = [];
  readonly removed: { codestream: number; classId: number; binId: number; bytes: number }[] = [];
  private readonly target: CacheModel;
  constructor(target: CacheModel) {
    super();
    this.target = target;
  }
  override held(codestream: number, classId: number, binId: number): number {
    return this.target.held(codestream, classId, binId);
  }
  override add(codestream: number, classId: number, binId: number, bytes: number, complete = false): void {
    this.target.add(codestream, classId, binId, bytes, complete);
    this.added.push({ codestream, classId, binId, held: complete ? COMPLETE : bytes });
  }
  override remove(codestream: number, classId: number, binId: number, bytes = 0): void {
    this.target.remove(codestream, classId, binId, bytes);
    this.removed.push({ codestream, classId, binId, bytes });
  }
}

export function createJpipServer(options: ServerOptions | Readonly<ServerConfig>, runtime: ServerRuntime = {}): JpipServer {
  let cfg: Readonly<ServerConfig>;
  let sink: ((entry: Record<string, unknown>) => void) | undefined;
  if (isValidatedConfig(options)) cfg = options;
  else {
    const { log, ...rest } = options as ServerOptions;
    sink = log;
    cfg = validateConfig([rest], 'createJpipServer options');
  }
  const logger = runtime.logger ?? createLogger({ level: cfg.logLevel, sink });
  // HTTPS: every connection is wrapped in TLS before the HTTP layer reads it (server/tls.ts).
  const secure = tlsContext(cfg);
  const blockCache = new BlockCache(cfg.blockCacheBytes);
  const responseCache = new ResponseCache(cfg.responseCacheBytes);
  const assemblyThreads = cfg.assemblyThreads === -1 ? defaultIndexThreads() : cfg.assemblyThreads;
  const assemblyPool = assemblyThreads > 0 ? new AssemblyPool(assemblyThreads) : undefined;
  const buffers = new BufferPool(undefined, { sharedBytes: assemblyPool ? SHARED_BUFFER_BYTES : 0 });
  const slicer = new Slicer(SLICE_MS);
  const registry = new ImageRegistry({ root: cfg.root, cacheDir: cfg.cacheDir ?? undefined, maxOpen: cfg.maxOpenFiles, maxBytes: cfg.indexCacheBytes, blockCache, recheckMs: cfg.fileRecheckSeconds * 1000 });
  const indexThreads = cfg.indexThreads === -1 ? defaultIndexThreads() : cfg.indexThreads;
  const indexPool = indexThreads > 0 ? new IndexPool(indexThreads) : undefined;
  const sessions = new SessionTable({ maxSessions: cfg.maxSessions, idleMs: cfg.sessionIdleSeconds * 1000, ...(cfg.cidPrefix !== null ? { cidPrefix: cfg.cidPrefix } : {}) });
  let journal: SessionJournal | undefined;
  let recovered: ReplayResult | undefined;
  if (cfg.stateDir) {
    journal = new SessionJournal(cfg.stateDir, {
      compactBytes: cfg.journalCompactBytes,
      onEvent: (event, fields) => (event === 'journal-compacted' ? logger.debug({ event, ...fields }) : logger.warn({ event, ...fields })),
    });
    recovered = journal.open(sessions);
    if (recovered.sessions > 0 || recovered.torn) logger.info({ event: 'sessions-recovered', ...recovered });
  }
  const flags = runtime.flags;
  const stats: ServerStats = { requests: 0, responses: 0, errors: {}, bytes: 0 };
  const conns = new ConnTable<Conn>();
  /** workerAccepts: connections sent for safekeeping, until the supervisor names their slot (setSlot). */
  const keptById = new Map<number, Conn>();
  const parsedQueries = new Map<string, JpipRequest>();
  const planMemos = new WeakMap<ImageEntry, WeakMap<JpipRequest, PlanMemo>>();
  /** workerAccepts: ids of the connections this process accepts (apart from the supervisor's, and from other workers'). */
  let ownIds = process.pid * 2 ** 30 + 2 ** 40;
  let activeResponses = 0;
  let draining = false;
  let drainWaiter: (() => void) | undefined;
  let drainPromise: Promise<void> | undefined;
  let closed = false;
  /** Servers accepting in this process: listen()'s, or (workerAccepts) one per handle of the supervisor's listening socket. */
  const listeners: NetServer[] = [];
  let localIds = 0;
  let reqSeq = 0;
  const idPrefix = `${process.pid.toString(36)}-`;
  const metrics = createMetrics(
    {
      connections: () => conns.size,
      sessions: () => sessions.size,
      indexEntries: () => registry.openCount,
      indexBytes: () => registry.bytes,
      openFiles: () => registry.openFiles,
      blockCache: () => blockCache.stats(),
      responseCache: () => responseCache.stats(),
      ...(indexPool ? { indexThreads: () => ({ tiles: indexPool.tilesIndexed, failures: indexPool.failures, restarts: indexPool.restarts }) } : {}),
      ...(assemblyPool ? { assemblyThreads: () => ({ chunks: assemblyPool.chunks, bytes: assemblyPool.bytes, preads: assemblyPool.preads, failures: assemblyPool.failures, restarts: assemblyPool.restarts }) } : {}),
      journalBytes: () => journal?.bytes ?? 0,
    },
    { defaultMetrics: runtime.defaultMetrics ?? false },
  );

  let sweeper = startSweeper();
  // The first requests of a fresh worker run compiled code (server/warmup.ts).
  const warm = cfg.warmUp ? startWarmUp() : undefined;
  void warm?.done.then((w) => logger.debug({ event: 'warmed-up', ...w }));
  function startSweeper(): NodeJS.Timeout {
    return setInterval(() => sessions.expire(), Math.max(10, Math.min(60_000, cfg.sessionIdleSeconds * 1000))).unref();
  }

  const headersMs = cfg.headersTimeoutSeconds * 1000;
  const server = createHttpServer({
    keepAliveTimeout: cfg.keepAliveSeconds * 1000,
    headersTimeout: headersMs,
    requestTimeout: cfg.requestTimeoutSeconds * 1000,
    // How often Node looks for connections past those timeouts: a slow client is cut within this of its deadline.
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(headersMs / 4))),
    maxHeaderSize: Math.max(16384, cfg.maxUrlBytes + 4096),
  });
  // Node starts tracking connections (the header and request timeouts, closeIdleConnections)
  // when an http.Server starts listening. This one never listens: connections come from
  // `listen()`'s own socket or from the supervisor, and are emitted into it.
  server.emit('listening');

  server.on('request', (req, res) => onRequest(req, res));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Malformed HTTP or a slow client: answer if the socket still can, never crash.
    const code = err.code ?? '';
    let status = '400 Bad Request';
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') status = '408 Request Timeout';
    else if (code === 'HPE_HEADER_OVERFLOW') status = '431 Request Header Fields Too Large';
    if (socket.writable && code !== 'ECONNRESET' && code !== 'EPIPE') socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
    logger.info({ event: 'client-error', code, status: Number(status.slice(0, 3)), message: err.message });
  });

  function onSocket(tcp: Socket, id: number, slot: number, inherited = false, own = false): void {
    if (closed) {
      tcp.destroy();
      return;
    }
    // With TLS, the TLS layer is what the HTTP server and the connection table see (closing it
    // closes the TCP connection); a 503 below goes out encrypted too.
    const socket = secure ? acceptTls(tcp, secure) : tcp;
    socket.once('close', () => {
      const c = conns.remove(socket);
      if (c?.keeping) keptById.delete(id);
      if (c) setFlag(c, 0);
      // The supervisor only hears of connections it holds (one this process accepted: once kept).
      if (!c?.own || c.keeping) runtime.onConnectionClosed?.(id);
    });
    metrics.tally.connections++;
    if (conns.size >= cfg.maxConnections || draining) {
      metrics.connectionsRejected.inc();
      logger.warn({ event: 'connection-rejected', connections: conns.size, maxConnections: cfg.maxConnections, draining });
      rejectBusy(socket, cfg.retryAfterSeconds, draining ? 'the server is shutting down' : undefined);
      return;
    }
    const conn: Conn = { id, slot, socket, seqs: [], fresh: true, own, flagged: 0 };
    conns.add(conn);
    tcp.setNoDelay(true);
    if (inherited) {
      // An established keep-alive connection that served a dead worker: it may stay idle as
      // long as keep-alive allows. Node's HTTP server would take it for a new connection and
      // cut it after headersTimeoutSeconds, so it is given the socket with its next request.
      const idle = (): void => {
        socket.destroy();
      };
      socket.setTimeout(cfg.keepAliveSeconds * 1000, idle);
      socket.once('data', (chunk: Buffer) => {
        socket.pause();
        socket.setTimeout(0);
        socket.off('timeout', idle);
        socket.unshift(chunk);
        server.emit('connection', socket);
        socket.resume();
      });
      return;
    }
    server.emit('connection', socket);
    // Node's header timeout starts with the first byte of a request: a client that connects
    // and sends nothing is cut after headersTimeoutSeconds too (until its first request).
    socket.setTimeout(cfg.headersTimeoutSeconds * 1000);
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    stats.requests++;
    reqSeq = reqSeq >= 0xffffffff ? 1 : reqSeq + 1;
    const conn = conns.get(req.socket);
    const ctx: RequestContext = { reqId: idPrefix + reqSeq.toString(36), seq: reqSeq, slot: conn?.slot ?? -1, t0: performance.now(), cid: undefined, target: undefined, eor: undefined, bytes: 0, settle: NOOP, flag: NOOP };
    if (conn) {
      if (conn.fresh) {
        conn.fresh = false;
        req.socket.setTimeout(0);
      }
      conn.seqs.push(ctx.seq);
    }
    activeResponses++;
    if (draining) res.shouldKeepAlive = false;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      if (!conn) return;
      const i = conn.seqs.indexOf(ctx.seq);
      if (i >= 0) conn.seqs.splice(i, 1);
      // The next pipelined request (if any) is now the one in flight.
      if (i === 0) setFlag(conn, conn.seqs[0] ?? 0);
    };
    // On finish (the last byte is in the kernel) the flag is cleared: the client will get the whole
    // response even if this process dies now.
    ctx.settle = settle;
    res.once('finish', settle);
    res.once('close', () => {
      settle();
      activeResponses--;
      // workerAccepts: a connection that has had its response goes into the supervisor's safekeeping
      // (TLS connections cannot outlive this process anyway).
      if (conn && conn.own && !conn.keeping && !secure && runtime.keep && res.writableFinished && res.shouldKeepAlive && !req.socket.destroyed && !req.socket.writableEnded) {
        conn.keeping = true;
        keptById.set(conn.id, conn);
        runtime.keep(conn.id, conn.socket);
      }
      const cut = !res.writableFinished;
      if (ctx.counted && !cut) stats.responses++;
      const status = res.statusCode;
      const seconds = (performance.now() - ctx.t0) / 1000;
      metrics.tally.response(status, seconds, ctx.bytes, cut ? undefined : ctx.eor, cut ? (ctx.cutWhy ?? (draining ? 'drain' : 'client')) : undefined);
      if (logger.isLevelEnabled('info')) {
        const line: RequestLogEntry = { reqId: ctx.reqId, method: req.method ?? '?', cid: ctx.cid, target: ctx.target, status, bytes: ctx.bytes, eor: ctx.eor, ms: Math.round(seconds * 1e6) / 1000 };
        if (cut) line.cut = true;
        logger.info({ event: 'request', ...line });
      }
      if (draining) {
        // Keep-alive ends with the drain: the connection closes once its last response is out.
        if (conn && conn.seqs.length === 0) conn.socket.end();
        if (activeResponses === 0) drainWaiter?.();
      }
    });
    // The request's in-flight flag: set before any byte of its response goes out, and before any
    // step that may take long (opening or checking a file, planning, reading image bytes: a worker
    // killed there must leave the connection flagged, or the next worker would wait for a request
    // the client already sent, and the client hang until its own timeout). What runs before it is
    // set is bounded to in-memory look-ups: a request on the bare-EOR path (a session's window it
    // holds all of, see respond) is answered within them, and if that answer goes to the kernel
    // whole in its one write no flag is written at all (nobody could need it after a crash):
    // cache hits are spared two writes.
    if (conn && conn.slot >= 0 && conn.seqs[0] === ctx.seq) {
      ctx.flag = () => {
        if (!settled && conn.seqs[0] === ctx.seq) setFlag(conn, ctx.seq);
      };
    }
    handle(req, res, ctx).catch((e: unknown) => fail(res, e, req));
    // Not answered in this turn (it waits for something): flagged now, before the turn ends.
    if (!res.writableEnded) ctx.flag();
    // Answered, but not all of it went to the kernel in that write: flagged until it has. (The
    // write is done by now: end() uncorks the socket, and what the kernel did not take is still
    // counted. Checked here, not in a tick: a tick per cache hit was 4% of its cost.)
    else if (conn && conn.slot >= 0 && req.socket.writableLength > 0) ctx.flag();
  }

  /** Writes a connection's in-flight flag if it changes. */
  function setFlag(conn: Conn, seq: number): void {
    if (conn.flagged === seq) return;
    conn.flagged = seq;
    flags?.set(conn.slot, seq);
  }

  function fail(res: ServerResponse, e: unknown, req: IncomingMessage): void {
    let status = 500;
    let message = 'internal error';
    if (isJpipError(e)) {
      status = e.status;
      message = `${e.code}: ${e.message}`;
      if (e.kind === 'CORRUPT_IMAGE') logger.error({ event: 'corrupt-image', url: req.url, message: e.message, cause: (e.cause as Error | undefined)?.message });
    } else if (isJ2kError(e)) {
      status = 500;
      // The code only: reasons may name server paths (a linked frame's location); the log has them.
      message = `JPIP_ERR_CORRUPT_IMAGE: the image cannot be served: [${e.code}] (details in the server log)`;
      logger.error({ event: 'corrupt-image', url: req.url, code: e.code, file: e.file, offset: e.offset, message: e.message });
    } else {
      logger.error({ event: 'internal-error', url: req.url, message: (e as Error)?.stack ?? String(e) });
    }
    stats.errors[status] = (stats.errors[status] ?? 0) + 1;
    if (res.headersSent) {
      // Mid-body: the client must not take a cut response for a whole one.
      res.destroy();
      return;
    }
    const body = `${message}\n`;
    const headers: Record<string, string | number> = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache', ...corsFor(req) };
    if (status === 503) headers['Retry-After'] = cfg.retryAfterSeconds;
    if (status === 405) headers['Allow'] = 'GET, HEAD, POST, OPTIONS';
    res.writeHead(status, headers);
    res.end(body);
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
      n += (c as Buffer).length;
      if (n > cfg.maxBodyBytes) throw new JpipError('BODY_TOO_LARGE', `request body over ${cfg.maxBodyBytes} bytes`);
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('latin1');
  }

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const url = req.url ?? '/';
    if (url.length > cfg.maxUrlBytes) throw new JpipError('URI_TOO_LONG', `request target over ${cfg.maxUrlBytes} bytes; send long model= fields with POST`);
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    let query = q < 0 ? '' : url.slice(q + 1);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...CORS, 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS', 'Access-Control-Allow-Headers': 'Content-Type', 'Access-Control-Max-Age': '86400' });
      res.end();
      return;
    }
    let form = false;
    if (req.method === 'POST') {
      const body = await readBody(req);
      if (query !== '' && body !== '') throw new JpipError('BAD_REQUEST', 'fields both in the URL and in the POST body');
      if (body !== '') {
        query = body.replace(/\r?\n$/, '');
        form = true;
      }
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new JpipError('METHOD', `method ${req.method ?? '?'} not allowed: use GET or POST`);
    }
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      throw new JpipError('BAD_REQUEST', 'the path is not valid percent-encoding');
    }
    const viewer = path === '/viewer' || path.startsWith('/viewer/');
    // Not JPIP: flagged like any request off the bare-EOR path (the viewer reads files).
    if (viewer || path === '/health' || path === '/metrics') ctx.flag();
    if (path === '/health') return sendHealth(req, res, query);
    if (path === '/metrics') return sendMetrics(req, res);
    if (viewer) {
      if (!cfg.viewer) throw new JpipError('NOT_FOUND', 'the viewer is turned off (--no-viewer)');
      return serveViewer(req, res, path, query, registry.rootReal);
    }
    const jr = parsed(query, form);
    await respond(jr, path, req, res, ctx);
  }

  /** Early answers that are a bare EOR (nothing to send, or the channel closed). */
  function sendEor(res: ServerResponse, headers: Record<string, string>, reason: number, ctx: RequestContext): void {
    if (!headers['Content-Type']) headers['Content-Type'] = CONTENT_TYPE['jpp-stream'];
    res.writeHead(200, headers);
    ctx.eor = reason;
    ctx.bytes = 3;
    res.end(Uint8Array.of(0, reason, 0));
    stats.responses++;
  }

  async function respond(jr: JpipRequest, path: string, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    // A busy turn of the event loop: start after the next poll (see server/slicer.ts).
    const wait = slicer.pause();
    if (wait) {
      await wait;
      if (res.destroyed) return;
    }
    const headers: Record<string, string> = { 'Content-Type': '', 'Cache-Control': 'no-cache', ...corsFor(req) };
    if (jr.qid !== undefined) headers['JPIP-qid'] = String(jr.qid);

    // Channels: close, continue, or open.
    let session: Session | undefined;
    if (jr.cid !== undefined) {
      ctx.cid = jr.cid;
      session = sessions.get(jr.cid);
    }
    if (jr.cclose !== undefined) {
      if (jr.cclose !== '*') for (const c of jr.cclose) sessions.get(c); // unknown ones are 404
      sessions.close(jr.cclose, session);
      if (jr.cclose !== '*' && session && jr.cclose.includes(session.cid)) session = undefined;
      if (!session && jr.cnew === undefined) return sendEor(res, headers, 2, ctx); // EOR window done: nothing was asked
    }
    let target: string | undefined = jr.target ?? (path === '/jpip' || path === '/' ? undefined : path);
    if (RESERVED_PATHS.includes(path as (typeof RESERVED_PATHS)[number]) && jr.target === undefined) target = undefined;
    if (session && target !== undefined && registry.resolveCached(target) !== registry.resolveCached(session.key)) {
      throw new JpipError('BAD_REQUEST', 'the channel belongs to another target', 'target');
    }
    if (!session && target === undefined) throw new JpipError('BAD_REQUEST', 'no target: name the image in the path or with target=, or give a cid', 'target');
    // Unflagged only on the bare-EOR path (see onRequest): a session's image found unchanged a
    // moment ago, a kept plan of its own file's codestreams, held windows noted.
    if (!onBareEorPath(jr, session)) ctx.flag();
    const entry: ImageEntry = registry.open(session ? session.key : target!);
    ctx.target = entry.key;
    // In use from here on: opening other images (linked frames, model=) must not close this one.
    registry.acquire(entry);
    const owners = new Set<ImageEntry>([entry]);
    let handedOff = false;
    /** A channel this request opened: closed again if the request fails before its answer starts. */
    let openedHere: Session | undefined;
    let model: CacheModel;
    let planned: PlannedRequest;
    let memo: PlanMemo;
    try {
      if (session && session.tid !== entry.tid) {
        // The file changed on disk since the client's data was sent: start over.
        session.model.clear();
        session.tid = entry.tid;
        journal?.cleared(session);
      }
      if (jr.cnew !== undefined) {
        if (!jr.cnew.includes('http')) throw new JpipError('UNIMPLEMENTED', 'only the http transport is offered', 'cnew');
        session = sessions.open(entry.key, entry.tid);
        openedHere = session;
        ctx.cid = session.cid;
        headers['JPIP-cnew'] = `cid=${session.cid},path=jpip,transport=http`;
      }
      if (jr.tid !== undefined || jr.cnew !== undefined) headers['JPIP-tid'] = entry.tid;
      if (session && session.model.size > cfg.maxSessionBins) {
        // The session's bookkeeping is at its limit: the channel is closed, the client opens a new one.
        sessions.close([session.cid]);
        return sendEor(res, headers, 6, ctx);
      }
      model = session?.model ?? new CacheModel();
      if (jr.tid !== undefined && jr.tid !== '0' && jr.tid !== entry.tid) {
        model.clear();
        if (session) journal?.cleared(session);
      }

      memo = plannedFor(jr, entry);
      planned = memo.planned;
      if (session && journal && jr.model) {
        const rec = new RecordingModel(model);
        applyModel(jr, entry, rec, planned.input.codestreams);
        for (const r of rec.removed) journal.removed(session, r.codestream, r.classId, r.binId, r.bytes);
        journal.held(session, rec.added);
      } else {
        applyModel(jr, entry, model, planned.input.codestreams);
      }
      if (!memo.local) {
        for (const i of planned.input.codestreams) {
          const owner = entry.codestream(i).owner;
          if (!owners.has(owner)) {
            registry.acquire(owner);
            owners.add(owner);
          }
        }
      }
      handedOff = true;
    } finally {
      if (!handedOff) {
        for (const x of owners) registry.release(x);
        if (openedHere) sessions.close([openedHere.cid]);
      }
    }
    // A session's window it already holds all of (noted when an answer to it ended with EOR 1 or 2,
    // and no bin taken away since) is answered with the EOR alone (metadata requests are not noted).
    // The key is made only when it can serve: a model with noted windows, or an answer to note.
    const noting = session !== undefined && jr.metareq === undefined;
    let heldKey: string | undefined;
    const keyOf = (): string => (heldKey ??= heldWindowKey(memo, entry));
    if (session) session.active++;
    let recorder: ResponseRecorder | undefined;
    try {
      // A client that holds nothing gets what the last one that asked the same got (server/response-cache.ts).
      const cacheKey = responseCache.enabled && model.size === 0 && jr.metareq === undefined && req.method !== 'HEAD' ? keptKey(memo, entry) : undefined;
      const hit = cacheKey !== undefined ? responseCache.get(cacheKey) : undefined;
      // Tiles to index from packet headers are parsed on the index threads meanwhile (never throws).
      if (indexPool && !hit) await indexPool.prepare(entry, planned.input);
      const plan = hit ? cachedPlan(hit) : planResponse(entry, planned.input, model, { chunkSize: cfg.chunkBytes, alloc: (n) => buffers.get(n), deferReads: assemblyPool !== undefined });
      // The body is kept only if the model stayed empty while it was produced (no other response of the session committed meanwhile).
      recorder = cacheKey !== undefined && !hit && model.size === 0 ? responseCache.record(cacheKey, planned.input.len + 64) : undefined;
      const changesAtStart = model.changes;
      const v = plan.served.view;
      if (v && jr.fsiz) {
        if (v.modified.fsiz) headers['JPIP-fsiz'] = `${v.fsiz.w},${v.fsiz.h}`;
        if (v.modified.roff) headers['JPIP-roff'] = `${v.roff.x},${v.roff.y}`;
        if (v.modified.rsiz) headers['JPIP-rsiz'] = `${v.rsiz.w},${v.rsiz.h}`;
      }
      if (plan.served.layers !== undefined) headers['JPIP-layers'] = String(plan.served.layers);
      if (planned.streamClipped && jr.stream) headers['JPIP-stream'] = planned.input.codestreams.join(',');
      if (planned.context !== undefined) headers['JPIP-context'] = planned.context;
      headers['Content-Type'] = CONTENT_TYPE[planned.input.type];
      const heldEor = noting && model.notesWindows ? model.windowHeld(keyOf()) : undefined;
      if (heldEor !== undefined && req.method !== 'HEAD') return sendEor(res, headers, heldEor, ctx);
      ctx.flag();
      const gzip = jr.metareq !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      if (gzip) headers['Content-Encoding'] = 'gzip';
      // Produce the first chunk before the status line, so a corrupt image is a clean 500.
      const body = plan.body();
      const firstChunk = body.next();
      if (!firstChunk.done) await completeChunk(firstChunk.value);
      res.writeHead(200, headers);
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const updates = new ResponseUpdates();
      if (hit) updates.preset(hit.updates);
      // The response's end goes out with its last bytes (one system call less) unless the journal
      // must record the response between them (a session's response in a supervised worker).
      // A reply that changes nothing in the session (a cache hit: EOR alone) has nothing to journal:
      // its end goes with it too.
      // Where the supervisor could not send a last piece for a dead worker (TLS, a connection it
      // does not hold), a response is journaled once its end is out (below): nothing comes between.
      const fold = gzip ? 'never' : !(session && journal) || secure || ctx.slot < 0 ? 'always' : 'if-nothing-held';
      // Counted when it closes (onRequest), whenever that is: a folded response closes as soon as it finishes.
      ctx.counted = true;
      if (!(await streamBody(res, firstChunk, body, updates, gzip, ctx, fold, recorder))) return;
      const folded = res.writableEnded;
      if (recorder && model.changes === changesAtStart) recorder.keep(plan.served);
      // Everything but the last piece of the response (the final empty chunk) is in the kernel.
      // Commit what the client will hold, then send that piece: a client takes the response as
      // received only with it. If this process dies before the response's in-flight flag is
      // cleared, the supervisor finds the journal's SENT record and sends the piece itself.
      const held = updates.list();
      // A kept response to a model still empty: the model takes the kept holdings, shared, not copied.
      const adopted = hit !== undefined && updates.isKept(hit.updates) && model.adopt(hit.holdings);
      // What the session held before, to take the commit back if that last piece never leaves (nothing, when adopted).
      const before = session && !adopted ? held.map((u) => model.held(u.codestream, u.classId, u.binId)) : undefined;
      if (!adopted) for (const u of held) model.add(u.codestream, u.classId, u.binId, u.held, u.held === COMPLETE);
      if (noting && (ctx.eor === EOR.WINDOW_DONE || ctx.eor === EOR.IMAGE_DONE)) model.noteWindowHeld(keyOf(), ctx.eor);
      let mark: ResponseMark | undefined;
      // With TLS: journaled when its end is out (in done).
      // The same for any connection the supervisor does not hold (one this process accepted and the
      // supervisor does not hold yet; every connection of a single process): nobody could send its
      // last piece after a crash, so the client would drop the response the journal recorded.
      const journalAfter = (secure !== undefined || ctx.slot < 0) && session !== undefined && journal !== undefined && held.length > 0;
      if (session && journal && held.length > 0 && !journalAfter) {
        mark = { pid: process.pid, slot: ctx.slot, seq: ctx.seq, framing: res.chunkedEncoding ? 0 : 1 };
        journal.responseSent(session, held, mark);
      }
      let ended = false;
      const done = (sent: boolean): void => {
        if (ended) return;
        ended = true;
        ctx.settle();
        if (mark) journal!.responseDone(mark);
        if (sent && journalAfter) {
          // Sessions sent the same kept response share one record of its bins in the journal.
          if (adopted) journal!.adopted(session!, hit!.holdings, true);
          else journal!.held(session!, held, true);
        }
        if (sent || !session) return;
        // The client never got the end of the response: it drops it, so must the session.
        held.forEach((u, i) => {
          const was = before?.[i] ?? 0;
          model.remove(u.codestream, u.classId, u.binId, was);
          journal?.removed(session, u.codestream, u.classId, u.binId, was);
        });
      };
      if (!folded) res.end();
      // A folded response is known to have finished (streamBody said so).
      if (folded || (!req.socket.destroyed && req.socket.writableLength === 0)) done(true);
      else {
        res.once('finish', () => done(true));
        res.once('close', () => done(res.writableFinished));
      }
    } finally {
      recorder?.release();
      if (session) {
        session.active--;
        sessions.touch(session);
      }
      for (const x of owners) registry.release(x);
    }
  }

  /**
   * Writes the body with backpressure, all but the response's end (with `fold`, the end too, with
   * the last bytes); resolves true once every byte is in the kernel, false if the response was cut (client gone, or it read nothing for
   * sendStallSeconds).
   */
  async function streamBody(
    res: ServerResponse,
    first: IteratorResult<BodyChunk, void>,
    rest: Generator<BodyChunk, void, void>,
    updates: ResponseUpdates,
    gzip: boolean,
    ctx: RequestContext,
    fold: 'always' | 'never' | 'if-nothing-held',
    recorder?: ResponseRecorder,
  ): Promise<boolean> {
    // Writes whose callback has not come yet; `written` resolves when the last one's does (callbacks
    // come in order). One promise per response, made only if it must wait, not one per write.
    let pending = 0;
    let allWritten: (() => void) | undefined;
    const written = (): Promise<void> => (pending === 0 ? Promise.resolve() : new Promise<void>((r) => (allWritten = r)));
    const write = (b: Uint8Array, last = false, buffer?: Uint8Array): boolean => {
      pending++;
      ctx.bytes += b.length;
      // Once written (in the kernel), the chunk's buffer serves another reply; not after an error.
      const after = (err?: Error | null): void => {
        if (!err && buffer) buffers.put(buffer);
        if (--pending === 0 && allWritten) {
          const r = allWritten;
          allWritten = undefined;
          r();
        }
      };
      if (last) {
        res.end(b, after);
        return true;
      }
      return res.write(b, after);
    };
    const z = gzip ? createGzip() : undefined;
    if (z) {
      z.on('data', (b: Buffer) => {
        if (!write(b)) {
          z.pause();
          res.once('drain', () => z.resume());
        }
      });
    }
    let step = first;
    // Chunks produced back to back go out corked, in one writev, up to CORK_BYTES; then the
    // response waits for the socket to drain like any writer.
    let corked = 0;
    res.cork();
    while (!step.done) {
      const chunk = step.value;
      const filling = completeChunk(chunk);
      if (filling) {
        // Read on an assembly thread: what is corked goes out meanwhile.
        res.uncork();
        corked = 0;
        await filling;
        if (res.destroyed) return false;
        res.cork();
      }
      stats.bytes += chunk.bytes.length;
      recorder?.add(chunk.bytes, chunk.updates, chunk.eor);
      for (const u of chunk.updates) updates.add(u);
      if (chunk.eor !== undefined) ctx.eor = chunk.eor;
      // Compressed bodies are not pooled: zlib may still read the chunk after write() returns.
      const last = chunk.eor !== undefined && (fold === 'always' || (fold === 'if-nothing-held' && updates.size === 0));
      const more = z ? z.write(chunk.bytes) : write(chunk.bytes, last, chunk.buffer);
      corked += chunk.bytes.length;
      if (corked >= CORK_BYTES) {
        res.uncork();
        corked = 0;
        if (!more && !(await guard(res, event(z ?? res, 'drain'), ctx))) return false;
        res.cork();
      }
      if (res.destroyed) return false;
      // Not after the last chunk: the response is done, nothing more to generate.
      const turn = chunk.eor === undefined ? slicer.pause() : undefined;
      if (turn) {
        res.uncork();
        await turn;
        if (res.destroyed) return false;
        res.cork();
      }
      step = rest.next();
    }
    res.uncork();
    if (z) {
      const ended = event(z, 'end');
      z.end();
      if (!(await guard(res, ended, ctx))) return false;
    }
    // Every byte in the kernel already (the usual end of a response): the last write's callback
    // comes in this turn's ticks, and there is no stall to watch for (no timer, no listener: 5% of
    // a 20 KB window's cost).
    const ok = res.writableLength === 0 && !res.destroyed ? await written().then(() => !res.destroyed) : await guard(res, written(), ctx);
    // An ended response closes as soon as it finishes: what counts then is that it finished.
    return res.writableEnded ? res.writableFinished : ok && !res.destroyed;
  }

  /**
   * Reads a chunk's deferred image bytes: on an assembly thread when it has at least
   * assemblyMinBytes of them (undefined when there is nothing to wait for), else here, through the
   * block cache; here too when the thread could not. Throws (or rejects) as the reads do.
   */
  function completeChunk(chunk: BodyChunk): Promise<void> | undefined {
    if (!chunk.reads) return undefined;
    if (assemblyPool && chunk.reads.bytes >= cfg.assemblyMinBytes && AssemblyPool.canFill(chunk)) {
      return assemblyPool.fill(chunk).then((ok) => {
        if (!ok) performReads(chunk);
      });
    }
    performReads(chunk);
    return undefined;
  }

  function event(em: NodeJS.EventEmitter, name: string): Promise<void> {
    return new Promise<void>((resolve) => em.once(name, () => resolve()));
  }

  /** Waits for `p`; false if the response closes first or the client reads nothing for sendStallSeconds (then it is cut). */
  function guard(res: ServerResponse, p: Promise<void>, ctx: RequestContext): Promise<boolean> {
    if (res.destroyed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        res.off('close', onClose);
        resolve(ok);
      };
      const onClose = (): void => finish(false);
      const timer = setTimeout(() => {
        ctx.cutWhy = 'stall';
        logger.info({ event: 'send-stall', reqId: ctx.reqId, seconds: cfg.sendStallSeconds });
        res.destroy();
        finish(false);
      }, cfg.sendStallSeconds * 1000);
      res.once('close', onClose);
      void p.then(() => finish(true));
    });
  }

  function sendJson(req: IncomingMessage, res: ServerResponse, obj: unknown, status = 200): void {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache', ...corsFor(req) });
    res.end(body);
  }

  function sendHealth(req: IncomingMessage, res: ServerResponse, query: string): void {
    const body: Record<string, unknown> = {
      ok: !draining,
      pid: process.pid,
      draining,
      connections: conns.size,
      sessions: sessions.size,
      images: registry.openCount,
      indexBytes: registry.bytes,
      blockCacheBytes: blockCache.stats().bytes,
      responseCacheBytes: responseCache.stats().bytes,
      warmingUp: warm?.running ?? false,
    };
    const local = isLoopback(req.socket.remoteAddress);
    // With --expose-gc (benchmarks only), a loopback client may ask for a collection before the figures.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (/(^|&)gc=1(&|$)/.test(query) && gc && local) {
      gc();
      body['collected'] = true;
    }
    // The process's memory, for loopback clients (as /metrics): operators and benchmarks.
    if (local) body['memory'] = (({ rss, heapUsed, heapTotal, external, arrayBuffers }) => ({ rss, heapUsed, heapTotal, external, arrayBuffers }))(process.memoryUsage());
    sendJson(req, res, body, draining ? 503 : 200);
  }

  function sendMetrics(req: IncomingMessage, res: ServerResponse): void {
    if (!cfg.metricsAllowRemote && !isLoopback(req.socket.remoteAddress)) {
      const body = '/metrics is answered to loopback clients only (config metricsAllowRemote)\n';
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache' });
      res.end(body);
      return;
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache' });
        res.end(text);
      },
      (e: unknown) => fail(res, e, req),
    );
  }

  /** Whether a request's synchronous steps up to its possible bare EOR are in-memory look-ups (see onRequest). */
  function onBareEorPath(jr: JpipRequest, session: Session | undefined): boolean {
    if (!session || jr.cnew !== undefined || jr.cclose !== undefined || jr.model !== undefined || jr.metareq !== undefined) return false;
    if (!session.model.notesWindows) return false;
    const entry = registry.peekChecked(session.key);
    if (!entry || session.tid !== entry.tid) return false;
    return keptPlan(jr, entry)?.local === true;
  }

  /** The plan kept for a parsed request on an image version, if it was made with the lengths in force. */
  function keptPlan(jr: JpipRequest, entry: ImageEntry): PlanMemo | undefined {
    const m = planMemos.get(entry)?.get(jr);
    return m && m.defaultLen === cfg.defaultLenBytes && m.maxLen === cfg.maxLenBytes ? m : undefined;
  }

  /**
   * A request's plan on an image version (planRequest), kept with the parsed request it came from
   * (parsed requests are shared by identical queries: a crowd's first request is the same for
   * all); the plan is frozen and shared. `local`: every codestream it names is in the image's own
   * file (nothing linked whose version could change under it), so its kept-response key is kept
   * too. Both maps are weak: a closed image or a forgotten query takes its plans along.
   */
  function plannedFor(jr: JpipRequest, entry: ImageEntry): PlanMemo {
    const kept = keptPlan(jr, entry);
    if (kept) return kept;
    const planned = planRequest(jr, entry, { defaultLen: cfg.defaultLenBytes, maxLen: cfg.maxLenBytes });
    const fresh: PlanMemo = { defaultLen: cfg.defaultLenBytes, maxLen: cfg.maxLenBytes, planned, local: planned.input.codestreams.every((i) => entry.codestream(i).owner === entry) };
    // Only parsed requests that are shared (frozen, from `parsed`) are worth keeping a plan for.
    if (Object.isFrozen(jr)) {
      deepFreeze(planned);
      let byRequest = planMemos.get(entry);
      if (!byRequest) planMemos.set(entry, (byRequest = new WeakMap()));
      byRequest.set(jr, fresh);
    }
    return fresh;
  }

  /** The kept-response key of a plan (kept with a local plan: its image version decides it all). */
  function keptKey(memo: PlanMemo, entry: ImageEntry): string {
    if (!memo.local) return ResponseCache.key(entry, memo.planned.input);
    return (memo.key ??= ResponseCache.key(entry, memo.planned.input));
  }

  /** The window key of a planned request (kept for local plans: a cache hit made it anew, 3% of its cost). */
  function heldWindowKey(memo: PlanMemo, entry: ImageEntry): string {
    if (!memo.local) return windowKey(entry, memo.planned.input);
    return (memo.windowKey ??= windowKey(entry, memo.planned.input));
  }

  /**
   * Parsed requests, by query: viewers repeat their requests (a window asked again, the next
   * frame of a movie with the same fields), and parsing is a tenth of a cache hit's cost. Parsed
   * requests are never changed after parsing (deep-frozen here, so that nothing can), and a query
   * that does not parse is not kept (it throws again). Short queries only (model= lists can be long).
   */
  function parsed(query: string, form: boolean): JpipRequest {
    if (query.length > PARSED_QUERY_CHARS) return parseRequest(query, { form });
    const key = form ? `f${query}` : query;
    let jr = parsedQueries.get(key);
    if (jr) {
      parsedQueries.delete(key);
      parsedQueries.set(key, jr);
      return jr;
    }
    jr = deepFreeze(parseRequest(query, { form }));
    parsedQueries.set(key, jr);
    if (parsedQueries.size > PARSED_QUERIES) parsedQueries.delete(parsedQueries.keys().next().value!);
    return jr;
  }

  /** The server that accepts connections in this process (`own`: on the supervisor's listening socket, workerAccepts). */
  function openListener(own: boolean): NetServer {
    const l = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => (own ? onSocket(socket, ownIds++, -1, false, true) : onSocket(socket, ++localIds, -1)));
    listeners.push(l);
    return l;
  }

  function destroyAll(): void {
    for (const c of conns) c.socket.destroy();
  }

  const api: JpipServer = {
    get config() {
      return cfg;
    },
    server,
    registry,
    buffers,
    indexPool,
    assemblyPool,
    sessions,
    journal,
    recovered,
    metrics,
    logger,
    stats,
    get connectionCount() {
      return conns.size;
    },
    get activeResponses() {
      return activeResponses;
    },
    listen(): Promise<string> {
      return new Promise((resolve, reject) => {
        const l = openListener(false);
        l.once('error', reject);
        // A deep accept queue: a flash crowd connects faster than a busy event loop accepts (Node's default is 511).
        l.listen({ port: cfg.port, host: cfg.host, backlog: LISTEN_BACKLOG }, () => {
          l.off('error', reject);
          const a = l.address() as AddressInfo;
          const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve(`${secure ? 'https' : 'http'}://${host}:${a.port}`);
        });
      });
    },
    acceptOn(handle: object): Promise<void> {
      return new Promise((resolve, reject) => {
        const l = openListener(true);
        l.once('error', reject);
        l.listen(handle, () => {
          l.off('error', reject);
          resolve();
        });
      });
    },
    setSlot(id: number, slot: number): void {
      const c = keptById.get(id);
      if (!c) return;
      keptById.delete(id);
      c.slot = slot;
      c.flagged = 0;
      // A request already in flight on it: flagged from now on (its response is journaled when its end is out).
      if (c.seqs.length > 0) setFlag(c, c.seqs[0]!);
    },
    adopt(socket: Socket, id: number, slot: number, inherited = false): void {
      // As http.Server's own sockets: the HTTP layer decides about half-closed connections.
      socket.allowHalfOpen = true;
      onSocket(socket, id, slot, inherited);
      // A socket accepted paused (pauseOnConnect) starts reading now.
      if (!socket.destroyed) socket.resume();
    },
    reconfigure(next: Readonly<ServerConfig>): void {
      cfg = next;
      if (!sink) logger.level = next.logLevel;
      registry.setBudgets(next.maxOpenFiles, next.indexCacheBytes);
      blockCache.setBudget(next.blockCacheBytes);
      responseCache.setBudget(next.responseCacheBytes);
      registry.recheckMs = next.fileRecheckSeconds * 1000;
      sessions.setLimits(next.maxSessions, next.sessionIdleSeconds * 1000);
      if (journal) journal.compactBytes = next.journalCompactBytes;
      server.keepAliveTimeout = next.keepAliveSeconds * 1000;
      server.headersTimeout = next.headersTimeoutSeconds * 1000;
      server.requestTimeout = next.requestTimeoutSeconds * 1000;
      clearInterval(sweeper);
      sweeper = startSweeper();
      logger.info({ event: 'reconfigured' });
    },
    drain(): Promise<void> {
      warm?.stop();
      drainPromise ??= (async () => {
        draining = true;
        for (const l of listeners) l.close();
        // Connections with no request being answered are closed now (those in flight when theirs ends).
        for (const c of conns) if (c.seqs.length === 0) c.socket.destroy();
        if (activeResponses > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, cfg.drainSeconds * 1000);
            timer.unref();
            drainWaiter = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        logger.info({ event: 'drained', cut: activeResponses, sessions: sessions.size });
        destroyAll();
        journal?.destroy();
        sessions.clear();
        await indexPool?.close();
        await assemblyPool?.close();
      })();
      return drainPromise;
    },
    close(opts: { keepJournal?: boolean } = {}): Promise<void> {
      closed = true;
      warm?.stop();
      clearInterval(sweeper);
      for (const l of listeners) l.close();
      destroyAll();
      if (opts.keepJournal) journal?.close();
      else journal?.destroy();
      return new Promise((resolve) => {
        server.close(() => {
          registry.closeAll();
          void Promise.all([indexPool?.close(), assemblyPool?.close()]).then(() => resolve());
        });
      });
    },
  };
  return api;
}
