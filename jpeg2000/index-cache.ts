import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readContainer, type CodestreamRef, type Container } from './boxes.js';
import { readCodestream, readMainHeader, readTilePart, type Codestream, type TilePart } from './codestream.js';
import { numTiles as tilesOf } from './geometry.js';
import { J2K_ERROR, J2kError, isJ2kError } from './errors.js';
import { CodestreamIndex, type CodestreamIndexOptions } from './packet-index.js';
import { writeFileAtomically } from './atomic-file.js';
import { openFileSource, type FileSource } from './file-source.js';
import { subSource } from './source.js';

/**
 * The hybrid index of one image file, as the ESA server's paper describes it:
 * a small cache file per image on disk (where the main header ends, the
 * tile-part table, where the PLT markers are), keyed by the file's size and
 * mtime and rebuilt when stale, plus the in-memory `CodestreamIndex` that
 * decodes packet lengths lazily. Cache files live in their own directory, so
 * image roots may be read-only.
 */

export const CACHE_FORMAT = 'jpip-bench-index';
export const CACHE_VERSION = 1;

export interface ImageIndexOptions extends CodestreamIndexOptions {
  /** Directory for cache files; none are read or written when absent. */
  cacheDir?: string | undefined;
  /** Name used in error messages (defaults to the path). */
  name?: string | undefined;
}

/** How the cache was used when opening. */
export type CacheStatus = 'none' | 'hit' | 'miss' | 'stale' | 'corrupt';

type TilePartRow = [tile: number, partIndex: number, partCount: number, offset: number, length: number, bodyOffset: number, bodyLength: number, hasCoding: 0 | 1];
type SegRow = [tilePart: number, z: number, dataOffset: number, dataLength: number];

interface CachedCodestream {
  index: number;
  offset: number;
  length: number;
  tileParts: TilePartRow[];
  plt: SegRow[];
  /** Packet lengths per tile (base64 of little-endian Uint32), for codestreams indexed from packet headers. */
  packets?: Record<string, string>;
}

interface CacheFile {
  format: string;
  version: number;
  file: string;
  size: number;
  mtimeMs: number;
  codestreams: CachedCodestream[];
}

/** The cache file path for an image path. */
export function cachePathFor(cacheDir: string, imagePath: string): string {
  const h = createHash('sha256').update(resolve(imagePath)).digest('hex').slice(0, 40);
  return join(cacheDir, `${h}.idx.json`);
}

export class ImageIndex {
  readonly path: string;
  readonly source: FileSource;
  readonly container: Container;
  readonly cacheStatus: CacheStatus;
  private readonly layouts: (Codestream | undefined)[];
  private readonly indexes: (CodestreamIndex | undefined)[];
  private readonly opts: ImageIndexOptions;
  private readonly cachedPackets: (Record<string, string> | undefined)[];

  private constructor(path: string, source: FileSource, container: Container, layouts: (Codestream | undefined)[], status: CacheStatus, packets: (Record<string, string> | undefined)[], opts: ImageIndexOptions) {
    this.path = path;
    this.source = source;
    this.container = container;
    this.layouts = layouts;
    this.cacheStatus = status;
    this.indexes = new Array(layouts.length).fill(undefined);
    this.cachedPackets = packets;
    this.opts = opts;
  }

