import { header, headerAll } from '../http.js';
import { expectStream, parseCnew, targetUrl, toJpp } from '../client.js';
import { expect, fail, failed, nonStrict, ok, unimplemented, type Check } from '../types.js';
import { contentType, win } from './helpers.js';

/** Response headers: what clients parse before they look at the body. */

export const headerChecks: Check[] = [
  {
    id: 'headers.status-line',
    group: 'headers',
    title: 'Success is exactly "HTTP/1.1 200 OK"',
    why: 'JHelioviewer (HTTPSocket.readHeader) accepts only this exact status line and throws on anything else, such as Kakadu\'s "200 OK, with modifications" or an HTTP/1.0 line.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { first, session } = await ctx.session('frame', { ...win(32, 32), len: 2000 });
      const second = await session.request({ ...win(64, 64), len: 2000 });
      for (const r of [first, second]) expect(r.raw.statusLine === 'HTTP/1.1 200 OK', `status line ${JSON.stringify(r.raw.statusLine)}`);
      return ok('HTTP/1.1 200 OK');
    },
  },
  {
    id: 'headers.content-type',
    group: 'headers',
    title: 'Content-Type is exactly image/jpp-stream',
    why: 'JHelioviewer compares the Content-Type with "image/jpp-stream" exactly; browsers use it to pick the handler.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { first, session } = await ctx.session('frame', { ...win(32, 32), len: 2000 });
      const second = await session.request({ ...win(64, 64), len: 2000 });
      for (const r of [first, second]) {
        const all = headerAll(r.raw, 'content-type');
        expect(all.length === 1, `${all.length} Content-Type headers`);
        expect(all[0] === 'image/jpp-stream', `Content-Type ${JSON.stringify(all[0])}`);
      }
      return ok('image/jpp-stream');
    },
  },
  {
    id: 'headers.framing',
    group: 'headers',
    title: 'Bodies are framed by chunked encoding or Content-Length, correctly',
    why: 'A persistent connection needs the body\'s end to be known; bad chunk sizes were JHelioviewer v3 issue #38 ("Invalid chunk length").',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { first, session } = await ctx.session('frame', { ...win(128, 128), len: 1500 });
      const r2 = await session.request({ ...win(128, 128), len: 100000 });
      const kinds = new Set<string>();
      for (const r of [first, r2]) {
        expect(r.raw.framingError === undefined, `${r.raw.framingError}`);
        kinds.add(r.raw.framing);
        if (r.raw.framing === 'close') return nonStrict('the body ends when the connection closes: legal HTTP, but the connection cannot be kept');
      }
      return ok([...kinds].join(', '));
    },
  },
  {
    id: 'headers.keep-alive',
    group: 'headers',
    title: 'The connection stays open between requests of a session',
    why: 'JHelioviewer keeps one socket per layer for all its requests; a server that closes it after each answer costs a reconnect per request and breaks esajpip-style clients.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { session } = await ctx.session('frame', { ...win(16, 16), len: 100000 });
      for (const w of [32, 64, 128]) {
        const r = await session.request({ ...win(w, w), len: 100000 });
        expectStream(r, `fsiz=${w},${w}`);
        expect(!r.raw.closed, `after the request for fsiz=${w},${w} the server closed the connection${header(r.raw, 'connection') ? ` (Connection: ${header(r.raw, 'connection')})` : ''}`);
      }
      expect(session.conn.connects === 1, `${session.conn.connects} TCP connections were needed for 4 requests`);
      return ok('4 requests on one connection');
    },
  },
  {
    id: 'headers.cache-control',
    group: 'headers',
    title: 'JPP answers are not cacheable by proxies',
    why: 'The answer depends on the session\'s cache model, so a proxy must not replay it to another client: esajpip always sends Cache-Control: no-cache, Kakadu on stateful answers.',
    profiles: ['full'],
    async run(ctx) {
      const { first } = await ctx.session('frame', { ...win(32, 32), len: 2000 });
      const cc = (header(first.raw, 'cache-control') ?? '').toLowerCase();
      if (cc === '') return nonStrict('no Cache-Control header');
      const maxAge = /max-age=(\d+)/.exec(cc);
      if (/\bpublic\b/.test(cc) || (maxAge && Number(maxAge[1]) > 0 && !/no-cache|no-store|private/.test(cc))) return failed(`Cache-Control: ${cc} lets a shared cache replay a session's answer`);
      if (!/no-cache|no-store|private/.test(cc)) return nonStrict(`Cache-Control: ${cc}`);
      return ok(`Cache-Control: ${cc}`);
    },
  },
  {
    id: 'headers.cors',
    group: 'headers',
    title: 'Answers allow cross-origin reads (CORS)',
    why: 'Browser viewers (jpip.js) fetch from another origin; without Access-Control-Allow-Origin the browser hides the answer.',
    profiles: ['full'],
    async run(ctx) {
      const { first } = await ctx.session('frame', { ...win(32, 32), len: 2000 }, [['Origin', 'http://viewer.example']]);
      const acao = header(first.raw, 'access-control-allow-origin');
      expect(acao !== undefined, 'no Access-Control-Allow-Origin header');
      expect(acao === '*' || acao === 'http://viewer.example', `Access-Control-Allow-Origin: ${acao}`);
      return ok(`Access-Control-Allow-Origin: ${acao}`);
    },
  },
  {
    id: 'headers.cors-expose',
    group: 'headers',
    title: 'JPIP-cnew and JPIP-tid are exposed to browser scripts',
    why: 'A browser script sees only the headers listed in Access-Control-Expose-Headers; jpip.js needs JPIP-cnew to learn its channel.',
    profiles: ['full'],
    async run(ctx) {
      const { first } = await ctx.session('frame', { ...win(32, 32), len: 2000, tid: '0' }, [['Origin', 'http://viewer.example']]);
      const exposed = headerAll(first.raw, 'access-control-expose-headers').join(',').toLowerCase().split(',').map((s) => s.trim());
      if (exposed.includes('*')) return ok('Access-Control-Expose-Headers: *');
      const missing = ['jpip-cnew', 'jpip-tid'].filter((h) => !exposed.includes(h));
      expect(missing.length === 0, `Access-Control-Expose-Headers does not list ${missing.join(' and ')}`);
      return ok('JPIP-cnew and JPIP-tid exposed');
    },
  },
  {
    id: 'headers.cnew',
    group: 'headers',
    title: 'JPIP-cnew is a key=value list with cid and transport=http',
    why: 'JHelioviewer and Kakadu clients split JPIP-cnew on commas and "=" and require cid and transport=http (JPIPSocket).',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const url = targetUrl(ctx.addr, ctx.target('frame'), 'cnew=http&type=jpp-stream&tid=0&len=512');
      const r = toJpp(await ctx.probe.raw(url), url);
      expectStream(r, 'cnew=http');
      const all = headerAll(r.raw, 'jpip-cnew');
      expect(all.length === 1, `${all.length} JPIP-cnew headers`);
      const info = parseCnew(all[0]!);
      expect(info !== undefined, `JPIP-cnew ${JSON.stringify(all[0])} is not a key=value list with a cid`);
      expect(info.transport === 'http', `JPIP-cnew ${JSON.stringify(all[0])}: transport is ${info.transport === undefined ? 'missing' : JSON.stringify(info.transport)}, not http`);
      expect(/^[\x21-\x7e]+$/.test(info.cid) && !/[,;&=]/.test(info.cid), `cid ${JSON.stringify(info.cid)} has characters a query cannot carry raw`);
      return ok(all[0]!);
    },
  },
  {
    id: 'headers.tid-private',
    group: 'headers',
    title: 'JPIP-tid does not reveal server paths',
    why: 'esajpip sends the full server file path as the target id (an information leak; OpenHTJ2K #296 uses the base name). A tid only has to be stable and unique.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { first } = await ctx.session('frame', { tid: '0', len: 0 });
      const tid = header(first.raw, 'jpip-tid');
      if (tid === undefined) return nonStrict('no JPIP-tid although tid=0 asked for it');
      expect(!tid.includes('/') && !tid.includes('\\'), `JPIP-tid ${JSON.stringify(tid)} holds a path`);
      return ok(`JPIP-tid: ${tid}`);
    },
  },
  {
    id: 'headers.tid-stable',
    group: 'headers',
    title: 'The target id is stable for a file and differs between files',
    why: 'Clients keep their cache across sessions keyed by tid (JHelioviewer\'s JPIPCacheManager); a tid that changes every time throws the cache away, one shared by two files mixes them.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const a = (await ctx.session('frame', { tid: '0', len: 0 })).first;
      const b = (await ctx.session('frame', { tid: '0', len: 0 })).first;
      const c = (await ctx.session('tiled', { tid: '0', len: 0 })).first;
      const [ta, tb, tc] = [a, b, c].map((r) => header(r.raw, 'jpip-tid'));
      if (ta === undefined || tb === undefined || tc === undefined) return nonStrict('JPIP-tid is not always sent when tid=0 asks for it');
      expect(ta === tb, `the same file has tid ${ta} and then ${tb}`);
      expect(ta !== tc, `two files share the tid ${ta}`);
      return ok(`stable (${ta})`);
    },
  },
  {
    id: 'headers.qid',
    group: 'headers',
    title: 'qid is echoed in JPIP-qid',
    why: 'OpenHTJ2K #423: the standard makes echoing qid a "shall"; Kakadu does it. Clients match answers to requests by it.',
    profiles: ['full'],
    async run(ctx) {
      const { first } = await ctx.session('frame', { ...win(32, 32), len: 2000, qid: 7 });
      const q = header(first.raw, 'jpip-qid');
      if (q === undefined) return unimplemented('no JPIP-qid header');
      expect(q === '7', `JPIP-qid: ${q} for qid=7`);
      return ok('JPIP-qid: 7');
    },
  },
  {
    id: 'headers.jpip-fsiz',
    group: 'headers',
    title: 'A frame size the image does not have is reported in JPIP-fsiz',
    why: 'When the server serves another frame size than asked, the client must know which (Kakadu and OpenJPIP send JPIP-fsiz; esajpip never does).',
    profiles: ['full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { width, height } = exp.frameSize(0);
      const fx = width - Math.max(1, Math.floor(width / 4));
      const fy = height - Math.max(1, Math.floor(height / 4));
      const { first } = await ctx.session('frame', { ...win(fx, fy, 'round-down'), len: 100000 });
      expectStream(first, `fsiz=${fx},${fy},round-down`);
      const want = exp.frameSize(exp.view(win(fx, fy, 'round-down'))!.discard);
      const got = header(first.raw, 'jpip-fsiz');
      if (got === undefined) return unimplemented(`no JPIP-fsiz for fsiz=${fx},${fy} (the image has ${want.width}x${want.height})`);
      expect(got.replace(/\s/g, '') === `${want.width},${want.height}`, `JPIP-fsiz: ${got} for fsiz=${fx},${fy},round-down; the frame served is ${want.width},${want.height}`);
      const exact = (await ctx.session('frame', { ...win(want.width, want.height), len: 100 })).first;
      const again = header(exact.raw, 'jpip-fsiz');
      if (again !== undefined && again.replace(/\s/g, '') !== `${want.width},${want.height}`) fail(`JPIP-fsiz: ${again} for an exact frame size`);
      return ok(`JPIP-fsiz: ${got}`);
    },
  },
  {
    id: 'headers.jpip-rsiz',
    group: 'headers',
    title: 'A region clipped at the image edge is reported in JPIP-rsiz',
    why: 'The client places the data it gets by the region served; after clipping that differs from the one asked for (Kakadu and OpenJPIP send JPIP-roff/JPIP-rsiz when they change them).',
    profiles: ['full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { width, height } = exp.frameSize(0);
      const roff: [number, number] = [width - 16, height - 16];
      const { first } = await ctx.session('frame', { ...win(width, height, 'round-down', roff, [64, 64]), len: 100000 });
      expectStream(first, 'a region over the edge');
      const got = header(first.raw, 'jpip-rsiz');
      if (got === undefined) return unimplemented('no JPIP-rsiz for a region cut by the image edge');
      expect(got.replace(/\s/g, '') === '16,16', `JPIP-rsiz: ${got}; the region left after clipping is 16,16`);
      return ok(`JPIP-rsiz: ${got}`);
    },
  },
  {
    id: 'headers.jpip-layers',
    group: 'headers',
    title: 'Asking for more layers than exist is answered with JPIP-layers',
    why: 'OpenJPIP and Kakadu report the layers actually available, so a client does not wait for layers that will never come.',
    profiles: ['full'],
    async run(ctx) {
      const exp = ctx.expected('frame');
      const { first } = await ctx.session('frame', { ...win(32, 32), layers: exp.layers + 20, len: 1000 });
      expectStream(first, `layers=${exp.layers + 20}`);
      const got = header(first.raw, 'jpip-layers');
      if (got === undefined) return unimplemented('no JPIP-layers');
      expect(got.trim() === String(exp.layers), `JPIP-layers: ${got}; the image has ${exp.layers}`);
      return ok(`JPIP-layers: ${got}`);
    },
  },
  {
    id: 'headers.gzip',
    group: 'headers',
    title: 'Content-Encoding only when the client accepts it, and then valid',
    why: 'esajpip gzips metadata answers only for clients sending Accept-Encoding: gzip; a client that did not ask cannot read a gzipped body.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { session } = await ctx.session('frame', { len: 0 });
      const plain = await session.requestRaw('stream=0&metareq=[*]!!&len=100000');
      expectStream(plain, 'metareq without Accept-Encoding');
      const ce = header(plain.raw, 'content-encoding');
      expect(ce === undefined || ce.toLowerCase() === 'identity', `Content-Encoding: ${ce} although the request did not accept it`);
      const zipped = await session.requestRaw('stream=0&metareq=[*]!!&len=100000', { headers: [['Accept-Encoding', 'gzip']] });
      expectStream(zipped, 'metareq with Accept-Encoding: gzip');
      expect(zipped.raw.framingError === undefined, zipped.raw.framingError ?? '');
      const z = header(zipped.raw, 'content-encoding');
      return ok(z ? `Content-Encoding: ${z} when accepted, none otherwise` : 'never compressed');
    },
  },
  {
    id: 'headers.content-type-jpt',
    group: 'headers',
    title: 'type=jpt-stream is answered as image/jpt-stream, or refused',
    why: 'A client that asks for tiles parses the body by the Content-Type; a JPP body labelled JPT (or the reverse) is misread.',
    profiles: ['full'],
    async run(ctx) {
      const r = await ctx.ask('raw', { ...win(64, 64), type: [{ name: 'jpt-stream', ext: false }], len: 100000 });
      if (r.status === 501 || r.status === 400 || r.status === 415) return unimplemented(`type=jpt-stream answered ${r.status}`);
      expectStream(r, 'type=jpt-stream');
      const ct = contentType(r);
      if (ct === 'image/jpp-stream') {
        expect(!r.messages.some((m) => m.classId === 4 || m.classId === 5), 'labelled image/jpp-stream but holds tile data-bins');
        return unimplemented('answered with a JPP-stream (JPT-stream not offered)');
      }
      expect(ct === 'image/jpt-stream', `Content-Type ${ct} for type=jpt-stream`);
      expect(!r.messages.some((m) => m.classId === 0 || m.classId === 1 || m.classId === 2), 'labelled image/jpt-stream but holds precinct or tile-header data-bins');
      return ok('image/jpt-stream');
    },
  },
];
