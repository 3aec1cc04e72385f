import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { concatBytes } from '../jpeg2000/boxes.js';

/**
 * A deliberately small HTTP/1.1 client over a raw socket, for the
 * conformance suite: it must see what a server really sends (the exact status
 * line, header names and order, the chunk framing) and it must never hang or
 * run out of memory, whatever the server does. Node's own clients are lenient
 * or strict in ways that would hide exactly what the checks look at.
 *
 * Every wait is bounded (connect, each response, a total deadline) and every
 * buffer too (header block, body). A response that breaks the framing rules
 * is still returned, with the problem in `framingError`, so a check can say
 * what went wrong instead of failing with a socket error.
 */

/** The answer did not come within the time allowed (or the run was cancelled). */
export class HttpTimeout extends Error {
  override readonly name = 'HttpTimeout';
}

/** The connection failed or closed before a complete status line and header block. */
export class HttpConnectionError extends Error {
  override readonly name = 'HttpConnectionError';
}

export interface RawResponse {
  /** The status line exactly as received (without CRLF). */
  statusLine: string;
  /** `HTTP/1.1` */
  version: string;
  status: number;
  reason: string;
  /** Header fields in order, names as received. */
  headers: Array<[string, string]>;
  /** Body after transfer decoding and content decoding (gzip/deflate). */
  body: Uint8Array;
  /** Body after transfer decoding, before content decoding. */
  wireBody: Uint8Array;
  framing: 'chunked' | 'length' | 'close' | 'none';
  /** Chunk sizes received (chunked framing). */
  chunks: number[];
  /** What was wrong with the message framing or content coding, if anything. */
  framingError: string | undefined;
  /** The server closed the connection after this response (or said Connection: close). */
  closed: boolean;
  /** Milliseconds from sending the request to the end of the response. */
  elapsedMs: number;
}

/** The first value of a header (case-insensitive name), or undefined. */
export function header(res: Pick<RawResponse, 'headers'>, name: string): string | undefined {
  const n = name.toLowerCase();
  for (const [k, v] of res.headers) if (k.toLowerCase() === n) return v;
  return undefined;
}

