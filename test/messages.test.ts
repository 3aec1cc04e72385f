import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mulberry32 } from '../fixtures-gen/synth.js';
import { BIN_CLASS, EOR } from '../jpip/constants.js';
import { JpipError } from '../jpip/errors.js';
import {
  DEFAULT_MAX_MESSAGE_LENGTH,
  JppStreamDecoder,
  MAX_HEADER_LENGTH,
  MessageWriter,
  binClassName,
  decodeStream,
  decodeVbas,
  describeMessage,
  encodeEor,
  encodeHeader,
  encodeMessage,
  encodeVbas,
  eorReasonName,
  vbasLength,
  type DecodedItem,
  type MessageInit,
} from '../jpip/messages.js';

// ---------------------------------------------------------------------------
// Helpers

/** Seeded PRNG (mulberry32): the same sequence on every run. */

function randInt(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
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

/** Bytes of a recognisable pattern. */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}

/** Items as plain data (Uint8Array -> number[]) so failures print readably. */
function plain(items: DecodedItem[]): unknown[] {
  return items.map((it) =>
    it.kind === 'eor'
      ? { kind: 'eor', reason: it.reason, body: Array.from(it.body) }
      : { ...it, data: Array.from(it.data) },
  );
}

function expectBadStream(fn: () => unknown, what?: RegExp): JpipError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof JpipError, `expected JpipError, got ${String(e)}`);
    assert.is(e.kind, 'BAD_STREAM');
    assert.is(e.code, 'JPIP_ERR_BAD_STREAM');
    if (what) assert.match(e.message, what);
    return e;
  }
  assert.unreachable('expected BAD_STREAM');
  throw new Error('unreachable');
}

/** Decodes `bytes` pushed in pieces of the given sizes (the last piece takes the rest). */
function decodeSplit(bytes: Uint8Array, cuts: number[]): DecodedItem[] {
  const dec = new JppStreamDecoder();
  const items: DecodedItem[] = [];
  let p = 0;
  for (const c of cuts) {
    dec.push(bytes.subarray(p, c), items);
    p = c;
  }
  dec.push(bytes.subarray(p), items);
  dec.end();
  return items;
}

function decodeByteByByte(bytes: Uint8Array): DecodedItem[] {
  const cuts: number[] = [];
  for (let i = 1; i < bytes.length; i++) cuts.push(i);
  return decodeSplit(bytes, cuts);
}

function randomCuts(rnd: () => number, length: number): number[] {
  const cuts: number[] = [];
  let p = 0;
  while (p < length) {
    p += randInt(rnd, 0, rnd() < 0.5 ? 3 : 64);
    if (p < length) cuts.push(p);
  }
  return cuts;
}

const CLASSES = [0, 1, 2, 4, 5, 6, 8, 3, 7, 9, 1000, 1001];

type Spec = { kind: 'message'; m: MessageInit } | { kind: 'eor'; reason: number; body: Uint8Array };

/** A random response: messages of every class (odd ones with Aux), EORs with and without a body. */
function randomSpecs(rnd: () => number, count: number): Spec[] {
  const specs: Spec[] = [];
  let cs = randInt(rnd, 0, 3);
  let cls = 0;
  for (let i = 0; i < count; i++) {
    if (rnd() < 0.08) {
      const body = rnd() < 0.5 ? new Uint8Array(0) : pattern(randInt(rnd, 1, 200), i);
      specs.push({ kind: 'eor', reason: rnd() < 0.8 ? randInt(rnd, 1, 7) : randInt(rnd, 0, 255), body });
      continue;
    }
    // Keep class/codestream for a while so the short forms appear.
    const r = rnd();
    if (r < 0.15) cs = rnd() < 0.5 ? randInt(rnd, 0, 10) : randInt(rnd, 0, 1_000_000);
    if (r < 0.4) cls = CLASSES[randInt(rnd, 0, CLASSES.length - 1)]!;
    const idKind = rnd();
    const binId = idKind < 0.3 ? randInt(rnd, 0, 15) : idKind < 0.6 ? randInt(rnd, 16, 5000) : idKind < 0.9 ? randInt(rnd, 0, 2 ** 40) : randInt(rnd, 0, 2 ** 53 - 1);
    const offKind = rnd();
    const offset = offKind < 0.4 ? 0 : offKind < 0.8 ? randInt(rnd, 0, 100_000) : randInt(rnd, 0, 2 ** 45);
    const length = rnd() < 0.1 ? 0 : rnd() < 0.9 ? randInt(rnd, 1, 300) : randInt(rnd, 300, 20_000);
    const m: MessageInit = {
      classId: cls,
      codestream: cs,
      binId,
      offset,
      complete: rnd() < 0.3,
      data: pattern(length, i),
    };
    if (cls % 2 === 1) m.aux = rnd() < 0.5 ? randInt(rnd, 0, 20) : randInt(rnd, 0, 2 ** 50);
    specs.push({ kind: 'message', m });
  }
  return specs;
}

