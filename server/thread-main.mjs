// Worker-thread bootstrap for running from the TypeScript sources (tests, `node --import tsx`):
// a .ts worker_threads entry does not load on Node 20 even under tsx, so register tsx here first.
// From dist/ the pools start the compiled thread-main.js directly and this file is not used.
import { register } from 'tsx/esm/api';

register();
await import('./thread-main.ts');
