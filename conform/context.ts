import { ConnectionPool, Probe, Session, type Fields, type JppResponse, type ServerAddress } from './client.js';
import type { ExpectedCodestream, LoadedFixtures, OriginalFile, Role } from './fixtures.js';

/**
 * What a check gets: the server (through a probe whose connections are
 * closed when the check ends, whatever happens), the fixture set and the
 * originals, and the time budget.
 */
export class CheckContext {
  readonly addr: ServerAddress;
  readonly fixtures: LoadedFixtures;
  /** Milliseconds one request may take. */
  readonly timeoutMs: number;
  readonly pool: ConnectionPool;
  readonly probe: Probe;
  private readonly sessions: Session[] = [];

  constructor(addr: ServerAddress, fixtures: LoadedFixtures, timeoutMs: number) {
    this.addr = addr;
    this.fixtures = fixtures;
    this.timeoutMs = timeoutMs;
    this.pool = new ConnectionPool(addr);
    this.probe = new Probe(addr, this.pool, { timeoutMs });
  }

  /** The name the server knows a role's file under. */
  target(role: Role): string {
    return this.fixtures.set.targets[role].path;
  }

  original(role: Role): OriginalFile {
    return this.fixtures.original(role);
  }

  /** Codestream i of a role's original. */
  expected(role: Role, i = 0): ExpectedCodestream {
    return this.fixtures.original(role).codestream(i);
  }

  /** A stateless request (no channel) for a role's file. */
  get(role: Role, fields: Fields | string, headers?: Array<[string, string]>): Promise<JppResponse> {
    return this.probe.get(this.target(role), fields, headers ? { headers } : {});
  }

  /**
   * One request on a fresh channel (cnew=http added to the fields or the raw
   * query): the same answer a stateless request would get, from servers that
   * only serve sessions too (esajpip). The channel is closed when the check ends.
   */
  async ask(role: Role, fields: Fields | string, headers?: Array<[string, string]>): Promise<JppResponse> {
    const s = new Session(this.probe, this.target(role), headers);
    this.sessions.push(s);
    const query = typeof fields === 'string' ? `cnew=http&${fields}` : { cnew: ['http'], ...fields };
    return s.openRaw(query);
  }

  /** A new session on a role's file; the cnew request carries `fields` too. */
  async session(role: Role, fields: Fields = {}, headers?: Array<[string, string]>): Promise<{ session: Session; first: JppResponse }> {
    const r = await this.probe.session(this.target(role), fields, headers ? { headers } : {});
    this.sessions.push(r.session);
    return r;
  }

  /** Closes the channels the check opened (best effort, briefly), then every connection. */
  async dispose(): Promise<void> {
    const open = this.sessions.filter((s) => s.channel !== undefined && s.conn.open);
    this.sessions.length = 0;
    await Promise.race([Promise.all(open.map((s) => s.close(Math.min(this.timeoutMs, 1000)))), new Promise((r) => setTimeout(r, Math.min(this.timeoutMs, 1000)).unref())]);
    this.pool.closeAll();
  }
}