function expectedItems(specs: Spec[]): DecodedItem[] {
  return specs.map((s) =>
    s.kind === 'eor'
      ? { kind: 'eor', reason: s.reason, body: s.body }
      : {
          kind: 'message',
          classId: s.m.classId,
          codestream: s.m.codestream,
          binId: s.m.binId,
          offset: s.m.offset,
          length: s.m.data.length,
          complete: s.m.complete,
          aux: s.m.aux,
          data: s.m.data,
        },
  );
}

/** Encodes with a MessageWriter; `ends[i]` is where item i ends. */
function encodeWithEnds(specs: Spec[], rnd?: () => number): { bytes: Uint8Array; ends: number[] } {
  const w = new MessageWriter();
  const parts: Uint8Array[] = [];
  const ends: number[] = [];
  let p = 0;
  let total = 0;
  for (const s of specs) {
    if (s.kind === 'eor') {
      parts.push(w.eor(s.reason, s.body));
    } else {
      // A mid-stream reset only forces the full form: the decoder needs no reset for that.
      if (rnd && rnd() < 0.05) w.reset();
      if (rnd && rnd() < 0.5) {
        parts.push(w.header({ ...s.m, length: s.m.data.length }), s.m.data);
      } else {
        parts.push(w.message(s.m));
      }
    }
    for (; p < parts.length; p++) total += parts[p]!.length;
    ends.push(total);
  }
  return { bytes: concat(parts), ends };
}

function encodeWithWriter(specs: Spec[], rnd?: () => number): Uint8Array {
  return encodeWithEnds(specs, rnd).bytes;
}

// --- An independent, deliberately loose encoder (from the Annex A layout), to feed
// --- the decoder non-minimal VBAS and Bin-IDs and every header form.

function looseVbas(v: number, pad: number): number[] {
  const groups: number[] = [];
  do {
    groups.unshift(v % 128);
    v = Math.floor(v / 128);
  } while (v > 0);
  for (let i = 0; i < pad; i++) groups.unshift(0);
  return groups.map((g, i) => (i < groups.length - 1 ? 0x80 | g : g));
}

function looseBinId(id: number, bb: number, c: boolean, pad: number): number[] {
  // Later bytes: as many as the id needs, plus `pad`; the first byte gets what is left (< 16).
  let later = 0;
  while (id >= 16 * 128 ** later) later++;
  later += pad;
  const groups: number[] = [];
  let v = id;
  for (let j = 0; j < later; j++) {
    groups.unshift(v % 128);
    v = Math.floor(v / 128);
  }
  const tail = groups.map((g, i) => (i < groups.length - 1 ? 0x80 | g : g));
  const first = (later > 0 ? 0x80 : 0) | (bb << 5) | (c ? 0x10 : 0) | v;
  return [first, ...tail];
}

/** Encodes with random padding of every field, within the decoder's 9-byte bound. */
function encodeLoose(specs: Spec[], rnd: () => number): Uint8Array {
  const bytes: number[] = [];
  let prevCls = 0;
  let prevCs = 0;
  const pad = (v: number): number => Math.max(0, Math.min(rnd() < 0.7 ? 0 : randInt(rnd, 1, 3), 9 - looseVbas(v, 0).length));
  for (const s of specs) {
    if (s.kind === 'eor') {
      bytes.push(0, s.reason, ...looseVbas(s.body.length, pad(s.body.length)), ...s.body);
      continue;
    }
    const m = s.m;
    // Start from class 0 / codestream 0 like the decoder; pick any valid form.
    let bb = 3;
    const choice = rnd();
    if (m.codestream === prevCs && m.classId === prevCls && choice < 0.6) bb = 1;
    else if (m.codestream === prevCs && choice < 0.8) bb = 2;
    const idBytes = looseBinId(m.binId, bb, m.complete, 0);
    const idPad = Math.max(0, Math.min(rnd() < 0.7 ? 0 : randInt(rnd, 1, 3), 9 - idBytes.length));
    bytes.push(...looseBinId(m.binId, bb, m.complete, idPad));
    if (bb >= 2) bytes.push(...looseVbas(m.classId, pad(m.classId)));
    if (bb === 3) bytes.push(...looseVbas(m.codestream, pad(m.codestream)));
    bytes.push(...looseVbas(m.offset, pad(m.offset)), ...looseVbas(m.data.length, pad(m.data.length)));
    if (m.classId % 2 === 1) bytes.push(...looseVbas(m.aux!, pad(m.aux!)));
    bytes.push(...m.data);
    prevCls = m.classId;
    prevCs = m.codestream;
  }
  return Uint8Array.from(bytes);
}

