import type { Argv } from 'yargs';
import { DIALECT_NAMES } from '../../client-sim/dialects.js';
import { fetchWindow, saveWindow } from '../../client-sim/fetch-window.js';
import { formatBytes } from '../../client-sim/results.js';
import type { CliIo } from '../io.js';
import { asCliError, parseSize } from './crowd.js';

function parseOffset(s: string): { x: number; y: number } {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(s);
  if (!m) throw new RangeError(`--roff must be X,Y (integers >= 0), got ${JSON.stringify(s)}`);
  return { x: Number(m[1]), y: Number(m[2]) };
}

/** `jpip-bench fetch URL --fsiz W,H --out FILE`: one window, fetched to completion. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'fetch <url>',
    'Fetch one window of an image over JPIP to completion and save it decoded (.png) or as a codestream (.j2k)',
    (y) =>
      y
        .positional('url', { type: 'string', demandOption: true, describe: 'http://HOST:PORT/PATH (or jpip://) of the image' })
        .option('fsiz', { type: 'string', demandOption: true, describe: 'frame size W,H: picks the resolution' })
        .option('round', { type: 'string', choices: ['round-down', 'round-up', 'closest'], default: 'round-down', describe: 'how fsiz picks the resolution' })
        .option('roff', { type: 'string', describe: 'region offset X,Y in the frame', defaultDescription: '0,0' })
        .option('rsiz', { type: 'string', describe: 'region size W,H', defaultDescription: 'to the edge of the frame' })
        .option('stream', { type: 'number', default: 0, describe: 'codestream (frame) of a movie' })
        .option('len', { type: 'number', default: 2097152, describe: 'bytes per request' })
        .option('out', { type: 'string', demandOption: true, describe: 'FILE.png (decoded window) or FILE.j2k (rebuilt codestream)' })
        .option('decoder', { type: 'string', choices: ['wasm', 'opj'], default: 'wasm', describe: 'decoder for .png: WASM OpenJPEG or opj_decompress' })
        .option('dialect', { type: 'string', choices: DIALECT_NAMES, default: 'ours', describe: 'request syntax of the server' })
        .option('timeout', { type: 'number', default: 30, describe: 'seconds a request may take' })
        .example('$0 fetch http://127.0.0.1:8090/movie-00.jpx --fsiz 512,512 --stream 3 --out frame3.png', 'frame 3 at half size')
        .example('$0 fetch jpip://127.0.0.1:8090/image.jp2 --fsiz 4096,4096 --roff 1024,1024 --rsiz 512,512 --out crop.j2k', 'a region at full size, as a codestream'),
    async (args) => {
      try {
        const fsiz = parseSize('fsiz', args.fsiz);
        const w = await fetchWindow({
          url: args.url,
          fsiz,
          round: args.round as 'round-down',
          roff: args.roff !== undefined ? parseOffset(args.roff) : undefined,
          rsiz: args.rsiz !== undefined ? parseSize('rsiz', args.rsiz) : undefined,
          stream: args.stream,
          len: args.len,
          dialect: args.dialect,
          timeoutMs: args.timeout * 1000,
        });
        const saved = await saveWindow(args.out, w, args.decoder as 'wasm' | 'opj');
        const v = w.view;
        io.out(
          `wrote ${args.out}: ${saved.format === 'png' ? `${saved.width}x${saved.height} pixels` : `codestream of ${w.codestream.length} bytes`}, ` +
            `window ${v.rsiz.w}x${v.rsiz.h} at ${v.roff.x},${v.roff.y} of frame ${w.stream} at ${v.fsiz.w}x${v.fsiz.h} (${v.discard} levels discarded); ` +
            `${w.requests} request${w.requests === 1 ? '' : 's'}, ${formatBytes(w.bytes)}${w.complete ? '' : ' - INCOMPLETE: the server did not finish the window'}`,
        );
        if (!w.complete) process.exitCode = 1;
      } catch (e) {
        throw asCliError(e);
      }
    },
  );
}
