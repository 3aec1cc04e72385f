import { createHash } from 'node:crypto';
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { Codestream } from '../jpeg2000/codestream.js';
import { J2K_ERROR, isJ2kError } from '../jpeg2000/errors.js';
import { ImageIndex } from '../jpeg2000/index-cache.js';
import { resolveReference } from '../jpeg2000/linked.js';
import type { CodestreamIndex } from '../jpeg2000/packet-index.js';
import { subSource, type RandomAccess } from '../jpeg2000/source.js';
import { metadataBin0 } from '../jpip/metadata.js';
import { JpipError } from '../jpip/errors.js';
import type { BlockCache, CachedSource } from './block-cache.js';

/**
 * The server's registry of open images. A target name is confined to the
 * image root (no `..`, no symlink out), opened once and shared by every
 * session (one copy of each image's index per process, never one per
 * connection or session); a file replaced on disk (other size or mtime) is
 * reopened with a new target id, so nothing stale is served.
 *
 * Two budgets bound it: `maxOpen` open image files (one descriptor each) and
 * `maxBytes` of index memory (packet tables, which grow as responses index
 * more tiles, plus an estimate of the parsed headers). Beyond either, the
 * least recently used images are closed, but never while a response is
 * reading them: then the registry stays over budget until they are released.
 */

export interface CodestreamHandle {
  /** Codestream bytes (offset 0 = SOC). */
  src: RandomAccess;
  layout: Codestream;
  index: CodestreamIndex;
}

export class ImageEntry {
  /** Path under the root, '/'-separated (what tids are made of; never the server path). */
  readonly key: string;
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly tid: string;
  readonly image: ImageIndex;
  /** Responses currently reading this image. */
  users = 0;
  closed = false;
  /** Index bytes this entry was last counted with in the registry's total. */
  accountedBytes = 0;
  /** Bytes of parsed headers (tile-part table, PLT references, main headers): an estimate, fixed at open. */
  private readonly structureBytes: number;
  private meta: Uint8Array | undefined;
  /** Resolved paths of linked codestreams. */
  private readonly linked = new Map<number, string>();
  /** Registry keys of the files linked codestreams are in (once opened): reused while checked recently. */
  private readonly linkedKeys = new Map<number, string>();
  /** When the registry last found this file unchanged on disk (ms). */
  checkedAt = 0;
  private readonly registry: ImageRegistry;
  /** The file's bytes as responses read them: through the registry's block cache when it has one. */
  private readonly bytes: RandomAccess;
  private readonly cached: CachedSource | undefined;

  constructor(registry: ImageRegistry, key: string, abs: string, size: number, mtimeMs: number, image: ImageIndex) {
    this.registry = registry;
    this.key = key;
    this.path = abs;
    this.size = size;
    this.mtimeMs = mtimeMs;
    this.image = image;
    this.tid = targetId(key, size, mtimeMs);
    this.structureBytes = structureEstimate(image);
    this.cached = registry.blockCache?.wrap(image.source);
    this.bytes = this.cached ?? image.source;
  }

  /** Index memory of this image now: packet tables, metadata-bin 0, parsed headers (estimate). */
  memoryBytes(): number {
    return this.image.memoryBytes() + (this.meta?.length ?? 0) + this.structureBytes;
  }

  get codestreamCount(): number {
    return this.image.codestreamCount;
  }

  /** Metadata-bin 0 (built once). */
  metadata(): Uint8Array {
    this.meta ??= metadataBin0(this.image.source, this.image.container);
    return this.meta;
  }

