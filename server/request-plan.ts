import { BIN_CLASS, STREAM_TYPE, type StreamType } from '../jpip/constants.js';
import type { CacheModel } from '../jpip/cache-model.js';
import { precinctBin } from '../jpip/databin-map.js';
import { JpipError } from '../jpip/errors.js';
import type { JpipRequest, Range, SampledRange } from '../jpip/request.js';
import { decomposePrecinctBinId } from '../jpeg2000/geometry.js';
import type { ImageEntry } from './images.js';
import type { ResponseInput } from './responder.js';

/**
 * From a parsed request to what the responder needs: the codestreams (stream
 * or context, bounded by what the file holds), the return type, the byte
 * budget, and the client's `model=` applied to the session's cache model.
 */

/** Most data-bins one request's model= may name (each costs a cache-model entry). */
export const MAX_MODEL_STEPS = 20_000;

/** Most codestreams one request may name (a movie of 1000 frames asks for 15 at a time). */
export const MAX_CODESTREAMS_PER_REQUEST = 4096;

/** Expands sampled ranges against `count` items; ranges past the end are cut (reported by the caller). */
export function expandRanges(ranges: readonly SampledRange[] | readonly Range[], count: number, field: string): { list: number[]; clipped: boolean } {
  const list: number[] = [];
  let clipped = false;
  for (const r of ranges) {
    const step = 'step' in r ? r.step : 1;
    if (r.to === undefined && r.from >= count) {
      // Open-ended from past the end: nothing (not the last item counted down to).
      clipped = true;
      continue;
    }
    const to = r.to ?? count - 1;
    const down = to < r.from;
    const hi = down ? r.from : to;
    if (hi >= count) clipped = true;
    if (down) {
      let i = r.from;
      if (i >= count) i -= Math.ceil((i - (count - 1)) / step) * step;
      for (; i >= to && i >= 0; i -= step) {
        list.push(i);
        if (list.length > MAX_CODESTREAMS_PER_REQUEST) throw new JpipError('BAD_FIELD', `more than ${MAX_CODESTREAMS_PER_REQUEST} items`, field);
      }
    } else {
      for (let i = r.from; i <= Math.min(to, count - 1); i += step) {
        list.push(i);
        if (list.length > MAX_CODESTREAMS_PER_REQUEST) throw new JpipError('BAD_FIELD', `more than ${MAX_CODESTREAMS_PER_REQUEST} items`, field);
      }
    }
  }
  return { list: [...new Set(list)], clipped };
}

export interface PlannedRequest {
  input: ResponseInput;
  /** The codestream list was cut to what the file holds (report JPIP-stream). */
  streamClipped: boolean;
  /** `context` was used: the JPIP-context reply. */
  context: string | undefined;
}

export interface PlanDefaults {
  /** Byte budget of a request without len. */
  defaultLen: number;
  /** Largest budget honoured (a bigger len is served up to this, and says so with EOR 4). */
  maxLen: number;
}

export function chooseType(req: JpipRequest): StreamType {
  if (!req.type) return STREAM_TYPE.JPP;
  for (const t of req.type) if (t.name === STREAM_TYPE.JPP || t.name === STREAM_TYPE.JPT) return t.name;
  throw new JpipError('UNIMPLEMENTED', 'none of the requested return types is served (jpp-stream, jpt-stream)', 'type');
}

export function planRequest(req: JpipRequest, entry: ImageEntry, defaults: PlanDefaults): PlannedRequest {
  const count = entry.codestreamCount;
  let codestreams = [0];
  let streamClipped = false;
  let context: string | undefined;
  if (req.stream && req.context) throw new JpipError('BAD_REQUEST', 'give stream or context, not both', 'context');
  if (req.stream) {
    const e = expandRanges(req.stream, count, 'stream');
    codestreams = e.list;
    streamClipped = e.clipped;
  } else if (req.context) {
    // In our files compositing layer i is codestream i.
    const all = req.context.flatMap((c) => c.layers);
    const e = expandRanges(all, count, 'context');
    codestreams = e.list;
    streamClipped = e.clipped;
    context = req.context.map((c) => `jpxl<${c.layers.map(fmtRange).join(',')}>=${e.list.join(',')}`).join(';');
  }
  if (codestreams.length === 0) {
    throw new JpipError('BAD_FIELD', `no requested codestream exists (the target has ${count})`, req.context ? 'context' : 'stream');
  }
  let comps: number[] | undefined;
  if (req.comps) comps = expandRanges(req.comps.map((r) => ({ ...r, step: 1 })), 16384, 'comps').list;
  const wanted = req.len ?? defaults.defaultLen;
  const len = Math.min(wanted, defaults.maxLen);
  return {
    input: {
      type: chooseType(req),
      codestreams,
      view: { fsiz: req.fsiz, roff: req.roff, rsiz: req.rsiz },
      layers: req.layers,
      comps,
      len,
      capped: wanted > len,
      metadataOnly: req.metareq?.metadataOnly ?? false,
    },
    streamClipped,
    context,
  };
}

