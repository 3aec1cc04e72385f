import { J2K_ERROR, J2kError } from './errors.js';

/**
 * Packet-header decoding (ISO/IEC 15444-1 B.10): enough to find where every
 * packet of a tile starts and ends without PLT markers, and to tell a client
 * which coding passes of which code-block a packet carries.
 *
 * The parser is independent of the tile/precinct geometry: the caller says,
 * per precinct, how many code-blocks each sub-band has (`PrecinctShape`), and
 * keeps one `PrecinctState` per precinct across its quality layers.
 *
 * Every read is bounds-checked: truncated or hostile data ends in a
 * `J2kError` (TRUNCATED or BAD_PACKET_HEADER) naming the absolute offset.
 */

/** The code-block grid of one precinct: per sub-band, code-blocks across (cbx) and down (cby). */
export interface PrecinctShape {
  /** In packet order: LL alone at resolution 0, then HL, LH, HH. A 0 in cbx or cby: the band has no code-block here. */
  bands: { cbx: number; cby: number }[];
}

/** Code-block style flags of COD/COC SPcod (Table A.19) that change packet headers. */
export const CB_STYLE = {
  /** Selective arithmetic coding bypass. */
  BYPASS: 0x01,
  /** Termination on each coding pass. */
  TERMALL: 0x04,
} as const;

/**
 * A position in a byte array. `bytes[0]` is at file offset `base` (for error
 * messages). Reads stop at `end` (default `bytes.length`). `ByteReader` fits.
 */
export interface PacketCursor {
  readonly bytes: Uint8Array;
  pos: number;
  readonly end?: number | undefined;
  readonly base?: number | undefined;
  readonly file?: string | undefined;
}

/** Largest zero-bit-plane count accepted (38-bit samples, 7 guard bits and a 255 ROI shift stay well below). */
export const MAX_ZERO_BIT_PLANES = 1023;
/** Largest Lblock + floor(log2(passes)): a segment length is below 2^31. */
const MAX_LENGTH_BITS = 31;
/** Largest packet body: Psot is 32 bits, so no packet is longer. */
const MAX_BODY = 0xffffffff;

const EMPTY = new Uint8Array(0);

/**
 * MSB-first bit reader of packet headers (B.10.1): after a 0xFF byte only the
 * 7 low bits of the next byte carry header bits (its MSB is a stuffed 0).
 */
export class PacketBitReader {
  bytes: Uint8Array = EMPTY;
  /** Index of the next byte to load. */
  pos = 0;
  end = 0;
  base = 0;
  file: string | undefined = undefined;
  /** The byte bits are taken from (the previous one, once exhausted). */
  private cur = 0;
  /** Bits of `cur` not yet read. */
  private avail = 0;

  reset(bytes: Uint8Array, pos: number, end: number, base: number, file: string | undefined): this {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
    this.base = base;
    this.file = file;
    this.cur = 0;
    this.avail = 0;
    return this;
  }

  bit(): number {
    if (this.avail === 0) {
      if (this.pos >= this.end) {
        throw new J2kError(J2K_ERROR.TRUNCATED, 'packet header: data ends inside the header', { file: this.file, offset: this.base + this.pos });
      }
      this.avail = this.cur === 0xff ? 7 : 8;
      this.cur = this.bytes[this.pos++]!;
    }
    this.avail--;
    return (this.cur >> this.avail) & 1;
  }

  /** `n` bits (0..31) as an unsigned number, first bit most significant. */
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }

  /**
   * Ends the header: drops the unread bits of the current byte and, when that
   * byte is 0xFF, also the byte after it (its stuffed bit belongs to the
   * header, B.10.1). Returns the index just past the header.
   */
  align(): number {
    this.avail = 0;
    if (this.cur === 0xff) {
      if (this.pos >= this.end) {
        throw new J2kError(J2K_ERROR.TRUNCATED, 'packet header: data ends before the byte stuffed after 0xFF', {
          file: this.file,
          offset: this.base + this.pos,
        });
      }
      this.pos++;
      this.cur = 0;
    }
    return this.pos;
  }

  /** File offset of the byte being read (for messages). */
  get offset(): number {
    return this.base + Math.max(0, this.avail === 0 ? this.pos : this.pos - 1);
  }
}

