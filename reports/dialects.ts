/**
 * How the rate-distortion analyzer talks to each kind of JPIP server. The
 * request syntax of each server lives in the client's dialects
 * (client-sim/dialects.ts); this adapter adds only what the analyzer needs
 * on top: the names accepted on the command line and when a window counts
 * as finished.
 *
 * - `ours`: this project's server.
 * - `jpip`: any server with the standard syntax (the client's `ours`
 *   requests); the name only labels the results.
 * - `opj` (= `openjpip`): OpenJPEG's opj_server: target in a `target=`
 *   field, JPIP-cnew without path, and `len` ignored, so one response
 *   carries the whole window and a response without an EOR ends it.
 * - `esajpip`, `kakadu`: the client's dialects of those servers.
 */
import { JpipClient, type JpipResponse } from '../client-sim/client.js';
import { dialectByName, type DialectName } from '../client-sim/dialects.js';
import { EOR } from '../jpip/constants.js';
import type { JpipRequest } from '../jpip/request.js';

export const DIALECTS = ['ours', 'jpip', 'opj', 'openjpip', 'esajpip', 'kakadu'] as const;
export type Dialect = (typeof DIALECTS)[number];

/** The client dialect each analyzer dialect sends requests in. */
const CLIENT_DIALECT: Record<Dialect, DialectName> = { ours: 'ours', jpip: 'ours', opj: 'openjpip', openjpip: 'openjpip', esajpip: 'esajpip', kakadu: 'kakadu' };

/** Dialects whose server ignores len and may end a response without an EOR. */
const NO_EOR_MEANS_DONE: ReadonlySet<Dialect> = new Set(['opj', 'openjpip']);

/** The URL value that asks for the embedded server. */
export const EMBEDDED = 'embedded';

export interface ServerSpec {
  /** Label in results and plots. */
  name: string;
  /** Base URL (for `opj`, the URL of the FastCGI program), or `embedded`. */
  url: string;
  dialect: Dialect;
}

export function isDialect(s: string): s is Dialect {
  return (DIALECTS as readonly string[]).includes(s);
}

/**
 * Parses `--server NAME=URL[:DIALECT]` (the dialect defaults to `ours` for
 * `embedded`, `jpip` otherwise). A bare URL is named `server<index>`.
 */
export function parseServerSpec(arg: string, index = 1): ServerSpec {
  const eq = arg.indexOf('=');
  const named = eq > 0 && !/[/:]/.test(arg.slice(0, eq));
  const name = named ? arg.slice(0, eq) : `server${index}`;
  let url = named ? arg.slice(eq + 1) : arg;
  let dialect: Dialect | undefined;
  const colon = url.lastIndexOf(':');
  if (colon >= 0) {
    const tail = url.slice(colon + 1);
    if (isDialect(tail)) {
      dialect = tail;
      url = url.slice(0, colon);
    }
  }
  if (!/^[A-Za-z0-9_.-]{1,40}$/.test(name)) throw new RangeError(`--server ${arg}: the name must be 1 to 40 letters, digits, '_', '.' or '-'`);
  if (url !== EMBEDDED) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new RangeError(`--server ${arg}: '${url}' is not a URL (NAME=http://HOST:PORT[/PATH][:${DIALECTS.join('|')}], or NAME=${EMBEDDED})`);
    }
    if (u.protocol !== 'http:') throw new RangeError(`--server ${arg}: only http:// URLs are supported`);
  }
  return { name, url, dialect: dialect ?? (url === EMBEDDED ? 'ours' : 'jpip') };
}

/** The view-window part of a request. */
export type WindowFields = Pick<JpipRequest, 'fsiz' | 'roff' | 'rsiz' | 'len'> & Partial<Pick<JpipRequest, 'stream'>>;

/** One JPIP session with one server, as the analyzer drives it. */
export interface RdSession {
  readonly client: JpipClient;
  /** Sends one window request; the first call opens the channel on the target. */
  send(fields: WindowFields): Promise<JpipResponse>;
  /** Whether this response finished the window. */
  windowDone(r: JpipResponse): boolean;
  close(): Promise<void>;
}

const OPEN: Partial<JpipRequest> = { cnew: ['http'], type: [{ name: 'jpp-stream', ext: false }] };

/** Opens (on the first send) a session with a server of the given dialect. */
export function openSession(dialect: Dialect, url: string, target: string, timeoutMs = 30_000): RdSession {
  const client = new JpipClient(url, { timeoutMs, dialect: dialectByName(CLIENT_DIALECT[dialect]) });
  const noEorDone = NO_EOR_MEANS_DONE.has(dialect);
  return {
    client,
    send: (fields) => (client.cid === undefined ? client.request({ ...OPEN, ...fields }, target) : client.request(fields)),
    windowDone: (r) => r.eor === EOR.WINDOW_DONE || r.eor === EOR.IMAGE_DONE || (noEorDone && r.eor === undefined),
    close: async () => {
      await client.close().catch(() => undefined);
    },
  };
}
