import type { ConformReport } from './runner.js';
import { failsProfile, GROUPS, STATUS, type CheckResult, type Group, type Status } from './types.js';

/** Renderings of a report: terminal table, JSON, JUnit XML, Markdown. Each reads only the report. */

const COLOURS: Record<Status, string> = { OK: '\x1b[32m', 'NON-STRICT': '\x1b[33m', FAILED: '\x1b[31m', UNIMPLEMENTED: '\x1b[36m' };

function byGroup(results: readonly CheckResult[]): Array<[Group, CheckResult[]]> {
  const out = new Map<Group, CheckResult[]>();
  for (const r of results) {
    const list = out.get(r.group) ?? [];
    list.push(r);
    out.set(r.group, list);
  }
  return [...out.entries()];
}

function summaryLine(report: ConformReport): string {
  const s = report.summary;
  return `${s.OK} OK, ${s['NON-STRICT']} NON-STRICT, ${s.FAILED} FAILED, ${s.UNIMPLEMENTED} UNIMPLEMENTED: profile ${report.profile} ${report.passed ? 'PASSED' : 'FAILED'}`;
}

/** A plain-text table, one line per check under a heading per group; `colour` adds ANSI colours to the status. */
export function formatTable(report: ConformReport, opts: { colour?: boolean; width?: number } = {}): string {
  const width = opts.width ?? 120;
  const idWidth = Math.max(...report.results.map((r) => r.id.length), 10);
  const lines: string[] = [`jpip-bench conform ${report.url}  profile ${report.profile}  fixtures: ${report.fixtures}`, ''];
  for (const [group, list] of byGroup(report.results)) {
    lines.push(GROUPS[group]);
    for (const r of list) {
      const st = r.status.padEnd(13);
      const status = opts.colour ? `${COLOURS[r.status]}${st}\x1b[0m` : st;
      const room = Math.max(20, width - idWidth - 19);
      const msg = r.message.length > room ? `${r.message.slice(0, room - 3)}...` : r.message;
      lines.push(`  ${status} ${r.id.padEnd(idWidth)}  ${msg}`);
    }
    lines.push('');
  }
  lines.push(`${summaryLine(report)} (${(report.durationMs / 1000).toFixed(1)} s)`);
  return lines.join('\n');
}

/** The report as JSON (the stable machine format). */
export function formatJson(report: ConformReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

function xml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '');
}

/**
 * JUnit XML: a testsuite per group, a testcase per check. FAILED (and, in the
 * full profile, UNIMPLEMENTED) is a <failure>; UNIMPLEMENTED elsewhere is
 * <skipped>; NON-STRICT passes with its explanation in <system-out>.
 */
export function formatJunit(report: ConformReport): string {
  const failures = report.results.filter((r) => failsProfile(r.status, report.profile)).length;
  const skipped = report.results.filter((r) => r.status === STATUS.UNIMPLEMENTED && !failsProfile(r.status, report.profile)).length;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="jpip-bench conform (${xml(report.profile)})" tests="${report.results.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${(report.durationMs / 1000).toFixed(3)}" timestamp="${report.startedAt}">`,
  ];
  for (const [group, list] of byGroup(report.results)) {
    const f = list.filter((r) => failsProfile(r.status, report.profile)).length;
    const sk = list.filter((r) => r.status === STATUS.UNIMPLEMENTED && !failsProfile(r.status, report.profile)).length;
    const t = list.reduce((n, r) => n + r.durationMs, 0) / 1000;
    out.push(`  <testsuite name="${xml(GROUPS[group])}" tests="${list.length}" failures="${f}" errors="0" skipped="${sk}" time="${t.toFixed(3)}">`);
    for (const r of list) {
      out.push(`    <testcase classname="jpip.conform.${xml(group)}" name="${xml(`${r.id}: ${r.title}`)}" time="${(r.durationMs / 1000).toFixed(3)}">`);
      if (failsProfile(r.status, report.profile)) out.push(`      <failure message="${xml(`${r.status}: ${r.message}`)}" type="${xml(r.status)}">${xml(r.why)}</failure>`);
      else if (r.status === STATUS.UNIMPLEMENTED) out.push(`      <skipped message="${xml(`UNIMPLEMENTED: ${r.message}`)}"/>`);
      else out.push(`      <system-out>${xml(`${r.status}: ${r.message}`)}</system-out>`);
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}

function md(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** Markdown: a summary line and a table per group (for CI job summaries and docs). */
export function formatMarkdown(report: ConformReport): string {
  const lines = [`# JPIP conformance: ${md(report.url)}`, '', `Profile **${report.profile}**, fixtures: ${md(report.fixtures)}, ${report.startedAt}.`, '', `**${summaryLine(report)}**`, ''];
  for (const [group, list] of byGroup(report.results)) {
    lines.push(`## ${GROUPS[group]}`, '', '| Check | Result | Explanation |', '|---|---|---|');
    for (const r of list) lines.push(`| \`${r.id}\` ${md(r.title)} | ${r.status} | ${md(r.message)} |`);
    lines.push('');
  }
  return lines.join('\n');
}
