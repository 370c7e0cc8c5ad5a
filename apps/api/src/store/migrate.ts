// Applies prisma/migrations at start, in-process, on PGlite or PostgreSQL.
//
// The control plane cannot shell out to `prisma migrate deploy`: PGlite's data directory is held
// open by this very process. So we do what `migrate deploy` does, keeping Prisma's own bookkeeping
// table `_prisma_migrations` (same columns, same checksums), so that `prisma migrate status` and
// `migrate deploy` agree with us afterwards, and we with them. See docs/database.md.
//
// Differences from `prisma migrate deploy`, on purpose:
//   - each migration runs in its own transaction together with its bookkeeping row, so a failing
//     migration leaves nothing behind and the next start simply tries again;
//   - we refuse to start when an applied migration's file was edited (checksum mismatch) or when the
//     database knows a migration this build does not have (it was migrated by a newer build).
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';

/** The least a database connection must do for the migration runner. */
export interface SqlExecutor {
  /** Runs a script of one or more statements, without parameters. */
  exec(sql: string): Promise<void>;
  /** Runs one statement with $1.. parameters and returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface ApplyMigrationsOptions {
  /** Told about each migration as it is applied. */
  log?: (message: string, fields: { migration: string; ms?: number }) => void;
}

export type MigrationErrorCode =
  | 'NO_MIGRATIONS_DIR' // the migrations folder is missing or malformed
  | 'WRONG_PROVIDER' // migration_lock.toml names another database
  | 'FAILED_EARLIER' // _prisma_migrations has a migration that failed and was not resolved
  | 'CHECKSUM_MISMATCH' // an applied migration's migration.sql was edited since
  | 'UNKNOWN_MIGRATION' // the database has a migration this build does not know
  | 'MIGRATION_FAILED'; // a migration failed now (and was rolled back)

export class MigrationError extends Error {
  override name = 'MigrationError';
  constructor(
    readonly code: MigrationErrorCode,
    message: string,
    readonly migrations: string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Prisma Migrate's advisory lock key: holding it also keeps `prisma migrate deploy` out. */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;

// Byte for byte the table the Prisma schema engine creates on PostgreSQL.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrationFile {
  /** The folder name, e.g. `20250101120000_init`: Prisma's migration name. */
  name: string;
  sql: string;
  checksum: string;
}

interface MigrationRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: unknown;
  rolled_back_at: unknown;
  logs: string | null;
}

/** Prisma's checksum of a migration script: SHA-256 of its text, in lowercase hex. */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/**
 * Whether a script matches a stored checksum, as the Prisma schema engine decides it: the script as
 * is, or with its line endings switched between LF and CRLF (git may convert them on checkout), and
 * the unpadded hex format of very old Prisma versions.
 */
export function checksumMatches(sql: string, checksum: string): boolean {
  const variants = [sql, sql.replace(/\r\n/g, '\n'), sql.replace(/\n/g, '\r\n')];
  return variants.some((v) => {
    const digest = createHash('sha256').update(v, 'utf8').digest();
    if (checksum.length === 64) return digest.toString('hex') === checksum;
    return checksum.length > 0 && [...digest].map((b) => b.toString(16)).join('') === checksum;
  });
}

/** The migrations in a Prisma migrations folder, in the order Prisma applies them. */
export async function readMigrations(migrationsDir: string): Promise<MigrationFile[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(migrationsDir, { withFileTypes: true });
  } catch (err) {
    throw new MigrationError('NO_MIGRATIONS_DIR', `Cannot read the migrations folder ${migrationsDir}: ${(err as Error).message}`, [], {
      cause: err,
    });
  }
  const lock = await fs.readFile(path.join(migrationsDir, 'migration_lock.toml'), 'utf8').catch(() => null);
  if (lock !== null) {
    const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(lock)?.[1];
    if (provider && provider !== 'postgresql') {
      throw new MigrationError('WRONG_PROVIDER', `${migrationsDir}/migration_lock.toml is for "${provider}", not "postgresql".`);
    }
  }
  // Same order as the Prisma CLI (it sorts the folder names with localeCompare).
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort((a, b) => a.localeCompare(b));
  const out: MigrationFile[] = [];
  for (const name of dirs) {
    let sql: string;
    try {
      sql = await fs.readFile(path.join(migrationsDir, name, 'migration.sql'), 'utf8');
    } catch (err) {
      throw new MigrationError('NO_MIGRATIONS_DIR', `Migration ${name} has no readable migration.sql: ${(err as Error).message}`, [name], {
        cause: err,
      });
    }
    out.push({ name, sql, checksum: migrationChecksum(sql) });
  }
  return out;
}

/**
 * Brings the database up to the migrations in `migrationsDir` and returns the names of those it
 * applied (empty when it was up to date). Safe to run from several processes at once against one
 * PostgreSQL: they queue on Prisma Migrate's advisory lock, and each migration is applied once.
 *
 * The executor must be one session (a pg Client or a checked-out PoolClient, or a PGlite), since the
 * lock and the transactions live on it; nothing else should use that session meanwhile.
 */
