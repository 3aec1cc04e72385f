/**
 * The manifest of a fixture set (`manifest.json` in the set's directory):
 * the encoder and its version, the parameters, and for every file its size,
 * sha256 and the key of what it was made from. A re-run compares keys and
 * hashes to make only what is missing or stale; `--verify` checks the files
 * against it.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { EncoderName } from './encoders.js';
import { sha256 } from './movies.js';

export { sha256 };
import type { SetParams } from './presets.js';
import { writeFileAtomically } from '../jpeg2000/atomic-file.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'jpip-bench-fixtures';
export const MANIFEST_VERSION = 1;

/** Where a frame's pixels come from. */
export type SourceDescription =
  | { kind: 'synthetic'; synth: string; width: number; height: number; components: 1 | 3; seed: number; frame: number }
  | { kind: 'image'; file: string; sha256: string; width: number; height: number; components: 1 | 3 };

/** One of the K distinct encoded frames. */
export interface PoolEntry {
  index: number;
  /** Key of the codestream: encoder, version, coding parameters, source. */
  key: string;
  source: SourceDescription;
  /** The encoder command line (scratch file names). */
  command: string;
  /** PLT markers were added by jpip-bench (rewritePacketMarkers) because the encoder wrote none. */
  pltAdded: boolean;
  sha256: string;
  size: number;
}

export type FileRole = 'frame' | 'movie';
export type FileContainer = 'jp2' | 'j2k' | 'jpx' | 'linked-jpx';

export interface ManifestFile {
  /** Path in the set, '/'-separated. */
  path: string;
  role: FileRole;
  container: FileContainer;
  size: number;
  sha256: string;
  /** Key of what the file is made from: a change makes it stale. */
  key: string;
  /** Frames: the pool codestream it holds (its index and key), and where. */
  pool?: number;
  codestreamKey?: string;
  codestreamOffset?: number;
  codestreamLength?: number;
  /** Frames with metadata: the DATE-OBS of their XML box. */
  dateObs?: string;
  /** Movies: how many frames they hold or reference. */
  frames?: number;
  /** Linked movies: the files referenced, each once, in order of first use. */
  references?: string[];
}

export interface FixtureManifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  /** The command that makes this set. */
  command: string;
  preset: string;
  params: SetParams;
  encoder: { name: EncoderName; version: string | undefined };
  pool: PoolEntry[];
  files: ManifestFile[];
  totals: { files: number; bytes: number };
}

/** A manifest that is missing fields or of another format. */
export class ManifestError extends Error {
  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'ManifestError';
  }
}

/** JSON with object keys sorted, so equal values give equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The key of a description: sha256 of its canonical JSON. */
export function keyOf(description: unknown): string {
  return sha256(canonicalJson(description));
}

/** sha256 of a file, read in 1 MiB pieces (large files are never loaded whole). */
export function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}


/** The manifest of the set in `dir`, or undefined when there is none. Malformed => ManifestError. */
export function readManifest(dir: string): FixtureManifest | undefined {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) return undefined;
  let m: unknown;
  try {
    m = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ManifestError(file, `not JSON (${(e as Error).message})`);
  }
  const o = m as Partial<FixtureManifest>;
  if (o?.format !== MANIFEST_FORMAT) throw new ManifestError(file, `not a jpip-bench fixtures manifest (format ${JSON.stringify(o?.format)})`);
  if (o.version !== MANIFEST_VERSION) throw new ManifestError(file, `manifest version ${String(o.version)}, this jpip-bench reads ${MANIFEST_VERSION}`);
  if (!Array.isArray(o.files) || !Array.isArray(o.pool) || typeof o.params !== 'object' || typeof o.encoder !== 'object') {
    throw new ManifestError(file, 'files, pool, params or encoder is missing');
  }
  for (const f of o.files) {
    if (typeof f?.path !== 'string' || typeof f.sha256 !== 'string' || typeof f.size !== 'number' || typeof f.key !== 'string') {
      throw new ManifestError(file, `a file entry lacks path, size, sha256 or key: ${JSON.stringify(f).slice(0, 200)}`);
    }
    if (f.path.startsWith('/') || f.path.split('/').includes('..')) throw new ManifestError(file, `file path ${JSON.stringify(f.path)} leaves the set`);
  }
  return o as FixtureManifest;
}

export function manifestText(m: FixtureManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

export function writeManifest(dir: string, m: FixtureManifest): void {
  writeFileAtomically(join(dir, MANIFEST_FILE), manifestText(m));
}

/** Where a listed file stands. */
export type FileState = 'ok' | 'missing' | 'changed' | 'stale';

/**
 * `missing`: no such file; `changed`: its size or sha256 differ from the
 * entry (edited or truncated); `stale`: made from something else than
 * `key` now describes; `ok`: current.
 */
export function fileState(dir: string, entry: ManifestFile | undefined, key?: string): FileState {
  if (!entry) return 'missing';
  const abs = join(dir, ...entry.path.split('/'));
  let size: number;
  try {
    const st = statSync(abs);
    if (!st.isFile()) return 'missing';
    size = st.size;
  } catch {
    return 'missing';
  }
  if (key !== undefined && entry.key !== key) return 'stale';
  if (size !== entry.size || sha256File(abs) !== entry.sha256) return 'changed';
  return 'ok';
}

export { writeFileAtomically };
