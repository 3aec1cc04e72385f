/**
 * The JPIP request: the query string (GET) or form body (POST) of a client
 * request, parsed strictly into a typed {@link JpipRequest} (server side), and
 * the canonical query built back from one (client side).
 *
 * Plain JS only (no Node APIs): the browser client reuses this module.
 *
 * Decisions, in one place (the vectors in `test/vectors/request.md` pin each):
 *
 * - Syntax: fields are separated by `&`, the name ends at the first `=`.
 *   Raw characters must be printable ASCII (0x21-0x7E); anything else must be
 *   percent-encoded. `<>[]*!:;,` are accepted raw because JHelioviewer sends
 *   them so. Names and values are percent-decoded (UTF-8); a malformed escape
 *   is a 400. `+` is a literal plus, except with `{ form: true }` (an
 *   `application/x-www-form-urlencoded` body), where it decodes to a space.
 * - Names are case-sensitive (as Kakadu). A name that differs from a JPIP
 *   field only in case (`FSIZ`) is a 400, not silently ignored; the named
 *   leniency `caseInsensitiveNames` (OpenJPIP's behaviour) accepts it.
 * - A name that is no JPIP field at all (`_`, cache busters) is ignored and
 *   listed in `ignored` (each name once, in order of first appearance).
 * - A JPIP field given twice is a 400 (BAD_REQUEST naming it); an empty
 *   segment (`a=1&&b=2`, trailing `&`) is a 400 unless `emptySegments`.
 * - A JPIP field this server does not implement is a 501 naming it, whatever
 *   its value ({@link UNIMPLEMENTED_FIELDS}).
 * - Errors: the first problem in query order wins (a 400 for a field that
 *   comes first beats a 501 for a later one); cross-field checks come last.
 * - Numbers: decimal digits only (leading zeros allowed, no sign, no space,
 *   no hex); each field has a maximum ({@link LIMITS}); a larger value is a
 *   400 saying so, never clamped. Empty values are a 400.
 * - Ranges: `a`, `a-b`, open-ended `a-` (the standard's UINT-RANGE), sampled
 *   ranges add `:step` (step >= 1). `a > b` is a 400; in `stream` the named
 *   leniency `descendingStream` accepts it as a descending range (esajpip
 *   PR #9), and `colonStreamRange` reads esajpip's non-standard `a:b` as the
 *   range a..b (standard reading: codestream a, sampling step b).
 * - Absent fields are absent keys (never `key: undefined`); defaults the
 *   standard defines are left to the server, except the fsiz rounding, which
 *   is part of the fsiz value (`round-down` when not given).
 * - `cnew` lists the transports the client accepts; only `http` can be
 *   granted, so a list without `http` is a 501 naming cnew. `cid` together
 *   with `cnew` is allowed: it asks for a new channel in the session of cid.
 * - `roff` or `rsiz` without `fsiz` is a 400 (BAD_REQUEST naming roff, then
 *   rsiz); `fsiz` and `rsiz` sizes are >= 1 (zero is a 400); `roff` may be 0.
 * - `type`: a list in preference order; `image/jpp-stream` is the same as
 *   `jpp-stream`; `;ptype=ext` is recorded as `ext: true`. Items naming other
 *   types (or with other parameters) are skipped; if none is left: 501.
 * - `context`: only `jpxl<sampled ranges>`; the `[...]` and `=` parts and
 *   `mj2t<...>` are 501. `quality`, `drate`, `tpmodel`, `need` ... are 501.
 * - `model`: `[ranges]` (ranges separated by `;`, as inside metareq brackets)
 *   sets the codestreams of the descriptors that follow; a qualifier that no
 *   descriptor follows is a 400. `H*` is supported; `P*`, `T*`, `M*` and the
 *   implicit forms (`t..c..r..p..`) are 501. `:L<n>` only on precinct bins.
 * - `metareq`: bracket groups `[b1;b2]` each with optional `R<bin>` and
 *   `D<depth>`, comma separated, then optional `!!`. A box type is `*` or
 *   exactly four characters (so `xml%20` works). Flags are kept in the order
 *   w, s, g, a whatever order the client wrote them in.
 */
import { JpipError } from './errors.js';
import type { StreamType } from './constants.js';

// ---------------------------------------------------------------------------
// Types: the contract with the server
// ---------------------------------------------------------------------------

/** fsiz rounding direction (round-down is the standard's default). */
export type RoundDirection = 'round-down' | 'round-up' | 'closest';

export interface FrameSize {
  fx: number;
  fy: number;
  round: RoundDirection;
}

export interface Offset {
  x: number;
  y: number;
}

export interface RegionSize {
  w: number;
  h: number;
}

/** `a` (from = to = a), `a-b`, or open-ended `a-` (no `to`). */
export interface Range {
  from: number;
  to?: number;
}

/** A range with a sampling step (1 when not given). Under the leniency `descendingStream`, `from > to` means counting down. */
export interface SampledRange extends Range {
  step: number;
}

/** A `context` item: compositing layers of a JPX file. */
export interface ContextRange {
  kind: 'jpxl';
  layers: SampledRange[];
}

/** One acceptable return type, in the client's order of preference. */
export interface RequestedType {
  name: StreamType;
  /** `;ptype=ext`: extended precinct/tile data-bins. */
  ext: boolean;
}

export type MetaFlag = 'w' | 's' | 'g' | 'a';

