import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { readMainHeader, readTilePart, tileCoding, type MainHeader } from '../jpeg2000/codestream.js';
import { buildTileGeometry, numTiles as tilesOf, type TileGeometry } from '../jpeg2000/geometry.js';
import { MARKER, markerName, type TileCoding } from '../jpeg2000/markers.js';
import { createPrecinctState, newPacketInfo, readPacket, type PacketCursor } from '../jpeg2000/packet-header.js';
import { packetSequence } from '../jpeg2000/progression.js';
import { bufferSource } from '../jpeg2000/source.js';
import { concatBytes } from '../jpeg2000/boxes.js';

/**
 * Client side: rebuilds a codestream that any JPEG 2000 decoder accepts from
 * the data-bins a JPIP client holds (JPP-stream), whatever is missing.
 *
 * Layout of the result (see the protocol brief, section 4.5):
 *   main header bin without TLM/PLM (their lengths no longer hold), then per
 *   tile: SOT (Lsot = 10, Psot computed, TPsot = 0, TNsot = 1), the tile header
 *   bin, SOD, every packet of the tile in the codestream's own progression
 *   order (COD/COC/POC of the main and tile headers), and finally EOC.
 *
 * The packet of (c, s, l) is the l-th packet of the precinct bin when the bin
 * holds it whole. Packet boundaries inside a bin are found by decoding the
 * packet headers (one precinct state per precinct, layer by layer), so a
 * partial bin yields its k complete packets and drops the cut one. A cut or
 * missing packet, and every later layer of that precinct, becomes an empty
 * packet: one 0x00 byte, or `00 FF 92` when the tile's COD asks for EPH.
 * SOP markers are optional, so empty packets get none; packets taken from a
 * bin keep theirs (their Nsop still matches: the packet order is unchanged).
 *
 * Plain JS, no Node API: the browser viewer runs it too.
 */

export interface PrecinctBinData {
  /** The bin's bytes from offset 0 (what the client holds contiguously from the start). */
  bytes: Uint8Array;
  /** The client has the bin's last byte (the server set the "c" bit). */
  complete: boolean;
}

export interface ReassembleInput {
  /** Main header data-bin (class 6), complete. */
  mainHeader: Uint8Array;
  /**
   * Tile header data-bin (class 2) of tile t, complete; undefined when the client
   * does not have it (taken as empty: fine for the usual encoders, which put
   * nothing in tile headers, and counted in `missingTileHeaders`).
   */
  tileHeader(t: number): Uint8Array | undefined;
  /** Precinct data-bin of precinct s of component c in tile t, or undefined when the client has none of it. */
  precinct(t: number, c: number, s: number): PrecinctBinData | undefined;
}

export interface ReassembleOptions {
  /** Use layers l < maxLayers only (later packets become empty packets). Default: all. */
  maxLayers?: number;
}

export interface TileComponentStats {
  tile: number;
  component: number;
  /** completeLayers[s]: packets of precinct s taken from its bin (layers 0..n-1). */
  completeLayers: Uint16Array;
  /** Layers of the tile (what completeLayers would be with every bin complete). */
  layers: number;
  /** Bytes of packets taken from the bins of this tile-component. */
  bytes: number;
}

export interface ReassembleProblem {
  tile: number;
  component: number;
  precinct: number;
  layer: number;
  /**
   * Why the rest of the bin was not used: a packet header that does not
   * decode, or a bin marked complete whose bytes are not exactly whole packets
   * (cut short, or bytes after its last layer).
   */
  message: string;
}

export interface ReassembleResult {
  codestream: Uint8Array;
  /** The main header as parsed from the bin. */
  main: MainHeader;
  /** Packets written (taken from bins plus empty ones). */
  packets: number;
  /** Packets written as empty packets (missing, cut, beyond maxLayers, or after one of those). */
  emptyPackets: number;
  /** Bytes of packets taken from the bins. */
  packetBytes: number;
  /** One entry per tile and component, tile-major. */
  tileComponents: TileComponentStats[];
  /** Tiles whose tile header bin was missing (written with an empty tile header). */
  missingTileHeaders: number[];
  /** Bins that are not what they claim (see ReassembleProblem); the reassembly uses their whole packets. */
  problems: ReassembleProblem[];
}


