import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listImages } from '../jpeg2000/archive.js';
import { readContainer, type Container } from '../jpeg2000/boxes.js';
import { readMainHeader } from '../jpeg2000/codestream.js';
import { openFileSource, type FileSource } from '../jpeg2000/file-source.js';
import { resolveReference } from '../jpeg2000/linked.js';
import { subSource } from '../jpeg2000/source.js';
import { JpipError } from '../jpip/errors.js';

/**
 * The browser viewer (`/viewer`): the page, its script bundle and the WASM
 * decoder, all built by `viewer/build.mjs` into `dist/viewer/` (listed in its
 * `assets.json`; only the files listed there are ever served, so no request
 * path reaches the file system), and `/viewer/api/list`, a JSON listing of
 * the images and movies under the root: paths relative to the root, size and
 * frame count, never a server path.
 *
 * Every answer carries a Content-Security-Policy that allows only the server
 * itself ('wasm-unsafe-eval' lets the page compile the decoder; it allows no
 * other origin and no JavaScript eval). The page is revalidated on each load
 * (ETag); the bundle and the WASM are named in the page with their hash
 * (`?v=`), and cached for a year when asked for with it.
 */

export const VIEWER_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'Content-Security-Policy': VIEWER_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
} as const;

/** One entry of the listing. */
export interface ListedImage {
  /** Path under the root, '/'-separated: the JPIP target. */
  path: string;
  kind: 'image' | 'movie';
  /** File size in bytes. */
  bytes: number;
  /** Codestreams (frames). */
  frames: number;
  /** Size of the first frame (reference grid minus offsets). */
  width: number;
  height: number;
  components: number;
  /** Linked JPX: the file under the root holding each frame (same order), for its metadata. */
  frameFiles?: string[];
}

export interface Listing {
  images: ListedImage[];
  /** Files that look like JPEG 2000 by name but could not be read (counted, not named with a reason). */
  unreadable: number;
  /** More files than `maxEntries`: the listing stops there. */
  truncated: boolean;
}

export interface ListOptions {
  /** Most files listed (default 2000). */
  maxEntries?: number;
}

/** Frame files listed for one linked movie, at most. */
const MAX_FRAME_FILES = 10_000;

interface Cached {
  size: number;
  mtimeMs: number;
  item: ListedImage | undefined;
}

/** Per-root cache of what each file gave (keyed by size and mtime). */
const listCache = new Map<string, Map<string, Cached>>();

function relKey(rootReal: string, abs: string): string {
  return path.relative(rootReal, abs).split(path.sep).join('/');
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function describe(rootReal: string, abs: string, key: string): ListedImage | undefined {
  let src: FileSource | undefined;
  const opened: FileSource[] = [];
  try {
    src = openFileSource(abs, key);
    opened.push(src);
    const container: Container = readContainer(src, { file: key });
    const first = container.codestreams[0];
    if (!first) return undefined;
    let frameFiles: string[] | undefined;
    let mainSrc;
    if (first.kind === 'fragment' && first.dataReference !== 0) {
      frameFiles = [];
      for (const cs of container.codestreams.slice(0, MAX_FRAME_FILES)) {
        if (cs.kind !== 'fragment' || cs.dataReference === 0) frameFiles.push(key);
        else frameFiles.push(relKey(rootReal, resolveReference(cs.url, { root: rootReal, containingFile: abs })));
      }
      const linked = openFileSource(path.join(rootReal, ...frameFiles[0]!.split('/')), frameFiles[0]);
      opened.push(linked);
      mainSrc = subSource(linked, first.offset, first.length);
    } else {
      mainSrc = subSource(src, first.offset, first.length);
    }
    const siz = readMainHeader(mainSrc).siz;
    const frames = container.codestreams.length;
    return {
      path: key,
      kind: frames > 1 ? 'movie' : 'image',
      bytes: src.size,
      frames,
      width: siz.xsiz - siz.xOsiz,
      height: siz.ysiz - siz.yOsiz,
      components: siz.components.length,
      ...(frameFiles ? { frameFiles } : {}),
    };
  } catch {
    return undefined;
  } finally {
    for (const s of opened) s.close();
  }
}

/**
 * The images and movies under `root`: every JPEG 2000 file (by name) that
 * parses, with paths relative to the root. Files reached through a symbolic
 * link out of the root are left out; linked movies whose frames lie outside
 * the root count as unreadable.
 */
export function listViewerImages(root: string, opts: ListOptions = {}): Listing {
  const rootReal = realpathSync(root);
  const max = opts.maxEntries ?? 2000;
  let cache = listCache.get(rootReal);
  if (!cache) {
    cache = new Map();
    listCache.set(rootReal, cache);
  }
  const files = listImages(rootReal);
  const truncated = files.length > max;
  const seen = new Set<string>();
  const images: ListedImage[] = [];
  let unreadable = 0;
  for (const abs of files.slice(0, max)) {
    let real: string;
    let st;
    try {
      real = realpathSync(abs);
      if (!isInside(rootReal, real)) continue;
      st = statSync(real);
      if (!st.isFile()) continue;
    } catch {
      continue;
    }
    const key = relKey(rootReal, abs);
    seen.add(key);
    let c = cache.get(key);
    if (!c || c.size !== st.size || c.mtimeMs !== st.mtimeMs) {
      c = { size: st.size, mtimeMs: st.mtimeMs, item: describe(rootReal, real, key) };
      cache.set(key, c);
    }
    if (c.item) images.push(c.item);
    else unreadable++;
  }
  for (const k of cache.keys()) if (!seen.has(k)) cache.delete(k);
  return { images, unreadable, truncated };
}

// ---------------------------------------------------------------------------
// Static assets

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  /** Named in the page with ?v=hash. */
  hash: string;
}

