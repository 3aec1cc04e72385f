import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream, tileCoding } from '../jpeg2000/codestream.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import {
  BAND,
  buildTileGeometry,
  codeBlockRect,
  decomposePrecinctBinId,
  numTiles,
  numTilesX,
  numTilesY,
  precinctBinId,
  precinctGrid,
  resolutionRect,
  resolutionSizeAtDiscard,
  subbandRect,
  tileComponentRect,
  tileRect,
  type Rect,
  type TileGeometry,
} from '../jpeg2000/geometry.js';
import { PROGRESSION, type Siz, type TileCoding } from '../jpeg2000/markers.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { catchError, dumpValues, fixtureBytes, fixturePath, fixtures } from './helpers.js';
import { mkCoding, mkComp, mkSiz, randomSiz, rng } from './geometry-helpers.js';

// ---------------------------------------------------------------------------
// Shorthands (the SIZ / coding-style builders are in geometry-helpers.ts)
// ---------------------------------------------------------------------------

const R = (x0: number, y0: number, x1: number, y1: number): Rect => ({ x0, y0, x1, y1 });

// ---------------------------------------------------------------------------
// Hand-computed cases
// ---------------------------------------------------------------------------

// Image (13,7)-(213,157), tiles 64x64 from (5,3): the g200x150-offsets fixture's grid.
const offSiz = mkSiz({ xsiz: 213, ysiz: 157, xOsiz: 13, yOsiz: 7, xTsiz: 64, yTsiz: 64, xTOsiz: 5, yTOsiz: 3, comps: [[1, 1], [2, 3]] });

test('tile grid with image and tile offsets', () => {
  assert.is(numTilesX(offSiz), 4); // ceil((213-5)/64)
  assert.is(numTilesY(offSiz), 3); // ceil((157-3)/64)
  assert.is(numTiles(offSiz), 12);
  assert.equal(tileRect(offSiz, 0), R(13, 7, 69, 67));
  assert.equal(tileRect(offSiz, 1), R(69, 7, 133, 67));
  assert.equal(tileRect(offSiz, 4), R(13, 67, 69, 131));
  assert.equal(tileRect(offSiz, 11), R(197, 131, 213, 157));
  assert.throws(() => tileRect(offSiz, 12), RangeError);
});

test('tile-component rects divide by the subsampling with ceil', () => {
  assert.equal(tileComponentRect(offSiz, 0, 0), R(13, 7, 69, 67));
  // dx=2, dy=3: ceil(13/2)=7, ceil(7/3)=3, ceil(69/2)=35, ceil(67/3)=23
  assert.equal(tileComponentRect(offSiz, 0, 1), R(7, 3, 35, 23));
  assert.equal(tileComponentRect(offSiz, 11, 1), R(99, 44, 107, 53));
});

test('resolution and sub-band rects (B-14, B-15)', () => {
  const tc = R(7, 3, 35, 23);
  assert.equal(resolutionRect(tc, 3, 3), tc);
  assert.equal(resolutionRect(tc, 3, 1), R(2, 1, 9, 6));
  assert.equal(resolutionRect(tc, 3, 0), R(1, 1, 5, 3));
  // r = 1 of NL = 3: nb = 3
  assert.equal(subbandRect(tc, 3, 0, BAND.LL), R(1, 1, 5, 3));
  assert.equal(subbandRect(tc, 3, 1, BAND.HL), R(1, 1, 4, 3));
  assert.equal(subbandRect(tc, 3, 1, BAND.LH), R(1, 0, 5, 3));
  assert.equal(subbandRect(tc, 3, 1, BAND.HH), R(1, 0, 4, 3));
  // the low band (resolution r-1) and the high band of each axis tile resolution r
  const r1 = resolutionRect(tc, 3, 1);
  const ll = subbandRect(tc, 3, 0, BAND.LL);
  const hl = subbandRect(tc, 3, 1, BAND.HL);
  const lh = subbandRect(tc, 3, 1, BAND.LH);
  assert.is(ll.x1 - ll.x0 + (hl.x1 - hl.x0), r1.x1 - r1.x0);
  assert.is(ll.y1 - ll.y0 + (lh.y1 - lh.y0), r1.y1 - r1.y0);
  assert.ok(Object.is(subbandRect(tc, 3, 1, BAND.LH).y0, 0), 'no -0');
  assert.throws(() => subbandRect(tc, 3, 0, BAND.HL), RangeError);
  assert.throws(() => subbandRect(tc, 3, 1, BAND.LL), RangeError);
  assert.throws(() => resolutionRect(tc, 3, 4), RangeError);
  // NL = 0: the single resolution is the tile-component
  assert.equal(subbandRect(tc, 0, 0, BAND.LL), tc);
});

