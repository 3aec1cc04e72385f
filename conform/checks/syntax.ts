import { BIN_CLASS } from '../../jpip/constants.js';
import { formatRequest } from '../../jpip/request.js';
import { bodyHint, expectStream, targetUrl, toJpp, type JppResponse } from '../client.js';
import type { CheckContext } from '../context.js';
import { expect, fail, nonStrict, ok, unimplemented, type Check } from '../types.js';
import { describe, expectOriginalBytes, win } from './helpers.js';

/** Request syntax: what a server must accept as JPIP clients really write it. */

/** The messages of a response as comparable strings (class, codestream, bin, offset, length, first bytes). */
function signature(r: JppResponse): string[] {
  return r.messages.map((m) => `${describe(m)} c=${m.complete} ${Buffer.from(m.data.subarray(0, 16)).toString('hex')}`);
}

function sameData(a: JppResponse, b: JppResponse): boolean {
  const x = signature(a);
  const y = signature(b);
  return x.length === y.length && x.every((s, i) => s === y[i]);
}

export const syntaxChecks: Check[] = [
  {
    id: 'syntax.basic-window',
    group: 'syntax',
    title: 'A window request on a new channel is answered with a JPP-stream',
    why: 'The request every client starts with: cnew=http with fsiz and len, the target in the URL path (esajpip, Kakadu and JHelioviewer name it so).',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { first } = await ctx.session('frame', { ...win(32, 32), len: 100000 });
      expectStream(first, 'cnew with fsiz=32,32');
      expect(first.messages.some((m) => m.classId === BIN_CLASS.MAIN_HEADER), 'no main header data-bin in the answer');
      expect(first.messages.some((m) => m.classId === BIN_CLASS.PRECINCT || m.classId === BIN_CLASS.EXTENDED_PRECINCT), 'no precinct data-bin in the answer');
      expectOriginalBytes(first.messages, ctx.original('frame'));
      return ok(`${first.messages.length} messages, ${first.raw.body.length} bytes`);
    },
  },
  {
    id: 'syntax.field-order',
    group: 'syntax',
    title: 'Fields are accepted in any order',
    why: 'JHelioviewer v3 builds its query from a Hashtable, so fields come in arbitrary order; the answer may not depend on it.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const fields = { ...win(64, 64, 'round-down'), len: 100000 };
      const canonical = formatRequest(fields);
      const reversed = canonical.split('&').reverse().join('&');
      const a = expectStream(await ctx.ask('frame', canonical), 'canonical order');
      const b = expectStream(await ctx.ask('frame', reversed), 'reversed order');
      expect(sameData(a, b), `the same fields in another order (${reversed}) gave other data (${b.messages.length} messages instead of ${a.messages.length})`);
      return ok(`${reversed} gives the same ${a.messages.length} messages as ${canonical}`);
    },
  },
  {
    id: 'syntax.raw-brackets',
    group: 'syntax',
    title: "JHelioviewer's raw metareq=[*]!! is accepted",
    why: 'JHelioviewer sends <, >, [, ], *, ! without %-encoding (metareq=[*]!!, context=jpxl<0-9>); a server that refuses them never shows an image.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { session } = await ctx.session('frame', { len: 0 });
      const r = await session.requestRaw('stream=0&metareq=[*]!!&len=2000000');
      expectStream(r, 'metareq=[*]!!');
      expect(r.messages.some((m) => m.classId === BIN_CLASS.METADATA && m.binId === 0), 'the answer to metareq=[*]!! holds no metadata-bin 0');
      const image = r.messages.filter((m) => m.classId === BIN_CLASS.PRECINCT || m.classId === BIN_CLASS.EXTENDED_PRECINCT);
      if (image.length > 0) return nonStrict(`accepted, but "!!" (metadata only) was not honoured: ${image.length} precinct messages came too`);
      return ok('metadata-bin 0 and no image data');
    },
  },
  {
    id: 'syntax.percent-encoding',
    group: 'syntax',
    title: '%-encoded field values mean the same as raw ones',
    why: 'Browsers and URL libraries encode "," as %2C; JPIP values are URL query values, so a server should decode them.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const a = expectStream(await ctx.ask('frame', 'fsiz=32,32,round-down&len=100000'), 'raw commas');
      const b = await ctx.ask('frame', 'fsiz=32%2C32%2Cround-down&len=100000');
      if (b.status >= 400 && b.status < 500) return nonStrict(`fsiz=32%2C32%2Cround-down is refused (${b.status}): this server decodes %-escapes only in some fields, as esajpip does`);
      expectStream(b, 'encoded commas');
      expect(sameData(a, b), 'fsiz=32%2C32%2Cround-down gives other data than fsiz=32,32,round-down');
      return ok('decoded');
    },
  },
  {
    id: 'syntax.unknown-field',
    group: 'syntax',
    title: 'A field that is not JPIP is ignored',
    why: 'Caches and web front ends add fields (`_=timestamp`); esajpip and OpenJPIP ignore them (Kakadu answers 400, which is stricter but not wrong).',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const a = expectStream(await ctx.ask('frame', 'fsiz=32,32&len=100000'), 'without extra fields');
      const b = await ctx.ask('frame', 'fsiz=32,32&len=100000&_=1234567&foo=bar');
      if (b.status === 400) return nonStrict(`refused with 400${bodyHint(b.raw)} (Kakadu does this too)`);
      expectStream(b, 'with _=1234567&foo=bar');
      expect(sameData(a, b), 'the extra fields changed the data sent');
      return ok('ignored');
    },
  },
  {
    id: 'syntax.no-len',
    group: 'syntax',
    title: 'A request without len still gets data',
    why: 'Without len the standard sets no byte limit; esajpip sends nothing then, which stalls clients that omit it (the JHelioviewer checklist asks servers to tolerate it).',
    profiles: ['core', 'full'],
    async run(ctx) {
      const r = expectStream(await ctx.ask('frame', win(32, 32)), 'fsiz=32,32 without len');
      const data = r.messages.reduce((n, m) => n + m.length, 0);
      if (data === 0) return nonStrict(`200 but no data (EOR ${r.eor}): len is treated as mandatory`);
      expectOriginalBytes(r.messages, ctx.original('frame'));
      return ok(`${data} data bytes`);
    },
  },
  {
    id: 'syntax.len-zero',
    group: 'syntax',
    title: 'len=0 gets no image data',
    why: 'len is the byte budget; JHelioviewer and jpip.js send len=0 with cclose and expect nothing back.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const r = expectStream(await ctx.ask('frame', 'fsiz=128,128&len=0'), 'len=0');
      const data = r.messages.reduce((n, m) => n + m.length, 0);
      expect(data === 0, `len=0 brought ${data} data bytes in ${r.messages.length} messages`);
      return ok(`no data bytes${r.eor !== undefined ? `, EOR ${r.eor}` : ''}`);
    },
  },
  {
    id: 'syntax.post',
    group: 'syntax',
    title: 'POST with the fields in a form body works like GET',
    why: 'Long model= strings do not fit a URL; the standard allows POST (OpenHTJ2K #296 added it; esajpip removed it).',
    profiles: ['full'],
    async run(ctx) {
      const query = 'fsiz=32,32&len=100000';
      const a = expectStream(await ctx.ask('frame', query), 'GET');
      const url = targetUrl(ctx.addr, ctx.target('frame'), '');
      const raw = await ctx.probe.raw(url, { method: 'POST', body: `cnew=http&${query}`, headers: [['Content-Type', 'application/x-www-form-urlencoded']] });
      if (raw.status === 405 || raw.status === 501) return unimplemented(`POST answered ${raw.status}`);
      const b = expectStream(toJpp(raw, url), 'POST');
      expect(sameData(a, b), 'POST gave other data than GET with the same fields');
      return ok('same data as GET');
    },
  },
  {
    id: 'syntax.target-field',
    group: 'syntax',
    title: 'The target may be named by the target= field',
    why: 'target= is the standard way to name the image (OpenJPIP needs it, esajpip and Kakadu accept it); the URL path is only a convenience.',
    profiles: ['full'],
    async run(ctx) {
      const a = expectStream(await ctx.ask('frame', 'fsiz=32,32&len=100000'), 'target in the path');
      const base = ctx.addr.base.pathname.replace(/\/+$/, '');
      const url = `${base}/?target=${encodeURIComponent(ctx.addr.prefix + ctx.target('frame'))}&cnew=http&fsiz=32,32&len=100000`;
      const b = toJpp(await ctx.probe.raw(url), url);
      if (b.status >= 400 && b.status < 500 || b.status === 501) return unimplemented(`target= answered ${b.status}${bodyHint(b.raw)}`);
      expectStream(b, 'target=');
      if (!sameData(a, b)) fail('target= gave other data than naming the file in the path');
      return ok('same data as the path form');
    },
  },
];
