import { J2K_ERROR, J2kError } from './errors.js';
import { tileCoding, type Codestream, type TilePart } from './codestream.js';
import { decodePacketLengths, type Siz, type TileCoding } from './markers.js';
import { buildTileGeometry, type TileGeometry } from './geometry.js';
import { packetSequence, type PacketSequence } from './progression.js';
import { walkPackets, type PacketWalker } from './packet-walk.js';
import type { RandomAccess } from './source.js';

/**
 * The packet index of one codestream: where every packet is, so a precinct
 * data-bin can be served as byte ranges without decoding anything.
 *
 * Built the way the ESA server's paper describes, and lazily: the tile-part
 * structure comes from `readCodestream` (or the on-disk cache file), and packet
 * lengths are decoded from PLT markers only as far as the resolutions asked for
 * need (for RPCL/RLCP the packets of low resolutions come first, so a thumbnail
 * request decodes a few bytes of PLT). Codestreams without PLT are indexed by
 * parsing packet headers, in the same lazy way.
 *
 * Storage is two Uint32Arrays per tile (offset from the codestream start and
 * length, in progression order: 8 bytes per packet), optionally on a
 * SharedArrayBuffer so worker threads share one copy.
 */

export type PacketLengthSource = 'plt' | 'plm' | 'headers';

export interface TileIndex {
  readonly tile: number;
  readonly coding: TileCoding;
  readonly geometry: TileGeometry;
  readonly sequence: PacketSequence;
  /** Offset (from the codestream start) of packet k, in progression order. */
  readonly offsets: Uint32Array;
  /** Length of packet k (including SOP/EPH and header when they are in the body). */
  readonly lengths: Uint32Array;
  /** Packets 0..known-1 are indexed. */
  known: number;
}

export interface CodestreamIndexOptions {
  /** Put the packet tables on SharedArrayBuffers (to post them to worker threads). */
  shared?: boolean;
  /** Force a packet length source (tests compare PLT against header parsing). */
  source?: PacketLengthSource;
}

/** Per-tile cursor into the PLT payload list. */
interface PltCursor {
  /** (tile-part index, segment index) pairs flattened: the tile's PLT segments in order. */
  segments: { dataOffset: number; dataLength: number }[];
  next: number;
  /** Lengths decoded but not yet placed. */
  pending: number[];
  pendingAt: number;
}

/** Where packet placement stands for one tile. */
interface Placement {
  parts: TilePart[];
  part: number;
  pos: number;
}

/**
 * Tile geometry and packet order depend only on SIZ, the tile's coding style
 * and the tile number, so the images of an archive made with one set of
 * encoder parameters (every SDO frame, say) share one copy: the per-image cost
 * is then the 8 bytes per packet of the offset and length tables.
 */
const layouts = new Map<string, { geometry: TileGeometry; sequence: PacketSequence }>();
/** How many distinct tile layouts are kept (least recently used dropped first). */
export const MAX_SHARED_LAYOUTS = 256;

function tileLayout(siz: Siz, coding: TileCoding, t: number): { geometry: TileGeometry; sequence: PacketSequence } {
  const key = JSON.stringify([siz, coding, t]);
  let entry = layouts.get(key);
  if (entry) {
    layouts.delete(key);
  } else {
    const geometry = buildTileGeometry(siz, coding, t);
    entry = { geometry, sequence: packetSequence(geometry, coding) };
    if (layouts.size >= MAX_SHARED_LAYOUTS) layouts.delete(layouts.keys().next().value!);
  }
  layouts.set(key, entry);
  return entry;
}

/** Bytes of the shared packet-order tables currently kept. */
export function sequenceTableBytes(): number {
  let n = 0;
  for (const { sequence: s } of layouts.values()) {
    n += s.layer.byteLength + s.resolution.byteLength + s.component.byteLength + s.precinct.byteLength + s.packetIndex.byteLength;
  }
  return n;
}

/** File offset of a codestream offset, for error messages (undefined stays undefined). */
function at(src: RandomAccess, offset: number | undefined): number | undefined {
  return offset === undefined ? undefined : offset + (src.origin ?? 0);
}

/** Moves past used-up tile-part bodies (a packet never spans tile-parts); returns the current tile-part. */
function advance(pl: Placement): TilePart {
  let tp = pl.parts[pl.part]!;
  while (pl.pos === tp.bodyOffset + tp.bodyLength && pl.part + 1 < pl.parts.length) {
    pl.part++;
    tp = pl.parts[pl.part]!;
    pl.pos = tp.bodyOffset;
  }
  return tp;
}

