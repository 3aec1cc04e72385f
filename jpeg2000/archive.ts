import { readdirSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { ImageIndex, type CacheStatus } from './index-cache.js';

/** File name extensions taken as JPEG 2000 when walking an archive. */
export const JPEG2000_EXTENSIONS: ReadonlySet<string> = new Set(['.jp2', '.jpx', '.jpf', '.j2k', '.j2c', '.jpc']);

/** Every JPEG 2000 file under `dir`, sorted; symbolic links to directories are not followed. */
export function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 64) return;
    const entries = readdirSync(d, { withFileTypes: true });
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if ((e.isFile() || e.isSymbolicLink()) && JPEG2000_EXTENSIONS.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  walk(dir, 0);
  return out.sort();
}

export interface ArchiveIndexOptions {
  cacheDir: string;
  /** Called after each file. */
  onProgress?: (done: number, total: number, file: string) => void;
}

export interface ArchiveIndexResult {
  root: string;
  cacheDir: string;
  files: number;
  indexed: number;
  /** Files whose cache file was already fresh. */
  fresh: number;
  codestreams: number;
  packets: number;
  /** Bytes of in-memory packet tables the whole archive needs. */
  indexBytes: number;
  failed: { file: string; code: string; message: string }[];
  seconds: number;
}

/** Builds (or refreshes) the index cache file of every image under `root`. */
export function indexArchive(root: string, opts: ArchiveIndexOptions): ArchiveIndexResult {
  const t0 = performance.now();
  const files = listImages(root);
  const result: ArchiveIndexResult = {
    root,
    cacheDir: opts.cacheDir,
    files: files.length,
    indexed: 0,
    fresh: 0,
    codestreams: 0,
    packets: 0,
    indexBytes: 0,
    failed: [],
    seconds: 0,
  };
  files.forEach((file, i) => {
    const name = relative(root, file);
    try {
      const img = ImageIndex.open(file, { cacheDir: opts.cacheDir, name });
      try {
        const status: CacheStatus = img.cacheStatus;
        if (status === 'hit') result.fresh++;
        img.indexAll();
        result.indexed++;
        for (let c = 0; c < img.codestreamCount; c++) {
          if (!img.layout(c)) continue;
          result.codestreams++;
          const ix = img.codestream(c);
          for (let t = 0; t < ix.numTiles; t++) result.packets += ix.tile(t).known;
        }
        result.indexBytes += img.memoryBytes();
      } finally {
        img.close();
      }
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown };
      result.failed.push({ file: name, code: typeof err.code === 'string' ? err.code : 'ERROR', message: String(err.message ?? e) });
    }
    opts.onProgress?.(i + 1, files.length, name);
  });
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
