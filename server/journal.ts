import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { COMPLETE, sharedHoldings, type SharedHoldings } from '../jpip/cache-model.js';
import type { Session, SessionListener, SessionTable } from './sessions.js';

/**
 * The session journal: what a new worker process needs to take over the
 * sessions of one that died (crash, kill -9, out of memory). One append-only
 * file, `sessions.journal`, in the state directory; no fsync (it survives the
 * process, not the machine).
 *
 * It records, per session, its cid, target key and tid when it opens, and
 * then only what the client is known to hold: the cache-model updates of a
 * response once the response has been completely written to the socket (a
 * response cut by a crash never reaches the journal, so its data counts as
 * not received, as the client, which drops a cut response, sees it), the
 * client's own model= statements, model resets (new tid) and the close.
 *
 * Format: the 8 bytes `JPIPJNL1`, then records
 *   u32be payload length | u32be FNV-1a of the payload | payload
 * with payload = one type byte and fields as unsigned LEB128 numbers and
 * (LEB128 length + UTF-8) strings:
 *   1 OPEN   sno cid key tid
 *   2 HELD   sno n (codestream class bin held+1)*n   (held+1 = 0: complete)
 *   3 REMOVE sno codestream class bin bytes           (subtractive model=)
 *   4 CLEAR  sno tid                                  (model emptied, tid changed)
 *   5 CLOSE  sno
 *   7 SHARED id n (codestream class bin held+1)*n    (holdings several sessions share: a kept
 *            response's bins, written once per file, before the first ADOPT naming them)
 *   8 ADOPT  sno id                                   (an empty model takes SHARED holdings `id`)
 *   6 SENT   sno pid slot seq framing n (codestream class bin held+1)*n
 *            as HELD, for response `seq` on connection slot `slot` of worker
 *            `pid`, written once all of the response but its last piece is in
 *            the kernel, just before that piece (framing 0: chunked, the
 *            piece is `0 CRLF CRLF`; 1: the end is the connection's close).
 *            If the worker dies while that response is still flagged in
 *            flight, the supervisor finds this record, sends the piece itself
 *            (again, if the worker had sent it: harmless, as the connection is
 *            then closed) and closes the connection, so that what the journal
 *            says the client holds is what the client accepted.
 * Replay stops at the first record that is cut short or fails its checksum
 * (a write cut by the kill); the file is then rewritten from what was read.
 * Compaction rewrites the file from the live sessions (one OPEN and HELD
 * records per session) when it has grown by `compactBytes` and by twice the
 * last snapshot; it goes to a temporary file renamed over the old one.
 */

export const JOURNAL_FILE = 'sessions.journal';
const MAGIC = Buffer.from('JPIPJNL1', 'latin1');
const T_OPEN = 1;
const T_HELD = 2;
const T_REMOVE = 3;
const T_CLEAR = 4;
const T_CLOSE = 5;
const T_SENT = 6;
const T_SHARED = 7;
const T_ADOPT = 8;
/** Bins per HELD record in a snapshot (keeps records small). */
const SNAPSHOT_BINS_PER_RECORD = 4096;
/** A record longer than this is taken as corruption. */
const MAX_RECORD = 64 * 1024 * 1024;

export interface HeldUpdate {
  codestream: number;
  classId: number;
  binId: number;
  held: number;
}

/** Which response a SENT record is about: the worker, the connection slot, the request's sequence number. */
export interface ResponseMark {
  pid: number;
  slot: number;
  seq: number;
  /** 0: chunked (the last piece is `0\r\n\r\n`); 1: delimited by the connection's close. */
  framing: 0 | 1;
}

/** Growing byte buffer with LEB128 numbers. */
class Enc {
  buf = Buffer.allocUnsafe(256);
  n = 0;
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.n++] = v;
  }
  uv(v: number): void {
    this.room(8);
    while (v >= 128) {
      this.buf[this.n++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.n++] = v;
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.uv(b.length);
    this.room(b.length);
    b.copy(this.buf, this.n);
    this.n += b.length;
  }
  reset(): void {
    this.n = 0;
  }
}

