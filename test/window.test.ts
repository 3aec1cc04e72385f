import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream, tileCoding, type Codestream } from '../jpeg2000/codestream.js';
import { buildTileGeometry, numTiles, precinctBinId, resolutionSizeAtDiscard, tileRect, type Rect, type TileGeometry } from '../jpeg2000/geometry.js';
import { PROGRESSION, type Siz, type TileCoding } from '../jpeg2000/markers.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { JpipError } from '../jpip/errors.js';
import {
  FILTER_REACH,
  frameToReference,
  fullView,
  maxDiscardLevels,
  orderPrecincts,
  planWindow,
  resolveView,
  windowPrecinctRanges,
  windowPrecincts,
  windowTiles,
  type RoundDirection,
  type View,
  type ViewRequest,
} from '../jpip/window.js';
import { mkCoding, mkComp, mkSiz, randomSiz, rng } from './geometry-helpers.js';
import { catchError, fixtureBytes, fixtures } from './helpers.js';

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

interface Image {
  name: string;
  siz: Siz;
  codings: TileCoding[];
  geoms: TileGeometry[];
  maxDiscard: number;
}

function imageOf(name: string, siz: Siz, codings: TileCoding[]): Image {
  return { name, siz, codings, geoms: codings.map((cod, t) => buildTileGeometry(siz, cod, t)), maxDiscard: maxDiscardLevels(codings) };
}

function codestreamOf(file: string): Codestream {
  const src = bufferSource(fixtureBytes(file), file);
  const ref = readContainer(src).codestreams[0]!;
  return readCodestream(subSource(src, ref.offset, ref.length));
}

const IMAGES: Image[] = fixtures().map((f) => {
  const cs = codestreamOf(f.file);
  const siz = cs.main.siz;
  return imageOf(f.name, siz, Array.from({ length: numTiles(siz) }, (_, t) => tileCoding(cs, t)));
});

function randomImage(seed: number): Image {
  const rnd = rng(seed);
  const { siz, comps } = randomSiz(rnd, 90, 50);
  const codings = Array.from({ length: numTiles(siz) }, (_, t) => {
    // Tiles share a coding most of the time; some get their own NL (tile COD).
    const r2 = rng(t === 0 || rnd(4) !== 0 ? seed * 7 + 1 : seed * 7 + 2 + t);
    const components = comps.map(() => {
      const levels = r2(6);
      const pp: [number, number][] = Array.from({ length: levels + 1 }, (_, r) => [(r === 0 ? 0 : 1) + r2(5), (r === 0 ? 0 : 1) + r2(5)]);
      const comp = mkComp(levels, pp, 2 + r2(4), 2 + r2(4));
      comp.transform = r2(2);
      return comp;
    });
    return mkCoding(components, PROGRESSION.LRCP, 1);
  });
  return imageOf(`random#${seed}`, siz, codings);
}

function frameSizes(siz: Siz, maxDiscard: number): { width: number; height: number }[] {
  return Array.from({ length: maxDiscard + 1 }, (_, d) => resolutionSizeAtDiscard(siz, d));
}

function view(siz: Siz, maxDiscard: number, req: ViewRequest): View {
  const v = resolveView(siz, maxDiscard, req);
  assert.ok(v, 'a view');
  return v;
}

/** Discard chosen straight from the definitions, by ranking all candidates (not by scanning in d order). */
function bruteDiscard(sizes: { width: number; height: number }[], fx: number, fy: number, round: RoundDirection): number {
  const all = sizes.map((s, d) => ({ d, w: s.width, h: s.height, a: s.width * s.height }));
  let pick: (typeof all)[number] | undefined;
  if (round === 'round-down') {
    const ok = all.filter((s) => s.w <= fx && s.h <= fy).sort((p, q) => q.a - p.a || p.d - q.d);
    pick = ok[0] ?? all[all.length - 1]!;
  } else if (round === 'round-up') {
    const ok = all.filter((s) => s.w >= fx && s.h >= fy).sort((p, q) => p.a - q.a || p.d - q.d);
    pick = ok[0] ?? all[0]!;
  } else {
    const f = fx * fy;
    pick = [...all].sort((p, q) => Math.abs(p.a - f) - Math.abs(q.a - f) || q.a - p.a || p.d - q.d)[0]!;
  }
  // Identical frames at several d resolve to the smallest d.
  return all.find((s) => s.w === pick.w && s.h === pick.h)!.d;
}

// ---------------------------------------------------------------------------
// resolveView: frame size
// ---------------------------------------------------------------------------

const fsiz = suite('window: fsiz rounding');

// 100x80: frames 100x80, 50x40, 25x20, 13x10, 7x5, 4x3 for d = 0..5.
const S100 = mkSiz({ xsiz: 100, ysiz: 80 });

fsiz('no fsiz: undefined, whatever roff/rsiz say; fullView is the whole image', () => {
  assert.is(resolveView(S100, 5, {}), undefined);
  assert.is(resolveView(S100, 5, { roff: { x: 1, y: 1 }, rsiz: { w: 2, h: 2 } }), undefined);
  const off = mkSiz({ xsiz: 110, ysiz: 90, xOsiz: 7, yOsiz: 9 });
  assert.equal(fullView(off), {
    discard: 0,
    fsiz: { w: 103, h: 81 },
    roff: { x: 0, y: 0 },
    rsiz: { w: 103, h: 81 },
    modified: { fsiz: false, roff: false, rsiz: false },
    region: { x0: 7, y0: 9, x1: 110, y1: 90 },
    empty: false,
  });
  assert.equal(fullView(off), view(off, 3, { fsiz: { fx: 103, fy: 81 } }));
});

fsiz('round-down (the default)', () => {
  const d = (fx: number, fy: number, round?: RoundDirection): [number, number, number, boolean] => {
    const v = view(S100, 5, { fsiz: { fx, fy, round } });
    return [v.discard, v.fsiz.w, v.fsiz.h, v.modified.fsiz];
  };
  assert.equal(d(100, 80), [0, 100, 80, false]);
  assert.equal(d(100, 80, 'round-down'), [0, 100, 80, false]);
  assert.equal(d(99, 80), [1, 50, 40, true]);
  assert.equal(d(100, 79), [1, 50, 40, true]);
  assert.equal(d(60, 60), [1, 50, 40, true]);
  assert.equal(d(50, 40), [1, 50, 40, false]);
  assert.equal(d(50, 1000), [1, 50, 40, true]);
  assert.equal(d(13, 10), [3, 13, 10, false]);
  assert.equal(d(12, 10), [4, 7, 5, true]);
  assert.equal(d(5000, 5000), [0, 100, 80, true]);
  // Smaller than the smallest frame: the smallest frame (d = maxDiscard).
  assert.equal(d(1, 1), [5, 4, 3, true]);
  assert.equal(view(S100, 2, { fsiz: { fx: 1, fy: 1 } }).discard, 2);
  assert.equal(view(S100, 0, { fsiz: { fx: 1, fy: 1 } }).discard, 0);
});