// Band descriptor layout in PrecinctState.info (B_* fields per band).
const B_CBX = 0;
const B_CBY = 1;
/** Index of the band's first code-block in the per-block arrays. */
const B_BLOCK = 2;
/** Index of the band's inclusion tree in node arrays; the zero-bit-plane tree follows at + nodes. */
const B_TREE = 3;
/** Nodes in one of the band's trees. */
const B_NODES = 4;
/** Number of tree levels (0 when the band has no code-block). */
const B_LEVELS = 5;
/** Index in `info` of the band's level table: per level (leaves first) width, node offset. */
const B_LEVEL_TABLE = 6;
const B_SIZE = 7;

/**
 * Decoding state of one precinct across its quality layers: per sub-band an
 * inclusion and a zero-bit-plane tag tree (B.10.2), per code-block whether it
 * has been included, its Lblock and its number of coding passes so far.
 * Everything lives in a few flat typed arrays.
 *
 * After a `readPacket` that throws, the state is undefined: `clone()` before
 * when the caller wants to retry with more data.
 */
export class PrecinctState {
  /** Code-block style (SPcod/SPcoc) of the component: bypass (0x01) and termall (0x04) matter here. */
  readonly cbStyle: number;
  readonly bandCount: number;
  /** Code-blocks in all bands. */
  readonly blockCount: number;
  /** Packets read so far: the next `readPacket` must be for this layer. */
  layersRead = 0;
  /** Band descriptors and tree level tables. */
  private readonly info: Int32Array;
  /** Tag-tree nodes of all trees: current value (a lower bound until known). */
  private readonly nodeValue: Int32Array;
  /** 1 when the node's value is known exactly. */
  private readonly nodeKnown: Uint8Array;
  /** Per code-block: coding passes received so far. */
  readonly passes: Int32Array;
  /** Per code-block: Lblock (B.10.7.1), 3 until the first increment. */
  readonly lblock: Uint8Array;
  /** Per code-block: zero bit-planes, -1 until the code-block is first included. */
  readonly zeroBitPlanes: Int16Array;

  /** `from` is internal (used by `clone()`): copy its state, ignoring `shape`. */
  constructor(shape: PrecinctShape, cbStyle: number, from?: PrecinctState) {
    this.cbStyle = cbStyle;
    if (from !== undefined) {
      this.bandCount = from.bandCount;
      this.blockCount = from.blockCount;
      this.layersRead = from.layersRead;
      this.info = from.info;
      this.nodeValue = from.nodeValue.slice();
      this.nodeKnown = from.nodeKnown.slice();
      this.passes = from.passes.slice();
      this.lblock = from.lblock.slice();
      this.zeroBitPlanes = from.zeroBitPlanes.slice();
      return;
    }
    const bands = shape.bands;
    this.bandCount = bands.length;
    let infoSize = bands.length * B_SIZE;
    for (const b of bands) {
      if (!Number.isInteger(b.cbx) || !Number.isInteger(b.cby) || b.cbx < 0 || b.cby < 0) {
        throw new RangeError(`PrecinctState: bad code-block grid ${b.cbx}x${b.cby}`);
      }
      if (b.cbx > 0 && b.cby > 0) infoSize += 2 * treeLevels(b.cbx, b.cby);
    }
    const info = new Int32Array(infoSize);
    let blocks = 0;
    let nodes = 0;
    let table = bands.length * B_SIZE;
    for (let i = 0; i < bands.length; i++) {
      const { cbx, cby } = bands[i]!;
      const d = i * B_SIZE;
      info[d + B_CBX] = cbx;
      info[d + B_CBY] = cby;
      info[d + B_BLOCK] = blocks;
      info[d + B_TREE] = nodes;
      info[d + B_LEVEL_TABLE] = table;
      if (cbx === 0 || cby === 0) continue;
      let w = cbx;
      let h = cby;
      let n = 0;
      let levels = 0;
      for (;;) {
        info[table++] = w;
        info[table++] = n;
        n += w * h;
        levels++;
        if (w === 1 && h === 1) break;
        w = (w + 1) >> 1;
        h = (h + 1) >> 1;
      }
      info[d + B_NODES] = n;
      info[d + B_LEVELS] = levels;
      blocks += cbx * cby;
      nodes += 2 * n;
    }
    this.info = info;
    this.blockCount = blocks;
    this.nodeValue = new Int32Array(nodes);
    this.nodeKnown = new Uint8Array(nodes);
    this.passes = new Int32Array(blocks);
    this.lblock = new Uint8Array(blocks).fill(3);
    this.zeroBitPlanes = new Int16Array(blocks).fill(-1);
  }

