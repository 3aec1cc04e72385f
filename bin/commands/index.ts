import type { Argv } from 'yargs';
import { SingleBar, Presets } from 'cli-progress';
import { indexArchive } from '../../jpeg2000/archive.js';
import { formatArchiveIndex } from '../format-inspect.js';
import { defaultCacheDir, type CliIo } from '../io.js';

/** `jpip-bench index DIR`: index cache files for a whole archive. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'index <dir>',
    'Build the packet index cache files of every JPEG 2000 file under a directory, ahead of serving',
    (y) =>
      y
        .positional('dir', { type: 'string', demandOption: true, describe: 'image root to walk' })
        .option('cache', { type: 'string', describe: 'directory for index cache files', defaultDescription: '$JPIP_BENCH_CACHE or ~/.cache/jpip-bench/index' })
        .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON' })
        .option('progress', { type: 'boolean', describe: 'show a progress bar', defaultDescription: 'when stderr is a terminal' })
        .example('$0 index /data/sdo --cache /var/cache/jpip', 'index an archive into a cache directory'),
    (args) => {
      const cacheDir = args.cache ?? defaultCacheDir();
      const showBar = args.progress ?? io.tty;
      const bar = showBar ? new SingleBar({ format: 'indexing [{bar}] {value}/{total} {file}', hideCursor: true }, Presets.shades_classic) : undefined;
      let started = false;
      const result = indexArchive(args.dir, {
        cacheDir,
        onProgress: (done, total, file) => {
          if (!bar) return;
          if (!started) {
            bar.start(total, 0, { file: '' });
            started = true;
          }
          bar.update(done, { file });
        },
      });
      bar?.stop();
      io.out(args.json ? JSON.stringify(result, null, 2) : formatArchiveIndex(result));
      if (result.failed.length > 0) process.exitCode = 1;
    },
  );
}
