/**
 * The JPEG 2000 encoders the fixture generator drives: OpenJPEG's
 * opj_compress (the default), Kakadu's kdu_compress and Grok's grk_compress,
 * whichever are on PATH. Each gets the same coding parameters in its own
 * flags; what it writes is checked against them (an encoder that ignored a
 * flag is caught here, not by a client later) and given PLT markers by our
 * own code when it could not write them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { readCodestream, type Codestream } from '../jpeg2000/codestream.js';
import { PROGRESSION_NAMES } from '../jpeg2000/markers.js';
import { bufferSource } from '../jpeg2000/source.js';
import { findTool } from './opj.js';
import { rewritePacketMarkers } from './packet-markers.js';
import type { CodingParams } from './presets.js';

export const ENCODER_NAMES = ['opj_compress', 'kdu_compress', 'grk_compress'] as const;
export type EncoderName = (typeof ENCODER_NAMES)[number];

/** Short names accepted for --encoder. */
const ALIASES: Readonly<Record<string, EncoderName>> = {
  opj: 'opj_compress',
  openjpeg: 'opj_compress',
  kdu: 'kdu_compress',
  kakadu: 'kdu_compress',
  grk: 'grk_compress',
  grok: 'grk_compress',
};

export const ENCODER_INSTALL_HINT =
  'install one: OpenJPEG (`apt-get install libopenjp2-tools` on Debian/Ubuntu, `dnf install openjpeg2-tools` on Fedora, ' +
  '`brew install openjpeg` on macOS), or Grok (`apt-get install grokj2k-tools`), or put Kakadu\'s kdu_compress on PATH';

/** An encoder that cannot be found, run, or that wrote something other than what it was asked for. */
export class EncoderError extends Error {
  readonly tool: string;
  constructor(tool: string, message: string) {
    super(message);
    this.name = 'EncoderError';
    this.tool = tool;
  }
}

/** An encoder found on PATH. */
export interface EncoderTool {
  name: EncoderName;
  path: string;
  /** Version from its banner, undefined when not recognised. */
  version: string | undefined;
}

/** The canonical name of `name` (an alias like `opj` or `kakadu`), or undefined. */
export function encoderName(name: string): EncoderName | undefined {
  if ((ENCODER_NAMES as readonly string[]).includes(name)) return name as EncoderName;
  return ALIASES[name.toLowerCase()];
}

function bannerOf(path: string, args: string[]): string {
  // Some builds exit with status 1 after their help text: read the output whatever the status.
  const r = spawnSync(path, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, timeout: 10_000 });
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
}

/** Parses a version out of an encoder's banner text. */
export function parseVersion(name: EncoderName, banner: string): string | undefined {
  const re =
    name === 'opj_compress' ? /openjp2 library v(\d+\.\d+\.\d+)/ : name === 'grk_compress' ? /(?:libgrokj2k v|version:?\s*)(\d+\.\d+\.\d+)/ : /version v?(\d+\.\d+(?:\.\d+)?)/i;
  return re.exec(banner)?.[1];
}

/** The version an encoder reports (opj and grk on -h, kdu on -v). */
export function encoderVersion(name: EncoderName, path: string): string | undefined {
  return parseVersion(name, bannerOf(path, name === 'kdu_compress' ? ['-v'] : ['-h']));
}

/** Every encoder on PATH, in order of preference (opj, kdu, grk). */
export function detectEncoders(pathEnv: string | undefined = process.env['PATH']): EncoderTool[] {
  const out: EncoderTool[] = [];
  for (const name of ENCODER_NAMES) {
    const path = findTool(name, pathEnv);
    if (path) out.push({ name, path, version: encoderVersion(name, path) });
  }
  return out;
}

/**
 * The encoder to use: `auto` picks the first found (opj_compress, then
 * kdu_compress, then grk_compress). Throws an EncoderError that says how to
 * install one when none (or not the one asked for) is on PATH.
 */
export function pickEncoder(want = 'auto', pathEnv: string | undefined = process.env['PATH']): EncoderTool {
  if (want === 'auto') {
    const found = detectEncoders(pathEnv);
    if (found.length === 0) throw new EncoderError('auto', `no JPEG 2000 encoder (${ENCODER_NAMES.join(', ')}) was found on PATH; ${ENCODER_INSTALL_HINT}`);
    return found[0]!;
  }
  const name = encoderName(want);
  if (!name) throw new EncoderError(want, `unknown encoder '${want}': use auto, ${ENCODER_NAMES.join(', ')} (or opj, kdu, grk)`);
  const path = findTool(name, pathEnv);
  if (!path) {
    const others = detectEncoders(pathEnv).map((e) => e.name);
    const alt = others.length ? ` (found: ${others.join(', ')}; or use --encoder auto)` : '';
    throw new EncoderError(name, `${name} was not found on PATH${alt}; ${ENCODER_INSTALL_HINT}`);
  }
  return { name, path, version: encoderVersion(name, path) };
}

