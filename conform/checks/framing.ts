import { BIN_CLASS, EOR } from '../../jpip/constants.js';
import { expectStream, type JppResponse } from '../client.js';
import type { CheckContext } from '../context.js';
import { JPP_CLASSES } from '../stream.js';
import { expect, fail, failed, nonStrict, ok, type Check } from '../types.js';
import { describe, fullFrame, win } from './helpers.js';

/** JPP-stream framing: messages, VBAS, classes, codestream numbers, completeness, EOR. */

/**
 * A sample of the answers a server gives: a window fetched in small pieces
 * (byte-limited answers, then the one that finishes), the same window again
 * (nothing left), metadata only, and a window over the codestreams of a JPX.
 */
async function sample(ctx: CheckContext): Promise<{ label: string; r: JppResponse }[]> {
  const out: { label: string; r: JppResponse }[] = [];
  const fields = { ...fullFrame(ctx.expected('frame')), len: 700 };
  const { session, first } = await ctx.session('frame', fields);
  out.push({ label: 'the first answer of a session', r: expectStream(first, 'first answer') });
  if (first.eor !== EOR.WINDOW_DONE && first.eor !== EOR.IMAGE_DONE) {
    for (const [i, r] of (await session.untilDone(fields, 100)).entries()) out.push({ label: `answer ${i + 2} of the window`, r });
  }
  out.push({ label: 'the same window again', r: expectStream(await session.request(fields), 'the same window again') });
  out.push({ label: 'metareq=[*]!!', r: expectStream(await session.requestRaw('metareq=[*]!!&len=100000'), 'metareq=[*]!!') });
  const jpx = await ctx.session('jpx', { stream: [{ from: 0, to: 2, step: 1 }], ...win(32, 32), len: 100000 });
  out.push({ label: 'stream=0-2 of a JPX', r: expectStream(jpx.first, 'stream=0-2 of a JPX') });
  return out;
}

