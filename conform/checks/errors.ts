import { HttpConnectionError, HttpTimeout, header } from '../http.js';
import { bodyHint, expectStream, targetUrl, toJpp } from '../client.js';
import { expect, fail, failed, nonStrict, ok, type Check, type Outcome } from '../types.js';
import { expectOriginalBytes, gradeError, win } from './helpers.js';

/** Error handling: bad input gets the right status, never data, never a crash or a hang. */

/** A file every Unix system has, to ask for through a traversal. */
const OUTSIDE = 'etc/hostname';

/** Grades a traversal attempt: anything but a refusal that serves nothing is FAILED. */
function gradeTraversal(status: number, body: Uint8Array, what: string): Outcome | undefined {
  if (status >= 200 && status < 300) return failed(`${what} was answered ${status} with ${body.length} bytes: a path outside the image root was served`);
  if (status >= 500) return nonStrict(`${what}: ${status}: refused, but as a server error`);
  return undefined;
}

export const errorChecks: Check[] = [
  {
    id: 'errors.bad-fsiz',
    group: 'errors',
    title: 'A malformed fsiz is refused with 400',
    why: 'esajpip drops a malformed fsiz silently and serves something else; the client must learn its request was wrong (400), not get data it did not ask for.',
    profiles: ['core', 'full'],
    async run(ctx) {
      return gradeError(await ctx.get('frame', 'fsiz=abc,64&len=100'), [400], 'fsiz=abc,64');
    },
  },
  {
    id: 'errors.bad-len',
    group: 'errors',
    title: 'A negative len is refused with 400',
    why: 'len is an unsigned number; a server that clamps or ignores a bad len hides the client\'s bug.',
    profiles: ['core', 'full'],
    async run(ctx) {
      return gradeError(await ctx.get('frame', 'fsiz=64,64&len=-1'), [400], 'len=-1');
    },
  },
  {
    id: 'errors.roff-without-fsiz',
    group: 'errors',
    title: 'roff without fsiz is refused',
    why: 'roff and rsiz are coordinates in the fsiz frame: without fsiz they mean nothing. Servers differ (some take the full frame), so a 200 is NON-STRICT.',
    profiles: ['full'],
    async run(ctx) {
      return gradeError(await ctx.get('frame', 'roff=8,8&rsiz=16,16&len=100'), [400], 'roff and rsiz without fsiz', { twoIsNonStrict: true });
    },
  },
  {
    id: 'errors.not-found',
    group: 'errors',
    title: 'A missing target is 404',
    why: 'JHelioviewer issue #68: esajpip answers 500 for a missing file, and the viewer reports a server fault. OpenJPIP answers 400 (NON-STRICT).',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const r = await ctx.probe.get(`no-such-file-${Date.now()}.jp2`, 'fsiz=64,64&len=100');
      return gradeError(r, [404], 'a target that does not exist');
    },
  },
  {
    id: 'errors.traversal-path',
    group: 'errors',
    title: 'A path with ../ cannot leave the image root',
    why: 'The image root is the only part of the file system a JPIP server may show; `..` segments, raw or %-encoded, must not reach /etc.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const base = ctx.addr.base.pathname.replace(/\/+$/, '');
      const ups = '../'.repeat(12);
      const tries = [`${base}/${ups}${OUTSIDE}?len=100`, `${base}/${'%2e%2e/'.repeat(12)}${OUTSIDE}?len=100`, `${base}/movie/${'..%2f'.repeat(12)}${OUTSIDE}?len=100`];
      const seen: number[] = [];
      for (const url of tries) {
        const r = await ctx.probe.raw(url);
        const bad = gradeTraversal(r.status, r.body, url);
        if (bad) return bad;
        seen.push(r.status);
      }
      return ok(`refused (${seen.join(', ')})`);
    },
  },
  {
    id: 'errors.traversal-target',
    group: 'errors',
    title: 'target= cannot leave the image root (../ or an absolute path)',
    why: 'The target field is a second way to name a file: it needs the same confinement as the path.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const base = ctx.addr.base.pathname.replace(/\/+$/, '');
      const tries = [`target=${'../'.repeat(12)}${OUTSIDE}`, `target=${'..%2F'.repeat(12)}${OUTSIDE}`, `target=/${OUTSIDE}`, `target=%2F${OUTSIDE}`];
      const seen: number[] = [];
      for (const q of tries) {
        const url = `${base}/?${q}&len=100`;
        const r = await ctx.probe.raw(url);
        const bad = gradeTraversal(r.status, r.body, q);
        if (bad) return bad;
        seen.push(r.status);
      }
      return ok(`refused (${seen.join(', ')})`);
    },
  },
  {
    id: 'errors.not-jpeg2000',
    group: 'errors',
    title: 'A file that is not JPEG 2000 is refused with a 4xx',
    why: 'A server must not stream arbitrary files as JPP data, nor blame itself (5xx) for a client asking for the wrong file. 415 says exactly what is wrong; other 4xx are NON-STRICT.',
    profiles: ['core', 'full'],
    async run(ctx) {
      return gradeError(await ctx.get('not-image', 'fsiz=64,64&len=1000'), [415], 'a non-JPEG 2000 file');
    },
  },
  {
    id: 'errors.unknown-cid',
    group: 'errors',
    title: 'An unknown channel id is 404',
    why: 'OpenHTJ2K #423: an unknown or expired cid must be an error (404 best) so the client opens a new channel; serving it as if it were fine loses the client\'s cache state silently.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { session } = await ctx.session('frame', { len: 0 });
      const r = await session.request({ cid: 'Cnosuchchannel0', len: 100, ...win(64, 64) }, { noCid: true });
      return gradeError(r, [404], 'cid=Cnosuchchannel0', { fiveIsNonStrict: true });
    },
  },
  {
    id: 'errors.error-not-jpp',
    group: 'errors',
    title: 'Error answers are not labelled image/jpp-stream',
    why: 'A client decodes every image/jpp-stream body as JPP messages; an error text labelled so is read as garbage data-bins.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const r = await ctx.probe.get(`no-such-file-${Date.now()}.jp2`, 'fsiz=64,64&len=100');
      expect(r.status >= 400, `a missing target was answered ${r.status}`);
      const ct = (header(r.raw, 'content-type') ?? '').toLowerCase();
      expect(!ct.includes('jpp-stream') && !ct.includes('jpt-stream'), `the ${r.status} answer is labelled ${ct}`);
      return ok(`${r.status}, ${ct || 'no Content-Type'}`);
    },
  },
  {
    id: 'errors.method',
    group: 'errors',
    title: 'Methods other than GET and POST are refused',
    why: 'PUT or DELETE on an image must not be taken for a GET (or change anything); 405 or 501 say so.',
    profiles: ['full'],
    async run(ctx) {
      const url = targetUrl(ctx.addr, ctx.target('frame'), 'len=100');
      const r = await ctx.probe.raw(url, { method: 'DELETE' });
      return gradeError(toJpp(r, url), [405, 501], 'DELETE');
    },
  },
  {
    id: 'errors.malformed-http',
    group: 'errors',
    title: 'A malformed HTTP request gets an answer, not a hang',
    why: 'Scanners and broken proxies send garbage; the server must answer (400) or close, never keep the connection waiting.',
    profiles: ['full'],
    async run(ctx) {
      const conn = ctx.pool.open();
      await conn.sendRaw('GARBAGE \x01\x02 NOT HTTP\r\n\r\n', ctx.timeoutMs);
      try {
        const r = await conn.readResponse(Date.now() + ctx.timeoutMs);
        if (r.status >= 400 && r.status < 500) return ok(`${r.status}`);
        if (r.status >= 500) return nonStrict(`${r.status}: a server error for a client's garbage`);
        return failed(`garbage was answered ${r.status}`);
      } catch (e) {
        if (e instanceof HttpTimeout) return failed(`no answer and no close within ${ctx.timeoutMs} ms: the connection hangs`);
        if (e instanceof HttpConnectionError) return nonStrict(`the connection was closed without an answer (${e.message})`);
        throw e;
      }
    },
  },
  {
    id: 'errors.survives-bad-input',
    group: 'errors',
    title: 'Bad requests do not disturb other sessions',
    why: 'One client\'s garbage must not cost other clients their sessions (esajpip restarts its child process on a crash; a server that loses its sessions makes every viewer start over).',
    profiles: ['core', 'full'],
    exclusive: true,
    async run(ctx) {
      const { session, first } = await ctx.session('frame', { ...win(32, 32), len: 100000 });
      expectStream(first, 'the session\'s first request');
      const bad = ['fsiz=abc&len=1', 'len=-5', `stream=${'9'.repeat(40)}&len=1`, 'model=%ZZ&len=1', 'fsiz=64,64&roff=1&len=1', `cid=${'x'.repeat(300)}&len=1`];
      for (const q of bad) await ctx.get('frame', q);
      const conn = ctx.pool.open();
      await conn.sendRaw('\x00\x01\x02 GARBAGE\r\n\r\n', ctx.timeoutMs).catch(() => undefined);
      await conn.readResponse(Date.now() + Math.min(ctx.timeoutMs, 1000)).catch(() => undefined);
      conn.destroy();
      const r = await session.request({ ...win(64, 64), len: 100000 });
      expectStream(r, 'the session after the bad requests');
      expect(r.messages.length > 0, 'the session got nothing for a larger window after the bad requests');
      expect(!r.messages.some((m) => m.classId === 6 && m.offset === 0), 'the session was forgotten: the main header it already had was sent again');
      expectOriginalBytes(r.messages, ctx.original('frame'));
      return ok(`the session went on after ${bad.length + 1} bad requests`);
    },
  },
  {
    id: 'errors.long-request',
    group: 'errors',
    title: 'A very long request line is answered, not dropped',
    why: 'model= strings grow with the cache; a server must serve a long query or refuse it with 414, not cut the connection or crash.',
    profiles: ['full'],
    async run(ctx) {
      const model = Array.from({ length: 2500 }, (_, i) => `P${i}:1`).join(',');
      const r = await ctx.ask('frame', `fsiz=32,32&len=1000&model=${model}`).catch((e: unknown) => {
        if (e instanceof HttpConnectionError) fail(`a ${model.length + 40}-byte request: ${e.message}`);
        throw e;
      });
      if (r.status === 414 || r.status === 413) return ok(`refused with ${r.status}`);
      if (r.status === 200) {
        expectStream(r, 'the long request');
        return ok(`served (${model.length + 40}-byte request)`);
      }
      if (r.status >= 400 && r.status < 500) return nonStrict(`refused with ${r.status}${bodyHint(r.raw)} (414 says why)`);
      return failed(`a ${model.length + 40}-byte request was answered ${r.status}`);
    },
  },
];
