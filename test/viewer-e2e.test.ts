import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium as playwright, type Browser, type Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cropImage, decodeWasm, psnr, type DecodedImage } from '../client-sim/decode.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import type { Listing } from '../server/viewer.js';
import { buildViewer } from '../viewer/build.mjs';
import { FIXTURES } from './helpers.js';

/**
 * The viewer end to end, in Debian's headless Chromium driven by
 * playwright-core, against our server on 127.0.0.1 serving fixtures/small:
 * open the page, pick a movie, zoom into a corner, wait until the server
 * says the window is complete, and compare the canvas with the same window
 * decoded in Node from the original frame file (WASM OpenJPEG, cropped);
 * check the frame's FITS keywords are shown, that the console stayed
 * clean and that nothing but our server was asked for anything. Then the
 * server restarts (sessions lost, port closed for a moment) and a pan must
 * still complete: the page retries and opens a new channel. Screenshots go
 * to a temporary directory (printed). Skipped, with a note, without
 * Chromium; `$CHROMIUM` names another binary.
 */

/**
 * The few DOM names the callbacks below use inside the page (this file is
 * type-checked without the DOM library; the callbacks run in the browser).
 */
interface PageDocument {
  body: { dataset: Record<string, string | undefined> };
  getElementById(id: string): { textContent: string | null; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } } | null;
}
type PageGlobals = { document: PageDocument };

const SMALL = resolve(FIXTURES, '..', '..', 'fixtures', 'small');
/** Lowest PSNR (dB) accepted between the canvas and the reference window (identical decodes give Infinity). */
const MIN_PSNR = 45;

function findChromium(): string | undefined {
  for (const p of [process.env['CHROMIUM'], '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (!p) continue;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not there
    }
  }
  return undefined;
}

const executablePath = findChromium();
const test = suite('viewer in headless Chromium');

let srv: JpipServer | undefined;
let browser: Browser | undefined;
let page: Page;
let origin = '';
let port = 0;
let shots = '';
const consoleErrors: string[] = [];
const foreign: string[] = [];
/** Console errors that are only the browser reporting a failed load (expected while the server restarts). */
let tolerateLoadErrors = false;

test.before(async () => {
  if (!executablePath) return;
  await buildViewer();
  srv = createJpipServer({ root: SMALL, port: 0, logLevel: 'error' });
  origin = new URL(await srv.listen()).origin;
  port = Number(new URL(origin).port);
  shots = mkdtempSync(join(tmpdir(), 'viewer-shots-'));
  browser = await playwright.launch({
    executablePath,
    headless: true,
    timeout: 20_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions'],
  });
  const context = await browser.newContext({ viewport: { width: 1300, height: 760 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    if (tolerateLoadErrors && /Failed to load resource/.test(m.text())) return;
    consoleErrors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(`${origin}/`) && !u.startsWith('data:')) foreign.push(u);
  });
});

test.after(async () => {
  await browser?.close().catch(() => {});
  await srv?.close();
});

/** The canvas's pixels in the window's rectangle, as an 8-bit gray image (R channel; the page draws gray as R=G=B). */
async function canvasGray(w: number, h: number): Promise<DecodedImage & { grayOk: boolean }> {
  const r = await page.evaluate(
    ([w, h]) => {
      const doc = (globalThis as unknown as PageGlobals).document;
      const d = doc.getElementById('view')!.getContext('2d').getImageData(0, 0, w, h).data;
      let s = '';
      let grayOk = true;
      for (let i = 0; i < w * h; i++) {
        s += String.fromCharCode(d[i * 4]!);
        if (d[i * 4] !== d[i * 4 + 1] || d[i * 4] !== d[i * 4 + 2] || d[i * 4 + 3] !== 255) grayOk = false;
      }
      return { b64: btoa(s), grayOk };
    },
    [w, h] as const,
  );
  return { width: w, height: h, components: 1, bitDepth: 8, signed: false, samples: new Uint8Array(Buffer.from(r.b64, 'base64')), grayOk: r.grayOk };
}

function parseWindow(s: string): { stream: number; fsiz: number[]; roff: number[]; rsiz: number[] } {
  const m = /^stream=(\d+) fsiz=(\d+),(\d+) roff=(\d+),(\d+) rsiz=(\d+),(\d+)$/.exec(s);
  if (!m) throw new Error(`window ${JSON.stringify(s)}`);
  const n = m.slice(1).map(Number);
  return { stream: n[0]!, fsiz: [n[1]!, n[2]!], roff: [n[3]!, n[4]!], rsiz: [n[5]!, n[6]!] };
}

async function waitComplete(notWindow?: string): Promise<string> {
  await page.waitForFunction(
    (prev) => {
      const ds = (globalThis as unknown as PageGlobals).document.body.dataset;
      return ds['status'] === 'complete' && (prev === null || ds['window'] !== prev);
    },
    notWindow ?? null,
    { timeout: 15_000, polling: 50 },
  );
  return (await page.evaluate(() => (globalThis as unknown as PageGlobals).document.body.dataset['window'])) ?? '';
}

/** Compares the canvas with the window decoded in Node from the original frame file. */
async function compareWithNode(listing: Listing, windowText: string, label: string): Promise<number> {
  const w = parseWindow(windowText);
  const movie = listing.images.find((i) => i.path === 'movie-00.jpx')!;
  const frameFile = movie.frameFiles![w.stream]!;
  const d = Math.round(Math.log2(1024 / w.fsiz[0]!));
  const full = await decodeWasm(new Uint8Array(readFileSync(join(SMALL, frameFile))), { reduce: d });
  const ref = cropImage(full, { x: w.roff[0]!, y: w.roff[1]!, width: w.rsiz[0]!, height: w.rsiz[1]! });
  const got = await canvasGray(w.rsiz[0]!, w.rsiz[1]!);
  assert.ok(got.grayOk, `${label}: the canvas is gray and opaque`);
  const p = psnr(ref, got);
  console.log(`  viewer e2e: ${label}: ${windowText} -> PSNR ${p === Infinity ? 'Infinity (identical)' : `${p.toFixed(2)} dB`}`);
  assert.ok(p >= MIN_PSNR, `${label}: PSNR ${p} dB below ${MIN_PSNR}`);
  return p;
}

