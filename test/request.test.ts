import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { JpipError, type JpipErrorKind } from '../jpip/errors.js';
import {
  IMPLEMENTED_FIELDS,
  LIMITS,
  UNIMPLEMENTED_FIELDS,
  formatModel,
  formatRequest,
  parseRequest,
  type ContextRange,
  type JpipRequest,
  type MetaBoxRequest,
  type MetaFlag,
  type MetaRequest,
  type ModelBin,
  type ModelDescriptor,
  type ParseOptions,
  type Range,
  type RequestedType,
  type RoundDirection,
  type SampledRange,
} from '../jpip/request.js';
import { mulberry32 } from '../fixtures-gen/synth.js';

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), 'vectors', 'request.md');

/** Runs fn and returns the JpipError it throws (fails otherwise). */
function jpipErrorOf(fn: () => unknown): JpipError {
  try {
    fn();
  } catch (e) {
    if (e instanceof JpipError) return e;
    throw new Error(`expected a JpipError, got ${String(e)}`);
  }
  throw new Error('expected a JpipError, none was thrown');
}

function expectError(fn: () => unknown, kind: JpipErrorKind, field: string | undefined): JpipError {
  const e = jpipErrorOf(fn);
  assert.is(e.kind, kind, `kind (message: ${e.message})`);
  assert.is(e.field, field, `field (message: ${e.message})`);
  return e;
}

// ---------------------------------------------------------------------------
// The vectors document
// ---------------------------------------------------------------------------

interface Vector {
  title: string;
  line: number;
  query: string;
  opts: ParseOptions;
  json?: unknown;
  error?: { kind: JpipErrorKind; field: string | undefined };
  canonical?: string;
}

