import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { decodeStream, encodeEor, MessageWriter, type DecodedItem } from '../jpip/messages.js';
import { header, HttpConnection, type RawResponse } from './http.js';

/**
 * A deliberately broken JPIP server for testing the conformance suite: an
 * HTTP proxy on 127.0.0.1 in front of a real server that changes one thing
 * (a mutation): the status line, a header, a byte of the JPP-stream, the
 * request before it goes upstream, or whether it answers at all. Each
 * conformance check is shown to fail against at least one mutation.
 *
 * Requests are parsed here (HTTP/1.1, keep-alive, Content-Length bodies);
 * unparsable ones are piped to the upstream as they are unless the mutation
 * says otherwise. Responses are read whole (bounded by HttpConnection's
 * limits), changed, and written back with fresh framing.
 */

export interface ProxyRequest {
  method: string;
  /** Request target: path and query. */
  target: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
  /** Which downstream connection it came on (1, 2, ...). */
  connection: number;
}

export interface ProxyResponse {
  statusLine: string;
  /** Headers without framing ones (Content-Length, Transfer-Encoding): the proxy writes those. */
  headers: Array<[string, string]>;
  /** The body after transfer and content decoding. */
  body: Uint8Array;
  /** How to frame it. */
  framing: 'chunked' | 'length';
  /** Compress the body with gzip (Content-Encoding stays as the headers say). */
  gzip: boolean;
  /** Close the connection after this response. */
  close?: boolean;
  /** When set, these exact bytes are the whole response (status line, headers, body). */
  raw?: Uint8Array;
}

/** State a mutation may keep across requests. */
export interface ProxyState {
  /** Channel id -> the request target path of the request that opened it. */
  channels: Map<string, { path: string; connection: number }>;
  /** Anything else. */
  data: Map<string, unknown>;
}

export interface Mutation {
  id: string;
  /** What it breaks, in words. */
  description: string;
  /** Rewrites a request, answers it directly, or leaves it unanswered ('hang'). */
  request?(req: ProxyRequest, state: ProxyState): ProxyRequest | ProxyResponse | 'hang' | 'drop';
  /** Rewrites the upstream's answer. */
  response?(res: ProxyResponse, req: ProxyRequest, state: ProxyState): ProxyResponse;
  /** Unparsable requests: leave them unanswered instead of piping them upstream. */
  hangOnGarbage?: boolean;
}

/** The identity: a transparent proxy. */
export const IDENTITY: Mutation = { id: 'identity', description: 'changes nothing' };

export interface MutationProxy {
  url: string;
  /** Requests seen. */
  readonly requests: number;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Helpers for mutations

/** A plain response (text body). */
export function textResponse(status: number, reason: string, text: string, extra: Array<[string, string]> = []): ProxyResponse {
  return { statusLine: `HTTP/1.1 ${status} ${reason}`, headers: [['Content-Type', 'text/plain'], ...extra], body: new TextEncoder().encode(text), framing: 'length', gzip: false };
}

/** A 200 JPP-stream response holding the given bytes. */
export function jppResponse(body: Uint8Array, extra: Array<[string, string]> = []): ProxyResponse {
  return { statusLine: 'HTTP/1.1 200 OK', headers: [['Content-Type', 'image/jpp-stream'], ['Cache-Control', 'no-cache'], ...extra], body, framing: 'chunked', gzip: false };
}

export function statusOf(res: ProxyResponse): number {
  return Number(res.statusLine.split(' ')[1]);
}

export function getHeader(res: Pick<ProxyResponse, 'headers'>, name: string): string | undefined {
  return header(res, name);
}

export function setHeader(res: ProxyResponse, name: string, value: string | undefined): ProxyResponse {
  const headers = res.headers.filter(([k]) => k.toLowerCase() !== name.toLowerCase());
  if (value !== undefined) headers.push([name, value]);
  return { ...res, headers };
}

/** The query of a request target ('' when none). */
export function queryOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? '' : target.slice(q + 1);
}

export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

/** The value of a field in a query (raw, undefined when absent). */
export function field(target: string, name: string): string | undefined {
  for (const part of queryOf(target).split('&')) {
    const eq = part.indexOf('=');
    if ((eq < 0 ? part : part.slice(0, eq)) === name) return eq < 0 ? '' : part.slice(eq + 1);
  }
  return undefined;
}

/** Sets (or with undefined removes) a field of a request target's query. */
export function withField(target: string, name: string, value: string | undefined): string {
  const parts = queryOf(target).split('&').filter((p) => p !== '' && (p.indexOf('=') < 0 ? p : p.slice(0, p.indexOf('='))) !== name);
  if (value !== undefined) parts.push(`${name}=${value}`);
  return `${pathOf(target)}?${parts.join('&')}`;
}

/** Whether the response is a 200 with a JPP or JPT body. */
export function isStream(res: ProxyResponse): boolean {
  return statusOf(res) === 200 && /jp[pt]-stream/.test(getHeader(res, 'content-type') ?? '');
}

/** Decodes, changes and re-encodes the messages of a JPP/JPT body (first message in the full form, as our writer does). */
export function mapItems(res: ProxyResponse, fn: (items: DecodedItem[]) => DecodedItem[]): ProxyResponse {
  if (!isStream(res)) return res;
  const items = fn(decodeStream(res.body));
  return { ...res, body: encodeItems(items) };
}

