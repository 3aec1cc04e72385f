/**
 * Data references of linked JPX files (what `kdu_merge -links` writes: per
 * frame an ftbl/flst pointing at a `url ` box of the dtbl). A reference is
 * resolved to an absolute path inside the image root, or refused: the server
 * must never open a file outside the root because a file told it to.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CodestreamRef, Container } from './boxes.js';
import { J2K_ERROR, J2kError } from './errors.js';

/** Where references are resolved. */
export interface ResolveOptions {
  /** The image root: no reference may resolve outside it (after symlinks). */
  root: string;
  /** The file holding the reference; relative references are relative to its directory. */
  containingFile: string;
}

/** A reference after URL decoding, before any file system access. */
export interface DecodedReference {
  /** `relative` paths are relative to the containing file's directory. */
  kind: 'relative' | 'absolute';
  /** The decoded path ('/'-separated). */
  path: string;
}

function bad(reason: string, file?: string): J2kError {
  return new J2kError(J2K_ERROR.BAD_REFERENCE, reason, { file });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Strict percent-decoding: every `%` must start `%XX`, the result must be UTF-8 without NUL or encoded `/`. */
function percentDecode(s: string, url: string): string {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== 0x25) {
      out[n++] = b;
      continue;
    }
    const hi = i + 1 < bytes.length ? hexValue(bytes[i + 1]!) : -1;
    const lo = i + 2 < bytes.length ? hexValue(bytes[i + 2]!) : -1;
    if (hi < 0 || lo < 0) throw bad(`bad percent escape in reference ${JSON.stringify(url)}`);
    const v = hi * 16 + lo;
    if (v === 0) throw bad(`reference ${JSON.stringify(url)} encodes a NUL byte`);
    if (v === 0x2f) throw bad(`reference ${JSON.stringify(url)} encodes '/' (%2F) inside a name`);
    out[n++] = v;
    i += 2;
  }
  try {
    return utf8.decode(out.subarray(0, n));
  } catch {
    throw bad(`reference ${JSON.stringify(url)} does not decode to UTF-8`);
  }
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/**
 * Decode a `url ` location without touching the file system. Accepted forms:
 * relative references (`frame%20001.jp2`, `sub/a.jp2`, `./a.jp2`), absolute
 * paths (`/data/a.jp2`), `file:///abs`, `file://localhost/abs`, `file:/abs`, and
 * `file://./rel` (a relative path behind an empty-looking authority).
 * Anything else (other schemes, other hosts, NUL, bad escapes) is BAD_REFERENCE.
 */
export function decodeReference(url: string): DecodedReference {
  if (url.length === 0) throw bad('empty reference');
  if (url.includes('\0')) throw bad('reference contains a NUL byte');
  let rest = url;
  const m = SCHEME.exec(url);
  if (m) {
    if (m[1]!.toLowerCase() !== 'file') throw bad(`reference scheme '${m[1]}:' is not allowed (only file: and relative references)`);
    rest = url.slice(m[0].length);
    if (rest.startsWith('//')) {
      const slash = rest.indexOf('/', 2);
      const authority = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
      const p = slash < 0 ? '' : rest.slice(slash);
      if (authority === '' || authority.toLowerCase() === 'localhost') {
        rest = p;
      } else if (authority === '.') {
        rest = '.' + p;
      } else {
        throw bad(`file URL host '${authority}' is not local`);
      }
      if (rest === '') throw bad(`file URL ${JSON.stringify(url)} has no path`);
    } else if (rest === '') {
      throw bad(`file URL ${JSON.stringify(url)} has no path`);
    }
  }
  const decoded = percentDecode(rest, url);
  return { kind: decoded.startsWith('/') ? 'absolute' : 'relative', path: decoded };
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel));
}

/** The real path of `p`'s deepest existing ancestor (itself if it exists). */
function realAncestor(p: string): string {
  let cur = p;
  for (;;) {
    if (existsSync(cur)) return realpathSync(cur);
    const up = path.dirname(cur);
    if (up === cur) return cur;
    cur = up;
  }
}

