import { J2K_ERROR, J2kError } from './errors.js';
import type { TilePart } from './codestream.js';
import type { TileGeometry } from './geometry.js';
import type { TileCoding } from './markers.js';
import { createPrecinctState, newPacketInfo, readPacket, type PacketCursor, type PrecinctState } from './packet-header.js';
import type { PacketSequence } from './progression.js';
import type { RandomAccess } from './source.js';

/**
 * Walks the packets of one tile in codestream order by decoding their headers:
 * the packet index for codestreams that have no PLT (or PLM) markers.
 * Each precinct's header state (tag trees, Lblock, passes) lives only while
 * the walk goes on; the walk reads one tile-part body at a time.
 */
export interface PacketWalker {
  /**
   * Length of the next packet, which starts at codestream offset `pos` inside
   * a tile-part body that ends at `end`.
   */
  next(pos: number, end: number): number;
}

export function walkPackets(src: RandomAccess, coding: TileCoding, geometry: TileGeometry, sequence: PacketSequence, parts: readonly TilePart[]): PacketWalker {
  const states: (PrecinctState | undefined)[] = new Array(geometry.totalPrecincts).fill(undefined);
  const counts = new Int32Array(6);
  const info = newPacketInfo();
  const origin = src.origin ?? 0;
  let k = 0;
  let part: TilePart | undefined;
  let body: Uint8Array = new Uint8Array(0);
  const opts = { sop: coding.sop, eph: coding.eph, into: info };

  return {
    next(pos: number, end: number): number {
      if (k >= sequence.count) throw new RangeError(`walkPackets: the tile has ${sequence.count} packets`);
      if (!part || pos < part.bodyOffset || pos > part.bodyOffset + part.bodyLength) {
        part = parts.find((tp) => pos >= tp.bodyOffset && pos <= tp.bodyOffset + tp.bodyLength);
        if (!part) throw new RangeError(`walkPackets: offset ${pos} is in no tile-part body`);
        body = src.read(part.bodyOffset, part.bodyLength);
      }
      const l = sequence.layer[k]!;
      const r = sequence.resolution[k]!;
      const c = sequence.component[k]!;
      const p = sequence.precinct[k]!;
      const slot = geometry.componentBase(c) + geometry.precinctsBefore(c, r) + p;
      let state = states[slot];
      if (!state) {
        const n = geometry.precinctCodeBlockCounts(c, r, p, counts);
        const bands: { cbx: number; cby: number }[] = [];
        for (let i = 0; i < n; i++) bands.push({ cbx: counts[2 * i]!, cby: counts[2 * i + 1]! });
        state = createPrecinctState({ bands }, coding.components[c]!.cbStyle);
        states[slot] = state;
      }
      const cursor: PacketCursor = { bytes: body, pos: pos - part.bodyOffset, end: end - part.bodyOffset, base: part.bodyOffset + origin, file: src.name };
      if (cursor.pos >= (cursor.end ?? 0)) {
        throw new J2kError(J2K_ERROR.BAD_PACKET_LENGTHS, `tile ${part.tile}: packet ${k} of ${sequence.count} starts past the end of the tile data`, {
          file: src.name,
          offset: pos + origin,
        });
      }
      readPacket(state, l, cursor, opts);
      const stop = info.bodyStart + info.bodyLength;
      if (stop > (cursor.end ?? 0)) {
        throw new J2kError(J2K_ERROR.BAD_PACKET_LENGTHS, `tile ${part.tile}: packet ${k} (${info.bodyLength}-byte body) runs past the end of its tile-part`, {
          file: src.name,
          offset: origin + part.bodyOffset + info.headerStart,
        });
      }
      k++;
      if (k === sequence.count) states.fill(undefined);
      return stop - info.packetStart;
    },
  };
}
