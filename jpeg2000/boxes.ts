/**
 * The JPEG 2000 box layer (ISO/IEC 15444-1 Annex I, 15444-2 Annex M): parse a
 * box tree from a buffer or from a RandomAccess source (headers only, so a
 * multi-gigabyte file is never read whole), typed readers and writers for the
 * boxes the JPIP server needs, and the list of codestreams of a JP2, JPX
 * (embedded or linked through fragment tables) or raw codestream file.
 */
import { ByteReader, ByteWriter, fourcc, typeCode } from './bytes.js';
import { J2K_ERROR, J2kError, type J2kErrorCode } from './errors.js';
import { bufferSource, type RandomAccess } from './source.js';

export type { RandomAccess } from './source.js';

// ---------------------------------------------------------------------------
// Box tree
// ---------------------------------------------------------------------------

/** One box of a parsed tree. All offsets are absolute (file) offsets. */
export interface Box {
  /** Four-character type, e.g. `'jp2c'`, `'url '`. */
  type: string;
  /** Offset of the box header (LBox). */
  offset: number;
  /** 8, or 16 when the XLBox form is used. */
  headerLength: number;
  /** Total length, header included, with LBox=0 resolved to the end of the parent/file. */
  length: number;
  /** Offset of the first content byte (`offset + headerLength`). */
  contentOffset: number;
  /** `length - headerLength`. */
  contentLength: number;
  /** Child boxes, for the types in the superbox set. */
  children?: Box[];
}

/** Box types whose content is itself a sequence of boxes (JP2 and JPX). */
export const SUPERBOXES: ReadonlySet<string> = new Set([
  'jp2h', // JP2 header
  'res ', // resolution
  'uinf', // UUID info
  'jpch', // codestream header (JPX)
  'jplh', // compositing layer header (JPX)
  'cgrp', // colour group (JPX)
  'ftbl', // fragment table (JPX)
  'asoc', // association (JPX)
  'comp', // composition (JPX)
  'drep', // desired reproductions (JPX)
]);

/** Default limit on superbox nesting. */
export const MAX_BOX_DEPTH = 32;

/** Options of the box tree parsers. */
export interface ParseBoxOptions {
  /** File name for error messages. */
  file?: string | undefined;
  /** Absolute offset of `bytes[0]` (buffer parser only). */
  base?: number;
  /** First byte to parse (index into the buffer / source position). Default 0. */
  start?: number;
  /** End of the parsed range (exclusive). Default: end of the data. */
  end?: number;
  /** Nesting limit; deeper superboxes are BAD_BOX. Default {@link MAX_BOX_DEPTH}. */
  maxDepth?: number;
  /** Which types to recurse into. Default {@link SUPERBOXES}. */
  superboxes?: ReadonlySet<string>;
}

interface Walker {
  read(pos: number, len: number): Uint8Array;
  base: number;
  file: string | undefined;
  dataEnd: number;
  maxDepth: number;
  superboxes: ReadonlySet<string>;
}

function u32At(b: Uint8Array, i: number): number {
  return b[i]! * 0x1000000 + ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!);
}