// ---------------------------------------------------------------------------
// The worked example of the protocol brief (section 3)

const example = suite('messages: worked example');

const WORKED_HEADERS = [
  '70 08 00 00 2D',
  '50 06 00 81 48',
  '50 02 00 00',
  '47 00 00 82 2C',
  'B0 14 00 0A',
  '37 82 2C 32',
  '70 06 01 00 14',
];
const WORKED: MessageInit[] = [
  { classId: BIN_CLASS.METADATA, codestream: 0, binId: 0, offset: 0, complete: true, data: pattern(45, 1) },
  { classId: BIN_CLASS.MAIN_HEADER, codestream: 0, binId: 0, offset: 0, complete: true, data: pattern(200, 2) },
  { classId: BIN_CLASS.TILE_HEADER, codestream: 0, binId: 0, offset: 0, complete: true, data: new Uint8Array(0) },
  { classId: BIN_CLASS.PRECINCT, codestream: 0, binId: 7, offset: 0, complete: false, data: pattern(300, 3) },
  { classId: BIN_CLASS.PRECINCT, codestream: 0, binId: 20, offset: 0, complete: true, data: pattern(10, 4) },
  { classId: BIN_CLASS.PRECINCT, codestream: 0, binId: 7, offset: 300, complete: true, data: pattern(50, 5) },
  { classId: BIN_CLASS.MAIN_HEADER, codestream: 1, binId: 0, offset: 0, complete: true, data: pattern(20, 6) },
];

function workedBytes(): Uint8Array {
  const parts: Uint8Array[] = [];
  WORKED.forEach((m, i) => parts.push(hex(WORKED_HEADERS[i]!), m.data));
  parts.push(hex('00 02 00'));
  return concat(parts);
}

example('MessageWriter produces the example byte for byte', () => {
  const w = new MessageWriter();
  WORKED.forEach((m, i) => {
    assert.is(toHex(w.header({ ...m, length: m.data.length })), toHex(hex(WORKED_HEADERS[i]!)), `header ${i}`);
  });
  assert.is(toHex(w.eor(EOR.WINDOW_DONE)), '00 02 00');

  w.reset();
  const whole = concat([...WORKED.map((m) => w.message(m)), w.eor(EOR.WINDOW_DONE)]);
  assert.is(toHex(whole), toHex(workedBytes()));
});

example('the decoder reads the example back, whole, byte by byte and split', () => {
  const bytes = workedBytes();
  const want = plain(expectedItems([...WORKED.map((m) => ({ kind: 'message' as const, m })), { kind: 'eor', reason: 2, body: new Uint8Array(0) }]));
  assert.equal(plain(decodeStream(bytes)), want);
  assert.equal(plain(decodeByteByByte(bytes)), want);
  for (let cut = 0; cut <= bytes.length; cut++) assert.equal(plain(decodeSplit(bytes, [cut])), want, `cut at ${cut}`);
});

example('the decoded example describes itself', () => {
  const lines = decodeStream(workedBytes()).map(describeMessage);
  assert.equal(lines, [
    'metadata 0 cs=0 off=0 len=45 complete',
    'main-header 0 cs=0 off=0 len=200 complete',
    'tile-header 0 cs=0 off=0 len=0 complete',
    'precinct 7 cs=0 off=0 len=300',
    'precinct 20 cs=0 off=0 len=10 complete',
    'precinct 7 cs=0 off=300 len=50 complete',
    'main-header 0 cs=1 off=0 len=20 complete',
    'EOR WINDOW_DONE (2) body=0',
  ]);
});

example.run();

// ---------------------------------------------------------------------------
// VBAS

