import { cpSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildCli } from '../bin/cli.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { VIEWER_CSP, listViewerImages, type Listing } from '../server/viewer.js';
import { buildViewer } from '../viewer/build.mjs';
import { clampView, fitView, guessSizes, panView, windowOf, zoomView } from '../viewer/view.js';
import { FIXTURES } from './helpers.js';

/**
 * The viewer's server side: the listing of the root (paths relative to the
 * root only, nothing outside it, no server path anywhere in the answer), the
 * built assets with their CSP and caching headers, requests that try to
 * leave the viewer's files, `--no-viewer`, and the page's window model.
 */

const SMALL = resolve(FIXTURES, '..', '..', 'fixtures', 'small');
const test = suite('viewer');

let root = '';
let outside = '';
let srv: JpipServer | undefined;
let base = '';

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const u = new URL(base);
  return new Promise((res, rej) => {
    // Raw paths (with .. and %2f) must reach the server as written: no URL normalising.
    const req = request({ host: u.hostname, port: u.port, path, headers, timeout: 10_000 }, (r) => {
      const parts: Buffer[] = [];
      r.on('data', (c: Buffer) => parts.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(parts) }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
    req.on('error', rej);
    req.end();
  });
}

test.before(async () => {
  await buildViewer();
  root = mkdtempSync(join(tmpdir(), 'viewer-root-'));
  outside = mkdtempSync(join(tmpdir(), 'viewer-outside-'));
  cpSync(join(SMALL, 'movie-00.jpx'), join(root, 'movie-00.jpx'));
  cpSync(join(SMALL, 'frames'), join(root, 'frames'), { recursive: true });
  mkdirSync(join(root, 'stills', 'deep'), { recursive: true });
  cpSync(join(FIXTURES, 'g128-default.j2k'), join(root, 'stills', 'deep', 'g 128.j2k'));
  cpSync(join(FIXTURES, 'rgb128-cprl-mct0-tpc.j2k'), join(root, 'stills', 'rgb.j2k'));
  writeFileSync(join(root, 'stills', 'not-really.jp2'), 'this is not JPEG 2000');
  cpSync(join(FIXTURES, 'g64-jpip-rpcl.jp2'), join(outside, 'secret.jp2'));
  symlinkSync(join(outside, 'secret.jp2'), join(root, 'link-out.jp2'));
  symlinkSync(outside, join(root, 'dir-out'));
  srv = createJpipServer({ root, port: 0, logLevel: 'error' });
  base = await srv.listen();
});

test.after(async () => {
  await srv?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

test('the listing names every image and movie under the root, relative to it, and nothing outside', async () => {
  const r = await get('/viewer/api/list');
  assert.is(r.status, 200);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.is(r.headers['cache-control'], 'no-store');
  const text = r.body.toString('utf8');
  assert.not.ok(text.includes(root), 'the root path is not in the answer');
  assert.not.ok(text.includes(outside), 'no path outside the root');
  assert.not.ok(text.includes(tmpdir()), 'no server path at all');
  const listing = JSON.parse(text) as Listing;
  const paths = listing.images.map((i) => i.path);
  assert.equal(paths, ['frames/frame-000.jp2', 'frames/frame-001.jp2', 'frames/frame-002.jp2', 'frames/frame-003.jp2', 'movie-00.jpx', 'stills/deep/g 128.j2k', 'stills/rgb.j2k']);
  assert.is(listing.unreadable, 1, 'not-really.jp2');
  assert.is(listing.truncated, false);
  const movie = listing.images.find((i) => i.path === 'movie-00.jpx')!;
  assert.equal({ kind: movie.kind, frames: movie.frames, width: movie.width, height: movie.height, components: movie.components }, { kind: 'movie', frames: 30, width: 1024, height: 1024, components: 1 });
  assert.is(movie.frameFiles?.length, 30);
  assert.is(movie.frameFiles![0], 'frames/frame-000.jp2');
  for (const f of movie.frameFiles!) assert.ok(paths.includes(f), `${f} is listed itself`);
  const still = listing.images.find((i) => i.path === 'stills/rgb.j2k')!;
  assert.equal({ kind: still.kind, frames: still.frames, components: still.components, width: still.width }, { kind: 'image', frames: 1, components: 3, width: 128 });
  assert.is(still.frameFiles, undefined);
  // Bounded: a cap on entries says it truncated.
  const capped = listViewerImages(root, { maxEntries: 2 });
  assert.is(capped.truncated, true);
  assert.is(capped.images.length, 2);
});

test('the page, the bundle and the wasm come with a self-only CSP and cache headers', async () => {
  const page = await get('/viewer/');
  assert.is(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.is(page.headers['content-security-policy'], VIEWER_CSP);
  assert.match(VIEWER_CSP, /default-src 'self'/);
  assert.not.match(VIEWER_CSP, /https?:|\*|'unsafe-eval'|'unsafe-inline'/);
  assert.is(page.headers['cache-control'], 'no-cache');
  const html = page.body.toString('utf8');
  const refs = [...html.matchAll(/(?:href|src|content)="((?:app\.js|viewer\.css|openjpeg\.wasm)\?v=[\w-]+)"/g)].map((m) => m[1]!);
  assert.is(refs.length, 3, html);
  for (const ref of refs) {
    const a = await get(`/viewer/${ref}`);
    assert.is(a.status, 200, ref);
    assert.is(a.headers['cache-control'], 'public, max-age=31536000, immutable', ref);
    assert.is(a.headers['content-security-policy'], VIEWER_CSP);
    const etag = String(a.headers['etag']);
    const again = await get(`/viewer/${ref.split('?')[0]}`, { 'If-None-Match': etag });
    assert.is(again.status, 304, `${ref} revalidates`);
    assert.is(again.headers['cache-control'], 'no-cache', 'without ?v= it is revalidated');
  }
  const wasm = await get('/viewer/openjpeg.wasm');
  assert.is(wasm.headers['content-type'], 'application/wasm');
  assert.equal([...wasm.body.subarray(0, 4)], [0, 0x61, 0x73, 0x6d], 'a WebAssembly module');
  const redirect = await get('/viewer');
  assert.is(redirect.status, 308);
  assert.is(redirect.headers['location'], '/viewer/');
});

test('requests cannot leave the viewer files', async () => {
  for (const p of [
    '/viewer/../movie-00.jpx',
    '/viewer/..%2f..%2fetc%2fpasswd',
    '/viewer/%2e%2e/%2e%2e/etc/passwd',
    '/viewer/assets.json',
    '/viewer/.%2e/package.json',
    '/viewer/api/list/../../../etc/passwd',
    '/viewer/api/../../server/viewer.ts',
    '/viewer/app.js/..',
    '/viewer/%00',
  ]) {
    const r = await get(p);
    assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
    assert.not.ok(r.body.toString('utf8').includes('root:'), p);
  }
  // A listing question cannot name another root.
  const r = await get('/viewer/api/list?root=/etc');
  assert.not.ok(r.body.toString('utf8').includes('passwd'));
  const post = await new Promise<number>((res, rej) => {
    const u = new URL(base);
    const req = request({ host: u.hostname, port: u.port, path: '/viewer/', method: 'DELETE', timeout: 5000 }, (x) => {
      x.resume();
      res(x.statusCode ?? 0);
    });
    req.on('error', rej);
    req.end();
  });
  assert.is(post, 405);
});

test('--no-viewer turns the viewer off (404), and JPIP still works', async () => {
  const out: string[] = [];
  await buildCli({ out: (s: string) => out.push(s), err: () => {}, tty: false }).parseAsync(['serve', '--root', root, '--no-viewer', '--print-config']);
  const cfg = JSON.parse(out.join('\n')) as { viewer: boolean };
  assert.is(cfg.viewer, false);
  const out2: string[] = [];
  await buildCli({ out: (s: string) => out2.push(s), err: () => {}, tty: false }).parseAsync(['serve', '--root', root, '--print-config']);
  assert.is((JSON.parse(out2.join('\n')) as { viewer: boolean }).viewer, true, 'on by default');
  const off = createJpipServer({ root, port: 0, logLevel: 'error', viewer: false });
  try {
    const url = new URL(await off.listen());
    for (const p of ['/viewer/', '/viewer/api/list', '/viewer/app.js']) {
      const r = await new Promise<{ status: number; body: string }>((res, rej) => {
        const req = request({ host: url.hostname, port: url.port, path: p, timeout: 5000 }, (x) => {
          let b = '';
          x.on('data', (c: Buffer) => (b += c.toString()));
          x.on('end', () => res({ status: x.statusCode ?? 0, body: b }));
        });
        req.on('error', rej);
        req.end();
      });
      assert.is(r.status, 404, p);
      assert.match(r.body, /turned off/);
    }
    const jpip = await fetch(`${url.origin}/movie-00.jpx?cnew=http&type=jpp-stream&fsiz=64,64&len=2000`, { signal: AbortSignal.timeout(10_000) });
    assert.is(jpip.status, 200);
    await jpip.arrayBuffer();
  } finally {
    await off.close();
  }
});

test('window model: fit, zoom about a point, pan, all within the frame', () => {
  const sizes = guessSizes(1024, 1024, 5);
  assert.equal(sizes.map((s) => s.w), [1024, 512, 256, 128, 64, 32]);
  const canvas = { w: 512, h: 512 };
  const fit = fitView(sizes, canvas);
  assert.equal(fit, { d: 1, x: 0, y: 0 });
  assert.equal(windowOf(fit, sizes, canvas), { fsiz: { w: 512, h: 512 }, roff: { x: 0, y: 0 }, rsiz: { w: 512, h: 512 } });
  // Zoom in at the bottom-right corner: the corner stays under the cursor.
  const z = zoomView(fit, 1, 512, 512, sizes, canvas);
  assert.equal(z, { d: 0, x: 512, y: 512 });
  assert.equal(zoomView(z, 1, 0, 0, sizes, canvas), z, 'no finer level than full size');
  // Zoom in at the centre, then out again.
  const c = zoomView(fit, 1, 256, 256, sizes, canvas);
  assert.equal(c, { d: 0, x: 256, y: 256 });
  assert.equal(zoomView(c, -1, 256, 256, sizes, canvas), { d: 1, x: 0, y: 0 });
  assert.equal(panView(c, 100, -50, sizes, canvas), { d: 0, x: 156, y: 306 });
  assert.equal(panView(c, 10_000, 10_000, sizes, canvas), { d: 0, x: 0, y: 0 }, 'clamped');
  assert.equal(clampView({ d: 9, x: -3, y: 7 }, sizes, canvas), { d: 5, x: 0, y: 0 });
  // A frame smaller than the canvas: rsiz is the frame.
  assert.equal(windowOf({ d: 3, x: 0, y: 0 }, sizes, canvas).rsiz, { w: 128, h: 128 });
  const odd = guessSizes(1000, 600, 3);
  assert.equal(odd, [{ w: 1000, h: 600 }, { w: 500, h: 300 }, { w: 250, h: 150 }, { w: 125, h: 75 }]);
  assert.equal(fitView(odd, canvas), { d: 1, x: 0, y: 0 });
  assert.equal(windowOf(zoomView({ d: 1, x: 0, y: 0 }, 1, 512, 300, odd, canvas), odd, canvas), { fsiz: { w: 1000, h: 600 }, roff: { x: 488, y: 88 }, rsiz: { w: 512, h: 512 } });
});

test.run();
