import type { Socket } from 'node:net';

/** What the table needs of a connection: its socket, and two links it manages. */
export interface Linked {
  readonly socket: Socket;
  /** Managed by ConnTable: the neighbours in its list (cleared when the connection leaves). */
  prev?: this | undefined;
  next?: this | undefined;
}

/**
 * The open connections of a server process: found by socket, counted, walked (drain, shutdown).
 *
 * Not a Map: a Map whose entries come and go once per connection replaces its table every few
 * connections, and V8 links each replaced table to the next one (for iterators). Once one table of
 * that chain is in the old generation, every later table and every socket they name outlive the
 * young-generation collections until the next full one. Measured with 200 KB windows on new
 * connections: 2.2 KB per request survived those collections with two such maps (socket ->
 * connection, id -> connection), 0.9 KB without them (a plain Node server: 0.76 KB), and the
 * collections' pauses went from 135 to 91 ms per 3 s. Here: a weak map from socket (a hash table
 * without such links), a list through the connections themselves, and a count.
 */
export class ConnTable<C extends Linked> {
  private readonly bySocket = new WeakMap<Socket, C>();
  private head: C | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(c: C): void {
    if (this.bySocket.has(c.socket)) return;
    this.bySocket.set(c.socket, c);
    c.prev = undefined;
    c.next = this.head;
    if (this.head) this.head.prev = c;
    this.head = c;
    this.count++;
  }

  get(socket: Socket): C | undefined {
    return this.bySocket.get(socket);
  }

  /** Takes the connection of `socket` out (if there is one) and returns it. */
  remove(socket: Socket): C | undefined {
    const c = this.bySocket.get(socket);
    if (!c) return undefined;
    this.bySocket.delete(socket);
    if (c.prev) c.prev.next = c.next;
    else this.head = c.next;
    if (c.next) c.next.prev = c.prev;
    // No links left behind: a connection that outlives its place must not keep its neighbours.
    c.prev = undefined;
    c.next = undefined;
    this.count--;
    return c;
  }

  /** The connections, newest first; one may be removed (even the current one) while walking. */
  *[Symbol.iterator](): IterableIterator<C> {
    let c = this.head;
    while (c) {
      const next = c.next;
      yield c;
      c = next;
    }
  }
}