function walk(w: Walker, start: number, end: number, depth: number, parent: string | undefined): Box[] {
  const where = parent === undefined ? 'the file' : `its parent '${parent}'`;
  const out: Box[] = [];
  let pos = start;
  // Every iteration consumes at least 8 bytes, so the loop ends.
  while (pos < end) {
    const avail = end - pos;
    // Running out at the end of the data is truncation; inside a complete parent, a malformed box.
    const short: J2kErrorCode = end === w.dataEnd ? J2K_ERROR.TRUNCATED : J2K_ERROR.BAD_BOX;
    const at = { file: w.file, offset: w.base + pos };
    if (avail < 8) throw new J2kError(short, `box header needs 8 bytes, ${avail} left in ${where}`, at);
    const h = w.read(pos, 8);
    const lbox = u32At(h, 0);
    const type = fourcc(u32At(h, 4));
    let headerLength = 8;
    let length: number;
    if (lbox === 1) {
      if (avail < 16) throw new J2kError(short, `box '${type}': XLBox needs 16 header bytes, ${avail} left in ${where}`, at);
      const x = w.read(pos + 8, 8);
      const hi = u32At(x, 0);
      const lo = u32At(x, 4);
      if (hi >= 0x200000) throw new J2kError(J2K_ERROR.BAD_BOX, `box '${type}': XLBox length too large`, at);
      length = hi * 0x100000000 + lo;
      headerLength = 16;
      if (length < 16) throw new J2kError(J2K_ERROR.BAD_BOX, `box '${type}': XLBox length ${length} is smaller than its 16-byte header`, at);
    } else if (lbox === 0) {
      length = avail;
    } else {
      if (lbox < 8) throw new J2kError(J2K_ERROR.BAD_BOX, `box '${type}': length ${lbox} is smaller than its 8-byte header`, at);
      length = lbox;
    }
    if (length > avail) {
      throw new J2kError(short, `box '${type}' of ${length} bytes runs past the end of ${where} (${avail} bytes left)`, at);
    }
    const box: Box = {
      type,
      offset: w.base + pos,
      headerLength,
      length,
      contentOffset: w.base + pos + headerLength,
      contentLength: length - headerLength,
    };
    if (w.superboxes.has(type)) {
      if (depth + 1 > w.maxDepth) throw new J2kError(J2K_ERROR.BAD_BOX, `superboxes nested deeper than ${w.maxDepth}`, at);
      box.children = walk(w, pos + headerLength, pos + length, depth + 1, type);
    }
    out.push(box);
    pos += length;
  }
  return out;
}

/**
 * Parse the box sequence of `bytes` (a whole file, or a window of one whose
 * first byte is at absolute offset `opts.base`), recursing into superboxes.
 * Throws TRUNCATED when the data ends inside a box, BAD_BOX for impossible lengths.
 */
export function parseBoxes(bytes: Uint8Array, opts: ParseBoxOptions = {}): Box[] {
  const start = opts.start ?? 0;
  const end = opts.end ?? bytes.length;
  if (start < 0 || end > bytes.length || start > end) throw new RangeError(`parseBoxes: bad range ${start}..${end} of ${bytes.length}`);
  const w: Walker = {
    read: (pos, len) => bytes.subarray(pos, pos + len),
    base: opts.base ?? 0,
    file: opts.file,
    dataEnd: bytes.length,
    maxDepth: opts.maxDepth ?? MAX_BOX_DEPTH,
    superboxes: opts.superboxes ?? SUPERBOXES,
  };
  return walk(w, start, end, 0, undefined);
}

/**
 * Parse the box tree of a RandomAccess source reading only box headers (8 or
 * 16 bytes each); leaf contents (jp2c especially) are never read.
 * `opts.base` is ignored: offsets are source positions.
 */
export function readBoxTree(src: RandomAccess, opts: ParseBoxOptions = {}): Box[] {
  const start = opts.start ?? 0;
  const end = opts.end ?? src.size;
  if (start < 0 || end > src.size || start > end) throw new RangeError(`readBoxTree: bad range ${start}..${end} of ${src.size}`);
  const w: Walker = {
    read: (pos, len) => src.read(pos, len),
    base: 0,
    file: opts.file ?? src.name,
    dataEnd: src.size,
    maxDepth: opts.maxDepth ?? MAX_BOX_DEPTH,
    superboxes: opts.superboxes ?? SUPERBOXES,
  };
  return walk(w, start, end, 0, undefined);
}

/** The first direct child (or top-level box) of a type. */
export function findBox(boxes: readonly Box[], type: string): Box | undefined {
  return boxes.find((b) => b.type === type);
}

