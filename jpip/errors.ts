/**
 * Errors of the JPIP protocol layer: each has a stable code, the HTTP status
 * the server answers with, and (for request errors) the field concerned.
 * One table; the server turns them into responses, the client into messages.
 */
export const JPIP_ERROR = {
  /** A field's value is malformed (status 400). */
  BAD_FIELD: { code: 'JPIP_ERR_BAD_FIELD', status: 400 },
  /** Two fields contradict each other, or one requires another (400). */
  BAD_REQUEST: { code: 'JPIP_ERR_BAD_REQUEST', status: 400 },
  /** A JPIP field the server does not implement (501). */
  UNIMPLEMENTED: { code: 'JPIP_ERR_UNIMPLEMENTED', status: 501 },
  /** The target does not exist under the root (404). */
  NOT_FOUND: { code: 'JPIP_ERR_NOT_FOUND', status: 404 },
  /** The target escapes the image root (403 is not used: the answer is the same as for a missing file, 404). */
  FORBIDDEN_PATH: { code: 'JPIP_ERR_FORBIDDEN_PATH', status: 404 },
  /** The channel id is unknown or expired: the client should open a new session (404). */
  UNKNOWN_CHANNEL: { code: 'JPIP_ERR_UNKNOWN_CHANNEL', status: 404 },
  /** The target is not a JPEG 2000 file (415). */
  NOT_JPEG2000: { code: 'JPIP_ERR_NOT_JPEG2000', status: 415 },
  /** The request line or the query is too long (414). */
  URI_TOO_LONG: { code: 'JPIP_ERR_URI_TOO_LONG', status: 414 },
  /** The body of a POST is too large (413). */
  BODY_TOO_LARGE: { code: 'JPIP_ERR_BODY_TOO_LARGE', status: 413 },
  /** HTTP method other than GET, POST, OPTIONS (405). */
  METHOD: { code: 'JPIP_ERR_METHOD', status: 405 },
  /** The image is corrupt (500; logged with details). */
  CORRUPT_IMAGE: { code: 'JPIP_ERR_CORRUPT_IMAGE', status: 500 },
  /** A server limit (sessions, connections) is reached (503). */
  BUSY: { code: 'JPIP_ERR_BUSY', status: 503 },
  /** A JPP/JPT-stream cannot be decoded (client side). */
  BAD_STREAM: { code: 'JPIP_ERR_BAD_STREAM', status: 502 },
} as const;

export type JpipErrorKind = keyof typeof JPIP_ERROR;
export type JpipErrorCode = (typeof JPIP_ERROR)[JpipErrorKind]['code'];

export class JpipError extends Error {
  override readonly name = 'JpipError';
  readonly kind: JpipErrorKind;
  readonly code: JpipErrorCode;
  /** The HTTP status a server answers with. */
  readonly status: number;
  /** The request field concerned, if any. */
  readonly field: string | undefined;

  constructor(kind: JpipErrorKind, message: string, field?: string, options?: { cause?: unknown }) {
    super(field !== undefined ? `${field}: ${message}` : message, options);
    this.kind = kind;
    this.code = JPIP_ERROR[kind].code;
    this.status = JPIP_ERROR[kind].status;
    this.field = field;
  }
}

export function isJpipError(e: unknown): e is JpipError {
  return e instanceof JpipError;
}
