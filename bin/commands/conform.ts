import { readFileSync, writeFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { CHECKS, DEFAULT_FIXTURE_SET, formatJson, formatJunit, formatMarkdown, formatTable, parseFixtureSet, PROFILES, runConformance, selectChecks, type Profile } from '../../conform/index.js';
import type { CliIo } from '../io.js';

/** `jpip-bench conform URL`: the conformance suite against a JPIP server. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'conform [url]',
    'Check a JPIP server against the protocol as real clients use it (OK / NON-STRICT / FAILED / UNIMPLEMENTED per check)',
    (y) =>
      y
        .positional('url', { type: 'string', describe: 'the server\'s base URL, e.g. http://127.0.0.1:8090/ or https://127.0.0.1:8443/' })
        .option('profile', { choices: PROFILES, default: 'core' as Profile, describe: 'core: the essentials; jhv: what JHelioviewer needs; full: every check (UNIMPLEMENTED fails it)' })
        .option('root', { type: 'string', describe: 'directory holding the original files of the fixture set (data checks compare with them)', defaultDescription: 'the committed test/fixtures' })
        .option('fixtures', { type: 'string', describe: 'a fixture set description (JSON): which file each role is, on the server and under --root' })
        .option('prefix', { type: 'string', default: '', describe: 'put before every target name (the fixtures\' directory inside the server\'s root)' })
        .option('target-style', { choices: ['path', 'query'] as const, default: 'path' as const, describe: 'name targets in the URL path (GET base/file?...) or with target= (GET base?target=file&...)' })
        .option('timeout', { type: 'number', default: 5000, describe: 'milliseconds one request may take' })
        .option('insecure', { type: 'boolean', default: false, describe: 'https:// servers: accept any certificate (self-signed test certificates)' })
        .option('concurrency', { type: 'number', default: 6, describe: 'checks run at once' })
        .option('only', { type: 'string', array: true, describe: 'run only these check ids or groups (framing or framing.); an entry that selects no check of the profile is an error' })
        .option('json', { type: 'string', describe: 'write the report as JSON to this file' })
        .option('junit', { type: 'string', describe: 'write the report as JUnit XML to this file' })
        .option('markdown', { type: 'string', describe: 'write the report as Markdown to this file' })
        .option('list', { type: 'boolean', default: false, describe: 'list the checks of the profile and exit' })
        .option('colour', { type: 'boolean', describe: 'colour the table', defaultDescription: 'when stdout is a terminal' })
        .example('$0 conform http://127.0.0.1:8090/ --profile full --junit conform.xml', 'every check, JUnit XML for CI')
        .example('$0 conform http://127.0.0.1:8080/opj --target-style query --root ./originals', 'a FastCGI server that names targets with target='),
    async (args) => {
      const profile = args.profile as Profile;
      const only = (args.only ?? []).flatMap((s) => String(s).split(',')).filter((s) => s !== '');
      if (args.list) {
        let list;
        try {
          list = selectChecks(profile, only, CHECKS);
        } catch (e) {
          io.err(`jpip-bench conform: ${(e as Error).message}`);
          process.exitCode = 2;
          return;
        }
        io.out(list.map((c) => `${c.id.padEnd(30)} [${c.profiles.join(',')}] ${c.title}`).join('\n'));
        return;
      }
      let report;
      try {
        if (!args.url) throw new Error('give the server\'s URL (or --list)');
        const fixtures = args.fixtures ? parseFixtureSet(readFileSync(args.fixtures, 'utf8'), args.fixtures) : DEFAULT_FIXTURE_SET;
        report = await runConformance({
          url: args.url,
          profile,
          fixtures,
          root: args.root,
          prefix: args.prefix,
          targetStyle: args['target-style'],
          timeoutMs: args.timeout,
          insecure: args.insecure,
          concurrency: args.concurrency,
          only,
        });
      } catch (e) {
        // The run could not start (URL, fixture set, originals): one line, exit code 2.
        io.err(`jpip-bench conform: ${(e as Error).message}`);
        process.exitCode = 2;
        return;
      }
      io.out(formatTable(report, { colour: args.colour ?? (Boolean(process.stdout.isTTY) && !process.env['NO_COLOR']), width: process.stdout.columns || 120 }));
      if (args.json) writeFileSync(args.json, formatJson(report));
      if (args.junit) writeFileSync(args.junit, formatJunit(report));
      if (args.markdown) writeFileSync(args.markdown, formatMarkdown(report));
      if (!report.passed) process.exitCode = 1;
    },
  );
}