export async function applyMigrations(
  db: SqlExecutor,
  migrationsDir: string,
  options: ApplyMigrationsOptions = {},
): Promise<{ applied: string[] }> {
  const migrations = await readMigrations(migrationsDir);

  await db.query(`SELECT pg_advisory_lock(${PRISMA_MIGRATE_LOCK_KEY})`);
  try {
    await db.exec(CREATE_MIGRATIONS_TABLE);
    const rows = await db.query<MigrationRow>(
      `SELECT "id", "checksum", "migration_name", "finished_at", "rolled_back_at", "logs"
         FROM "_prisma_migrations" ORDER BY "started_at" ASC`,
    );
    const live = rows.filter((r) => r.rolled_back_at === null || r.rolled_back_at === undefined);

    const failed = live.filter((r) => r.finished_at === null || r.finished_at === undefined);
    if (failed.length > 0) {
      const names = failed.map((r) => r.migration_name);
      const logs = failed.find((r) => r.logs)?.logs;
      throw new MigrationError(
        'FAILED_EARLIER',
        `The database has ${names.length === 1 ? 'a failed migration' : 'failed migrations'}: ${names.join(', ')}. ` +
          `Repair the database by hand, then mark it with \`npm run prisma -- migrate resolve --rolled-back <name>\` ` +
          `(to run it again) or \`--applied <name>\` (if you completed it yourself).` +
          (logs ? `\nIts log:\n${logs}` : ''),
        names,
      );
    }

    const byName = new Map(migrations.map((m) => [m.name, m]));
    const applied = new Map<string, MigrationRow>();
    for (const r of live) applied.set(r.migration_name, r);

    const unknown = [...applied.keys()].filter((n) => !byName.has(n));
    if (unknown.length > 0) {
      throw new MigrationError(
        'UNKNOWN_MIGRATION',
        `The database was migrated by a newer build: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not in ${migrationsDir}. ` +
          `Run a build that has ${unknown.length === 1 ? 'it' : 'them'}.`,
        unknown,
      );
    }

    const edited = [...applied.values()].filter((r) => !checksumMatches(byName.get(r.migration_name)!.sql, r.checksum));
    if (edited.length > 0) {
      const names = edited.map((r) => r.migration_name);
      throw new MigrationError(
        'CHECKSUM_MISMATCH',
        `${names.length === 1 ? 'Migration' : 'Migrations'} ${names.join(', ')} ${names.length === 1 ? 'was' : 'were'} modified after ` +
          `being applied to this database (the checksum of migration.sql differs from _prisma_migrations). ` +
          `Restore the file(s) as they were; make further changes in a new migration (scripts/db-new-migration.mjs).`,
        names,
      );
    }

    const done: string[] = [];
    for (const m of migrations) {
      if (applied.has(m.name)) continue;
      const started = Date.now();
      await applyOne(db, m);
      done.push(m.name);
      options.log?.(`applied migration ${m.name}`, { migration: m.name, ms: Date.now() - started });
    }
    return { applied: done };
  } finally {
    await db.query(`SELECT pg_advisory_unlock(${PRISMA_MIGRATE_LOCK_KEY})`).catch(() => {});
  }
}

async function applyOne(db: SqlExecutor, m: MigrationFile): Promise<void> {
  const id = randomUUID();
  await db.exec('BEGIN');
  try {
    // The row goes first and is finished last, as Prisma does: should the script itself commit
    // (a migration with its own BEGIN/COMMIT), a failure after that leaves a failed row behind,
    // which stops the next start instead of leaving a half-applied migration unnoticed.
    await db.query(
      `INSERT INTO "_prisma_migrations" ("id", "checksum", "migration_name", "started_at", "applied_steps_count")
       VALUES ($1, $2, $3, clock_timestamp(), 0)`,
      [id, m.checksum, m.name],
    );
    await db.exec(m.sql);
    await db.query(`UPDATE "_prisma_migrations" SET "finished_at" = clock_timestamp(), "applied_steps_count" = 1 WHERE "id" = $1`, [id]);
    await db.exec('COMMIT');
  } catch (err) {
    await db.exec('ROLLBACK').catch(() => {});
    const message = (err as Error)?.message ?? String(err);
    // Only matters when the script had committed part of itself: record why, as Prisma would.
    await db
      .query(`UPDATE "_prisma_migrations" SET "logs" = $2 WHERE "id" = $1 AND "finished_at" IS NULL`, [id, message])
      .catch(() => {});
    throw new MigrationError('MIGRATION_FAILED', `Migration ${m.name} failed and was rolled back: ${message}`, [m.name], {
      cause: err,
    });
  }
}

/** A pg client (or a client checked out of a pool) as a SqlExecutor. */
export function pgExecutor(client: pg.Client | pg.PoolClient): SqlExecutor {
  return {
    async exec(sql) {
      // Without parameters pg uses the simple query protocol, which takes several statements.
      await client.query(sql);
    },
    async query<T = Record<string, unknown>>(sql: string, params?: unknown[]) {
      const r = await client.query(sql, params as unknown[] | undefined);
      return r.rows as T[];
    },
  };
}

/** A PGlite database as a SqlExecutor. */
export function pgliteExecutor(db: PGlite): SqlExecutor {
  return {
    async exec(sql) {
      await db.exec(sql);
    },
    async query<T = Record<string, unknown>>(sql: string, params?: unknown[]) {
      const r = await db.query<T>(sql, params as unknown[] | undefined);
      return r.rows;
    },
  };
}
