/**
 * Writing a rate-distortion result: rd.json (everything, what `report`
 * reads), rd.csv (every point), rd.svg (PSNR against bytes) and rd.png (the
 * same SVG rendered by sharp). Rendering only reads the result data.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { psnrOut, rdResultToJson, type RdResult } from './rd-result.js';
import { svgToPng } from './png.js';
import { formatBytes, PALETTE, renderLinePlot, type PlotMarker, type PlotSeries } from './svg-plot.js';

/** The CSV of every point; PSNR "inf" when exact, empty when not measurable. */
export function rdCsv(r: RdResult): string {
  const dialect = new Map(r.servers.map((s) => [s.name, s.dialect]));
  const rows = r.points.map((p) => {
    const w = r.sequence.windows[p.window]!;
    return [p.server, dialect.get(p.server) ?? '', p.window + 1, w.x, w.y, w.w, w.h, w.r, p.request, p.bytes, p.windowBytes, p.responseBytes, psnrOut(p.psnr) ?? '', p.mse ?? '', p.eor ?? '', p.ms];
  });
  return stringify(rows, {
    header: true,
    columns: ['server', 'dialect', 'window', 'x', 'y', 'w', 'h', 'r', 'request', 'bytes', 'window_bytes', 'response_bytes', 'psnr_db', 'mse', 'eor', 'ms'],
  });
}

/** PSNR against cumulative bytes, one step curve per server, a dashed line where each server moves to the next window. */
export function rdPlotSvg(r: RdResult, opts: { width?: number; height?: number } = {}): string {
  const series: PlotSeries[] = [];
  const markers: PlotMarker[] = [];
  r.servers.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = r.points.filter((p) => p.server === s.name);
    // Each window is its own curve: a gap where the next window starts (its first picture comes with its first response).
    const points: (readonly [number, number | null])[] = [];
    for (const p of pts) {
      if (p.request === 1 && p.window > 0) {
        const w = r.sequence.windows[p.window]!;
        markers.push({ x: p.bytes - p.responseBytes, label: `w${p.window + 1} r=${w.r}`, color });
        points.push([p.bytes - p.responseBytes, null]);
      }
      points.push([p.bytes, p.psnr]);
    }
    series.push({ name: `${s.name} (${s.dialect})`, color, shape: 'step', points });
  });
  const seqText = r.sequence.windows.map((w, i) => `w${i + 1}=(${w.x},${w.y},${w.w},${w.h},r${w.r})`).join(' ');
  return renderLinePlot({
    title: `PSNR against bytes: ${r.target} (len step ${formatBytes(r.step)})`,
    xLabel: `bytes received (cumulative)   ${seqText}`,
    yLabel: 'PSNR of the window (dB)',
    series,
    markers,
    xMin: 0,
    xFormat: formatBytes,
    infinityLabel: '∞ exact',
    ...opts,
  });
}

export interface RdOutputFiles {
  json: string;
  csv: string;
  svg: string;
  png: string;
}

/** Writes rd.json, rd.csv, rd.svg and rd.png into `dir` (created if missing). */
export async function writeRdOutputs(r: RdResult, dir: string): Promise<RdOutputFiles> {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'rd.json'), csv: join(dir, 'rd.csv'), svg: join(dir, 'rd.svg'), png: join(dir, 'rd.png') };
  writeFileSync(files.json, rdResultToJson(r));
  writeFileSync(files.csv, rdCsv(r));
  const svg = rdPlotSvg(r);
  writeFileSync(files.svg, svg);
  writeFileSync(files.png, await svgToPng(svg));
  return files;
}

function dB(v: number | null): string {
  if (v === null) return '-';
  if (v === Infinity) return 'exact';
  return `${v.toFixed(2)} dB`;
}

/** The run in a few lines of text (what `jpip-bench rd` prints). */
export function formatRdText(r: RdResult): string {
  const lines: string[] = [];
  lines.push(`rd: ${r.target} (${r.original.width}x${r.original.height}, ${r.original.components} component(s), ${r.original.bitDepth} bits), len step ${r.step} B, sequence ${r.sequence.source}`);
  r.sequence.windows.forEach((w, i) => lines.push(`  w${i + 1}: x=${w.x} y=${w.y} w=${w.w} h=${w.h} r=${w.r} (frame ${w.frame.width}x${w.frame.height})`));
  for (const s of r.servers) {
    lines.push(`${s.name} (${s.dialect}, ${s.url})${s.error ? `: stopped: ${s.error}` : ''}`);
    for (const w of r.summary.windows.filter((x) => x.server === s.name)) {
      const run = s.windows.find((x) => x.window === w.window);
      lines.push(
        `  w${w.window + 1}: ${w.points} responses, ${formatBytes(w.bytes)}, final ${dB(w.finalPsnr)}, exact after ${w.bytesToExact === null ? '-' : formatBytes(w.bytesToExact)}${run && run.stop !== 'window-done' ? ` (stopped: ${run.stop})` : ''}`,
      );
    }
  }
  for (const c of r.summary.servers) {
    lines.push(`${c.server} vs ${c.reference}: mean PSNR difference ${c.meanPsnrDiff === null ? '-' : `${c.meanPsnrDiff >= 0 ? '+' : ''}${c.meanPsnrDiff.toFixed(2)} dB`} over ${c.windows} window(s)`);
  }
  return lines.join('\n');
}
