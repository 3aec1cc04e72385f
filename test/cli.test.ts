import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultCacheDir, main, type CliIo } from '../bin/cli.js';
import { FIXTURES, fixtures } from './helpers.js';

const cli = suite('jpip-bench CLI');

async function run(args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (s) => void (out += `${s}\n`), err: (s) => void (err += `${s}\n`), tty: false };
  const before = process.exitCode;
  process.exitCode = 0;
  await main(args, io);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, err, code };
}

cli('inspect prints the box tree, the parameters and the packet count', async () => {
  const f = fixtures().find((x) => x.ext === 'jp2')!;
  const r = await run(['inspect', join(FIXTURES, f.file)]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /JP2/);
  assert.match(r.out, /jp2h/);
  assert.match(r.out, /jp2c/);
  assert.match(r.out, /progression\s+\w{4}, \d+ layers/);
  assert.match(r.out, /packets\s+\d+ \(lengths from/);
});

cli('inspect --json --packets lists every packet', async () => {
  const f = fixtures().find((x) => x.args.includes('-PLT'))!;
  const r = await run(['inspect', join(FIXTURES, f.file), '--json', '--packets']);
  assert.is(r.code, 0, r.err);
  const report = JSON.parse(r.out);
  const d = report.codestreams[0].details;
  assert.is(d.packetSource, 'plt');
  assert.is(d.packets.length, d.packetCount);
  assert.ok(d.packets.every((p: { length: number; offset: number }) => p.length > 0 && p.offset > 0));
});

cli('inspect of a file that is not JPEG 2000 is one clear line and exit code 1', async () => {
  const r = await run(['inspect', join(FIXTURES, 'matrix.json')]);
  assert.is(r.code, 1);
  assert.match(r.err, /J2K_ERR_NOT_JPEG2000/);
  assert.match(r.err, /matrix\.json/);
});

cli('inspect of a missing file says so', async () => {
  const r = await run(['inspect', join(FIXTURES, 'nope.jp2')]);
  assert.is(r.code, 1);
  assert.match(r.err, /nope\.jp2/);
});

cli('index builds a cache file per image and reports them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'jpip-cli-'));
  try {
    const root = join(dir, 'images');
    cpSync(FIXTURES, root, { recursive: true });
    const cache = join(dir, 'cache');
    const r = await run(['index', root, '--cache', cache, '--json']);
    assert.is(r.code, 0, r.err + r.out);
    const s = JSON.parse(r.out);
    assert.ok(s.files >= fixtures().length);
    assert.is(s.failed.length, 0, JSON.stringify(s.failed));
    assert.is(readdirSync(cache).length, s.files);
    const again = JSON.parse((await run(['index', root, '--cache', cache, '--json'])).out);
    assert.is(again.fresh, s.files);
    const text = await run(['index', root, '--cache', cache]);
    assert.match(text.out, /indexed \d+ of \d+ files/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

cli('every command has --help, and a wrong command is refused', async () => {
  for (const cmd of ['inspect', 'index', 'serve']) {
    const r = await run([cmd, '--help']);
    assert.match(r.out, new RegExp(`jpip-bench ${cmd}`));
  }
  const bad = await run(['frobnicate']);
  assert.is(bad.code, 2);
});

cli('a failed .check() is a usage error: one line, exit code 2; runtime errors stay exit code 1', async () => {
  for (const [args, re] of [
    [['fixtures'], /give --out DIR/],
    [['fixtures', '--out', join(tmpdir(), 'x'), '--verify', join(tmpdir(), 'y')], /do not go together/],
  ] as const) {
    const r = await run([...args]);
    assert.is(r.code, 2, r.err);
    assert.match(r.err, re);
    assert.match(r.err, /^jpip-bench: /);
    assert.not.match(r.err, /\n\s+at /, 'no stack');
  }
  const missing = await run(['inspect', join(tmpdir(), 'no-such-file.jp2')]);
  assert.is(missing.code, 1, 'a runtime error is not a usage error');
});

cli('the cache directory defaults to $JPIP_BENCH_CACHE, then XDG, then ~/.cache', () => {
  assert.is(defaultCacheDir({ JPIP_BENCH_CACHE: '/x' }), '/x');
  assert.is(defaultCacheDir({ XDG_CACHE_HOME: '/y' }), '/y/jpip-bench/index');
  assert.match(defaultCacheDir({}), /\.cache\/jpip-bench\/index$/);
});

cli('serve prints its URL, answers, and stops cleanly on SIGTERM', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'jpip-serve-'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'jpip-bench.ts'), 'serve', '--root', FIXTURES, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // The child's coverage goes elsewhere: c8 merges a child's report of files the parent also ran badly
    // (it lowers their count), and Node passes NODE_V8_COVERAGE on to children when it is left out.
    env: { ...process.env, NODE_V8_COVERAGE: join(scratch, 'coverage'), JPIP_BENCH_CACHE: join(scratch, 'cache') },
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /at (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 15000).unref();
    });
    const health = await fetch(`${url}/health`);
    assert.is(health.status, 200);
    const img = await fetch(`${url}/g128-default.j2k?fsiz=16,16&len=1000`);
    assert.is(img.headers.get('content-type'), 'image/jpp-stream');
    await img.arrayBuffer();
  } finally {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.is(await exited, 0);
    rmSync(scratch, { recursive: true, force: true });
  }
});

cli.run();
