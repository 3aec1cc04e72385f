/**
 * JPIP protocol constants shared by the server and the client (ISO/IEC 15444-9
 * Annex A and C as real implementations use them). One definition each.
 */

/** Data-bin classes (Table A.2). */
export const BIN_CLASS = {
  PRECINCT: 0,
  EXTENDED_PRECINCT: 1,
  TILE_HEADER: 2,
  TILE: 4,
  EXTENDED_TILE: 5,
  MAIN_HEADER: 6,
  METADATA: 8,
} as const;
export type BinClass = (typeof BIN_CLASS)[keyof typeof BIN_CLASS];

/** EOR reason codes (Table D.2 as Kakadu numbers them). */
export const EOR = {
  IMAGE_DONE: 1,
  WINDOW_DONE: 2,
  WINDOW_CHANGE: 3,
  BYTE_LIMIT_REACHED: 4,
  QUALITY_LIMIT_REACHED: 5,
  SESSION_LIMIT_REACHED: 6,
  RESPONSE_LIMIT_REACHED: 7,
  NON_SPECIFIED: 0xff,
} as const;
export type EorReason = (typeof EOR)[keyof typeof EOR];

/** Return types. */
export const STREAM_TYPE = {
  JPP: 'jpp-stream',
  JPT: 'jpt-stream',
} as const;
export type StreamType = (typeof STREAM_TYPE)[keyof typeof STREAM_TYPE];

export const CONTENT_TYPE: Record<StreamType, string> = {
  'jpp-stream': 'image/jpp-stream',
  'jpt-stream': 'image/jpt-stream',
};
