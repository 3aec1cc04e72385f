import { BIN_CLASS, EOR, STREAM_TYPE } from '../jpip/constants.js';
import { DataBinStore } from '../jpip/databins.js';
import { JpipError, isJpipError } from '../jpip/errors.js';
import { JppStreamDecoder, type DecodedItem, type JppDecoderOptions } from '../jpip/messages.js';
import { formatRequest, parseRequest, type JpipRequest, type ModelDescriptor } from '../jpip/request.js';
import { numTiles as numTilesOf, precinctBinId } from '../jpeg2000/geometry.js';
import { parseMainHeaderBin, reassemble, type ReassembleOptions, type ReassembleResult } from '../jpip/reassemble.js';
import { DIALECTS, type Dialect } from './dialects.js';
import { concatBytes } from '../jpeg2000/boxes.js';

/**
 * The JPIP client library, in two layers.
 *
 * - A **transport** moves bytes: it sends one GET and hands back the status,
 *   the headers and the body as an async iterable of Uint8Array chunks,
 *   content-decoded. `FetchTransport` (below) uses the standard `fetch`, so it
 *   runs in browsers and in Node; `UndiciTransport` (node-transport.ts) is the
 *   Node one the load generator uses, one keep-alive connection per client.
 * - **`JpipClient`** is the session logic above it, in plain JavaScript on
 *   Uint8Array (no Node API, so the browser viewer reuses it): channels
 *   (cnew, cid, cclose), requests built with `formatRequest` and adapted to
 *   the server's dialect, the response body decoded incrementally as chunks
 *   arrive (a chunk may split anything), messages kept in a `DataBinStore`,
 *   and codestreams rebuilt from it with `reassemble`.
 *
 * Errors are `ClientError` with a kind from one table (`CLIENT_ERROR`): a
 * connection that cannot be made, a timeout, a connection that breaks before
 * the headers or in the middle of the body, a body that ends inside a
 * message, a status other than 200 (`requestOk` only), a 200 that is not a
 * JPP/JPT-stream, a stream that does not decode, a malformed JPIP header.
 * Messages that arrived whole before a failure stay in the store, so a client
 * can retry: `reopen` starts a new channel and tells the server what is held.
 */

// ---------------------------------------------------------------------------
// Errors

/** Every way a request can fail, with a stable code and whether a retry may help. */
export const CLIENT_ERROR = {
  connect: { code: 'JPIP_CLIENT_ERR_CONNECT', retryable: true, text: 'the connection could not be made' },
  timeout: { code: 'JPIP_CLIENT_ERR_TIMEOUT', retryable: true, text: 'no complete response within the timeout' },
  reset: { code: 'JPIP_CLIENT_ERR_RESET', retryable: true, text: 'the connection closed before the response headers' },
  cut: { code: 'JPIP_CLIENT_ERR_CUT', retryable: true, text: 'the connection broke in the middle of the response body' },
  truncated: { code: 'JPIP_CLIENT_ERR_TRUNCATED', retryable: true, text: 'the response body ended inside a JPP/JPT message' },
  status: { code: 'JPIP_CLIENT_ERR_STATUS', retryable: true, text: 'the server answered with a status other than 200' },
  'content-type': { code: 'JPIP_CLIENT_ERR_CONTENT_TYPE', retryable: false, text: 'a 200 response that is not a JPP-stream or JPT-stream' },
  'bad-stream': { code: 'JPIP_CLIENT_ERR_BAD_STREAM', retryable: false, text: 'the JPP/JPT-stream does not decode or contradicts data already held' },
  protocol: { code: 'JPIP_CLIENT_ERR_PROTOCOL', retryable: false, text: 'a JPIP response header is missing or malformed' },
  aborted: { code: 'JPIP_CLIENT_ERR_ABORTED', retryable: false, text: 'the caller aborted the request' },
} as const;

export type ClientErrorKind = keyof typeof CLIENT_ERROR;
export type ClientErrorCode = (typeof CLIENT_ERROR)[ClientErrorKind]['code'];
export const CLIENT_ERROR_KINDS = Object.keys(CLIENT_ERROR) as ClientErrorKind[];

export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly kind: ClientErrorKind;
  readonly code: ClientErrorCode;
  /** A retry (maybe on a new channel) may succeed. */
  readonly retryable: boolean;
  /** HTTP status, when a response arrived. */
  readonly status: number | undefined;
  /** Body bytes received before the failure. */
  readonly bytesReceived: number;
  readonly url: string;

  constructor(kind: ClientErrorKind, message: string, info: { url: string; status?: number | undefined; bytesReceived?: number; cause?: unknown }) {
    super(`${CLIENT_ERROR[kind].code}: ${message}`, { cause: info.cause });
    this.kind = kind;
    this.code = CLIENT_ERROR[kind].code;
    this.retryable = CLIENT_ERROR[kind].retryable;
    this.status = info.status;
    this.bytesReceived = info.bytesReceived ?? 0;
    this.url = info.url;
  }
}

