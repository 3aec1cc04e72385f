/**
 * Runs the conformance suite against a server and writes the reports: the
 * programmatic twin of `jpip-bench conform`, for bench/opj-server.sh.
 *
 *   node --import tsx bench/opj-conform.ts URL OUTDIR [--target-style query] [--profile full] [--timeout MS] [--pause MS]
 *
 * With --pause, checks run one at a time with that pause between them, so a
 * server that crashes and is restarted (opj_server behind lighttpd, which
 * answers 503 for about a second after its backend died) is seen answering
 * each check itself.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatJson, formatJunit, formatMarkdown, formatTable, runConformance, selectChecks, type ConformReport, type Profile } from '../conform/index.js';

const [url, out, ...rest] = process.argv.slice(2);
if (!url || !out) {
  process.stderr.write('usage: node --import tsx bench/opj-conform.ts URL OUTDIR [--target-style path|query] [--profile core|jhv|full] [--timeout MS]\n');
  process.exit(2);
}
const opt = (name: string): string | undefined => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const base = {
  url,
  profile: (opt('--profile') ?? 'full') as Profile,
  targetStyle: (opt('--target-style') ?? 'path') as 'path' | 'query',
  timeoutMs: Number(opt('--timeout') ?? 3000),
  concurrency: 1,
};
const pause = Number(opt('--pause') ?? 0);
let report: ConformReport;
if (pause > 0) {
  const started = Date.now();
  const parts: ConformReport[] = [];
  for (const c of selectChecks(base.profile)) {
    parts.push(await runConformance({ ...base, only: [c.id] }));
    await new Promise((r) => setTimeout(r, pause));
  }
  const results = parts.flatMap((p) => p.results);
  const summary = { OK: 0, 'NON-STRICT': 0, FAILED: 0, UNIMPLEMENTED: 0 };
  for (const r of results) summary[r.status]++;
  report = { ...parts[0]!, durationMs: Date.now() - started, results, summary, passed: parts.every((p) => p.passed) };
} else {
  report = await runConformance(base);
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'conform.json'), formatJson(report));
writeFileSync(join(out, 'conform.xml'), formatJunit(report));
writeFileSync(join(out, 'conform.md'), formatMarkdown(report));
process.stdout.write(`${formatTable(report, { width: 160 })}\n`);