  /** Back to the state before layer 0. */
  reset(): void {
    this.layersRead = 0;
    this.nodeValue.fill(0);
    this.nodeKnown.fill(0);
    this.passes.fill(0);
    this.lblock.fill(3);
    this.zeroBitPlanes.fill(-1);
  }

  /** An independent copy (to retry a packet once more data has arrived). */
  clone(): PrecinctState {
    return new PrecinctState({ bands: [] }, this.cbStyle, this);
  }

  /** Copies another state of the same shape into this one. */
  copyFrom(other: PrecinctState): void {
    if (other.info !== this.info && !sameInts(other.info, this.info)) throw new RangeError('PrecinctState.copyFrom: different shapes');
    this.layersRead = other.layersRead;
    this.nodeValue.set(other.nodeValue);
    this.nodeKnown.set(other.nodeKnown);
    this.passes.set(other.passes);
    this.lblock.set(other.lblock);
    this.zeroBitPlanes.set(other.zeroBitPlanes);
  }

  /** Code-blocks across and down in band `b`. */
  bandGrid(b: number): { cbx: number; cby: number } {
    const d = b * B_SIZE;
    return { cbx: this.info[d + B_CBX]!, cby: this.info[d + B_CBY]! };
  }

  /** Index in `passes` / `lblock` / `zeroBitPlanes` of code-block `i` (raster order) of band `b`. */
  blockIndex(b: number, i: number): number {
    return this.info[b * B_SIZE + B_BLOCK]! + i;
  }

  /**
   * Decodes leaf (x, y) of tree `tree` (0 inclusion, 1 zero bit-planes) of band
   * `b` against `threshold` (B.10.2). Returns the leaf's value if it is below
   * the threshold, else a lower bound >= threshold.
   */
  private decodeTree(rd: PacketBitReader, b: number, tree: number, x: number, y: number, threshold: number): number {
    const info = this.info;
    const values = this.nodeValue;
    const known = this.nodeKnown;
    const d = b * B_SIZE;
    const base = info[d + B_TREE]! + tree * info[d + B_NODES]!;
    const table = info[d + B_LEVEL_TABLE]!;
    let low = 0;
    for (let k = info[d + B_LEVELS]! - 1; k >= 0; k--) {
      const n = base + info[table + 2 * k + 1]! + (y >> k) * info[table + 2 * k]! + (x >> k);
      let v = values[n]!;
      if (v < low) v = low;
      if (known[n] === 0) {
        while (v < threshold) {
          if (rd.bit() !== 0) {
            known[n] = 1;
            break;
          }
          v++;
        }
      }
      values[n] = v;
      low = v;
    }
    return low;
  }

