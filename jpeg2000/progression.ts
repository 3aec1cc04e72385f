import { J2K_ERROR, J2kError } from './errors.js';
import type { TileGeometry } from './geometry.js';
import { PROGRESSION, type PocEntry, type TileCoding } from './markers.js';

/**
 * The order of the packets of a tile (ISO/IEC 15444-1 B.12), for the five
 * progression orders and for progression order changes (POC).
 *
 * Layer-resolution orders (LRCP, RLCP) are plain nested loops. The
 * position-driven orders (RPCL, PCRL, CPRL) visit, in the standard, every
 * reference-grid point (x, y) of the tile and emit the precinct of (c, r)
 * whose position condition holds there. Each precinct is reached at exactly
 * one point (`TileGeometry.precinctPositionX/Y`), and within one (c, r) those
 * points grow with the raster index, so the standard's loops are a k-way
 * merge of the (c, r) precinct rasters on the key (y, x, then the inner
 * loop's variables). That is what is done here, with a binary heap on typed
 * arrays: no per-packet allocation, O(packets + precincts · log streams).
 */

/** Called once per packet in sequence order. */
export type PacketVisitor = (layer: number, resolution: number, component: number, precinct: number) => void;

/** Largest number of packets of one tile accepted. */
export const MAX_TILE_PACKETS = 2 ** 28;

/** The progressions that build the tile's sequence: its POC entries, or one entry for the whole tile in the COD order. */
export function effectiveProgressions(geometry: TileGeometry, coding: TileCoding): PocEntry[] {
  if (coding.poc.length > 0) return coding.poc;
  return [
    {
      resStart: 0,
      compStart: 0,
      layerEnd: coding.layers,
      resEnd: geometry.maxResolutions,
      compEnd: geometry.numComponents,
      progression: coding.progression,
    },
  ];
}

/** layers × precincts of the tile, after checking both are acceptable. */
function expectedPackets(geometry: TileGeometry, coding: TileCoding): number {
  const layers = coding.layers;
  if (!Number.isInteger(layers) || layers < 1 || layers > 65535) throw new J2kError(J2K_ERROR.BAD_VALUE, `${layers} quality layers`);
  const expected = layers * geometry.totalPrecincts;
  if (expected > MAX_TILE_PACKETS) {
    throw new J2kError(J2K_ERROR.UNSUPPORTED, `tile ${geometry.tile} has ${expected} packets (at most ${MAX_TILE_PACKETS})`);
  }
  return expected;
}

/**
 * Visits the packets of the tile in codestream order and returns how many
 * there were. With POC, packets that no entry covers are not visited.
 */
