import { BIN_CLASS } from '../../jpip/constants.js';
import { bodyHint, expectStream, parseCnew, Session } from '../client.js';
import { header } from '../http.js';
import type { Role } from '../fixtures.js';
import { expect, fail, failed, nonStrict, ok, unimplemented, type Check } from '../types.js';
import { decodeHeld, expectOriginalBytes, expectSamePixels, fetchWindow, fullFrame, win } from './helpers.js';

/** Sessions: channels opened, used, closed; several at once; across connections. */

export const sessionChecks: Check[] = [
  {
    id: 'sessions.cnew',
    group: 'sessions',
    title: 'cnew=http opens a channel that later requests use with cid',
    why: 'Every stateful client (JHelioviewer, Kakadu, jpip.js) opens a channel and sends cid on each later request, on the path JPIP-cnew names.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { session, first } = await ctx.session('frame', { len: 0 });
      expect(first.messages.every((m) => m.length === 0), 'len=0 on cnew brought data');
      const r = expectStream(await session.request({ ...win(32, 32), len: 1 << 20 }), `cid=${session.cid} on ${session.channelPath}`);
      expect(r.messages.some((m) => m.classId === BIN_CLASS.MAIN_HEADER), 'the channel\'s first window brought no main header');
      expectOriginalBytes(r.messages, ctx.original('frame'));
      return ok(`cid=${session.cid}, path ${session.channelPath}`);
    },
  },
  {
    id: 'sessions.cclose',
    group: 'sessions',
    title: 'cclose ends a channel: its cid is unknown afterwards',
    why: 'JHelioviewer sends cclose=<cid>&len=0 when it closes a layer; a server that keeps the channel leaks its cache model, one that refuses cclose makes clients log errors.',
    profiles: ['core', 'jhv', 'full'],
    async run(ctx) {
      const { session } = await ctx.session('frame', { ...win(16, 16), len: 1 << 20 });
      const cid = session.cid;
      const bye = await session.request({ cclose: [cid], len: 0 }, { noCid: true });
      expect(bye.status === 200, `cclose answered ${bye.status}${bodyHint(bye.raw)}`);
      const after = await session.request({ ...win(32, 32), len: 1000, cid }, { noCid: true });
      if (after.status === 200) return failed(`cid=${cid} still works after cclose (200, ${after.messages.length} messages)`);
      return ok(`closed; the cid then gets ${after.status}`);
    },
  },
  {
    id: 'sessions.independent',
    group: 'sessions',
    title: 'Two sessions on one image each get all the data',
    why: 'Each channel has its own cache model; a server that shares one between sessions starves the second viewer of what the first already got.',
    profiles: ['core', 'full'],
    async run(ctx) {
      const fields = win(64, 64);
      const a = await fetchWindow(ctx, 'frame', fields, 1 << 20);
      const b = await fetchWindow(ctx, 'frame', fields, 1 << 20);
      expect(a.session.cid !== b.session.cid, `both sessions got cid ${a.session.cid}`);
      for (const [name, s] of [['first', a.session], ['second', b.session]] as const) {
        expect(s.holder.store.get(0, BIN_CLASS.MAIN_HEADER, 0)?.complete, `the ${name} session did not get the main header`);
        expectSamePixels(await decodeHeld(s, 0, 1), await ctx.expected('frame').decoded(1), `the ${name} session`);
      }
      return ok(`${a.session.cid} and ${b.session.cid} both complete`);
    },
  },
  {
    id: 'sessions.new-connection',
    group: 'sessions',
    title: 'A channel can be used from a new TCP connection',
    why: 'Browsers (jpip.js over XHR) and proxies open new connections at will; esajpip ties a channel to its connection (NON-STRICT), Kakadu and OpenJPIP do not.',
    profiles: ['full'],
    async run(ctx) {
      const { session } = await ctx.session('frame', { ...win(32, 32), len: 1 << 20 });
      const other = new Session(ctx.probe, ctx.target('frame'));
      other.channel = session.channel;
      other.channelPath = session.channelPath;
      const r = await other.request({ ...win(64, 64), len: 1 << 20 });
      other.conn.destroy();
      if (r.status >= 400 && r.status < 500) return nonStrict(`the channel is refused on another connection (${r.status}): it is tied to its TCP connection`);
      expectStream(r, 'the channel on a new connection');
      expect(!r.messages.some((m) => m.classId === BIN_CLASS.MAIN_HEADER && m.length > 0), 'the main header the session holds was sent again: the session\'s state was lost');
      expect(r.messages.some((m) => m.classId === BIN_CLASS.PRECINCT), 'no new precincts for the larger window');
      return ok('the session went on');
    },
  },
  {
    id: 'sessions.concurrent',
    group: 'sessions',
    title: 'Sessions on several connections at once all complete correctly',
    why: 'A server serves many viewers at once; their answers must not mix (a movie viewer opens one connection per layer).',
    profiles: ['core', 'full'],
    async run(ctx) {
      const roles: Role[] = ['frame', 'tiled', 'odd', 'frame'];
      const runs = await Promise.all(roles.map((role) => fetchWindow(ctx, role, fullFrame(ctx.expected(role)), 2500)));
      for (const [i, { session }] of runs.entries()) {
        const role = roles[i]!;
        expectSamePixels(await decodeHeld(session, 0), await ctx.expected(role).decoded(), `session ${i + 1} (${role})`);
      }
      return ok(`${runs.length} concurrent sessions exact`);
    },
  },
  {
    id: 'sessions.transport',
    group: 'sessions',
    title: 'A channel is granted only on a transport the client offered',
    why: 'OpenHTJ2K #423: cnew lists the transports the client accepts; granting http to a client that asked only for http-udp gives it a channel it cannot use.',
    profiles: ['full'],
    async run(ctx) {
      const r = await ctx.probe.get(ctx.target('frame'), 'cnew=http-udp&len=0');
      if ((r.status >= 400 && r.status < 500) || r.status === 501) return ok(`refused (${r.status})`);
      if (r.status !== 200) return failed(`cnew=http-udp answered ${r.status}${bodyHint(r.raw)}`);
      const cnew = header(r.raw, 'jpip-cnew');
      if (cnew === undefined) return ok('served without opening a channel');
      const info = parseCnew(cnew);
      if (info?.transport === 'http-udp') return ok('granted http-udp');
      return failed(`cnew=http-udp was granted ${JSON.stringify(cnew)}`);
    },
  },
  {
    id: 'sessions.cclose-star',
    group: 'sessions',
    title: 'cclose=* closes the channels of the request\'s session',
    why: 'The standard\'s way to end a whole session (esajpip and OpenJPIP accept it).',
    profiles: ['full'],
    async run(ctx) {
      const { session } = await ctx.session('frame', { ...win(16, 16), len: 1000 });
      const cid = session.cid;
      const bye = await session.request({ cclose: '*', len: 0 });
      if (bye.status === 400 || bye.status === 501) return unimplemented(`cclose=* answered ${bye.status}`);
      expect(bye.status === 200, `cclose=* answered ${bye.status}${bodyHint(bye.raw)}`);
      const after = await session.request({ ...win(32, 32), len: 1000, cid }, { noCid: true });
      if (after.status === 200) fail(`cid=${cid} still works after cclose=*`);
      return ok(`closed (then ${after.status})`);
    },
  },
];

