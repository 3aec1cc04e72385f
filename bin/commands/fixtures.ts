import type { Argv } from 'yargs';
import { Presets, SingleBar } from 'cli-progress';
import { detectEncoders, EncoderError, ENCODER_INSTALL_HINT } from '../../fixtures-gen/encoders.js';
import { GenerateError, generateFixtures, type GenerateProgress, type GenerateResult } from '../../fixtures-gen/generate.js';
import { ManifestError } from '../../fixtures-gen/manifest.js';
import { ParamError, PRESET_NAMES, PROGRESSION_ORDERS, SET_FORMATS, type PresetName, type SetOverrides } from '../../fixtures-gen/presets.js';
import { SourceError } from '../../fixtures-gen/sources.js';
import { verifyFixtures, type VerifyReport } from '../../fixtures-gen/verify.js';
import type { CliIo } from '../io.js';

/** `128`, `128x64` or `128,64`: a width and a height. */
export function parseSize(flag: string, v: string | number): number | [number, number] {
  if (typeof v === 'number') return v;
  const m = /^(\d+)(?:[x,](\d+))?$/.exec(v.trim());
  if (!m) throw new ParamError(flag, `${JSON.stringify(v)} is not N or WxH`);
  return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
}

/** `320,160,80`: compression ratios. */
export function parseRates(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  const out = parts.map(Number);
  if (parts.some((s) => s === '') || out.some((n) => !Number.isFinite(n))) throw new ParamError('rates', `${JSON.stringify(v)} is not a comma-separated list of numbers`);
  return out;
}

const n = (v: number): string => v.toLocaleString('en-US');

export function formatGenerate(r: GenerateResult): string {
  const m = r.manifest;
  const movies = m.files.filter((f) => f.role === 'movie');
  const s = (ms: number): string => (ms / 1000).toFixed(2);
  return [
    `${m.preset} fixture set in ${r.dir}`,
    `  encoder  ${m.encoder.name} ${m.encoder.version ?? '(version unknown)'}, ${r.jobs} at once`,
    `  made     ${r.written.length} files (${r.encoded} encoded, ${r.reused} codestreams reused), ${r.kept} already current, ${r.removed.length} removed`,
    `  set      ${m.totals.files} files, ${n(r.bytes)} bytes; ${movies.length} movies of ${m.params.frames} frames over ${m.params.pool} distinct frames`,
    `  time     ${s(r.ms.total)} s (check ${s(r.ms.check)}, encode ${s(r.ms.encode)}, movies ${s(r.ms.movies)})`,
    `  check it jpip-bench fixtures --verify ${r.dir}`,
  ].join('\n');
}