fsiz('round-up', () => {
  const d = (fx: number, fy: number): [number, boolean] => {
    const v = view(S100, 5, { fsiz: { fx, fy, round: 'round-up' } });
    return [v.discard, v.modified.fsiz];
  };
  assert.equal(d(100, 80), [0, false]);
  assert.equal(d(60, 60), [0, true]);
  assert.equal(d(51, 1), [0, true]);
  assert.equal(d(50, 40), [1, false]);
  assert.equal(d(26, 20), [1, true]);
  assert.equal(d(25, 20), [2, false]);
  assert.equal(d(25, 21), [1, true]);
  assert.equal(d(1, 1), [5, true]);
  assert.equal(view(S100, 3, { fsiz: { fx: 1, fy: 1, round: 'round-up' } }).discard, 3);
  // Larger than the full image: the full image.
  assert.equal(d(101, 80), [0, true]);
  assert.equal(d(5000, 1), [0, true]);
});

fsiz('closest: least |W·H - fx·fy|, ties to the larger frame', () => {
  const d = (fx: number, fy: number): number => view(S100, 5, { fsiz: { fx, fy, round: 'closest' } }).discard;
  assert.is(d(100, 80), 0);
  assert.is(d(30, 30), 2); // 900: |500-900| = 400 < |2000-900| = 1100
  assert.is(d(40, 40), 1); // 1600: 400 < 1100
  // Areas 2000 (d=1) and 500 (d=2): 1250 is exactly between: the larger frame.
  assert.is(d(1250, 1), 1);
  assert.is(d(1249, 1), 2);
  assert.is(d(1251, 1), 1);
  assert.is(d(1, 1), 5);
  assert.is(d(10000, 10000), 0);
  // Exact beyond 2^53: a 2^32-1 square image.
  const big = mkSiz({ xsiz: 2 ** 32 - 1, ysiz: 2 ** 32 - 1 });
  const v = view(big, 3, { fsiz: { fx: 2 ** 31, fy: 2 ** 31, round: 'closest' } });
  assert.is(v.discard, 1);
  assert.is(v.fsiz.w, 2 ** 31);
  assert.is(v.modified.fsiz, false);
});

fsiz('odd sizes and image offsets: frame size is ceil(X/2^d) - ceil(X0/2^d)', () => {
  // 97x61 at offset (13, 7): x from 13 to 110.
  const s = mkSiz({ xsiz: 110, ysiz: 68, xOsiz: 13, yOsiz: 7 });
  assert.equal(
    frameSizes(s, 4).map((f) => [f.width, f.height]),
    [
      [97, 61],
      [48, 30], // 55 - 7, 34 - 4
      [24, 15], // 28 - 4, 17 - 2
      [12, 8], // 14 - 2, 9 - 1
      [6, 4], // 7 - 1, 5 - 1
    ],
  );
  assert.is(view(s, 4, { fsiz: { fx: 48, fy: 30 } }).discard, 1);
  assert.is(view(s, 4, { fsiz: { fx: 48, fy: 29 } }).discard, 2);
  assert.is(view(s, 4, { fsiz: { fx: 49, fy: 31, round: 'round-up' } }).discard, 0);
  assert.is(view(s, 4, { fsiz: { fx: 48, fy: 31, round: 'round-up' } }).discard, 0);
  assert.is(view(s, 4, { fsiz: { fx: 48, fy: 30, round: 'round-up' } }).discard, 1);
  // The full frame at d = 1 starts at reference (14, 8): (13, 7) projects onto the same first sample.
  assert.equal(view(s, 4, { fsiz: { fx: 48, fy: 30 } }).region, { x0: 14, y0: 8, x1: 110, y1: 68 });
  assert.equal(view(s, 4, { fsiz: { fx: 97, fy: 61 } }).region, { x0: 13, y0: 7, x1: 110, y1: 68 });
});

fsiz('a 1x1 image: identical frames at every d resolve to d = 0', () => {
  const s = mkSiz({ xsiz: 1, ysiz: 1 });
  for (const round of ['round-down', 'round-up', 'closest'] as const) {
    for (const [fx, fy] of [
      [1, 1],
      [5, 5],
    ]) {
      const v = view(s, 4, { fsiz: { fx: fx!, fy: fy!, round } });
      assert.is(v.discard, 0, `${round} ${fx}`);
      assert.equal(v.fsiz, { w: 1, h: 1 });
    }
  }
});

fsiz('every fixture: each exact frame size maps to its d, unmodified; brute force for others', () => {
  const rnd = rng(11);
  for (const img of IMAGES) {
    const sizes = frameSizes(img.siz, img.maxDiscard);
    for (let d = 0; d <= img.maxDiscard; d++) {
      const { width, height } = sizes[d]!;
      for (const round of ['round-down', 'round-up', 'closest'] as const) {
        const v = view(img.siz, img.maxDiscard, { fsiz: { fx: width, fy: height, round } });
        assert.is(v.discard, d, `${img.name} d=${d} ${round}`);
        assert.is(v.modified.fsiz, false);
        // Frame sample 0 covers [ceil(X0/2^d)·2^d, ...): reference columns left of it hold no sample of this frame.
        const k = 2 ** d;
        assert.equal(v.region, { x0: Math.ceil(img.siz.xOsiz / k) * k, y0: Math.ceil(img.siz.yOsiz / k) * k, x1: img.siz.xsiz, y1: img.siz.ysiz });
      }
    }
    for (let i = 0; i < 200; i++) {
      const fx = 1 + rnd(sizes[0]!.width + 20);
      const fy = 1 + rnd(sizes[0]!.height + 20);
      for (const round of ['round-down', 'round-up', 'closest'] as const) {
        const v = view(img.siz, img.maxDiscard, { fsiz: { fx, fy, round } });
        assert.is(v.discard, bruteDiscard(sizes, fx, fy, round), `${img.name} ${fx},${fy} ${round}`);
        assert.equal(v.fsiz, { w: sizes[v.discard]!.width, h: sizes[v.discard]!.height });
        assert.is(v.modified.fsiz, v.fsiz.w !== fx || v.fsiz.h !== fy);
      }
    }
  }
});

