import { DecodeError } from '../client-sim/decode.js';

/** A problem with what the user gave (a file that is missing or malformed): the CLI prints its message alone. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/**
 * Errors the CLI reports in one line (exit code 1) instead of a stack trace:
 * bad inputs, bad values (RangeError, as every option check throws) and an
 * original the decoder refuses. Anything else is a bug and keeps its stack.
 */
export function isUserError(e: unknown): e is Error {
  return e instanceof InputError || e instanceof RangeError || e instanceof DecodeError;
}