export function isClientError(e: unknown): e is ClientError {
  return e instanceof ClientError;
}

// ---------------------------------------------------------------------------
// Transport

export interface TransportRequest {
  /** Absolute URL (origin, path and query). */
  url: string;
  headers: Readonly<Record<string, string>>;
  /** Aborting it must stop the exchange (before the headers and while the body streams). */
  signal: AbortSignal;
}

export interface TransportResponse {
  status: number;
  /** A response header, by case-insensitive name; null when absent. */
  header(name: string): string | null;
  /** The body, content-decoded (gzip), chunk by chunk. Throws if the connection breaks. */
  body: AsyncIterable<Uint8Array>;
  /** Stops reading the body (the connection is dropped, not reused). */
  cancel(): void;
}

/** Moves one request and its response. Everything above it is Uint8Array. */
export interface Transport {
  send(req: TransportRequest): Promise<TransportResponse>;
  /** Releases connections; later `send` calls may fail. */
  close(): Promise<void>;
}

/**
 * The standard `fetch` as a transport (browsers, Deno, Node). `init` is
 * merged into every fetch call: in Node, `{ dispatcher }` selects an undici
 * Agent (Node's default Agent opens as many connections per origin as there
 * are requests in flight).
 */
export class FetchTransport implements Transport {
  private readonly init: Record<string, unknown>;

  constructor(init: Record<string, unknown> = {}) {
    this.init = init;
  }

  async send(req: TransportRequest): Promise<TransportResponse> {
    const res = await fetch(req.url, { ...this.init, headers: req.headers, signal: req.signal } as RequestInit);
    const stream = res.body;
    return {
      status: res.status,
      header: (name) => res.headers.get(name),
      body: {
        async *[Symbol.asyncIterator]() {
          if (!stream) return;
          const reader = stream.getReader();
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) return;
              yield value;
            }
          } finally {
            reader.releaseLock();
          }
        },
      },
      cancel: () => {
        stream?.cancel().catch(() => {});
      },
    };
  }

  async close(): Promise<void> {
    // fetch owns its connections.
  }
}