test('precinct grid (B-16), empty resolutions', () => {
  assert.equal(precinctGrid(R(2, 1, 9, 6), 2, 1), { firstX: 0, firstY: 0, numX: 3, numY: 3 });
  assert.equal(precinctGrid(R(5, 3, 9, 6), 2, 1), { firstX: 1, firstY: 1, numX: 2, numY: 2 });
  assert.equal(precinctGrid(R(7, 1, 7, 6), 2, 1), { firstX: 1, firstY: 0, numX: 0, numY: 0 });
  assert.equal(precinctGrid(R(0, 0, 1024, 1024), 15, 15), { firstX: 0, firstY: 0, numX: 1, numY: 1 });
  // Last tile column of the offsets fixture: x 197..213, NL = 5 -> resolution 0 is empty.
  const g = buildTileGeometry(offSiz, mkCoding([mkComp(5), mkComp(5)]), 11);
  assert.equal(g.resolutionRect(0, 0), R(7, 5, 7, 5));
  assert.is(g.precinctCount(0, 0), 0);
  assert.equal(g.resolutionRect(0, 1), R(13, 9, 14, 10));
  assert.is(g.precinctCount(0, 1), 1);
  assert.is(g.precinctsBefore(0, 1), 0);
  assert.is(g.precinctsBefore(0, 2), 1);
  assert.equal(g.seqToPrecinct(0, 0), { r: 1, p: 0 });
});

test('resolutionSizeAtDiscard', () => {
  assert.equal(resolutionSizeAtDiscard(offSiz, 0), { width: 200, height: 150 });
  // ceil(213/4) - ceil(13/4) = 54 - 4; ceil(157/4) - ceil(7/4) = 40 - 2
  assert.equal(resolutionSizeAtDiscard(offSiz, 2), { width: 50, height: 38 });
  assert.equal(resolutionSizeAtDiscard(mkSiz({ xsiz: 4096, ysiz: 4096 }), 8), { width: 16, height: 16 });
  assert.equal(resolutionSizeAtDiscard(mkSiz({ xsiz: 1, ysiz: 1 }), 5), { width: 1, height: 1 });
});

test('JPIP worked example: 1024², NL = 2, 256² precincts: I = s, r1 = 1..4, r2 = 5..20', () => {
  const siz = mkSiz({ xsiz: 1024, ysiz: 1024 });
  const g = buildTileGeometry(siz, mkCoding([mkComp(2, [[8, 8], [8, 8], [8, 8]])]), 0);
  assert.equal([g.precinctCount(0, 0), g.precinctCount(0, 1), g.precinctCount(0, 2)], [1, 4, 16]);
  assert.is(g.precinctTotal(0), 21);
  assert.is(g.precinctSeq(0, 1, 0), 1);
  assert.is(g.precinctSeq(0, 1, 3), 4);
  assert.is(g.precinctSeq(0, 2, 0), 5);
  assert.is(g.precinctSeq(0, 2, 15), 20);
  assert.is(g.precinctBinId(0, 1, 2), 3);
  assert.is(precinctBinId(0, 0, 7, 1, 1), 7);
  assert.equal(g.seqToPrecinct(0, 7), { r: 2, p: 2 });
  assert.is(g.seqToPrecinct(0, 21), undefined);
  assert.is(g.seqResolution(0, -1), -1);
  assert.equal(g.precinctRect(0, 2, 5), R(256, 256, 512, 512));
  assert.equal(g.precinctRefRect(0, 1, 3), R(512, 512, 1024, 1024));
});