export interface MetaBoxRequest {
  /** Four characters, or `*` for any box. */
  boxType: string;
  /** `:n` byte limit, or `:r` (the box header and the request recursively). */
  limit?: number | 'r';
  /** `/wsga` qualifiers, in the order w, s, g, a. */
  flags?: MetaFlag[];
  /** `!` after the box: this box before image data. */
  priority: boolean;
}

export interface MetaRequestGroup {
  boxes: MetaBoxRequest[];
  /** `R<n>`: the metadata-bin the search starts from. */
  root?: number;
  /** `D<n>`: maximum depth. */
  depth?: number;
}

export interface MetaRequest {
  groups: MetaRequestGroup[];
  /** `!!`: send metadata only, no image data. */
  metadataOnly: boolean;
}

/** The data-bin a model descriptor names. `tile` is the tile-header bin (`H`), `tile-data` the JPT tile bin (`T`). */
export type ModelBin =
  | { kind: 'main' }
  | { kind: 'tile'; id: number | '*' }
  | { kind: 'precinct'; id: number }
  | { kind: 'tile-data'; id: number }
  | { kind: 'metadata'; id: number };

/** How much of the bin the client holds: a byte prefix, or (precinct bins) a number of quality layers. */
export type ModelLimit = { bytes: number } | { layers: number };

export interface ModelDescriptor {
  /** Leading `-`: the client does NOT hold this (beyond `limit`). */
  subtract: boolean;
  /** From the `[..]` qualifier before it; absent when none was given. Descriptors under one qualifier share the array: treat it as read-only. */
  codestreams?: SampledRange[];
  bin: ModelBin;
  /** Absent: the whole bin. */
  limit?: ModelLimit;
}

/** A parsed request. Absent fields are absent keys. */
export interface JpipRequest {
  target?: string;
  /** Opaque; `'0'` asks the server to report the target id. */
  tid?: string;
  /** Transports the client accepts (contains `http`). */
  cnew?: string[];
  cid?: string;
  cclose?: string[] | '*';
  qid?: number;
  fsiz?: FrameSize;
  roff?: Offset;
  rsiz?: RegionSize;
  comps?: Range[];
  layers?: number;
  stream?: SampledRange[];
  context?: ContextRange[];
  metareq?: MetaRequest;
  len?: number;
  /** Acceptable return types in preference order (never empty). */
  type?: RequestedType[];
  align?: boolean;
  wait?: boolean;
  model?: ModelDescriptor[];
  /** Names of the non-JPIP fields that were ignored, each once. */
  ignored: string[];
}

/** Opt-in tolerance of non-standard syntax real clients or servers use; each is off by default. */
export interface Leniency {
  /** `stream=9-3`: a descending range (esajpip accepts it). */
  descendingStream?: boolean;
  /** `stream=3:9` means codestreams 3..9 (esajpip's reading), not codestream 3 sampled by 9. */
  colonStreamRange?: boolean;
  /** `FSIZ=...` is fsiz (OpenJPIP compares names case-insensitively). */
  caseInsensitiveNames?: boolean;
  /** Empty segments (`a=1&&b=2`, a trailing `&`) are skipped. */
  emptySegments?: boolean;
}

export interface ParseOptions {
  lenient?: Leniency;
  /** The input is an `application/x-www-form-urlencoded` body: `+` is a space. */
  form?: boolean;
}

// ---------------------------------------------------------------------------
// Field names and limits
// ---------------------------------------------------------------------------

/** Fields this module parses. */
export const IMPLEMENTED_FIELDS = [
  'target', 'tid', 'cnew', 'cid', 'cclose', 'qid',
  'fsiz', 'roff', 'rsiz', 'comps', 'layers', 'stream', 'context',
  'metareq', 'len', 'type', 'align', 'wait', 'model',
] as const;

/**
 * JPIP fields the server answers with 501. The list is Kakadu's field-name
 * list as the protocol brief gives it; `mset` is there too (unverified as a
 * Kakadu name, but a JPIP name), and `tpneed` (the JPT form of need).
 */
export const UNIMPLEMENTED_FIELDS = [
  'subtarget', 'roi', 'srate', 'quality', 'drate', 'tpmodel', 'need', 'tpneed', 'mset',
  'cap', 'pref', 'handled', 'upload', 'xpbox', 'xpbin', 'xpquery', 'abandon', 'barrier', 'sendto',
] as const;

export type JpipFieldName = (typeof IMPLEMENTED_FIELDS)[number] | (typeof UNIMPLEMENTED_FIELDS)[number];

const IMPLEMENTED = new Set<string>(IMPLEMENTED_FIELDS);
const UNIMPLEMENTED = new Set<string>(UNIMPLEMENTED_FIELDS);

export function isJpipField(name: string): name is JpipFieldName {
  return IMPLEMENTED.has(name) || UNIMPLEMENTED.has(name);
}

const UINT32_MAX = 0xffff_ffff;
const UINT53_MAX = Number.MAX_SAFE_INTEGER;

/** The largest value each numeric item accepts (inclusive); larger is a 400. */
export const LIMITS = {
  /** fsiz fx, fy; roff x, y; rsiz w, h (32-bit image coordinates). */
  coordinate: UINT32_MAX,
  /** Codestream, component and compositing-layer indices, and sampling steps. */
  index: UINT32_MAX,
  layers: UINT32_MAX,
  qid: UINT32_MAX,
  len: UINT53_MAX,
  /** Model tile (H, T) ids. */
  tileId: UINT32_MAX,
  /** Model precinct and metadata-bin ids (in-class ids are VBAS numbers). */
  binId: UINT53_MAX,
  /** Model `:<bytes>`, metareq `:<limit>`. */
  bytes: UINT53_MAX,
  /** metareq `R<bin>`. */
  metaRoot: UINT53_MAX,
  /** metareq `D<depth>`. */
  metaDepth: UINT32_MAX,
  /** tid, cid: characters. */
  idLength: 255,
} as const;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function bad(field: string, message: string): JpipError {
  return new JpipError('BAD_FIELD', message, field);
}

