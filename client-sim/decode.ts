/**
 * Decoding codestreams to pixels (Node side), with two decoders:
 *
 * - `decodeWasm`: @cornerstonejs/codec-openjpeg (OpenJPEG compiled to WASM),
 *   in-process. The module is loaded once, lazily, with its console output
 *   silenced; each decode uses a fresh J2KDecoder that is deleted afterwards.
 *   The library fails SILENTLY on malformed input (an empty or short buffer,
 *   no exception), so the output length is always checked and a clear error
 *   thrown.
 * - `decodeOpj`: the `opj_decompress` command-line tool (when on PATH; see
 *   `opjDecompressAvailable`), through temporary PGX files.
 *
 * Both apply OpenJPEG's own colour handling: a 3-component image whose
 * chroma components are subsampled 4:2:0 or 4:2:2 (treated as sYCC) comes
 * back as full-size RGB. The result is therefore always a set of
 * equally-sized components, stored INTERLEAVED (see DecodedImage). Images
 * whose decoded components differ in size (other subsampling) are refused
 * with a clear error.
 *
 * Options: `reduce` = resolution levels discarded (opj_decompress -r,
 * decodeSubResolution's level), `layers` = quality layers used (-l, its layer
 * argument; absent or 0 = all).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasJp2Signature, readContainer } from '../jpeg2000/boxes.js';
import { readMainHeader } from '../jpeg2000/codestream.js';
import type { Siz } from '../jpeg2000/markers.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { findTool, runTool } from '../fixtures-gen/opj.js';

export interface DecodedImage {
  /** Size of every component as decoded (component 0's size at the reduce level). */
  width: number;
  height: number;
  components: number;
  /** Bit depth of component 0 (all components for the images accepted here). */
  bitDepth: number;
  signed: boolean;
  /**
   * Interleaved samples: component c of pixel (x, y) is
   * `samples[(y * width + x) * components + c]`. Uint8Array for unsigned
   * depths up to 8, Uint16Array up to 16, Int32Array otherwise (and signed).
   */
  samples: Uint8Array | Uint16Array | Int32Array;
}

export interface DecodeOptions {
  /** Resolution levels to discard (0 = full size). */
  reduce?: number;
  /** Quality layers to decode (absent or 0 = all). */
  layers?: number;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Raised when a decoder fails (the WASM silently, opj_decompress with an exit status). */
export class DecodeError extends Error {
  readonly decoder: 'wasm' | 'opj';
  constructor(decoder: 'wasm' | 'opj', message: string) {
    super(message);
    this.name = 'DecodeError';
    this.decoder = decoder;
  }
}

function sampleArray(n: number, bitDepth: number, signed: boolean): Uint8Array | Uint16Array | Int32Array {
  if (!signed && bitDepth <= 8) return new Uint8Array(n);
  if (!signed && bitDepth <= 16) return new Uint16Array(n);
  return new Int32Array(n);
}

function checkOptions(opts: DecodeOptions): { reduce: number; layers: number } {
  const reduce = opts.reduce ?? 0;
  const layers = opts.layers ?? 0;
  if (!Number.isInteger(reduce) || reduce < 0 || reduce > 32) throw new RangeError(`reduce ${reduce}`);
  if (!Number.isInteger(layers) || layers < 0 || layers > 65535) throw new RangeError(`layers ${layers}`);
  return { reduce, layers };
}

/** The SIZ of a raw codestream or of the first codestream of a JP2/JPX file. */
export function sizOf(bytes: Uint8Array): Siz {
  const whole = bufferSource(bytes, 'input');
  if (hasJp2Signature(bytes)) {
    const ref = readContainer(whole).codestreams[0];
    if (!ref) throw new DecodeError('wasm', 'the file holds no codestream');
    return readMainHeader(subSource(whole, ref.offset, ref.length)).siz;
  }
  return readMainHeader(whole).siz;
}

const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

/** Size of component c at `reduce` discarded levels (ISO 15444-1 B.5, as OpenJPEG computes it). */
export function componentSize(siz: Siz, c: number, reduce: number): { width: number; height: number } {
  const { dx, dy } = siz.components[c]!;
  const k = 2 ** reduce;
  return {
    width: ceilDiv(ceilDiv(siz.xsiz, dx), k) - ceilDiv(ceilDiv(siz.xOsiz, dx), k),
    height: ceilDiv(ceilDiv(siz.ysiz, dy), k) - ceilDiv(ceilDiv(siz.yOsiz, dy), k),
  };
}

/** True when OpenJPEG turns the image into full-size RGB (sYCC 4:2:0 / 4:2:2 with 3 components). */
function syccUpsampled(siz: Siz): boolean {
  const c = siz.components;
  if (c.length !== 3 || c[0]!.dx !== 1 || c[0]!.dy !== 1) return false;
  if (c[1]!.dx !== c[2]!.dx || c[1]!.dy !== c[2]!.dy) return false;
  return c[1]!.dx === 2 && (c[1]!.dy === 2 || c[1]!.dy === 1);
}

/** Refuses images whose decoded components would differ in size. */
function checkUniform(siz: Siz, decoder: 'wasm' | 'opj'): void {
  if (syccUpsampled(siz)) return;
  const { dx, dy } = siz.components[0]!;
  if (siz.components.some((k) => k.dx !== dx || k.dy !== dy)) {
    throw new DecodeError(decoder, 'components of different sizes (subsampling other than 4:2:0 / 4:2:2 YCC) are not supported');
  }
}

// ---------------------------------------------------------------------------
// WASM decoder

interface WasmFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned: boolean;
}

