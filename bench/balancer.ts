/**
 * Several `jpip-bench serve` instances behind a real load balancer on loopback (issue #10): nginx
 * (Debian nginx-light) and HAProxy, with the configs of server/balancer.ts (a session stays on
 * the instance whose cid prefix it carries; new sessions spread by target with consistent
 * hashing), and the flash crowd run through the balancer against 1, 2 and 3 instances; then a
 * run where one of two instances is stopped (SIGTERM) half-way.
 *
 *   npm run build && node --import tsx bench/balancer.ts
 *   BENCH_BALANCER=nginx|haproxy|both BENCH_INSTANCES=1,2,3 BENCH_SECONDS=20 BENCH_CLIENTS=100 node --import tsx bench/balancer.ts
 *
 * The image root is the shipped small set (fixtures/small: two movies) unless BENCH_ROOT names
 * another (the paper set: `jpip-bench fixtures --preset paper --out DIR`). The balancer, the
 * instances (supervisor + worker each) and the crowd share this machine's cores: on a 2-core
 * machine more instances cannot mean more throughput, the figures show what the balancer costs
 * and that nothing breaks. Installs nginx-light and haproxy with apt-get when missing (as root).
 * Network: 127.0.0.1 only. Prints figures; asserts nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCrowd } from '../client-sim/crowd.js';
import type { CrowdResult } from '../client-sim/results.js';
import { haproxyConfig, nginxConfig, type BalancedInstance } from '../server/balancer.js';
import { startServe, type ServeProcess } from './serve-process.js';
import { ensureTool, freePort, waitFor } from './tools.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 20);
const CLIENTS = Number(process.env['BENCH_CLIENTS'] ?? 100);
const COUNTS = (process.env['BENCH_INSTANCES'] ?? '1,2,3').split(',').map(Number);
const WHICH = process.env['BENCH_BALANCER'] ?? 'both';
const ROOT = process.env['BENCH_ROOT'] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'small');

type Kind = 'nginx' | 'haproxy';

interface Balancer {
  url: string;
  stop(): Promise<void>;
}

async function startBalancer(kind: Kind, instances: BalancedInstance[], dir: string): Promise<Balancer> {
  const port = await freePort();
  const opts = { listen: { host: '127.0.0.1', port }, instances, dir };
  let child: ChildProcess;
  if (kind === 'nginx') {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConfig(opts));
    child = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] });
  } else {
    const conf = join(dir, 'haproxy.cfg');
    writeFileSync(conf, haproxyConfig(opts));
    child = spawn('haproxy', ['-f', conf, '-db'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${kind} on ${url}`, () => fetch(`${url}/health`).then((r) => r.arrayBuffer()));
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function startInstances(n: number): Promise<{ servers: ServeProcess[]; instances: BalancedInstance[] }> {
  const servers: ServeProcess[] = [];
  const instances: BalancedInstance[] = [];
  for (let k = 1; k <= n; k++) {
    const prefix = `I${k}x`;
    const s = await startServe(['--root', ROOT, '--port', '0', '--cid-prefix', prefix, '--log-level', 'error']);
    servers.push(s);
    instances.push({ prefix, host: '127.0.0.1', port: Number(new URL(s.url).port) });
  }
  return { servers, instances };
}

function line(label: string, r: CrowdResult, extra = ''): string {
  if (r.errors.total > 0 && !extra) extra = `; errors: ${r.errors.samples.map((e) => `${e.count} x ${e.kind}: ${e.message.slice(0, 120)}`).join('; ')}`;
  const srv = r.server?.available ? `, servers ${Math.round(r.server.rssMaxBytes / 1048576)} MB max, CPU ${r.server.cpuPercentMean}%` : '';
  return `| ${label} | ${r.rates.responsesPerSecond.toLocaleString('en-US')} | ${r.latencyMs.p50} | ${r.latencyMs.p99} | ${r.errors.total} | ${r.totals.sessionsOpened} / ${r.totals.clients} | ${r.totals.clientsGaveUp}${srv}${extra} |`;
}

async function crowd(url: string, pids: number[], onHalf?: () => void): Promise<CrowdResult> {
  const half = onHalf ? setTimeout(onHalf, (SECONDS * 1000) / 2) : undefined;
  try {
    return await runCrowd({ server: url, root: ROOT, clients: CLIENTS, duration: SECONDS, serverPid: pids, timeoutMs: 10_000 });
  } finally {
    if (half) clearTimeout(half);
  }
}

async function main(): Promise<void> {
  const kinds: Kind[] = WHICH === 'both' ? ['nginx', 'haproxy'] : [WHICH as Kind];
  if (kinds.includes('nginx')) ensureTool('nginx', 'nginx-light');
  if (kinds.includes('haproxy')) ensureTool('haproxy', 'haproxy');
  const work = mkdtempSync(join(tmpdir(), 'jpip-bench-balancer-'));
  console.log(`root ${ROOT}; crowd of ${CLIENTS} clients for ${SECONDS} s (paper pattern) through the balancer; server figures summed over every instance's supervisor and worker`);
  console.log('');
  console.log('| setup | responses/s | p50 ms | p99 ms | errors | sessions / clients | clients gave up |');
  console.log('|---|---|---|---|---|---|---|');
  try {
    // The baseline: one instance, no balancer.
    {
      const { servers } = await startInstances(1);
      const r = await crowd(servers[0]!.url, servers[0]!.pids);
      console.log(line('1 instance, direct', r));
      for (const s of servers) await s.stop();
    }
    for (const kind of kinds) {
      for (const n of COUNTS) {
        const dir = join(work, `${kind}-${n}`);
        mkdirSync(dir, { recursive: true });
        const { servers, instances } = await startInstances(n);
        const lb = await startBalancer(kind, instances, dir);
        try {
          const r = await crowd(lb.url, servers.flatMap((s) => s.pids));
          console.log(line(`${n} instance${n > 1 ? 's' : ''} behind ${kind}`, r));
        } finally {
          await lb.stop();
          for (const s of servers) await s.stop();
        }
      }
      // Two instances, one stopped (SIGTERM: it drains and exits) half-way through the run.
      const dir = join(work, `${kind}-stop`);
      mkdirSync(dir, { recursive: true });
      const { servers, instances } = await startInstances(2);
      const lb = await startBalancer(kind, instances, dir);
      try {
        let stoppedAt = 0;
        const r = await crowd(lb.url, servers[1]!.pids, () => {
          stoppedAt = Date.now();
          void servers[0]!.stop();
        });
        const kinds = Object.entries(r.errors.byKind).map(([k, v]) => `${k} ${v}`).join(', ');
        console.log(line(`2 behind ${kind}, one stopped at ${SECONDS / 2} s`, r, `; errors: ${kinds || 'none'}, by status ${JSON.stringify(r.errors.byStatus)}, sessions abandoned ${r.totals.sessionsAbandoned}${stoppedAt ? '' : ' (the stop never ran)'}`));
      } finally {
        await lb.stop();
        await servers[1]!.stop();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