test('precinct data-bin ids: formula, round trips, unsafe ids', () => {
  assert.is(precinctBinId(2, 1, 3, 3, 4), 2 + (1 + 3 * 3) * 4);
  for (const [nc, nt] of [
    [1, 1],
    [3, 1],
    [1, 12],
    [3, 7],
    [16384, 65535],
  ] as const) {
    for (const t of [0, nt - 1, nt >> 1]) {
      for (const c of [0, nc - 1]) {
        for (const s of [0, 1, 20, 1234567]) {
          const id = precinctBinId(t, c, s, nc, nt);
          assert.equal(decomposePrecinctBinId(id, nc, nt), { t, c, s });
        }
      }
    }
  }
  // Past 2^32: still exact.
  const big = precinctBinId(65534, 16383, 1_000_000, 16384, 65535);
  assert.ok(big > 2 ** 32);
  assert.equal(decomposePrecinctBinId(big, 16384, 65535), { t: 65534, c: 16383, s: 1_000_000 });
  const e = catchError(() => precinctBinId(1, 1, 2 ** 40, 16384, 65535));
  assert.instance(e, J2kError);
  assert.is((e as J2kError).code, J2K_ERROR.BAD_VALUE);
  for (const bad of [-1, 1.5, 2 ** 53, Number.NaN]) {
    const e2 = catchError(() => decomposePrecinctBinId(bad, 3, 4));
    assert.is((e2 as J2kError).code, J2K_ERROR.BAD_VALUE);
  }
  assert.throws(() => precinctBinId(4, 0, 0, 3, 4), RangeError);
  assert.throws(() => precinctBinId(0, 3, 0, 3, 4), RangeError);
});

test('code-blocks of precincts: 100x80, NL = 2, 8x8 code-blocks, 16/32/32 precincts', () => {
  const siz = mkSiz({ xsiz: 100, ysiz: 80 });
  const g = buildTileGeometry(siz, mkCoding([mkComp(2, [[4, 4], [5, 5], [5, 5]], 3, 3)]), 0);
  assert.equal(g.codeBlockExponents(0, 0), { xcb: 3, ycb: 3 });
  assert.equal(g.codeBlockExponents(0, 2), { xcb: 3, ycb: 3 });
  // r = 0: LL [0,25)x[0,20), 16x16 precincts: 2x2
  assert.is(g.precinctCount(0, 0), 4);
  const counts = (r: number, p: number): [number, number][] => g.precinctSubbands(0, r, p).map((b) => [b.numCbX, b.numCbY]);
  assert.equal(counts(0, 0), [[2, 2]]);
  assert.equal(counts(0, 1), [[2, 2]]); // x [16,25): code-blocks [16,24) and [24,32)
  assert.equal(counts(0, 2), [[2, 1]]); // y [16,20)
  assert.equal(counts(0, 3), [[2, 1]]);
  // r = 2: resolution [0,100)x[0,80), 32x32 precincts: 4x3; bands [0,50)x[0,40), 16x16 precinct parts
  assert.equal([g.precinctsX(0, 2), g.precinctsY(0, 2)], [4, 3]);
  assert.equal(counts(2, 0), [[2, 2], [2, 2], [2, 2]]);
  assert.equal(counts(2, 3), [[1, 2], [1, 2], [1, 2]]); // x [48,50)
  assert.equal(counts(2, 11), [[1, 1], [1, 1], [1, 1]]); // x [48,50), y [32,40)
  const hl = g.precinctSubbands(0, 2, 11)[0]!;
  assert.equal(hl.rect, R(48, 32, 50, 40));
  assert.equal(codeBlockRect(hl, 0, 0), R(48, 32, 50, 40));
  const ll = g.precinctSubbands(0, 0, 1)[0]!;
  assert.equal(codeBlockRect(ll, 1, 0), R(24, 0, 25, 8));
  assert.throws(() => codeBlockRect(ll, 2, 0), RangeError);
});