function unimplemented(field: string, message: string): JpipError {
  return new JpipError('UNIMPLEMENTED', message, field);
}

/** A short, printable rendering of user input for messages. */
function show(s: string): string {
  const t = s.length > 40 ? `${s.slice(0, 40)}...` : s;
  return JSON.stringify(t);
}

const DIGITS = /^[0-9]+$/;

/** Parses an unsigned decimal integer no larger than max. */
function parseUint(text: string, field: string, max: number, what: string): number {
  if (text === '') throw bad(field, `${what}: a number is missing`);
  if (!DIGITS.test(text)) throw bad(field, `${what}: ${show(text)} is not an unsigned decimal number`);
  const digits = text.replace(/^0+(?=.)/, '');
  // 2^53 has 16 digits: anything longer is certainly out of range (and would lose precision).
  const n = digits.length > 16 ? Infinity : Number(digits);
  if (n > max) throw bad(field, `${what}: ${digits.length > 20 ? `${digits.slice(0, 20)}...` : digits} is larger than the maximum ${max}`);
  return n;
}

/** Splits on sep; every item must be non-empty. */
function splitList(text: string, sep: string, field: string, what: string): string[] {
  const items = text.split(sep);
  for (const item of items) if (item === '') throw bad(field, `${what}: empty item in ${show(text)}`);
  return items;
}

/** Splits on commas that are not inside <...> or [...]. */
function splitTopLevel(text: string, field: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '<' || c === '[') depth++;
    else if (c === '>' || c === ']') {
      depth--;
      if (depth < 0) throw bad(field, `unbalanced ${show(c)} at position ${i}`);
    } else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw bad(field, `unclosed bracket in ${show(text)}`);
  out.push(text.slice(start));
  for (const item of out) if (item === '') throw bad(field, `empty item in ${show(text)}`);
  return out;
}

interface RangeRules {
  max: number;
  /** a > b allowed (descending). */
  descending?: boolean;
  /** esajpip `a:b` = range a..b. */
  colonRange?: boolean;
}

function parseRange(text: string, field: string, rules: RangeRules): Range {
  const dash = text.indexOf('-');
  if (dash < 0) {
    const a = parseUint(text, field, rules.max, 'range');
    return { from: a, to: a };
  }
  const from = parseUint(text.slice(0, dash), field, rules.max, 'range start');
  const rest = text.slice(dash + 1);
  if (rest === '') return { from };
  const to = parseUint(rest, field, rules.max, 'range end');
  if (from > to && !rules.descending) throw bad(field, `range ${show(text)} runs backwards (${from} > ${to})`);
  return { from, to };
}

function parseSampledRange(text: string, field: string, rules: RangeRules): SampledRange {
  if (rules.colonRange && /^[0-9]+:[0-9]+$/.test(text)) {
    const [a, b] = text.split(':') as [string, string];
    return parseSampledRange(`${a}-${b}`, field, { ...rules, colonRange: false });
  }
  const colon = text.indexOf(':');
  const rangeText = colon < 0 ? text : text.slice(0, colon);
  const range = parseRange(rangeText, field, rules);
  let step = 1;
  if (colon >= 0) {
    step = parseUint(text.slice(colon + 1), field, LIMITS.index, 'sampling step');
    if (step === 0) throw bad(field, `sampling step of ${show(text)} is 0 (it must be at least 1)`);
  }
  return { ...range, step };
}

function parseSampledRanges(text: string, sep: string, field: string, rules: RangeRules): SampledRange[] {
  return splitList(text, sep, field, 'range list').map((t) => parseSampledRange(t, field, rules));
}

function parsePair(text: string, field: string, names: [string, string], min: number): [number, number] {
  const parts = text.split(',');
  if (parts.length !== 2) throw bad(field, `expected two numbers ${names[0]},${names[1]}, got ${show(text)}`);
  const a = parseUint(parts[0]!, field, LIMITS.coordinate, names[0]);
  const b = parseUint(parts[1]!, field, LIMITS.coordinate, names[1]);
  if (a < min || b < min) throw bad(field, `${names[0]} and ${names[1]} must be at least ${min}, got ${show(text)}`);
  return [a, b];
}

// ---------------------------------------------------------------------------
// Field parsers
// ---------------------------------------------------------------------------

const ROUND: readonly string[] = ['round-down', 'round-up', 'closest'];

function parseFsiz(v: string): FrameSize {
  const parts = v.split(',');
  if (parts.length !== 2 && parts.length !== 3) throw bad('fsiz', `expected fx,fy[,round-down|round-up|closest], got ${show(v)}`);
  const [fx, fy] = parsePair(`${parts[0]},${parts[1]}`, 'fsiz', ['fx', 'fy'], 1);
  let round: RoundDirection = 'round-down';
  if (parts.length === 3) {
    if (!ROUND.includes(parts[2]!)) throw bad('fsiz', `rounding ${show(parts[2]!)} is not round-down, round-up or closest`);
    round = parts[2] as RoundDirection;
  }
  return { fx, fy, round };
}

/** Printable ASCII except comma (and `*` when it would mean "all"). */
const CHANNEL_ID = /^[\x21-\x29\x2b\x2d-\x7e]+$/;
const TARGET_ID = /^[\x21-\x7e]+$/;

