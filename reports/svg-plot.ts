/**
 * Line plots as standalone SVG text: axes with "nice" ticks, a legend, one
 * polyline (or step line) per series, optional vertical markers, and a
 * band at the top for +Infinity values (an exact reconstruction's PSNR).
 * Pure string building: the same SVG is inlined in the HTML report and
 * rendered to PNG by sharp (librsvg, fonts from the system).
 */

export interface PlotSeries {
  name: string;
  /** [x, y]; y may be +Infinity (drawn on the top band) or null (a gap). */
  points: readonly (readonly [number, number | null])[];
  color?: string | undefined;
  /** 'step': each y holds until the next x (what a client shows between responses). Default 'line'. */
  shape?: 'line' | 'step' | undefined;
  /** Draw a dot at each point (default: when there are at most 60 points). */
  dots?: boolean | undefined;
}

export interface PlotMarker {
  x: number;
  label: string;
  color?: string | undefined;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly PlotSeries[];
  /** Vertical dashed lines (e.g. window changes). */
  markers?: readonly PlotMarker[] | undefined;
  width?: number | undefined;
  height?: number | undefined;
  xFormat?: ((v: number) => string) | undefined;
  yFormat?: ((v: number) => string) | undefined;
  /** Axis ranges; defaults come from the data (y from 0 when all y >= 0 and yFromZero). */
  xMin?: number | undefined;
  xMax?: number | undefined;
  yMin?: number | undefined;
  yMax?: number | undefined;
  yFromZero?: boolean | undefined;
  /** Label of the +Infinity band (default '∞'). */
  infinityLabel?: string | undefined;
}

/** Colour-blind-friendly palette (Okabe–Ito, with black last). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'] as const;

export const FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";

/** Escapes text for SVG/HTML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A 1-2-5 step that cuts [lo, hi] into about `count` parts. */
export function niceStep(lo: number, hi: number, count = 6): number {
  const span = Math.abs(hi - lo) || Math.abs(lo) || 1;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

/** Tick values inside [lo, hi] at a 1-2-5 step, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const d = lo === 0 ? 1 : Math.abs(lo) / 2;
    lo -= d;
    hi += d;
  }
  const step = niceStep(lo, hi, count);
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let i = first; out.length < 100; i++) {
    const v = i * step;
    if (v > hi + step * 1e-9) break;
    out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return out;
}

/** Bytes with binary units: 512 B, 1.5 KiB, 3 MiB. */
export function formatBytes(v: number): string {
  const a = Math.abs(v);
  if (a < 1024) return `${Math.round(v)} B`;
  if (a < 1024 ** 2) return `${trim(v / 1024)} KiB`;
  if (a < 1024 ** 3) return `${trim(v / 1024 ** 2)} MiB`;
  return `${trim(v / 1024 ** 3)} GiB`;
}

function trim(v: number): string {
  return Number(v.toFixed(Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0)).toString();
}

/** A general number label: up to 3 significant decimals, no trailing zeros. */
export function formatNumber(v: number): string {
  if (v === Infinity) return '∞';
  if (Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-3 && v !== 0)) return v.toExponential(2);
  return Number(v.toPrecision(6)).toString();
}

/** Ticks for byte axes: powers of two times 1, 2 or 5 are not nicer to read; 1-2-5 in binary units is. */
export function byteTicks(lo: number, hi: number, count = 6): number[] {
  const unit = hi >= 1024 ** 3 ? 1024 ** 3 : hi >= 1024 ** 2 ? 1024 ** 2 : hi >= 1024 ? 1024 : 1;
  return niceTicks(lo / unit, hi / unit, count).map((t) => t * unit);
}

const f1 = (v: number): string => (Math.round(v * 10) / 10).toString();

