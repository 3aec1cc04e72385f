import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  box,
  boxContent,
  boxHeader,
  bpcOf,
  checkSignature,
  colrBox,
  concatBytes,
  dtblBox,
  ENUM_CS,
  findBox,
  findBoxes,
  flstBox,
  ftypBox,
  hasJp2Signature,
  ihdrBox,
  listCodestreams,
  parseBoxes,
  readBoxContent,
  readBoxTree,
  readColr,
  readContainer,
  readDtbl,
  readFlst,
  readFtyp,
  readIhdr,
  readUrl,
  readXml,
  signatureBox,
  superbox,
  SUPERBOXES,
  urlBox,
  xmlBox,
  type Box,
} from '../jpeg2000/boxes.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { openFileSource } from '../jpeg2000/file-source.js';
import { bufferSource, type RandomAccess } from '../jpeg2000/source.js';
import { throwsCode } from './helpers.js';

const enc = new TextEncoder();

/** Calls fn; passes if it returns or throws a J2kError, fails on any other exception. */
function onlyJ2kErrors(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof J2kError)) {
      throw new Error(`${what}: non-J2kError ${String(e)}`);
    }
  }
}

/** Box tree without offsets, for structural comparison. */
function shape(boxes: Box[]): unknown[] {
  return boxes.map((b) => (b.children ? [b.type, shape(b.children)] : b.type));
}

/** A fake codestream (box tests do not need a valid one). */
const FAKE_CS = Uint8Array.of(0xff, 0x4f, 0xff, 0x51, 0, 0x29, 1, 2, 3, 4, 5, 6, 0xff, 0xd9);

function smallJp2(cs: Uint8Array = FAKE_CS): Uint8Array {
  return concatBytes([
    signatureBox(),
    ftypBox({ brand: 'jp2 ', minorVersion: 0, compatibility: ['jp2 '] }),
    superbox('jp2h', [ihdrBox({ height: 16, width: 16, nc: 1, bitDepth: 8 }), colrBox({ enumCS: ENUM_CS.greyscale })]),
    xmlBox('<a/>'),
    box('jp2c', cs),
  ]);
}

/** A real JP2 from opj_compress or the fixtures directory, if either is available. */
function realJp2(): Uint8Array | undefined {
  const fixtures = path.join(import.meta.dirname, 'fixtures');
  if (existsSync(fixtures)) {
    const f = readdirSync(fixtures).find((n) => n.endsWith('.jp2'));
    if (f) return new Uint8Array(readFileSync(path.join(fixtures, f)));
  }
  if (!existsSync('/usr/bin/opj_compress')) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'boxes-test-'));
  try {
    const px = new Uint8Array(256).map((_, i) => i);
    writeFileSync(path.join(dir, 'in.pgm'), concatBytes([enc.encode('P5\n16 16\n255\n'), px]));
    execFileSync('/usr/bin/opj_compress', ['-i', 'in.pgm', '-o', 'out.jp2', '-n', '2'], { cwd: dir, stdio: 'ignore' });
    return new Uint8Array(readFileSync(path.join(dir, 'out.jp2')));
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
const tree = suite('box tree');

tree('parses a JP2 with offsets, lengths and superbox children', () => {
  const f = smallJp2();
  const boxes = parseBoxes(f);
  assert.equal(shape(boxes), ['jP  ', 'ftyp', ['jp2h', ['ihdr', 'colr']], 'xml ', 'jp2c']);
  assert.is(boxes[0]!.offset, 0);
  assert.is(boxes[0]!.length, 12);
  assert.is(boxes[1]!.offset, 12);
  const jp2c = boxes[4]!;
  assert.is(jp2c.headerLength, 8);
  assert.is(jp2c.contentOffset, jp2c.offset + 8);
  assert.is(jp2c.contentLength, FAKE_CS.length);
  assert.is(jp2c.offset + jp2c.length, f.length);
  assert.equal(boxContent(f, jp2c), FAKE_CS);
  const ihdr = findBox(boxes[2]!.children!, 'ihdr')!;
  assert.is(ihdr.offset, boxes[2]!.contentOffset);
  assert.is(findBoxes(boxes, 'jp2c').length, 1);
  assert.ok(SUPERBOXES.has('res ') && SUPERBOXES.has('ftbl') && SUPERBOXES.has('drep') && !SUPERBOXES.has('jp2c'));
});

tree('XLBox (64-bit) lengths, top level and nested', () => {
  const inner = box('xml ', enc.encode('hello'), { extended: true });
  const f = concatBytes([superbox('asoc', [inner, box('lbl ', enc.encode('x'))], { extended: true }), box('jp2c', FAKE_CS, { extended: true })]);
  const boxes = parseBoxes(f);
  assert.equal(shape(boxes), [['asoc', ['xml ', 'lbl ']], 'jp2c']);
  const [asoc, jp2c] = boxes as [Box, Box];
  assert.is(asoc.headerLength, 16);
  assert.is(asoc.children![0]!.headerLength, 16);
  assert.is(asoc.children![0]!.contentLength, 5);
  assert.is(asoc.children![0]!.contentOffset, 32);
  assert.is(jp2c.headerLength, 16);
  assert.is(jp2c.contentLength, FAKE_CS.length);
  assert.equal(boxContent(f, jp2c), FAKE_CS);
  // A header announcing more than 4 GiB is parsed as a 64-bit value (and is then past the end).
  const big = concatBytes([Uint8Array.of(0, 0, 0, 1), enc.encode('jp2c'), Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 0x20)]);
  const e = throwsCode(() => parseBoxes(big), J2K_ERROR.TRUNCATED);
  assert.match(e.message, /4294967328 bytes/);
});