/** Every value of a header (case-insensitive name). */
export function headerAll(res: Pick<RawResponse, 'headers'>, name: string): string[] {
  const n = name.toLowerCase();
  return res.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

export interface HttpLimits {
  /** Largest header block accepted (bytes). */
  maxHeaderBytes: number;
  /** Largest body accepted (bytes, on the wire and decoded). */
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: HttpLimits = { maxHeaderBytes: 64 * 1024, maxBodyBytes: 64 * 1024 * 1024 };

export interface RequestOptions {
  method?: string;
  /** Extra header lines, in order (Host is added first unless given). */
  headers?: Array<[string, string]>;
  body?: Uint8Array | string;
  /** Milliseconds for the whole exchange (connect included when a new socket is needed). */
  timeoutMs: number;
  /** The request is a HEAD (no body will follow). Default: method === 'HEAD'. */
  head?: boolean;
}

function indexOfCrlfCrlf(buf: Uint8Array, from: number): number {
  for (let i = Math.max(0, from); i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function indexOfCrlf(buf: Uint8Array, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  return -1;
}

const latin1 = new TextDecoder('latin1');

/**
 * One keep-alive connection. Requests are sent one at a time (no pipelining,
 * as JHelioviewer does); `request` reconnects if the server closed the
 * previous connection, and counts it in `connects`.
 */
/** HTTPS: TLS over the connection; `insecure` accepts any certificate (self-signed test ones). */
export interface HttpTls {
  insecure: boolean;
}

export class HttpConnection {
  readonly host: string;
  readonly port: number;
  private readonly limits: HttpLimits;
  private readonly tls: HttpTls | undefined;
  private socket: Socket | undefined;
  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private busy = false;
  private destroyed = false;
  /** TCP connections opened so far. */
  connects = 0;
  /** The local port of the current socket (to tell connections apart). */
  localPort: number | undefined;

  constructor(host: string, port: number, limits: HttpLimits = DEFAULT_LIMITS, tls?: HttpTls) {
    this.host = host;
    this.port = port;
    this.limits = limits;
    this.tls = tls;
  }

  /** Whether a socket is open and usable for the next request. */
  get open(): boolean {
    return this.socket !== undefined && !this.ended && this.error === undefined;
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async connect(deadline: number): Promise<void> {
    this.dropSocket();
    this.buffered = [];
    this.bufferedBytes = 0;
    this.ended = false;
    this.error = undefined;
    const tls = this.tls;
    const socket: Socket = tls
      ? tlsConnect({ host: this.host, port: this.port, rejectUnauthorized: !tls.insecure, ...(isIP(this.host) ? {} : { servername: this.host }) })
      : connect({ host: this.host, port: this.port });
    this.socket = socket;
    this.connects++;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buffered.push(new Uint8Array(d.buffer, d.byteOffset, d.length));
      this.bufferedBytes += d.length;
      this.signal();
    });
    socket.on('end', () => {
      this.ended = true;
      this.signal();
    });
    socket.on('close', () => {
      this.ended = true;
      this.signal();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.signal();
    });
    await new Promise<void>((resolve, reject) => {
      const left = deadline - Date.now();
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new HttpTimeout(`no TCP connection to ${this.host}:${this.port} within the time allowed`));
      }, Math.max(1, left));
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        this.localPort = socket.localPort;
        resolve();
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new HttpConnectionError(`cannot connect to ${this.host}:${this.port}: ${e.message}`));
      });
    });
  }

  private dropSocket(): void {
    if (this.socket) {
      this.socket.removeAllListeners('data');
      this.socket.destroy();
      this.socket = undefined;
    }
  }

  /** Closes the connection; later requests fail. */
  destroy(): void {
    this.destroyed = true;
    this.dropSocket();
    this.error = new HttpConnectionError('connection destroyed');
    this.signal();
  }

  /** Waits for more bytes, the end, an error or the deadline. */
  private async more(deadline: number, what: string): Promise<void> {
    if (this.bufferedBytes > 0 || this.ended || this.error) return;
    const left = deadline - Date.now();
    if (left <= 0) throw new HttpTimeout(`no complete answer within the time allowed (waiting for ${what})`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, left);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (this.bufferedBytes === 0 && !this.ended && !this.error && Date.now() >= deadline) {
      throw new HttpTimeout(`no complete answer within the time allowed (waiting for ${what})`);
    }
  }

  /** Takes everything buffered. */
  private take(): Uint8Array {
    const out = this.buffered.length === 1 ? this.buffered[0]! : concatBytes(this.buffered);
    this.buffered = [];
    this.bufferedBytes = 0;
    return out;
  }

  private unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.buffered.unshift(bytes);
    this.bufferedBytes += bytes.length;
  }

  /** Sends raw bytes (e.g. a malformed request) on the connection, connecting first if needed. */
  async sendRaw(bytes: Uint8Array | string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (this.destroyed) throw new HttpConnectionError('connection destroyed');
    if (!this.open) await this.connect(deadline);
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    this.socket!.write(data);
  }

  /**
   * Sends one request and reads its response. `target` is the request target
   * (`/path?query`). Host and Content-Length are added when needed.
   */
  async request(target: string, opts: RequestOptions): Promise<RawResponse> {
    if (this.busy) throw new Error('HttpConnection: one request at a time');
    this.busy = true;
    try {
      const start = Date.now();
      const deadline = start + opts.timeoutMs;
      if (this.destroyed) throw new HttpConnectionError('connection destroyed');
      if (!this.open) await this.connect(deadline);
      const method = opts.method ?? 'GET';
      const lines = [`${method} ${target} HTTP/1.1`];
      const given = opts.headers ?? [];
      if (!given.some(([k]) => k.toLowerCase() === 'host')) lines.push(`Host: ${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`);
      for (const [k, v] of given) lines.push(`${k}: ${v}`);
      const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? Buffer.from(opts.body, 'latin1') : opts.body;
      if (body !== undefined && !given.some(([k]) => k.toLowerCase() === 'content-length')) lines.push(`Content-Length: ${body.length}`);
      const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
      this.socket!.write(body ? Buffer.concat([head, body]) : head);
      const res = await this.readResponse(deadline, opts.head ?? method === 'HEAD');
      res.elapsedMs = Date.now() - start;
      if (res.closed) this.dropSocket();
      return res;
    } finally {
      this.busy = false;
    }
  }

  /** Reads one response from the connection (after a request sent with `sendRaw`, for example). */
  async readResponse(deadline: number, head = false): Promise<RawResponse> {
    // Header block.
    let buf: Uint8Array = new Uint8Array(0);
    let end = -1;
    for (;;) {
      end = indexOfCrlfCrlf(buf, 0);
      if (end >= 0) break;
      if (buf.length > this.limits.maxHeaderBytes) throw new HttpConnectionError(`header block larger than ${this.limits.maxHeaderBytes} bytes`);
      if (this.error) throw new HttpConnectionError(`connection error before the response head: ${this.error.message}`);
      if (this.ended && this.bufferedBytes === 0) {
        throw new HttpConnectionError(buf.length === 0 ? 'the server closed the connection without answering' : `the server closed the connection inside the response head (${buf.length} bytes)`);
      }
      await this.more(deadline, 'the status line and headers');
      if (this.bufferedBytes > 0) buf = concatBytes([buf, this.take()]);
    }
    this.unread(buf.subarray(end + 4));
    const headText = latin1.decode(buf.subarray(0, end));
    const headLines = headText.split('\r\n');
    const statusLine = headLines[0] ?? '';
    const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new HttpConnectionError(`not an HTTP status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
    const headers: Array<[string, string]> = [];
    let framingError: string | undefined;
    for (const line of headLines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) {
        framingError ??= `malformed header line ${JSON.stringify(line.slice(0, 60))}`;
        continue;
      }
      headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
    }
    const status = Number(m[2]);
    const res: RawResponse = {
      statusLine,
      version: m[1]!,
      status,
      reason: m[3] ?? '',
      headers,
      body: new Uint8Array(0),
      wireBody: new Uint8Array(0),
      framing: 'none',
      chunks: [],
      framingError,
      closed: false,
      elapsedMs: 0,
    };
    const te = header(res, 'transfer-encoding');
    const cl = headerAll(res, 'content-length');
    const conn = (header(res, 'connection') ?? '').toLowerCase();
    res.closed = conn.split(',').map((s) => s.trim()).includes('close') || m[1] === 'HTTP/1.0';
    if (te !== undefined && cl.length > 0) res.framingError ??= 'both Transfer-Encoding and Content-Length are present';
    if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      res.framing = 'none';
      return res;
    }
    if (te !== undefined) {
      if (te.toLowerCase() !== 'chunked') {
        res.framingError ??= `unsupported Transfer-Encoding ${JSON.stringify(te)}`;
        res.wireBody = await this.readToClose(deadline);
        res.framing = 'close';
        res.closed = true;
      } else {
        res.framing = 'chunked';
        await this.readChunked(res, deadline);
      }
    } else if (cl.length > 0) {
      res.framing = 'length';
      if (cl.length > 1 && new Set(cl).size > 1) res.framingError ??= `several different Content-Length values: ${cl.join(', ')}`;
      const n = /^\d+$/.test(cl[0]!) ? Number(cl[0]) : NaN;
      if (!Number.isSafeInteger(n)) {
        res.framingError ??= `bad Content-Length ${JSON.stringify(cl[0])}`;
        res.wireBody = await this.readToClose(deadline);
        res.closed = true;
      } else {
        if (n > this.limits.maxBodyBytes) throw new HttpConnectionError(`Content-Length ${n} over the limit of ${this.limits.maxBodyBytes}`);
        res.wireBody = await this.readExactly(n, deadline, res);
      }
    } else {
      res.framing = 'close';
      res.wireBody = await this.readToClose(deadline);
      res.closed = true;
    }
    res.body = this.contentDecode(res);
    return res;
  }

  private contentDecode(res: RawResponse): Uint8Array {
    const ce = (header(res, 'content-encoding') ?? '').trim().toLowerCase();
    if (ce === '' || ce === 'identity') return res.wireBody;
    const opts = { maxOutputLength: this.limits.maxBodyBytes };
    try {
      if (ce === 'gzip' || ce === 'x-gzip') return new Uint8Array(gunzipSync(res.wireBody, opts));
      if (ce === 'deflate') {
        try {
          return new Uint8Array(inflateSync(res.wireBody, opts));
        } catch {
          return new Uint8Array(inflateRawSync(res.wireBody, opts));
        }
      }
    } catch (e) {
      res.framingError ??= `Content-Encoding ${ce}: the body does not decode (${(e as Error).message})`;
      return res.wireBody;
    }
    res.framingError ??= `unknown Content-Encoding ${JSON.stringify(ce)}`;
    return res.wireBody;
  }

  private async readExactly(n: number, deadline: number, res: RawResponse): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let have = 0;
    while (have < n) {
      if (this.bufferedBytes === 0) {
        if (this.error || this.ended) {
          res.framingError ??= `the connection closed after ${have} of ${n} body bytes`;
          res.closed = true;
          break;
        }
        await this.more(deadline, `body byte ${have} of ${n}`);
        continue;
      }
      const chunk = this.take();
      const need = n - have;
      if (chunk.length > need) {
        parts.push(chunk.subarray(0, need));
        this.unread(chunk.subarray(need));
        have = n;
      } else {
        parts.push(chunk);
        have += chunk.length;
      }
    }
    return concatBytes(parts);
  }

  private async readToClose(deadline: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let have = 0;
    for (;;) {
      if (this.bufferedBytes > 0) {
        const c = this.take();
        parts.push(c);
        have += c.length;
        if (have > this.limits.maxBodyBytes) throw new HttpConnectionError(`body over the limit of ${this.limits.maxBodyBytes} bytes`);
        continue;
      }
      if (this.ended || this.error) break;
      await this.more(deadline, 'the end of a body delimited by closing the connection');
    }
    return concatBytes(parts);
  }

  /** Reads up to and including the next CRLF; returns the line without it. */
  private async readLine(deadline: number, what: string): Promise<string | undefined> {
    let buf: Uint8Array = new Uint8Array(0);
    for (;;) {
      const i = indexOfCrlf(buf, 0);
      if (i >= 0) {
        this.unread(buf.subarray(i + 2));
        return latin1.decode(buf.subarray(0, i));
      }
      if (buf.length > 4096) return undefined;
      if (this.bufferedBytes === 0) {
        if (this.ended || this.error) {
          this.unread(buf);
          return undefined;
        }
        await this.more(deadline, what);
        continue;
      }
      buf = concatBytes([buf, this.take()]);
    }
  }

  private async readChunked(res: RawResponse, deadline: number): Promise<void> {
    const parts: Uint8Array[] = [];
    let have = 0;
    for (;;) {
      const line = await this.readLine(deadline, 'a chunk size line');
      if (line === undefined) {
        res.framingError ??= 'the chunked body ends without its last (zero-size) chunk';
        res.closed = true;
        break;
      }
      const sm = /^([0-9A-Fa-f]{1,15})(;.*)?$/.exec(line);
      if (!sm) {
        res.framingError ??= `bad chunk size line ${JSON.stringify(line.slice(0, 40))}`;
        res.closed = true;
        break;
      }
      const size = parseInt(sm[1]!, 16);
      if (size === 0) {
        // Trailers until an empty line.
        for (let i = 0; i < 100; i++) {
          const t = await this.readLine(deadline, 'the end of the chunked body');
          if (t === undefined) {
            res.framingError ??= 'the chunked body is not ended by an empty line after the last chunk';
            res.closed = true;
            break;
          }
          if (t === '') break;
        }
        break;
      }
      res.chunks.push(size);
      if (have + size > this.limits.maxBodyBytes) throw new HttpConnectionError(`chunked body over the limit of ${this.limits.maxBodyBytes} bytes`);
      const data = await this.readExactly(size, deadline, res);
      parts.push(data);
      have += data.length;
      if (data.length < size) break;
      const crlf = await this.readLine(deadline, 'the CRLF after a chunk');
      if (crlf !== '') {
        res.framingError ??= `chunk of ${size} bytes is not followed by CRLF (chunk size wrong?)`;
        res.closed = true;
        break;
      }
    }
    res.wireBody = concatBytes(parts);
  }
}
