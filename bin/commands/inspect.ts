import type { Argv } from 'yargs';
import { inspectFile } from '../../jpeg2000/inspect.js';
import { formatInspect } from '../format-inspect.js';
import type { CliIo } from '../io.js';

/** `jpip-bench inspect FILE`: what is inside a JPEG 2000 file. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
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
  );
}
