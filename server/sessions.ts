import { randomFillSync } from 'node:crypto';
import { CacheModel } from '../jpip/cache-model.js';
import { JpipError } from '../jpip/errors.js';

/**
 * JPIP sessions. A session has one channel (its cid), one target and the
 * cache model of what its client holds. It is not tied to a TCP connection:
 * any connection may carry its requests. Idle sessions expire.
 *
 * The table tells a listener (the journal) when sessions open and close, so
 * that they can be recovered by a new worker process after a crash.
 */
export interface Session {
  readonly cid: string;
  /** Small number naming the session in the journal (unique within a table's life, kept across restores). */
  readonly sno: number;
  /** Path of the target under the root. */
  readonly key: string;
  /** The target id the model is valid for: a different file version empties the model. */
  tid: string;
  readonly model: CacheModel;
  lastUsed: number;
  /** Requests of this session being answered now. */
  active: number;
}

export interface SessionOptions {
  maxSessions: number;
  /** Idle time after which a session is dropped, in milliseconds. */
  idleMs: number;
  now?: () => number;
  /** Every channel id starts with this (a load balancer routes a session to the instance that granted it); default "C". */
  cidPrefix?: string;
}

/** Told when sessions open and close (the journal). */
export interface SessionListener {
  opened(s: Session): void;
  closed(s: Session): void;
}

/** Random bytes drawn in bulk (one system call per 128 channel ids, not one per id). */
const pool = Buffer.alloc(12 * 128);
let poolAt = pool.length;

/** 16 characters of base64url from 12 random bytes (96 bits). */
function randomId(): string {
  if (poolAt + 12 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const id = pool.toString('base64url', poolAt, poolAt + 12);
  poolAt += 12;
  return id;
}

export class SessionTable {
  /** Least recently used first: `get` and `touch` move a session to the end, so expiry stops at the first one still fresh. */
  private readonly sessions = new Map<string, Session>();
  private readonly opts: SessionOptions;
  private readonly now: () => number;
  private nextSno = 1;
  listener: SessionListener | undefined;

  constructor(opts: SessionOptions) {
    this.opts = { ...opts };
    this.now = opts.now ?? Date.now;
  }

  /** Changes the limits (a config reload). */
  setLimits(maxSessions: number, idleMs: number): void {
    this.opts.maxSessions = maxSessions;
    this.opts.idleMs = idleMs;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Opens a session on a target; 503 BUSY when the table is full even after dropping idle ones. */
  open(key: string, tid: string): Session {
    if (this.sessions.size >= this.opts.maxSessions) this.expire();
    if (this.sessions.size >= this.opts.maxSessions) throw new JpipError('BUSY', `session limit (${this.opts.maxSessions}) reached; try again later`, 'cnew');
    let cid: string;
    do cid = `${this.opts.cidPrefix ?? 'C'}${randomId()}`;
    while (this.sessions.has(cid));
    const s: Session = { cid, sno: this.nextSno++, key, tid, model: new CacheModel(), lastUsed: this.now(), active: 0 };
    this.sessions.set(cid, s);
    this.listener?.opened(s);
    return s;
  }

  /**
   * Puts back a session recovered from the journal (its model is filled by
   * the caller). Not counted against the limit: it existed before. Its idle
   * time starts now.
   */
  restore(cid: string, sno: number, key: string, tid: string): Session {
    const s: Session = { cid, sno, key, tid, model: new CacheModel(), lastUsed: this.now(), active: 0 };
    this.sessions.set(cid, s);
    if (sno >= this.nextSno) this.nextSno = sno + 1;
    return s;
  }

  /** The session of a channel id; 404 UNKNOWN_CHANNEL (the client should open a new one) when there is none. */
  get(cid: string): Session {
    const s = this.sessions.get(cid);
    if (!s || this.isIdle(s)) {
      if (s) this.drop(s);
      throw new JpipError('UNKNOWN_CHANNEL', `unknown or expired channel ${JSON.stringify(cid.slice(0, 64))}; open a new one with cnew`, 'cid');
    }
    this.touch(s);
    return s;
  }

  /** Marks a session used now (a response ended): it moves to the fresh end of the table. */
  touch(s: Session): void {
    s.lastUsed = this.now();
    if (this.sessions.get(s.cid) !== s) return;
    this.sessions.delete(s.cid);
    this.sessions.set(s.cid, s);
  }

  /** Closes channels; returns how many existed. */
  close(cids: readonly string[] | '*', owner?: Session): number {
    if (cids === '*') {
      // `*` closes the channels of the session the request belongs to.
      if (!owner || !this.sessions.has(owner.cid)) return 0;
      this.drop(owner);
      return 1;
    }
    let n = 0;
    for (const c of cids) {
      const s = this.sessions.get(c);
      if (s) {
        this.drop(s);
        n++;
      }
    }
    return n;
  }

  /** Forgets every session without telling the listener (shutdown: the journal is removed as a whole). */
  clear(): void {
    this.sessions.clear();
  }

  private drop(s: Session): void {
    this.sessions.delete(s.cid);
    this.listener?.closed(s);
  }

  /**
   * Drops idle sessions; returns how many. The table is in order of last use, so the scan stops at
   * the first session used within the idle time (one answering a request is passed over).
   */
  expire(): number {
    let n = 0;
    const now = this.now();
    for (const s of this.sessions.values()) {
      if (s.active > 0) continue;
      if (now - s.lastUsed <= this.opts.idleMs) break;
      this.drop(s);
      n++;
    }
    return n;
  }

  private isIdle(s: Session): boolean {
    return s.active === 0 && this.now() - s.lastUsed > this.opts.idleMs;
  }

  *all(): IterableIterator<Session> {
    yield* this.sessions.values();
  }
}
