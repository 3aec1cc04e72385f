/**
 * The committed JPEG 2000 fixture matrix: which files exist, how each is
 * made with the real encoder (OpenJPEG's opj_compress), and the generator
 * that (re)makes them.
 *
 *   node --import tsx fixtures-gen/matrix.ts [--out DIR] [--only NAME,NAME...]
 *
 * writes into DIR (default test/fixtures): NAME.j2k|jp2, NAME.cmd (the exact
 * command line), NAME.dump.txt (`opj_dump -i NAME.ext`), matrix.json, and the
 * generated table in README.md.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runIfMain } from './cli-args.js';
import { generateMovieFixtures } from './movies.js';
import { runTool, toolVersion } from './opj.js';
import { encodePnm, synthSun, yuv420FromRgb, type SynthParams } from './synth.js';

/**
 * How the encoder's input file is made from synthSun. `pnm` (default): a
 * PGM (1 component) or PPM (3 components). `yuv420`: the RGB raster turned
 * into planar 4:2:0 Y/Cb/Cr by yuv420FromRgb, fed to opj_compress as a
 * `.raw` file described by `-F`.
 */
export type SourceFormat = 'pnm' | 'yuv420';

export interface SourceSpec extends SynthParams {
  format?: SourceFormat;
}

export interface FixtureSpec {
  name: string;
  source: SourceSpec;
  /** opj_compress arguments other than -i/-o. */
  args: readonly string[];
  ext: 'j2k' | 'jp2';
  why: string;
}

export interface MatrixEntry {
  name: string;
  file: string;
  ext: 'j2k' | 'jp2';
  args: string[];
  command: string;
  source: SourceSpec & { file: string; sha256: string; size: number };
  sha256: string;
  size: number;
  dump: string;
  dumpSha256: string;
  /** Reversible, single-layer, no rate target: decodes to exactly the source samples. */
  lossless: boolean;
  why: string;
}

export interface MatrixJson {
  generator: string;
  encoder: string;
  openjpeg: string;
  fixtures: MatrixEntry[];
}

const gray = (width: number, height: number, seed: number): SourceSpec => ({ width, height, components: 1, seed });
const rgb = (width: number, height: number, seed: number): SourceSpec => ({ width, height, components: 3, seed });