function sot(t: number, psot: number): Uint8Array {
  return Uint8Array.of(0xff, 0x90, 0, 10, t >> 8, t & 0xff, psot >>> 24, (psot >>> 16) & 0xff, (psot >>> 8) & 0xff, psot & 0xff, 0, 1);
}

/**
 * Parses a main header data-bin (SOC up to the first SOT). Throws a J2kError
 * when it is not a complete main header.
 */
export function parseMainHeaderBin(bytes: Uint8Array): MainHeader {
  // readMainHeader stops at an SOT: give it one.
  const probe = new Uint8Array(bytes.length + 12);
  probe.set(bytes);
  probe.set(sot(0, 0), bytes.length);
  const main = readMainHeader(bufferSource(probe, 'main header data-bin'));
  if (main.end !== bytes.length) {
    throw new J2kError(J2K_ERROR.BAD_MARKER, `main header data-bin: an SOT at ${main.end} before its end (${bytes.length})`, { offset: main.end });
  }
  if (main.ppm.length > 0) {
    throw new J2kError(J2K_ERROR.UNSUPPORTED, 'packed packet headers (PPM) are not supported', { offset: main.segments.find((s) => s.marker === MARKER.PPM)?.offset });
  }
  return main;
}

/** The main header for the rebuilt codestream: the bin without TLM and PLM segments. */
function rebuiltMainHeader(bytes: Uint8Array, main: MainHeader): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const seg of main.segments) {
    if (seg.marker === MARKER.TLM || seg.marker === MARKER.PLM) continue;
    const len = seg.marker === MARKER.SOC ? 2 : 2 + seg.length;
    out.push(bytes.subarray(seg.offset, seg.offset + len));
  }
  return out;
}

/**
 * The marker segments of a tile header data-bin that go into the rebuilt
 * tile-part header: everything but SOT, SOD, PLT (lengths would be wrong) and
 * PPT (refused). Accepts bins that end with SOD or start with an SOT segment
 * (some servers send them so).
 */
export function tileHeaderSegments(bytes: Uint8Array, t: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (pos + 2 > bytes.length || bytes[pos] !== 0xff || bytes[pos + 1]! < 0x30) {
      throw new J2kError(J2K_ERROR.BAD_MARKER, `tile ${t} header data-bin: no marker at byte ${pos}`, { offset: pos });
    }
    const marker = (bytes[pos]! << 8) | bytes[pos + 1]!;
    if (marker === MARKER.SOD) break;
    if (pos + 4 > bytes.length) throw new J2kError(J2K_ERROR.TRUNCATED, `tile ${t} header data-bin: ${markerName(marker)} cut`, { offset: pos });
    const len = (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
    if (len < 2 || pos + 2 + len > bytes.length) {
      throw new J2kError(J2K_ERROR.TRUNCATED, `tile ${t} header data-bin: ${markerName(marker)} of ${len} bytes runs past its end`, { offset: pos });
    }
    if (marker === MARKER.PPT) throw new J2kError(J2K_ERROR.UNSUPPORTED, 'packed packet headers (PPT) are not supported', { offset: pos });
    if (marker !== MARKER.SOT && marker !== MARKER.PLT) out.push(bytes.subarray(pos, pos + 2 + len));
    pos += 2 + len;
  }
  return out;
}

