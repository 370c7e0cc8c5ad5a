import { AppProbersError } from './admin/health.ts';
import { parseArgs } from 'node:util';
import { BootstrapError, loadBootstrap } from './config/bootstrap.ts';
import { ConfigError } from './config/model.ts';
import { IdentityConfigError } from './identity/config.ts';
import { logger } from './log.ts';
import { runProxy } from './proxy.ts';

const USAGE = `usage: tern-proxy --bootstrap FILE [--admin-port N] [--stats-port N|off] [--drain-seconds N] [--access-log] [--cert-output-dir DIR]
  env: TERN_BOOTSTRAP, TERN_ADMIN_PORT, TERN_STATS_PORT, TERN_DRAIN_SECONDS (default 5), TERN_ACCESS_LOG=1, TERN_LOG_LEVEL
  workload identity: TERN_SA_TOKEN_FILE (Kubernetes service-account token), TERN_JOIN_TOKEN or TERN_JOIN_TOKEN_FILE (or node metadata JOIN_TOKEN_FILE), TERN_CERT_OUTPUT_DIR`;

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`${name}: must be a number, got ${JSON.stringify(value)}`);
  return n;
}

function statsPortOption(value: string | undefined): number | undefined {
  return value === 'off' ? -1 : intOption('--stats-port / TERN_STATS_PORT', value);
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        bootstrap: { type: 'string' },
        'admin-port': { type: 'string' },
        'stats-port': { type: 'string' },
        'drain-seconds': { type: 'string' },
        'access-log': { type: 'boolean' },
        'cert-output-dir': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const file = values.bootstrap ?? process.env.TERN_BOOTSTRAP;
  if (!file) {
    process.stderr.write(`--bootstrap FILE (or TERN_BOOTSTRAP) is required\n${USAGE}\n`);
    return 2;
  }
  let proxy;
  try {
    const drainSeconds = intOption('--drain-seconds / TERN_DRAIN_SECONDS', values['drain-seconds'] ?? process.env.TERN_DRAIN_SECONDS) ?? 5;
    const bootstrap = await loadBootstrap(file);
    proxy = await runProxy({
      bootstrap,
      log: logger,
      adminPort: intOption('--admin-port / TERN_ADMIN_PORT', values['admin-port'] ?? process.env.TERN_ADMIN_PORT),
      statsPort: statsPortOption(values['stats-port'] ?? process.env.TERN_STATS_PORT),
      drainMs: drainSeconds * 1000,
      accessLog: values['access-log'] === true || process.env.TERN_ACCESS_LOG === '1',
      ...(values['cert-output-dir'] ? { certOutputDir: values['cert-output-dir'] } : {}),
    });
  } catch (err) {
    if (err instanceof BootstrapError || err instanceof ConfigError || err instanceof IdentityConfigError || err instanceof AppProbersError) logger.error(err.message);
    else logger.error({ err }, 'proxy failed to start');
    return 1;
  }
  const running = proxy;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      running.shutdown().then(() => resolve(0), (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        resolve(1);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/apps/proxy/src/main.ts')) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