tree('boxHeader chooses the XLBox form above 2^32 - 9 content bytes', () => {
  assert.equal(boxHeader('jp2c', 100), Uint8Array.of(0, 0, 0, 108, 0x6a, 0x70, 0x32, 0x63));
  assert.is(boxHeader('jp2c', 0xffffffff - 8).length, 8);
  const h = boxHeader('jp2c', 0xffffffff - 7);
  assert.is(h.length, 16);
  assert.equal(Array.from(h.subarray(0, 4)), [0, 0, 0, 1]);
  assert.equal(Array.from(h.subarray(8)), [0, 0, 0, 1, 0, 0, 0, 8]); // (2^32 - 8) + 16
  assert.equal(boxHeader('jp2c', 5, { toEnd: true }), Uint8Array.of(0, 0, 0, 0, 0x6a, 0x70, 0x32, 0x63));
});

tree('LBox = 0 runs to the end of the file, or of the parent', () => {
  const top = concatBytes([box('ftyp', new Uint8Array(8)), boxHeader('jp2c', 0, { toEnd: true }), FAKE_CS]);
  const boxes = parseBoxes(top);
  assert.is(boxes[1]!.length, 8 + FAKE_CS.length);
  assert.is(boxes[1]!.contentLength, FAKE_CS.length);
  const inParent = superbox('asoc', [box('lbl ', enc.encode('ab')), boxHeader('xml ', 0, { toEnd: true }), enc.encode('<x/>')]);
  const f = concatBytes([inParent, box('free', new Uint8Array(3))]);
  const b = parseBoxes(f);
  assert.equal(shape(b), [['asoc', ['lbl ', 'xml ']], 'free']);
  assert.is(b[0]!.children![1]!.contentLength, 4);
  // An empty LBox=0 box at the very end is fine too.
  assert.is(parseBoxes(boxHeader('jp2c', 0, { toEnd: true }))[0]!.contentLength, 0);
});

tree('nested superboxes and the depth limit', () => {
  let b = xmlBox('<deep/>');
  for (let i = 0; i < 10; i++) b = superbox(i % 2 ? 'asoc' : 'res ', [b]);
  let cur = parseBoxes(b)[0]!;
  let depth = 0;
  while (cur.children) {
    cur = cur.children[0]!;
    depth++;
  }
  assert.is(depth, 10);
  assert.is(cur.type, 'xml ');
  let deep = box('lbl ', new Uint8Array(1));
  for (let i = 0; i < 40; i++) deep = superbox('asoc', [deep]);
  const e = throwsCode(() => parseBoxes(deep), J2K_ERROR.BAD_BOX);
  assert.match(e.message, /nested deeper than 32/);
  throwsCode(() => parseBoxes(b, { maxDepth: 5 }), J2K_ERROR.BAD_BOX);
  // A non-superbox type is not recursed even if its content looks like boxes.
  assert.is(parseBoxes(box('uuid', xmlBox('x')))[0]!.children, undefined);
  assert.ok(parseBoxes(box('uuid', xmlBox('x')), { superboxes: new Set(['uuid']) })[0]!.children);
});

