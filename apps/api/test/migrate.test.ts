// The in-process migration runner (src/store/migrate.ts): on PGlite always, on a real PostgreSQL
// when TERN_TEST_DATABASE_URL is set (a fresh database per run, dropped after). Also checks that
// the Prisma CLI (through scripts/schema-engine.mjs) agrees with the runner's bookkeeping.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { onPostgres } from './helpers.ts';
import {
  applyMigrations,
  checksumMatches,
  migrationChecksum,
  MigrationError,
  pgExecutor,
  pgliteExecutor,
  readMigrations,
  type SqlExecutor,
} from '../src/store/migrate.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MIGRATIONS = path.join(root, 'prisma', 'migrations');
const pgBase = process.env.TERN_TEST_DATABASE_URL;

const tmpDirs: string[] = [];
function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A copy of the real migrations folder, to tamper with. */
function copyMigrations(): string {
  const dir = path.join(tmpDir('tern-migrations-'), 'migrations');
  fs.cpSync(MIGRATIONS, dir, { recursive: true });
  return dir;
}

function addMigration(dir: string, name: string, sql: string): void {
  fs.mkdirSync(path.join(dir, name));
  fs.writeFileSync(path.join(dir, name, 'migration.sql'), sql);
}

async function expectMigrationError(p: Promise<unknown>, code: MigrationError['code']): Promise<MigrationError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MigrationError, `expected a MigrationError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

interface Row {
  migration_name: string;
  checksum: string;
  finished_at: unknown;
  rolled_back_at: unknown;
  applied_steps_count: number;
  logs: string | null;
}
const rowsOf = (db: SqlExecutor) =>
  db.query<Row>('SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count, logs FROM "_prisma_migrations" ORDER BY started_at');

async function tablesOf(db: SqlExecutor): Promise<string[]> {
  const rows = await db.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`);
  return rows.map((r) => r.tablename);
}

/** The bookkeeping must be what `prisma migrate deploy` would have written. */
async function assertBookkeeping(db: SqlExecutor, dir = MIGRATIONS): Promise<void> {
  const files = await readMigrations(dir);
  const rows = await rowsOf(db);
  assert.deepEqual(rows.map((r) => r.migration_name), files.map((f) => f.name));
  for (const [i, r] of rows.entries()) {
    const f = files[i]!;
    assert.equal(r.checksum, f.checksum);
    assert.equal(r.checksum, migrationChecksum(fs.readFileSync(path.join(dir, f.name, 'migration.sql'), 'utf8')));
    assert.ok(r.finished_at, 'finished_at is set');
    assert.equal(r.rolled_back_at, null);
    assert.equal(r.applied_steps_count, 1);
    assert.equal(r.logs, null);
  }
}

/** `prisma migrate <args>` through scripts/prisma.mjs, as a developer would run it. */
function prismaCli(args: string[], databaseUrl: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'prisma.mjs'), ...args], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

test('the migrations folder is what Prisma expects', async () => {
  const files = await readMigrations(MIGRATIONS);
  assert.ok(files.length >= 1, 'at least the initial migration');
  assert.match(files[0]!.name, /^\d{14}_init$/);
  assert.match(fs.readFileSync(path.join(MIGRATIONS, 'migration_lock.toml'), 'utf8'), /^provider = "postgresql"$/m);
});

test('checksums are compared as Prisma does', () => {
  const sql = 'CREATE TABLE "a" ("id" INTEGER);\nCREATE TABLE "b" ("id" INTEGER);\n';
  assert.ok(checksumMatches(sql, migrationChecksum(sql)));
  assert.ok(checksumMatches(sql.replace(/\n/g, '\r\n'), migrationChecksum(sql)), 'CRLF checkout of an LF file');
  assert.ok(checksumMatches(sql, migrationChecksum(sql.replace(/\n/g, '\r\n'))), 'LF checkout of a CRLF file');
  assert.ok(!checksumMatches(sql + '-- edited\n', migrationChecksum(sql)));
});

