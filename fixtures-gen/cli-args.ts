/**
 * The command-line entry of the fixture generators (matrix.ts, movies.ts):
 * run main when the module is the script node was started with.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Calls main with the command-line arguments when moduleUrl (the caller's
 * import.meta.url) is the script being run; an error thrown by main is
 * printed (its message only) to stderr and sets exit code 1.
 */
export function runIfMain(moduleUrl: string, main: (argv: readonly string[]) => void): void {
  if (process.argv[1] && moduleUrl === pathToFileURL(resolve(process.argv[1])).href) {
    try {
      main(process.argv.slice(2));
    } catch (err) {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  }
}
