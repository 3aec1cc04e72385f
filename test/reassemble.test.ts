import { readdirSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream, type Codestream } from '../jpeg2000/codestream.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { MARKER } from '../jpeg2000/markers.js';
import { CodestreamIndex } from '../jpeg2000/packet-index.js';
import { mulberry32 } from '../fixtures-gen/synth.js';
import { bufferSource, subSource, type RandomAccess } from '../jpeg2000/source.js';
import { cutRanges, mainHeaderBin, precinctBin, rangesLength, readRanges, tileBin, tileHeaderBin, type ByteRange } from '../jpip/databin-map.js';
import {
  parseMainHeaderBin,
  precinctPackets,
  reassemble,
  tileHeaderSegments,
  type PrecinctBinData,
  type ReassembleInput,
  type ReassembleOptions,
  type ReassembleResult,
} from '../jpip/reassemble.js';
import { decodeOpj, decodeWasm, firstDifference, imagesEqual, opjDecompressAvailable, psnr, type DecodedImage } from '../client-sim/decode.js';
import { FIXTURES, fixtureBytes, fixtures } from './helpers.js';

/**
 * A JPIP server in miniature (no network): every data-bin of a fixture built
 * with jpip/databin-map.ts from the packet index, handed to the client-side
 * reassembler, and the result decoded and compared with the original file.
 */

interface Bin {
  ranges: ByteRange[];
  bytes: Uint8Array;
  layerEnds: number[];
}

interface Served {
  name: string;
  /** The fixture file as stored (JP2 or raw codestream). */
  file: Uint8Array;
  src: RandomAccess;
  cs: Codestream;
  index: CodestreamIndex;
  mainHeader: Uint8Array;
  tileHeaders: Uint8Array[];
  /** Key `${t}/${c}/${s}`. */
  bins: Map<string, Bin>;
  /** Resolution of each bin (same key). */
  binResolution: Map<string, number>;
  /** Highest resolution per tile-component, key `${t}/${c}`. */
  maxResolution: Map<string, number>;
  /** Most quality layers of any tile. */
  layers: number;
  /** Largest reduce every tile-component allows. */
  maxReduce: number;
}

const served = new Map<string, Served>();

function serve(path: string): Served {
  const hit = served.get(path);
  if (hit) return hit;
  const file = fixtureBytes(path);
  const whole = bufferSource(file, path);
  const ref = readContainer(whole).codestreams[0]!;
  const src = subSource(whole, ref.offset, ref.length);
  const cs = readCodestream(src);
  const index = new CodestreamIndex(src, cs);
  const bins = new Map<string, Bin>();
  const binResolution = new Map<string, number>();
  const maxResolution = new Map<string, number>();
  let layers = 0;
  let maxReduce = Infinity;
  for (let t = 0; t < index.numTiles; t++) {
    const ti = index.tile(t);
    const g = ti.geometry;
    layers = Math.max(layers, ti.coding.layers);
    for (let c = 0; c < g.numComponents; c++) {
      maxReduce = Math.min(maxReduce, g.levels(c));
      maxResolution.set(`${t}/${c}`, g.levels(c));
      for (let s = 0; s < g.precinctTotal(c); s++) {
        const b = precinctBin(index, t, c, s);
        bins.set(`${t}/${c}/${s}`, { ranges: b.ranges, layerEnds: b.layerEnds, bytes: readRanges(src, b.ranges) });
        binResolution.set(`${t}/${c}/${s}`, g.seqResolution(c, s));
      }
    }
  }
  const sv: Served = {
    name: path,
    file,
    src,
    cs,
    index,
    mainHeader: readRanges(src, mainHeaderBin(cs)),
    tileHeaders: cs.tiles.map((_, t) => readRanges(src, tileHeaderBin(cs, t))),
    bins,
    binResolution,
    maxResolution,
    layers,
    maxReduce,
  };
  served.set(path, sv);
  return sv;
}