/** All direct children (or top-level boxes) of a type, in file order. */
export function findBoxes(boxes: readonly Box[], type: string): Box[] {
  return boxes.filter((b) => b.type === type);
}

/** The content bytes of a box parsed from `bytes` (whose first byte is at absolute offset `base`). */
export function boxContent(bytes: Uint8Array, box: Box, base = 0): Uint8Array {
  const start = box.contentOffset - base;
  if (start < 0 || start + box.contentLength > bytes.length) throw new RangeError(`box '${box.type}' at ${box.offset} is outside the buffer`);
  return bytes.subarray(start, start + box.contentLength);
}

/** Default cap on metadata box contents read into memory (16 MiB). */
export const MAX_METADATA_BOX = 16 * 1024 * 1024;

/** Read the content of a (metadata) box from a source; refuses (UNSUPPORTED) contents over `limit` bytes. */
export function readBoxContent(src: RandomAccess, box: Box, limit = MAX_METADATA_BOX): Uint8Array {
  if (box.contentLength > limit) {
    throw new J2kError(J2K_ERROR.UNSUPPORTED, `box '${box.type}' content of ${box.contentLength} bytes exceeds the ${limit}-byte limit`, {
      file: src.name,
      offset: box.offset,
    });
  }
  return src.read(box.contentOffset, box.contentLength);
}

// ---------------------------------------------------------------------------
// Typed readers
// ---------------------------------------------------------------------------

/** Where a box content came from, for error messages. */
export interface BoxContext {
  file?: string | undefined;
  /** Absolute offset of the first content byte. */
  offset?: number | undefined;
}

function reader(content: Uint8Array, at: BoxContext): ByteReader {
  return new ByteReader(content, { base: at.offset ?? 0, file: at.file });
}

function badBox(reason: string, at: BoxContext, offset = at.offset): J2kError {
  return new J2kError(J2K_ERROR.BAD_BOX, reason, { file: at.file, offset });
}

/** The 12-byte JP2 signature box: `0000000C 6A502020 0D0A870A`. */
export const JP2_SIGNATURE: Uint8Array = Uint8Array.of(0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a);

/** Whether `bytes` starts with the complete JP2 signature box. */
export function hasJp2Signature(bytes: Uint8Array): boolean {
  if (bytes.length < JP2_SIGNATURE.length) return false;
  for (let i = 0; i < JP2_SIGNATURE.length; i++) if (bytes[i] !== JP2_SIGNATURE[i]) return false;
  return true;
}

/** Throw NOT_JPEG2000 (or TRUNCATED for a prefix of it) unless `bytes` starts with the JP2 signature box. */
export function checkSignature(bytes: Uint8Array, at: BoxContext = {}): void {
  if (hasJp2Signature(bytes)) return;
  const n = Math.min(bytes.length, JP2_SIGNATURE.length);
  let prefix = true;
  for (let i = 0; i < n; i++) if (bytes[i] !== JP2_SIGNATURE[i]) prefix = false;
  if (prefix) throw new J2kError(J2K_ERROR.TRUNCATED, `JP2 signature box needs 12 bytes, ${bytes.length} present`, at);
  throw new J2kError(J2K_ERROR.NOT_JPEG2000, 'no JP2 signature box', at);
}

/** File type box (ftyp). */
export interface FileType {
  brand: string;
  minorVersion: number;
  compatibility: string[];
}

/** Read an ftyp box content: BR, MinV, CL*. */
export function readFtyp(content: Uint8Array, at: BoxContext = {}): FileType {
  if (content.length < 8 || content.length % 4 !== 0) throw badBox(`ftyp content of ${content.length} bytes is not 8 + 4n`, at);
  const r = reader(content, at);
  const brand = fourcc(r.u32('ftyp BR'));
  const minorVersion = r.u32('ftyp MinV');
  const compatibility: string[] = [];
  while (r.remaining > 0) compatibility.push(fourcc(r.u32('ftyp CL')));
  return { brand, minorVersion, compatibility };
}

