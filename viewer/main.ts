import { ClientError, JpipClient, isClientError, type JpipResponse } from '../client-sim/client.js';
import { ALL_METADATA, mainHeaderFacts, one } from '../client-sim/patterns.js';
import { boxContent, parseBoxes, readXml, type Box } from '../jpeg2000/boxes.js';
import { resolutionSizeAtDiscard } from '../jpeg2000/geometry.js';
import type { Siz } from '../jpeg2000/markers.js';
import { BIN_CLASS, EOR } from '../jpip/constants.js';
import type { JpipRequest } from '../jpip/request.js';
import { decodeWindowRgba, loadCodec } from './decode.js';
import { EOR_TEXT, clampView, fitView, guessSizes, panView, windowOf, windowText, zoomView, type Size, type ViewState, type Window } from './view.js';

/**
 * The viewer page: lists what the server serves, and shows one image or
 * movie the way JHelioviewer does, over the real protocol. Each view is a
 * JPIP window request (fsiz/roff/rsiz, stream=frame) on one channel,
 * repeated while the server stops at the byte limit (EOR 4); after every
 * response the codestream is rebuilt from what the client holds (the
 * client library's reassembly) and decoded by the WASM OpenJPEG, so the
 * picture sharpens as data arrives. A failed request is retried with a
 * bounded back-off; an unknown channel (404: the server lost the session)
 * is replaced by a new one that tells the server what is held.
 *
 * State for tests and people: the overlay (`#overlay`) says the bytes, the
 * last EOR and the window; `document.body.dataset` holds `status`
 * (loading, streaming, complete, error), `window` and `eor`.
 */

/** Bytes per request (`?len=N` on the page's URL, 1 KiB to 16 MiB): smaller shows the picture sharpen in more steps. */
const LEN = ((): number => {
  const n = Number(new URLSearchParams(location.search).get('len'));
  return Number.isInteger(n) && n >= 1024 && n <= 16 * 1024 * 1024 ? n : 96 * 1024;
})();
const MAX_RETRIES = 6;
const PLAY_FRAME_MS = 150;

interface Listed {
  path: string;
  kind: 'image' | 'movie';
  bytes: number;
  frames: number;
  width: number;
  height: number;
  components: number;
  frameFiles?: string[];
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
};

const canvas = $<HTMLCanvasElement>('view');
const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
const listEl = $<HTMLUListElement>('list');
const overlay = $<HTMLPreElement>('overlay');
const metaEl = $<HTMLPreElement>('meta');
const titleEl = $<HTMLElement>('title');
const slider = $<HTMLInputElement>('frame');
const frameLabel = $<HTMLElement>('frame-label');
const playBtn = $<HTMLButtonElement>('play');
const movieBar = $<HTMLElement>('movie');
const wasmUrl = document.querySelector<HTMLMetaElement>('meta[name="jpip-wasm"]')?.content ?? 'openjpeg.wasm';

const canvasSize: Size = { w: canvas.width, h: canvas.height };

interface Open {
  item: Listed;
  client: JpipClient;
  sizes: Size[];
  exact: boolean;
  view: ViewState;
  frame: number;
  /** Bytes received on this image, all requests. */
  bytes: number;
  requests: number;
  /** Windows completed (key -> true): a view already complete is not asked again. */
  complete: Set<string>;
}

let current: Open | undefined;
let playing = false;
let wakeLoop: (() => void) | undefined;
let loopRunning = false;
let last: { eor: number | undefined; windowBytes: number; window: string; decodeMs: number; error: string } = { eor: undefined, windowBytes: 0, window: '', decodeMs: 0, error: '' };
const metaCache = new Map<string, string>();

function setStatus(s: 'idle' | 'loading' | 'streaming' | 'complete' | 'error'): void {
  document.body.dataset['status'] = s;
}

