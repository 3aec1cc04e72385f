import { BIN_CLASS } from '../jpip/constants.js';
import { JpipError } from '../jpip/errors.js';
import { decodeVbas, decodeStream, vbasLength, MAX_VBAS_BYTES, type DecodedItem } from '../jpip/messages.js';

/**
 * What the conformance suite needs to know about a JPP/JPT-stream beyond its
 * decoded messages (jpip/messages.ts gives those): the Bin-ID form (`bb`) of
 * each message, whether every VBAS is minimal, and where each message starts,
 * so checks can judge the framing itself. The walk is bounded: each byte is
 * looked at a fixed number of times and nothing is allocated per byte.
 */

export interface FramedMessage {
  /** Byte position of the message (or EOR) in the body. */
  start: number;
  /** Bytes of the header (Bin-ID to Aux, or the EOR's 00, reason and length). */
  headerLength: number;
  /** Bin-ID form: 1 (bb=01), 2 (bb=10), 3 (bb=11); 0 for an EOR. */
  form: number;
  /** Some VBAS (or the Bin-ID) of the header uses more bytes than needed. */
  nonMinimal: boolean;
  /** Longest VBAS field of the header, in bytes. */
  longestVbas: number;
  item: DecodedItem;
}

export interface StreamAnalysis {
  /** Messages and EORs in order (up to the first error). */
  framed: FramedMessage[];
  /** The messages as jpip/messages.ts decodes them (undefined when it refused the stream). */
  items: DecodedItem[] | undefined;
  /** Why the stream does not decode (undefined when it does). */
  error: string | undefined;
}

function vbasAt(bytes: Uint8Array, pos: number): { value: number; end: number; nonMinimal: boolean; n: number } {
  const { value, end } = decodeVbas(bytes, pos);
  const n = end - pos;
  return { value, end, nonMinimal: n > vbasLength(value), n };
}

/** Walks the messages of one response body (class and codestream start at 0, as at every response start). */
export function analyzeStream(bytes: Uint8Array): StreamAnalysis {
  const framed: FramedMessage[] = [];
  let classId = 0;
  let codestream = 0;
  let pos = 0;
  let error: string | undefined;
  try {
    while (pos < bytes.length) {
      const start = pos;
      const b0 = bytes[pos]!;
      if (b0 === 0) {
        if (pos + 1 >= bytes.length) throw new JpipError('BAD_STREAM', `EOR at ${start} has no reason byte`);
        const reason = bytes[pos + 1]!;
        const len = vbasAt(bytes, pos + 2);
        if (len.end + len.value > bytes.length) throw new JpipError('BAD_STREAM', `EOR at ${start}: body of ${len.value} bytes runs past the end`);
        const body = bytes.subarray(len.end, len.end + len.value);
        framed.push({ start, headerLength: len.end - start, form: 0, nonMinimal: len.nonMinimal, longestVbas: len.n, item: { kind: 'eor', reason, body } });
        pos = len.end + len.value;
        continue;
      }
      const form = (b0 >> 5) & 3;
      if (form === 0) throw new JpipError('BAD_STREAM', `byte ${start}: Bin-ID form bb=00`);
      const complete = (b0 & 0x10) !== 0;
      // Bin-ID: first byte 4 bits, then 7 bits per byte while bit 7 is set.
      let binId = b0 & 0x0f;
      let p = pos + 1;
      let k = 1;
      let more = (b0 & 0x80) !== 0;
      while (more) {
        if (k >= MAX_VBAS_BYTES) throw new JpipError('BAD_STREAM', `byte ${start}: Bin-ID longer than ${MAX_VBAS_BYTES} bytes`);
        if (p >= bytes.length) throw new JpipError('BAD_STREAM', `byte ${start}: Bin-ID truncated`);
        const b = bytes[p]!;
        binId = binId * 128 + (b & 0x7f);
        more = (b & 0x80) !== 0;
        p++;
        k++;
      }
      // Minimal Bin-ID: 1 byte below 2^4, k bytes below 2^(7k-3).
      let minimalK = 1;
      while (binId >= 2 ** (7 * minimalK - 3)) minimalK++;
      let nonMinimal = k > minimalK;
      let longest = k;
      const field = (): number => {
        const v = vbasAt(bytes, p);
        p = v.end;
        if (v.nonMinimal) nonMinimal = true;
        longest = Math.max(longest, v.n);
        return v.value;
      };
      if (form >= 2) classId = field();
      if (form === 3) codestream = field();
      const offset = field();
      const length = field();
      const aux = classId % 2 === 1 ? field() : undefined;
      if (p + length > bytes.length) throw new JpipError('BAD_STREAM', `message at ${start}: ${length} data bytes run past the end of the body`);
      framed.push({
        start,
        headerLength: p - start,
        form,
        nonMinimal,
        longestVbas: longest,
        item: { kind: 'message', classId, codestream, binId, offset, length, complete, aux, data: bytes.subarray(p, p + length) },
      });
      pos = p + length;
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  let items: DecodedItem[] | undefined;
  try {
    items = decodeStream(bytes);
  } catch (e) {
    items = undefined;
    error ??= e instanceof Error ? e.message : String(e);
  }
  return { framed, items, error };
}

/** The data-bin messages of a list of items. */
export function messagesOf(items: readonly DecodedItem[]): Extract<DecodedItem, { kind: 'message' }>[] {
  return items.filter((i): i is Extract<DecodedItem, { kind: 'message' }> => i.kind === 'message');
}

/** The reason of the last item when it is an EOR. */
export function finalEor(items: readonly DecodedItem[]): number | undefined {
  const last = items.at(-1);
  return last?.kind === 'eor' ? last.reason : undefined;
}

/** Classes a JPP-stream may carry, and a JPT-stream. */
export const JPP_CLASSES: ReadonlySet<number> = new Set([BIN_CLASS.PRECINCT, BIN_CLASS.EXTENDED_PRECINCT, BIN_CLASS.TILE_HEADER, BIN_CLASS.MAIN_HEADER, BIN_CLASS.METADATA]);
export const JPT_CLASSES: ReadonlySet<number> = new Set([BIN_CLASS.TILE, BIN_CLASS.EXTENDED_TILE, BIN_CLASS.MAIN_HEADER, BIN_CLASS.METADATA]);