const vbas = suite('messages: VBAS');

const VBAS_CASES: Array<[number, string]> = [
  [0, '00'],
  [1, '01'],
  [127, '7f'],
  [128, '81 00'],
  [200, '81 48'],
  [300, '82 2c'],
  [16383, 'ff 7f'],
  [16384, '81 80 00'],
  [2 ** 31 - 1, '87 ff ff ff 7f'],
  [2 ** 31, '88 80 80 80 00'],
  [2 ** 32, '90 80 80 80 00'],
  [2 ** 53 - 1, '8f ff ff ff ff ff ff 7f'],
];

vbas('known values encode and decode', () => {
  for (const [v, h] of VBAS_CASES) {
    assert.is(toHex(encodeVbas(v)), h, `encode ${v}`);
    assert.is(vbasLength(v), h.split(' ').length, `length ${v}`);
    assert.equal(decodeVbas(hex(h)), { value: v, end: h.split(' ').length }, `decode ${v}`);
  }
});

vbas('encodes into a caller buffer and returns the end', () => {
  const out = new Uint8Array(8).fill(0xee);
  assert.is(encodeVbas(300, out, 3), 5);
  assert.is(toHex(out), 'ee ee ee 82 2c ee ee ee');
  assert.throws(() => encodeVbas(300, out, 7), RangeError);
  assert.throws(() => encodeVbas(-1), RangeError);
  assert.throws(() => encodeVbas(1.5), RangeError);
  assert.throws(() => encodeVbas(2 ** 53), RangeError);
});

vbas('decodes at an offset', () => {
  assert.equal(decodeVbas(hex('ff 81 48 05'), 1), { value: 200, end: 3 });
});

vbas('non-minimal encodings decode', () => {
  assert.equal(decodeVbas(hex('80 00')), { value: 0, end: 2 });
  assert.equal(decodeVbas(hex('80 80 81 48')), { value: 200, end: 4 });
  // 8 continuation bytes then the last: 9 bytes is the bound, accepted.
  assert.equal(decodeVbas(hex('80 80 80 80 80 80 80 80 05')), { value: 5, end: 9 });
  assert.equal(decodeVbas(hex('80 8f ff ff ff ff ff ff 7f')), { value: 2 ** 53 - 1, end: 9 });
});

vbas('too long, too large or truncated is BAD_STREAM', () => {
  expectBadStream(() => decodeVbas(hex('80 80 80 80 80 80 80 80 80 05')), /longer than 9/);
  expectBadStream(() => decodeVbas(hex('90 80 80 80 80 80 80 00')), /2\^53/); // 2^53
  expectBadStream(() => decodeVbas(hex('ff ff ff ff ff ff ff 7f')), /2\^53/); // 2^56 - 1
  expectBadStream(() => decodeVbas(hex('81')), /truncated/);
  expectBadStream(() => decodeVbas(new Uint8Array(0)), /truncated/);
});

vbas('random values round trip', () => {
  const rnd = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const v = i < 1000 ? randInt(rnd, 0, 2 ** 32) : Math.floor(rnd() * 2 ** 53);
    const e = encodeVbas(v);
    assert.is(decodeVbas(e).value, v);
    assert.is(e.length, vbasLength(v));
  }
});

vbas.run();

// ---------------------------------------------------------------------------
// Encoder

const enc = suite('messages: encoder');

const base = { classId: 0, codestream: 0, binId: 0, offset: 0, length: 0, complete: false };

enc('Bin-ID: 4 bits in the first byte, 7 in each later one', () => {
  // The header of an even class with zero fields is the Bin-ID then 4 zero bytes.
  const first = (id: number): string => toHex(encodeHeader({ ...base, binId: id }).slice(0, -4));
  assert.is(first(0), '60');
  assert.is(first(15), '6f');
  assert.is(first(16), 'e0 10');
  assert.is(first(2 ** 11 - 1), 'ef 7f');
  assert.is(first(2 ** 11), 'e0 90 00');
  assert.is(toHex(encodeHeader({ ...base, binId: 2 ** 53 - 1, complete: true })), 'ff ff ff ff ff ff ff 7f 00 00 00 00');
  const big = decodeStream(encodeMessage({ ...base, binId: 2 ** 40 + 12345, data: new Uint8Array(0) }));
  assert.is((big[0] as { binId: number }).binId, 2 ** 40 + 12345);
});

