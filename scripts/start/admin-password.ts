import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// The admin password of a launcher-started control plane: generated on the first start and kept
// beside the data (mode 0600) so every later start can sign in for the demo and print it again.
// A password the user set (TERN_ADMIN_PASSWORD) is theirs: used, never stored or printed.

export type AdminPasswordSource = 'env' | 'file' | 'generated';

export function adminPasswordFile(dataDir: string): string {
  return path.join(dataDir, 'admin-password');
}

export function resolveAdminPassword(dataDir: string, env: NodeJS.ProcessEnv): { password: string; source: AdminPasswordSource } {
  if (env.TERN_ADMIN_PASSWORD) return { password: env.TERN_ADMIN_PASSWORD, source: 'env' };
  const file = adminPasswordFile(dataDir);
  if (fs.existsSync(file)) {
    const password = fs.readFileSync(file, 'utf8').trim();
    if (password) return { password, source: 'file' };
  }
  const password = generatePassword();
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, password + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return { password, source: 'generated' };
}

/**
 * 24 letters and digits (~143 bits): a double-click copies it from a terminal, and it never starts
 * with "-" (which a command line would take for an option), as base64url can.
 */
export function generatePassword(length = 24): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length)) {
      // 62 * 4 = 248: reject the top bytes so every character is equally likely.
      if (b < 248 && out.length < length) out += alphabet[b % 62];
    }
  }
  return out;
}
