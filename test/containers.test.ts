import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  boxContent,
  concatBytes,
  findBox,
  findBoxes,
  listCodestreams,
  parseBoxes,
  readBoxContent,
  readColr,
  readContainer,
  readIhdr,
  readXml,
  type Box,
} from '../jpeg2000/boxes.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { resolveCodestreams } from '../jpeg2000/linked.js';
import { openFileSource } from '../jpeg2000/file-source.js';
import { frameLocation, linkedFrameFor, writeJp2, writeJpx, writeLinkedJpx, type LinkedFrame } from '../fixtures-gen/containers.js';

const enc = new TextEncoder();

/**
 * Codestreams for the tests: raw .j2k files of test/fixtures if there are
 * any, else made with opj_compress, else synthetic bytes (the container layer
 * does not decode them).
 */
function codestreams(n: number): Uint8Array[] {
  const fixtures = path.join(import.meta.dirname, 'fixtures');
  if (existsSync(fixtures)) {
    const found = readdirSync(fixtures)
      .filter((f) => f.endsWith('.j2k') || f.endsWith('.j2c'))
      .sort()
      .slice(0, n)
      .map((f) => new Uint8Array(readFileSync(path.join(fixtures, f))));
    if (found.length === n) return found;
  }
  if (existsSync('/usr/bin/opj_compress')) {
    const dir = mkdtempSync(path.join(tmpdir(), 'containers-opj-'));
    try {
      return Array.from({ length: n }, (_, k) => {
        const px = new Uint8Array(256).map((_, i) => (i * (k + 1)) & 0xff);
        writeFileSync(path.join(dir, `in${k}.pgm`), concatBytes([enc.encode('P5\n16 16\n255\n'), px]));
        execFileSync('/usr/bin/opj_compress', ['-i', `in${k}.pgm`, '-o', `out${k}.j2k`, '-n', '2'], { cwd: dir, stdio: 'ignore' });
        return new Uint8Array(readFileSync(path.join(dir, `out${k}.j2k`)));
      });
    } catch {
      // fall through to synthetic codestreams
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return Array.from({ length: n }, (_, k) => Uint8Array.of(0xff, 0x4f, 0xff, 0x51, 0, 0x29, k, k + 1, k + 2, 0xff, 0xd9));
}

const IMG = { width: 16, height: 16, components: 1, bitDepth: 8 };

function slice(f: Uint8Array, offset: number, length: number): Uint8Array {
  return f.subarray(offset, offset + length);
}

function types(boxes: Box[]): string[] {
  return boxes.map((b) => b.type);
}

// ---------------------------------------------------------------------------
const jp2 = suite('writeJp2');

jp2('writes signature, ftyp, jp2h(ihdr, colr), xml, jp2c; re-parses to the same codestream', () => {
  const [cs] = codestreams(1) as [Uint8Array];
  const f = writeJp2(cs, { ...IMG, xml: '<meta>é</meta>' });
  const boxes = parseBoxes(f);
  assert.equal(types(boxes), ['jP  ', 'ftyp', 'jp2h', 'xml ', 'jp2c']);
  assert.equal(types(boxes[2]!.children!), ['ihdr', 'colr']);
  assert.is(readXml(boxContent(f, boxes[3]!)), '<meta>é</meta>');
  const c = readContainer(f);
  assert.is(c.format, 'jp2');
  assert.is(c.imageHeader?.width, 16);
  assert.is(c.imageHeader?.bitDepth, 8);
  const colr = readColr(boxContent(f, boxes[2]!.children![1]!));
  assert.is(colr.enumCS, 17);
  assert.is(c.codestreams.length, 1);
  const s = c.codestreams[0]!;
  assert.is(s.kind, 'embedded');
  assert.equal(slice(f, s.offset, s.length), cs);
});

jp2('without xml; RGB gets sRGB; signed depth kept', () => {
  const [cs] = codestreams(1) as [Uint8Array];
  const f = writeJp2(cs, { width: 3, height: 2, components: 3, bitDepth: 12, signed: true });
  const boxes = parseBoxes(f);
  assert.equal(types(boxes), ['jP  ', 'ftyp', 'jp2h', 'jp2c']);
  const jp2h = boxes[2]!.children!;
  const h = readIhdr(boxContent(f, findBox(jp2h, 'ihdr')!));
  assert.equal([h.width, h.height, h.nc, h.bitDepth, h.signed], [3, 2, 3, 12, true]);
  assert.is(readColr(boxContent(f, findBox(jp2h, 'colr')!)).enumCS, 16);
});

// ---------------------------------------------------------------------------
const jpx = suite('writeJpx');

jpx('embedded codestreams with per-codestream headers', () => {
  const css = codestreams(3);
  const frames = css.map((_, i) => ({ ...IMG, width: 16 + i }));
  const f = writeJpx(css, { ...IMG, frames, xml: '<x/>' });
  const c = readContainer(f);
  assert.is(c.format, 'jpx');
  assert.equal(c.fileType, { brand: 'jpx ', minorVersion: 0, compatibility: ['jpx ', 'jp2 ', 'jpxb'] });
  assert.equal(types(c.boxes), ['jP  ', 'ftyp', 'jp2h', 'jpch', 'jplh', 'jpch', 'jplh', 'jpch', 'jplh', 'xml ', 'jp2c', 'jp2c', 'jp2c']);
  const jpchs = findBoxes(c.boxes, 'jpch');
  jpchs.forEach((b, i) => assert.is(readIhdr(boxContent(f, findBox(b.children!, 'ihdr')!)).width, 16 + i));
  const jplh = findBoxes(c.boxes, 'jplh')[0]!;
  assert.equal(types(jplh.children!), ['cgrp']);
  assert.equal(types(jplh.children![0]!.children!), ['colr']);
  assert.is(c.codestreams.length, 3);
  c.codestreams.forEach((s, i) => {
    assert.is(s.index, i);
    assert.is(s.kind, 'embedded');
    assert.equal(slice(f, s.offset, s.length), css[i]);
  });
  assert.throws(() => writeJpx([], IMG), RangeError);
});

// ---------------------------------------------------------------------------
const linked = suite('writeLinkedJpx');

let tmp = '';
let root = '';
let css: Uint8Array[] = [];
const names = ['frame 001.jp2', 'frame 002.jp2', 'sub/é 003.jp2'];

linked.before(() => {
  tmp = realpathSync(mkdtempSync(path.join(tmpdir(), 'containers-test-')));
  root = path.join(tmp, 'root');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  css = codestreams(3);
  names.forEach((n, i) => writeFileSync(path.join(root, n), writeJp2(css[i]!, { ...IMG, xml: `<frame n="${i}"/>` })));
});

linked.after(() => rmSync(tmp, { recursive: true, force: true }));

function frames(): LinkedFrame[] {
  return names.map((n) => linkedFrameFor(n, new Uint8Array(readFileSync(path.join(root, n)))));
}

linked('linkedFrameFor finds the codestream and image header of a JP2', () => {
  const [f0] = frames();
  const file = new Uint8Array(readFileSync(path.join(root, names[0]!)));
  assert.is(f0!.path, names[0]);
  assert.equal(slice(file, f0!.codestreamOffset, f0!.codestreamLength), css[0]);
  assert.equal([f0!.width, f0!.height, f0!.components, f0!.bitDepth], [16, 16, 1, 8]);
  const src = openFileSource(path.join(root, names[0]!));
  try {
    assert.equal(linkedFrameFor(names[0]!, src), f0);
  } finally {
    src.close();
  }
  const twice = writeJpx([css[0]!, css[1]!], IMG);
  try {
    linkedFrameFor('two.jpx', twice);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, J2kError);
    assert.is((e as J2kError).code, J2K_ERROR.UNSUPPORTED);
  }
});

linked('relative, escaped references resolve back to the same codestream bytes', () => {
  const out = writeLinkedJpx(frames(), { xml: '<movie/>' });
  const jpxPath = path.join(root, 'movie.jpx');
  writeFileSync(jpxPath, out);
  const c = readContainer(out);
  assert.is(c.format, 'jpx');
  assert.equal(types(c.boxes), ['jP  ', 'ftyp', 'jp2h', 'jpch', 'jplh', 'jpch', 'jplh', 'jpch', 'jplh', 'xml ', 'ftbl', 'ftbl', 'ftbl', 'dtbl']);
  assert.equal(
    c.dataReferences.map((u) => [u.version, u.flags, u.location]),
    [
      [0, 0, 'frame%20001.jp2'],
      [0, 0, 'frame%20002.jp2'],
      [0, 0, 'sub/%C3%A9%20003.jp2'],
    ],
  );
  assert.equal(
    c.codestreams.map((s) => (s.kind === 'fragment' ? [s.index, s.dataReference, s.url] : s.kind)),
    [
      [0, 1, 'frame%20001.jp2'],
      [1, 2, 'frame%20002.jp2'],
      [2, 3, 'sub/%C3%A9%20003.jp2'],
    ],
  );
  const src = openFileSource(jpxPath);
  let locs;
  try {
    assert.equal(readContainer(src).codestreams, c.codestreams);
    // flst content as written: one entry, 14 + 2 bytes.
    const ftbl = findBoxes(c.boxes, 'ftbl')[0]!;
    assert.is(readBoxContent(src, ftbl.children![0]!).length, 16);
    locs = resolveCodestreams(c, { root, containingFile: jpxPath });
  } finally {
    src.close();
  }
  locs.forEach((l, i) => {
    assert.is(l.path, path.join(root, names[i]!));
    assert.equal(slice(new Uint8Array(readFileSync(l.path)), l.offset, l.length), css[i]);
  });
});

linked('absolute file:/// references', () => {
  const out = writeLinkedJpx(frames(), { absoluteFrom: root });
  const c = readContainer(out);
  assert.ok(c.dataReferences.every((u) => u.location.startsWith('file:///')));
  assert.is(c.dataReferences[2]!.location, 'file://' + encodeURI(path.join(root, names[2]!)));
  // Resolved from a JPX elsewhere in the root: absolute references do not depend on it.
  const locs = resolveCodestreams(c, { root, containingFile: path.join(root, 'sub/other.jpx') });
  locs.forEach((l, i) => assert.equal(slice(new Uint8Array(readFileSync(l.path)), l.offset, l.length), css[i]));
  // Absolute paths given directly are also written as file URLs.
  const f = { ...frames()[0]!, path: path.join(root, names[0]!) };
  assert.is(frameLocation(f), 'file://' + encodeURI(path.join(root, names[0]!)));
});

linked('hostile references written verbatim are refused when resolved', () => {
  const outside = path.join(tmp, 'outside.jp2');
  writeFileSync(outside, writeJp2(css[0]!, IMG));
  const base = frames()[0]!;
  for (const url of ['../outside.jp2', '%2e%2e/outside.jp2', 'file:///etc/passwd', 'http://example.com/a.jp2']) {
    const out = writeLinkedJpx([{ ...base, url }]);
    const c = readContainer(out);
    try {
      resolveCodestreams(c, { root, containingFile: path.join(root, 'evil.jpx') });
      assert.unreachable(url);
    } catch (e) {
      assert.instance(e, J2kError);
      assert.is((e as J2kError).code, J2K_ERROR.BAD_REFERENCE, url);
    }
  }
  assert.throws(() => frameLocation({ ...IMG, codestreamOffset: 0, codestreamLength: 1 }), RangeError);
  assert.throws(() => writeLinkedJpx([]), RangeError);
});

linked('every truncation of a linked JPX is a J2kError', () => {
  const out = writeLinkedJpx(frames());
  for (let n = 0; n < out.length; n++) {
    try {
      listCodestreams(out.subarray(0, n));
      // The dtbl is last and every ftbl needs it: no proper prefix is a valid file.
      assert.unreachable(`cut at ${n} accepted`);
    } catch (e) {
      assert.instance(e, J2kError, `cut at ${n}: ${String(e)}`);
    }
  }
});

jp2.run();
jpx.run();
linked.run();
