import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream, tileCoding } from '../jpeg2000/codestream.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { buildTileGeometry } from '../jpeg2000/geometry.js';
import { decodePacketLengths } from '../jpeg2000/markers.js';
import { packetSequence } from '../jpeg2000/progression.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { fixtureBytes, fixtures } from './helpers.js';
import {
  PacketBitReader,
  PrecinctState,
  createPrecinctState,
  readPacket,
  type CodeBlockContribution,
  type PacketCursor,
  type PacketInfo,
  type PrecinctShape,
} from '../jpeg2000/packet-header.js';
import { mulberry32 } from '../fixtures-gen/synth.js';

// ---------------------------------------------------------------------------
// A small packet-header encoder, written from ISO/IEC 15444-1 B.10, to produce
// headers of known content.

function randInt(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

/** Bit writer with the stuffing rule: after an 0xFF byte the next byte holds 7 bits. */
class BitWriter {
  readonly bytes: number[] = [];
  private cur = 0;
  private count = 0;
  private cap = 8;

  bit(b: number): void {
    this.cur = (this.cur << 1) | (b & 1);
    if (++this.count === this.cap) {
      this.bytes.push(this.cur);
      this.cap = this.cur === 0xff ? 7 : 8;
      this.cur = 0;
      this.count = 0;
    }
  }

  bits(v: number, n: number): void {
    for (let i = n - 1; i >= 0; i--) this.bit(Math.floor(v / 2 ** i) % 2);
  }

  /** Pads to a byte boundary with zeros; after a final 0xFF adds the stuffed byte. */
  flush(): number[] {
    if (this.count > 0) {
      this.bytes.push(this.cur << (this.cap - this.count));
      this.count = 0;
    } else if (this.bytes.length > 0 && this.bytes[this.bytes.length - 1] === 0xff) {
      this.bytes.push(0);
    }
    return this.bytes;
  }
}

/** Tag-tree encoder (B.10.2) over a grid of leaf values. */
class TagTreeEncoder {
  private readonly levels: { w: number; h: number; value: number[]; low: number[]; known: boolean[] }[] = [];

  constructor(w: number, h: number, leaves: number[]) {
    let value = leaves.slice();
    if (w === 0 || h === 0) return; // a band without code-blocks has no tree
    for (;;) {
      this.levels.push({ w, h, value, low: new Array<number>(w * h).fill(0), known: new Array<boolean>(w * h).fill(false) });
      if (w === 1 && h === 1) break;
      const pw = Math.ceil(w / 2);
      const ph = Math.ceil(h / 2);
      const parent = new Array<number>(pw * ph).fill(Infinity);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const p = (y >> 1) * pw + (x >> 1);
          parent[p] = Math.min(parent[p]!, value[y * w + x]!);
        }
      }
      w = pw;
      h = ph;
      value = parent;
    }
  }

  encode(bw: BitWriter, x: number, y: number, threshold: number): void {
    let low = 0;
    for (let k = this.levels.length - 1; k >= 0; k--) {
      const lv = this.levels[k]!;
      const n = (y >> k) * lv.w + (x >> k);
      if (lv.low[n]! < low) lv.low[n] = low;
      else low = lv.low[n]!;
      while (low < threshold) {
        if (low >= lv.value[n]!) {
          if (!lv.known[n]) {
            bw.bit(1);
            lv.known[n] = true;
          }
          break;
        }
        bw.bit(0);
        low++;
      }
      lv.low[n] = low;
    }
  }
}

/** True when pass `p` (0-based, pass 0 the first cleanup) ends a codeword segment. */
function terminates(p: number, cbStyle: number): boolean {
  if (cbStyle & 0x04) return true;
  if (!(cbStyle & 0x01)) return false;
  if (p === 9) return true;
  if (p < 10) return false;
  const kind = (p - 10) % 3; // 0 raw significance, 1 raw refinement, 2 MQ cleanup
  return kind === 1 || kind === 2;
}

/** Splits passes [p0, p0+n) into segments: passes per segment. */
function splitSegments(p0: number, n: number, cbStyle: number): number[] {
  const out: number[] = [];
  let run = 0;
  for (let p = p0; p < p0 + n; p++) {
    run++;
    if (terminates(p, cbStyle) || p === p0 + n - 1) {
      out.push(run);
      run = 0;
    }
  }
  return out;
}

function encodePasses(bw: BitWriter, n: number): void {
  if (n === 1) bw.bits(0, 1);
  else if (n === 2) bw.bits(0b10, 2);
  else if (n <= 5) bw.bits(0b1100 | (n - 3), 4);
  else if (n <= 36) bw.bits(0b111100000 | (n - 6), 9);
  else bw.bits((0b111111111 << 7) | (n - 37), 16);
}

interface BlockModel {
  firstLayer: number; // layers = never
  zbp: number;
  /** Passes in each layer (0 before the first layer or when not included). */
  passes: number[];
  /** Segment lengths in each layer. */
  lengths: number[][];
  /** Extra Lblock increments to code in each layer (beyond the minimum). */
  extra: number[];
}

interface PrecinctModel {
  shape: PrecinctShape;
  cbStyle: number;
  layers: number;
  bands: BlockModel[][];
  /** Per layer: code an empty packet with a 1 zero-length bit and no inclusions (when nothing contributes). */
  nonEmptyFlag: boolean[];
}