class Dec {
  pos = 0;
  private readonly b: Buffer;
  constructor(b: Buffer) {
    this.b = b;
  }
  get done(): boolean {
    return this.pos >= this.b.length;
  }
  u8(): number {
    if (this.pos >= this.b.length) throw new RangeError('record ends early');
    return this.b[this.pos++]!;
  }
  uv(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const x = this.u8();
      v += (x & 127) * mul;
      if (x < 128) return v;
      mul *= 128;
    }
    throw new RangeError('number too long');
  }
  str(): string {
    const n = this.uv();
    if (this.pos + n > this.b.length) throw new RangeError('string past the record end');
    const s = this.b.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

export function fnv1a(b: Buffer, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) {
    h ^= b[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function encodeUpdates(e: Enc, updates: readonly HeldUpdate[]): void {
  e.uv(updates.length);
  for (const u of updates) {
    e.uv(u.codestream);
    e.u8(u.classId);
    e.uv(u.binId);
    e.uv(u.held === COMPLETE ? 0 : u.held + 1);
  }
}

function encodeAdopt(e: Enc, sno: number, id: number): void {
  e.reset();
  e.u8(T_ADOPT);
  e.uv(sno);
  e.uv(id);
}

function encodeSent(e: Enc, sno: number, mark: ResponseMark, updates: readonly HeldUpdate[]): void {
  e.reset();
  e.u8(T_SENT);
  e.uv(sno);
  e.uv(mark.pid);
  e.uv(mark.slot);
  e.uv(mark.seq);
  e.u8(mark.framing);
  encodeUpdates(e, updates);
}

/** Frames a payload (checksum and length) into a record. */
function frame(payload: Enc): Buffer {
  const out = Buffer.allocUnsafe(8 + payload.n);
  out.writeUInt32BE(payload.n, 0);
  out.writeUInt32BE(fnv1a(payload.buf, 0, payload.n), 4);
  payload.buf.copy(out, 8, 0, payload.n);
  return out;
}

export interface ReplayResult {
  sessions: number;
  records: number;
  /** Bytes of the file read. */
  bytes: number;
  /** The file ended in a cut or corrupt record (ignored from there). */
  torn: boolean;
  ms: number;
}

export interface JournalOptions {
  /** File growth that triggers compaction, in bytes. */
  compactBytes: number;
  /** Told about compactions and torn files. */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

export class SessionJournal implements SessionListener {
  readonly path: string;
  private fd: number | undefined;
  private readonly enc = new Enc();
  private size = 0;
  private lastSnapshot = 0;
  private compactPending = false;
  /** SENT records of responses whose last piece is not written yet (kept through compactions). */
  private readonly pending = new Map<string, ResponseMark>();
  private table: SessionTable | undefined;
  compactBytes: number;
  compactions = 0;
  private readonly onEvent: (event: string, fields: Record<string, unknown>) => void;

  constructor(dir: string, opts: JournalOptions) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, JOURNAL_FILE);
    this.compactBytes = opts.compactBytes;
    this.onEvent = opts.onEvent ?? (() => {});
  }

  /** Bytes in the journal file. */
  get bytes(): number {
    return this.size;
  }

  /**
   * Replays the journal into `table` (sessions as they were, their models
   * holding what completed responses sent), rewrites it compactly, opens it
   * for appending, and starts listening to the table.
   */
  open(table: SessionTable): ReplayResult {
    const t0 = performance.now();
    const r = existsSync(this.path) ? this.replay(readFileSync(this.path), table) : { sessions: 0, records: 0, bytes: 0, torn: false };
    if (r.torn) this.onEvent('journal-torn', { file: this.path, bytes: r.bytes });
    this.table = table;
    this.compact();
    table.listener = this;
    return { ...r, ms: performance.now() - t0 };
  }

  private replay(b: Buffer, table: SessionTable): Omit<ReplayResult, 'ms'> {
    const bySno = new Map<number, Session>();
    const shared = new Map<number, SharedHoldings>();
    let records = 0;
    let torn = false;
    if (b.length < MAGIC.length || !b.subarray(0, MAGIC.length).equals(MAGIC)) {
      this.onEvent('journal-unreadable', { file: this.path, bytes: b.length });
      return { sessions: 0, records: 0, bytes: b.length, torn: b.length > 0 };
    }
    let pos = MAGIC.length;
    while (pos < b.length) {
      if (pos + 8 > b.length) {
        torn = true;
        break;
      }
      const len = b.readUInt32BE(pos);
      const sum = b.readUInt32BE(pos + 4);
      if (len > MAX_RECORD || pos + 8 + len > b.length || fnv1a(b, pos + 8, pos + 8 + len) !== sum) {
        torn = true;
        break;
      }
      try {
        applyRecord(new Dec(b.subarray(pos + 8, pos + 8 + len)), table, bySno, shared);
      } catch {
        torn = true;
        break;
      }
      records++;
      pos += 8 + len;
    }
    return { sessions: bySno.size, records, bytes: b.length, torn };
  }

  /**
   * Records that may wait for the end of this turn of the event loop (`append(.., true)`): written
   * together in one system call then, or before any record that may not wait (order is kept).
   * What they say is already in the session table, so a compaction's snapshot takes them over.
   */
  private readonly later: Buffer[] = [];
  /** SHARED records in this file (or waiting to be), by holdings; a new file starts a new map. */
  private sharedIds = new WeakMap<SharedHoldings, number>();
  private nextSharedId = 1;
  private laterBytes = 0;
  private laterScheduled = false;

  private append(payload: Enc, later = false): void {
    if (this.fd === undefined) return;
    const rec = frame(payload);
    if (later) {
      this.later.push(rec);
      this.laterBytes += rec.length;
      if (!this.laterScheduled) {
        this.laterScheduled = true;
        setImmediate(() => {
          this.laterScheduled = false;
          this.flushLater();
        });
      }
      return;
    }
    this.write(this.later.length > 0 ? this.takeLater(rec) : rec);
  }

  /** Writes the records that were waiting for the end of the turn. */
  private flushLater(): void {
    if (this.later.length > 0 && this.fd !== undefined) this.write(this.takeLater());
  }

  private takeLater(then?: Buffer): Buffer {
    if (then) this.later.push(then);
    const all = this.later.length === 1 ? this.later[0]! : Buffer.concat(this.later, this.laterBytes + (then?.length ?? 0));
    this.later.length = 0;
    this.laterBytes = 0;
    return all;
  }

  private write(rec: Buffer): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, rec);
    } catch (e) {
      // Disk full or an I/O error: serving goes on without the journal (sessions then do not
      // outlive a worker crash); a half-written record is cut off at the next replay.
      const fd = this.fd;
      this.fd = undefined;
      try {
        closeSync(fd);
      } catch {
        /* already unusable */
      }
      this.onEvent('journal-failed', { message: (e as Error).message });
      return;
    }
    this.size += rec.length;
    if (!this.compactPending && this.size - this.lastSnapshot > this.compactBytes && this.size > 2 * this.lastSnapshot) this.scheduleCompaction(0);
  }

  /**
   * Compacts soon, when no response is between its SENT record and its end:
   * a snapshot is taken from the models, where such a response's data would
   * lose its SENT record (and could no longer be skipped after a crash).
   */
  private scheduleCompaction(delayMs: number): void {
    this.compactPending = true;
    const t = setTimeout(() => {
      this.compactPending = false;
      if (this.fd === undefined) return;
      if (this.pending.size > 0) this.scheduleCompaction(20);
      else this.compact();
    }, delayMs);
    t.unref();
  }

  opened(s: Session): void {
    const e = this.enc;
    e.reset();
    e.u8(T_OPEN);
    e.uv(s.sno);
    e.str(s.cid);
    e.str(s.key);
    e.str(s.tid);
    // A channel id reaches its client in the response that opened it: a response on a connection
    // the supervisor holds writes its SENT record (which takes this one along) before its last
    // piece; any other response dies with this process anyway.
    this.append(e, true);
  }

  closed(s: Session): void {
    const e = this.enc;
    e.reset();
    e.u8(T_CLOSE);
    e.uv(s.sno);
    // Lost in a crash, a closed session comes back until it expires again: harmless.
    this.append(e, true);
  }

  /**
   * The client holds these (a completed response, or its own model= statement). `later`: the
   * record may wait for the end of this turn (a response whose end is already out).
   */
  held(s: Session, updates: readonly HeldUpdate[], later = false): void {
    if (updates.length === 0) return;
    const e = this.enc;
    e.reset();
    e.u8(T_HELD);
    e.uv(s.sno);
    encodeUpdates(e, updates);
    this.append(e, later);
  }

  /**
   * The client holds a kept response's bins, which its empty model adopted (shared with other
   * sessions): one ADOPT record, and the SHARED record of the holdings the first time this file
   * needs it. `later` as for `held`.
   */
  adopted(s: Session, holdings: SharedHoldings, later = false): void {
    const id = this.sharedId(holdings, (rec) => this.append(rec, later));
    encodeAdopt(this.enc, s.sno, id);
    this.append(this.enc, later);
  }

  /** The id of `holdings` in this file; `write` gets its SHARED record the first time. */
  private sharedId(holdings: SharedHoldings, write: (rec: Enc) => void): number {
    let id = this.sharedIds.get(holdings);
    if (id === undefined) {
      id = this.nextSharedId++;
      this.sharedIds.set(holdings, id);
      const e = new Enc();
      e.u8(T_SHARED);
      e.uv(id);
      encodeUpdates(e, holdings.updates);
      write(e);
    }
    return id;
  }

  /**
   * A response's data, all written to the socket but for its last piece,
   * which goes out right after. `responseDone` once it is out (and the
   * response no longer flagged in flight).
   */
  responseSent(s: Session, updates: readonly HeldUpdate[], mark: ResponseMark): void {
    encodeSent(this.enc, s.sno, mark, updates);
    this.pending.set(`${mark.slot}:${mark.seq}`, mark);
    this.append(this.enc);
  }

  /** The response's last piece is written and its flag cleared. */
  responseDone(mark: ResponseMark): void {
    this.pending.delete(`${mark.slot}:${mark.seq}`);
  }

  /** Responses between their SENT record and their end (a compaction waits for none to be). */
  get pendingResponses(): number {
    return this.pending.size;
  }

  /** The client says it holds no more than `bytes` of a bin (subtractive model=). */
  removed(s: Session, codestream: number, classId: number, binId: number, bytes: number): void {
    const e = this.enc;
    e.reset();
    e.u8(T_REMOVE);
    e.uv(s.sno);
    e.uv(codestream);
    e.u8(classId);
    e.uv(binId);
    e.uv(Math.max(0, bytes));
    this.append(e);
  }

  /** The session's model was emptied; it now refers to target id `tid`. */
  cleared(s: Session): void {
    const e = this.enc;
    e.reset();
    e.u8(T_CLEAR);
    e.uv(s.sno);
    e.str(s.tid);
    this.append(e);
  }

  /** Rewrites the file from the live sessions (atomically: temporary file, then rename). */
  compact(): void {
    // The snapshot says all that the waiting records say.
    this.later.length = 0;
    this.laterBytes = 0;
    const table = this.table;
    const parts: Buffer[] = [MAGIC];
    let total = MAGIC.length;
    const push = (b: Buffer): void => {
      parts.push(b);
      total += b.length;
    };
    const e = new Enc();
    // A new file: holdings are written again, once, before the first session that adopted them.
    this.sharedIds = new WeakMap();
    if (table) {
      for (const s of table.all()) {
        e.reset();
        e.u8(T_OPEN);
        e.uv(s.sno);
        e.str(s.cid);
        e.str(s.key);
        e.str(s.tid);
        push(frame(e));
        const shared = s.model.shared;
        if (shared) {
          const id = this.sharedId(shared, (rec) => push(frame(rec)));
          encodeAdopt(e, s.sno, id);
          push(frame(e));
        }
        let batch: HeldUpdate[] = [];
        const flush = (): void => {
          if (batch.length === 0) return;
          e.reset();
          e.u8(T_HELD);
          e.uv(s.sno);
          encodeUpdates(e, batch);
          push(frame(e));
          batch = [];
        };
        for (const u of shared ? s.model.ownEntries() : s.model.entries()) {
          batch.push(u);
          if (batch.length >= SNAPSHOT_BINS_PER_RECORD) flush();
        }
        flush();
      }
    }
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.concat(parts, total));
    renameSync(tmp, this.path);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.size = fstatSync(this.fd).size;
    this.lastSnapshot = this.size;
    this.compactions++;
    this.onEvent('journal-compacted', { file: this.path, bytes: this.size, sessions: table?.size ?? 0 });
  }

  /** Stops writing; the file stays (a new worker replays it). */
  close(): void {
    this.flushLater();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.table?.listener === this) this.table.listener = undefined;
  }

  /** Stops writing and removes the file: every session is closed (graceful shutdown). */
  destroy(): void {
    this.close();
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

/** A list of updates as encodeUpdates wrote it. */
function decodeUpdates(d: Dec): HeldUpdate[] {
  const n = d.uv();
  const updates: HeldUpdate[] = [];
  for (let i = 0; i < n; i++) {
    const codestream = d.uv();
    const classId = d.u8();
    const binId = d.uv();
    const h = d.uv();
    updates.push({ codestream, classId, binId, held: h === 0 ? COMPLETE : h - 1 });
  }
  return updates;
}

function readUpdates(d: Dec, s: Session | undefined): void {
  for (const u of decodeUpdates(d)) s?.model.add(u.codestream, u.classId, u.binId, u.held, u.held === COMPLETE);
}

function applyRecord(d: Dec, table: SessionTable, bySno: Map<number, Session>, shared: Map<number, SharedHoldings>): void {
  const type = d.u8();
  const sno = d.uv();
  switch (type) {
    case T_SHARED:
      shared.set(sno, sharedHoldings(decodeUpdates(d)));
      break;
    case T_ADOPT: {
      const id = d.uv();
      const h = shared.get(id);
      if (!h) throw new RangeError(`holdings ${id} adopted before they were written`);
      const s = bySno.get(sno);
      // A model that holds something already (not written by this server) takes them bin by bin.
      if (s && !s.model.adopt(h)) for (const u of h.updates) s.model.add(u.codestream, u.classId, u.binId, u.held, u.held === COMPLETE);
      break;
    }
    case T_OPEN: {
      const cid = d.str();
      const key = d.str();
      const tid = d.str();
      bySno.set(sno, table.restore(cid, sno, key, tid));
      break;
    }
    case T_SENT:
      d.uv(); // pid
      d.uv(); // slot
      d.uv(); // seq
      d.u8(); // framing
      readUpdates(d, bySno.get(sno));
      break;
    case T_HELD:
      readUpdates(d, bySno.get(sno));
      break;
    case T_REMOVE: {
      const s = bySno.get(sno);
      const cs = d.uv();
      const cls = d.u8();
      const bin = d.uv();
      const bytes = d.uv();
      s?.model.remove(cs, cls, bin, bytes);
      break;
    }
    case T_CLEAR: {
      const s = bySno.get(sno);
      const tid = d.str();
      if (s) {
        s.model.clear();
        s.tid = tid;
      }
      break;
    }
    case T_CLOSE: {
      const s = bySno.get(sno);
      if (s) {
        bySno.delete(sno);
        table.close([s.cid]);
      }
      break;
    }
    default:
      throw new RangeError(`unknown record type ${type}`);
  }
  if (!d.done) throw new RangeError('record longer than its fields');
}

/**
 * For the supervisor, after a worker died with requests in flight
 * (`inFlight`: connection slot -> request sequence number, from the flags
 * file): those the journal has a SENT record of, i.e. whose data was all
 * written and recorded, only the last piece possibly missing. Returns
 * slot -> framing of that piece.
 */
export function journaledResponses(path: string, pid: number, inFlight: ReadonlyMap<number, number>): Map<number, 0 | 1> {
  const out = new Map<number, 0 | 1>();
  if (inFlight.size === 0 || !existsSync(path)) return out;
  const b = readFileSync(path);
  if (b.length < MAGIC.length || !b.subarray(0, MAGIC.length).equals(MAGIC)) return out;
  let pos = MAGIC.length;
  while (pos + 8 <= b.length) {
    const len = b.readUInt32BE(pos);
    if (len > MAX_RECORD || pos + 8 + len > b.length || fnv1a(b, pos + 8, pos + 8 + len) !== b.readUInt32BE(pos + 4)) break;
    if (len > 0 && b[pos + 8] === T_SENT) {
      try {
        const d = new Dec(b.subarray(pos + 8, pos + 8 + len));
        d.u8();
        d.uv(); // sno
        const recPid = d.uv();
        const slot = d.uv();
        const seq = d.uv();
        const framing = d.u8();
        if (recPid === pid && inFlight.get(slot) === seq) out.set(slot, framing === 1 ? 1 : 0);
      } catch {
        break;
      }
    }
    pos += 8 + len;
  }
  return out;
}
