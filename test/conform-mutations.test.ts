import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN_CLASS } from '../jpip/constants.js';
import { encodeMessage, type DecodedItem } from '../jpip/messages.js';
import { CHECKS, runConformance, STATUS } from '../conform/index.js';
import {
  encodeItems,
  field,
  getHeader,
  IDENTITY,
  isStream,
  jppResponse,
  mapItems,
  pathOf,
  setHeader,
  startMutationProxy,
  statusOf,
  textResponse,
  withField,
  type Mutation,
  type ProxyResponse,
} from '../conform/mutation-proxy.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { FIXTURES } from './helpers.js';

/**
 * Every conformance check can fail: our server behind a proxy that breaks
 * one thing (a mutation) must make the listed checks FAILED. The table maps
 * each mutation to the checks it must fail; a last test makes sure every
 * check is in the table.
 */

type Msg = Extract<DecodedItem, { kind: 'message' }>;
const isPrecinct = (i: DecodedItem): i is Msg => i.kind === 'message' && (i.classId === BIN_CLASS.PRECINCT || i.classId === BIN_CLASS.EXTENDED_PRECINCT);

/** Changes every message matching `pick` (at most `limit` per answer). */
function eachMessage(pick: (m: Msg) => boolean, change: (m: Msg) => Msg, limit = Infinity) {
  return (res: ProxyResponse): ProxyResponse =>
    mapItems(res, (items) => {
      let n = 0;
      return items.map((i) => (i.kind === 'message' && pick(i) && n++ < limit ? change(i) : i));
    });
}

function flipLast(m: Msg): Msg {
  if (m.length === 0) return m;
  const data = new Uint8Array(m.data);
  data[data.length - 1]! ^= 0x5a;
  return { ...m, data };
}

/** Rewrites a field's value in every request that has it. */
function rewriteField(name: string, fn: (v: string) => string | undefined): Mutation['request'] {
  return (req) => {
    const v = field(req.target, name);
    return v === undefined ? req : { ...req, target: withField(req.target, name, fn(v)) };
  };
}

function eorReason(reason: number) {
  return (res: ProxyResponse): ProxyResponse => mapItems(res, (items) => items.map((i) => (i.kind === 'eor' ? { ...i, reason } : i)));
}

/** fsiz fx,fy[,round] scaled. */
function scaleFsiz(k: number) {
  return rewriteField('fsiz', (v) => {
    const [x, y, ...rest] = v.split(',');
    return [Math.max(1, Math.round(Number(x) * k)), Math.max(1, Math.round(Number(y) * k)), ...rest].join(',');
  });
}

interface Row {
  mutation: Mutation;
  /** Checks that must end FAILED against it. */
  fails: string[];
}

const m = (id: string, description: string, rest: Omit<Mutation, 'id' | 'description'>): Mutation => ({ id, description, ...rest });