  /** @internal Used by readPacket: decodes a non-empty header's code-block part; returns the body length. */
  decodeBlocks(rd: PacketBitReader, layer: number, blocks: CodeBlockContribution[] | undefined): number {
    const info = this.info;
    const style = this.cbStyle;
    const termall = (style & CB_STYLE.TERMALL) !== 0;
    const bypass = (style & CB_STYLE.BYPASS) !== 0;
    let body = 0;
    for (let b = 0; b < this.bandCount; b++) {
      const d = b * B_SIZE;
      const cbx = info[d + B_CBX]!;
      const cby = info[d + B_CBY]!;
      if (cbx === 0 || cby === 0) continue;
      const first = info[d + B_BLOCK]!;
      for (let y = 0; y < cby; y++) {
        for (let x = 0; x < cbx; x++) {
          const i = first + y * cbx + x;
          // Inclusion (B.10.4).
          let firstInclusion = false;
          if (this.zeroBitPlanes[i]! < 0) {
            if (this.decodeTree(rd, b, 0, x, y, layer + 1) > layer) continue;
            firstInclusion = true;
            // Zero bit-planes (B.10.5): decode the leaf's exact value.
            const at = rd.offset;
            const zbp = this.decodeTree(rd, b, 1, x, y, MAX_ZERO_BIT_PLANES + 1);
            if (zbp > MAX_ZERO_BIT_PLANES) {
              throw new J2kError(J2K_ERROR.BAD_PACKET_HEADER, `packet header: more than ${MAX_ZERO_BIT_PLANES} zero bit-planes`, { file: rd.file, offset: at });
            }
            this.zeroBitPlanes[i] = zbp;
          } else if (rd.bit() === 0) {
            continue;
          }
          // Number of coding passes (B.10.6, Table B.4).
          let n: number;
          if (rd.bit() === 0) n = 1;
          else if (rd.bit() === 0) n = 2;
          else {
            n = rd.bits(2);
            if (n < 3) n += 3;
            else {
              n = rd.bits(5);
              if (n < 31) n += 6;
              else n = 37 + rd.bits(7);
            }
          }
          // Lblock increment (B.10.7.1): a run of 1 bits ended by a 0.
          let lblock = this.lblock[i]!;
          while (rd.bit() !== 0) {
            if (++lblock > MAX_LENGTH_BITS) {
              throw new J2kError(J2K_ERROR.BAD_PACKET_HEADER, 'packet header: Lblock grows past 31 bits', { file: rd.file, offset: rd.offset });
            }
          }
          this.lblock[i] = lblock;
          // Codeword segment lengths (B.10.7.1, B.10.7.2).
          const p0 = this.passes[i]!;
          const pend = p0 + n;
          let entry: CodeBlockContribution | undefined;
          if (blocks !== undefined) {
            entry = {
              band: b,
              block: y * cbx + x,
              firstInclusion,
              zeroBitPlanes: this.zeroBitPlanes[i]!,
              passStart: p0,
              passes: n,
              offset: body,
              length: 0,
              segmentPasses: [],
              segmentLengths: [],
            };
            blocks.push(entry);
          }
          let p = p0;
          let total = 0;
          while (p < pend) {
            let e: number;
            if (termall) e = p + 1;
            else if (!bypass) e = pend;
            else if (p < 10) e = 10;
            else e = (p - 10) % 3 === 0 ? p + 2 : p + 1;
            if (e > pend) e = pend;
            const k = e - p;
            const nbits = lblock + floorLog2(k);
            if (nbits > MAX_LENGTH_BITS) {
              throw new J2kError(J2K_ERROR.BAD_PACKET_HEADER, `packet header: ${nbits}-bit segment length`, { file: rd.file, offset: rd.offset });
            }
            const len = rd.bits(nbits);
            total += len;
            if (entry !== undefined) {
              entry.segmentPasses.push(k);
              entry.segmentLengths.push(len);
            }
            p = e;
          }
          if (entry !== undefined) entry.length = total;
          this.passes[i] = pend;
          body += total;
          if (body > MAX_BODY) {
            throw new J2kError(J2K_ERROR.BAD_PACKET_HEADER, 'packet header: packet body longer than 2^32 bytes', { file: rd.file, offset: rd.offset });
          }
        }
      }
    }
    return body;
  }
}

