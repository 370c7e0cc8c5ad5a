import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Where `tern login` keeps the server and session: $TERN_CONFIG, else ~/.config/tern/config.json,
// written with mode 0600 because it holds a credential.

export interface Credentials {
  server?: string;
  token?: string;
  user?: string;
}

export function configPath(env = process.env): string {
  return env.TERN_CONFIG ?? path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'tern', 'config.json');
}

export function readCredentials(env = process.env): Credentials {
  try {
    return JSON.parse(fs.readFileSync(configPath(env), 'utf8')) as Credentials;
  } catch {
    return {};
  }
}

export function writeCredentials(c: Credentials, env = process.env): void {
  const p = configPath(env);
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
  fs.writeFileSync(p, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(p, 0o600);
}

/** Server and token for this invocation: environment first, then the saved login. */
export function resolveTarget(flags: { server?: string | undefined }, env = process.env): { server: string; token: string | undefined } {
  const saved = readCredentials(env);
  const server = (flags.server ?? env.TERN_API_URL ?? saved.server ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  return { server, token: env.TERN_TOKEN ?? saved.token };
}