fsiz('random hand-made SIZ with offsets: brute force', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rnd = rng(seed);
    const { siz } = randomSiz(rnd, 300, 300);
    const maxD = rnd(7);
    const sizes = frameSizes(siz, maxD);
    for (let i = 0; i < 20; i++) {
      const fx = 1 + rnd(sizes[0]!.width + 10);
      const fy = 1 + rnd(sizes[0]!.height + 10);
      for (const round of ['round-down', 'round-up', 'closest'] as const) {
        assert.is(view(siz, maxD, { fsiz: { fx, fy, round } }).discard, bruteDiscard(sizes, fx, fy, round), `seed ${seed}`);
      }
    }
  }
});

fsiz('malformed values are BAD_FIELD JpipErrors naming the field', () => {
  const cases: [ViewRequest, string][] = [
    [{ fsiz: { fx: 0, fy: 10 } }, 'fsiz'],
    [{ fsiz: { fx: 10, fy: -1 } }, 'fsiz'],
    [{ fsiz: { fx: 1.5, fy: 10 } }, 'fsiz'],
    [{ fsiz: { fx: 10, fy: 10, round: 'sideways' as RoundDirection } }, 'fsiz'],
    [{ fsiz: { fx: 10, fy: 10 }, roff: { x: -1, y: 0 } }, 'roff'],
    [{ fsiz: { fx: 10, fy: 10 }, roff: { x: 0, y: Number.NaN } }, 'roff'],
    [{ fsiz: { fx: 10, fy: 10 }, rsiz: { w: 2 ** 53, h: 1 } }, 'rsiz'],
    [{ fsiz: { fx: 10, fy: 10 }, rsiz: { w: 1, h: -3 } }, 'rsiz'],
  ];
  for (const [req, field] of cases) {
    const e = catchError(() => resolveView(S100, 5, req));
    assert.instance(e, JpipError);
    assert.is((e as JpipError).kind, 'BAD_FIELD');
    assert.is((e as JpipError).field, field);
    assert.is((e as JpipError).status, 400);
  }
  assert.throws(() => resolveView(S100, -1, { fsiz: { fx: 1, fy: 1 } }), RangeError);
});

fsiz.run();

// ---------------------------------------------------------------------------
// resolveView: roff / rsiz and the reference-grid region
// ---------------------------------------------------------------------------

const region = suite('window: roff/rsiz and region');

region('unscaled window: roff/rsiz kept, region on the reference grid', () => {
  const v = view(S100, 5, { fsiz: { fx: 50, fy: 40 }, roff: { x: 10, y: 5 }, rsiz: { w: 20, h: 7 } });
  assert.equal(v.roff, { x: 10, y: 5 });
  assert.equal(v.rsiz, { w: 20, h: 7 });
  assert.equal(v.modified, { fsiz: false, roff: false, rsiz: false });
  assert.equal(v.region, { x0: 20, y0: 10, x1: 60, y1: 24 });
  assert.is(v.empty, false);
});

region('missing rsiz runs to the frame edge; missing roff is 0,0', () => {
  const v = view(S100, 5, { fsiz: { fx: 50, fy: 40 }, roff: { x: 10, y: 5 } });
  assert.equal(v.rsiz, { w: 40, h: 35 });
  assert.equal(v.modified, { fsiz: false, roff: false, rsiz: false });
  const w = view(S100, 5, { fsiz: { fx: 50, fy: 40 }, rsiz: { w: 5, h: 5 } });
  assert.equal(w.roff, { x: 0, y: 0 });
  assert.equal(w.region, { x0: 0, y0: 0, x1: 10, y1: 10 });
});

region('a window past the frame edge is clipped and reported', () => {
  const v = view(S100, 5, { fsiz: { fx: 50, fy: 40 }, roff: { x: 40, y: 30 }, rsiz: { w: 20, h: 5 } });
  assert.equal(v.roff, { x: 40, y: 30 });
  assert.equal(v.rsiz, { w: 10, h: 5 });
  assert.equal(v.modified, { fsiz: false, roff: false, rsiz: true });
  assert.equal(v.region, { x0: 80, y0: 60, x1: 100, y1: 70 });
});

region('rescaling to the chosen frame: starts floor, ends ceil, then clip', () => {
  // fsiz 200x160 round-down -> 100x80 (d = 0), scale 1/2.
  const v = view(S100, 5, { fsiz: { fx: 200, fy: 160 }, roff: { x: 51, y: 31 }, rsiz: { w: 50, h: 50 } });
  assert.is(v.discard, 0);
  assert.equal(v.roff, { x: 25, y: 15 }); // floor(51/2), floor(31/2)
  assert.equal(v.rsiz, { w: 26, h: 26 }); // ceil(101/2) - 25, ceil(81/2) - 15
  assert.equal(v.modified, { fsiz: true, roff: true, rsiz: true });
  // fsiz 120x96 -> 100x80 (scale 5/6): x 30..90 -> 25..75, y 12..36 -> 10..30.
  const w = view(S100, 5, { fsiz: { fx: 120, fy: 96 }, roff: { x: 30, y: 12 }, rsiz: { w: 60, h: 24 } });
  assert.equal([w.roff, w.rsiz], [
    { x: 25, y: 10 },
    { w: 50, h: 20 },
  ]);
  // Rescaled past the edge: clipped.
  const c = view(S100, 5, { fsiz: { fx: 200, fy: 160 }, roff: { x: 150, y: 0 }, rsiz: { w: 100, h: 500 } });
  assert.equal([c.roff, c.rsiz], [
    { x: 75, y: 0 },
    { w: 25, h: 80 },
  ]);
  // Up-scaling (round-up from a small request): 30x30 round-up -> 50x40.
  const u = view(S100, 5, { fsiz: { fx: 30, fy: 30, round: 'round-up' }, roff: { x: 1, y: 1 }, rsiz: { w: 3, h: 3 } });
  assert.is(u.discard, 1);
  assert.equal([u.roff, u.rsiz], [
    { x: 1, y: 1 }, // floor(50/30), floor(40/30)
    { w: 6, h: 5 }, // ceil(200/30) = 7, ceil(160/30) = 6
  ]);
  assert.equal(u.modified, { fsiz: true, roff: false, rsiz: true });
});