function showOverlay(): void {
  const o = current;
  if (!o) {
    overlay.textContent = '';
    return;
  }
  const eor = last.eor === undefined ? '-' : `${last.eor} (${EOR_TEXT[last.eor] ?? '?'})`;
  overlay.textContent = [
    `${o.item.path}${o.item.frames > 1 ? `  frame ${o.frame + 1}/${o.item.frames}` : ''}`,
    `window  ${last.window}`,
    `level   d=${o.view.d}  (${o.sizes[o.view.d]!.w}x${o.sizes[o.view.d]!.h})`,
    `bytes   ${o.bytes.toLocaleString('en')} in ${o.requests} requests (this window ${last.windowBytes.toLocaleString('en')})`,
    `EOR     ${eor}`,
    `decode  ${last.decodeMs.toFixed(0)} ms`,
    ...(last.error ? [`error   ${last.error}`] : []),
  ].join('\n');
  document.body.dataset['window'] = last.window;
  document.body.dataset['eor'] = last.eor === undefined ? '' : String(last.eor);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function fieldsOf(w: Window, frame: number): Partial<JpipRequest> {
  return { stream: one(frame), fsiz: { fx: w.fsiz.w, fy: w.fsiz.h, round: 'round-down' }, roff: { ...w.roff }, rsiz: { ...w.rsiz }, len: LEN };
}

/**
 * One request of the view, with retries: a retryable failure (connection
 * reset, cut body, timeout, 5xx) is tried again after a growing pause; an
 * unknown channel (404 with a cid) gets a new channel.
 */
async function requestWithRetry(o: Open, fields: Partial<JpipRequest>): Promise<JpipResponse> {
  let lastError: unknown;
  for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
    if (attempt > 0) await sleep(Math.min(4000, 200 * 2 ** (attempt - 1)));
    try {
      let r: JpipResponse;
      if (o.client.cid !== undefined) r = await o.client.request(fields);
      else if (o.client.target === undefined) r = await o.client.open(o.item.path, fields);
      else r = await o.client.reopen(fields);
      if (r.status === 200) return r;
      if (r.status === 404 && o.client.cid !== undefined) {
        // The server does not know the channel (it restarted, or the session expired): a new one.
        o.client.cid = undefined;
        lastError = new Error('the channel was lost; opening a new one');
        continue;
      }
      const err = new ClientError('status', `HTTP ${r.status}: ${(r.text ?? '').trim().slice(0, 200)}`, { url: o.client.base, status: r.status });
      if (r.status < 500) throw err;
      lastError = err;
    } catch (e) {
      if (isClientError(e) && e.retryable && e.kind !== 'status') {
        lastError = e;
        continue;
      }
      if (isClientError(e) && e.kind === 'status' && (e.status ?? 0) >= 500) {
        lastError = e;
        continue;
      }
      throw e;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** Learns the exact frame sizes and levels once the main header of `frame` is held. */
function learnSizes(o: Open, frame: number): Siz | undefined {
  const facts = mainHeaderFacts(o.client.store, frame);
  if (!facts) return undefined;
  if (!o.exact) {
    o.sizes = [];
    for (let d = 0; d <= facts.levels; d++) {
      const s = resolutionSizeAtDiscard(facts.siz, d);
      o.sizes.push({ w: s.width, h: s.height });
    }
    o.exact = true;
    o.view = clampView(o.view, o.sizes, canvasSize);
  }
  return facts.siz;
}

async function draw(o: Open, frame: number, w: Window, d: number, siz: Siz): Promise<void> {
  const mod = await loadCodec(wasmUrl);
  const t0 = performance.now();
  const { codestream } = o.client.reassemble(frame);
  const img = decodeWindowRgba(mod, codestream, siz, d, { x: w.roff.x, y: w.roff.y, w: w.rsiz.w, h: w.rsiz.h });
  last.decodeMs = performance.now() - t0;
  if (o !== current) return;
  ctx.fillStyle = '#111';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (img.width > 0 && img.height > 0) ctx.putImageData(new ImageData(img.data, img.width, img.height), 0, 0);
}

/** Fetches the current view until complete, then (when playing) moves to the next frame. */
async function loop(): Promise<void> {
  if (loopRunning) {
    wakeLoop?.();
    return;
  }
  loopRunning = true;
  try {
    for (;;) {
      const o = current;
      if (!o) return;
      const frame = o.frame;
      const w = windowOf(o.view, o.sizes, canvasSize);
      const key = windowText(w, frame);
      if (o.complete.has(key)) {
        if (playing && o.item.frames > 1) {
          await sleep(PLAY_FRAME_MS);
          if (playing && o === current && o.frame === frame) setFrame((frame + 1) % o.item.frames);
          continue;
        }
        setStatus('complete');
        await new Promise<void>((r) => (wakeLoop = r));
        wakeLoop = undefined;
        continue;
      }
      if (last.window !== key) last.windowBytes = 0;
      last.window = key;
      setStatus('streaming');
      let r: JpipResponse;
      const d = o.view.d;
      try {
        r = await requestWithRetry(o, fieldsOf(w, frame));
      } catch (e) {
        last.error = e instanceof Error ? e.message : String(e);
        showOverlay();
        setStatus('error');
        // Stay stopped until the user does something (any view change wakes the loop).
        await new Promise<void>((res) => (wakeLoop = res));
        wakeLoop = undefined;
        last.error = '';
        continue;
      }
      o.bytes += r.bodyLength;
      o.requests++;
      last.windowBytes += r.bodyLength;
      last.eor = r.eor;
      const wasExact = o.exact;
      const siz = learnSizes(o, frame);
      if (!wasExact && o.exact) {
        // The real sizes may differ from the listing's guess: ask again for the corrected window.
        const again = windowOf(o.view, o.sizes, canvasSize);
        if (windowText(again, frame) !== key) continue;
      }
      if (r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE) o.complete.add(key);
      if (siz && o === current) {
        try {
          await draw(o, frame, w, d, siz);
        } catch (e) {
          last.error = e instanceof Error ? e.message : String(e);
        }
        if (o.frame === frame) void showMetadata(o, frame);
      }
      showOverlay();
    }
  } finally {
    loopRunning = false;
  }
}

/** The XML boxes of a metadata-bin 0 (any depth). */
function xmlBoxes(bytes: Uint8Array): string[] {
  const out: string[] = [];
  const walk = (boxes: readonly Box[]): void => {
    for (const b of boxes) {
      if (b.type === 'xml ') out.push(readXml(boxContent(bytes, b)));
      if (b.children) walk(b.children);
    }
  };
  try {
    walk(parseBoxes(bytes));
  } catch {
    // A partial bin: what parsed is shown.
  }
  return out;
}

/**
 * The frame's XML (FITS keywords) as the server delivers it: the XML boxes
 * of the target's metadata-bin 0, or, for a linked movie, of the frame
 * file's metadata-bin 0 (one metadata-only request on its own channel).
 */
async function showMetadata(o: Open, frame: number): Promise<void> {
  const file = o.item.frameFiles?.[frame];
  let text: string | undefined;
  if (file && file !== o.item.path) {
    text = metaCache.get(file);
    if (text === undefined) {
      const c = new JpipClient(location.origin, { timeoutMs: 10_000 });
      try {
        await c.open(file, { metareq: ALL_METADATA, len: 1 << 20 });
        const bin = c.store.get(0, BIN_CLASS.METADATA, 0);
        text = bin ? xmlBoxes(bin.bytes()).join('\n') : '';
        metaCache.set(file, text);
      } catch {
        text = undefined;
      } finally {
        await c.close().catch(() => {});
      }
    }
  } else {
    const bin = o.client.store.get(0, BIN_CLASS.METADATA, 0);
    if (bin) text = xmlBoxes(bin.bytes()).join('\n');
  }
  if (o !== current || o.frame !== frame || text === undefined) return;
  metaEl.textContent = text === '' ? '(no XML box)' : prettyXml(text);
  metaEl.dataset['frame'] = String(frame);
}

/** Indents XML text for reading (the text itself is shown, never parsed as HTML). */
function prettyXml(xml: string): string {
  const parts = xml.replace(/>\s*</g, '>\n<').split('\n');
  let depth = 0;
  const out: string[] = [];
  for (const p of parts) {
    const close = /^<\//.test(p);
    const selfContained = /^<[^/!?][^>]*>.*<\/[^>]+>$/.test(p) || /\/>$/.test(p) || /^<[?!]/.test(p);
    if (close) depth = Math.max(0, depth - 1);
    out.push(`${'  '.repeat(depth)}${p}`);
    if (!close && !selfContained && /^<[^/]/.test(p)) depth++;
  }
  return out.join('\n');
}

function setView(v: ViewState): void {
  const o = current;
  if (!o) return;
  o.view = clampView(v, o.sizes, canvasSize);
  showOverlay();
  void loop();
}

function setFrame(i: number): void {
  const o = current;
  if (!o) return;
  o.frame = Math.max(0, Math.min(o.item.frames - 1, i));
  slider.value = String(o.frame);
  frameLabel.textContent = `${o.frame + 1} / ${o.item.frames}`;
  showOverlay();
  void loop();
}

function openItem(item: Listed): void {
  const prev = current;
  if (prev) void prev.client.close().catch(() => {});
  const sizes = guessSizes(item.width, item.height);
  current = { item, client: new JpipClient(location.origin, { timeoutMs: 20_000, keepItems: false }), sizes, exact: false, view: fitView(sizes, canvasSize), frame: 0, bytes: 0, requests: 0, complete: new Set() };
  playing = false;
  playBtn.textContent = 'Play';
  last = { eor: undefined, windowBytes: 0, window: '', decodeMs: 0, error: '' };
  titleEl.textContent = item.path;
  metaEl.textContent = '';
  movieBar.hidden = item.frames <= 1;
  slider.max = String(Math.max(0, item.frames - 1));
  slider.value = '0';
  frameLabel.textContent = `1 / ${item.frames}`;
  for (const li of listEl.querySelectorAll('li')) li.classList.toggle('open', li.dataset['path'] === item.path);
  ctx.fillStyle = '#111';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  setStatus('loading');
  showOverlay();
  void loop();
}

async function loadList(): Promise<void> {
  const res = await fetch('api/list', { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`listing: HTTP ${res.status}`);
  const listing = (await res.json()) as { images: Listed[]; unreadable: number; truncated: boolean };
  listEl.textContent = '';
  for (const item of listing.images) {
    const li = document.createElement('li');
    li.dataset['path'] = item.path;
    li.dataset['kind'] = item.kind;
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = item.path;
    const info = document.createElement('span');
    info.textContent = `${item.kind === 'movie' ? `${item.frames} frames, ` : ''}${item.width}x${item.height}, ${(item.bytes / 1024).toFixed(0)} KiB`;
    b.addEventListener('click', () => openItem(item));
    li.append(b, info);
    listEl.append(li);
  }
  if (listing.images.length === 0) listEl.textContent = 'No JPEG 2000 files under the root.';
  setStatus('idle');
}

// --- interaction: wheel and buttons zoom, drag pans

canvas.addEventListener(
  'wheel',
  (e) => {
    if (!current) return;
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    const px = ((e.clientX - r.left) * canvas.width) / r.width;
    const py = ((e.clientY - r.top) * canvas.height) / r.height;
    setView(zoomView(current.view, e.deltaY < 0 ? 1 : -1, px, py, current.sizes, canvasSize));
  },
  { passive: false },
);

let drag: { x: number; y: number; v: ViewState } | undefined;
canvas.addEventListener('pointerdown', (e) => {
  if (!current) return;
  canvas.setPointerCapture(e.pointerId);
  drag = { x: e.clientX, y: e.clientY, v: current.view };
});
canvas.addEventListener('pointermove', (e) => {
  if (!drag || !current) return;
  const r = canvas.getBoundingClientRect();
  const k = canvas.width / r.width;
  const next = panView(drag.v, (e.clientX - drag.x) * k, (e.clientY - drag.y) * k, current.sizes, canvasSize);
  if (next.x !== current.view.x || next.y !== current.view.y) {
    current.view = next;
    showOverlay();
  }
});
const endDrag = (): void => {
  if (!drag) return;
  drag = undefined;
  if (current) setView(current.view);
};
canvas.addEventListener('pointerup', endDrag);
canvas.addEventListener('pointercancel', endDrag);

$('zoom-in').addEventListener('click', () => current && setView(zoomView(current.view, 1, canvasSize.w / 2, canvasSize.h / 2, current.sizes, canvasSize)));
$('zoom-out').addEventListener('click', () => current && setView(zoomView(current.view, -1, canvasSize.w / 2, canvasSize.h / 2, current.sizes, canvasSize)));
$('fit').addEventListener('click', () => current && setView(fitView(current.sizes, canvasSize)));
slider.addEventListener('input', () => setFrame(Number(slider.value)));
playBtn.addEventListener('click', () => {
  playing = !playing;
  playBtn.textContent = playing ? 'Pause' : 'Play';
  void loop();
});

loadList().catch((e: unknown) => {
  listEl.textContent = `The listing could not be loaded: ${e instanceof Error ? e.message : String(e)}`;
  setStatus('error');
});
