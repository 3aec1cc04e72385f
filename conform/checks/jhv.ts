import { EOR } from '../../jpip/constants.js';
import { bodyHint, expectStream, parseCnew, Session, targetUrl, toJpp } from '../client.js';
import type { CheckContext } from '../context.js';
import { header } from '../http.js';
import { expect, fail, ok, unimplemented, type Check } from '../types.js';
import { decodeHeld, expectSamePixels } from './helpers.js';

/** JHelioviewer compatibility: its exact requests, headers and loops. */

/** The request headers JHelioviewer sends (HTTPSocket), Host added by the client. */
export const JHV_HEADERS: Array<[string, string]> = [
  ['User-Agent', 'JHV/SWHV-4.5.0 (conformance)'],
  ['Connection', 'keep-alive'],
  ['Accept-Encoding', 'gzip'],
  ['Cache-Control', 'no-cache'],
];

/** Opens a session the way JHelioviewer does (cnew=http&type=jpp-stream&tid=0&len=512). */
async function jhvOpen(ctx: CheckContext, role: 'linked' | 'jpx'): Promise<Session> {
  const s = new Session(ctx.probe, ctx.target(role), JHV_HEADERS);
  const r = await s.openRaw('cnew=http&type=jpp-stream&tid=0&len=512');
  expectStream(r, 'cnew=http&type=jpp-stream&tid=0&len=512');
  const cnew = header(r.raw, 'jpip-cnew');
  expect(cnew !== undefined, 'no JPIP-cnew');
  const info = parseCnew(cnew);
  expect(info && info.path && info.transport === 'http', `JPIP-cnew ${JSON.stringify(cnew)}: JHelioviewer needs cid, path and transport=http`);
  return s;
}

/** Repeats a raw request until EOR 1 or 2, as JHelioviewer does. */
async function untilDoneRaw(s: Session, query: string, max: number, what: string): Promise<number> {
  for (let i = 1; i <= max; i++) {
    const r = expectStream(await s.requestRaw(query), `${what}, round ${i}`);
    expect(r.raw.statusLine === 'HTTP/1.1 200 OK', `${what}: status line ${JSON.stringify(r.raw.statusLine)}`);
    expect(header(r.raw, 'content-type') === 'image/jpp-stream', `${what}: Content-Type ${header(r.raw, 'content-type')}`);
    if (r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE) return i;
  }
  fail(`${what}: no EOR 1 or 2 after ${max} requests (JHelioviewer would loop)`);
}

