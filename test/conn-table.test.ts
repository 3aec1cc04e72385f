import { Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConnTable, type Linked } from '../server/conn-table.js';

const table = suite('connection table');

interface C extends Linked {
  name: string;
}

const conn = (name: string): C => ({ name, socket: new Socket() });
const names = (t: ConnTable<C>): string[] => [...t].map((c) => c.name);

table('finds, counts and walks connections, newest first; a removed one leaves no links behind', () => {
  const t = new ConnTable<C>();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(conn) as [C, C, C, C];
  for (const x of [a, b, c, d]) t.add(x);
  t.add(b); // twice: once
  assert.is(t.size, 4);
  assert.equal(names(t), ['d', 'c', 'b', 'a']);
  assert.is(t.get(c.socket), c);
  // The middle, the head, the tail.
  assert.is(t.remove(b.socket), b);
  assert.equal([b.prev, b.next], [undefined, undefined]);
  assert.equal(names(t), ['d', 'c', 'a']);
  assert.is(t.remove(d.socket), d);
  assert.equal(names(t), ['c', 'a']);
  assert.is(t.remove(a.socket), a);
  assert.equal(names(t), ['c']);
  assert.is(t.size, 1);
  // Unknown or already removed: nothing happens.
  assert.is(t.remove(a.socket), undefined);
  assert.is(t.remove(new Socket()), undefined);
  assert.is(t.get(b.socket), undefined);
  assert.is(t.size, 1);
  assert.is(t.remove(c.socket), c);
  assert.equal(names(t), []);
  assert.is(t.size, 0);
  // Empty, then used again.
  t.add(b);
  assert.equal(names(t), ['b']);
  for (const x of [a, b, c, d]) x.socket.destroy();
});

table('the connection being walked may be removed (closing every connection in one walk)', () => {
  const t = new ConnTable<C>();
  const all = Array.from({ length: 6 }, (_, i) => conn(String(i)));
  for (const x of all) t.add(x);
  const seen: string[] = [];
  for (const x of t) {
    seen.push(x.name);
    t.remove(x.socket);
  }
  assert.equal(seen, ['5', '4', '3', '2', '1', '0']);
  assert.is(t.size, 0);
  assert.equal(names(t), []);
  for (const x of all) x.socket.destroy();
});

table.run();
