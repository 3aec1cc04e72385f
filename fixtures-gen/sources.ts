/**
 * Where the fixture generator's pixels come from: synthetic solar frames that
 * evolve slowly from one frame to the next (active regions carried across the
 * disk by rotation, their loops breathing, their brightness flickering), or
 * the user's own images (PGM/PPM read here; PNG, TIFF and JPEG through sharp).
 *
 * Like synth.ts, the synthetic frames are bit-exact across machines: the
 * PRNG is integer-only, and the drawing uses only IEEE-754 basic arithmetic
 * and Math.sqrt. The sines and cosines it needs come from {@link sinCos}, a
 * fixed polynomial, not from Math.sin/cos, whose precision the ECMAScript
 * spec leaves to the engine.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { mulberry32, type PnmImage } from './synth.js';

const TWO_PI = 6.283185307179586;
const HALF_PI = 1.5707963267948966;
/** pi/2 split in two (Cody-Waite): the first part has 33 significant bits, so k * PIO2_HI is exact for |k| < 2^20. */
const PIO2_HI = 1.5707963267341256;
const PIO2_LO = 6.077100506506192e-11;
const DEG = 0.017453292519943295;

/**
 * sin and cos of x (radians), within 1e-15 for |x| up to a few thousand,
 * from range reduction to [-pi/4, pi/4] and Taylor polynomials: basic
 * arithmetic only, so the same bits on every engine.
 */
export function sinCos(x: number): { sin: number; cos: number } {
  if (!Number.isFinite(x)) return { sin: NaN, cos: NaN };
  const k = Math.round(x / HALF_PI);
  const r = x - k * PIO2_HI - k * PIO2_LO;
  const r2 = r * r;
  // Horner forms of the Taylor series up to r^17 / r^16 (|r| <= pi/4: error < 1e-17).
  const s =
    r * (1 - (r2 / 6) * (1 - (r2 / 20) * (1 - (r2 / 42) * (1 - (r2 / 72) * (1 - (r2 / 110) * (1 - (r2 / 156) * (1 - (r2 / 210) * (1 - r2 / 272))))))));
  const c = 1 - (r2 / 2) * (1 - (r2 / 12) * (1 - (r2 / 30) * (1 - (r2 / 56) * (1 - (r2 / 90) * (1 - (r2 / 132) * (1 - (r2 / 182) * (1 - r2 / 240)))))));
  switch (((k % 4) + 4) % 4) {
    case 0:
      return { sin: s, cos: c };
    case 1:
      return { sin: c, cos: -s };
    case 2:
      return { sin: -s, cos: -c };
    default:
      return { sin: -c, cos: s };
  }
}

/**
 * Names the drawing of {@link synthSolarFrame}: change it whenever the same
 * parameters would give other samples, so sets made before become stale.
 */
export const SYNTH_ID = 'solar-frame/1';

/** Parameters of one synthetic solar frame. */
export interface SolarFrameParams {
  width: number;
  height: number;
  components: 1 | 3;
  /** Chooses the sun: its position, size and active regions. */
  seed: number;
  /** Time step: frames of one seed differ by rotation and slow changes. */
  frame: number;
}

/** Where the disk is, in pixels (0-based, the centre may fall between pixels). */
export interface SolarGeometry {
  cx: number;
  cy: number;
  radius: number;
}

interface Loop {
  /** Direction of the footpoint axis in the tangent plane (radians from east). */
  psi: number;
  /** Half distance between the footpoints and the loop height, in solar radii. */
  half: number;
  height: number;
  amp: number;
  period: number;
  phase: number;
}

interface ActiveRegion {
  lat: number;
  lon0: number;
  /** Core size in solar radii. */
  size: number;
  plage: number;
  spot: number;
  period: number;
  phase: number;
  loops: Loop[];
}

/** A small bright point of the magnetic network (rotates with the sun, never changes). */
interface NetworkPoint {
  lat: number;
  lon0: number;
  size: number;
  amp: number;
}

interface Sun extends SolarGeometry {
  regions: ActiveRegion[];
  network: NetworkPoint[];
}

/** Rotation per frame (radians): about 0.25 degree, so 30 frames turn the sun by 7.5 degrees. */
export const ROTATION_PER_FRAME = 0.25 * DEG;

