import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { BIN_CLASS } from '../jpip/constants.js';
import { encodeEor, encodeMessage } from '../jpip/messages.js';

/**
 * A deliberately misbehaving JPIP server for the client and crowd tests, on
 * 127.0.0.1. The target of the channel-opening request names the behaviour
 * (`/cut.jpx?cnew=http...`); channel requests carry it in their cid
 * (`cid=cut-3`), so a whole session misbehaves the same way:
 *
 * - `ok`: a small well-formed answer (one metadata message, EOR 2), JPIP-cnew on cnew
 * - `status`: 500 with a text body
 * - `ctype`: 200 with Content-Type text/html
 * - `garbage`: 200 image/jpp-stream whose first byte has the prohibited Bin-ID form bb=00
 * - `cut`: 200, half a message, then the connection is destroyed
 * - `truncated`: 200 with a Content-Length that ends inside a message
 * - `hang`: never answers (until the server closes)
 * - `drop`: closes the connection without answering
 * - `nocnew`: a cnew answered without JPIP-cnew
 * - `badcnew`: JPIP-cnew without a cid
 * - `flaky`: a good channel whose every other request is cut (a client can retry)
 */
export const MODES = ['ok', 'status', 'ctype', 'garbage', 'cut', 'truncated', 'hang', 'drop', 'nocnew', 'badcnew', 'flaky'] as const;
export type Mode = (typeof MODES)[number];

export interface MisbehavingServer {
  url: string;
  port: number;
  /** Requests seen per mode. */
  hits: Record<string, number>;
  /** Channel closes (cclose) seen. */
  closes: number;
  close(): Promise<void>;
}

const META = encodeMessage({ classId: BIN_CLASS.METADATA, codestream: 0, binId: 0, offset: 0, data: Uint8Array.of(0, 0, 0, 8, 0x66, 0x72, 0x65, 0x65), complete: true });
const GOOD = Buffer.concat([META, encodeEor(2)]);

export async function startMisbehavingServer(): Promise<MisbehavingServer> {
  const hits: Record<string, number> = {};
  const sockets = new Set<Socket>();
  let channels = 0;
  let closes = 0;
  const srv = createServer({ keepAliveTimeout: 30_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    let mode: string;
    let cid: string | undefined;
    if (q.has('cclose')) {
      closes++;
      res.writeHead(200, { 'Content-Type': 'image/jpp-stream' });
      res.end(encodeEor(2));
      return;
    }
    if (q.has('cid')) {
      cid = q.get('cid')!;
      mode = cid.slice(0, cid.lastIndexOf('-'));
    } else {
      mode = url.pathname.replace(/^\//, '').replace(/\.jpx$/, '');
      if (q.has('cnew')) cid = `${mode}-${++channels}`;
    }
    const n = (hits[mode] = (hits[mode] ?? 0) + 1);
    const jpp: Record<string, string> = { 'Content-Type': 'image/jpp-stream' };
    if (q.has('cnew') && cid) jpp['JPIP-cnew'] = `cid=${cid},path=jpip,transport=http`;
    switch (mode) {
      case 'ok':
        res.writeHead(200, jpp);
        res.end(GOOD);
        return;
      case 'flaky':
        if (q.has('cid') && n % 2 === 0) return cut(res, jpp);
        res.writeHead(200, jpp);
        res.end(GOOD);
        return;
      case 'status':
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('JPIP_ERR_CORRUPT_IMAGE: the test server says no\n');
        return;
      case 'ctype':
        res.writeHead(200, { 'Content-Type': 'text/html', ...(jpp['JPIP-cnew'] ? { 'JPIP-cnew': jpp['JPIP-cnew'] } : {}) });
        res.end('<html>not a JPP-stream</html>');
        return;
      case 'garbage':
        res.writeHead(200, jpp);
        res.end(Uint8Array.of(0x01, 0xff, 0xff, 0xff, 0x00, 0x02, 0x00));
        return;
      case 'cut':
        return cut(res, jpp);
      case 'truncated': {
        const part = GOOD.subarray(0, 5);
        res.writeHead(200, { ...jpp, 'Content-Length': String(part.length) });
        res.end(part);
        return;
      }
      case 'hang':
        return; // never answered
      case 'drop':
        req.socket.destroy();
        return;
      case 'nocnew':
        res.writeHead(200, { 'Content-Type': 'image/jpp-stream' });
        res.end(GOOD);
        return;
      case 'badcnew':
        res.writeHead(200, { 'Content-Type': 'image/jpp-stream', 'JPIP-cnew': 'path=jpip,transport=http' });
        res.end(GOOD);
        return;
      default:
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('no such mode\n');
    }
  });
  srv.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    get closes() {
      return closes;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

/** Headers and half the body go out (chunked), then the connection is destroyed. */
function cut(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, headers);
  res.write(GOOD.subarray(0, 6));
  setTimeout(() => res.socket?.destroy(), 20);
}

/** A TCP port on 127.0.0.1 with nothing listening (was free a moment ago). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