region('a window fully outside the frame is empty, not an error', () => {
  for (const req of [
    { fsiz: { fx: 50, fy: 40 }, roff: { x: 50, y: 0 } },
    { fsiz: { fx: 50, fy: 40 }, roff: { x: 0, y: 99 }, rsiz: { w: 5, h: 5 } },
    { fsiz: { fx: 50, fy: 40 }, rsiz: { w: 0, h: 5 } },
    { fsiz: { fx: 200, fy: 160 }, roff: { x: 250, y: 0 }, rsiz: { w: 10, h: 10 } },
    { fsiz: { fx: 200, fy: 160 }, roff: { x: 10, y: 10 }, rsiz: { w: 0, h: 0 } },
  ] satisfies ViewRequest[]) {
    const v = view(S100, 5, req);
    assert.is(v.empty, true, JSON.stringify(req));
    assert.equal(v.rsiz, { w: 0, h: 0 });
    assert.is(v.region.x0, v.region.x1);
    assert.equal(windowTiles(S100, v.region), []);
  }
  assert.equal(view(S100, 5, { fsiz: { fx: 50, fy: 40 }, roff: { x: 50, y: 0 } }).roff, { x: 50, y: 0 });
});

region('region against brute force: which reference samples the frame window covers', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const rnd = rng(seed);
    const { siz } = randomSiz(rnd, 120, 60);
    const maxD = rnd(6);
    const d = rnd(maxD + 1);
    const { width: W, height: H } = resolutionSizeAtDiscard(siz, d);
    if (W === 0 || H === 0) continue; // a 1-sample-wide image can vanish at high d
    const req: ViewRequest = {
      fsiz: { fx: W, fy: H },
      roff: { x: rnd(W + 3), y: rnd(H + 3) },
      rsiz: { w: rnd(W + 3), h: rnd(H + 3) },
    };
    const v = view(siz, maxD, req);
    if (v.discard !== d) continue; // identical 1-sample frames: another d (tested above)
    const k = 2 ** d;
    // Brute force, one axis at a time: reference sample X belongs to frame sample floor(X/2^d) - ceil(X0/2^d).
    const cover = (lo: number, hi: number, o: number, start: number, len: number): [number, number] | undefined => {
      let a = Infinity;
      let b = -Infinity;
      for (let X = lo; X < hi; X++) {
        const u = Math.floor(X / k) - Math.ceil(o / k);
        if (u >= start && u < start + len) {
          a = Math.min(a, X);
          b = Math.max(b, X + 1);
        }
      }
      return a === Infinity ? undefined : [a, b];
    };
    const cx = cover(siz.xOsiz, siz.xsiz, siz.xOsiz, req.roff!.x, req.rsiz!.w);
    const cy = cover(siz.yOsiz, siz.ysiz, siz.yOsiz, req.roff!.y, req.rsiz!.h);
    if (!cx || !cy) {
      assert.is(v.empty, true, `seed ${seed}`);
      continue;
    }
    assert.is(v.empty, false, `seed ${seed}`);
    assert.equal(v.region, { x0: cx[0], y0: cy[0], x1: cx[1], y1: cy[1] }, `seed ${seed}`);
    // The standard's projection (ceil both ends) gives the served window back.
    const ox = Math.ceil(siz.xOsiz / k);
    const oy = Math.ceil(siz.yOsiz / k);
    assert.equal(
      [Math.ceil(v.region.x0 / k) - ox, Math.ceil(v.region.y0 / k) - oy, Math.ceil(v.region.x1 / k) - ox, Math.ceil(v.region.y1 / k) - oy],
      [v.roff.x, v.roff.y, v.roff.x + v.rsiz.w, v.roff.y + v.rsiz.h],
      `seed ${seed}`,
    );
    assert.equal(v.rsiz, { w: Math.min(req.rsiz!.w, W - req.roff!.x), h: Math.min(req.rsiz!.h, H - req.roff!.y) });
  }
});

region('rescaled windows: exact floor/ceil against small rationals, then clipped', () => {
  const rnd = rng(5);
  for (let i = 0; i < 3000; i++) {
    const { siz } = randomSiz(rnd, 200, 100);
    const maxD = rnd(5);
    const fx = 1 + rnd(300);
    const fy = 1 + rnd(300);
    const round = (['round-down', 'round-up', 'closest'] as const)[rnd(3)]!;
    const roff = { x: rnd(fx + 5), y: rnd(fy + 5) };
    const rsiz = { w: rnd(fx + 5), h: rnd(fy + 5) };
    const v = view(siz, maxD, { fsiz: { fx, fy, round }, roff, rsiz });
    const { w: W, h: H } = v.fsiz;
    const x0 = Math.floor((roff.x * W) / fx);
    const x1 = Math.min(W, Math.ceil(((roff.x + rsiz.w) * W) / fx));
    const y0 = Math.floor((roff.y * H) / fy);
    const y1 = Math.min(H, Math.ceil(((roff.y + rsiz.h) * H) / fy));
    const empty = rsiz.w === 0 || rsiz.h === 0 || x0 >= x1 || y0 >= y1;
    assert.is(v.empty, empty);
    if (!empty) {
      assert.equal([v.roff, v.rsiz], [
        { x: x0, y: y0 },
        { w: x1 - x0, h: y1 - y0 },
      ]);
      assert.equal(v.region, frameToReference(siz, v.discard, {
        x0: x0 + Math.ceil(siz.xOsiz / 2 ** v.discard),
        y0: y0 + Math.ceil(siz.yOsiz / 2 ** v.discard),
        x1: x1 + Math.ceil(siz.xOsiz / 2 ** v.discard),
        y1: y1 + Math.ceil(siz.yOsiz / 2 ** v.discard),
      }));
    }
  }
});