export function formatVerify(r: VerifyReport): string {
  const head = `${r.dir}: ${r.ok ? 'OK' : `${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`}, ${n(r.files)} files (${n(r.bytes)} bytes), ${n(r.packets)} packets indexed, ${n(r.movieFrames)} movie frames`;
  const lines = [head, ...r.problems.map((p) => `  ${p.file || '(set)'}: ${p.problem}`)];
  if (r.unlisted.length) lines.push(`  not in the manifest (ignored): ${r.unlisted.slice(0, 10).join(', ')}${r.unlisted.length > 10 ? `, ... (${r.unlisted.length})` : ''}`);
  return lines.join('\n');
}

/** Errors that are the user's to fix: one line, exit code 1. */
function isUserError(e: unknown): e is Error {
  return e instanceof EncoderError || e instanceof ParamError || e instanceof SourceError || e instanceof ManifestError || e instanceof GenerateError;
}

/** `jpip-bench fixtures`: make or verify a fixture set. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'fixtures',
    'Make a set of JPEG 2000 test images and movies (synthetic suns or your images), or verify one',
    (y) =>
      y
        .option('preset', { type: 'string', choices: PRESET_NAMES, default: 'small', describe: 'small (1024², fast), jhv (Helioviewer-like: JP2 per frame with FITS XML), paper (4096², 20 movies x 1000 frames)' })
        .option('out', { type: 'string', describe: 'directory to make the set in; re-running makes only what is missing or stale, and deletes files of an earlier set there that this one lacks' })
        .option('verify', { type: 'string', describe: 'check the set in this directory against its manifest and our parser' })
        .option('encoders', { type: 'boolean', describe: 'list the JPEG 2000 encoders found on PATH' })
        .option('size', { type: 'number', describe: 'frame width and height in pixels' })
        .option('width', { type: 'number', describe: 'frame width' })
        .option('height', { type: 'number', describe: 'frame height' })
        .option('components', { type: 'number', choices: [1, 3], describe: 'grey (1) or colour (3) synthetic frames' })
        .option('frames', { type: 'number', describe: 'frames in each movie' })
        .option('movies', { type: 'number', describe: 'number of movies' })
        .option('pool', { type: 'number', describe: 'distinct encoded frames the movies reuse (K)' })
        .option('layers', { type: 'number', describe: 'quality layers (rates follow, doubling, unless --rates)' })
        .option('levels', { type: 'number', describe: 'decomposition levels: resolutions = levels + 1 (opj_compress -n levels+1)' })
        .option('precincts', { type: 'string', describe: 'precinct size at every resolution: N or WxH' })
        .option('code-block', { type: 'string', describe: 'code-block size: N or WxH' })
        .option('progression', { type: 'string', choices: PROGRESSION_ORDERS, describe: 'progression order' })
        .option('rates', { type: 'string', describe: 'compression ratio of each layer, decreasing (opj_compress -r)' })
        .option('irreversible', { type: 'boolean', describe: '9/7 irreversible wavelet instead of 5/3 reversible' })
        .option('format', { type: 'string', choices: SET_FORMATS, describe: 'jp2: JP2 frames + linked JPX movies; j2k: raw codestream frames + linked JPX; jpx: JP2 frames + JPX movies embedding them' })
        .option('seed', { type: 'number', describe: 'seed of the synthetic sun' })
        .option('images', { type: 'string', array: true, describe: 'your images (PGM, PPM, PNG, TIFF, JPEG; files or directories) instead of synthetic suns' })
        .option('encoder', { type: 'string', default: 'auto', describe: 'auto, opj_compress, kdu_compress or grk_compress' })
        .option('jobs', { type: 'number', describe: 'encoders run at once', defaultDescription: 'os.availableParallelism()' })
        .option('force', { type: 'boolean', default: false, describe: 'remake every file' })
        .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
        .option('progress', { type: 'boolean', describe: 'show a progress bar', defaultDescription: 'when stderr is a terminal' })
        .check((a) => {
          if (a.verify === undefined && a.out === undefined && !a.encoders) throw new Error('give --out DIR to make a set, or --verify DIR to check one');
          if (a.verify !== undefined && a.out !== undefined) throw new Error('--out and --verify do not go together');
          return true;
        })
        .example('$0 fixtures --preset small --out fixtures/small', 'the small set (a few seconds)')
        .example('$0 fixtures --preset paper --out /data/paper --pool 32', 'the paper set: 20 movies of 1000 4096² frames from 32 encodes')
        .example('$0 fixtures --preset jhv --out /data/jhv --images ./sun-pngs', 'JP2 per frame from your own images')
        .example('$0 fixtures --verify fixtures/small', 'check a set'),
    async (a) => {
      try {
        if (a.encoders) {
          const found = detectEncoders();
          if (a.json) io.out(JSON.stringify(found, null, 2));
          else if (found.length === 0) io.out(`no JPEG 2000 encoder on PATH; ${ENCODER_INSTALL_HINT}`);
          else io.out(found.map((e) => `${e.name.padEnd(13)} ${(e.version ?? '?').padEnd(8)} ${e.path}`).join('\n'));
          if (a.out === undefined && a.verify === undefined) return;
        }
        if (a.verify !== undefined) {
          const r = verifyFixtures(a.verify);
          io.out(a.json ? JSON.stringify(r, null, 2) : formatVerify(r));
          if (!r.ok) process.exitCode = 1;
          return;
        }
        const overrides: SetOverrides = {};
        for (const k of ['size', 'width', 'height', 'frames', 'movies', 'pool', 'layers', 'levels', 'seed'] as const) {
          if (a[k] !== undefined) overrides[k] = a[k];
        }
        if (a.components !== undefined) overrides.components = a.components as 1 | 3;
        if (a.precincts !== undefined) overrides.precincts = parseSize('precincts', a.precincts);
        if (a['code-block'] !== undefined) overrides.codeBlock = parseSize('code-block', a['code-block']);
        if (a.progression !== undefined) overrides.progression = a.progression;
        if (a.rates !== undefined) overrides.rates = parseRates(a.rates);
        if (a.irreversible) overrides.reversible = false;
        if (a.format !== undefined) overrides.format = a.format;

        const showBar = a.progress ?? io.tty;
        const bar = showBar ? new SingleBar({ format: '{phase} [{bar}] {value}/{total} {file}', hideCursor: true }, Presets.shades_classic) : undefined;
        let phase = '';
        const onProgress = (p: GenerateProgress): void => {
          if (!bar) return;
          if (p.phase !== phase) {
            if (phase) bar.stop();
            phase = p.phase;
            bar.start(p.total, 0, { phase: phase.padEnd(6), file: '' });
          }
          bar.update(p.done, { file: p.file ?? '' });
        };
        let r: GenerateResult;
        try {
          r = await generateFixtures({
            preset: a.preset as PresetName,
            out: a.out!,
            overrides,
            ...(a.images ? { images: a.images } : {}),
            encoder: a.encoder,
            ...(a.jobs !== undefined ? { jobs: a.jobs } : {}),
            force: a.force,
            onProgress,
          });
        } finally {
          bar?.stop();
        }
        io.out(a.json ? JSON.stringify({ ...r, manifest: undefined, files: r.manifest.totals.files }, null, 2) : formatGenerate(r));
      } catch (e) {
        if (!isUserError(e)) throw e;
        io.err(`jpip-bench: ${e.message}`);
        process.exitCode = 1;
      }
    },
  );
}
