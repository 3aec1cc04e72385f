import type { Argv } from 'yargs';
import { createJpipServer, DEFAULTS as SERVER_DEFAULTS } from '../../server/server.js';
import { defaultCacheDir, type CliIo } from '../io.js';

/** `jpip-bench serve --root DIR`: the JPIP server. */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'serve',
    'Serve the JPEG 2000 files under a directory over JPIP (HTTP/1.1, JPP-stream and JPT-stream)',
    (y) =>
      y
        .option('root', { type: 'string', demandOption: true, describe: 'image root: every target is a file under it' })
        .option('port', { type: 'number', default: SERVER_DEFAULTS.port, describe: 'TCP port (0 picks a free one)' })
        .option('host', { type: 'string', default: SERVER_DEFAULTS.host, describe: 'address to listen on' })
        .option('cache', { type: 'string', describe: 'directory for index cache files', defaultDescription: '$JPIP_BENCH_CACHE or ~/.cache/jpip-bench/index' })
        .option('default-len', { type: 'number', default: SERVER_DEFAULTS.defaultLen, describe: 'byte budget of a request that gives no len' })
        .option('max-sessions', { type: 'number', default: SERVER_DEFAULTS.maxSessions, describe: 'sessions open at once (more: 503)' })
        .option('session-idle', { type: 'number', default: SERVER_DEFAULTS.sessionIdleSeconds, describe: 'seconds before an idle session is dropped' })
        .option('log', { type: 'boolean', default: false, describe: 'log every event as one JSON line on stderr (errors are always logged)' })
        .example('$0 serve --root /data/sdo --port 8090', 'serve an archive; JHelioviewer opens jpip://host:8090/movie.jpx'),
    async (args) => {
      const srv = createJpipServer({
        root: args.root,
        port: args.port,
        host: args.host,
        cacheDir: args.cache ?? defaultCacheDir(),
        defaultLen: args['default-len'],
        maxSessions: args['max-sessions'],
        sessionIdleSeconds: args['session-idle'],
        log: (e) => {
          if (args.log || /error|corrupt/.test(String(e['event']))) io.err(JSON.stringify({ time: new Date().toISOString(), ...e }));
        },
      });
      const url = await srv.listen();
      io.out(`jpip-bench serving ${args.root} at ${url}/ (JPIP path ${url}/jpip)`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void srv.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    },
  );
}
