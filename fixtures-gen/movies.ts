/**
 * The committed "movie" fixtures: three JP2 frames (opj_compress codestreams
 * wrapped by our own box writer, each with an XML box of FITS-like keywords),
 * a JPX that embeds the three codestreams, and a linked JPX that points at the
 * frame files through percent-escaped relative URLs, as `kdu_merge -links`
 * does. The frame names hold a space, so the linked JPX exercises escaping.
 *
 *   node --import tsx fixtures-gen/movies.ts [--out DIR]
 *
 * writes into DIR (default test/fixtures/movie): frames/frame 000.jp2 ..
 * frames/frame 002.jp2, movie.jpx, linked.jpx and manifest.json. The raw
 * codestreams and their PGM sources are made in a scratch directory and not
 * kept; manifest.json records the exact commands and their sha256 values.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runIfMain } from './cli-args.js';
import { frameLocation, linkedFrameFor, writeJp2, writeJpx, writeLinkedJpx, type ImageInfo } from './containers.js';
import { runTool, toolVersion } from './opj.js';
import { encodePnm, synthSun, type SynthParams } from './synth.js';

/** Source raster of every frame: 128x128 grey, one seed per frame. */
export const MOVIE_SIZE = 128;
export const MOVIE_SEEDS: readonly number[] = [11, 12, 13];

/** opj_compress arguments (other than -i/-o) of every frame's codestream. */
export const MOVIE_ARGS: readonly string[] = ['-PLT', '-p', 'RPCL', '-n', '4', '-r', '20,10,5', '-c', '[64,64],[64,64],[32,32],[32,32]'];

export const MOVIE_IMAGE: ImageInfo = { width: MOVIE_SIZE, height: MOVIE_SIZE, components: 1, bitDepth: 8 };

export const FRAMES_DIR = 'frames';
export const MOVIE_JPX = 'movie.jpx';
export const LINKED_JPX = 'linked.jpx';
export const MANIFEST_JSON = 'manifest.json';

export const WRAPPED_BY = {
  jp2: 'wrapped by fixtures-gen/containers.ts writeJp2',
  jpx: 'wrapped by fixtures-gen/containers.ts writeJpx',
  linked: 'wrapped by fixtures-gen/containers.ts writeLinkedJpx',
} as const;

const pad3 = (i: number): string => String(i).padStart(3, '0');

/** `frame 000.jp2`: the frame's file name (with a space) inside frames/. */
export function frameFileName(i: number): string {
  return `frame ${pad3(i)}.jp2`;
}

/** `frames/frame 000.jp2`: the frame's path relative to the movie directory. */
export function framePath(i: number): string {
  return `${FRAMES_DIR}/${frameFileName(i)}`;
}

/** Scratch names of the encoder input and output (no spaces: the commands need no quoting). */
export function frameSourceName(i: number): string {
  return `frame-${pad3(i)}.pgm`;
}

export function frameCodestreamName(i: number): string {
  return `frame-${pad3(i)}.j2k`;
}

export function frameSynth(i: number): SynthParams {
  const seed = MOVIE_SEEDS[i];
  if (seed === undefined) throw new RangeError(`movie frame ${i} of ${MOVIE_SEEDS.length}`);
  return { width: MOVIE_SIZE, height: MOVIE_SIZE, components: 1, seed };
}

/** The text of frame i's `xml ` box: FITS-like keywords, one second apart. */
export function frameXml(i: number): string {
  return (
    '<meta><fits>' +
    '<TELESCOP>SDO/AIA</TELESCOP>' +
    '<WAVELNTH>171</WAVELNTH>' +
    `<DATE-OBS>2026-11-23T00:00:${String(i).padStart(2, '0')}.000</DATE-OBS>` +
    `<NAXIS1>${MOVIE_SIZE}</NAXIS1><NAXIS2>${MOVIE_SIZE}</NAXIS2>` +
    '</fits></meta>'
  );
}