export const jhvChecks: Check[] = [
  {
    id: 'jhv.sequence',
    group: 'jhv',
    title: 'JHelioviewer\'s request sequence on a linked movie works end to end',
    why: 'What JHelioviewer-SWHV sends, byte for byte: cnew with tid=0 and len=512, metareq=[*]!! until done, a 64x64 priming view, each frame at full size with fsiz,closest/rsiz/roff, then cclose without cid.',
    profiles: ['jhv', 'full'],
    async run(ctx) {
      const orig = ctx.original('linked');
      const s = await jhvOpen(ctx, 'linked');
      await untilDoneRaw(s, 'stream=0&metareq=[*]!!&len=2000000', 20, 'metareq');
      await untilDoneRaw(s, 'stream=0&fsiz=64,64,closest&rsiz=64,64&roff=0,0&len=2097152', 50, 'the 64x64 view');
      for (let i = 0; i < orig.codestreamCount; i++) {
        const exp = orig.codestream(i);
        const { width: w, height: h } = exp.frameSize(0);
        await untilDoneRaw(s, `stream=${i}&fsiz=${w},${h},closest&rsiz=${w},${h}&roff=0,0&len=2097152`, 50, `frame ${i}`);
        expectSamePixels(await decodeHeld(s, i), await exp.decoded(), `frame ${i}`);
      }
      const bye = await s.requestRaw(`cclose=${s.cid}&len=0`, { noCid: true });
      expect(bye.status === 200, `cclose=<cid>&len=0 answered ${bye.status}${bodyHint(bye.raw)}`);
      expect(s.conn.connects === 1, `the server closed the connection ${s.conn.connects - 1} times during the sequence`);
      return ok(`${orig.codestreamCount} frames exact on one connection`);
    },
  },
  {
    id: 'jhv.cnew-path',
    group: 'jhv',
    title: 'JPIP-cnew names the path for the channel\'s requests',
    why: 'JHelioviewer sends later requests to "/" + path; OpenJPIP omits path and JHelioviewer then requests "/null".',
    profiles: ['jhv', 'full'],
    async run(ctx) {
      const url = targetUrl(ctx.addr, ctx.target('linked'), 'cnew=http&type=jpp-stream&tid=0&len=512');
      const r = toJpp(await ctx.probe.raw(url, { headers: JHV_HEADERS }), url);
      expectStream(r, 'cnew');
      const info = parseCnew(header(r.raw, 'jpip-cnew') ?? '');
      expect(info, `JPIP-cnew ${JSON.stringify(header(r.raw, 'jpip-cnew'))} has no cid`);
      expect(info.path !== undefined && info.path !== '', `JPIP-cnew ${JSON.stringify(header(r.raw, 'jpip-cnew'))} has no path=`);
      return ok(`path=${info.path}`);
    },
  },
  {
    id: 'jhv.encoding',
    group: 'jhv',
    title: 'With JHelioviewer\'s headers, any compression is gzip or deflate and valid',
    why: 'JHelioviewer sends Accept-Encoding: gzip and decodes gzip and deflate only.',
    profiles: ['jhv', 'full'],
    async run(ctx) {
      const s = await jhvOpen(ctx, 'linked');
      const seen = new Set<string>();
      for (const q of ['stream=0&metareq=[*]!!&len=2000000', 'stream=0&fsiz=64,64,closest&rsiz=64,64&roff=0,0&len=2097152']) {
        const r = expectStream(await s.requestRaw(q), q);
        const ce = (header(r.raw, 'content-encoding') ?? 'identity').toLowerCase();
        expect(['identity', 'gzip', 'deflate'].includes(ce), `Content-Encoding: ${ce}`);
        expect(r.raw.framingError === undefined, r.raw.framingError ?? '');
        seen.add(ce);
      }
      return ok([...seen].join(', '));
    },
  },
  {
    id: 'jhv.movie',
    group: 'jhv',
    title: 'Movie mode: round-robin over frames until each says done',
    why: 'JHelioviewer\'s movie mode asks each incomplete frame in turn (small budgets here), dropping a frame after EOR 1 or 2; per-frame cache state must hold across the interleaving.',
    profiles: ['jhv', 'full'],
    async run(ctx) {
      const orig = ctx.original('jpx');
      const s = await jhvOpen(ctx, 'jpx');
      const n = orig.codestreamCount;
      const open = new Set(Array.from({ length: n }, (_, i) => i));
      let rounds = 0;
      while (open.size > 0) {
        for (const i of [...open]) {
          if (++rounds > 60 * n) fail(`frames ${[...open].join(', ')} not done after ${rounds} requests`);
          const { width: w, height: h } = orig.codestream(i).frameSize(0);
          const r = expectStream(await s.requestRaw(`stream=${i}&fsiz=${w},${h},closest&rsiz=${w},${h}&roff=0,0&len=900`), `frame ${i}`);
          if (r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE) open.delete(i);
          else if (r.eor === undefined) fail(`frame ${i}: an answer without EOR`);
        }
      }
      for (let i = 0; i < n; i++) expectSamePixels(await decodeHeld(s, i), await orig.codestream(i).decoded(), `frame ${i}`);
      return ok(`${n} frames exact after ${rounds} requests`);
    },
  },
  {
    id: 'jhv.v3-request',
    group: 'jhv',
    title: 'JHelioviewer 3\'s single request for a whole movie works',
    why: 'JHelioviewer 3 opens a fresh connection per download with context=jpxl<0-(N-1)>, layers, fsiz/rsiz/roff, cnew and len=2147483647 in Hashtable order.',
    profiles: ['full'],
    async run(ctx) {
      const orig = ctx.original('jpx');
      const n = orig.codestreamCount;
      const exp = orig.codestream(0);
      const { width: w, height: h } = exp.frameSize(0);
      const q = `type=jpp-stream&context=jpxl<0-${n - 1}>&layers=${exp.layers}&fsiz=${w},${h},closest&rsiz=${w},${h}&roff=0,0&cnew=http&len=2147483647`;
      const url = targetUrl(ctx.addr, ctx.target('jpx'), q);
      const r = toJpp(await ctx.probe.raw(url), url);
      if (r.status === 501) return unimplemented(`answered 501${bodyHint(r.raw)}`);
      expectStream(r, 'the v3 request');
      const s = new Session(ctx.probe, ctx.target('jpx'));
      s.holder.store.addItems(r.items);
      s.conn.destroy();
      for (let i = 0; i < n; i++) expectSamePixels(await decodeHeld(s, i), await orig.codestream(i).decoded(), `frame ${i}`);
      return ok(`${n} frames in one answer`);
    },
  },
];