export const TABLE: Row[] = [
  // --- headers
  { mutation: m('status-reason', 'status line "HTTP/1.1 200 Okay"', { response: (r) => (statusOf(r) === 200 ? { ...r, statusLine: 'HTTP/1.1 200 Okay' } : r) }), fails: ['headers.status-line'] },
  { mutation: m('content-type', 'Content-Type: application/octet-stream on JPP answers', { response: (r) => (isStream(r) ? setHeader(r, 'Content-Type', 'application/octet-stream') : r) }), fails: ['headers.content-type', 'jhv.sequence'] },
  { mutation: m('length-and-chunked', 'both Content-Length and chunked', { response: (r) => (isStream(r) ? { ...r, raw: Buffer.concat([Buffer.from(`${r.statusLine}\r\n${r.headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\nContent-Length: ${r.body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${r.body.length.toString(16)}\r\n`, 'latin1'), r.body, Buffer.from('\r\n0\r\n\r\n')]) } : r) }), fails: ['headers.framing'] },
  { mutation: m('connection-close', 'Connection: close after every answer', { response: (r) => ({ ...r, close: true }) }), fails: ['headers.keep-alive', 'jhv.sequence'] },
  { mutation: m('cache-public', 'Cache-Control: public, max-age=3600', { response: (r) => setHeader(r, 'Cache-Control', 'public, max-age=3600') }), fails: ['headers.cache-control'] },
  { mutation: m('no-cors', 'no Access-Control-* headers', { response: (r) => ({ ...r, headers: r.headers.filter(([k]) => !/^access-control-/i.test(k)) }) }), fails: ['headers.cors', 'headers.cors-expose'] },
  { mutation: m('cnew-no-transport', 'JPIP-cnew without transport=http', { response: (r) => { const c = getHeader(r, 'jpip-cnew'); return c ? setHeader(r, 'JPIP-cnew', c.replace(/,?transport=[^,]*/, '')) : r; } }), fails: ['headers.cnew'] },
  { mutation: m('tid-path', 'JPIP-tid holds a server path', { response: (r) => { const t = getHeader(r, 'jpip-tid'); return t ? setHeader(r, 'JPIP-tid', `/srv/jpip/images/${t}`) : r; } }), fails: ['headers.tid-private'] },
  { mutation: m('tid-random', 'a new JPIP-tid every time', { response: (r) => (getHeader(r, 'jpip-tid') ? setHeader(r, 'JPIP-tid', `T${Math.random().toString(36).slice(2)}`) : r) }), fails: ['headers.tid-stable'] },
  { mutation: m('qid-wrong', 'JPIP-qid off by one', { response: (r) => { const q = getHeader(r, 'jpip-qid'); return q ? setHeader(r, 'JPIP-qid', String(Number(q) + 1)) : r; } }), fails: ['headers.qid'] },
  {
    mutation: m('window-headers-wrong', 'JPIP-fsiz, JPIP-rsiz and JPIP-layers off by one', {
      response: (r) => {
        let out = r;
        for (const h of ['JPIP-fsiz', 'JPIP-rsiz']) { const v = getHeader(out, h); if (v) out = setHeader(out, h, v.split(',').map((x) => String(Number(x) + 1)).join(',')); }
        const l = getHeader(out, 'jpip-layers');
        return l ? setHeader(out, 'JPIP-layers', String(Number(l) + 1)) : out;
      },
    }),
    fails: ['headers.jpip-fsiz', 'headers.jpip-rsiz', 'headers.jpip-layers'],
  },
  { mutation: m('gzip-always', 'gzip every answer, asked or not', { response: (r) => (isStream(r) ? { ...setHeader(r, 'Content-Encoding', 'gzip'), gzip: true } : r) }), fails: ['headers.gzip'] },
  {
    mutation: m('jpt-as-jpp', 'type=jpt-stream answered with a JPP-stream labelled image/jpt-stream', {
      request: (req) => (field(req.target, 'type')?.includes('jpt') ? { ...req, target: withField(req.target, 'type', 'jpp-stream') } : req),
      response: (r, req) => (req.target !== '' && /type=jpp-stream/.test(req.target) && isStream(r) ? setHeader(r, 'Content-Type', 'image/jpt-stream') : r),
    }),
    fails: ['headers.content-type-jpt', 'data.jpt-stream'],
  },
  // --- framing
  { mutation: m('truncate-body', 'the last 2 bytes of each JPP answer cut', { response: (r) => (isStream(r) && r.body.length > 2 ? { ...r, body: r.body.subarray(0, r.body.length - 2) } : r) }), fails: ['framing.decodes'] },
  {
    mutation: m('first-message-bb10', 'the first message of each answer in the bb=10 form', {
      response: (r) => {
        if (!isStream(r)) return r;
        const items = mapItemsRaw(r);
        const first = items[0];
        if (!first || first.kind !== 'message' || first.codestream !== 0 || first.binId > 15 || first.classId > 127) return r;
        const full = encodeMessage({ ...first, data: first.data });
        // bb=11 -> bb=10: drop the CSn byte (0) after the class byte.
        const short = Buffer.concat([Uint8Array.of((full[0]! & 0x9f) | 0x40, full[1]!), full.subarray(3)]);
        return { ...r, body: Buffer.concat([short, encodeItems(items.slice(1))]) };
      },
    }),
    fails: ['framing.first-message-form'],
  },
  { mutation: m('no-eor', 'no EOR message', { response: (r) => mapItems(r, (items) => items.filter((i) => i.kind !== 'eor')) }), fails: ['framing.eor-present', 'framing.eor-window-done', 'jhv.sequence'] },
  { mutation: m('data-after-eor', 'a message repeated after the EOR', { response: (r) => mapItems(r, (items) => { const first = items.find((i) => i.kind === 'message'); return first ? [...items, first] : items; }) }), fails: ['framing.eor-last'] },
  { mutation: m('eor-reason-254', 'EOR reason 254 (undefined)', { response: eorReason(0xfe) }), fails: ['framing.eor-reason'] },
  {
    mutation: m('bad-vbas', 'a 10-byte Msg-Offset VBAS in the last message', {
      response: (r) => {
        if (!isStream(r)) return r;
        const items = [...mapItemsRaw(r)];
        const k = lastIndex(items, (i) => i.kind === 'message' && i.binId < 16 && i.classId < 128 && i.codestream < 128 && i.length < 128);
        if (k < 0) return r;
        const it = items[k] as Msg;
        const head = Uint8Array.of(0x60 | (it.complete ? 0x10 : 0) | it.binId, it.classId, it.codestream, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, it.offset & 0x7f, it.length);
        return { ...r, body: Buffer.concat([encodeItems(items.slice(0, k)), head, it.data, encodeItems(items.slice(k + 1))]) };
      },
    }),
    fails: ['framing.vbas', 'framing.decodes'],
  },
  { mutation: m('class-4', 'tile-header messages sent as class 4 (JPT tile)', { response: eachMessage((x) => x.classId === BIN_CLASS.TILE_HEADER, (x) => ({ ...x, classId: BIN_CLASS.TILE })) }), fails: ['framing.classes'] },
  { mutation: m('codestream-shift', 'image data of codestream n labelled n+1', { response: eachMessage((x) => x.classId !== BIN_CLASS.METADATA, (x) => ({ ...x, codestream: x.codestream + 1 })) }), fails: ['framing.codestream-ids'] },
  { mutation: m('bin-id-shift', 'precinct ids + 1000', { response: eachMessage((x) => x.classId === BIN_CLASS.PRECINCT, (x) => ({ ...x, binId: x.binId + 1000 })) }), fails: ['framing.bin-ids'] },
  { mutation: m('no-c-bit', 'the completeness bit never set on precincts', { response: eachMessage((x) => x.classId === BIN_CLASS.PRECINCT, (x) => ({ ...x, complete: false })) }), fails: ['framing.completeness'] },
  {
    mutation: m('main-header-last', 'main headers moved to the end of the answer', {
      response: (r) => mapItems(r, (items) => { const main = items.filter((i) => i.kind === 'message' && i.classId === BIN_CLASS.MAIN_HEADER); const rest = items.filter((i) => !main.includes(i)); const eor = rest.at(-1)?.kind === 'eor' ? [rest.pop()!] : []; return [...rest, ...main, ...eor]; }),
    }),
    fails: ['framing.header-order'],
  },
  { mutation: m('eor-1', 'EOR 1 (image done) on every answer', { response: eorReason(1) }), fails: ['framing.eor-window-done', 'framing.eor-byte-limit'] },
  { mutation: m('eor-4', 'EOR 4 (byte limit) on every answer', { response: eorReason(4) }), fails: ['framing.eor-image-done', 'jhv.movie'] },
  { mutation: m('ignore-len', 'small len values replaced by 1 MiB', { request: rewriteField('len', (v) => (Number(v) > 0 && Number(v) < 100000 ? '1048576' : v)) }), fails: ['framing.len-respected', 'framing.eor-byte-limit', 'cache.continuation'] },
  // --- data
  {
    mutation: m('flip-precinct-byte', 'the last byte of the first precinct message of each answer flipped', { response: eachMessage((x) => isPrecinct(x) && x.length > 0, flipLast, 1) }),
    fails: [
      'syntax.basic-window', 'data.precincts', 'data.full-decodes', 'data.reduced-decodes', 'data.tiled-decodes', 'data.odd-decodes', 'data.comps', 'sessions.cnew', 'sessions.independent',
      'sessions.concurrent', 'jpx.stream', 'jpx.stream-decodes', 'jpx.multi-stream', 'jpx.linked-decodes', 'jhv.sequence', 'jhv.movie', 'jhv.v3-request', 'cache.continuation', 'cache.window-change', 'cache.model-bytes', 'data.layers',
    ],
  },
  { mutation: m('flip-main-header', 'the last byte of each main header flipped', { response: eachMessage((x) => x.classId === BIN_CLASS.MAIN_HEADER && x.length > 0, flipLast) }), fails: ['data.main-header'] },
  {
    mutation: m('flip-metadata', 'a byte of the ftyp box in metadata-bin 0 changed', { response: eachMessage((x) => x.classId === BIN_CLASS.METADATA && x.offset === 0 && x.length > 24, (x) => { const data = new Uint8Array(x.data); data[22]! ^= 0x20; return { ...x, data }; }) }),
    fails: ['data.metadata-bin0', 'jpx.metadata-boxes', 'jpx.linked-placeholders'],
  },
  { mutation: m('tile-header-junk', 'tile header bins with a stray COM marker', { response: eachMessage((x) => x.classId === BIN_CLASS.TILE_HEADER, (x) => ({ ...x, length: 6, data: Uint8Array.of(0xff, 0x64, 0, 4, 0x41, 0x42) })) }), fails: ['data.tile-headers'] },
  { mutation: m('layers-plus-one', 'layers=n served as layers=n+1', { request: rewriteField('layers', (v) => String(Number(v) + 1)) }), fails: ['data.layers'] },
  { mutation: m('comps-shift', 'comps=n served as comps=n+1', { request: rewriteField('comps', (v) => String(Number(v) + 1)) }), fails: ['data.comps'] },
  // --- window
  { mutation: m('fsiz-double', 'fsiz doubled', { request: scaleFsiz(2) }), fails: ['window.round-down', 'window.default-round-down', 'window.exact-size', 'window.low-res-offset', 'window.closest'] },
  { mutation: m('always-round-down', 'round-up and closest treated as round-down (OpenJPIP)', { request: rewriteField('fsiz', (v) => v.replace(/round-up|closest/, 'round-down')) }), fails: ['window.round-up', 'window.closest'] },
  { mutation: m('drop-last-precinct', 'the last precinct message of each answer left out', { response: (r) => mapItems(r, (items) => { const k = lastIndex(items, isPrecinct); return k < 0 ? items : items.filter((_, i) => i !== k); }) }), fails: ['window.larger-than-image', 'data.full-decodes'] },
  {
    mutation: m('shift-roff', 'the region moved by its own size and 64 more', {
      request: (req) => {
        const o = field(req.target, 'roff');
        const s = field(req.target, 'rsiz');
        if (!o || !s) return req;
        const [x, y] = o.split(',').map(Number) as [number, number];
        const [w, h] = s.split(',').map(Number) as [number, number];
        return { ...req, target: withField(req.target, 'roff', `${x + w + 64},${y + h + 64}`) };
      },
    }),
    fails: ['window.region', 'window.rescaled-region', 'window.edge-clipping', 'window.precinct-boundary', 'window.low-res-offset', 'window.tiles', 'data.region-decodes'],
  },
  { mutation: m('strip-region', 'roff and rsiz ignored', { request: (req) => ({ ...req, target: withField(withField(req.target, 'roff', undefined), 'rsiz', undefined) }) }), fails: ['window.outside'] },
  // --- cache model
  {
    mutation: m('forget-session', 'requests on a channel served as if stateless', {
      request: (req, state) => {
        const cid = field(req.target, 'cid');
        const ch = cid === undefined ? undefined : state.channels.get(cid);
        if (!ch || field(req.target, 'cclose') !== undefined) return req;
        return { ...req, target: `${ch.path}?${withField(req.target, 'cid', undefined).split('?')[1]}` };
      },
    }),
    fails: ['cache.no-resend', 'cache.no-duplicates', 'cache.window-change', 'errors.survives-bad-input', 'sessions.new-connection'],
  },
  { mutation: m('drop-first-model', 'the first descriptor of model= dropped', { request: rewriteField('model', (v) => { const parts = v.split(','); return parts.length > 1 ? parts.slice(1).join(',') : undefined; }) }), fails: ['cache.model-additive', 'cache.model-bytes', 'cache.model-codestream', 'cache.model-subtractive'] },
  // --- sessions
  { mutation: m('cclose-ignored', 'cclose answered 200 but not done', { request: (req) => (field(req.target, 'cclose') !== undefined ? jppResponse(Uint8Array.of(0, 2, 0)) : req) }), fails: ['sessions.cclose', 'sessions.cclose-star'] },
  {
    mutation: m('shared-channel', 'every cnew answered with the first channel', {
      response: (r, _req, state) => {
        const c = getHeader(r, 'jpip-cnew');
        if (!c) return r;
        const first = (state.data.get('first') as string | undefined) ?? c;
        state.data.set('first', first);
        return setHeader(r, 'JPIP-cnew', first);
      },
    }),
    fails: ['sessions.independent'],
  },
  {
    mutation: m('channel-bound-500', 'a channel used from another connection gets 500', {
      request: (req, state) => {
        const cid = field(req.target, 'cid');
        const ch = cid === undefined ? undefined : state.channels.get(cid);
        return ch && ch.connection !== req.connection ? textResponse(500, 'Internal Server Error', 'channel not found\n') : req;
      },
    }),
    fails: ['sessions.new-connection'],
  },
  { mutation: m('grant-any-transport', 'cnew=http-udp granted http', { request: rewriteField('cnew', () => 'http') }), fails: ['sessions.transport'] },
  // --- JPX
  {
    mutation: m('phld-csid-shift', 'placeholder codestream ids + 1', {
      response: eachMessage((x) => x.classId === BIN_CLASS.METADATA, (x) => {
        const data = new Uint8Array(x.data);
        const s = Buffer.from(data).toString('latin1');
        for (let i = s.indexOf('phld'); i >= 0; i = s.indexOf('phld', i + 4)) {
          const len = (data[i - 4]! << 24) | (data[i - 3]! << 16) | (data[i - 2]! << 8) | data[i - 1]!;
          data[i - 4 + len - 1]! += 1;
        }
        return { ...x, data };
      }),
    }),
    fails: ['jpx.placeholders', 'jpx.phld-layout'],
  },
  { mutation: m('phld-to-free', 'placeholders renamed to free boxes', { response: eachMessage((x) => x.classId === BIN_CLASS.METADATA, (x) => ({ ...x, data: new Uint8Array(Buffer.from(Buffer.from(x.data).toString('latin1').replaceAll('phld', 'free'), 'latin1')) })) }), fails: ['jpx.placeholders', 'jpx.linked-placeholders', 'data.metadata-bin0'] },
  { mutation: m('stream-0', 'stream= always served as stream=0', { request: rewriteField('stream', () => '0') }), fails: ['jpx.stream', 'jpx.stream-decodes', 'jpx.stream-sampled', 'jpx.multi-stream', 'jpx.stream-range', 'jpx.linked-decodes', 'framing.codestream-ids'] },
  { mutation: m('no-context', 'context= ignored', { request: rewriteField('context', () => undefined) }), fails: ['jpx.context', 'jhv.v3-request'] },
  // --- errors
  { mutation: m('errors-as-500', 'every 4xx answered 500', { response: (r) => (statusOf(r) >= 400 && statusOf(r) < 500 ? { ...r, statusLine: 'HTTP/1.1 500 Internal Server Error' } : r) }), fails: ['errors.bad-fsiz', 'errors.bad-len', 'errors.roff-without-fsiz', 'errors.not-found', 'errors.not-jpeg2000', 'errors.method'] },
  { mutation: m('errors-as-200', 'every 4xx answered 200 with an empty JPP-stream', { response: (r) => (statusOf(r) >= 400 && statusOf(r) < 500 ? jppResponse(Uint8Array.of(0, 2, 0)) : r) }), fails: ['errors.unknown-cid', 'errors.bad-fsiz', 'errors.not-found', 'sessions.cclose'] },
  { mutation: m('errors-as-jpp', 'error answers labelled image/jpp-stream', { response: (r) => (statusOf(r) >= 400 ? setHeader(r, 'Content-Type', 'image/jpp-stream') : r) }), fails: ['errors.error-not-jpp'] },
  { mutation: m('traversal', '../ and /etc paths served from the file system', { request: (req) => (/\.\.|%2e%2e|etc\/hostname|etc%2Fhostname/i.test(req.target) ? { statusLine: 'HTTP/1.1 200 OK', headers: [['Content-Type', 'application/octet-stream']], body: new TextEncoder().encode('buildhost\n'), framing: 'length', gzip: false } : req) }), fails: ['errors.traversal-path', 'errors.traversal-target'] },
  { mutation: m('garbage-hang', 'malformed requests never answered', { hangOnGarbage: true }), fails: ['errors.malformed-http'] },
  { mutation: m('long-request-drop', 'requests over 8 KB dropped', { request: (req) => (req.target.length > 8192 ? 'drop' : req) }), fails: ['errors.long-request'] },
  // --- request syntax
  {
    mutation: m('fragile-syntax', 'raw brackets, %-escapes, unknown fields, a missing len, POST and target= answered 500', {
      request: (req) => {
        const q = req.target.slice(pathOf(req.target).length + 1);
        const fragile = /[[\]<>]/.test(q) || /%2C/i.test(q) || /(^|&)_=/.test(q) || (q !== '' && !/(^|&)len=/.test(q) && !/cclose=/.test(q)) || req.method === 'POST' || /(^|&)target=/.test(q);
        return fragile ? textResponse(500, 'Internal Server Error', 'unexpected request\n') : req;
      },
    }),
    fails: ['syntax.raw-brackets', 'syntax.percent-encoding', 'syntax.unknown-field', 'syntax.no-len', 'syntax.post', 'syntax.target-field'],
  },
  { mutation: m('order-sensitive', 'fsiz ignored when len comes before it', { request: (req) => { const q = req.target; const l = q.indexOf('len='); const f = q.indexOf('fsiz='); return l >= 0 && f > l ? { ...req, target: withField(q, 'fsiz', undefined) } : req; } }), fails: ['syntax.field-order'] },
  { mutation: m('len0-ignored', 'len=0 served as len=1 MiB', { request: rewriteField('len', (v) => (v === '0' ? '1048576' : v)) }), fails: ['syntax.len-zero'] },
  { mutation: m('cnew-no-path', 'JPIP-cnew without path=', { response: (r) => { const c = getHeader(r, 'jpip-cnew'); return c ? setHeader(r, 'JPIP-cnew', c.replace(/,?path=[^,]*/, '')) : r; } }), fails: ['jhv.cnew-path', 'jhv.sequence'] },
  { mutation: m('encoding-br', 'gzip bodies labelled Content-Encoding: br', { response: (r) => (getHeader(r, 'content-encoding') === 'gzip' ? setHeader(r, 'Content-Encoding', 'br') : r) }), fails: ['jhv.encoding'] },
];

