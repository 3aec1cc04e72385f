import { parseBoxes } from '../../jpeg2000/boxes.js';
import { BIN_CLASS, EOR } from '../../jpip/constants.js';
import { binClassName, type DecodedMessage } from '../../jpip/messages.js';
import { cropImage, decodeWasm, firstDifference, imagesEqual, type DecodedImage } from '../../client-sim/decode.js';
import { bodyHint, expectStream, type Fields, type JppResponse, type Session } from '../client.js';
import type { CheckContext } from '../context.js';
import type { ExpectedCodestream, OriginalFile, Role, TopBox } from '../fixtures.js';
import { header } from '../http.js';
import { end, expect, fail, nonStrict, type Outcome } from '../types.js';

/** Shared steps of the checks: asking for windows, comparing bytes with the originals, decoding. */

export type Msg = DecodedMessage;

/** A window field set: fsiz (with rounding), roff, rsiz. */
export function win(fx: number, fy: number, round: 'round-down' | 'round-up' | 'closest' = 'round-down', roff?: [number, number], rsiz?: [number, number]): Fields {
  const f: Fields = { fsiz: { fx, fy, round } };
  if (roff) f.roff = { x: roff[0], y: roff[1] };
  if (rsiz) f.rsiz = { w: rsiz[0], h: rsiz[1] };
  return f;
}

/** The full frame of a role's codestream at full resolution. */
export function fullFrame(exp: ExpectedCodestream): Fields {
  const { width, height } = exp.frameSize(0);
  return win(width, height, 'round-down');
}

/**
 * Opens a session with the window in the cnew request and repeats it until
 * the server says the window is done. Returns the session and every response.
 */
export async function fetchWindow(ctx: CheckContext, role: Role, fields: Fields, len = 1 << 20, maxRounds = 200): Promise<{ session: Session; responses: JppResponse[] }> {
  const { session, first } = await ctx.session(role, { ...fields, len });
  expectStream(first, 'the first request');
  const responses = [first];
  if (first.eor !== EOR.IMAGE_DONE && first.eor !== EOR.WINDOW_DONE) {
    if (first.eor === undefined) fail('the first response has no EOR message');
    responses.push(...(await session.untilDone({ ...fields, len }, maxRounds)));
  }
  return { session, responses };
}

/** Every data-bin message of a list of responses. */
export function allMessages(responses: readonly JppResponse[]): Msg[] {
  return responses.flatMap((r) => r.messages);
}

/** `precinct 7 cs=0 [300+50)`. */
export function describe(m: Msg): string {
  return `${binClassName(m.classId)} ${m.binId} of codestream ${m.codestream} at [${m.offset}, ${m.offset + m.length})`;
}

/**
 * Compares every data-bin message (except metadata) with the original's
 * bytes; returns the first problem or undefined. `codestreamOf` maps a
 * message's codestream number to the expected codestream (undefined: not
 * one the request could get).
 */
export function compareWithOriginal(messages: readonly Msg[], codestreamOf: (cs: number) => ExpectedCodestream | undefined): string | undefined {
  for (const m of messages) {
    if (m.classId === BIN_CLASS.METADATA) continue;
    const exp = codestreamOf(m.codestream);
    if (!exp) return `${describe(m)}: no such codestream in the target`;
    const bin = exp.bin(m.classId, m.binId);
    if (bin === undefined) return `${describe(m)}: the codestream has no such data-bin`;
    if (m.offset + m.length > bin.length) return `${describe(m)}: the data-bin is only ${bin.length} bytes long`;
    for (let i = 0; i < m.length; i++) {
      if (m.data[i] !== bin[m.offset + i]) {
        return `${describe(m)}: byte ${m.offset + i} of the data-bin is 0x${m.data[i]!.toString(16).padStart(2, '0')}, the file has 0x${bin[m.offset + i]!.toString(16).padStart(2, '0')}`;
      }
    }
  }
  return undefined;
}

/** Expects every message to match the original's bytes. */
export function expectOriginalBytes(messages: readonly Msg[], orig: OriginalFile, allowed?: ReadonlySet<number>): void {
  const problem = compareWithOriginal(messages, (cs) => (cs < orig.codestreamCount && (!allowed || allowed.has(cs)) ? orig.codestream(cs) : undefined));
  if (problem) fail(problem);
}

/** Precinct bin ids received for one codestream. */
export function precinctIds(messages: readonly Msg[], cs = 0): Set<number> {
  const out = new Set<number>();
  for (const m of messages) if ((m.classId === BIN_CLASS.PRECINCT || m.classId === BIN_CLASS.EXTENDED_PRECINCT) && m.codestream === cs) out.add(m.binId);
  return out;
}

