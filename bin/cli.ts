import { homedir } from 'node:os';
import { join } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { SingleBar, Presets } from 'cli-progress';
import { inspectFile } from '../jpeg2000/inspect.js';
import { indexArchive } from '../jpeg2000/archive.js';
import { isJ2kError } from '../jpeg2000/errors.js';
import { formatArchiveIndex, formatInspect } from './format-inspect.js';
import { createJpipServer, DEFAULTS as SERVER_DEFAULTS } from '../server/server.js';

/** Where index cache files go unless --cache says otherwise. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['JPIP_BENCH_CACHE']) return env['JPIP_BENCH_CACHE'];
  const base = env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'jpip-bench', 'index');
}

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether stderr is a terminal (progress bars only then). */
  tty: boolean;
}

const defaultIo: CliIo = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
  tty: Boolean(process.stderr.isTTY),
};

/**
 * Builds the `jpip-bench` command line. Each command maps flags to the options
 * of a library function, calls it and prints the result; nothing else.
 */
export function buildCli(io: CliIo = defaultIo): Argv {
  return yargs()
    .scriptName('jpip-bench')
    .usage('$0 <command> [options]\n\nA JPIP (JPEG 2000 Part 9) server and the toolkit that measures JPIP servers.')
    .command(
      'inspect <file>',
      'Show what is inside a JPEG 2000 file: boxes, codestream parameters, tiles, packets',
      (y) =>
        y
          .positional('file', { type: 'string', demandOption: true, describe: 'a .jp2, .jpx (also linked), .j2k or .j2c file' })
          .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
          .option('packets', { type: 'boolean', default: false, describe: 'list every packet: tile, layer, resolution, component, precinct, offset, length' })
          .example('$0 inspect frame.jp2', 'boxes, parameters and packet count')
          .example('$0 inspect frame.jp2 --packets --json', 'every packet as JSON'),
      (args) => {
        const report = inspectFile(args.file, { packets: args.packets });
        io.out(args.json ? JSON.stringify(report, null, 2) : formatInspect(report));
      },
    )
    .command(
      'index <dir>',
      'Build the packet index cache files of every JPEG 2000 file under a directory, ahead of serving',
      (y) =>
        y
          .positional('dir', { type: 'string', demandOption: true, describe: 'image root to walk' })
          .option('cache', { type: 'string', describe: 'directory for index cache files', defaultDescription: '$JPIP_BENCH_CACHE or ~/.cache/jpip-bench/index' })
          .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON' })
          .option('progress', { type: 'boolean', describe: 'show a progress bar', defaultDescription: 'when stderr is a terminal' })
          .example('$0 index /data/sdo --cache /var/cache/jpip', 'index an archive into a cache directory'),
      (args) => {
        const cacheDir = args.cache ?? defaultCacheDir();
        const showBar = args.progress ?? io.tty;
        const bar = showBar ? new SingleBar({ format: 'indexing [{bar}] {value}/{total} {file}', hideCursor: true }, Presets.shades_classic) : undefined;
        let started = false;
        const result = indexArchive(args.dir, {
          cacheDir,
          onProgress: (done, total, file) => {
            if (!bar) return;
            if (!started) {
              bar.start(total, 0, { file: '' });
              started = true;
            }
            bar.update(done, { file });
          },
        });
        bar?.stop();
        io.out(args.json ? JSON.stringify(result, null, 2) : formatArchiveIndex(result));
        if (result.failed.length > 0) process.exitCode = 1;
      },
    )
    .command(
      'serve',
      'Serve the JPEG 2000 files under a directory over JPIP (HTTP/1.1, JPP-stream and JPT-stream)',
      (y) =>
        y
          .option('root', { type: 'string', demandOption: true, describe: 'image root: every target is a file under it' })
          .option('port', { type: 'number', default: SERVER_DEFAULTS.port, describe: 'TCP port (0 picks a free one)' })
          .option('host', { type: 'string', default: SERVER_DEFAULTS.host, describe: 'address to listen on' })
          .option('cache', { type: 'string', describe: 'directory for index cache files', defaultDescription: '$JPIP_BENCH_CACHE or ~/.cache/jpip-bench/index' })
          .option('default-len', { type: 'number', default: SERVER_DEFAULTS.defaultLen, describe: 'byte budget of a request that gives no len' })
          .option('max-sessions', { type: 'number', default: SERVER_DEFAULTS.maxSessions, describe: 'sessions open at once (more: 503)' })
          .option('session-idle', { type: 'number', default: SERVER_DEFAULTS.sessionIdleSeconds, describe: 'seconds before an idle session is dropped' })
          .option('log', { type: 'boolean', default: false, describe: 'log every event as one JSON line on stderr (errors are always logged)' })
          .example('$0 serve --root /data/sdo --port 8090', 'serve an archive; JHelioviewer opens jpip://host:8090/movie.jpx'),
      async (args) => {
        const srv = createJpipServer({
          root: args.root,
          port: args.port,
          host: args.host,
          cacheDir: args.cache ?? defaultCacheDir(),
          defaultLen: args['default-len'],
          maxSessions: args['max-sessions'],
          sessionIdleSeconds: args['session-idle'],
          log: (e) => {
            if (args.log || /error|corrupt/.test(String(e['event']))) io.err(JSON.stringify({ time: new Date().toISOString(), ...e }));
          },
        });
        const url = await srv.listen();
        io.out(`jpip-bench serving ${args.root} at ${url}/ (JPIP path ${url}/jpip)`);
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            void srv.close().then(resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      },
    )
    .demandCommand(1, 'Name a command; `jpip-bench --help` lists them.')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, e) => {
      if (e) throw e;
      throw new UsageError(msg);
    });
}

/** A command line that does not parse (exit code 2). */
class UsageError extends Error {}

/** Runs the CLI; known errors become one clear line and exit code 1. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<void> {
  try {
    let output = '';
    await buildCli(io).parseAsync(argv, {}, (_err, _args, out) => {
      output = out;
    });
    if (output) io.out(output);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`jpip-bench: ${e.message}\nRun \`jpip-bench --help\` for usage.`);
      process.exitCode = 2;
      return;
    }
    if (isJ2kError(e)) {
      io.err(`jpip-bench: [${e.code}] ${e.message}`);
    } else if (e instanceof Error && 'code' in e && typeof (e as NodeJS.ErrnoException).code === 'string') {
      io.err(`jpip-bench: ${e.message}`);
    } else {
      throw e;
    }
    process.exitCode = 1;
  }
}