describe('PGlite', () => {
  test('in memory: applies every migration once', async () => {
    const db = new PGlite();
    try {
      const exec = pgliteExecutor(db);
      const files = await readMigrations(MIGRATIONS);
      const first = await applyMigrations(exec, MIGRATIONS);
      assert.deepEqual(first.applied, files.map((f) => f.name));
      const tables = await tablesOf(exec);
      for (const t of ['_prisma_migrations', 'Resource', 'Revision', 'RevisionCounter', 'AuditEvent', 'User', 'Session', 'ApiToken']) {
        assert.ok(tables.includes(t), `table ${t} exists (have ${tables.join(', ')})`);
      }
      await assertBookkeeping(exec);
      assert.deepEqual((await applyMigrations(exec, MIGRATIONS)).applied, []);
    } finally {
      await db.close();
    }
  });

  test('on a data directory, reopened: the second run applies nothing, and the Prisma CLI agrees', async () => {
    const dir = path.join(tmpDir('tern-pglite-'), 'pgdata');
    let db = new PGlite(dir);
    const first = await applyMigrations(pgliteExecutor(db), MIGRATIONS);
    assert.ok(first.applied.length >= 1);
    await db.close();

    db = new PGlite(dir);
    try {
      assert.deepEqual((await applyMigrations(pgliteExecutor(db), MIGRATIONS)).applied, []);
      await assertBookkeeping(pgliteExecutor(db));
    } finally {
      await db.close();
    }

    const status = prismaCli(['migrate', 'status'], `pglite://${dir}`);
    assert.equal(status.status, 0, status.out);
    assert.match(status.out, /Database schema is up to date!/);
  });

  test('a database migrated by `prisma migrate deploy` needs nothing more from the runner', async () => {
    const dir = path.join(tmpDir('tern-pglite-'), 'pgdata');
    const deploy = prismaCli(['migrate', 'deploy'], `pglite://${dir}`);
    assert.equal(deploy.status, 0, deploy.out);
    assert.match(deploy.out, /All migrations have been successfully applied/);
    const db = new PGlite(dir);
    try {
      assert.deepEqual((await applyMigrations(pgliteExecutor(db), MIGRATIONS)).applied, []);
      await assertBookkeeping(pgliteExecutor(db));
    } finally {
      await db.close();
    }
  });

  test('refuses an applied migration whose file was edited', async () => {
    const dir = copyMigrations();
    const db = new PGlite();
    try {
      const exec = pgliteExecutor(db);
      await applyMigrations(exec, dir);
      const first = (await readMigrations(dir))[0]!;
      fs.appendFileSync(path.join(dir, first.name, 'migration.sql'), '\n-- an innocent-looking edit\n');
      const err = await expectMigrationError(applyMigrations(exec, dir), 'CHECKSUM_MISMATCH');
      assert.deepEqual(err.migrations, [first.name]);
      assert.match(err.message, new RegExp(first.name));
    } finally {
      await db.close();
    }
  });

  test('refuses a tampered checksum in _prisma_migrations', async () => {
    const db = new PGlite();
    try {
      const exec = pgliteExecutor(db);
      await applyMigrations(exec, MIGRATIONS);
      await exec.query(`UPDATE "_prisma_migrations" SET checksum = $1`, ['0'.repeat(64)]);
      await expectMigrationError(applyMigrations(exec, MIGRATIONS), 'CHECKSUM_MISMATCH');
    } finally {
      await db.close();
    }
  });

  test('a failing migration is rolled back whole and tried again on the next start', async () => {
    const dir = copyMigrations();
    addMigration(dir, '29990101000000_broken', 'CREATE TABLE "Half" ("id" INTEGER);\nSELECT * FROM "NoSuchTable";\n');
    const db = new PGlite();
    try {
      const exec = pgliteExecutor(db);
      const err = await expectMigrationError(applyMigrations(exec, dir), 'MIGRATION_FAILED');
      assert.match(err.message, /29990101000000_broken/);
      assert.match(err.message, /NoSuchTable/);
      const tables = await tablesOf(exec);
      assert.ok(!tables.includes('Half'), 'the partial migration left nothing');
      assert.ok(tables.includes('Resource'), 'the migrations before it stay applied');
      assert.ok(!(await rowsOf(exec)).some((r) => r.migration_name === '29990101000000_broken'));

      fs.writeFileSync(path.join(dir, '29990101000000_broken', 'migration.sql'), 'CREATE TABLE "Half" ("id" INTEGER);\n');
      assert.deepEqual((await applyMigrations(exec, dir)).applied, ['29990101000000_broken']);
      await assertBookkeeping(exec, dir);
    } finally {
      await db.close();
    }
  });

  test('refuses to start after a migration failed earlier (as `prisma migrate deploy` leaves it)', async () => {
    const db = new PGlite();
    try {
      const exec = pgliteExecutor(db);
      await applyMigrations(exec, MIGRATIONS);
      await exec.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, started_at, applied_steps_count)
         VALUES ($1, $2, $3, $4, now(), 0)`,
        ['00000000-0000-4000-8000-000000000001', '0'.repeat(64), '29990101000000_halfway', 'ERROR: boom'],
      );
      const err = await expectMigrationError(applyMigrations(exec, MIGRATIONS), 'FAILED_EARLIER');
      assert.deepEqual(err.migrations, ['29990101000000_halfway']);
      assert.match(err.message, /migrate resolve/);
      assert.match(err.message, /boom/);

      // Once resolved as rolled back (what `prisma migrate resolve --rolled-back` writes), it is
      // ignored; the database then still knows a migration this build lacks.
      await exec.query(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1`, ['29990101000000_halfway']);
      assert.deepEqual((await applyMigrations(exec, MIGRATIONS)).applied, []);
    } finally {
      await db.close();
    }
  });

  test('refuses a database migrated by a newer build', async () => {
    const newer = copyMigrations();
    addMigration(newer, '29990101000000_future', 'CREATE TABLE "Future" ("id" INTEGER);\n');
    const db = new PGlite();
    try {
      const exec = pgliteExecutor(db);
      await applyMigrations(exec, newer);
      const err = await expectMigrationError(applyMigrations(exec, MIGRATIONS), 'UNKNOWN_MIGRATION');
      assert.deepEqual(err.migrations, ['29990101000000_future']);
    } finally {
      await db.close();
    }
  });
});

