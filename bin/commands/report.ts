import type { Argv } from 'yargs';
import { isUserError } from '../../reports/errors.js';
import { loadResults, writeReport } from '../../reports/report.js';
import type { CliIo } from '../io.js';

/** `jpip-bench report RESULTS...`: one self-contained HTML page from crowd, hammer and rd results. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'report <results..>',
    'One self-contained HTML page (Table I, latency, load over time, rate-distortion) from crowd and rd result files, with PNGs and CSVs beside it',
    (y) =>
      y
        .positional('results', {
          type: 'string',
          array: true,
          demandOption: true,
          describe: 'result JSON files (crowd --json, hammer --json, rd.json) or directories holding them; LABEL=FILE names the server of a crowd or hammer result',
        })
        .option('out', { type: 'string', default: 'report', describe: 'directory for report.html, the PNGs and the CSVs' })
        .option('title', { type: 'string', describe: 'page title', defaultDescription: 'JPIP server benchmark report' })
        .example('$0 report ours=crowd-ours.json esajpip=crowd-esa.json rd-out/ --out report/', 'a page comparing two servers under the crowd, with an rd run'),
    async (args) => {
      try {
        const input = loadResults((args.results ?? []).map(String));
        const { html, files } = await writeReport(input, args.out, args.title !== undefined ? { title: args.title } : {});
        io.out(`report: ${html} (${input.crowd.length} crowd run(s), ${input.rd.length} rd result(s); ${files.length - 1} file(s) beside it)`);
      } catch (e) {
        if (!isUserError(e)) throw e;
        io.err(`jpip-bench report: ${e.message}`);
        process.exitCode = 1;
      }
    },
  );
}
