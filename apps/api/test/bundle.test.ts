import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// `npm start` runs the control plane from a bundle (apps/api/scripts/bundle.mjs, the `prestart`
// script): it must build, find its migrations from where it sits, and serve — the way a user
// starts it, on the embedded database.

const root = path.resolve(import.meta.dirname, '../../..');

test('the bundled control plane starts on a fresh embedded database and serves the API', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-bundle-'));
  // Where `npm start` puts it (packages and migrations are found from there), under its own name.
  const bundle = path.join(root, 'apps/api/dist', `tern-api.test-${process.pid}.mjs`);
  try {
    execFileSync(process.execPath, [path.join(root, 'apps/api/scripts/bundle.mjs'), path.join(root, 'apps/api/src/main.ts'), bundle], { stdio: 'pipe' });
    const child = spawn(process.execPath, [bundle], {
      env: { ...process.env, TERN_API_HOST: '127.0.0.1', TERN_API_PORT: '0', TERN_XDS_HOST: '127.0.0.1', TERN_XDS_PORT: '0', TERN_DATA_DIR: path.join(dir, 'data'), TERN_ADMIN_PASSWORD: 'bundle-test-password-1', TERN_LOG_LEVEL: 'warn', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no start within 60 s:\n${output}`)), 60_000);
        child.stdout.on('data', () => {
          const m = /Tern control plane: (http:\/\/[^\s]+)/.exec(output);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
      });
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 200, await ready.text());
      // The migrations ran: signing in reads the users table.
      const login = await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'bundle-test-password-1' }) });
      assert.equal(login.status, 200, await login.text());
      const wrong = await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'not-the-password' }) });
      assert.equal(wrong.status, 401);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(bundle, { force: true });
      fs.rmSync(`${bundle}.map`, { force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