test('code-blocks: precinct that covers only low-pass samples of a band axis', () => {
  // Tile-component x [3,20) y [0,2), NL = 1, resolution 1 precincts 4 wide (2 in the bands).
  const siz = mkSiz({ xsiz: 20, ysiz: 2, xOsiz: 3 });
  const g = buildTileGeometry(siz, mkCoding([mkComp(1, [[15, 15], [2, 15]])]), 0);
  assert.equal(g.codeBlockExponents(0, 1), { xcb: 1, ycb: 6 });
  assert.equal(g.precinctGrid(0, 1), { firstX: 0, firstY: 0, numX: 5, numY: 1 });
  const sb = g.precinctSubbands(0, 1, 0);
  // HL x: [1,10) ∩ [0,2) = [1,2); LH x: [2,10) ∩ [0,2) = empty; HH: as HL in x, as LH in y
  assert.equal(
    sb.map((b) => [b.band, b.rect.x0, b.rect.x1, b.numCbX, b.numCbY]),
    [
      [BAND.HL, 1, 2, 1, 1],
      [BAND.LH, 2, 2, 0, 0],
      [BAND.HH, 1, 2, 1, 1],
    ],
  );
  const out = new Uint32Array(6);
  assert.is(g.precinctCodeBlockCounts(0, 1, 0, out), 3);
  assert.equal([...out], [1, 1, 0, 0, 1, 1]);
  assert.equal(g.precinctSubbands(0, 1, 4).map((b) => [b.numCbX, b.numCbY]), [[1, 1], [1, 1], [1, 1]]);
});

test('components with different NL and subsampling', () => {
  const siz = mkSiz({ xsiz: 97, ysiz: 61, xOsiz: 3, yOsiz: 5, comps: [[1, 1], [2, 2], [3, 1]] });
  const g = buildTileGeometry(siz, mkCoding([mkComp(3, [[3, 3], [3, 3], [4, 4], [5, 5]], 4, 4), mkComp(1), mkComp(0)]), 0);
  assert.is(g.maxResolutions, 4);
  assert.equal(g.componentRect(1), R(2, 3, 49, 31));
  assert.equal(g.componentRect(2), R(1, 5, 33, 61));
  assert.ok(g.hasResolution(1, 1));
  assert.not.ok(g.hasResolution(1, 2));
  assert.is(g.precinctCount(1, 2), 0);
  assert.is(g.precinctCount(2, 0), 1);
  assert.is(g.precinctTotal(1), 2);
  assert.is(g.precinctsBefore(1, 3), 2);
  assert.is(g.componentBase(2), g.precinctTotal(0) + 2);
  assert.is(g.totalPrecincts, g.precinctTotal(0) + 3);
  assert.throws(() => g.resolutionRect(1, 2), RangeError);
  // component 0, r = 0: [ceil(3/8), ceil(97/8)) = [1, 13); 8-wide precincts from 0: 2 columns
  assert.equal(g.resolutionRect(0, 0), R(1, 1, 13, 8));
  assert.equal([g.precinctsX(0, 0), g.precinctsY(0, 0)], [2, 1]);
  assert.equal(g.precinctRefRect(0, 0, 1), R(64, 5, 97, 61));
  assert.equal(g.precinctRefRect(0, 0, 0), R(3, 5, 64, 61));
  // position of the second precinct column: multiple of 1·2^(3+3) = 64
  assert.is(g.precinctPositionX(0, 0, 1), 64);
  assert.is(g.precinctPositionX(0, 0, 0), 3);
});

