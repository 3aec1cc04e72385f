import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream, tileCoding } from '../jpeg2000/codestream.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { buildTileGeometry, numTiles, tileRect } from '../jpeg2000/geometry.js';
import { decodePacketLengths, PROGRESSION, type PocEntry, type Progression, type Siz, type TileCoding } from '../jpeg2000/markers.js';
import { effectiveProgressions, forEachPacket, packetSequence, type PacketSequence } from '../jpeg2000/progression.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { catchError, fixtureBytes, fixtures } from './helpers.js';
import { mkCoding, mkComp, mkSiz, randomSiz, rng } from './geometry-helpers.js';

// ---------------------------------------------------------------------------
// Shared values (the SIZ / coding-style builders are in geometry-helpers.ts)
// ---------------------------------------------------------------------------

const ORDERS: Progression[] = [PROGRESSION.LRCP, PROGRESSION.RLCP, PROGRESSION.RPCL, PROGRESSION.PCRL, PROGRESSION.CPRL];

type Packet = [l: number, r: number, c: number, p: number];

function packets(seq: PacketSequence): Packet[] {
  const out: Packet[] = [];
  for (let n = 0; n < seq.count; n++) out.push([seq.layer[n]!, seq.resolution[n]!, seq.component[n]!, seq.precinct[n]!]);
  return out;
}

function sequenceOf(siz: Siz, coding: TileCoding, t = 0): PacketSequence {
  return packetSequence(buildTileGeometry(siz, coding, t), coding);
}

// ---------------------------------------------------------------------------
// Reference: the loops of B.12 written out literally (every reference-grid point)
// ---------------------------------------------------------------------------