interface WasmJ2KDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  decodeSubResolution(level: number, layer: number): void;
  getFrameInfo(): WasmFrameInfo;
  delete(): void;
}

interface WasmModule {
  J2KDecoder: new () => WasmJ2KDecoder;
}

type WasmFactory = (opts: { print(): void; printErr(): void }) => Promise<WasmModule>;

let wasmModule: Promise<WasmModule> | undefined;

function loadWasm(): Promise<WasmModule> {
  if (!wasmModule) {
    const require = createRequire(import.meta.url);
    const factory = require('@cornerstonejs/codec-openjpeg/decodewasmjs') as WasmFactory;
    wasmModule = factory({ print() {}, printErr() {} });
    wasmModule.catch(() => {
      wasmModule = undefined;
    });
  }
  return wasmModule;
}

/**
 * Decodes with the WASM OpenJPEG. Accepts a raw codestream or a JP2 file.
 *
 * The library returns a buffer sized from the reference-grid image size
 * (x1 - x0) at the reduce level, rows `ceil(W0 / 2^reduce)` samples apart
 * (W0 = component 0's full-size width), interleaved, with the decoded
 * component (the B.5 size, as opj_decompress reports) at the top left: this
 * function cuts that out. The library lays out 1-component images (any
 * depth up to 16 bits) and 8-bit 3-component images only; others are refused.
 */
