/**
 * The rate-distortion analyzer: one JPIP session per server, a sequence of
 * windows, each received in small `len` steps. After every response it
 * rebuilds a codestream from what the client holds (missing packets
 * empty), decodes it at the window's resolution, crops the window and
 * compares it with the full-quality decode of the same window from the
 * original file: PSNR against cumulative bytes.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parsePath, resolve as resolvePath } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cropImage, decodeWasm, mse as mseOf, psnr as psnrOf, type DecodedImage } from '../client-sim/decode.js';
import { runEnvironment } from '../client-sim/results.js';
import { readContainer } from '../jpeg2000/boxes.js';
import { readMainHeader } from '../jpeg2000/codestream.js';
import { resolutionSizeAtDiscard } from '../jpeg2000/geometry.js';
import { resolveCodestreams } from '../jpeg2000/linked.js';
import { bufferSource } from '../jpeg2000/source.js';
import { openSession, type Dialect, type WindowFields } from './dialects.js';
import { RD_SCHEMA, RD_SCHEMA_VERSION, type RdPoint, type RdResult, type RdServerRun, type RdWindowSpec, type WindowStop } from './rd-result.js';
import { summarize, type RdSummaryOptions } from './rd-summary.js';
import { fitSequence, type SequenceSpec } from './sequence.js';

export interface RdServer {
  name: string;
  /** Base URL (never `embedded` here: the caller starts that server). */
  url: string;
  dialect: Dialect;
}

export interface RdRunOptions {
  servers: RdServer[];
  /** The image as the servers name it (a path under their root). */
  target: string;
  /** The original file, to decode the full-quality reference from. */
  original: { bytes: Uint8Array; file: string };
  /** Codestream of the target (JPX); default 0. */
  stream?: number | undefined;
  sequence: SequenceSpec;
  /** What the sequence came from, for the result ('paper' or a file). */
  sequenceSource: string;
  /** len of each request, bytes. */
  step: number;
  /** Requests per window before giving up on it (default 5000). */
  maxRequestsPerWindow?: number | undefined;
  /** Per request (default 30 s). */
  timeoutMs?: number | undefined;
  summary?: RdSummaryOptions | undefined;
  /** Called after every measurement (progress). */
  onPoint?: ((p: RdPoint) => void) | undefined;
}

export const RD_DEFAULTS = { step: 2048, maxRequestsPerWindow: 5000, timeoutMs: 30_000 } as const;