function randomModel(rnd: () => number, opts: { maxGrid?: number; maxLen?: number } = {}): PrecinctModel {
  const maxGrid = opts.maxGrid ?? 4;
  const nb = rnd() < 0.3 ? 1 : 3;
  const layers = randInt(rnd, 1, 6);
  const styles = [0, 0x01, 0x04, 0x05, 0x02 | 0x08 | 0x10 | 0x20, 0x01 | 0x20];
  const cbStyle = styles[randInt(rnd, 0, styles.length - 1)]!;
  const bandsShape: { cbx: number; cby: number }[] = [];
  const bands: BlockModel[][] = [];
  for (let b = 0; b < nb; b++) {
    const zero = rnd() < 0.15;
    const cbx = zero ? (rnd() < 0.5 ? 0 : randInt(rnd, 0, 3)) : randInt(rnd, 1, maxGrid);
    const cby = zero ? 0 : randInt(rnd, 1, maxGrid);
    bandsShape.push({ cbx, cby });
    const blocks: BlockModel[] = [];
    for (let i = 0; i < cbx * cby; i++) {
      const firstLayer = rnd() < 0.2 ? layers : randInt(rnd, 0, layers - 1);
      const zbp = rnd() < 0.1 ? randInt(rnd, 0, 300) : randInt(rnd, 0, 12);
      const passes: number[] = [];
      const lengths: number[][] = [];
      const extra: number[] = [];
      let p0 = 0;
      for (let l = 0; l < layers; l++) {
        let n = 0;
        if (l === firstLayer) n = randInt(rnd, 1, 4);
        else if (l > firstLayer && rnd() < 0.7) n = randInt(rnd, 1, 6);
        if (n > 0 && rnd() < 0.08) n = randInt(rnd, 6, 164);
        passes.push(n);
        const segs = n > 0 ? splitSegments(p0, n, cbStyle) : [];
        const maxLen = opts.maxLen ?? 300;
        lengths.push(segs.map(() => (rnd() < 0.05 ? 0 : rnd() < 0.01 ? randInt(rnd, 0, 1 << 17) : randInt(rnd, 0, maxLen))));
        extra.push(rnd() < 0.15 ? randInt(rnd, 1, 3) : 0);
        p0 += n;
      }
      blocks.push({ firstLayer, zbp, passes, lengths, extra });
    }
    bands.push(blocks);
  }
  const nonEmptyFlag = Array.from({ length: layers }, () => rnd() < 0.5);
  return { shape: { bands: bandsShape }, cbStyle, layers, bands, nonEmptyFlag };
}

interface ExpectedPacket {
  header: number[];
  bodyLength: number;
  empty: boolean;
  blocks: CodeBlockContribution[];
}

/** Encodes every packet header of a precinct, layer by layer. */
function encodePrecinct(m: PrecinctModel): ExpectedPacket[] {
  const incl = m.bands.map((blocks, b) => new TagTreeEncoder(m.shape.bands[b]!.cbx, m.shape.bands[b]!.cby, blocks.map((k) => k.firstLayer)));
  const zbp = m.bands.map((blocks, b) => new TagTreeEncoder(m.shape.bands[b]!.cbx, m.shape.bands[b]!.cby, blocks.map((k) => k.zbp)));
  const lblock = m.bands.map((blocks) => blocks.map(() => 3));
  const passesSoFar = m.bands.map((blocks) => blocks.map(() => 0));
  const out: ExpectedPacket[] = [];
  for (let l = 0; l < m.layers; l++) {
    const any = m.bands.some((blocks) => blocks.some((k) => k.passes[l]! > 0));
    const bw = new BitWriter();
    const contributions: CodeBlockContribution[] = [];
    let body = 0;
    if (!any && !m.nonEmptyFlag[l]) {
      bw.bit(0);
      out.push({ header: bw.flush(), bodyLength: 0, empty: true, blocks: [] });
      continue;
    }
    bw.bit(1);
    for (let b = 0; b < m.bands.length; b++) {
      const { cbx, cby } = m.shape.bands[b]!;
      if (cbx === 0 || cby === 0) continue;
      for (let i = 0; i < cbx * cby; i++) {
        const k = m.bands[b]![i]!;
        const x = i % cbx;
        const y = Math.floor(i / cbx);
        const n = k.passes[l]!;
        if (k.firstLayer >= l) {
          incl[b]!.encode(bw, x, y, l + 1);
          if (k.firstLayer !== l) continue;
          zbp[b]!.encode(bw, x, y, 1e9);
        } else {
          bw.bit(n > 0 ? 1 : 0);
          if (n === 0) continue;
        }
        encodePasses(bw, n);
        const p0 = passesSoFar[b]![i]!;
        const segs = splitSegments(p0, n, m.cbStyle);
        const lens = k.lengths[l]!;
        // Smallest Lblock that codes every length, plus the model's extra increments.
        let need = lblock[b]![i]!;
        segs.forEach((s, j) => {
          while (lens[j]! >= 2 ** (need + Math.floor(Math.log2(s)))) need++;
        });
        need += k.extra[l]!;
        for (let j = lblock[b]![i]!; j < need; j++) bw.bit(1);
        bw.bit(0);
        lblock[b]![i] = need;
        segs.forEach((s, j) => bw.bits(lens[j]!, need + Math.floor(Math.log2(s))));
        const total = lens.reduce((a, v) => a + v, 0);
        contributions.push({
          band: b,
          block: i,
          firstInclusion: k.firstLayer === l,
          zeroBitPlanes: k.zbp,
          passStart: p0,
          passes: n,
          offset: body,
          length: total,
          segmentPasses: segs,
          segmentLengths: lens.slice(),
        });
        body += total;
        passesSoFar[b]![i] = p0 + n;
      }
    }
    out.push({ header: bw.flush(), bodyLength: body, empty: false, blocks: contributions });
  }
  return out;
}

function isJ2k(e: unknown, code?: string): boolean {
  return e instanceof J2kError && (code === undefined || e.code === code);
}

