import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream } from '../jpeg2000/codestream.js';
import { J2K_ERROR, J2kError } from '../jpeg2000/errors.js';
import { CodestreamIndex, sequenceTableBytes } from '../jpeg2000/packet-index.js';
import { ImageIndex, cachePathFor } from '../jpeg2000/index-cache.js';
import { bufferSource, subSource } from '../jpeg2000/source.js';
import { catchError, fixtureBytes, fixturePath, fixtures } from './helpers.js';

const ix = suite('packet index');

function open(file: string, bytes = fixtureBytes(file)) {
  const whole = bufferSource(bytes, file);
  const ref = readContainer(whole).codestreams[0]!;
  const src = subSource(whole, ref.offset, ref.length);
  return { src, layout: readCodestream(src), bytes, ref };
}

for (const f of fixtures()) {
  ix(`${f.name}: packets exactly tile every tile-part body${f.args.includes('-PLT') ? ', PLT and packet headers agree packet by packet' : ''}`, () => {
    const { src, layout } = open(f.file);
    const auto = new CodestreamIndex(src, layout);
    assert.is(auto.lengthSource, f.args.includes('-PLT') ? 'plt' : 'headers');
    auto.ensureAll();
    const parsed = new CodestreamIndex(src, layout, { source: 'headers' });
    parsed.ensureAll();
    let total = 0;
    for (let t = 0; t < auto.numTiles; t++) {
      const a = auto.tile(t);
      const b = parsed.tile(t);
      assert.is(a.known, a.sequence.count);
      assert.equal(Array.from(a.lengths), Array.from(b.lengths), `tile ${t} lengths`);
      assert.equal(Array.from(a.offsets), Array.from(b.offsets), `tile ${t} offsets`);
      // Packets are contiguous inside each tile-part body and cover it all.
      const parts = layout.tiles[t]!.map((i) => layout.tileParts[i]!);
      let covered = 0;
      for (const tp of parts) covered += tp.bodyLength;
      let sum = 0;
      for (let k = 0; k < a.known; k++) sum += a.lengths[k]!;
      assert.is(sum, covered, `tile ${t}: packet bytes = body bytes`);
      total += a.known;
    }
    assert.ok(total > 0);
  });
}

ix('lazy: asking for low resolutions of an RPCL file decodes only the packets they need', () => {
  const f = fixtures().find((x) => x.args.includes('-PLT') && x.args.includes('RPCL'));
  assert.ok(f, 'an RPCL fixture with PLT');
  const { src, layout } = open(f!.file);
  const index = new CodestreamIndex(src, layout);
  const t0 = index.ensureResolution(0, 0);
  const needed = t0.sequence.lastPacketOfResolution[0]! + 1;
  assert.ok(t0.known >= needed);
  assert.ok(t0.known < t0.sequence.count, `${t0.known} of ${t0.sequence.count} decoded`);
  for (let k = 0; k < needed; k++) assert.is(t0.sequence.resolution[k], 0);
  index.ensureAll();
  assert.is(index.tile(0).known, index.tile(0).sequence.count);
});

ix('codestreams made with the same parameters share one packet-order table', () => {
  const frames = ['frame 000.jp2', 'frame 001.jp2'].map((n) => ImageIndex.open(fixturePath(`movie/frames/${n}`)));
  const [a, b] = frames.map((img) => img.codestream(0).ensureTile(0));
  assert.ok(a!.sequence === b!.sequence, 'same PacketSequence object');
  assert.not.equal(Array.from(a!.lengths), Array.from(b!.lengths), 'but each has its own packet lengths');
  assert.ok(sequenceTableBytes() > 0);
  frames.forEach((f) => f.close());
});

ix('packet tables can live on SharedArrayBuffers', () => {
  const { src, layout } = open(fixtures()[0]!.file);
  const index = new CodestreamIndex(src, layout, { shared: true });
  index.ensureAll();
  assert.instance(index.tile(0).offsets.buffer, SharedArrayBuffer);
  assert.ok(index.memoryBytes() > 0);
});

