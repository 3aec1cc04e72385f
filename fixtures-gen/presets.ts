/**
 * The fixture sets `jpip-bench fixtures` makes: their presets, the
 * parameters a user may override, and the checks that keep a combination
 * encodable and servable.
 *
 * - `small`: fast (a few seconds), shipped in `fixtures/small/`: 1024x1024
 *   frames, 8 layers, 6 resolutions, RPCL, 128x128 precincts, PLT; 4
 *   distinct frames and 2 movies (linked JPX) of 30 frames cycling through them.
 * - `jhv`: like Helioviewer's archive: one JP2 per frame with an XML box of
 *   FITS-style keywords (DATE-OBS advancing by the cadence), one linked JPX
 *   per wavelength.
 * - `paper`: the ESA JPIP paper's image class: 4096x4096, 8 layers, 8
 *   resolutions, RPCL, 128x128 precincts at every resolution, 64x64
 *   code-blocks, PLT, rates 320..2.5; 20 movies of 1000 frames as linked JPX
 *   over a pool of 16 distinct encoded frames.
 */

export const PRESET_NAMES = ['small', 'jhv', 'paper'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const PROGRESSION_ORDERS = ['LRCP', 'RLCP', 'RPCL', 'PCRL', 'CPRL'] as const;
export type ProgressionOrder = (typeof PROGRESSION_ORDERS)[number];

/**
 * How frames and movies are stored:
 * - `jp2`: frames are JP2 files (with the XML box); movies are linked JPX files pointing at them.
 * - `j2k`: frames are raw codestreams; movies are linked JPX files pointing at them.
 * - `jpx`: frames are JP2 files; movies are JPX files that embed a copy of every frame's codestream.
 */
export const SET_FORMATS = ['jp2', 'j2k', 'jpx'] as const;
export type SetFormat = (typeof SET_FORMATS)[number];

/**
 * `pool`: the K distinct frames are files of their own (`frames/`), and
 * every movie references them (frame i of movie m is pool frame (i + m) mod K).
 * `per-frame`: every frame of every movie is a file of its own, with its own
 * metadata (as in Helioviewer's archive); their codestreams still come from
 * the pool of K encodes.
 */
export type SetLayout = 'pool' | 'per-frame';

/** What the encoder is asked for (the same for every frame of a set). */
export interface CodingParams {
  /** Quality layers. */
  layers: number;
  /** Decomposition levels: the codestream has levels + 1 resolutions (opj_compress -n levels+1). */
  levels: number;
  /** Precinct width and height, the same at every resolution. */
  precincts: [number, number];
  codeBlock: [number, number];
  progression: ProgressionOrder;
  /** Compression ratio of each layer (opj_compress -r), decreasing: the last is the full file's. */
  rates: number[];
  /** 5/3 reversible wavelet (true) or 9/7 irreversible. */
  reversible: boolean;
}

/** Everything that defines a set. */
export interface SetParams extends CodingParams {
  preset: PresetName;
  width: number;
  height: number;
  components: 1 | 3;
  /** Frames of each movie. */
  frames: number;
  movies: number;
  /** Distinct encoded frames (K): movies reuse them. */
  pool: number;
  format: SetFormat;
  layout: SetLayout;
  /** Chooses the synthetic sun. */
  seed: number;
  /** DATE-OBS of frame 0 (ISO 8601, UTC) and the time between frames. */
  start: string;
  cadenceSeconds: number;
}

/** What a user may change on top of a preset. */
export interface SetOverrides {
  /** Square frames of this size (width and height). */
  size?: number;
  width?: number;
  height?: number;
  components?: 1 | 3;
  frames?: number;
  movies?: number;
  pool?: number;
  layers?: number;
  levels?: number;
  precincts?: number | [number, number];
  codeBlock?: number | [number, number];
  progression?: string;
  rates?: number[];
  reversible?: boolean;
  format?: string;
  seed?: number;
}

const COMMON: Omit<SetParams, 'preset' | 'width' | 'height' | 'frames' | 'movies' | 'pool' | 'format' | 'layout' | 'levels' | 'rates'> = {
  components: 1,
  layers: 8,
  precincts: [128, 128],
  codeBlock: [64, 64],
  progression: 'RPCL',
  reversible: true,
  seed: 1,
  start: '2026-01-01T00:00:00.000Z',
  cadenceSeconds: 12,
};

export const PRESETS: Readonly<Record<PresetName, Readonly<SetParams>>> = {
  small: {
    ...COMMON,
    preset: 'small',
    width: 1024,
    height: 1024,
    levels: 5,
    // About 200 KB a frame (compression ratio 5 at full quality).
    rates: [320, 160, 80, 40, 20, 10, 7, 5],
    frames: 30,
    movies: 2,
    pool: 4,
    format: 'jp2',
    layout: 'pool',
  },
  jhv: {
    ...COMMON,
    preset: 'jhv',
    width: 4096,
    height: 4096,
    levels: 7,
    // About 2 MB a frame, like Helioviewer's AIA files.
    rates: [320, 160, 80, 40, 20, 16, 12, 8],
    frames: 30,
    movies: 3,
    pool: 8,
    format: 'jp2',
    layout: 'per-frame',
  },
  paper: {
    ...COMMON,
    preset: 'paper',
    width: 4096,
    height: 4096,
    levels: 7,
    rates: [320, 160, 80, 40, 20, 10, 5, 2.5],
    frames: 1000,
    movies: 20,
    pool: 16,
    format: 'jp2',
    layout: 'pool',
  },
};

/** Raised for a parameter that cannot be used; the message names it. */
export class ParamError extends Error {
  readonly param: string;
  constructor(param: string, message: string) {
    super(`--${param}: ${message}`);
    this.name = 'ParamError';
    this.param = param;
  }
}

export function isPresetName(s: string): s is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(s);
}