function alloc(n: number, shared: boolean): Uint32Array {
  return shared ? new Uint32Array(new SharedArrayBuffer(Math.max(4, n * 4))) : new Uint32Array(n);
}

export class CodestreamIndex {
  readonly codestream: Codestream;
  readonly src: RandomAccess;
  readonly lengthSource: PacketLengthSource;
  readonly numTiles: number;
  private readonly tileIndexes: (TileIndex | undefined)[];
  private readonly placements: (Placement | undefined)[];
  private readonly pltCursors: (PltCursor | undefined)[];
  private readonly walkers: (PacketWalker | undefined)[];
  private plmLengths: number[][] | undefined;
  private preloaded: Map<number, Uint32Array> | undefined;
  private readonly shared: boolean;

  /**
   * @param src the codestream's bytes (offset 0 = SOC)
   * @param codestream its structure, from `readCodestream` or the cache file
   */
  constructor(src: RandomAccess, codestream: Codestream, opts: CodestreamIndexOptions = {}) {
    this.src = src;
    this.codestream = codestream;
    this.shared = opts.shared ?? false;
    this.numTiles = codestream.tiles.length;
    this.tileIndexes = new Array(this.numTiles).fill(undefined);
    this.placements = new Array(this.numTiles).fill(undefined);
    this.pltCursors = new Array(this.numTiles).fill(undefined);
    this.walkers = new Array(this.numTiles).fill(undefined);
    if (src.size > 0xffffffff) {
      throw new J2kError(J2K_ERROR.UNSUPPORTED, 'codestreams over 4 GiB are not indexed', { file: src.name });
    }
    const main = codestream.main;
    if (main.ppm.length > 0 || codestream.tileParts.some((tp) => tp.ppt.length > 0)) {
      throw new J2kError(
        J2K_ERROR.UNSUPPORTED,
        'packed packet headers (PPM/PPT) are not supported: re-encode without them',
        { file: src.name, offset: at(src, main.ppm[0]?.dataOffset ?? codestream.tileParts.find((tp) => tp.ppt.length > 0)?.offset) },
      );
    }
    const allPlt = codestream.tileParts.every((tp) => tp.plt.length > 0 || tp.bodyLength === 0);
    this.lengthSource = opts.source ?? (allPlt ? 'plt' : main.plm.length > 0 ? 'plm' : 'headers');
    if (this.lengthSource === 'plt' && !allPlt) {
      throw new J2kError(J2K_ERROR.MISSING_MARKER, 'PLT index asked for, but some tile-parts have no PLT marker', { file: src.name });
    }
    if (this.lengthSource === 'plm' && main.plm.length === 0) {
      throw new J2kError(J2K_ERROR.MISSING_MARKER, 'PLM index asked for, but the main header has no PLM marker', { file: src.name });
    }
  }

  /** The index of tile `t`, created (empty) on first use. */
  tile(t: number): TileIndex {
    if (!Number.isInteger(t) || t < 0 || t >= this.numTiles) throw new RangeError(`tile ${t} of ${this.numTiles}`);
    let ti = this.tileIndexes[t];
    if (!ti) {
      const coding = tileCoding(this.codestream, t);
      const { geometry, sequence } = tileLayout(this.codestream.main.siz, coding, t);
      const n = sequence.count;
      ti = { tile: t, coding, geometry, sequence, offsets: alloc(n, this.shared), lengths: alloc(n, this.shared), known: 0 };
      this.tileIndexes[t] = ti;
      const parts = this.codestream.tiles[t]!.map((i) => this.codestream.tileParts[i]!);
      this.placements[t] = { parts, part: 0, pos: parts[0]!.bodyOffset };
    }
    return ti;
  }

  /** Makes sure every packet of tile `t` with resolution <= r is indexed. Returns the tile index. */
  ensureResolution(t: number, r: number): TileIndex {
    const ti = this.tile(t);
    const last = ti.sequence.lastPacketOfResolution;
    const rr = Math.min(r, last.length - 1);
    if (rr < 0) return ti;
    this.ensurePackets(t, last[rr]! + 1);
    return ti;
  }

