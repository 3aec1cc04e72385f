import { concatBytes, readBoxContent, type Box, type Container } from '../jpeg2000/boxes.js';
import type { RandomAccess } from '../jpeg2000/source.js';

/**
 * Metadata-bin 0: the file's top-level boxes in file order, each box that
 * holds a codestream (jp2c, or an ftbl pointing at one) replaced by a
 * placeholder box (phld) that says which codestream it stands for. Every other
 * box is copied byte for byte. A raw codestream has an empty metadata-bin 0.
 *
 * Placeholder layout (ISO/IEC 15444-9 Annex A.3.6.3): LBox, 'phld', Flags (4),
 * OrigID (8), OrigBH (the original box header, 8 or 16 bytes), EquivID (8),
 * EquivBH (8), CSID (8). Flags = 4: "this box is codestream CSID"; OrigID 0:
 * the original contents are not offered as a metadata-bin.
 */

export const PHLD_FLAG_CODESTREAM = 4;

function u32(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 24) & 0xff;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

function u64(out: Uint8Array, at: number, v: number): void {
  u32(out, at, Math.floor(v / 0x100000000));
  u32(out, at + 4, v >>> 0);
}

/** The placeholder that replaces `box` (a jp2c or ftbl) holding codestream `csid`. */
export function placeholderBox(originalHeader: Uint8Array, csid: number): Uint8Array {
  const len = 8 + 4 + 8 + originalHeader.length + 8 + 8 + 8;
  const out = new Uint8Array(len);
  u32(out, 0, len);
  out.set([0x70, 0x68, 0x6c, 0x64], 4); // 'phld'
  u32(out, 8, PHLD_FLAG_CODESTREAM);
  // OrigID = 0 (bytes 12..19 stay zero)
  out.set(originalHeader, 20);
  const after = 20 + originalHeader.length;
  // EquivID = 0 and EquivBH = 8 zero bytes (after .. after+16)
  u64(out, after + 16, csid);
  return out;
}

/** The original header bytes of a box (8 bytes, or 16 with XLBox). */
function boxHeader(src: RandomAccess, box: Box): Uint8Array {
  return src.read(box.offset, box.headerLength);
}

/** Builds metadata-bin 0 of a file. */
export function metadataBin0(src: RandomAccess, container: Container): Uint8Array {
  if (container.format === 'raw') return new Uint8Array(0);
  const byBox = new Map<number, number>();
  for (const cs of container.codestreams) if (cs.kind !== 'raw') byBox.set(cs.boxIndex, cs.index);
  const parts: Uint8Array[] = [];
  container.boxes.forEach((box, i) => {
    const csid = byBox.get(i);
    if (csid !== undefined) {
      parts.push(placeholderBox(boxHeader(src, box), csid));
    } else {
      parts.push(boxHeader(src, box));
      if (box.contentLength > 0) parts.push(readBoxContent(src, box));
    }
  });
  return concatBytes(parts);
}