  /**
   * Opens an image file and its index (from the cache file when it is fresh,
   * else by scanning the file and writing a new cache file).
   */
  static open(path: string, opts: ImageIndexOptions = {}): ImageIndex {
    const abs = resolve(path);
    const name = opts.name ?? path;
    let source: FileSource;
    try {
      source = openFileSource(abs, name);
    } catch (e) {
      throw new J2kError(J2K_ERROR.MISSING_REFERENCE, `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { file: name, cause: e });
    }
    try {
      const container = readContainer(source, { file: name });
      let status: CacheStatus = 'none';
      let layouts: (Codestream | undefined)[] | undefined;
      let packets: (Record<string, string> | undefined)[] = [];
      const cacheFile = opts.cacheDir ? cachePathFor(opts.cacheDir, abs) : undefined;
      if (cacheFile) {
        const loaded = loadCache(cacheFile, abs, source, container);
        status = loaded.status;
        if (loaded.layouts) {
          layouts = loaded.layouts;
          packets = loaded.packets;
        }
      }
      if (!layouts) {
        layouts = container.codestreams.map((ref) => (isLocal(ref) ? readCodestream(subSource(source, ref.offset, ref.length)) : undefined));
      }
      const img = new ImageIndex(abs, source, container, layouts, status, packets, opts);
      if (cacheFile && status !== 'hit') img.writeCache(cacheFile);
      return img;
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /** Number of codestreams (frames) the file holds or references. */
  get codestreamCount(): number {
    return this.container.codestreams.length;
  }

  /** The structure of codestream i when it is inside this file (undefined for linked ones). */
  layout(i: number): Codestream | undefined {
    return this.layouts[i];
  }

  /** The packet index of codestream i (inside this file). Linked codestreams live in other files. */
  codestream(i: number): CodestreamIndex {
    const ref = this.container.codestreams[i];
    if (!ref) throw new RangeError(`codestream ${i} of ${this.codestreamCount}`);
    let ix = this.indexes[i];
    if (!ix) {
      const layout = this.layouts[i];
      if (!layout || !isLocal(ref)) {
        throw new J2kError(J2K_ERROR.UNSUPPORTED, `codestream ${i} is in another file (${ref.kind === 'fragment' ? ref.url : '?'})`, { file: this.source.name });
      }
      ix = new CodestreamIndex(subSource(this.source, ref.offset, ref.length), layout, this.opts);
      const pk = this.cachedPackets[i];
      if (pk && ix.lengthSource === 'headers') ix.preload(decodePacketTables(pk));
      this.indexes[i] = ix;
    }
    return ix;
  }

  /** Indexes every packet of every local codestream (checking them) and refreshes the cache file with packet tables that were costly to make. */
  indexAll(): void {
    let headerParsed = false;
    for (let i = 0; i < this.codestreamCount; i++) {
      if (!this.layouts[i]) continue;
      const ix = this.codestream(i);
      ix.ensureAll();
      if (ix.lengthSource === 'headers' && !this.cachedPackets[i]) headerParsed = true;
    }
    if (headerParsed && this.opts.cacheDir) this.writeCache(cachePathFor(this.opts.cacheDir, this.path));
  }

  /** Bytes of packet tables held in memory. */
  memoryBytes(): number {
    return this.indexes.reduce((n, ix) => n + (ix?.memoryBytes() ?? 0), 0);
  }

  close(): void {
    this.source.close();
  }

  private writeCache(file: string): void {
    const data: CacheFile = {
      format: CACHE_FORMAT,
      version: CACHE_VERSION,
      file: this.path,
      size: this.source.size,
      mtimeMs: this.source.mtimeMs,
      codestreams: [],
    };
    this.container.codestreams.forEach((ref, i) => {
      const cs = this.layouts[i];
      if (!cs || !isLocal(ref)) return;
      const entry: CachedCodestream = {
        index: i,
        offset: ref.offset,
        length: ref.length,
        tileParts: cs.tileParts.map((tp) => [tp.tile, tp.partIndex, tp.partCount, tp.offset, tp.length, tp.bodyOffset, tp.bodyLength, hasCoding(tp) ? 1 : 0]),
        plt: cs.tileParts.flatMap((tp, k) => tp.plt.map((s): SegRow => [k, s.index, s.dataOffset, s.dataLength])),
      };
      const ix = this.indexes[i];
      if (ix && ix.lengthSource === 'headers') {
        const tables = ix.completeTables();
        if (tables) entry.packets = encodePacketTables(tables);
      } else if (this.cachedPackets[i]) {
        entry.packets = this.cachedPackets[i];
      }
      data.codestreams.push(entry);
    });
    writeFileAtomically(file, JSON.stringify(data));
  }
}

function isLocal(ref: CodestreamRef): boolean {
  return ref.kind === 'raw' || ref.kind === 'embedded' || (ref.kind === 'fragment' && ref.dataReference === 0);
}

function hasCoding(tp: TilePart): boolean {
  return tp.cod !== undefined || tp.coc.length > 0 || tp.qcd !== undefined || tp.qcc.length > 0 || tp.poc.length > 0;
}

function encodePacketTables(tables: Uint32Array[]): Record<string, string> {
  const out: Record<string, string> = {};
  tables.forEach((lengths, t) => {
    const b = Buffer.alloc(lengths.length * 4);
    for (let i = 0; i < lengths.length; i++) b.writeUInt32LE(lengths[i]!, i * 4);
    out[String(t)] = b.toString('base64');
  });
  return out;
}

function decodePacketTables(rec: Record<string, string>): Map<number, Uint32Array> {
  const out = new Map<number, Uint32Array>();
  for (const [k, v] of Object.entries(rec)) {
    const b = Buffer.from(v, 'base64');
    const a = new Uint32Array(b.length >>> 2);
    for (let i = 0; i < a.length; i++) a[i] = b.readUInt32LE(i * 4);
    out.set(Number(k), a);
  }
  return out;
}

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function loadCache(
  file: string,
  abs: string,
  source: FileSource,
  container: Container,
): { status: CacheStatus; layouts?: (Codestream | undefined)[]; packets: (Record<string, string> | undefined)[] } {
  let data: CacheFile;
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
  } catch (e) {
    return { status: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'miss' : 'corrupt', packets: [] };
  }
  if (!data || data.format !== CACHE_FORMAT || data.version !== CACHE_VERSION || data.file !== abs) return { status: 'stale', packets: [] };
  if (data.size !== source.size || data.mtimeMs !== source.mtimeMs) return { status: 'stale', packets: [] };
  try {
    const layouts: (Codestream | undefined)[] = new Array(container.codestreams.length).fill(undefined);
    const packets: (Record<string, string> | undefined)[] = new Array(container.codestreams.length).fill(undefined);
    if (!Array.isArray(data.codestreams)) throw new Error('no codestreams');
    for (const c of data.codestreams) {
      const ref = container.codestreams[c.index];
      if (!ref || !isLocal(ref) || ref.offset !== c.offset || ref.length !== c.length) throw new Error('codestream table differs');
      layouts[c.index] = rebuildLayout(c, subSource(source, ref.offset, ref.length));
      if (c.packets && typeof c.packets === 'object') packets[c.index] = c.packets;
    }
    for (let i = 0; i < container.codestreams.length; i++) {
      if (isLocal(container.codestreams[i]!) && !layouts[i]) throw new Error('codestream missing');
    }
    return { status: 'hit', layouts, packets };
  } catch (e) {
    if (isJ2kError(e)) throw e; // the image itself is broken
    return { status: 'corrupt', packets: [] };
  }
}

/** Rebuilds a Codestream from a cache entry, reading only the main header (and tile-part headers that carry coding markers). */
function rebuildLayout(c: CachedCodestream, src: ReturnType<typeof subSource>): Codestream {
  const main = readMainHeader(src);
  const numTiles = tilesOf(main.siz);
  if (!Array.isArray(c.tileParts) || !Array.isArray(c.plt)) throw new Error('bad table');
  const tiles: number[][] = Array.from({ length: numTiles }, () => []);
  const tileParts: TilePart[] = c.tileParts.map((row, k) => {
    if (!Array.isArray(row) || row.length !== 8 || !row.every(isNat)) throw new Error('bad tile-part row');
    const [tile, partIndex, partCount, offset, length, bodyOffset, bodyLength, coding] = row;
    if (tile >= numTiles || offset + length > src.size || bodyOffset + bodyLength !== offset + length) throw new Error('bad tile-part');
    tiles[tile]!.push(k);
    if (coding) return readTilePart(src, offset, main, numTiles);
    return { tile, partIndex, partCount, offset, length, bodyOffset, bodyLength, segments: [], plt: [], ppt: [], cod: undefined, coc: [], qcd: undefined, qcc: [], poc: [] };
  });
  for (const row of c.plt) {
    if (!Array.isArray(row) || row.length !== 4 || !row.every(isNat)) throw new Error('bad plt row');
    const [k, index, dataOffset, dataLength] = row;
    const tp = tileParts[k];
    if (!tp || dataOffset + dataLength > tp.bodyOffset) throw new Error('bad plt');
    if (tp.plt.every((s) => s.dataOffset !== dataOffset)) tp.plt.push({ index, dataOffset, dataLength });
  }
  if (tiles.some((l) => l.length === 0)) throw new Error('tile without tile-part');
  return { name: src.name, size: src.size, main, tileParts, tiles };
}