/** The original's codestream `stream` (for a linked JPX, read from the file it links to) and what the analyzer needs of it. */
export function originalCodestream(bytes: Uint8Array, file: string, stream = 0): { codestream: Uint8Array; levels: number; siz: ReturnType<typeof readMainHeader>['siz'] } {
  const refs = readContainer(bytes, { file }).codestreams;
  const ref = refs[stream];
  if (!ref) throw new RangeError(`${file} holds ${refs.length} codestream(s); there is no codestream ${stream}`);
  let codestream: Uint8Array;
  if (ref.kind === 'fragment' && ref.dataReference !== 0) {
    // A linked JPX: the codestream is in the file its url box names (relative to the JPX).
    const abs = resolvePath(file);
    const loc = resolveCodestreams([ref], { root: parsePath(abs).root, containingFile: abs })[0]!;
    codestream = new Uint8Array(readFileSync(loc.path)).subarray(loc.offset, loc.offset + loc.length);
  } else {
    codestream = bytes.subarray(ref.offset, ref.offset + ref.length);
  }
  const main = readMainHeader(bufferSource(codestream, file));
  const levels = Math.min(main.cod.coding.levels, ...main.coc.filter((c) => c !== undefined).map((c) => c.levels));
  return { codestream, levels, siz: main.siz };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs the sequence against every server in turn. Errors of one server are recorded in its run, not thrown. */
export async function runRd(opts: RdRunOptions): Promise<RdResult> {
  const step = opts.step;
  if (!Number.isSafeInteger(step) || step < 1) throw new RangeError(`step ${step}: a byte count >= 1`);
  if (opts.servers.length === 0) throw new RangeError('no server to measure');
  const names = new Set(opts.servers.map((s) => s.name));
  if (names.size !== opts.servers.length) throw new RangeError('two servers have the same name');
  // Checked before anything is measured: summarize() would refuse it only after the whole run.
  const reference = opts.summary?.reference;
  if (reference !== undefined && !names.has(reference)) throw new RangeError(`reference server '${reference}' is not among ${[...names].join(', ')}`);
  const maxRequests = opts.maxRequestsPerWindow ?? RD_DEFAULTS.maxRequestsPerWindow;
  const timeoutMs = opts.timeoutMs ?? RD_DEFAULTS.timeoutMs;
  const stream = opts.stream ?? 0;

  const orig = originalCodestream(opts.original.bytes, opts.original.file, stream);
  const frame = (d: number): { width: number; height: number } => resolutionSizeAtDiscard(orig.siz, d);
  const fitted = fitSequence(opts.sequence, frame, orig.levels);

  // Full-quality references, one decode per resolution.
  const full = new Map<number, DecodedImage>();
  const refs: DecodedImage[] = [];
  const windows: RdWindowSpec[] = [];
  for (const w of fitted) {
    let img = full.get(w.r);
    if (!img) full.set(w.r, (img = await decodeWasm(orig.codestream, { reduce: w.r })));
    const ref = cropImage(img, { x: w.x, y: w.y, width: w.w, height: w.h });
    refs.push(ref);
    windows.push({ ...w, frame: frame(w.r), samples: ref.samples.length });
  }
  const first = full.values().next().value!;

  const points: RdPoint[] = [];
  const runs: RdServerRun[] = [];
  for (const server of opts.servers) {
    const session = openSession(server.dialect, server.url, opts.target, timeoutMs);
    const run: RdServerRun = { name: server.name, url: server.url, dialect: server.dialect, windows: [] };
    runs.push(run);
    let total = 0;
    try {
      for (let wi = 0; wi < windows.length; wi++) {
        const w = windows[wi]!;
        const fields: WindowFields = {
          fsiz: { fx: w.frame.width, fy: w.frame.height, round: 'round-down' },
          roff: { x: w.x, y: w.y },
          rsiz: { w: w.w, h: w.h },
          len: step,
          ...(stream !== 0 ? { stream: [{ from: stream, to: stream, step: 1 }] } : {}),
        };
        let wBytes = 0;
        let stop: WindowStop = 'request-limit';
        let quality: { psnr: number | null; mse: number | null } = { psnr: null, mse: null };
        let request = 0;
        try {
          while (request < maxRequests) {
            request++;
            const t0 = performance.now();
            const r = await session.send(fields);
            const ms = performance.now() - t0;
            if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${(r.text ?? '').trim().slice(0, 200)}`);
            total += r.bodyLength;
            wBytes += r.bodyLength;
            const progress = r.messages !== undefined ? r.messages > 0 : r.items.some((i) => i.kind === 'message');
            if (progress || request === 1) quality = await measure(session.client, stream, w, refs[wi]!);
            const p: RdPoint = { server: server.name, window: wi, request, bytes: total, windowBytes: wBytes, responseBytes: r.bodyLength, psnr: quality.psnr, mse: quality.mse, eor: r.eor ?? null, ms: Math.round(ms * 1000) / 1000 };
            points.push(p);
            opts.onPoint?.(p);
            if (session.windowDone(r)) {
              stop = 'window-done';
              break;
            }
            if (!progress) {
              stop = 'no-progress';
              break;
            }
          }
        } catch (e) {
          run.windows.push({ window: wi, requests: request, bytes: wBytes, stop: 'error', psnr: quality.psnr });
          throw e;
        }
        run.windows.push({ window: wi, requests: request, bytes: wBytes, stop, psnr: quality.psnr });
      }
    } catch (e) {
      run.error = message(e);
    } finally {
      await session.close();
    }
  }

  const summary = summarize({ windows, servers: runs, points, bitDepth: first.bitDepth }, opts.summary);
  return {
    schema: RD_SCHEMA,
    schemaVersion: RD_SCHEMA_VERSION,
    env: runEnvironment(),
    createdAt: new Date().toISOString(),
    target: opts.target,
    stream,
    original: {
      file: opts.original.file,
      sha256: createHash('sha256').update(opts.original.bytes).digest('hex'),
      width: frame(0).width,
      height: frame(0).height,
      components: first.components,
      bitDepth: first.bitDepth,
      levels: orig.levels,
    },
    step,
    sequence: { source: opts.sequenceSource, windows },
    servers: runs,
    points,
    summary,
  };
}

/** PSNR and MSE of the client's reconstruction of window `w`; nulls when it holds nothing decodable yet. */
async function measure(
  client: { reassemble(cs: number): { codestream: Uint8Array } },
  stream: number,
  w: RdWindowSpec,
  ref: DecodedImage,
): Promise<{ psnr: number | null; mse: number | null }> {
  let img: DecodedImage;
  try {
    const rebuilt = client.reassemble(stream);
    img = await decodeWasm(rebuilt.codestream, { reduce: w.r });
  } catch {
    // No complete main header yet, or a reconstruction the decoder refuses: no picture to compare.
    return { psnr: null, mse: null };
  }
  const got = cropImage(img, { x: w.x, y: w.y, width: w.w, height: w.h });
  return { psnr: psnrOf(got, ref), mse: mseOf(got, ref) };
}