function readVectors(): Vector[] {
  const lines = readFileSync(VECTORS, 'utf8').split('\n');
  const out: Vector[] = [];
  let cur: (Vector & { blocks: Map<string, string> }) | undefined;
  const finish = () => {
    if (!cur) return;
    const b = cur.blocks;
    const query = b.get('query');
    if (query === undefined) throw new Error(`vector "${cur.title}" (line ${cur.line}) has no query block`);
    if (b.has('json') === b.has('error')) throw new Error(`vector "${cur.title}" needs exactly one of json, error`);
    cur.query = query;
    if (b.has('json')) {
      const json = JSON.parse(b.get('json')!) as Record<string, unknown>;
      if (!('ignored' in json)) json['ignored'] = [];
      cur.json = json;
    } else {
      const [kind, field] = b.get('error')!.trim().split(/\s+/) as [JpipErrorKind, string | undefined];
      cur.error = { kind, field: field === '-' ? undefined : field };
    }
    if (b.has('canonical')) cur.canonical = b.get('canonical')!;
    const { blocks: _blocks, ...v } = cur;
    out.push(v);
    cur = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('## ')) {
      finish();
      cur = { title: line.slice(3).trim(), line: i + 1, query: '', opts: {}, blocks: new Map() };
    } else if (line.startsWith('# ')) {
      finish();
    } else if (cur && line.startsWith('<!-- meta=')) {
      cur.opts = JSON.parse(line.slice('<!-- meta='.length, line.lastIndexOf('-->')).trim()) as ParseOptions;
    } else if (cur && /^```[a-z]+$/.test(line)) {
      const kind = line.slice(3);
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
      if (i >= lines.length) throw new Error(`unclosed block at line ${cur.line}`);
      if (cur.blocks.has(kind)) throw new Error(`vector "${cur.title}" has two ${kind} blocks`);
      cur.blocks.set(kind, body.join('\n'));
    }
  }
  finish();
  return out;
}

const vectors = suite('request vectors');
const all = readVectors();

vectors('the document holds at least 60 cases with unique titles', () => {
  assert.ok(all.length >= 60, `${all.length} vectors`);
  assert.is(new Set(all.map((v) => v.title)).size, all.length);
});

for (const v of all) {
  vectors(`${v.title} (line ${v.line})`, () => {
    if (v.error) {
      expectError(() => parseRequest(v.query, v.opts), v.error.kind, v.error.field);
      return;
    }
    const req = parseRequest(v.query, v.opts);
    assert.equal(req, v.json);
    const canonical = formatRequest(req);
    if (v.canonical !== undefined) assert.is(canonical, v.canonical);
    assert.equal(parseRequest(canonical, v.opts), { ...req, ignored: [] }, 'the canonical form parses back');
  });
}

vectors.run();

// ---------------------------------------------------------------------------
// Fields, limits and the builder
// ---------------------------------------------------------------------------

const fields = suite('request fields');

fields('every unimplemented JPIP field is a 501 naming it, with or without a value', () => {
  for (const f of UNIMPLEMENTED_FIELDS) {
    const e = expectError(() => parseRequest(`cid=C&${f}=1`), 'UNIMPLEMENTED', f);
    assert.is(e.status, 501);
    expectError(() => parseRequest(`${f}`), 'UNIMPLEMENTED', f);
  }
});

fields('every implemented field rejects an empty value and a second occurrence', () => {
  for (const f of IMPLEMENTED_FIELDS) {
    const e = expectError(() => parseRequest(`${f}=`), 'BAD_FIELD', f);
    assert.is(e.status, 400);
    assert.is(expectError(() => parseRequest(`${f}=1&${f}=1`), 'BAD_REQUEST', f).status, 400);
  }
});

fields('the two field lists do not overlap', () => {
  const a = new Set<string>(IMPLEMENTED_FIELDS);
  for (const f of UNIMPLEMENTED_FIELDS) assert.not.ok(a.has(f), f);
});

fields('error messages name the field and say why a number is too large', () => {
  const e = expectError(() => parseRequest('len=99999999999999999999'), 'BAD_FIELD', 'len');
  assert.match(e.message, /^len: /);
  assert.match(e.message, /larger than the maximum 9007199254740991/);
  const f = expectError(() => parseRequest('fsiz=64,4294967296'), 'BAD_FIELD', 'fsiz');
  assert.match(f.message, /fy: 4294967296 is larger than the maximum 4294967295/);
});

fields('target and channel ids have a length limit', () => {
  const long = 'x'.repeat(LIMITS.idLength);
  assert.is(parseRequest(`tid=${long}`).tid, long);
  expectError(() => parseRequest(`tid=${long}x`), 'BAD_FIELD', 'tid');
  expectError(() => parseRequest(`cid=${long}x`), 'BAD_FIELD', 'cid');
});

fields('model and metareq numbers have their documented limits', () => {
  assert.equal(parseRequest(`model=P${LIMITS.binId}`).model![0]!.bin, { kind: 'precinct', id: LIMITS.binId });
  expectError(() => parseRequest(`model=H${LIMITS.tileId + 1}`), 'BAD_FIELD', 'model');
  expectError(() => parseRequest(`metareq=[*]D${LIMITS.metaDepth + 1}`), 'BAD_FIELD', 'metareq');
  expectError(() => parseRequest('model=P1:L'), 'BAD_FIELD', 'model');
  expectError(() => parseRequest('model=-'), 'BAD_FIELD', 'model');
});

fields('a control character in a non-JPIP field is still rejected', () => {
  expectError(() => parseRequest('cid=C&foo=a b'), 'BAD_REQUEST', undefined);
  expectError(() => parseRequest('c%ZZ=1'), 'BAD_REQUEST', undefined);
});

fields('formatRequest rejects values the parser would reject', () => {
  expectError(() => formatRequest({ len: -1 }), 'BAD_FIELD', 'len');
  expectError(() => formatRequest({ len: 1.5 }), 'BAD_FIELD', 'len');
  expectError(() => formatRequest({ fsiz: { fx: 0, fy: 1, round: 'closest' } }), 'BAD_FIELD', 'fsiz');
  expectError(() => formatRequest({ roff: { x: 0, y: 0 } }), 'BAD_REQUEST', 'roff');
  expectError(() => formatRequest({ stream: [] }), 'BAD_FIELD', 'stream');
  expectError(() => formatRequest({ comps: [{ from: 3, to: 1 }] }), 'BAD_FIELD', 'comps');
  expectError(() => formatRequest({ cid: 'a,b' }), 'BAD_FIELD', 'cid');
  expectError(() => formatRequest({ target: '' }), 'BAD_FIELD', 'target');
  expectError(() => formatRequest({ target: 'a\ud800' }), 'BAD_FIELD', 'target');
  expectError(() => formatRequest({ model: [{ subtract: false, bin: { kind: 'main' }, limit: { layers: 1 } }] }), 'BAD_FIELD', 'model');
  expectError(() => formatRequest({ metareq: { groups: [{ boxes: [{ boxType: 'xml', priority: false }] }], metadataOnly: false } }), 'BAD_FIELD', 'metareq');
});

fields('formatModel writes a qualifier only where the codestreams change, and cannot go back to none', () => {
  const cs: SampledRange[] = [{ from: 0, to: 9, step: 1 }];
  assert.is(
    formatModel([
      { subtract: false, bin: { kind: 'main' } },
      { subtract: false, codestreams: cs, bin: { kind: 'tile', id: 0 } },
      { subtract: false, codestreams: [{ from: 0, to: 9, step: 1 }], bin: { kind: 'precinct', id: 5 }, limit: { layers: 3 } },
    ]),
    'Hm,[0-9],H0,P5:L3',
  );
  expectError(() => formatModel([
    { subtract: false, codestreams: cs, bin: { kind: 'main' } },
    { subtract: false, bin: { kind: 'main' } },
  ]), 'BAD_FIELD', 'model');
});

fields('an open session request builds exactly what JHelioviewer sends (modulo order)', () => {
  const q = formatRequest({ cnew: ['http'], type: [{ name: 'jpp-stream', ext: false }], tid: '0', len: 512 });
  assert.is(q, 'tid=0&cnew=http&type=jpp-stream&len=512');
});

fields.run();

// ---------------------------------------------------------------------------
// Round trips of random requests
// ---------------------------------------------------------------------------

function generator(seed: number) {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const chance = (p: number) => rnd() < p;
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  /** Mostly small numbers, sometimes the limit. */
  const num = (max: number) => (chance(0.05) ? max : chance(0.5) ? int(10) : int(Math.min(max, 1e6) + 1));
  const list = <T>(f: () => T, max = 4): T[] => Array.from({ length: 1 + int(max) }, f);
  const range = (max: number): Range => {
    const from = num(max);
    if (chance(0.2)) return { from };
    return { from, to: chance(0.3) ? from : from + int(Math.min(100, max - from) + 1) };
  };
  const sampled = (): SampledRange => ({ ...range(LIMITS.index), step: chance(0.7) ? 1 : 1 + int(9) });
  const id = (chars: string) => Array.from({ length: 1 + int(8) }, () => pick([...chars])).join('');
  const ID_CHARS = 'abcXYZ019_-.~!$%()+/:;<=>?@[]^`{|}';
  const type = (): RequestedType => ({ name: pick(['jpp-stream', 'jpt-stream'] as const), ext: chance(0.3) });
  const box = (): MetaBoxRequest => {
    const b: MetaBoxRequest = { boxType: chance(0.3) ? '*' : pick(['xml ', 'jp2h', 'uuid', 'asoc', 'a]b;', 'x%20']), priority: chance(0.3) };
    if (chance(0.3)) b.limit = chance(0.5) ? 'r' : num(LIMITS.bytes);
    if (chance(0.3)) b.flags = (['w', 's', 'g', 'a'] as MetaFlag[]).filter(() => chance(0.5));
    if (b.flags?.length === 0) delete b.flags;
    return b;
  };
  const metareq = (): MetaRequest => ({
    groups: list(() => {
      const g: MetaRequest['groups'][number] = { boxes: list(box, 3) };
      if (chance(0.3)) g.root = num(LIMITS.metaRoot);
      if (chance(0.3)) g.depth = num(LIMITS.metaDepth);
      return g;
    }, 3),
    metadataOnly: chance(0.5),
  });
  const bin = (): ModelBin => {
    switch (int(5)) {
      case 0: return { kind: 'main' };
      case 1: return { kind: 'tile', id: chance(0.2) ? '*' : num(LIMITS.tileId) };
      case 2: return { kind: 'tile-data', id: num(LIMITS.tileId) };
      case 3: return { kind: 'metadata', id: num(LIMITS.binId) };
      default: return { kind: 'precinct', id: num(LIMITS.binId) };
    }
  };
  const model = (): ModelDescriptor[] => {
    const out: ModelDescriptor[] = [];
    let cs: SampledRange[] | undefined;
    for (let i = 0, n = 1 + int(8); i < n; i++) {
      if (chance(0.3)) cs = list(sampled, 3);
      const d: ModelDescriptor = cs ? { subtract: chance(0.2), codestreams: cs, bin: bin() } : { subtract: chance(0.2), bin: bin() };
      if (chance(0.4)) d.limit = d.bin.kind === 'precinct' && chance(0.5) ? { layers: num(LIMITS.layers) } : { bytes: num(LIMITS.bytes) };
      out.push(d);
    }
    return out;
  };
  return (): JpipRequest => {
    const r: JpipRequest = { ignored: [] };
    if (chance(0.2)) r.target = pick(['a.jp2', 'movies/SDO AIA+1.jpx', 'été/ü.jp2', 'a&b=c%d#e?.jpx', '[x]<y>.jp2']);
    if (chance(0.3)) r.tid = chance(0.5) ? '0' : id(ID_CHARS + ',*');
    if (chance(0.3)) r.cnew = chance(0.7) ? ['http'] : ['http-tcp', 'http'];
    if (chance(0.4)) r.cid = id(ID_CHARS);
    if (chance(0.2)) r.cclose = chance(0.3) ? '*' : list(() => id(ID_CHARS), 3);
    if (chance(0.2)) r.qid = num(LIMITS.qid);
    if (chance(0.5)) {
      r.fsiz = { fx: 1 + num(LIMITS.coordinate - 1), fy: 1 + num(LIMITS.coordinate - 1), round: pick<RoundDirection>(['round-down', 'round-up', 'closest']) };
      if (chance(0.5)) r.roff = { x: num(LIMITS.coordinate), y: num(LIMITS.coordinate) };
      if (chance(0.5)) r.rsiz = { w: 1 + num(LIMITS.coordinate - 1), h: 1 + num(LIMITS.coordinate - 1) };
    }
    if (chance(0.2)) r.comps = list(() => range(LIMITS.index));
    if (chance(0.2)) r.layers = num(LIMITS.layers);
    if (chance(0.4)) r.stream = list(sampled);
    if (chance(0.2)) r.context = list((): ContextRange => ({ kind: 'jpxl', layers: list(sampled, 3) }), 2);
    if (chance(0.3)) r.metareq = metareq();
    if (chance(0.6)) r.len = num(LIMITS.len);
    if (chance(0.3)) r.type = list(type, 3);
    if (chance(0.1)) r.align = chance(0.5);
    if (chance(0.1)) r.wait = chance(0.5);
    if (chance(0.3)) r.model = model();
    return r;
  };
}

const roundTrip = suite('request round trip');

roundTrip('parseRequest(formatRequest(r)) deep-equals r for 3000 random requests (seed 20240601)', () => {
  const next = generator(20240601);
  for (let i = 0; i < 3000; i++) {
    const r = next();
    const q = formatRequest(r);
    let back: JpipRequest;
    try {
      back = parseRequest(q);
    } catch (e) {
      throw new Error(`request ${i} ${JSON.stringify(r)} -> ${q} does not parse: ${String(e)}`);
    }
    assert.equal(back, r, `request ${i}: ${q}`);
    // The same query as a form body: the builder never writes a raw +.
    assert.equal(parseRequest(q, { form: true }), r, `request ${i} as a form body`);
  }
});

roundTrip.run();

// ---------------------------------------------------------------------------
// Fuzz: random input only ever throws JpipError
// ---------------------------------------------------------------------------

const fuzz = suite('request fuzz');

const PIECES = [
  ...IMPLEMENTED_FIELDS, ...UNIMPLEMENTED_FIELDS, 'FSIZ', '_', 'jpxl<', 'mj2t<', 'Hm', 'H*', 'P', 'M', 'T', ':L',
  'round-up', 'closest', 'http', 'jpp-stream', 'image/', ';ptype=ext', '[*]', '!!', 'R', 'D', '%', '%2', '%3C', '%ZZ',
  '%C3%A9', '%FF', '%00', '+', '&', '=', ',', ';', ':', '-', '[', ']', '<', '>', '!', '*', '/', ' ', 'é', '\u0000',
  '0', '1', '9', '4294967296', '9007199254740992', '00000000000000000000001', 'yes', 'no',
];

function check(q: string, opts: ParseOptions): void {
  let r: JpipRequest;
  try {
    r = parseRequest(q, opts);
  } catch (e) {
    if (e instanceof JpipError) {
      assert.ok(e.status === 400 || e.status === 501, `status ${e.status} for ${JSON.stringify(q)}`);
      return;
    }
    throw new Error(`${JSON.stringify(q)} threw a non-JpipError: ${String(e)}`);
  }
  // Whatever parses formats to a query that parses back the same (idempotent normalization).
  const again = parseRequest(formatRequest(r), opts);
  assert.equal(again, { ...r, ignored: [] }, `re-parse of ${JSON.stringify(q)}`);
}

fuzz('random strings built from field names and syntax pieces (seed 7, 2 s cap)', () => {
  const rnd = mulberry32(7);
  const deadline = Date.now() + 2000;
  const lenients: ParseOptions[] = [{}, { form: true }, { lenient: { descendingStream: true, colonStreamRange: true, caseInsensitiveNames: true, emptySegments: true } }];
  for (let i = 0; i < 30000 && Date.now() < deadline; i++) {
    let q = '';
    for (let n = Math.floor(rnd() * 14); n > 0; n--) {
      q += rnd() < 0.8 ? PIECES[Math.floor(rnd() * PIECES.length)] : String.fromCharCode(Math.floor(rnd() * 0x80));
    }
    check(q, lenients[i % lenients.length]!);
  }
});

fuzz('mutations of the vector queries (seed 11, 2 s cap)', () => {
  const rnd = mulberry32(11);
  const deadline = Date.now() + 2000;
  const queries = all.map((v) => v.query).filter((q) => q.length > 0);
  const ALPHABET = '0123456789,;:-[]<>!*=&%+/ HmPLRDrwsgaxjplt';
  for (let i = 0; i < 30000 && Date.now() < deadline; i++) {
    const chars = [...queries[Math.floor(rnd() * queries.length)]!];
    for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) {
      const at = Math.floor(rnd() * (chars.length + 1));
      const op = rnd();
      const c = ALPHABET[Math.floor(rnd() * ALPHABET.length)]!;
      if (op < 0.33) chars.splice(at, 1);
      else if (op < 0.66) chars.splice(at, 0, c);
      else chars[at] = c;
    }
    check(chars.join(''), i % 2 === 0 ? {} : { lenient: { descendingStream: true, colonStreamRange: true } });
  }
});

fuzz.run();
