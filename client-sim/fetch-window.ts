import { writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { EOR } from '../jpip/constants.js';
import type { RoundDirection } from '../jpip/request.js';
import { resolveView, type View } from '../jpip/window.js';
import { JpipClient, OPEN_FIELDS, type Transport } from './client.js';
import { cropImage, decodeOpj, decodeWasm, type DecodedImage } from './decode.js';
import { dialectByName } from './dialects.js';
import { UndiciTransport } from './node-transport.js';
import { mainHeaderFacts, one } from './patterns.js';

/**
 * `jpip-bench fetch`: one window of one image, fetched to completion over a
 * JPIP session (repeating the request until the server says the window is
 * done), rebuilt into a codestream, and saved as that codestream (.j2k) or
 * decoded and cropped to the window (.png).
 */

export interface FetchWindowOptions {
  /** `http://host:port/path/to/image.jpx` (`jpip://` is taken as http, port 80 by default). */
  url: string;
  fsiz: { w: number; h: number };
  round?: RoundDirection;
  roff?: { x: number; y: number } | undefined;
  rsiz?: { w: number; h: number } | undefined;
  /** Codestream (frame) of the target (default 0). */
  stream?: number;
  /** Bytes per request (default 2097152). */
  len?: number;
  /** Most requests before giving up (default 1000). */
  maxRequests?: number;
  timeoutMs?: number;
  dialect?: string;
  transport?: Transport;
}

export interface FetchedWindow {
  /** The rebuilt codestream (the whole image; packets outside the window are empty). */
  codestream: Uint8Array;
  stream: number;
  /** The window as the server resolved it: discard levels, frame size, region in frame coordinates. */
  view: View;
  requests: number;
  bytes: number;
  /** The server said the window is done (EOR 1 or 2). */
  complete: boolean;
  packets: number;
  emptyPackets: number;
}

/** Splits a JPIP URL into the server's base URL and the target path. */
export function splitJpipUrl(url: string): { base: string; target: string } {
  let u: URL;
  try {
    u = new URL(url.replace(/^jpip:\/\//i, 'http://'));
  } catch {
    throw new RangeError(`not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:') throw new RangeError(`only http:// and jpip:// URLs are supported, got ${u.protocol}//`);
  const target = decodeURIComponent(u.pathname.replace(/^\/+/, ''));
  if (target === '') throw new RangeError(`${url}: the URL names no image (its path is empty)`);
  return { base: u.origin, target };
}

/** Fetches one window to completion and rebuilds its codestream. */
export async function fetchWindow(o: FetchWindowOptions): Promise<FetchedWindow> {
  const { base, target } = splitJpipUrl(o.url);
  const stream = o.stream ?? 0;
  const len = o.len ?? 2097152;
  const maxRequests = o.maxRequests ?? 1000;
  const client = new JpipClient(base, {
    transport: o.transport ?? new UndiciTransport(),
    dialect: dialectByName(o.dialect ?? 'ours'),
    timeoutMs: o.timeoutMs ?? 30_000,
    keepItems: false,
  });
  const fields = {
    stream: one(stream),
    fsiz: { fx: o.fsiz.w, fy: o.fsiz.h, round: o.round ?? 'round-down' },
    ...(o.roff ? { roff: o.roff } : {}),
    ...(o.rsiz ? { rsiz: o.rsiz } : {}),
    len,
  };
  try {
    let requests = 1;
    let bytes = 0;
    let r = await client.requestOk({ ...OPEN_FIELDS, ...fields }, target);
    bytes += r.bodyLength;
    while (r.eor !== EOR.IMAGE_DONE && r.eor !== EOR.WINDOW_DONE && requests < maxRequests) {
      r = await client.requestOk(fields);
      requests++;
      bytes += r.bodyLength;
    }
    const complete = r.eor === EOR.IMAGE_DONE || r.eor === EOR.WINDOW_DONE;
    const facts = mainHeaderFacts(client.store, stream);
    if (!facts) throw new Error(`${target}: after ${requests} requests the main header of codestream ${stream} is still incomplete`);
    const view = resolveView(facts.siz, facts.levels, fields)!;
    const rebuilt = client.reassemble(stream);
    return { codestream: rebuilt.codestream, stream, view, requests, bytes, complete, packets: rebuilt.packets, emptyPackets: rebuilt.emptyPackets };
  } finally {
    await client.dispose().catch(() => {});
  }
}

/** The window's pixels: the rebuilt codestream decoded at the view's level, cropped to its region. */
export async function decodeWindow(w: FetchedWindow, decoder: 'wasm' | 'opj' = 'wasm'): Promise<DecodedImage> {
  const opts = { reduce: w.view.discard };
  const img = decoder === 'opj' ? decodeOpj(w.codestream, opts) : await decodeWasm(w.codestream, opts);
  return cropImage(img, { x: w.view.roff.x, y: w.view.roff.y, width: w.view.rsiz.w, height: w.view.rsiz.h });
}

/** Writes gray or RGB samples (8 or 16 bits, unsigned) as a PNG with sharp. */
export async function writePng(file: string, img: DecodedImage): Promise<void> {
  if (img.signed || img.bitDepth > 16) throw new RangeError(`PNG holds unsigned samples of up to 16 bits; this image has ${img.signed ? 'signed ' : ''}${img.bitDepth}-bit samples: save it as .j2k`);
  if (img.components !== 1 && img.components !== 3) throw new RangeError(`PNG output takes 1 or 3 components, the image has ${img.components}: save it as .j2k`);
  if (img.width === 0 || img.height === 0) throw new RangeError('the window is empty: nothing to write');
  const { default: sharp } = await import('sharp');
  const wide = img.bitDepth > 8;
  // sharp takes the sample depth from the typed array: Uint16Array = 16 bits.
  const input = wide ? Uint16Array.from(img.samples) : Uint8Array.from(img.samples);
  const space = img.components === 1 ? (wide ? 'grey16' : 'b-w') : wide ? 'rgb16' : 'srgb';
  await sharp(input, { raw: { width: img.width, height: img.height, channels: img.components as 1 | 3 } })
    .toColourspace(space)
    .png()
    .toFile(file);
}

/** Saves a fetched window: `.j2k`/`.j2c` the rebuilt codestream, `.png` the decoded window. */
export async function saveWindow(file: string, w: FetchedWindow, decoder: 'wasm' | 'opj' = 'wasm'): Promise<{ format: 'j2k' | 'png'; width: number; height: number }> {
  const ext = extname(file).toLowerCase();
  if (ext === '.j2k' || ext === '.j2c') {
    writeFileSync(file, w.codestream);
    return { format: 'j2k', width: w.view.rsiz.w, height: w.view.rsiz.h };
  }
  if (ext === '.png') {
    const img = await decodeWindow(w, decoder);
    await writePng(file, img);
    return { format: 'png', width: img.width, height: img.height };
  }
  throw new RangeError(`${file}: the output must end in .png (decoded window) or .j2k (codestream)`);
}
