import { bodyHint, expectStream } from '../client.js';
import type { CheckContext } from '../context.js';
import type { Role } from '../fixtures.js';
import { header } from '../http.js';
import { expect, fail, nonStrict, ok, unimplemented, type Check } from '../types.js';
import { allMessages, codestreamsOf, compareMetadata, decodeHeld, expectOriginalBytes, expectSamePixels, fetchWindow, fullFrame, heldMetadata, metadataBoxes, readPlaceholder, win } from './helpers.js';

/** JPX and linked JPX: codestreams chosen by stream= and context=, placeholders in metadata-bin 0. */

async function metadataOf(ctx: CheckContext, role: Role): Promise<Uint8Array> {
  const { session } = await ctx.session(role, { len: 0 });
  await session.untilDone({ metareq: { groups: [{ boxes: [{ boxType: '*', priority: false }] }], metadataOnly: true }, len: 1 << 20 }, 20, 'metadata');
  return heldMetadata(session);
}

const streamFields = (from: number, to = from) => ({ stream: [{ from, to, step: 1 }] });

export const jpxChecks: Check[] = [
  {
    id: 'jpx.placeholders',
    group: 'jpx',
    title: 'Metadata-bin 0 of a JPX has one placeholder per codestream, in order',
    why: 'Clients count frames and map compositing layers to codestreams through the phld boxes (esajpip writes one per jp2c; flag 4 = "this is codestream CSID").',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const orig = ctx.original('jpx');
      const boxes = metadataBoxes(await metadataOf(ctx, 'jpx'));
      const ph = boxes.filter((b) => b.type === 'phld');
      expect(!boxes.some((b) => b.type === 'jp2c'), 'a jp2c box (the codestream itself) is inside metadata-bin 0');
      expect(ph.length >= orig.codestreamCount, `${ph.length} placeholders for ${orig.codestreamCount} codestreams`);
      const ids = ph.map((b) => readPlaceholder(b.bytes)).filter((p) => (p.flags & 4) !== 0).map((p) => p.csid);
      if (ids.length === 0) return nonStrict(`${ph.length} placeholders, none in the full form with a codestream id (OpenJPIP writes a truncated form)`);
      expect(ids.length === orig.codestreamCount, `${ids.length} codestream placeholders for ${orig.codestreamCount} codestreams`);
      expect(ids.every((id, i) => id === i), `codestream ids ${ids.join(', ')} in the placeholders, 0..${orig.codestreamCount - 1} in file order expected`);
      return ok(`${ids.length} placeholders, codestreams ${ids.join(', ')}`);
    },
  },
  {
    id: 'jpx.phld-layout',
    group: 'jpx',
    title: 'Placeholders carry the original box header',
    why: 'A phld holds Flags, OrigID, the original box header (OrigBH), EquivID/EquivBH and CSID; a client rebuilding the file needs OrigBH to be the codestream box\'s real header.',
    profiles: ['full'],
    async run(ctx) {
      const orig = ctx.original('jpx');
      const want = orig.boxes().filter((b) => b.codestream !== undefined);
      const ph = metadataBoxes(await metadataOf(ctx, 'jpx')).filter((b) => b.type === 'phld').map((b) => readPlaceholder(b.bytes)).filter((p) => (p.flags & 4) !== 0);
      if (ph.length === 0) return nonStrict('no full-form codestream placeholders to check');
      for (const [i, w] of want.entries()) {
        const p = ph.find((x) => x.csid === w.codestream);
        expect(p, `no placeholder for codestream ${w.codestream}`);
        const head = w.bytes.subarray(0, w.headerLength);
        expect(p.origHeader.length === head.length && p.origHeader.every((b, k) => b === head[k]), `placeholder ${i}: OrigBH ${Buffer.from(p.origHeader).toString('hex')} is not the original box header ${Buffer.from(head).toString('hex')}`);
      }
      return ok(`${want.length} placeholders with the original headers`);
    },
  },
  {
    id: 'jpx.metadata-boxes',
    group: 'jpx',
    title: 'The JPX\'s other boxes are in metadata-bin 0 byte for byte',
    why: 'Compositing layer headers (jplh), codestream headers (jpch) and the file type must reach the client unchanged to lay out the frames.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const problem = compareMetadata(await metadataOf(ctx, 'jpx'), ctx.original('jpx').boxes());
      if (problem) fail(problem);
      return ok('as in the file');
    },
  },
  {
    id: 'jpx.stream',
    group: 'jpx',
    title: 'stream=i sends codestream i only',
    why: 'JHelioviewer asks for each frame of a movie with stream=<frame>; data of other frames wastes the budget or lands in the wrong frame.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { responses } = await fetchWindow(ctx, 'jpx', { ...streamFields(1), ...win(32, 32) }, 1 << 20);
      const msgs = allMessages(responses);
      const cs = codestreamsOf(msgs);
      expect(cs.length === 1 && cs[0] === 1, `stream=1 brought codestreams ${cs.join(', ') || 'none'}`);
      expectOriginalBytes(msgs, ctx.original('jpx'), new Set([1]));
      return ok('codestream 1 only');
    },
  },
  {
    id: 'jpx.stream-decodes',
    group: 'jpx',
    title: 'A frame of a JPX decodes exactly',
    why: 'The frame a movie viewer shows must be the file\'s frame.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const exp = ctx.expected('jpx', 2);
      const { session } = await fetchWindow(ctx, 'jpx', { ...streamFields(2), ...fullFrame(exp) }, 1500);
      expectSamePixels(await decodeHeld(session, 2), await exp.decoded(), 'frame 2');
      return ok('frame 2 exact');
    },
  },
  {
    id: 'jpx.stream-sampled',
    group: 'jpx',
    title: 'stream=0-2:2 means codestreams 0 and 2',
    why: 'Sampled ranges (a-b:step) skim a movie; esajpip reads a:b as a range instead (non-standard).',
    profiles: ['full'],
    async run(ctx) {
      const { first } = await ctx.session('jpx', { stream: [{ from: 0, to: 2, step: 2 }], ...win(16, 16), len: 1 << 20 });
      expectStream(first, 'stream=0-2:2');
      const cs = codestreamsOf(first.messages);
      expect(cs.join(',') === '0,2', `stream=0-2:2 brought codestreams ${cs.join(', ') || 'none'}`);
      return ok('0 and 2');
    },
  },
  {
    id: 'jpx.multi-stream',
    group: 'jpx',
    title: 'Several codestreams in one request all complete and decode',
    why: 'Movie players ask for several frames at once (JHelioviewer v3: context=jpxl<0-(N-1)>); the server interleaves them and each must come out whole.',
    profiles: ['full'],
    async run(ctx) {
      const orig = ctx.original('jpx');
      const n = orig.codestreamCount;
      const { session, responses } = await fetchWindow(ctx, 'jpx', { ...streamFields(0, n - 1), ...fullFrame(orig.codestream(0)) }, 3000);
      for (let i = 0; i < n; i++) expectSamePixels(await decodeHeld(session, i), await orig.codestream(i).decoded(), `codestream ${i}`);
      return ok(`${n} codestreams exact after ${responses.length} answers`);
    },
  },
  {
    id: 'jpx.context',
    group: 'jpx',
    title: 'context=jpxl<a-b> serves the compositing layers\' codestreams',
    why: 'JHelioviewer v3 and jpip.js name frames by compositing layer; in these files layer i is codestream i. Kakadu answers JPIP-context with the expansion.',
    profiles: ['full'],
    async run(ctx) {
      const { session } = await ctx.session('jpx', { len: 0 });
      const r = await session.requestRaw('context=jpxl<1-2>&fsiz=16,16,round-down&len=1048576');
      if (r.status === 501) return unimplemented(`context= answered 501${bodyHint(r.raw)}`);
      expectStream(r, 'context=jpxl<1-2>');
      const cs = codestreamsOf(r.messages);
      expect(cs.join(',') === '1,2', `context=jpxl<1-2> brought codestreams ${cs.join(', ') || 'none'}`);
      const h = header(r.raw, 'jpip-context');
      if (h === undefined) return nonStrict('codestreams 1 and 2, but no JPIP-context header');
      return ok(`JPIP-context: ${h}`);
    },
  },
  {
    id: 'jpx.stream-range',
    group: 'jpx',
    title: 'stream= past the last codestream gets no other frame\'s data',
    why: 'A movie that lost frames on the server must not answer frame 99 with frame 0: refusing (400) or sending nothing are both safe.',
    profiles: ['full'],
    async run(ctx) {
      const r = await ctx.ask('jpx', { ...streamFields(99), ...win(16, 16), len: 1 << 20 });
      if (r.status >= 400 && r.status < 500) return ok(`refused with ${r.status}`);
      if (r.status !== 200) fail(`stream=99 answered ${r.status}${bodyHint(r.raw)}`);
      expectStream(r, 'stream=99');
      const cs = codestreamsOf(r.messages);
      expect(cs.length === 0, `stream=99 brought data of codestreams ${cs.join(', ')}`);
      return nonStrict('200 with no image data (400 would tell the client)');
    },
  },
  {
    id: 'jpx.linked-placeholders',
    group: 'jpx',
    title: 'Metadata-bin 0 of a linked JPX has placeholders for its fragment tables',
    why: 'In a linked JPX (kdu_merge -links) each frame is an ftbl pointing at another file; esajpip replaces each ftbl with a phld so clients never follow links themselves.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const orig = ctx.original('linked');
      const bin0 = await metadataOf(ctx, 'linked');
      const boxes = metadataBoxes(bin0);
      expect(!boxes.some((b) => b.type === 'ftbl'), 'an ftbl box (a link to another file) is inside metadata-bin 0');
      const ph = boxes.filter((b) => b.type === 'phld');
      expect(ph.length >= orig.codestreamCount, `${ph.length} placeholders for ${orig.codestreamCount} linked codestreams`);
      const problem = compareMetadata(bin0, orig.boxes());
      if (problem) fail(problem);
      return ok(`${orig.codestreamCount} placeholders`);
    },
  },
  {
    id: 'jpx.linked-decodes',
    group: 'jpx',
    title: 'A frame of a linked JPX is served from the linked file and decodes exactly',
    why: 'Helioviewer\'s movies are linked JPX files: the server must resolve the link (relative, %-escaped names) and serve the frame\'s codestream.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const exp = ctx.expected('linked', 1);
      const { session, responses } = await fetchWindow(ctx, 'linked', { ...streamFields(1), ...fullFrame(exp) }, 1500);
      expectOriginalBytes(allMessages(responses), ctx.original('linked'), new Set([1]));
      expectSamePixels(await decodeHeld(session, 1), await exp.decoded(), 'linked frame 1');
      return ok('linked frame 1 exact');
    },
  },
];

