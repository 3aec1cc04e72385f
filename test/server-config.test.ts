import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CONFIG_KEYS,
  CONFIG_SCHEMA,
  ConfigError,
  DEFAULT_CONFIG,
  changedKeys,
  configFromEnv,
  envName,
  flagName,
  isValidatedConfig,
  loadConfig,
  readConfigFile,
  reloadable,
  validateConfig,
} from '../server/config.js';
import { flagsFromArgs } from '../bin/commands/serve.js';
import { buildCli } from '../bin/cli.js';

const config = suite('server config: defaults, file, environment, flags, validation');
let dir = '';
config.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'jpip-config-'));
});
config.after(() => rmSync(dir, { recursive: true, force: true }));

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ConfigError);
    assert.is((e as ConfigError).code, 'JPIP_ERR_CONFIG');
    return [...(e as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

config('defaults carry their unit in the key name, and root is required', () => {
  for (const key of CONFIG_KEYS) {
    const spec = CONFIG_SCHEMA[key];
    if (spec.type === 'integer' || spec.type === 'number') {
      if (['port', 'maxSessions', 'maxSessionBins', 'maxConnections', 'maxOpenFiles', 'indexThreads', 'assemblyThreads'].includes(key)) continue;
      assert.match(key, /(Bytes|Seconds)$/, `${key} names its unit`);
    }
  }
  assert.equal(problems(() => validateConfig([{}])), ['root: required (the directory whose JPEG 2000 files are served)']);
  const c = validateConfig([{ root: '/x' }]);
  assert.is(c.maxLenBytes, DEFAULT_CONFIG.maxLenBytes);
  assert.ok(Object.isFrozen(c), 'frozen');
  assert.ok(isValidatedConfig(c));
  assert.not.ok(isValidatedConfig({ ...c }), 'a copy is not a validated config');
});

config('unknown keys, wrong types and values out of range are all reported at once', () => {
  const p = problems(() =>
    validateConfig([{ root: '/x', maxLen: 5, port: 70000, keepAliveSeconds: 'long', logLevel: 'loud', metricsAllowRemote: 1, chunkBytes: 1.5, cacheDir: '' }], 'file t.json'),
  );
  assert.is(p.length, 7, p.join('\n'));
  assert.ok(p.some((x) => x.startsWith('maxLen: unknown key (known keys: root, host')));
  assert.ok(p.includes('port: expected an integer between 0 and 65535, got 70000'));
  assert.ok(p.includes('keepAliveSeconds: expected a number between 1 and 86400, got "long"'));
  assert.ok(p.includes('logLevel: expected one of error, warn, info, debug, trace, got "loud"'));
  assert.ok(p.includes('metricsAllowRemote: expected true or false, got 1'));
  assert.ok(p.includes('chunkBytes: expected an integer between 1024 and 16777216, got 1.5'));
  assert.ok(p.includes('cacheDir: expected a non-empty string or null, got ""'));
  try {
    validateConfig([{ root: '/x', maxLen: 1 }], 'file t.json');
  } catch (e) {
    assert.match((e as Error).message, /^invalid configuration \(file t\.json\):\n {2}maxLen: unknown key/);
  }
  assert.equal(problems(() => validateConfig([{ root: '/x', headersTimeoutSeconds: 30, requestTimeoutSeconds: 10 }])), [
    'headersTimeoutSeconds (30) must not exceed requestTimeoutSeconds (10)',
  ]);
  assert.equal(problems(() => validateConfig([['a'] as unknown as object])), ['expected an object of settings, got an array', 'root: required (the directory whose JPEG 2000 files are served)']);
  assert.match(problems(() => validateConfig([{ root: 'x'.repeat(100), host: null }]))[0]!, /host: expected a non-empty string, got null/);
});

config('layers: defaults < base < file < environment < flags; undefined skips, null is a value', () => {
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ root: '/from-file', maxSessions: 5, cacheDir: null, port: 1 }));
  const c = loadConfig({
    base: { cacheDir: '/base-cache', logLevel: 'info' },
    file,
    env: { JPIP_BENCH_MAX_SESSIONS: '7', JPIP_BENCH_PORT: '2', JPIP_BENCH_OTHER: 'ignored', JPIP_BENCH_CACHE: '/legacy' },
    flags: { port: 3, maxConnections: undefined },
  });
  assert.is(c.root, '/from-file');
  assert.is(c.cacheDir, null, 'the file overrides the base');
  assert.is(c.logLevel, 'info', 'the base overrides the defaults');
  assert.is(c.maxSessions, 7, 'the environment overrides the file');
  assert.is(c.port, 3, 'flags override the environment');
  assert.is(c.maxConnections, DEFAULT_CONFIG.maxConnections);
  assert.is(loadConfig({ flags: { root: '/r' } }).root, '/r');
});