  /**
   * Codestream i, inside this file or (linked JPX) in the file it references,
   * confined to the root. `owner` is the image whose file the bytes come from:
   * a response acquires it while it reads.
   */
  codestream(i: number): CodestreamHandle & { owner: ImageEntry } {
    const ref = this.image.container.codestreams[i];
    if (!ref) throw new RangeError(`codestream ${i} of ${this.codestreamCount}`);
    const layout = this.image.layout(i);
    if (layout) {
      return { src: subSource(this.bytes, ref.offset, ref.length), layout, index: this.image.codestream(i), owner: this };
    }
    if (ref.kind !== 'fragment') throw new RangeError(`codestream ${i} has no layout`);
    let target = this.linked.get(i);
    if (target === undefined) {
      target = resolveReference(ref.url, { root: this.registry.rootReal, containingFile: this.path });
      this.linked.set(i, target);
    }
    // The frame's file, as checked on disk within recheckMs (a movie's request names many frames,
    // each several times: one stat per frame per request was 4% of a paper crowd's worker).
    const known = this.linkedKeys.get(i);
    const recent = known !== undefined ? this.registry.recentlyChecked(known) : undefined;
    const entry = recent ?? this.registry.openAbsolute(target);
    if (known === undefined) this.linkedKeys.set(i, entry.key);
    const j = entry.image.container.codestreams.findIndex((c) => c.offset === ref.offset && c.length === ref.length);
    if (j < 0 || !entry.image.layout(j)) {
      throw new JpipError('CORRUPT_IMAGE', `codestream ${i} points at bytes ${ref.offset}+${ref.length} of ${entry.key}, which hold no codestream`);
    }
    return entry.codestream(j);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cached?.drop();
    this.image.close();
  }
}

/** Rough bytes of the parsed structure of an image's local codestreams (objects, not typed arrays). */
function structureEstimate(image: ImageIndex): number {
  let n = 1024 + image.codestreamCount * 128;
  for (let i = 0; i < image.codestreamCount; i++) {
    const layout = image.layout(i);
    if (!layout) continue;
    n += 2048 + layout.main.siz.components.length * 64;
    for (const tp of layout.tileParts) n += 256 + (tp.plt.length + tp.segments.length) * 64;
  }
  return n;
}

/** An opaque, stable id for one version of one file: from its path under the root, size and mtime. */
export function targetId(key: string, size: number, mtimeMs: number): string {
  return createHash('sha256').update(`${key}\0${size}\0${Math.round(mtimeMs * 1000)}`).digest('base64url').slice(0, 22);
}

/** How long a resolved target name is reused (a link changed in the root is followed within this time). */
const RESOLVE_TTL_MS = 1000;
/** Most names remembered (beyond, the memory is emptied and starts again). */
const RESOLVE_CACHE_ENTRIES = 10_000;

export interface ImageRegistryOptions {
  root: string;
  cacheDir?: string | undefined;
  /** Images kept open (file descriptors and indexes). */
  maxOpen?: number;
  /** Index memory budget, in bytes (default: unbounded). */
  maxBytes?: number;
  /** Responses read image bytes through this cache (default: straight from the files). */
  blockCache?: BlockCache | undefined;
  /** How long an open image is trusted unchanged on disk before it is checked again (default 0: every request). */
  recheckMs?: number;
}

export class ImageRegistry {
  readonly root: string;
  readonly rootReal: string;
  readonly cacheDir: string | undefined;
  maxOpen: number;
  maxBytes: number;
  readonly blockCache: BlockCache | undefined;
  private readonly entries = new Map<string, ImageEntry>();
  /** Sum of the entries' accountedBytes (entries retired while in use included until closed). */
  private total = 0;
  /** Images closed to keep within the budgets (for metrics and tests). */
  evictions = 0;

  constructor(opts: ImageRegistryOptions) {
    this.root = path.resolve(opts.root);
    this.rootReal = realpathSync(this.root);
    if (!statSync(this.rootReal).isDirectory()) throw new Error(`image root ${this.root} is not a directory`);
    this.cacheDir = opts.cacheDir;
    this.maxOpen = opts.maxOpen ?? 512;
    this.maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
    this.blockCache = opts.blockCache;
    this.recheckMs = opts.recheckMs ?? 0;
  }

  /** Changes the budgets (a config reload) and applies them. */
  setBudgets(maxOpen: number, maxBytes: number): void {
    this.maxOpen = maxOpen;
    this.maxBytes = maxBytes;
    this.evict();
  }