function versionAtLeast(v: string | undefined, major: number, minor: number): boolean {
  if (v === undefined) return true; // unknown: assume a current build
  const [a = 0, b = 0] = v.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/**
 * Whether the encoder writes PLT markers itself with these parameters.
 * opj_compress has -PLT from OpenJPEG 2.4; grk_compress 10.0.5 (Debian 12)
 * crashes when -PLT meets rate control (-r), so Grok is never asked for PLT
 * and its codestreams get PLT from {@link rewritePacketMarkers}.
 */
export function writesPlt(tool: Pick<EncoderTool, 'name' | 'version'>): boolean {
  if (tool.name === 'opj_compress') return versionAtLeast(tool.version, 2, 4);
  if (tool.name === 'kdu_compress') return true;
  return false;
}

/** What one encoder run makes. */
export interface EncodeJob {
  /** Input image: binary PGM (1 component) or PPM (3 components), 8-bit. */
  input: string;
  /** Output raw codestream (.j2k; .j2c for Kakadu). */
  output: string;
  width: number;
  height: number;
  components: 1 | 3;
  coding: CodingParams;
}

/** The file name extension an encoder's raw codestream output must have. */
export function codestreamExtension(name: EncoderName): string {
  return name === 'kdu_compress' ? '.j2c' : '.j2k';
}

function fmt(n: number): string {
  return String(Number(n.toPrecision(12)));
}

/**
 * The argument vector (no shell) that makes `tool` encode `job`:
 *
 * - opj_compress: `-p ORDER -n levels+1 -b W,H -c [W,H] x (levels+1) -r r1,..,rL [-I] [-PLT]`
 *   (one precinct size per resolution: with a single one OpenJPEG halves it at each lower resolution);
 * - grk_compress: the same flags, plus `-H 1` (one thread), PLT added afterwards;
 * - kdu_compress: `Corder=ORDER Clevels=N Clayers=L Cblk={H,W} Cprecincts={H,W} Creversible=yes|no
 *   ORGgen_plt=yes -rate b1,..,bL -num_threads 0` with the ratios turned into bits per pixel
 *   (8 x components / ratio, layer 1 first) and Kakadu's {rows,columns} order.
 */
export function encoderArgs(tool: Pick<EncoderTool, 'name' | 'version'>, job: EncodeJob): string[] {
  const c = job.coding;
  const [pw, ph] = c.precincts;
  const [bw, bh] = c.codeBlock;
  if (tool.name === 'kdu_compress') {
    const bpp = c.rates.map((r) => fmt((8 * job.components) / r));
    return [
      '-i',
      job.input,
      '-o',
      job.output,
      `Corder=${c.progression}`,
      `Clevels=${c.levels}`,
      `Clayers=${c.layers}`,
      `Cblk={${bh},${bw}}`,
      `Cprecincts={${ph},${pw}}`,
      `Creversible=${c.reversible ? 'yes' : 'no'}`,
      'ORGgen_plt=yes',
      '-rate',
      bpp.join(','),
      '-num_threads',
      '0',
      '-quiet',
    ];
  }
  const args = [
    '-i',
    job.input,
    '-o',
    job.output,
    '-p',
    c.progression,
    '-n',
    String(c.levels + 1),
    '-b',
    `${bw},${bh}`,
    '-c',
    Array.from({ length: c.levels + 1 }, () => `[${pw},${ph}]`).join(','),
    '-r',
    c.rates.map(fmt).join(','),
  ];
  if (!c.reversible) args.push('-I');
  if (tool.name === 'grk_compress') args.push('-H', '1');
  if (writesPlt(tool)) args.push(tool.name === 'grk_compress' ? '-L' : '-PLT');
  return args;
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_.,:/=@+%-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command line as a POSIX shell would take it. */
export function commandLine(name: string, args: readonly string[]): string {
  return [name, ...args].map(shellQuote).join(' ');
}

/** What a codestream must be, checked by {@link checkCodestream}. */
export interface CodestreamExpectation {
  width: number;
  height: number;
  components: number;
  coding: CodingParams;
}

/** Differences between a codestream's main header and what was asked; empty when it matches. */
export function codingMismatches(cs: Codestream, want: CodestreamExpectation): string[] {
  const { siz, cod } = cs.main;
  const out: string[] = [];
  const check = (what: string, got: unknown, asked: unknown): void => {
    if (JSON.stringify(got) !== JSON.stringify(asked)) out.push(`${what} ${JSON.stringify(got)} (asked ${JSON.stringify(asked)})`);
  };
  const c = want.coding;
  check('size', [siz.xsiz - siz.xOsiz, siz.ysiz - siz.yOsiz], [want.width, want.height]);
  check('components', siz.components.length, want.components);
  check('layers', cod.layers, c.layers);
  check('levels', cod.coding.levels, c.levels);
  check('progression', PROGRESSION_NAMES[cod.progression], c.progression);
  check('code-block', [1 << cod.coding.xcb, 1 << cod.coding.ycb], c.codeBlock);
  check('wavelet', cod.coding.transform === 1 ? 'reversible' : 'irreversible', c.reversible ? 'reversible' : 'irreversible');
  check(
    'precincts',
    cod.coding.precincts.map((p) => [2 ** p.ppx, 2 ** p.ppy]),
    Array.from({ length: c.levels + 1 }, () => c.precincts),
  );
  return out;
}

/** {@link codingMismatches} of a codestream in memory. */
export function codestreamMismatches(codestream: Uint8Array, want: CodestreamExpectation): string[] {
  return codingMismatches(readCodestream(bufferSource(codestream, 'codestream')), want);
}

/** True when every tile-part of a parsed codestream carries PLT (or its main header PLM). */
export function codestreamHasPlt(cs: Codestream): boolean {
  return cs.main.plm.length > 0 || (cs.tileParts.length > 0 && cs.tileParts.every((tp) => tp.plt.length > 0));
}

/** True when every tile-part carries PLT (or the main header PLM). */
export function hasPacketLengths(codestream: Uint8Array): boolean {
  return codestreamHasPlt(readCodestream(bufferSource(codestream, 'codestream')));
}

/** One finished encode. */
export interface Encoded {
  codestream: Uint8Array;
  /** The command that made it (output name as given). */
  command: string;
  /** PLT markers were added by rewritePacketMarkers (the encoder wrote none). */
  pltAdded: boolean;
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  /** Kill the encoder after this long (default 10 minutes). */
  timeoutMs?: number;
}

function spawnTool(tool: EncoderTool, args: string[], opts: RunOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool.path, args, {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      // One thread each (the pool runs one encoder per core), fixed locale.
      env: { ...process.env, LC_ALL: 'C', OPJ_NUM_THREADS: '1' },
    });
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-8192);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new EncoderError(tool.name, `${commandLine(tool.name, args)}: could not run ${tool.path}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const why = signal ? `killed by ${signal}` : `exit status ${String(code)}`;
      const tail = output.trim().split('\n').slice(-8).join('\n');
      reject(new EncoderError(tool.name, `${commandLine(tool.name, args)}: ${why}${tail ? `\n${tail}` : ''}`));
    });
  });
}

/**
 * Runs the encoder on one job (asynchronously: the caller runs several at
 * once), reads its codestream, checks it against the parameters and gives
 * it PLT markers when the encoder wrote none. The output file is removed.
 */
export async function encode(tool: EncoderTool, job: EncodeJob, opts: RunOptions = {}): Promise<Encoded> {
  const args = encoderArgs(tool, job);
  const t0 = performance.now();
  const output = resolve(opts.cwd ?? '.', job.output);
  rmSync(output, { force: true });
  await spawnTool(tool, args, opts);
  let codestream: Uint8Array;
  try {
    codestream = new Uint8Array(readFileSync(output));
  } catch (e) {
    throw new EncoderError(tool.name, `${commandLine(tool.name, args)}: exited with status 0 but wrote no ${job.output} (${(e as Error).message})`);
  }
  rmSync(output, { force: true });
  const wrong = codestreamMismatches(codestream, job);
  if (wrong.length) throw new EncoderError(tool.name, `${commandLine(tool.name, args)} wrote a codestream other than asked: ${wrong.join('; ')}`);
  let pltAdded = false;
  if (!hasPacketLengths(codestream)) {
    codestream = rewritePacketMarkers(codestream, 'plt', job.output);
    pltAdded = true;
  }
  return { codestream, command: commandLine(tool.name, args), pltAdded, ms: performance.now() - t0 };
}
