import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Codestream } from '../jpeg2000/codestream.js';
import { decomposePrecinctBinId, numTiles as numTilesOf, resolutionSizeAtDiscard } from '../jpeg2000/geometry.js';
import { ImageIndex } from '../jpeg2000/index-cache.js';
import { resolveCodestreams } from '../jpeg2000/linked.js';
import type { Siz } from '../jpeg2000/markers.js';
import type { CodestreamIndex } from '../jpeg2000/packet-index.js';
import { subSource, type RandomAccess } from '../jpeg2000/source.js';
import { readBoxContent } from '../jpeg2000/boxes.js';
import { BIN_CLASS } from '../jpip/constants.js';
import { mainHeaderBin, precinctBin, readRanges, tileBin, tileHeaderBin } from '../jpip/databin-map.js';
import { maxDiscardLevels, planWindow, resolveView, type View, type ViewRequest } from '../jpip/window.js';
import { decodeWasm, type DecodedImage } from '../client-sim/decode.js';

/**
 * The conformance fixture set: which files the suite asks the server for
 * (by the name the server knows them under) and where the suite finds the
 * same files to compare against (under `--root`). Data-correctness checks
 * compare every received byte with what the original file holds, so the
 * server and the suite must see the same bytes: a `sha256` in the set pins
 * each original.
 *
 * Each role is one kind of file a group of checks needs. A set must give
 * every role (two roles may name one file where it fits both).
 */

export const ROLES = {
  frame: 'a JP2 frame as JHelioviewer fetches them: one tile, several resolutions and layers, precincts, an XML box',
  tiled: 'a tiled colour JP2 with several tile-parts per tile, precincts, layers',
  odd: 'a raw codestream of odd size with an image offset, small tiles and precincts (edges and rounding)',
  raw: 'a raw tiled codestream (empty metadata-bin 0; JPT-stream tiles)',
  jpx: 'a JPX holding several codestreams (frames) in jp2c boxes',
  linked: 'a linked JPX whose frames are other files, referenced through ftbl/dtbl (kdu_merge -links)',
  'not-image': 'a file under the root that is not JPEG 2000',
} as const;
export type Role = keyof typeof ROLES;
export const ROLE_NAMES = Object.keys(ROLES) as Role[];

export interface FixtureTarget {
  /** The name the server knows the file under (relative to its image root, '/'-separated). */
  path: string;
  /** The same file under the originals directory (`--root`). */
  original: string;
  /** sha256 (hex) of the original: the suite refuses to run against other bytes. */
  sha256?: string | undefined;
}

export interface FixtureSet {
  name: string;
  description?: string | undefined;
  targets: Record<Role, FixtureTarget>;
}

/** The default set: files committed in test/fixtures (serve that directory, or copy it into the server's root). */
export const DEFAULT_FIXTURE_SET: FixtureSet = {
  name: 'jpip-bench default (test/fixtures)',
  description: 'Serve test/fixtures as the image root, or copy its files there keeping the relative paths.',
  targets: {
    frame: { path: 'movie/frames/frame 000.jp2', original: 'movie/frames/frame 000.jp2' },
    tiled: { path: 'rgb200x150-t64-rpcl-plt-tpr.jp2', original: 'rgb200x150-t64-rpcl-plt-tpr.jp2' },
    odd: { path: 'g97x61-odd-t32-rpcl.j2k', original: 'g97x61-odd-t32-rpcl.j2k' },
    raw: { path: 'g200x150-t64-lrcp.j2k', original: 'g200x150-t64-lrcp.j2k' },
    jpx: { path: 'movie/movie.jpx', original: 'movie/movie.jpx' },
    linked: { path: 'movie/linked.jpx', original: 'movie/linked.jpx' },
    'not-image': { path: 'README.md', original: 'README.md' },
  },
};