/** The coding style of tile t: the main header's, overridden by the tile header's segments. */
export function tileCodingFrom(main: MainHeader, t: number, headerSegments: readonly Uint8Array[]): TileCoding {
  let h = 0;
  for (const s of headerSegments) h += s.length;
  const bytes = new Uint8Array(12 + h + 2);
  bytes.set(sot(t, bytes.length), 0);
  let at = 12;
  for (const s of headerSegments) {
    bytes.set(s, at);
    at += s.length;
  }
  bytes[at] = 0xff;
  bytes[at + 1] = 0x93;
  const nt = tilesOf(main.siz);
  const tp = readTilePart(bufferSource(bytes, `tile ${t} header data-bin`), 0, main, nt);
  const tiles: number[][] = [];
  tiles[t] = [0];
  return tileCoding({ main, tileParts: [tp], tiles }, t);
}

export interface PrecinctPackets {
  /** ends[l]: offset in the bin just past the packet of layer l; one entry per complete packet. */
  ends: number[];
  /** Set when a packet header does not decode (not when the data just stops). */
  error: J2kError | undefined;
}

/**
 * Finds the complete packets at the start of a precinct bin (layers 0, 1, ...)
 * by decoding their headers: precinct s of component c of the tile whose
 * geometry and coding are given. Stops at the first packet that is cut, after
 * `maxLayers` packets, or at a header that does not decode (`error`).
 */
export function precinctPackets(
  bytes: Uint8Array,
  geometry: TileGeometry,
  coding: TileCoding,
  c: number,
  s: number,
  maxLayers: number = coding.layers,
): PrecinctPackets {
  const ends: number[] = [];
  const rp = geometry.seqToPrecinct(c, s);
  if (!rp) throw new RangeError(`precinct ${s} of component ${c}: the tile-component has ${geometry.precinctTotal(c)}`);
  const counts = new Int32Array(6);
  const n = geometry.precinctCodeBlockCounts(c, rp.r, rp.p, counts);
  const bands: { cbx: number; cby: number }[] = [];
  for (let i = 0; i < n; i++) bands.push({ cbx: counts[2 * i]!, cby: counts[2 * i + 1]! });
  const state = createPrecinctState({ bands }, coding.components[c]!.cbStyle);
  const info = newPacketInfo();
  const opts = { sop: coding.sop, eph: coding.eph, into: info };
  const limit = Math.min(maxLayers, coding.layers);
  let pos = 0;
  for (let l = 0; l < limit && pos < bytes.length; l++) {
    const cursor: PacketCursor = { bytes, pos, end: bytes.length };
    try {
      readPacket(state, l, cursor, opts);
    } catch (e) {
      if (e instanceof J2kError && e.code === J2K_ERROR.TRUNCATED) break;
      if (e instanceof J2kError) return { ends, error: e };
      throw e;
    }
    const stop = info.bodyStart + info.bodyLength;
    if (stop > bytes.length) break;
    ends.push(stop);
    pos = stop;
  }
  return { ends, error: undefined };
}

const EMPTY_PACKET = Uint8Array.of(0x00);
const EMPTY_PACKET_EPH = Uint8Array.of(0x00, 0xff, 0x92);

