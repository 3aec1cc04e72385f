import { pipeline, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { Pool } from 'undici';
import type { Transport, TransportRequest, TransportResponse } from './client.js';

/**
 * The Node transport of the JPIP client: undici (the library under Node's
 * fetch) with an explicit connection pool per origin. By default a transport
 * holds ONE keep-alive connection, used for one request at a time, as
 * JHelioviewer uses one persistent socket per layer (and as esajpip, whose
 * channels are bound to their connection, requires). The flash crowd gives
 * each simulated client its own transport, so N clients hold N connections
 * (Node's own fetch would open one per request in flight and share them
 * between clients).
 *
 * Bodies are streamed chunk by chunk; gzip/deflate/br bodies are decoded.
 */

export interface UndiciTransportOptions {
  /** Connections per origin (default 1). */
  connections?: number;
  /** Connect timeout in ms (default 10 s). */
  connectTimeoutMs?: number;
  /** How long an idle connection is kept (default 60 s; the server may close it first). */
  keepAliveMs?: number;
  /** https:// servers: accept any certificate (self-signed test certificates). */
  insecure?: boolean;
}

function firstHeader(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? (v[0] ?? null) : v;
}

export class UndiciTransport implements Transport {
  private readonly pools = new Map<string, Pool>();
  private readonly opts: Required<UndiciTransportOptions>;
  private closed = false;

  constructor(opts: UndiciTransportOptions = {}) {
    this.opts = { connections: opts.connections ?? 1, connectTimeoutMs: opts.connectTimeoutMs ?? 10_000, keepAliveMs: opts.keepAliveMs ?? 60_000, insecure: opts.insecure ?? false };
    if (!Number.isInteger(this.opts.connections) || this.opts.connections < 1) throw new RangeError(`connections must be an integer >= 1, got ${this.opts.connections}`);
  }

  /** Connections currently open, over all origins. */
  get connected(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.stats.connected;
    return n;
  }

  private pool(origin: string): Pool {
    let p = this.pools.get(origin);
    if (!p) {
      p = new Pool(origin, {
        connections: this.opts.connections,
        pipelining: 1,
        connectTimeout: this.opts.connectTimeoutMs,
        keepAliveTimeout: this.opts.keepAliveMs,
        keepAliveMaxTimeout: this.opts.keepAliveMs,
        // The client's own timer bounds each whole response.
        headersTimeout: 0,
        bodyTimeout: 0,
        ...(this.opts.insecure ? { connect: { rejectUnauthorized: false } } : {}),
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  async send(req: TransportRequest): Promise<TransportResponse> {
    if (this.closed) throw new Error('the transport is closed');
    const u = new URL(req.url);
    const res = await this.pool(u.origin).request({ path: `${u.pathname}${u.search}`, method: 'GET', headers: req.headers, signal: req.signal });
    const raw = res.body as unknown as Readable;
    // Errors reach the reader through iteration; a body dropped unread (cancel,
    // abort) must not crash the process with an unhandled 'error' event.
    raw.on('error', () => {});
    const enc = (firstHeader(res.headers['content-encoding']) ?? '').trim().toLowerCase();
    let body: Readable = raw;
    if (enc === 'gzip' || enc === 'x-gzip' || enc === 'deflate' || enc === 'br') {
      const dec = enc === 'br' ? createBrotliDecompress() : enc === 'deflate' ? createInflate() : createGunzip();
      body = pipeline(raw, dec, () => {});
      body.on('error', () => {});
    }
    return {
      status: res.statusCode,
      header: (name) => firstHeader(res.headers[name.toLowerCase()]),
      body: body as AsyncIterable<Uint8Array>,
      cancel: () => {
        body.destroy();
        raw.destroy();
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    // destroy, not close: a request stuck on a hanging server must not hold the run.
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}