  /** Indexes every packet of tile `t` and checks that they exactly fill its tile-part bodies. */
  ensureTile(t: number): TileIndex {
    const ti = this.tile(t);
    this.ensurePackets(t, ti.sequence.count);
    const pl = this.placements[t]!;
    // Everything after the last packet must be empty.
    let part = pl.part;
    let pos = pl.pos;
    while (part < pl.parts.length) {
      const tp = pl.parts[part]!;
      if (pos !== tp.bodyOffset + tp.bodyLength) {
        throw new J2kError(
          J2K_ERROR.BAD_PACKET_LENGTHS,
          `tile ${t}: ${tp.bodyOffset + tp.bodyLength - pos} bytes of tile-part ${tp.partIndex} are not covered by any packet`,
          { file: this.src.name, offset: at(this.src, pos) },
        );
      }
      part++;
      if (part < pl.parts.length) pos = pl.parts[part]!.bodyOffset;
    }
    return ti;
  }

  /** Indexes every tile completely. */
  ensureAll(): void {
    for (let t = 0; t < this.numTiles; t++) this.ensureTile(t);
  }

  /**
   * Bytes held by this codestream's packet tables (offsets and lengths). The
   * packet-order tables they are read through are shared by every codestream
   * with the same parameters: see {@link sequenceTableBytes}.
   */
  memoryBytes(): number {
    let n = 0;
    for (const ti of this.tileIndexes) if (ti) n += ti.offsets.byteLength + ti.lengths.byteLength;
    return n;
  }

  /** Packet lengths from the cache file, for codestreams indexed from packet headers (checked as they are placed). */
  preload(tables: Map<number, Uint32Array>): void {
    this.preloaded = tables;
  }

  /**
   * Packet lengths of one tile found elsewhere (by a worker thread of the
   * server's index pool); placed and checked like the cache file's when the
   * tile is indexed, and dropped once it is.
   */
  preloadTile(t: number, lengths: Uint32Array): void {
    if (this.lengthSource !== 'headers' || this.isTileIndexed(t)) return;
    this.preloaded ??= new Map();
    this.preloaded.set(t, lengths);
  }

  /** Whether packet lengths of tile t are waiting to be placed. */
  hasPreloaded(t: number): boolean {
    return this.preloaded?.has(t) ?? false;
  }

  /** Whether every packet of tile t is indexed. */
  isTileIndexed(t: number): boolean {
    const ti = this.tileIndexes[t];
    return ti !== undefined && ti.known === ti.sequence.count;
  }

  /** The packet lengths of every tile when all are indexed, else undefined. */
  completeTables(): Uint32Array[] | undefined {
    const out: Uint32Array[] = [];
    for (let t = 0; t < this.numTiles; t++) {
      const ti = this.tileIndexes[t];
      if (!ti || ti.known !== ti.sequence.count) return undefined;
      out.push(ti.lengths.slice(0, ti.known));
    }
    return out;
  }

  private ensurePackets(t: number, count: number): void {
    const ti = this.tile(t);
    if (ti.known >= count) return;
    switch (this.lengthSource) {
      case 'plt':
        this.fromPlt(t, ti, count);
        break;
      case 'plm':
        this.fromPlm(t, ti, count);
        break;
      case 'headers':
        this.fromHeaders(t, ti, count);
        break;
    }
  }

  /** Places the next packet of tile t (length len) after the previous one. */
  private place(t: number, ti: TileIndex, len: number): void {
    const pl = this.placements[t]!;
    const tp = advance(pl);
    if (pl.pos + len > tp.bodyOffset + tp.bodyLength) {
      throw new J2kError(
        J2K_ERROR.BAD_PACKET_LENGTHS,
        `tile ${t}: packet ${ti.known} of ${len} bytes runs past the end of tile-part ${tp.partIndex}`,
        { file: this.src.name, offset: at(this.src, pl.pos) },
      );
    }
    ti.offsets[ti.known] = pl.pos;
    ti.lengths[ti.known] = len;
    ti.known++;
    pl.pos += len;
  }

