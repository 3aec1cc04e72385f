import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mulberry32 } from '../fixtures-gen/synth.js';
import { BIN_CLASS, EOR } from '../jpip/constants.js';
import { JpipError } from '../jpip/errors.js';
import { DataBin, DataBinStore, storeClassOf, type BinMessage } from '../jpip/databins.js';
import { MessageWriter, decodeStream, type DecodedItem } from '../jpip/messages.js';


function randInt(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

/** The reference content of a bin: byte i is a function of (seed, i). */
function content(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed * 131 + i * 17 + (i >> 8)) & 0xff;
  return out;
}

/** A precinct message carrying bytes [start, end) of `ref`. */
function piece(ref: Uint8Array, start: number, end: number, extra: Partial<BinMessage> = {}): BinMessage {
  return {
    classId: BIN_CLASS.PRECINCT,
    codestream: 0,
    binId: 7,
    offset: start,
    complete: end === ref.length,
    data: ref.slice(start, end),
    ...extra,
  };
}

function expectBadStream(fn: () => unknown, what?: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof JpipError, `expected JpipError, got ${String(e)}`);
    assert.is(e.kind, 'BAD_STREAM');
    if (what) assert.match(e.message, what);
    return;
  }
  assert.unreachable('expected BAD_STREAM');
}

// ---------------------------------------------------------------------------

const bins = suite('databins: one bin');

bins('in-order pieces: contiguous, then complete', () => {
  const ref = content(350);
  const store = new DataBinStore();
  const bin = store.add(piece(ref, 0, 300));
  assert.is(bin.contiguousLength, 300);
  assert.is(bin.totalLength, undefined);
  assert.not.ok(bin.complete);
  store.add(piece(ref, 300, 350));
  assert.is(bin.contiguousLength, 350);
  assert.is(bin.totalLength, 350);
  assert.ok(bin.complete);
  assert.equal(bin.ranges(), [[0, 350]]);
  assert.equal(Array.from(bin.bytes()), Array.from(ref));
  assert.is(store.byteLength, 350);
});

bins('out of order: the last piece first, complete only when the gap fills', () => {
  const ref = content(100);
  const store = new DataBinStore();
  const bin = store.add(piece(ref, 60, 100));
  assert.is(bin.totalLength, 100);
  assert.is(bin.contiguousLength, 0);
  assert.not.ok(bin.complete);
  assert.equal(bin.ranges(), [[60, 100]]);
  store.add(piece(ref, 0, 20));
  assert.equal(bin.ranges(), [[0, 20], [60, 100]]);
  assert.is(bin.contiguousLength, 20);
  assert.ok(bin.has(60, 100));
  assert.not.ok(bin.has(10, 70));
  assert.equal(Array.from(bin.read(60, 80)), Array.from(ref.subarray(60, 80)));
  assert.throws(() => bin.read(10, 70), RangeError);
  store.add(piece(ref, 40, 60));
  assert.equal(bin.ranges(), [[0, 20], [40, 100]]);
  store.add(piece(ref, 20, 40));
  assert.equal(bin.ranges(), [[0, 100]]);
  assert.ok(bin.complete);
  assert.equal(Array.from(bin.bytes()), Array.from(ref));
  assert.is(bin.receivedLength, 100);
});

bins('overlapping and duplicate pieces store the union once', () => {
  const ref = content(200);
  const store = new DataBinStore();
  const bin = store.add(piece(ref, 10, 50));
  store.add(piece(ref, 30, 80));
  store.add(piece(ref, 10, 50));
  store.add(piece(ref, 0, 5));
  store.add(piece(ref, 90, 120));
  store.add(piece(ref, 100, 110));
  assert.equal(bin.ranges(), [[0, 5], [10, 80], [90, 120]]);
  assert.is(bin.receivedLength, 5 + 70 + 30);
  assert.is(store.byteLength, bin.receivedLength);
  // One piece spanning several ranges and gaps.
  store.add(piece(ref, 3, 95));
  assert.equal(bin.ranges(), [[0, 120]]);
  assert.is(store.byteLength, 120);
  assert.equal(Array.from(bin.bytes()), Array.from(ref.subarray(0, 120)));
});

bins('touching pieces merge', () => {
  const ref = content(30);
  const bin = new DataBin(0, 0, 1);
  bin.write(10, ref.subarray(10, 20), false);
  bin.write(20, ref.subarray(20, 30), false);
  bin.write(0, ref.subarray(0, 10), false);
  assert.equal(bin.ranges(), [[0, 30]]);
});

