import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { BIN_CLASS } from '../jpip/constants.js';
import { JppStreamDecoder, type DecodedItem } from '../jpip/messages.js';
import { formatRequest, type JpipRequest } from '../jpip/request.js';
import { JpipClient } from '../client-sim/client.js';
import { readContainer } from '../jpeg2000/boxes.js';
import { writeJpx } from '../fixtures-gen/containers.js';
import { fixtureBytes } from './helpers.js';

/** The three 128x128 codestreams of the committed movie fixture. */
export function movieFrames(): Uint8Array[] {
  const movie = fixtureBytes('movie/movie.jpx');
  return readContainer(movie, { file: 'movie.jpx' }).codestreams.map((ref) => movie.slice(ref.offset, ref.offset + ref.length));
}

/**
 * Writes a JPX of `count` frames (frame k is the movie fixture's frame k % 3):
 * 2500 frames make ~8 MB, more than the kernel buffers of a loopback client
 * that stops reading (~4 MB measured), so such a response stays in flight.
 */
export function writeBigMovie(path: string, count: number): void {
  const frames = movieFrames();
  writeFileSync(path, writeJpx(Array.from({ length: count }, (_, k) => frames[k % 3]!), { width: 128, height: 128, components: 1, bitDepth: 8 }));
}

/**
 * A JPIP session over one keep-alive TCP connection (node:http Agent with a
 * single socket), for the supervisor tests: it shows which TCP connection
 * carried each response (local port, count of connections opened), takes a
 * response cut short (reset, missing final chunk) for a failed one whose data
 * is dropped, and records every message of the responses it keeps, per
 * data-bin, to check that no byte arrived twice. Reassembly and decoding go
 * through a JpipClient's data-bin store.
 */

export interface Received {
  status: number;
  headers: IncomingMessage['headers'];
  items: DecodedItem[];
  eor: number | undefined;
  localPort: number;
  text: string;
}

/** One keep-alive socket; for https:// any certificate is accepted (the tests make self-signed ones). */
function agentFor(base: URL): Agent {
  return base.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false }) : new Agent({ keepAlive: true, maxSockets: 1 });
}

export class KeepAliveSession {
  agent: Agent;
  /** Store and reassembly (its own fetch is not used). */
  readonly jc: JpipClient;
  base: URL;
  cid: string | undefined;
  /** TCP connections this session opened. */
  connects = 0;
  /** Responses that failed (reset, cut). */
  failures = 0;
  /** Byte ranges received per bin, from kept responses: "cs:class:bin" -> [from, to, response number] list. */
  readonly ranges = new Map<string, [number, number, number][]>();
  /** Kept responses: when each completed. */
  readonly keptAt: number[] = [];
  private readonly seen = new WeakSet<Socket>();

  constructor(base: string) {
    this.base = new URL(base);
    this.agent = agentFor(this.base);
    this.jc = new JpipClient(base);
  }

  /** One request; rejects when the response is cut or the connection fails. */
  request(fields: Partial<JpipRequest>, target?: string, opts: { pauseBody?: (res: IncomingMessage) => void; timeoutMs?: number } = {}): Promise<Received> {
    const withCid = this.cid !== undefined && fields.cnew === undefined ? { ...fields, cid: this.cid } : fields;
    const path = this.cid !== undefined && fields.cnew === undefined ? '/jpip' : `/${target!.split('/').map(encodeURIComponent).join('/')}`;
    return new Promise<Received>((resolve, reject) => {
      const send = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send({ host: this.base.hostname, port: this.base.port, path: `${path}?${formatRequest(withCid)}`, agent: this.agent, timeout: opts.timeoutMs ?? 30_000 });
      let localPort = 0;
      req.on('socket', (s: Socket) => {
        if (!this.seen.has(s)) {
          this.seen.add(s);
          this.connects++;
        }
        const port = (): void => {
          localPort = s.localPort ?? 0;
        };
        if (s.localPort) port();
        else s.once(this.base.protocol === 'https:' ? 'secureConnect' : 'connect', port);
      });
      req.on('timeout', () => req.destroy(new Error('client timeout')));
      let failed = false;
      req.on('error', (e) => {
        if (failed) return;
        failed = true;
        this.failures++;
        reject(e);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        let settled = false;
        const cut = (why: string): void => {
          if (settled) return;
          settled = true;
          this.failures++;
          reject(new Error(`response cut short (${why})`));
        };
        res.on('error', (e) => cut(e.message));
        res.on('close', () => {
          if (!res.complete) cut('closed');
        });
        res.on('end', () => {
          if (!res.complete) return cut('ended early');
          if (settled) return;
          settled = true;
          const body = new Uint8Array(Buffer.concat(chunks));
          const text = res.statusCode === 200 ? '' : Buffer.from(body).toString('utf8');
          let items: DecodedItem[] = [];
          if (res.statusCode === 200 && /jp[pt]-stream/.test(String(res.headers['content-type']))) {
            const d = new JppStreamDecoder();
            try {
              items = d.push(body);
              d.end();
            } catch (e) {
              this.failures++;
              reject(e as Error);
              return;
            }
            const cnew = res.headers['jpip-cnew'];
            if (typeof cnew === 'string') this.cid = /cid=([^,]+)/.exec(cnew)![1];
            this.keep(items);
          }
          const last = items.at(-1);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, items, eor: last?.kind === 'eor' ? last.reason : undefined, localPort, text });
        });
        opts.pauseBody?.(res);
      });
      req.end();
    });
  }

  private keep(items: DecodedItem[]): void {
    this.jc.store.addItems(items);
    const n = this.keptAt.length;
    this.keptAt.push(Date.now());
    for (const it of items) {
      if (it.kind !== 'message' || it.length === 0) continue;
      const key = `${it.codestream}:${it.classId === BIN_CLASS.EXTENDED_PRECINCT ? BIN_CLASS.PRECINCT : it.classId}:${it.binId}`;
      let list = this.ranges.get(key);
      if (!list) this.ranges.set(key, (list = []));
      list.push([it.offset, it.offset + it.length, n]);
    }
  }

  /** Bins some byte of which arrived twice in kept responses. */
  duplicates(): string[] {
    const out: string[] = [];
    for (const [key, list] of this.ranges) {
      const sorted = [...list].sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < sorted.length; i++) {
        if (sorted[i]![0] < sorted[i - 1]![1]) {
          const [a, b] = [sorted[i - 1]!, sorted[i]!];
          out.push(`${key} [${a[0]},${a[1]}) of response ${a[2]} (at ${this.keptAt[a[2]]}) and [${b[0]},${b[1]}) of response ${b[2]} (at ${this.keptAt[b[2]]})`);
          break;
        }
      }
    }
    return out;
  }

  close(): void {
    this.agent.destroy();
  }

  /** Goes on with the same session (cid, data, records) against another server address. */
  rebase(base: string): void {
    this.agent.destroy();
    this.base = new URL(base);
    this.agent = agentFor(this.base);
  }
}