  private fromPlt(t: number, ti: TileIndex, count: number): void {
    let cur = this.pltCursors[t];
    if (!cur) {
      const segments = this.placements[t]!.parts.flatMap((tp) => tp.plt);
      cur = { segments, next: 0, pending: [], pendingAt: 0 };
      this.pltCursors[t] = cur;
    }
    const total = ti.sequence.count;
    while (ti.known < count) {
      if (cur.pendingAt < cur.pending.length) {
        if (ti.known >= total) break;
        this.place(t, ti, cur.pending[cur.pendingAt++]!);
        continue;
      }
      if (cur.next >= cur.segments.length) {
        throw new J2kError(
          J2K_ERROR.BAD_PACKET_LENGTHS,
          `tile ${t}: PLT markers list ${ti.known} packets, the tile has ${total}`,
          { file: this.src.name, offset: at(this.src, cur.segments.at(-1)?.dataOffset) },
        );
      }
      const seg = cur.segments[cur.next++]!;
      const bytes = this.src.read(seg.dataOffset, seg.dataLength);
      cur.pending = [];
      cur.pendingAt = 0;
      if (decodePacketLengths(bytes, 0, bytes.length, cur.pending)) {
        throw new J2kError(J2K_ERROR.BAD_MARKER, 'PLT: packet length cut at the end of the segment', {
          file: this.src.name,
          offset: at(this.src, seg.dataOffset),
        });
      }
    }
    if (ti.known === total && (cur.pendingAt < cur.pending.length || cur.next < cur.segments.length)) {
      // Any further non-empty PLT content means the PLT lists more packets than exist.
      let extra = cur.pending.length - cur.pendingAt;
      for (let i = cur.next; i < cur.segments.length; i++) extra += cur.segments[i]!.dataLength > 0 ? 1 : 0;
      if (extra > 0) {
        throw new J2kError(J2K_ERROR.BAD_PACKET_LENGTHS, `tile ${t}: PLT markers list more packets than the tile's ${total}`, {
          file: this.src.name,
        });
      }
    }
  }

  private fromPlm(t: number, ti: TileIndex, count: number): void {
    if (!this.plmLengths) this.plmLengths = this.decodePlm();
    const parts = this.codestream.tiles[t]!;
    const lengths = parts.flatMap((i) => this.plmLengths![i] ?? []);
    if (lengths.length !== ti.sequence.count) {
      throw new J2kError(J2K_ERROR.BAD_PACKET_LENGTHS, `tile ${t}: PLM lists ${lengths.length} packets, the tile has ${ti.sequence.count}`, {
        file: this.src.name,
      });
    }
    while (ti.known < count) this.place(t, ti, lengths[ti.known]!);
  }

  /** PLM: for each tile-part in codestream order, Nplm then Nplm bytes of lengths. */
  private decodePlm(): number[][] {
    const out: number[][] = [];
    let need = 0;
    let current: number[] = [];
    let value = 0;
    for (const seg of this.codestream.main.plm) {
      const bytes = this.src.read(seg.dataOffset, seg.dataLength);
      let i = 0;
      while (i < bytes.length) {
        if (need === 0) {
          need = bytes[i++]!;
          current = [];
          out.push(current);
          continue;
        }
        const b = bytes[i++]!;
        need--;
        value = value * 128 + (b & 0x7f);
        if (!(b & 0x80)) {
          current.push(value);
          value = 0;
        } else if (value > 0x1fffffff) {
          throw new J2kError(J2K_ERROR.BAD_MARKER, 'PLM: packet length too large', { file: this.src.name, offset: at(this.src, seg.dataOffset + i) });
        }
      }
    }
    if (out.length !== this.codestream.tileParts.length) {
      throw new J2kError(J2K_ERROR.BAD_PACKET_LENGTHS, `PLM describes ${out.length} tile-parts, the codestream has ${this.codestream.tileParts.length}`, {
        file: this.src.name,
      });
    }
    return out;
  }

  private fromHeaders(t: number, ti: TileIndex, count: number): void {
    const pre = this.preloaded?.get(t);
    if (pre && pre.length === ti.sequence.count) {
      while (ti.known < count) this.place(t, ti, pre[ti.known]!);
      if (ti.known === ti.sequence.count) this.preloaded!.delete(t);
      return;
    }
    let w = this.walkers[t];
    if (!w) {
      w = walkPackets(this.src, ti.coding, ti.geometry, ti.sequence, this.placements[t]!.parts);
      this.walkers[t] = w;
    }
    const pl = this.placements[t]!;
    while (ti.known < count) {
      const tp = advance(pl);
      this.place(t, ti, w.next(pl.pos, tp.bodyOffset + tp.bodyLength));
    }
  }
}