test('bad coding styles are BAD_VALUE J2kErrors', () => {
  const siz = mkSiz({ comps: [[1, 1], [1, 1]] });
  const e1 = catchError(() => buildTileGeometry(siz, mkCoding([mkComp(2)]), 0));
  assert.is((e1 as J2kError).code, J2K_ERROR.BAD_VALUE);
  const short = mkComp(3);
  short.precincts.pop();
  const e2 = catchError(() => buildTileGeometry(siz, mkCoding([short, mkComp(1)]), 0));
  assert.is((e2 as J2kError).code, J2K_ERROR.BAD_VALUE);
  const e3 = catchError(() => buildTileGeometry(siz, mkCoding([mkComp(1, [[0, 0], [0, 3]]), mkComp(1)]), 0));
  assert.is((e3 as J2kError).code, J2K_ERROR.BAD_VALUE);
  assert.throws(() => buildTileGeometry(siz, mkCoding([mkComp(1), mkComp(1)]), 1), RangeError);
});

// ---------------------------------------------------------------------------
// Randomised cross-checks against direct enumeration
// ---------------------------------------------------------------------------

function randomCase(seed: number): { siz: Siz; coding: TileCoding } {
  const rnd = rng(seed);
  const { siz, comps } = randomSiz(rnd, 90, 70);
  const components = comps.map(() => {
    const levels = rnd(5);
    const pp: [number, number][] = Array.from({ length: levels + 1 }, (_, r) => [(r === 0 ? 0 : 1) + rnd(5), (r === 0 ? 0 : 1) + rnd(5)]);
    return mkComp(levels, pp, 2 + rnd(4), 2 + rnd(4));
  });
  return { siz, coding: mkCoding(components, PROGRESSION.LRCP, 1 + rnd(3)) };
}

function area(r: Rect): number {
  return Math.max(0, r.x1 - r.x0) * Math.max(0, r.y1 - r.y0);
}

function checkGeometry(g: TileGeometry, siz: Siz): void {
  for (let c = 0; c < g.numComponents; c++) {
    const tc = g.componentRect(c);
    const NL = g.levels(c);
    let s = 0;
    for (let r = 0; r <= NL; r++) {
      const rr = g.resolutionRect(c, r);
      assert.equal(rr, resolutionRect(tc, NL, r));
      const n = g.precinctCount(c, r);
      assert.is(g.precinctsBefore(c, r), s);
      // Precinct rects tile the resolution.
      let covered = 0;
      let refArea = 0;
      for (let p = 0; p < n; p++) {
        const pr = g.precinctRect(c, r, p);
        assert.ok(area(pr) > 0, 'every precinct meets its resolution');
        covered += area(pr);
        const ref = g.precinctRefRect(c, r, p);
        assert.ok(ref.x0 >= g.rect.x0 && ref.x1 <= g.rect.x1 && ref.y0 >= g.rect.y0 && ref.y1 <= g.rect.y1);
        assert.ok(area(ref) > 0);
        refArea += area(ref);
        assert.equal(g.seqToPrecinct(c, s + p), { r, p });
        // The position-driven progressions reach precinct (px, py) at a point inside its reference projection.
        const px = p % g.precinctsX(c, r);
        const py = (p - px) / g.precinctsX(c, r);
        const X = g.precinctPositionX(c, r, px);
        const Y = g.precinctPositionY(c, r, py);
        const { dx, dy } = siz.components[c]!;
        const f = 2 ** (NL - r);
        const { ppx, ppy } = g.precinctExponents(c, r);
        const grid = g.precinctGrid(c, r);
        assert.ok(X >= g.rect.x0 && X < g.rect.x1 && Y >= g.rect.y0 && Y < g.rect.y1, 'position inside the tile');
        assert.equal([X, Y], [ref.x0, ref.y0]);
        assert.is(Math.floor(Math.ceil(X / (dx * f)) / 2 ** ppx) - grid.firstX, px);
        assert.is(Math.floor(Math.ceil(Y / (dy * f)) / 2 ** ppy) - grid.firstY, py);
      }
      assert.is(covered, area(rr));
      assert.ok(refArea <= area(g.rect), 'projections do not overlap');
      // Every code-block of every sub-band lies in exactly one precinct.
      const { xcb, ycb } = g.codeBlockExponents(c, r);
      const out = new Uint32Array(6);
      for (const { band, rect: br } of g.subbands(c, r)) {
        const bi = r === 0 ? 0 : band - 1;
        let total = 0;
        let totalArea = 0;
        for (let p = 0; p < n; p++) {
          const sb = g.precinctSubbands(c, r, p)[bi]!;
          assert.is(sb.band, band);
          assert.is(sb.xcb, xcb);
          g.precinctCodeBlockCounts(c, r, p, out);
          assert.equal([out[2 * bi], out[2 * bi + 1]], [sb.numCbX, sb.numCbY]);
          total += sb.numCbX * sb.numCbY;
          for (let j = 0; j < sb.numCbY; j++) {
            for (let i = 0; i < sb.numCbX; i++) {
              const cr = codeBlockRect(sb, i, j);
              assert.ok(area(cr) > 0, 'no empty code-block');
              totalArea += area(cr);
            }
          }
        }
        const expect = area(br) === 0 ? 0 : (Math.ceil(br.x1 / 2 ** xcb) - Math.floor(br.x0 / 2 ** xcb)) * (Math.ceil(br.y1 / 2 ** ycb) - Math.floor(br.y0 / 2 ** ycb));
        assert.is(total, expect, `c${c} r${r} band ${band}: code-blocks`);
        assert.is(totalArea, area(br));
      }
      s += n;
    }
    assert.is(g.precinctTotal(c), s);
    assert.is(g.seqToPrecinct(c, s), undefined);
  }
}

