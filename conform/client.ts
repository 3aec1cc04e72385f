import { JpipClient } from '../client-sim/client.js';
import { EOR } from '../jpip/constants.js';
import { formatRequest, type JpipRequest } from '../jpip/request.js';
import { header, HttpConnection, type RawResponse, type RequestOptions } from './http.js';
import { analyzeStream, finalEor, messagesOf, type StreamAnalysis } from './stream.js';
import { expect, fail } from './types.js';

/**
 * How the suite talks to the server under test: where targets are, how
 * channels are followed, one keep-alive connection per session (as
 * JHelioviewer does), every exchange bounded by a timeout.
 */

export interface ServerAddress {
  /** The server's base URL (`http://127.0.0.1:8090/` or a FastCGI script's URL). */
  base: URL;
  /** `path`: GET base/<target>?fields (esajpip, Kakadu, ours); `query`: GET base?target=<target>&fields (OpenJPIP). */
  targetStyle: 'path' | 'query';
  /** Put before every target name (the fixtures' directory inside the server's root). */
  prefix: string;
  /** https:// servers: accept any certificate (self-signed test certificates). */
  insecure?: boolean;
}

/** Fields of a request, as jpip/request.ts types them (the builder writes them canonically). */
export type Fields = Partial<JpipRequest>;

export interface JppResponse {
  raw: RawResponse;
  status: number;
  /** The body's framing analysis (200 answers only). */
  stream: StreamAnalysis | undefined;
  /** Decoded messages; fails the check when a 200 body does not decode. */
  items: NonNullable<StreamAnalysis['items']>;
  messages: ReturnType<typeof messagesOf>;
  eor: number | undefined;
  /** The request target sent. */
  target: string;
}

/** Percent-encodes each segment of a target name (spaces, '#', '?', ...), keeping '/'. */
export function encodeTargetPath(name: string): string {
  return name.split('/').map((s) => encodeURIComponent(s)).join('/');
}

export interface ProbeOptions {
  timeoutMs: number;
  /** Extra headers on every request (JHelioviewer's set, for example). */
  headers?: Array<[string, string]>;
}

/** Connections opened for one check, so they can all be closed when it ends. */
export class ConnectionPool {
  private readonly conns = new Set<HttpConnection>();
  private closed = false;
  private readonly addr: ServerAddress;
  constructor(addr: ServerAddress) {
    this.addr = addr;
  }

  open(): HttpConnection {
    if (this.closed) fail('the check was cancelled (time limit reached)');
    const host = this.addr.base.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.addr.base.port || (this.addr.base.protocol === 'https:' ? 443 : 80));
    const c = new HttpConnection(host, port, undefined, this.addr.base.protocol === 'https:' ? { insecure: this.addr.insecure === true } : undefined);
    this.conns.add(c);
    return c;
  }

  closeAll(): void {
    this.closed = true;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
  }
}

/** Request target (path and query) of a request naming a target. */
export function targetUrl(addr: ServerAddress, target: string, query: string): string {
  const basePath = addr.base.pathname.replace(/\/+$/, '');
  const name = addr.prefix + target;
  if (addr.targetStyle === 'query') {
    const q = `target=${encodeURIComponent(name).replace(/%2F/g, '/')}`;
    return `${basePath || '/'}?${query === '' ? q : `${q}&${query}`}`;
  }
  return `${basePath}/${encodeTargetPath(name)}${query === '' ? '' : `?${query}`}`;
}

/** Turns a request's answer into a JppResponse (the body decoded when the status is 200). */
export function toJpp(raw: RawResponse, target: string): JppResponse {
  if (raw.status !== 200) return { raw, status: raw.status, stream: undefined, items: [], messages: [], eor: undefined, target };
  const stream = analyzeStream(raw.body);
  const items = stream.items ?? stream.framed.map((f) => f.item);
  return { raw, status: raw.status, stream, items, messages: messagesOf(items), eor: finalEor(items), target };
}