enc('short forms after the first message, full form after reset', () => {
  const w = new MessageWriter();
  const bb = (h: Uint8Array): number => (h[0]! >> 5) & 3;
  const m = { classId: 0, codestream: 5, binId: 3, offset: 0, length: 1, complete: false };
  assert.is(bb(w.header(m)), 3, 'first');
  assert.is(bb(w.header(m)), 1, 'same class and codestream');
  assert.is(bb(w.header({ ...m, classId: 2 })), 2, 'same codestream');
  assert.is(bb(w.header({ ...m, classId: 2, codestream: 6 })), 3, 'other codestream');
  assert.is(bb(w.header({ ...m, classId: 4, codestream: 6 })), 2);
  w.reset();
  assert.is(bb(w.header({ ...m, classId: 4, codestream: 6 })), 3, 'after reset');
  // The first message is full even when it equals the decoder's defaults.
  w.reset();
  assert.is(toHex(w.header(base)), '60 00 00 00 00');
  assert.is(toHex(w.header(base)), '20 00 00');
});

enc('writeHeader writes in place, same bytes as header()', () => {
  const a = new MessageWriter();
  const b = new MessageWriter();
  const rnd = mulberry32(3);
  const buf = new Uint8Array(4096);
  let p = 0;
  const copies: Uint8Array[] = [];
  for (const s of randomSpecs(rnd, 60)) {
    if (s.kind !== 'message') continue;
    const h = { ...s.m, length: s.m.data.length };
    const end = a.writeHeader(h, buf, p);
    const copy = b.header(h);
    assert.ok(end - p <= MAX_HEADER_LENGTH);
    assert.is(toHex(buf.subarray(p, end)), toHex(copy));
    copies.push(copy);
    p = end;
  }
  // header() returns copies: later calls do not change earlier results.
  assert.is(toHex(concat(copies)), toHex(buf.subarray(0, p)));
});

enc('writeHeader into a tight buffer: fits exactly, or RangeError and no state change', () => {
  const w = new MessageWriter();
  const m = { classId: 8, codestream: 0, binId: 0, offset: 0, length: 45, complete: true };
  const tight = new Uint8Array(5);
  assert.is(w.writeHeader(m, tight, 0), 5);
  assert.is(toHex(tight), '70 08 00 00 2d');
  const small = new Uint8Array(2);
  const next = { classId: 6, codestream: 0, binId: 0, offset: 0, length: 200, complete: true };
  assert.throws(() => w.writeHeader(next, small, 0), RangeError);
  // Still bb=10 relative to the metadata message: the failed call changed nothing.
  assert.is(toHex(w.header(next)), '50 06 00 81 48');
});

enc('stateless encoders use the full form', () => {
  const m = { classId: 0, codestream: 0, binId: 7, offset: 0, complete: false, data: pattern(3, 1) };
  assert.is(toHex(encodeMessage(m)), toHex(concat([hex('67 00 00 00 03'), m.data])));
  assert.is(toHex(encodeHeader({ ...m, length: 3 })), '67 00 00 00 03');
  assert.is(toHex(encodeEor(EOR.BYTE_LIMIT_REACHED)), '00 04 00');
  assert.is(toHex(encodeEor(EOR.NON_SPECIFIED, hex('61 62'))), '00 ff 02 61 62');
  // Aux for odd classes, after Msg-Length.
  assert.is(toHex(encodeHeader({ classId: 1, codestream: 2, binId: 1, offset: 0, length: 0, complete: false, aux: 200 })), '61 01 02 00 00 81 48');
  assert.is(toHex(encodeHeader({ classId: 5, codestream: 0, binId: 0, offset: 1, length: 2, complete: true, aux: 3 })), '70 05 00 01 02 03');
});

enc('bad arguments are RangeError', () => {
  const w = new MessageWriter();
  const m = { classId: 0, codestream: 0, binId: 0, offset: 0, length: 0, complete: false };
  assert.throws(() => w.header({ ...m, binId: -1 }), RangeError);
  assert.throws(() => w.header({ ...m, offset: 0.5 }), RangeError);
  assert.throws(() => w.header({ ...m, codestream: NaN }), RangeError);
  assert.throws(() => w.header({ ...m, classId: 1 }), /aux is required/);
  assert.throws(() => w.header({ ...m, aux: 1 }), /no aux/);
  assert.throws(() => w.header({ ...m, offset: 2 ** 53 - 1, length: 1 }), RangeError);
  assert.throws(() => w.message({ ...m, length: 2, data: new Uint8Array(1) }), /differs/);
  assert.throws(() => encodeEor(256), RangeError);
  assert.throws(() => encodeEor(-1), RangeError);
  // Failed calls left the writer at "first message".
  assert.is((w.header(m)[0]! >> 5) & 3, 3);
});

