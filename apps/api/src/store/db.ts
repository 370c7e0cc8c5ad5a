import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
// PGlite is imported only when used: loading its module alone costs ~38 MB of RSS, which a
// control plane on PostgreSQL should not pay.
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import { applyMigrations, pgExecutor, pgliteExecutor } from './migrate.ts';
import { acquireDirLock } from './dir-lock.mjs';
import { logger } from '../log.ts';

/** The repository's prisma/migrations, found upwards from this module (a source file or the bundle in apps/api/dist). */
export const MIGRATIONS_DIR = findUp(path.dirname(fileURLToPath(import.meta.url)), path.join('prisma', 'migrations'));

/** Not found: the nearest candidate, so that reading it fails with the migrator's own message. */
function findUp(from: string, rel: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, rel);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return path.join(from, rel);
  }
}

export type Notify = (payload: string) => void;

export interface Database {
  kind: 'pglite' | 'postgres';
  /** Where the data lives, safe to print (no password). */
  location: string;
  prisma: PrismaClient;
  /**
   * Subscribes to a NOTIFY channel. `onResync` runs after the listening connection was lost and
   * re-established: notifications may have been missed, so the subscriber must catch up itself.
   */
  listen(channel: string, onMessage: Notify, onResync?: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface OpenOptions {
  databaseUrl?: string | undefined;
  /** PGlite data directory; `memory://` for a throwaway database (tests). */
  dataDir?: string;
}

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl) : openPglite(opts.dataDir ?? '.tern');
}

async function openPglite(dataDir: string): Promise<Database> {
  const inMemory = dataDir.startsWith('memory://');
  const dir = inMemory ? undefined : path.join(dataDir, 'pgdata');
  if (dir) fs.mkdirSync(dir, { recursive: true });
  const lock = dir ? acquireDirLock(dir) : undefined;
  const [{ PGlite }, { PrismaPGlite }] = await Promise.all([import('@electric-sql/pglite'), import('pglite-prisma-adapter')]);
  const pglite = dir ? new PGlite(dir) : new PGlite();
  try {
    await pglite.waitReady;
    await applyMigrations(pgliteExecutor(pglite), MIGRATIONS_DIR);
  } catch (err) {
    await pglite.close().catch(() => {});
    lock?.release();
    throw err;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  return {
    kind: 'pglite',
    location: dir ?? 'memory',
    prisma,
    // PGlite delivers NOTIFY in-process on commit; there is no connection to lose.
    async listen(channel, onMessage) {
      const unsub = await pglite.listen(channel, onMessage);
      return async () => unsub();
    },
    async close() {
      await prisma.$disconnect();
      await pglite.close();
      lock?.release();
    },
  };
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable)';
  }
}

async function openPostgres(url: string): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: Number(process.env.TERN_DB_POOL_SIZE ?? 10),
    // Fail fast when the database is away so callers get a 503 rather than a hung request.
    connectionTimeoutMillis: Number(process.env.TERN_DB_CONNECT_TIMEOUT_MS ?? 3000),
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection must not take the process down.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'database connection lost'));
  const client = await pool.connect();
  try {
    await applyMigrations(pgExecutor(client), MIGRATIONS_DIR);
  } finally {
    client.release();
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const listeners = new Set<{ stop: () => Promise<void> }>();
  return {
    kind: 'postgres',
    location: redactUrl(url),
    prisma,
    async listen(channel, onMessage, onResync) {
      const l = listenWithReconnect(url, channel, onMessage, onResync);
      listeners.add(l);
      await l.ready;
      return async () => {
        listeners.delete(l);
        await l.stop();
      };
    },
    async close() {
      await Promise.all([...listeners].map((l) => l.stop()));
      await prisma.$disconnect();
      await pool.end().catch(() => {});
    },
  };
}

/** One dedicated connection per channel; LISTEN does not survive a pooled connection. */
function listenWithReconnect(url: string, channel: string, onMessage: Notify, onResync?: () => void) {
  let stopped = false;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let attempt = 0;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));

  const connect = async (): Promise<void> => {
    if (stopped) return;
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    c.on('notification', (n) => {
      if (n.channel === channel && n.payload !== undefined) onMessage(n.payload);
    });
    c.on('error', () => retry(c));
    c.on('end', () => retry(c));
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      client = c;
      const wasReconnect = attempt > 0;
      attempt = 0;
      resolveReady();
      if (wasReconnect) onResync?.();
    } catch (err) {
      logger.warn({ err: (err as Error).message, channel }, 'change feed: cannot listen, retrying');
      retry(c);
    }
  };
  const retry = (c: pg.Client) => {
    if (stopped || timer) return;
    if (client === c) client = undefined;
    c.removeAllListeners('end');
    c.end().catch(() => {});
    attempt++;
    const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delay);
    timer.unref();
  };
  void connect();
  return {
    ready,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      resolveReady();
      await client?.end().catch(() => {});
    },
  };
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', 'P1001', 'P1002', 'P1017',
]);
const UNAVAILABLE_MESSAGES = [
  'Connection terminated', 'connection timeout', 'timeout exceeded when trying to connect',
  'Client has encountered a connection error', 'Cannot use a pool after calling end',
  'DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'the database system is',
];

/** True when an error means the database could not be reached, as opposed to a bad query. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 8; depth++) {
    const o = e as { code?: unknown; message?: unknown; cause?: unknown; kind?: unknown; originalCode?: unknown };
    for (const c of [o.code, o.originalCode, o.kind]) if (typeof c === 'string' && UNAVAILABLE_CODES.has(c)) return true;
    if (typeof o.message === 'string' && UNAVAILABLE_MESSAGES.some((m) => (o.message as string).includes(m))) return true;
    if (typeof o.kind === 'string' && /Connection|Socket|NotReachable/i.test(o.kind)) return true;
    e = o.cause;
  }
  return false;
}