function reference(siz: Siz, coding: TileCoding, t: number): Packet[] {
  const tr = tileRect(siz, t);
  const nc = siz.components.length;
  const L = coding.layers;
  interface Res {
    trx0: number;
    try0: number;
    ppx: number;
    ppy: number;
    npx: number;
    npy: number;
  }
  const NL: number[] = [];
  const res: Res[][] = [];
  for (let c = 0; c < nc; c++) {
    const cc = coding.components[c]!;
    const { dx, dy } = siz.components[c]!;
    NL.push(cc.levels);
    const tcx0 = Math.ceil(tr.x0 / dx);
    const tcy0 = Math.ceil(tr.y0 / dy);
    const tcx1 = Math.ceil(tr.x1 / dx);
    const tcy1 = Math.ceil(tr.y1 / dy);
    const list: Res[] = [];
    for (let r = 0; r <= cc.levels; r++) {
      const d = 2 ** (cc.levels - r);
      const trx0 = Math.ceil(tcx0 / d);
      const try0 = Math.ceil(tcy0 / d);
      const trx1 = Math.ceil(tcx1 / d);
      const try1 = Math.ceil(tcy1 / d);
      const { ppx, ppy } = cc.precincts[r]!;
      const empty = trx0 === trx1 || try0 === try1;
      list.push({
        trx0,
        try0,
        ppx,
        ppy,
        npx: empty ? 0 : Math.ceil(trx1 / 2 ** ppx) - Math.floor(trx0 / 2 ** ppx),
        npy: empty ? 0 : Math.ceil(try1 / 2 ** ppy) - Math.floor(try0 / 2 ** ppy),
      });
    }
    res.push(list);
  }
  const maxR = Math.max(...NL) + 1;
  const done = new Set<string>();
  const out: Packet[] = [];
  const emit = (l: number, r: number, c: number, p: number): void => {
    const key = `${l},${r},${c},${p}`;
    if (done.has(key)) return;
    done.add(key);
    out.push([l, r, c, p]);
  };
  /** The precinct of (c, r) the standard's position loops emit at (x, y), or -1. */
  const at = (c: number, r: number, x: number, y: number): number => {
    const q = res[c]![r]!;
    if (q.npx === 0) return -1;
    const { dx, dy } = siz.components[c]!;
    const e = NL[c]! - r;
    const okY = y % (dy * 2 ** (q.ppy + e)) === 0 || (y === tr.y0 && (q.try0 * 2 ** e) % 2 ** (q.ppy + e) !== 0);
    const okX = x % (dx * 2 ** (q.ppx + e)) === 0 || (x === tr.x0 && (q.trx0 * 2 ** e) % 2 ** (q.ppx + e) !== 0);
    if (!okX || !okY) return -1;
    const kx = Math.floor(Math.ceil(x / (dx * 2 ** e)) / 2 ** q.ppx) - Math.floor(q.trx0 / 2 ** q.ppx);
    const ky = Math.floor(Math.ceil(y / (dy * 2 ** e)) / 2 ** q.ppy) - Math.floor(q.try0 / 2 ** q.ppy);
    if (kx < 0 || kx >= q.npx || ky < 0 || ky >= q.npy) throw new Error(`reference: position (${x},${y}) gives precinct (${kx},${ky}) of ${q.npx}x${q.npy}`);
    return kx + q.npx * ky;
  };
  const entries: PocEntry[] =
    coding.poc.length > 0 ? coding.poc : [{ resStart: 0, compStart: 0, layerEnd: L, resEnd: maxR, compEnd: nc, progression: coding.progression }];
  for (const e of entries) {
    const le = Math.min(e.layerEnd, L);
    const re = Math.min(e.resEnd, maxR);
    const ce = Math.min(e.compEnd, nc);
    const count = (c: number, r: number): number => (r <= NL[c]! ? res[c]![r]!.npx * res[c]![r]!.npy : 0);
    switch (e.progression) {
      case PROGRESSION.LRCP:
        for (let l = 0; l < le; l++)
          for (let r = e.resStart; r < re; r++) for (let c = e.compStart; c < ce; c++) for (let p = 0; p < count(c, r); p++) emit(l, r, c, p);
        break;
      case PROGRESSION.RLCP:
        for (let r = e.resStart; r < re; r++)
          for (let l = 0; l < le; l++) for (let c = e.compStart; c < ce; c++) for (let p = 0; p < count(c, r); p++) emit(l, r, c, p);
        break;
      case PROGRESSION.RPCL:
        for (let r = e.resStart; r < re; r++)
          for (let y = tr.y0; y < tr.y1; y++)
            for (let x = tr.x0; x < tr.x1; x++)
              for (let c = e.compStart; c < ce; c++) {
                if (r > NL[c]!) continue;
                const p = at(c, r, x, y);
                if (p >= 0) for (let l = 0; l < le; l++) emit(l, r, c, p);
              }
        break;
      case PROGRESSION.PCRL:
        for (let y = tr.y0; y < tr.y1; y++)
          for (let x = tr.x0; x < tr.x1; x++)
            for (let c = e.compStart; c < ce; c++)
              for (let r = e.resStart; r < Math.min(re, NL[c]! + 1); r++) {
                const p = at(c, r, x, y);
                if (p >= 0) for (let l = 0; l < le; l++) emit(l, r, c, p);
              }
        break;
      case PROGRESSION.CPRL:
        for (let c = e.compStart; c < ce; c++)
          for (let y = tr.y0; y < tr.y1; y++)
            for (let x = tr.x0; x < tr.x1; x++)
              for (let r = e.resStart; r < Math.min(re, NL[c]! + 1); r++) {
                const p = at(c, r, x, y);
                if (p >= 0) for (let l = 0; l < le; l++) emit(l, r, c, p);
              }
        break;
    }
  }
  return out;
}

function randomCase(seed: number): { siz: Siz; coding: TileCoding; rnd: (n: number) => number } {
  const rnd = rng(seed);
  const { siz, comps } = randomSiz(rnd, 70, 60);
  const components = comps.map(() => {
    const levels = rnd(5);
    const pp: [number, number][] = Array.from({ length: levels + 1 }, (_, r) => [(r === 0 ? 0 : 1) + rnd(4), (r === 0 ? 0 : 1) + rnd(4)]);
    return mkComp(levels, pp);
  });
  return { siz, coding: mkCoding(components, ORDERS[rnd(5)]!, 1 + rnd(3)), rnd };
}

