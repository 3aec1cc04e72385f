import { BIN_CLASS, EOR } from './constants.js';
import { JpipError } from './errors.js';

/**
 * JPP-stream and JPT-stream messages (ISO/IEC 15444-9 Annex A, and the EOR
 * message of Annex D), encode and decode. Both stream types share one message
 * syntax; nothing here depends on which data-bin classes appear.
 *
 * A message is `Bin-ID [Class] [CSn] Msg-Offset Msg-Length [Aux]` then
 * Msg-Length bytes. Every field but the Bin-ID is a VBAS: big-endian groups of
 * 7 bits, bit 7 set on every byte but the last. The Bin-ID's first byte holds
 * a continuation bit, the 2-bit form `bb` (01: class and codestream as in the
 * previous message; 10: codestream as before, Class follows; 11: Class and
 * CSn follow), the completeness bit `c` and the top 4 bits of the in-class id;
 * its later bytes hold 7 id bits each. Aux follows iff the class is odd
 * (extended precinct 1, extended tile 5). A first byte of 0x00 starts an EOR
 * message: `00 R VBAS(length) body`.
 *
 * Pure: Uint8Array and plain JavaScript only (a browser viewer reuses it).
 *
 * Errors: the decoders throw only `JpipError` of kind BAD_STREAM, whatever the
 * input. The encoders throw `RangeError` for arguments no valid message has
 * (negative or fractional numbers, Aux on an even class...): those are bugs of
 * the caller, not of a peer.
 */

/** Largest value a VBAS may carry: values must stay exact JavaScript numbers. */
export const MAX_VBAS_VALUE = Number.MAX_SAFE_INTEGER;
/**
 * Longest VBAS (or Bin-ID) a decoder accepts: at most 8 bytes with the
 * continuation bit, then a last byte. A minimal 2^53 - 1 takes 8 bytes, so
 * this leaves room for one leading non-minimal 0x80.
 */
export const MAX_VBAS_BYTES = 9;
/** Longest header `MessageWriter` and `encodeHeader` produce (6 minimal fields of at most 8 bytes). */
export const MAX_HEADER_LENGTH = 48;
/** Default bound on Msg-Length (and on an EOR body) accepted by the decoder: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_LENGTH = 64 * 1024 * 1024;

/** The header fields of one message, as given to the encoder. */
export interface MessageHeader {
  /** Data-bin class (`BIN_CLASS`); any non-negative integer is encoded. */
  classId: number;
  /** Codestream id (CSn). */
  codestream: number;
  /** In-class data-bin id. */
  binId: number;
  /** Byte offset of this message's data within the data-bin. */
  offset: number;
  /** Number of data bytes (Msg-Length). */
  length: number;
  /** The message holds the last byte of the data-bin (bit `c`). */
  complete: boolean;
  /** Aux: required when the class is odd (1, 5), forbidden otherwise. */
  aux?: number | undefined;
}

/** A message with its data. `length`, if given, must equal `data.length`. */
export interface MessageInit extends Omit<MessageHeader, 'length'> {
  length?: number | undefined;
  data: Uint8Array;
}

/** A decoded data-bin message. */
export interface DecodedMessage {
  kind: 'message';
  classId: number;
  codestream: number;
  binId: number;
  offset: number;
  length: number;
  complete: boolean;
  /** The Aux value for odd classes, `undefined` for even ones. */
  aux: number | undefined;
  /** `length` bytes (see `JppDecoderOptions.copy` about views). */
  data: Uint8Array;
}

/** A decoded EOR message. */
export interface DecodedEor {
  kind: 'eor';
  /** Reason code (`EOR`), one byte. */
  reason: number;
  body: Uint8Array;
}

export type DecodedItem = DecodedMessage | DecodedEor;

const EMPTY = new Uint8Array(0);

