import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CacheModel } from '../jpip/cache-model.js';
import { parseRequest } from '../jpip/request.js';
import { ImageRegistry } from './images.js';
import { planRequest } from './request-plan.js';
import { planResponse } from './responder.js';

/**
 * Warms a fresh worker up: runs the response path (open an image, read its index cache file,
 * parse the request, plan the window, assemble the reply) over the shipped small frames a few
 * dozen times, so that the first clients' requests run compiled code. Measured in-process on a
 * never-opened 4096x4096 image with its cache file: 10-15 ms for the first request of a fresh
 * process, ~3 ms for the next few, ~0.7 ms once compiled; after this warm-up the first one takes
 * ~0.7 ms (bench/cold-start.ts has the figures over HTTP).
 *
 * It runs in slices (one frame per turn of the event loop, a millisecond or two each) after the
 * server starts, so requests arriving meanwhile are served, and uses its own image registry
 * (without the server's block cache or buffers) and a temporary cache directory, removed after.
 */

/** The shipped small set (fixtures/small), from the sources or from dist/. */
function smallFrames(): { root: string; frames: string[] } | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const root of [join(here, '..', 'fixtures', 'small'), join(here, '..', '..', 'fixtures', 'small')]) {
    const dir = join(root, 'frames');
    if (!existsSync(dir)) continue;
    const frames = readdirSync(dir)
      .filter((f) => f.endsWith('.jp2'))
      .sort()
      .slice(0, 4)
      .map((f) => `frames/${f}`);
    if (frames.length > 0) return { root, frames };
  }
  return undefined;
}

const WINDOWS = ['fsiz=1024,1024&len=30000&type=jpp-stream', 'fsiz=512,512,closest&roff=100,100&rsiz=256,256&len=20000&type=jpp-stream', 'fsiz=256,256,closest&len=4000&type=jpp-stream'];

export interface WarmUp {
  /** Still running. */
  readonly running: boolean;
  /** Stops it (the server closes). */
  stop(): void;
  /** Resolves when it ended: rounds done (0 when there was nothing to warm up on) and milliseconds of work. */
  readonly done: Promise<{ rounds: number; ms: number }>;
}

export function startWarmUp(rounds = 20): WarmUp {
  let stopped = false;
  const done = new Promise<{ rounds: number; ms: number }>((resolve) => {
    const set = smallFrames();
    if (!set) return resolve({ rounds: 0, ms: 0 });
    const cacheDir = mkdtempSync(join(tmpdir(), 'jpip-warmup-'));
    let round = 0;
    let frame = 0;
    let reg: ImageRegistry | undefined;
    let ms = 0;
    const finish = (): void => {
      reg?.closeAll();
      rmSync(cacheDir, { recursive: true, force: true });
      resolve({ rounds: round, ms: Math.round(ms) });
    };
    // One frame per turn of the event loop (a millisecond or two): a request arriving meanwhile waits that long at most.
    const step = (): void => {
      if (stopped || round >= rounds) return finish();
      const t0 = performance.now();
      try {
        // A new registry each round: every round opens the images (the first writes their cache files, the others read them).
        reg ??= new ImageRegistry({ root: set.root, cacheDir });
        const entry = reg.open(set.frames[frame]!);
        const planned = planRequest(parseRequest(WINDOWS[(round + frame) % WINDOWS.length]!), entry, { defaultLen: 2 ** 21, maxLen: 2 ** 26 });
        reg.acquire(entry);
        for (const chunk of planResponse(entry, planned.input, new CacheModel(), { chunkSize: 65536 }).body()) void chunk;
        reg.release(entry);
        if (++frame === set.frames.length) {
          frame = 0;
          round++;
          reg.closeAll();
          reg = undefined;
        }
      } catch {
        // A warm-up that fails (a damaged install) only means cold code: serving is unaffected.
        stopped = true;
      }
      ms += performance.now() - t0;
      setImmediate(step);
    };
    setImmediate(step);
  });
  let running = true;
  void done.then(() => (running = false));
  return {
    get running() {
      return running;
    },
    stop: () => {
      stopped = true;
    },
    done,
  };
}