/** Fails the check unless the answer is a 200 whose body decodes. */
export function expectStream(r: JppResponse, what: string): JppResponse {
  expect(r.status === 200, `${what}: status ${r.status} (${r.raw.statusLine})${bodyHint(r.raw)}`);
  expect(r.stream?.error === undefined, `${what}: the body is not a valid JPP-stream: ${r.stream?.error}`);
  return r;
}

/** The start of a text body, for messages. */
export function bodyHint(raw: RawResponse): string {
  if (raw.body.length === 0 || raw.status === 200) return '';
  const t = new TextDecoder().decode(raw.body.subarray(0, 120)).replace(/\s+/g, ' ').trim();
  return t ? `: ${t}` : '';
}

export interface ChannelInfo {
  cid: string;
  path: string | undefined;
  transport: string | undefined;
  /** Every key=value of the header. */
  params: Record<string, string>;
}

/** Parses a JPIP-cnew value: comma-separated key=value pairs. */
export function parseCnew(value: string): ChannelInfo | undefined {
  const params: Record<string, string> = {};
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    params[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  if (!params['cid']) return undefined;
  return { cid: params['cid'], path: params['path'], transport: params['transport'], params };
}

/** The probe one check uses: stateless requests, raw requests, sessions. */
export class Probe {
  readonly addr: ServerAddress;
  readonly pool: ConnectionPool;
  readonly opts: ProbeOptions;

  constructor(addr: ServerAddress, pool: ConnectionPool, opts: ProbeOptions) {
    this.addr = addr;
    this.pool = pool;
    this.opts = opts;
  }

  /** One request on a new connection (closed afterwards). */
  async raw(target: string, opts: Partial<RequestOptions> = {}): Promise<RawResponse> {
    const conn = this.pool.open();
    try {
      return await conn.request(target, { timeoutMs: this.opts.timeoutMs, ...opts, headers: [...(this.opts.headers ?? []), ...(opts.headers ?? [])] });
    } finally {
      conn.destroy();
    }
  }

  /** A request naming a target, with fields (or a raw query string), on a new connection. */
  async get(target: string, fields: Fields | string, opts: Partial<RequestOptions> = {}): Promise<JppResponse> {
    const query = typeof fields === 'string' ? fields : formatRequest(fields);
    const url = targetUrl(this.addr, target, query);
    return toJpp(await this.raw(url, opts), url);
  }

  /** A new session on a target: sends cnew=http (and the other fields) and follows JPIP-cnew. */
  async session(target: string, fields: Fields = {}, opts: { headers?: Array<[string, string]> } = {}): Promise<{ session: Session; first: JppResponse }> {
    const s = new Session(this, target, opts.headers);
    const first = await s.open(fields);
    return { session: s, first };
  }
}

/**
 * One JPIP session over one keep-alive connection: the channel from
 * JPIP-cnew, the data-bins received (a JpipClient's store, so reassembly is
 * the client's own), and the requests made.
 */
export class Session {
  readonly probe: Probe;
  readonly target: string;
  readonly conn: HttpConnection;
  /** Holds the data-bins (its fetch-based transport is not used). */
  readonly holder: JpipClient;
  channel: ChannelInfo | undefined;
  tid: string | undefined;
  /** The request target the channel's requests go to. */
  channelPath = '';
  readonly responses: JppResponse[] = [];
  private readonly headers: Array<[string, string]>;

  constructor(probe: Probe, target: string, headers?: Array<[string, string]>) {
    this.probe = probe;
    this.target = target;
    this.conn = probe.pool.open();
    this.holder = new JpipClient(probe.addr.base.href);
    this.headers = [...(probe.opts.headers ?? []), ...(headers ?? [])];
  }

  get cid(): string {
    if (!this.channel) fail('no channel is open');
    return this.channel.cid;
  }

  private async send(url: string, opts: Partial<RequestOptions> = {}): Promise<JppResponse> {
    const raw = await this.conn.request(url, { timeoutMs: this.probe.opts.timeoutMs, ...opts, headers: [...this.headers, ...(opts.headers ?? [])] });
    const r = toJpp(raw, url);
    this.responses.push(r);
    if (r.status === 200 && r.stream?.error === undefined) {
      try {
        this.holder.store.addItems(r.items);
      } catch (e) {
        fail(`${url}: the data contradicts earlier data of the session: ${(e as Error).message}`);
      }
    }
    return r;
  }

  /** Opens the channel (cnew=http plus `fields`). Fails the check when no usable channel comes back. */
  async open(fields: Fields = {}): Promise<JppResponse> {
    const r = await this.openRaw({ cnew: ['http'], ...fields });
    expectStream(r, `cnew on ${this.target}`);
    expect(this.channel !== undefined, `cnew on ${this.target}: ${header(r.raw, 'JPIP-cnew') === undefined ? 'no JPIP-cnew header in the answer' : `JPIP-cnew ${JSON.stringify(header(r.raw, 'JPIP-cnew'))} has no cid`}`);
    return r;
  }

  /**
   * Sends the request that opens the channel (fields or a raw query that
   * holds cnew) and follows JPIP-cnew when the answer has a usable one;
   * returns the answer whatever it is.
   */
  async openRaw(fields: Fields | string): Promise<JppResponse> {
    const query = typeof fields === 'string' ? fields : formatRequest(fields);
    const url = targetUrl(this.probe.addr, this.target, query);
    const r = await this.send(url);
    const value = header(r.raw, 'JPIP-cnew');
    const info = r.status === 200 && value !== undefined ? parseCnew(value) : undefined;
    if (!info) return r;
    this.channel = info;
    this.tid = header(r.raw, 'JPIP-tid');
    // JHelioviewer's rule: later requests go to "/" + path; without a path, to the same resource.
    if (info.path !== undefined && info.path !== '') {
      this.channelPath = info.path.startsWith('/') ? info.path : `/${info.path}`;
    } else {
      this.channelPath = url.slice(0, url.indexOf('?') < 0 ? url.length : url.indexOf('?'));
      if (this.probe.addr.targetStyle === 'query') this.channelPath = this.probe.addr.base.pathname.replace(/\/+$/, '') || '/';
    }
    return r;
  }

  /** A request on the channel (cid added unless `noCid`). */
  async request(fields: Fields, opts: Partial<RequestOptions> & { noCid?: boolean } = {}): Promise<JppResponse> {
    const f: Fields = opts.noCid ? fields : { ...fields, cid: this.cid };
    return this.send(`${this.channelPath}?${formatRequest(f)}`, opts);
  }

  /** A request on the channel with a raw query (cid added at the end unless it is already there). */
  async requestRaw(query: string, opts: Partial<RequestOptions> & { noCid?: boolean } = {}): Promise<JppResponse> {
    const q = opts.noCid || /(^|&)cid=/.test(query) ? query : `${query}&cid=${this.cid}`;
    return this.send(`${this.channelPath}?${q}`, opts);
  }

  /**
   * Repeats a request until the server says the window is done (EOR 1 or 2),
   * at most `maxRounds` times; fails the check on an error answer, a body that
   * does not decode, or no progress.
   */
  async untilDone(fields: Fields, maxRounds = 200, what = 'window'): Promise<JppResponse[]> {
    const out: JppResponse[] = [];
    for (let i = 0; i < maxRounds; i++) {
      const r = expectStream(await this.request(fields), `${what}, round ${i + 1}`);
      out.push(r);
      if (r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE) return out;
      if (r.eor === undefined) fail(`${what}, round ${i + 1}: the response has no EOR message, so a client cannot tell whether the window is done`);
      if (r.eor === EOR.SESSION_LIMIT_REACHED) fail(`${what}, round ${i + 1}: EOR 6 (session limit) on a small image`);
      if (r.messages.length === 0 && i > 0) fail(`${what}: round ${i + 1} sent no data and did not say the window is done (EOR ${r.eor})`);
    }
    fail(`${what}: not done after ${maxRounds} requests`);
  }

  /** Closes the channel (cclose=cid, len=0), ignoring the answer; for cleanup. */
  async close(timeoutMs = this.probe.opts.timeoutMs): Promise<void> {
    if (!this.channel) return;
    try {
      await this.request({ cclose: [this.channel.cid], len: 0 }, { noCid: true, timeoutMs });
    } catch {
      // cleanup only
    }
    this.conn.destroy();
  }
}