function fmtRange(r: SampledRange): string {
  const base = r.to === undefined ? `${r.from}-` : r.to === r.from ? `${r.from}` : `${r.from}-${r.to}`;
  return r.step !== 1 ? `${base}:${r.step}` : base;
}

/** Applies the client's `model=` to the cache model (additive: it holds that; subtractive: it does not). */
export function applyModel(req: JpipRequest, entry: ImageEntry, model: CacheModel, requested: readonly number[], maxSteps = MAX_MODEL_STEPS): void {
  let steps = 0;
  for (const d of req.model ?? []) {
    const streams = d.codestreams ? expandRanges(d.codestreams, entry.codestreamCount, 'model').list : requested;
    // Bounded work per request: descriptors x codestreams (x tiles for H*) is at most maxSteps.
    steps += streams.length;
    if (steps > maxSteps) throw new JpipError('BAD_FIELD', `the cache model names more than ${maxSteps} data-bins; send it in parts`, 'model');
    for (const cs of streams) {
      // The codestream is opened only where the descriptor needs its structure (H*, :L): a linked
      // movie's frames are other files.
      const needsLayout = (d.bin.kind === 'tile' && d.bin.id === '*') || (d.limit !== undefined && 'layers' in d.limit);
      const h = needsLayout ? entry.codestream(cs) : undefined;
      const numTiles = h ? h.layout.tiles.length : 0;
      if (d.bin.kind === 'tile' && d.bin.id === '*') {
        steps += numTiles;
        if (steps > maxSteps) throw new JpipError('BAD_FIELD', `the cache model names more than ${maxSteps} data-bins; send it in parts`, 'model');
      }
      let targets: { classId: number; binId: number }[];
      switch (d.bin.kind) {
        case 'main':
          targets = [{ classId: BIN_CLASS.MAIN_HEADER, binId: 0 }];
          break;
        case 'tile':
          targets = d.bin.id === '*' ? h!.layout.tiles.map((_, t) => ({ classId: BIN_CLASS.TILE_HEADER, binId: t })) : [{ classId: BIN_CLASS.TILE_HEADER, binId: d.bin.id }];
          break;
        case 'tile-data':
          targets = [{ classId: BIN_CLASS.TILE, binId: d.bin.id }];
          break;
        case 'metadata':
          targets = [{ classId: BIN_CLASS.METADATA, binId: d.bin.id }];
          break;
        case 'precinct':
          targets = [{ classId: BIN_CLASS.PRECINCT, binId: d.bin.id }];
          break;
      }
      for (const tgt of targets) {
        const csn = tgt.classId === BIN_CLASS.METADATA ? 0 : cs;
        let bytes: number | undefined;
        if (d.limit && 'bytes' in d.limit) bytes = d.limit.bytes;
        else if (d.limit && 'layers' in d.limit) {
          if (tgt.classId !== BIN_CLASS.PRECINCT) throw new JpipError('BAD_FIELD', 'the layer form (:L) applies to precinct bins only', 'model');
          const nc = h!.layout.main.siz.components.length;
          let ref;
          try {
            ref = decomposePrecinctBinId(tgt.binId, nc, numTiles);
            const bin = precinctBin(h!.index, ref.t, ref.c, ref.s);
            const L = Math.min(d.limit.layers, bin.layerEnds.length);
            bytes = L === 0 ? 0 : bin.layerEnds[L - 1]!;
            if (L === bin.layerEnds.length && !d.subtract) bytes = undefined;
          } catch (e) {
            if (e instanceof JpipError) throw e;
            throw new JpipError('BAD_FIELD', `precinct ${tgt.binId} does not exist in codestream ${cs}`, 'model');
          }
        }
        if (d.subtract) model.remove(csn, tgt.classId, tgt.binId, bytes ?? 0);
        else model.add(csn, tgt.classId, tgt.binId, bytes ?? 0, bytes === undefined);
      }
    }
  }
}
