import { BIN_CLASS, EOR } from '../../jpip/constants.js';
import { storeClassOf } from '../../jpip/databins.js';
import { expectStream, type JppResponse } from '../client.js';
import { expect, fail, failed, nonStrict, ok, unimplemented, type Check } from '../types.js';
import { allMessages, decodeHeld, describe, expectOriginalBytes, expectSamePixels, fetchWindow, fullFrame, win, type Msg } from './helpers.js';

/** Cache model: the server keeps track of what the client holds, and of what it says it holds. */

const key = (m: Msg): string => `${m.codestream}/${storeClassOf(m.classId)}/${m.binId}`;

/** The first byte range received twice in a list of responses (in order), or undefined. */
function firstRepeat(responses: readonly JppResponse[]): string | undefined {
  const held = new Map<string, Array<[number, number]>>();
  for (const [i, r] of responses.entries()) {
    for (const m of r.messages) {
      if (m.length === 0) continue;
      const spans = held.get(key(m)) ?? [];
      for (const [a, b] of spans) {
        if (m.offset < b && a < m.offset + m.length) return `answer ${i + 1}: ${describe(m)} repeats bytes [${Math.max(a, m.offset)}, ${Math.min(b, m.offset + m.length)}) already sent`;
      }
      spans.push([m.offset, m.offset + m.length]);
      held.set(key(m), spans);
    }
  }
  return undefined;
}

/** Data bytes in a response. */
const dataBytes = (r: JppResponse): number => r.messages.reduce((n, m) => n + m.length, 0);