/** Codestream numbers of the image-data messages (metadata excluded). */
export function codestreamsOf(messages: readonly Msg[]): number[] {
  return [...new Set(messages.filter((m) => m.classId !== BIN_CLASS.METADATA).map((m) => m.codestream))].sort((a, b) => a - b);
}

/**
 * The discard level a set of precincts shows: the smallest (levels - r) over
 * the precincts received (undefined when none). For single-NL images this is
 * the resolution the server chose.
 */
export function servedDiscard(exp: ExpectedCodestream, ids: Iterable<number>): number | undefined {
  let d: number | undefined;
  for (const id of ids) {
    const p = exp.precinct(id);
    if (!p) continue;
    const dd = Math.max(0, p.levels - p.r);
    d = d === undefined ? dd : Math.min(d, dd);
  }
  return d;
}

/** `ids 3, 4 and 2 more`. */
export function listIds(ids: Iterable<number>, max = 6): string {
  const a = [...ids].sort((x, y) => x - y);
  return a.length <= max ? a.join(', ') : `${a.slice(0, max).join(', ')} and ${a.length - max} more`;
}

/**
 * Judges the precincts a server sent for a view against the rules: every
 * precinct overlapping the window (at each kept resolution) must be there;
 * precincts beyond the window widened by the filters' reach (plus one
 * precinct of slack) are waste, which is NON-STRICT, not wrong.
 */
export function judgePrecincts(exp: ExpectedCodestream, fields: Fields, got: ReadonlySet<number>, what: string): Outcome | undefined {
  const view = exp.view(fields);
  if (!view) fail('internal: the window has no fsiz');
  const need = exp.precinctIds(view, 0);
  const missing = [...need].filter((id) => !got.has(id));
  if (missing.length > 0) fail(`${what}: ${missing.length} of the ${need.size} precincts the window overlaps are missing (ids ${listIds(missing)})`);
  const generous = exp.precinctIds(view, 16);
  const extra = [...got].filter((id) => !generous.has(id));
  if (extra.length > 0) return nonStrict(`${what}: all ${need.size} needed precincts came, and ${extra.length} far outside the window too (ids ${listIds(extra)})`);
  return undefined;
}

/** Reassembles codestream cs from what the session holds and decodes it (failing the check when it cannot). */
export async function decodeHeld(session: Session, cs: number, reduce = 0): Promise<DecodedImage> {
  let bytes: Uint8Array;
  try {
    const r = session.holder.reassemble(cs);
    if (r.problems.length > 0) fail(`codestream ${cs}: the data-bins do not hold whole packets: ${r.problems[0]!.message}`);
    bytes = r.codestream;
  } catch (e) {
    if (e instanceof Error && e.name === 'CheckFailed') throw e;
    fail(`codestream ${cs}: the received data-bins do not rebuild a codestream: ${(e as Error).message}`);
  }
  try {
    return await decodeWasm(bytes, { reduce });
  } catch (e) {
    fail(`codestream ${cs}: the rebuilt codestream does not decode: ${(e as Error).message}`);
  }
}

/** Expects two images to be equal sample for sample (within `rect` when given). */
export function expectSamePixels(got: DecodedImage, want: DecodedImage, what: string, rect?: { x: number; y: number; width: number; height: number }): void {
  const a = rect ? cropImage(got, rect) : got;
  const b = rect ? cropImage(want, rect) : want;
  if (a.width !== b.width || a.height !== b.height || a.components !== b.components) fail(`${what}: decoded ${a.width}x${a.height}x${a.components}, the original decodes to ${b.width}x${b.height}x${b.components}`);
  if (!imagesEqual(a, b)) {
    const d = firstDifference(a, b)!;
    fail(`${what}: pixels differ from the original's, first at (${d.x}, ${d.y}) component ${d.c}: ${d.a} instead of ${d.b}`);
  }
}

/** Parses metadata-bin 0 into top-level boxes (failing the check when it is not a box sequence). */
export function metadataBoxes(bin0: Uint8Array): Array<{ type: string; bytes: Uint8Array }> {
  try {
    return parseBoxes(bin0, { superboxes: new Set() }).map((b) => ({ type: b.type, bytes: bin0.subarray(b.offset, b.offset + b.length) }));
  } catch (e) {
    fail(`metadata-bin 0 is not a sequence of boxes: ${(e as Error).message}`);
  }
}

