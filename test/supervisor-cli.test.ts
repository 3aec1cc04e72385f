import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES } from './helpers.js';

/**
 * `jpip-bench serve` as a user runs it: the start line with both pids and the
 * URL, --print-config, config errors, SIGHUP (reload) and SIGTERM (drain,
 * exit 0). Run from the sources under tsx; the supervisor then forks the
 * worker's .ts entry under tsx too (the build forks dist/server/worker-main.js).
 */
const cli = suite('jpip-bench serve: supervisor and worker processes');
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'jpip-bench.ts');
let scratch = '';

cli.before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'jpip-cli-'));
});
cli.after(() => rmSync(scratch, { recursive: true, force: true }));

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // Children's coverage goes elsewhere (see cli.test.ts); no JPIP_BENCH_* from the outside.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('JPIP_BENCH_')));
  return { ...base, NODE_V8_COVERAGE: join(scratch, 'coverage'), JPIP_BENCH_CACHE: join(scratch, 'cache'), ...extra };
}

cli('--print-config shows the effective config: defaults < file < environment < flags', () => {
  const file = join(scratch, 'print.json');
  writeFileSync(file, JSON.stringify({ root: FIXTURES, maxSessions: 5, port: 1 }));
  const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, 'serve', '--config', file, '--port', '3', '--print-config'], {
    env: env({ JPIP_BENCH_PORT: '2', JPIP_BENCH_MAX_CONNECTIONS: '9' }),
    encoding: 'utf8',
  });
  assert.is(r.status, 0, r.stderr);
  const c = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.is(c['root'], FIXTURES);
  assert.is(c['maxSessions'], 5);
  assert.is(c['maxConnections'], 9);
  assert.is(c['port'], 3);
  assert.is(c['cacheDir'], join(scratch, 'cache'), 'the CLI keeps its default cache directory');
});

cli('an invalid config stops the start with every problem named, exit 1', () => {
  const file = join(scratch, 'bad.json');
  writeFileSync(file, JSON.stringify({ root: FIXTURES, maxLen: 5, keepAliveSeconds: 0 }));
  const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, 'serve', '--config', file], { env: env(), encoding: 'utf8' });
  assert.is(r.status, 1);
  assert.match(r.stderr, /invalid configuration \(file .*bad\.json\)/);
  assert.match(r.stderr, /maxLen: unknown key/);
  assert.match(r.stderr, /keepAliveSeconds: expected a number between 1 and 86400, got 0/);
});

cli('serve --quiet prints one JSON line (pids, URL); SIGHUP reloads the config; SIGTERM drains and exits 0', async () => {
  const file = join(scratch, 'serve.json');
  writeFileSync(file, JSON.stringify({ root: FIXTURES, port: 0, logLevel: 'error', stateDir: join(scratch, 'state') }));
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, 'serve', '--config', file, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'], env: env() });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const held: Socket[] = [];
  try {
    const t0 = Date.now();
    while (!out.includes('\n') && Date.now() - t0 < 15000) await new Promise((r) => setTimeout(r, 20));
    const start = JSON.parse(out.split('\n')[0]!) as { supervisor: number; worker: number; url: string };
    assert.is(start.supervisor, child.pid);
    assert.type(start.worker, 'number');
    assert.match(start.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = (await (await fetch(`${start.url}/health`)).json()) as { pid: number };
    assert.is(health.pid, start.worker, 'the worker answers');

    // Reload with a connection limit of 1: a second connection gets 503.
    writeFileSync(file, JSON.stringify({ root: FIXTURES, port: 0, logLevel: 'error', stateDir: join(scratch, 'state'), maxConnections: 1, retryAfterSeconds: 9 }));
    child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    const port = Number(new URL(start.url).port);
    const first = connect(port, '127.0.0.1');
    first.on('error', () => {});
    held.push(first);
    await new Promise((r) => first.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    const answer = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('error', () => {});
      s.on('close', () => resolve(data));
    });
    assert.match(answer, /^HTTP\/1\.1 503 /);
    assert.match(answer, /Retry-After: 9/);
    first.destroy();
  } finally {
    child.kill('SIGTERM');
    assert.is(await exited, 0, err);
    for (const s of held) s.destroy();
  }
  assert.is(out.trim().split('\n').length, 1, `--quiet: one line only, got ${out}`);
});

cli.run();
