/**
 * Window sequences for the rate-distortion analyzer.
 *
 * A window is (x, y, w, h, r): r resolution levels discarded, x, y, w, h on
 * that level's grid (the frame of size resolutionSizeAtDiscard(siz, r)).
 * The default is the paper's zoom on a 4096x4096 image; on another image it
 * is scaled so that every window covers the same fraction of the image.
 */
import { readFileSync } from 'node:fs';
import { InputError } from './errors.js';

export interface RdWindow {
  x: number;
  y: number;
  w: number;
  h: number;
  /** Resolution levels discarded. */
  r: number;
}

export interface FrameSize {
  width: number;
  height: number;
}

/** The image the paper's sequence is written for. */
export const PAPER_IMAGE: FrameSize = Object.freeze({ width: 4096, height: 4096 });

/** The paper's zoom: the whole 512x512 frame at r=3, then two 512x512 windows closer in. */
export const PAPER_SEQUENCE: readonly RdWindow[] = Object.freeze([
  Object.freeze({ x: 0, y: 0, w: 512, h: 512, r: 3 }),
  Object.freeze({ x: 512, y: 512, w: 512, h: 512, r: 2 }),
  Object.freeze({ x: 1024, y: 1024, w: 512, h: 512, r: 1 }),
]);

/** A sequence as given: windows, and the image size they were written for (absent: the target's own). */
export interface SequenceSpec {
  windows: RdWindow[];
  base?: FrameSize | undefined;
}

const MAX_WINDOWS = 1000;

function sequenceError(where: string, msg: string): Error {
  return new RangeError(`sequence ${where}: ${msg}`);
}

function uint(v: unknown, where: string, name: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw sequenceError(where, `${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

function parseWindow(v: unknown, where: string): RdWindow {
  if (Array.isArray(v)) {
    if (v.length !== 5) throw sequenceError(where, `a window array is [x, y, w, h, r], got ${v.length} values`);
    const [x, y, w, h, r] = v as unknown[];
    return { x: uint(x, where, 'x', 0), y: uint(y, where, 'y', 0), w: uint(w, where, 'w', 1), h: uint(h, where, 'h', 1), r: uint(r, where, 'r', 0) };
  }
  if (typeof v !== 'object' || v === null) throw sequenceError(where, 'a window is {x, y, w, h, r} or [x, y, w, h, r]');
  const o = v as Record<string, unknown>;
  return { x: uint(o['x'], where, 'x', 0), y: uint(o['y'], where, 'y', 0), w: uint(o['w'], where, 'w', 1), h: uint(o['h'], where, 'h', 1), r: uint(o['r'], where, 'r', 0) };
}

/**
 * Reads a sequence from parsed JSON: an array of windows, or
 * `{ "windows": [...], "imageSize": { "width": W, "height": H } }` where
 * imageSize (optional) is the image the windows are written for, so that
 * they are scaled to the target like the paper's sequence.
 */
export function parseSequence(json: unknown): SequenceSpec {
  let list: unknown;
  let base: FrameSize | undefined;
  if (Array.isArray(json)) list = json;
  else if (typeof json === 'object' && json !== null && Array.isArray((json as Record<string, unknown>)['windows'])) {
    const o = json as Record<string, unknown>;
    list = o['windows'];
    const s = o['imageSize'];
    if (s !== undefined) {
      if (typeof s !== 'object' || s === null) throw sequenceError('imageSize', 'must be { width, height }');
      const so = s as Record<string, unknown>;
      base = { width: uint(so['width'], 'imageSize', 'width', 1), height: uint(so['height'], 'imageSize', 'height', 1) };
    }
  } else throw sequenceError('file', 'must be an array of windows or { "windows": [...] }');
  const arr = list as unknown[];
  if (arr.length === 0) throw sequenceError('file', 'has no window');
  if (arr.length > MAX_WINDOWS) throw sequenceError('file', `has ${arr.length} windows, more than ${MAX_WINDOWS}`);
  return { windows: arr.map((w, i) => parseWindow(w, `window ${i + 1}`)), base };
}

/** `paper`, or a JSON file path. */
export function loadSequence(spec: string): SequenceSpec {
  if (spec === 'paper') return { windows: PAPER_SEQUENCE.map((w) => ({ ...w })), base: PAPER_IMAGE };
  let text: string;
  try {
    text = readFileSync(spec, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read the sequence file ${spec}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`the sequence file ${spec} is not JSON: ${(e as Error).message}`);
  }
  return parseSequence(json);
}

/**
 * Fits a sequence to the target image. `frame(d)` is the target's frame
 * size at d discarded levels; `maxDiscard` the most it allows.
 *
 * With a base size, each window is scaled to cover the same fraction of the
 * image: on its level's grid, starts are floor(x·F/B) and ends
 * ceil((x+w)·F/B), with F the target's frame and B the base image's frame
 * (ceil(size/2^r)) at that level. A level the target does not have
 * (r > maxDiscard) becomes maxDiscard, the same fraction of a larger frame.
 * Without a base the windows are used as they are, except that r > maxDiscard
 * is an error. Every window is then clipped to its frame and keeps at least
 * one sample.
 */
export function fitSequence(spec: SequenceSpec, frame: (d: number) => FrameSize, maxDiscard: number): RdWindow[] {
  return spec.windows.map((w, i) => {
    let { x, y, w: ww, h, r } = w;
    if (spec.base) {
      const k = 2 ** r;
      const bw = Math.ceil(spec.base.width / k);
      const bh = Math.ceil(spec.base.height / k);
      r = Math.min(r, maxDiscard);
      const f = frame(r);
      const x1 = Math.ceil(((x + ww) * f.width) / bw);
      const y1 = Math.ceil(((y + h) * f.height) / bh);
      x = Math.floor((x * f.width) / bw);
      y = Math.floor((y * f.height) / bh);
      ww = x1 - x;
      h = y1 - y;
    } else if (r > maxDiscard) {
      throw sequenceError(`window ${i + 1}`, `r=${r} but the image has only ${maxDiscard} levels to discard`);
    }
    const f = frame(r);
    x = Math.min(x, f.width - 1);
    y = Math.min(y, f.height - 1);
    ww = Math.max(1, Math.min(ww, f.width - x));
    h = Math.max(1, Math.min(h, f.height - y));
    return { x, y, w: ww, h, r };
  });
}
