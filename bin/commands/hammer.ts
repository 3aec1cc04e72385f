import type { Argv } from 'yargs';
import { HAMMER_DEFAULTS, runHammer, type HammerOptions } from '../../client-sim/hammer.js';
import { formatHammerSummary, hammerCsvRow, writeCsvRow, writeJsonResult } from '../../client-sim/results.js';
import type { CliIo } from '../io.js';
import { asCliError } from './crowd.js';

export interface HammerArgs {
  server?: string | undefined;
  root?: string | undefined;
  target?: string | undefined;
  windows?: string[] | undefined;
  'random-count': number;
  seed: number;
  connections: number;
  duration: number;
  len: number;
  timeout: number;
  'server-pid'?: number[] | undefined;
}

/** The library options of a command line (exported for tests). */
export function hammerOptionsFromArgs(a: HammerArgs): HammerOptions {
  const w = a.windows;
  return {
    server: a.server,
    root: a.root,
    target: a.target,
    windows: w && w.length === 1 && w[0] === 'random' ? 'random' : w,
    randomCount: a['random-count'],
    seed: a.seed,
    connections: a.connections,
    duration: a.duration,
    len: a.len,
    timeoutSeconds: a.timeout,
    serverPid: a['server-pid'],
  };
}

/** `jpip-bench hammer`: maximum throughput for a fixed mix of windows (autocannon). */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'hammer',
    'Maximum throughput of a JPIP server for a fixed mix of stateless window requests, driven by autocannon',
    (y) =>
      y
        .option('server', { type: 'string', describe: 'URL of the server', defaultDescription: 'an embedded server of ours on 127.0.0.1' })
        .option('root', { type: 'string', describe: 'image root of the embedded server', defaultDescription: 'the shipped small set' })
        .option('target', { type: 'string', describe: 'image path on the server', defaultDescription: 'the first movie of the set' })
        .option('windows', { type: 'string', array: true, describe: "windows as JPIP query fragments ('stream=0&fsiz=512,512&roff=0,0&rsiz=256,256'), or 'random'", defaultDescription: 'frame 0 at levels 0-2 and its four quadrants' })
        .option('random-count', { type: 'number', default: HAMMER_DEFAULTS.randomCount, describe: 'how many random windows' })
        .option('seed', { type: 'number', default: HAMMER_DEFAULTS.seed, describe: 'seed of the random windows' })
        .option('connections', { type: 'number', default: HAMMER_DEFAULTS.connections, describe: 'keep-alive connections' })
        .option('duration', { type: 'number', default: HAMMER_DEFAULTS.duration, describe: 'seconds' })
        .option('len', { type: 'number', default: HAMMER_DEFAULTS.len, describe: 'bytes per request (len=)' })
        .option('timeout', { type: 'number', default: HAMMER_DEFAULTS.timeoutSeconds, describe: 'seconds a request may take' })
        .option('server-pid', { type: 'number', array: true, describe: "sample this process's RSS and CPU as the server's; several pids (jpip-bench serve's supervisor and worker) are summed" })
        .option('json', { type: 'string', nargs: 1, describe: 'write the result as JSON to FILE (- : stdout, instead of the summary)' })
        .option('csv', { type: 'string', describe: 'write (or append) one CSV row of the result to FILE' })
        .example('$0 hammer --connections 50 --duration 30', 'the default window mix against an embedded server')
        .example("$0 hammer --server http://127.0.0.1:8090 --target movie-00.jpx --windows 'stream=0&fsiz=1024,1024'", 'one window, a running server'),
    async (args) => {
      try {
        const result = await runHammer(hammerOptionsFromArgs(args as unknown as HammerArgs));
        if (args.json === '-') io.out(JSON.stringify(result, null, 2));
        else io.out(formatHammerSummary(result));
        if (args.json !== undefined && args.json !== '-') {
          writeJsonResult(args.json, result);
          io.err(`wrote ${args.json}`);
        }
        if (args.csv !== undefined) {
          const how = writeCsvRow(args.csv, hammerCsvRow(result));
          io.err(`${how === 'appended' ? 'appended a row to' : 'wrote'} ${args.csv}`);
        }
        if (result.totals.errors + result.totals.non2xx > 0) process.exitCode = 1;
      } catch (e) {
        throw asCliError(e);
      }
    },
  );
}