ix('PLT that disagrees with the body is a BAD_PACKET_LENGTHS error', () => {
  const f = fixtures().find((x) => x.args.includes('-PLT'))!;
  const { bytes, layout, ref } = open(f.file);
  const plt = layout.tileParts[0]!.plt[0]!;
  const broken = bytes.slice();
  // Make the first packet one byte longer (last 7 bits of its first length).
  let i = ref.offset + plt.dataOffset;
  while (broken[i]! & 0x80) i++;
  broken[i] = (broken[i]! & 0x80) | ((broken[i]! + 1) & 0x7f);
  const b = open(f.file, broken);
  const e = catchError(() => new CodestreamIndex(b.src, b.layout).ensureAll());
  assert.instance(e, J2kError);
  assert.is((e as J2kError).code, J2K_ERROR.BAD_PACKET_LENGTHS, (e as Error).message);
});

ix('garbage in a packet body is a typed error when packets are parsed from headers', () => {
  const f = fixtures().find((x) => !x.args.includes('-PLT') && x.ext === 'j2k')!;
  const { bytes, layout, ref } = open(f.file);
  const tp = layout.tileParts[0]!;
  const broken = bytes.slice();
  broken.fill(0xff, ref.offset + tp.bodyOffset, ref.offset + tp.bodyOffset + 24);
  const b = open(f.file, broken);
  const e = catchError(() => new CodestreamIndex(b.src, b.layout, { source: 'headers' }).ensureAll());
  assert.instance(e, J2kError);
  // The offset is in the file, not in the codestream (they differ inside a JP2).
  assert.ok((e as J2kError).offset! >= ref.offset + tp.bodyOffset, (e as Error).message);
  assert.is((e as J2kError).file, f.file);
});

ix('errors inside a JP2 name file offsets', () => {
  const f = fixtures().find((x) => x.ext === 'jp2' && x.args.includes('-PLT'))!;
  const { bytes, layout, ref } = open(f.file);
  assert.ok(ref.offset > 0);
  const plt = layout.tileParts[0]!.plt[0]!;
  const broken = bytes.slice();
  broken[ref.offset + plt.dataOffset] = 0x7f; // first packet: 127 bytes
  const b = open(f.file, broken);
  const e = catchError(() => new CodestreamIndex(b.src, b.layout).ensureAll());
  assert.instance(e, J2kError);
  assert.is((e as J2kError).code, J2K_ERROR.BAD_PACKET_LENGTHS);
  assert.ok((e as J2kError).offset! >= ref.offset + layout.tileParts[0]!.bodyOffset, (e as Error).message);
});

ix('packed packet headers (PPT) are refused with a clear UNSUPPORTED error', () => {
  const f = fixtures().find((x) => x.ext === 'j2k' && !x.args.includes('-t'))!;
  const { bytes, layout, ref } = open(f.file);
  const cs = bytes.slice(ref.offset, ref.offset + ref.length);
  const tp = layout.tileParts[0]!;
  // Insert an (empty) PPT segment just before SOD and fix Psot.
  const sod = tp.bodyOffset - 2;
  const ppt = Uint8Array.of(0xff, 0x61, 0x00, 0x03, 0x00);
  const out = new Uint8Array(cs.length + ppt.length);
  out.set(cs.subarray(0, sod));
  out.set(ppt, sod);
  out.set(cs.subarray(sod), sod + ppt.length);
  new DataView(out.buffer).setUint32(tp.offset + 6, tp.length + ppt.length);
  const src = bufferSource(out, 'ppt.j2k');
  const layout2 = readCodestream(src);
  assert.is(layout2.tileParts[0]!.ppt.length, 1);
  const e = catchError(() => new CodestreamIndex(src, layout2));
  assert.instance(e, J2kError);
  assert.is((e as J2kError).code, J2K_ERROR.UNSUPPORTED);
  assert.match((e as Error).message, /PPM\/PPT/);
});

