import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mulberry32 } from '../fixtures-gen/synth.js';
import { EOR } from '../jpip/constants.js';
import type { DataBinStore } from '../jpip/databins.js';
import type { DecodedItem } from '../jpip/messages.js';
import { ClientError, JpipClient, OPEN_FIELDS, type Transport, type TransportRequest, type TransportResponse } from '../client-sim/client.js';
import { UndiciTransport } from '../client-sim/node-transport.js';
import { ALL_METADATA, one } from '../client-sim/patterns.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { copyMovie } from './helpers.js';

/**
 * The client decodes a response body as it streams in: whatever the chunks,
 * the items and the data-bin store come out the same. Real responses of our
 * server are recorded once, then replayed to fresh clients whole, one byte at
 * a time, and split at random points (seeded), and everything compared.
 */

const t = suite('client: incremental parsing of streamed bodies');

interface Recorded {
  url: string;
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Wraps a transport and keeps every response (headers, whole body). */
class RecordingTransport implements Transport {
  readonly log: Recorded[] = [];
  private readonly inner: Transport;
  constructor(inner: Transport) {
    this.inner = inner;
  }
  async send(req: TransportRequest): Promise<TransportResponse> {
    const res = await this.inner.send(req);
    const parts: Uint8Array[] = [];
    for await (const c of res.body) parts.push(new Uint8Array(c));
    const body = concat(parts);
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'jpip-cnew', 'jpip-tid']) {
      const v = res.header(h);
      if (v !== null) headers[h] = v;
    }
    this.log.push({ url: req.url, status: res.status, headers, body });
    return replay({ status: res.status, headers, body }, [body.length]);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A response whose body arrives in chunks ending at `cuts` (ascending, last = length). */
function replay(r: { status: number; headers: Record<string, string>; body: Uint8Array }, cuts: number[]): TransportResponse {
  return {
    status: r.status,
    header: (name) => r.headers[name.toLowerCase()] ?? null,
    body: {
      async *[Symbol.asyncIterator]() {
        let at = 0;
        for (const c of cuts) {
          if (c > at) yield r.body.slice(at, c);
          at = c;
        }
      },
    },
    cancel: () => {},
  };
}

/** Replays recorded responses in order, each split by `split`. */
class ScriptedTransport implements Transport {
  private i = 0;
  private readonly script: Recorded[];
  private readonly split: (n: number) => number[];
  private readonly check: boolean;
  constructor(script: Recorded[], split: (n: number) => number[], check = true) {
    this.script = script;
    this.split = split;
    this.check = check;
  }
  async send(req: TransportRequest): Promise<TransportResponse> {
    const r = this.script[this.i++];
    if (!r) throw new Error('script exhausted');
    // The request must be the one recorded (same session, same order).
    if (this.check) assert.is(new URL(req.url).search, new URL(r.url).search, 'replayed request');
    return replay(r, this.split(r.body.length));
  }
  async close(): Promise<void> {}
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const whole = (n: number): number[] => [n];
const perByte = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
function randomSplit(rnd: () => number): (n: number) => number[] {
  return (n) => {
    const k = Math.floor(rnd() * Math.min(n, 40));
    const cuts = new Set<number>([n]);
    for (let i = 0; i < k; i++) cuts.add(1 + Math.floor(rnd() * n));
    return [...cuts].sort((a, b) => a - b);
  };
}

/** Everything a store holds, comparable. */
function snapshot(store: DataBinStore): Record<string, string> {
  const out: Record<string, string> = {};
  for (const b of store) out[`${b.codestream}/${b.classId}/${b.binId}`] = `${b.complete ? 'c' : 'p'}:${b.totalLength}:${JSON.stringify(b.ranges())}:${Buffer.from(b.bytes()).toString('base64')}`;
  return out;
}

function plain(items: DecodedItem[]): unknown[] {
  return items.map((i) => (i.kind === 'eor' ? ['eor', i.reason, [...i.body]] : [i.classId, i.codestream, i.binId, i.offset, i.complete, i.aux, Buffer.from(i.data).toString('base64')]));
}

/** The session every replay repeats: metadata, a small view, then windows of three frames and regions, with a small len so bins split. */
async function session(client: JpipClient): Promise<DecodedItem[][]> {
  const items: DecodedItem[][] = [];
  const go = async (fields: Parameters<JpipClient['request']>[0], target?: string): Promise<void> => {
    const r = await client.requestOk(fields, target);
    items.push(r.items);
  };
  await go({ ...OPEN_FIELDS, tid: '0', stream: one(0), metareq: ALL_METADATA, len: 700 }, 'movie/linked.jpx');
  for (let f = 0; f < 3; f++) {
    for (let k = 0; k < 4; k++) await go({ stream: one(f), fsiz: { fx: 128, fy: 128, round: 'round-down' }, roff: { x: 16 * f, y: 8 }, rsiz: { w: 80, h: 64 }, len: 1500 + 300 * k });
  }
  for (let k = 0; k < 3; k++) await go({ stream: [{ from: 0, to: 2, step: 1 }], fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 4000 });
  await client.close();
  return items;
}

let srv: JpipServer;
let base = '';
let root = '';
let script: Recorded[] = [];
let wantItems: DecodedItem[][] = [];
let wantStore: Record<string, string> = {};

t.before(async () => {
  root = mkdtempSync(join(tmpdir(), 'jpip-client-stream-'));
  copyMovie(root);
  srv = createJpipServer({ root, port: 0 });
  base = await srv.listen();
  const rec = new RecordingTransport(new UndiciTransport());
  const client = new JpipClient(base, { transport: rec });
  wantItems = await session(client);
  wantStore = snapshot(client.store);
  script = rec.log;
  await rec.close();
});

t.after(async () => {
  await srv.close();
  rmSync(root, { recursive: true, force: true });
});

t('the recorded session is a real one: many responses, split bins, byte-limit and window-done EORs', () => {
  assert.ok(script.length >= 16, `${script.length} responses`);
  const eors = wantItems.map((list) => (list.at(-1)?.kind === 'eor' ? (list.at(-1) as { reason: number }).reason : -1));
  assert.ok(eors.includes(EOR.BYTE_LIMIT_REACHED), 'some responses stop at len');
  assert.ok(eors.includes(EOR.WINDOW_DONE) || eors.includes(EOR.IMAGE_DONE), 'some windows complete');
  assert.ok(Object.keys(wantStore).length > 20, `${Object.keys(wantStore).length} bins`);
});

t('whole bodies and one byte at a time give the same items and the same store', async () => {
  for (const split of [whole, perByte]) {
    const client = new JpipClient(base, { transport: new ScriptedTransport(script, split) });
    const items = await session(client);
    assert.equal(items.map(plain), wantItems.map(plain));
    assert.equal(snapshot(client.store), wantStore);
  }
});

t('fuzz: bodies split at random points (seeded, time-capped) give the same items and store', async () => {
  const rnd = mulberry32(20261123);
  const started = Date.now();
  let rounds = 0;
  while (rounds < 60 && (rounds < 10 || Date.now() - started < 1500)) {
    const client = new JpipClient(base, { transport: new ScriptedTransport(script, randomSplit(rnd)) });
    const items = await session(client);
    assert.equal(items.map(plain), wantItems.map(plain), `round ${rounds}`);
    assert.equal(snapshot(client.store), wantStore, `round ${rounds}`);
    rounds++;
  }
  assert.ok(rounds >= 10);
});

t('a body cut inside a message (any split) is a truncated error, and the messages before it are kept', async () => {
  // The longest recorded JPP body, cut at random points inside it.
  const rec = script.reduce((a, b) => (b.body.length > a.body.length ? b : a));
  const rnd = mulberry32(7);
  for (let k = 0; k < 20; k++) {
    const n = 1 + Math.floor(rnd() * (rec.body.length - 2));
    const cut = { ...rec, body: rec.body.subarray(0, n) };
    const client = new JpipClient(base, { transport: new ScriptedTransport([cut], randomSplit(rnd), false) });
    client.cid = 'C';
    let err: unknown;
    try {
      await client.request({ stream: one(0), fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 4000 });
    } catch (e) {
      err = e;
    }
    // A cut exactly between two messages decodes fine (the EOR is missing, not an error).
    if (err === undefined) continue;
    assert.instance(err, ClientError);
    assert.is((err as ClientError).kind, 'truncated', (err as Error).message);
    assert.ok((err as ClientError).bytesReceived === n);
  }
});

t('messages that arrived before garbage are in the store; the error names the stream problem', async () => {
  const rec = script.find((r) => r.body.length > 200)!;
  const bad = concat([rec.body.subarray(0, rec.body.length - 3), Uint8Array.of(0x01, 0x02, 0x03)]);
  const client = new JpipClient(base, { transport: new ScriptedTransport([{ ...rec, body: bad }], perByte, false) });
  client.cid = 'C';
  try {
    await client.request({ stream: one(0), fsiz: { fx: 128, fy: 128, round: 'round-down' }, len: 4000 });
    assert.unreachable('garbage must fail');
  } catch (e) {
    assert.instance(e, ClientError);
    assert.is((e as ClientError).kind, 'bad-stream');
    assert.match((e as Error).message, /bb=00/);
  }
  assert.ok(client.store.size > 0, 'messages before the garbage kept');
});

t.run();