  /** Index memory held by open images (as last measured: on open and when a response releases an image). */
  get bytes(): number {
    return this.total;
  }

  /**
   * Targets resolved recently: name -> real path (resolving walks every path component with
   * lstat), reused for `RESOLVE_TTL_MS`, or as long as `recheckMs` when `open` last found the
   * name's image; `open` checks the file itself again once `recheckMs` has passed.
   */
  private readonly resolved = new Map<string, { real: string; at: number; entry?: ImageEntry; checked?: number }>();
  /** How long an open image is served without checking its file's size and mtime again (ms; 0: every request). */
  recheckMs: number;

  /** Image files open (one descriptor each), images retired but still read by a response included. */
  get openFiles(): number {
    return this.fileCount;
  }

  private fileCount = 0;

  /**
   * The absolute real path of a target named by a client ("movies/x.jpx",
   * "/movies/x.jpx"), or a NOT_FOUND / FORBIDDEN_PATH error. Names are taken
   * relative to the root; `..`, backslashes, NUL and links out of the root are refused.
   */
  resolveTarget(target: string): string {
    const name = target.replace(/^\/+/, '');
    if (name === '' || name.includes('\0') || name.includes('\\')) throw new JpipError('NOT_FOUND', 'no such target', 'target');
    const segments = name.split('/');
    if (segments.some((s) => s === '..' || s === '.')) throw new JpipError('FORBIDDEN_PATH', 'no such target (path escapes the image root)', 'target');
    const abs = path.join(this.rootReal, ...segments);
    let real: string;
    try {
      real = realpathSync(abs);
    } catch {
      throw new JpipError('NOT_FOUND', 'no such target', 'target');
    }
    if (!isInside(this.rootReal, real)) throw new JpipError('FORBIDDEN_PATH', 'no such target (path escapes the image root)', 'target');
    return real;
  }

  /** resolveTarget, answered from the names resolved within the last second when it can. */
  resolveCached(target: string): string {
    const now = Date.now();
    const hit = this.resolved.get(target);
    if (hit && now - hit.at < RESOLVE_TTL_MS) return hit.real;
    return this.resolveAndRemember(target, now).real;
  }

  /** Resolves a name (resolveTarget) and remembers its real path, as resolved at `now`. */
  private resolveAndRemember(target: string, now: number): { real: string; at: number; entry?: ImageEntry; checked?: number } {
    const real = this.resolveTarget(target);
    if (this.resolved.size >= RESOLVE_CACHE_ENTRIES) this.resolved.clear();
    const record = { real, at: now };
    this.resolved.set(target, record);
    return record;
  }

  /** Marks an open image the most recently used (the entries map iterates oldest first). */
  private touch(e: ImageEntry): void {
    this.entries.delete(e.key);
    this.entries.set(e.key, e);
  }

  /** Opens (or reuses) the image a client names. */
  open(target: string): ImageEntry {
    const now = Date.now();
    const hit = this.resolved.get(target);
    // A name's real path is trusted as long as its file is (recheckMs), and at least a second.
    if (hit && now - hit.at < Math.max(RESOLVE_TTL_MS, this.recheckMs)) {
      // Checked within recheckMs and still open: nothing to look at on disk.
      const e = hit.entry;
      if (e && !e.closed && hit.checked !== undefined && now - hit.checked < this.recheckMs && this.entries.get(e.key) === e) {
        this.touch(e);
        return e;
      }
      // The real path of a moment ago is still a regular file (not replaced by a link): reuse it.
      let st;
      try {
        st = lstatSync(hit.real);
      } catch {
        st = undefined;
      }
      if (st?.isFile()) {
        const entry = this.openAbsolute(hit.real, st);
        hit.entry = entry;
        hit.checked = now;
        return entry;
      }
    }
    const record = this.resolveAndRemember(target, now);
    record.entry = this.openAbsolute(record.real);
    record.checked = now;
    return record.entry;
  }

