import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createApp, type App } from '../../apps/api/src/app.ts';
import { loadConfig } from '../../apps/api/src/config.ts';
import { createScratchDatabase } from '../../apps/api/test/helpers.ts';

// A throwaway database per backend: PGlite in a temp directory, or a fresh database on the
// PostgreSQL server named by the URL (created here, dropped afterwards).

export type BackendKind = 'pglite' | 'postgres';

export interface BenchBackend {
  kind: BackendKind;
  app: App;
  /** Another control-plane replica on the same database (PostgreSQL only; PGlite is single-process). */
  openReplica(): Promise<App>;
  close(): Promise<void>;
}

export async function openBackend(kind: BackendKind, serverUrl?: string): Promise<BenchBackend> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-bench-'));
  let databaseUrl: string | undefined;
  let drop = async () => {};
  if (kind === 'postgres') {
    if (!serverUrl) throw new Error('postgres backend needs a server URL');
    const scratch = await createScratchDatabase(serverUrl, 'tern_bench');
    databaseUrl = scratch.url;
    drop = scratch.drop;
  }
  const config = { ...loadConfig({}), dataDir, databaseUrl, apiPort: 0 };
  const replicas: App[] = [];
  let app: App;
  try {
    app = await createApp(config);
  } catch (err) {
    await drop().catch(() => {});
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    kind,
    app,
    async openReplica() {
      if (kind !== 'postgres') throw new Error('replicas need PostgreSQL');
      const r = await createApp(config);
      replicas.push(r);
      return r;
    },
    async close() {
      try {
        for (const r of replicas) await r.close();
        await app.close();
      } finally {
        await drop();
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** True when a PostgreSQL server answers at the URL. */
export async function reachable(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}
