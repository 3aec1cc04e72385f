import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream, readMainHeader, tileCoding } from '../jpeg2000/codestream.js';
import { numTiles } from '../jpeg2000/geometry.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { MARKER } from '../jpeg2000/markers.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { mulberry32 } from '../fixtures-gen/synth.js';
import { catchError, dumpValues, fixtureBytes, fixturePath, fixtures } from './helpers.js';

const cs = suite('codestream');

function codestreamOf(file: string) {
  const bytes = fixtureBytes(file);
  const src = bufferSource(bytes, file);
  const ref = readContainer(src).codestreams[0]!;
  return { bytes, ref, src: subSource(src, ref.offset, ref.length) };
}

for (const f of fixtures()) {
  cs(`${f.name}: main header agrees with opj_dump`, () => {
    const { src } = codestreamOf(f.file);
    const c = readCodestream(src);
    const dump = readFileSync(fixturePath(f.dump), 'utf8');
    const { siz, cod } = c.main;
    assert.equal([siz.xOsiz, siz.yOsiz, siz.xsiz, siz.ysiz], [...dumpValues(dump, 'x0').slice(0, 1), ...dumpValues(dump, 'y0').slice(0, 1), ...dumpValues(dump, 'x1').slice(0, 1), ...dumpValues(dump, 'y1').slice(0, 1)]);
    assert.is(siz.components.length, dumpValues(dump, 'numcomps')[0]);
    assert.equal(siz.components.map((x) => x.dx), dumpValues(dump, 'dx'));
    assert.equal(siz.components.map((x) => x.dy), dumpValues(dump, 'dy'));
    assert.equal(siz.components.map((x) => x.precision), dumpValues(dump, 'prec'));
    assert.equal(siz.components.map((x) => (x.signed ? 1 : 0)), dumpValues(dump, 'sgnd'));
    assert.equal([siz.xTOsiz, siz.yTOsiz, siz.xTsiz, siz.yTsiz], [dumpValues(dump, 'tx0')[0], dumpValues(dump, 'ty0')[0], dumpValues(dump, 'tdx')[0], dumpValues(dump, 'tdy')[0]]);
    const tw = dumpValues(dump, 'tw')[0]!;
    const th = dumpValues(dump, 'th')[0]!;
    assert.is(numTiles(siz), tw * th);
    assert.is(cod.progression, dumpValues(dump, 'prg')[0]);
    assert.is(cod.layers, dumpValues(dump, 'numlayers')[0]);
    assert.is(cod.mct, dumpValues(dump, 'mct')[0]);
    const coding = tileCoding(c, 0);
    assert.equal(coding.components.map((x) => x.levels + 1), dumpValues(dump, 'numresolutions'));
    assert.equal(coding.components.map((x) => x.transform), dumpValues(dump, 'qmfbid'));
    assert.equal(coding.components.map((x) => x.cbStyle), dumpValues(dump, 'cblksty'));
    const cb = [...dump.matchAll(/cblkw=2\^(\d+)\s+cblkh=2\^(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.equal(coding.components.map((x) => [x.xcb, x.ycb]), cb);
    const prec = [...dump.matchAll(/preccintsize \(w,h\)=((?:\(\d+,\d+\) )+)/g)].map((m) => [...m[1]!.matchAll(/\((\d+),(\d+)\)/g)].map((p) => ({ ppx: Number(p[1]), ppy: Number(p[2]) })));
    assert.equal(coding.components.map((x) => x.precincts), prec);
    const quant = [c.main.qcd, ...c.main.qcc].filter(Boolean);
    assert.is(c.main.qcd.style, dumpValues(dump, 'qntsty')[0]);
    assert.is(c.main.qcd.guardBits, dumpValues(dump, 'numgbits')[0]);
    assert.ok(quant.length >= 1);
    // Marker list and the end of the main header, relative to the codestream.
    const start = dumpValues(dump, 'Main header start position')[0] ?? Number(/Main header start position=(\d+)/.exec(dump)![1]);
    const end = Number(/Main header end position=(\d+)/.exec(dump)![1]);
    const listed = [...dump.matchAll(/type=0x([0-9a-f]+), pos=(\d+), len=(\d+)/g)].map((m) => [parseInt(m[1]!, 16), Number(m[2]) - start]);
    const ours = c.main.segments.map((s) => [s.marker, s.offset]);
    assert.equal(ours, listed);
    // opj_dump's end position is where the first SOT starts.
    assert.is(c.main.end, end - start);
  });

  cs(`${f.name}: tile-parts chain from the first SOT to EOC`, () => {
    const { src, bytes, ref } = codestreamOf(f.file);
    const c = readCodestream(src);
    let pos = c.main.end;
    for (const tp of c.tileParts) {
      assert.is(tp.offset, pos);
      assert.is(bytes[ref.offset + tp.bodyOffset - 2], 0xff);
      assert.is(bytes[ref.offset + tp.bodyOffset - 1], 0x93);
      pos += tp.length;
    }
    assert.is(bytes[ref.offset + pos], 0xff);
    assert.is(bytes[ref.offset + pos + 1], 0xd9);
    assert.is(c.size, pos + 2);
    for (const list of c.tiles) assert.ok(list.length >= 1);
  });
}

cs('TLM lengths agree with the tile-parts they describe', () => {
  const f = fixtures().find((x) => x.args.includes('-TLM'));
  assert.ok(f, 'a fixture with -TLM');
  const { src } = codestreamOf(f!.file);
  const c = readCodestream(src);
  const entries = c.main.tlm.flatMap((t) => t.entries);
  assert.is(entries.length, c.tileParts.length);
  entries.forEach((e, i) => {
    assert.is(e.length, c.tileParts[i]!.length);
    if (e.tile !== undefined) assert.is(e.tile, c.tileParts[i]!.tile);
  });
});

cs('POC entries are read', () => {
  const f = fixtures().find((x) => x.args.includes('-POC'));
  assert.ok(f, 'a fixture with -POC');
  const { src } = codestreamOf(f!.file);
  const c = readCodestream(src);
  const poc = tileCoding(c, 0).poc;
  assert.ok(poc.length >= 2);
});

cs('corrupt codestreams raise typed errors naming the offset', () => {
  const { bytes, ref } = codestreamOf('g128-default.j2k');
  const good = bytes.subarray(ref.offset, ref.offset + ref.length);
  const cases: [string, Uint8Array, string][] = [
    ['no SOC', Uint8Array.of(0, 1, 2, 3, 4, 5), J2K_ERROR.NOT_JPEG2000],
    ['SOC only', good.slice(0, 4).fill(0, 2), J2K_ERROR.MISSING_MARKER],
    ['cut in SIZ', good.slice(0, 20), J2K_ERROR.TRUNCATED],
    ['cut in the body', good.slice(0, good.length - 100), J2K_ERROR.TRUNCATED],
    ['no EOC', good.slice(0, good.length - 2), J2K_ERROR.TRUNCATED],
  ];
  const badLen = good.slice();
  badLen[4] = 0xff; // Lsiz = 0xff2b: longer than the file allows
  cases.push(['SIZ length too big', badLen, J2K_ERROR.TRUNCATED]);
  const badComp = good.slice();
  badComp[41] = 0; // Csiz = 0
  cases.push(['zero components', badComp, J2K_ERROR.BAD_VALUE]);
  const noCod = good.slice();
  const codAt = readMainHeader(bufferSource(good)).segments.find((s) => s.marker === MARKER.COD)!.offset;
  noCod[codAt + 1] = 0x64; // COD turned into COM
  cases.push(['no COD', noCod, J2K_ERROR.MISSING_MARKER]);
  for (const [what, data, code] of cases) {
    const e = catchError(() => readCodestream(bufferSource(data, 'x.j2k')));
    assert.instance(e, J2kError, what);
    assert.is((e as J2kError).code, code, `${what}: ${(e as Error).message}`);
    assert.is((e as J2kError).file, 'x.j2k');
  }
});

cs('every truncation of a codestream is a J2kError, never another exception', () => {
  const { bytes, ref } = codestreamOf('g200x150-t64-tpr-plt-tlm.j2k');
  const good = bytes.slice(ref.offset, ref.offset + ref.length);
  for (let n = 0; n < good.length; n += n < 400 ? 1 : 37) {
    const e = catchError(() => readCodestream(bufferSource(good.subarray(0, n))));
    assert.instance(e, J2kError, `cut at ${n}`);
  }
});

cs('hostile marker lengths do not loop or read out of bounds', () => {
  const { bytes, ref } = codestreamOf('g128-default.j2k');
  const good = bytes.slice(ref.offset, ref.offset + ref.length);
  const rng = mulberry32(7);
  for (let i = 0; i < 300; i++) {
    const data = good.slice();
    for (let k = 0; k < 4; k++) data[Math.floor(rng() * Math.min(data.length, 300))] = Math.floor(rng() * 256);
    try {
      readCodestream(bufferSource(data));
    } catch (e) {
      assert.instance(e, J2kError, (e as Error).stack);
    }
  }
});

cs.run();