export function forEachPacket(geometry: TileGeometry, coding: TileCoding, visit: PacketVisitor): number {
  expectedPackets(geometry, coding);
  const layers = coding.layers;
  const nc = geometry.numComponents;
  const R = geometry.maxResolutions;
  const g = geometry;
  // Next layer to emit, per tile-wide precinct number (componentBase(c) + s).
  const next = new Uint16Array(geometry.totalPrecincts);
  const levels = new Uint8Array(nc);
  for (let c = 0; c < nc; c++) levels[c] = g.levels(c);
  let count = 0;

  // Streams for the position-driven orders: one per (c, r) with precincts.
  const S = nc * R;
  const sC = new Int32Array(S);
  const sR = new Int32Array(S);
  const sNx = new Float64Array(S);
  const sNy = new Float64Array(S);
  const sPx = new Float64Array(S);
  const sPy = new Float64Array(S);
  const sBase = new Float64Array(S);
  const sX = new Float64Array(S);
  const sY = new Float64Array(S);
  const sTie = new Float64Array(S);
  const heap = new Int32Array(S);
  let heapLen = 0;

  const less = (a: number, b: number): boolean => {
    const ya = sY[a]!;
    const yb = sY[b]!;
    if (ya !== yb) return ya < yb;
    const xa = sX[a]!;
    const xb = sX[b]!;
    if (xa !== xb) return xa < xb;
    return sTie[a]! < sTie[b]!;
  };
  const siftDown = (i: number): void => {
    const id = heap[i]!;
    for (;;) {
      let m = 2 * i + 1;
      if (m >= heapLen) break;
      if (m + 1 < heapLen && less(heap[m + 1]!, heap[m]!)) m++;
      if (!less(heap[m]!, id)) break;
      heap[i] = heap[m]!;
      i = m;
    }
    heap[i] = id;
  };
  const addStream = (c: number, r: number, tie: number): void => {
    const n = g.precinctCount(c, r);
    if (n === 0) return;
    const id = heapLen++;
    sC[id] = c;
    sR[id] = r;
    sNx[id] = g.precinctsX(c, r);
    sNy[id] = g.precinctsY(c, r);
    sPx[id] = 0;
    sPy[id] = 0;
    sBase[id] = g.componentBase(c) + g.precinctsBefore(c, r);
    sX[id] = g.precinctPositionX(c, r, 0);
    sY[id] = g.precinctPositionY(c, r, 0);
    sTie[id] = tie;
    heap[id] = id;
  };
  /** Drains the heap built by addStream calls, emitting layers [next, le) of each precinct. */
  const merge = (le: number): void => {
    for (let i = (heapLen >> 1) - 1; i >= 0; i--) siftDown(i);
    while (heapLen > 0) {
      const id = heap[0]!;
      const c = sC[id]!;
      const r = sR[id]!;
      const nx = sNx[id]!;
      const px = sPx[id]!;
      const py = sPy[id]!;
      const p = py * nx + px;
      const q = sBase[id]! + p;
      let l = next[q]!;
      if (l < le) {
        for (; l < le; l++) {
          visit(l, r, c, p);
          count++;
        }
        next[q] = le;
      }
      if (px + 1 < nx) {
        sPx[id] = px + 1;
        sX[id] = g.precinctPositionX(c, r, px + 1);
      } else if (py + 1 < sNy[id]!) {
        sPx[id] = 0;
        sPy[id] = py + 1;
        sX[id] = g.precinctPositionX(c, r, 0);
        sY[id] = g.precinctPositionY(c, r, py + 1);
      } else {
        heap[0] = heap[--heapLen]!;
        if (heapLen === 0) break;
      }
      siftDown(0);
    }
  };
  /** Layer-resolution orders: emits layer l of the precincts of (c, r) that still need it. */
  const emitLayer = (l: number, r: number, c: number): void => {
    const n = g.precinctCount(c, r);
    if (n === 0) return;
    const base = g.componentBase(c) + g.precinctsBefore(c, r);
    for (let p = 0; p < n; p++) {
      const q = base + p;
      if (next[q] === l) {
        visit(l, r, c, p);
        count++;
        next[q] = l + 1;
      }
    }
  };

  for (const e of effectiveProgressions(geometry, coding)) {
    const rs = e.resStart;
    const re = Math.min(e.resEnd, R);
    const cs = e.compStart;
    const ce = Math.min(e.compEnd, nc);
    const le = Math.min(e.layerEnd, layers);
    if (rs >= re || cs >= ce || le <= 0) continue;
    switch (e.progression) {
      case PROGRESSION.LRCP:
        for (let l = 0; l < le; l++) {
          for (let r = rs; r < re; r++) {
            for (let c = cs; c < ce; c++) if (r <= levels[c]!) emitLayer(l, r, c);
          }
        }
        break;
      case PROGRESSION.RLCP:
        for (let r = rs; r < re; r++) {
          for (let l = 0; l < le; l++) {
            for (let c = cs; c < ce; c++) if (r <= levels[c]!) emitLayer(l, r, c);
          }
        }
        break;
      case PROGRESSION.RPCL:
        for (let r = rs; r < re; r++) {
          heapLen = 0;
          for (let c = cs; c < ce; c++) if (r <= levels[c]!) addStream(c, r, c);
          merge(le);
        }
        break;
      case PROGRESSION.PCRL:
        heapLen = 0;
        for (let c = cs; c < ce; c++) {
          const rend = Math.min(re, levels[c]! + 1);
          for (let r = rs; r < rend; r++) addStream(c, r, c * R + r);
        }
        merge(le);
        break;
      case PROGRESSION.CPRL:
        for (let c = cs; c < ce; c++) {
          heapLen = 0;
          const rend = Math.min(re, levels[c]! + 1);
          for (let r = rs; r < rend; r++) addStream(c, r, r);
          merge(le);
        }
        break;
      default:
        throw new J2kError(J2K_ERROR.BAD_VALUE, `unknown progression order ${String(e.progression)}`);
    }
  }
  return count;
}