config('environment values are parsed by type; malformed ones are named', () => {
  assert.is(envName('maxLenBytes'), 'JPIP_BENCH_MAX_LEN_BYTES');
  assert.is(flagName('maxLenBytes'), 'max-len-bytes');
  assert.equal(configFromEnv({ JPIP_BENCH_METRICS_ALLOW_REMOTE: 'yes', JPIP_BENCH_STATE_DIR: 'null', JPIP_BENCH_HOST: '::1', JPIP_BENCH_SEND_STALL_SECONDS: '0.5' }), {
    host: '::1',
    stateDir: null,
    sendStallSeconds: 0.5,
    metricsAllowRemote: true,
  });
  assert.equal(configFromEnv({ JPIP_BENCH_METRICS_ALLOW_REMOTE: '0' }), { metricsAllowRemote: false });
  assert.equal(problems(() => configFromEnv({ JPIP_BENCH_PORT: 'eighty', JPIP_BENCH_MAX_SESSIONS: '', JPIP_BENCH_METRICS_ALLOW_REMOTE: 'maybe' })), [
    'JPIP_BENCH_PORT: expected a number, got "eighty"',
    'JPIP_BENCH_MAX_SESSIONS: expected a number, got ""',
    'JPIP_BENCH_METRICS_ALLOW_REMOTE: expected true or false, got "maybe"',
  ]);
});

config('a config file that cannot be read, is not JSON or not an object is a clear error', () => {
  assert.match(problems(() => readConfigFile(join(dir, 'missing.json')))[0]!, /cannot read the config file: ENOENT/);
  writeFileSync(join(dir, 'bad.json'), '{ "root": ');
  assert.match(problems(() => readConfigFile(join(dir, 'bad.json')))[0]!, /^not valid JSON: /);
  writeFileSync(join(dir, 'list.json'), '[1]');
  assert.equal(problems(() => readConfigFile(join(dir, 'list.json'))), ['the file must hold one JSON object of settings']);
});

config('a reload keeps the keys that need a restart and says which', () => {
  const running = validateConfig([{ root: '/a', port: 1, maxSessions: 5 }]);
  const next = validateConfig([{ root: '/b', port: 2, maxSessions: 9, logLevel: 'debug' }]);
  assert.equal(changedKeys(running, next), ['root', 'port', 'maxSessions', 'logLevel']);
  const r = reloadable(running, next);
  assert.equal(r.ignored, ['root', 'port']);
  assert.is(r.config.root, '/a');
  assert.is(r.config.port, 1);
  assert.is(r.config.maxSessions, 9);
  assert.is(r.config.logLevel, 'debug');
  assert.ok(Object.isFrozen(r.config));
  const same = reloadable(running, validateConfig([{ root: '/a', port: 1, maxSessions: 6 }]));
  assert.equal(same.ignored, []);
});

config('every key is a serve flag (with its environment name in the help), and only given flags count', async () => {
  let help = '';
  await buildCli({ out: () => {}, err: () => {}, tty: false }).parseAsync(['serve', '--help'], {}, (_e, _a, out) => {
    help = out;
  });
  for (const key of CONFIG_KEYS) {
    assert.ok(help.includes(`--${flagName(key)}`), `--${flagName(key)} in --help`);
    assert.ok(help.includes(envName(key)), `${envName(key)} in --help`);
  }
  assert.equal(flagsFromArgs({ 'max-len-bytes': 5, 'log-level': 'info', port: undefined, quiet: true }), { maxLenBytes: 5, logLevel: 'info' });
});

config('docs/server.md documents every config key, and no key that does not exist', () => {
  const doc = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'server.md'), 'utf8');
  const table = doc.slice(doc.indexOf('<!-- config keys -->'), doc.indexOf('<!-- /config keys -->'));
  const documented = [...table.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
  assert.equal(documented, CONFIG_KEYS, 'one row per key, in schema order');
});

config.run();
