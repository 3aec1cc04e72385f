import type { Socket } from 'node:net';
import type { ToWorker } from './ipc.js';
import { WorkerHost } from './worker.js';

/**
 * Entry point of the worker process the supervisor forks (`dist/server/worker-main.js`).
 * Everything it does is in worker.ts; this only binds it to the IPC channel.
 */
if (!process.send) {
  process.stderr.write('worker-main: this module is started by the supervisor (jpip-bench serve), not directly\n');
  process.exit(2);
}

new WorkerHost({
  send: (msg, done, handle) => {
    // keepOpen: a socket sent for safekeeping stays in use here.
    if (process.connected) process.send!(msg, handle as import('node:child_process').SendHandle, { keepOpen: true }, () => done?.());
    else done?.();
  },
  onMessage: (fn) => process.on('message', (msg, handle) => fn(msg as ToWorker, handle as Socket | undefined)),
  onDisconnect: (fn) => process.on('disconnect', fn),
  exit: (code) => process.exit(code),
});