enc.run();

// ---------------------------------------------------------------------------
// Decoder round trips

const rt = suite('messages: round trips');

rt('random responses: whole, one byte at a time, random splits', () => {
  const rnd = mulberry32(20240601);
  for (let round = 0; round < 40; round++) {
    const specs = randomSpecs(rnd, randInt(rnd, 1, 60));
    const bytes = encodeWithWriter(specs, rnd);
    const want = plain(expectedItems(specs));
    assert.equal(plain(decodeStream(bytes)), want, `round ${round} whole`);
    if (round % 4 === 0) assert.equal(plain(decodeByteByByte(bytes)), want, `round ${round} byte by byte`);
    for (let k = 0; k < 3; k++) assert.equal(plain(decodeSplit(bytes, randomCuts(rnd, bytes.length))), want, `round ${round} split ${k}`);
  }
});

rt('non-minimal fields and every valid form decode the same', () => {
  const rnd = mulberry32(99);
  for (let round = 0; round < 40; round++) {
    const specs = randomSpecs(rnd, randInt(rnd, 1, 40));
    const bytes = encodeLoose(specs, rnd);
    const want = plain(expectedItems(specs));
    assert.equal(plain(decodeStream(bytes)), want, `round ${round}`);
    assert.equal(plain(decodeSplit(bytes, randomCuts(rnd, bytes.length))), want, `round ${round} split`);
  }
});

rt('ESA-style Bin-ID: zero id bits in the first byte, then a full VBAS', () => {
  // id 200, bb=11, c=0: C0 then 81 48 (instead of the minimal E1 48).
  const items = decodeStream(hex('E0 81 48 00 00 00 01 AA'));
  assert.equal(plain(items), [
    { kind: 'message', classId: 0, codestream: 0, binId: 200, offset: 0, length: 1, complete: false, aux: undefined, data: [0xaa] },
  ]);
});

rt('JPT-stream classes: tiles with and without Aux, main header, metadata', () => {
  const w = new MessageWriter();
  const ms: MessageInit[] = [
    { classId: BIN_CLASS.MAIN_HEADER, codestream: 0, binId: 0, offset: 0, complete: true, data: pattern(30, 1) },
    { classId: BIN_CLASS.TILE, codestream: 0, binId: 3, offset: 0, complete: false, data: pattern(40, 2) },
    { classId: BIN_CLASS.EXTENDED_TILE, codestream: 0, binId: 3, offset: 40, complete: true, aux: 2, data: pattern(10, 3) },
    { classId: BIN_CLASS.METADATA, codestream: 0, binId: 0, offset: 0, complete: true, data: pattern(8, 4) },
  ];
  const bytes = concat([...ms.map((m) => w.message(m)), w.eor(EOR.IMAGE_DONE)]);
  const items = decodeStream(bytes);
  assert.equal(plain(items), plain(expectedItems([...ms.map((m) => ({ kind: 'message' as const, m })), { kind: 'eor', reason: 1, body: new Uint8Array(0) }])));
});

rt('class and codestream carry over per response and reset to 0', () => {
  const dec = new JppStreamDecoder();
  // bb=11 class 6 codestream 3, then bb=01: class 6 codestream 3.
  const a = dec.push(hex('70 06 03 00 00 30 00 00'));
  assert.equal(a.map((m) => m.kind === 'message' && [m.classId, m.codestream]), [[6, 3], [6, 3]]);
  // Still within the response after an EOR.
  const b = dec.push(hex('00 02 00 30 00 00'));
  assert.equal(b.map((m) => m.kind === 'message' && [m.classId, m.codestream]), [false, [6, 3]]);
  dec.end();
  // end() resets: bb=01 now means class 0 codestream 0.
  const c = dec.push(hex('30 00 00'));
  assert.equal(c.map((m) => m.kind === 'message' && [m.classId, m.codestream]), [[0, 0]]);
  dec.push(hex('50 08 00 00'));
  dec.reset();
  const d = dec.push(hex('30 00 00'));
  assert.equal(d.map((m) => m.kind === 'message' && [m.classId, m.codestream]), [[0, 0]]);
  // bb=10 keeps the codestream.
  dec.reset();
  const e = dec.push(hex('70 00 09 00 00 50 02 00 00'));
  assert.equal(e.map((m) => m.kind === 'message' && [m.classId, m.codestream]), [[0, 9], [2, 9]]);
});