function parseId(v: string, field: string, re: RegExp, what: string): string {
  if (v.length > LIMITS.idLength) throw bad(field, `${what} is ${v.length} characters long (the maximum is ${LIMITS.idLength})`);
  if (!re.test(v)) throw bad(field, `${what} ${show(v)} contains a character that is not allowed`);
  return v;
}

const TRANSPORT = /^[a-z0-9][a-z0-9-]*$/;

function parseCnew(v: string): string[] {
  const list = splitList(v, ',', 'cnew', 'transport list');
  for (const t of list) if (!TRANSPORT.test(t)) throw bad('cnew', `transport ${show(t)} is not a transport name`);
  if (!list.includes('http')) throw unimplemented('cnew', `no transport this server can grant in ${show(v)} (only http)`);
  return list;
}

function parseCclose(v: string): string[] | '*' {
  if (v === '*') return '*';
  return splitList(v, ',', 'cclose', 'channel list').map((id) => parseId(id, 'cclose', CHANNEL_ID, 'channel id'));
}

function parseYesNo(v: string, field: string): boolean {
  if (v === 'yes') return true;
  if (v === 'no') return false;
  throw bad(field, `expected yes or no, got ${show(v)}`);
}

const MEDIA = /^[A-Za-z0-9][A-Za-z0-9.+-]*(\/[A-Za-z0-9][A-Za-z0-9.+-]*)?$/;
const PARAM = /^[A-Za-z0-9.+-]+=[A-Za-z0-9.+-]+$/;

function parseType(v: string): RequestedType[] {
  const out: RequestedType[] = [];
  for (const item of splitList(v, ',', 'type', 'type list')) {
    const [media, ...params] = item.split(';') as [string, ...string[]];
    if (!MEDIA.test(media)) throw bad('type', `${show(media)} is not a media type`);
    for (const p of params) if (!PARAM.test(p)) throw bad('type', `${show(p)} is not a parameter name=value`);
    const name = media.startsWith('image/') ? media.slice(6) : media;
    if (name !== 'jpp-stream' && name !== 'jpt-stream') continue;
    if (params.length > 1 || (params.length === 1 && params[0] !== 'ptype=ext')) continue;
    out.push({ name, ext: params.length === 1 });
  }
  if (out.length === 0) throw unimplemented('type', `none of ${show(v)} can be served (jpp-stream, jpt-stream)`);
  return out;
}

function parseContext(v: string): ContextRange[] {
  return splitTopLevel(v, 'context').map((item) => {
    if (item.startsWith('mj2t<')) throw unimplemented('context', 'mj2t (Motion JPEG 2000 track) contexts are not supported');
    if (!item.startsWith('jpxl<')) throw bad('context', `${show(item)} is not a jpxl<...> or mj2t<...> context`);
    const close = item.indexOf('>');
    if (close < 0) throw bad('context', `${show(item)} has no closing >`);
    const inner = item.slice(5, close);
    if (inner === '') throw bad('context', `${show(item)} names no compositing layer`);
    const layers = parseSampledRanges(inner, ',', 'context', { max: LIMITS.index });
    const rest = item.slice(close + 1);
    if (rest.startsWith('[') || rest.startsWith('=')) throw unimplemented('context', `only plain jpxl<ranges> contexts are supported, not ${show(rest)}`);
    if (rest !== '') throw bad('context', `unexpected ${show(rest)} after jpxl<...>`);
    return { kind: 'jpxl', layers };
  });
}

/** A cursor over a field value for the two small grammars below. */
class Cursor {
  pos = 0;
  readonly text: string;
  readonly field: string;
  constructor(text: string, field: string) {
    this.text = text;
    this.field = field;
  }
  get done(): boolean {
    return this.pos >= this.text.length;
  }
  peek(): string {
    return this.text[this.pos] ?? '';
  }
  eat(c: string): boolean {
    if (this.text.startsWith(c, this.pos)) {
      this.pos += c.length;
      return true;
    }
    return false;
  }
  expect(c: string): void {
    if (!this.eat(c)) throw this.fail(`expected ${show(c)}`);
  }
  digits(max: number, what: string): number {
    const m = /^[0-9]+/.exec(this.text.slice(this.pos));
    if (!m) throw this.fail(`${what}: expected a number`);
    this.pos += m[0].length;
    return parseUint(m[0], this.field, max, what);
  }
  fail(message: string): JpipError {
    return bad(this.field, `${message} at position ${this.pos} of ${show(this.text)}`);
  }
}

const META_FLAGS: readonly MetaFlag[] = ['w', 's', 'g', 'a'];

function parseMetaBox(c: Cursor): MetaBoxRequest {
  let boxType: string;
  if (c.eat('*')) boxType = '*';
  else {
    boxType = c.text.slice(c.pos, c.pos + 4);
    if (boxType.length < 4 || !/^[\x20-\x7e]{4}$/.test(boxType)) throw c.fail('expected * or a four-character box type');
    c.pos += 4;
  }
  let limit: number | 'r' | undefined;
  let flags: MetaFlag[] | undefined;
  if (c.eat(':')) limit = c.eat('r') ? 'r' : c.digits(LIMITS.bytes, 'box limit');
  if (c.eat('/')) {
    const seen = new Set<string>();
    while (META_FLAGS.includes(c.peek() as MetaFlag)) {
      const f = c.peek();
      if (seen.has(f)) throw c.fail(`flag ${f} given twice`);
      seen.add(f);
      c.pos++;
    }
    if (seen.size === 0) throw c.fail('expected flags w, s, g or a after /');
    flags = META_FLAGS.filter((f) => seen.has(f));
  }
  // A `!` here is the box's priority mark (the closing `!!` can only follow `]`).
  const priority = c.eat('!');
  return {
    boxType,
    ...(limit !== undefined ? { limit } : {}),
    ...(flags !== undefined ? { flags } : {}),
    priority,
  };
}