/** What the client holds of precinct (t, c, s): a function of the full bin. */
type Pick = (bin: Bin, key: string) => PrecinctBinData | undefined;

const whole: Pick = (bin) => ({ bytes: bin.bytes, complete: true });

function inputOf(sv: Served, pick: Pick = whole, tileHeaders = true): ReassembleInput {
  return {
    mainHeader: sv.mainHeader,
    tileHeader: (t) => (tileHeaders ? sv.tileHeaders[t] : undefined),
    precinct: (t, c, s) => {
      const key = `${t}/${c}/${s}`;
      const bin = sv.bins.get(key);
      return bin ? pick(bin, key) : undefined;
    },
  };
}

function rebuild(sv: Served, pick: Pick = whole, opts?: ReassembleOptions): ReassembleResult {
  return reassemble(inputOf(sv, pick), opts);
}

const decoded = new Map<string, DecodedImage>();

/** WASM decode of the original file (cached). */
async function original(sv: Served, reduce: number, layers = 0): Promise<DecodedImage> {
  const key = `${sv.name}|${reduce}|${layers}`;
  let img = decoded.get(key);
  if (!img) {
    img = await decodeWasm(sv.file, { reduce, layers });
    decoded.set(key, img);
  }
  return img;
}

const opjDecoded = new Map<string, DecodedImage>();

function originalOpj(sv: Served, reduce: number, layers = 0): DecodedImage {
  const key = `${sv.name}|${reduce}|${layers}`;
  let img = opjDecoded.get(key);
  if (!img) {
    img = decodeOpj(sv.file, { reduce, layers });
    opjDecoded.set(key, img);
  }
  return img;
}

function assertSame(a: DecodedImage, b: DecodedImage, what: string): void {
  assert.is(`${a.width}x${a.height}x${a.components}`, `${b.width}x${b.height}x${b.components}`, `${what}: size`);
  if (!imagesEqual(a, b)) assert.unreachable(`${what}: first difference ${JSON.stringify(firstDifference(a, b))}`);
}

function reduceLevels(sv: Served): number[] {
  return [...new Set([0, Math.min(1, sv.maxReduce), sv.maxReduce])];
}

const HAVE_OPJ = opjDecompressAvailable();
if (!HAVE_OPJ) console.log('note: opj_decompress is not on PATH: the opj_decompress comparisons are skipped (apt-get install libopenjp2-tools)');

const MOVIE_FRAMES = readdirSync(`${FIXTURES}/movie/frames`)
  .filter((f) => f.endsWith('.jp2'))
  .sort()
  .map((f) => `movie/frames/${f}`);
const ALL = [...fixtures().map((f) => f.file), ...MOVIE_FRAMES];
const MULTI_LAYER = ALL.filter((f) => serve(f).layers > 1);

// ---------------------------------------------------------------------------

const map = suite('databin-map');

const NOT_IN_TILE_HEADER: ReadonlySet<number> = new Set([MARKER.SOT, MARKER.SOD, MARKER.PLT, MARKER.PPT]);

