import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config.ts';
import { createApp, type App } from '../src/app.ts';
import { startHttpServer } from '../src/http/server.ts';

// Tests run on PGlite, or on a real PostgreSQL when TERN_TEST_DB=postgres (scripts/test.mjs
// sets it when TERN_TEST_DATABASE_URL is given): each test gets its own fresh database.

export const onPostgres = process.env.TERN_TEST_DB === 'postgres';
export const ADMIN_PASSWORD = 'correct-horse-battery-staple';

export interface TestDatabase {
  databaseUrl?: string;
  dataDir: string;
  drop(): Promise<void>;
}

export async function openTestDatabase(): Promise<TestDatabase> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-test-'));
  if (!onPostgres) {
    return { dataDir, drop: async () => fs.rmSync(dataDir, { recursive: true, force: true }) };
  }
  const base = process.env.TERN_TEST_DATABASE_URL;
  if (!base) throw new Error('TERN_TEST_DB=postgres needs TERN_TEST_DATABASE_URL');
  const scratch = await createScratchDatabase(base, 'tern_test');
  return {
    databaseUrl: scratch.url,
    dataDir,
    async drop() {
      await scratch.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A new, empty database on the server `serverUrl` points at (tests and benchmarks). */
export async function createScratchDatabase(serverUrl: string, prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

export interface TestApi {
  url: string;
  app: App;
  db: TestDatabase;
  /** An admin API token. */
  token: string;
  /** Calls the REST API; returns status and parsed body. */
  rest(method: string, p: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string>; raw?: string }): Promise<{ status: number; body: any; headers: Headers }>;
  makeToken(role: 'viewer' | 'editor' | 'admin'): Promise<string>;
  /** host:port of the ADS server, when started with `{ xds: … }`. */
  xdsAddress: string | undefined;
  close(): Promise<void>;
}

export interface TestApiOptions {
  /** Start the ADS server (with the real compiler) on 127.0.0.1, port 0. */
  xds?: true;
}

export async function startTestApi(overrides: Partial<Config> = {}, db?: TestDatabase, options: TestApiOptions = {}): Promise<TestApi> {
  const database = db ?? (await openTestDatabase());
  const config = {
    ...loadConfig({}),
    dataDir: database.dataDir,
    databaseUrl: database.databaseUrl,
    apiPort: 0,
    // Several test APIs may share one process (and database): each is its own replica.
    replicaId: `test-${randomBytes(4).toString('hex')}`,
    ...overrides,
  };
  const app = await createApp(config);
  await app.auth.ensureAdmin(ADMIN_PASSWORD);
  const server = await startHttpServer(app, '127.0.0.1', 0);
  const xdsAddress = options.xds ? await app.xds.start('127.0.0.1', 0) : undefined;

  const rest: TestApi['rest'] = async (method, p, body, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    const tok = opts.token === undefined ? token : opts.token;
    if (tok) headers.authorization = `Bearer ${tok}`;
    let payload: string | undefined = opts.raw;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${server.url}${p}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, body: parsed, headers: res.headers };
  };

  const login = await fetch(`${server.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  const session = ((await login.json()) as { sessionToken: string }).sessionToken;
  let token = '';
  const makeToken = async (role: 'viewer' | 'editor' | 'admin') => {
    const r = await rest('POST', '/api/v1/tokens', { name: `test-${role}-${randomBytes(3).toString('hex')}`, role }, { token: session });
    if (r.status !== 200) throw new Error(`token creation failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.token as string;
  };
  token = await makeToken('admin');

  return {
    url: server.url,
    app,
    db: database,
    token,
    rest,
    makeToken,
    xdsAddress,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await app.close();
      if (!db) await database.drop();
    },
  };
}

export const fixture = (name: string) => fs.readFileSync(path.join(import.meta.dirname, 'fixtures', name), 'utf8');
