import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boxContent, findBox, findBoxes, readContainer, readXml, type Container } from '../jpeg2000/boxes.js';
import { J2K_ERROR, J2kError, type J2kErrorCode } from '../jpeg2000/errors.js';
import { ImageIndex } from '../jpeg2000/index-cache.js';
import type { CodestreamIndex } from '../jpeg2000/packet-index.js';
import { resolveCodestreams } from '../jpeg2000/linked.js';
import { findTool, toolVersion } from '../fixtures-gen/opj.js';
import {
  DEFAULT_MOVIE_DIR,
  LINKED_JPX,
  MANIFEST_JSON,
  MOVIE_ARGS,
  MOVIE_JPX,
  MOVIE_SEEDS,
  frameCommand,
  framePath,
  frameXml,
  generateMovieFixtures,
  manifestText,
  sha256,
  type MovieManifest,
} from '../fixtures-gen/movies.js';
import { encodePnm, synthSun } from '../fixtures-gen/synth.js';

const MOVIE = path.join(import.meta.dirname, 'fixtures', 'movie');
const FRAMES = path.join(MOVIE, 'frames');
const manifest = JSON.parse(readFileSync(path.join(MOVIE, MANIFEST_JSON), 'utf8')) as MovieManifest;
const N = MOVIE_SEEDS.length;

const bytesOf = (rel: string): Uint8Array => new Uint8Array(readFileSync(path.join(MOVIE, rel)));
const containerOf = (rel: string): Container => readContainer(bytesOf(rel), { file: rel });

/** Every file under the movie directory, '/'-separated, relative to it. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/** The content of frame i's single jp2c box. */
function frameCodestream(i: number): { offset: number; length: number; bytes: Uint8Array } {
  const jp2 = bytesOf(framePath(i));
  const c = readContainer(jp2, { file: framePath(i) });
  assert.is(c.format, 'jp2');
  assert.is(c.codestreams.length, 1);
  const cs = c.codestreams[0]!;
  assert.is(cs.kind, 'embedded');
  return { offset: cs.offset, length: cs.length, bytes: jp2.subarray(cs.offset, cs.offset + cs.length) };
}

function throwsCode(fn: () => unknown, code: J2kErrorCode, msg: string): J2kError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof J2kError)) throw new Error(`${msg}: expected J2kError ${code}, got ${err === undefined ? 'no error' : String(err)}`);
  assert.is(err.code, code, `${msg}: ${err.message}`);
  return err;
}

/** Packet offsets (from the codestream start) and lengths of every tile, after indexing everything. */
function packetTables(ix: CodestreamIndex): { offsets: number[]; lengths: number[] }[] {
  ix.ensureAll();
  const out: { offsets: number[]; lengths: number[] }[] = [];
  for (let t = 0; t < ix.numTiles; t++) {
    const ti = ix.tile(t);
    assert.is(ti.known, ti.sequence.count, `tile ${t} fully indexed`);
    out.push({ offsets: Array.from(ti.offsets.subarray(0, ti.known)), lengths: Array.from(ti.lengths.subarray(0, ti.known)) });
  }
  return out;
}

let tmp = '';
let cacheDir = '';

const files = suite('movie fixtures: committed files');

files.before(() => {
  tmp = realpathSync(mkdtempSync(path.join(tmpdir(), 'jpip-movie-test-')));
  cacheDir = path.join(tmp, 'cache');
});

files.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

files('the generator writes to test/fixtures/movie by default', () => {
  assert.is(path.resolve(DEFAULT_MOVIE_DIR), path.resolve(MOVIE));
});

