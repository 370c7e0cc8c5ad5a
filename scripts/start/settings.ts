import path from 'node:path';

// The launcher's settings: flags, and the environment variables the control plane reads itself
// (TERN_API_PORT, TERN_XDS_PORT, TERN_DATA_DIR…) so both agree on where things are.

export interface Settings {
  help: boolean;
  demo: boolean;
  dataDir: string;
  logDir: string;
  apiHost: string;
  apiPort: number;
  /** Where clients reach the API (127.0.0.1 when it listens on every address). */
  apiUrl: string;
  xdsHost: string;
  xdsPort: number;
  xdsConnectHost: string;
  /** host:port for sidecars. */
  xdsConnect: string;
  consolePort: number;
  consoleUrl: string;
  gatewayPort: number;
  demoBasePort: number;
  traffic: false | { rps: number };
  readyTimeoutMs: number;
}

export const usage = `Usage: npm start [-- --no-demo]

Starts the Tern control plane (data in ./.tern), the console and the Bookinfo demo mesh.
  --no-demo     only the control plane and the console
  -h, --help    this text

Environment (all optional):
  TERN_DATA_DIR            data directory (default .tern)
  TERN_API_PORT            control plane REST API (default 8080)
  TERN_XDS_PORT            control plane xDS server (default 15010)
  TERN_CONSOLE_PORT        console (default 3000)
  TERN_DEMO_GATEWAY_PORT   Bookinfo through the demo's gateway (default 9080)
  TERN_DEMO_BASE_PORT      first of the 100 ports the demo's apps and sidecars take (default 19000)
  TERN_DEMO_RPS            demo traffic in requests per second, 0 = off (default 2)
  TERN_ADMIN_PASSWORD      the admin password (else generated on the first start and kept in the data directory)
  DATABASE_URL             PostgreSQL instead of the embedded database
`;

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port number (1-65535), got "${raw}"`);
  return n;
}

const anyAddress = (h: string) => (h === '0.0.0.0' || h === '::' || h === '' ? '127.0.0.1' : h);
const hostPort = (h: string, p: number) => (h.includes(':') ? `[${h}]:${p}` : `${h}:${p}`);

export function readSettings(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Settings {
  let demo = true;
  let help = false;
  for (const a of argv) {
    if (a === '--no-demo') demo = false;
    else if (a === '-h' || a === '--help') help = true;
    else throw new Error(`unknown argument "${a}"`);
  }
  const dataDir = path.resolve(cwd, env.TERN_DATA_DIR || '.tern');
  const apiHost = env.TERN_API_HOST || '127.0.0.1';
  const apiPort = port(env, 'TERN_API_PORT', 8080);
  const xdsHost = env.TERN_XDS_HOST || '127.0.0.1';
  const xdsPort = port(env, 'TERN_XDS_PORT', 15010);
  const consolePort = port(env, 'TERN_CONSOLE_PORT', 3000);
  const demoBasePort = port(env, 'TERN_DEMO_BASE_PORT', 19000);
  if (demoBasePort > 65535 - 99) throw new Error(`TERN_DEMO_BASE_PORT must leave room for 100 ports (at most 65436), got ${demoBasePort}`);
  const rpsRaw = env.TERN_DEMO_RPS;
  const rps = rpsRaw === undefined || rpsRaw === '' ? 2 : Number(rpsRaw);
  if (!Number.isFinite(rps) || rps < 0 || rps > 1000) throw new Error(`TERN_DEMO_RPS must be a number from 0 to 1000, got "${rpsRaw}"`);
  const gatewayPort = port(env, 'TERN_DEMO_GATEWAY_PORT', 9080);
  if (gatewayPort >= demoBasePort && gatewayPort < demoBasePort + 100) {
    throw new Error(`TERN_DEMO_GATEWAY_PORT (${gatewayPort}) must lie outside the demo's ports ${demoBasePort}-${demoBasePort + 99} (TERN_DEMO_BASE_PORT)`);
  }
  const xdsConnectHost = anyAddress(xdsHost);
  return {
    help,
    demo,
    dataDir,
    logDir: path.join(dataDir, 'logs'),
    apiHost,
    apiPort,
    apiUrl: `http://${hostPort(anyAddress(apiHost), apiPort)}`,
    xdsHost,
    xdsPort,
    xdsConnectHost,
    xdsConnect: hostPort(xdsConnectHost, xdsPort),
    consolePort,
    consoleUrl: `http://127.0.0.1:${consolePort}`,
    gatewayPort,
    demoBasePort,
    traffic: rps === 0 ? false : { rps },
    readyTimeoutMs: 90_000,
  };
}