region('windowTiles: exactly the tiles whose rect meets the region, raster order', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rnd = rng(seed);
    const { siz } = randomSiz(rnd, 120, 30);
    const r: Rect = {
      x0: siz.xOsiz + rnd(siz.xsiz - siz.xOsiz),
      y0: siz.yOsiz + rnd(siz.ysiz - siz.yOsiz),
      x1: 0,
      y1: 0,
    };
    const reg = { ...r, x1: r.x0 + rnd(siz.xsiz - r.x0 + 1), y1: r.y0 + rnd(siz.ysiz - r.y0 + 1) };
    const want: number[] = [];
    for (let t = 0; t < numTiles(siz); t++) {
      const tr = tileRect(siz, t);
      if (Math.max(tr.x0, reg.x0) < Math.min(tr.x1, reg.x1) && Math.max(tr.y0, reg.y0) < Math.min(tr.y1, reg.y1)) want.push(t);
    }
    assert.equal(windowTiles(siz, reg), want, `seed ${seed}`);
  }
  const full = mkSiz({ xsiz: 200, ysiz: 150, xTsiz: 64, yTsiz: 64 });
  assert.equal(windowTiles(full, { x0: 0, y0: 0, x1: 200, y1: 150 }), [...Array(12).keys()]);
  assert.equal(windowTiles(full, { x0: 63, y0: 64, x1: 65, y1: 65 }), [4, 5]);
  assert.equal(windowTiles(full, { x0: 64, y0: 64, x1: 128, y1: 128 }), [5]);
});

region.run();

// ---------------------------------------------------------------------------
// windowPrecincts
// ---------------------------------------------------------------------------

const prec = suite('window: precinct selection');

/**
 * Brute force: component c at resolution r (k = NL - r, scale m = XRsiz·2^k)
 * has sample v at reference position v·m. A precinct is taken when one of
 * its samples v satisfies, on both axes, "[(v-w)·m, (v+w)·m] meets the region"
 * (v within w samples of the window), and the component has at least one
 * sample of the tile inside the region at r_max = max(0, NL - d).
 */
function bruteSelect(g: TileGeometry, reg: Rect, d: number, reachOf: (c: number) => number, comps?: number[]): string[] {
  const out: string[] = [];
  for (let c = 0; c < g.numComponents; c++) {
    if (comps && !comps.includes(c)) continue;
    const { dx, dy } = g.siz.components[c]!;
    const NL = g.levels(c);
    const rmax = Math.max(0, NL - d);
    const inAxis = (v: number, m: number, w: number, lo: number, hi: number): boolean => (v - w) * m < hi && (v + w) * m >= lo;
    const top = g.resolutionRect(c, rmax);
    const mt = 2 ** (NL - rmax);
    let hasX = false;
    let hasY = false;
    for (let v = top.x0; v < top.x1; v++) hasX ||= inAxis(v, mt * dx, 0, reg.x0, reg.x1);
    for (let v = top.y0; v < top.y1; v++) hasY ||= inAxis(v, mt * dy, 0, reg.y0, reg.y1);
    if (!hasX || !hasY) continue;
    const w = rmax === 0 ? 0 : reachOf(c);
    for (let r = 0; r <= rmax; r++) {
      const m = 2 ** (NL - r);
      for (let p = 0; p < g.precinctCount(c, r); p++) {
        const pr = g.precinctRect(c, r, p);
        let ox = false;
        let oy = false;
        for (let v = pr.x0; v < pr.x1 && !ox; v++) ox = inAxis(v, m * dx, w, reg.x0, reg.x1);
        for (let v = pr.y0; v < pr.y1 && !oy; v++) oy = inAxis(v, m * dy, w, reg.y0, reg.y1);
        if (ox && oy) out.push(`${c}/${r}/${p}/${g.precinctSeq(c, r, p)}`);
      }
    }
  }
  return out;
}

function keys(list: readonly { c: number; r: number; p: number; s: number }[]): string[] {
  return list.map((q) => `${q.c}/${q.r}/${q.p}/${q.s}`);
}

function checkAgainstBrute(img: Image, v: View, label: string, rnd: (n: number) => number): void {
  const tiles = windowTiles(img.siz, v.region);
  for (let t = 0; t < img.geoms.length; t++) {
    const g = img.geoms[t]!;
    const transforms = img.codings[t]!.components.map((cc) => cc.transform);
    const fixed = rnd(10);
    const comps = rnd(3) === 0 ? [rnd(g.numComponents)] : undefined;
    for (const [reach, reachOf] of [
      ['auto', (c: number) => (transforms[c] === 1 ? 4 : 8)],
      [0, () => 0],
      [fixed, () => fixed],
    ] as const) {
      const got = windowPrecincts(g, v.region, v.discard, { filterReach: reach, coding: img.codings[t], components: comps });
      assert.equal(keys(got), bruteSelect(g, v.region, v.discard, reachOf, comps), `${label} tile ${t} reach ${reach}`);
      if (got.length > 0) assert.ok(tiles.includes(t), `${label}: tile ${t} has precincts but is not a window tile`);
    }
  }
}

prec('every fixture, random windows at every discard: brute force', () => {
  const rnd = rng(3);
  for (const img of IMAGES) {
    for (let d = 0; d <= img.maxDiscard; d++) {
      const { width: W, height: H } = resolutionSizeAtDiscard(img.siz, d);
      for (let i = 0; i < 4; i++) {
        const v = view(img.siz, img.maxDiscard, {
          fsiz: { fx: W, fy: H },
          roff: { x: rnd(W), y: rnd(H) },
          rsiz: { w: 1 + rnd(W), h: 1 + rnd(H) },
        });
        checkAgainstBrute(img, v, `${img.name} d=${d} #${i}`, rnd);
      }
    }
  }
});

prec('random images (offsets, subsampling, tiles, per-tile NL): brute force', () => {
  for (let seed = 1; seed <= 150; seed++) {
    const img = randomImage(seed);
    const rnd = rng(seed + 1000);
    const d = rnd(img.maxDiscard + 2); // may exceed NL of every component: resolution 0 only
    const { width: W, height: H } = resolutionSizeAtDiscard(img.siz, d);
    if (W === 0 || H === 0) continue;
    const v = view(img.siz, Math.max(d, img.maxDiscard), { fsiz: { fx: W, fy: H }, roff: { x: rnd(W), y: rnd(H) }, rsiz: { w: 1 + rnd(4), h: 1 + rnd(W) } });
    checkAgainstBrute(img, v, img.name, rnd);
  }
});

/** 128x128, one tile, NL = 2, 32x32 precincts everywhere (r=0: 32x32 is one precinct). */
const G128 = buildTileGeometry(mkSiz({ xsiz: 128, ysiz: 128 }), mkCoding([mkComp(2, [[5, 5], [5, 5], [5, 5]])]), 0);

