import { BIN_CLASS, EOR } from '../../jpip/constants.js';
import { expectStream, type Fields } from '../client.js';
import type { CheckContext } from '../context.js';
import type { Role } from '../fixtures.js';
import { end, expect, fail, nonStrict, ok, type Check, type Outcome } from '../types.js';
import { allMessages, fetchWindow, judgePrecincts, listIds, precinctIds, servedDiscard, win } from './helpers.js';

/** Window mapping: which resolution and which precincts a view-window gets. */

/** Fetches a window completely and returns the precinct ids that came (codestream 0). */
async function precinctsFor(ctx: CheckContext, role: Role, fields: Fields): Promise<Set<number>> {
  return (await completePrecincts(ctx, role, fields)).got;
}

/** Fetches a window completely: the precinct ids that came, and those that came complete. */
async function completePrecincts(ctx: CheckContext, role: Role, fields: Fields): Promise<{ got: Set<number>; complete: Set<number> }> {
  const { session, responses } = await fetchWindow(ctx, role, fields, 1 << 20);
  const got = precinctIds(allMessages(responses));
  const complete = new Set([...got].filter((id) => session.holder.store.get(0, BIN_CLASS.PRECINCT, id)?.complete));
  return { got, complete };
}

/** Asks for fsiz with a rounding and checks the resolution served (by the precincts that came). */
async function expectDiscard(ctx: CheckContext, fields: Fields, want: number, what: string): Promise<void> {
  const exp = ctx.expected('frame');
  const got = await precinctsFor(ctx, 'frame', fields);
  const d = servedDiscard(exp, got);
  const size = (k: number | undefined): string => (k === undefined ? 'nothing' : `${exp.frameSize(k).width}x${exp.frameSize(k).height}`);
  expect(d === want, `${what}: the server sent the ${size(d)} frame, the rule gives ${size(want)}`);
  const outcome = judgePrecincts(exp, fields, got, what);
  if (outcome) end(outcome);
}

async function rounding(ctx: CheckContext, cases: Array<[Fields, string]>): Promise<Outcome> {
  const exp = ctx.expected('frame');
  const seen: string[] = [];
  for (const [fields, what] of cases) {
    const want = exp.view(fields)!.discard;
    await expectDiscard(ctx, fields, want, what);
    seen.push(`${what} -> ${exp.frameSize(want).width}`);
  }
  return ok(seen.join('; '));
}