/** The opj_compress argument vector for frame i, -i/-o included (scratch-relative names). */
export function frameCompressArgs(i: number): string[] {
  return ['-i', frameSourceName(i), '-o', frameCodestreamName(i), ...MOVIE_ARGS];
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_.,:/=@+%-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command line for frame i's codestream as a POSIX shell would take it. */
export function frameCommand(i: number): string {
  return ['opj_compress', ...frameCompressArgs(i)].map(shellQuote).join(' ');
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface ManifestFrame {
  file: string;
  sha256: string;
  size: number;
  /** The encoder input: synthSun(params) written as a binary PGM (not committed). */
  source: SynthParams & { file: string; describe: string; sha256: string; size: number };
  /** The raw codestream opj_compress wrote (not committed; it is the frame's jp2c content). */
  codestream: { file: string; command: string; sha256: string; size: number; offsetInFile: number };
  xml: string;
  made: string;
}

export interface ManifestContainer {
  file: string;
  sha256: string;
  size: number;
  /** Frame files whose codestreams it holds (movie.jpx) or references (linked.jpx). */
  frames: string[];
  /** linked.jpx only: the `url ` locations, in data reference order. */
  urls?: string[];
  made: string;
}

export interface MovieManifest {
  generator: string;
  encoder: string;
  openjpeg: string;
  args: string[];
  frames: ManifestFrame[];
  containers: ManifestContainer[];
}

export interface MovieOptions {
  /** Encode every codestream twice and fail if the outputs differ (default true). */
  checkDeterminism?: boolean;
  /** Progress lines; default silent. */
  log?: (line: string) => void;
}

function encodeFrame(i: number, work: string): Uint8Array {
  const out = join(work, frameCodestreamName(i));
  rmSync(out, { force: true });
  runTool('opj_compress', frameCompressArgs(i), { cwd: work });
  return new Uint8Array(readFileSync(out));
}

export function manifestText(m: MovieManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

/** Writes the frames, movie.jpx, linked.jpx and manifest.json into outDir. */
export function generateMovieFixtures(outDir: string, opts: MovieOptions = {}): MovieManifest {
  const log = opts.log ?? (() => {});
  const openjpeg = toolVersion('opj_compress') ?? 'unknown';
  const framesDir = join(outDir, FRAMES_DIR);
  mkdirSync(framesDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'jpip-movie-'));
  const codestreams: Uint8Array[] = [];
  const frames: ManifestFrame[] = [];
  const jp2s: Uint8Array[] = [];
  try {
    MOVIE_SEEDS.forEach((_, i) => {
      const params = frameSynth(i);
      const pgm = encodePnm({ ...params, samples: synthSun(params) });
      writeFileSync(join(work, frameSourceName(i)), pgm);
      const cs = encodeFrame(i, work);
      if ((opts.checkDeterminism ?? true) && sha256(encodeFrame(i, work)) !== sha256(cs)) {
        throw new Error(`generateMovieFixtures: opj_compress output for frame ${i} differs between two runs (${frameCommand(i)})`);
      }
      const xml = frameXml(i);
      const jp2 = writeJp2(cs, { ...MOVIE_IMAGE, xml });
      const linked = linkedFrameFor(framePath(i), jp2);
      codestreams.push(cs);
      jp2s.push(jp2);
      frames.push({
        file: framePath(i),
        sha256: sha256(jp2),
        size: jp2.length,
        source: {
          ...params,
          file: frameSourceName(i),
          describe: `${frameSourceName(i)} = writePnm of synthSun({ width: ${params.width}, height: ${params.height}, components: ${params.components}, seed: ${params.seed} })`,
          sha256: sha256(pgm),
          size: pgm.length,
        },
        codestream: { file: frameCodestreamName(i), command: frameCommand(i), sha256: sha256(cs), size: cs.length, offsetInFile: linked.codestreamOffset },
        xml,
        made: `${frameCommand(i)}, then ${WRAPPED_BY.jp2} (jp2h ihdr+colr greyscale, xml box, jp2c)`,
      });
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  jp2s.forEach((jp2, i) => {
    writeFileSync(join(outDir, framePath(i)), jp2);
    log(`${framePath(i).padEnd(24)} ${String(jp2.length).padStart(7)} bytes`);
  });

  const jpx = writeJpx(codestreams, MOVIE_IMAGE);
  writeFileSync(join(outDir, MOVIE_JPX), jpx);
  log(`${MOVIE_JPX.padEnd(24)} ${String(jpx.length).padStart(7)} bytes`);

  const linkedFrames = jp2s.map((jp2, i) => linkedFrameFor(framePath(i), jp2));
  const linked = writeLinkedJpx(linkedFrames);
  writeFileSync(join(outDir, LINKED_JPX), linked);
  log(`${LINKED_JPX.padEnd(24)} ${String(linked.length).padStart(7)} bytes`);

  const frameFiles = frames.map((f) => f.file);
  const manifest: MovieManifest = {
    generator: 'node --import tsx fixtures-gen/movies.ts',
    encoder: 'opj_compress',
    openjpeg,
    args: [...MOVIE_ARGS],
    frames,
    containers: [
      {
        file: MOVIE_JPX,
        sha256: sha256(jpx),
        size: jpx.length,
        frames: frameFiles,
        made: `the ${frames.length} raw codestreams above (${frames.map((f) => f.codestream.file).join(', ')}), ${WRAPPED_BY.jpx}`,
      },
      {
        file: LINKED_JPX,
        sha256: sha256(linked),
        size: linked.length,
        frames: frameFiles,
        urls: linkedFrames.map((f) => frameLocation(f)),
        made: `${WRAPPED_BY.linked} of linkedFrameFor(each frame): one ftbl/flst per frame pointing at its jp2c content, one dtbl of relative escaped url boxes`,
      },
    ],
  };
  writeFileSync(join(outDir, MANIFEST_JSON), manifestText(manifest));
  return manifest;
}

/** Default output directory: test/fixtures/movie of this repository. */
export const DEFAULT_MOVIE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'movie');

function main(argv: readonly string[]): void {
  let out = DEFAULT_MOVIE_DIR;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out' && argv[i + 1] !== undefined) out = resolve(argv[++i]!);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node --import tsx fixtures-gen/movies.ts [--out DIR]\n');
      return;
    } else throw new Error(`unknown argument ${a} (try --help)`);
  }
  const m = generateMovieFixtures(out, { log: (l) => process.stdout.write(`${l}\n`) });
  const total = [...m.frames, ...m.containers].reduce((a, f) => a + f.size, 0);
  process.stdout.write(`${m.frames.length} frames and ${m.containers.length} containers, ${total} bytes, in ${out}\n`);
}

runIfMain(import.meta.url, main);
