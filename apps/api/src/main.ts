import { loadConfig } from './config.ts';
import { createApp } from './app.ts';
import { startHttpServer } from './http/server.ts';
import { logger } from './log.ts';

// `npm start`: the control plane on the embedded database (or DATABASE_URL), serving the API.

async function main() {
  const config = loadConfig();
  const app = await createApp(config);
  const admin = await app.auth.ensureAdmin(config.adminPassword);
  const server = await startHttpServer(app);
  const xdsAddress = await app.xds.start(config.xdsHost, config.xdsPort);
  logger.info({ database: app.db.kind, location: app.db.location, url: server.url, xds: xdsAddress, replica: config.replicaId }, 'tern control plane ready');
  const lines = [
    `Tern control plane: ${server.url}  (REST ${server.url}/api/v1, OpenAPI ${server.url}/api/openapi.json)`,
    `xDS (ADS) server: ${xdsAddress}  (replica ${config.replicaId})`,
  ];
  if (admin.generatedPassword) {
    lines.push(`First start: created user "admin" with password ${admin.generatedPassword}`);
    lines.push('It is shown only once. Sign in with: npx tern login --server ' + server.url + ' -u admin');
  } else if (admin.created) {
    lines.push('First start: created user "admin" with the password from TERN_ADMIN_PASSWORD');
  }
  process.stdout.write(lines.join('\n') + '\n');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.closeIdleConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  const message = err instanceof Error ? err.message : String(err);
  logger.fatal({ err: message }, 'tern control plane failed to start');
  process.stderr.write(`tern: cannot start the control plane: ${message}\n`);
  process.exit(1);
});