files('manifest: frames with spaces in their names, both JPX files, the exact opj_compress commands', () => {
  assert.equal(
    manifest.frames.map((f) => f.file),
    ['frames/frame 000.jp2', 'frames/frame 001.jp2', 'frames/frame 002.jp2'],
  );
  assert.equal(
    manifest.containers.map((c) => c.file),
    [MOVIE_JPX, LINKED_JPX],
  );
  assert.equal(manifest.args, [...MOVIE_ARGS]);
  assert.is(manifest.encoder, 'opj_compress');
  manifest.frames.forEach((f, i) => {
    assert.is(f.codestream.command, frameCommand(i));
    assert.ok(f.codestream.command.startsWith(`opj_compress -i frame-00${i}.pgm -o frame-00${i}.j2k -PLT -p RPCL -n 4 -r 20,10,5 -c `), f.codestream.command);
    assert.ok(f.made.includes('writeJp2'), f.made);
    assert.is(f.source.seed, MOVIE_SEEDS[i]);
    assert.is(f.xml, frameXml(i));
  });
  assert.ok(manifest.containers[0]!.made.includes('writeJpx'));
  assert.ok(manifest.containers[1]!.made.includes('writeLinkedJpx'));
  assert.equal(manifest.containers[1]!.urls, ['frames/frame%20000.jp2', 'frames/frame%20001.jp2', 'frames/frame%20002.jp2']);
  assert.is(readFileSync(path.join(MOVIE, MANIFEST_JSON), 'utf8'), manifestText(manifest), 'manifest.json is in canonical form');
});

files('every committed movie file matches its sha256 and size; nothing else is there; under 100 KB', () => {
  const listed = [...manifest.frames, ...manifest.containers];
  for (const f of listed) {
    const b = bytesOf(f.file);
    assert.is(b.length, f.size, `${f.file} size`);
    assert.is(sha256(b), f.sha256, `${f.file} sha256 (regenerate: node --import tsx fixtures-gen/movies.ts)`);
  }
  assert.equal(listFiles(MOVIE).sort(), [...listed.map((f) => f.file), MANIFEST_JSON].sort());
  const total = listFiles(MOVIE).reduce((n, f) => n + statSync(path.join(MOVIE, f)).size, 0);
  assert.ok(total < 100_000, `movie fixtures total ${total} bytes`);
});

files('manifest: sources are synthSun PGMs and each raw codestream is the jp2c content of its frame', () => {
  manifest.frames.forEach((f, i) => {
    const pgm = encodePnm({ width: f.source.width, height: f.source.height, components: f.source.components, samples: synthSun(f.source) });
    assert.is(sha256(pgm), f.source.sha256, `${f.source.file} sha256`);
    assert.is(pgm.length, f.source.size);
    const cs = frameCodestream(i);
    assert.is(cs.offset, f.codestream.offsetInFile, `${f.file} jp2c offset`);
    assert.is(cs.length, f.codestream.size, `${f.file} codestream size`);
    assert.is(sha256(cs.bytes), f.codestream.sha256, `${f.file} codestream sha256`);
    assert.equal([...cs.bytes.subarray(0, 4)], [0xff, 0x4f, 0xff, 0x51], 'SOC SIZ');
  });
});

files('each frame carries its FITS-like xml box, which reads back', () => {
  for (let i = 0; i < N; i++) {
    const jp2 = bytesOf(framePath(i));
    const c = readContainer(jp2);
    const xmls = findBoxes(c.boxes, 'xml ');
    assert.is(xmls.length, 1, `${framePath(i)}: one xml box`);
    const text = readXml(boxContent(jp2, xmls[0]!));
    assert.is(text, frameXml(i));
    assert.is(text, manifest.frames[i]!.xml);
    assert.ok(text.includes('<TELESCOP>SDO/AIA</TELESCOP>'), text);
    assert.ok(text.includes('<WAVELNTH>171</WAVELNTH>'), text);
    assert.ok(text.includes(`<DATE-OBS>2026-11-23T00:00:0${i}.000</DATE-OBS>`), text);
    // The xml box sits between jp2h and jp2c.
    assert.equal(
      c.boxes.map((b) => b.type),
      ['jP  ', 'ftyp', 'jp2h', 'xml ', 'jp2c'],
    );
    assert.equal(c.imageHeader && [c.imageHeader.width, c.imageHeader.height, c.imageHeader.nc, c.imageHeader.bitDepth], [128, 128, 1, 8]);
  }
});