bins('random pieces in random order match a reference', () => {
  const rnd = mulberry32(11);
  for (let round = 0; round < 60; round++) {
    const n = randInt(rnd, 1, round < 30 ? 300 : 20000);
    const ref = content(n, round);
    const store = new DataBinStore();
    const held = new Uint8Array(n);
    const msgs: BinMessage[] = [];
    for (let k = randInt(rnd, 1, 25); k > 0; k--) {
      const a = randInt(rnd, 0, n - 1);
      const b = Math.min(n, a + randInt(rnd, 0, n >> 1));
      msgs.push(piece(ref, a, b, { binId: round }));
    }
    if (rnd() < 0.5) msgs.push(piece(ref, n - 1, n, { binId: round }));
    for (const m of msgs.sort(() => rnd() - 0.5)) {
      store.add(m);
      held.fill(1, m.offset, m.offset + m.data.length);
    }
    const bin = store.get(0, 0, round)!;
    // Ranges from the reference.
    const want: Array<[number, number]> = [];
    for (let i = 0; i < n; ) {
      if (!held[i]) {
        i++;
        continue;
      }
      let j = i;
      while (j < n && held[j]) j++;
      want.push([i, j]);
      i = j;
    }
    assert.equal(bin.ranges(), want, `round ${round}`);
    assert.is(bin.receivedLength, held.reduce((s, x) => s + x, 0));
    const contiguous = want.length > 0 && want[0]![0] === 0 ? want[0]![1] : 0;
    assert.is(bin.contiguousLength, contiguous);
    const sawEnd = msgs.some((m) => m.complete);
    assert.is(bin.totalLength, sawEnd ? n : undefined);
    assert.is(bin.complete, sawEnd && contiguous === n);
    for (const [a, b] of want) assert.equal(Array.from(bin.read(a, b)), Array.from(ref.subarray(a, b)), `round ${round} [${a},${b})`);
  }
});

bins('an empty complete bin (ESA tile headers) is complete', () => {
  const store = new DataBinStore();
  const bin = store.add({ classId: BIN_CLASS.TILE_HEADER, codestream: 0, binId: 0, offset: 0, complete: true, data: new Uint8Array(0) });
  assert.ok(bin.complete);
  assert.is(bin.totalLength, 0);
  assert.is(bin.contiguousLength, 0);
  assert.equal(bin.ranges(), []);
  assert.is(bin.bytes().length, 0);
});

bins('contradictions are BAD_STREAM and change nothing', () => {
  const ref = content(100);
  const store = new DataBinStore();
  const bin = store.add(piece(ref, 0, 100));
  expectBadStream(() => store.add(piece(ref, 90, 100, { data: content(20), complete: false })), /past its end/);
  expectBadStream(() => store.add({ ...piece(ref, 0, 50), complete: true }), /earlier message ended it at 100/);
  assert.ok(bin.complete);
  assert.equal(bin.ranges(), [[0, 100]]);

  const other = store.add(piece(ref, 0, 80, { binId: 8 }));
  expectBadStream(() => store.add({ ...piece(ref, 0, 50, { binId: 8 }), complete: true }), /bytes up to 80 were received/);
  assert.is(other.totalLength, undefined);
  expectBadStream(() => store.add({ ...piece(ref, 0, 10), length: 11 }), /differs/);
});

bins('a bin bigger than the bound is refused; a new bin is not left behind', () => {
  const store = new DataBinStore({ maxBinLength: 1000 });
  expectBadStream(() => store.add({ classId: 0, codestream: 0, binId: 1, offset: 2 ** 50, complete: false, data: new Uint8Array(3) }), /exceed the bound/);
  expectBadStream(() => store.add({ classId: 0, codestream: 0, binId: 1, offset: 999, complete: false, data: new Uint8Array(2) }), /exceed the bound/);
  assert.is(store.size, 0);
  assert.is(store.get(0, 0, 1), undefined);
  store.add({ classId: 0, codestream: 0, binId: 1, offset: 998, complete: true, data: new Uint8Array(2) });
  assert.is(store.get(0, 0, 1)!.totalLength, 1000);
  assert.throws(() => new DataBinStore({ maxBinLength: -5 }), RangeError);
});

