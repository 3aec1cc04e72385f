/**
 * Writers of JP2 / JPX containers around existing codestreams, for the fixture
 * generator and the tests: plain JP2, JPX with embedded codestreams, and
 * linked JPX (fragment tables pointing into other files, like `kdu_merge -links`).
 */
import path from 'node:path';
import {
  box,
  colrBox,
  concatBytes,
  dtblBox,
  ENUM_CS,
  flstBox,
  ftypBox,
  ihdrBox,
  readContainer,
  signatureBox,
  superbox,
  xmlBox,
  type RandomAccess,
} from '../jpeg2000/boxes.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { encodeReference, fileUrl } from '../jpeg2000/linked.js';

/** Image properties written to ihdr/colr. */
export interface ImageInfo {
  width: number;
  height: number;
  components: number;
  bitDepth: number;
  signed?: boolean;
  /** colr EnumCS; default sRGB for 3+ components, greyscale otherwise. */
  enumCS?: number;
}

/** Options of {@link writeJp2}. */
export interface Jp2Options extends ImageInfo {
  /** Text of an `xml ` box written between jp2h and jp2c. */
  xml?: string;
}

function ihdrOf(img: ImageInfo): Uint8Array {
  return ihdrBox({ height: img.height, width: img.width, nc: img.components, bitDepth: img.bitDepth, signed: img.signed ?? false });
}

function colrOf(img: ImageInfo): Uint8Array {
  return colrBox({ enumCS: img.enumCS ?? (img.components >= 3 ? ENUM_CS.sRGB : ENUM_CS.greyscale) });
}

function jp2hOf(img: ImageInfo): Uint8Array {
  return superbox('jp2h', [ihdrOf(img), colrOf(img)]);
}

/** A JP2 file: signature, ftyp 'jp2 ', jp2h(ihdr, colr), optional xml, jp2c. */
export function writeJp2(codestream: Uint8Array, opts: Jp2Options): Uint8Array {
  const parts = [signatureBox(), ftypBox({ brand: 'jp2 ', minorVersion: 0, compatibility: ['jp2 '] }), jp2hOf(opts)];
  if (opts.xml !== undefined) parts.push(xmlBox(opts.xml));
  parts.push(box('jp2c', codestream));
  return concatBytes(parts);
}

const JPX_FTYP = { brand: 'jpx ', minorVersion: 0, compatibility: ['jpx ', 'jp2 ', 'jpxb'] };

/** Options of {@link writeJpx}: one ImageInfo for all codestreams, or `frames` per codestream. */
export interface JpxOptions extends ImageInfo {
  /** Per-codestream image properties (default: the top-level ones). */
  frames?: ImageInfo[];
  /** Text of an `xml ` box written after the headers. */
  xml?: string;
}

function frameInfo(opts: JpxOptions, i: number): ImageInfo {
  return opts.frames?.[i] ?? opts;
}

/** The per-codestream headers: jpch(ihdr) + jplh(cgrp(colr)). */
function frameHeaders(img: ImageInfo): Uint8Array[] {
  return [superbox('jpch', [ihdrOf(img)]), superbox('jplh', [superbox('cgrp', [colrOf(img)])])];
}

/**
 * A JPX file with embedded codestreams: signature, ftyp 'jpx ' (compatible
 * 'jpx ', 'jp2 ', 'jpxb'), jp2h (from the first codestream), per codestream
 * jpch + jplh, optional xml, then one jp2c per codestream. No rreq box.
 */
export function writeJpx(codestreams: readonly Uint8Array[], opts: JpxOptions): Uint8Array {
  if (codestreams.length === 0) throw new RangeError('writeJpx: no codestream');
  const parts = [signatureBox(), ftypBox(JPX_FTYP), jp2hOf(frameInfo(opts, 0))];
  codestreams.forEach((_, i) => parts.push(...frameHeaders(frameInfo(opts, i))));
  if (opts.xml !== undefined) parts.push(xmlBox(opts.xml));
  for (const cs of codestreams) parts.push(box('jp2c', cs));
  return concatBytes(parts);
}

/** One frame of a linked JPX: where its codestream is, and its image properties. */
export interface LinkedFrame extends ImageInfo {
  /**
   * The frame's file: a '/'-separated path relative to the JPX's directory,
   * or an absolute path. Written percent-escaped (`frame%20001.jp2`);
   * absolute paths as `file:///` URLs.
   */
  path?: string;
  /** A location written verbatim instead of `path` (tests of hostile references). */
  url?: string;
  /** Offset of the codestream in the frame's file (jp2c content). */
  codestreamOffset: number;
  codestreamLength: number;
}

/** Options of {@link writeLinkedJpx}. */
export interface LinkedJpxOptions {
  /** Write every `path` as an absolute `file:///` URL, relative paths resolved against this directory. */
  absoluteFrom?: string;
  /** Text of an `xml ` box written after the headers. */
  xml?: string;
}

/** The `url ` location written for a frame. */
export function frameLocation(frame: LinkedFrame, opts: LinkedJpxOptions = {}): string {
  if (frame.url !== undefined) return frame.url;
  if (frame.path === undefined) throw new RangeError('linked frame needs a path or a url');
  if (path.isAbsolute(frame.path)) return fileUrl(frame.path);
  if (opts.absoluteFrom !== undefined) return fileUrl(path.resolve(opts.absoluteFrom, frame.path));
  return encodeReference(frame.path);
}

/**
 * A linked JPX: signature, ftyp 'jpx ', jp2h (first frame), per frame jpch +
 * jplh, optional xml, per frame an ftbl(flst with one fragment, data
 * reference index+1), then one dtbl holding a `url ` box (version 0, flags 0) per frame.
 */
export function writeLinkedJpx(frames: readonly LinkedFrame[], opts: LinkedJpxOptions = {}): Uint8Array {
  if (frames.length === 0) throw new RangeError('writeLinkedJpx: no frame');
  if (frames.length > 0xffff) throw new RangeError('writeLinkedJpx: more than 65535 frames');
  const parts = [signatureBox(), ftypBox(JPX_FTYP), jp2hOf(frames[0]!)];
  for (const f of frames) parts.push(...frameHeaders(f));
  if (opts.xml !== undefined) parts.push(xmlBox(opts.xml));
  frames.forEach((f, i) => {
    parts.push(superbox('ftbl', [flstBox([{ offset: f.codestreamOffset, length: f.codestreamLength, dataReference: i + 1 }])]));
  });
  parts.push(dtblBox(frames.map((f) => frameLocation(f, opts))));
  return concatBytes(parts);
}

/**
 * The LinkedFrame of a JP2 file (its single codestream and its jp2h ihdr),
 * to be referenced as `framePath` from a linked JPX.
 */
export function linkedFrameFor(framePath: string, jp2: Uint8Array | RandomAccess): LinkedFrame {
  const c = readContainer(jp2, { file: framePath });
  const cs = c.codestreams;
  const first = cs[0];
  if (cs.length !== 1 || first === undefined || first.kind === 'fragment') {
    throw new J2kError(J2K_ERROR.UNSUPPORTED, `a linked frame must hold exactly one embedded codestream`, { file: framePath });
  }
  const h = c.imageHeader;
  if (h === undefined || h.bitDepth === undefined) {
    throw new J2kError(J2K_ERROR.UNSUPPORTED, 'a linked frame needs a jp2h ihdr with a single bit depth', { file: framePath });
  }
  return {
    path: framePath,
    codestreamOffset: first.offset,
    codestreamLength: first.length,
    width: h.width,
    height: h.height,
    components: h.nc,
    bitDepth: h.bitDepth,
    signed: h.signed,
  };
}