// ---------------------------------------------------------------------------
// Hand-computed orders
// ---------------------------------------------------------------------------

// Two components, the second subsampled 2x horizontally; NL = 1; precincts chosen so that
// both resolutions of component 0 have columns at x = 0, 4 and component 1 at x = 0 (r0), 0, 4 (r1).
const handSiz = mkSiz({ xsiz: 8, ysiz: 2, comps: [[1, 1], [2, 1]] });
const handComps = [mkComp(1, [[1, 15], [2, 15]]), mkComp(1, [[1, 15], [1, 15]])];

test('hand case: RPCL, PCRL, CPRL with a subsampled component', () => {
  const rpcl = sequenceOf(handSiz, mkCoding(handComps, PROGRESSION.RPCL));
  assert.equal(packets(rpcl), [
    [0, 0, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
    [0, 1, 0, 0],
    [0, 1, 1, 0],
    [0, 1, 0, 1],
    [0, 1, 1, 1],
  ]);
  assert.equal(packets(sequenceOf(handSiz, mkCoding(handComps, PROGRESSION.PCRL))), [
    [0, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 1, 1, 0],
    [0, 0, 0, 1],
    [0, 1, 0, 1],
    [0, 1, 1, 1],
  ]);
  assert.equal(packets(sequenceOf(handSiz, mkCoding(handComps, PROGRESSION.CPRL))), [
    [0, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 0, 1],
    [0, 1, 0, 1],
    [0, 0, 1, 0],
    [0, 1, 1, 0],
    [0, 1, 1, 1],
  ]);
});

test('hand case: image origin off the precinct grid (xOsiz = 2)', () => {
  // Tile [2,10). c0: r0 [1,5) in 2-wide precincts reached at x = 2, 4, 8; r1 [2,10) in 4-wide, at 2, 4, 8.
  // c1 (dx = 2): r0 [1,3) reached at x = 2, 8; r1 [1,5) at 2, 4, 8.
  const siz = mkSiz({ xsiz: 10, ysiz: 2, xOsiz: 2, comps: [[1, 1], [2, 1]] });
  const rpcl = sequenceOf(siz, mkCoding(handComps, PROGRESSION.RPCL));
  assert.equal(
    packets(rpcl).map(([, r, c, p]) => `r${r}c${c}p${p}`),
    ['r0c0p0', 'r0c1p0', 'r0c0p1', 'r0c0p2', 'r0c1p1', 'r1c0p0', 'r1c1p0', 'r1c0p1', 'r1c1p1', 'r1c0p2', 'r1c1p2'],
  );
  const g = rpcl.geometry;
  assert.equal([0, 1, 2].map((p) => g.precinctPositionX(0, 0, p)), [2, 4, 8]);
  assert.equal([0, 1].map((p) => g.precinctPositionX(1, 0, p)), [2, 8]);
});

test('hand case: LRCP and RLCP with layers; component with fewer levels', () => {
  const siz = mkSiz({ xsiz: 16, ysiz: 16, comps: [[1, 1], [1, 1]] });
  const comps = [mkComp(2), mkComp(1)];
  assert.equal(
    packets(sequenceOf(siz, mkCoding(comps, PROGRESSION.LRCP, 2))).map(([l, r, c]) => `l${l}r${r}c${c}`),
    ['l0r0c0', 'l0r0c1', 'l0r1c0', 'l0r1c1', 'l0r2c0', 'l1r0c0', 'l1r0c1', 'l1r1c0', 'l1r1c1', 'l1r2c0'],
  );
  assert.equal(
    packets(sequenceOf(siz, mkCoding(comps, PROGRESSION.RLCP, 2))).map(([l, r, c]) => `l${l}r${r}c${c}`),
    ['l0r0c0', 'l0r0c1', 'l1r0c0', 'l1r0c1', 'l0r1c0', 'l0r1c1', 'l1r1c0', 'l1r1c1', 'l0r2c0', 'l1r2c0'],
  );
  const rpcl = sequenceOf(siz, mkCoding(comps, PROGRESSION.RPCL, 2));
  assert.equal(
    packets(rpcl).map(([l, r, c]) => `l${l}r${r}c${c}`),
    ['l0r0c0', 'l1r0c0', 'l0r0c1', 'l1r0c1', 'l0r1c0', 'l1r1c0', 'l0r1c1', 'l1r1c1', 'l0r2c0', 'l1r2c0'],
  );
  assert.equal([...rpcl.lastPacketOfResolution], [3, 7, 9]);
});

test('empty resolutions are skipped', () => {
  // Tile x 197..213 of the offsets grid with NL = 5: resolution 0 is empty.
  const siz = mkSiz({ xsiz: 213, ysiz: 157, xOsiz: 13, yOsiz: 7, xTsiz: 64, yTsiz: 64, xTOsiz: 5, yTOsiz: 3 });
  for (const order of ORDERS) {
    const seq = sequenceOf(siz, mkCoding([mkComp(5)], order, 2), 11);
    assert.is(seq.geometry.precinctCount(0, 0), 0);
    assert.is(seq.count, 2 * 5);
    assert.not.ok([...seq.resolution].includes(0));
    assert.is(seq.lastPacketOfResolution[0], -1);
  }
});

// ---------------------------------------------------------------------------
// POC
// ---------------------------------------------------------------------------

const poc = (progression: Progression, resStart: number, resEnd: number, compStart: number, compEnd: number, layerEnd: number): PocEntry => ({
  progression,
  resStart,
  resEnd,
  compStart,
  compEnd,
  layerEnd,
});

test('POC: overlapping entries emit each packet once, in entry order', () => {
  const siz = mkSiz({ xsiz: 16, ysiz: 16 });
  const entries = [poc(PROGRESSION.RLCP, 1, 3, 0, 1, 2), poc(PROGRESSION.LRCP, 0, 3, 0, 1, 1), poc(PROGRESSION.RPCL, 0, 1, 0, 1, 2)];
  const seq = sequenceOf(siz, mkCoding([mkComp(2)], PROGRESSION.LRCP, 2, entries));
  assert.equal(
    packets(seq).map(([l, r]) => `l${l}r${r}`),
    ['l0r1', 'l1r1', 'l0r2', 'l1r2', 'l0r0', 'l1r0'],
  );
  assert.is(seq.missing, 0);
  assert.equal([...seq.lastPacketOfResolution], [5, 5, 5]);
  assert.is(seq.packetOf(0, 0, 1), 5);
  assert.is(seq.packetOfPrecinct(0, 2, 0, 0), 2);
});

test('POC: packets no entry covers are absent and counted', () => {
  const siz = mkSiz({ xsiz: 16, ysiz: 16, comps: [[1, 1], [1, 1]] });
  // Ranges past the end (resEnd 9, compEnd 256, layerEnd 7) are clamped.
  const seq = sequenceOf(siz, mkCoding([mkComp(2), mkComp(2)], PROGRESSION.LRCP, 2, [poc(PROGRESSION.RLCP, 1, 9, 0, 256, 7), poc(PROGRESSION.CPRL, 0, 1, 1, 2, 1)]));
  assert.is(seq.expected, 2 * 2 * 3);
  assert.is(seq.count, 2 * 2 * 2 + 1);
  assert.is(seq.missing, 3);
  assert.is(seq.packetOf(0, 0, 0), -1);
  assert.is(seq.packetOf(1, 0, 0), 8);
  assert.is(seq.packetOf(1, 0, 1), -1);
  assert.equal([...seq.lastPacketOfResolution], [8, 8, 8]);
  assert.is(seq.layer.length, seq.count);
  // An entry with an empty range does nothing.
  const none = sequenceOf(siz, mkCoding([mkComp(2), mkComp(2)], PROGRESSION.LRCP, 2, [poc(PROGRESSION.RPCL, 2, 2, 0, 2, 2)]));
  assert.is(none.count, 0);
  assert.equal([...none.lastPacketOfResolution], [-1, -1, -1]);
});

test('effectiveProgressions: one whole-tile entry without POC', () => {
  const siz = mkSiz({ comps: [[1, 1], [1, 1], [1, 1]] });
  const coding = mkCoding([mkComp(3), mkComp(1), mkComp(2)], PROGRESSION.PCRL, 4);
  assert.equal(effectiveProgressions(buildTileGeometry(siz, coding, 0), coding), [poc(PROGRESSION.PCRL, 0, 4, 0, 3, 4)]);
});

// ---------------------------------------------------------------------------
// Randomised: the merge equals the literal loops, for every order, with and without POC
// ---------------------------------------------------------------------------

function checkInvariants(seq: PacketSequence, order: Progression | undefined): void {
  const g = seq.geometry;
  const L = seq.layers;
  // packetIndex agrees with the arrays, and each packet appears once.
  let present = 0;
  for (let c = 0; c < g.numComponents; c++) {
    for (let s = 0; s < g.precinctTotal(c); s++) {
      const { r, p } = g.seqToPrecinct(c, s)!;
      for (let l = 0; l < L; l++) {
        const n = seq.packetOf(c, s, l);
        if (n < 0) continue;
        present++;
        assert.equal([seq.layer[n], seq.resolution[n], seq.component[n], seq.precinct[n]], [l, r, c, p]);
        assert.is(seq.packetOfPrecinct(c, r, p, l), n);
      }
    }
  }
  assert.is(present, seq.count);
  assert.is(seq.expected - seq.missing, seq.count);
  // Layers of one precinct come in order.
  const seen = new Map<string, number>();
  for (let n = 0; n < seq.count; n++) {
    const key = `${seq.component[n]},${seq.resolution[n]},${seq.precinct[n]}`;
    const l = seq.layer[n]!;
    assert.is(l, seen.get(key) ?? 0, 'layers of a precinct are consecutive from 0');
    seen.set(key, l + 1);
  }
  // lastPacketOfResolution
  for (let r = 0; r < g.maxResolutions; r++) {
    let last = -1;
    for (let n = 0; n < seq.count; n++) if (seq.resolution[n]! <= r) last = n;
    assert.is(seq.lastPacketOfResolution[r], last);
  }
  if (order === undefined) return;
  assert.is(seq.missing, 0);
  const nonDecreasing = (a: ArrayLike<number>, what: string): void => {
    for (let n = 1; n < seq.count; n++) assert.ok(a[n]! >= a[n - 1]!, `${what} decreases at ${n}`);
  };
  if (order === PROGRESSION.LRCP) nonDecreasing(seq.layer, 'layer');
  if (order === PROGRESSION.RLCP || order === PROGRESSION.RPCL) nonDecreasing(seq.resolution, 'resolution');
  if (order === PROGRESSION.CPRL) nonDecreasing(seq.component, 'component');
  if (order === PROGRESSION.PCRL || order === PROGRESSION.CPRL || order === PROGRESSION.RPCL) {
    // Position-driven orders: layers of a precinct are adjacent.
    for (let n = 1; n < seq.count; n++) if (seq.layer[n]! > 0) assert.is(seq.layer[n], seq.layer[n - 1]! + 1);
  }
}

test('random cases, every order: equals the literal B.12 loops; each packet exactly once', () => {
  let total = 0;
  for (let seed = 1; seed <= 150; seed++) {
    const { siz, coding } = randomCase(seed);
    for (let t = 0; t < numTiles(siz); t++) {
      for (const order of ORDERS) {
        const c = { ...coding, progression: order };
        const seq = sequenceOf(siz, c, t);
        assert.equal(packets(seq), reference(siz, c, t), `seed ${seed} tile ${t} order ${order}`);
        assert.is(seq.count, seq.layers * seq.geometry.totalPrecincts);
        checkInvariants(seq, order);
        total += seq.count;
      }
    }
  }
  assert.ok(total > 10000, `${total} packets checked`);
});

test('random POC cases: equal the literal loops, packets tracked across entries', () => {
  for (let seed = 1000; seed < 1150; seed++) {
    const { siz, coding, rnd } = randomCase(seed);
    const maxR = Math.max(...coding.components.map((x) => x.levels)) + 1;
    const nc = coding.components.length;
    const n = 1 + rnd(4);
    const entries: PocEntry[] = [];
    for (let i = 0; i < n; i++) {
      const rs = rnd(maxR);
      const cs = rnd(nc);
      entries.push(poc(ORDERS[rnd(5)]!, rs, rs + 1 + rnd(maxR + 1 - rs), cs, cs + 1 + rnd(nc + 1 - cs), 1 + rnd(coding.layers + 1)));
    }
    const c = { ...coding, poc: entries };
    for (let t = 0; t < numTiles(siz); t++) {
      const seq = sequenceOf(siz, c, t);
      assert.equal(packets(seq), reference(siz, c, t), `seed ${seed} tile ${t}`);
      checkInvariants(seq, undefined);
    }
  }
});

test('forEachPacket visits the same sequence', () => {
  const { siz, coding } = randomCase(7);
  const seq = sequenceOf(siz, coding);
  const seen: Packet[] = [];
  const n = forEachPacket(seq.geometry, coding, (l, r, c, p) => seen.push([l, r, c, p]));
  assert.is(n, seq.count);
  assert.equal(seen, packets(seq));
});

test('bad layer counts and unknown orders are BAD_VALUE', () => {
  const siz = mkSiz({});
  const g = buildTileGeometry(siz, mkCoding([mkComp(1)], PROGRESSION.LRCP), 0);
  const e1 = catchError(() => packetSequence(g, mkCoding([mkComp(1)], PROGRESSION.LRCP, 0)));
  assert.is((e1 as J2kError).code, J2K_ERROR.BAD_VALUE);
  const e2 = catchError(() => packetSequence(g, mkCoding([mkComp(1)], 7 as Progression)));
  assert.is((e2 as J2kError).code, J2K_ERROR.BAD_VALUE);
});

test('too many packets is UNSUPPORTED, before anything is allocated', () => {
  // 128 x 128 one-sample precincts = 2^14, times 65535 layers > 2^28.
  const siz = mkSiz({ xsiz: 128, ysiz: 128 });
  const coding = mkCoding([mkComp(0, [[0, 0]])], PROGRESSION.RPCL, 65535);
  const g = buildTileGeometry(siz, coding, 0);
  assert.is(g.totalPrecincts, 2 ** 14);
  const e = catchError(() => packetSequence(g, coding));
  assert.is((e as J2kError).code, J2K_ERROR.UNSUPPORTED);
  // 2^32 one-sample precincts: refused by the geometry itself.
  const huge = mkSiz({ xsiz: 65536, ysiz: 65536 });
  const e2 = catchError(() => buildTileGeometry(huge, mkCoding([mkComp(0, [[0, 0]])], PROGRESSION.LRCP), 0));
  assert.is((e2 as J2kError).code, J2K_ERROR.UNSUPPORTED);
});

// ---------------------------------------------------------------------------
// Speed
// ---------------------------------------------------------------------------

test('speed: 4096², 3 components, 8 levels, 8 layers, 128² precincts', () => {
  const siz = mkSiz({ xsiz: 4096, ysiz: 4096, comps: [[1, 1], [1, 1], [1, 1]] });
  const pp = Array.from({ length: 9 }, (): [number, number] => [7, 7]);
  for (const order of ORDERS) {
    const coding = mkCoding([mkComp(8, pp), mkComp(8, pp), mkComp(8, pp)], order, 8);
    let best = Infinity;
    let seq: PacketSequence | undefined;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      seq = packetSequence(buildTileGeometry(siz, coding, 0), coding);
      best = Math.min(best, performance.now() - t0);
    }
    // 3 × (1024 + 256 + 64 + 16 + 4 + 1 + 1 + 1 + 1) precincts × 8 layers
    assert.is(seq!.count, 3 * 1368 * 8);
    assert.ok(best < 25, `${order}: ${best.toFixed(2)} ms`);
  }
});