/**
 * The packet sequence of one tile: for packet number n (0-based, codestream
 * order) its layer, resolution, component and precinct (raster index within
 * (c, r)), plus reverse lookups.
 */
export class PacketSequence {
  readonly geometry: TileGeometry;
  /** Number of packets in the sequence. */
  readonly count: number;
  readonly layers: number;
  /** layers × precincts of the tile: the count when every packet is present. */
  readonly expected: number;
  /** expected - count: packets that no POC entry covers (0 without POC). */
  readonly missing: number;
  readonly layer: Uint16Array;
  readonly resolution: Uint8Array;
  readonly component: Uint16Array;
  readonly precinct: Uint32Array;
  /**
   * Packet number of (c, s, l) at ((geometry.componentBase(c) + s) · layers + l),
   * -1 when the sequence does not hold that packet.
   */
  readonly packetIndex: Int32Array;
  /** For each resolution r: the last packet number of any packet with resolution <= r (-1 when none). */
  readonly lastPacketOfResolution: Int32Array;

  constructor(geometry: TileGeometry, coding: TileCoding) {
    this.geometry = geometry;
    const expected = expectedPackets(geometry, coding);
    const layers = coding.layers;
    this.layers = layers;
    this.expected = expected;
    let layer = new Uint16Array(expected);
    let resolution = new Uint8Array(expected);
    let component = new Uint16Array(expected);
    let precinct = new Uint32Array(expected);
    const index = new Int32Array(expected).fill(-1);
    const lastRes = new Int32Array(geometry.maxResolutions).fill(-1);
    const nc = geometry.numComponents;
    const R = geometry.maxResolutions;
    // Tile-wide precinct number of (c, r, 0).
    const rowBase = new Float64Array(nc * R);
    for (let c = 0; c < nc; c++) {
      for (let r = 0; r < R; r++) rowBase[c * R + r] = geometry.componentBase(c) + geometry.precinctsBefore(c, r);
    }
    let n = 0;
    const count = forEachPacket(geometry, coding, (l, r, c, p) => {
      layer[n] = l;
      resolution[n] = r;
      component[n] = c;
      precinct[n] = p;
      index[(rowBase[c * R + r]! + p) * layers + l] = n;
      lastRes[r] = n;
      n++;
    });
    if (count < expected) {
      layer = layer.slice(0, count);
      resolution = resolution.slice(0, count);
      component = component.slice(0, count);
      precinct = precinct.slice(0, count);
    }
    for (let r = 1; r < lastRes.length; r++) if (lastRes[r]! < lastRes[r - 1]!) lastRes[r] = lastRes[r - 1]!;
    this.count = count;
    this.missing = expected - count;
    this.layer = layer;
    this.resolution = resolution;
    this.component = component;
    this.precinct = precinct;
    this.packetIndex = index;
    this.lastPacketOfResolution = lastRes;
  }

  /** Sequence number s within the tile-component of precinct p of resolution r. */
  precinctSeq(c: number, r: number, p: number): number {
    return this.geometry.precinctSeq(c, r, p);
  }

  /** Packet number of layer l of precinct s of component c, or -1 when absent or out of range. */
  packetOf(c: number, s: number, l: number): number {
    const g = this.geometry;
    if (!(c >= 0 && c < g.numComponents && s >= 0 && s < g.precinctTotal(c) && l >= 0 && l < this.layers)) return -1;
    return this.packetIndex[(g.componentBase(c) + s) * this.layers + l] ?? -1;
  }

  /** Packet number of layer l of precinct p of resolution r of component c, or -1. */
  packetOfPrecinct(c: number, r: number, p: number, l: number): number {
    const g = this.geometry;
    if (!(c >= 0 && c < g.numComponents && r >= 0 && r <= g.levels(c) && p >= 0 && p < g.precinctCount(c, r))) return -1;
    return this.packetOf(c, g.precinctsBefore(c, r) + p, l);
  }
}

/** Builds the packet sequence of a tile (see {@link PacketSequence}). */
export function packetSequence(geometry: TileGeometry, coding: TileCoding): PacketSequence {
  return new PacketSequence(geometry, coding);
}