/** The committed fixtures directory (from the source tree or from dist/). */
export function defaultOriginalsRoot(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../test/fixtures', '../../test/fixtures']) {
    const p = path.resolve(here, rel);
    if (existsSync(path.join(p, 'matrix.json'))) return p;
  }
  return undefined;
}

/** Reads and checks a fixture set description (JSON). */
export function parseFixtureSet(text: string, source = 'fixture set'): FixtureSet {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || typeof (raw as { targets?: unknown }).targets !== 'object') throw new Error(`${source}: expected an object with "targets"`);
  const obj = raw as { name?: unknown; description?: unknown; targets: Record<string, unknown> };
  const targets = {} as Record<Role, FixtureTarget>;
  for (const role of ROLE_NAMES) {
    const t = obj.targets[role] as Partial<FixtureTarget> | undefined;
    if (!t || typeof t.path !== 'string' || t.path === '') throw new Error(`${source}: targets.${role}.path is missing (${ROLES[role]})`);
    const original = typeof t.original === 'string' && t.original !== '' ? t.original : t.path;
    if (t.sha256 !== undefined && (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256))) throw new Error(`${source}: targets.${role}.sha256 is not 64 hex digits`);
    targets[role] = { path: t.path, original, sha256: t.sha256 };
  }
  for (const k of Object.keys(obj.targets)) if (!(ROLE_NAMES as string[]).includes(k)) throw new Error(`${source}: unknown role ${JSON.stringify(k)} (roles: ${ROLE_NAMES.join(', ')})`);
  return { name: typeof obj.name === 'string' ? obj.name : source, description: typeof obj.description === 'string' ? obj.description : undefined, targets };
}

// ---------------------------------------------------------------------------
// What the server must send, from the original files

export interface ExpectedPrecinct {
  t: number;
  c: number;
  s: number;
  r: number;
  /** Levels of (t, c): the precinct is at scale r - levels. */
  levels: number;
  bytes: Uint8Array;
  layerEnds: number[];
}

/** One codestream of an original file, and what each of its data-bins holds. */
export class ExpectedCodestream {
  readonly index: number;
  readonly src: RandomAccess;
  readonly layout: Codestream;
  readonly packets: CodestreamIndex;
  readonly siz: Siz;
  readonly numTiles: number;
  readonly numComponents: number;
  /** Levels that may be discarded (the smallest NL of any tile-component). */
  readonly maxDiscard: number;
  readonly layers: number;
  private readonly decodedCache = new Map<string, Promise<DecodedImage>>();
  private readonly precinctCache = new Map<number, ExpectedPrecinct | undefined>();

  constructor(index: number, src: RandomAccess, packets: CodestreamIndex) {
    this.index = index;
    this.src = src;
    this.packets = packets;
    this.layout = packets.codestream;
    this.siz = this.layout.main.siz;
    this.numTiles = numTilesOf(this.siz);
    this.numComponents = this.siz.components.length;
    const codings = this.layout.tiles.map((_, t) => packets.tile(t).coding);
    this.maxDiscard = maxDiscardLevels(codings);
    this.layers = Math.max(...codings.map((c) => c.layers));
  }

  /** The whole codestream. */
  bytes(): Uint8Array {
    return this.src.read(0, this.src.size);
  }

  mainHeader(): Uint8Array {
    return readRanges(this.src, mainHeaderBin(this.layout));
  }

  tileHeader(t: number): Uint8Array {
    return readRanges(this.src, tileHeaderBin(this.layout, t));
  }

  tile(t: number): Uint8Array {
    return readRanges(this.src, tileBin(this.layout, t));
  }

