import { BIN_CLASS, EOR } from '../jpip/constants.js';
import { DataBinStore } from '../jpip/databins.js';
import { JpipError } from '../jpip/errors.js';
import { JppStreamDecoder, type DecodedItem } from '../jpip/messages.js';
import { formatRequest, type JpipRequest } from '../jpip/request.js';
import { numTiles as numTilesOf, precinctBinId } from '../jpeg2000/geometry.js';
import { parseMainHeaderBin, reassemble, type ReassembleOptions, type ReassembleResult } from '../jpip/reassemble.js';

/**
 * A JPIP client session over HTTP/1.1 keep-alive (Node's fetch): opens a
 * channel with cnew, sends requests on it, decodes each JPP-stream response
 * into its data-bin store, and rebuilds decodable codestreams from what it
 * holds. The crowd simulator, the rate-distortion analyzer and the
 * conformance suite are built on it.
 */

export interface JpipResponse {
  status: number;
  headers: Headers;
  /** Body bytes after content decoding. */
  bodyLength: number;
  items: DecodedItem[];
  /** Reason of the final EOR, undefined when the response had none. */
  eor: number | undefined;
  /** Body of a non-200 response, as text. */
  text: string | undefined;
}

export interface ClientOptions {
  /** Extra request headers (e.g. Accept-Encoding). */
  headers?: Record<string, string>;
  /** Abort a request after this many milliseconds. */
  timeoutMs?: number;
}

export class JpipClient {
  readonly base: string;
  readonly store = new DataBinStore();
  cid: string | undefined;
  /** The JPIP path the server gave in JPIP-cnew. */
  path = 'jpip';
  tid: string | undefined;
  private readonly opts: ClientOptions;

  constructor(baseUrl: string, opts: ClientOptions = {}) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.opts = opts;
  }

  /** Sends one request (`target` is used as the path when there is no channel yet). */
  async request(fields: Partial<JpipRequest>, target?: string): Promise<JpipResponse> {
    const withCid = this.cid !== undefined && fields.cnew === undefined && fields.cclose === undefined ? { ...fields, cid: this.cid } : fields;
    const query = formatRequest(withCid);
    const onChannel = this.cid !== undefined && fields.cnew === undefined;
    if (!onChannel && target === undefined && fields.target === undefined) throw new RangeError('JpipClient.request: no channel is open, so a target is needed');
    const path = onChannel || target === undefined ? `/${this.path}` : `/${target.split('/').map(encodeURIComponent).join('/')}`;
    const res = await fetch(`${this.base}${path}?${query}`, {
      headers: this.opts.headers,
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
    });
    const body = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) {
      return { status: res.status, headers: res.headers, bodyLength: body.length, items: [], eor: undefined, text: new TextDecoder().decode(body) };
    }
    const cnew = res.headers.get('JPIP-cnew');
    if (cnew) {
      const kv = Object.fromEntries(cnew.split(',').map((p) => p.split('=') as [string, string]));
      if (!kv['cid'] || !kv['path'] || kv['transport'] !== 'http') throw new JpipError('BAD_STREAM', `malformed JPIP-cnew: ${cnew}`);
      this.cid = kv['cid'];
      this.path = kv['path'];
    }
    const tid = res.headers.get('JPIP-tid');
    if (tid) this.tid = tid;
    const decoder = new JppStreamDecoder();
    const items = decoder.push(body);
    decoder.end();
    this.store.addItems(items);
    const last = items.at(-1);
    return { status: 200, headers: res.headers, bodyLength: body.length, items, eor: last?.kind === 'eor' ? last.reason : undefined, text: undefined };
  }

  /** Repeats a request until the server says the window is done (EOR 1 or 2), at most `maxRounds` times. */
  async untilDone(fields: Partial<JpipRequest>, target?: string, maxRounds = 1000): Promise<JpipResponse[]> {
    const out: JpipResponse[] = [];
    for (let i = 0; i < maxRounds; i++) {
      const r = await this.request(fields, target);
      out.push(r);
      if (r.status !== 200 || r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE) return out;
    }
    throw new Error(`window not done after ${maxRounds} requests`);
  }

  async close(): Promise<JpipResponse | undefined> {
    if (this.cid === undefined) return undefined;
    const r = await this.request({ cclose: [this.cid], len: 0 });
    this.cid = undefined;
    return r;
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
