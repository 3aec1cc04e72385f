import type { JpipRequest } from '../jpip/request.js';

/**
 * Request syntax of other JPIP servers. A dialect changes how a request is
 * written (where the target goes, which fields a server insists on), never
 * what is asked for or how it is measured. Plain JavaScript (browser-safe).
 *
 * - `ours`: the target in the URL path, fields as the request builder writes them.
 * - `esajpip` (Helioviewer's esajpip-SWHV): needs `stream=` with every window
 *   and always a `len` (without one it sends nothing); channels are bound to
 *   their TCP connection, which the crowd's one-connection-per-client
 *   transport respects.
 * - `openjpip` (OpenJPEG's opj_server): the image goes in `target=` on the
 *   server's own path; its JPIP-cnew carries no `path`, so channel requests
 *   stay on that path; a `metareq` asking for any box (`*`) is a 501 there,
 *   so it is left out.
 * - `kakadu` (kdu_server): written from its documented request syntax only:
 *   the target in the path, `type=jpp-stream` on every channel-opening
 *   request. UNTESTED: no Kakadu server was available.
 */

export interface DialectContext {
  /** The request goes on an open channel (cid added after adapt). */
  onChannel: boolean;
}

export interface Dialect {
  readonly name: DialectName;
  /** Whether it was run against the real server. */
  readonly tested: boolean;
  /** Where the image is named: in the URL path, or in a `target=` field. */
  readonly targetIn: 'path' | 'field';
  /** A JPIP-cnew without `path` is accepted (channel requests stay where the cnew went). */
  readonly cnewPathOptional: boolean;
  /** A JPIP-cnew without `transport=` is refused. */
  readonly requireCnewTransport: boolean;
  /** Returns the fields to send for `fields` (may be the same object, changed). */
  adapt(fields: Partial<JpipRequest>, ctx: DialectContext): Partial<JpipRequest>;
}

export const DIALECT_NAMES = ['ours', 'esajpip', 'openjpip', 'kakadu'] as const;
export type DialectName = (typeof DIALECT_NAMES)[number];

/** JHelioviewer's len, which esajpip is used to. */
const ESAJPIP_DEFAULT_LEN = 2097152;

const ours: Dialect = {
  name: 'ours',
  tested: true,
  targetIn: 'path',
  cnewPathOptional: false,
  requireCnewTransport: true,
  adapt: (f) => f,
};

const esajpip: Dialect = {
  name: 'esajpip',
  tested: false,
  targetIn: 'path',
  cnewPathOptional: false,
  requireCnewTransport: true,
  adapt(f) {
    const out = { ...f };
    const asksData = out.fsiz !== undefined || out.metareq !== undefined || out.cnew !== undefined;
    if (asksData && out.stream === undefined && out.context === undefined) out.stream = [{ from: 0, to: 0, step: 1 }];
    if (out.len === undefined) out.len = out.cclose !== undefined ? 0 : ESAJPIP_DEFAULT_LEN;
    return out;
  },
};

const openjpip: Dialect = {
  name: 'openjpip',
  tested: false,
  targetIn: 'field',
  cnewPathOptional: true,
  requireCnewTransport: false,
  adapt(f) {
    const out = { ...f };
    if (out.metareq && out.metareq.groups.some((g) => g.boxes.some((b) => b.boxType === '*'))) delete out.metareq;
    return out;
  },
};

const kakadu: Dialect = {
  name: 'kakadu',
  tested: false,
  targetIn: 'path',
  cnewPathOptional: false,
  requireCnewTransport: true,
  adapt(f) {
    const out = { ...f };
    if (out.cnew !== undefined && out.type === undefined) out.type = [{ name: 'jpp-stream', ext: false }];
    return out;
  },
};

export const DIALECTS: Readonly<Record<DialectName, Dialect>> = { ours, esajpip, openjpip, kakadu };

/** The dialect of a name; RangeError naming the choices otherwise. */
export function dialectByName(name: string): Dialect {
  const d = (DIALECTS as Record<string, Dialect | undefined>)[name];
  if (!d) throw new RangeError(`unknown dialect ${JSON.stringify(name)}: use one of ${DIALECT_NAMES.join(', ')}`);
  return d;
}
