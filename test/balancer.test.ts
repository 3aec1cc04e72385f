import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCrowd } from '../client-sim/crowd.js';
import { register as registerBalancer } from '../bin/commands/balancer.js';
import { checkInstances, haproxyConfig, nginxConfig, type BalancedInstance } from '../server/balancer.js';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { FIXTURES, freePort, runCommand } from './helpers.js';

/**
 * Several instances behind a real load balancer (nginx from Debian; CI installs it): sessions
 * stay on the instance that granted them (cid prefix), new ones spread by target (consistent
 * hashing), and when an instance stops mid-run no client hangs: its sessions get 404 (unknown
 * channel) from another instance and are opened again there.
 */
const lb = suite('several instances behind nginx');
const NGINX = ['nginx', '/usr/sbin/nginx'].find((n) => spawnSync(n, ['-v'], { stdio: 'ignore' }).status === 0);
const MOVIES = 16;

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.status > 0,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}

lb('the configs route channels by prefix and spread targets; prefixes that cannot be told apart are refused', () => {
  const inst: BalancedInstance[] = [
    { prefix: 'A1', host: '127.0.0.1', port: 9001 },
    { prefix: 'B2', host: '127.0.0.1', port: 9002 },
  ];
  const n = nginxConfig({ listen: { host: '127.0.0.1', port: 9000 }, instances: inst, dir: '/tmp/x' });
  assert.match(n, /hash \$uri\$arg_target consistent;/);
  assert.match(n, /~\^A1 jpip_i_A1;/);
  assert.match(n, /upstream jpip_i_A1 \{\n {4}server 127\.0\.0\.1:9001 [^\n]*;\n {4}server 127\.0\.0\.1:9002 [^\n]* backup;/);
  assert.match(n, /proxy_buffering off;/);
  const h = haproxyConfig({ listen: { host: '127.0.0.1', port: 9000 }, instances: inst, dir: '/tmp/x' });
  assert.match(h, /acl ch_B2 url_param\(cid\) -m beg B2/);
  assert.match(h, /use_backend jpip_i_B2 if ch_B2 \|\| cl_B2/);
  assert.match(h, /hash-type consistent/);
  assert.throws(() => checkInstances([{ prefix: 'A', host: 'h', port: 1 }, { prefix: 'AB', host: 'h', port: 2 }]), /A begins AB/);
  assert.throws(() => checkInstances([{ prefix: 'a-b', host: 'h', port: 1 }]), /letters or digits/);
  assert.throws(() => checkInstances([]), /at least one/);
});

lb('a crowd through nginx over two instances; one stops mid-run: no client hangs, its sessions are opened again on the other', async () => {
  if (!NGINX) {
    console.log('  (skipped: nginx is not installed; apt-get install nginx-light)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'jpip-lb-'));
  const servers: JpipServer[] = [];
  let nginx: ChildProcess | undefined;
  try {
    // 16 movies (copies of the linked test movie), so consistent hashing gives both instances some.
    const root = join(dir, 'root');
    mkdirSync(join(root, 'frames'), { recursive: true });
    for (const f of ['frame 000.jp2', 'frame 001.jp2', 'frame 002.jp2']) copyFileSync(join(FIXTURES, 'movie', 'frames', f), join(root, 'frames', f));
    const targets = Array.from({ length: MOVIES }, (_, i) => `movie-${String(i).padStart(2, '0')}.jpx`);
    for (const t of targets) copyFileSync(join(FIXTURES, 'movie', 'linked.jpx'), join(root, t));

    const instances: BalancedInstance[] = [];
    for (const prefix of ['A', 'B']) {
      const s = createJpipServer({ root, port: 0, cidPrefix: prefix, logLevel: 'error', log: () => {} });
      servers.push(s);
      instances.push({ prefix, host: '127.0.0.1', port: Number(new URL(await s.listen()).port) });
    }
    const port = await freePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConfig({ listen: { host: '127.0.0.1', port }, instances, dir, failSeconds: 30 }));
    nginx = spawn(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let nginxErr = '';
    nginx.stderr!.on('data', (d: Buffer) => (nginxErr += d.toString()));
    await waitForPort(port, 5000).catch((e: Error) => {
      throw new Error(`${e.message}: ${nginxErr}`);
    });

    // Stop instance A a second into the run (its connections are cut, its sessions gone).
    const [a, b] = servers as [JpipServer, JpipServer];
    let aBefore = 0;
    let bBefore = 0;
    const stopped = new Promise<void>((resolve) =>
      setTimeout(() => {
        aBefore = a.stats.responses;
        bBefore = b.stats.responses;
        void a.close().then(resolve);
      }, 1200),
    );
    const t0 = Date.now();
    const r = await runCrowd({
      server: `http://127.0.0.1:${port}`,
      root,
      targets,
      clients: 8,
      every: 0.4,
      duration: 3,
      sessionLength: 2.5,
      woi: { w: 128, h: 128 },
      level: 0,
      framesPerQuery: 1,
      len: 3000,
      timeoutMs: 4000,
      maxRetries: 5,
      tickMs: 250,
    });
    await stopped;
    const took = (Date.now() - t0) / 1000;

    // Both instances served before the stop; B alone after it.
    assert.ok(aBefore > 0 && bBefore > 0, `both instances had clients before the stop (A ${aBefore}, B ${bBefore} responses)`);
    assert.ok(b.stats.responses > bBefore, 'B went on serving');
    // Nobody hung: the run ended on time, no request timed out, no client gave up.
    assert.ok(took < 3 + 6, `the run took ${took} s`);
    assert.is(r.errors.byKind.timeout ?? 0, 0, JSON.stringify(r.errors));
    assert.is(r.totals.clientsGaveUp, 0);
    // The failures are the stop's: the channel unknown on B (404), a cut or refused connection.
    for (const status of Object.keys(r.errors.byStatus)) assert.ok(['404', '502'].includes(status), `unexpected HTTP ${status}: ${JSON.stringify(r.errors.samples)}`);
    assert.ok(r.errors.total > 0, 'the stop was felt');
    // Every session completed (closed at its end) or was abandoned and opened again.
    assert.ok(r.totals.sessionsAbandoned > 0, 'sessions of A were abandoned');
    assert.is(r.totals.sessionsOpened, r.totals.sessionsClosed + r.totals.sessionsAbandoned, JSON.stringify(r.totals));
    assert.ok(r.totals.sessionsOpened >= r.totals.clients + 1, `re-established: ${r.totals.sessionsOpened} sessions for ${r.totals.clients} clients`);
    assert.ok(r.totals.windowsDone > 0);
    // Routing by channel: while both instances ran, no request reached the wrong one (no 404, no error).
    const early = r.timeline.filter((t) => t.t <= 1);
    assert.ok(early.length > 0 && early.reduce((n, t) => n + t.responses, 0) > 0);
    assert.is(early.reduce((n, t) => n + t.errors, 0), 0, `errors before the stop: ${JSON.stringify(r.errors.samples)}`);
  } finally {
    nginx?.kill('SIGTERM');
    for (const s of servers) await s.close().catch(() => {});
    if (nginx && nginx.exitCode === null) await new Promise((r) => nginx!.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
});

lb('jpip-bench balancer prints the config for the instances given, and refuses bad ones in one line', async () => {
  const run = (args: string[]): ReturnType<typeof runCommand> => runCommand(registerBalancer, args);
  const n = await run(['balancer', 'nginx', '--instance', 'I1x=127.0.0.1:8091', '--instance', 'I2x=[::1]:8092', '--listen', '0.0.0.0:8080', '--dir', '/srv/lb']);
  assert.is(n.code, 0, n.err);
  assert.match(n.out, /listen 0\.0\.0\.0:8080;/);
  assert.match(n.out, /server \[::1\]:8092 /);
  assert.match(n.out, /pid \/srv\/lb\/nginx\.pid;/);
  const h = await run(['balancer', 'haproxy', '--instance', 'A=127.0.0.1:1', '--fail-seconds', '3']);
  assert.is(h.code, 0, h.err);
  assert.match(h.out, /check inter 3s/);
  for (const [args, why] of [
    [['--instance', 'A=127.0.0.1'], /expected HOST:PORT/],
    [['--instance', 'nope'], /expected PREFIX=HOST:PORT/],
    [['--instance', 'A=h:1', '--instance', 'AB=h:2'], /A begins AB/],
    [['--instance', 'A=h:1', '--connect-timeout', '0'], /--connect-timeout must be/],
  ] as const) {
    const r = await run(['balancer', 'nginx', ...args]);
    assert.is(r.code, 2);
    assert.match(r.err, why);
    assert.is(r.out, '');
  }
});

lb.run();
