import yargs, { type Argv } from 'yargs';
import { isJ2kError } from '../jpeg2000/errors.js';
import type { CliIo } from './io.js';

/** What each module in bin/commands/ exports: adds its command to the command line. */
export type Registrar = (y: Argv, io: CliIo) => Argv;

/**
 * Builds the `jpip-bench` command line. Each command maps flags to the options
 * of a library function, calls it and prints the result; nothing else.
 */
export function buildCli(io: CliIo, commands: readonly Registrar[]): Argv {
  let y = yargs()
    .scriptName('jpip-bench')
    .usage('$0 <command> [options]\n\nA JPIP (JPEG 2000 Part 9) server and the toolkit that measures JPIP servers.');
  for (const register of commands) y = register(y, io);
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
export async function main(argv: string[], io: CliIo, commands: readonly Registrar[]): Promise<void> {
  try {
    let output = '';
    await buildCli(io, commands).parseAsync(argv, {}, (_err, _args, out) => {
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
