import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN_CLASS } from '../jpip/constants.js';
import {
  CLIENT_ERROR,
  CLIENT_ERROR_KINDS,
  ClientError,
  FetchTransport,
  JpipClient,
  OPEN_FIELDS,
  isClientError,
  type Transport,
} from '../client-sim/client.js';
import { DIALECTS, dialectByName } from '../client-sim/dialects.js';
import { UndiciTransport } from '../client-sim/node-transport.js';
import { ALL_METADATA, JHV_HEADERS, one } from '../client-sim/patterns.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { closedPort, startMisbehavingServer, type MisbehavingServer } from './client-test-server.js';
import { FIXTURES } from './helpers.js';

/**
 * What the client makes of servers that misbehave, through both transports:
 * each failure is a ClientError of one kind, nothing hangs past the timeout,
 * and a client can go on after a cut response.
 */

const t = suite('client: errors by kind, retries, transports, dialects');
let bad: MisbehavingServer;
let ours: JpipServer;
let oursUrl = '';

const TRANSPORTS: [string, () => Transport][] = [
  ['undici', () => new UndiciTransport()],
  ['fetch', () => new FetchTransport()],
];

t.before(async () => {
  bad = await startMisbehavingServer();
  ours = createJpipServer({ root: join(FIXTURES, 'movie'), port: 0 });
  oursUrl = await ours.listen();
});
t.after(async () => {
  await bad.close();
  await ours.close();
});

async function failure(p: Promise<unknown>): Promise<ClientError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isClientError(e), `a ClientError, got ${String(e)}`);
    return e as ClientError;
  }
  throw new Error('expected a ClientError, the request succeeded');
}

async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

t('the error table: every kind has a stable code and a text', () => {
  const codes = new Set<string>();
  for (const k of CLIENT_ERROR_KINDS) {
    assert.match(CLIENT_ERROR[k].code, /^JPIP_CLIENT_ERR_[A-Z_]+$/);
    assert.ok(CLIENT_ERROR[k].text.length > 10);
    codes.add(CLIENT_ERROR[k].code);
  }
  assert.is(codes.size, CLIENT_ERROR_KINDS.length, 'codes are distinct');
  const e = new ClientError('cut', 'x', { url: 'http://h/', status: 200, bytesReceived: 7 });
  assert.is(e.code, 'JPIP_CLIENT_ERR_CUT');
  assert.ok(e.retryable);
  assert.is(e.bytesReceived, 7);
  assert.match(e.message, /^JPIP_CLIENT_ERR_CUT: x$/);
});

