import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { TestDatabase } from './helpers.ts';

// Several control-plane processes on one database, as in production: they share the database and
// the CA's key-encryption key (docs/security.md), nothing else — each has its own data directory.

export const SHARED_KEK = randomBytes(32).toString('base64');

/** The environment of another replica of a test API started with `{ caKeyEncryptionKey: SHARED_KEK }` on `db`. */
export function replicaEnv(db: TestDatabase): Record<string, string> {
  return {
    DATABASE_URL: db.databaseUrl ?? '',
    TERN_CA_KEY_ENCRYPTION_KEY: SHARED_KEK,
    TERN_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'tern-replica-')),
  };
}
