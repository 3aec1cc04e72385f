/**
 * Typed errors of the JPEG 2000 layer. Every failure to read a file is a
 * `J2kError` with a stable `code` (tests and callers switch on it), the file it
 * concerns and, where known, the byte offset. One table, one definition.
 */

export const J2K_ERROR = {
  /** The data ends before a structure it announces. */
  TRUNCATED: 'J2K_ERR_TRUNCATED',
  /** A box header is malformed (length smaller than its header, past its parent). */
  BAD_BOX: 'J2K_ERR_BAD_BOX',
  /** A marker segment is malformed (bad length, impossible value). */
  BAD_MARKER: 'J2K_ERR_BAD_MARKER',
  /** A marker that must be present is missing (SOC, SIZ, COD, QCD, SOT...). */
  MISSING_MARKER: 'J2K_ERR_MISSING_MARKER',
  /** A value is outside what the standard allows (0 components, 33 levels...). */
  BAD_VALUE: 'J2K_ERR_BAD_VALUE',
  /** Valid JPEG 2000 that this implementation chooses not to handle. */
  UNSUPPORTED: 'J2K_ERR_UNSUPPORTED',
  /** The file is not JPEG 2000 at all (no JP2 signature, no SOC). */
  NOT_JPEG2000: 'J2K_ERR_NOT_JPEG2000',
  /** Packet lengths (PLT/PLM) disagree with the tile-part bodies. */
  BAD_PACKET_LENGTHS: 'J2K_ERR_BAD_PACKET_LENGTHS',
  /** A packet header cannot be decoded. */
  BAD_PACKET_HEADER: 'J2K_ERR_BAD_PACKET_HEADER',
  /** A data reference (url box) is malformed or escapes the image root. */
  BAD_REFERENCE: 'J2K_ERR_BAD_REFERENCE',
  /** A referenced file (linked JPX) does not exist or cannot be read. */
  MISSING_REFERENCE: 'J2K_ERR_MISSING_REFERENCE',
  /** The index cache file is unreadable or belongs to another file version. */
  BAD_CACHE: 'J2K_ERR_BAD_CACHE',
} as const;

export type J2kErrorCode = (typeof J2K_ERROR)[keyof typeof J2K_ERROR];

export interface J2kErrorDetails {
  /** The file (as the caller named it) the error concerns. */
  file?: string | undefined;
  /** Byte offset in that file (or in the buffer being parsed) where it was found. */
  offset?: number | undefined;
  cause?: unknown;
}

export class J2kError extends Error {
  override readonly name = 'J2kError';
  readonly code: J2kErrorCode;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  /** The message without the file/offset suffix. */
  readonly reason: string;

  constructor(code: J2kErrorCode, reason: string, details: J2kErrorDetails = {}) {
    const where: string[] = [];
    if (details.file !== undefined) where.push(details.file);
    if (details.offset !== undefined) where.push(`offset ${details.offset}`);
    super(where.length > 0 ? `${reason} (${where.join(', ')})` : reason, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.code = code;
    this.file = details.file;
    this.offset = details.offset;
    this.reason = reason;
  }

  /** The same error, naming a file (used when a buffer parser did not know it). */
  withFile(file: string, baseOffset = 0): J2kError {
    if (this.file !== undefined) return this;
    return new J2kError(this.code, this.reason, {
      file,
      offset: this.offset === undefined ? undefined : this.offset + baseOffset,
      cause: this.cause,
    });
  }
}

export function isJ2kError(e: unknown): e is J2kError {
  return e instanceof J2kError;
}
