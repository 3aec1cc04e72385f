import type { Argv } from 'yargs';
import { isUserError } from '../../reports/errors.js';
import { join } from 'node:path';
import { writeJsonResult } from '../../client-sim/results.js';
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
        .option('merge', {
          type: 'boolean',
          default: false,
          describe: 'merge the crowd results of one run made by several load-generator processes or machines (counts summed, latency histograms added); with LABEL=FILE, files of the same label are merged together. The merged results are written beside the report as crowd-merged[-LABEL].json',
        })
        .example('$0 report ours=crowd-ours.json esajpip=crowd-esa.json rd-out/ --out report/', 'a page comparing two servers under the crowd, with an rd run')
        .example('$0 report --merge crowd-host1.json crowd-host2.json --out report/', 'one crowd run made by two load-generator machines'),
    async (args) => {
      try {
        const input = loadResults((args.results ?? []).map(String), { merge: args.merge });
        const { html, files } = await writeReport(input, args.out, args.title !== undefined ? { title: args.title } : {});
        for (const m of input.merged ?? []) {
          const file = join(args.out, `crowd-merged${m.label ? `-${m.label.replace(/[^A-Za-z0-9._-]/g, '_')}` : ''}.json`);
          writeJsonResult(file, m.result);
          io.out(`merged ${m.result.mergedFrom?.length ?? 0} crowd results${m.label ? ` of ${m.label}` : ''}: ${m.result.totals.responses} responses, p99 ${m.result.latencyMs.p99} ms -> ${file}`);
        }
        io.out(`report: ${html} (${input.crowd.length} crowd run(s), ${input.rd.length} rd result(s); ${files.length - 1} file(s) beside it)`);
      } catch (e) {
        if (!isUserError(e)) throw e;
        io.err(`jpip-bench report: ${e.message}`);
        process.exitCode = 1;
      }
    },
  );
}