// ---------------------------------------------------------------------------

test('bit reader: MSB first, 7 bits after 0xFF, alignment consumes the byte after a final 0xFF', () => {
  const rd = new PacketBitReader().reset(Uint8Array.of(0xa5, 0xff, 0x7f, 0x80), 0, 4, 100, 'f');
  assert.is(rd.bits(8), 0xa5);
  assert.is(rd.bits(8), 0xff);
  // 0x7F after 0xFF: 7 bits, all ones.
  assert.is(rd.bits(7), 0x7f);
  assert.is(rd.bit(), 1);
  assert.is(rd.align(), 4);

  const rd2 = new PacketBitReader().reset(Uint8Array.of(0xff, 0x00, 0x12), 0, 3, 0, undefined);
  assert.is(rd2.bits(3), 7);
  assert.is(rd2.align(), 2, 'the byte after a final 0xFF belongs to the header');

  const rd3 = new PacketBitReader().reset(Uint8Array.of(0xff), 0, 1, 50, 'g');
  rd3.bits(8);
  try {
    rd3.align();
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.TRUNCATED));
    assert.is((e as J2kError).offset, 51);
    assert.is((e as J2kError).file, 'g');
  }
  const rd4 = new PacketBitReader().reset(Uint8Array.of(0x01), 0, 1, 7, undefined);
  rd4.bits(8);
  try {
    rd4.bit();
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.TRUNCATED));
    assert.is((e as J2kError).offset, 8);
  }
});

test('bit writer and bit reader agree on random bit strings', () => {
  const rnd = mulberry32(7);
  for (let c = 0; c < 200; c++) {
    const n = randInt(rnd, 1, 300);
    const bits: number[] = [];
    const bw = new BitWriter();
    for (let i = 0; i < n; i++) {
      // Runs of ones make 0xFF bytes frequent.
      const b = rnd() < 0.8 ? 1 : 0;
      bits.push(b);
      bw.bit(b);
    }
    const bytes = Uint8Array.from(bw.flush());
    const rd = new PacketBitReader().reset(bytes, 0, bytes.length, 0, undefined);
    for (let i = 0; i < n; i++) assert.is(rd.bit(), bits[i]);
    assert.is(rd.align(), bytes.length);
  }
});

/** One code-block, layer 0: header for `n` passes with a length coded on 3 + floor(log2 n) bits. */
function single(bytes: number[], opts: { sop?: boolean; eph?: boolean; cbStyle?: number } = {}): { info: PacketInfo; blocks: CodeBlockContribution[] } {
  const state = createPrecinctState({ bands: [{ cbx: 1, cby: 1 }] }, opts.cbStyle ?? 0);
  const blocks: CodeBlockContribution[] = [];
  const info = readPacket(state, 0, { bytes: Uint8Array.from(bytes), pos: 0 }, { sop: opts.sop ?? false, eph: opts.eph ?? false, blocks });
  return { info, blocks };
}

test('hand-made headers: the coding-pass codewords of Table B.4', () => {
  // 1 (non-empty) 1 (included) 1 (zbp 0) | passes | 0 (no Lblock increment) | length
  // n=1: "0", length 3 bits 101 -> 111 0 0 101 = E5
  let r = single([0xe5]);
  assert.is(r.info.headerEnd, 1);
  assert.is(r.info.bodyLength, 5);
  assert.equal(r.blocks[0]!.passes, 1);
  assert.is(r.blocks[0]!.zeroBitPlanes, 0);
  // n=2: "10", length 4 bits 1010 -> 111 10 0 1010 -> 11110010 10000000
  r = single([0xf2, 0x80]);
  assert.is(r.info.headerEnd, 2);
  assert.is(r.info.bodyLength, 10);
  assert.is(r.blocks[0]!.passes, 2);
  // n=3: "1100", length 4 bits 0011 -> 111 1100 0 0011 -> 11111000 00110000
  r = single([0xf8, 0x30]);
  assert.is(r.blocks[0]!.passes, 3);
  assert.is(r.info.bodyLength, 3);
  // n=5: "1110", length 5 bits 11111 -> 111 1110 0 11111 -> 11111100 11111000
  r = single([0xfc, 0xf8]);
  assert.is(r.blocks[0]!.passes, 5);
  assert.is(r.info.bodyLength, 31);
  // n=6: "1111 00000", length 5 bits 10000 -> 111 1111 00000 0 10000 -> 11111110 00000100 00000000
  r = single([0xfe, 0x04, 0x00]);
  assert.is(r.blocks[0]!.passes, 6);
  assert.is(r.info.bodyLength, 16);
  assert.is(r.info.headerEnd, 3);
  // n=36: "1111 11110", length 8 bits 01010101; first byte 0xFF so the second holds 7 bits:
  // 11111111 | (0)1110001 | 01010100
  r = single([0xff, 0x71, 0x54]);
  assert.is(r.blocks[0]!.passes, 36);
  assert.is(r.info.bodyLength, 0x55);
  assert.is(r.info.headerEnd, 3);
  // n=37: "1111 11111 0000000", length 3+5 = 8 bits 00000001
  // byte1 = 11111111 (FF); byte2 7 bits = 1111000 -> 0x78; byte3 = 0000 0 000 -> 00; byte4 = 00001 + pad -> 0x08
  r = single([0xff, 0x78, 0x00, 0x08]);
  assert.is(r.blocks[0]!.passes, 37);
  assert.is(r.info.bodyLength, 1);
  // n=164: "1111 11111 1111111", length 3+7 = 10 bits 0000000011
  // byte1 FF; byte2 (7 bits after FF) 1111111 -> 7F; then the last 16 - 5 - 7 = 4 passes bits 1111,
  // Lblock 0 and the 10 length bits:
  // byte3 = 1111 0 000 = F0; byte4 = 0000011 + pad -> 00000110 = 06
  r = single([0xff, 0x7f, 0xf0, 0x06]);
  assert.is(r.blocks[0]!.passes, 164);
  assert.is(r.info.bodyLength, 3);
  assert.is(r.info.headerEnd, 4);
});