/** Image header box (ihdr), fields as stored plus the decoded bit depth. */
export interface ImageHeader {
  height: number;
  width: number;
  /** Number of components. */
  nc: number;
  /** BPC byte as stored: (bit depth - 1) | 0x80 if signed; 255 = varies (bpcc box). */
  bpc: number;
  /** Compression type (7 = JPEG 2000). */
  c: number;
  /** Colourspace unknown flag. */
  unk: number;
  /** Intellectual property flag. */
  ipr: number;
  /** Bit depth from BPC, undefined when BPC is 255. */
  bitDepth: number | undefined;
  /** Signedness from BPC (false when BPC is 255). */
  signed: boolean;
}

/** Read an ihdr box content (exactly 14 bytes). */
export function readIhdr(content: Uint8Array, at: BoxContext = {}): ImageHeader {
  if (content.length !== 14) throw badBox(`ihdr content is ${content.length} bytes, not 14`, at);
  const r = reader(content, at);
  const height = r.u32('ihdr HEIGHT');
  const width = r.u32('ihdr WIDTH');
  const nc = r.u16('ihdr NC');
  const bpc = r.u8('ihdr BPC');
  const c = r.u8('ihdr C');
  const unk = r.u8('ihdr UnkC');
  const ipr = r.u8('ihdr IPR');
  if (height === 0 || width === 0) throw new J2kError(J2K_ERROR.BAD_VALUE, `ihdr: empty image ${width}x${height}`, at);
  if (nc === 0) throw new J2kError(J2K_ERROR.BAD_VALUE, 'ihdr: zero components', at);
  const varies = bpc === 0xff;
  const bitDepth = varies ? undefined : (bpc & 0x7f) + 1;
  if (bitDepth !== undefined && bitDepth > 38) throw new J2kError(J2K_ERROR.BAD_VALUE, `ihdr: bit depth ${bitDepth} over 38`, at);
  return { height, width, nc, bpc, c, unk, ipr, bitDepth, signed: !varies && (bpc & 0x80) !== 0 };
}

/** Known enumerated colourspaces of the colr box (JP2 subset). */
export const ENUM_CS = { sRGB: 16, greyscale: 17, sYCC: 18 } as const;

/** Colour specification box (colr). */
export interface ColourSpec {
  /** 1 enumerated, 2 restricted ICC, 3 any ICC (JPX), 4 vendor (JPX). */
  method: number;
  precedence: number;
  approximation: number;
  /** EnumCS, for method 1. */
  enumCS?: number | undefined;
  /** ICC profile, for methods 2 and 3. */
  icc?: Uint8Array | undefined;
  /** Remaining bytes for other methods. */
  data?: Uint8Array | undefined;
}

/** Read a colr box content. */
export function readColr(content: Uint8Array, at: BoxContext = {}): ColourSpec {
  const r = reader(content, at);
  const method = r.u8('colr METH');
  const p = r.u8('colr PREC');
  const precedence = p >= 128 ? p - 256 : p;
  const approximation = r.u8('colr APPROX');
  if (method === 1) {
    if (r.remaining < 4) throw new J2kError(J2K_ERROR.TRUNCATED, 'colr: EnumCS needs 4 bytes', { file: at.file, offset: r.offset });
    const enumCS = r.u32('colr EnumCS');
    // JPX allows EnumCS parameters after the value; keep them as data.
    return r.remaining > 0 ? { method, precedence, approximation, enumCS, data: r.bytesOf(r.remaining) } : { method, precedence, approximation, enumCS };
  }
  const rest = r.bytesOf(r.remaining);
  if (method === 2 || method === 3) return { method, precedence, approximation, icc: rest };
  return { method, precedence, approximation, data: rest };
}

/** One entry of a fragment list (flst). */
export interface FragmentEntry {
  /** Offset of the fragment in the referenced file. */
  offset: number;
  length: number;
  /** Index into the data reference (dtbl) list, 1-based; 0 = this file. */
  dataReference: number;
}