function checkFrame(p: SolarFrameParams): void {
  if (!Number.isInteger(p.width) || !Number.isInteger(p.height) || p.width < 1 || p.height < 1) {
    throw new RangeError(`synthSolarFrame: bad size ${p.width}x${p.height}`);
  }
  if (p.components !== 1 && p.components !== 3) throw new RangeError(`synthSolarFrame: components must be 1 or 3, got ${String(p.components)}`);
  if (!Number.isInteger(p.seed)) throw new RangeError(`synthSolarFrame: seed must be an integer, got ${p.seed}`);
  if (!Number.isInteger(p.frame) || p.frame < 0) throw new RangeError(`synthSolarFrame: frame must be an integer >= 0, got ${p.frame}`);
}

/** The sun of a seed: fixed for all its frames. */
function sunOf(width: number, height: number, seed: number): Sun {
  const rnd = mulberry32(seed ^ 0x5eed5eed);
  const cx = (width - 1) / 2 + (rnd() - 0.5) * width * 0.02;
  const cy = (height - 1) / 2 + (rnd() - 0.5) * height * 0.02;
  const radius = Math.min(width, height) * (0.38 + rnd() * 0.04);
  const regions: ActiveRegion[] = [];
  const n = 5 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const loops: Loop[] = [];
    const nl = 2 + Math.floor(rnd() * 4);
    const size = 0.025 + rnd() * 0.035;
    const axis = rnd() * Math.PI;
    for (let j = 0; j < nl; j++) {
      loops.push({
        psi: axis + (rnd() - 0.5) * 0.8,
        half: size * (1.5 + rnd() * 2),
        height: size * (1 + rnd() * 2.5),
        amp: 15 + rnd() * 25,
        period: 16 + rnd() * 48,
        phase: rnd() * TWO_PI,
      });
    }
    regions.push({
      lat: (rnd() < 0.5 ? -1 : 1) * (8 + rnd() * 27) * DEG,
      // Spread over the whole circle, so regions rotate in and out of view.
      lon0: rnd() * TWO_PI - Math.PI,
      size,
      plage: 45 + rnd() * 55,
      spot: rnd() < 0.6 ? 80 + rnd() * 70 : 0,
      period: 20 + rnd() * 60,
      phase: rnd() * TWO_PI,
      loops,
    });
  }
  const network: NetworkPoint[] = [];
  for (let i = 0; i < 160; i++) {
    network.push({ lat: (rnd() * 2 - 1) * 65 * DEG, lon0: rnd() * TWO_PI - Math.PI, size: 0.006 + rnd() * 0.01, amp: 6 + rnd() * 14 });
  }
  return { cx, cy, radius, regions, network };
}

/** The disk's position and size in frames of this seed and size (for FITS-like metadata). */
export function solarGeometry(width: number, height: number, seed: number): SolarGeometry {
  const { cx, cy, radius } = sunOf(width, height, seed);
  return { cx, cy, radius };
}

/** Adds amp / (1 + d^2/s^2)^2 around (x0, y0), within the box where it is above amp/4096. */
function splat(buf: Float32Array, width: number, height: number, x0: number, y0: number, s: number, amp: number): void {
  const reach = s * 8;
  const xa = Math.max(0, Math.ceil(x0 - reach));
  const xb = Math.min(width - 1, Math.floor(x0 + reach));
  const ya = Math.max(0, Math.ceil(y0 - reach));
  const yb = Math.min(height - 1, Math.floor(y0 + reach));
  const inv = 1 / (s * s);
  for (let y = ya; y <= yb; y++) {
    const dy = y - y0;
    const dy2 = dy * dy;
    let k = y * width + xa;
    for (let x = xa; x <= xb; x++, k++) {
      const dx = x - x0;
      const q = 1 + (dx * dx + dy2) * inv;
      buf[k] = buf[k]! + amp / (q * q);
    }
  }
}

/** Per-channel tint of 3-component frames (same warm sun as synth.ts). */
const TINT = [1.0, 0.82, 0.5] as const;

/**
 * One frame of a synthetic solar movie: a limb-darkened disk and faint
 * corona, active regions (bright plage, some with a dark spot) that rotate
 * with the sun, coronal loops over them that rise and fall, brightness that
 * flickers slowly, and per-frame sample noise. Consecutive frames differ a
 * little; frame f of a seed is the same on every machine. Interleaved 8-bit
 * samples, row-major.
 */