for (const f of ALL) {
  map(`${f}: bins partition the codestream (main header, tile headers, packets)`, () => {
    const sv = serve(f);
    const { cs } = sv;
    assert.equal(mainHeaderBin(cs), [{ offset: 0, length: cs.main.end }]);
    assert.equal(Array.from(sv.mainHeader.subarray(0, 4)), [0xff, 0x4f, 0xff, 0x51]);
    assert.equal(Array.from(sv.src.read(cs.main.end, 2)), [0xff, 0x90], 'the main header bin ends at the first SOT');
    let bodies = 0;
    let tiles = 0;
    for (let t = 0; t < cs.tiles.length; t++) {
      for (const i of cs.tiles[t]!) bodies += cs.tileParts[i]!.bodyLength;
      const tb = tileBin(cs, t);
      tiles += rangesLength(tb);
      assert.equal(Array.from(sv.src.read(tb[0]!.offset, 2)), [0xff, 0x90], 'a tile bin starts with SOT');
      // The tile header bin: whole marker segments, none of SOT/SOD/PLT/PPT.
      const th = sv.tileHeaders[t]!;
      const segs = tileHeaderSegments(th, t);
      assert.is(segs.reduce((n, s) => n + s.length, 0), th.length);
      for (const s of segs) {
        const m = (s[0]! << 8) | s[1]!;
        assert.not.ok(NOT_IN_TILE_HEADER.has(m), `tile ${t}: marker ${m.toString(16)}`);
      }
    }
    assert.is(cs.main.end + tiles + 2, cs.size, 'main header + tile bins + EOC = codestream');
    let packets = 0;
    for (const [key, bin] of sv.bins) {
      packets += bin.bytes.length;
      assert.is(bin.layerEnds.at(-1) ?? 0, bin.bytes.length, `${key}: last layer end = bin length`);
      for (let l = 1; l < bin.layerEnds.length; l++) assert.ok(bin.layerEnds[l]! > bin.layerEnds[l - 1]!, `${key}: every packet has a byte`);
      for (let i = 1; i < bin.ranges.length; i++) {
        const a = bin.ranges[i - 1]!;
        assert.ok(a.offset + a.length !== bin.ranges[i]!.offset, `${key}: contiguous ranges are merged`);
      }
    }
    assert.is(packets, bodies, 'precinct bins hold every body byte exactly once');
  });
}

map('RPCL with one tile-part: every precinct bin is one byte range (its layers are adjacent)', () => {
  const sv = serve(MOVIE_FRAMES[0]!);
  for (const [key, bin] of sv.bins) assert.is(bin.ranges.length, 1, key);
});

map('LRCP: a precinct bin gathers one range per layer from across the tile', () => {
  const sv = serve('g128-lrcp-tpl-4l.j2k');
  const bin = sv.bins.get('0/0/0')!;
  assert.is(bin.layerEnds.length, 4);
  assert.is(bin.ranges.length, 4);
});

map('tile header bin: the tile POC of rgb128-poc, nothing for the others', () => {
  const poc = serve('rgb128-poc.j2k');
  const segs = tileHeaderSegments(poc.tileHeaders[0]!, 0);
  assert.ok(segs.some((s) => s[1] === 0x5f), 'a POC segment');
  assert.is(serve('g128-default.j2k').tileHeaders[0]!.length, 0);
});

map('cutRanges and readRanges', () => {
  const src = bufferSource(Uint8Array.from({ length: 20 }, (_, i) => i));
  const ranges = [
    { offset: 2, length: 3 },
    { offset: 10, length: 4 },
  ];
  assert.equal(Array.from(readRanges(src, ranges)), [2, 3, 4, 10, 11, 12, 13]);
  assert.equal(cutRanges(ranges, 5), [
    { offset: 2, length: 3 },
    { offset: 10, length: 2 },
  ]);
  assert.equal(cutRanges(ranges, 0), []);
  assert.is(rangesLength(ranges), 7);
});

map.run();

// ---------------------------------------------------------------------------

const full = suite('reassemble: every precinct complete');

for (const f of ALL) {
  full(`${f}: decodes exactly as the original at reduce ${reduceLevels(serve(f)).join(', ')}${HAVE_OPJ ? ' (WASM and opj_decompress)' : ' (WASM)'}`, async () => {
    const sv = serve(f);
    const res = rebuild(sv);
    assert.is(res.emptyPackets, 0);
    assert.is(res.problems.length, 0);
    assert.is(res.missingTileHeaders.length, 0);
    for (const st of res.tileComponents) assert.ok(st.completeLayers.every((n) => n === st.layers), `tile ${st.tile} comp ${st.component}`);
    // Structure: the rebuilt stream parses, one tile-part per tile, no TLM/PLM/PLT.
    const back = readCodestream(bufferSource(res.codestream));
    assert.is(back.tileParts.length, back.tiles.length);
    assert.is(back.main.tlm.length + back.main.plm.length, 0);
    // Without PLT/TLM and with single tile-parts, the rebuilt codestream is the original, byte for byte.
    const simple =
      sv.cs.main.tlm.length === 0 &&
      sv.cs.main.plm.length === 0 &&
      sv.cs.tileParts.every((tp) => tp.plt.length === 0 && tp.partCount === 1) &&
      sv.cs.tiles.every((l) => l.length === 1);
    if (simple) assert.equal(res.codestream, sv.src.read(0, sv.src.size), 'byte-identical');
    for (const r of reduceLevels(sv)) {
      const got = await decodeWasm(res.codestream, { reduce: r });
      assertSame(got, await original(sv, r), `WASM reduce ${r}`);
      if (HAVE_OPJ) assertSame(decodeOpj(res.codestream, { reduce: r }), originalOpj(sv, r), `opj reduce ${r}`);
    }
  });
}