test('hand-made headers: empty packet, SOP, EPH, Lblock increment', () => {
  // Empty packet: one 0 bit.
  let r = single([0x00]);
  assert.ok(r.info.empty);
  assert.is(r.info.headerEnd, 1);
  assert.is(r.info.bodyLength, 0);
  assert.is(r.blocks.length, 0);
  // SOP + empty + EPH
  r = single([0xff, 0x91, 0x00, 0x04, 0x01, 0x02, 0x00, 0xff, 0x92], { sop: true, eph: true });
  assert.ok(r.info.sopPresent);
  assert.is(r.info.sopIndex, 0x0102);
  assert.is(r.info.packetStart, 0);
  assert.is(r.info.headerStart, 6);
  assert.is(r.info.headerEnd, 9);
  assert.is(r.info.bodyStart, 9);
  assert.ok(r.info.ephPresent);
  // Lblock 3 -> 5: 111 0 110 + 5 bits 10001 -> 11101101 0001 -> ED 10
  r = single([0xed, 0x10]);
  assert.is(r.info.bodyLength, 17);
  // Non-empty packet with the only code-block not included: 1 0 -> 0x80.
  const state = createPrecinctState({ bands: [{ cbx: 1, cby: 1 }] }, 0);
  const info = readPacket(state, 0, { bytes: Uint8Array.of(0x80), pos: 0 }, { sop: false, eph: false });
  assert.not.ok(info.empty);
  assert.is(info.bodyLength, 0);
  assert.is(state.zeroBitPlanes[0], -1);
  // Layer 1: tree node 1x1 already at lower bound 1; threshold 2: bit 1 -> included in layer 1; zbp "001" -> 2;
  // passes 0 -> 1; Lblock 0; 3-bit length 100.
  // bits: 1 1 001 0 0 100 -> 11001001 00000000
  const info2 = readPacket(state, 1, { bytes: Uint8Array.of(0xc9, 0x00), pos: 0 }, { sop: false, eph: false });
  assert.is(info2.bodyLength, 4);
  assert.is(state.zeroBitPlanes[0], 2);
  assert.is(state.passes[0], 1);
});

test('missing EPH is BAD_PACKET_HEADER; SOP with a bad length too; layer out of order is a RangeError', () => {
  try {
    single([0x00, 0x12, 0x34], { eph: true });
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.BAD_PACKET_HEADER), String(e));
    assert.is((e as J2kError).offset, 1);
  }
  try {
    single([0xff, 0x91, 0x00, 0x05, 0x00, 0x00, 0x00]);
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.BAD_PACKET_HEADER), String(e));
  }
  const state = createPrecinctState({ bands: [{ cbx: 1, cby: 1 }] }, 0);
  assert.throws(() => readPacket(state, 1, { bytes: Uint8Array.of(0), pos: 0 }, { sop: false, eph: false }), RangeError);
  // An EPH is accepted even when COD does not announce it.
  const r = single([0x00, 0xff, 0x92]);
  assert.ok(r.info.ephPresent);
  assert.is(r.info.headerEnd, 3);
});

test('errors carry the file and the absolute offset (base + position)', () => {
  const state = createPrecinctState({ bands: [{ cbx: 2, cby: 2 }] }, 0);
  const src: PacketCursor = { bytes: Uint8Array.of(0x99, 0x99, 0xff), pos: 2, base: 1000, file: 'x.j2k' };
  try {
    readPacket(state, 0, src, { sop: false, eph: false });
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.TRUNCATED));
    assert.is((e as J2kError).file, 'x.j2k');
    assert.is((e as J2kError).offset, 1003);
  }
  assert.is(src.pos, 2, 'the cursor does not move on failure');
});

test('bypass and termall segment boundaries', () => {
  const check = (cbStyle: number, layers: number[], expected: number[][]): void => {
    const m: PrecinctModel = {
      shape: { bands: [{ cbx: 1, cby: 1 }] },
      cbStyle,
      layers: layers.length,
      bands: [[{ firstLayer: 0, zbp: 1, passes: layers, lengths: [], extra: layers.map(() => 0) }]],
      nonEmptyFlag: layers.map(() => true),
    };
    let p0 = 0;
    for (const n of layers) {
      m.bands[0]![0]!.lengths.push(splitSegments(p0, n, cbStyle).map((_, j) => 10 + j));
      p0 += n;
    }
    const packets = encodePrecinct(m);
    const state = createPrecinctState(m.shape, cbStyle);
    const got: number[][] = [];
    for (let l = 0; l < layers.length; l++) {
      const blocks: CodeBlockContribution[] = [];
      readPacket(state, l, { bytes: Uint8Array.from(packets[l]!.header), pos: 0 }, { sop: false, eph: false, blocks });
      got.push(blocks[0]!.segmentPasses);
      assert.equal(
        blocks[0]!.segmentLengths,
        blocks[0]!.segmentPasses.map((_, j) => 10 + j),
      );
    }
    assert.equal(got, expected);
  };
  // Default: one segment per packet contribution.
  check(0, [14, 3], [[14], [3]]);
  // Bypass: MQ passes 0..9, then raw (sig+ref), MQ cleanup, raw ...
  check(0x01, [14, 3], [[10, 2, 1, 1], [1, 1, 1]]);
  check(0x01, [5, 5, 4, 1], [[5], [5], [2, 1, 1], [1]]);
  // Termall, with or without bypass: every pass.
  check(0x04, [3, 2], [[1, 1, 1], [1, 1]]);
  check(0x05, [12], [Array<number>(12).fill(1)]);
});

