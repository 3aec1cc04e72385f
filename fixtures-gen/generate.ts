/**
 * `generateFixtures`: makes a fixture set (frames and movies) into a
 * directory, as `jpip-bench fixtures --preset NAME --out DIR` does.
 *
 * A set is K distinct encoded frames (the pool) and the files made of them:
 * - `pool` layout (small, paper): `frames/frame-000.jp2` .. one file per pool
 *   frame, and `movie-00.jpx` .. linked JPX files whose frame i is pool frame
 *   (i + m) mod K, so 20 movies of 1000 frames need only K encodes;
 * - `per-frame` layout (jhv): one JP2 per frame of each movie with its own
 *   XML box (DATE-OBS advancing by the cadence), named like Helioviewer's
 *   files, and one linked JPX per movie (wavelength) pointing at them.
 *
 * Encoders run in parallel, one child process per core. The manifest
 * records a key per file (what it is made from); a re-run makes only the
 * files that are missing, stale (other parameters, encoder version or
 * source) or changed on disk, taking pool codestreams from files that are
 * still good instead of encoding them again.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, renameSync, rmdirSync, rmSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { boxHeader, readContainer } from '../jpeg2000/boxes.js';
import { writeJp2, writeJpx, writeLinkedJpx, type LinkedFrame } from './containers.js';
import { commandLine, codestreamExtension, encode, encoderArgs, pickEncoder, writesPlt, type EncoderTool } from './encoders.js';
import {
  fileState,
  keyOf,
  readManifest,
  sha256,
  sha256File,
  writeFileAtomically,
  writeManifest,
  MANIFEST_FILE,
  type FileContainer,
  type FixtureManifest,
  type ManifestFile,
  type PoolEntry,
  type SourceDescription,
} from './manifest.js';
import { codingOf, ParamError, resolveParams, type PresetName, type SetOverrides } from './presets.js';
import { frameXml, loadImage, PNM_EXTENSIONS, probeImage, SHARP_EXTENSIONS, solarGeometry, SourceError, SYNTH_ID, synthSolarFrame } from './sources.js';
import { encodePnm, type PnmImage } from './synth.js';

/** Changes whenever the generator would write other bytes from the same inputs: every file becomes stale. */
export const GENERATOR_ID = 'jpip-bench-fixtures/1';

/** AIA wavelengths (angstrom) given to the movies of the per-frame layout, in order. */
export const WAVELENGTHS: readonly number[] = [171, 193, 211, 304, 335, 94, 131, 1600, 1700];

/** The set's README (not in the manifest: it only describes). */
export const SET_README = 'README.md';

/** A set that cannot be made as asked (not enough disk space, ...); the message says why. */
export class GenerateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GenerateError';
  }
}

export interface GenerateOptions {
  preset?: PresetName;
  out: string;
  overrides?: SetOverrides;
  /** The user's images (files, or directories of them) instead of synthetic frames: one pool frame each. */
  images?: readonly string[];
  /** `auto` (default), an encoder name or alias (opj, kdu, grk). */
  encoder?: string;
  /** Encoders run at once (default: os.availableParallelism()). */
  jobs?: number;
  /** Remake every file. */
  force?: boolean;
  /** The command recorded in the manifest and README (default: rebuilt from these options). */
  command?: string;
  onProgress?: (p: GenerateProgress) => void;
  /** Where to look for encoders (default $PATH). */
  pathEnv?: string;
  /** Per-encode time limit. */
  timeoutMs?: number;
}

export type GeneratePhase = 'check' | 'encode' | 'movies';

export interface GenerateProgress {
  phase: GeneratePhase;
  done: number;
  total: number;
  /** The file just finished. */
  file?: string;
}

export interface GenerateResult {
  dir: string;
  manifest: FixtureManifest;
  /** Encoder runs. */
  encoded: number;
  /** Pool codestreams taken from files already made. */
  reused: number;
  /** Files (re)written, set-relative. */
  written: string[];
  /** Files already current. */
  kept: number;
  /** Files of an earlier run no longer in the set, deleted. */
  removed: string[];
  /** Bytes of all the set's files. */
  bytes: number;
  /** Encoders run at once. */
  jobs: number;
  ms: { check: number; encode: number; movies: number; total: number };
}

