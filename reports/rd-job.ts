/**
 * A whole `jpip-bench rd` run: resolve the servers (starting the embedded
 * server when one is `embedded`), find the target and the original, run the
 * sequence, write rd.json / rd.csv / rd.svg / rd.png. The CLI maps its flags
 * onto RdJobOptions and prints the outcome.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJpipServer, type JpipServer } from '../server/server.js';
import { EMBEDDED, type ServerSpec } from './dialects.js';
import { writeRdOutputs, type RdOutputFiles } from './rd-output.js';
import type { RdPoint, RdResult } from './rd-result.js';
import type { RdSummaryOptions } from './rd-summary.js';
import { RD_DEFAULTS, runRd, type RdServer } from './rd.js';
import { loadSequence } from './sequence.js';

export interface RdJobOptions {
  /** Default: the embedded server alone. */
  servers?: ServerSpec[] | undefined;
  /** The image as the servers name it; for the embedded server without `root`, a local file. */
  target?: string | undefined;
  /** Image root of the embedded server (default: the target's directory). */
  root?: string | undefined;
  /** The original file (default: the target under the root, or the target itself when it is a local file). */
  original?: string | undefined;
  /** `paper` (default) or a JSON file. */
  sequence?: string | undefined;
  stream?: number | undefined;
  step?: number | undefined;
  maxRequestsPerWindow?: number | undefined;
  timeoutMs?: number | undefined;
  summary?: RdSummaryOptions | undefined;
  out: string;
  onPoint?: ((p: RdPoint) => void) | undefined;
}

/** The committed fixture a bare `jpip-bench rd` runs on (from a source tree or its dist/ build). */
export const DEFAULT_FIXTURE = 'g256-irrev-8l-cb32.j2k';

export function defaultFixture(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    const f = resolve(here, up, 'test', 'fixtures', DEFAULT_FIXTURE);
    if (existsSync(f)) return f;
  }
  return undefined;
}

interface Resolved {
  target: string;
  root: string | undefined;
  original: string;
}

/** Where the image and its original are, from the options (see RdJobOptions). */
export function resolveTarget(o: Pick<RdJobOptions, 'target' | 'root' | 'original'>, needsEmbedded: boolean): Resolved {
  let target = o.target;
  let root = o.root;
  if (target === undefined) {
    if (!needsEmbedded || root !== undefined) throw new RangeError('--target is required (the image as the servers name it)');
    const f = defaultFixture();
    if (!f) throw new RangeError(`--target is required: the default fixture ${DEFAULT_FIXTURE} is not in this installation`);
    target = f;
  }
  if (needsEmbedded && root === undefined) {
    if (!existsSync(target)) throw new RangeError(`--target ${target}: no such file (give --root DIR for the embedded server, and the target under it)`);
    root = dirname(resolve(target));
    target = basename(target);
  }
  const original = o.original ?? (root !== undefined ? join(root, target) : target);
  if (!existsSync(original)) throw new RangeError(`the original ${original} does not exist: give --original FILE (the file the servers serve as ${target})`);
  return { target, root, original };
}

export interface RdJobResult {
  result: RdResult;
  files: RdOutputFiles;
  /** The servers as measured (embedded resolved to its URL). */
  servers: RdServer[];
}

/** Runs the job; the embedded server (if any) is closed before returning, even on errors. */
export async function runRdJob(o: RdJobOptions): Promise<RdJobResult> {
  const specs = o.servers && o.servers.length > 0 ? o.servers : [{ name: 'ours', url: EMBEDDED, dialect: 'ours' as const }];
  const reference = o.summary?.reference;
  if (reference !== undefined && !specs.some((s) => s.name === reference)) {
    throw new RangeError(`reference server '${reference}' is not among ${specs.map((s) => s.name).join(', ')}`);
  }
  const needsEmbedded = specs.some((s) => s.url === EMBEDDED);
  const where = resolveTarget(o, needsEmbedded);
  const sequenceSpec = o.sequence ?? 'paper';
  const sequence = loadSequence(sequenceSpec);
  const bytes = new Uint8Array(readFileSync(where.original));
  let embedded: JpipServer | undefined;
  try {
    let embeddedUrl = '';
    if (needsEmbedded) {
      embedded = createJpipServer({ root: where.root!, port: 0, host: '127.0.0.1' });
      embeddedUrl = await embedded.listen();
    }
    const servers: RdServer[] = specs.map((s) => ({ name: s.name, dialect: s.dialect, url: s.url === EMBEDDED ? embeddedUrl : s.url }));
    const result = await runRd({
      servers,
      target: where.target,
      original: { bytes, file: where.original },
      stream: o.stream,
      sequence,
      sequenceSource: sequenceSpec,
      step: o.step ?? RD_DEFAULTS.step,
      maxRequestsPerWindow: o.maxRequestsPerWindow,
      timeoutMs: o.timeoutMs,
      summary: o.summary,
      onPoint: o.onPoint,
    });
    const files = await writeRdOutputs(result, o.out);
    return { result, files, servers };
  } finally {
    await embedded?.close();
  }
}