interface AssetSet {
  dir: string;
  files: Map<string, Asset>;
}

let assetSet: AssetSet | undefined;

/** Where the built viewer is: next to the compiled server (dist/viewer), or dist/viewer from the sources. */
export function viewerAssetsDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const dir of [path.join(here, '..', 'viewer'), path.join(here, '..', 'dist', 'viewer')]) {
    if (existsSync(path.join(dir, 'assets.json'))) return dir;
  }
  return undefined;
}

function loadAssets(): AssetSet | undefined {
  const dir = viewerAssetsDir();
  if (!dir) return undefined;
  const stamp = statSync(path.join(dir, 'assets.json')).mtimeMs;
  if (assetSet && assetSet.dir === `${dir}@${stamp}`) return assetSet;
  const manifest = JSON.parse(readFileSync(path.join(dir, 'assets.json'), 'utf8')) as { files: Record<string, { type: string }> };
  const files = new Map<string, Asset>();
  for (const [name, info] of Object.entries(manifest.files)) {
    // Names are plain file names written by the build: anything else is ignored.
    if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) continue;
    const body = readFileSync(path.join(dir, name));
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 16);
    files.set(name, { body, type: info.type, etag: `"${hash}"`, hash });
  }
  assetSet = { dir: `${dir}@${stamp}`, files };
  return assetSet;
}

function sendJson(req: IncomingMessage, res: ServerResponse, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store', ...SECURITY_HEADERS });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendAsset(req: IncomingMessage, res: ServerResponse, a: Asset, query: string): void {
  const versioned = new URLSearchParams(query).get('v') === a.hash;
  const headers: Record<string, string | number> = {
    'Content-Type': a.type,
    ETag: a.etag,
    'Cache-Control': versioned ? 'public, max-age=31536000, immutable' : 'no-cache',
    ...SECURITY_HEADERS,
  };
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  headers['Content-Length'] = a.body.length;
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : a.body);
}

/**
 * Answers a request under /viewer: `/viewer` redirects to `/viewer/`, which
 * is the page; `/viewer/api/list` the listing; `/viewer/NAME` a built asset.
 * Anything else is 404 (a JpipError, answered by the server).
 */
export function serveViewer(req: IncomingMessage, res: ServerResponse, urlPath: string, query: string, root: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new JpipError('METHOD', `method ${req.method ?? '?'} not allowed here: use GET`);
  if (urlPath === '/viewer') {
    res.writeHead(308, { Location: '/viewer/', 'Content-Length': 0, 'Cache-Control': 'no-cache', ...SECURITY_HEADERS });
    res.end();
    return;
  }
  const name = urlPath.slice('/viewer/'.length);
  if (name === 'api/list') return sendJson(req, res, listViewerImages(root));
  const assets = loadAssets();
  if (!assets) throw new JpipError('NOT_FOUND', 'the viewer is not built: run `npm run build` (it writes dist/viewer/)');
  const a = assets.files.get(name === '' ? 'index.html' : name);
  if (!a) throw new JpipError('NOT_FOUND', 'no such viewer file');
  sendAsset(req, res, a, query);
}