full.run();

// ---------------------------------------------------------------------------

const partial = suite('reassemble: partial bins');

for (const f of MULTI_LAYER) {
  partial(`${f}: layers 0..k of every precinct = the original decoded with k+1 layers`, async () => {
    const sv = serve(f);
    for (let k = 0; k < sv.layers - 1; k++) {
      const cut: Pick = (bin) => ({ bytes: bin.bytes.subarray(0, bin.layerEnds[Math.min(k, bin.layerEnds.length - 1)]), complete: false });
      const res = rebuild(sv, cut);
      for (const st of res.tileComponents) assert.ok(st.completeLayers.every((n) => n === Math.min(k + 1, st.layers)));
      // maxLayers over complete bins gives the same codestream.
      assert.equal(rebuild(sv, whole, { maxLayers: k + 1 }).codestream, res.codestream, 'maxLayers = cut bins');
      const got = await decodeWasm(res.codestream);
      assertSame(got, await original(sv, 0, k + 1), `WASM, ${k + 1} layers`);
      if (HAVE_OPJ) assertSame(decodeOpj(res.codestream), originalOpj(sv, 0, k + 1), `opj, ${k + 1} layers`);
    }
  });
}

for (const f of ['rgb160x120-t80x60-pcrl-sop-eph.j2k', 'g256-irrev-8l-cb32.j2k', 'rgb128-poc.j2k', 'g128-lrcp-tpl-4l.j2k']) {
  partial(`${f}: a bin cut at any byte yields exactly the packets that end before the cut`, () => {
    const sv = serve(f);
    for (const [key, bin] of sv.bins) {
      const [t, c, s] = key.split('/').map(Number) as [number, number, number];
      const ti = sv.index.tile(t);
      for (let b = 0; b <= bin.bytes.length; b++) {
        const found = precinctPackets(bin.bytes.subarray(0, b), ti.geometry, ti.coding, c, s);
        assert.is(found.error, undefined);
        const want = bin.layerEnds.filter((e) => e <= b);
        if (found.ends.length !== want.length || found.ends.some((e, i) => e !== want[i])) {
          assert.unreachable(`${key} cut at ${b}: ends ${found.ends.join(',')}, expected ${want.join(',')}`);
        }
      }
    }
  });
}

const RANDOM_CUTS = ['g256-irrev-8l-cb32.j2k', 'rgb160x120-t80x60-pcrl-sop-eph.j2k', 'g200x150-t64-tpr-plt-tlm.j2k', 'rgb128-poc.j2k', MOVIE_FRAMES[0]!];
const FRACTIONS = [0, 0.15, 0.3, 0.5, 0.7, 0.9, 1];
const PSNR_SLACK_DB = 0.01;

