import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import type { ServerConfig } from './config.js';

/**
 * HTTPS (JPIP over TLS, `jpips://` in JHelioviewer): with `tlsCert` and `tlsKey` the worker
 * wraps every TCP connection it is handed in TLS before its HTTP layer reads it, and the
 * supervisor answers its own 503s over TLS too. The supervisor still owns the TCP connections,
 * but a TLS connection cannot outlive the worker that holds its keys and sequence numbers: when
 * a worker dies, its TLS connections are closed and clients reconnect, continuing their sessions
 * by cid (the journal keeps them).
 */

/** An error about the TLS files (its `code` lets the CLI print it as one line). */
function filesError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_TLS_FILES' });
}

/** The TLS context of a config, or undefined without TLS; throws a clear error for unreadable or invalid files. */
export function tlsContext(cfg: Pick<Readonly<ServerConfig>, 'tlsCert' | 'tlsKey'>): SecureContext | undefined {
  if (!cfg.tlsCert && !cfg.tlsKey) return undefined;
  if (!cfg.tlsCert || !cfg.tlsKey) throw filesError('TLS needs both tlsCert and tlsKey (--tls-cert and --tls-key)');
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw filesError(`cannot read the TLS ${what} ${path}: ${(e as Error).message}`);
    }
  };
  const cert = read('certificate', cfg.tlsCert);
  const key = read('key', cfg.tlsKey);
  try {
    return createSecureContext({ cert, key });
  } catch (e) {
    throw filesError(`the TLS certificate ${cfg.tlsCert} and key ${cfg.tlsKey} cannot be used: ${(e as Error).message}`);
  }
}

/** The server side of TLS over an accepted TCP connection. Handshake errors close it quietly. */
export function acceptTls(socket: Socket, context: SecureContext): TLSSocket {
  const s = new TLSSocket(socket, { isServer: true, secureContext: context });
  s.on('error', () => s.destroy());
  return s;
}
