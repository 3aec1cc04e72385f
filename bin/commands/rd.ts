import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { DIALECTS, parseServerSpec } from '../../reports/dialects.js';
import { isUserError } from '../../reports/errors.js';
import { formatRdText } from '../../reports/rd-output.js';
import { runRdJob } from '../../reports/rd-job.js';
import { RD_DEFAULTS } from '../../reports/rd.js';
import type { CliIo } from '../io.js';

/** A comma-separated list of numbers (`--budgets 1024,4096`). */
export function numberList(flag: string, v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const out = v.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isFinite(n) || n < 0)) throw new RangeError(`--${flag} ${v}: a comma-separated list of numbers >= 0`);
  return out;
}

/** `jpip-bench rd`: PSNR against bytes for a zoom sequence, per server. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'rd',
    'Rate-distortion: the PSNR of the client\'s picture against the bytes received, over a zoom sequence, for one or more JPIP servers',
    (y) =>
      y
        .option('server', { type: 'string', array: true, describe: `NAME=URL[:DIALECT] (dialects: ${DIALECTS.join(', ')}); NAME=embedded starts this project's server`, defaultDescription: 'ours=embedded' })
        .option('target', { type: 'string', describe: 'the image as the servers name it (with only the embedded server and no --root: a local file)', defaultDescription: 'a committed test fixture' })
        .option('root', { type: 'string', describe: "image root of the embedded server", defaultDescription: "the target's directory" })
        .option('original', { type: 'string', describe: 'the original file, decoded at full quality as the reference', defaultDescription: 'the target under the root' })
        .option('sequence', { type: 'string', default: 'paper', describe: "'paper' (the paper's zoom, scaled to the image) or a JSON file of windows {x,y,w,h,r}" })
        .option('stream', { type: 'number', default: 0, describe: 'codestream of the target (JPX)' })
        .option('step', { type: 'number', default: RD_DEFAULTS.step, describe: 'len of each request (bytes)' })
        .option('max-requests', { type: 'number', default: RD_DEFAULTS.maxRequestsPerWindow, describe: 'requests per window before giving up on it' })
        .option('timeout', { type: 'number', default: RD_DEFAULTS.timeoutMs, describe: 'per request (ms)' })
        .option('budgets', { type: 'string', describe: 'byte budgets of the summary, comma-separated', defaultDescription: 'powers of two from 1 KiB' })
        .option('psnr', { type: 'string', describe: 'PSNR targets of the summary (dB), comma-separated', defaultDescription: '25,30,35,40,50' })
        .option('reference', { type: 'string', describe: 'server the others are compared with', defaultDescription: 'the first' })
        .option('out', { type: 'string', default: 'rd-out', describe: 'directory for rd.json, rd.csv, rd.svg, rd.png' })
        .option('json', { type: 'boolean', default: false, describe: 'print rd.json instead of the text summary' })
        .example('$0 rd', "the paper's zoom on a test fixture, against the embedded server")
        .example('$0 rd --server ours=http://127.0.0.1:8090 --server esa=http://127.0.0.1:8091:jpip --target sun.jp2 --original /data/sun.jp2 --out rd/', 'compare two servers'),
    async (args) => {
      try {
        const servers = (args.server ?? []).map((s, i) => parseServerSpec(String(s), i + 1));
        const job = await runRdJob({
          servers,
          target: args.target,
          root: args.root,
          original: args.original,
          sequence: args.sequence,
          stream: args.stream,
          step: args.step,
          maxRequestsPerWindow: args['max-requests'],
          timeoutMs: args.timeout,
          summary: { budgets: numberList('budgets', args.budgets), psnrTargets: numberList('psnr', args.psnr), reference: args.reference },
          out: args.out,
        });
        if (args.json) {
          io.out(readFileSync(job.files.json, 'utf8'));
        } else {
          io.out(formatRdText(job.result));
          io.out(`wrote ${job.files.json}, ${job.files.csv}, ${job.files.svg}, ${job.files.png}`);
        }
        if (job.result.servers.some((s) => s.error)) process.exitCode = 1;
      } catch (e) {
        if (!isUserError(e)) throw e;
        io.err(`jpip-bench rd: ${e.message}`);
        process.exitCode = 1;
      }
    },
  );
}