function parseMetareq(v: string): MetaRequest {
  const c = new Cursor(v, 'metareq');
  const groups: MetaRequestGroup[] = [];
  let metadataOnly = false;
  for (;;) {
    c.expect('[');
    const boxes: MetaBoxRequest[] = [parseMetaBox(c)];
    while (c.eat(';')) boxes.push(parseMetaBox(c));
    c.expect(']');
    const group: MetaRequestGroup = { boxes };
    if (c.eat('R')) group.root = c.digits(LIMITS.metaRoot, 'root bin');
    if (c.eat('D')) group.depth = c.digits(LIMITS.metaDepth, 'depth');
    groups.push(group);
    if (c.eat(',')) continue;
    if (c.eat('!!')) metadataOnly = true;
    if (!c.done) throw c.fail('unexpected characters');
    return { groups, metadataOnly };
  }
}

function parseModelDescriptor(item: string, codestreams: SampledRange[] | undefined): ModelDescriptor {
  const c = new Cursor(item, 'model');
  const subtract = c.eat('-');
  let bin: ModelBin;
  const lead = c.peek();
  if (c.eat('Hm')) bin = { kind: 'main' };
  else if (lead === 'H' || lead === 'P' || lead === 'T' || lead === 'M') {
    c.pos++;
    if (c.eat('*')) {
      if (lead !== 'H') throw unimplemented('model', `${lead}* (all ${lead} bins) is not supported in ${show(item)}`);
      bin = { kind: 'tile', id: '*' };
    } else if (lead === 'H') bin = { kind: 'tile', id: c.digits(LIMITS.tileId, 'tile id') };
    else if (lead === 'T') bin = { kind: 'tile-data', id: c.digits(LIMITS.tileId, 'tile id') };
    else if (lead === 'P') bin = { kind: 'precinct', id: c.digits(LIMITS.binId, 'precinct id') };
    else bin = { kind: 'metadata', id: c.digits(LIMITS.binId, 'metadata-bin id') };
  } else if (lead === 't' || lead === 'c' || lead === 'r' || lead === 'p') {
    throw unimplemented('model', `implicit bin descriptors (${show(item)}) are not supported`);
  } else throw c.fail('expected Hm, H<n>, H*, P<n>, T<n> or M<n>');
  const d: ModelDescriptor = codestreams === undefined ? { subtract, bin } : { subtract, codestreams, bin };
  if (c.eat(':')) {
    if (c.eat('L')) {
      if (bin.kind !== 'precinct') throw c.fail('the layers form :L<n> applies only to precinct bins');
      d.limit = { layers: c.digits(LIMITS.layers, 'layers') };
    } else d.limit = { bytes: c.digits(LIMITS.bytes, 'bytes') };
  }
  if (!c.done) throw c.fail('unexpected characters');
  return d;
}

function parseModel(v: string): ModelDescriptor[] {
  const out: ModelDescriptor[] = [];
  let codestreams: SampledRange[] | undefined;
  let unusedQualifier: string | undefined;
  for (const item of splitTopLevel(v, 'model')) {
    if (item.startsWith('[')) {
      if (unusedQualifier !== undefined) throw bad('model', `codestream qualifier ${show(unusedQualifier)} applies to no descriptor`);
      if (!item.endsWith(']') || item.length < 3) throw bad('model', `${show(item)} is not a codestream qualifier [ranges]`);
      codestreams = parseSampledRanges(item.slice(1, -1), ';', 'model', { max: LIMITS.index });
      unusedQualifier = item;
    } else {
      out.push(parseModelDescriptor(item, codestreams));
      unusedQualifier = undefined;
    }
  }
  if (unusedQualifier !== undefined) throw bad('model', `codestream qualifier ${show(unusedQualifier)} applies to no descriptor`);
  return out;
}

/** Control characters are never part of a target name. */
const CONTROL = /[\x00-\x1f\x7f]/;

function parseField(name: (typeof IMPLEMENTED_FIELDS)[number], v: string, lenient: Leniency, req: JpipRequest): void {
  switch (name) {
    case 'target':
      if (CONTROL.test(v)) throw bad('target', 'the target contains a control character');
      req.target = v;
      return;
    case 'tid':
      req.tid = parseId(v, 'tid', TARGET_ID, 'target id');
      return;
    case 'cnew':
      req.cnew = parseCnew(v);
      return;
    case 'cid':
      req.cid = parseId(v, 'cid', CHANNEL_ID, 'channel id');
      return;
    case 'cclose':
      req.cclose = parseCclose(v);
      return;
    case 'qid':
      req.qid = parseUint(v, 'qid', LIMITS.qid, 'request id');
      return;
    case 'fsiz':
      req.fsiz = parseFsiz(v);
      return;
    case 'roff': {
      const [x, y] = parsePair(v, 'roff', ['x', 'y'], 0);
      req.roff = { x, y };
      return;
    }
    case 'rsiz': {
      const [w, h] = parsePair(v, 'rsiz', ['w', 'h'], 1);
      req.rsiz = { w, h };
      return;
    }
    case 'comps':
      req.comps = splitList(v, ',', 'comps', 'component list').map((t) => parseRange(t, 'comps', { max: LIMITS.index }));
      return;
    case 'layers':
      req.layers = parseUint(v, 'layers', LIMITS.layers, 'layers');
      return;
    case 'stream':
      req.stream = parseSampledRanges(v, ',', 'stream', {
        max: LIMITS.index,
        descending: lenient.descendingStream === true,
        colonRange: lenient.colonStreamRange === true,
      });
      return;
    case 'context':
      req.context = parseContext(v);
      return;
    case 'metareq':
      req.metareq = parseMetareq(v);
      return;
    case 'len':
      req.len = parseUint(v, 'len', LIMITS.len, 'byte limit');
      return;
    case 'type':
      req.type = parseType(v);
      return;
    case 'align':
      req.align = parseYesNo(v, 'align');
      return;
    case 'wait':
      req.wait = parseYesNo(v, 'wait');
      return;
    case 'model':
      req.model = parseModel(v);
      return;
  }
}

