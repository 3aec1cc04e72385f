/**
 * 1,500 simultaneous JPIP clients, each on its own keep-alive connection:
 * the flash-crowd simulator at the scale the ESA paper measured.
 *
 *   node --import tsx bench/crowd-1500.ts                 # our server in a child process
 *   node --import tsx bench/crowd-1500.ts --in-process    # the embedded server, in this process
 *   node --import tsx bench/crowd-1500.ts --server http://127.0.0.1:8090 [--server-pid PID]
 *   node --import tsx bench/crowd-1500.ts --backlog 4096  # the child listens itself, deeper accept queue
 *
 * By default our server runs in a CHILD process (this file, re-run with
 * `--serve ROOT`), so the server and the load generator each have an event
 * loop of their own and the server's RSS and CPU are its own (sampled from
 * /proc, with its open sockets). Settings come from the environment:
 *
 *   BENCH_CLIENTS=250    clients per crowd
 *   BENCH_EVERY=5        seconds between crowds
 *   BENCH_SESSION=30     seconds per session
 *   BENCH_DURATION=30    seconds during which crowds arrive (6 crowds of 250: 1,500 at once)
 *   BENCH_LEVEL=2        resolution levels discarded (the crowd's default)
 *   BENCH_WOI=1024x1024  window
 *   BENCH_PATTERN=paper  or jhelioviewer
 *   BENCH_ROOT=DIR       image root (default: the shipped small set)
 *   BENCH_JSON=FILE      also write the result as JSON
 *
 * Network traffic goes to 127.0.0.1 only. Run on demand, never by npm test.
 */
import { fork } from 'node:child_process';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { defaultRoot, runCrowd } from '../client-sim/crowd.js';
import { countSockets } from '../client-sim/measure.js';
import type { PatternName } from '../client-sim/patterns.js';
import { formatBytes, formatCrowdSummary, formatCrowdTick, writeJsonResult } from '../client-sim/results.js';
import { createJpipServer } from '../server/server.js';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};

// The child: our server, reporting its URL to the parent, until told to stop.
if (argv[0] === '--serve') {
  const srv = createJpipServer({ root: argv[1]!, port: 0, host: '127.0.0.1', maxConnections: 8192, maxSessions: 20_000 });
  const backlog = Number(argv[2] ?? 0);
  let url: string;
  let own: NetServer | undefined;
  if (backlog > 0) {
    // Our own listening socket with a deeper accept queue, handing connections to the server.
    let ids = 0;
    own = createNetServer({ noDelay: true }, (socket) => srv.adopt(socket, ++ids, -1));
    await new Promise<void>((resolve) => own!.listen({ port: 0, host: '127.0.0.1', backlog }, resolve));
    url = `http://127.0.0.1:${(own.address() as AddressInfo).port}`;
  } else {
    url = await srv.listen();
  }
  process.on('message', (m) => {
    if (m === 'stop') void srv.close().then(() => process.exit(0));
  });
  own?.unref();
  process.send?.({ url });
  process.on('disconnect', () => void srv.close().then(() => process.exit(0)));
} else {
  await main();
}

function envNumber(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || (n <= 0 && name !== 'BENCH_LEVEL')) throw new RangeError(`${name}=${v}: a positive number, please`);
  return n;
}

async function main(): Promise<void> {
  const clients = envNumber('BENCH_CLIENTS', 250);
  const every = envNumber('BENCH_EVERY', 5);
  const sessionLength = envNumber('BENCH_SESSION', 30);
  const duration = envNumber('BENCH_DURATION', 30);
  const level = envNumber('BENCH_LEVEL', 2);
  const [ww, wh] = (process.env['BENCH_WOI'] ?? '1024x1024').split(/[x,]/).map(Number);
  const pattern = (process.env['BENCH_PATTERN'] ?? 'paper') as PatternName;
  const root = process.env['BENCH_ROOT'] ?? defaultRoot();
  const expected = clients * Math.min(Math.ceil(duration / every), Math.ceil(sessionLength / every));

  let server = flag('--server');
  let serverPid = flag('--server-pid') !== undefined ? Number(flag('--server-pid')) : undefined;
  const inProcess = argv.includes('--in-process');
  // The server child's accept queue: 0 = the server's own listen() (Node's default backlog, 511).
  const backlog = Number(flag('--backlog') ?? 0);
  let child: ReturnType<typeof fork> | undefined;
  if (server === undefined && !inProcess) {
    child = fork(fileURLToPath(import.meta.url), ['--serve', root, String(backlog)], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    server = await new Promise<string>((resolve, reject) => {
      child!.once('message', (m) => resolve((m as { url: string }).url));
      child!.once('exit', (code) => reject(new Error(`the server child exited (${code})`)));
    });
    serverPid = child.pid;
  }

  console.log(`crowd-1500: ${clients} clients every ${every} s, sessions of ${sessionLength} s, crowds for ${duration} s: up to ${expected} clients at once`);
  console.log(
    `server: ${server ?? 'embedded in this process'}${serverPid ? ` (pid ${serverPid})` : ''} over ${root}${child ? `, accept queue ${backlog > 0 ? backlog : "Node's default (511)"}` : ''}; load generator pid ${process.pid}; Node ${process.version}`,
  );
  let peakClientSockets = 0;
  const result = await runCrowd({
    server,
    root,
    targets: undefined,
    serverPid,
    countSockets: true,
    clients,
    every,
    sessionLength,
    duration,
    level,
    woi: { w: ww ?? 1024, h: wh ?? 1024 },
    pattern,
    timeoutMs: 60_000,
    graceMs: 15_000,
    onTick: (t) => {
      const mine = countSockets(process.pid) ?? 0;
      peakClientSockets = Math.max(peakClientSockets, mine);
      if (Math.round(t.t) % 5 === 0) console.log(`${formatCrowdTick(t, Math.ceil(duration + sessionLength))} | ${mine} sockets here`);
    },
  });
  if (child) {
    child.send('stop');
    await new Promise((resolve) => child!.once('exit', resolve));
  }
  console.log('');
  console.log(formatCrowdSummary(result));
  const peak = result.totals.peakClients ?? 0;
  console.log('');
  console.log(`peak: ${peak} clients at once, ${result.totals.peakInFlight ?? 0} requests in flight at once; ${peakClientSockets} sockets open in the load generator${result.server?.socketsMax !== undefined ? `, ${result.server.socketsMax} in the server` : ''}`);
  console.log(
    `Table I: ${peak} clients | ${result.rates.responsesPerSecond} responses/s | ${formatBytes(result.rates.bytesPerSecond)}/s | p50 ${result.latencyMs.p50} ms p99 ${result.latencyMs.p99} ms | ` +
      `server RSS ${result.server?.available ? formatBytes(result.server.rssMaxBytes) : '?'} CPU ${result.server?.available ? `${result.server.cpuPercentMean}%` : '?'} | generator CPU ${result.simulator.cpuPercentMean}% | errors ${result.errors.total}`,
  );
  if (process.env['BENCH_JSON']) writeJsonResult(process.env['BENCH_JSON'], result);
  if (peak < expected) console.log(`NOTE: only ${peak} of ${expected} clients were running at once`);
  if (result.errors.total > 0) process.exitCode = 1;
}
