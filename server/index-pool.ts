import { availableParallelism } from 'node:os';
import { fullView, maxDiscardLevels, resolveView, windowTiles } from '../jpip/window.js';
import type { CodestreamIndex } from '../jpeg2000/packet-index.js';
import type { ImageEntry } from './images.js';
import type { FromIndexThread, ToIndexThread } from './index-thread.js';
import { ThreadPool } from './thread-pool.js';
import type { ResponseInput } from './responder.js';

/**
 * A pool of worker threads that index codestreams without PLT/PLM markers
 * (packet-header parsing: the costly case) off the main thread. Before a
 * response is planned, `prepare` asks the threads for the packet lengths of
 * every tile of the window not indexed yet, and preloads them into the
 * image's one `CodestreamIndex`; the response is then planned and assembled on
 * the main thread exactly as without threads (the preloaded lengths are
 * placed and checked by the same code), so responses are byte-identical.
 *
 * Whatever goes wrong in a thread (a corrupt file, a file changed on disk, a
 * thread that dies) only loses the head start: the tile is then indexed
 * lazily on the main thread as before, which reports the same errors. A dead
 * thread is replaced at once.
 */

/** The number of threads `indexThreads: -1` (and `assemblyThreads: -1`) means: one per core but the main thread's. */
export function defaultIndexThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

export class IndexPool extends ThreadPool<ToIndexThread, FromIndexThread> {
  /** Jobs in flight, by tile, so concurrent requests share one. */
  private readonly pending = new Map<string, Promise<Uint32Array | undefined>>();
  /** Tiles indexed on a thread (tests, metrics). */
  tilesIndexed = 0;
  /** Jobs that failed (the main thread then indexed the tile itself). */
  failures = 0;

  constructor(size: number) {
    super('index-thread', size);
  }

  /** The packet lengths of one tile, parsed on a thread (undefined: it could not; index it in-thread). */
  tileLengths(job: ToIndexThread): Promise<Uint32Array | undefined> {
    const key = `${job.path}\0${job.size}\0${job.mtimeMs}\0${job.offset}\0${job.tile}`;
    let p = this.pending.get(key);
    if (!p) {
      p = this.run(job).then((r) => {
        this.pending.delete(key);
        if (r?.ok) {
          this.tilesIndexed++;
          return r.lengths;
        }
        this.failures++;
        return undefined;
      });
      this.pending.set(key, p);
    }
    return p;
  }

  /**
   * Indexes on the threads the tiles a response will read that are not indexed
   * yet (codestreams indexed from packet headers only), and preloads them.
   * Never throws: anything that goes wrong is left to the main thread's lazy path.
   */
  async prepare(entry: ImageEntry, input: ResponseInput): Promise<void> {
    if (this.closed || input.metadataOnly) return;
    const waits: Promise<void>[] = [];
    try {
      for (const i of input.codestreams) {
        const h = entry.codestream(i);
        const index: CodestreamIndex = h.index;
        if (index.lengthSource !== 'headers') continue;
        const siz = h.layout.main.siz;
        const codings = h.layout.tiles.map((_, t) => index.tile(t).coding);
        const view = input.view.fsiz ? resolveView(siz, maxDiscardLevels(codings), input.view) : fullView(siz);
        if (!view || view.empty) continue;
        for (const t of windowTiles(siz, view.region)) {
          if (index.isTileIndexed(t) || index.hasPreloaded(t)) continue;
          const owner = h.owner;
          const origin = h.src.origin ?? 0;
          waits.push(
            this.tileLengths({ op: 'tile', path: owner.path, size: owner.size, mtimeMs: owner.mtimeMs, offset: origin, length: h.src.size, tile: t }).then((lengths) => {
              if (lengths && !owner.closed) index.preloadTile(t, lengths);
            }),
          );
        }
      }
    } catch {
      // A bad request or a corrupt image: the planning on the main thread reports it.
    }
    await Promise.all(waits);
  }
}