files('regenerating with opj_compress reproduces every movie file byte for byte', () => {
  if (!findTool('opj_compress')) {
    console.log('  [movies] opj_compress not on PATH: byte comparison skipped');
    return;
  }
  const version = toolVersion('opj_compress');
  if (version !== manifest.openjpeg) {
    console.log(`  [movies] opj_compress is OpenJPEG ${version ?? 'unknown'}, fixtures were made with ${manifest.openjpeg}: byte comparison skipped`);
    return;
  }
  const out = path.join(tmp, 'regen');
  const fresh = generateMovieFixtures(out);
  assert.equal(fresh, manifest);
  const made = listFiles(out).sort();
  assert.equal(made, listFiles(MOVIE).sort());
  for (const f of made) {
    const a = readFileSync(path.join(out, f));
    const b = readFileSync(path.join(MOVIE, f));
    assert.ok(a.equals(b), `${f} differs from the committed copy (regenerate: node --import tsx fixtures-gen/movies.ts)`);
  }
});

files.run();

const jpx = suite('movie.jpx: embedded codestreams');

jpx.before(() => {
  tmp = realpathSync(mkdtempSync(path.join(tmpdir(), 'jpip-movie-test-')));
  cacheDir = path.join(tmp, 'cache');
});

jpx.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

jpx('readContainer lists 3 embedded codestreams, the very bytes of the frames', () => {
  const bytes = bytesOf(MOVIE_JPX);
  const c = readContainer(bytes, { file: MOVIE_JPX });
  assert.is(c.format, 'jpx');
  assert.is(c.fileType?.brand, 'jpx ');
  assert.is(c.codestreams.length, N);
  assert.is(findBoxes(c.boxes, 'jpch').length, N);
  assert.is(findBoxes(c.boxes, 'jplh').length, N);
  assert.is(findBox(c.boxes, 'dtbl'), undefined);
  c.codestreams.forEach((cs, i) => {
    assert.is(cs.kind, 'embedded');
    assert.is(cs.index, i);
    const embedded = bytes.subarray(cs.offset, cs.offset + cs.length);
    assert.ok(Buffer.from(embedded).equals(Buffer.from(frameCodestream(i).bytes)), `codestream ${i} = jp2c of ${framePath(i)}`);
  });
});

jpx('ImageIndex indexes every codestream (PLT), packets fill the tile-parts', () => {
  const img = ImageIndex.open(path.join(MOVIE, MOVIE_JPX), { cacheDir });
  try {
    assert.is(img.codestreamCount, N);
    for (let i = 0; i < N; i++) {
      const ix = img.codestream(i);
      assert.is(ix.lengthSource, 'plt', `codestream ${i}`);
      const tables = packetTables(ix);
      const packets = tables.reduce((n, t) => n + t.lengths.length, 0);
      assert.ok(packets > 0, `codestream ${i}: ${packets} packets`);
      // 1 tile, 3 layers, 4 resolutions: 4 precincts at r=3 and 1 below: (4+1+1+1) x 3 = 21.
      assert.is(packets, 21, `codestream ${i} packet count`);
      const bodies = ix.codestream.tileParts.reduce((n, tp) => n + tp.bodyLength, 0);
      assert.is(tables.reduce((n, t) => n + t.lengths.reduce((a, b) => a + b, 0), 0), bodies, `codestream ${i}: packets cover the bodies`);
      const len = img.container.codestreams[i]!.length;
      for (const t of tables) t.offsets.forEach((o, k) => assert.ok(o + t.lengths[k]! <= len, `packet ${k} inside codestream ${i}`));
    }
  } finally {
    img.close();
  }
  // A second open finds the cache file fresh and gives the same tables.
  const again = ImageIndex.open(path.join(MOVIE, MOVIE_JPX), { cacheDir });
  try {
    assert.is(again.cacheStatus, 'hit');
    const first = ImageIndex.open(path.join(MOVIE, MOVIE_JPX));
    try {
      for (let i = 0; i < N; i++) assert.equal(packetTables(again.codestream(i)), packetTables(first.codestream(i)), `codestream ${i} from cache`);
    } finally {
      first.close();
    }
  } finally {
    again.close();
  }
});