interface Built {
  models: PrecinctModel[];
  expected: ExpectedPacket[][];
  /** Packet order: [precinct, layer] (LRCP-like interleaving). */
  order: [number, number][];
  sop: boolean;
  eph: boolean;
  /** In-line stream: SOP? header EPH? body per packet. */
  inline: Uint8Array;
  /** Packed: header stream (header EPH?) and body stream (SOP? body). */
  headers: Uint8Array;
  bodies: Uint8Array;
  /** Per packet: [start, headerStart, headerEnd, bodyStart] in the in-line stream. */
  inlinePos: number[][];
  sopUsed: boolean[];
}

class Chunks {
  private readonly parts: Uint8Array[] = [];
  length = 0;

  push(b: ArrayLike<number>): void {
    const u = Uint8Array.from(b);
    this.parts.push(u);
    this.length += u.length;
  }

  result(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function build(rnd: () => number, opts: { maxGrid?: number; maxLen?: number } = {}): Built {
  const np = randInt(rnd, 1, 3);
  const models = Array.from({ length: np }, () => randomModel(rnd, opts));
  const expected = models.map(encodePrecinct);
  const maxLayers = Math.max(...models.map((m) => m.layers));
  const order: [number, number][] = [];
  for (let l = 0; l < maxLayers; l++) for (let p = 0; p < np; p++) if (l < models[p]!.layers) order.push([p, l]);
  const sop = rnd() < 0.4;
  const eph = rnd() < 0.4;
  const inline = new Chunks();
  const headers = new Chunks();
  const bodies = new Chunks();
  const inlinePos: number[][] = [];
  const sopUsed: boolean[] = [];
  order.forEach(([p, l], idx) => {
    const e = expected[p]![l]!;
    const useSop = sop && rnd() < 0.7;
    sopUsed.push(useSop);
    const start = inline.length;
    const sopBytes = useSop ? [0xff, 0x91, 0x00, 0x04, (idx >> 8) & 0xff, idx & 0xff] : [];
    inline.push(sopBytes);
    const hs = inline.length;
    inline.push(e.header);
    if (eph) inline.push([0xff, 0x92]);
    const he = inline.length;
    inlinePos.push([start, hs, he, he]);
    // Body filler: never FF followed by >= 0x90.
    inline.push(new Uint8Array(e.bodyLength).fill(0xa5));
    headers.push(e.header);
    if (eph) headers.push([0xff, 0x92]);
    bodies.push(sopBytes);
    bodies.push(new Uint8Array(e.bodyLength).fill(0x5a));
  });
  return {
    models,
    expected,
    order,
    sop,
    eph,
    inline: inline.result(),
    headers: headers.result(),
    bodies: bodies.result(),
    inlinePos,
    sopUsed,
  };
}

test('round trip: random precincts, layers, empty packets, SOP/EPH, bypass/termall (in-line headers)', () => {
  const rnd = mulberry32(12345);
  let trailingFF = 0;
  let packets = 0;
  for (let c = 0; c < 600; c++) {
    const bt = build(rnd);
    const states = bt.models.map((m) => createPrecinctState(m.shape, m.cbStyle));
    const cur: PacketCursor = { bytes: bt.inline, pos: 0, base: 77, file: 'r' };
    const into = {} as PacketInfo;
    const blocks: CodeBlockContribution[] = [];
    bt.order.forEach(([p, l], idx) => {
      const e = bt.expected[p]![l]!;
      if (e.header.length >= 2 && e.header[e.header.length - 2] === 0xff) trailingFF++;
      const want = bt.inlinePos[idx]!;
      assert.is(cur.pos, want[0]);
      const info = readPacket(states[p]!, l, cur, { sop: bt.sop, eph: bt.eph, blocks, into });
      assert.is(info, into);
      assert.is(info.layer, l);
      assert.is(info.packetStart, want[0]);
      assert.is(info.headerStart, want[1]);
      assert.is(info.headerEnd, want[2]);
      assert.is(info.bodyStart, want[3]);
      assert.is(info.sopPresent, bt.sopUsed[idx]);
      assert.is(info.sopIndex, bt.sopUsed[idx] ? idx : -1);
      assert.is(info.ephPresent, bt.eph);
      assert.is(info.empty, e.empty);
      assert.is(info.bodyLength, e.bodyLength);
      assert.equal(blocks, e.blocks);
      assert.is(cur.pos, info.headerEnd);
      cur.pos = info.bodyStart + info.bodyLength;
      packets++;
    });
    assert.is(cur.pos, bt.inline.length);
  }
  assert.ok(packets > 2000, `${packets} packets`);
  assert.ok(trailingFF > 0, 'some headers end with 0xFF and a stuffed byte');
});

test('round trip without detail gives the same positions; states are independent', () => {
  const rnd = mulberry32(99);
  for (let c = 0; c < 200; c++) {
    const bt = build(rnd, { maxGrid: 9 });
    const states = bt.models.map((m) => createPrecinctState(m.shape, m.cbStyle));
    const cur: PacketCursor = { bytes: bt.inline, pos: 0 };
    for (const [p, l] of bt.order) {
      const info = readPacket(states[p]!, l, cur, { sop: bt.sop, eph: bt.eph });
      assert.is(info.bodyLength, bt.expected[p]![l]!.bodyLength);
      cur.pos = info.bodyStart + info.bodyLength;
    }
    assert.is(cur.pos, bt.inline.length);
    // reset() allows a second pass over the same data.
    for (const s of states) s.reset();
    cur.pos = 0;
    for (const [p, l] of bt.order) {
      const info = readPacket(states[p]!, l, cur, { sop: bt.sop, eph: bt.eph });
      cur.pos = info.bodyStart + info.bodyLength;
    }
    assert.is(cur.pos, bt.inline.length);
  }
});

test('round trip with packed headers (PPM/PPT): headers from one stream, SOP and bodies in the tile data', () => {
  const rnd = mulberry32(4242);
  for (let c = 0; c < 300; c++) {
    const bt = build(rnd);
    const states = bt.models.map((m) => createPrecinctState(m.shape, m.cbStyle));
    const hdr: PacketCursor = { bytes: bt.headers, pos: 0 };
    const body: PacketCursor = { bytes: bt.bodies, pos: 0 };
    bt.order.forEach(([p, l], idx) => {
      const e = bt.expected[p]![l]!;
      const blocks: CodeBlockContribution[] = [];
      const before = hdr.pos;
      const info = readPacket(states[p]!, l, hdr, { sop: bt.sop, eph: bt.eph, body, blocks, packetIndex: idx });
      assert.is(info.headerStart, before);
      assert.is(info.headerEnd, before + e.header.length + (bt.eph ? 2 : 0));
      assert.is(hdr.pos, info.headerEnd);
      assert.is(info.packetStart, body.pos);
      assert.is(info.sopPresent, bt.sopUsed[idx]);
      assert.is(info.bodyStart, body.pos + (bt.sopUsed[idx] ? 6 : 0));
      assert.is(info.bodyLength, e.bodyLength);
      assert.equal(blocks, e.blocks);
      body.pos = info.bodyStart + info.bodyLength;
    });
    assert.is(hdr.pos, bt.headers.length);
    assert.is(body.pos, bt.bodies.length);
  }
});

test('truncation at every byte of a packet header is a J2kError (TRUNCATED, or BAD_PACKET_HEADER for a cut EPH)', () => {
  const rnd = mulberry32(2024);
  let cuts = 0;
  for (let c = 0; c < 150; c++) {
    const bt = build(rnd, { maxGrid: 3 });
    const states = bt.models.map((m) => createPrecinctState(m.shape, m.cbStyle));
    const cur: PacketCursor = { bytes: bt.inline, pos: 0 };
    bt.order.forEach(([p, l], idx) => {
      const [start, , headerEnd] = bt.inlinePos[idx]!;
      for (let cut = start!; cut < headerEnd!; cut++) {
        const trial = states[p]!.clone();
        const tc: PacketCursor = { bytes: bt.inline, pos: start!, end: cut, base: 5000 };
        try {
          readPacket(trial, l, tc, { sop: bt.sop, eph: bt.eph });
          assert.unreachable(`cut at ${cut} of [${start}, ${headerEnd})`);
        } catch (e) {
          if (!isJ2k(e)) throw e;
          const err = e as J2kError;
          assert.ok(err.code === J2K_ERROR.TRUNCATED, `${err.code} ${err.message}`);
          assert.ok(err.offset! >= 5000 + start! && err.offset! <= 5000 + cut, `offset ${err.offset}`);
        }
        assert.is(tc.pos, start);
        cuts++;
      }
      const info = readPacket(states[p]!, l, cur, { sop: bt.sop, eph: bt.eph });
      cur.pos = info.bodyStart + info.bodyLength;
    });
  }
  assert.ok(cuts > 1000, `${cuts} cuts`);
});

test('clone and copyFrom: a failed read can be retried from a saved state', () => {
  const rnd = mulberry32(5);
  for (let c = 0; c < 50; c++) {
    const bt = build(rnd);
    const states = bt.models.map((m) => createPrecinctState(m.shape, m.cbStyle));
    const cur: PacketCursor = { bytes: bt.inline, pos: 0 };
    bt.order.forEach(([p, l], idx) => {
      const [start, , headerEnd] = bt.inlinePos[idx]!;
      const saved = states[p]!.clone();
      try {
        readPacket(states[p]!, l, { bytes: bt.inline, pos: start!, end: Math.max(start!, headerEnd! - 1) }, { sop: bt.sop, eph: bt.eph });
        assert.unreachable();
      } catch (e) {
        assert.ok(isJ2k(e));
      }
      states[p]!.copyFrom(saved);
      const info = readPacket(states[p]!, l, cur, { sop: bt.sop, eph: bt.eph });
      assert.is(info.bodyLength, bt.expected[p]![l]!.bodyLength);
      cur.pos = info.bodyStart + info.bodyLength;
    });
    assert.is(cur.pos, bt.inline.length);
  }
});

test('hostile data: random bytes never throw anything but J2kError and always end', () => {
  const rnd = mulberry32(666);
  let ok = 0;
  let bad = 0;
  for (let c = 0; c < 3000; c++) {
    const n = randInt(rnd, 0, 64);
    const bytes = new Uint8Array(n);
    const mode = c % 3;
    for (let i = 0; i < n; i++) bytes[i] = mode === 0 ? randInt(rnd, 0, 255) : mode === 1 ? (rnd() < 0.9 ? 0xff : randInt(rnd, 0, 255)) : rnd() < 0.9 ? 0 : 0xff;
    const bands = Array.from({ length: randInt(rnd, 1, 3) }, () => ({ cbx: randInt(rnd, 0, 6), cby: randInt(rnd, 0, 6) }));
    const state = new PrecinctState({ bands }, [0, 1, 4, 5][c % 4]!);
    const cur: PacketCursor = { bytes, pos: 0 };
    const layers = randInt(rnd, 1, 8);
    try {
      for (let l = 0; l < layers; l++) {
        const info = readPacket(state, l, cur, { sop: rnd() < 0.5, eph: rnd() < 0.5, blocks: [] });
        cur.pos = info.headerEnd;
      }
      ok++;
    } catch (e) {
      if (!isJ2k(e)) throw e;
      bad++;
    }
  }
  assert.ok(ok > 0 && bad > 0, `${ok} ok, ${bad} errors`);
});

test('hostile data: long runs of Lblock increments and huge zero bit-plane counts are BAD_PACKET_HEADER', () => {
  // 1 1 1 (included, zbp 0) 0 (1 pass) then 1-bits forever: Lblock grows past 31.
  const bytes = new Uint8Array(64).fill(0xff);
  bytes[0] = 0xef; // then 0xFF bytes: 8, then 7 (after 0xFF, the stuffed bit ignored) ones each
  try {
    single(Array.from(bytes));
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.BAD_PACKET_HEADER), String(e));
  }
  // 1 1 then zeros: the zero bit-plane tree never ends.
  const zeros = new Uint8Array(400);
  zeros[0] = 0xc0;
  try {
    single(Array.from(zeros));
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.BAD_PACKET_HEADER), String(e));
  }
  // The same, cut short: TRUNCATED.
  try {
    single(Array.from(zeros.subarray(0, 20)));
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.TRUNCATED), String(e));
  }
});

