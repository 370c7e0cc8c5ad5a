#!/usr/bin/env node
// Prisma's "schema-engine binary", served from the WebAssembly build of the same engine.
//
// The Prisma CLI runs migrations through a native `schema-engine` executable that it downloads on
// install from a host these machines cannot reach. scripts/prisma.mjs points the CLI at
// scripts/schema-engine (PRISMA_SCHEMA_ENGINE_BINARY), which execs this file. We speak the same
// protocol as the native binary and forward every call to `@prisma/schema-engine-wasm` (pinned to
// the engine hash of the installed CLI), which talks to the database through a Prisma driver
// adapter instead of its own drivers:
//
//   postgres://... | postgresql://...   real PostgreSQL through @prisma/adapter-pg
//   pglite:///abs/dir | pglite:rel/dir   a PGlite data directory (relative: to the repository root,
//                                        where scripts/prisma.mjs runs the CLI)
//   file:/abs/dir | file:rel/dir         same as pglite:
//   pglite:memory                        a throwaway in-memory PGlite
//
// A PGlite directory that holds `pgdata/` (the control plane's TERN_DATA_DIR layout) is taken to
// mean that `pgdata/`, so `pglite:./.tern` works as well as `pglite:./.tern/pgdata`.
//
// The protocol, as the CLI (node_modules/prisma/build/cli.js) uses it:
//   schema-engine --version                              prints "schema-engine-cli <hash>"
//   schema-engine --datasource JSON cli <command>        one-shot: can-connect-to-database,
//                                                        create-database, drop-database; an error is
//                                                        JSON log lines on stderr (after one line)
//   schema-engine [--datamodels FILE]... [--datasource JSON] [--enabled-preview-features LIST]
//                                                        JSON-RPC 2.0, one message per line, on
//                                                        stdin/stdout; logs as JSON lines on stderr
// See docs/database.md.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { acquireDirLock, DirLockedError } from '../apps/api/src/store/dir-lock.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The database drivers are the control plane's own (apps/api), so the CLI and the server open a
// PGlite directory with the same PGlite (and so the same PostgreSQL major version).
const apiRequire = createRequire(path.join(root, 'apps', 'api', 'package.json'));
const rootRequire = createRequire(path.join(root, 'package.json'));

const imp = (req, name) => import(pathToFileURL(req.resolve(name)).href);