/**
 * Resolve the location of a `url ` box to the absolute real path of an
 * existing file inside `opts.root`. Escaping the root (by `..`, an absolute
 * path or a symlink) or a malformed reference => BAD_REFERENCE; a reference
 * inside the root that names no regular file => MISSING_REFERENCE.
 */
export function resolveReference(url: string, opts: ResolveOptions): string {
  const ref = decodeReference(url);
  const rootAbs = path.resolve(opts.root);
  let rootReal: string;
  try {
    rootReal = realpathSync(rootAbs);
  } catch (e) {
    throw new J2kError(J2K_ERROR.MISSING_REFERENCE, `image root ${rootAbs} does not exist`, { file: rootAbs, cause: e });
  }
  const containing = path.resolve(opts.containingFile);
  // A file outside the root gets no say about what is inside it.
  if (!isInside(rootAbs, containing) && !isInside(rootReal, containing)) {
    throw bad(`the linked file itself is outside the image root`, containing);
  }
  const target = ref.kind === 'absolute' ? path.resolve(ref.path) : path.resolve(path.dirname(containing), ref.path);
  // Lexical check first (works for files that do not exist), against the root as given or as real path.
  if (!isInside(rootAbs, target) && !isInside(rootReal, target)) {
    throw bad(`reference ${JSON.stringify(url)} resolves outside the image root`, containing);
  }
  // Then the real path of what exists of it, so a symlinked directory cannot lead out.
  if (!isInside(rootReal, realAncestor(target))) {
    throw bad(`reference ${JSON.stringify(url)} leads outside the image root through a symbolic link`, containing);
  }
  if (!existsSync(target)) {
    throw new J2kError(J2K_ERROR.MISSING_REFERENCE, `referenced file ${target} does not exist`, { file: containing });
  }
  const real = realpathSync(target);
  if (!isInside(rootReal, real)) throw bad(`reference ${JSON.stringify(url)} is a symbolic link out of the image root`, containing);
  if (!statSync(real).isFile()) {
    throw new J2kError(J2K_ERROR.MISSING_REFERENCE, `referenced path ${real} is not a regular file`, { file: containing });
  }
  return real;
}

/**
 * Percent-escape a relative '/'-separated path for a `url ` box: every byte
 * except ASCII letters, digits, `-._~` and the separators is written `%XX`
 * (UTF-8), so `frame 001.jp2` becomes `frame%20001.jp2`.
 */
export function encodeReference(relativePath: string): string {
  if (relativePath.includes('\0')) throw new RangeError('encodeReference: path contains NUL');
  return relativePath
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()))
    .join('/');
}

/** A `file:///...` URL for an absolute path (percent-escaped by node:url). */
export function fileUrl(absolutePath: string): string {
  if (!path.isAbsolute(absolutePath)) throw new RangeError(`fileUrl: ${absolutePath} is not absolute`);
  return pathToFileURL(absolutePath).href;
}

/** Where the bytes of one codestream are. */
export interface CodestreamLocation {
  index: number;
  /** Absolute path of the file holding the codestream. */
  path: string;
  offset: number;
  length: number;
}

/**
 * Locate every codestream of a container: embedded and raw ones are in the
 * containing file, fragments are resolved with {@link resolveReference}; a
 * fragment running past the end of its file => BAD_REFERENCE.
 */
export function resolveCodestreams(container: Container | readonly CodestreamRef[], opts: ResolveOptions): CodestreamLocation[] {
  const refs = Array.isArray(container) ? (container as readonly CodestreamRef[]) : (container as Container).codestreams;
  const self = path.resolve(opts.containingFile);
  return refs.map((cs) => {
    if (cs.kind !== 'fragment' || cs.dataReference === 0) return { index: cs.index, path: self, offset: cs.offset, length: cs.length };
    const p = resolveReference(cs.url, opts);
    const size = statSync(p).size;
    if (cs.offset + cs.length > size) {
      throw new J2kError(J2K_ERROR.BAD_REFERENCE, `codestream ${cs.index}: fragment ${cs.offset}+${cs.length} runs past the end of ${p} (${size} bytes)`, {
        file: self,
      });
    }
    return { index: cs.index, path: p, offset: cs.offset, length: cs.length };
  });
}
