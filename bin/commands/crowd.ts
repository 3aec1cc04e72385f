import type { Argv } from 'yargs';
import { Presets, SingleBar } from 'cli-progress';
import { CLIENT_ERROR_KINDS } from '../../client-sim/client.js';
import { CROWD_DEFAULTS, presetDir, runCrowd, type CrowdOptions } from '../../client-sim/crowd.js';
import { DIALECT_NAMES } from '../../client-sim/dialects.js';
import { PATTERN_NAMES, type PatternName } from '../../client-sim/patterns.js';
import { crowdCsvRow, formatBytes, formatCrowdSummary, writeCsvRow, writeJsonResult } from '../../client-sim/results.js';
import type { CliIo } from '../io.js';

/**
 * An error for the CLI's one-line report: bin/cli.ts prints errors that carry
 * a string `code` as one line (exit 1) and lets others crash with a stack.
 * Option and run errors of these commands are the user's to read, not bugs.
 */
export function asCliError(e: unknown): unknown {
  if (e instanceof Error && typeof (e as { code?: unknown }).code !== 'string') Object.assign(e, { code: 'JPIP_BENCH_ERR_RUN' });
  return e;
}

/** `W,H` or `WxH` -> { w, h }. */
export function parseSize(name: string, s: string): { w: number; h: number } {
  const m = /^\s*(\d+)\s*[x,]\s*(\d+)\s*$/i.exec(s);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new RangeError(`--${name} must be WIDTHxHEIGHT or WIDTH,HEIGHT (both >= 1), got ${JSON.stringify(s)}`);
  return { w: Number(m[1]), h: Number(m[2]) };
}

export interface CrowdArgs {
  clients: number;
  every: number;
  duration: number;
  'session-length': number;
  'frames-per-query': number;
  woi: string;
  level: number;
  len: number;
  movies?: number | undefined;
  rate?: number | undefined;
  pattern: string;
  dialect: string;
  server?: string | undefined;
  root?: string | undefined;
  preset?: string | undefined;
  targets?: string[] | undefined;
  'server-pid'?: number[] | undefined;
  timeout: number;
  retries?: number | undefined;
  insecure?: boolean | undefined;
}

/** The library options of a command line (exported for tests). */
export function crowdOptionsFromArgs(a: CrowdArgs): CrowdOptions {
  const pattern = a.pattern as PatternName;
  return {
    clients: a.clients,
    every: a.every,
    duration: a.duration,
    sessionLength: a['session-length'],
    framesPerQuery: a['frames-per-query'],
    woi: parseSize('woi', a.woi),
    level: a.level,
    len: a.len,
    movies: a.movies,
    rate: a.rate,
    pattern,
    dialect: a.dialect,
    server: a.server,
    root: a.root,
    preset: a.preset as CrowdOptions['preset'],
    targets: a.targets,
    serverPid: a['server-pid'],
    timeoutMs: a.timeout * 1000,
    maxRetries: a.retries ?? (pattern === 'jhelioviewer' ? 13 : CROWD_DEFAULTS.maxRetries),
    insecure: a.insecure,
  };
}

