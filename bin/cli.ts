import type { Argv } from 'yargs';
import { register as registerConform } from './commands/conform.js';
import { register as registerCrowd } from './commands/crowd.js';
import { register as registerFetch } from './commands/fetch.js';
import { register as registerHammer } from './commands/hammer.js';
import { register as registerRd } from './commands/rd.js';
import { register as registerReport } from './commands/report.js';
import { register as registerFixtures } from './commands/fixtures.js';
import { register as registerIndex } from './commands/index.js';
import { register as registerInspect } from './commands/inspect.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerBalancer } from './commands/balancer.js';
import { buildCli as buildWith, main as mainWith, type Registrar } from './cli-core.js';
import { defaultIo, type CliIo } from './io.js';

export { defaultCacheDir, type CliIo } from './io.js';

/** Every command, in the order --help lists them. Each lives in bin/commands/. */
const COMMANDS: readonly Registrar[] = [
  registerServe,
  registerCrowd,
  registerHammer,
  registerFetch,
  registerFixtures,
  registerRd,
  registerReport,
  registerConform,
  registerInspect,
  registerIndex,
  registerBalancer,
];

/** The whole `jpip-bench` command line (every command). */
export function buildCli(io: CliIo = defaultIo): Argv {
  return buildWith(io, COMMANDS);
}

/** Runs the CLI; known errors become one clear line and exit code 1, usage errors exit code 2. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<void> {
  await mainWith(argv, io, COMMANDS);
}