interface FramePlan {
  path: string;
  pool: number;
  container: 'jp2' | 'j2k';
  xml: string | undefined;
  dateObs: string | undefined;
  key: string;
  /** Current entry: kept from the old manifest, or made by this run. */
  entry: ManifestFile | undefined;
}

interface MoviePlan {
  path: string;
  container: 'linked-jpx' | 'jpx';
  frames: FramePlan[];
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

function absPath(dir: string, rel: string): string {
  return join(dir, ...rel.split('/'));
}

/** `2026_01_01__00_00_12_000`: the date part of Helioviewer's file names. */
function hvDate(d: Date): string {
  const iso = d.toISOString(); // 2026-01-01T00:00:12.000Z
  return `${iso.slice(0, 4)}_${iso.slice(5, 7)}_${iso.slice(8, 10)}__${iso.slice(11, 13)}_${iso.slice(14, 16)}_${iso.slice(17, 19)}_${iso.slice(20, 23)}`;
}

/** Name of movie m of the per-frame layout: `AIA_171`, then `AIA_193`, ... (`AIA_171_2` on the second round). */
export function movieName(m: number): string {
  const w = WAVELENGTHS[m % WAVELENGTHS.length]!;
  const round = Math.floor(m / WAVELENGTHS.length);
  return `AIA_${w}${round > 0 ? `_${round + 1}` : ''}`;
}

/** The images of `inputs` (directories give their image files, sorted by name). */
export function expandImages(inputs: readonly string[]): string[] {
  const known = new Set([...PNM_EXTENSIONS, ...SHARP_EXTENSIONS]);
  const out: string[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = statSync(input);
    } catch {
      throw new SourceError(input, 'no such file or directory');
    }
    if (st.isDirectory()) {
      const files = readdirSync(input)
        .filter((f) => known.has(extname(f).toLowerCase()))
        .sort();
      if (files.length === 0) throw new SourceError(input, `no images (${[...known].join(', ')}) in this directory`);
      out.push(...files.map((f) => join(input, f)));
    } else {
      out.push(input);
    }
  }
  return out;
}

/** The command line that makes a set with these options. */
export function commandFor(opts: GenerateOptions): string {
  const args = ['jpip-bench', 'fixtures', '--preset', opts.preset ?? 'small', '--out', opts.out];
  const o = opts.overrides ?? {};
  const flag = (name: string, v: unknown): void => {
    if (v !== undefined) args.push(`--${name}`, Array.isArray(v) ? v.join(',') : typeof v === 'boolean' ? String(v) : String(v));
  };
  flag('size', o.size);
  flag('width', o.width);
  flag('height', o.height);
  flag('components', o.components);
  flag('frames', o.frames);
  flag('movies', o.movies);
  flag('pool', o.pool);
  flag('layers', o.layers);
  flag('levels', o.levels);
  flag('precincts', Array.isArray(o.precincts) ? o.precincts.join('x') : o.precincts);
  flag('code-block', Array.isArray(o.codeBlock) ? o.codeBlock.join('x') : o.codeBlock);
  flag('progression', o.progression);
  flag('rates', o.rates);
  flag('format', o.format);
  flag('seed', o.seed);
  if (o.reversible === false) args.push('--irreversible');
  if (opts.encoder && opts.encoder !== 'auto') flag('encoder', opts.encoder);
  for (const img of opts.images ?? []) args.push('--images', img);
  return commandLine(args[0]!, args.slice(1));
}

/** Runs fn on every item with at most `jobs` at once; the first failure is thrown once all running ones end. */
async function runPool<T>(items: readonly T[], jobs: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  if (failure) throw failure.error;
}