rt('data are views of the chunk unless copy is set', () => {
  const bytes = encodeMessage({ classId: 0, codestream: 0, binId: 1, offset: 0, complete: false, data: pattern(10, 1) });
  const view = decodeStream(bytes)[0] as { data: Uint8Array };
  assert.ok(view.data.buffer === bytes.buffer);
  const copied = decodeStream(bytes, { copy: true })[0] as { data: Uint8Array };
  assert.ok(copied.data.buffer !== bytes.buffer);
  assert.equal(Array.from(copied.data), Array.from(view.data));
  // Split data is assembled into its own array, with or without copy.
  for (const copy of [false, true]) {
    const dec = new JppStreamDecoder({ copy });
    const items = dec.push(bytes.subarray(0, 9));
    dec.push(bytes.subarray(9), items);
    dec.end();
    const m = items[0] as { data: Uint8Array };
    assert.ok(m.data.buffer !== bytes.buffer);
    assert.equal(Array.from(m.data), Array.from(pattern(10, 1)));
  }
});

rt('push appends to the given array; position and idle', () => {
  const dec = new JppStreamDecoder();
  const out: DecodedItem[] = [];
  assert.ok(dec.push(hex('00 01 00'), out) === out);
  assert.is(out.length, 1);
  assert.is(dec.position, 3);
  assert.ok(dec.idle);
  dec.push(hex('60 00'), out);
  assert.not.ok(dec.idle);
  dec.push(hex('00 00'), out);
  assert.not.ok(dec.idle, 'Msg-Length still missing');
  dec.push(hex('00'), out);
  assert.ok(dec.idle);
  assert.is(out.length, 2);
});

rt.run();

// ---------------------------------------------------------------------------
// Hostile streams

const hostile = suite('messages: hostile streams');

hostile('truncation at every byte: BAD_STREAM, or a prefix of the items', () => {
  const rnd = mulberry32(4242);
  for (let round = 0; round < 6; round++) {
    const specs = randomSpecs(rnd, 12).map((s) =>
      s.kind === 'message' ? { ...s, m: { ...s.m, data: s.m.data.subarray(0, 40) } } : s,
    );
    const { bytes, ends } = encodeWithEnds(specs, rnd);
    const full = plain(expectedItems(specs));
    for (let cut = 0; cut <= bytes.length; cut++) {
      const dec = new JppStreamDecoder();
      const items = dec.push(bytes.subarray(0, cut));
      assert.equal(plain(items), full.slice(0, ends.filter((e) => e <= cut).length), `cut ${cut}: the items that fit`);
      if (cut === 0 || ends.includes(cut)) dec.end();
      else expectBadStream(() => dec.end(), /stream ends inside/);
    }
  }
});

hostile('truncated worked example: end() throws exactly inside messages', () => {
  const bytes = workedBytes();
  const boundaries = new Set<number>([0]);
  let p = 0;
  WORKED.forEach((m, i) => {
    p += hex(WORKED_HEADERS[i]!).length + m.data.length;
    boundaries.add(p);
  });
  boundaries.add(p + 3);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const dec = new JppStreamDecoder();
    dec.push(bytes.subarray(0, cut));
    if (boundaries.has(cut)) dec.end();
    else expectBadStream(() => dec.end(), /stream ends inside/);
  }
});

hostile('random garbage: only BAD_STREAM, always terminates', () => {
  const rnd = mulberry32(1);
  let errors = 0;
  for (let round = 0; round < 400; round++) {
    const garbage = new Uint8Array(randInt(rnd, 1, 400));
    for (let i = 0; i < garbage.length; i++) garbage[i] = randInt(rnd, 0, 255);
    const dec = new JppStreamDecoder({ maxMessageLength: round % 2 ? 1000 : DEFAULT_MAX_MESSAGE_LENGTH });
    try {
      let p = 0;
      for (const c of [...randomCuts(rnd, garbage.length), garbage.length]) {
        dec.push(garbage.subarray(p, c));
        p = c;
      }
      dec.end();
    } catch (e) {
      errors++;
      assert.ok(e instanceof JpipError && e.kind === 'BAD_STREAM', String(e));
    }
  }
  assert.ok(errors > 300, `${errors} of 400 garbage streams were rejected`);
});

