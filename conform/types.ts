/**
 * The vocabulary of the conformance suite: results, profiles, groups and the
 * shape of one check. Grading follows the autobahn style undici uses: each
 * check lands in OK, NON-STRICT, FAILED or UNIMPLEMENTED.
 */
import type { CheckContext } from './context.js';

export const STATUS = {
  OK: 'OK',
  /** Works, but not the way the rule (where it is clear) or most servers do it; where servers disagree and the rule is unclear. */
  NON_STRICT: 'NON-STRICT',
  FAILED: 'FAILED',
  /** The server says (or shows) it does not offer the feature. Fails only the full profile. */
  UNIMPLEMENTED: 'UNIMPLEMENTED',
} as const;
export type Status = (typeof STATUS)[keyof typeof STATUS];

export const PROFILES = ['core', 'jhv', 'full'] as const;
export type Profile = (typeof PROFILES)[number];

export const GROUPS = {
  syntax: 'Request syntax',
  headers: 'Response headers',
  framing: 'JPP-stream framing',
  data: 'Data correctness',
  window: 'Window mapping',
  cache: 'Cache model',
  sessions: 'Sessions',
  jpx: 'JPX and linked JPX',
  errors: 'Error handling',
  jhv: 'JHelioviewer compatibility',
} as const;
export type Group = keyof typeof GROUPS;

export interface Outcome {
  status: Status;
  /** One line: what was seen. */
  message: string;
}

export interface Check {
  /** `group.name`, stable: CI configurations and the docs refer to it. */
  id: string;
  group: Group;
  title: string;
  /** Why the check exists: the rule, or the client that breaks without it. */
  why: string;
  /** Profiles the check belongs to (every check is in `full`). */
  profiles: readonly Profile[];
  /** Runs alone, after the concurrent ones (it may disturb other checks' sessions). */
  exclusive?: boolean;
  run(ctx: CheckContext): Promise<Outcome>;
}

export interface CheckResult extends Outcome {
  id: string;
  group: Group;
  title: string;
  why: string;
  profiles: readonly Profile[];
  durationMs: number;
}

/** Thrown inside a check to end it FAILED with a message. */
export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
}

/** Thrown inside a check to end it with another status (NON-STRICT or UNIMPLEMENTED) right away. */
export class CheckEnded extends Error {
  override readonly name = 'CheckEnded';
  readonly outcome: Outcome;
  constructor(outcome: Outcome) {
    super(outcome.message);
    this.outcome = outcome;
  }
}

export const ok = (message: string): Outcome => ({ status: STATUS.OK, message });
export const nonStrict = (message: string): Outcome => ({ status: STATUS.NON_STRICT, message });
export const failed = (message: string): Outcome => ({ status: STATUS.FAILED, message });
export const unimplemented = (message: string): Outcome => ({ status: STATUS.UNIMPLEMENTED, message });

/** Ends the check FAILED unless `cond` holds. */
export function expect(cond: unknown, message: string): asserts cond {
  if (!cond) throw new CheckFailed(message);
}

/** Ends the check FAILED. */
export function fail(message: string): never {
  throw new CheckFailed(message);
}

/** Ends the check with an outcome (NON-STRICT, UNIMPLEMENTED) from deep inside a helper. */
export function end(outcome: Outcome): never {
  throw new CheckEnded(outcome);
}

/** Whether a result fails a profile: FAILED always, UNIMPLEMENTED in the full profile. */
export function failsProfile(status: Status, profile: Profile): boolean {
  return status === STATUS.FAILED || (status === STATUS.UNIMPLEMENTED && profile === 'full');
}
