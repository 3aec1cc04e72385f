/**
 * Builders for hand-made SIZ / coding styles and the seeded random images
 * shared by the geometry and progression tests.
 */
import { mulberry32Uint } from '../fixtures-gen/synth.js';
import { PROGRESSION, type ComponentCoding, type PocEntry, type Progression, type Siz, type TileCoding } from '../jpeg2000/markers.js';

export function mkSiz(o: Partial<Omit<Siz, 'components'>> & { comps?: [number, number][] }): Siz {
  const xsiz = o.xsiz ?? 64;
  const ysiz = o.ysiz ?? 64;
  return {
    rsiz: 0,
    xsiz,
    ysiz,
    xOsiz: o.xOsiz ?? 0,
    yOsiz: o.yOsiz ?? 0,
    xTsiz: o.xTsiz ?? xsiz,
    yTsiz: o.yTsiz ?? ysiz,
    xTOsiz: o.xTOsiz ?? 0,
    yTOsiz: o.yTOsiz ?? 0,
    components: (o.comps ?? [[1, 1]]).map(([dx, dy]) => ({ precision: 8, signed: false, dx, dy })),
  };
}

/** precincts: [ppx, ppy] per resolution 0..levels (omitted: 15,15 everywhere). */
export function mkComp(levels: number, precincts?: [number, number][], xcb = 6, ycb = 6): ComponentCoding {
  return {
    levels,
    xcb,
    ycb,
    cbStyle: 0,
    transform: 1,
    precincts: precincts ? precincts.map(([ppx, ppy]) => ({ ppx, ppy })) : Array.from({ length: levels + 1 }, () => ({ ppx: 15, ppy: 15 })),
    userPrecincts: precincts !== undefined,
  };
}

export function mkCoding(components: ComponentCoding[], progression: Progression = PROGRESSION.LRCP, layers = 1, poc: PocEntry[] = []): TileCoding {
  return { layers, progression, sop: false, eph: false, mct: 0, components, poc };
}

/** Small deterministic PRNG (mulberry32) returning integers in [0, n). */
export function rng(seed: number): (n: number) => number {
  const next = mulberry32Uint(seed);
  return (n: number): number => (next() % n) >>> 0;
}

/**
 * A random image: 1..3 components with random subsampling, random image and
 * tile offsets, image sides up to maxSide past the offset, tile sides up to maxTile.
 */
export function randomSiz(rnd: (n: number) => number, maxSide: number, maxTile: number): { siz: Siz; comps: [number, number][] } {
  const nc = 1 + rnd(3);
  const xOsiz = rnd(3) === 0 ? 0 : rnd(40);
  const yOsiz = rnd(3) === 0 ? 0 : rnd(40);
  const xsiz = xOsiz + 1 + rnd(maxSide);
  const ysiz = yOsiz + 1 + rnd(maxSide);
  const xTOsiz = rnd(xOsiz + 1);
  const yTOsiz = rnd(yOsiz + 1);
  const xTsiz = Math.max(xOsiz - xTOsiz + 1, 1 + rnd(maxTile));
  const yTsiz = Math.max(yOsiz - yTOsiz + 1, 1 + rnd(maxTile));
  const comps: [number, number][] = Array.from({ length: nc }, () => [1 + (rnd(2) ? 0 : rnd(4)), 1 + (rnd(2) ? 0 : rnd(4))]);
  return { siz: mkSiz({ xsiz, ysiz, xOsiz, yOsiz, xTsiz, yTsiz, xTOsiz, yTOsiz, comps }), comps };
}