function lastIndex<T>(a: readonly T[], pred: (x: T) => boolean): number {
  for (let i = a.length - 1; i >= 0; i--) if (pred(a[i]!)) return i;
  return -1;
}

/** The messages of a JPP body (for mutations that write raw bytes). */
function mapItemsRaw(r: ProxyResponse): DecodedItem[] {
  let out: DecodedItem[] = [];
  mapItems(r, (items) => (out = items));
  return out;
}

const mutations = suite('conform: every check fails against a server broken for it');
let srv: JpipServer;
let upstream = '';

mutations.before(async () => {
  srv = createJpipServer({ root: FIXTURES, port: 0 });
  upstream = await srv.listen();
});
mutations.after(async () => {
  await srv.close();
});

mutations('every check is broken by at least one mutation', () => {
  const covered = new Set(TABLE.flatMap((r) => r.fails));
  const missing = CHECKS.map((c) => c.id).filter((id) => !covered.has(id));
  assert.equal(missing, [], `checks no mutation breaks: ${missing.join(', ')}`);
  const unknown = [...covered].filter((id) => !CHECKS.some((c) => c.id === id));
  assert.equal(unknown, [], `unknown ids in the table: ${unknown.join(', ')}`);
  assert.is(new Set(TABLE.map((r) => r.mutation.id)).size, TABLE.length, 'mutation ids are unique');
});