tree('bad lengths: smaller than the header, past the parent, past the file', () => {
  const withL = (l: number, type = 'xml ', extra = 8) => concatBytes([Uint8Array.of(l >>> 24, (l >>> 16) & 255, (l >>> 8) & 255, l & 255), enc.encode(type), new Uint8Array(extra)]);
  for (const l of [2, 3, 4, 7]) {
    const e = throwsCode(() => parseBoxes(withL(l), { file: 'f.jp2' }), J2K_ERROR.BAD_BOX);
    assert.is(e.file, 'f.jp2');
    assert.is(e.offset, 0);
  }
  throwsCode(() => parseBoxes(withL(100)), J2K_ERROR.TRUNCATED);
  // XLBox smaller than 16, and absurdly large.
  const xl = (hi: number, lo: number) => concatBytes([Uint8Array.of(0, 0, 0, 1), enc.encode('jp2c'), Uint8Array.of(hi >>> 24, (hi >>> 16) & 255, (hi >>> 8) & 255, hi & 255, lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255)]);
  throwsCode(() => parseBoxes(xl(0, 15)), J2K_ERROR.BAD_BOX);
  throwsCode(() => parseBoxes(xl(0, 0)), J2K_ERROR.BAD_BOX);
  throwsCode(() => parseBoxes(xl(0xffffffff, 0xffffffff)), J2K_ERROR.BAD_BOX);
  // A child longer than its parent (parent complete, file continues).
  const child = withL(50, 'lbl ', 4);
  const parent = concatBytes([box('asoc', child), box('free', new Uint8Array(64))]);
  const e = throwsCode(() => parseBoxes(parent, { file: 'p.jpx', base: 1000 }), J2K_ERROR.BAD_BOX);
  assert.is(e.offset, 1008);
  assert.match(e.message, /past the end of its parent 'asoc'/);
  // A partial header inside a complete parent.
  throwsCode(() => parseBoxes(concatBytes([box('asoc', new Uint8Array(5)), box('free', new Uint8Array(0))])), J2K_ERROR.BAD_BOX);
  // A partial header at the end of the file.
  const t = throwsCode(() => parseBoxes(concatBytes([box('free', new Uint8Array(0)), new Uint8Array(5)])), J2K_ERROR.TRUNCATED);
  assert.is(t.offset, 8);
});

tree('base and start/end windows', () => {
  const f = smallJp2();
  const boxes = parseBoxes(f.subarray(12), { base: 12 });
  assert.is(boxes[0]!.type, 'ftyp');
  assert.is(boxes[0]!.offset, 12);
  assert.equal(parseBoxes(f, { start: 12, end: 12 + boxes[0]!.length }).map((b) => b.offset), [12]);
  assert.equal(boxContent(f.subarray(12), boxes[3]!, 12), FAKE_CS);
  assert.throws(() => parseBoxes(f, { start: 5, end: 2 }), RangeError);
});

tree('readBoxTree on a source reads headers only', () => {
  const big = new Uint8Array(1 << 16).fill(0xab);
  const f = concatBytes([smallJp2(), box('jp2c', big, { extended: true })]);
  const reads: [number, number][] = [];
  const src0 = bufferSource(f, 'mem.jp2');
  const src: RandomAccess = { size: src0.size, name: src0.name, read: (p, l) => (reads.push([p, l]), src0.read(p, l)) };
  const boxes = readBoxTree(src);
  assert.equal(boxes, parseBoxes(f));
  const jp2cs = findBoxes(boxes, 'jp2c');
  for (const [p, l] of reads) {
    assert.ok(l <= 8, `read of ${l} bytes`);
    for (const b of jp2cs) assert.ok(p + l <= b.contentOffset || p >= b.contentOffset + b.contentLength, `read at ${p} inside jp2c content`);
  }
  assert.equal(readBoxContent(src, boxes[3]!), enc.encode('<a/>'));
  throwsCode(() => readBoxContent(src, jp2cs[1]!, 1024), J2K_ERROR.UNSUPPORTED);
  // Errors name the source.
  const e = throwsCode(() => readBoxTree(bufferSource(f.subarray(0, 30), 'cut.jp2')), J2K_ERROR.TRUNCATED);
  assert.is(e.file, 'cut.jp2');
});