/** Reads `length` bytes at `offset` of a file. */
function readRange(file: string, offset: number, length: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const out = new Uint8Array(length);
    for (let got = 0; got < length; ) {
      const n = readSync(fd, out, got, length - got, offset + got);
      if (n === 0) throw new Error(`${file}: ends before byte ${offset + length}`);
      got += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 0)} MB`;
}

/**
 * A JPX embedding the codestreams of `frames` (each read from its frame
 * file), written piece by piece so a movie of any size never sits in
 * memory: the headers are writeJpx's own (written for empty codestreams,
 * whose 8-byte jp2c boxes are cut off), then one jp2c box per frame.
 */
function writeEmbeddedJpx(dir: string, movie: MoviePlan, info: { width: number; height: number; components: number }): { size: number; sha256: string } {
  const n = movie.frames.length;
  const headers = writeJpx(
    movie.frames.map(() => new Uint8Array(0)),
    { width: info.width, height: info.height, components: info.components, bitDepth: 8 },
  );
  const prefix = headers.subarray(0, headers.length - 8 * n);
  const file = absPath(dir, movie.path);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const hash = createHash('sha256');
  const fd = openSync(tmp, 'w');
  let size = 0;
  const put = (b: Uint8Array): void => {
    for (let at = 0; at < b.length; ) at += writeSync(fd, b, at, b.length - at);
    hash.update(b);
    size += b.length;
  };
  try {
    put(prefix);
    const chunk = 1 << 20;
    for (const f of movie.frames) {
      const e = f.entry!;
      put(boxHeader('jp2c', e.codestreamLength!));
      const src = absPath(dir, f.path);
      for (let at = 0; at < e.codestreamLength!; at += chunk) {
        put(readRange(src, e.codestreamOffset! + at, Math.min(chunk, e.codestreamLength! - at)));
      }
    }
    closeSync(fd);
    renameSync(tmp, file);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  return { size, sha256: hash.digest('hex') };
}

/** A frame's manifest entry with its fields in one order, however it was made (so manifests compare as text). */
function frameEntry(e: ManifestFile): ManifestFile {
  const { path, role, container, size, sha256: hash, key, pool, codestreamKey, codestreamOffset, codestreamLength, dateObs } = e;
  return { path, role, container, size, sha256: hash, key, pool, codestreamKey, codestreamOffset, codestreamLength, ...(dateObs !== undefined ? { dateObs } : {}) };
}

/** Makes (or brings up to date) the fixture set described by `opts` in `opts.out`. */
export async function generateFixtures(opts: GenerateOptions): Promise<GenerateResult> {
  const t0 = performance.now();
  const preset = opts.preset ?? 'small';
  const dir = resolve(opts.out);
  const progress = opts.onProgress ?? (() => {});

  // Sources: synthetic, or the user's images (their size wins; one pool frame each).
  let overrides: SetOverrides = { ...opts.overrides };
  const images = opts.images && opts.images.length > 0 ? expandImages(opts.images) : undefined;
  const imageInfo: { file: string; sha256: string }[] = [];
  if (images) {
    for (const k of ['size', 'width', 'height', 'components', 'pool', 'seed'] as const) {
      if (overrides[k] !== undefined) throw new ParamError(k, 'cannot be combined with --images (the images set it)');
    }
    const first = await probeImage(images[0]!);
    for (const file of images) {
      const info = file === images[0] ? first : await probeImage(file);
      if (info.width !== first.width || info.height !== first.height || info.components !== first.components) {
        throw new SourceError(file, `is ${info.width}x${info.height}x${info.components}, but ${images[0]} is ${first.width}x${first.height}x${first.components}: the frames of a set must match`);
      }
      imageInfo.push({ file, sha256: sha256File(file) });
    }
    overrides = { ...overrides, width: first.width, height: first.height, components: first.components, pool: images.length };
  }
  const params = resolveParams(preset, overrides);
  if (params.layout === 'per-frame' && params.movies === 0) throw new ParamError('movies', `the ${preset} preset keeps every frame in a movie: give at least 1`);
  const tool = pickEncoder(opts.encoder ?? 'auto', opts.pathEnv);
  const jobs = Math.max(1, Math.min(64, Math.floor(opts.jobs ?? availableParallelism())));
  const coding = codingOf(params);
  const K = params.pool;
  const { width, height, components } = params;
  const image = { width, height, components, bitDepth: 8 };

  const sourceOf = (j: number): SourceDescription =>
    images
      ? { kind: 'image', file: basename(imageInfo[j]!.file), sha256: imageInfo[j]!.sha256, width, height, components }
      : { kind: 'synthetic', synth: SYNTH_ID, width, height, components, seed: params.seed, frame: j };
  const codestreamKeys = Array.from({ length: K }, (_, j) => keyOf({ generator: GENERATOR_ID, encoder: { name: tool.name, version: tool.version }, coding, source: sourceOf(j) }));
  const geometry = images ? undefined : solarGeometry(width, height, params.seed);
  const startMs = Date.parse(params.start);
  /** The XML box of frame i (DATE-OBS = start + i cadences) holding pool frame `pool`. */
  const metaXml = (i: number, pool: number, wavelength: number): { xml: string; dateObs: string; date: Date } => {
    const date = new Date(startMs + i * params.cadenceSeconds * 1000);
    const comment = images ? `frame from ${basename(imageInfo[pool]!.file)}, made by jpip-bench fixtures` : `synthetic sun (seed ${params.seed}, frame ${pool}), made by jpip-bench fixtures`;
    const xml = frameXml({ width, height, date, wavelength, ...(geometry ? { geometry } : {}), comment });
    return { xml, dateObs: date.toISOString(), date };
  };

  // The plan: every file of the set and what it is made of.
  const frameContainer: 'jp2' | 'j2k' = params.format === 'j2k' ? 'j2k' : 'jp2';
  const ext = frameContainer === 'j2k' ? 'j2k' : 'jp2';
  const frames: FramePlan[] = [];
  const movies: MoviePlan[] = [];
  const movieContainer = params.format === 'jpx' ? 'jpx' : 'linked-jpx';
  const frameKey = (pool: number, xml: string | undefined): string => keyOf({ codestream: codestreamKeys[pool], container: frameContainer, xml });
  const newFrame = (path: string, pool: number, meta: { xml: string; dateObs: string } | undefined): FramePlan => {
    const xml = frameContainer === 'jp2' ? meta?.xml : undefined;
    const f: FramePlan = { path, pool, container: frameContainer, xml, dateObs: xml ? meta?.dateObs : undefined, key: frameKey(pool, xml), entry: undefined };
    frames.push(f);
    return f;
  };
  if (params.layout === 'pool') {
    const w = Math.max(3, String(K - 1).length);
    const pool = Array.from({ length: K }, (_, j) => newFrame(`frames/frame-${pad(j, w)}.${ext}`, j, metaXml(j, j, WAVELENGTHS[0]!)));
    const mw = Math.max(2, String(params.movies - 1).length);
    for (let m = 0; m < params.movies; m++) {
      movies.push({ path: `movie-${pad(m, mw)}.jpx`, container: movieContainer, frames: Array.from({ length: params.frames }, (_, i) => pool[(i + m) % K]!) });
    }
  } else {
    for (let m = 0; m < params.movies; m++) {
      const name = movieName(m);
      const wavelength = WAVELENGTHS[m % WAVELENGTHS.length]!;
      const list: FramePlan[] = [];
      for (let i = 0; i < params.frames; i++) {
        const pool = (i + m) % K;
        const meta = metaXml(i, pool, wavelength);
        list.push(newFrame(`${name}/${hvDate(meta.date)}__SDO_AIA_AIA_${wavelength}.${ext}`, pool, meta));
      }
      movies.push({ path: `${name}.jpx`, container: movieContainer, frames: list });
    }
  }
  const planned = new Set([...frames.map((f) => f.path), ...movies.map((m) => m.path)]);

  // What is already there and current.
  mkdirSync(dir, { recursive: true });
  const old = readManifest(dir);
  const oldByPath = new Map((old?.files ?? []).map((f) => [f.path, f]));
  const oldPool = new Map((old?.pool ?? []).map((p) => [p.key, p]));
  let kept = 0;
  /** Per pool index, a file on disk (current or not) that still holds its codestream: a re-run takes it from there. */
  const donors = new Map<number, ManifestFile>();
  const oldFrames = (old?.files ?? []).filter((f) => f.role === 'frame' && f.codestreamKey !== undefined);
  const poolOfKey = new Map(codestreamKeys.map((k, j) => [k, j]));
  frames.forEach((f, i) => {
    const prev = oldByPath.get(f.path);
    if (!opts.force && prev?.codestreamOffset !== undefined && prev.codestreamLength !== undefined && fileState(dir, prev, f.key) === 'ok') {
      // (The frame key covers the codestream key, so the entry can say it even when an older manifest did not.)
      f.entry = frameEntry({ ...prev, codestreamKey: codestreamKeys[f.pool]! });
      donors.set(f.pool, f.entry);
      kept++;
    }
    progress({ phase: 'check', done: i + 1, total: frames.length, file: f.path });
  });
  if (!opts.force) {
    for (const prev of oldFrames) {
      const j = poolOfKey.get(prev.codestreamKey!);
      if (j === undefined || donors.has(j) || prev.codestreamOffset === undefined || prev.codestreamLength === undefined) continue;
      if (fileState(dir, prev) === 'ok') donors.set(j, prev);
    }
  }
  const tCheck = performance.now();

  // Pool codestreams needed by frame files to (re)write: taken from a current file, or encoded.
  const byPool = new Map<number, FramePlan[]>();
  for (const f of frames) {
    const list = byPool.get(f.pool) ?? [];
    list.push(f);
    byPool.set(f.pool, list);
  }
  const needed = [...byPool.entries()].filter(([, list]) => list.some((f) => !f.entry)).map(([j]) => j);
  const toWrite = frames.filter((f) => !f.entry).length;
  const estFrame = (width * height * components) / params.rates[params.rates.length - 1]! + 4096;
  const estimate = toWrite * estFrame + movies.length * params.frames * (movieContainer === 'jpx' ? estFrame : 200);
  const free = freeBytes(dir);
  if (free !== undefined && estimate > free) {
    throw new GenerateError(`the set needs about ${mb(estimate)} more, but only ${mb(free)} is free in ${dir}`);
  }

  const poolEntries = new Map<number, PoolEntry>();
  const written: string[] = [];
  let encoded = 0;
  let reused = 0;
  let lastSave = performance.now();
  const saveProgress = (): void => {
    // So an interrupted run resumes where it stopped: every file made so far, and the old entries of the rest.
    const merged = new Map(oldByPath);
    for (const f of frames) if (f.entry) merged.set(f.path, f.entry);
    writeManifest(dir, buildManifest([...merged.values()]));
    lastSave = performance.now();
  };
  const buildManifest = (files: ManifestFile[]): FixtureManifest => {
    const pool = [...poolEntries.values()].sort((a, b) => a.index - b.index);
    return {
      format: 'jpip-bench-fixtures',
      version: 1,
      command: opts.command ?? commandFor(opts),
      preset,
      params,
      encoder: { name: tool.name, version: tool.version },
      pool,
      files,
      totals: { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) },
    };
  };
  const scratchName = (j: number): { input: string; output: string } => ({
    input: `source-${pad(j, 4)}.${components === 1 ? 'pgm' : 'ppm'}`,
    output: `frame-${pad(j, 4)}${codestreamExtension(tool.name)}`,
  });
  const poolEntryFor = (j: number, cs: Uint8Array, pltAdded: boolean): PoolEntry => {
    const names = scratchName(j);
    return {
      index: j,
      key: codestreamKeys[j]!,
      source: sourceOf(j),
      command: commandLine(tool.name, encoderArgs(tool, { ...names, width, height, components, coding })),
      pltAdded,
      sha256: sha256(cs),
      size: cs.length,
    };
  };
  const writeFramesOf = (j: number, cs: Uint8Array): void => {
    for (const f of byPool.get(j) ?? []) {
      if (f.entry) continue;
      const bytes = f.container === 'j2k' ? cs : writeJp2(cs, { ...image, ...(f.xml !== undefined ? { xml: f.xml } : {}) });
      const ref = readContainer(bytes, { file: f.path }).codestreams[0]!;
      writeFileAtomically(absPath(dir, f.path), bytes);
      f.entry = frameEntry({
        path: f.path,
        role: 'frame',
        container: f.container,
        size: bytes.length,
        sha256: sha256(bytes),
        key: f.key,
        pool: j,
        codestreamKey: codestreamKeys[j]!,
        codestreamOffset: ref.offset,
        codestreamLength: ref.length,
        dateObs: f.dateObs,
      });
      written.push(f.path);
    }
  };

  const scratch = mkdtempSync(join(tmpdir(), 'jpip-fixtures-'));
  let done = 0;
  try {
    await runPool(needed, jobs, async (j) => {
      // A codestream still on disk (checked against its pool entry) is taken rather than encoded again.
      const donor = donors.get(j);
      let cs: Uint8Array | undefined;
      if (donor) {
        const bytes = readRange(absPath(dir, donor.path), donor.codestreamOffset!, donor.codestreamLength!);
        const want = oldPool.get(codestreamKeys[j]!);
        if (!want || sha256(bytes) === want.sha256) {
          cs = bytes;
          poolEntries.set(j, want ? { ...want, index: j } : poolEntryFor(j, bytes, !writesPlt(tool)));
          reused++;
        }
      }
      if (!cs) {
        const img: PnmImage = images
          ? await loadImage(imageInfo[j]!.file)
          : { width, height, components, samples: synthSolarFrame({ width, height, components, seed: params.seed, frame: j }) };
        const names = scratchName(j);
        writeFileAtomically(join(scratch, names.input), encodePnm(img));
        const out = await encode(tool, { ...names, width, height, components, coding }, { cwd: scratch, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
        rmSync(join(scratch, names.input), { force: true });
        cs = out.codestream;
        poolEntries.set(j, poolEntryFor(j, cs, out.pltAdded));
        encoded++;
      }
      writeFramesOf(j, cs);
      progress({ phase: 'encode', done: ++done, total: needed.length, file: byPool.get(j)![0]!.path });
      if (performance.now() - lastSave > 5000) saveProgress();
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  // Pool entries of codestreams not touched this run: from the old manifest, else from a frame file.
  for (const [j, list] of byPool) {
    if (poolEntries.has(j)) continue;
    const prev = oldPool.get(codestreamKeys[j]!);
    if (prev) poolEntries.set(j, { ...prev, index: j });
    else {
      const e = list[0]!.entry!;
      poolEntries.set(j, poolEntryFor(j, readRange(absPath(dir, list[0]!.path), e.codestreamOffset!, e.codestreamLength!), !writesPlt(tool)));
    }
  }
  const tEncode = performance.now();

  // Movies: keyed on the exact frame files they hold or reference.
  const movieEntries: ManifestFile[] = [];
  movies.forEach((mv, i) => {
    const key = keyOf({ generator: GENERATOR_ID, container: mv.container, frames: mv.frames.map((f) => [f.path, f.entry!.sha256]) });
    const prev = oldByPath.get(mv.path);
    if (!opts.force && fileState(dir, prev, key) === 'ok') {
      movieEntries.push(prev!);
      kept++;
    } else {
      let size: number;
      let hash: string;
      if (mv.container === 'linked-jpx') {
        const linked: LinkedFrame[] = mv.frames.map((f) => ({ ...image, path: f.path, codestreamOffset: f.entry!.codestreamOffset!, codestreamLength: f.entry!.codestreamLength! }));
        const bytes = writeLinkedJpx(linked);
        writeFileAtomically(absPath(dir, mv.path), bytes);
        size = bytes.length;
        hash = sha256(bytes);
      } else {
        ({ size, sha256: hash } = writeEmbeddedJpx(dir, mv, image));
      }
      const container: FileContainer = mv.container;
      const references = mv.container === 'linked-jpx' ? [...new Set(mv.frames.map((f) => f.path))] : undefined;
      movieEntries.push({ path: mv.path, role: 'movie', container, size, sha256: hash, key, frames: mv.frames.length, ...(references ? { references } : {}) });
      written.push(mv.path);
    }
    progress({ phase: 'movies', done: i + 1, total: movies.length, file: mv.path });
  });
  const tMovies = performance.now();

  // Files of an earlier run that this set no longer has.
  const removed: string[] = [];
  for (const f of old?.files ?? []) {
    if (planned.has(f.path)) continue;
    const abs = absPath(dir, f.path);
    try {
      unlinkSync(abs);
      removed.push(f.path);
    } catch {
      /* already gone */
    }
    try {
      rmdirSync(dirname(abs));
    } catch {
      /* not empty, or the set's own directory */
    }
  }

  const manifest = buildManifest([...frames.map((f) => f.entry!), ...movieEntries]);
  writeManifest(dir, manifest);
  writeFileAtomically(join(dir, SET_README), setReadme(manifest, tool, opts.out));
  const tEnd = performance.now();
  return {
    dir,
    manifest,
    encoded,
    reused,
    written,
    kept,
    removed,
    bytes: manifest.totals.bytes,
    jobs,
    ms: { check: tCheck - t0, encode: tEncode - tCheck, movies: tMovies - tEncode, total: tEnd - t0 },
  };
}

/** The README written beside a set: what it is and the command that makes it. */
export function setReadme(m: FixtureManifest, tool: Pick<EncoderTool, 'name' | 'version'>, out: string): string {
  const p = m.params;
  const framesList = m.files.filter((f) => f.role === 'frame');
  const moviesList = m.files.filter((f) => f.role === 'movie');
  const source =
    m.pool[0]?.source.kind === 'image'
      ? `the user's images (${m.pool.map((e) => (e.source.kind === 'image' ? e.source.file : '')).join(', ')})`
      : `synthetic suns (fixtures-gen/sources.ts synthSolarFrame, seed ${p.seed}, frames 0..${p.pool - 1}): rotating active regions, loops, noise`;
  const range = (list: ManifestFile[]): string => (list.length === 0 ? 'none' : list.length === 1 ? `\`${list[0]!.path}\`` : `\`${list[0]!.path}\` .. \`${list[list.length - 1]!.path}\``);
  const movieLine =
    p.layout === 'pool'
      ? `frame i of movie m is pool frame (i + m) mod ${p.pool}`
      : `one file per frame, each with its own XML box (DATE-OBS every ${p.cadenceSeconds} s from ${p.start})`;
  const lines = [
    `# Fixture set \`${m.preset}\``,
    '',
    'JPEG 2000 images and movies for serving and measuring JPIP servers, made by',
    '',
    '```sh',
    m.command,
    '```',
    '',
    `with ${tool.name} ${tool.version ?? '(version unknown)'}. Running the same command again makes only what is missing or`,
    `stale. Check every file against \`${MANIFEST_FILE}\` (sha256 and size) and our parser, and serve the set, with`,
    '',
    '```sh',
    commandLine('jpip-bench', ['fixtures', '--verify', out]),
    commandLine('jpip-bench', ['serve', '--root', out]),
    '```',
    '',
    '| | |',
    '|---|---|',
    `| frames | ${p.width}x${p.height}, ${p.components} component${p.components > 1 ? 's' : ''}, 8-bit, from ${source} |`,
    `| coding | ${p.layers} layers (compression ratios ${p.rates.join(', ')}), ${p.levels + 1} resolutions (${p.levels} levels), ${p.progression}, ${p.precincts.join('x')} precincts at every resolution, ${p.codeBlock.join('x')} code-blocks, ${p.reversible ? '5/3 reversible' : '9/7 irreversible'}, PLT markers |`,
    `| pool | ${p.pool} distinct encoded frames (the encoder command of each is in \`${MANIFEST_FILE}\`, \`pool[].command\`) |`,
    `| frame files | ${framesList.length}: ${range(framesList)} (${p.format === 'j2k' ? 'raw codestreams' : 'JP2 with an XML box of FITS-style keywords'}) |`,
    `| movies | ${moviesList.length}: ${range(moviesList)}, ${p.format === 'jpx' ? 'JPX embedding' : 'linked JPX referencing'} ${p.frames} frames each; ${movieLine} |`,
    `| total | ${m.totals.files} files, ${m.totals.bytes.toLocaleString('en-US')} bytes |`,
    '',
  ];
  return lines.join('\n');
}
