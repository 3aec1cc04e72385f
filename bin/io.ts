import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the CLI writes: tests capture it. */
export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether stderr is a terminal (progress bars only then). */
  tty: boolean;
}

export const defaultIo: CliIo = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
  tty: Boolean(process.stderr.isTTY),
};

/** Where index cache files go unless --cache says otherwise. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['JPIP_BENCH_CACHE']) return env['JPIP_BENCH_CACHE'];
  const base = env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'jpip-bench', 'index');
}