hostile('mutated valid streams: only BAD_STREAM, always terminates', () => {
  const rnd = mulberry32(77);
  for (let round = 0; round < 300; round++) {
    const bytes = encodeWithWriter(randomSpecs(rnd, 8)).slice();
    const flips = randInt(rnd, 1, 4);
    for (let k = 0; k < flips; k++) bytes[randInt(rnd, 0, bytes.length - 1)] = randInt(rnd, 0, 255);
    try {
      decodeSplit(bytes, randomCuts(rnd, bytes.length));
    } catch (e) {
      assert.ok(e instanceof JpipError && e.kind === 'BAD_STREAM', String(e));
    }
  }
});

hostile('specific bad headers', () => {
  expectBadStream(() => decodeStream(hex('10 00 00')), /bb=00/);
  expectBadStream(() => decodeStream(hex('80 00')), /bb=00/);
  // Bin-ID of 10 bytes.
  expectBadStream(() => decodeStream(hex('e0 80 80 80 80 80 80 80 80 00')), /Bin-ID longer than 9/);
  // Offset of 10 bytes.
  expectBadStream(() => decodeStream(hex('60 00 00 80 80 80 80 80 80 80 80 80 00 00')), /Msg-Offset longer/);
  // Length beyond 2^53 - 1.
  expectBadStream(() => decodeStream(hex('60 00 00 00 ff ff ff ff ff ff ff 7f')), /Msg-Length exceeds 2\^53/);
  // offset + length beyond 2^53 - 1.
  expectBadStream(() => decodeStream(hex('60 00 00 8f ff ff ff ff ff ff 7f 01 00')), /offset \+ length/);
  // Msg-Length above the configured bound (no allocation happens: the check is on the header).
  expectBadStream(() => new JppStreamDecoder({ maxMessageLength: 100 }).push(hex('60 00 00 00 65')), /exceeds the limit of 100/);
  expectBadStream(() => decodeStream(hex('60 00 00 00 84 80 80 80 01')), /exceeds the limit/); // 2^30 + 1 > 64 MiB
  expectBadStream(() => new JppStreamDecoder({ maxMessageLength: 2 }).push(hex('00 02 03')), /EOR .* exceeds the limit/);
  // Claimed length, then the response ends.
  expectBadStream(() => decodeStream(hex('60 00 00 00 83 ff 7f 01 02')), /data bytes missing/);
  assert.throws(() => new JppStreamDecoder({ maxMessageLength: -1 }), RangeError);
});

hostile('after an error the decoder keeps failing until reset', () => {
  const dec = new JppStreamDecoder();
  const out: DecodedItem[] = [];
  const first = expectBadStream(() => dec.push(hex('00 02 00 10'), out));
  assert.is(out.length, 1, 'the EOR before the error was delivered');
  assert.match(first.message, /byte 3/);
  assert.ok(expectBadStream(() => dec.push(hex('00 02 00'))) === first);
  assert.ok(expectBadStream(() => dec.end()) === first);
  dec.reset();
  assert.is(dec.push(hex('00 02 00')).length, 1);
  dec.end();
});

hostile.run();

// ---------------------------------------------------------------------------
// Formatting

const fmt = suite('messages: describeMessage');

fmt('names classes and reasons, shows aux', () => {
  assert.is(describeMessage({ classId: 1, codestream: 2, binId: 9, offset: 5, length: 1, complete: false, aux: 3 }), 'ext-precinct 9 cs=2 off=5 len=1 aux=3');
  assert.is(describeMessage({ classId: 4, codestream: 0, binId: 0, offset: 0, complete: true, data: new Uint8Array(4) }), 'tile 0 cs=0 off=0 len=4 complete');
  assert.is(describeMessage({ kind: 'eor', reason: 0xfe, body: new Uint8Array(2) }), 'EOR REASON_254 (254) body=2');
  assert.is(binClassName(BIN_CLASS.EXTENDED_TILE), 'ext-tile');
  assert.is(binClassName(3), 'class-3');
  assert.is(eorReasonName(EOR.BYTE_LIMIT_REACHED), 'BYTE_LIMIT_REACHED');
  assert.is(eorReasonName(EOR.NON_SPECIFIED), 'NON_SPECIFIED');
});

fmt.run();