/** Renders the plot; the result is a complete `<svg>` element with its xmlns. */
export function renderLinePlot(o: PlotOptions): string {
  const W = o.width ?? 880;
  const H = o.height ?? 480;
  const series = o.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length]! }));
  const xs: number[] = [];
  const ys: number[] = [];
  let hasInf = false;
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (Number.isFinite(x)) xs.push(x);
      if (y === Infinity) hasInf = true;
      else if (y !== null && Number.isFinite(y)) ys.push(y);
    }
  }
  for (const m of o.markers ?? []) xs.push(m.x);
  const min = (a: number[]): number => a.reduce((p, v) => Math.min(p, v), Infinity);
  const max = (a: number[]): number => a.reduce((p, v) => Math.max(p, v), -Infinity);
  let xMin = o.xMin ?? (xs.length ? min(xs) : 0);
  let xMax = o.xMax ?? (xs.length ? max(xs) : 1);
  let yMin = o.yMin ?? (ys.length ? min(ys) : 0);
  let yMax = o.yMax ?? (ys.length ? max(ys) : 1);
  if (o.yFromZero && o.yMin === undefined && yMin > 0) yMin = 0;
  if (xMax <= xMin) xMax = xMin + 1;
  if (yMax <= yMin) {
    yMax = yMin + (yMin === 0 ? 1 : Math.abs(yMin) * 0.1);
  }
  const xFormat = o.xFormat ?? formatNumber;
  const yFormat = o.yFormat ?? formatNumber;
  // Round the y range out to whole steps, so the data sits inside labelled space.
  const yStep = niceStep(yMin, yMax);
  if (o.yMin === undefined) yMin = Math.floor(yMin / yStep + 1e-9) * yStep;
  if (o.yMax === undefined) yMax = Math.ceil(yMax / yStep - 1e-9) * yStep;
  const xTicks = (o.xFormat === formatBytes ? byteTicks : niceTicks)(xMin, xMax);
  const yTicks = niceTicks(yMin, yMax);

  const legendRows = Math.ceil(series.length / 4);
  const left = 78;
  const right = 24;
  const top = 44 + legendRows * 20;
  const bottom = 56;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const infBand = hasInf ? 26 : 0;
  const px = (x: number): number => left + ((x - xMin) / (xMax - xMin)) * pw;
  const py = (y: number): number => (y === Infinity ? top + 8 : top + infBand + (1 - (y - yMin) / (yMax - yMin)) * (ph - infBand));
  const clampY = (y: number): number => (y === Infinity ? y : Math.min(yMax, Math.max(yMin, y)));

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}" font-size="13">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(o.title)}</text>`);
  // Legend
  series.forEach((s, i) => {
    const col = i % 4;
    const row = Math.floor(i / 4);
    const lx = left + col * Math.max(150, pw / 4);
    const ly = 44 + row * 20;
    out.push(`<line x1="${f1(lx)}" y1="${ly - 4}" x2="${f1(lx + 24)}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"/>`);
    out.push(`<text x="${f1(lx + 30)}" y="${ly}">${escapeXml(s.name)}</text>`);
  });
  // Grid and ticks
  out.push(`<g stroke="#e3e3e3" stroke-width="1">`);
  for (const t of yTicks) if (t >= yMin && t <= yMax) out.push(`<line x1="${left}" y1="${f1(py(t))}" x2="${left + pw}" y2="${f1(py(t))}"/>`);
  for (const t of xTicks) if (t >= xMin && t <= xMax) out.push(`<line x1="${f1(px(t))}" y1="${top}" x2="${f1(px(t))}" y2="${top + ph}"/>`);
  out.push(`</g>`);
  if (hasInf) {
    out.push(`<line x1="${left}" y1="${f1(py(Infinity))}" x2="${left + pw}" y2="${f1(py(Infinity))}" stroke="#999999" stroke-dasharray="2,3"/>`);
    out.push(`<text x="${left - 8}" y="${f1(py(Infinity) + 4)}" text-anchor="end">${escapeXml(o.infinityLabel ?? '∞')}</text>`);
  }
  out.push(`<g fill="#333333">`);
  for (const t of yTicks) if (t >= yMin && t <= yMax) out.push(`<text x="${left - 8}" y="${f1(py(t) + 4)}" text-anchor="end">${escapeXml(yFormat(t))}</text>`);
  for (const t of xTicks) if (t >= xMin && t <= xMax) out.push(`<text x="${f1(px(t))}" y="${top + ph + 18}" text-anchor="middle">${escapeXml(xFormat(t))}</text>`);
  out.push(`</g>`);
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#555555"/>`);
  out.push(`<text x="${left + pw / 2}" y="${H - 14}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  out.push(`<text x="18" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${top + ph / 2})">${escapeXml(o.yLabel)}</text>`);
  // Markers
  for (const m of o.markers ?? []) {
    if (m.x < xMin || m.x > xMax) continue;
    const x = f1(px(m.x));
    const c = m.color ?? '#777777';
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + ph}" stroke="${c}" stroke-width="1" stroke-dasharray="5,4" opacity="0.8"/>`);
    out.push(`<text x="${f1(px(m.x) + 3)}" y="${top + ph - 6}" font-size="11" fill="${c}">${escapeXml(m.label)}</text>`);
  }
  // Series
  if (series.every((s) => s.points.length === 0)) {
    out.push(`<text x="${left + pw / 2}" y="${top + ph / 2}" text-anchor="middle" fill="#777777">no data</text>`);
  }
  for (const s of series) {
    const segments: string[][] = [];
    let cur: string[] = [];
    let prevY: number | undefined;
    for (const [x, y] of s.points) {
      if (y === null || !Number.isFinite(x) || Number.isNaN(y)) {
        if (cur.length) segments.push(cur);
        cur = [];
        prevY = undefined;
        continue;
      }
      const Y = f1(py(clampY(y)));
      if (s.shape === 'step' && prevY !== undefined) cur.push(`${f1(px(x))},${f1(prevY)}`);
      cur.push(`${f1(px(x))},${Y}`);
      prevY = py(clampY(y));
    }
    if (cur.length) segments.push(cur);
    for (const seg of segments) {
      if (seg.length > 1) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round" points="${seg.join(' ')}"/>`);
    }
    const dots = s.dots ?? s.points.length <= 60;
    if (dots) {
      for (const [x, y] of s.points) {
        if (y === null || Number.isNaN(y)) continue;
        out.push(`<circle cx="${f1(px(x))}" cy="${f1(py(clampY(y)))}" r="3" fill="${s.color}"/>`);
      }
    }
  }
  out.push(`</svg>`);
  return out.join('\n');
}
