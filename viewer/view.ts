/**
 * The viewer's window model, in plain TypeScript (no DOM): which part of
 * which resolution of a frame the canvas shows, as JPIP view-window fields.
 *
 * A view is a resolution (d discard levels: the frame is `sizes[d]`) and the
 * offset of the canvas's top-left corner in that frame's pixels. The canvas
 * shows the frame at 1:1, so rsiz is the canvas size clipped to the frame.
 * Zooming moves one resolution up or down, keeping the frame point under the
 * cursor in place; panning moves the offset; both are clamped to the frame.
 */

export interface Size {
  w: number;
  h: number;
}

export interface ViewState {
  /** Resolution levels discarded. */
  d: number;
  /** Offset of the window in the frame at d. */
  x: number;
  y: number;
}

export interface Window {
  fsiz: Size;
  roff: { x: number; y: number };
  rsiz: Size;
}

/**
 * Frame sizes by discard level, from the full size (a guess from the
 * listing until the codestream's SIZ is known: then `exactSizes`).
 */
export function guessSizes(width: number, height: number, maxLevels = 8): Size[] {
  const out: Size[] = [];
  for (let d = 0; d <= maxLevels; d++) {
    const f = 2 ** d;
    out.push({ w: Math.ceil(width / f), h: Math.ceil(height / f) });
    if (out[d]!.w <= 1 && out[d]!.h <= 1) break;
  }
  return out;
}

/** The coarsest view that shows the whole frame in the canvas (the first view of an image). */
export function fitView(sizes: readonly Size[], canvas: Size): ViewState {
  let d = sizes.length - 1;
  for (let i = 0; i < sizes.length; i++) {
    if (sizes[i]!.w <= canvas.w && sizes[i]!.h <= canvas.h) {
      d = i;
      break;
    }
  }
  return { d, x: 0, y: 0 };
}

/** The view moved into the frame (offsets within [0, frame - canvas]). */
export function clampView(v: ViewState, sizes: readonly Size[], canvas: Size): ViewState {
  const d = Math.max(0, Math.min(sizes.length - 1, Math.round(v.d)));
  const f = sizes[d]!;
  const x = Math.max(0, Math.min(Math.max(0, f.w - canvas.w), Math.round(v.x)));
  const y = Math.max(0, Math.min(Math.max(0, f.h - canvas.h), Math.round(v.y)));
  return { d, x, y };
}

/** One resolution finer (zoom > 0) or coarser (zoom < 0), keeping canvas point (px, py) on the same frame point. */
export function zoomView(v: ViewState, zoom: number, px: number, py: number, sizes: readonly Size[], canvas: Size): ViewState {
  const d = Math.max(0, Math.min(sizes.length - 1, v.d - Math.sign(zoom)));
  if (d === v.d) return clampView(v, sizes, canvas);
  const from = sizes[v.d]!;
  const to = sizes[d]!;
  // The frame point under the cursor, as a fraction of the frame, stays under the cursor.
  const fx = (v.x + px) / from.w;
  const fy = (v.y + py) / from.h;
  return clampView({ d, x: fx * to.w - px, y: fy * to.h - py }, sizes, canvas);
}

/** Moves the view by (dx, dy) canvas pixels (a drag to the right shows what is left of it). */
export function panView(v: ViewState, dx: number, dy: number, sizes: readonly Size[], canvas: Size): ViewState {
  return clampView({ d: v.d, x: v.x - dx, y: v.y - dy }, sizes, canvas);
}

/** The JPIP window of a view: fsiz = the frame at d, roff = the offset, rsiz = the canvas clipped to the frame. */
export function windowOf(v: ViewState, sizes: readonly Size[], canvas: Size): Window {
  const f = sizes[v.d]!;
  return {
    fsiz: { w: f.w, h: f.h },
    roff: { x: v.x, y: v.y },
    rsiz: { w: Math.min(canvas.w, f.w - v.x), h: Math.min(canvas.h, f.h - v.y) },
  };
}

/** A short text of a window, for the overlay and as a key. */
export function windowText(w: Window, stream: number): string {
  return `stream=${stream} fsiz=${w.fsiz.w},${w.fsiz.h} roff=${w.roff.x},${w.roff.y} rsiz=${w.rsiz.w},${w.rsiz.h}`;
}

/** EOR reason codes as words (ISO/IEC 15444-9 Table D.2). */
export const EOR_TEXT: Readonly<Record<number, string>> = {
  1: 'image done',
  2: 'window done',
  3: 'window change',
  4: 'byte limit',
  5: 'quality limit',
  6: 'session limit',
  7: 'response limit',
  255: 'non-specified',
};