test('hostile data: a packet body above 2^32 bytes is BAD_PACKET_HEADER; 31-bit lengths are fine', () => {
  const model = (n: number): PrecinctModel => ({
    shape: { bands: [{ cbx: n, cby: 1 }] },
    cbStyle: 0,
    layers: 1,
    bands: [Array.from({ length: n }, () => ({ firstLayer: 0, zbp: 0, passes: [1], lengths: [[2 ** 31 - 1]], extra: [0] }))],
    nonEmptyFlag: [true],
  });
  const two = encodePrecinct(model(2))[0]!;
  const ok = readPacket(createPrecinctState(model(2).shape, 0), 0, { bytes: Uint8Array.from(two.header), pos: 0 }, { sop: false, eph: false });
  assert.is(ok.bodyLength, 2 * (2 ** 31 - 1));
  const three = encodePrecinct(model(3))[0]!;
  try {
    readPacket(createPrecinctState(model(3).shape, 0), 0, { bytes: Uint8Array.from(three.header), pos: 0 }, { sop: false, eph: false });
    assert.unreachable();
  } catch (e) {
    assert.ok(isJ2k(e, J2K_ERROR.BAD_PACKET_HEADER), String(e));
  }
});

test('copyFrom refuses a state of another shape', () => {
  const a = createPrecinctState({ bands: [{ cbx: 2, cby: 2 }] }, 0);
  const b = createPrecinctState({ bands: [{ cbx: 3, cby: 1 }] }, 0);
  assert.throws(() => a.copyFrom(b), RangeError);
  a.copyFrom(createPrecinctState({ bands: [{ cbx: 2, cby: 2 }] }, 0));
});

