import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CHECKS } from './checks/index.js';
import type { ServerAddress } from './client.js';
import { CheckContext } from './context.js';
import { DEFAULT_FIXTURE_SET, defaultOriginalsRoot, loadFixtures, type FixtureSet } from './fixtures.js';
import { HttpConnectionError, HttpTimeout } from './http.js';
import { CheckEnded, CheckFailed, failsProfile, STATUS, type Check, type CheckResult, type Outcome, type Profile, type Status } from './types.js';

/**
 * Runs the checks of a profile against a server: concurrently (a pool of
 * `concurrency`), each with its own connections and a deadline, so a server
 * that hangs gives FAILED checks in bounded time instead of a hung run.
 */

export interface ConformOptions {
  /** The server's base URL. */
  url: string;
  profile?: Profile;
  /** Fixture set (default: DEFAULT_FIXTURE_SET). */
  fixtures?: FixtureSet;
  /** Directory of the originals (default: the committed test/fixtures). */
  root?: string;
  /** How targets are named: in the path (default) or with target=. */
  targetStyle?: 'path' | 'query';
  /** Put before every target name. */
  prefix?: string;
  /** Milliseconds one request may take (default 5000). */
  timeoutMs?: number;
  /** https:// servers: accept any certificate (self-signed test certificates). */
  insecure?: boolean;
  /** Milliseconds one check may take (default 12 x timeoutMs). */
  checkTimeoutMs?: number;
  /** Checks run at once (default 6). */
  concurrency?: number;
  /** Only these check ids or group names (`framing` or `framing.`). */
  only?: readonly string[];
  /** Called after each check. */
  onResult?: (r: CheckResult) => void;
  /** The check list (tests substitute their own). */
  checks?: readonly Check[];
}

export interface ConformReport {
  tool: string;
  url: string;
  profile: Profile;
  fixtures: string;
  startedAt: string;
  durationMs: number;
  summary: Record<Status, number>;
  /** The profile passes: no FAILED result (and, in the full profile, no UNIMPLEMENTED one). */
  passed: boolean;
  results: CheckResult[];
}

/**
 * The checks a profile runs (every check is in `full`), optionally narrowed by
 * `only`: each entry is an exact check id or a group name (`framing` or
 * `framing.`). Throws when an entry is not a check id or group, when it selects
 * no check of the profile, or when nothing is left to run.
 */
export function selectChecks(profile: Profile, only?: readonly string[], checks: readonly Check[] = CHECKS): Check[] {
  let list = checks.filter((c) => profile === 'full' || c.profiles.includes(profile));
  const wanted = (only ?? []).map((o) => o.trim()).filter((o) => o !== '');
  if (wanted.length > 0) {
    const matches = (c: Check, o: string): boolean => c.id === o || c.group === (o.endsWith('.') ? o.slice(0, -1) : o);
    const unknown = wanted.filter((o) => !checks.some((c) => matches(c, o)));
    if (unknown.length > 0) throw new Error(`unknown check id or group: ${unknown.join(', ')}`);
    const outside = wanted.filter((o) => !list.some((c) => matches(c, o)));
    if (outside.length > 0) throw new Error(`not in the ${profile} profile: ${outside.join(', ')} (use --profile full)`);
    list = list.filter((c) => wanted.some((o) => matches(c, o)));
  }
  if (list.length === 0) throw new Error(`no check selected (profile ${profile})`);
  return list;
}

function toOutcome(e: unknown, ctx: CheckContext): Outcome {
  if (e instanceof CheckFailed) return { status: STATUS.FAILED, message: e.message };
  if (e instanceof CheckEnded) return e.outcome;
  if (e instanceof HttpTimeout) return { status: STATUS.FAILED, message: `no answer within ${ctx.timeoutMs} ms: ${e.message}` };
  if (e instanceof HttpConnectionError) return { status: STATUS.FAILED, message: `connection: ${e.message}` };
  const err = e as Error;
  return { status: STATUS.FAILED, message: `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}` };
}