export async function decodeWasm(codestream: Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const { reduce, layers } = checkOptions(opts);
  const siz = sizOf(codestream);
  checkUniform(siz, 'wasm');
  const nc = siz.components.length;
  if (nc !== 1 && nc !== 3) throw new DecodeError('wasm', `${nc} components: the WASM decoder lays out only 1 or 3`);
  const bitDepth = siz.components[0]!.precision;
  const signed = siz.components[0]!.signed;
  if (nc > 1 && bitDepth > 8) throw new DecodeError('wasm', `${nc} components of ${bitDepth} bits: the WASM decoder lays out only 8-bit colour`);
  const { width, height } = componentSize(siz, 0, reduce);
  const stride = ceilDiv(componentSize(siz, 0, 0).width, 2 ** reduce);
  const bps = bitDepth <= 8 ? 1 : 2;

  const mod = await loadWasm();
  const decoder = new mod.J2KDecoder();
  let raw: Uint8Array;
  let info: WasmFrameInfo;
  try {
    decoder.getEncodedBuffer(codestream.length).set(codestream);
    decoder.decodeSubResolution(reduce, layers);
    info = decoder.getFrameInfo();
    raw = decoder.getDecodedBuffer().slice();
  } catch (e) {
    // An abort inside the module may leave it unusable: load a fresh one next time.
    wasmModule = undefined;
    throw new DecodeError('wasm', `WASM decoder aborted: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    try {
      decoder.delete();
    } catch {
      // already gone with an aborted module
    }
  }
  const need = ((height - 1) * stride + width) * nc * bps;
  if (width <= 0 || height <= 0 || raw.length < need || info.componentCount !== nc) {
    throw new DecodeError(
      'wasm',
      `WASM decoder returned ${raw.length} bytes (${info.componentCount} components) for a ${width}x${height}x${nc} image at reduce ${reduce}` +
        ` (${need} expected): the codestream is malformed or truncated, or reduce exceeds its levels`,
    );
  }
  const n = width * height * nc;
  const samples = sampleArray(n, bitDepth, signed);
  const rowSamples = width * nc;
  if (bps === 1) {
    for (let y = 0; y < height; y++) {
      const from = y * stride * nc;
      if (samples instanceof Uint8Array) samples.set(raw.subarray(from, from + rowSamples), y * rowSamples);
      else for (let i = 0; i < rowSamples; i++) samples[y * rowSamples + i] = signed ? (raw[from + i]! << 24) >> 24 : raw[from + i]!;
    }
  } else {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let y = 0; y < height; y++) {
      const from = y * stride * nc * 2;
      for (let i = 0; i < rowSamples; i++) {
        samples[y * rowSamples + i] = signed ? dv.getInt16(from + 2 * i, true) : dv.getUint16(from + 2 * i, true);
      }
    }
  }
  return { width, height, components: nc, bitDepth, signed, samples };
}

// ---------------------------------------------------------------------------
// opj_decompress

/** True when opj_decompress is on PATH. */
export function opjDecompressAvailable(): boolean {
  return findTool('opj_decompress') !== undefined;
}

interface PgxPlane {
  width: number;
  height: number;
  depth: number;
  signed: boolean;
  values: Int32Array;
}

/** Reads a PGX file as opj_decompress writes it: "PG ML|LM +|- depth width height\n", then samples. */
function readPgx(bytes: Uint8Array, name: string): PgxPlane {
  let eol = bytes.indexOf(0x0a);
  if (eol < 0 || eol > 200) throw new DecodeError('opj', `${name}: no PGX header`);
  const head = new TextDecoder().decode(bytes.subarray(0, eol));
  const m = /^PG\s+(ML|LM)\s*([+-]?)\s*(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(head);
  if (!m) throw new DecodeError('opj', `${name}: bad PGX header ${JSON.stringify(head)}`);
  const bigEndian = m[1] === 'ML';
  const signed = m[2] === '-';
  const depth = Number(m[3]);
  const width = Number(m[4]);
  const height = Number(m[5]);
  const bps = depth <= 8 ? 1 : depth <= 16 ? 2 : 4;
  eol++;
  const n = width * height;
  if (bytes.length - eol < n * bps) throw new DecodeError('opj', `${name}: ${bytes.length - eol} sample bytes for ${width}x${height}x${bps}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + eol, n * bps);
  const values = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (bps === 1) values[i] = signed ? dv.getInt8(i) : dv.getUint8(i);
    else if (bps === 2) values[i] = signed ? dv.getInt16(2 * i, !bigEndian) : dv.getUint16(2 * i, !bigEndian);
    else values[i] = dv.getInt32(4 * i, !bigEndian);
  }
  return { width, height, depth, signed, values };
}

/**
 * Decodes with opj_decompress (`-r reduce`, `-l layers`), writing the input
 * to a temporary .j2k (or .jp2) and reading back one PGX file per component.
 * Throws an OpjToolError when the tool is missing or fails, a DecodeError when
 * its output is not what was expected.
 */