for (const [name, make] of TRANSPORTS) {
  t(`${name}: each misbehaviour is one error kind, and the request never outlives its timeout`, async () => {
    const cases: [string, string][] = [
      ['ctype', 'content-type'],
      ['garbage', 'bad-stream'],
      ['cut', 'cut'],
      ['truncated', 'truncated'],
      ['hang', 'timeout'],
      ['drop', 'reset'],
      ['nocnew', 'protocol'],
      ['badcnew', 'protocol'],
    ];
    for (const [mode, kind] of cases) {
      const client = new JpipClient(bad.url, { transport: make(), timeoutMs: 400 });
      const t0 = Date.now();
      const e = await failure(client.open(`${mode}.jpx`, { len: 100 }));
      assert.is(e.kind, kind, `${mode}: ${e.message}`);
      assert.ok(Date.now() - t0 < 3000, `${mode} took ${Date.now() - t0} ms`);
      assert.ok(e.url.startsWith(bad.url));
      await client.transport.close();
    }
  });

  t(`${name}: a status other than 200 is returned by request() and thrown by requestOk()`, async () => {
    const client = new JpipClient(bad.url, { transport: make() });
    const r = await client.request({ ...OPEN_FIELDS, len: 10 }, 'status.jpx');
    assert.is(r.status, 500);
    assert.match(r.text!, /test server says no/);
    const e = await failure(client.requestOk({ ...OPEN_FIELDS, len: 10 }, 'status.jpx'));
    assert.is(e.kind, 'status');
    assert.is(e.status, 500);
    await client.transport.close();
  });

  t(`${name}: a refused connection is a connect error`, async () => {
    const port = await closedPort();
    const client = new JpipClient(`http://127.0.0.1:${port}`, { transport: make(), timeoutMs: 2000 });
    const e = await failure(client.open('x.jpx'));
    assert.is(e.kind, 'connect', e.message);
    assert.ok(e.retryable);
    await client.transport.close();
  });

  t(`${name}: after a cut response the client goes on (retry on the channel, or reopen)`, async () => {
    const client = new JpipClient(bad.url, { transport: make(), timeoutMs: 2000 });
    await client.open('flaky.jpx', { len: 100 });
    assert.is(client.cid, 'flaky-' + client.cid!.split('-')[1]);
    let cuts = 0;
    let oks = 0;
    for (let i = 0; i < 6; i++) {
      try {
        const r = await client.requestOk({ len: 100 });
        assert.is(r.eor, 2);
        oks++;
      } catch (e) {
        assert.is((e as ClientError).kind, 'cut');
        cuts++;
      }
    }
    assert.ok(cuts >= 2 && oks >= 2, `cuts ${cuts}, oks ${oks}`);
    const again = await client.reopen({ len: 100 });
    assert.is(again.status, 200);
    assert.ok(client.cid?.startsWith('flaky-'));
    assert.ok(client.store.get(0, BIN_CLASS.METADATA, 0)?.complete, 'data of whole responses kept');
    await client.dispose();
  });

  t(`${name}: an aborted request is an aborted error, fast`, async () => {
    const client = new JpipClient(bad.url, { transport: make(), timeoutMs: 10_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = Date.now();
    const e = await failure(client.request({ ...OPEN_FIELDS, len: 10 }, 'hang.jpx', { signal: ac.signal }));
    assert.is(e.kind, 'aborted');
    assert.ok(Date.now() - t0 < 2000);
    await client.transport.close();
  });

  t(`${name}: gzip bodies (metareq with Accept-Encoding: gzip) are decoded`, async () => {
    const client = new JpipClient(oursUrl, { transport: make(), headers: { ...JHV_HEADERS } });
    const r = await client.open('linked.jpx', { stream: one(0), metareq: ALL_METADATA, len: 2_000_000 });
    assert.is(r.status, 200);
    assert.ok(client.store.get(0, BIN_CLASS.METADATA, 0)!.complete, 'metadata-bin 0 complete');
    assert.ok(r.messages! >= 1);
    await client.dispose();
  });
}

t('the undici transport holds one connection per client, reused across requests', async () => {
  const transport = new UndiciTransport();
  const client = new JpipClient(oursUrl, { transport });
  await client.open('linked.jpx', { stream: one(0), fsiz: { fx: 32, fy: 32, round: 'closest' }, len: 2000 });
  for (let i = 0; i < 5; i++) await client.requestOk({ stream: one(i % 3), fsiz: { fx: 32, fy: 32, round: 'closest' }, len: 2000 });
  assert.is(transport.connected, 1);
  await client.dispose();
  assert.is(transport.connected, 0);
  assert.match(String(await rejects(transport.send({ url: oursUrl, headers: {}, signal: new AbortController().signal }))), /closed/);
  assert.throws(() => new UndiciTransport({ connections: 0 }), /connections/);
});

t('a changed JPIP-tid empties the store (the file changed)', async () => {
  const client = new JpipClient(oursUrl, { transport: new UndiciTransport() });
  await client.open('linked.jpx', { stream: one(0), fsiz: { fx: 32, fy: 32, round: 'closest' }, len: 5000 });
  assert.ok(client.store.size > 0);
  client.tid = 'some-other-tid';
  await client.open('linked.jpx', { len: 0 });
  assert.is(client.store.size, 0);
  await client.dispose();
});

t('reopen tells the new channel what the store holds (model=), so it sends nothing again', async () => {
  const client = new JpipClient(oursUrl, { transport: new UndiciTransport() });
  const win = { stream: one(1), fsiz: { fx: 128, fy: 128, round: 'closest' as const }, len: 2_000_000 };
  await client.open('linked.jpx', win);
  const held = client.store.byteLength;
  assert.ok(held > 1000);
  assert.ok(client.modelDescriptors()!.length > 3);
  const oldCid = client.cid;
  const r = await client.reopen(win);
  assert.is.not(client.cid, oldCid);
  assert.ok(r.bodyLength < 64, `${r.bodyLength} bytes sent again`);
  assert.is(client.store.byteLength, held);
  await client.dispose();
  assert.match(String(await rejects(new JpipClient(oursUrl).reopen())), /no target/);
});

t('dialects: ours, esajpip, openjpip and kakadu request syntax all work against our server', async () => {
  const win = { stream: one(0), fsiz: { fx: 64, fy: 64, round: 'closest' as const } };
  for (const name of ['ours', 'esajpip', 'openjpip', 'kakadu']) {
    const d = dialectByName(name);
    const client = new JpipClient(oursUrl, { transport: new UndiciTransport(), dialect: d });
    const url = client.buildUrl({ ...OPEN_FIELDS, ...win, len: 3000 }, 'linked.jpx');
    if (d.targetIn === 'field') assert.match(url, /^\/\?.*target=linked\.jpx/);
    else assert.match(url, /^\/linked\.jpx\?/);
    const r = await client.open('linked.jpx', { ...win, len: 3000 });
    assert.is(r.status, 200, name);
    assert.ok(client.cid, name);
    const meta = await client.requestOk({ metareq: ALL_METADATA, len: 100_000 });
    assert.is(meta.status, 200);
    const bye = await client.close();
    assert.is(bye?.status, 200);
    await client.transport.close();
  }
  // esajpip always gets stream= and len; openjpip never metareq with '*'.
  assert.equal(DIALECTS.esajpip.adapt({ fsiz: { fx: 1, fy: 1, round: 'closest' } }, { onChannel: true }), { fsiz: { fx: 1, fy: 1, round: 'closest' }, stream: one(0), len: 2097152 });
  assert.equal(DIALECTS.esajpip.adapt({ cclose: ['C'] }, { onChannel: true }), { cclose: ['C'], len: 0 });
  assert.equal(DIALECTS.openjpip.adapt({ metareq: ALL_METADATA, len: 5 }, { onChannel: true }), { len: 5 });
  assert.equal(DIALECTS.kakadu.adapt({ cnew: ['http'] }, { onChannel: false }).type, [{ name: 'jpp-stream', ext: false }]);
  assert.not.ok(DIALECTS.kakadu.tested);
  assert.throws(() => dialectByName('nope'), /ours, esajpip, openjpip, kakadu/);
});

t('openjpip dialect: a JPIP-cnew without path keeps the channel on the path of the cnew', async () => {
  const client = new JpipClient(`${bad.url}/fcgi/opj_server`, { transport: new UndiciTransport(), dialect: DIALECTS.openjpip });
  // The misbehaving server's 'ok' answers any path; give the target as a field.
  assert.match(client.buildUrl({ ...OPEN_FIELDS, len: 1 }, 'ok.jpx'), /^\/fcgi\/opj_server\?target=ok\.jpx&/);
  const strict = new JpipClient(bad.url, { transport: new UndiciTransport() });
  const e = await failure(strict.open('badcnew.jpx'));
  assert.is(e.kind, 'protocol');
  await client.transport.close();
  await strict.transport.close();
});

t('a request with neither a channel nor a target is refused before it is sent', () => {
  const client = new JpipClient(oursUrl);
  assert.throws(() => client.buildUrl({ len: 1 }), /target/);
});

t('client.ts and what it imports use no Node API (a browser can load it)', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const seen = new Set<string>();
  const walk = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/^\s*import\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      assert.ok(spec.startsWith('.'), `${file} imports the package ${spec}`);
      walk(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    }
    assert.not.match(src, /\bprocess\.|\bBuffer\.|require\(/, `${file} uses a Node global`);
  };
  walk(join(here, '..', 'client-sim', 'client.ts'));
  assert.ok(seen.size > 10, `${seen.size} modules`);
  assert.ok([...seen].some((f) => f.endsWith('dialects.ts')));
});

t.run();