export const framingChecks: Check[] = [
  {
    id: 'framing.decodes',
    group: 'framing',
    title: 'Every answer decodes as whole JPP messages',
    why: 'A client decodes the body message by message; a truncated message, a bad VBAS or data past the end breaks it (OpenJPIP issues #1617 and #1658 were decoder crashes on such input).',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const all = await sample(ctx);
      for (const { label, r } of all) expect(r.stream?.error === undefined, `${label}: ${r.stream?.error}`);
      return ok(`${all.length} answers, ${all.reduce((n, { r }) => n + r.items.length, 0)} messages`);
    },
  },
  {
    id: 'framing.first-message-form',
    group: 'framing',
    title: 'The first message of every answer uses the full Bin-ID form (bb=11)',
    why: 'Decoders start each answer from class 0 and codestream 0, but not all reset: esajpip and the JHelioviewer checklist put Class and CSn in the first message of every answer.',
    profiles: ['jhv', 'full'],
    async run(ctx) {
      for (const { label, r } of await sample(ctx)) {
        const first = r.stream!.framed.find((f) => f.form !== 0);
        if (first && first.form !== 3) fail(`${label}: the first message (${describe(first.item as never)}) uses bb=${first.form.toString(2).padStart(2, '0')}`);
      }
      return ok('bb=11 first');
    },
  },
  {
    id: 'framing.eor-present',
    group: 'framing',
    title: 'Every answer ends with an EOR message',
    why: 'The EOR tells the client why the answer stopped; JHelioviewer repeats a request until EOR 1 or 2 and treats a missing EOR as an error (OpenJPIP sends none for stateless requests).',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      for (const { label, r } of await sample(ctx)) expect(r.eor !== undefined, `${label}: the answer does not end with an EOR message`);
      return ok('always');
    },
  },
  {
    id: 'framing.eor-last',
    group: 'framing',
    title: 'Nothing follows the EOR message',
    why: 'EOR ends the answer; data after it is lost to clients that stop reading there, or taken for the next answer.',
    profiles: ['core', 'full'],
    async run(ctx) {
      for (const { label, r } of await sample(ctx)) {
        const eors = r.items.filter((i) => i.kind === 'eor').length;
        expect(eors <= 1, `${label}: ${eors} EOR messages`);
        if (eors === 1) expect(r.items.at(-1)?.kind === 'eor', `${label}: ${r.items.length - 1 - r.items.findIndex((i) => i.kind === 'eor')} messages after the EOR`);
      }
      return ok('EOR last');
    },
  },
  {
    id: 'framing.eor-reason',
    group: 'framing',
    title: 'EOR reason codes are defined ones',
    why: 'Only 1 to 7 and 255 are defined (Kakadu\'s kdcs_comms.h); OpenHTJ2K #295 fixed swapped codes. An unknown code leaves the client guessing.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const seen = new Set<number>();
      for (const { label, r } of await sample(ctx)) {
        for (const i of r.items) {
          if (i.kind !== 'eor') continue;
          expect((i.reason >= 1 && i.reason <= 7) || i.reason === 0xff, `${label}: EOR reason ${i.reason}`);
          seen.add(i.reason);
        }
      }
      return ok(`reasons seen: ${[...seen].sort((a, b) => a - b).join(', ')}`);
    },
  },
  {
    id: 'framing.vbas',
    group: 'framing',
    title: 'VBAS fields are well-formed (and minimal)',
    why: 'Decoders bound the length of a VBAS (a 9-byte VBAS is the longest a 53-bit value needs); longer ones are refused. Non-minimal forms are legal but wasteful (esajpip writes some), so NON-STRICT.',
    profiles: ['core', 'full'],
    async run(ctx) {
      let nonMinimal = 0;
      for (const { label, r } of await sample(ctx)) {
        expect(r.stream?.error === undefined, `${label}: ${r.stream?.error}`);
        for (const f of r.stream!.framed) if (f.nonMinimal) nonMinimal++;
      }
      if (nonMinimal > 0) return nonStrict(`${nonMinimal} message headers use longer VBAS than needed`);
      return ok('minimal');
    },
  },
  {
    id: 'framing.classes',
    group: 'framing',
    title: 'A JPP-stream holds only JPP data-bin classes',
    why: 'JPP-streams carry precinct (0, 1), tile header (2), main header (6) and metadata (8) bins; tile bins (4, 5) belong to JPT-streams, and other class numbers are undefined.',
    profiles: ['core', 'full'],
    async run(ctx) {
      for (const { label, r } of await sample(ctx)) {
        for (const m of r.messages) expect(JPP_CLASSES.has(m.classId), `${label}: ${describe(m)}: class ${m.classId} in a JPP-stream`);
      }
      return ok('classes 0, 1, 2, 6, 8 only');
    },
  },
  {
    id: 'framing.codestream-ids',
    group: 'framing',
    title: 'Codestream numbers are the ones asked for',
    why: 'CSn says which codestream a bin belongs to; data of codestream 1 labelled 0 would be decoded into the wrong frame.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const all = await sample(ctx);
      for (const { label, r } of all) {
        const allowed = label.includes('JPX') ? [0, 1, 2] : [0];
        for (const m of r.messages) {
          if (m.classId === BIN_CLASS.METADATA) continue;
          expect(allowed.includes(m.codestream), `${label}: ${describe(m)}: codestream ${m.codestream} was not asked for`);
        }
      }
      const jpx = all.find((a) => a.label.includes('JPX'))!.r;
      const streams = new Set(jpx.messages.filter((m) => m.classId === BIN_CLASS.MAIN_HEADER).map((m) => m.codestream));
      expect(streams.size === 3, `stream=0-2 brought main headers of ${streams.size} codestreams (${[...streams].join(', ')})`);
      return ok('as asked');
    },
  },
  {
    id: 'framing.bin-ids',
    group: 'framing',
    title: 'Data-bin ids exist in the codestream',
    why: 'A precinct id is t + (c + s·Nc)·Nt; an id the codestream does not have means the server numbers precincts differently from every client.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const jpx = ctx.original('jpx');
      for (const { label, r } of await sample(ctx)) {
        for (const m of r.messages) {
          if (m.classId === BIN_CLASS.METADATA) continue;
          const e = label.includes('JPX') ? (m.codestream < jpx.codestreamCount ? jpx.codestream(m.codestream) : undefined) : exp;
          if (!e) continue; // framing.codestream-ids reports it
          expect(e.bin(m.classId, m.binId) !== undefined, `${label}: ${describe(m)}: no such data-bin in the codestream`);
        }
      }
      return ok('all exist');
    },
  },
  {
    id: 'framing.completeness',
    group: 'framing',
    title: 'The completeness bit is set exactly on the message that ends a bin',
    why: 'Clients know a bin is whole only from the c bit; set too early they stop asking for the rest, never set they keep asking (esajpip sets it only on the last byte of the last layer).',
    profiles: ['core', 'full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      let ended = 0;
      for (const { label, r } of await sample(ctx)) {
        if (label.includes('JPX') || label.includes('metareq')) continue;
        for (const m of r.messages) {
          if (m.classId === BIN_CLASS.METADATA) continue;
          const bin = exp.bin(m.classId, m.binId);
          if (!bin) continue;
          const endsBin = m.offset + m.length === bin.length;
          if (m.complete && !endsBin) fail(`${label}: ${describe(m)} is marked complete, but the bin is ${bin.length} bytes`);
          if (!m.complete && endsBin) fail(`${label}: ${describe(m)} holds the last byte of the bin but is not marked complete`);
          if (m.complete) ended++;
        }
      }
      return ok(`${ended} bins ended correctly`);
    },
  },
  {
    id: 'framing.header-order',
    group: 'framing',
    title: 'The main header comes before the codestream\'s other bins',
    why: 'A client cannot place precinct data before it knows the codestream\'s geometry; every implementation sends metadata-bin 0 and main headers first.',
    profiles: ['core', 'full'],
    async run(ctx) {
      for (const { label, r } of await sample(ctx)) {
        const seenMain = new Set<number>();
        for (const m of r.messages) {
          if (m.classId === BIN_CLASS.MAIN_HEADER) seenMain.add(m.codestream);
          else if (m.classId !== BIN_CLASS.METADATA && label.startsWith('the first') && !seenMain.has(m.codestream)) fail(`${label}: ${describe(m)} comes before the main header of codestream ${m.codestream}`);
          else if (m.classId !== BIN_CLASS.METADATA && label.includes('JPX') && !seenMain.has(m.codestream)) fail(`${label}: ${describe(m)} comes before the main header of codestream ${m.codestream}`);
        }
      }
      return ok('main headers first');
    },
  },
  {
    id: 'framing.eor-window-done',
    group: 'framing',
    title: 'A window sent in full ends with EOR 2 (window done)',
    why: 'JHelioviewer stops asking on EOR 1 or 2; EOR 1 (image done) for a partial window would make a client believe it holds the whole image.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const r = (await ctx.session('frame', { ...win(32, 32), len: 1 << 20 })).first;
      expectStream(r, 'fsiz=32,32 with a large len');
      expect(r.eor === EOR.WINDOW_DONE, `EOR ${r.eor ?? 'missing'} for a quarter-size window sent in one answer`);
      return ok('EOR 2');
    },
  },
  {
    id: 'framing.eor-image-done',
    group: 'framing',
    title: 'The whole image sent in full ends with EOR 1 (image done)',
    why: 'EOR 1 tells the client nothing more exists at any resolution; esajpip never sends it (it says 2), which is NON-STRICT.',
    profiles: ['full'],
    async run(ctx) {
      const r = (await ctx.session('frame', { ...fullFrame(ctx.expected('frame')), len: 1 << 20 })).first;
      expectStream(r, 'the whole image with a large len');
      if (r.eor === EOR.WINDOW_DONE) return nonStrict('EOR 2 (window done) for the whole image');
      expect(r.eor === EOR.IMAGE_DONE, `EOR ${r.eor ?? 'missing'} for the whole image sent in one answer`);
      return ok('EOR 1');
    },
  },
  {
    id: 'framing.eor-byte-limit',
    group: 'framing',
    title: 'An answer cut by len ends with EOR 4 (byte limit)',
    why: 'EOR 4 tells the client to ask again for the rest (OpenHTJ2K #296: honour len with EOR 4); any other reason misleads it.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const r = (await ctx.session('frame', { ...fullFrame(ctx.expected('frame')), len: 400 })).first;
      expectStream(r, 'the whole image with len=400');
      if (r.eor === EOR.RESPONSE_LIMIT_REACHED) return nonStrict('EOR 7 (response limit) where len cut the answer');
      expect(r.eor === EOR.BYTE_LIMIT_REACHED, `EOR ${r.eor ?? 'missing'} for an answer cut at len=400`);
      return ok('EOR 4');
    },
  },
  {
    id: 'framing.len-respected',
    group: 'framing',
    title: 'The body stays within len',
    why: 'len is the client\'s byte budget (flow control, interactivity); OpenJPIP ignores it. One message header over is NON-STRICT, more is FAILED.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const sizes: number[] = [];
      for (const len of [200, 400, 1000]) {
        const r = (await ctx.session('frame', { ...fullFrame(ctx.expected('frame')), len })).first;
        expectStream(r, `len=${len}`);
        const eorBytes = r.stream!.framed.filter((f) => f.form === 0).reduce((n, f) => n + f.headerLength + (f.item.kind === 'eor' ? f.item.body.length : 0), 0);
        const body = r.raw.body.length - eorBytes;
        sizes.push(body);
        if (body > len + 64) return failed(`len=${len}: ${body} bytes of messages`);
        if (body > len) return nonStrict(`len=${len}: ${body} bytes of messages (a little over)`);
      }
      return ok(`bodies of ${sizes.join(', ')} bytes for len 200, 400, 1000`);
    },
  },
];