  /** The precinct bin with this in-class id, or undefined when the codestream has none. */
  precinct(id: number): ExpectedPrecinct | undefined {
    if (this.precinctCache.has(id)) return this.precinctCache.get(id);
    let out: ExpectedPrecinct | undefined;
    if (Number.isSafeInteger(id) && id >= 0) {
      const { t, c, s } = decomposePrecinctBinId(id, this.numComponents, this.numTiles);
      if (t < this.numTiles) {
        const ti = this.packets.tile(t);
        const r = ti.geometry.seqResolution(c, s);
        if (r >= 0) {
          const bin = precinctBin(this.packets, t, c, s);
          out = { t, c, s, r, levels: ti.geometry.levels(c), bytes: readRanges(this.src, bin.ranges), layerEnds: bin.layerEnds };
        }
      }
    }
    this.precinctCache.set(id, out);
    return out;
  }

  /** The bytes a data-bin of this codestream holds (classes 0/1, 2, 4/5, 6), or undefined when there is no such bin. */
  bin(classId: number, id: number): Uint8Array | undefined {
    switch (classId) {
      case BIN_CLASS.MAIN_HEADER:
        return id === 0 ? this.mainHeader() : undefined;
      case BIN_CLASS.TILE_HEADER:
        return Number.isInteger(id) && id >= 0 && id < this.numTiles ? this.tileHeader(id) : undefined;
      case BIN_CLASS.TILE:
      case BIN_CLASS.EXTENDED_TILE:
        return Number.isInteger(id) && id >= 0 && id < this.numTiles ? this.tile(id) : undefined;
      case BIN_CLASS.PRECINCT:
      case BIN_CLASS.EXTENDED_PRECINCT:
        return this.precinct(id)?.bytes;
      default:
        return undefined;
    }
  }

  /** Size of the frame with d levels discarded. */
  frameSize(d: number): { width: number; height: number } {
    return resolutionSizeAtDiscard(this.siz, d);
  }

  /** The view a request asks for, as the rules map it (undefined without fsiz). */
  view(req: ViewRequest): View | undefined {
    return resolveView(this.siz, this.maxDiscard, req);
  }

  /**
   * The precinct bin ids a view needs: `reach` 0 gives the precincts that
   * overlap the window at every kept resolution (what every server must send);
   * 'auto' adds the wavelet filters' reach (what an exact reconstruction needs).
   */
  precinctIds(view: View, reach: number | 'auto' = 0, components?: number[]): Set<number> {
    const out = new Set<number>();
    const plan = planWindow(this.siz, view, (t) => ({ geom: this.packets.tile(t).geometry, coding: this.packets.tile(t).coding }), { filterReach: reach, components });
    for (const tp of plan) {
      for (const q of tp.precincts) out.add(tp.tile + (q.c + q.s * this.numComponents) * this.numTiles);
    }
    return out;
  }

  /** Every precinct bin id of the codestream. */
  allPrecinctIds(): number[] {
    const out: number[] = [];
    for (let t = 0; t < this.numTiles; t++) {
      const g = this.packets.tile(t).geometry;
      for (let c = 0; c < this.numComponents; c++) {
        const n = g.precinctTotal(c);
        for (let s = 0; s < n; s++) out.push(t + (c + s * this.numComponents) * this.numTiles);
      }
    }
    return out;
  }

  /** The original decoded (WASM OpenJPEG), cached. */
  decoded(reduce = 0, layers = 0): Promise<DecodedImage> {
    const key = `${reduce}/${layers}`;
    let p = this.decodedCache.get(key);
    if (!p) {
      p = decodeWasm(this.bytes(), { reduce, layers });
      this.decodedCache.set(key, p);
    }
    return p;
  }
}

export interface TopBox {
  type: string;
  /** The whole box: header and content. */
  bytes: Uint8Array;
  /** The box holds or points at a codestream (jp2c, ftbl): it becomes a placeholder in metadata-bin 0. */
  codestream: number | undefined;
  /** Header length (8 or 16). */
  headerLength: number;
}

/** An original file: its top-level boxes and its codestreams (linked ones resolved under the root). */
export class OriginalFile {
  readonly role: Role;
  readonly file: string;
  readonly image: ImageIndex;
  private readonly others: ImageIndex[] = [];
  private readonly expected = new Map<number, ExpectedCodestream>();
  private readonly root: string;

