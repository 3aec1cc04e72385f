import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { CodestreamRef } from '../jpeg2000/boxes.js';
import { J2K_ERROR } from '../jpeg2000/errors.js';
import { decodeReference, encodeReference, fileUrl, resolveCodestreams, resolveReference } from '../jpeg2000/linked.js';
import { throwsCode } from './helpers.js';

/**
 * tmp/
 *   root/  movie.jpx, a.jp2, frame 001.jp2, é t.jp2, dir.jp2/ (a directory)
 *          sub/ b.jp2, inner.jpx, ln-in.jp2 -> ../a.jp2, ln-out.jp2 -> ../../outside/x.jp2
 *          out-dir -> ../outside (directory symlink)
 *   outside/ x.jp2
 */
let tmp = '';
let root = '';
let jpx = '';
let subJpx = '';

const s = suite('resolveReference');

s.before(() => {
  tmp = realpathSync(mkdtempSync(path.join(tmpdir(), 'linked-test-')));
  root = path.join(tmp, 'root');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  mkdirSync(path.join(root, 'dir.jp2'));
  mkdirSync(path.join(tmp, 'outside'));
  for (const f of ['movie.jpx', 'a.jp2', 'frame 001.jp2', 'é t.jp2', 'sub/b.jp2', 'sub/inner.jpx', '../outside/x.jp2']) {
    writeFileSync(path.join(root, f), '0123456789');
  }
  symlinkSync('../a.jp2', path.join(root, 'sub/ln-in.jp2'));
  symlinkSync('../../outside/x.jp2', path.join(root, 'sub/ln-out.jp2'));
  symlinkSync('../outside', path.join(root, 'out-dir'));
  jpx = path.join(root, 'movie.jpx');
  subJpx = path.join(root, 'sub/inner.jpx');
});

s.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const at = () => ({ root, containingFile: jpx });

s('relative names, sub-directories, ./ and ../ inside the root', () => {
  assert.is(resolveReference('a.jp2', at()), path.join(root, 'a.jp2'));
  assert.is(resolveReference('./a.jp2', at()), path.join(root, 'a.jp2'));
  assert.is(resolveReference('sub/b.jp2', at()), path.join(root, 'sub/b.jp2'));
  assert.is(resolveReference('../a.jp2', { root, containingFile: subJpx }), path.join(root, 'a.jp2'));
  assert.is(resolveReference('b.jp2', { root, containingFile: subJpx }), path.join(root, 'sub/b.jp2'));
  assert.is(resolveReference('sub/../a.jp2', at()), path.join(root, 'a.jp2'));
});

s('percent escapes and UTF-8 names', () => {
  assert.is(resolveReference('frame%20001.jp2', at()), path.join(root, 'frame 001.jp2'));
  assert.is(resolveReference('frame 001.jp2', at()), path.join(root, 'frame 001.jp2'));
  assert.is(resolveReference('%C3%A9%20t.jp2', at()), path.join(root, 'é t.jp2'));
  assert.is(resolveReference('%c3%a9%20t.jp2', at()), path.join(root, 'é t.jp2'));
  assert.is(resolveReference('é%20t.jp2', at()), path.join(root, 'é t.jp2'));
  assert.is(resolveReference('%61.jp2', at()), path.join(root, 'a.jp2'));
});

s('file:// URLs', () => {
  const a = path.join(root, 'a.jp2');
  assert.is(resolveReference(`file://${a}`, at()), a);
  assert.is(resolveReference(`file://localhost${a}`, at()), a);
  assert.is(resolveReference(`FILE://LocalHost${a}`, at()), a);
  assert.is(resolveReference(`file:${a}`, at()), a);
  assert.is(resolveReference('file://./a.jp2', at()), a);
  assert.is(resolveReference(fileUrl(path.join(root, 'frame 001.jp2')), at()), path.join(root, 'frame 001.jp2'));
  assert.is(resolveReference(fileUrl(path.join(root, 'é t.jp2')), at()), path.join(root, 'é t.jp2'));
  assert.is(resolveReference(a, at()), a); // a bare absolute path inside the root
});

s('refuses references escaping the root', () => {
  for (const url of [
    '../x.jp2',
    '../outside/x.jp2',
    '%2e%2e/outside/x.jp2',
    '%2E%2E/%2e%2e/etc/passwd',
    'sub/../../outside/x.jp2',
    'file:///etc/passwd',
    'file://localhost/etc/passwd',
    '/etc/passwd',
    `file://${root}/../outside/x.jp2`,
    `file://${root}/%2e%2e/outside/x.jp2`,
    'file://./../outside/x.jp2',
  ]) {
    throwsCode(() => resolveReference(url, at()), J2K_ERROR.BAD_REFERENCE, url);
  }
  // Escapes are refused whether or not the target exists.
  throwsCode(() => resolveReference('../nope/none.jp2', at()), J2K_ERROR.BAD_REFERENCE);
  // A root given with a trailing slash or unnormalised still works.
  assert.is(resolveReference('a.jp2', { root: root + '/sub/..', containingFile: jpx }), path.join(root, 'a.jp2'));
  // A sibling directory sharing the root's name prefix is outside.
  mkdirSync(root + '2', { recursive: true });
  writeFileSync(path.join(root + '2', 'y.jp2'), 'y');
  throwsCode(() => resolveReference('../root2/y.jp2', at()), J2K_ERROR.BAD_REFERENCE);
});

