import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import yargs from 'yargs';
import * as assert from 'uvu/assert';
import type { CliIo } from '../bin/io.js';
import { J2kError, type J2kErrorCode } from '../jpeg2000/errors.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export interface FixtureInfo {
  name: string;
  file: string;
  ext: string;
  args: string[];
  dump: string;
  lossless: boolean;
  why: string;
}

/** The committed opj_compress fixtures (test/fixtures/matrix.json). */
export function fixtures(): FixtureInfo[] {
  return (JSON.parse(readFileSync(join(FIXTURES, 'matrix.json'), 'utf8')) as { fixtures: FixtureInfo[] }).fixtures;
}

export function fixturePath(file: string): string {
  return join(FIXTURES, file);
}

/** The fixture movie (movie/linked.jpx and its three frame files; with `container`, movie/movie.jpx too) copied under `root`. */
export function copyMovie(root: string, opts: { container?: boolean } = {}): void {
  mkdirSync(join(root, 'movie', 'frames'), { recursive: true });
  const files = ['linked.jpx', 'frames/frame 000.jp2', 'frames/frame 001.jp2', 'frames/frame 002.jp2'];
  if (opts.container) files.unshift('movie.jpx');
  for (const f of files) copyFileSync(join(FIXTURES, 'movie', f), join(root, 'movie', f));
}

export function fixtureBytes(file: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, file)));
}

/** Numbers after `key=` in an opj_dump text, in order of appearance. */
export function dumpValues(text: string, key: string): number[] {
  const re = new RegExp(`\\b${key}=(0x[0-9a-fA-F]+|-?\\d+)`, 'g');
  return [...text.matchAll(re)].map((m) => Number(m[1]));
}

/** Runs fn and returns the error it throws (fails the test if it returns). */
export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, none was thrown');
}

/** Asserts that fn throws a J2kError with that code; returns it. */
export function throwsCode(fn: () => unknown, code: J2kErrorCode, msg?: string): J2kError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof J2kError)) throw new Error(`expected J2kError ${code} (${msg ?? ''}), got ${err === undefined ? 'no error' : String(err)}`);
  assert.is(err.code, code, msg ?? err.message);
  return err;
}

/** A TCP port free on 127.0.0.1 right now (the benchmarks' helper). */
export { freePort } from '../bench/tools.js';

/** Runs one command of the CLI (its `register`) with `args`: what it printed and its exit code. */
export async function runCommand(register: (y: Argv, io: CliIo) => Argv, args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (s) => void (out += `${s}\n`), err: (s) => void (err += `${s}\n`), tty: false };
  const before = process.exitCode;
  process.exitCode = 0;
  await register(yargs(), io).strict().exitProcess(false).parseAsync(args);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, err, code };
}