export const MATRIX: readonly FixtureSpec[] = [
  {
    name: 'g128-default',
    source: gray(128, 128, 1),
    args: [],
    ext: 'j2k',
    why: 'Baseline: every opj_compress default (1 tile, LRCP, 6 resolutions, 64x64 code-blocks, no precincts, reversible 5-3, 1 layer).',
  },
  {
    name: 'g128-default-jp2',
    source: gray(128, 128, 1),
    args: [],
    ext: 'jp2',
    why: 'Same source and options as g128-default in a JP2 wrapper: its jp2c box holds the same codestream bytes.',
  },
  {
    name: 'g200x150-t64-lrcp',
    source: gray(200, 150, 2),
    args: ['-t', '64,64', '-n', '4'],
    ext: 'j2k',
    why: '12 tiles of 64x64 on 200x150: the right column is 8 wide and the bottom row 22 high (partial edge tiles).',
  },
  {
    name: 'g200x150-offsets-t64-rpcl',
    source: gray(200, 150, 2),
    args: ['-d', '13,7', '-T', '5,3', '-t', '64,64', '-n', '6', '-p', 'RPCL', '-c', '[32,32],[16,16]'],
    ext: 'j2k',
    why: 'Image offset (13,7) and tile offset (5,3): partial first and last tiles on both axes; with 5 decompositions resolution 0 is empty (0 wide or 0 high) in the last tile column (x 197..213) and last tile row (y 131..157). RPCL; -c [32,32],[16,16] gives precinct sizes 32, 16, 8, 4, 2 and 1 for r=5..0 (PPx=PPy=0 at r=0, the last record is halved).',
  },
  {
    name: 'rgb128x96-rlcp-mct1-3l',
    source: rgb(128, 96, 3),
    args: ['-p', 'RLCP', '-mct', '1', '-r', '40,20,10', '-n', '5', '-c', '[64,64],[32,32]'],
    ext: 'j2k',
    why: 'RLCP, 3 components with the reversible colour transform, 3 layers by rate, two precinct sizes (the last one halved for lower resolutions).',
  },
  {
    name: 'rgb200x150-t64-rpcl-mct0-plt',
    source: rgb(200, 150, 4),
    args: ['-t', '64,64', '-p', 'RPCL', '-mct', '0', '-c', '[32,32],[16,16],[8,8]', '-b', '16,16', '-n', '4', '-r', '20,10', '-PLT'],
    ext: 'j2k',
    why: 'Tiled RGB without MCT, RPCL, small precincts (down to 8x8, so code-blocks are clipped by precincts), 16x16 code-blocks, 2 layers, PLT in every tile-part header.',
  },
  {
    name: 'rgb160x120-t80x60-pcrl-sop-eph',
    source: rgb(160, 120, 5),
    args: ['-t', '80,60', '-p', 'PCRL', '-SOP', '-EPH', '-c', '[64,64],[32,32],[16,16]', '-n', '5', '-r', '30,15,8,4'],
    ext: 'j2k',
    why: 'PCRL, 2x2 tiles of 80x60, SOP before and EPH after every packet header, three precinct sizes, 4 layers.',
  },
  {
    name: 'rgb128-cprl-mct0-tpc',
    source: rgb(128, 128, 6),
    args: ['-p', 'CPRL', '-mct', '0', '-TP', 'C', '-c', '[32,32]', '-n', '2', '-r', '16,4'],
    ext: 'j2k',
    why: 'CPRL split into one tile-part per component (-TP C), 2 resolutions (1 decomposition), 32x32 precincts, 2 layers.',
  },
  {
    name: 'g256-irrev-8l-cb32',
    source: gray(256, 256, 7),
    args: ['-I', '-r', '160,120,80,60,40,30,20,10', '-n', '6', '-b', '32,32'],
    ext: 'j2k',
    why: 'Irreversible 9-7, 8 quality layers, 6 resolutions, 32x32 code-blocks.',
  },
  {
    name: 'g256-irrev-q-cb16x64',
    source: gray(256, 256, 8),
    args: ['-I', '-q', '32,38,44', '-n', '5', '-b', '16,64'],
    ext: 'j2k',
    why: '3 layers by PSNR target (-q), non-square 16x64 code-blocks, 5 resolutions.',
  },
  {
    name: 'g64-n1-cb32-prec32',
    source: gray(64, 64, 9),
    args: ['-n', '1', '-b', '32,32', '-c', '[32,32]'],
    ext: 'j2k',
    why: 'A single resolution (no DWT) split into 2x2 precincts of 32x32 code-blocks.',
  },
  {
    name: 'g97x61-odd-t32-rpcl',
    source: gray(97, 61, 10),
    args: ['-d', '3,5', '-t', '32,32', '-n', '3', '-p', 'RPCL', '-c', '[16,16],[8,8]'],
    ext: 'j2k',
    why: 'Odd size 97x61 at odd offset (3,5) with 32x32 tiles from the origin: ceil rounding of tile, resolution and precinct bounds everywhere.',
  },
  {
    name: 'rgb97x61-odd-irrev-pcrl',
    source: rgb(97, 61, 11),
    args: ['-I', '-r', '20', '-n', '4', '-p', 'PCRL'],
    ext: 'jp2',
    why: 'Odd-sized RGB, irreversible with the irreversible colour transform, PCRL, in JP2.',
  },
  {
    name: 'g200x150-t64-tpr-plt-tlm',
    source: gray(200, 150, 12),
    args: ['-t', '64,64', '-n', '6', '-r', '20,10,5', '-TP', 'R', '-PLT', '-TLM'],
    ext: 'j2k',
    why: 'Many tile-parts: -TP R in LRCP with 3 layers gives 18 tile-parts per tile; PLT in each tile-part header; TLM in the main header listing all 216 tile-parts.',
  },
  {
    name: 'g128-lrcp-tpl-4l',
    source: gray(128, 128, 13),
    args: ['-TP', 'L', '-r', '40,20,10,5', '-n', '5'],
    ext: 'j2k',
    why: 'One tile-part per quality layer (-TP L), 4 layers, LRCP.',
  },
  {
    name: 'yuv420-128x96-rpcl',
    source: { ...rgb(128, 96, 14), format: 'yuv420' },
    args: ['-F', '128,96,3,8,u@1x1:2x2:2x2', '-mct', '0', '-p', 'RPCL', '-n', '4', '-c', '[32,32],[16,16]'],
    ext: 'j2k',
    why: '4:2:0: Y at full size, Cb and Cr with XRsiz=YRsiz=2 (raw planar input), no MCT, RPCL with precincts. Lossless.',
  },
  {
    name: 'g100x80-sub2',
    source: gray(100, 80, 15),
    args: ['-s', '2,2', '-n', '4'],
    ext: 'j2k',
    why: 'opj_compress -s 2,2: the single component has XRsiz=YRsiz=2 and the reference grid is 199x159 (odd, x1 = 2*(w-1)+1).',
  },
  {
    name: 'rgb200x150-t64-rpcl-plt-tpr',
    source: rgb(200, 150, 16),
    args: ['-t', '64,64', '-p', 'RPCL', '-c', '[64,64],[32,32]', '-n', '5', '-r', '40,20,10,5', '-EPH', '-PLT', '-TP', 'R'],
    ext: 'jp2',
    why: 'A typical JPIP-served file: JP2, tiled, RPCL, precincts, 4 layers, EPH, PLT, one tile-part per resolution.',
  },
  {
    name: 'rgb128-poc',
    source: rgb(128, 128, 17),
    args: ['-n', '6', '-r', '40,20,10', '-POC', 'T1=0,0,3,3,3,RPCL/T1=3,0,3,6,3,LRCP'],
    ext: 'j2k',
    why: 'Progression order change: resolutions 0-2 in RPCL then 3-5 in LRCP (POC marker in the first tile-part header; opj splits the tile into 2 tile-parts).',
  },
  {
    name: 'g64-jpip-rpcl',
    source: gray(64, 64, 18),
    args: ['-p', 'RPCL', '-jpip'],
    ext: 'jp2',
    why: 'opj_compress -jpip: in 2.5.0 this writes iptr, cidx and fidx boxes whose contents are all zero bytes (cidx and fidx each hold a sub-box header of length 0, type 0). A robustness case for JP2 box parsing.',
  },
];