/** `jpip-bench crowd`: the flash-crowd simulator. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'crowd',
    'Flash-crowd load on a JPIP server: every --every seconds --clients new clients each play a movie for --session-length seconds',
    (y) =>
      y
        .option('clients', { type: 'number', default: CROWD_DEFAULTS.clients, describe: 'new clients per crowd' })
        .option('every', { type: 'number', default: CROWD_DEFAULTS.every, describe: 'seconds between crowds' })
        .option('duration', { type: 'number', default: CROWD_DEFAULTS.duration, describe: 'seconds the run lasts: crowds arrive until then, and clients still playing then are stopped and close their sessions' })
        .option('session-length', { type: 'number', default: CROWD_DEFAULTS.sessionLength, describe: 'seconds each client plays its movie (cut short when the run ends at --duration)' })
        .option('frames-per-query', { type: 'number', default: CROWD_DEFAULTS.framesPerQuery, describe: 'consecutive frames per request (paper pattern)' })
        .option('woi', { type: 'string', default: `${CROWD_DEFAULTS.woi.w}x${CROWD_DEFAULTS.woi.h}`, describe: 'window WxH from (0,0), clipped to the frame' })
        .option('level', { type: 'number', default: CROWD_DEFAULTS.level, describe: "resolution levels discarded (0 = full size; 2 = the paper's 4096x4096 frames seen at 1024x1024)" })
        .option('len', { type: 'number', default: CROWD_DEFAULTS.len, describe: 'bytes per request (len=)' })
        .option('movies', { type: 'number', describe: 'use only the first N movies of the set', defaultDescription: 'all' })
        .option('rate', { type: 'number', describe: 'open loop: requests per second per client (latency corrected for coordinated omission)', defaultDescription: 'closed loop' })
        .option('pattern', { type: 'string', choices: PATTERN_NAMES, default: CROWD_DEFAULTS.pattern, describe: "paper: the ESA paper's player; jhelioviewer: JHelioviewer's exact request sequence" })
        .option('dialect', { type: 'string', choices: DIALECT_NAMES, default: CROWD_DEFAULTS.dialect, describe: "request syntax of the server (kakadu's is untested)" })
        .option('server', { type: 'string', describe: 'URL of the server to load (http:// or https://)', defaultDescription: 'an embedded server of ours on 127.0.0.1' })
        .option('insecure', { type: 'boolean', describe: 'https:// servers: accept any certificate (self-signed test certificates)' })
        .option('root', { type: 'string', describe: 'image root of the embedded server (and where movies are listed from)', defaultDescription: 'the shipped small set' })
        .option('preset', { type: 'string', choices: ['small', 'paper'], describe: "fixture set: small (shipped) or paper (generated with the fixture generator, needs opj_compress)" })
        .option('targets', { type: 'string', array: true, describe: 'movie paths on the server', defaultDescription: 'the linked JPX files under the root' })
        .option('server-pid', { type: 'number', array: true, describe: "sample this process's RSS and CPU every second (/proc) as the server's; several pids (jpip-bench serve's supervisor and worker) are summed" })
        .option('timeout', { type: 'number', default: CROWD_DEFAULTS.timeoutMs / 1000, describe: 'seconds a request may take' })
        .option('retries', { type: 'number', describe: 'failures in a row before a client gives up', defaultDescription: '3; jhelioviewer pattern 13' })
        .option('json', { type: 'string', nargs: 1, describe: 'write the result as JSON to FILE (- : stdout, instead of the summary)' })
        .option('csv', { type: 'string', describe: 'write (or append) one CSV row of the result to FILE' })
        .option('progress', { type: 'boolean', describe: 'show a live progress line', defaultDescription: 'when stderr is a terminal' })
        .example('$0 crowd --clients 100', "the paper's scenario against an embedded server over the shipped set")
        .example('$0 crowd --server http://127.0.0.1:8090 --server-pid 1234 --clients 250 --csv table1.csv', 'a running server, with its RSS and CPU')
        .example('$0 crowd --pattern jhelioviewer --clients 20 --level 2', "JHelioviewer's request sequence"),
    async (args) => {
      try {
        await crowdCommand(args as unknown as CrowdArgs & { json?: string; csv?: string; progress?: boolean }, io);
      } catch (e) {
        throw asCliError(e);
      }
    },
  );
}

async function crowdCommand(args: CrowdArgs & { json?: string | undefined; csv?: string | undefined; progress?: boolean | undefined }, io: CliIo): Promise<void> {
  const opts = crowdOptionsFromArgs(args);
  if (opts.preset === 'paper' && opts.root === undefined) {
    io.err(`making (or checking) the paper's fixture set in ${presetDir('paper')}: 16 frames of 4096x4096 with opj_compress, about a minute the first time`);
  }
  const showBar = args.progress ?? io.tty;
  const bar = showBar
    ? new SingleBar({ format: 'crowd [{bar}] {value}/{total} s | {active} clients | {rps} resp/s {bps}/s | p99 {p99} ms | {errors} errors', hideCursor: true }, Presets.shades_classic)
    : undefined;
  bar?.start(Math.ceil(opts.duration ?? CROWD_DEFAULTS.duration), 0, { active: 0, rps: 0, bps: '0 B', p99: 0, errors: 0 });
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  let result;
  try {
    result = await runCrowd({
      ...opts,
      signal: ac.signal,
      onTick: (t) => bar?.update(Math.min(Math.floor(t.t), bar.getTotal()), { active: t.active, rps: t.responses, bps: formatBytes(t.bytes), p99: t.p99, errors: t.totalErrors }),
    });
  } finally {
    bar?.stop();
    process.off('SIGINT', onSignal);
  }
  if (args.json === '-') io.out(JSON.stringify(result, null, 2));
  else io.out(formatCrowdSummary(result));
  if (args.json !== undefined && args.json !== '-') {
    writeJsonResult(args.json, result);
    io.err(`wrote ${args.json}`);
  }
  if (args.csv !== undefined) {
    const how = writeCsvRow(args.csv, crowdCsvRow(result, CLIENT_ERROR_KINDS));
    io.err(`${how === 'appended' ? 'appended a row to' : 'wrote'} ${args.csv}`);
  }
  if (result.errors.total > 0) process.exitCode = 1;
}
