import { ByteWriter } from '../jpeg2000/bytes.js';
import type { Codestream } from '../jpeg2000/codestream.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { CodestreamIndex } from '../jpeg2000/packet-index.js';
import { MARKER } from '../jpeg2000/markers.js';
import { bufferSource } from '../jpeg2000/source.js';
import { readCodestream } from '../jpeg2000/codestream.js';

/**
 * Rewrites a codestream's packet-length markers: gives PLT markers to a
 * codestream that has none (lengths found by parsing packet headers), moves
 * them to PLM in the main header, or removes them. Packets and everything else
 * are copied unchanged; Psot is recomputed and TLM (whose lengths would no
 * longer hold) dropped. This is how an archive made without `-PLT` is
 * prepared for a server that needs PLT, and how the PLM path is tested.
 */
export type PacketMarkers = 'plt' | 'plm' | 'none';

const DROPPED: ReadonlySet<number> = new Set([MARKER.PLT, MARKER.PLM, MARKER.TLM]);
/** Largest payload of one PLT segment after Zplt (Lplt is 16 bits). */
const MAX_PLT_PAYLOAD = 65535 - 3;

/** Variable-length code of a packet length: 7 bits a byte, high bit on all but the last. */
export function encodePacketLength(len: number, out: number[]): void {
  const groups: number[] = [];
  let v = len;
  do {
    groups.unshift(v % 128);
    v = Math.floor(v / 128);
  } while (v > 0);
  for (let i = 0; i < groups.length; i++) out.push(groups[i]! | (i < groups.length - 1 ? 0x80 : 0));
}

function segment(w: ByteWriter, marker: number, payload: ArrayLike<number>): void {
  w.u16(marker).u16(payload.length + 2);
  for (let i = 0; i < payload.length; i++) w.u8(payload[i]!);
}

/** Packet lengths of each tile-part, in codestream order. */
function lengthsPerTilePart(cs: Codestream, index: CodestreamIndex): number[][] {
  const out: number[][] = cs.tileParts.map(() => []);
  for (let t = 0; t < cs.tiles.length; t++) {
    const ti = index.ensureTile(t);
    const parts = cs.tiles[t]!;
    let j = 0;
    for (let k = 0; k < ti.known; k++) {
      const off = ti.offsets[k]!;
      while (off >= cs.tileParts[parts[j]!]!.bodyOffset + cs.tileParts[parts[j]!]!.bodyLength && j + 1 < parts.length) j++;
      out[parts[j]!]!.push(ti.lengths[k]!);
    }
  }
  return out;
}

export function rewritePacketMarkers(codestream: Uint8Array, mode: PacketMarkers, name = 'codestream'): Uint8Array {
  const src = bufferSource(codestream, name);
  const cs = readCodestream(src);
  const lengths = mode === 'none' ? [] : lengthsPerTilePart(cs, new CodestreamIndex(src, cs));
  const w = new ByteWriter(codestream.length + 1024);
  // Main header without TLM/PLM (SOC has no length, SIZ first).
  for (const seg of cs.main.segments) {
    if (DROPPED.has(seg.marker)) continue;
    w.bytes(codestream.subarray(seg.offset, seg.offset + 2 + seg.length));
  }
  if (mode === 'plm') {
    let payload: number[] = [];
    let z = 0;
    const flush = (): void => {
      if (payload.length === 0) return;
      if (z > 255) throw new J2kError(J2K_ERROR.UNSUPPORTED, 'packet lengths need more than 256 PLM segments', { file: name });
      segment(w, MARKER.PLM, [z++, ...payload]);
      payload = [];
    };
    for (const list of lengths) {
      const run: number[] = [];
      for (const len of list) encodePacketLength(len, run);
      if (run.length > 255) throw new J2kError(J2K_ERROR.UNSUPPORTED, 'a tile-part needs more than 255 bytes of PLM lengths', { file: name });
      if (payload.length + 1 + run.length > MAX_PLT_PAYLOAD) flush();
      payload.push(run.length, ...run);
    }
    flush();
  }
  cs.tileParts.forEach((tp, i) => {
    const start = w.length;
    for (const seg of tp.segments) {
      if (seg.marker === MARKER.SOD) break;
      if (DROPPED.has(seg.marker)) continue;
      w.bytes(codestream.subarray(seg.offset, seg.offset + 2 + seg.length));
    }
    if (mode === 'plt') {
      const bytes: number[] = [];
      for (const len of lengths[i]!) encodePacketLength(len, bytes);
      let z = 0;
      for (let at = 0; at < bytes.length; z++) {
        if (z > 255) throw new J2kError(J2K_ERROR.UNSUPPORTED, 'a tile-part needs more than 256 PLT segments', { file: name });
        // Cut only after the last byte of a length.
        let end = Math.min(bytes.length, at + MAX_PLT_PAYLOAD);
        while (end < bytes.length && bytes[end - 1]! & 0x80) end--;
        segment(w, MARKER.PLT, [z, ...bytes.slice(at, end)]);
        at = end;
      }
    }
    w.u16(MARKER.SOD);
    w.bytes(codestream.subarray(tp.bodyOffset, tp.bodyOffset + tp.bodyLength));
    // Psot: from the SOT marker to the end of the body.
    w.patchU32(start + 6, w.length - start);
  });
  w.u16(MARKER.EOC);
  return w.result();
}