  /** Opens (or reuses) an image by its real absolute path inside the root (`known`: its stat, just taken). */
  openAbsolute(real: string, known?: Stats): ImageEntry {
    let st = known;
    if (!st) {
      try {
        st = statSync(real);
      } catch {
        throw new JpipError('NOT_FOUND', 'no such target', 'target');
      }
    }
    if (!st.isFile()) throw new JpipError('NOT_FOUND', 'no such target (not a file)', 'target');
    const key = path.relative(this.rootReal, real).split(path.sep).join('/');
    const have = this.entries.get(key);
    if (have && have.size === st.size && have.mtimeMs === st.mtimeMs) {
      have.checkedAt = Date.now();
      this.touch(have);
      return have;
    }
    if (have) this.retire(key, have);
    let image: ImageIndex;
    try {
      image = ImageIndex.open(real, { cacheDir: this.cacheDir, name: key });
    } catch (e) {
      if (isJ2kError(e) && e.code === J2K_ERROR.NOT_JPEG2000) throw new JpipError('NOT_JPEG2000', 'the target is not a JPEG 2000 file', 'target', { cause: e });
      if (isJ2kError(e) && e.code === J2K_ERROR.MISSING_REFERENCE) throw new JpipError('NOT_FOUND', 'no such target', 'target', { cause: e });
      if (isJ2kError(e)) throw new JpipError('CORRUPT_IMAGE', `the target cannot be read: [${e.code}] (details in the server log)`, 'target', { cause: e });
      throw e;
    }
    const entry = new ImageEntry(this, key, real, st.size, st.mtimeMs, image);
    entry.checkedAt = Date.now();
    this.fileCount++;
    this.entries.set(key, entry);
    this.account(entry);
    // Never the image just opened: its caller is about to use it (it would get a closed file).
    this.evict(entry);
    return entry;
  }

  /** The open image of registry key `key` if its file was found unchanged within recheckMs (marked used); else undefined. */
  recentlyChecked(key: string): ImageEntry | undefined {
    const e = this.peekChecked(key);
    if (e) this.touch(e);
    return e;
  }

  /** As recentlyChecked, without marking it used (a look before `open`, which does). */
  peekChecked(key: string): ImageEntry | undefined {
    const e = this.entries.get(key);
    return !e || e.closed || Date.now() - e.checkedAt >= this.recheckMs ? undefined : e;
  }

  /** Number of images open. */
  get openCount(): number {
    return this.entries.size;
  }

  /** Marks an image in use by a response (it is not closed until released). */
  acquire(e: ImageEntry): void {
    e.users++;
  }

  release(e: ImageEntry): void {
    e.users--;
    if (e.users > 0) return;
    if (this.entries.get(e.key) !== e) {
      this.closeEntry(e);
      return;
    }
    // The response may have indexed more tiles: count them, and keep within the budgets.
    this.account(e);
    this.evict();
  }

  closeAll(): void {
    for (const e of this.entries.values()) this.closeEntry(e);
    this.entries.clear();
  }

  private account(e: ImageEntry): void {
    const now = e.memoryBytes();
    this.total += now - e.accountedBytes;
    e.accountedBytes = now;
  }

  private closeEntry(e: ImageEntry): void {
    if (e.closed) return;
    e.close();
    this.fileCount--;
    this.total -= e.accountedBytes;
    e.accountedBytes = 0;
  }

  private retire(key: string, e: ImageEntry): void {
    this.entries.delete(key);
    if (e.users === 0) this.closeEntry(e);
  }

  /** Closes least recently used images not being read until both budgets hold (or only images in use are left). */
  private evict(keep?: ImageEntry): void {
    if (this.entries.size <= this.maxOpen && this.total <= this.maxBytes) return;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.maxOpen && this.total <= this.maxBytes) break;
      if (e.users > 0 || e === keep) continue;
      this.retire(key, e);
      this.evictions++;
    }
  }
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' ? false : !rel.startsWith('..') && !path.isAbsolute(rel);
}