/** Ratios for `layers` layers ending at `finest`, each layer doubling the previous one's rate. */
export function rateLadder(layers: number, finest: number): number[] {
  return Array.from({ length: layers }, (_, k) => finest * 2 ** (layers - 1 - k));
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function int(param: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new ParamError(param, `${String(v)} is not an integer in ${min}..${max}`);
}

function powerOfTwo(param: string, v: number, min: number, max: number): void {
  int(param, v, min, max);
  if ((v & (v - 1)) !== 0) throw new ParamError(param, `${v} is not a power of two`);
}

/** Largest frame side: a 16384x16384 frame already takes 1 GiB to synthesise. */
export const MAX_SIDE = 16384;
/** A linked JPX holds at most 65535 frames (16-bit data reference indices). */
export const MAX_FRAMES = 65535;

/** Checks a full parameter set; throws a ParamError naming the first bad one. */
export function checkParams(p: SetParams): void {
  int('width', p.width, 1, MAX_SIDE);
  int('height', p.height, 1, MAX_SIDE);
  if (p.components !== 1 && p.components !== 3) throw new ParamError('components', `must be 1 or 3, got ${String(p.components)}`);
  int('frames', p.frames, 1, MAX_FRAMES);
  int('movies', p.movies, 0, 10000);
  int('pool', p.pool, 1, 100000);
  int('layers', p.layers, 1, 64);
  int('levels', p.levels, 0, 32);
  if (2 ** p.levels > Math.min(p.width, p.height)) {
    throw new ParamError('levels', `${p.levels} levels need frames of at least ${2 ** p.levels} pixels a side (these are ${p.width}x${p.height})`);
  }
  powerOfTwo('precincts', p.precincts[0], 2, 32768);
  powerOfTwo('precincts', p.precincts[1], 2, 32768);
  powerOfTwo('code-block', p.codeBlock[0], 4, 1024);
  powerOfTwo('code-block', p.codeBlock[1], 4, 1024);
  if (p.codeBlock[0] * p.codeBlock[1] > 4096) throw new ParamError('code-block', `${p.codeBlock[0]}x${p.codeBlock[1]} has more than 4096 samples`);
  if (!(PROGRESSION_ORDERS as readonly string[]).includes(p.progression)) {
    throw new ParamError('progression', `${String(p.progression)} is not one of ${PROGRESSION_ORDERS.join(', ')}`);
  }
  if (!(SET_FORMATS as readonly string[]).includes(p.format)) throw new ParamError('format', `${String(p.format)} is not one of ${SET_FORMATS.join(', ')}`);
  if (p.rates.length !== p.layers) throw new ParamError('rates', `${p.rates.length} rates for ${p.layers} layers (one a layer)`);
  p.rates.forEach((r, i) => {
    if (!Number.isFinite(r) || r < 1) throw new ParamError('rates', `rate ${String(r)} is not a compression ratio >= 1`);
    if (i > 0 && r >= p.rates[i - 1]!) throw new ParamError('rates', `ratios must decrease layer by layer (${p.rates.join(',')})`);
  });
  int('seed', p.seed, -2147483648, 2147483647);
  if (Number.isNaN(Date.parse(p.start))) throw new ParamError('start', `${p.start} is not an ISO 8601 date`);
  if (!(p.cadenceSeconds > 0)) throw new ParamError('cadence', `${p.cadenceSeconds} is not a positive number of seconds`);
}

/** A preset with the user's overrides applied and checked. */
export function resolveParams(preset: PresetName, o: SetOverrides = {}): SetParams {
  const base = PRESETS[preset];
  if (!base) throw new ParamError('preset', `${String(preset)} is not one of ${PRESET_NAMES.join(', ')}`);
  const p: SetParams = { ...base, precincts: [...base.precincts], codeBlock: [...base.codeBlock], rates: [...base.rates] };
  if (o.size !== undefined) p.width = p.height = o.size;
  if (o.width !== undefined) p.width = o.width;
  if (o.height !== undefined) p.height = o.height;
  if (o.components !== undefined) p.components = o.components;
  if (o.frames !== undefined) p.frames = o.frames;
  if (o.movies !== undefined) p.movies = o.movies;
  if (o.pool !== undefined) p.pool = o.pool;
  if (o.levels !== undefined) p.levels = o.levels;
  if (o.precincts !== undefined) p.precincts = pair(o.precincts);
  if (o.codeBlock !== undefined) p.codeBlock = pair(o.codeBlock);
  if (o.progression !== undefined) p.progression = o.progression.toUpperCase() as ProgressionOrder;
  if (o.reversible !== undefined) p.reversible = o.reversible;
  if (o.format !== undefined) p.format = o.format as SetFormat;
  if (o.seed !== undefined) p.seed = o.seed;
  if (o.rates !== undefined) {
    p.rates = [...o.rates];
    p.layers = o.layers ?? o.rates.length;
  } else if (o.layers !== undefined) {
    p.layers = o.layers;
    if (o.layers !== base.layers) {
      int('layers', o.layers, 1, 64);
      p.rates = rateLadder(o.layers, base.rates[base.rates.length - 1]!);
    }
  }
  checkParams(p);
  return p;
}

/** The coding part of a set's parameters (what the encoder is given). */
export function codingOf(p: SetParams): CodingParams {
  return {
    layers: p.layers,
    levels: p.levels,
    precincts: [p.precincts[0], p.precincts[1]],
    codeBlock: [p.codeBlock[0], p.codeBlock[1]],
    progression: p.progression,
    rates: [...p.rates],
    reversible: p.reversible,
  };
}