/** Read a flst box content: NF, then NF x (OFF u64, LEN u32, DR u16). */
export function readFlst(content: Uint8Array, at: BoxContext = {}): FragmentEntry[] {
  const r = reader(content, at);
  const nf = r.u16('flst NF');
  if (content.length !== 2 + 14 * nf) throw badBox(`flst of ${nf} fragments must be ${2 + 14 * nf} bytes, is ${content.length}`, at);
  const out: FragmentEntry[] = [];
  for (let i = 0; i < nf; i++) {
    const offset = r.u64('flst OFF');
    const length = r.u32('flst LEN');
    const dataReference = r.u16('flst DR');
    out.push({ offset, length, dataReference });
  }
  return out;
}

/** Data entry URL box (url ). */
export interface UrlInfo {
  version: number;
  /** 24-bit flags. */
  flags: number;
  /** The location as stored (UTF-8, without its NUL terminator). */
  location: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Read a `url ` box content: VERS, FLAG (24 bits), NUL-terminated UTF-8 location. */
export function readUrl(content: Uint8Array, at: BoxContext = {}): UrlInfo {
  const r = reader(content, at);
  const version = r.u8('url VERS');
  const flags = r.u8('url FLAG') * 0x10000 + r.u16('url FLAG');
  const rest = r.bytesOf(r.remaining);
  let n = rest.indexOf(0);
  if (n < 0) n = rest.length; // tolerate a missing terminator
  for (let i = n; i < rest.length; i++) {
    if (rest[i] !== 0) throw badBox('url: bytes after the NUL terminator of the location', at, (at.offset ?? 0) + 4 + i);
  }
  let location: string;
  try {
    location = utf8.decode(rest.subarray(0, n));
  } catch (e) {
    throw new J2kError(J2K_ERROR.BAD_BOX, 'url: location is not valid UTF-8', { file: at.file, offset: at.offset, cause: e });
  }
  return { version, flags, location };
}

/** Read a dtbl box content: NDR, then NDR `url ` boxes. */
export function readDtbl(content: Uint8Array, at: BoxContext = {}): UrlInfo[] {
  const r = reader(content, at);
  const ndr = r.u16('dtbl NDR');
  const base = at.offset ?? 0;
  const boxes = parseBoxes(content, { start: r.pos, base, file: at.file, superboxes: new Set() });
  if (boxes.length !== ndr) throw badBox(`dtbl announces ${ndr} data references, holds ${boxes.length} boxes`, at);
  return boxes.map((b) => {
    if (b.type !== 'url ') throw badBox(`dtbl holds a '${b.type}' box, not 'url '`, at, b.offset);
    return readUrl(boxContent(content, b, base), { file: at.file, offset: b.contentOffset });
  });
}

/** Read an `xml ` box content as UTF-8 text (invalid sequences replaced). */
export function readXml(content: Uint8Array): string {
  return new TextDecoder('utf-8').decode(content);
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

/** Options of the box writers. */
export interface BoxWriteOptions {
  /** Force the 16-byte XLBox header form. */
  extended?: boolean;
}

const MAX_LBOX = 0xffffffff;

/**
 * The header of a box of `contentLength` bytes: 8 bytes, or 16 (XLBox) when
 * asked or when the box would not fit a 32-bit LBox; `toEnd` writes LBox=0.
 */
export function boxHeader(type: string, contentLength: number, opts: BoxWriteOptions & { toEnd?: boolean } = {}): Uint8Array {
  const w = new ByteWriter(16);
  const code = typeCode(type);
  if (opts.toEnd) return w.u32(0).u32(code).result();
  if (opts.extended || contentLength + 8 > MAX_LBOX) return w.u32(1).u32(code).u64(contentLength + 16).result();
  return w.u32(contentLength + 8).u32(code).result();
}

/** Concatenate byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A complete box: header + content. */
export function box(type: string, content: Uint8Array, opts: BoxWriteOptions = {}): Uint8Array {
  return concatBytes([boxHeader(type, content.length, opts), content]);
}

/** A superbox holding already-written child boxes. */
export function superbox(type: string, children: readonly Uint8Array[], opts: BoxWriteOptions = {}): Uint8Array {
  return box(type, concatBytes(children), opts);
}

/** The JP2 signature box. */
export function signatureBox(): Uint8Array {
  return JP2_SIGNATURE.slice();
}

/** An ftyp box. */
export function ftypBox(ft: FileType): Uint8Array {
  const w = new ByteWriter();
  w.u32(typeCode(ft.brand)).u32(ft.minorVersion);
  for (const c of ft.compatibility) w.u32(typeCode(c));
  return box('ftyp', w.result());
}

/** Fields of an ihdr box to write: give `bpc`, or `bitDepth` (+ `signed`). */
export interface IhdrFields {
  height: number;
  width: number;
  nc: number;
  bpc?: number;
  bitDepth?: number;
  signed?: boolean;
  /** Default 7 (JPEG 2000). */
  c?: number;
  unk?: number;
  ipr?: number;
}

/** The BPC byte of a bit depth (1..38) and signedness. */
export function bpcOf(bitDepth: number, signed = false): number {
  if (!Number.isInteger(bitDepth) || bitDepth < 1 || bitDepth > 38) throw new RangeError(`bit depth ${bitDepth} is not in 1..38`);
  return (bitDepth - 1) | (signed ? 0x80 : 0);
}

/** An ihdr box. */
export function ihdrBox(h: IhdrFields): Uint8Array {
  const bpc = h.bpc ?? (h.bitDepth !== undefined ? bpcOf(h.bitDepth, h.signed) : undefined);
  if (bpc === undefined) throw new RangeError('ihdrBox: give bpc or bitDepth');
  const w = new ByteWriter(14);
  w.u32(h.height).u32(h.width).u16(h.nc).u8(bpc).u8(h.c ?? 7).u8(h.unk ?? 0).u8(h.ipr ?? 0);
  return box('ihdr', w.result());
}

/** A colr box: enumerated (`enumCS`) unless an ICC profile is given. */
export function colrBox(c: Partial<ColourSpec> & ({ enumCS: number } | { icc: Uint8Array } | { method: number; data: Uint8Array })): Uint8Array {
  const method = c.method ?? (c.icc !== undefined ? 2 : 1);
  const w = new ByteWriter();
  w.u8(method).u8((c.precedence ?? 0) & 0xff).u8(c.approximation ?? 0);
  if (method === 1) {
    if (c.enumCS === undefined) throw new RangeError('colrBox: method 1 needs enumCS');
    w.u32(c.enumCS);
    if (c.data) w.bytes(c.data);
  } else if (method === 2 || method === 3) {
    if (c.icc === undefined) throw new RangeError(`colrBox: method ${method} needs icc`);
    w.bytes(c.icc);
  } else if (c.data) {
    w.bytes(c.data);
  }
  return box('colr', w.result());
}

/** A flst box. */
export function flstBox(entries: readonly FragmentEntry[]): Uint8Array {
  if (entries.length > 0xffff) throw new RangeError('flstBox: more than 65535 fragments');
  const w = new ByteWriter(2 + 14 * entries.length);
  w.u16(entries.length);
  for (const e of entries) w.u64(e.offset).u32(e.length).u16(e.dataReference);
  return box('flst', w.result());
}

/** A `url ` box (location written as NUL-terminated UTF-8). */
export function urlBox(u: { location: string; version?: number; flags?: number }): Uint8Array {
  if (u.location.includes('\0')) throw new RangeError('urlBox: location contains NUL');
  const loc = new TextEncoder().encode(u.location);
  const flags = u.flags ?? 0;
  const w = new ByteWriter(loc.length + 5);
  w.u8(u.version ?? 0).u8(flags >>> 16).u16(flags & 0xffff).bytes(loc).u8(0);
  return box('url ', w.result());
}

/** A dtbl box holding one `url ` box per location. */
export function dtblBox(urls: readonly (string | { location: string; version?: number; flags?: number })[]): Uint8Array {
  if (urls.length > 0xffff) throw new RangeError('dtblBox: more than 65535 data references');
  const w = new ByteWriter();
  w.u16(urls.length);
  for (const u of urls) w.bytes(urlBox(typeof u === 'string' ? { location: u } : u));
  return box('dtbl', w.result());
}

/** An `xml ` box (UTF-8). */
export function xmlBox(text: string): Uint8Array {
  return box('xml ', new TextEncoder().encode(text));
}

// ---------------------------------------------------------------------------
// Codestream listing
// ---------------------------------------------------------------------------

/** A codestream in a contiguous codestream (jp2c) box; offset/length of its content. */
export interface EmbeddedCodestream {
  index: number;
  kind: 'embedded';
  offset: number;
  length: number;
  /** Index of the jp2c box among the top-level boxes. */
  boxIndex: number;
}

/** A codestream held by a fragment table (ftbl) with a single fragment. */
export interface FragmentCodestream {
  index: number;
  kind: 'fragment';
  /** Location of the url box the fragment refers to ('' when dataReference is 0: this file). */
  url: string;
  offset: number;
  length: number;
  dataReference: number;
  /** Index of the ftbl box among the top-level boxes. */
  boxIndex: number;
}

/** A raw codestream file (starts with SOC SIZ). */
export interface RawCodestream {
  index: 0;
  kind: 'raw';
  offset: 0;
  length: number;
}

export type CodestreamRef = EmbeddedCodestream | FragmentCodestream | RawCodestream;

/** What a file holds: its top-level boxes in file order and its codestreams. */
export interface Container {
  format: 'jp2' | 'jpx' | 'raw';
  /** Absent for raw codestreams. */
  fileType?: FileType | undefined;
  /** Top-level box tree in file order (empty for raw codestreams). */
  boxes: Box[];
  /** Codestreams in file order (jp2c and ftbl boxes numbered together). */
  codestreams: CodestreamRef[];
  /** The url boxes of the dtbl box, if any (dataReference n is entry n-1). */
  dataReferences: UrlInfo[];
  /** The ihdr of the jp2h box, if present. */
  imageHeader?: ImageHeader | undefined;
}

function isRandomAccess(x: Uint8Array | RandomAccess): x is RandomAccess {
  return !(x instanceof Uint8Array);
}

/**
 * Read the container structure of a JP2, JPX or raw codestream file, reading
 * only box headers and small metadata boxes (ftyp, ihdr, ftbl/flst, dtbl).
 * Not JPEG 2000 => NOT_JPEG2000; an ftbl with several fragments => UNSUPPORTED.
 */
export function readContainer(input: Uint8Array | RandomAccess, opts: { file?: string | undefined } = {}): Container {
  const src = isRandomAccess(input) ? input : bufferSource(input, opts.file);
  const file = opts.file ?? src.name;
  const at = (offset: number): BoxContext => ({ file, offset });
  if (src.size === 0) throw new J2kError(J2K_ERROR.NOT_JPEG2000, 'empty file', at(0));
  const head = src.read(0, Math.min(12, src.size));

  if (head.length >= 2 && head[0] === 0xff && head[1] === 0x4f) {
    if (head.length < 4) throw new J2kError(J2K_ERROR.TRUNCATED, 'codestream ends inside SOC/SIZ', at(0));
    if (head[2] === 0xff && head[3] === 0x51) {
      return { format: 'raw', boxes: [], codestreams: [{ index: 0, kind: 'raw', offset: 0, length: src.size }], dataReferences: [] };
    }
  }
  checkSignature(head, at(0));

  const boxes = readBoxTree(src, { file });
  if (boxes.length < 2 || boxes[1]!.type !== 'ftyp') throw badBox('the JP2 signature box is not followed by an ftyp box', at(12));
  const ftypBoxInfo = boxes[1]!;
  const fileType = readFtyp(readBoxContent(src, ftypBoxInfo, 4096), at(ftypBoxInfo.contentOffset));
  const brands = [fileType.brand, ...fileType.compatibility];
  let format: 'jp2' | 'jpx';
  if (fileType.brand === 'jpx ') format = 'jpx';
  else if (fileType.brand === 'jp2 ') format = 'jp2';
  else if (brands.includes('jpx ') || brands.includes('jpxb')) format = 'jpx';
  else if (brands.includes('jp2 ')) format = 'jp2';
  else throw new J2kError(J2K_ERROR.UNSUPPORTED, `file type '${fileType.brand}' is neither JP2 nor JPX compatible`, at(ftypBoxInfo.offset));

  let imageHeader: ImageHeader | undefined;
  const jp2h = findBox(boxes, 'jp2h');
  const ihdr = jp2h?.children && findBox(jp2h.children, 'ihdr');
  if (ihdr) imageHeader = readIhdr(readBoxContent(src, ihdr, 64), at(ihdr.contentOffset));

  const dtbls = findBoxes(boxes, 'dtbl');
  if (dtbls.length > 1) throw badBox('more than one dtbl box', at(dtbls[1]!.offset));
  const dataReferences = dtbls.length === 1 ? readDtbl(readBoxContent(src, dtbls[0]!), at(dtbls[0]!.contentOffset)) : [];

  const codestreams: CodestreamRef[] = [];
  boxes.forEach((b, boxIndex) => {
    if (b.type === 'jp2c') {
      codestreams.push({ index: codestreams.length, kind: 'embedded', offset: b.contentOffset, length: b.contentLength, boxIndex });
    } else if (b.type === 'ftbl') {
      const flsts = findBoxes(b.children ?? [], 'flst');
      if (flsts.length !== 1) throw badBox(`ftbl holds ${flsts.length} flst boxes, not 1`, at(b.offset));
      const flst = flsts[0]!;
      const entries = readFlst(readBoxContent(src, flst), at(flst.contentOffset));
      if (entries.length === 0) throw badBox('flst lists no fragment', at(flst.offset));
      if (entries.length > 1) {
        throw new J2kError(J2K_ERROR.UNSUPPORTED, `codestream ${codestreams.length} is split into ${entries.length} fragments; only single-fragment codestreams are supported`, at(flst.offset));
      }
      const e = entries[0]!;
      let url = '';
      if (e.dataReference > 0) {
        const ref = dataReferences[e.dataReference - 1];
        if (ref === undefined) {
          throw new J2kError(J2K_ERROR.BAD_REFERENCE, `flst data reference ${e.dataReference} is not in the dtbl (${dataReferences.length} entries)`, at(flst.offset));
        }
        url = ref.location;
      } else if (e.offset + e.length > src.size) {
        throw new J2kError(J2K_ERROR.TRUNCATED, `fragment ${e.offset}+${e.length} runs past the end of the file`, at(flst.offset));
      }
      codestreams.push({ index: codestreams.length, kind: 'fragment', url, offset: e.offset, length: e.length, dataReference: e.dataReference, boxIndex });
    }
  });
  if (codestreams.length === 0) throw badBox('no codestream: neither jp2c nor ftbl box', at(0));
  return { format, fileType, boxes, codestreams, dataReferences, imageHeader };
}

/** The codestreams of a JP2/JPX/raw file in order (see {@link readContainer}). */
export function listCodestreams(input: Uint8Array | RandomAccess, opts: { file?: string | undefined } = {}): CodestreamRef[] {
  return readContainer(input, opts).codestreams;
}