// ---------------------------------------------------------------------------
// parseRequest
// ---------------------------------------------------------------------------

const PRINTABLE = /^[\x21-\x7e]*$/;

function decode(text: string, form: boolean): string | undefined {
  try {
    return decodeURIComponent(form ? text.replace(/\+/g, ' ') : text);
  } catch {
    return undefined;
  }
}

/**
 * Parses a JPIP request query (without the leading `?`) or form body.
 * Throws {@link JpipError}: BAD_FIELD / BAD_REQUEST (400) or UNIMPLEMENTED (501).
 *
 * @example
 * parseRequest('stream=3&fsiz=64,64,closest&rsiz=64,64&roff=0,0&len=2097152&cid=C')
 * // { cid: 'C', stream: [{ from: 3, to: 3, step: 1 }], fsiz: { fx: 64, fy: 64, round: 'closest' }, ... }
 */
export function parseRequest(query: string, opts: ParseOptions = {}): JpipRequest {
  const lenient = opts.lenient ?? {};
  const form = opts.form === true;
  const fields: { name: JpipFieldName; value: string | undefined }[] = [];
  const seen = new Set<string>();
  const ignored: string[] = [];
  const ignoredSet = new Set<string>();

  if (query !== '') {
    for (const segment of query.split('&')) {
      if (segment === '') {
        if (lenient.emptySegments) continue;
        throw new JpipError('BAD_REQUEST', 'empty field (two & in a row, or a leading or trailing &)');
      }
      const eq = segment.indexOf('=');
      const rawName = eq < 0 ? segment : segment.slice(0, eq);
      const rawValue = eq < 0 ? undefined : segment.slice(eq + 1);
      if (rawName === '') throw new JpipError('BAD_REQUEST', `field with an empty name: ${show(segment)}`);
      const decodedName = decode(rawName, form);
      if (decodedName === undefined || !PRINTABLE.test(rawName)) {
        throw new JpipError('BAD_REQUEST', `field name ${show(rawName)} is not printable ASCII or has a bad %-escape`);
      }
      let name: string = decodedName;
      if (!isJpipField(name)) {
        const lower = name.toLowerCase();
        if (isJpipField(lower)) {
          if (!lenient.caseInsensitiveNames) {
            throw new JpipError('BAD_REQUEST', `field names are case-sensitive: did you mean ${lower}?`, name);
          }
          name = lower;
        }
      }
      if (!isJpipField(name)) {
        if (rawValue !== undefined && !PRINTABLE.test(rawValue)) {
          throw new JpipError('BAD_REQUEST', `the value of ${show(name)} has a character that must be %-encoded`);
        }
        if (!ignoredSet.has(name)) {
          ignoredSet.add(name);
          ignored.push(name);
        }
        continue;
      }
      if (seen.has(name)) throw new JpipError('BAD_REQUEST', 'the field is given more than once', name);
      seen.add(name);
      let value: string | undefined;
      if (rawValue !== undefined) {
        if (!PRINTABLE.test(rawValue)) throw bad(name, 'the value has a character that must be %-encoded (space, control or non-ASCII)');
        value = decode(rawValue, form);
        if (value === undefined) throw bad(name, `bad %-escape in ${show(rawValue)}`);
      }
      fields.push({ name, value });
    }
  }

  const req: JpipRequest = { ignored };
  for (const { name, value } of fields) {
    if (UNIMPLEMENTED.has(name)) throw unimplemented(name, 'this server does not implement the field');
    if (value === undefined || value === '') throw bad(name, 'the value is empty');
    parseField(name as (typeof IMPLEMENTED_FIELDS)[number], value, lenient, req);
  }

  if (req.roff !== undefined && req.fsiz === undefined) throw new JpipError('BAD_REQUEST', 'roff needs fsiz (the frame size it refers to)', 'roff');
  if (req.rsiz !== undefined && req.fsiz === undefined) throw new JpipError('BAD_REQUEST', 'rsiz needs fsiz (the frame size it refers to)', 'rsiz');
  return reorder(req);
}

/** Puts the keys in one order (the canonical field order, ignored last), so results print alike. */
function reorder(req: JpipRequest): JpipRequest {
  const out: Record<string, unknown> = {};
  for (const k of FORMAT_ORDER) if (req[k] !== undefined) out[k] = req[k];
  out['ignored'] = req.ignored;
  return out as unknown as JpipRequest;
}

// ---------------------------------------------------------------------------
// formatRequest: the client's builder
// ---------------------------------------------------------------------------

/** The order formatRequest writes fields in. */
const FORMAT_ORDER = [
  'target', 'tid', 'cnew', 'cid', 'cclose', 'qid', 'type',
  'stream', 'context', 'fsiz', 'roff', 'rsiz', 'comps', 'layers',
  'metareq', 'model', 'align', 'wait', 'len',
] as const satisfies readonly (keyof JpipRequest)[];