/** A SourceSpec with its defaults filled in (format 'pnm'). */
function fullSource(s: SourceSpec): SourceSpec & { format: SourceFormat } {
  return { width: s.width, height: s.height, components: s.components, seed: s.seed, format: s.format ?? 'pnm' };
}

/** The name of the encoder's input file for a fixture: NAME.pgm, NAME.ppm or NAME.raw. */
export function sourceFileName(spec: FixtureSpec): string {
  const src = fullSource(spec.source);
  if (src.format === 'yuv420') return `${spec.name}.raw`;
  return `${spec.name}.${src.components === 1 ? 'pgm' : 'ppm'}`;
}

/** The exact bytes of the encoder's input file. */
export function sourceBytes(source: SourceSpec): Uint8Array {
  const src = fullSource(source);
  const samples = synthSun(src);
  if (src.format === 'yuv420') {
    if (src.components !== 3) throw new RangeError('yuv420 source needs components: 3');
    return yuv420FromRgb(samples, src.width, src.height);
  }
  return encodePnm({ width: src.width, height: src.height, components: src.components, samples });
}

/** How the source file is made, as one line of TypeScript-ish text. */
export function describeSource(spec: FixtureSpec): string {
  const s = fullSource(spec.source);
  const p = `synthSun({ width: ${s.width}, height: ${s.height}, components: ${s.components}, seed: ${s.seed} })`;
  if (s.format === 'yuv420') return `${sourceFileName(spec)} = yuv420FromRgb(${p}, ${s.width}, ${s.height})`;
  return `${sourceFileName(spec)} = writePnm of ${p}`;
}

export function fixtureFileName(spec: FixtureSpec): string {
  return `${spec.name}.${spec.ext}`;
}

