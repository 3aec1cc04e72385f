import OpenJPEGWASM from '@cornerstonejs/codec-openjpeg/decodewasmjs';
import type { Siz } from '../jpeg2000/markers.js';

/**
 * Decoding in the browser with the WASM OpenJPEG (@cornerstonejs/codec-openjpeg),
 * with the care client-sim/decode.ts takes in Node: the library fails
 * silently on a stream it cannot decode (a short or empty buffer), so the
 * output length is checked; its buffer has rows `ceil(W0 / 2^reduce)`
 * samples apart (W0 = component 0's full width) with the decoded image at
 * the top left, so the window is cut out of it by that stride. The .wasm is
 * fetched from our server (same origin) and handed to the module, so the
 * module never looks for it elsewhere.
 */

interface Decoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decodeSubResolution(level: number, layer: number): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean };
  delete(): void;
}

export interface Codec {
  J2KDecoder: new () => Decoder;
}

let codec: Promise<Codec> | undefined;

export function loadCodec(wasmUrl: string): Promise<Codec> {
  codec ??= (async () => {
    const res = await fetch(wasmUrl);
    if (!res.ok) throw new Error(`the decoder ${wasmUrl} could not be loaded: HTTP ${res.status}`);
    const wasmBinary = await res.arrayBuffer();
    return (await OpenJPEGWASM({ wasmBinary, print() {}, printErr() {}, locateFile: () => wasmUrl })) as Codec;
  })();
  codec.catch(() => {
    codec = undefined;
  });
  return codec;
}

const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

/** Size of component 0 at `reduce` discarded levels (ISO 15444-1 B.5). */
function size0(siz: Siz, reduce: number): { width: number; height: number } {
  const { dx, dy } = siz.components[0]!;
  const k = 2 ** reduce;
  return {
    width: ceilDiv(ceilDiv(siz.xsiz, dx), k) - ceilDiv(ceilDiv(siz.xOsiz, dx), k),
    height: ceilDiv(ceilDiv(siz.ysiz, dy), k) - ceilDiv(ceilDiv(siz.yOsiz, dy), k),
  };
}

export interface Rgba {
  width: number;
  height: number;
  /** RGBA, 8 bits, for ImageData. */
  data: Uint8ClampedArray<ArrayBuffer>;
}

/**
 * Decodes `codestream` at `reduce` and returns the window (x, y, w, h in the
 * frame at that level) as RGBA: gray images as equal R, G and B, samples
 * deeper than 8 bits scaled down by shifting, signed ones offset.
 */
export function decodeWindowRgba(mod: Codec, codestream: Uint8Array, siz: Siz, reduce: number, win: { x: number; y: number; w: number; h: number }): Rgba {
  const nc = siz.components.length;
  if (nc !== 1 && nc !== 3) throw new Error(`${nc} components: the viewer shows gray or RGB images only`);
  if (siz.components.some((c) => c.dx !== siz.components[0]!.dx || c.dy !== siz.components[0]!.dy)) {
    throw new Error('components of different sizes are not shown');
  }
  const depth = siz.components[0]!.precision;
  const signed = siz.components[0]!.signed;
  if (nc > 1 && depth > 8) throw new Error('deep colour images are not shown');
  const { width, height } = size0(siz, reduce);
  const stride = ceilDiv(size0(siz, 0).width, 2 ** reduce);
  const bps = depth <= 8 ? 1 : 2;
  const decoder = new mod.J2KDecoder();
  let raw: Uint8Array;
  let got: number;
  try {
    decoder.getEncodedBuffer(codestream.length).set(codestream);
    decoder.decodeSubResolution(reduce, 0);
    got = decoder.getFrameInfo().componentCount;
    raw = decoder.getDecodedBuffer().slice();
  } finally {
    decoder.delete();
  }
  const need = ((height - 1) * stride + width) * nc * bps;
  if (width <= 0 || height <= 0 || raw.length < need || got !== nc) {
    throw new Error(`the decoder returned ${raw.length} bytes for a ${width}x${height}x${nc} image at reduce ${reduce} (${need} expected)`);
  }
  const x0 = Math.max(0, Math.min(width, win.x));
  const y0 = Math.max(0, Math.min(height, win.y));
  const w = Math.max(0, Math.min(width - x0, win.w));
  const h = Math.max(0, Math.min(height - y0, win.h));
  const out = new Uint8ClampedArray(new ArrayBuffer(w * h * 4));
  const shift = Math.max(0, depth - 8);
  const offset = signed ? 2 ** (depth - 1) : 0;
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const sample = (i: number): number => {
    let v: number;
    if (bps === 1) v = signed ? (raw[i]! << 24) >> 24 : raw[i]!;
    else v = signed ? dv.getInt16(2 * i, true) : dv.getUint16(2 * i, true);
    return (v + offset) >> shift;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = ((y0 + y) * stride + (x0 + x)) * nc;
      const o = (y * w + x) * 4;
      if (nc === 1) {
        const g = sample(s);
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
      } else {
        out[o] = sample(s);
        out[o + 1] = sample(s + 1);
        out[o + 2] = sample(s + 2);
      }
      out[o + 3] = 255;
    }
  }
  return { width: w, height: h, data: out };
}
