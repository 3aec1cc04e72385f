import type { Socket } from 'node:net';
import { InflightFlags } from '../server/flags.js';
import type { FromWorker, ToWorker } from '../server/ipc.js';
import { SessionJournal } from '../server/journal.js';
import { SessionTable } from '../server/sessions.js';

/**
 * A stand-in worker for test/supervisor-death.test.ts: it speaks the
 * supervisor protocol, answers by hand, and dies with -9 at chosen points of
 * a response, so that every way the supervisor handles a death is tested
 * deterministically:
 *
 *   GET /ok          a whole response (flag set, then cleared)
 *   GET /ok-then-die a whole response, then the worker dies while idle
 *   GET /cut         half a chunked body, flag set, no SENT record: dies
 *   GET /sent        the body but its last chunk, flag set, SENT record: dies
 *   GET /sent-all    the whole body, SENT record, flag still set: dies
 *   GET /pid         answers its pid
 */
const send = (m: FromWorker): void => void process.send!(m);
let flags: InflightFlags | undefined;
let stateDir = '';
let seq = 0;

function die(): void {
  process.kill(process.pid, 'SIGKILL');
}

function journalSent(slot: number, s: number): void {
  const table = new SessionTable({ maxSessions: 10, idleMs: 1e9 });
  const j = new SessionJournal(stateDir, { compactBytes: 1 << 20 });
  j.open(table);
  const session = table.open('fake.jpx', 'tid');
  j.responseSent(session, [{ codestream: 0, classId: 2, binId: 0, held: 5 }], { pid: process.pid, slot, seq: s, framing: 0 });
}

function serve(socket: Socket, slot: number): void {
  let buf = '';
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const path = buf.slice(0, end).split(' ')[1] ?? '/';
    buf = buf.slice(end + 4);
    const s = ++seq;
    flags!.set(slot, s);
    const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n';
    switch (path) {
      case '/ok':
      case '/ok-then-die':
        socket.write(`${head}5\r\nhello\r\n0\r\n\r\n`, () => {
          flags!.set(slot, 0);
          if (path === '/ok-then-die') setTimeout(die, 20);
        });
        break;
      case '/pid': {
        const body = String(process.pid);
        socket.write(`${head}${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`, () => flags!.set(slot, 0));
        break;
      }
      case '/cut':
        socket.write(`${head}5\r\nhello\r\n`, die);
        break;
      case '/sent':
        socket.write(`${head}5\r\nhello\r\n`, () => {
          journalSent(slot, s);
          die();
        });
        break;
      case '/sent-all':
        socket.write(`${head}5\r\nhello\r\n`, () => {
          journalSent(slot, s);
          socket.write('0\r\n\r\n', die);
        });
        break;
    }
  });
  socket.on('error', () => {});
}

process.on('message', (msg: ToWorker, handle: Socket | undefined) => {
  if (msg.t === 'init') {
    flags = new InflightFlags(msg.flagsFile, 'open');
    stateDir = msg.config.stateDir!;
    send({ t: 'ready', pid: process.pid, sessions: 0, replayMs: 0, torn: false });
  } else if (msg.t === 'conn' && handle) {
    serve(handle, msg.slot);
  } else if (msg.t === 'drain') {
    send({ t: 'drained' });
    setTimeout(() => process.exit(0), 10);
  }
});