export const cacheChecks: Check[] = [
  {
    id: 'cache.no-resend',
    group: 'cache',
    title: 'A window the client already holds is not sent again',
    why: 'The session\'s cache model is the point of JPIP sessions: esajpip answers a repeated complete window with a bare EOR (00 02 00).',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const fields = win(64, 64);
      const { session } = await fetchWindow(ctx, 'frame', fields, 1 << 20);
      const again = expectStream(await session.request({ ...fields, len: 1 << 20 }), 'the same window again');
      expect(dataBytes(again) === 0, `${dataBytes(again)} bytes sent again (${again.messages.filter((m) => m.length > 0).slice(0, 2).map(describe).join('; ')})`);
      expect(again.eor === EOR.WINDOW_DONE || again.eor === EOR.IMAGE_DONE, `EOR ${again.eor ?? 'missing'} for a window the client holds`);
      return ok(`${again.raw.body.length} bytes (no data)`);
    },
  },
  {
    id: 'cache.no-duplicates',
    group: 'cache',
    title: 'No byte of a data-bin is sent twice in a session',
    why: 'Within an answer and across the answers of a session every byte should come once; duplicates waste the client\'s len budget.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const { responses } = await fetchWindow(ctx, 'tiled', fullFrame(ctx.expected('tiled')), 1500);
      const rep = firstRepeat(responses);
      if (rep) fail(rep);
      return ok(`${responses.length} answers, no repeats`);
    },
  },
  {
    id: 'cache.continuation',
    group: 'cache',
    title: 'Repeating a byte-limited request continues where the last answer stopped',
    why: 'JHelioviewer repeats the same request until EOR 1 or 2; each answer must carry on (esajpip keeps a cursor per window), and the pieces must make the whole window.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { session, responses } = await fetchWindow(ctx, 'frame', fullFrame(exp), 400, 100);
      expect(responses.length >= 3, `len=400 should need several answers for ${exp.src.size} bytes, it took ${responses.length}`);
      const rep = firstRepeat(responses);
      if (rep) fail(rep);
      // Continuation: each message of a bin starts where the client's contiguous data ends.
      const heldUpTo = new Map<string, number>();
      let gaps = 0;
      for (const m of allMessages(responses)) {
        const k = key(m);
        const have = heldUpTo.get(k) ?? 0;
        if (m.offset > have) gaps++;
        heldUpTo.set(k, Math.max(have, m.offset + m.length));
      }
      expectSamePixels(await decodeHeld(session, 0), await exp.decoded(), 'the window fetched in pieces');
      if (gaps > 0) return nonStrict(`${gaps} messages start past the end of what the client held (holes filled later)`);
      return ok(`${responses.length} answers, each continuing the last`);
    },
  },
  {
    id: 'cache.window-change',
    group: 'cache',
    title: 'A new window sends only what the previous ones did not',
    why: 'Zooming in after a lower-resolution view must reuse the lower resolutions the client holds (JHelioviewer primes with a 64x64 view, then asks for the frame).',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { session, responses } = await fetchWindow(ctx, 'frame', win(exp.frameSize(1).width, exp.frameSize(1).height), 1 << 20);
      const more = await session.untilDone({ ...fullFrame(exp), len: 1 << 20 }, 50, 'the full window');
      const rep = firstRepeat([...responses, ...more]);
      if (rep) fail(`after the half-size window, the full one: ${rep}`);
      expectSamePixels(await decodeHeld(session, 0), await exp.decoded(), 'the full window');
      return ok('only the new precincts came');
    },
  },
  {
    id: 'cache.model-additive',
    group: 'cache',
    title: 'model= tells the server what the client already holds',
    why: 'A client with a cache from an earlier session (JHelioviewer\'s JPIPCacheManager) lists what it has; esajpip adds model= to its cache model.',
    profiles: ['full'],
    async run(ctx) {
      const { first } = await ctx.session('frame', { ...win(32, 32), len: 1 << 20, model: [{ subtract: false, bin: { kind: 'main' } }, { subtract: false, bin: { kind: 'metadata', id: 0 } }] });
      expectStream(first, 'cnew with model=Hm,M0');
      const main = first.messages.some((m) => m.classId === BIN_CLASS.MAIN_HEADER && m.length > 0);
      const meta = first.messages.some((m) => m.classId === BIN_CLASS.METADATA && m.binId === 0 && m.length > 0);
      if (main && meta) return unimplemented('model=Hm,M0 is ignored: the main header and metadata-bin 0 were sent');
      expect(!main && !meta, `model=Hm,M0 is half honoured: the ${main ? 'main header' : 'metadata-bin 0'} was sent anyway`);
      expect(first.messages.some((m) => m.classId === BIN_CLASS.PRECINCT), 'no precinct data either');
      return ok('neither the main header nor metadata-bin 0 was sent');
    },
  },
  {
    id: 'cache.model-bytes',
    group: 'cache',
    title: 'model=P<id>:<n> makes the server send that precinct from byte n',
    why: 'The byte-count form is how a client describes a partly received bin; the server must resume there, not from 0 and not further on.',
    profiles: ['full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const id = exp.allPrecinctIds().find((i) => (exp.precinct(i)?.layerEnds.length ?? 0) >= 2 && exp.precinct(i)!.layerEnds[0]! > 0)!;
      const n = exp.precinct(id)!.layerEnds[0]!;
      const { first } = await ctx.session('frame', { ...fullFrame(exp), len: 1 << 20, model: [{ subtract: false, bin: { kind: 'main' } }, { subtract: false, bin: { kind: 'precinct', id }, limit: { bytes: n } }] });
      expectStream(first, `cnew with model=Hm,P${id}:${n}`);
      const main = first.messages.some((m) => m.classId === BIN_CLASS.MAIN_HEADER && m.length > 0);
      const p = first.messages.filter((m) => (m.classId === BIN_CLASS.PRECINCT || m.classId === BIN_CLASS.EXTENDED_PRECINCT) && m.binId === id && m.length > 0);
      const fromZero = p.some((m) => m.offset < n);
      if (main && fromZero) return unimplemented(`model=Hm,P${id}:${n} is ignored`);
      expect(!main, `model=Hm,P${id}:${n}: the main header was sent anyway`);
      expect(!fromZero, `model=Hm,P${id}:${n}: precinct ${id} was sent from byte ${Math.min(...p.map((m) => m.offset))}`);
      expect(p.length > 0 && Math.min(...p.map((m) => m.offset)) === n, `precinct ${id} was not resumed at byte ${n}`);
      expectOriginalBytes(first.messages, ctx.original('frame'));
      return ok(`precinct ${id} resumed at byte ${n}`);
    },
  },
  {
    id: 'cache.model-codestream',
    group: 'cache',
    title: 'model= [a-b] qualifiers apply descriptors to those codestreams only',
    why: 'JHelioviewer v3 writes models like [0-9],Hm,[3-5],P12:345; a qualifier applied to the wrong codestreams starves or floods frames of a movie.',
    profiles: ['full'],
    async run(ctx) {
      const { first } = await ctx.session('jpx', {
        stream: [{ from: 0, to: 1, step: 1 }],
        ...win(32, 32),
        len: 1 << 20,
        model: [
          { subtract: false, codestreams: [{ from: 1, to: 1, step: 1 }], bin: { kind: 'main' } },
          { subtract: false, codestreams: [{ from: 1, to: 1, step: 1 }], bin: { kind: 'precinct', id: 0 } },
        ],
      });
      expectStream(first, 'stream=0-1 with model=[1-1],Hm,P0');
      const has = (cs: number, cls: number, id: number): boolean => first.messages.some((m) => m.codestream === cs && m.classId === cls && m.binId === id && m.length > 0);
      const got = { m0: has(0, BIN_CLASS.MAIN_HEADER, 0), p0: has(0, BIN_CLASS.PRECINCT, 0), m1: has(1, BIN_CLASS.MAIN_HEADER, 0), p1: has(1, BIN_CLASS.PRECINCT, 0) };
      if (got.m0 && got.p0 && got.m1 && got.p1) return unimplemented('model= is ignored');
      expect(got.m0 && got.p0, `codestream 0 lost its ${got.m0 ? 'precinct 0' : 'main header'}: the qualifier [1-1] was not applied`);
      expect(!got.m1 && !got.p1, `codestream 1's ${got.m1 ? 'main header' : 'precinct 0'} was sent although the model lists it`);
      return ok('[1-1] applied to codestream 1 only');
    },
  },
  {
    id: 'cache.model-subtractive',
    group: 'cache',
    title: 'A subtractive model (-Hm, -P<id>) makes the server send those bins again',
    why: 'A client that evicted data tells the server so with "-"; without it the server believes the client still holds the bins and the view stays broken. esajpip rejects the form.',
    profiles: ['full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { session } = await fetchWindow(ctx, 'frame', fullFrame(exp), 1 << 20);
      const id = exp.allPrecinctIds()[0]!;
      const r = await session.request({ ...fullFrame(exp), len: 1 << 20, model: [{ subtract: true, bin: { kind: 'precinct', id } }, { subtract: true, bin: { kind: 'main' } }] });
      if (r.status === 400 || r.status === 501) return unimplemented(`model=-P${id},-Hm answered ${r.status}`);
      expectStream(r, `model=-P${id},-Hm`);
      const main = r.messages.some((m) => m.classId === BIN_CLASS.MAIN_HEADER && m.offset === 0 && m.complete);
      const prec = r.messages.some((m) => m.classId === BIN_CLASS.PRECINCT && m.binId === id && m.offset === 0);
      if (!main && !prec) return unimplemented(`model=-P${id},-Hm is ignored: nothing was sent again`);
      expect(main && prec, `model=-P${id},-Hm is half honoured: only the ${main ? 'main header' : `precinct ${id}`} came again`);
      const others = r.messages.filter((m) => m.length > 0 && m.classId !== BIN_CLASS.MAIN_HEADER && !(m.classId === BIN_CLASS.PRECINCT && m.binId === id));
      if (others.length > 0) return failed(`besides the two bins, ${others.length} others were sent again (${describe(others[0]!)})`);
      return ok('exactly the two bins came again');
    },
  },
];
