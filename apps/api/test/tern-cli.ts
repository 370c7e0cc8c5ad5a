import { spawn } from 'node:child_process';
import path from 'node:path';

// The real `tern` binary in a child process, as a user runs it: what the CLI tests drive.

export const repoRoot = path.resolve(import.meta.dirname, '../../..');
const bin = path.join(repoRoot, 'node_modules', '.bin', 'tern');

export interface TernRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `tern ARGS` against the control plane at `server`. The environment is this process's
 * without its TERN_TOKEN (a test's token is passed explicitly: null for none), plus `env`.
 */
export function runTern(args: string[], o: { server: string; token: string | null; config: string; env?: NodeJS.ProcessEnv; unset?: string[]; stdin?: string }): Promise<TernRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, TERN_API_URL: o.server, TERN_CONFIG: o.config, ...o.env };
  delete env.TERN_TOKEN;
  for (const k of o.unset ?? []) delete env[k];
  if (o.token) env.TERN_TOKEN = o.token;
  return new Promise((resolve) => {
    const child = spawn(bin, args, { env, cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(o.stdin ?? '');
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