export function encodeItems(items: readonly DecodedItem[]): Uint8Array {
  const w = new MessageWriter();
  const parts: Uint8Array[] = [];
  for (const it of items) {
    if (it.kind === 'eor') parts.push(encodeEor(it.reason, it.body));
    else parts.push(w.message({ classId: it.classId, codestream: it.codestream, binId: it.binId, offset: it.offset, complete: it.complete, aux: it.aux, data: it.data }));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------
// The proxy

function serialize(res: ProxyResponse, head: boolean): Buffer {
  if (res.raw) return Buffer.from(res.raw);
  const body = res.gzip ? gzipSync(res.body) : Buffer.from(res.body);
  const lines = [res.statusLine, ...res.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k)).map(([k, v]) => `${k}: ${v}`)];
  if (res.close) lines.push('Connection: close');
  const status = Number(res.statusLine.split(' ')[1]);
  const noBody = status === 204 || status === 304 || head;
  if (res.framing === 'length' || noBody) {
    if (!(status === 204 || status === 304)) lines.push(`Content-Length: ${body.length}`);
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), noBody ? Buffer.alloc(0) : body]);
  }
  lines.push('Transfer-Encoding: chunked');
  const parts: Buffer[] = [Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')];
  for (let i = 0; i < body.length; i += 4096) {
    const c = body.subarray(i, i + 4096);
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`, 'latin1'), c, Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return Buffer.concat(parts);
}

function fromUpstream(r: RawResponse): ProxyResponse {
  const ce = (header(r, 'content-encoding') ?? '').toLowerCase();
  return {
    statusLine: r.statusLine,
    headers: r.headers.filter(([k]) => !/^(content-length|transfer-encoding|connection|keep-alive)$/i.test(k)),
    body: r.body,
    framing: r.framing === 'chunked' ? 'chunked' : 'length',
    gzip: ce === 'gzip',
  };
}

const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/;

/**
 * Starts a mutation proxy on 127.0.0.1 (a free port) in front of `upstream`
 * (`http://127.0.0.1:port`).
 */
export async function startMutationProxy(upstream: string, mutation: Mutation, opts: { timeoutMs?: number } = {}): Promise<MutationProxy> {
  const up = new URL(upstream);
  const upHost = up.hostname;
  const upPort = Number(up.port);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const state: ProxyState = { channels: new Map(), data: new Map() };
  const sockets = new Set<Socket>();
  let connections = 0;
  let requests = 0;

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const connection = ++connections;
    const upConn = new HttpConnection(upHost, upPort);
    let buf = Buffer.alloc(0);
    let busy = false;
    let piped = false;
    socket.on('close', () => upConn.destroy());

    const pump = async (): Promise<void> => {
      if (busy || piped) return;
      busy = true;
      try {
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > 64 * 1024) socket.destroy();
            return;
          }
          const head = buf.subarray(0, end).toString('latin1');
          const lines = head.split('\r\n');
          const m = REQUEST_LINE.exec(lines[0] ?? '');
          if (!m) {
            // Not HTTP: hang, or hand the bytes to the upstream as they are.
            if (mutation.hangOnGarbage) {
              piped = true;
              return;
            }
            piped = true;
            const raw = connectRaw(upHost, upPort, socket);
            raw.write(buf);
            buf = Buffer.alloc(0);
            return;
          }
          const headers: Array<[string, string]> = [];
          for (const l of lines.slice(1)) {
            const c = l.indexOf(':');
            if (c > 0) headers.push([l.slice(0, c), l.slice(c + 1).trim()]);
          }
          const len = Number(headers.find(([k]) => k.toLowerCase() === 'content-length')?.[1] ?? 0);
          if (buf.length < end + 4 + len) return;
          const body = new Uint8Array(buf.subarray(end + 4, end + 4 + len));
          buf = buf.subarray(end + 4 + len);
          requests++;
          let req: ProxyRequest = { method: m[1]!, target: m[2]!, headers, body, connection };
          const head_ = req.method === 'HEAD';
          const pre = mutation.request ? mutation.request(req, state) : req;
          if (pre === 'hang') return;
          if (pre === 'drop') {
            socket.destroy();
            return;
          }
          let res: ProxyResponse;
          if ('statusLine' in pre) {
            res = pre;
          } else {
            req = pre;
            try {
              const upRes = await upConn.request(req.target, {
                method: req.method,
                headers: req.headers.filter(([k]) => !/^(content-length|connection)$/i.test(k)),
                body: req.body.length > 0 || req.method === 'POST' ? req.body : undefined,
                timeoutMs,
              });
              res = fromUpstream(upRes);
            } catch (e) {
              res = textResponse(502, 'Bad Gateway', `upstream: ${(e as Error).message}\n`);
            }
            const cnew = getHeader(res, 'jpip-cnew');
            const cid = cnew ? /(?:^|,)\s*cid=([^,]+)/.exec(cnew)?.[1] : undefined;
            if (cid) state.channels.set(cid, { path: pathOf(req.target), connection });
            if (mutation.response) res = mutation.response(res, req, state);
          }
          if (socket.destroyed) return;
          socket.write(serialize(res, head_));
          if (res.close) {
            socket.end();
            return;
          }
        }
      } finally {
        busy = false;
      }
    };
    socket.on('data', (d: Buffer) => {
      if (piped) return;
      buf = Buffer.concat([buf, d]);
      void pump().catch(() => socket.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    close(): Promise<void> {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Pipes a downstream socket to a new upstream connection, both ways. */
function connectRaw(host: string, port: number, down: Socket): Socket {
  const upSock: Socket = connect({ host, port });
  upSock.on('data', (d: Buffer) => down.write(d));
  upSock.on('end', () => down.end());
  upSock.on('error', () => down.destroy());
  down.on('data', (d: Buffer) => upSock.write(d));
  down.on('close', () => upSock.destroy());
  return upSock;
}