/** The opj_compress argument vector, -i/-o included, with names relative to the working directory. */
export function compressArgs(spec: FixtureSpec): string[] {
  return ['-i', sourceFileName(spec), '-o', fixtureFileName(spec), ...spec.args];
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_.,:/=@+%-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command line as a POSIX shell would take it. */
export function commandLine(spec: FixtureSpec): string {
  return ['opj_compress', ...compressArgs(spec)].map(shellQuote).join(' ');
}

/** Contents of NAME.cmd: the source as a comment, then the command line. */
export function cmdFileText(spec: FixtureSpec): string {
  return `# source (fixtures-gen/synth.ts): ${describeSource(spec)}\n${commandLine(spec)}\n`;
}

/** Reversible, one layer and no rate/PSNR target: the decoded image equals the source. */
export function isLossless(spec: FixtureSpec): boolean {
  return !spec.args.includes('-I') && !spec.args.includes('-r') && !spec.args.includes('-q');
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The encoder's output for one fixture, made in `workDir` (relative names only). */
function encodeOnce(spec: FixtureSpec, workDir: string): Uint8Array {
  const out = join(workDir, fixtureFileName(spec));
  rmSync(out, { force: true });
  runTool('opj_compress', compressArgs(spec), { cwd: workDir });
  return readFileSync(out);
}

export interface GenerateOptions {
  /** Regenerate only these fixtures; other entries of an existing matrix.json are kept. */
  only?: readonly string[];
  /** Encode every fixture twice and fail if the two outputs differ (default true). */
  checkDeterminism?: boolean;
  /** Update the generated table in OUTDIR/README.md (default true). */
  readme?: boolean;
  /** Progress lines; default silent. */
  log?: (line: string) => void;
}

export const MATRIX_JSON = 'matrix.json';
export const README_BEGIN = '<!-- BEGIN GENERATED MATRIX (fixtures-gen/matrix.ts) -->';
export const README_END = '<!-- END GENERATED MATRIX -->';

/** Writes the fixtures, their .cmd and .dump.txt files and matrix.json into outDir. */
export function generateMatrix(outDir: string, opts: GenerateOptions = {}): MatrixJson {
  const log = opts.log ?? (() => {});
  const only = opts.only ? new Set(opts.only) : undefined;
  if (only) {
    const unknown = [...only].filter((n) => !MATRIX.some((s) => s.name === n));
    if (unknown.length) throw new Error(`generateMatrix: unknown fixture(s): ${unknown.join(', ')}`);
  }
  const names = new Set<string>();
  for (const s of MATRIX) {
    if (names.has(s.name)) throw new Error(`generateMatrix: duplicate fixture name ${s.name}`);
    names.add(s.name);
  }
  const openjpeg = toolVersion('opj_compress') ?? 'unknown';
  mkdirSync(outDir, { recursive: true });

  const previous = new Map<string, MatrixEntry>();
  const jsonPath = join(outDir, MATRIX_JSON);
  if (only && existsSync(jsonPath)) {
    for (const e of (JSON.parse(readFileSync(jsonPath, 'utf8')) as MatrixJson).fixtures) previous.set(e.name, e);
  }

  const work = mkdtempSync(join(tmpdir(), 'jpip-fixtures-'));
  const entries: MatrixEntry[] = [];
  try {
    for (const spec of MATRIX) {
      if (only && !only.has(spec.name)) {
        const kept = previous.get(spec.name);
        if (kept) entries.push(kept);
        continue;
      }
      const src = sourceBytes(spec.source);
      writeFileSync(join(work, sourceFileName(spec)), src);
      const bytes = encodeOnce(spec, work);
      if (opts.checkDeterminism ?? true) {
        const again = encodeOnce(spec, work);
        if (sha256(again) !== sha256(bytes)) {
          throw new Error(`generateMatrix: opj_compress output for ${spec.name} differs between two runs (${commandLine(spec)})`);
        }
      }
      const file = fixtureFileName(spec);
      const dumpName = `${spec.name}.dump.txt`;
      const dump = runTool('opj_dump', ['-i', file], { cwd: work }).stdout;
      writeFileSync(join(outDir, file), bytes);
      writeFileSync(join(outDir, `${spec.name}.cmd`), cmdFileText(spec));
      writeFileSync(join(outDir, dumpName), dump);
      entries.push({
        name: spec.name,
        file,
        ext: spec.ext,
        args: [...spec.args],
        command: commandLine(spec),
        source: { ...fullSource(spec.source), file: sourceFileName(spec), sha256: sha256(src), size: src.length },
        sha256: sha256(bytes),
        size: bytes.length,
        dump: dumpName,
        dumpSha256: sha256(dump),
        lossless: isLossless(spec),
        why: spec.why,
      });
      log(`${file.padEnd(40)} ${String(bytes.length).padStart(7)} bytes`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const json: MatrixJson = {
    generator: 'node --import tsx fixtures-gen/matrix.ts',
    encoder: 'opj_compress',
    openjpeg,
    fixtures: entries,
  };
  writeFileSync(jsonPath, matrixJsonText(json));
  if (opts.readme ?? true) updateReadme(join(outDir, 'README.md'), json);
  return json;
}

export function matrixJsonText(json: MatrixJson): string {
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** The generated README section (between README_BEGIN and README_END, markers included). */
export function readmeTable(json: MatrixJson): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = [
    README_BEGIN,
    '',
    `Encoder: opj_compress (OpenJPEG ${json.openjpeg}). Total: ${json.fixtures.length} fixtures, ` +
      `${json.fixtures.reduce((a, e) => a + e.size, 0)} bytes of JPEG 2000 data.`,
    '',
    '| fixture | bytes | source | opj_compress arguments | covers |',
    '| --- | ---: | --- | --- | --- |',
  ];
  for (const e of json.fixtures) {
    const s = e.source;
    const src = `${s.width}x${s.height}x${s.components} seed ${s.seed}${s.format === 'yuv420' ? ' (4:2:0 raw)' : ''}`;
    const args = e.args.length ? `\`${esc(e.args.join(' '))}\`` : '(defaults)';
    lines.push(`| \`${e.file}\` | ${e.size} | ${src} | ${args} | ${esc(e.why)}${e.lossless ? ' *(lossless)*' : ''} |`);
  }
  lines.push('', README_END);
  return lines.join('\n');
}

/** Replaces the generated section of README.md (or appends it, or creates the file). */
export function updateReadme(path: string, json: MatrixJson): void {
  const table = readmeTable(json);
  if (!existsSync(path)) {
    writeFileSync(path, `# Test fixtures\n\nGenerated by \`node --import tsx fixtures-gen/matrix.ts\`.\n\n${table}\n`);
    return;
  }
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(README_BEGIN);
  const b = text.indexOf(README_END);
  const next = a >= 0 && b > a ? text.slice(0, a) + table + text.slice(b + README_END.length) : `${text.trimEnd()}\n\n${table}\n`;
  writeFileSync(path, next);
}

/** Default output directory: test/fixtures of this repository. */
export const DEFAULT_OUT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures');

function main(argv: readonly string[]): void {
  let out = DEFAULT_OUT_DIR;
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out' && argv[i + 1] !== undefined) out = resolve(argv[++i]!);
    else if (a === '--only' && argv[i + 1] !== undefined) only = argv[++i]!.split(',').filter(Boolean);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node --import tsx fixtures-gen/matrix.ts [--out DIR] [--only NAME,NAME...]\n');
      return;
    } else throw new Error(`unknown argument ${a} (try --help)`);
  }
  const json = generateMatrix(out, { ...(only ? { only } : {}), log: (l) => process.stdout.write(`${l}\n`) });
  const total = json.fixtures.reduce((a, e) => a + e.size, 0);
  process.stdout.write(`${json.fixtures.length} fixtures, ${total} bytes, in ${out}\n`);
  // The JP2/JPX movie fixtures (fixtures-gen/movies.ts) use the same encoder: remake them too.
  if (!only) generateMovieFixtures(join(out, 'movie'), { log: (l) => process.stdout.write(`movie/${l}\n`) });
}

runIfMain(import.meta.url, main);