export function decodeOpj(codestream: Uint8Array, opts: DecodeOptions = {}): DecodedImage {
  const { reduce, layers } = checkOptions(opts);
  const siz = sizOf(codestream);
  checkUniform(siz, 'opj');
  const dir = mkdtempSync(join(tmpdir(), 'jpip-decode-'));
  try {
    const input = join(dir, hasJp2Signature(codestream) ? 'in.jp2' : 'in.j2k');
    writeFileSync(input, codestream);
    const args = ['-i', input, '-o', join(dir, 'out.pgx')];
    if (reduce > 0) args.push('-r', String(reduce));
    if (layers > 0) args.push('-l', String(layers));
    runTool('opj_decompress', args);
    const files = readdirSync(dir)
      .map((f) => /^out(?:_(\d+))?\.pgx$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(a[1] ?? 0) - Number(b[1] ?? 0));
    if (files.length === 0) throw new DecodeError('opj', 'opj_decompress wrote no output');
    const planes = files.map((m) => readPgx(new Uint8Array(readFileSync(join(dir, m[0]))), m[0]));
    const p0 = planes[0]!;
    if (planes.some((p) => p.width !== p0.width || p.height !== p0.height)) {
      throw new DecodeError('opj', `decoded components differ in size: ${planes.map((p) => `${p.width}x${p.height}`).join(', ')}`);
    }
    const nc = planes.length;
    const n = p0.width * p0.height;
    const samples = sampleArray(n * nc, p0.depth, p0.signed);
    for (let c = 0; c < nc; c++) {
      const v = planes[c]!.values;
      for (let i = 0; i < n; i++) samples[i * nc + c] = v[i]!;
    }
    return { width: p0.width, height: p0.height, components: nc, bitDepth: p0.depth, signed: p0.signed, samples };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Pixels

/** The part of `img` inside `rect` (clipped to the image), same sample type. */
export function cropImage(img: DecodedImage, rect: Rect): DecodedImage {
  const x0 = Math.max(0, Math.floor(rect.x));
  const y0 = Math.max(0, Math.floor(rect.y));
  const x1 = Math.min(img.width, Math.floor(rect.x + rect.width));
  const y1 = Math.min(img.height, Math.floor(rect.y + rect.height));
  const w = Math.max(0, x1 - x0);
  const h = Math.max(0, y1 - y0);
  const nc = img.components;
  const samples = sampleArray(w * h * nc, img.bitDepth, img.signed);
  for (let y = 0; y < h; y++) {
    const from = ((y0 + y) * img.width + x0) * nc;
    samples.set(img.samples.subarray(from, from + w * nc), y * w * nc);
  }
  return { width: w, height: h, components: nc, bitDepth: img.bitDepth, signed: img.signed, samples };
}

function checkComparable(a: DecodedImage, b: DecodedImage): void {
  if (a.width !== b.width || a.height !== b.height || a.components !== b.components) {
    throw new RangeError(`images differ in size: ${a.width}x${a.height}x${a.components} vs ${b.width}x${b.height}x${b.components}`);
  }
}

/** Mean squared error over every sample of every component. */
export function mse(a: DecodedImage, b: DecodedImage): number {
  checkComparable(a, b);
  const sa = a.samples;
  const sb = b.samples;
  const n = sa.length;
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const d = sa[i]! - sb[i]!;
    sum += d * d;
  }
  return sum / n;
}

/**
 * PSNR in dB over all samples, `peak` defaulting to 2^bitDepth - 1 of `a`.
 * Infinity when the images are identical. Throws when sizes differ.
 */
export function psnr(a: DecodedImage, b: DecodedImage, peak: number = 2 ** a.bitDepth - 1): number {
  const e = mse(a, b);
  if (e === 0) return Infinity;
  return 10 * Math.log10((peak * peak) / e);
}

/** Same size, component count and sample values (the sample array types may differ). */
export function imagesEqual(a: DecodedImage, b: DecodedImage): boolean {
  if (a.width !== b.width || a.height !== b.height || a.components !== b.components) return false;
  const sa = a.samples;
  const sb = b.samples;
  if (sa.length !== sb.length) return false;
  for (let i = 0; i < sa.length; i++) if (sa[i] !== sb[i]) return false;
  return true;
}

/** Index of the first differing sample and both values, for test messages (undefined when equal). */
export function firstDifference(a: DecodedImage, b: DecodedImage): { x: number; y: number; c: number; a: number; b: number } | undefined {
  checkComparable(a, b);
  const nc = a.components;
  for (let i = 0; i < a.samples.length; i++) {
    if (a.samples[i] !== b.samples[i]) {
      const px = Math.floor(i / nc);
      return { x: px % a.width, y: Math.floor(px / a.width), c: i % nc, a: a.samples[i]!, b: b.samples[i]! };
    }
  }
  return undefined;
}
