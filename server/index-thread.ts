import { readCodestream, type Codestream } from '../jpeg2000/codestream.js';
import { openFileSource, type FileSource } from '../jpeg2000/file-source.js';
import { CodestreamIndex } from '../jpeg2000/packet-index.js';
import { subSource, type RandomAccess } from '../jpeg2000/source.js';

/**
 * A worker thread of the index pool (index-pool.ts): indexes one tile of a
 * codestream that has no PLT/PLM markers by parsing its packet headers (the
 * costly case), and posts the packet lengths back on a SharedArrayBuffer (no
 * copy). It opens the file by path and refuses it when its size or mtime is
 * not the one the main thread opened, so it never indexes another version.
 * It opens the file for each job only (the descriptor budget stays the main
 * thread's) and keeps no packet tables (the main thread's index is the one copy).
 */

export type ToIndexThread = { op: 'tile'; path: string; size: number; mtimeMs: number; offset: number; length: number; tile: number };

export type IndexAnswer = { ok: true; lengths: Uint32Array } | { ok: false; message: string };
export type FromIndexThread = IndexAnswer & { id: number };

/** The codestream's parsed structure, from the file by path; refused if it is not the version the main thread opened. */
function codestreamOf(file: FileSource, m: ToIndexThread): { src: RandomAccess; layout: Codestream } {
  if (file.size !== m.size || file.mtimeMs !== m.mtimeMs) throw new Error(`${m.path} changed on disk`);
  const src = subSource(file, m.offset, m.length);
  return { src, layout: readCodestream(src) };
}

/** A job (run by server/thread-main.ts, which adds the id and turns a throw into ok: false). */
export function handle(m: ToIndexThread): IndexAnswer {
  // The file is open for this job only: the server's descriptor budget (maxOpenFiles) counts
  // the main thread's files, so threads add at most one descriptor each, while they work.
  const file = openFileSource(m.path);
  try {
    const { src, layout } = codestreamOf(file, m);
    const index = new CodestreamIndex(src, layout, { shared: true, source: 'headers' });
    // The whole tile, checked: packets exactly fill its tile-part bodies.
    const ti = index.ensureTile(m.tile);
    return { ok: true, lengths: ti.lengths };
  } finally {
    file.close();
  }
}
