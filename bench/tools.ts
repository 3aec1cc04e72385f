/**
 * What the benchmarks share: Debian tools installed on demand, free loopback ports, waiting for
 * a server to answer.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Makes sure a Debian tool is there, installing its package when we can; else says what to install and exits. */
export function ensureTool(cmd: string, pkg: string): void {
  if (have(cmd)) return;
  if (process.getuid?.() === 0 && have('apt-get')) {
    console.error(`installing ${pkg} (for ${cmd}) with apt-get...`);
    const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status === 0 && have(cmd)) return;
  }
  console.error(`${cmd} is missing: install it (Debian/Ubuntu: sudo apt-get install ${pkg}) and run again`);
  process.exit(1);
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once `probe` succeeds; rejects after `ms`. */
export async function waitFor(what: string, probe: () => Promise<unknown>, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      await probe();
      return;
    } catch (e) {
      if (Date.now() - t0 > ms) throw new Error(`${what} did not answer within ${ms} ms: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