const NETWORK_CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNABORTED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** The first `code` property along an error's cause chain. */
function errorCode(e: unknown): string | undefined {
  for (let x = e, depth = 0; x && depth < 5; depth++) {
    const c = (x as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    x = (x as { cause?: unknown }).cause;
  }
  return undefined;
}

function errorText(e: unknown): string {
  const parts: string[] = [];
  for (let x = e, depth = 0; x && depth < 4; depth++) {
    parts.push(x instanceof Error ? x.message : String(x));
    x = (x as { cause?: unknown }).cause;
  }
  return [...new Set(parts)].join(': ');
}

// ---------------------------------------------------------------------------
// The session

export interface JpipResponse {
  status: number;
  headers: { get(name: string): string | null };
  /** Body bytes after content decoding. */
  bodyLength: number;
  /** Decoded messages and EORs, in order (empty when the client keeps no items). */
  items: DecodedItem[];
  /** Number of data-bin messages in the body (always set by JpipClient.request). */
  messages?: number;
  /** Reason of the final EOR, undefined when the response had none. */
  eor: number | undefined;
  /** Body of a non-200 response, as text. */
  text: string | undefined;
}

/** Per-request settings that override the client's. */
export interface RequestOptions {
  /** Aborts this request (ClientError `aborted`). */
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface ClientOptions {
  /** Moves the bytes; default a `FetchTransport`. */
  transport?: Transport;
  /** Extra request headers (e.g. Accept-Encoding). */
  headers?: Record<string, string>;
  /** Abort a request whose response is not complete after this many milliseconds (default 30 s). */
  timeoutMs?: number;
  /** Request syntax of the server (default ours). */
  dialect?: Dialect;
  /** Keep every decoded item in `JpipResponse.items` (default true; load generators turn it off). */
  keepItems?: boolean;
  /**
   * Which data-bin classes go into the store (default all). The flash crowd
   * keeps headers and metadata only: thousands of clients holding every
   * precinct would measure the simulator's memory, not the server.
   */
  keepClass?: (classId: number) => boolean;
  /** Options of the JPP-stream decoder. */
  decoder?: JppDecoderOptions;
  /** Aborts every request of this client (for a run that stops). */
  signal?: AbortSignal;
}

/** The fields of a request that opens a channel with JPP-stream. */
export const OPEN_FIELDS: Partial<JpipRequest> = { cnew: ['http'], type: [{ name: STREAM_TYPE.JPP, ext: false }] };

/** Longest query `reopen` sends with a model= field (longer: the model is left out). */
const MAX_MODEL_QUERY = 8000;
/** Most bytes of a non-200 body kept as text. */
const MAX_ERROR_TEXT = 4096;

const JPP_TYPES = /^\s*image\/(jpp-stream|jpt-stream)\s*(;|$)/i;

/**
 * A JPIP client: one channel at a time on one server.
 *
 * @example
 * const client = new JpipClient('http://127.0.0.1:8090');
 * await client.request({ ...OPEN_FIELDS, stream: [{ from: 0, to: 0, step: 1 }], fsiz: { fx: 512, fy: 512, round: 'closest' }, len: 2097152 }, 'movie.jpx');
 * await client.untilDone({ stream: [{ from: 0, to: 0, step: 1 }], fsiz: { fx: 512, fy: 512, round: 'closest' }, len: 2097152 });
 * const { codestream } = client.reassemble(0);
 * await client.close();
 */
export class JpipClient {
  /** Server URL without a trailing slash: origin plus an optional path prefix. */
  readonly base: string;
  readonly origin: string;
  readonly store = new DataBinStore();
  readonly transport: Transport;
  readonly dialect: Dialect;
  cid: string | undefined;
  /** The JPIP path the server gave in JPIP-cnew (relative to the origin). */
  path = 'jpip';
  tid: string | undefined;
  /** The target the last channel was opened on. */
  target: string | undefined;
  private readonly opts: ClientOptions;

  constructor(baseUrl: string, opts: ClientOptions = {}) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.origin = new URL(this.base).origin;
    this.opts = opts;
    this.transport = opts.transport ?? new FetchTransport();
    this.dialect = opts.dialect ?? DIALECTS.ours;
  }

  /** The path and query of a request, as sent (dialect applied). */
  buildUrl(fields: Partial<JpipRequest>, target?: string): string {
    const onChannel = this.cid !== undefined && fields.cnew === undefined;
    const adapted = this.dialect.adapt({ ...fields }, { onChannel });
    const withCid = this.cid !== undefined && adapted.cnew === undefined && adapted.cclose === undefined ? { ...adapted, cid: this.cid } : adapted;
    if (!onChannel && target === undefined && withCid.target === undefined) {
      throw new RangeError('JpipClient.request: no channel is open, so a target is needed');
    }
    let path: string;
    let query: Partial<JpipRequest> = withCid;
    if (onChannel || target === undefined) {
      path = `/${this.path}`;
    } else if (this.dialect.targetIn === 'field') {
      path = new URL(this.base).pathname.replace(/\/+$/, '') || '/';
      query = { ...withCid, target };
    } else {
      path = `${new URL(this.base).pathname.replace(/\/+$/, '')}/${target.split('/').map(encodeURIComponent).join('/')}`;
    }
    return `${path}?${formatRequest(query)}`;
  }

  /**
   * Sends one request (`target` names the image when no channel is open, or
   * for a `cnew`) and decodes the response as it streams in. Returns non-200
   * responses with their text; throws ClientError for everything else that
   * goes wrong (see CLIENT_ERROR).
   */
  async request(fields: Partial<JpipRequest>, target?: string, ro: RequestOptions = {}): Promise<JpipResponse> {
    const pathAndQuery = this.buildUrl(fields, target);
    const url = `${this.origin}${pathAndQuery}`;
    const timeoutMs = ro.timeoutMs ?? this.opts.timeoutMs ?? 30_000;
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, timeoutMs);
    const outers = [this.opts.signal, ro.signal].filter((x): x is AbortSignal => x !== undefined);
    const onOuter = (): void => ctl.abort();
    for (const outer of outers) {
      if (outer.aborted) ctl.abort();
      else outer.addEventListener('abort', onOuter, { once: true });
    }
    let bytes = 0;
    let phase: 'headers' | 'body' = 'headers';
    let res: TransportResponse | undefined;
    const fail = (e: unknown): ClientError => {
      if (e instanceof ClientError) return e;
      if (timedOut) return new ClientError('timeout', `no complete response after ${timeoutMs} ms (${bytes} body bytes received)`, { url, bytesReceived: bytes, status: res?.status, cause: e });
      if (ctl.signal.aborted) return new ClientError('aborted', 'aborted', { url, bytesReceived: bytes, status: res?.status, cause: e });
      const code = errorCode(e);
      if (phase === 'headers' && code !== undefined && NETWORK_CONNECT_CODES.has(code)) return new ClientError('connect', errorText(e), { url, cause: e });
      if (code !== undefined && TIMEOUT_CODES.has(code)) return new ClientError('timeout', errorText(e), { url, bytesReceived: bytes, status: res?.status, cause: e });
      if (phase === 'body') return new ClientError('cut', `after ${bytes} body bytes: ${errorText(e)}`, { url, bytesReceived: bytes, status: res?.status, cause: e });
      return new ClientError('reset', errorText(e), { url, cause: e });
    };
    try {
      try {
        res = await this.transport.send({ url, headers: this.opts.headers ?? {}, signal: ctl.signal });
      } catch (e) {
        throw fail(e);
      }
      phase = 'body';
      const headers = { get: (name: string): string | null => res!.header(name) };
      if (res.status !== 200) {
        const parts: Uint8Array[] = [];
        try {
          for await (const chunk of res.body) {
            bytes += chunk.length;
            if (bytes <= MAX_ERROR_TEXT) parts.push(chunk);
          }
        } catch (e) {
          throw fail(e);
        }
        const text = new TextDecoder().decode(concatBytes(parts)).slice(0, MAX_ERROR_TEXT);
        return { status: res.status, headers, bodyLength: bytes, items: [], messages: 0, eor: undefined, text };
      }
      const type = res.header('content-type') ?? '';
      if (!JPP_TYPES.test(type)) {
        res.cancel();
        throw new ClientError('content-type', `Content-Type ${JSON.stringify(type)}`, { url, status: 200 });
      }
      if (fields.cnew !== undefined) this.takeChannel(res.header('JPIP-cnew'), url, pathAndQuery, target);
      const tid = res.header('JPIP-tid');
      if (tid) {
        // Another tid: another file, or the file changed; what is held is stale.
        if (this.tid !== undefined && tid !== this.tid) this.store.clear();
        this.tid = tid;
      }

      const keepItems = this.opts.keepItems ?? true;
      const keep = this.opts.keepClass;
      const items: DecodedItem[] = [];
      const scratch: DecodedItem[] = [];
      let messages = 0;
      let eor: number | undefined;
      // One decoder per response: class and codestream start afresh, and requests may overlap.
      const decoder = new JppStreamDecoder(this.opts.decoder);
      const take = (list: DecodedItem[]): void => {
        for (const item of list) {
          if (item.kind === 'eor') {
            eor = item.reason;
          } else {
            messages++;
            eor = undefined;
            if (keep === undefined || keep(item.classId)) this.store.add(item);
          }
          if (keepItems) items.push(item);
        }
        list.length = 0;
      };
      try {
        for await (const chunk of res.body) {
          bytes += chunk.length;
          try {
            decoder.push(chunk, scratch);
          } finally {
            // The messages completed before an error are kept too.
            take(scratch);
          }
        }
      } catch (e) {
        if (isJpipError(e)) {
          res.cancel();
          throw new ClientError('bad-stream', e.message, { url, status: 200, bytesReceived: bytes, cause: e });
        }
        throw fail(e);
      }
      try {
        decoder.end();
      } catch (e) {
        throw new ClientError('truncated', (e as Error).message, { url, status: 200, bytesReceived: bytes, cause: e });
      }
      return { status: 200, headers, bodyLength: bytes, items, messages, eor, text: undefined };
    } finally {
      clearTimeout(timer);
      for (const outer of outers) outer.removeEventListener('abort', onOuter);
    }
  }

  /** Like `request`, but a status other than 200 is a ClientError of kind `status`. */
  async requestOk(fields: Partial<JpipRequest>, target?: string, ro?: RequestOptions): Promise<JpipResponse> {
    const r = await this.request(fields, target, ro);
    if (r.status !== 200) {
      throw new ClientError('status', `HTTP ${r.status}: ${(r.text ?? '').trim().slice(0, 200)}`, { url: this.base, status: r.status, bytesReceived: r.bodyLength });
    }
    return r;
  }

  private takeChannel(cnew: string | null, url: string, pathAndQuery: string, target: string | undefined): void {
    if (!cnew) throw new ClientError('protocol', 'a cnew request was answered without JPIP-cnew', { url, status: 200 });
    const kv: Record<string, string> = {};
    for (const part of cnew.split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) kv[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim();
    }
    const cid = kv['cid'];
    const transport = kv['transport'];
    if (!cid || !/^[\x21-\x7e]+$/.test(cid) || (transport !== undefined && transport !== 'http') || (transport === undefined && this.dialect.requireCnewTransport)) {
      throw new ClientError('protocol', `malformed JPIP-cnew: ${cnew}`, { url, status: 200 });
    }
    let path: string;
    if (kv['path'] !== undefined && kv['path'] !== '') {
      path = kv['path'].replace(/^\/+/, '');
    } else if (this.dialect.cnewPathOptional) {
      // Channel requests stay on the path the cnew went to.
      path = pathAndQuery.slice(1, pathAndQuery.indexOf('?'));
    } else {
      throw new ClientError('protocol', `JPIP-cnew without path: ${cnew}`, { url, status: 200 });
    }
    this.cid = cid;
    this.path = path;
    this.target = target ?? this.target;
  }

  /** Opens a channel on `target` with the given fields (a window, metareq, len...). */
  open(target: string, fields: Partial<JpipRequest> = {}): Promise<JpipResponse> {
    return this.requestOk({ ...OPEN_FIELDS, tid: '0', ...fields }, target);
  }

  /**
   * Forgets the current channel and opens a new one on the same target (after
   * a cut response, a timeout, an unknown channel...), telling the server
   * with model= what the store holds of the codestreams involved, when that
   * fits in a URL. The server may otherwise believe the client holds bytes
   * that never arrived.
   */
  async reopen(fields: Partial<JpipRequest> = {}, target = this.target): Promise<JpipResponse> {
    if (target === undefined) throw new RangeError('JpipClient.reopen: no target known');
    this.cid = undefined;
    const model = this.modelDescriptors();
    const withModel: Partial<JpipRequest> = model ? { ...OPEN_FIELDS, ...fields, model } : { ...OPEN_FIELDS, ...fields };
    const fits = model !== undefined && this.buildUrl(withModel, target).length <= MAX_MODEL_QUERY;
    return this.requestOk(fits ? withModel : { ...OPEN_FIELDS, ...fields }, target);
  }

  /** The store as model= descriptors (undefined when it holds nothing). */
  modelDescriptors(): ModelDescriptor[] | undefined {
    const s = this.store.cacheModelString();
    if (s === '') return undefined;
    return parseRequest(`model=${s}`).model;
  }

  /** Repeats a request until the server says the window is done (EOR 1 or 2), at most `maxRounds` times. */
  async untilDone(fields: Partial<JpipRequest>, target?: string, maxRounds = 1000): Promise<JpipResponse[]> {
    const out: JpipResponse[] = [];
    for (let i = 0; i < maxRounds; i++) {
      const r = await this.request(fields, i === 0 ? target : undefined);
      out.push(r);
      if (r.status !== 200 || r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE) return out;
    }
    throw new Error(`window not done after ${maxRounds} requests`);
  }

  /** Closes the channel (cclose, len=0); resolves undefined when none is open. */
  async close(ro?: RequestOptions): Promise<JpipResponse | undefined> {
    if (this.cid === undefined) return undefined;
    const cid = this.cid;
    try {
      return await this.request({ cclose: [cid], len: 0 }, undefined, ro);
    } finally {
      this.cid = undefined;
    }
  }

  /** Closes the channel if one is open, then the transport. */
  async dispose(): Promise<void> {
    try {
      if (this.cid !== undefined) await this.close();
    } finally {
      await this.transport.close();
    }
  }

  /** A decodable codestream rebuilt from what the client holds of codestream `cs`. */
  reassemble(cs = 0, opts?: ReassembleOptions): ReassembleResult {
    const main = this.store.get(cs, BIN_CLASS.MAIN_HEADER, 0);
    if (!main || !main.complete) throw new JpipError('BAD_STREAM', `the main header of codestream ${cs} is not complete`);
    let numComponents = 0;
    let numTiles = 0;
    return reassemble(
      {
        mainHeader: main.bytes(),
        tileHeader: (t) => {
          const b = this.store.get(cs, BIN_CLASS.TILE_HEADER, t);
          return b?.complete ? b.bytes() : undefined;
        },
        precinct: (t, c, s) => {
          if (numComponents === 0) {
            const siz = parseMainHeaderBin(main.bytes()).siz;
            numComponents = siz.components.length;
            numTiles = numTilesOf(siz);
          }
          const b = this.store.get(cs, BIN_CLASS.PRECINCT, precinctBinId(t, c, s, numComponents, numTiles));
          if (!b || b.contiguousLength === 0) return undefined;
          return { bytes: b.bytes(), complete: b.complete };
        },
      },
      opts,
    );
  }
}
