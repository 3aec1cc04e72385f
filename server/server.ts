import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGzip } from 'node:zlib';
import { CONTENT_TYPE } from '../jpip/constants.js';
import { CacheModel } from '../jpip/cache-model.js';
import { JpipError, isJpipError } from '../jpip/errors.js';
import { parseRequest, type JpipRequest } from '../jpip/request.js';
import { isJ2kError } from '../jpeg2000/errors.js';
import { ImageRegistry, type ImageEntry } from './images.js';
import { applyModel, planRequest } from './request-plan.js';
import { planResponse, type BodyChunk } from './responder.js';
import { SessionTable, type Session } from './sessions.js';

/**
 * The JPIP server: HTTP/1.1 with keep-alive, JPP-stream (and JPT-stream)
 * responses, sessions that outlive connections. One process; the supervisor
 * that keeps it alive across crashes is built on top of `createJpipServer`.
 */

export interface ServerOptions {
  /** The image root: every target is a file under it. */
  root: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Index cache directory (none: indexes are built in memory only). */
  cacheDir?: string | undefined;
  /** Byte budget of a request without len (bytes). */
  defaultLen?: number;
  /** Largest len honoured (bytes). */
  maxLen?: number;
  maxSessions?: number;
  /** Data-bins one session may track; past this its channel ends with EOR 6 (session limit). */
  maxSessionBins?: number;
  /** Idle time before a session is dropped (seconds). */
  sessionIdleSeconds?: number;
  /** Longest request target (path and query), in bytes: longer is 414. */
  maxUrlLength?: number;
  /** Longest POST body, in bytes: longer is 413. */
  maxBodyLength?: number;
  /** Bytes per response chunk. */
  chunkSize?: number;
  /** Images kept open. */
  maxOpenImages?: number;
  /** Log sink: one object per event (request, error). */
  log?: (entry: Record<string, unknown>) => void;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8090,
  defaultLen: 2 * 1024 * 1024, // JHelioviewer's len
  maxLen: 64 * 1024 * 1024,
  maxSessions: 10000,
  maxSessionBins: 2_000_000,
  sessionIdleSeconds: 300,
  maxUrlLength: 16 * 1024,
  maxBodyLength: 1024 * 1024,
  chunkSize: 64 * 1024,
  maxOpenImages: 512,
} as const;