for (const f of RANDOM_CUTS) {
  partial(`${f}: bins cut at random bytes decode, PSNR grows with the bytes given (${FRACTIONS.join(', ')})`, async () => {
    const sv = serve(f);
    const rnd = mulberry32(7);
    // One random weight per precinct: the bin keeps floor(len * min(1, f * weight)) bytes, monotone in f.
    const weight = new Map<string, number>();
    for (const key of sv.bins.keys()) weight.set(key, 0.5 + rnd());
    const ref = await original(sv, 0);
    let last = -Infinity;
    let lastBytes = -1;
    for (const fr of FRACTIONS) {
      const cut: Pick = (bin, key) => {
        const n = fr >= 1 ? bin.bytes.length : Math.floor(bin.bytes.length * Math.min(1, fr * weight.get(key)!));
        return { bytes: bin.bytes.subarray(0, n), complete: n === bin.bytes.length };
      };
      const res = rebuild(sv, cut);
      assert.is(res.problems.length, 0);
      assert.ok(res.packetBytes >= lastBytes);
      lastBytes = res.packetBytes;
      const img = await decodeWasm(res.codestream);
      const q = psnr(ref, img);
      if (fr < 1) assert.ok(Number.isFinite(q), `fraction ${fr}: PSNR ${q}`);
      else assert.is(q, Infinity, 'everything given: identical');
      // More coding passes need not lower the MSE strictly (5/3 and RCT are not
      // orthonormal, samples are clipped): rgb128-poc dips 0.003 dB when its first
      // 17 bytes (detail without the DC) arrive. Allow a hair, no more.
      assert.ok(q >= last - PSNR_SLACK_DB, `fraction ${fr}: PSNR ${q.toFixed(3)} after ${last.toFixed(3)}`);
      last = q;
      if (HAVE_OPJ) assertSame(decodeOpj(res.codestream), img, `opj_decompress = WASM on the partial stream (fraction ${fr})`);
    }
  });
}

partial.run();

// ---------------------------------------------------------------------------

const missing = suite('reassemble: missing data');

for (const f of ALL) {
  missing(`${f}: without the highest resolution's precincts it decodes at full size${serve(f).maxReduce > 0 ? ', and exactly at reduce 1' : ''}`, async () => {
    const sv = serve(f);
    const drop: Pick = (bin, key) => {
      const [t, c] = key.split('/');
      return sv.binResolution.get(key) === sv.maxResolution.get(`${t}/${c}`) ? undefined : { bytes: bin.bytes, complete: true };
    };
    const res = rebuild(sv, drop);
    assert.ok(res.emptyPackets > 0);
    const img = await decodeWasm(res.codestream);
    const ref = await original(sv, 0);
    assert.is(`${img.width}x${img.height}x${img.components}`, `${ref.width}x${ref.height}x${ref.components}`);
    assert.ok(Number.isFinite(psnr(ref, img)));
    if (sv.maxReduce > 0) {
      assertSame(await decodeWasm(res.codestream, { reduce: 1 }), await original(sv, 1), 'reduce 1 needs no highest-resolution precinct');
      if (HAVE_OPJ) assertSame(decodeOpj(res.codestream, { reduce: 1 }), originalOpj(sv, 1), 'opj reduce 1');
    }
  });
}

missing('no precinct at all: every packet empty, still a full-size image', async () => {
  for (const f of ['rgb160x120-t80x60-pcrl-sop-eph.j2k', 'g200x150-offsets-t64-rpcl.j2k', 'rgb128-poc.j2k']) {
    const sv = serve(f);
    const res = rebuild(sv, () => undefined);
    assert.is(res.emptyPackets, res.packets);
    assert.is(res.packetBytes, 0);
    const img = await decodeWasm(res.codestream);
    const ref = await original(sv, 0);
    assert.is(img.width, ref.width);
    assert.is(img.height, ref.height);
    if (HAVE_OPJ) assertSame(decodeOpj(res.codestream), img, `${f}: opj = WASM`);
  }
});

missing('EPH in use: empty packets are 00 FF 92', () => {
  const sv = serve('rgb160x120-t80x60-pcrl-sop-eph.j2k');
  const res = rebuild(sv, () => undefined);
  const cs = readCodestream(bufferSource(res.codestream));
  assert.is(cs.tileParts.reduce((n, tp) => n + tp.bodyLength, 0), 3 * res.packets);
  const tp = cs.tileParts[0]!;
  assert.equal(Array.from(res.codestream.subarray(tp.bodyOffset, tp.bodyOffset + 6)), [0, 0xff, 0x92, 0, 0xff, 0x92]);
  const plain = rebuild(serve('g128-default.j2k'), () => undefined);
  const p = readCodestream(bufferSource(plain.codestream)).tileParts[0]!;
  assert.is(p.bodyLength, plain.packets);
});