export const windowChecks: Check[] = [
  {
    id: 'window.round-down',
    group: 'window',
    title: 'fsiz round-down picks the largest frame not above the request',
    why: 'round-down is the standard\'s default rounding: the frame must fit in fx by fy (Kakadu kdu_window::resolution).',
    profiles: ['core', 'full'],
    async run(ctx) {
      const { width } = ctx.expected('frame').frameSize(0);
      const f = Math.floor(width * 0.75);
      return rounding(ctx, [[win(f, f, 'round-down'), `fsiz=${f},${f},round-down`]]);
    },
  },
  {
    id: 'window.round-up',
    group: 'window',
    title: 'fsiz round-up picks the smallest frame not below the request',
    why: 'Clients that must fill a display ask round-up; OpenJPIP ignores the direction and always rounds down.',
    profiles: ['full'],
    async run(ctx) {
      const { width } = ctx.expected('frame').frameSize(0);
      const f = Math.floor(width * 0.6);
      return rounding(ctx, [[win(f, f, 'round-up'), `fsiz=${f},${f},round-up`]]);
    },
  },
  {
    id: 'window.closest',
    group: 'window',
    title: 'fsiz closest picks the nearest frame',
    why: 'JHelioviewer always asks "closest". Kakadu minimises the area difference, esajpip the sum of side differences; the sizes used here give the same frame under both.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const big = exp.frameSize(0).width;
      const small = exp.frameSize(1).width;
      const near = Math.round(big * 0.94);
      const low = Math.round(small * 1.1);
      return rounding(ctx, [
        [win(near, near, 'closest'), `fsiz=${near},${near},closest`],
        [win(low, low, 'closest'), `fsiz=${low},${low},closest`],
      ]);
    },
  },
  {
    id: 'window.default-round-down',
    group: 'window',
    title: 'fsiz without a rounding means round-down',
    why: 'The standard\'s default is round-down; esajpip defaults to closest and carries the last direction over (a bug). The size used here gives the same frame for round-down and closest.',
    profiles: ['full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const f = Math.round(exp.frameSize(1).width * 1.1);
      const want = exp.view(win(f, f, 'round-down'))!.discard;
      if (exp.view(win(f, f, 'closest'))!.discard !== want) fail('internal: the fixture frame sizes do not suit this check');
      // Sent without the rounding (formatRequest always writes one): a raw query.
      const { session } = await ctx.session('frame', { len: 0 });
      const raw = expectStream(await session.requestRaw(`fsiz=${f},${f}&len=1048576`), `fsiz=${f},${f}`);
      const ids = precinctIds(raw.messages);
      const d = servedDiscard(exp, ids);
      expect(d === want, `fsiz=${f},${f}: the ${d === undefined ? 'no' : `${exp.frameSize(d).width}x${exp.frameSize(d).height}`} frame was served, round-down gives ${exp.frameSize(want).width}x${exp.frameSize(want).height}`);
      return ok(`fsiz=${f},${f} -> ${exp.frameSize(want).width}`);
    },
  },
  {
    id: 'window.exact-size',
    group: 'window',
    title: 'fsiz equal to a resolution\'s size gets exactly that resolution',
    why: 'JHelioviewer asks for the exact size of a discard level; resolutions above it are wasted bytes, missing ones leave holes.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { width, height } = exp.frameSize(2);
      const fields = win(width, height, 'closest', [0, 0], [width, height]);
      const { got, complete } = await completePrecincts(ctx, 'frame', fields);
      const need = exp.precinctIds(exp.view(fields)!, 0);
      const missing = [...need].filter((id) => !complete.has(id));
      const extra = [...got].filter((id) => !need.has(id));
      expect(missing.length === 0, `fsiz=${width},${height}: precincts ${listIds(missing)} missing or incomplete`);
      expect(extra.length === 0, `fsiz=${width},${height}: precincts ${listIds(extra)} of higher resolutions sent`);
      return ok(`${need.size} precincts, no more`);
    },
  },
  {
    id: 'window.larger-than-image',
    group: 'window',
    title: 'fsiz larger than the image gets the full image',
    why: 'A client on a large display asks for more than the image has; round-down then means the full resolution, not an error.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { width } = exp.frameSize(0);
      const fields = win(width * 4, width * 4, 'round-down');
      const { complete } = await completePrecincts(ctx, 'frame', fields);
      const all = exp.allPrecinctIds();
      const missing = all.filter((id) => !complete.has(id));
      expect(missing.length === 0, `fsiz=${width * 4},${width * 4}: precincts ${listIds(missing)} of the full image missing or incomplete`);
      return ok(`all ${all.length} precincts`);
    },
  },
  {
    id: 'window.region',
    group: 'window',
    title: 'roff/rsiz at full resolution get every precinct the region overlaps',
    why: 'Panning a zoomed-in view asks for a region; each precinct overlapping it at every kept resolution is needed to decode it.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const exp = ctx.expected('odd');
      const { width, height } = exp.frameSize(0);
      const fields = win(width, height, 'round-down', [Math.floor(width / 3), Math.floor(height / 4)], [Math.floor(width / 3), Math.floor(height / 2)]);
      const got = await precinctsFor(ctx, 'odd', fields);
      return judgePrecincts(exp, fields, got, 'the region') ?? ok(`${got.size} precincts, every needed one`);
    },
  },
  {
    id: 'window.rescaled-region',
    group: 'window',
    title: 'A region given in a frame size the image lacks is rescaled',
    why: 'roff/rsiz are in the requested frame\'s coordinates; when the server serves another frame it must scale them (offsets down, far edges up), as Kakadu and OpenJPIP do.',
    profiles: ['full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { width, height } = exp.frameSize(0);
      const fields = win(width * 2, height * 2, 'round-down', [width, 0], [width, height]);
      const got = await precinctsFor(ctx, 'frame', fields);
      return judgePrecincts(exp, fields, got, 'the rescaled region') ?? ok('every needed precinct');
    },
  },
  {
    id: 'window.edge-clipping',
    group: 'window',
    title: 'A region running over the image edge is clipped, not refused',
    why: 'Viewers ask for whole display tiles at the image border; the part outside the image is simply empty.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const exp = ctx.expected('odd');
      const { width, height } = exp.frameSize(0);
      const fields = win(width, height, 'round-down', [width - 10, height - 7], [width, height]);
      const got = await precinctsFor(ctx, 'odd', fields);
      return judgePrecincts(exp, fields, got, 'the clipped region') ?? ok(`${got.size} precincts`);
    },
  },
  {
    id: 'window.outside',
    group: 'window',
    title: 'A region entirely outside the image gets no image data',
    why: 'An empty window is not an error (Kakadu answers with nothing but headers); data for it would be wrong.',
    profiles: ['full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { width, height } = exp.frameSize(0);
      const { first } = await ctx.session('frame', { ...win(width, height, 'round-down', [width + 50, height + 50], [20, 20]), len: 1 << 20 });
      if (first.status === 400) return nonStrict('refused with 400');
      expect(first.status === 200, `status ${first.status}`);
      const data = first.messages.filter((m) => m.classId === BIN_CLASS.PRECINCT || m.classId === BIN_CLASS.EXTENDED_PRECINCT);
      expect(data.length === 0, `${data.length} precinct messages for a window outside the image`);
      expect(first.eor === EOR.WINDOW_DONE || first.eor === EOR.IMAGE_DONE, `EOR ${first.eor ?? 'missing'} for an empty window`);
      return ok('no precincts');
    },
  },
  {
    id: 'window.precinct-boundary',
    group: 'window',
    title: 'A region ending on a precinct boundary gets the precincts up to it',
    why: 'esajpip\'s "-1" trick approximates the precinct range and is wrong exactly at precinct boundaries.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const exp = ctx.expected('odd');
      const ox = Math.ceil(exp.siz.xOsiz);
      const oy = Math.ceil(exp.siz.yOsiz);
      const { width, height } = exp.frameSize(0);
      // Absolute 16..32 on both axes: one 16x16 precinct of the top resolution, edges on boundaries.
      const fields = win(width, height, 'round-down', [16 - ox, 16 - oy], [16, 16]);
      const got = await precinctsFor(ctx, 'odd', fields);
      return judgePrecincts(exp, fields, got, 'the region on precinct boundaries') ?? ok('every needed precinct');
    },
  },
  {
    id: 'window.low-res-offset',
    group: 'window',
    title: 'A region with an offset at a lower resolution gets the right precincts',
    why: 'OpenJPIP picks wrong precincts for windows that do not start at (0,0) at lower resolutions.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const exp = ctx.expected('odd');
      const { width, height } = exp.frameSize(1);
      const fields = win(width, height, 'round-down', [Math.floor(width / 2), Math.floor(height / 3)], [Math.ceil(width / 3), Math.ceil(height / 3)]);
      const got = await precinctsFor(ctx, 'odd', fields);
      const d = servedDiscard(exp, got);
      expect(d === 1, `fsiz=${width},${height} got the ${d === undefined ? 'empty' : exp.frameSize(d).width} frame, not ${width}`);
      return judgePrecincts(exp, fields, got, 'the region at half resolution') ?? ok('every needed precinct');
    },
  },
  {
    id: 'window.tiles',
    group: 'window',
    title: 'A region of a tiled image gets the precincts of the tiles it touches',
    why: 'Precinct ids carry the tile number; a server that gets tile arithmetic wrong sends another tile\'s data.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const exp = ctx.expected('tiled');
      const { width, height } = exp.frameSize(0);
      const fields = win(width, height, 'round-down', [Math.floor(width * 0.4), Math.floor(height * 0.45)], [Math.floor(width * 0.15), Math.floor(height * 0.15)]);
      const got = await precinctsFor(ctx, 'tiled', fields);
      if (got.size === 0) fail('no precincts');
      return judgePrecincts(exp, fields, got, 'the region of the tiled image') ?? ok(`${got.size} precincts from ${new Set([...got].map((id) => exp.precinct(id)?.t)).size} tiles`);
    },
  },
];