// ---------------------------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
  const out = { datamodels: [], datasource: undefined, previewFeatures: [], cli: undefined, version: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--version' || a === '-V') out.version = true;
    else if (a === '--datamodels' || a === '-d') out.datamodels.push(next());
    else if (a === '--datasource') out.datasource = JSON.parse(next());
    else if (a === '--enabled-preview-features') out.previewFeatures = next().split(',').filter(Boolean);
    else if (a === '--extension-types') next(); // no extensions on PostgreSQL here
    else if (a === 'cli') {
      out.cli = argv[++i];
      break;
    } else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Logging: the CLI reads stderr as JSON lines shaped like the native engine's tracing output.

function logLine(level, message, fields = {}) {
  process.stderr.write(
    JSON.stringify({ timestamp: new Date().toISOString(), level, fields: { message, ...fields }, target: 'schema_engine::logger' }) + '\n',
  );
}

// ---------------------------------------------------------------------------------------------
// The WebAssembly engine. Its package entry imports the .wasm as an ES module, which Node 20 only
// does behind --experimental-wasm-modules, so we instantiate it by hand with the wasm-bindgen glue.

let wasmRuntime;
async function loadWasm() {
  if (wasmRuntime) return wasmRuntime;
  const gluePath = rootRequire.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
  const runtime = await import(pathToFileURL(gluePath).href);
  const bytes = fs.readFileSync(gluePath.replace(/\.js$/, '.wasm'));
  const { instance } = await WebAssembly.instantiate(bytes, { './schema_engine_bg.js': runtime });
  runtime.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  wasmRuntime = runtime;
  return runtime;
}

function engineHash() {
  try {
    return rootRequire('@prisma/engines-version/package.json').prisma.enginesVersion;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------
// Targets: what a datasource URL means, and how to reach it.

function parseTarget(url) {
  if (typeof url !== 'string' || url === '') throw userError('P1012', 'No datasource URL was given to the schema engine.');
  if (/^postgres(ql)?:\/\//i.test(url)) {
    // The native engine reads ?schema= itself; through the driver adapter it would be ignored and
    // the CLI would silently look at "public". The control plane only uses "public" anyway.
    const schema = new URL(url).searchParams.get('schema');
    if (schema && schema !== 'public') {
      throw userError('P1012', `?schema=${schema} is not supported by this schema engine (WebAssembly, through a driver adapter): Tern's tables live in "public".`);
    }
    return { kind: 'postgres', url };
  }
  const m = /^(pglite|file):(.*)$/i.exec(url);
  if (m) {
    let rest = m[2];
    if (/^\/\/memory\/?$/i.test(rest) || /^memory(:\/\/)?\/?$/i.test(rest)) return { kind: 'pglite', dir: undefined, url };
    rest = rest.replace(/[?#].*$/, '');
    if (rest.startsWith('//')) {
      // pglite:///abs/path (empty host) or pglite://./rel
      rest = rest.slice(2);
      if (rest.startsWith('localhost/')) rest = rest.slice('localhost'.length);
    }
    rest = decodeURIComponent(rest);
    if (!rest) throw userError('P1012', `The PGlite URL "${url}" names no directory.`);
    let dir = path.resolve(process.cwd(), rest);
    if (!fs.existsSync(path.join(dir, 'PG_VERSION')) && fs.existsSync(path.join(dir, 'pgdata'))) dir = path.join(dir, 'pgdata');
    return { kind: 'pglite', dir, url };
  }
  throw userError(
    'P1013',
    `The datasource URL must start with postgres://, postgresql://, pglite: or file: (got "${url.replace(/:\/\/[^@/]*@/, '://***@')}").`,
  );
}

function userError(code, message, meta = {}) {
  const e = new Error(message);
  e.userFacing = { is_panic: false, message, meta, error_code: code };
  return e;
}

function withDatabase(url, database) {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

function databaseName(url) {
  const u = new URL(url);
  return decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres';
}

function quoteIdent(s) {
  return '"' + s.replace(/"/g, '""') + '"';
}

// Errors raised by pg and PGlite carry the SQLSTATE; the engine renders them well only when they
// come as a driver-adapter error, not as an opaque JS error.
function toAdapterError(utils, e) {
  if (utils.isDriverAdapterError(e)) return e;
  if (e && typeof e === 'object' && typeof e.code === 'string' && typeof e.message === 'string') {
    return new utils.DriverAdapterError({
      kind: 'postgres',
      code: e.code,
      severity: e.severity ?? 'ERROR',
      message: e.message,
      detail: e.detail,
      column: e.column,
      hint: e.hint,
    });
  }
  return e;
}

// pg's "char" (OID 18) and "char"[] (OID 1002) appear in the catalog queries the engine runs to
// describe a database; @prisma/adapter-pg refuses them. They are one-byte text.
const RELABEL_OIDS = new Map([
  [18, 25],
  [1002, 1009],
]);

function patchQueryable(utils, q, extra = {}) {
  const wrap = (name) => {
    if (typeof q[name] !== 'function') return;
    const orig = q[name].bind(q);
    q[name] = async (...args) => {
      try {
        return await orig(...args);
      } catch (e) {
        throw toAdapterError(utils, e);
      }
    };
  };
  if (extra.relabel && typeof q.performIO === 'function') {
    const orig = q.performIO.bind(q);
    q.performIO = async (query) => {
      const r = await orig(query);
      for (const f of r?.fields ?? []) if (RELABEL_OIDS.has(f.dataTypeID)) f.dataTypeID = RELABEL_OIDS.get(f.dataTypeID);
      return r;
    };
  }
  if (extra.executeScript) q.executeScript = extra.executeScript;
  for (const m of ['queryRaw', 'executeRaw', 'executeScript', 'commit', 'rollback']) wrap(m);
  if (typeof q.startTransaction === 'function') {
    const orig = q.startTransaction.bind(q);
    q.startTransaction = async (...args) => {
      try {
        return patchQueryable(utils, await orig(...args), { relabel: extra.relabel });
      } catch (e) {
        throw toAdapterError(utils, e);
      }
    };
  }
  return q;
}

async function driverUtils() {
  // The binder must come from the same copy as the adapter's DriverAdapterError class.
  const adapterPgRequire = createRequire(apiRequire.resolve('@prisma/adapter-pg'));
  return imp(adapterPgRequire, '@prisma/driver-adapter-utils');
}

/** A migration-aware driver adapter factory for the target, plus a way to let it go. */
async function openTarget(target, shadowUrl) {
  const utils = await driverUtils();
  if (target.kind === 'postgres') return openPostgresTarget(utils, target, shadowUrl);
  return openPgliteTarget(utils, target);
}

async function openPostgresTarget(utils, target, shadowUrl) {
  const { PrismaPg } = await imp(apiRequire, '@prisma/adapter-pg');
  const adapters = [];
  // One connection, as the native engine has: the engine's advisory lock and the migration that
  // follows it must run on the same session.
  const factoryFor = (url) => new PrismaPg({ connectionString: url, max: 1, connectionTimeoutMillis: 60_000 });
  const adapt = async (url) => {
    const adapter = await factoryFor(url).connect();
    adapters.push(adapter);
    return patchQueryable(utils, adapter, {
      relabel: true,
      // adapter-pg splits a script on ';', which breaks dollar-quoted bodies and string literals,
      // and loses the all-or-nothing of one multi-statement simple query. Send it whole.
      async executeScript(script) {
        try {
          await adapter.client.query(script);
        } catch (e) {
          adapter.onError(e);
        }
      },
    });
  };
  const factory = {
    provider: 'postgres',
    adapterName: '@prisma/adapter-pg',
    connect: () => adapt(target.url),
    async connectToShadowDb() {
      if (shadowUrl) {
        // A configured shadow database is emptied before each use, as the native engine does
        // (which is why Prisma says never to point it at a database you care about).
        const shadow = await adapt(shadowUrl);
        await shadow.executeScript('DROP SCHEMA IF EXISTS "public" CASCADE; CREATE SCHEMA "public";');
        return shadow;
      }
      // A temporary database next to the main one, dropped when the engine lets it go. (adapter-pg's
      // own version reconnects with `database` overridden, which a connection string beats.)
      const main = await adapt(target.url);
      const name = `prisma_migrate_shadow_db_${randomUUID()}`;
      await main.executeScript(`CREATE DATABASE ${quoteIdent(name)}`);
      const shadow = await adapt(withDatabase(target.url, name));
      const dispose = shadow.dispose.bind(shadow);
      shadow.dispose = async () => {
        await dispose();
        await main.executeScript(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`).catch(() => {});
        await main.dispose();
      };
      return shadow;
    },
  };
  return {
    factory,
    async close() {
      // (A shadow database's adapters may be disposed already; a second end() only throws.)
      await Promise.all(adapters.map((a) => a.dispose().catch(() => {})));
    },
  };
}

async function openPglite(dir) {
  const { PGlite } = await imp(apiRequire, '@electric-sql/pglite');
  if (dir) fs.mkdirSync(dir, { recursive: true });
  const db = dir ? new PGlite(dir) : new PGlite();
  await db.waitReady;
  return db;
}

async function openPgliteTarget(utils, target) {
  const { PrismaPGlite } = await imp(apiRequire, 'pglite-prisma-adapter');
  let lock;
  try {
    // Wait a little for another CLI run that is still closing the directory.
    lock = target.dir ? acquireDirLock(target.dir, { waitMs: 15_000 }) : undefined;
  } catch (e) {
    if (e instanceof DirLockedError) throw userError('P1001', e.message);
    throw e;
  }
  const open = [];
  let main;
  const adapt = async (db) => {
    const adapter = await new PrismaPGlite(db).connect();
    return patchQueryable(utils, adapter, {
      // pglite-prisma-adapter does not await the script, so a failing migration would surface as an
      // unhandled rejection instead of an error the engine can record.
      async executeScript(script) {
        await db.exec(script);
      },
    });
  };
  const factory = {
    provider: 'postgres',
    adapterName: 'pglite-prisma-adapter',
    async connect() {
      main ??= openPglite(target.dir).then((db) => (open.push(db), db));
      return adapt(await main);
    },
    async connectToShadowDb() {
      // A fresh in-memory PGlite of the same version (the adapter's own would use whichever PGlite
      // it resolves, possibly an older PostgreSQL).
      const db = await openPglite(undefined);
      const adapter = await adapt(db);
      adapter.dispose = async () => {
        await db.close().catch(() => {});
      };
      return adapter;
    },
  };
  return {
    factory,
    async close() {
      for (const db of open) {
        // A checkpoint first, so the directory is clean even if we are killed while closing.
        await db.exec('CHECKPOINT').catch(() => {});
        await db.close().catch(() => {});
      }
      lock?.release();
    },
    async checkpoint() {
      if (main) await (await main).exec('CHECKPOINT').catch(() => {});
    },
  };
}

async function createEngine(handle, datamodels, { quiet = false } = {}) {
  const runtime = await loadWasm();
  const utils = await driverUtils();
  return runtime.SchemaEngine.new(
    { datamodels: datamodels?.length ? datamodels : undefined },
    (log) => (quiet ? undefined : forwardEngineLog(log)),
    utils.bindMigrationAwareSqlAdapterFactory(handle.factory),
  );
}

/**
 * The WebAssembly schema engine on a database given by URL (see the top of this file), for scripts
 * that drive it directly (scripts/db-new-migration.mjs). `pglite:memory` needs no database at all.
 * `datamodels` is a list of [path, content]; `quiet` drops the engine's log lines (else on stderr).
 * Call close() when done: it frees the engine and closes the database.
 */
export async function openEngine(url, { datamodels = [], shadowDatabaseUrl, quiet = false } = {}) {
  const handle = await openTarget(parseTarget(url), shadowDatabaseUrl);
  let engine;
  try {
    engine = await createEngine(handle, datamodels, { quiet });
  } catch (e) {
    await handle.close().catch(() => {});
    throw e;
  }
  return {
    engine,
    async close() {
      try {
        engine.free();
      } catch {}
      await handle.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One-shot `cli` commands.

async function runCli(command, datasource) {
  const target = parseTarget(datasource?.url);
  if (command === 'can-connect-to-database') {
    if (target.kind === 'pglite') return; // a directory is created on first use
    const pg = (await imp(apiRequire, 'pg')).default;
    const c = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: 10_000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
    } finally {
      await c.end().catch(() => {});
    }
    return;
  }
  if (command === 'create-database') {
    await createDatabase(target);
    return;
  }
  if (command === 'drop-database') {
    if (target.kind === 'pglite') {
      if (target.dir) fs.rmSync(target.dir, { recursive: true, force: true });
      return;
    }
    const pg = (await imp(apiRequire, 'pg')).default;
    const name = databaseName(target.url);
    const c = new pg.Client({ connectionString: withDatabase(target.url, 'postgres'), connectionTimeoutMillis: 10_000 });
    try {
      await c.connect();
      await c.query(`DROP DATABASE ${quoteIdent(name)}`);
    } finally {
      await c.end().catch(() => {});
    }
    return;
  }
  throw new Error(`unknown cli command ${command}`);
}

async function createDatabase(target) {
  if (target.kind === 'pglite') {
    const db = await openPglite(target.dir);
    await db.close();
    return { databaseName: target.dir ?? 'memory' };
  }
  const pg = (await imp(apiRequire, 'pg')).default;
  const name = databaseName(target.url);
  const c = new pg.Client({ connectionString: withDatabase(target.url, 'postgres'), connectionTimeoutMillis: 10_000 });
  try {
    await c.connect();
    await c.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } catch (e) {
    if (e.code === '42P04') throw userError('P1009', `Database \`${name}\` already exists on the database server`, { database_name: name });
    throw e;
  } finally {
    await c.end().catch(() => {});
  }
  return { databaseName: name };
}

// Turns whatever a failure was into the JSON-RPC error `data` the CLI understands.
function errorData(e) {
  if (e?.userFacing) return e.userFacing;
  const msg = e instanceof Error ? e.message : String(e);
  // A trap in the engine (a Rust panic): the CLI reports it as a crash.
  if (e instanceof WebAssembly.RuntimeError) return { is_panic: true, message: msg, backtrace: e.stack ?? '' };
  // The wasm engine's user-facing errors carry Prisma's error code (P3011, ...) in `code`.
  if (e && typeof e.code === 'string' && /^P\d{4}$/.test(e.code)) return { is_panic: false, message: msg, meta: e.meta ?? {}, error_code: e.code };
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    const code = /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|EHOSTUNREACH)$/.test(e.code) ? 'P1001' : undefined;
    if (code) return { is_panic: false, message: `Can't reach database server: ${msg}`, meta: {}, error_code: code };
    if (e.code === '3D000') return { is_panic: false, message: msg, meta: {}, error_code: 'P1003' };
    if (e.code === '28P01') return { is_panic: false, message: msg, meta: {}, error_code: 'P1000' };
  }
  return { is_panic: false, message: msg, meta: {} };
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC server.

async function serve(args) {
  const datasource = args.datasource;
  const datamodels = args.datamodels.map((f) => [f, fs.readFileSync(f, 'utf8')]);
  let target;
  let handle;
  let engine;
  let enginePromise;

  const newEngine = (h) => createEngine(h, datamodels);
  const getEngine = () =>
    (enginePromise ??= (async () => {
      target = parseTarget(datasource?.url);
      handle = await openTarget(target, datasource?.shadowDatabaseUrl);
      engine = await newEngine(handle);
      return engine;
    })());
  // The engine asks its database for its version before anything else, even for a diff between a
  // schema file and a migrations folder that needs no database at all. Such a diff runs on a
  // throwaway in-memory PGlite (which is also its shadow database), so it works offline whatever
  // DATABASE_URL says.
  let offline;
  const getOfflineEngine = () =>
    (offline ??= (async () => {
      const h = await openTarget({ kind: 'pglite', dir: undefined, url: 'pglite:memory' });
      return { handle: h, engine: await newEngine(h) };
    })());
  const needsLiveDatabase = (p) => [p?.from, p?.to].some((t) => t && (t.tag === 'url' || t.tag === 'schemaDatasource'));

  const methods = {
    async getDatabaseVersion(params) {
      return (await getEngine()).version(params ?? null);
    },
    async createDatabase(params) {
      const url = params?.datasource?.tag === 'ConnectionString' ? params.datasource.url : datasource?.url;
      return createDatabase(parseTarget(url));
    },
    async debugPanic() {
      (await getEngine()).debugPanic();
      return {};
    },
    async getDatabaseDescription() {
      throw userError('P1012', 'getDatabaseDescription is not available in the WebAssembly schema engine.');
    },
  };
  const passthrough = new Set([
    'applyMigrations', 'createMigration', 'dbExecute', 'devDiagnostic', 'diagnoseMigrationHistory',
    'ensureConnectionValidity', 'evaluateDataLoss', 'introspect', 'diff', 'markMigrationApplied',
    'markMigrationRolledBack', 'reset', 'schemaPush', 'introspectSql',
  ]);

  const send = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');
  // Requests from us to the CLI (only `print`), answered on stdin.
  let nextId = 1;
  const pending = new Map();
  const ask = (method, params) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      send({ jsonrpc: '2.0', id, method, params });
    });

  async function handleRequest(req) {
    const { id, method, params } = req;
    try {
      let result;
      if (methods[method]) result = await methods[method](params);
      else if (passthrough.has(method)) {
        const e = method === 'diff' && !needsLiveDatabase(params) ? (await getOfflineEngine()).engine : await getEngine();
        try {
          result = await e[method](params ?? {});
        } catch (err) {
          // This engine build renders evaluateDataLoss/createMigration from the development database
          // and only after a devDiagnostic that saw it up to date. `migrate dev` runs devDiagnostic
          // before it applies pending migrations, so on a database that was behind, run it again
          // (now that they are applied) and retry once.
          if (!((method === 'evaluateDataLoss' || method === 'createMigration') && /shadow DB must be provided/.test(String(err?.message)))) throw err;
          await e.devDiagnostic({ migrationsList: params.migrationsList, filters: params.filters ?? { externalTables: [], externalEnums: [] } });
          result = await e[method](params);
        }
        // The native engine prints a diff through a `print` request to the CLI, which writes it to its
        // own stdout (or to --output); the `stdout` field of the result is not read.
        if (method === 'diff' && typeof result?.stdout === 'string') {
          await ask('print', { content: result.stdout.replace(/\n$/, '') });
          result = { ...result, stdout: null };
        }
      } else {
        send({ jsonrpc: '2.0', id, error: { code: -32601, message: `Method not found: ${method}` } });
        return;
      }
      await handle?.checkpoint?.();
      send({ jsonrpc: '2.0', id, result: result ?? {} });
    } catch (e) {
      const data = errorData(e);
      if (data.error_code) logLine('ERROR', data.message, { error_code: data.error_code });
      else logLine('ERROR', data.message);
      send({ jsonrpc: '2.0', id, error: { code: 4466, message: 'An error happened. Check the data field for details.', data } });
    }
  }

  let chain = Promise.resolve();
  let closing;
  const shutdown = (code) =>
    (closing ??= (async () => {
      await chain.catch(() => {});
      try {
        engine?.free();
      } catch {}
      await handle?.close().catch(() => {});
      if (offline) {
        const o = await offline.catch(() => undefined);
        try {
          o?.engine.free();
        } catch {}
        await o?.handle.close().catch(() => {});
      }
      process.exit(code);
    })());

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let req;
    try {
      req = JSON.parse(line);
    } catch {
      send({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
      return;
    }
    if (req.method === undefined) {
      // A response to one of our requests.
      const p = pending.get(req.id);
      if (p) {
        pending.delete(req.id);
        if (req.error) p.reject(new Error(req.error.message ?? 'error from the CLI'));
        else p.resolve(req.result);
      }
      return;
    }
    chain = chain.then(() => handleRequest(req));
  });
  rl.on('close', () => void shutdown(0));
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => void shutdown(0));
}

function forwardEngineLog(log) {
  if (typeof log !== 'string') return;
  for (const line of log.split('\n')) {
    if (!line.trim()) continue;
    try {
      JSON.parse(line);
      process.stderr.write(line + '\n');
    } catch {
      logLine('INFO', line);
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
  if (args.version) {
    process.stdout.write(`schema-engine-cli ${engineHash()}\n`);
    return;
  }
  if (args.cli) {
    try {
      await runCli(args.cli, args.datasource);
      process.exit(0);
    } catch (e) {
      const data = errorData(e);
      // The CLI drops the first stderr line and parses the rest as JSON.
      process.stderr.write('schema-engine (wasm) error\n');
      logLine('ERROR', data.message, data.error_code ? { error_code: data.error_code } : {});
      process.exit(1);
    }
  }
  await serve(args);
}

// Run as the engine binary; imported (by scripts/db-new-migration.mjs), only export.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
