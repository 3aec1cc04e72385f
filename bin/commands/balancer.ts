import type { Argv } from 'yargs';
import { checkInstances, haproxyConfig, nginxConfig, type BalancedInstance } from '../../server/balancer.js';
import type { CliIo } from '../io.js';

/** `HOST:PORT` (a bracketed IPv6 host allowed). */
function hostPort(flag: string, v: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`--${flag} ${JSON.stringify(v)}: expected HOST:PORT`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** `jpip-bench balancer nginx|haproxy`: the load balancer's config for several instances (docs/deploy.md). */
export function register(y: Argv, io: CliIo): Argv {
  return y.command(
    'balancer <kind>',
    'Print an nginx or HAProxy configuration that balances several `serve --cid-prefix` instances: sessions stay on the instance that granted them, new ones spread by target (consistent hashing) (docs/deploy.md)',
    (y) =>
      y
        .positional('kind', { choices: ['nginx', 'haproxy'] as const, demandOption: true, describe: 'which load balancer' })
        .option('instance', { type: 'string', array: true, demandOption: true, describe: 'PREFIX=HOST:PORT of an instance (its --cid-prefix and address); repeat for each' })
        .option('listen', { type: 'string', default: '127.0.0.1:8080', describe: 'HOST:PORT the balancer listens on' })
        .option('dir', { type: 'string', default: '/var/lib/jpip-balancer', describe: "directory for the balancer's pid file, logs and temporary files" })
        .option('connect-timeout', { type: 'number', default: 2, describe: 'seconds to connect to an instance before trying another' })
        .option('fail-seconds', { type: 'number', default: 5, describe: 'seconds an instance that failed is left out' })
        .example('$0 balancer nginx --instance I1x=127.0.0.1:8091 --instance I2x=127.0.0.1:8092 --listen 0.0.0.0:8080 > nginx.conf', 'two instances behind nginx'),
    (args) => {
      try {
        const instances: BalancedInstance[] = (args.instance ?? []).map((s) => {
          const eq = String(s).indexOf('=');
          if (eq < 1) throw new Error(`--instance ${JSON.stringify(s)}: expected PREFIX=HOST:PORT`);
          return { prefix: String(s).slice(0, eq), ...hostPort('instance', String(s).slice(eq + 1)) };
        });
        checkInstances(instances);
        for (const [flag, v] of [['connect-timeout', args['connect-timeout']], ['fail-seconds', args['fail-seconds']]] as const) {
          if (!Number.isFinite(v) || v <= 0) throw new Error(`--${flag} must be a number of seconds > 0, got ${v}`);
        }
        const opts = { listen: hostPort('listen', args.listen), instances, dir: args.dir, connectTimeoutSeconds: args['connect-timeout'], failSeconds: args['fail-seconds'] };
        io.out((args.kind === 'nginx' ? nginxConfig(opts) : haproxyConfig(opts)).trimEnd());
      } catch (e) {
        io.err(`jpip-bench balancer: ${(e as Error).message}`);
        process.exitCode = 2;
      }
    },
  );
}
