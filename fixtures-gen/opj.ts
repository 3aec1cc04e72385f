/**
 * Finding and running the OpenJPEG command-line tools (opj_compress,
 * opj_dump, opj_decompress). They are only needed to (re)generate the
 * fixture matrix; the committed fixtures let every test run without them.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { delimiter, join } from 'node:path';

export type OpjToolName = 'opj_compress' | 'opj_dump' | 'opj_decompress';

export const OPJ_INSTALL_HINT = 'install it with `apt-get install libopenjp2-tools` (Debian/Ubuntu)';

/** Raised when a tool is not on PATH or exits badly; the message names the tool. */
export class OpjToolError extends Error {
  readonly tool: string;
  constructor(tool: string, message: string) {
    super(message);
    this.name = 'OpjToolError';
    this.tool = tool;
  }
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `name` found on PATH (as the shell would), or undefined. */
export function findTool(name: string, pathEnv: string | undefined = process.env['PATH']): string | undefined {
  if (!pathEnv) return undefined;
  const exts = process.platform === 'win32' ? (process.env['PATHEXT'] ?? '.EXE').split(';') : [''];
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Like findTool, but throws an OpjToolError with the install hint when missing. */
export function requireTool(name: OpjToolName): string {
  const found = findTool(name);
  if (!found) throw new OpjToolError(name, `${name} was not found on PATH; ${OPJ_INSTALL_HINT}`);
  return found;
}

export interface ToolRun {
  stdout: string;
  stderr: string;
}

/**
 * Runs `name args...` (no shell) in `cwd` and returns its output. Throws an
 * OpjToolError naming the tool, the arguments, the exit status and stderr
 * when it cannot start or does not exit with status 0.
 */
export function runTool(name: OpjToolName, args: readonly string[], opts: { cwd?: string } = {}): ToolRun {
  const bin = requireTool(name);
  const res = spawnSync(bin, [...args], {
    cwd: opts.cwd,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // Single-threaded and with a fixed locale, so nothing but the inputs matters.
    env: { ...process.env, LC_ALL: 'C', OPJ_NUM_THREADS: '1' },
  });
  const cmd = `${name} ${args.join(' ')}`;
  if (res.error) {
    throw new OpjToolError(name, `${cmd}: could not run ${bin}: ${res.error.message}; ${OPJ_INSTALL_HINT}`);
  }
  if (res.status !== 0) {
    const why = res.signal ? `killed by ${res.signal}` : `exit status ${String(res.status)}`;
    const detail = (res.stderr || res.stdout || '').trim().split('\n').slice(-8).join('\n');
    throw new OpjToolError(name, `${cmd}: ${why}${detail ? `\n${detail}` : ''}`);
  }
  return { stdout: res.stdout, stderr: res.stderr };
}

/**
 * The OpenJPEG library version a tool was built against, read from its
 * `-h` banner ("compiled against openjp2 library v2.5.0"), or undefined
 * when the tool is missing or the banner is not recognised.
 */
export function toolVersion(name: OpjToolName): string | undefined {
  const bin = findTool(name);
  if (!bin) return undefined;
  // `-h` exits with status 1 on some builds, so read the output whatever the status.
  const res = spawnSync(bin, ['-h'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  const m = /openjp2 library v(\d+\.\d+\.\d+)/.exec(`${res.stdout ?? ''}${res.stderr ?? ''}`);
  return m?.[1];
}