  constructor(role: Role, root: string, file: string) {
    this.role = role;
    this.root = root;
    this.file = file;
    this.image = ImageIndex.open(file, { name: path.relative(root, file) });
  }

  get format(): 'jp2' | 'jpx' | 'raw' {
    return this.image.container.format;
  }

  get codestreamCount(): number {
    return this.image.codestreamCount;
  }

  /** Codestream i, wherever its bytes are. */
  codestream(i: number): ExpectedCodestream {
    let e = this.expected.get(i);
    if (e) return e;
    const ref = this.image.container.codestreams[i];
    if (!ref) throw new RangeError(`codestream ${i} of ${this.codestreamCount}`);
    if (this.image.layout(i)) {
      e = new ExpectedCodestream(i, subSource(this.image.source, ref.offset, ref.length), this.image.codestream(i));
    } else {
      const loc = resolveCodestreams([ref], { root: this.root, containingFile: this.file })[0]!;
      const other = ImageIndex.open(loc.path, { name: path.relative(this.root, loc.path) });
      this.others.push(other);
      const j = other.container.codestreams.findIndex((c) => c.offset === loc.offset && c.length === loc.length);
      if (j < 0) throw new Error(`${this.file}: codestream ${i} points at bytes ${loc.offset}+${loc.length} of ${loc.path}, which hold no codestream`);
      e = new ExpectedCodestream(i, subSource(other.source, loc.offset, loc.length), other.codestream(j));
    }
    this.expected.set(i, e);
    return e;
  }

  /** Top-level boxes in file order (none for a raw codestream). */
  boxes(): TopBox[] {
    const c = this.image.container;
    const byBox = new Map<number, number>();
    for (const cs of c.codestreams) if (cs.kind !== 'raw') byBox.set(cs.boxIndex, cs.index);
    return c.boxes.map((b, i) => {
      const head = this.image.source.read(b.offset, b.headerLength);
      const isCs = byBox.get(i);
      const content = isCs === undefined && b.contentLength > 0 ? readBoxContent(this.image.source, b) : new Uint8Array(0);
      const bytes = new Uint8Array(head.length + content.length);
      bytes.set(head);
      bytes.set(content, head.length);
      return { type: b.type, bytes, codestream: isCs, headerLength: b.headerLength };
    });
  }

  close(): void {
    this.image.close();
    for (const o of this.others) o.close();
  }
}

export interface LoadedFixtures {
  set: FixtureSet;
  root: string;
  /** Opens (once) the original of a role. */
  original(role: Role): OriginalFile;
  close(): void;
}

/**
 * Checks that every original exists (and has its sha256) and opens them
 * lazily. Throws an Error naming the problem: a run never starts on a
 * fixture set it cannot trust.
 */
export function loadFixtures(set: FixtureSet, root: string): LoadedFixtures {
  const absRoot = path.resolve(root);
  const opened = new Map<Role, OriginalFile>();
  for (const role of ROLE_NAMES) {
    const t = set.targets[role];
    const file = path.resolve(absRoot, t.original);
    if (!existsSync(file)) throw new Error(`fixture ${role}: original ${file} does not exist (give the originals' directory with --root)`);
    if (t.sha256) {
      const h = createHash('sha256').update(readFileSync(file)).digest('hex');
      if (h !== t.sha256) throw new Error(`fixture ${role}: ${file} has sha256 ${h}, the set expects ${t.sha256}`);
    }
  }
  return {
    set,
    root: absRoot,
    original(role: Role): OriginalFile {
      let o = opened.get(role);
      if (!o) {
        if (role === 'not-image') throw new RangeError('the not-image role has no JPEG 2000 original');
        o = new OriginalFile(role, absRoot, path.resolve(absRoot, set.targets[role].original));
        opened.set(role, o);
      }
      return o;
    },
    close(): void {
      for (const o of opened.values()) o.close();
      opened.clear();
    },
  };
}