prec('exact precinct boundaries: no extra precinct without filter reach', () => {
  const ranges = (reg: Rect, reach: number) =>
    windowPrecinctRanges(G128, reg, 0, { filterReach: reach }).map((g) => [g.r, g.px0, g.px1, g.py0, g.py1]);
  // x [32, 64) is precinct column 1 at r = 2, column 0 at r = 1 ([16, 32)) and r = 0.
  assert.equal(ranges({ x0: 32, y0: 0, x1: 64, y1: 32 }, 0), [
    [0, 0, 1, 0, 1],
    [1, 0, 1, 0, 1],
    [2, 1, 2, 0, 1],
  ]);
  // One more sample crosses into the next column at r = 2 and r = 1 (ceil(65/2) = 33).
  assert.equal(ranges({ x0: 32, y0: 0, x1: 65, y1: 32 }, 0), [
    [0, 0, 1, 0, 1],
    [1, 0, 2, 0, 1],
    [2, 1, 3, 0, 1],
  ]);
  // With the 5/3 reach (4 samples per side) the lifting needs the neighbours.
  assert.equal(ranges({ x0: 32, y0: 0, x1: 64, y1: 32 }, 4), [
    [0, 0, 1, 0, 1],
    [1, 0, 2, 0, 1],
    [2, 0, 3, 0, 2],
  ]);
  assert.equal(windowPrecincts(G128, { x0: 32, y0: 32, x1: 64, y1: 64 }, 0, { filterReach: 0 }), [
    { c: 0, r: 0, p: 0, s: 0 },
    { c: 0, r: 1, p: 0, s: 1 },
    { c: 0, r: 2, p: 5, s: 10 },
  ]);
  // Precinct ids follow the sequence numbers.
  assert.is(G128.precinctBinId(0, 2, 5), 10);
});

prec('windows across the image edge and full-image windows', () => {
  const v = view(G128.siz, 2, { fsiz: { fx: 128, fy: 128 }, roff: { x: 96, y: 120 }, rsiz: { w: 500, h: 500 } });
  assert.equal(v.region, { x0: 96, y0: 120, x1: 128, y1: 128 });
  assert.equal(keys(windowPrecincts(G128, v.region, 0, { filterReach: 0 })), ['0/0/0/0', '0/1/3/4', '0/2/15/20']);
  // Widening reaches left into column 2 but is clipped at the image edge (no row 4, no column 4).
  assert.equal(keys(windowPrecincts(G128, v.region, 0, { filterReach: 4 })), ['0/0/0/0', '0/1/3/4', '0/2/14/19', '0/2/15/20']);

  // The full image selects every precinct of the kept resolutions, in every fixture and at every d.
  for (const img of IMAGES) {
    for (let d = 0; d <= img.maxDiscard; d++) {
      const { width, height } = resolutionSizeAtDiscard(img.siz, d);
      const fv = view(img.siz, img.maxDiscard, { fsiz: { fx: width, fy: height } });
      const plan = planWindow(img.siz, fv, (t) => ({ geom: img.geoms[t]!, coding: img.codings[t] }));
      let want = 0;
      for (const g of img.geoms) {
        for (let c = 0; c < g.numComponents; c++) for (let r = 0; r <= g.levels(c) - d; r++) want += g.precinctCount(c, r);
      }
      assert.is(
        plan.reduce((n, tp) => n + tp.precincts.length, 0),
        want,
        `${img.name} d=${d}`,
      );
    }
  }
});

prec('component subsampling: each component sees the region on its own grid', () => {
  // 64x64, component 1 subsampled 2x2, NL = 1, 8x8 precincts at r = 1 (4x4 at r = 0).
  const siz = mkSiz({ xsiz: 64, ysiz: 64, comps: [
    [1, 1],
    [2, 2],
  ] });
  const comp = mkComp(1, [
    [2, 2],
    [3, 3],
  ]);
  const g = buildTileGeometry(siz, mkCoding([comp, comp]), 0);
  const sel = (reg: Rect) => keys(windowPrecincts(g, reg, 0, { filterReach: 0 }));
  // Reference [16, 32) x [0, 1): component 0 samples 16..31, component 1 samples 8..15.
  assert.equal(sel({ x0: 16, y0: 0, x1: 32, y1: 1 }), ['0/0/2/2', '0/0/3/3', '0/1/2/66', '0/1/3/67', '1/0/1/1', '1/1/1/17']);
  const got = windowPrecinctRanges(g, { x0: 16, y0: 0, x1: 32, y1: 1 }, 0, { filterReach: 0 }).map((q) => [q.c, q.r, q.px0, q.px1, q.py0, q.py1]);
  assert.equal(got, [
    [0, 0, 2, 4, 0, 1], // r = 0: [8, 16) / 4
    [0, 1, 2, 4, 0, 1], // r = 1: [16, 32) / 8
    [1, 0, 1, 2, 0, 1], // [4, 8) / 4
    [1, 1, 1, 2, 0, 1], // [8, 16) / 8
  ]);
  // Reference (1, 1)..(2, 2) holds a component-0 sample but no component-1 sample (ceil(1/2) = ceil(2/2)).
  const odd = windowPrecincts(g, { x0: 1, y0: 1, x1: 2, y1: 2 }, 0, { filterReach: 4 });
  assert.ok(odd.length > 0);
  assert.ok(odd.every((q) => q.c === 0));
  // ... and (2, 2)..(3, 3) holds one of each.
  assert.equal([...new Set(windowPrecincts(g, { x0: 2, y0: 2, x1: 3, y1: 3 }, 0).map((q) => q.c))], [0, 1]);
  // The 4:2:0 fixture goes through the brute force above; check it has subsampled components.
  assert.ok(IMAGES.some((i) => i.siz.components.some((c) => c.dx === 2 && c.dy === 2)));
});