export function synthSolarFrame(p: SolarFrameParams): Uint8Array {
  checkFrame(p);
  const { width, height, components, frame } = p;
  const sun = sunOf(width, height, p.seed);
  const { cx, cy, radius } = sun;
  const r2 = radius * radius;
  const buf = new Float32Array(width * height);
  const limb = 0.6;
  const peak = 175;
  for (let y = 0, k = 0; y < height; y++) {
    const dy = y - cy;
    for (let x = 0; x < width; x++, k++) {
      const dx = x - cx;
      const d2 = dx * dx + dy * dy;
      if (d2 < r2) {
        buf[k] = peak * (1 - limb * (1 - Math.sqrt(1 - d2 / r2)));
      } else {
        const q = d2 / r2;
        buf[k] = 10 + 30 / (q * q);
      }
    }
  }
  const lonStep = ROTATION_PER_FRAME * frame;
  for (const pt of sun.network) {
    const L = sinCos(pt.lon0 + lonStep);
    const B = sinCos(pt.lat);
    const pz = L.cos * B.cos;
    if (pz <= 0.05) continue;
    splat(buf, width, height, cx + radius * L.sin * B.cos, cy - radius * B.sin, radius * pt.size * (0.4 + 0.6 * pz), pt.amp * pz);
  }
  for (const ar of sun.regions) {
    const lon = ar.lon0 + lonStep;
    const L = sinCos(lon);
    const B = sinCos(ar.lat);
    // Unit vector to the region: x west-east on screen, y north, z towards the observer.
    const px = L.sin * B.cos;
    const py = B.sin;
    const pz = L.cos * B.cos;
    const flicker = 1 + 0.15 * sinCos((TWO_PI * frame) / ar.period + ar.phase).sin;
    if (pz > 0) {
      // Fades in and out over the limb; foreshortened regions look smaller.
      const vis = pz < 0.2 ? pz / 0.2 : 1;
      const x0 = cx + radius * px;
      const y0 = cy - radius * py;
      const s = radius * ar.size * (0.5 + 0.5 * pz);
      splat(buf, width, height, x0, y0, s, ar.plage * vis * flicker);
      if (ar.spot > 0) splat(buf, width, height, x0, y0, s * 0.35, -ar.spot * vis);
    }
    // Tangent plane at the region: east and north unit vectors.
    const ex = L.cos;
    const ez = -L.sin;
    const nx = -B.sin * L.sin;
    const ny = B.cos;
    const nz = -B.sin * L.cos;
    for (const lp of ar.loops) {
      const D = sinCos(lp.psi);
      const dx = D.cos * ex + D.sin * nx;
      const dy = D.sin * ny;
      const dz = D.cos * ez + D.sin * nz;
      const breathe = 1 + 0.12 * sinCos((TWO_PI * frame) / lp.period + lp.phase).sin;
      const h = lp.height * breathe;
      const kernel = Math.max(0.75, radius * 0.004);
      // Points about half a kernel apart along the loop's length.
      const steps = Math.max(8, Math.ceil((radius * (2 * lp.half + 2 * h)) / (kernel * 0.5)));
      for (let i = 0; i <= steps; i++) {
        const a = (2 * i) / steps - 1;
        const lift = 1 + h * Math.sqrt(1 - a * a);
        const qx = px * lift + lp.half * a * dx;
        const qy = py * lift + lp.half * a * dy;
        const qz = pz * lift + lp.half * a * dz;
        // Hidden when behind the disk.
        if (qz < 0 && qx * qx + qy * qy < 1) continue;
        splat(buf, width, height, cx + radius * qx, cy - radius * qy, kernel, (lp.amp * flicker) / 3);
      }
    }
  }
  const out = new Uint8Array(width * height * components);
  const rnd = mulberry32(Math.imul(p.seed, 0x9e3779b1) ^ Math.imul(frame + 1, 0x85ebca6b));
  for (let k = 0, o = 0; k < buf.length; k++) {
    const base = buf[k]!;
    for (let c = 0; c < components; c++) {
      const tint = components === 1 ? 1 : TINT[c]!;
      const v = Math.round(base * tint + (rnd() - 0.5) * 6);
      out[o++] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// The user's images

/** Image file extensions read by {@link loadImage}. */
export const PNM_EXTENSIONS: readonly string[] = ['.pgm', '.ppm', '.pnm'];
export const SHARP_EXTENSIONS: readonly string[] = ['.png', '.tif', '.tiff', '.jpg', '.jpeg'];

/** Raised for an image that cannot be used as a source; the message names the file. */
export class SourceError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SourceError';
    this.file = file;
  }
}

/**
 * Parses a binary PGM (P5) or PPM (P6) with maxval up to 255, comments
 * allowed in the header. 16-bit PNM (maxval > 255) is refused: the fixtures
 * are 8-bit.
 */
export function readPnm(bytes: Uint8Array, file = 'image'): PnmImage {
  let pos = 0;
  const fields: string[] = [];
  // Magic, width, height, maxval: tokens separated by whitespace, '#' comments to end of line.
  while (fields.length < 4) {
    if (pos >= bytes.length) throw new SourceError(file, 'PNM header ends early');
    const c = bytes[pos]!;
    if (c === 0x23) {
      while (pos < bytes.length && bytes[pos] !== 0x0a && bytes[pos] !== 0x0d) pos++;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      pos++;
    } else {
      const start = pos;
      while (pos < bytes.length && ![0x20, 0x09, 0x0a, 0x0d, 0x23].includes(bytes[pos]!)) pos++;
      fields.push(new TextDecoder().decode(bytes.subarray(start, pos)));
      if (fields.length === 1 && fields[0] !== 'P5' && fields[0] !== 'P6') {
        throw new SourceError(file, `not a binary PGM/PPM (magic ${JSON.stringify(fields[0]!.slice(0, 8))}; P5 or P6 expected)`);
      }
    }
  }
  pos++; // the single whitespace byte after maxval
  const [magic, w, h, m] = fields as [string, string, string, string];
  const width = Number(w);
  const height = Number(h);
  const maxval = Number(m);
  if (!/^\d+$/.test(w) || !/^\d+$/.test(h) || width < 1 || height < 1) throw new SourceError(file, `bad PNM size ${w}x${h}`);
  if (!/^\d+$/.test(m) || maxval < 1 || maxval > 65535) throw new SourceError(file, `bad PNM maxval ${m}`);
  if (maxval > 255) throw new SourceError(file, `16-bit PNM (maxval ${maxval}) is not supported: the fixtures are 8-bit`);
  const components = magic === 'P5' ? 1 : 3;
  const n = width * height * components;
  if (bytes.length - pos < n) throw new SourceError(file, `PNM data is truncated (${bytes.length - pos} of ${n} bytes)`);
  const samples = bytes.slice(pos, pos + n);
  if (maxval !== 255) {
    for (let i = 0; i < n; i++) samples[i] = Math.round((samples[i]! * 255) / maxval);
  }
  return { width, height, components, samples };
}

/** What an image file is, for {@link loadImage} and {@link probeImage}: PNM (read here) or a sharp one (its size and colour). */
async function imageKind(file: string): Promise<{ pnm: true } | { pnm: false; width: number; height: number; components: 1 | 3 }> {
  const ext = extname(file).toLowerCase();
  if (PNM_EXTENSIONS.includes(ext)) return { pnm: true };
  if (!SHARP_EXTENSIONS.includes(ext)) {
    throw new SourceError(file, `unsupported image type '${ext}': use ${[...PNM_EXTENSIONS, ...SHARP_EXTENSIONS].join(', ')}`);
  }
  const { default: sharp } = await import('sharp');
  let meta;
  try {
    meta = await sharp(file).metadata();
  } catch (e) {
    throw new SourceError(file, `cannot read the image: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!meta.width || !meta.height) throw new SourceError(file, 'the image has no size');
  const grey = meta.channels === 1 || meta.channels === 2 || meta.space === 'b-w' || meta.space === 'grey16';
  return { pnm: false, width: meta.width, height: meta.height, components: grey ? 1 : 3 };
}

/**
 * Reads a user image as 8-bit grey or RGB samples: PGM/PPM here, PNG, TIFF
 * and JPEG through sharp (alpha dropped, 16-bit reduced to 8). Grey images
 * stay 1 component; anything with colour becomes 3.
 */
export async function loadImage(file: string): Promise<PnmImage> {
  const kind = await imageKind(file);
  if (kind.pnm) return readPnm(new Uint8Array(readFileSync(file)), file);
  const { default: sharp } = await import('sharp');
  const pipeline = sharp(file).removeAlpha();
  const { components } = kind;
  const { data, info } = await pipeline
    .toColourspace(components === 1 ? 'b-w' : 'srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== components) throw new SourceError(file, `sharp gave ${info.channels} channels, ${components} expected`);
  return { width: info.width, height: info.height, components, samples: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Size and component count of an image file (a sharp one is not decoded). */
export async function probeImage(file: string): Promise<{ width: number; height: number; components: 1 | 3 }> {
  const kind = await imageKind(file);
  if (!kind.pnm) return { width: kind.width, height: kind.height, components: kind.components };
  const img = readPnm(new Uint8Array(readFileSync(file)), file);
  return { width: img.width, height: img.height, components: img.components };
}

// ---------------------------------------------------------------------------
// Frame metadata: the XML box of JP2 frames

/** What the XML box of a frame says. */
export interface FrameMetadata {
  width: number;
  height: number;
  /** Observation time (ISO 8601, UTC). */
  date: Date;
  /** Wavelength in angstrom. */
  wavelength: number;
  /** The disk in the image (synthetic frames), for the solar coordinate keywords. */
  geometry?: SolarGeometry;
  /** A line for COMMENT. */
  comment: string;
}

/** Apparent solar radius seen from 1 AU (arcsec), and the Sun-observer distance (m). */
const RSUN_ARCSEC = 975.3;
const DSUN_METRES = 1.496e11;

/** `2026-01-01T00:00:12.000`: FITS DATE-OBS (UTC, no zone letter). */
export function fitsDate(d: Date): string {
  return d.toISOString().replace(/Z$/, '');
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function num(v: number): string {
  return String(Number(v.toFixed(6)));
}

/**
 * The text of a frame's `xml ` box: `<meta><fits>` with one element per
 * FITS-style header keyword, as Helioviewer's JP2 files carry and
 * JHelioviewer reads: observatory, telescope, instrument, wavelength,
 * DATE-OBS and, for synthetic suns, the solar coordinate keywords that
 * match the disk drawn (CRPIX is 1-based with rows counted from the bottom,
 * as FITS counts them). The instrument keywords are SDO/AIA's whatever the
 * source (so JHelioviewer opens the frames); COMMENT says where the pixels
 * came from.
 */
export function frameXml(m: FrameMetadata): string {
  const k: [string, string | number][] = [
    ['SIMPLE', 'T'],
    ['BITPIX', 8],
    ['NAXIS', 2],
    ['NAXIS1', m.width],
    ['NAXIS2', m.height],
    ['DATE-OBS', fitsDate(m.date)],
    ['OBSRVTRY', 'SDO'],
    ['TELESCOP', 'SDO/AIA'],
    ['INSTRUME', 'AIA'],
    ['DETECTOR', 'AIA'],
    ['WAVELNTH', m.wavelength],
    ['WAVEUNIT', 'angstrom'],
    ['EXPTIME', 2],
  ];
  const g = m.geometry;
  if (g) {
    const cdelt = RSUN_ARCSEC / g.radius;
    k.push(
      ['CTYPE1', 'HPLN-TAN'],
      ['CTYPE2', 'HPLT-TAN'],
      ['CUNIT1', 'arcsec'],
      ['CUNIT2', 'arcsec'],
      ['CRPIX1', num(g.cx + 1)],
      ['CRPIX2', num(m.height - g.cy)],
      ['CRVAL1', 0],
      ['CRVAL2', 0],
      ['CDELT1', num(cdelt)],
      ['CDELT2', num(cdelt)],
      ['CROTA2', 0],
      ['RSUN_OBS', RSUN_ARCSEC],
      ['R_SUN', num(g.radius)],
      ['DSUN_OBS', DSUN_METRES],
      ['HGLN_OBS', 0],
      ['HGLT_OBS', 0],
    );
  }
  k.push(['COMMENT', m.comment]);
  return `<meta><fits>${k.map(([key, v]) => `<${key}>${xmlEscape(String(v))}</${key}>`).join('')}</fits></meta>`;
}