test('bands with no code-block contribute nothing; shape validation', () => {
  const state = createPrecinctState({ bands: [{ cbx: 0, cby: 3 }, { cbx: 1, cby: 1 }, { cbx: 4, cby: 0 }] }, 0);
  assert.is(state.blockCount, 1);
  assert.equal(state.bandGrid(0), { cbx: 0, cby: 3 });
  assert.is(state.blockIndex(1, 0), 0);
  const r = readPacket(state, 0, { bytes: Uint8Array.of(0xe5), pos: 0 }, { sop: false, eph: false });
  assert.is(r.bodyLength, 5);
  assert.throws(() => createPrecinctState({ bands: [{ cbx: -1, cby: 1 }] }, 0), RangeError);
  assert.throws(() => createPrecinctState({ bands: [{ cbx: 1.5, cby: 1 }] }, 0), RangeError);
  // A precinct with no code-block at all: only empty packets make sense, a 1 bit is harmless.
  const none = createPrecinctState({ bands: [] }, 0);
  const e = readPacket(none, 0, { bytes: Uint8Array.of(0x80), pos: 0 }, { sop: false, eph: false });
  assert.is(e.bodyLength, 0);
  assert.is(e.headerEnd, 1);
});

test('packed headers: an SOP after an empty packet without SOP is resolved by packetIndex', () => {
  // Packet 0: empty header (0x00), no SOP, no body. Packet 1: SOP Nsop=1, empty header.
  const headers = Uint8Array.of(0x00, 0x00);
  const bodies = Uint8Array.of(0xff, 0x91, 0x00, 0x04, 0x00, 0x01);
  const st = createPrecinctState({ bands: [{ cbx: 1, cby: 1 }] }, 0);
  const hdr: PacketCursor = { bytes: headers, pos: 0 };
  const body: PacketCursor = { bytes: bodies, pos: 0 };
  const a = readPacket(st, 0, hdr, { sop: true, eph: false, body, packetIndex: 0 });
  assert.not.ok(a.sopPresent);
  assert.is(a.bodyStart, 0);
  body.pos = a.bodyStart + a.bodyLength;
  const b = readPacket(st, 1, hdr, { sop: true, eph: false, body, packetIndex: 1 });
  assert.ok(b.sopPresent);
  assert.is(b.bodyStart, 6);
  // Without packetIndex the SOP is taken as the first packet's.
  const st2 = createPrecinctState({ bands: [{ cbx: 1, cby: 1 }] }, 0);
  const c = readPacket(st2, 0, { bytes: headers, pos: 0 }, { sop: true, eph: false, body: { bytes: bodies, pos: 0 } });
  assert.ok(c.sopPresent);
});