prec('components with fewer levels than d keep resolution 0 only, with no widening', () => {
  const siz = mkSiz({ xsiz: 64, ysiz: 64, comps: [
    [1, 1],
    [1, 1],
  ] });
  const g = buildTileGeometry(siz, mkCoding([mkComp(3, [[2, 2], [2, 2], [2, 2], [2, 2]]), mkComp(1, [[2, 2], [2, 2]])]), 0);
  // d = 2: component 0 keeps r = 0, 1 (scale 4); component 1 keeps r = 0 (scale 2).
  const reg = { x0: 16, y0: 16, x1: 24, y1: 24 };
  const ranges = windowPrecinctRanges(g, reg, 2, { filterReach: 4 }).map((q) => [q.c, q.r, q.px0, q.px1, q.py0, q.py1]);
  assert.equal(ranges, [
    [0, 0, 0, 2, 0, 2], // r = 0 of 8x8: window [2, 3) widened by 4 -> [0, 7) -> precincts 0..1
    [0, 1, 0, 3, 0, 3], // r = 1 of 16x16: [4, 6) widened -> [0, 10)
    [1, 0, 2, 3, 2, 3], // resolution 0 of component 1 (scale 2): [8, 12), no widening (no synthesis)
  ]);
  // r_max = 0 also means no widening for a component with NL = d.
  assert.equal(
    windowPrecinctRanges(g, reg, 1, { filterReach: 4 }).filter((q) => q.c === 1).map((q) => [q.r, q.px0, q.px1]),
    [[0, 2, 3]],
  );
});

prec("filter reach 'auto': 4 for 5/3, 8 for 9/7 and when the coding is unknown", () => {
  const siz = mkSiz({ xsiz: 256, ysiz: 256 });
  const c53 = mkComp(2, [[3, 3], [3, 3], [3, 3]]);
  const c97 = { ...c53, transform: 0 };
  const g = buildTileGeometry(siz, mkCoding([c53]), 0);
  const reg = { x0: 128, y0: 128, x1: 136, y1: 136 };
  const sel = (opts: Parameters<typeof windowPrecincts>[3]) => keys(windowPrecincts(g, reg, 0, opts));
  assert.equal(sel({ coding: mkCoding([c53]) }), sel({ filterReach: FILTER_REACH.REVERSIBLE_5_3 }));
  assert.equal(sel({ coding: mkCoding([c97]) }), sel({ filterReach: FILTER_REACH.IRREVERSIBLE_9_7 }));
  assert.equal(sel({}), sel({ filterReach: 8 }));
  assert.equal(sel({ filterReach: 'auto' }), sel({ filterReach: 8 }));
  assert.not.equal(sel({ filterReach: 4 }), sel({ filterReach: 8 }));
  assert.throws(() => windowPrecincts(g, reg, 0, { filterReach: -1 }), RangeError);
  assert.throws(() => windowPrecincts(g, reg, 0.5), RangeError);
});

prec('components option: subset, duplicates and indices past the last component', () => {
  const img = IMAGES.find((i) => i.siz.components.length === 3)!;
  const g = img.geoms[0]!;
  const reg = { x0: img.siz.xOsiz, y0: img.siz.yOsiz, x1: img.siz.xsiz, y1: img.siz.ysiz };
  const all = windowPrecincts(g, reg, 0);
  assert.equal(windowPrecincts(g, reg, 0, { components: [2, 0, 2, 7] }), all.filter((q) => q.c !== 1));
  assert.equal(windowPrecincts(g, reg, 0, { components: [] }), []);
  assert.throws(() => windowPrecincts(g, reg, 0, { components: [-1] }), RangeError);
});

prec('regions that miss a tile select nothing in it', () => {
  const siz = mkSiz({ xsiz: 128, ysiz: 64, xTsiz: 64, yTsiz: 64 });
  const cod = mkCoding([mkComp(2, [[5, 5], [5, 5], [5, 5]])]);
  const g1 = buildTileGeometry(siz, cod, 1);
  assert.equal(windowPrecincts(g1, { x0: 0, y0: 0, x1: 64, y1: 64 }, 0), []);
  // At d = 1, tile 1 starts with sample 32 (reference 64): [63, 65) projects to samples [32, 33),
  // [63, 64) to nothing ([32, 32)).
  assert.ok(windowPrecincts(g1, { x0: 63, y0: 0, x1: 65, y1: 2 }, 1).length > 0);
  assert.equal(windowPrecincts(g1, { x0: 63, y0: 0, x1: 64, y1: 2 }, 1), []);
});

prec.run();

// ---------------------------------------------------------------------------
// The filter reach is enough: exact 1-D inverse-lifting dependencies
// ---------------------------------------------------------------------------

const reach = suite('window: filter reach covers the inverse DWT');

/**
 * Inverse 1-D DWT of F.3.7 on dependency sets: periodic symmetric extension,
 * then the lifting steps (5/3: 2, 9/7: 4), each updating the samples of one
 * parity (even first) from their two neighbours. Returns, for each output
 * sample in [i0, i1), the set of input positions it depends on.
 */
function inverseDeps(Y: (i: number) => Set<number>, i0: number, i1: number, steps: number): Set<number>[] {
  if (i1 - i0 === 1) return [new Set(Y(i0))];
  const M = 2 * (i1 - i0 - 1);
  const pse = (i: number): number => {
    const m = (((i - i0) % M) + M) % M;
    return i0 + Math.min(m, M - m);
  };
  const lo = i0 - 2 * steps - 2;
  const hi = i1 + 2 * steps + 2;
  const Z: Set<number>[] = [];
  for (let i = lo; i < hi; i++) Z.push(new Set(Y(pse(i))));
  for (let s = 0; s < steps; s++) {
    const parity = s % 2;
    for (let i = lo + 1; i < hi - 1; i++) {
      if ((((i % 2) + 2) % 2) !== parity) continue;
      const z = Z[i - lo]!;
      for (const x of Z[i - lo - 1]!) z.add(x);
      for (const x of Z[i - lo + 1]!) z.add(x);
    }
  }
  return Z.slice(i0 - lo, i1 - lo);
}

/**
 * A 1-D tile-component of extent [t0, t1) at resolution R with R levels:
 * which coefficients (resolution j, interleaved position) the samples [a, b)
 * of resolution R need. Key: j * 10000 + position.
 */
function needed(t0: number, t1: number, R: number, a: number, b: number, steps: number): Set<number> {
  const ext = (j: number): [number, number] => [Math.ceil(t0 / 2 ** (R - j)), Math.ceil(t1 / 2 ** (R - j))];
  let [e0, e1] = ext(0);
  let X: Set<number>[] = [];
  for (let n = e0; n < e1; n++) X.push(new Set([n]));
  for (let j = 1; j <= R; j++) {
    const prev = X;
    const p0 = e0;
    [e0, e1] = ext(j);
    const Y = (i: number): Set<number> => (i % 2 === 0 ? prev[i / 2 - p0]! : new Set([j * 10000 + i]));
    X = inverseDeps(Y, e0, e1, steps);
  }
  const out = new Set<number>();
  for (let i = Math.max(a, e0); i < Math.min(b, e1); i++) for (const k of X[i - e0]!) out.add(k);
  return out;
}