test('random geometries: precincts tile resolutions, code-blocks tile sub-bands', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const { siz, coding } = randomCase(seed);
    for (let t = 0; t < numTiles(siz); t++) checkGeometry(buildTileGeometry(siz, coding, t), siz);
  }
});

// ---------------------------------------------------------------------------
// Fixtures (opj_compress output and opj_dump text)
// ---------------------------------------------------------------------------

function codestreamOf(file: string) {
  const src = bufferSource(fixtureBytes(file), file);
  const ref = readContainer(src).codestreams[0]!;
  return readCodestream(subSource(src, ref.offset, ref.length));
}

/** The `preccintsize (w,h)=(a,b) ...` lines of an opj_dump text, one list per component. */
function dumpPrecincts(text: string): [number, number][][] {
  return [...text.matchAll(/preccintsize \(w,h\)=((?:\(\d+,\d+\) ?)+)/g)].map((m) =>
    [...m[1]!.matchAll(/\((\d+),(\d+)\)/g)].map((x) => [Number(x[1]), Number(x[2])] as [number, number]),
  );
}

for (const f of fixtures()) {
  test(`fixture ${f.name}: geometry agrees with opj_dump`, () => {
    const cs = codestreamOf(f.file);
    const dump = readFileSync(fixturePath(f.dump), 'utf8');
    const siz = cs.main.siz;
    assert.is(numTilesX(siz), dumpValues(dump, 'tw')[0]);
    assert.is(numTilesY(siz), dumpValues(dump, 'th')[0]);
    const nres = dumpValues(dump, 'numresolutions');
    const cbw = [...dump.matchAll(/cblkw=2\^(\d+)/g)].map((m) => Number(m[1]));
    assert.is(cbw.length, siz.components.length);
    const precincts = dumpPrecincts(dump);
    assert.is(precincts.length, siz.components.length);
    for (let t = 0; t < cs.tiles.length; t++) {
      const coding = tileCoding(cs, t);
      const g = buildTileGeometry(siz, coding, t);
      checkGeometry(g, siz);
      for (let c = 0; c < siz.components.length; c++) {
        assert.is(g.levels(c) + 1, nres[c]);
        const NL = g.levels(c);
        for (let r = 0; r <= NL; r++) assert.equal(g.precinctExponents(c, r), { ppx: precincts[c]![r]![0], ppy: precincts[c]![r]![1] });
        // opj_dump prints 2^xcb; at the top resolution the effective size is min(xcb, PPx - 1).
        const top = g.precinctExponents(c, NL);
        const lim = NL === 0 ? top.ppx : top.ppx - 1;
        assert.is(g.codeBlockExponents(c, NL).xcb, Math.min(cbw[c]!, lim));
      }
    }
  });
}

test.run();
