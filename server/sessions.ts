import { randomBytes } from 'node:crypto';
import { CacheModel } from '../jpip/cache-model.js';
import { JpipError } from '../jpip/errors.js';

/**
 * JPIP sessions. A session has one channel (its cid), one target and the
 * cache model of what its client holds. It is not tied to a TCP connection:
 * any connection may carry its requests. Idle sessions expire.
 */
export interface Session {
  readonly cid: string;
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
}

export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  private readonly opts: SessionOptions;
  private readonly now: () => number;

  constructor(opts: SessionOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Opens a session on a target; 503 BUSY when the table is full even after dropping idle ones. */
  open(key: string, tid: string): Session {
    if (this.sessions.size >= this.opts.maxSessions) this.expire();
    if (this.sessions.size >= this.opts.maxSessions) throw new JpipError('BUSY', `session limit (${this.opts.maxSessions}) reached; try again later`, 'cnew');
    let cid: string;
    do cid = `C${randomBytes(12).toString('base64url')}`;
    while (this.sessions.has(cid));
    const s: Session = { cid, key, tid, model: new CacheModel(), lastUsed: this.now(), active: 0 };
    this.sessions.set(cid, s);
    return s;
  }

  /** The session of a channel id; 404 UNKNOWN_CHANNEL (the client should open a new one) when there is none. */
  get(cid: string): Session {
    const s = this.sessions.get(cid);
    if (!s || this.isIdle(s)) {
      if (s) this.sessions.delete(cid);
      throw new JpipError('UNKNOWN_CHANNEL', `unknown or expired channel ${JSON.stringify(cid.slice(0, 64))}; open a new one with cnew`, 'cid');
    }
    s.lastUsed = this.now();
    return s;
  }

  /** Closes channels; returns how many existed. */
  close(cids: readonly string[] | '*', owner?: Session): number {
    if (cids === '*') {
      // `*` closes the channels of the session the request belongs to.
      if (!owner) return 0;
      return this.sessions.delete(owner.cid) ? 1 : 0;
    }
    let n = 0;
    for (const c of cids) if (this.sessions.delete(c)) n++;
    return n;
  }

  /** Drops idle sessions; returns how many. */
  expire(): number {
    let n = 0;
    for (const [cid, s] of this.sessions) {
      if (this.isIdle(s)) {
        this.sessions.delete(cid);
        n++;
      }
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