/** Whether every needed coefficient lies within the window projected to its resolution and widened by w. */
function covered(dep: Set<number>, R: number, a: number, b: number, w: number): boolean {
  for (const k of dep) {
    const j = Math.floor(k / 10000);
    const pos = k - j * 10000;
    const f = 2 ** (R - j);
    if (pos < Math.ceil(a / f) - w || pos >= Math.ceil(b / f) + w) return false;
  }
  return true;
}

reach('4 samples per level suffice for 5/3 and 8 for 9/7 (3 and 7 are the exact minimum)', () => {
  const rnd = rng(99);
  let fail53 = 0;
  let fail97 = 0;
  for (let i = 0; i < 1500; i++) {
    const R = 1 + rnd(5);
    const t0 = rnd(60);
    const t1 = t0 + 1 + rnd(150);
    const a = t0 + rnd(t1 - t0);
    const b = a + 1 + rnd(Math.min(6, t1 - a));
    const d53 = needed(t0, t1, R, a, b, 2);
    const d97 = needed(t0, t1, R, a, b, 4);
    assert.ok(covered(d53, R, a, b, FILTER_REACH.REVERSIBLE_5_3), `5/3 ${t0} ${t1} R=${R} [${a}, ${b})`);
    assert.ok(covered(d97, R, a, b, FILTER_REACH.IRREVERSIBLE_9_7), `9/7 ${t0} ${t1} R=${R} [${a}, ${b})`);
    // One sample of margin: the measured minimum is 3 (5/3) and 7 (9/7) ...
    assert.ok(covered(d53, R, a, b, 3), `5/3 reach 3: ${t0} ${t1} R=${R} [${a}, ${b})`);
    assert.ok(covered(d97, R, a, b, 7), `9/7 reach 7: ${t0} ${t1} R=${R} [${a}, ${b})`);
    // ... and one level's own reach (2 and 4 samples) is not enough once lower levels add theirs.
    if (!covered(d53, R, a, b, 2)) fail53++;
    if (!covered(d97, R, a, b, 6)) fail97++;
  }
  assert.ok(fail53 > 0, 'a reach of 2 is too small for some 5/3 window');
  assert.ok(fail97 > 0, 'a reach of 6 is too small for some 9/7 window');
});

reach.run();

// ---------------------------------------------------------------------------
// Plan and delivery order
// ---------------------------------------------------------------------------

const order = suite('window: plan and delivery order');

order('planWindow leaves out tiles without precincts; empty views plan nothing', () => {
  // Tiles 63 wide: tile 1 starts at reference x = 63.
  const siz = mkSiz({ xsiz: 126, ysiz: 64, xTsiz: 63, yTsiz: 64 });
  const cod = mkCoding([mkComp(2, [[5, 5], [5, 5], [5, 5]])]);
  const geoms = [0, 1].map((t) => buildTileGeometry(siz, cod, t));
  const tileOf = (t: number) => ({ geom: geoms[t]!, coding: cod });
  // Frame sample 31 at d = 1 covers reference [62, 64): it meets tile 1 on the reference grid,
  // but tile 1's first sample at d = 1 is ceil(63/2) = 32.
  const v = view(siz, 2, { fsiz: { fx: 63, fy: 32 }, roff: { x: 31, y: 0 }, rsiz: { w: 1, h: 1 } });
  assert.equal(v.region, { x0: 62, y0: 0, x1: 64, y1: 2 });
  assert.equal(windowTiles(siz, v.region), [0, 1]);
  assert.equal(windowPrecincts(geoms[1]!, v.region, 1), []);
  assert.equal(planWindow(siz, v, tileOf).map((p) => p.tile), [0]);
  // One sample further right is tile 1's only.
  const w = view(siz, 2, { fsiz: { fx: 63, fy: 32 }, roff: { x: 32, y: 0 }, rsiz: { w: 1, h: 1 } });
  assert.equal(planWindow(siz, w, tileOf).map((p) => p.tile), [1]);
  assert.equal(planWindow(siz, view(siz, 2, { fsiz: { fx: 63, fy: 32 }, roff: { x: 63, y: 0 } }), tileOf), []);
});

order('orderPrecincts: coarsest resolution first, then component, tile, precinct; ids match', () => {
  const siz = mkSiz({ xsiz: 128, ysiz: 64, xTsiz: 64, yTsiz: 64, comps: [
    [1, 1],
    [1, 1],
  ] });
  const cod = mkCoding([mkComp(1, [[4, 4], [5, 5]]), mkComp(1, [[4, 4], [5, 5]])]);
  const geoms = [0, 1].map((t) => buildTileGeometry(siz, cod, t));
  const plan = planWindow(siz, fullView(siz), (t) => ({ geom: geoms[t]! }));
  const items = orderPrecincts(plan);
  assert.is(items.length, 2 * 2 * (4 + 4));
  const seen = items.map((q) => `${q.r}${q.c}${q.t}`);
  assert.equal([...new Set(seen)], ['000', '001', '010', '011', '100', '101', '110', '111']);
  for (let i = 1; i < items.length; i++) {
    const a = items[i - 1]!;
    const b = items[i]!;
    if (a.r === b.r && a.c === b.c && a.t === b.t) assert.ok(a.p < b.p);
  }
  for (const q of items) assert.is(q.id, precinctBinId(q.t, q.c, q.s, 2, 2));
  assert.equal(new Set(items.map((q) => q.id)).size, items.length);
});

order('orderPrecincts lines up components with different NL by scale', () => {
  const siz = mkSiz({ xsiz: 32, ysiz: 32, comps: [
    [1, 1],
    [1, 1],
  ] });
  const g = buildTileGeometry(siz, mkCoding([mkComp(2), mkComp(1)]), 0);
  const items = orderPrecincts(planWindow(siz, fullView(siz), () => ({ geom: g })));
  assert.equal(items.map((q) => [q.c, q.r]), [
    [0, 0], // scale 4
    [0, 1], // scale 2
    [1, 0], // scale 2
    [0, 2], // scale 1
    [1, 1], // scale 1
  ]);
});

order.run();