// ---------------------------------------------------------------------------
// Fixtures: packet counts against the PLT markers opj_compress wrote
// ---------------------------------------------------------------------------

function codestreamOf(file: string) {
  const src0 = bufferSource(fixtureBytes(file), file);
  const ref = readContainer(src0).codestreams[0]!;
  const src = subSource(src0, ref.offset, ref.length);
  return { src, cs: readCodestream(src) };
}

for (const f of fixtures()) {
  test(`fixture ${f.name}: packet sequence of every tile`, () => {
    const { src, cs } = codestreamOf(f.file);
    const tpByResolution = f.args.join(' ').includes('-TP R');
    for (let t = 0; t < cs.tiles.length; t++) {
      const coding = tileCoding(cs, t);
      const seq = packetSequence(buildTileGeometry(cs.main.siz, coding, t), coding);
      assert.is(seq.missing, 0, 'every packet is covered');
      checkInvariants(seq, coding.poc.length > 0 ? undefined : coding.progression);
      const parts = cs.tiles[t]!.map((i) => cs.tileParts[i]!);
      if (!parts.every((p) => p.plt.length > 0)) continue;
      // PLT lists one length per packet: the counts must agree, tile-part by tile-part.
      const perPart = parts.map((tp) => {
        const lengths: number[] = [];
        for (const s of tp.plt) decodePacketLengths(src.read(s.dataOffset, s.dataLength), 0, s.dataLength, lengths);
        assert.is(
          lengths.reduce((a, b) => a + b, 0),
          tp.bodyLength,
        );
        return lengths.length;
      });
      assert.is(
        perPart.reduce((a, b) => a + b, 0),
        seq.count,
        `tile ${t}`,
      );
      if (tpByResolution) {
        // One tile-part per resolution change of the sequence.
        const runs: number[] = [];
        for (let n = 0; n < seq.count; n++) {
          if (n === 0 || seq.resolution[n] !== seq.resolution[n - 1]) runs.push(0);
          runs[runs.length - 1]!++;
        }
        assert.equal(perPart, runs, `tile ${t}: tile-part packet counts`);
      }
    }
  });
}

test('fixture rgb128-poc: the POC entries drive the order', () => {
  const { cs } = codestreamOf('rgb128-poc.j2k');
  const coding = tileCoding(cs, 0);
  assert.equal(
    coding.poc.map((e) => [e.resStart, e.compStart, e.layerEnd, e.resEnd, e.compEnd, e.progression]),
    [
      [0, 0, 3, 3, 3, PROGRESSION.RPCL],
      [3, 0, 3, 6, 3, PROGRESSION.LRCP],
    ],
  );
  const seq = packetSequence(buildTileGeometry(cs.main.siz, coding, 0), coding);
  assert.is(seq.count, 3 * 3 * 6);
  // RPCL over resolutions 0..2 first (27 packets), then LRCP over 3..5.
  assert.is(seq.lastPacketOfResolution[2], 26);
  assert.equal([...seq.resolution.slice(0, 9)], [0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal([...seq.layer.slice(27, 36)], [0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal([...seq.resolution.slice(27, 36)], [3, 3, 3, 4, 4, 4, 5, 5, 5]);
});

test.run();
