/**
 * Small deterministic source rasters for the fixture matrix.
 *
 * Everything here is bit-exact across machines: the PRNG is integer-only
 * (mulberry32 on Math.imul) and the pattern uses only IEEE-754 basic
 * arithmetic and Math.sqrt (both correctly rounded), never Math.exp/sin/pow,
 * whose precision the ECMAScript spec leaves to the engine.
 */
import { writeFileSync } from 'node:fs';

export interface SynthParams {
  width: number;
  height: number;
  components: 1 | 3;
  seed: number;
}

/** Interleaved 8-bit samples plus their geometry, as in a binary PNM. */
export interface PnmImage {
  width: number;
  height: number;
  components: 1 | 3;
  samples: Uint8Array;
}

/** mulberry32: a 32-bit state PRNG returning its raw output, integers in [0, 2^32). */
export function mulberry32Uint(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** mulberry32: a 32-bit state PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  const next = mulberry32Uint(seed);
  return () => next() / 4294967296;
}

function checkParams(p: SynthParams): void {
  if (!Number.isInteger(p.width) || !Number.isInteger(p.height) || p.width < 1 || p.height < 1) {
    throw new RangeError(`synthSun: bad size ${p.width}x${p.height}`);
  }
  if (p.components !== 1 && p.components !== 3) {
    throw new RangeError(`synthSun: components must be 1 or 3, got ${String(p.components)}`);
  }
  if (!Number.isInteger(p.seed)) throw new RangeError(`synthSun: seed must be an integer, got ${p.seed}`);
}

interface Blob {
  x: number;
  y: number;
  /** Squared radius of the blob's core. */
  s2: number;
  /** Peak change in intensity (positive: bright plage, negative: dark spot). */
  amp: number;
}

/** Per-channel tint of the RGB version: a warm, yellow-orange sun. */
const TINT = [1.0, 0.82, 0.5] as const;

/**
 * A "solar" image: a limb-darkened disk on a dark sky, a few bright
 * plages and dark spots, and mild per-sample noise. Returns interleaved
 * samples (row-major, `components` samples per pixel).
 */
export function synthSun(p: SynthParams): Uint8Array {
  checkParams(p);
  const { width, height, components } = p;
  const rnd = mulberry32(p.seed);
  const cx = (width - 1) / 2 + (rnd() - 0.5) * width * 0.08;
  const cy = (height - 1) / 2 + (rnd() - 0.5) * height * 0.08;
  const radius = Math.min(width, height) * (0.38 + rnd() * 0.06);
  const r2 = radius * radius;
  const limb = 0.6; // linear limb-darkening coefficient u: I = I0 (1 - u (1 - mu))
  const peak = 225;
  const sky = 10;

  const blobs: Blob[] = [];
  const nBlobs = 3 + Math.floor(rnd() * 4);
  for (let i = 0; i < nBlobs; i++) {
    // Uniform in the disk (sqrt for area), kept off the extreme limb.
    const rr = Math.sqrt(rnd()) * radius * 0.85;
    const u = rnd() * 2 - 1;
    const v = rnd() * 2 - 1;
    const n = Math.sqrt(u * u + v * v) || 1;
    const s = radius * (0.04 + rnd() * 0.08);
    const dark = i % 3 === 2;
    blobs.push({ x: cx + (rr * u) / n, y: cy + (rr * v) / n, s2: s * s, amp: dark ? -(90 + rnd() * 60) : 40 + rnd() * 60 });
  }

  const out = new Uint8Array(width * height * components);
  let k = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const d2 = dx * dx + dy * dy;
      let base: number;
      if (d2 < r2) {
        const mu = Math.sqrt(1 - d2 / r2);
        base = peak * (1 - limb * (1 - mu));
        for (const b of blobs) {
          const bx = x - b.x;
          const by = y - b.y;
          const q = 1 + (bx * bx + by * by) / b.s2;
          base += b.amp / (q * q); // Lorentzian-squared falloff: exact arithmetic only.
        }
      } else {
        // A faint corona falling off outside the limb.
        const q = d2 / r2;
        base = sky + 30 / (q * q);
      }
      for (let c = 0; c < components; c++) {
        const tint = components === 1 ? 1 : TINT[c]!;
        const noise = (rnd() - 0.5) * 6;
        const v = Math.round(base * tint + noise);
        out[k++] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

/** Binary PGM (P5, 1 component) or PPM (P6, 3 components), maxval 255. */
export function encodePnm(img: PnmImage): Uint8Array {
  const { width, height, components, samples } = img;
  if (samples.length !== width * height * components) {
    throw new RangeError(`encodePnm: ${samples.length} samples for ${width}x${height}x${components}`);
  }
  const header = new TextEncoder().encode(`${components === 1 ? 'P5' : 'P6'}\n${width} ${height}\n255\n`);
  const out = new Uint8Array(header.length + samples.length);
  out.set(header, 0);
  out.set(samples, header.length);
  return out;
}

export function writePnm(path: string, img: PnmImage): void {
  writeFileSync(path, encodePnm(img));
}

/**
 * 4:2:0 planar Y, Cb, Cr (full-range BT.601, integer arithmetic) from an
 * interleaved RGB raster with even width and height: Y at full size, Cb and
 * Cr averaged over 2x2 blocks. This is the byte layout opj_compress reads
 * for `-F W,H,3,8,u@1x1:2x2:2x2` raw input.
 */
export function yuv420FromRgb(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (width % 2 !== 0 || height % 2 !== 0) throw new RangeError(`yuv420FromRgb: ${width}x${height} must be even`);
  if (rgb.length !== width * height * 3) throw new RangeError(`yuv420FromRgb: ${rgb.length} samples for ${width}x${height}x3`);
  const cw = width / 2;
  const ch = height / 2;
  const out = new Uint8Array(width * height + 2 * cw * ch);
  const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);
  // Fixed-point (x1024) coefficients, rounded.
  const yOf = (r: number, g: number, b: number): number => (306 * r + 601 * g + 117 * b + 512) >> 10;
  const cbOf = (r: number, g: number, b: number): number => ((-173 * r - 339 * g + 512 * b + 512) >> 10) + 128;
  const crOf = (r: number, g: number, b: number): number => ((512 * r - 429 * g - 83 * b + 512) >> 10) + 128;
  for (let i = 0, p = 0; i < width * height; i++, p += 3) {
    out[i] = clamp(yOf(rgb[p]!, rgb[p + 1]!, rgb[p + 2]!));
  }
  const cbBase = width * height;
  const crBase = cbBase + cw * ch;
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (const [ox, oy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
        const p = ((2 * y + oy) * width + 2 * x + ox) * 3;
        r += rgb[p]!;
        g += rgb[p + 1]!;
        b += rgb[p + 2]!;
      }
      r = (r + 2) >> 2;
      g = (g + 2) >> 2;
      b = (b + 2) >> 2;
      out[cbBase + y * cw + x] = clamp(cbOf(r, g, b));
      out[crBase + y * cw + x] = clamp(crOf(r, g, b));
    }
  }
  return out;
}
