// Builds the browser viewer into dist/viewer/ (or the directory given as the
// first argument): the page, its stylesheet, one script bundle made by esbuild
// from viewer/main.ts (the client library, the jpip/ protocol layer and the
// WASM decoder's JavaScript), and the decoder's .wasm. The page names the other
// files with their hash (?v=...), and assets.json lists every file the server
// may serve. Run by `npm run build`.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** Same hash as server/viewer.ts computes for ETags and ?v=. */
const hashOf = (bytes) => createHash('sha256').update(bytes).digest('base64url').slice(0, 16);

export async function buildViewer(outDir = join(here, '..', 'dist', 'viewer')) {
  const out = resolve(outDir);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const result = await build({
    entryPoints: [join(here, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    // The decoder's Emscripten glue names these only on its Node path, never taken in a browser.
    external: ['fs', 'path'],
    write: false,
    logLevel: 'warning',
  });
  const js = result.outputFiles[0].contents;
  const require = createRequire(import.meta.url);
  const wasm = readFileSync(require.resolve('@cornerstonejs/codec-openjpeg/decodewasm'));
  const css = readFileSync(join(here, 'viewer.css'));
  const files = {
    'app.js': { bytes: js, type: 'text/javascript; charset=utf-8' },
    'openjpeg.wasm': { bytes: wasm, type: 'application/wasm' },
    'viewer.css': { bytes: css, type: 'text/css; charset=utf-8' },
  };
  let html = readFileSync(join(here, 'index.html'), 'utf8');
  for (const [name, f] of Object.entries(files)) html = html.replaceAll(`{{${name}}}`, `${name}?v=${hashOf(f.bytes)}`);
  if (/\{\{/.test(html)) throw new Error('viewer/index.html names a file the build does not make');
  files['index.html'] = { bytes: Buffer.from(html), type: 'text/html; charset=utf-8' };
  const manifest = { files: {} };
  for (const [name, f] of Object.entries(files)) {
    writeFileSync(join(tmp, name), f.bytes);
    manifest.files[name] = { type: f.type, bytes: f.bytes.length, hash: hashOf(f.bytes) };
  }
  writeFileSync(join(tmp, 'assets.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  // Swap the whole directory in, so a server never sees half a build.
  rmSync(out, { recursive: true, force: true });
  mkdirSync(dirname(out), { recursive: true });
  renameSync(tmp, out);
  return { dir: out, files: Object.fromEntries(Object.entries(manifest.files).map(([k, v]) => [k, v.bytes])) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  buildViewer(process.argv[2]).then(
    (r) => {
      const sizes = Object.entries(r.files).map(([k, v]) => `${k} ${(v / 1024).toFixed(0)} KiB`).join(', ');
      console.log(`viewer built in ${r.dir}: ${sizes}`);
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