bins('the buffer grows by doubling and keeps the bytes', () => {
  const ref = content(100_000, 3);
  const store = new DataBinStore();
  let bin: DataBin | undefined;
  for (let p = 0; p < ref.length; p += 777) bin = store.add(piece(ref, p, Math.min(ref.length, p + 777)));
  assert.ok(bin!.complete);
  assert.equal(Array.from(bin!.bytes()), Array.from(ref));
});

bins.run();

// ---------------------------------------------------------------------------

const store = suite('databins: store');

store('extended classes share the plain bins and keep aux', () => {
  const s = new DataBinStore();
  const ref = content(20);
  s.add({ classId: BIN_CLASS.EXTENDED_PRECINCT, codestream: 2, binId: 5, offset: 0, complete: false, aux: 1, data: ref.slice(0, 10) });
  s.add({ classId: BIN_CLASS.PRECINCT, codestream: 2, binId: 5, offset: 10, complete: true, data: ref.slice(10, 20) });
  const bin = s.get(2, BIN_CLASS.PRECINCT, 5)!;
  assert.ok(bin === s.get(2, BIN_CLASS.EXTENDED_PRECINCT, 5));
  assert.is(bin.classId, 0);
  assert.is(bin.aux, 1, 'a class-0 message keeps the aux');
  assert.ok(bin.complete);
  s.add({ classId: BIN_CLASS.EXTENDED_TILE, codestream: 2, binId: 0, offset: 0, complete: false, aux: 4, data: ref.slice(0, 3) });
  s.add({ classId: BIN_CLASS.EXTENDED_TILE, codestream: 2, binId: 0, offset: 3, complete: false, aux: 6, data: ref.slice(3, 6) });
  assert.is(s.get(2, BIN_CLASS.TILE, 0)!.aux, 6);
  assert.is(s.get(2, BIN_CLASS.TILE, 0)!.contiguousLength, 6);
  assert.equal([0, 1, 2, 4, 5, 6, 8, 3].map(storeClassOf), [0, 0, 2, 4, 4, 6, 8, 3]);
  assert.is(s.size, 2);
});

store('iteration by codestream and class; addItems skips EORs', () => {
  const w = new MessageWriter();
  const msgs = [
    w.message({ classId: 6, codestream: 3, binId: 0, offset: 0, complete: true, data: content(5) }),
    w.message({ classId: 0, codestream: 3, binId: 9, offset: 0, complete: false, data: content(4) }),
    w.message({ classId: 1, codestream: 3, binId: 2, offset: 0, complete: false, aux: 0, data: content(4) }),
    w.message({ classId: 0, codestream: 1, binId: 9, offset: 0, complete: false, data: content(4) }),
    w.message({ classId: 8, codestream: 0, binId: 0, offset: 0, complete: true, data: content(4) }),
    w.eor(EOR.WINDOW_DONE),
  ];
  const items: DecodedItem[] = decodeStream(Uint8Array.from(msgs.flatMap((m) => Array.from(m))));
  const s = new DataBinStore();
  assert.is(s.addItems(items), 5);
  assert.is(s.size, 5);
  assert.equal(s.codestreams(), [0, 1, 3]);
  assert.equal([...s.bins(3, BIN_CLASS.PRECINCT)].map((b) => b.binId), [9, 2]);
  assert.equal([...s.bins(3, BIN_CLASS.EXTENDED_PRECINCT)].map((b) => b.binId), [9, 2]);
  assert.equal([...s.bins(3)].map((b) => `${b.classId}/${b.binId}`), ['6/0', '0/9', '0/2']);
  assert.equal([...s.bins(undefined, BIN_CLASS.PRECINCT)].map((b) => `${b.codestream}/${b.binId}`), ['3/9', '3/2', '1/9']);
  assert.equal([...s.bins(7)], []);
  assert.is([...s].length, 5);
  assert.is(s.byteLength, 21);
  s.clear();
  assert.is(s.size, 0);
  assert.is(s.byteLength, 0);
  assert.is(s.cacheModelString(), '');
});

store.run();

// ---------------------------------------------------------------------------

const model = suite('databins: cache model string');