async function runOne(check: Check, addr: ServerAddress, fixtures: ReturnType<typeof loadFixtures>, timeoutMs: number, checkTimeoutMs: number): Promise<CheckResult> {
  const ctx = new CheckContext(addr, fixtures, timeoutMs);
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let outcome: Outcome;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CheckFailed(`the check did not finish within ${checkTimeoutMs} ms`)), checkTimeoutMs);
    });
    outcome = await Promise.race([check.run(ctx), deadline]);
  } catch (e) {
    outcome = toOutcome(e, ctx);
  } finally {
    clearTimeout(timer);
  }
  // Close what the check opened (its run may still be pending after a deadline: its sockets die here).
  await ctx.dispose().catch(() => undefined);
  const message = outcome.message.replace(/\s+/g, ' ').trim();
  return { id: check.id, group: check.group, title: check.title, why: check.why, profiles: check.profiles, status: outcome.status, message: message.length > 300 ? `${message.slice(0, 297)}...` : message, durationMs: Date.now() - started };
}

/** Certificate checks that fail the same way for every check: the run stops once, saying so. */
const CERTIFICATE_ERRORS = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** Why the server's certificate is not trusted, or undefined (trusted, or not reachable: the checks say so). */
function certificateProblem(base: URL, timeoutMs: number): Promise<string | undefined> {
  const host = base.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const s = tlsConnect({ host, port: Number(base.port || 443), ...(isIP(host) ? {} : { servername: host }) });
    const done = (why: string | undefined): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.once('secureConnect', () => done(undefined));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code && CERTIFICATE_ERRORS.has(e.code) ? e.message : undefined));
  });
}

/** Runs the conformance suite. Throws only for problems of the run itself (bad URL, fixture set, an untrusted certificate). */
export async function runConformance(opts: ConformOptions): Promise<ConformReport> {
  const profile = opts.profile ?? 'core';
  let base: URL;
  try {
    base = new URL(opts.url);
  } catch {
    throw new Error(`not a URL: ${opts.url}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`only http:// and https:// servers can be checked (got ${base.protocol})`);
  const set = opts.fixtures ?? DEFAULT_FIXTURE_SET;
  const root = opts.root ?? defaultOriginalsRoot();
  if (!root) throw new Error('no originals directory: give --root (the directory holding the fixture files)');
  const fixtures = loadFixtures(set, root);
  const addr: ServerAddress = { base, targetStyle: opts.targetStyle ?? 'path', prefix: opts.prefix ?? '', insecure: opts.insecure === true };
  const timeoutMs = opts.timeoutMs ?? 5000;
  const checkTimeoutMs = opts.checkTimeoutMs ?? timeoutMs * 12;
  const checks = selectChecks(profile, opts.only, opts.checks);
  if (base.protocol === 'https:' && !opts.insecure) {
    const untrusted = await certificateProblem(base, timeoutMs);
    if (untrusted) throw new Error(`${base.origin}: the server's TLS certificate is not trusted (${untrusted}); for a self-signed test certificate, use --insecure`);
  }
  const startedAt = new Date();
  const results = new Map<string, CheckResult>();
  try {
    const pool = checks.filter((c) => !c.exclusive);
    const alone = checks.filter((c) => c.exclusive);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < pool.length) {
        const c = pool[next++]!;
        const r = await runOne(c, addr, fixtures, timeoutMs, checkTimeoutMs);
        results.set(c.id, r);
        opts.onResult?.(r);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 6, pool.length)) }, worker));
    for (const c of alone) {
      const r = await runOne(c, addr, fixtures, timeoutMs, checkTimeoutMs);
      results.set(c.id, r);
      opts.onResult?.(r);
    }
  } finally {
    fixtures.close();
  }
  const ordered = checks.map((c) => results.get(c.id)!);
  const summary = { [STATUS.OK]: 0, [STATUS.NON_STRICT]: 0, [STATUS.FAILED]: 0, [STATUS.UNIMPLEMENTED]: 0 } as Record<Status, number>;
  for (const r of ordered) summary[r.status]++;
  return {
    tool: 'jpip-bench conform',
    url: base.href,
    profile,
    fixtures: set.name,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    summary,
    passed: !ordered.some((r) => failsProfile(r.status, profile)),
    results: ordered,
  };
}
