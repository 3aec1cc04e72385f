/**
 * The JPIP conformance suite (`jpip-bench conform URL`): checks with ids,
 * a runner with profiles, and reporters. See docs/conformance.md.
 */
export { CHECKS } from './checks/index.js';
export { runConformance, selectChecks, type ConformOptions, type ConformReport } from './runner.js';
export { formatJson, formatJunit, formatMarkdown, formatTable } from './report.js';
export { DEFAULT_FIXTURE_SET, ROLES, ROLE_NAMES, defaultOriginalsRoot, parseFixtureSet, type FixtureSet, type FixtureTarget, type Role } from './fixtures.js';
export { GROUPS, PROFILES, STATUS, failsProfile, type Check, type CheckResult, type Group, type Outcome, type Profile, type Status } from './types.js';