/** The worked example of the protocol brief, section 3, decoded into a store. */
function workedStore(upTo = 8): DataBinStore {
  const w = new MessageWriter();
  const z = (n: number): Uint8Array => content(n);
  const all = [
    w.message({ classId: 8, codestream: 0, binId: 0, offset: 0, complete: true, data: z(45) }),
    w.message({ classId: 6, codestream: 0, binId: 0, offset: 0, complete: true, data: z(200) }),
    w.message({ classId: 2, codestream: 0, binId: 0, offset: 0, complete: true, data: z(0) }),
    w.message({ classId: 0, codestream: 0, binId: 7, offset: 0, complete: false, data: z(300) }),
    w.message({ classId: 0, codestream: 0, binId: 20, offset: 0, complete: true, data: z(10) }),
    w.message({ classId: 0, codestream: 0, binId: 7, offset: 300, complete: true, data: content(350).slice(300) }),
    w.message({ classId: 6, codestream: 1, binId: 0, offset: 0, complete: true, data: z(20) }),
    w.eor(EOR.WINDOW_DONE),
  ].slice(0, upTo);
  const s = new DataBinStore();
  s.addItems(decodeStream(Uint8Array.from(all.flatMap((m) => Array.from(m)))));
  return s;
}

model('the worked example', () => {
  assert.is(workedStore().cacheModelString(), 'M0,[0-0],Hm,H0,P7,P20,[1-1],Hm');
  assert.is(workedStore(4).cacheModelString(), 'M0,[0-0],Hm,H0,P7:300');
  assert.is(workedStore(5).cacheModelString(), 'M0,[0-0],Hm,H0,P7:300,P20');
  assert.is(workedStore().cacheModelString([1]), 'M0,[1-1],Hm');
  assert.is(workedStore().cacheModelString([]), 'M0');
});

model('consecutive codestreams with the same holdings share a range', () => {
  const s = new DataBinStore();
  const hm = (cs: number, n: number, complete: boolean): void => {
    s.add({ classId: BIN_CLASS.MAIN_HEADER, codestream: cs, binId: 0, offset: 0, complete, data: content(n) });
  };
  for (let cs = 0; cs <= 9; cs++) hm(cs, 50, true);
  hm(11, 50, true);
  hm(12, 50, true);
  hm(13, 20, false);
  s.add({ classId: BIN_CLASS.TILE_HEADER, codestream: 12, binId: 0, offset: 0, complete: true, data: content(3) });
  assert.is(s.cacheModelString(), '[0-9],Hm,[11-11],Hm,[12-12],Hm,H0,[13-13],Hm:20');
  assert.is(s.cacheModelString([3, 4, 5, 11, 2]), '[2-5],Hm,[11-11],Hm');
  assert.is(s.cacheModelString(new Set([0, 13])), '[0-0],Hm,[13-13],Hm:20');
});

model('descriptor order and what is left out', () => {
  const s = new DataBinStore();
  const add = (classId: number, binId: number, offset: number, n: number, complete: boolean, aux?: number): void => {
    s.add({ classId, codestream: 0, binId, offset, complete, aux, data: content(n) });
  };
  add(BIN_CLASS.PRECINCT, 12, 0, 345, false);
  add(BIN_CLASS.PRECINCT, 3, 0, 10, true);
  add(BIN_CLASS.PRECINCT, 4, 100, 10, false); // no prefix held: left out
  add(BIN_CLASS.PRECINCT, 5, 0, 0, false); // nothing held: left out
  add(BIN_CLASS.TILE, 1, 0, 9, false);
  add(BIN_CLASS.EXTENDED_TILE, 0, 0, 9, true, 1);
  add(BIN_CLASS.TILE_HEADER, 2, 0, 4, false);
  add(BIN_CLASS.MAIN_HEADER, 0, 0, 60, false);
  add(BIN_CLASS.METADATA, 3, 0, 8, false);
  add(BIN_CLASS.METADATA, 0, 0, 8, true);
  add(3, 0, 0, 8, true); // a class the syntax has no letter for
  assert.is(s.cacheModelString(), 'M0,M3:8,[0-0],Hm:60,H2:4,T0,T1:9,P3,P12:345');
});

model('metadata-bins are listed once, before any codestream', () => {
  const s = new DataBinStore();
  s.add({ classId: BIN_CLASS.METADATA, codestream: 0, binId: 1, offset: 0, complete: false, data: content(5) });
  s.add({ classId: BIN_CLASS.METADATA, codestream: 4, binId: 1, offset: 0, complete: false, data: content(9) });
  s.add({ classId: BIN_CLASS.METADATA, codestream: 2, binId: 2, offset: 0, complete: true, data: content(1) });
  assert.is(s.cacheModelString(), 'M1:9,M2');
  assert.is(s.cacheModelString([7]), 'M1:9,M2');
});

model.run();