mutations('through a transparent proxy every check is OK (the proxy itself breaks nothing)', async () => {
  const proxy = await startMutationProxy(upstream, IDENTITY);
  try {
    const report = await runConformance({ url: proxy.url, profile: 'full', timeoutMs: 4000, concurrency: 8 });
    const bad = report.results.filter((r) => r.status !== STATUS.OK);
    assert.equal(bad.map((r) => `${r.id}: ${r.status} ${r.message}`), []);
  } finally {
    await proxy.close();
  }
});

for (const row of TABLE) {
  mutations(`${row.mutation.id} (${row.mutation.description}) fails ${row.fails.join(', ')}`, async () => {
    const proxy = await startMutationProxy(upstream, row.mutation, { timeoutMs: 4000 });
    try {
      const report = await runConformance({ url: proxy.url, profile: 'full', only: row.fails, timeoutMs: 1500, checkTimeoutMs: 8000, concurrency: 8 });
      const notFailed = report.results.filter((r) => r.status !== STATUS.FAILED);
      assert.equal(notFailed.map((r) => `${r.id}: ${r.status} ${r.message}`), [], `mutation ${row.mutation.id}`);
      assert.is(report.passed, false);
    } finally {
      await proxy.close();
    }
  });
}

mutations('a server that never answers gives FAILED checks in bounded time', async () => {
  const proxy = await startMutationProxy(upstream, { id: 'hang', description: 'never answers', request: () => 'hang', hangOnGarbage: true });
  try {
    const t0 = Date.now();
    const report = await runConformance({ url: proxy.url, profile: 'full', timeoutMs: 250, checkTimeoutMs: 2000, concurrency: 16 });
    const elapsed = Date.now() - t0;
    assert.ok(report.results.length === CHECKS.length);
    const notFailed = report.results.filter((r) => r.status !== STATUS.FAILED);
    assert.equal(notFailed.map((r) => `${r.id}: ${r.status}`), []);
    assert.ok(elapsed < 15000, `took ${elapsed} ms`);
    assert.match(report.results[0]!.message, /no answer within 250 ms/);
  } finally {
    await proxy.close();
  }
});

mutations.run();