export interface JpipServer {
  readonly server: Server;
  readonly registry: ImageRegistry;
  readonly sessions: SessionTable;
  /** Counters for /metrics and tests. */
  readonly stats: { requests: number; responses: number; errors: Record<number, number>; bytes: number };
  /** Resolves once listening; gives the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'JPIP-cnew, JPIP-tid, JPIP-qid, JPIP-fsiz, JPIP-roff, JPIP-rsiz, JPIP-layers, JPIP-stream, JPIP-context',
} as const;

/** Paths the server keeps for itself (never targets). */
export const RESERVED_PATHS = ['/jpip', '/metrics', '/health', '/viewer'] as const;

export function createJpipServer(options: ServerOptions): JpipServer {
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<Omit<ServerOptions, 'cacheDir' | 'log'>> &
    Pick<ServerOptions, 'cacheDir' | 'log'>;
  const registry = new ImageRegistry({ root: o.root, cacheDir: o.cacheDir, maxOpen: o.maxOpenImages });
  const sessions = new SessionTable({ maxSessions: o.maxSessions, idleMs: o.sessionIdleSeconds * 1000 });
  const stats = { requests: 0, responses: 0, errors: {} as Record<number, number>, bytes: 0 };
  const log = o.log ?? (() => {});
  const sweeper = setInterval(() => sessions.expire(), Math.min(60_000, o.sessionIdleSeconds * 1000)).unref();

  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 30_000, requestTimeout: 120_000, maxHeaderSize: Math.max(16384, o.maxUrlLength + 4096) }, (req, res) => {
    stats.requests++;
    handle(req, res).catch((e: unknown) => fail(res, e, req));
  });
  server.on('clientError', (err, socket) => {
    // Malformed HTTP: answer 400 if the socket still can, never crash.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
    log({ event: 'client-error', message: (err as Error).message });
  });

  function fail(res: ServerResponse, e: unknown, req: IncomingMessage): void {
    let status = 500;
    let message = 'internal error';
    if (isJpipError(e)) {
      status = e.status;
      message = `${e.code}: ${e.message}`;
      if (e.kind === 'CORRUPT_IMAGE') log({ event: 'corrupt-image', url: req.url, message: e.message, cause: (e.cause as Error | undefined)?.message });
    } else if (isJ2kError(e)) {
      status = 500;
      message = `JPIP_ERR_CORRUPT_IMAGE: the image cannot be served: [${e.code}] ${e.reason}`;
      log({ event: 'corrupt-image', url: req.url, code: e.code, file: e.file, offset: e.offset, message: e.message });
    } else {
      log({ event: 'internal-error', url: req.url, message: (e as Error)?.stack ?? String(e) });
    }
    stats.errors[status] = (stats.errors[status] ?? 0) + 1;
    if (res.headersSent) {
      // Mid-body: the client must not take a cut response for a whole one.
      res.destroy();
      return;
    }
    const body = `${message}\n`;
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache', ...CORS });
    res.end(body);
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
      n += (c as Buffer).length;
      if (n > o.maxBodyLength) throw new JpipError('BODY_TOO_LARGE', `request body over ${o.maxBodyLength} bytes`);
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('latin1');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    if (url.length > o.maxUrlLength) throw new JpipError('URI_TOO_LONG', `request target over ${o.maxUrlLength} bytes; send long model= fields with POST`);
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
    if (path === '/health') return sendJson(res, { ok: true, sessions: sessions.size, images: registry.openCount });
    if (path === '/metrics') return sendMetrics(res);
    if (path === '/viewer' || path.startsWith('/viewer/')) throw new JpipError('NOT_FOUND', 'the viewer is not part of this server build');
    const jr = parseRequest(query, { form });
    await respond(jr, path, req, res);
  }

  async function respond(jr: JpipRequest, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers: Record<string, string> = { 'Content-Type': '', 'Cache-Control': 'no-cache', ...CORS };
    if (jr.qid !== undefined) headers['JPIP-qid'] = String(jr.qid);

    // Channels: close, continue, or open.
    let session: Session | undefined;
    if (jr.cid !== undefined) session = sessions.get(jr.cid);
    if (jr.cclose !== undefined) {
      if (jr.cclose !== '*') for (const c of jr.cclose) sessions.get(c); // unknown ones are 404
      sessions.close(jr.cclose, session);
      if (jr.cclose !== '*' && session && jr.cclose.includes(session.cid)) session = undefined;
      if (!session && jr.cnew === undefined) {
        headers['Content-Type'] = CONTENT_TYPE['jpp-stream'];
        res.writeHead(200, headers);
        res.end(Uint8Array.of(0, 2, 0)); // EOR window done: nothing was asked
        stats.responses++;
        return;
      }
    }
    let target: string | undefined = jr.target ?? (path === '/jpip' || path === '/' ? undefined : path);
    if (RESERVED_PATHS.includes(path as (typeof RESERVED_PATHS)[number]) && jr.target === undefined) target = undefined;
    if (session && target !== undefined && registry.resolveTarget(target) !== registry.resolveTarget(session.key)) {
      throw new JpipError('BAD_REQUEST', 'the channel belongs to another target', 'target');
    }
    if (!session && target === undefined) throw new JpipError('BAD_REQUEST', 'no target: name the image in the path or with target=, or give a cid', 'target');
    const entry: ImageEntry = registry.open(session ? session.key : target!);
    if (session && session.tid !== entry.tid) {
      // The file changed on disk since the client's data was sent: start over.
      session.model.clear();
      session.tid = entry.tid;
    }
    if (jr.cnew !== undefined) {
      if (!jr.cnew.includes('http')) throw new JpipError('UNIMPLEMENTED', 'only the http transport is offered', 'cnew');
      session = sessions.open(entry.key, entry.tid);
      headers['JPIP-cnew'] = `cid=${session.cid},path=jpip,transport=http`;
    }
    if (jr.tid !== undefined || jr.cnew !== undefined) headers['JPIP-tid'] = entry.tid;
    if (session && session.model.size > o.maxSessionBins) {
      // The session's bookkeeping is at its limit: the channel is closed, the client opens a new one.
      sessions.close([session.cid]);
      headers['Content-Type'] = CONTENT_TYPE['jpp-stream'];
      res.writeHead(200, headers);
      res.end(Uint8Array.of(0, 6, 0));
      stats.responses++;
      return;
    }
    const model = session?.model ?? new CacheModel();
    if (jr.tid !== undefined && jr.tid !== '0' && jr.tid !== entry.tid) model.clear();

    const planned = planRequest(jr, entry, { defaultLen: o.defaultLen, maxLen: o.maxLen });
    applyModel(jr, entry, model, planned.input.codestreams);
    registry.acquire(entry);
    const owners = new Set<ImageEntry>([entry]);
    try {
      for (const i of planned.input.codestreams) {
        const owner = entry.codestream(i).owner;
        if (!owners.has(owner)) {
          registry.acquire(owner);
          owners.add(owner);
        }
      }
    } catch (e) {
      for (const x of owners) registry.release(x);
      throw e;
    }
    if (session) session.active++;
    try {
      const plan = planResponse(entry, planned.input, model, { chunkSize: o.chunkSize });
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
      const gzip = jr.metareq !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      if (gzip) headers['Content-Encoding'] = 'gzip';
      // Produce the first chunk before the status line, so a corrupt image is a clean 500.
      const body = plan.body();
      const firstChunk = body.next();
      res.writeHead(200, headers);
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      await streamBody(res, firstChunk, body, model, gzip);
      stats.responses++;
    } finally {
      if (session) {
        session.active--;
        session.lastUsed = Date.now();
      }
      for (const x of owners) registry.release(x);
    }
  }

  async function streamBody(res: ServerResponse, first: IteratorResult<BodyChunk, void>, rest: Generator<BodyChunk, void, void>, model: CacheModel, gzip: boolean): Promise<void> {
    const out = gzip ? createGzip() : undefined;
    if (out) out.pipe(res);
    const sink = out ?? res;
    let step = first;
    while (!step.done) {
      const chunk = step.value;
      stats.bytes += chunk.bytes.length;
      const ok = await new Promise<boolean>((resolve) => {
        const more = sink.write(chunk.bytes, (err) => {
          if (err) return resolve(false);
          // Only what was handed to the socket counts as held by the client.
          for (const u of chunk.updates) model.add(u.codestream, u.classId, u.binId, u.held, u.held === Number.MAX_SAFE_INTEGER);
          if (more) resolve(true);
        });
        if (!more) sink.once('drain', () => resolve(true));
      });
      if (!ok || res.destroyed) return;
      step = rest.next();
    }
    await new Promise<void>((resolve) => sink.end(resolve));
  }

  function sendJson(res: ServerResponse, obj: unknown): void {
    const body = JSON.stringify(obj);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache', ...CORS });
    res.end(body);
  }

  function sendMetrics(res: ServerResponse): void {
    const lines = [
      `jpip_requests_total ${stats.requests}`,
      `jpip_responses_total ${stats.responses}`,
      `jpip_body_bytes_total ${stats.bytes}`,
      `jpip_sessions ${sessions.size}`,
      `jpip_open_images ${registry.openCount}`,
      ...Object.entries(stats.errors).map(([s, n]) => `jpip_errors_total{status="${s}"} ${n}`),
      `process_resident_memory_bytes ${process.memoryUsage().rss}`,
    ];
    const body = `${lines.join('\n')}\n`;
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache' });
    res.end(body);
  }

  return {
    server,
    registry,
    sessions,
    stats,
    listen(): Promise<string> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, o.host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve(`http://${host}:${a.port}`);
        });
      });
    },
    close(): Promise<void> {
      clearInterval(sweeper);
      return new Promise((resolve) => {
        server.close(() => {
          registry.closeAll();
          resolve();
        });
        server.closeAllConnections();
      });
    },
  };
}