/** POW128[n] = 128^n: a VBAS of n bytes holds values below POW128[n]. */
const POW128 = [1, 2 ** 7, 2 ** 14, 2 ** 21, 2 ** 28, 2 ** 35, 2 ** 42, 2 ** 49, 2 ** 56];
/** BIN_ID_LIMIT[k] = 2^(7k - 3): a k-byte Bin-ID holds ids below it. */
const BIN_ID_LIMIT = [1, 2 ** 4, 2 ** 11, 2 ** 18, 2 ** 25, 2 ** 32, 2 ** 39, 2 ** 46, 2 ** 53];

function badStream(message: string): JpipError {
  return new JpipError('BAD_STREAM', message);
}

function checkUint(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${name} must be an integer in [0, 2^53 - 1], got ${String(v)}`);
  }
}

// ---------------------------------------------------------------------------
// VBAS

/** Bytes of the minimal VBAS encoding of `value` (1 to 8). */
export function vbasLength(value: number): number {
  let n = 1;
  while (n < 8 && value >= POW128[n]!) n++;
  return n;
}

/**
 * Writes the minimal n-byte VBAS of `v` at `pos` (no checks). Returns the end.
 * Values below 2^31 take the bitwise path.
 */
function putVbas(v: number, out: Uint8Array, pos: number): number {
  if (v < 0x80) {
    out[pos] = v;
    return pos + 1;
  }
  const n = vbasLength(v);
  const last = pos + n - 1;
  if (v <= 0x7fffffff) {
    out[last] = v & 0x7f;
    v >>>= 7;
    for (let i = last - 1; i >= pos; i--) {
      out[i] = 0x80 | (v & 0x7f);
      v >>>= 7;
    }
  } else {
    out[last] = v % 128;
    v = Math.floor(v / 128);
    for (let i = last - 1; i >= pos; i--) {
      out[i] = 0x80 | v % 128;
      v = Math.floor(v / 128);
    }
  }
  return last + 1;
}

/**
 * Minimal VBAS encoding of `value` (a safe non-negative integer).
 * Without `out`: returns a new array. With `out`: writes at `pos` (default 0)
 * and returns the position after the last byte written (RangeError if it does
 * not fit).
 *
 * @example encodeVbas(200) // Uint8Array [0x81, 0x48]
 */
export function encodeVbas(value: number): Uint8Array;
export function encodeVbas(value: number, out: Uint8Array, pos?: number): number;
export function encodeVbas(value: number, out?: Uint8Array, pos = 0): Uint8Array | number {
  checkUint('VBAS value', value);
  if (out === undefined) {
    const bytes = new Uint8Array(vbasLength(value));
    putVbas(value, bytes, 0);
    return bytes;
  }
  if (!Number.isInteger(pos) || pos < 0 || pos + vbasLength(value) > out.length) {
    throw new RangeError(`VBAS of ${value} does not fit at ${pos} in ${out.length} bytes`);
  }
  return putVbas(value, out, pos);
}

/**
 * Decodes one VBAS at `pos`. Accepts non-minimal encodings (leading 0x80
 * bytes) up to `MAX_VBAS_BYTES` bytes; throws BAD_STREAM when the VBAS is
 * longer, runs past the end of `bytes`, or exceeds 2^53 - 1.
 * Returns the value and the position after it.
 */
export function decodeVbas(bytes: Uint8Array, pos = 0): { value: number; end: number } {
  let value = 0;
  for (let n = 0; ; n++) {
    if (n === MAX_VBAS_BYTES) throw badStream(`VBAS at ${pos} longer than ${MAX_VBAS_BYTES} bytes`);
    const i = pos + n;
    if (i >= bytes.length) throw badStream(`VBAS at ${pos} truncated`);
    const b = bytes[i]!;
    const low = b & 0x7f;
    if (value > (MAX_VBAS_VALUE - low) / 128) throw badStream(`VBAS at ${pos} exceeds 2^53 - 1`);
    value = value * 128 + low;
    if ((b & 0x80) === 0) return { value, end: i + 1 };
  }
}

// ---------------------------------------------------------------------------
// Encoding

/** bb values of the Bin-ID's first byte. */
const FORM_SAME_CLASS_CS = 1;
const FORM_SAME_CS = 2;
const FORM_FULL = 3;

function checkHeader(m: MessageHeader): void {
  checkUint('classId', m.classId);
  checkUint('codestream', m.codestream);
  checkUint('binId', m.binId);
  checkUint('offset', m.offset);
  checkUint('length', m.length);
  if (m.offset + m.length > MAX_VBAS_VALUE) throw new RangeError('offset + length exceeds 2^53 - 1');
  if (isOdd(m.classId)) {
    if (m.aux === undefined) throw new RangeError(`class ${m.classId} is odd: aux is required`);
    checkUint('aux', m.aux);
  } else if (m.aux !== undefined) {
    throw new RangeError(`class ${m.classId} is even: it has no aux`);
  }
}

function isOdd(classId: number): boolean {
  return classId <= 0x7fffffff ? (classId & 1) === 1 : classId % 2 === 1;
}

/**
 * Writes a header of form `bb` at `pos`; `out` must have MAX_HEADER_LENGTH
 * bytes of room. Returns the end. The header must have been checked.
 */
function putHeader(m: MessageHeader, form: number, out: Uint8Array, pos: number): number {
  // Bin-ID: k bytes, the first holding 4 id bits, the others 7 each.
  const id = m.binId;
  let k = 1;
  while (id >= BIN_ID_LIMIT[k]!) k++;
  const last = pos + k - 1;
  let high = id;
  if (k > 1) {
    if (id <= 0x7fffffff) {
      out[last] = id & 0x7f;
      high = id >>> 7;
      for (let i = last - 1; i > pos; i--) {
        out[i] = 0x80 | (high & 0x7f);
        high >>>= 7;
      }
    } else {
      out[last] = id % 128;
      high = Math.floor(id / 128);
      for (let i = last - 1; i > pos; i--) {
        out[i] = 0x80 | high % 128;
        high = Math.floor(high / 128);
      }
    }
  }
  out[pos] = (k > 1 ? 0x80 : 0) | (form << 5) | (m.complete ? 0x10 : 0) | high;
  let p = last + 1;
  if (form !== FORM_SAME_CLASS_CS) p = putVbas(m.classId, out, p);
  if (form === FORM_FULL) p = putVbas(m.codestream, out, p);
  p = putVbas(m.offset, out, p);
  p = putVbas(m.length, out, p);
  if (isOdd(m.classId)) p = putVbas(m.aux!, out, p);
  return p;
}

function messageLength(m: MessageInit): number {
  const length = m.data.length;
  if (m.length !== undefined && m.length !== length) {
    throw new RangeError(`length ${m.length} differs from data.length ${length}`);
  }
  return length;
}

/**
 * Encodes an EOR message: `00`, the reason byte, VBAS(body length), body.
 *
 * @example encodeEor(EOR.WINDOW_DONE) // Uint8Array [0x00, 0x02, 0x00]
 */
export function encodeEor(reason: number, body: Uint8Array = EMPTY): Uint8Array {
  if (!Number.isInteger(reason) || reason < 0 || reason > 255) {
    throw new RangeError(`EOR reason must be a byte, got ${String(reason)}`);
  }
  const n = vbasLength(body.length);
  const out = new Uint8Array(2 + n + body.length);
  out[1] = reason;
  putVbas(body.length, out, 2);
  out.set(body, 2 + n);
  return out;
}

/**
 * The header of `m` in the full (bb=11) form, as a new array. Stateless: fine
 * for tests and one-off messages; streams should use `MessageWriter`.
 */
export function encodeHeader(m: MessageHeader): Uint8Array {
  checkHeader(m);
  const scratch = new Uint8Array(MAX_HEADER_LENGTH);
  return scratch.slice(0, putHeader(m, FORM_FULL, scratch, 0));
}

/** Header and data of `m` in the full (bb=11) form, as one new array. Stateless. */
export function encodeMessage(m: MessageInit): Uint8Array {
  const length = messageLength(m);
  const h = { ...m, length };
  checkHeader(h);
  const scratch = new Uint8Array(MAX_HEADER_LENGTH);
  const n = putHeader(h, FORM_FULL, scratch, 0);
  const out = new Uint8Array(n + length);
  out.set(scratch.subarray(0, n));
  out.set(m.data, n);
  return out;
}

/**
 * Stateful encoder of the messages of one response after another. The first
 * message after construction or `reset()` uses the full bb=11 form (decoders
 * start each response from class 0 / codestream 0, and some servers never
 * rely on that default: neither do we). Later messages use bb=01 when class
 * and codestream equal the previous message's, bb=10 when only the
 * codestream does, bb=11 otherwise. Bin-IDs and VBAS are minimal.
 *
 * Allocation: `writeHeader` writes into the caller's buffer and allocates
 * nothing; `header` returns a new array (a copy of an internal scratch
 * buffer, safe to keep); `message` and `eor` return new arrays.
 * `eor` does not change the state (the next response calls `reset()`).
 *
 * @example
 * const w = new MessageWriter();
 * socket.write(w.header({ classId: 0, codestream: 0, binId: 7, offset: 0, length: 300, complete: false }));
 * socket.write(fileBytes.subarray(a, a + 300));
 */
export class MessageWriter {
  private readonly scratch = new Uint8Array(MAX_HEADER_LENGTH);
  private first = true;
  private prevClass = 0;
  private prevCodestream = 0;

  /** Starts a new response: the next message uses the full form. */
  reset(): void {
    this.first = true;
    this.prevClass = 0;
    this.prevCodestream = 0;
  }

  private form(m: MessageHeader): number {
    if (this.first || m.codestream !== this.prevCodestream) return FORM_FULL;
    return m.classId === this.prevClass ? FORM_SAME_CLASS_CS : FORM_SAME_CS;
  }

  private commit(m: MessageHeader): void {
    this.first = false;
    this.prevClass = m.classId;
    this.prevCodestream = m.codestream;
  }

  /**
   * Writes the header of `m` into `out` at `pos` and returns the position
   * after it. Allocates nothing. Throws RangeError if it does not fit (the
   * writer's state is then unchanged); with `MAX_HEADER_LENGTH` bytes of room
   * it always fits.
   */
  writeHeader(m: MessageHeader, out: Uint8Array, pos: number): number {
    checkHeader(m);
    const form = this.form(m);
    let end: number;
    if (pos >= 0 && out.length - pos >= MAX_HEADER_LENGTH) {
      end = putHeader(m, form, out, pos);
    } else {
      const n = putHeader(m, form, this.scratch, 0);
      if (!(pos >= 0) || out.length - pos < n) {
        throw new RangeError(`header of ${n} bytes does not fit at ${pos} in ${out.length} bytes`);
      }
      out.set(this.scratch.subarray(0, n), pos);
      end = pos + n;
    }
    this.commit(m);
    return end;
  }

  /** The header of `m` as a new array (the data is sent separately, e.g. straight from a file). */
  header(m: MessageHeader): Uint8Array {
    checkHeader(m);
    const n = putHeader(m, this.form(m), this.scratch, 0);
    this.commit(m);
    return this.scratch.slice(0, n);
  }

  /** Header and data of `m` as one new array. */
  message(m: MessageInit): Uint8Array {
    const length = messageLength(m);
    const h: MessageHeader = {
      classId: m.classId,
      codestream: m.codestream,
      binId: m.binId,
      offset: m.offset,
      length,
      complete: m.complete,
      aux: m.aux,
    };
    checkHeader(h);
    const n = putHeader(h, this.form(h), this.scratch, 0);
    this.commit(h);
    const out = new Uint8Array(n + length);
    out.set(this.scratch.subarray(0, n));
    out.set(m.data, n);
    return out;
  }

  /** An EOR message (see `encodeEor`). */
  eor(reason: number, body?: Uint8Array): Uint8Array {
    return encodeEor(reason, body);
  }
}

// ---------------------------------------------------------------------------
// Decoding

export interface JppDecoderOptions {
  /** Largest Msg-Length (and EOR body) accepted; larger is BAD_STREAM. Default 64 MiB. */
  maxMessageLength?: number | undefined;
  /**
   * Copy the data of every message into its own array. Default false: a
   * message that lies within one pushed chunk gets a view (`subarray`) of that
   * chunk, so the caller must not overwrite a chunk after pushing it (HTTP
   * bodies in Node and fetch readers hand out fresh chunks: no problem).
   * Messages split over chunks are always assembled into a new array.
   */
  copy?: boolean | undefined;
}

// Decoder states.
const S_START = 0; // next byte starts a message (Bin-ID) or an EOR (0x00)
const S_BIN_ID = 1; // later bytes of the Bin-ID
const S_CLASS = 2;
const S_CSN = 3;
const S_OFFSET = 4;
const S_LENGTH = 5;
const S_AUX = 6;
const S_DATA = 7;
const S_EOR_REASON = 8;
const S_EOR_LENGTH = 9;
const S_EOR_BODY = 10;

const FIELD_NAME = ['Bin-ID', 'Bin-ID', 'Class', 'CSn', 'Msg-Offset', 'Msg-Length', 'Aux', 'data', 'EOR reason', 'EOR length', 'EOR body'];

/**
 * Incremental JPP/JPT-stream decoder. Feed the bytes of a response in chunks
 * of any size with `push`; chunks may split a VBAS, a header or the data.
 * Class and codestream start at 0 and carry over per the bb field; call
 * `reset()` (or `end()`) between responses. EOR messages do not change that
 * state, and messages after an EOR are decoded like any other.
 *
 * Hostile input: every byte is consumed in bounded work, memory held for a
 * partial message is at most what arrived, and the only error thrown is
 * `JpipError` BAD_STREAM (with the stream position). After an error the
 * decoder keeps throwing it until `reset()`.
 *
 * @example
 * const dec = new JppStreamDecoder();
 * for await (const chunk of body) for (const item of dec.push(chunk)) handle(item);
 * dec.end();
 */
export class JppStreamDecoder {
  private readonly maxLength: number;
  private readonly copy: boolean;

  private state = S_START;
  private failed: JpipError | undefined;
  /** Bytes consumed since the last reset (for error messages). */
  private consumed = 0;
  /** Stream position where the current message started. */
  private msgStart = 0;

  // Current field.
  private acc = 0;
  private accBytes = 0;

  // Current message.
  private form = 0;
  private complete = false;
  private classId = 0;
  private codestream = 0;
  private binId = 0;
  private offset = 0;
  private length = 0;
  private aux: number | undefined = undefined;
  private reason = 0;
  /** Data of the current message received so far, and how many bytes. */
  private parts: Uint8Array[] = [];
  private have = 0;

  constructor(options: JppDecoderOptions = {}) {
    const max = options.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH;
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`maxMessageLength must be a non-negative integer, got ${String(max)}`);
    this.maxLength = max;
    this.copy = options.copy ?? false;
  }

  /** Bytes consumed since the last `reset()`. */
  get position(): number {
    return this.consumed;
  }

  /** True between messages (where a response may end). */
  get idle(): boolean {
    return this.state === S_START && this.failed === undefined;
  }

  /** Forgets any partial message and any error; class and codestream back to 0. */
  reset(): void {
    this.state = S_START;
    this.failed = undefined;
    this.consumed = 0;
    this.classId = 0;
    this.codestream = 0;
    this.parts = [];
    this.have = 0;
    this.acc = 0;
    this.accBytes = 0;
  }

  /**
   * The stream is over (end of a response): throws BAD_STREAM if it stopped
   * inside a message; otherwise resets for the next response.
   */
  end(): void {
    if (this.failed !== undefined) throw this.failed;
    if (this.state !== S_START) {
      const what = this.state === S_DATA || this.state === S_EOR_BODY
        ? `${this.length - this.have} of ${this.length} data bytes missing`
        : `inside the ${FIELD_NAME[this.state]} field`;
      this.fail(`stream ends inside the message that starts at byte ${this.msgStart}: ${what}`);
    }
    this.reset();
  }

  private fail(message: string): never {
    const e = badStream(message);
    this.failed = e;
    throw e;
  }

  /**
   * Decodes `chunk` and appends the messages it completes to `out` (a new
   * array by default), which is returned. If the chunk holds an error, the
   * items completed before it are in `out` when BAD_STREAM is thrown.
   */
  push(chunk: Uint8Array, out: DecodedItem[] = []): DecodedItem[] {
    if (this.failed !== undefined) throw this.failed;
    const n = chunk.length;
    const base = this.consumed;
    let i = 0;
    try {
      while (i < n) {
        const state = this.state;
        if (state === S_DATA || state === S_EOR_BODY) {
          const need = this.length - this.have;
          const take = Math.min(need, n - i);
          if (take === need && this.have === 0) {
            // The whole data in this chunk.
            const data = this.copy ? chunk.slice(i, i + take) : chunk.subarray(i, i + take);
            i += take;
            this.finish(data, out);
          } else {
            this.parts.push(this.copy ? chunk.slice(i, i + take) : chunk.subarray(i, i + take));
            this.have += take;
            i += take;
            if (this.have === this.length) {
              const data = new Uint8Array(this.length);
              let p = 0;
              for (const part of this.parts) {
                data.set(part, p);
                p += part.length;
              }
              this.parts = [];
              this.have = 0;
              this.finish(data, out);
            }
          }
          continue;
        }

        const b = chunk[i]!;
        i++;
        switch (state) {
          case S_START: {
            this.msgStart = base + i - 1;
            if (b === 0) {
              this.state = S_EOR_REASON;
              break;
            }
            const form = (b >> 5) & 3;
            if (form === 0) this.fail(`byte ${this.msgStart}: Bin-ID form bb=00 is prohibited (first byte 0x${b.toString(16).padStart(2, '0')})`);
            this.form = form;
            this.complete = (b & 0x10) !== 0;
            this.acc = b & 0x0f;
            this.accBytes = 1;
            this.state = (b & 0x80) !== 0 ? S_BIN_ID : this.afterBinId();
            break;
          }
          case S_EOR_REASON:
            this.reason = b;
            this.startField(S_EOR_LENGTH);
            break;
          default: {
            // A VBAS byte (or a later Bin-ID byte).
            if (this.accBytes === MAX_VBAS_BYTES) this.fail(`byte ${base + i - 1}: ${FIELD_NAME[state]} longer than ${MAX_VBAS_BYTES} bytes`);
            const low = b & 0x7f;
            if (this.acc > (MAX_VBAS_VALUE - low) / 128) this.fail(`byte ${base + i - 1}: ${FIELD_NAME[state]} exceeds 2^53 - 1`);
            this.acc = this.acc * 128 + low;
            this.accBytes++;
            if ((b & 0x80) === 0) this.fieldDone(state, out);
          }
        }
      }
    } finally {
      this.consumed = base + i;
    }
    return out;
  }

  private startField(state: number): void {
    this.state = state;
    this.acc = 0;
    this.accBytes = 0;
  }

  /** The Bin-ID is complete (in `acc`): the next state. */
  private afterBinId(): number {
    this.binId = this.acc;
    const next = this.form === FORM_SAME_CLASS_CS ? S_OFFSET : S_CLASS;
    this.acc = 0;
    this.accBytes = 0;
    return next;
  }

  private fieldDone(state: number, out: DecodedItem[]): void {
    const v = this.acc;
    switch (state) {
      case S_BIN_ID:
        this.state = this.afterBinId();
        return;
      case S_CLASS:
        this.classId = v;
        this.startField(this.form === FORM_FULL ? S_CSN : S_OFFSET);
        return;
      case S_CSN:
        this.codestream = v;
        this.startField(S_OFFSET);
        return;
      case S_OFFSET:
        this.offset = v;
        this.startField(S_LENGTH);
        return;
      case S_LENGTH:
        if (v > this.maxLength) this.fail(`message at byte ${this.msgStart}: Msg-Length ${v} exceeds the limit of ${this.maxLength}`);
        if (this.offset + v > MAX_VBAS_VALUE) this.fail(`message at byte ${this.msgStart}: offset + length exceeds 2^53 - 1`);
        this.length = v;
        if (isOdd(this.classId)) {
          this.startField(S_AUX);
        } else {
          this.aux = undefined;
          this.startData(S_DATA, out);
        }
        return;
      case S_AUX:
        this.aux = v;
        this.startData(S_DATA, out);
        return;
      case S_EOR_LENGTH:
        if (v > this.maxLength) this.fail(`EOR at byte ${this.msgStart}: body length ${v} exceeds the limit of ${this.maxLength}`);
        this.length = v;
        this.startData(S_EOR_BODY, out);
        return;
    }
  }

  private startData(state: number, out: DecodedItem[]): void {
    this.have = 0;
    if (this.length === 0) {
      this.state = state;
      this.finish(EMPTY, out);
    } else {
      this.state = state;
    }
  }

  private finish(data: Uint8Array, out: DecodedItem[]): void {
    if (this.state === S_EOR_BODY) {
      out.push({ kind: 'eor', reason: this.reason, body: data });
    } else {
      out.push({
        kind: 'message',
        classId: this.classId,
        codestream: this.codestream,
        binId: this.binId,
        offset: this.offset,
        length: this.length,
        complete: this.complete,
        aux: this.aux,
        data,
      });
    }
    this.state = S_START;
    this.acc = 0;
    this.accBytes = 0;
  }
}

/**
 * Decodes a whole stream (one response) at once: `push` then `end`.
 * Throws BAD_STREAM on any error, including truncation.
 */
export function decodeStream(bytes: Uint8Array, options?: JppDecoderOptions): DecodedItem[] {
  const dec = new JppStreamDecoder(options);
  const items = dec.push(bytes);
  dec.end();
  return items;
}

// ---------------------------------------------------------------------------
// Formatting

const CLASS_NAMES: Record<number, string> = {
  [BIN_CLASS.PRECINCT]: 'precinct',
  [BIN_CLASS.EXTENDED_PRECINCT]: 'ext-precinct',
  [BIN_CLASS.TILE_HEADER]: 'tile-header',
  [BIN_CLASS.TILE]: 'tile',
  [BIN_CLASS.EXTENDED_TILE]: 'ext-tile',
  [BIN_CLASS.MAIN_HEADER]: 'main-header',
  [BIN_CLASS.METADATA]: 'metadata',
};

const EOR_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(EOR).map(([name, code]) => [code, name]),
);

/** A short name of a data-bin class: `precinct`, `main-header`..., `class-<n>` if unknown. */
export function binClassName(classId: number): string {
  return CLASS_NAMES[classId] ?? `class-${classId}`;
}

/** The name of an EOR reason code (`WINDOW_DONE`...), `REASON_<n>` if unknown. */
export function eorReasonName(reason: number): string {
  return EOR_NAMES[reason] ?? `REASON_${reason}`;
}

/**
 * One line describing a message or an EOR, for logs and test failures.
 *
 * @example
 * describeMessage({ classId: 0, codestream: 0, binId: 7, offset: 300, length: 50, complete: true })
 * // 'precinct 7 cs=0 off=300 len=50 complete'
 * describeMessage({ kind: 'eor', reason: 2, body: new Uint8Array(0) })
 * // 'EOR WINDOW_DONE (2) body=0'
 */
export function describeMessage(m: DecodedItem | MessageHeader | MessageInit): string {
  if ('kind' in m && m.kind === 'eor') {
    return `EOR ${eorReasonName(m.reason)} (${m.reason}) body=${m.body.length}`;
  }
  const h = m as Partial<MessageInit> & MessageHeader;
  const length = h.length ?? h.data?.length ?? 0;
  let s = `${binClassName(h.classId)} ${h.binId} cs=${h.codestream} off=${h.offset} len=${length}`;
  if (h.complete) s += ' complete';
  if (h.aux !== undefined) s += ` aux=${h.aux}`;
  return s;
}
