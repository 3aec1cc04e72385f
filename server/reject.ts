import type { Socket } from 'node:net';

/**
 * Answers 503 with Retry-After on a connection that is over the limit and
 * closes it. What the client sends meanwhile is read and dropped, so that the
 * close does not reset the connection before the client reads the answer;
 * after `lingerMs` the socket is destroyed whatever the client does.
 */
export function rejectBusy(socket: Socket, retryAfterSeconds: number, why = 'connection limit reached', lingerMs = 2000): void {
  const body = `JPIP_ERR_BUSY: ${why}; try again later\n`;
  socket.on('error', () => {});
  const t = setTimeout(() => socket.destroy(), lingerMs);
  t.unref();
  socket.once('close', () => clearTimeout(t));
  socket.resume();
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${retryAfterSeconds}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-cache\r\n\r\n${body}`,
  );
}