/** Metadata-bin 0 of a session, complete (fails the check otherwise). */
export function heldMetadata(session: Session): Uint8Array {
  const bin = session.holder.store.get(0, BIN_CLASS.METADATA, 0);
  expect(bin !== undefined, 'no metadata-bin 0 was received');
  expect(bin.complete, `metadata-bin 0 is not complete (${bin.contiguousLength} bytes held)`);
  return bin.bytes();
}

export interface Placeholder {
  flags: number;
  origId: number;
  origHeader: Uint8Array;
  csid: number | undefined;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}

/** Reads a phld box (header included); undefined fields when it is shorter than the full form. */
export function readPlaceholder(box: Uint8Array): Placeholder {
  const c = box.subarray(8);
  const flags = c.length >= 4 ? u32(c, 0) : 0;
  const origId = c.length >= 12 ? u32(c, 4) * 2 ** 32 + u32(c, 8) : 0;
  let origHeader: Uint8Array = new Uint8Array(0);
  let csid: number | undefined;
  if (c.length >= 20) {
    const lbox = u32(c, 12);
    const hl = lbox === 1 ? 16 : 8;
    origHeader = c.subarray(12, 12 + hl);
    const after = 12 + hl + 16; // EquivID (8) and EquivBH (8)
    if (c.length >= after + 8) csid = u32(c, after) * 2 ** 32 + u32(c, after + 4);
  }
  return { flags, origId, origHeader, csid };
}

/**
 * Compares metadata-bin 0 with the original's top-level boxes: each
 * codestream box (jp2c, ftbl) must be a phld, every other box the same bytes,
 * in order. Returns the first problem.
 */
export function compareMetadata(bin0: Uint8Array, boxes: readonly TopBox[]): string | undefined {
  const got = metadataBoxes(bin0);
  const want = boxes;
  // Servers may move boxes to other metadata-bins (Kakadu does, above a size): compare the ones present in order.
  let j = 0;
  for (const w of want) {
    const g = got[j];
    if (w.codestream !== undefined) {
      if (!g) return `box ${j} of metadata-bin 0: expected a placeholder (phld) for codestream ${w.codestream} (${w.type}), the bin ends`;
      if (g.type !== 'phld') return `box ${j} of metadata-bin 0: expected a placeholder (phld) for codestream ${w.codestream} (${w.type}), found '${g.type}'`;
      j++;
      continue;
    }
    if (!g) return `metadata-bin 0 ends before the '${w.type}' box`;
    if (g.type === 'phld' && w.type !== 'phld') {
      // A server may replace a large box by a placeholder pointing at another bin.
      j++;
      continue;
    }
    if (g.type !== w.type) return `box ${j} of metadata-bin 0 is '${g.type}', the file has '${w.type}' there`;
    if (g.bytes.length !== w.bytes.length || g.bytes.some((b, i) => b !== w.bytes[i])) return `box ${j} ('${w.type}') of metadata-bin 0 differs from the file's`;
    j++;
  }
  if (j < got.length) return `metadata-bin 0 has ${got.length - j} boxes the file does not (first: '${got[j]!.type}')`;
  return undefined;
}

/** Grades an error answer: `want` statuses are OK, other 4xx NON-STRICT, 2xx and 5xx FAILED (unless `fiveIsNonStrict`). */
export function gradeError(r: { status: number; raw: { statusLine: string; body: Uint8Array; status: number } }, want: readonly number[], what: string, opts: { fiveIsNonStrict?: boolean; twoIsNonStrict?: boolean } = {}): Outcome {
  const hint = bodyHint(r.raw as Parameters<typeof bodyHint>[0]);
  if (want.includes(r.status)) return { status: 'OK', message: `${what}: ${r.status}${hint}` };
  if (r.status >= 400 && r.status < 500) return nonStrict(`${what}: ${r.status} (${want.join(' or ')} expected)${hint}`);
  if (r.status >= 500 && opts.fiveIsNonStrict) return nonStrict(`${what}: ${r.status}, a server error for a client's mistake (${want.join(' or ')} expected)${hint}`);
  if (r.status >= 200 && r.status < 300 && opts.twoIsNonStrict) return nonStrict(`${what}: ${r.status}: the server accepted it (${want.join(' or ')} expected)`);
  if (r.status >= 200 && r.status < 300) end({ status: 'FAILED', message: `${what}: ${r.status}: the server served it as if it were fine (${want.join(' or ')} expected)` });
  end({ status: 'FAILED', message: `${what}: ${r.status}${r.status >= 500 ? ', a server error for a client\'s mistake' : ''} (${want.join(' or ')} expected)${hint}` });
}

/** The Content-Type of a response, for messages. */
export function contentType(r: JppResponse): string {
  return header(r.raw, 'content-type') ?? '(none)';
}