s('symbolic links: inside allowed (real path returned), outside refused', () => {
  assert.is(resolveReference('sub/ln-in.jp2', at()), path.join(root, 'a.jp2'));
  throwsCode(() => resolveReference('sub/ln-out.jp2', at()), J2K_ERROR.BAD_REFERENCE);
  throwsCode(() => resolveReference('out-dir/x.jp2', at()), J2K_ERROR.BAD_REFERENCE);
  // Through an outside-pointing directory even a missing file is refused (no existence oracle).
  throwsCode(() => resolveReference('out-dir/missing.jp2', at()), J2K_ERROR.BAD_REFERENCE);
});

s('refuses other schemes, hosts, NUL bytes and bad escapes', () => {
  for (const url of [
    'http://example.com/a.jp2',
    'https://x/a.jp2',
    'ftp://x/a.jp2',
    'data:,abc',
    'C:/images/a.jp2',
    'file://otherhost/a.jp2',
    'file://',
    'file:',
    '',
    'a.jp2\0',
    'a%00.jp2',
    'a%zz.jp2',
    'a%4.jp2',
    'a.jp2%',
    '%C3%28.jp2',
    '%FF.jp2',
    'sub%2Fb.jp2',
    '..%2Foutside%2Fx.jp2',
  ]) {
    throwsCode(() => resolveReference(url, at()), J2K_ERROR.BAD_REFERENCE, JSON.stringify(url));
  }
});

s('missing files, directories and roots', () => {
  throwsCode(() => resolveReference('none.jp2', at()), J2K_ERROR.MISSING_REFERENCE);
  throwsCode(() => resolveReference('sub/none/none.jp2', at()), J2K_ERROR.MISSING_REFERENCE);
  throwsCode(() => resolveReference('dir.jp2', at()), J2K_ERROR.MISSING_REFERENCE);
  throwsCode(() => resolveReference('a.jp2', { root: path.join(tmp, 'no-root'), containingFile: jpx }), J2K_ERROR.MISSING_REFERENCE);
});

s('decodeReference / encodeReference / fileUrl', () => {
  assert.equal(decodeReference('frame%20001.jp2'), { kind: 'relative', path: 'frame 001.jp2' });
  assert.equal(decodeReference('file:///a/b%20c'), { kind: 'absolute', path: '/a/b c' });
  assert.equal(decodeReference('file://./x'), { kind: 'relative', path: './x' });
  assert.is(encodeReference('frame 001.jp2'), 'frame%20001.jp2');
  assert.is(encodeReference('sub dir/é#?%(1).jp2'), 'sub%20dir/%C3%A9%23%3F%25%281%29.jp2');
  for (const name of ['a b.jp2', 'é/ü.jp2', "x!*'();:@&=+$,.jp2", '100%.jp2', '#?.jp2']) {
    assert.is(decodeReference(encodeReference(name)).path, name);
  }
  assert.is(fileUrl('/a b/é.jp2'), 'file:///a%20b/%C3%A9.jp2');
  assert.equal(decodeReference(fileUrl('/x/100%#?.jp2')), { kind: 'absolute', path: '/x/100%#?.jp2' });
  assert.throws(() => fileUrl('rel.jp2'), RangeError);
  assert.throws(() => encodeReference('a\0b'), RangeError);
});

s('resolveCodestreams', () => {
  const refs: CodestreamRef[] = [
    { index: 0, kind: 'embedded', offset: 100, length: 50, boxIndex: 4 },
    { index: 1, kind: 'fragment', url: 'frame%20001.jp2', offset: 2, length: 8, dataReference: 1, boxIndex: 5 },
    { index: 2, kind: 'fragment', url: '', offset: 3, length: 4, dataReference: 0, boxIndex: 6 },
  ];
  assert.equal(resolveCodestreams(refs, at()), [
    { index: 0, path: jpx, offset: 100, length: 50 },
    { index: 1, path: path.join(root, 'frame 001.jp2'), offset: 2, length: 8 },
    { index: 2, path: jpx, offset: 3, length: 4 },
  ]);
  const past: CodestreamRef = { index: 0, kind: 'fragment', url: 'a.jp2', offset: 5, length: 6, dataReference: 1, boxIndex: 2 };
  throwsCode(() => resolveCodestreams([past], at()), J2K_ERROR.BAD_REFERENCE);
  const evil: CodestreamRef = { index: 0, kind: 'fragment', url: '../outside/x.jp2', offset: 0, length: 1, dataReference: 1, boxIndex: 2 };
  throwsCode(() => resolveCodestreams([evil], at()), J2K_ERROR.BAD_REFERENCE);
});

s.run();