// Runs in the PostgreSQL pass of `npm test` (scripts/test.mjs sets TERN_TEST_DB=postgres).
if (onPostgres && pgBase) describe('PostgreSQL', () => {
  let name: string;
  let url: string;
  const clients: pg.Client[] = [];

  const connect = async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    clients.push(c);
    return c;
  };

  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: pgBase });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };

  before(async () => {
    name = `tern_migrate_test_${randomBytes(6).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${name}`));
    const u = new URL(pgBase!);
    u.pathname = `/${name}`;
    url = u.toString();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    if (name) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });

  /** A fresh schema in the test database, so each test starts empty. */
  const freshSchema = async (c: pg.Client) => {
    const schema = `s_${randomBytes(4).toString('hex')}`;
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.query(`SET search_path TO ${schema}`);
    return schema;
  };

  test('two appliers at once: each migration is applied exactly once', async () => {
    const dir = copyMigrations();
    // A few more migrations, one slow, so that the two runs really overlap.
    addMigration(dir, '29990101000001_slow', 'SELECT pg_sleep(0.5);\nCREATE TABLE "Slow" ("id" INTEGER);\n');
    addMigration(dir, '29990101000002_more', 'ALTER TABLE "Slow" ADD COLUMN "more" TEXT;\n');
    const [a, b] = [await connect(), await connect()];
    const schema = await freshSchema(a);
    await b.query(`SET search_path TO ${schema}`);

    const [ra, rb] = await Promise.all([applyMigrations(pgExecutor(a), dir), applyMigrations(pgExecutor(b), dir)]);
    const files = (await readMigrations(dir)).map((f) => f.name);
    assert.deepEqual([...ra.applied, ...rb.applied].sort(), [...files].sort(), 'between them, every migration once');
    assert.ok(ra.applied.length === 0 || rb.applied.length === 0, 'the one that waited found nothing to do');
    const counts = await a.query<{ migration_name: string; n: string }>(
      'SELECT migration_name, count(*) AS n FROM "_prisma_migrations" GROUP BY migration_name',
    );
    assert.equal(counts.rows.length, files.length);
    for (const r of counts.rows) assert.equal(Number(r.n), 1, r.migration_name);
    await assertBookkeeping(pgExecutor(a), dir);
  });

  test('a pool client works, and a tampered checksum is refused', async () => {
    const c = await connect();
    await freshSchema(c);
    const exec = pgExecutor(c);
    assert.ok((await applyMigrations(exec, MIGRATIONS)).applied.length >= 1);
    await exec.query(`UPDATE "_prisma_migrations" SET checksum = $1 WHERE migration_name = (SELECT min(migration_name) FROM "_prisma_migrations")`, ['f'.repeat(64)]);
    await expectMigrationError(applyMigrations(exec, MIGRATIONS), 'CHECKSUM_MISMATCH');
  });

  test('the database the runner migrated is up to date for `prisma migrate status`', async () => {
    // In the default schema (public), where the Prisma CLI looks.
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      const client = await pool.connect();
      try {
        const r = await applyMigrations(pgExecutor(client), MIGRATIONS);
        assert.ok(r.applied.length >= 1);
        assert.deepEqual((await applyMigrations(pgExecutor(client), MIGRATIONS)).applied, []);
        await assertBookkeeping(pgExecutor(client));
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
    const status = prismaCli(['migrate', 'status'], url);
    assert.equal(status.status, 0, status.out);
    assert.match(status.out, /Database schema is up to date!/);
    const deploy = prismaCli(['migrate', 'deploy'], url);
    assert.equal(deploy.status, 0, deploy.out);
    assert.match(deploy.out, /No pending migrations to apply/);
  });
});