jpx.run();

const linked = suite('linked.jpx: fragment tables into the frame files');

linked.before(() => {
  tmp = realpathSync(mkdtempSync(path.join(tmpdir(), 'jpip-movie-test-')));
  cacheDir = path.join(tmp, 'cache');
});

linked.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

linked('readContainer lists 3 fragment codestreams with escaped relative urls', () => {
  const c = containerOf(LINKED_JPX);
  assert.is(c.format, 'jpx');
  assert.is(findBoxes(c.boxes, 'jp2c').length, 0);
  assert.is(findBoxes(c.boxes, 'ftbl').length, N);
  assert.is(c.dataReferences.length, N);
  assert.is(c.codestreams.length, N);
  c.codestreams.forEach((cs, i) => {
    assert.is(cs.kind, 'fragment');
    if (cs.kind !== 'fragment') return;
    assert.is(cs.url, `frames/frame%2000${i}.jp2`);
    assert.is(cs.dataReference, i + 1);
    const f = frameCodestream(i);
    assert.is(cs.offset, f.offset);
    assert.is(cs.length, f.length);
  });
});

linked('resolveCodestreams (root = movie dir) finds the frame files, escaped spaces decoded, at their jp2c content', () => {
  const c = containerOf(LINKED_JPX);
  const locs = resolveCodestreams(c, { root: MOVIE, containingFile: path.join(MOVIE, LINKED_JPX) });
  assert.is(locs.length, N);
  locs.forEach((loc, i) => {
    assert.is(loc.index, i);
    assert.is(loc.path, realpathSync(path.join(FRAMES, `frame 00${i}.jp2`)));
    assert.ok(path.basename(loc.path).includes(' '), loc.path);
    const file = new Uint8Array(readFileSync(loc.path));
    const f = frameCodestream(i);
    assert.is(loc.offset, f.offset);
    assert.is(loc.length, f.length);
    assert.ok(Buffer.from(file.subarray(loc.offset, loc.offset + loc.length)).equals(Buffer.from(f.bytes)), `codestream ${i} bytes`);
  });
});

linked('each resolved frame indexes to the same packet tables as the embedded codestream of movie.jpx', () => {
  const c = containerOf(LINKED_JPX);
  const locs = resolveCodestreams(c, { root: MOVIE, containingFile: path.join(MOVIE, LINKED_JPX) });
  const movie = ImageIndex.open(path.join(MOVIE, MOVIE_JPX), { cacheDir });
  try {
    locs.forEach((loc, i) => {
      const frame = ImageIndex.open(loc.path, { cacheDir });
      try {
        assert.is(frame.codestreamCount, 1);
        const ref = frame.container.codestreams[0]!;
        assert.is(ref.offset, loc.offset);
        assert.is(ref.length, loc.length);
        const a = packetTables(frame.codestream(0));
        const b = packetTables(movie.codestream(i));
        assert.ok(a[0]!.lengths.length > 0);
        // Offsets are from the codestream start, so a frame at offset 255 of its
        // JP2 and the same codestream deep inside movie.jpx give equal tables.
        assert.equal(a, b, `frame ${i}`);
      } finally {
        frame.close();
      }
    });
  } finally {
    movie.close();
  }
});

linked('ImageIndex on linked.jpx lists the codestreams but refuses to index them itself (UNSUPPORTED)', () => {
  const img = ImageIndex.open(path.join(MOVIE, LINKED_JPX), { cacheDir });
  try {
    assert.is(img.codestreamCount, N);
    for (let i = 0; i < N; i++) {
      assert.is(img.layout(i), undefined);
      const err = throwsCode(() => img.codestream(i), J2K_ERROR.UNSUPPORTED, `codestream ${i}`);
      assert.ok(err.message.includes(`frame%2000${i}.jp2`), err.message);
    }
  } finally {
    img.close();
  }
});