const cache = suite('index cache file');
let dir = '';
cache.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'jpip-idx-'));
});
cache.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

function copyFixture(file: string): string {
  const p = join(dir, file);
  copyFileSync(fixturePath(file), p);
  return p;
}

cache('is written on first open, used on the next, rebuilt when the file changes', () => {
  const f = fixtures().find((x) => x.args.includes('-PLT') && x.args.includes('-t'))!;
  const img = copyFixture(f.file);
  const cacheDir = join(dir, 'cache');
  const a = ImageIndex.open(img, { cacheDir });
  assert.is(a.cacheStatus, 'miss');
  a.indexAll();
  const tables = [...Array(a.codestream(0).numTiles).keys()].map((t) => Array.from(a.codestream(0).tile(t).offsets));
  a.close();
  const cacheFile = cachePathFor(cacheDir, img);
  const saved = JSON.parse(readFileSync(cacheFile, 'utf8'));
  assert.is(saved.format, 'jpip-bench-index');
  assert.ok(saved.codestreams[0].plt.length > 0);
  const b = ImageIndex.open(img, { cacheDir });
  assert.is(b.cacheStatus, 'hit');
  b.indexAll();
  assert.equal([...Array(b.codestream(0).numTiles).keys()].map((t) => Array.from(b.codestream(0).tile(t).offsets)), tables);
  b.close();
  utimesSync(img, new Date(), new Date(Date.now() + 5000));
  const c = ImageIndex.open(img, { cacheDir });
  assert.is(c.cacheStatus, 'stale');
  c.close();
  assert.is(ImageIndex.open(img, { cacheDir }).cacheStatus, 'hit');
  assert.equal(readdirSync(cacheDir).filter((n) => n.endsWith('.tmp')), [], 'no temporary files left');
});

cache('a corrupt cache file is rebuilt, never trusted', () => {
  const f = fixtures()[0]!;
  const img = copyFixture(f.file);
  const cacheDir = join(dir, 'cache');
  ImageIndex.open(img, { cacheDir }).close();
  const cacheFile = cachePathFor(cacheDir, img);
  const good = JSON.parse(readFileSync(cacheFile, 'utf8'));
  for (const bad of ['{not json', JSON.stringify({ ...good, codestreams: [{ ...good.codestreams[0], tileParts: [[0, 0, 1, 5, 9e9, 0, 0, 0]] }] })]) {
    writeFileSync(cacheFile, bad);
    const x = ImageIndex.open(img, { cacheDir });
    assert.is(x.cacheStatus, 'corrupt');
    x.indexAll();
    x.close();
    assert.is(ImageIndex.open(img, { cacheDir }).cacheStatus, 'hit');
  }
});

cache('keeps packet lengths parsed from headers, so a warm open parses nothing', () => {
  const f = fixtures().find((x) => !x.args.includes('-PLT'))!;
  const img = copyFixture(f.file);
  const cacheDir = join(dir, 'cache');
  const a = ImageIndex.open(img, { cacheDir });
  a.indexAll();
  const lengths = Array.from(a.codestream(0).tile(0).lengths);
  a.close();
  const saved = JSON.parse(readFileSync(cachePathFor(cacheDir, img), 'utf8'));
  assert.ok(saved.codestreams[0].packets, 'packet tables saved');
  const b = ImageIndex.open(img, { cacheDir });
  assert.is(b.cacheStatus, 'hit');
  b.indexAll();
  assert.equal(Array.from(b.codestream(0).tile(0).lengths), lengths);
  b.close();
});

cache('opening a missing file names it', () => {
  const e = catchError(() => ImageIndex.open(join(dir, 'nope.jp2')));
  assert.instance(e, J2kError);
  assert.is((e as J2kError).code, J2K_ERROR.MISSING_REFERENCE);
});

ix.run();
cache.run();