test('open a movie, zoom into a corner, the canvas matches a decode made in Node', async () => {
  if (!executablePath) {
    console.log('  viewer e2e: SKIPPED, no Chromium (apt-get install chromium, or set $CHROMIUM)');
    return;
  }
  const t0 = Date.now();
  const listing = (await (await fetch(`${origin}/viewer/api/list`, { signal: AbortSignal.timeout(5000) })).json()) as Listing;
  // 16 KiB per request: every window takes several responses (EOR 4, byte limit), each decoded and drawn.
  await page.goto(`${origin}/viewer/?len=16384`, { waitUntil: 'load' });
  await page.locator('#list li[data-path="movie-00.jpx"] button').click();
  const first = await waitComplete();
  assert.match(first, /^stream=0 fsiz=512,512 roff=0,0 rsiz=512,512$/, 'the whole frame at a low resolution first');
  await compareWithNode(listing, first, 'whole frame');
  await page.waitForFunction(() => /SIMPLE/.test((globalThis as unknown as PageGlobals).document.getElementById('meta')?.textContent ?? ''), null, { timeout: 10_000 });
  const meta = await page.locator('#meta').textContent();
  assert.match(meta ?? '', /<TELESCOP>SDO\/AIA<\/TELESCOP>/, 'the FITS keywords of the frame');
  await page.screenshot({ path: join(shots, '1-whole-frame.png') });

  // Zoom in with the wheel at the bottom-right corner of the canvas.
  const box = (await page.locator('#view').boundingBox())!;
  await page.mouse.move(box.x + box.width - 1, box.y + box.height - 1);
  await page.mouse.wheel(0, -120);
  const zoomed = await waitComplete(first);
  const zw = parseWindow(zoomed);
  assert.equal(zw.fsiz, [1024, 1024], 'full resolution');
  assert.ok(zw.roff[0]! >= 500 && zw.roff[1]! >= 500, `the bottom-right corner: ${zoomed}`);
  const overlay = await page.locator('#overlay').textContent();
  assert.match(overlay ?? '', /EOR\s+[12] \((image|window) done\)/, overlay ?? '');
  assert.match(overlay ?? '', /bytes\s+[\d,]+ in \d+ requests/);
  const rounds = /in (\d+) requests/.exec(overlay ?? '');
  assert.ok(rounds && Number(rounds[1]) >= 4, `windows were fetched over several byte-limited responses: ${overlay}`);
  await compareWithNode(listing, zoomed, 'bottom-right corner at full resolution');
  await page.screenshot({ path: join(shots, '2-zoomed-corner.png') });

  // Another frame with the slider: the same corner of frame 5.
  await page.locator('#frame').fill('5');
  const frame5 = await waitComplete(zoomed);
  assert.match(frame5, /^stream=5 /);
  await compareWithNode(listing, frame5, 'frame 5');
  await page.screenshot({ path: join(shots, '3-frame-5.png') });

  assert.equal(consoleErrors, [], 'no console errors or warnings');
  assert.equal(foreign, [], 'no request to any other host');
  console.log(`  viewer e2e: first part ${Date.now() - t0} ms; screenshots: ${join(shots, '1-whole-frame.png')}, ${join(shots, '2-zoomed-corner.png')}, ${join(shots, '3-frame-5.png')}`);
});

test('the page recovers when the server restarts (retry, then a new channel)', async () => {
  if (!executablePath) return;
  const listing = (await (await fetch(`${origin}/viewer/api/list`, { signal: AbortSignal.timeout(5000) })).json()) as Listing;
  const before = (await page.evaluate(() => (globalThis as unknown as PageGlobals).document.body.dataset['window'])) ?? '';
  tolerateLoadErrors = true;
  await srv!.close();
  // Drag while the server is down: the page's requests fail and are retried.
  const box = (await page.locator('#view').boundingBox())!;
  await page.mouse.move(box.x + 300, box.y + 300);
  await page.mouse.down();
  await page.mouse.move(box.x + 400, box.y + 380, { steps: 4 });
  await page.mouse.up();
  await new Promise((r) => setTimeout(r, 400));
  srv = createJpipServer({ root: SMALL, port, logLevel: 'error' });
  await srv.listen();
  const after = await waitComplete(before);
  const w = parseWindow(after);
  assert.equal(w.stream, 5);
  assert.ok(w.roff[0]! < parseWindow(before).roff[0]!, `panned left: ${before} -> ${after}`);
  await compareWithNode(listing, after, 'after the restart');
  assert.ok((srv.stats.errors[404] ?? 0) >= 1, 'the old channel was refused (404) by the new server');
  // The server counts a response when it closes, a moment after the page has its last byte.
  for (let i = 0; i < 40 && srv.stats.responses < 1; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(srv.stats.responses >= 1, 'and a new channel served the window');
  await page.screenshot({ path: join(shots, '4-after-restart.png') });
  assert.equal(consoleErrors, [], 'no console errors beyond failed loads while the server was down');
  assert.equal(foreign, [], 'no request to any other host');
  console.log(`  viewer e2e: screenshot ${join(shots, '4-after-restart.png')}`);
});

test.run();