linked('references resolve against the directory of linked.jpx: where frames/ is missing they fail with a typed error', () => {
  const c = containerOf(LINKED_JPX);
  // Root = frames/, with the linked file published inside it: frames/frames/... does not exist.
  throwsCode(
    () => resolveCodestreams(c, { root: FRAMES, containingFile: path.join(FRAMES, LINKED_JPX) }),
    J2K_ERROR.MISSING_REFERENCE,
    'root frames/, linked.jpx inside it',
  );
  // A copy of linked.jpx in a directory without frames/.
  const alone = path.join(tmp, 'alone');
  const copy = path.join(alone, LINKED_JPX);
  mkdirSync(alone, { recursive: true });
  copyFileSync(path.join(MOVIE, LINKED_JPX), copy);
  throwsCode(() => resolveCodestreams(readContainer(bytesOf(LINKED_JPX)), { root: alone, containingFile: copy }), J2K_ERROR.MISSING_REFERENCE, 'copy without frames');
  // linked.jpx itself with a root that does not hold the frames: the targets are outside it.
  throwsCode(() => resolveCodestreams(c, { root: alone, containingFile: path.join(MOVIE, LINKED_JPX) }), J2K_ERROR.BAD_REFERENCE, 'root elsewhere');
  // Root = frames/ with linked.jpx outside it: a file outside the root is not trusted,
  // even though its references would land inside frames/.
  throwsCode(() => resolveCodestreams(c, { root: FRAMES, containingFile: path.join(MOVIE, LINKED_JPX) }), J2K_ERROR.BAD_REFERENCE, 'linked file outside the root');
});

/** linked.jpx with the location of the first url box rewritten in place (NUL-padded, so no length changes). */
function rewriteFirstUrl(location: string): Uint8Array {
  const bytes = bytesOf(LINKED_JPX).slice();
  const old = new TextEncoder().encode('frames/frame%20000.jp2');
  const neu = new TextEncoder().encode(location);
  assert.ok(neu.length <= old.length, 'the new location fits');
  const at = Buffer.from(bytes).indexOf(Buffer.from(old));
  assert.ok(at > 0, 'url found');
  bytes.fill(0, at, at + old.length);
  bytes.set(neu, at);
  return bytes;
}

linked('a copy whose url is rewritten to climb out of the root is refused (BAD_REFERENCE)', () => {
  // ../matrix.json from test/fixtures/movie is test/fixtures/matrix.json: it exists, but outside the root.
  assert.ok(existsSync(path.join(MOVIE, '..', 'matrix.json')));
  for (const url of ['../matrix.json', '../../matrix.json', 'frames/../../x.jp2', '/etc/passwd', 'file:///etc/passwd']) {
    const c = readContainer(rewriteFirstUrl(url), { file: 'rewritten.jpx' });
    assert.is(c.codestreams[0]!.kind === 'fragment' && c.codestreams[0]!.url, url, 'the rewritten location reads back');
    const err = throwsCode(
      () => resolveCodestreams(c, { root: MOVIE, containingFile: path.join(MOVIE, LINKED_JPX) }),
      J2K_ERROR.BAD_REFERENCE,
      url,
    );
    assert.ok(err.message.includes('outside the image root'), err.message);
  }
  // The same rewrite staying inside the root is accepted (frame 1's file, codestream 0's range fits in it).
  const ok = readContainer(rewriteFirstUrl('frames/frame%20001.jp2'));
  const locs = resolveCodestreams(ok, { root: MOVIE, containingFile: path.join(MOVIE, LINKED_JPX) });
  assert.is(path.basename(locs[0]!.path), 'frame 001.jp2');
});

linked.run();
