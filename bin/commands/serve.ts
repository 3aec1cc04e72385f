import type { Argv } from 'yargs';
import { CONFIG_KEYS, CONFIG_SCHEMA, envName, flagName, loadConfig, reloadable, type ServerConfig } from '../../server/config.js';
import { Supervisor } from '../../server/supervisor.js';
import { defaultCacheDir, type CliIo } from '../io.js';

/**
 * `jpip-bench serve`: the JPIP server, as a supervisor process that keeps a
 * worker process alive (or in this process with --single-process). Every
 * config key is a flag (`maxLenBytes` -> `--max-len-bytes`); the config is
 * defaults < --config file < JPIP_BENCH_* environment < flags.
 */

/** Old flag names kept working. */
const ALIASES: Partial<Record<keyof ServerConfig, string>> = {
  cacheDir: 'cache',
  defaultLenBytes: 'default-len',
  sessionIdleSeconds: 'session-idle',
};

/** The flags layer: only flags given on the command line (the others are undefined). */
export function flagsFromArgs(args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const v = args[flagName(key)];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'serve',
    'Serve the JPEG 2000 files under a directory over JPIP (HTTP/1.1, JPP-stream and JPT-stream)',
    (y) => {
      let c = y
        .option('config', { type: 'string', describe: 'JSON config file (keys as below, in camelCase)', defaultDescription: '$JPIP_BENCH_CONFIG' })
        .option('print-config', { type: 'boolean', describe: 'print the effective config as JSON and exit' })
        .option('quiet', { type: 'boolean', describe: 'print only the start line {"supervisor","worker","url"}' })
        .option('single-process', { type: 'boolean', describe: 'serve in this process, without supervisor and worker (debugging, profiling)' });
      for (const key of CONFIG_KEYS) {
        const spec = CONFIG_SCHEMA[key];
        const type = spec.type === 'integer' || spec.type === 'number' ? 'number' : spec.type === 'boolean' ? 'boolean' : 'string';
        const alias = ALIASES[key];
        c = c.option(flagName(key), {
          type,
          describe: `${spec.describe} [${envName(key)}]`,
          ...(spec.type === 'enum' ? { choices: spec.values } : {}),
          ...(alias ? { alias } : {}),
        });
      }
      return c
        .example('$0 serve --root /data/sdo --port 8090', 'serve an archive; JHelioviewer opens jpip://host:8090/movie.jpx')
        .example('$0 serve --config server.json --print-config', 'show the effective config');
    },
    async (args) => {
      const env = process.env;
      const load = (): Readonly<ServerConfig> =>
        loadConfig({ base: { cacheDir: defaultCacheDir(env), warmUp: true }, file: args.config ?? env['JPIP_BENCH_CONFIG'], env, flags: flagsFromArgs(args) });
      const config = load();
      if (args['print-config']) {
        io.out(JSON.stringify(config, null, 2));
        return;
      }
      const started = (supervisor: number | null, worker: number | undefined, url: string): void => {
        io.out(JSON.stringify({ supervisor, worker: worker ?? null, url }));
        if (!args.quiet) io.out(`jpip-bench serving ${config.root} at ${url}/ (JPIP path ${url}/jpip)`);
      };
      let stop: () => Promise<void>;
      let reload: () => void;
      if (args['single-process']) {
        // Loaded here: the supervisor never runs the server itself.
        const { createJpipServer } = await import('../../server/server.js');
        const srv = createJpipServer(config, { defaultMetrics: true });
        started(null, process.pid, await srv.listen());
        stop = async () => {
          await srv.drain();
          await srv.close();
        };
        reload = () => {
          try {
            srv.reconfigure(reloadable(srv.config, load()).config);
          } catch (e) {
            srv.logger.error({ event: 'reload-failed', message: (e as Error).message });
          }
        };
      } else {
        const sup = new Supervisor({ config, reload: load });
        await sup.start();
        started(process.pid, sup.workerPid, sup.url);
        stop = () => sup.drain();
        reload = () => void sup.reload();
      }
      await new Promise<void>((resolve) => {
        const onStop = (): void => {
          process.off('SIGINT', onStop);
          process.off('SIGTERM', onStop);
          process.off('SIGHUP', reload);
          void stop().then(resolve);
        };
        process.on('SIGINT', onStop);
        process.on('SIGTERM', onStop);
        process.on('SIGHUP', reload);
      });
    },
  );
}