tree('readBoxTree over a file descriptor', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'boxes-test-'));
  try {
    const f = smallJp2();
    const p = path.join(dir, 'a.jp2');
    writeFileSync(p, f);
    const src = openFileSource(p, 'a.jp2');
    try {
      assert.equal(readBoxTree(src), parseBoxes(f));
      assert.equal(listCodestreams(src), listCodestreams(f));
    } finally {
      src.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------
const typed = suite('typed boxes');

function content(b: Uint8Array): Uint8Array {
  const [bx] = parseBoxes(b);
  return boxContent(b, bx!);
}

typed('signature', () => {
  assert.equal(Array.from(signatureBox()), [0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]);
  assert.ok(hasJp2Signature(smallJp2()));
  assert.not.ok(hasJp2Signature(FAKE_CS));
  checkSignature(smallJp2());
  throwsCode(() => checkSignature(enc.encode('GIF89a........')), J2K_ERROR.NOT_JPEG2000);
  throwsCode(() => checkSignature(signatureBox().subarray(0, 7)), J2K_ERROR.TRUNCATED);
  const bad = signatureBox();
  bad[11] = 0x0b;
  throwsCode(() => checkSignature(bad), J2K_ERROR.NOT_JPEG2000);
});

typed('ftyp round trip and bad size', () => {
  const ft = { brand: 'jpx ', minorVersion: 3, compatibility: ['jpx ', 'jp2 ', 'jpxb'] };
  assert.equal(readFtyp(content(ftypBox(ft))), ft);
  assert.equal(readFtyp(content(ftypBox({ brand: 'jp2 ', minorVersion: 0, compatibility: [] }))).compatibility, []);
  throwsCode(() => readFtyp(new Uint8Array(10)), J2K_ERROR.BAD_BOX);
  throwsCode(() => readFtyp(new Uint8Array(4)), J2K_ERROR.BAD_BOX);
});

typed('ihdr round trip, BPC decoding, bad values', () => {
  const h = readIhdr(content(ihdrBox({ height: 4096, width: 70000, nc: 3, bitDepth: 12, signed: true, ipr: 1 })));
  assert.equal(h, { height: 4096, width: 70000, nc: 3, bpc: 0x8b, c: 7, unk: 0, ipr: 1, bitDepth: 12, signed: true });
  const v = readIhdr(content(ihdrBox({ height: 1, width: 1, nc: 2, bpc: 255 })));
  assert.is(v.bitDepth, undefined);
  assert.is(v.signed, false);
  assert.is(bpcOf(8), 7);
  assert.throws(() => bpcOf(0), RangeError);
  assert.throws(() => ihdrBox({ height: 1, width: 1, nc: 1 }), RangeError);
  throwsCode(() => readIhdr(new Uint8Array(13)), J2K_ERROR.BAD_BOX);
  throwsCode(() => readIhdr(content(ihdrBox({ height: 0, width: 1, nc: 1, bitDepth: 8 }))), J2K_ERROR.BAD_VALUE);
  throwsCode(() => readIhdr(content(ihdrBox({ height: 1, width: 1, nc: 0, bitDepth: 8 }))), J2K_ERROR.BAD_VALUE);
  throwsCode(() => readIhdr(content(ihdrBox({ height: 1, width: 1, nc: 1, bpc: 0x7e }))), J2K_ERROR.BAD_VALUE);
});

typed('colr round trip', () => {
  assert.equal(readColr(content(colrBox({ enumCS: ENUM_CS.sRGB }))), { method: 1, precedence: 0, approximation: 0, enumCS: 16 });
  const icc = Uint8Array.of(1, 2, 3, 4, 5);
  assert.equal(readColr(content(colrBox({ icc, precedence: -1, approximation: 1 }))), { method: 2, precedence: -1, approximation: 1, icc });
  assert.equal(readColr(content(colrBox({ method: 4, data: Uint8Array.of(9) }))).data, Uint8Array.of(9));
  throwsCode(() => readColr(Uint8Array.of(1, 0, 0, 0)), J2K_ERROR.TRUNCATED);
});

typed('flst round trip with 64-bit offsets', () => {
  const entries = [
    { offset: 2 ** 40 + 5, length: 0xfffffff0, dataReference: 1 },
    { offset: 0, length: 1, dataReference: 65535 },
  ];
  assert.equal(readFlst(content(flstBox(entries))), entries);
  assert.equal(readFlst(content(flstBox([]))), []);
  const one = content(flstBox(entries.slice(0, 1)));
  throwsCode(() => readFlst(one.subarray(0, one.length - 1)), J2K_ERROR.BAD_BOX);
  throwsCode(() => readFlst(concatBytes([one, Uint8Array.of(0)])), J2K_ERROR.BAD_BOX);
});

typed('url round trip: flags, UTF-8, terminator', () => {
  const u = { version: 0, flags: 0x010203, location: 'file:///data/é t%20é.jp2' };
  assert.equal(readUrl(content(urlBox(u))), u);
  const raw = content(urlBox({ location: 'a.jp2' }));
  assert.is(raw[raw.length - 1], 0);
  assert.equal(readUrl(raw.subarray(0, raw.length - 1)).location, 'a.jp2'); // missing NUL tolerated
  assert.equal(readUrl(concatBytes([raw, new Uint8Array(3)])).location, 'a.jp2'); // NUL padding
  throwsCode(() => readUrl(concatBytes([raw, enc.encode('../evil')])), J2K_ERROR.BAD_BOX);
  throwsCode(() => readUrl(Uint8Array.of(0, 0, 0, 0, 0xc3, 0x28, 0)), J2K_ERROR.BAD_BOX);
  throwsCode(() => readUrl(Uint8Array.of(0, 0)), J2K_ERROR.TRUNCATED);
  assert.throws(() => urlBox({ location: 'a\0b' }), RangeError);
});

typed('dtbl round trip and malformed tables', () => {
  const locs = ['a.jp2', 'sub/b%20c.jp2', 'file:///x/y.jp2'];
  const d = dtblBox(locs);
  const [bx] = parseBoxes(d);
  const urls = readDtbl(boxContent(d, bx!), { offset: bx!.contentOffset });
  assert.equal(urls.map((u) => u.location), locs);
  assert.equal(readDtbl(content(dtblBox([]))), []);
  const c = content(d);
  const wrongCount = c.slice();
  wrongCount[1] = 2;
  throwsCode(() => readDtbl(wrongCount), J2K_ERROR.BAD_BOX);
  throwsCode(() => readDtbl(concatBytes([Uint8Array.of(0, 1), xmlBox('x')])), J2K_ERROR.BAD_BOX);
  throwsCode(() => readDtbl(c.subarray(0, c.length - 2)), J2K_ERROR.TRUNCATED);
  throwsCode(() => readDtbl(Uint8Array.of(0)), J2K_ERROR.TRUNCATED);
});

typed('xml round trip', () => {
  const text = '<?xml version="1.0"?><meta>é — ok</meta>';
  assert.is(readXml(content(xmlBox(text))), text);
});

// ---------------------------------------------------------------------------
const listing = suite('codestream listing');

listing('raw codestream', () => {
  assert.equal(listCodestreams(FAKE_CS), [{ index: 0, kind: 'raw', offset: 0, length: FAKE_CS.length }]);
  const c = readContainer(FAKE_CS);
  assert.is(c.format, 'raw');
  assert.equal(c.boxes, []);
  throwsCode(() => listCodestreams(Uint8Array.of(0xff, 0x4f)), J2K_ERROR.TRUNCATED);
});

listing('JP2: one embedded codestream, boxes in file order', () => {
  const f = smallJp2();
  const c = readContainer(f, { file: 'x.jp2' });
  assert.is(c.format, 'jp2');
  assert.equal(c.fileType, { brand: 'jp2 ', minorVersion: 0, compatibility: ['jp2 '] });
  assert.equal(c.boxes.map((b) => b.type), ['jP  ', 'ftyp', 'jp2h', 'xml ', 'jp2c']);
  assert.is(c.imageHeader?.width, 16);
  const jp2c = c.boxes[4]!;
  assert.equal(c.codestreams, [{ index: 0, kind: 'embedded', offset: jp2c.contentOffset, length: FAKE_CS.length, boxIndex: 4 }]);
});

listing('a real JP2 (opj_compress or fixtures), when available', () => {
  const f = realJp2();
  if (!f) return;
  const [cs] = listCodestreams(f);
  assert.is(cs!.kind, 'embedded');
  assert.equal(Array.from(f.subarray(cs!.offset, cs!.offset + 4)), [0xff, 0x4f, 0xff, 0x51]);
  assert.equal(Array.from(f.subarray(cs!.offset + cs!.length - 2, cs!.offset + cs!.length)), [0xff, 0xd9]);
});

function jpx(parts: Uint8Array[]): Uint8Array {
  return concatBytes([signatureBox(), ftypBox({ brand: 'jpx ', minorVersion: 0, compatibility: ['jpx ', 'jp2 ', 'jpxb'] }), ...parts]);
}

listing('JPX: jp2c and ftbl numbered together in file order', () => {
  const frag = (off: number, len: number, dr: number) => superbox('ftbl', [flstBox([{ offset: off, length: len, dataReference: dr }])]);
  const f = jpx([box('jp2c', FAKE_CS), frag(100, 200, 2), box('jp2c', FAKE_CS), frag(7, 8, 1), dtblBox(['a.jp2', 'b%20c.jp2'])]);
  const c = readContainer(f);
  assert.is(c.format, 'jpx');
  assert.equal(c.dataReferences.map((d) => d.location), ['a.jp2', 'b%20c.jp2']);
  assert.equal(
    c.codestreams.map((s) => [s.index, s.kind, s.kind === 'fragment' ? s.url : '', s.length]),
    [
      [0, 'embedded', '', FAKE_CS.length],
      [1, 'fragment', 'b%20c.jp2', 200],
      [2, 'embedded', '', FAKE_CS.length],
      [3, 'fragment', 'a.jp2', 8],
    ],
  );
  const s1 = c.codestreams[1]!;
  assert.ok(s1.kind === 'fragment' && s1.offset === 100 && s1.dataReference === 2 && s1.boxIndex === 3);
});

listing('JPX fragment errors', () => {
  const two = superbox('ftbl', [flstBox([{ offset: 0, length: 1, dataReference: 1 }, { offset: 1, length: 1, dataReference: 1 }])]);
  const e = throwsCode(() => listCodestreams(jpx([two, dtblBox(['a.jp2'])])), J2K_ERROR.UNSUPPORTED);
  assert.match(e.message, /2 fragments/);
  const one = (dr: number) => superbox('ftbl', [flstBox([{ offset: 0, length: 1, dataReference: dr }])]);
  throwsCode(() => listCodestreams(jpx([one(2), dtblBox(['a.jp2'])])), J2K_ERROR.BAD_REFERENCE);
  throwsCode(() => listCodestreams(jpx([one(1)])), J2K_ERROR.BAD_REFERENCE);
  throwsCode(() => listCodestreams(jpx([superbox('ftbl', [flstBox([])])])), J2K_ERROR.BAD_BOX);
  throwsCode(() => listCodestreams(jpx([superbox('ftbl', [])])), J2K_ERROR.BAD_BOX);
  throwsCode(() => listCodestreams(jpx([one(1), dtblBox(['a']), dtblBox(['b'])])), J2K_ERROR.BAD_BOX);
  // Data reference 0: the fragment is in this file.
  const self = jpx([one(0)]);
  assert.equal(listCodestreams(self)[0], { index: 0, kind: 'fragment', url: '', offset: 0, length: 1, dataReference: 0, boxIndex: 2 });
  throwsCode(() => listCodestreams(jpx([superbox('ftbl', [flstBox([{ offset: 0, length: 1000, dataReference: 0 }])])])), J2K_ERROR.TRUNCATED);
});

listing('not JPEG 2000, unsupported brands, missing pieces', () => {
  throwsCode(() => listCodestreams(enc.encode('\x89PNG\r\n\x1a\n0000000000')), J2K_ERROR.NOT_JPEG2000);
  throwsCode(() => listCodestreams(new Uint8Array(0)), J2K_ERROR.NOT_JPEG2000);
  throwsCode(() => listCodestreams(Uint8Array.of(0xff)), J2K_ERROR.NOT_JPEG2000);
  throwsCode(() => listCodestreams(Uint8Array.of(0xff, 0x4f, 0xff, 0x52)), J2K_ERROR.NOT_JPEG2000);
  const mj2 = concatBytes([signatureBox(), ftypBox({ brand: 'mjp2', minorVersion: 0, compatibility: ['mjp2'] }), box('jp2c', FAKE_CS)]);
  throwsCode(() => listCodestreams(mj2), J2K_ERROR.UNSUPPORTED);
  const jp2compat = concatBytes([signatureBox(), ftypBox({ brand: 'abcd', minorVersion: 0, compatibility: ['jp2 '] }), box('jp2c', FAKE_CS)]);
  assert.is(readContainer(jp2compat).format, 'jp2');
  throwsCode(() => listCodestreams(concatBytes([signatureBox(), box('jp2c', FAKE_CS)])), J2K_ERROR.BAD_BOX);
  throwsCode(() => listCodestreams(concatBytes([signatureBox(), ftypBox({ brand: 'jp2 ', minorVersion: 0, compatibility: [] })])), J2K_ERROR.BAD_BOX);
  const badIhdr = concatBytes([signatureBox(), ftypBox({ brand: 'jp2 ', minorVersion: 0, compatibility: [] }), superbox('jp2h', [box('ihdr', new Uint8Array(3))]), box('jp2c', FAKE_CS)]);
  throwsCode(() => listCodestreams(badIhdr), J2K_ERROR.BAD_BOX);
});

// ---------------------------------------------------------------------------
const robust = suite('robustness');

function jpxSample(): Uint8Array {
  return jpx([
    superbox('jp2h', [ihdrBox({ height: 8, width: 8, nc: 1, bitDepth: 8 }), colrBox({ enumCS: 17 })]),
    superbox('jpch', [ihdrBox({ height: 8, width: 8, nc: 1, bitDepth: 8 })]),
    superbox('asoc', [box('lbl ', enc.encode('x')), xmlBox('<a/>')], { extended: true }),
    superbox('ftbl', [flstBox([{ offset: 1, length: 2, dataReference: 1 }])]),
    dtblBox(['f.jp2']),
    box('jp2c', FAKE_CS),
  ]);
}

robust('truncation at every byte gives a J2kError (or a shorter valid file), never a hang', () => {
  for (const f of [smallJp2(), jpxSample(), realJp2() ?? smallJp2()]) {
    for (let n = 0; n < f.length; n++) {
      const cut = f.subarray(0, n);
      onlyJ2kErrors(() => parseBoxes(cut), `parseBoxes cut at ${n}`);
      onlyJ2kErrors(() => readBoxTree(bufferSource(cut)), `readBoxTree cut at ${n}`);
      onlyJ2kErrors(() => readContainer(cut), `readContainer cut at ${n}`);
    }
  }
  // When the only codestream is last, every proper prefix is refused.
  const f = smallJp2();
  const jp2cAt = parseBoxes(f)[4]!.offset;
  for (let n = 0; n < f.length; n++) {
    const code = n === 0 ? J2K_ERROR.NOT_JPEG2000 : n < 12 || n > jp2cAt ? J2K_ERROR.TRUNCATED : undefined;
    try {
      readContainer(f.subarray(0, n));
      assert.unreachable(`prefix of ${n} bytes accepted`);
    } catch (e) {
      assert.instance(e, J2kError);
      if (code !== undefined) assert.is((e as J2kError).code, code, `cut at ${n}`);
    }
  }
});

robust('random corruption gives only J2kErrors', () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const base of [smallJp2(), jpxSample()]) {
    for (let k = 0; k < 2000; k++) {
      const f = base.slice();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let j = 0; j < flips; j++) f[Math.floor(rnd() * f.length)] = Math.floor(rnd() * 256);
      onlyJ2kErrors(() => readContainer(f), `corruption ${k}`);
    }
  }
});

robust('a long run of empty boxes is parsed without recursion', () => {
  const one = box('free', new Uint8Array(0));
  const many = new Uint8Array(one.length * 100000);
  for (let i = 0; i < 100000; i++) many.set(one, i * one.length);
  assert.is(parseBoxes(many).length, 100000);
});

tree.run();
typed.run();
listing.run();
robust.run();