function checkUint(field: string, n: unknown, max: number, what: string, min = 0): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw bad(field, `${what} must be an integer from ${min} to ${max}, got ${String(n)}`);
  }
  return n;
}

function checkList<T>(field: string, list: readonly T[] | undefined, what: string): readonly T[] {
  if (!Array.isArray(list) || list.length === 0) throw bad(field, `${what} must be a non-empty list`);
  return list;
}

/** Characters written raw; everything else is %-encoded. Raw `<>[]*!:;,=` as JHelioviewer and Kakadu clients write them (esajpip decodes %-escapes only in some fields); the parser splits a field at its first `=`. */
const RAW_OK = /^[A-Za-z0-9\-._~!*'()<>[\]:;,/=]$/;

function encodeValue(field: string, s: string): string {
  let out = '';
  for (const ch of s) {
    if (RAW_OK.test(ch)) out += ch;
    else {
      try {
        out += encodeURIComponent(ch).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
      } catch {
        throw bad(field, 'the value is not valid Unicode (lone surrogate)');
      }
    }
  }
  return out;
}

/** `a`, `a-b` or `a-`. */
export function formatRange(field: string, r: Range, max = LIMITS.index, descending = false): string {
  const from = checkUint(field, r.from, max, 'range start');
  if (r.to === undefined) return `${from}-`;
  const to = checkUint(field, r.to, max, 'range end');
  if (to < from && !descending) throw bad(field, `range ${from}-${to} runs backwards`);
  return from === to ? `${from}` : `${from}-${to}`;
}

/** `a`, `a-b`, `a-`, each with `:step` when step is not 1 (a single index with a step is written `a-a:step`). */
export function formatSampledRange(field: string, r: SampledRange, descending = false): string {
  const step = checkUint(field, r.step, LIMITS.index, 'sampling step', 1);
  let s = formatRange(field, r, LIMITS.index, descending);
  if (step === 1) return s;
  if (r.to === r.from) s = `${r.from}-${r.to}`;
  return `${s}:${step}`;
}

function formatSampledRanges(field: string, list: readonly SampledRange[] | undefined, sep: string, descending = false): string {
  return checkList(field, list, 'the range list').map((r) => formatSampledRange(field, r, descending)).join(sep);
}

function formatPair(field: string, a: number, b: number, min: number, names: [string, string]): string {
  return `${checkUint(field, a, LIMITS.coordinate, names[0], min)},${checkUint(field, b, LIMITS.coordinate, names[1], min)}`;
}

function checkId(field: string, v: unknown, re: RegExp, what: string): string {
  if (typeof v !== 'string' || v.length > LIMITS.idLength || !re.test(v)) throw bad(field, `${what} ${show(String(v))} is not valid`);
  return v;
}

/** The value of a `context` field (without `context=`). */
export function formatContext(list: readonly ContextRange[]): string {
  return checkList('context', list, 'context').map((c) => {
    if (c.kind !== 'jpxl') throw bad('context', `unknown context kind ${show(String(c.kind))}`);
    return `jpxl<${formatSampledRanges('context', c.layers, ',')}>`;
  }).join(',');
}

/** The value of a `metareq` field (without `metareq=`), %-encoding left to the caller. */
export function formatMetareq(m: MetaRequest): string {
  const groups = checkList('metareq', m.groups, 'metareq groups').map((g) => {
    const boxes = checkList('metareq', g.boxes, 'metareq boxes').map((b) => {
      if (b.boxType !== '*' && !/^[\x20-\x7e]{4}$/.test(b.boxType)) throw bad('metareq', `box type ${show(b.boxType)} is not * or four printable characters`);
      let s = b.boxType;
      if (b.limit !== undefined) s += `:${b.limit === 'r' ? 'r' : checkUint('metareq', b.limit, LIMITS.bytes, 'box limit')}`;
      if (b.flags !== undefined) {
        const flags = checkList('metareq', b.flags, 'flags');
        for (const f of flags) if (!META_FLAGS.includes(f)) throw bad('metareq', `flag ${show(String(f))} is not w, s, g or a`);
        s += `/${META_FLAGS.filter((f) => flags.includes(f)).join('')}`;
      }
      if (b.priority) s += '!';
      return s;
    });
    let s = `[${boxes.join(';')}]`;
    if (g.root !== undefined) s += `R${checkUint('metareq', g.root, LIMITS.metaRoot, 'root bin')}`;
    if (g.depth !== undefined) s += `D${checkUint('metareq', g.depth, LIMITS.metaDepth, 'depth')}`;
    return s;
  });
  return groups.join(',') + (m.metadataOnly ? '!!' : '');
}

function sameRanges(a: readonly SampledRange[] | undefined, b: readonly SampledRange[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  return a.every((r, i) => r.from === b[i]!.from && r.to === b[i]!.to && r.step === b[i]!.step);
}

function formatBin(bin: ModelBin): string {
  switch (bin.kind) {
    case 'main':
      return 'Hm';
    case 'tile':
      return bin.id === '*' ? 'H*' : `H${checkUint('model', bin.id, LIMITS.tileId, 'tile id')}`;
    case 'tile-data':
      return `T${checkUint('model', bin.id, LIMITS.tileId, 'tile id')}`;
    case 'precinct':
      return `P${checkUint('model', bin.id, LIMITS.binId, 'precinct id')}`;
    case 'metadata':
      return `M${checkUint('model', bin.id, LIMITS.binId, 'metadata-bin id')}`;
    default:
      throw bad('model', `unknown bin kind ${show(String((bin as { kind: unknown }).kind))}`);
  }
}

/**
 * The value of a `model` field (without `model=`): a codestream qualifier is
 * written only where the codestreams change. Descriptors without codestreams
 * must come before the qualified ones (the syntax cannot return to "none").
 */
export function formatModel(descriptors: readonly ModelDescriptor[]): string {
  const parts: string[] = [];
  let current: readonly SampledRange[] | undefined;
  for (const d of checkList('model', descriptors, 'model')) {
    if (!sameRanges(d.codestreams, current)) {
      if (d.codestreams === undefined) throw bad('model', 'a descriptor without codestreams cannot follow one with a [..] qualifier');
      parts.push(`[${formatSampledRanges('model', d.codestreams, ';')}]`);
      current = d.codestreams;
    }
    let s = (d.subtract ? '-' : '') + formatBin(d.bin);
    if (d.limit !== undefined) {
      if ('layers' in d.limit) {
        if (d.bin.kind !== 'precinct') throw bad('model', 'the layers form applies only to precinct bins');
        s += `:L${checkUint('model', d.limit.layers, LIMITS.layers, 'layers')}`;
      } else s += `:${checkUint('model', d.limit.bytes, LIMITS.bytes, 'bytes')}`;
    }
    parts.push(s);
  }
  return parts.join(',');
}

function formatType(list: readonly RequestedType[]): string {
  return checkList('type', list, 'type').map((t) => {
    if (t.name !== 'jpp-stream' && t.name !== 'jpt-stream') throw bad('type', `unknown return type ${show(String(t.name))}`);
    return t.ext ? `${t.name};ptype=ext` : t.name;
  }).join(',');
}

function formatValue(name: (typeof FORMAT_ORDER)[number], req: Partial<JpipRequest>): string {
  switch (name) {
    case 'target': {
      const t = req.target;
      if (typeof t !== 'string' || t === '' || CONTROL.test(t)) throw bad('target', 'the target must be a non-empty string without control characters');
      return t;
    }
    case 'tid':
      return checkId('tid', req.tid, TARGET_ID, 'target id');
    case 'cnew': {
      const list = checkList('cnew', req.cnew, 'transport list');
      for (const t of list) if (!TRANSPORT.test(t)) throw bad('cnew', `transport ${show(t)} is not a transport name`);
      return list.join(',');
    }
    case 'cid':
      return checkId('cid', req.cid, CHANNEL_ID, 'channel id');
    case 'cclose':
      return req.cclose === '*' ? '*' : checkList('cclose', req.cclose, 'channel list').map((c) => checkId('cclose', c, CHANNEL_ID, 'channel id')).join(',');
    case 'qid':
      return String(checkUint('qid', req.qid, LIMITS.qid, 'qid'));
    case 'type':
      return formatType(req.type!);
    case 'stream':
      return formatSampledRanges('stream', req.stream, ',', true);
    case 'context':
      return formatContext(req.context!);
    case 'fsiz': {
      const f = req.fsiz!;
      if (!ROUND.includes(f.round)) throw bad('fsiz', `rounding ${show(String(f.round))} is not round-down, round-up or closest`);
      return `${formatPair('fsiz', f.fx, f.fy, 1, ['fx', 'fy'])},${f.round}`;
    }
    case 'roff':
      return formatPair('roff', req.roff!.x, req.roff!.y, 0, ['x', 'y']);
    case 'rsiz':
      return formatPair('rsiz', req.rsiz!.w, req.rsiz!.h, 1, ['w', 'h']);
    case 'comps':
      return checkList('comps', req.comps, 'component list').map((r) => formatRange('comps', r)).join(',');
    case 'layers':
      return String(checkUint('layers', req.layers, LIMITS.layers, 'layers'));
    case 'metareq':
      return formatMetareq(req.metareq!);
    case 'model':
      return formatModel(req.model!);
    case 'align':
      return req.align ? 'yes' : 'no';
    case 'wait':
      return req.wait ? 'yes' : 'no';
    case 'len':
      return String(checkUint('len', req.len, LIMITS.len, 'len'));
  }
}

/**
 * Builds the canonical query (without `?`) for a request: fields in a fixed
 * order (len last), the fsiz rounding always written (esajpip's default
 * differs from the standard's and carries over between requests), `<>[]*!:;,`
 * raw as JHelioviewer writes them, everything else outside the URL unreserved
 * characters %-encoded. `ignored` is not written. `parseRequest(formatRequest(r))`
 * deep-equals r for every valid r (with `ignored: []`).
 * Throws JpipError BAD_FIELD for a value the parser would reject.
 *
 * @example
 * formatRequest({ cnew: ['http'], type: [{ name: 'jpp-stream', ext: false }], tid: '0', len: 512 })
 * // 'tid=0&cnew=http&type=jpp-stream&len=512'
 */
export function formatRequest(req: Partial<JpipRequest>): string {
  if (req.roff !== undefined && req.fsiz === undefined) throw new JpipError('BAD_REQUEST', 'roff needs fsiz', 'roff');
  if (req.rsiz !== undefined && req.fsiz === undefined) throw new JpipError('BAD_REQUEST', 'rsiz needs fsiz', 'rsiz');
  const parts: string[] = [];
  for (const name of FORMAT_ORDER) {
    if (req[name] === undefined) continue;
    parts.push(`${name}=${encodeValue(name, formatValue(name, req))}`);
  }
  return parts.join('&');
}
