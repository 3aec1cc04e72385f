import yargs, { type Argv } from 'yargs';
import { isJ2kError } from '../jpeg2000/errors.js';
import { register as registerConform } from './commands/conform.js';
import { register as registerCrowd } from './commands/crowd.js';
import { register as registerFetch } from './commands/fetch.js';
import { register as registerHammer } from './commands/hammer.js';
import { register as registerRd } from './commands/rd.js';
import { register as registerReport } from './commands/report.js';
import { register as registerFixtures } from './commands/fixtures.js';
import { register as registerIndex } from './commands/index.js';
import { register as registerInspect } from './commands/inspect.js';
import { register as registerServe } from './commands/serve.js';
import { defaultIo, type CliIo } from './io.js';

export { defaultCacheDir, type CliIo } from './io.js';

/** Every command, in the order --help lists them. Each lives in bin/commands/. */
const COMMANDS: ((y: Argv, io: CliIo) => Argv)[] = [
  registerServe,
  registerCrowd,
  registerHammer,
  registerFetch,
  registerFixtures,
  registerRd,
  registerReport,
  registerConform,
  registerInspect,
  registerIndex,
];

/**
 * Builds the `jpip-bench` command line. Each command maps flags to the options
 * of a library function, calls it and prints the result; nothing else.
 */
export function buildCli(io: CliIo = defaultIo): Argv {
  let y = yargs()
    .scriptName('jpip-bench')
    .usage('$0 <command> [options]\n\nA JPIP (JPEG 2000 Part 9) server and the toolkit that measures JPIP servers.');
  for (const register of COMMANDS) y = register(y, io);
  return y
    .demandCommand(1, 'Name a command; `jpip-bench --help` lists them.')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, e) => {
      // yargs passes a message for every validation failure (unknown flags, choices, and
      // .check() callbacks, whose thrown Error comes as `e` too, with msg = e.message);
      // an error thrown by a command handler comes with msg null and is left as it is.
      if (msg) throw new UsageError(msg);
      if (e) throw e;
      throw new UsageError('invalid command line');
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