missing('missing tile header bins are taken as empty (and reported)', async () => {
  const sv = serve('g200x150-t64-lrcp.j2k');
  const res = reassemble(inputOf(sv, whole, false));
  assert.is(res.missingTileHeaders.length, sv.cs.tiles.length);
  assertSame(await decodeWasm(res.codestream), await original(sv, 0), 'empty tile headers change nothing here');
});

missing('a bin whose packet header does not decode: reported, the rest taken as missing', async () => {
  const sv = serve('rgb160x120-t80x60-pcrl-sop-eph.j2k');
  // An SOP marker segment with a bad length in front of layer 1 of precinct 0/0/0.
  const bad: Pick = (bin, key) => {
    if (key !== '0/0/0') return { bytes: bin.bytes, complete: true };
    const b = bin.bytes.slice();
    b.set([0xff, 0x91, 0x00, 0x05], bin.layerEnds[0]!);
    return { bytes: b, complete: true };
  };
  const res = rebuild(sv, bad);
  assert.is(res.problems.length, 1);
  assert.is(res.problems[0]!.layer, 1);
  assert.match(res.problems[0]!.message, /SOP/);
  assert.is(res.tileComponents[0]!.completeLayers[0], 1);
  const img = await decodeWasm(res.codestream);
  assert.ok(Number.isFinite(psnr(await original(sv, 0), img)));
});

missing('a bin marked complete that is cut short or runs past its packets is reported', () => {
  const sv = serve('g128-lrcp-tpl-4l.j2k');
  const lie: Pick = (bin, key) => {
    if (key === '0/0/0') return { bytes: bin.bytes.subarray(0, bin.bytes.length - 1), complete: true };
    if (key === '0/0/1') return { bytes: Uint8Array.from([...bin.bytes, 0]), complete: true };
    return { bytes: bin.bytes, complete: true };
  };
  const res = rebuild(sv, lie);
  assert.equal(
    res.problems.map((p) => [p.precinct, p.layer]),
    [
      [0, 3],
      [1, 4],
    ],
  );
  assert.is(res.tileComponents[0]!.completeLayers[0], 3);
  assert.is(res.tileComponents[0]!.completeLayers[1], 4);
  // Layer-limited reassembly does not complain about the layers it leaves out.
  assert.is(rebuild(sv, whole, { maxLayers: 2 }).problems.length, 0);
});

missing('malformed headers are refused with a J2kError', () => {
  const sv = serve('g128-default.j2k');
  for (const n of [0, 3, 20, sv.mainHeader.length - 1]) {
    let err: unknown;
    try {
      parseMainHeaderBin(sv.mainHeader.subarray(0, n));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof J2kError, `main header cut at ${n}`);
  }
  // Tile header bins: SOT and SOD tolerated (some servers send them), garbage refused.
  const cod = sv.mainHeader.subarray(sv.cs.main.segments.find((s) => s.marker === MARKER.COD)!.offset);
  const codSeg = cod.subarray(0, 2 + ((cod[2]! << 8) | cod[3]!));
  const withSot = Uint8Array.of(0xff, 0x90, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1, ...codSeg, 0xff, 0x93);
  const segs = tileHeaderSegments(withSot, 0);
  assert.is(segs.length, 1);
  assert.equal(Array.from(segs[0]!), Array.from(codSeg));
  try {
    tileHeaderSegments(Uint8Array.of(1, 2, 3), 0);
    assert.unreachable('garbage accepted');
  } catch (e) {
    assert.ok(e instanceof J2kError && e.code === J2K_ERROR.BAD_MARKER);
  }
});

missing.run();