function sameInts(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function treeLevels(w: number, h: number): number {
  let levels = 1;
  while (w > 1 || h > 1) {
    w = (w + 1) >> 1;
    h = (h + 1) >> 1;
    levels++;
  }
  return levels;
}

function floorLog2(n: number): number {
  return 31 - Math.clz32(n);
}

/** Creates the state of a precinct before its first packet. */
export function createPrecinctState(shape: PrecinctShape, cbStyle: number): PrecinctState {
  return new PrecinctState(shape, cbStyle);
}

/** What one packet carries for one code-block (only code-blocks included in the packet). */
export interface CodeBlockContribution {
  band: number;
  /** Raster index of the code-block within its band in this precinct. */
  block: number;
  /** True in the packet where the code-block is first included. */
  firstInclusion: boolean;
  /** Zero bit-planes of the code-block (known since its first inclusion). */
  zeroBitPlanes: number;
  /** Coding passes of the code-block in earlier packets. */
  passStart: number;
  /** New coding passes in this packet (1..164). */
  passes: number;
  /** Offset of this code-block's data from the start of the packet body. */
  offset: number;
  /** Bytes of this code-block in the body (sum of segmentLengths). */
  length: number;
  /** Codeword segments (or the part of one continued in a later packet): passes and bytes of each. */
  segmentPasses: number[];
  segmentLengths: number[];
}

/** Where a packet lies. Positions are indices into the cursors' `bytes`. */
export interface PacketInfo {
  layer: number;
  /** Where the packet starts in the tile data: at its SOP if present, else at its header (in-line) or body (packed headers). */
  packetStart: number;
  sopPresent: boolean;
  /** Nsop of the SOP marker (packet index mod 65536), -1 when absent. */
  sopIndex: number;
  /** First header byte (in the header source: tile data in-line, PPM/PPT data when packed). */
  headerStart: number;
  /** Just past the header, EPH included when present. */
  headerEnd: number;
  ephPresent: boolean;
  /** First body byte in the tile data. */
  bodyStart: number;
  /** Sum of the code-blocks' segment lengths. */
  bodyLength: number;
  /** The header's first bit was 0: no code-block contributes. */
  empty: boolean;
}

export interface ReadPacketOptions {
  /** COD Scod bit 1: an SOP marker may precede each packet. An SOP is accepted even when this is false (FF91 cannot start a header). */
  sop: boolean;
  /** COD Scod bit 2: an EPH marker must follow each header. When false an EPH present anyway is accepted. */
  eph: boolean;
  /**
   * Packed headers (PPM/PPT): the tile data, positioned where this packet's
   * bytes start (an optional SOP, then the body). Absent: the header is in-line
   * in `src`, which is then the tile data.
   */
  body?: PacketCursor | undefined;
  /**
   * Index of the packet in its tile (the Nsop an SOP would carry), to resolve
   * one ambiguity of packed headers: an SOP at `body.pos` is taken as this
   * packet's only if its Nsop matches (mod 65536), since a packet without SOP
   * and without body is followed directly by the next packet's SOP. Without it
   * the SOP is taken as this packet's. Nsop is not checked otherwise.
   */
  packetIndex?: number | undefined;
  /** When given, cleared and filled with one entry per contributing code-block. */
  blocks?: CodeBlockContribution[] | undefined;
  /** A result object to fill instead of allocating one. */
  into?: PacketInfo | undefined;
}

const reader = new PacketBitReader();

/** An empty PacketInfo, e.g. to pass as ReadPacketOptions.into and reuse across packets. */
export function newPacketInfo(): PacketInfo {
  return {
    layer: 0,
    packetStart: 0,
    sopPresent: false,
    sopIndex: -1,
    headerStart: 0,
    headerEnd: 0,
    ephPresent: false,
    bodyStart: 0,
    bodyLength: 0,
    empty: true,
  };
}

/** Reads an optional SOP at c.pos; returns Nsop or -1. */
function readSop(c: PacketCursor, pos: number): number {
  const bytes = c.bytes;
  const end = c.end ?? bytes.length;
  if (pos + 1 >= end || bytes[pos] !== 0xff || bytes[pos + 1] !== 0x91) return -1;
  const base = c.base ?? 0;
  if (pos + 6 > end) {
    throw new J2kError(J2K_ERROR.TRUNCATED, 'SOP marker segment: data ends inside it', { file: c.file, offset: base + pos });
  }
  const lsop = (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
  if (lsop !== 4) {
    throw new J2kError(J2K_ERROR.BAD_PACKET_HEADER, `SOP marker segment: length ${lsop} (must be 4)`, { file: c.file, offset: base + pos });
  }
  return (bytes[pos + 4]! << 8) | bytes[pos + 5]!;
}

/**
 * Reads the header of `state`'s packet for `layer` (B.10.3-B.10.8).
 *
 * In-line headers (no `opts.body`): `src` is the tile data at the packet's
 * first byte (SOP or header); the body follows the header (and its EPH).
 * Packed headers: `src` is the PPM/PPT header stream at this packet's header,
 * and `opts.body` the tile data at the packet's first byte.
 *
 * On success `src.pos` moves to `headerEnd`; `opts.body` is not moved. The
 * body itself is not read nor bounds-checked: the packet ends at
 * `bodyStart + bodyLength` in the tile data.
 */
export function readPacket(state: PrecinctState, layer: number, src: PacketCursor, opts: ReadPacketOptions): PacketInfo {
  if (layer !== state.layersRead) {
    throw new RangeError(`readPacket: layer ${layer} of a precinct whose next layer is ${state.layersRead}`);
  }
  const out = opts.into ?? newPacketInfo();
  const blocks = opts.blocks;
  if (blocks !== undefined) blocks.length = 0;
  const bytes = src.bytes;
  const end = src.end ?? bytes.length;
  const base = src.base ?? 0;
  const body = opts.body;
  let pos = src.pos;
  if (pos < 0 || pos > end || end > bytes.length) {
    throw new RangeError(`readPacket: bad cursor ${pos} in [0, ${end}] of ${bytes.length} bytes`);
  }
  const packetStart = body === undefined ? pos : body.pos;
  let sopIndex = readSop(body ?? src, packetStart);
  if (body !== undefined && sopIndex >= 0 && opts.packetIndex !== undefined && sopIndex !== (opts.packetIndex & 0xffff)) sopIndex = -1;
  if (body === undefined && sopIndex >= 0) pos += 6;
  const headerStart = pos;

  const rd = reader.reset(bytes, pos, end, base, src.file);
  let bodyLength = 0;
  const empty = rd.bit() === 0;
  if (!empty) bodyLength = state.decodeBlocks(rd, layer, blocks);
  pos = rd.align();
  rd.reset(EMPTY, 0, 0, 0, undefined);

  let ephPresent = false;
  if (pos + 1 < end && bytes[pos] === 0xff && bytes[pos + 1] === 0x92) {
    ephPresent = true;
    pos += 2;
  } else if (opts.eph) {
    if (pos + 2 > end) {
      throw new J2kError(J2K_ERROR.TRUNCATED, 'packet header: data ends before its EPH marker', { file: src.file, offset: base + pos });
    }
    throw new J2kError(J2K_ERROR.BAD_PACKET_HEADER, 'packet header: EPH marker missing', { file: src.file, offset: base + pos });
  }
  state.layersRead = layer + 1;
  src.pos = pos;
  out.layer = layer;
  out.packetStart = packetStart;
  out.sopPresent = sopIndex >= 0;
  out.sopIndex = sopIndex;
  out.headerStart = headerStart;
  out.headerEnd = pos;
  out.ephPresent = ephPresent;
  out.bodyStart = body === undefined ? pos : packetStart + (sopIndex >= 0 ? 6 : 0);
  out.bodyLength = bodyLength;
  out.empty = empty;
  return out;
}