// ---------------------------------------------------------------------------
// Real codestreams (opj_compress fixtures): walk every tile with the geometry
// and the progression, check packets tile the tile-part bodies, agree with PLT
// where present, give consistent per-code-block detail, and parse the same when
// the headers are moved out into a packed-header stream.

for (const f of fixtures()) {
  test(`fixture ${f.name}: packet headers walk every tile${f.args.includes('-PLT') ? ' and agree with PLT' : ''}`, () => {
    const whole = bufferSource(fixtureBytes(f.file), f.file);
    const ref = readContainer(whole).codestreams[0]!;
    const src = subSource(whole, ref.offset, ref.length);
    const cs = readCodestream(src);
    const counts = new Int32Array(6);
    let packets = 0;
    for (let t = 0; t < cs.tiles.length; t++) {
      const coding = tileCoding(cs, t);
      const geometry = buildTileGeometry(cs.main.siz, coding, t);
      const seq = packetSequence(geometry, coding);
      const parts = cs.tiles[t]!.map((i) => cs.tileParts[i]!);
      const plt: number[] = [];
      for (const tp of parts) {
        for (const seg of tp.plt) decodePacketLengths(src.read(seg.dataOffset, seg.dataLength), 0, seg.dataLength, plt);
      }
      const shape = (k: number): PrecinctShape => {
        const n = geometry.precinctCodeBlockCounts(seq.component[k]!, seq.resolution[k]!, seq.precinct[k]!, counts);
        return { bands: Array.from({ length: n }, (_, i) => ({ cbx: counts[2 * i]!, cby: counts[2 * i + 1]! })) };
      };
      const slotOf = (k: number): number => geometry.componentBase(seq.component[k]!) + geometry.precinctsBefore(seq.component[k]!, seq.resolution[k]!) + seq.precinct[k]!;
      const states = new Map<number, PrecinctState>();
      const lengths: number[] = [];
      const packedHeaders = new Chunks();
      const packedBodies = new Chunks();
      const passesSeen = new Map<string, number>();
      let k = 0;
      for (const tp of parts) {
        const body = src.read(tp.bodyOffset, tp.bodyLength);
        const cur: PacketCursor = { bytes: body, pos: 0, base: ref.offset + tp.bodyOffset, file: f.file };
        while (cur.pos < body.length) {
          assert.ok(k < seq.count, `tile ${t}: more data than packets`);
          const slot = slotOf(k);
          let st = states.get(slot);
          if (!st) {
            st = createPrecinctState(shape(k), coding.components[seq.component[k]!]!.cbStyle);
            states.set(slot, st);
          }
          const blocks: CodeBlockContribution[] = [];
          const start = cur.pos;
          const info = readPacket(st, seq.layer[k]!, cur, { sop: coding.sop, eph: coding.eph, blocks });
          assert.is(info.packetStart, start);
          if (coding.sop) assert.ok(info.sopPresent && info.sopIndex === (k & 0xffff), `tile ${t} packet ${k}: SOP ${info.sopIndex}`);
          assert.is(info.ephPresent, coding.eph);
          // Per-code-block detail is consistent with the body length and earlier layers.
          let off = 0;
          for (const b of blocks) {
            assert.is(b.offset, off);
            assert.is(b.length, b.segmentLengths.reduce((a, v) => a + v, 0));
            assert.is(b.passes, b.segmentPasses.reduce((a, v) => a + v, 0));
            const key = `${slot}/${b.band}/${b.block}`;
            assert.is(b.passStart, passesSeen.get(key) ?? 0);
            assert.is(b.firstInclusion, !passesSeen.has(key));
            passesSeen.set(key, b.passStart + b.passes);
            off += b.length;
          }
          assert.is(off, info.bodyLength);
          const end = info.bodyStart + info.bodyLength;
          assert.ok(end <= body.length, `tile ${t} packet ${k} runs past its tile-part`);
          lengths.push(end - start);
          // The same packet with its header moved out (PPT-style).
          packedHeaders.push(body.subarray(info.headerStart, info.headerEnd));
          packedBodies.push(body.subarray(start, info.headerStart));
          packedBodies.push(body.subarray(info.headerEnd, end));
          cur.pos = end;
          k++;
        }
      }
      assert.is(k, seq.count, `tile ${t}: every packet of the sequence is in the data`);
      if (plt.length > 0) assert.equal(lengths, plt, `tile ${t}: lengths = PLT`);
      // Re-parse the packed form.
      const hdr: PacketCursor = { bytes: packedHeaders.result(), pos: 0 };
      const bodies: PacketCursor = { bytes: packedBodies.result(), pos: 0 };
      const fresh = new Map<number, PrecinctState>();
      for (let j = 0; j < seq.count; j++) {
        const slot = slotOf(j);
        let st = fresh.get(slot);
        if (!st) {
          st = createPrecinctState(shape(j), coding.components[seq.component[j]!]!.cbStyle);
          fresh.set(slot, st);
        }
        const info = readPacket(st, seq.layer[j]!, hdr, { sop: coding.sop, eph: coding.eph, body: bodies, packetIndex: j });
        const end = info.bodyStart + info.bodyLength;
        assert.is(end - info.packetStart, lengths[j]! - (info.headerEnd - info.headerStart), `tile ${t} packet ${j} (packed)`);
        bodies.pos = end;
      }
      assert.is(hdr.pos, hdr.bytes.length);
      assert.is(bodies.pos, bodies.bytes.length);
      packets += seq.count;
    }
    assert.ok(packets > 0);
  });
}

test.run();