/** Rebuilds a decodable codestream from data-bins (see the module comment). */
export function reassemble(input: ReassembleInput, opts: ReassembleOptions = {}): ReassembleResult {
  const maxLayers = opts.maxLayers ?? Infinity;
  if (!(maxLayers >= 0)) throw new RangeError(`maxLayers ${maxLayers}`);
  const main = parseMainHeaderBin(input.mainHeader);
  const chunks: Uint8Array[] = rebuiltMainHeader(input.mainHeader, main);
  const nt = tilesOf(main.siz);
  const nc = main.siz.components.length;
  const tileComponents: TileComponentStats[] = [];
  const missingTileHeaders: number[] = [];
  const problems: ReassembleProblem[] = [];
  let packets = 0;
  let emptyPackets = 0;
  let packetBytes = 0;

  for (let t = 0; t < nt; t++) {
    const hb = input.tileHeader(t);
    if (hb === undefined) missingTileHeaders.push(t);
    const header = hb === undefined ? [] : tileHeaderSegments(hb, t);
    const coding = tileCodingFrom(main, t, header);
    const geometry = buildTileGeometry(main.siz, coding, t);
    const sequence = packetSequence(geometry, coding);
    const empty = coding.eph ? EMPTY_PACKET_EPH : EMPTY_PACKET;
    const stats: TileComponentStats[] = [];
    for (let c = 0; c < nc; c++) {
      stats.push({ tile: t, component: c, completeLayers: new Uint16Array(geometry.precinctTotal(c)), layers: coding.layers, bytes: 0 });
    }
    // Per tile-wide precinct slot: the bin's bytes and its complete packets' ends.
    const binBytes: (Uint8Array | undefined)[] = new Array(geometry.totalPrecincts).fill(undefined);
    const binEnds: (number[] | undefined)[] = new Array(geometry.totalPrecincts).fill(undefined);

    const body: Uint8Array[] = [];
    let bodyLength = 0;
    for (let k = 0; k < sequence.count; k++) {
      const l = sequence.layer[k]!;
      const r = sequence.resolution[k]!;
      const c = sequence.component[k]!;
      const s = geometry.precinctsBefore(c, r) + sequence.precinct[k]!;
      const slot = geometry.componentBase(c) + s;
      let ends = binEnds[slot];
      if (ends === undefined) {
        const bin = input.precinct(t, c, s);
        ends = [];
        if (bin !== undefined && bin.bytes.length > 0) {
          const found = precinctPackets(bin.bytes, geometry, coding, c, s, maxLayers);
          ends = found.ends;
          const used = ends.length > 0 ? ends[ends.length - 1]! : 0;
          if (found.error) problems.push({ tile: t, component: c, precinct: s, layer: ends.length, message: found.error.message });
          else if (bin.complete) {
            // A bin said to be complete must be exactly its packets: every layer the codestream has for it.
            let layers = 0;
            while (layers < coding.layers && sequence.packetOf(c, s, layers) >= 0) layers++;
            const short = ends.length < Math.min(layers, maxLayers);
            if (short || (maxLayers >= layers && used !== bin.bytes.length)) {
              problems.push({
                tile: t,
                component: c,
                precinct: s,
                layer: ends.length,
                message: `complete bin of ${bin.bytes.length} bytes: ${ends.length} whole packets of ${layers}, ending at byte ${used}`,
              });
            }
          }
          binBytes[slot] = bin.bytes;
        }
        binEnds[slot] = ends;
        const st = stats[c]!;
        st.completeLayers[s] = ends.length;
        st.bytes += ends.length > 0 ? ends[ends.length - 1]! : 0;
      }
      let packet: Uint8Array;
      if (l < ends.length) {
        packet = binBytes[slot]!.subarray(l === 0 ? 0 : ends[l - 1]!, ends[l]!);
        packetBytes += packet.length;
      } else {
        packet = empty;
        emptyPackets++;
      }
      body.push(packet);
      bodyLength += packet.length;
      packets++;
    }

    let headerLength = 0;
    for (const s of header) headerLength += s.length;
    const psot = 12 + headerLength + 2 + bodyLength;
    if (psot > 0xffffffff) throw new J2kError(J2K_ERROR.UNSUPPORTED, `tile ${t}: ${psot} bytes do not fit one tile-part`);
    chunks.push(sot(t, psot));
    for (const seg of header) chunks.push(seg);
    chunks.push(Uint8Array.of(0xff, 0x93));
    // A loop, not push(...body): a tile may have millions of packets.
    for (const p of body) chunks.push(p);
    for (const st of stats) tileComponents.push(st);
  }
  chunks.push(Uint8Array.of(0xff, 0xd9));

  const codestream = concatBytes(chunks);
  return { codestream, main, packets, emptyPackets, packetBytes, tileComponents, missingTileHeaders, problems };
}
