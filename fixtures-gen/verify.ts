/**
 * `verifyFixtures(dir)`: checks a fixture set, as `jpip-bench fixtures
 * --verify DIR` does. Every file listed in the manifest must be there with
 * its size and sha256; every frame must open with our parser with the
 * manifest's coding parameters and PLT markers, and every packet of it must
 * index; every movie must hold (JPX) or reference (linked JPX) the
 * manifest's number of frames, each reference resolving inside the set to
 * a listed file and to exactly the bytes of its codestream.
 */
import { readdirSync, realpathSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { isJ2kError } from '../jpeg2000/errors.js';
import { ImageIndex } from '../jpeg2000/index-cache.js';
import { resolveCodestreams } from '../jpeg2000/linked.js';
import { codestreamHasPlt, codingMismatches } from './encoders.js';
import { fileState, MANIFEST_FILE, readManifest, type FixtureManifest, type ManifestFile } from './manifest.js';
import { codingOf } from './presets.js';
import { SET_README } from './generate.js';

export interface VerifyProblem {
  /** Set-relative path ('' for the set as a whole). */
  file: string;
  problem: string;
}

export interface VerifyReport {
  dir: string;
  ok: boolean;
  /** Files listed in the manifest, and their bytes. */
  files: number;
  bytes: number;
  /** Packets indexed in all frames. */
  packets: number;
  /** Frames held or referenced by all movies. */
  movieFrames: number;
  problems: VerifyProblem[];
  /** Files in the directory the manifest does not list (reported, not a failure). */
  unlisted: string[];
}

export interface VerifyOptions {
  onProgress?: (done: number, total: number, file: string) => void;
}

function describe(e: unknown): string {
  if (isJ2kError(e)) return `[${e.code}] ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function walk(dir: string, base: string, out: string[], depth = 0): void {
  if (depth > 16) return;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) walk(p, base, out, depth + 1);
    else out.push(relative(base, p).split(sep).join('/'));
  }
}

/** Checks one local codestream of an opened image: parameters, PLT, every packet. Returns its packet count. */
function checkCodestream(img: ImageIndex, i: number, m: FixtureManifest, file: string, problems: VerifyProblem[]): number {
  const layout = img.layout(i);
  if (!layout) {
    problems.push({ file, problem: `codestream ${i} is not inside the file` });
    return 0;
  }
  const p = m.params;
  const wrong = codingMismatches(layout, { width: p.width, height: p.height, components: p.components, coding: codingOf(p) });
  for (const w of wrong) problems.push({ file, problem: `codestream ${i}: ${w}` });
  if (!codestreamHasPlt(layout)) problems.push({ file, problem: `codestream ${i} has no PLT markers` });
  const ix = img.codestream(i);
  ix.ensureAll();
  let packets = 0;
  for (let t = 0; t < ix.numTiles; t++) {
    const ti = ix.tile(t);
    if (ti.known !== ti.sequence.count) problems.push({ file, problem: `codestream ${i} tile ${t}: ${ti.known} of ${ti.sequence.count} packets indexed` });
    packets += ti.known;
  }
  return packets;
}

/** Checks the set in `dir` against its manifest and our parser. */
export function verifyFixtures(dir: string, opts: VerifyOptions = {}): VerifyReport {
  const problems: VerifyProblem[] = [];
  const report: VerifyReport = { dir, ok: false, files: 0, bytes: 0, packets: 0, movieFrames: 0, problems, unlisted: [] };
  let m: FixtureManifest | undefined;
  try {
    m = readManifest(dir);
  } catch (e) {
    problems.push({ file: MANIFEST_FILE, problem: describe(e) });
    return report;
  }
  if (!m) {
    problems.push({ file: MANIFEST_FILE, problem: `no ${MANIFEST_FILE} in ${dir}: not a fixture set (make one with jpip-bench fixtures --out DIR)` });
    return report;
  }
  report.files = m.files.length;
  report.bytes = m.files.reduce((n, f) => n + f.size, 0);
  const listed = new Map(m.files.map((f) => [f.path, f]));
  // References resolve to real paths: name them relative to the set's real path.
  const realDir = realpathSync(dir);
  /** Codestream (offset, length) of each frame file that checked out. */
  const frameCodestream = new Map<string, { offset: number; length: number }>();

  const frames = m.files.filter((f) => f.role === 'frame');
  const movies = m.files.filter((f) => f.role === 'movie');
  const total = m.files.length;
  let done = 0;
  const step = (f: ManifestFile): void => opts.onProgress?.(++done, total, f.path);

  /** True when the file is there with its size and sha256; else a problem is noted. */
  const intact = (f: ManifestFile): boolean => {
    const state = fileState(dir, f);
    if (state === 'ok') return true;
    problems.push({ file: f.path, problem: state === 'missing' ? 'missing' : 'size or sha256 differs from the manifest (modified since it was made)' });
    step(f);
    return false;
  };

  for (const f of frames) {
    if (!intact(f)) continue;
    let img: ImageIndex | undefined;
    try {
      img = ImageIndex.open(join(dir, ...f.path.split('/')), { name: f.path });
      const cs = img.container.codestreams;
      if (cs.length !== 1) problems.push({ file: f.path, problem: `${cs.length} codestreams, 1 expected` });
      else {
        if (img.container.format !== (f.container === 'j2k' ? 'raw' : 'jp2')) problems.push({ file: f.path, problem: `a ${img.container.format} file, ${f.container} expected` });
        if (cs[0]!.offset !== f.codestreamOffset || cs[0]!.length !== f.codestreamLength) {
          problems.push({ file: f.path, problem: `codestream at ${cs[0]!.offset}+${cs[0]!.length}, manifest says ${String(f.codestreamOffset)}+${String(f.codestreamLength)}` });
        }
        report.packets += checkCodestream(img, 0, m, f.path, problems);
        frameCodestream.set(f.path, { offset: cs[0]!.offset, length: cs[0]!.length });
      }
    } catch (e) {
      problems.push({ file: f.path, problem: describe(e) });
    } finally {
      img?.close();
    }
    step(f);
  }

  for (const f of movies) {
    if (!intact(f)) continue;
    const abs = join(dir, ...f.path.split('/'));
    let img: ImageIndex | undefined;
    try {
      img = ImageIndex.open(abs, { name: f.path });
      const n = img.codestreamCount;
      report.movieFrames += n;
      if (n !== f.frames) problems.push({ file: f.path, problem: `${n} frames, manifest says ${String(f.frames)}` });
      if (f.container === 'linked-jpx') {
        const locations = resolveCodestreams(img.container, { root: dir, containingFile: abs });
        const seen = new Set<string>();
        for (const loc of locations) {
          const target = relative(realDir, loc.path).split(sep).join('/');
          const cs = frameCodestream.get(target);
          if (!listed.has(target)) problems.push({ file: f.path, problem: `frame ${loc.index} references ${target}, which the manifest does not list` });
          else if (!cs) problems.push({ file: f.path, problem: `frame ${loc.index} references ${target}, which did not verify` });
          else if (cs.offset !== loc.offset || cs.length !== loc.length) {
            problems.push({ file: f.path, problem: `frame ${loc.index} points at bytes ${loc.offset}+${loc.length} of ${target}, whose codestream is at ${cs.offset}+${cs.length}` });
          }
          seen.add(target);
        }
        const want = f.references ?? [];
        if (want.length !== seen.size || want.some((r) => !seen.has(r))) problems.push({ file: f.path, problem: `references ${[...seen].join(', ')}; manifest says ${want.join(', ')}` });
      } else {
        if (img.container.format !== 'jpx') problems.push({ file: f.path, problem: `a ${img.container.format} file, JPX expected` });
        // Embedded codestreams: parameters, PLT and every packet of each.
        for (let i = 0; i < n; i++) report.packets += checkCodestream(img, i, m, f.path, problems);
      }
    } catch (e) {
      problems.push({ file: f.path, problem: describe(e) });
    } finally {
      img?.close();
    }
    step(f);
  }

  const all: string[] = [];
  walk(dir, dir, all);
  report.unlisted = all.filter((p) => p !== MANIFEST_FILE && p !== SET_README && !listed.has(p)).sort();
  report.ok = problems.length === 0;
  return report;
}
