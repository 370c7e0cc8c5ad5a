import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { startTestApi, ADMIN_PASSWORD, type TestApi } from '../../apps/api/test/helpers.ts';
import { SotwClient, TYPE_URL, node, eventually } from '../../apps/api/test/xds-fixtures.ts';
import { writeRows } from '../../apps/api/src/telemetry/store.ts';
import { BUCKETS, type RollupRow } from '../../apps/api/src/telemetry/rows.ts';

// The console's browser tests: a real control plane (fresh PGlite database, ADS server), the
// production build of the console (`next start`) pointed at it, and Debian's Chromium.
//
// The suite runs on PGlite only: it exercises the console, and the database backends are covered
// by apps/api's suites (scripts/test.mjs re-runs files importing the helpers directly).

export { ADMIN_PASSWORD, eventually, type TestApi };

const repoRoot = path.resolve(import.meta.dirname, '../..');
const webDir = path.join(repoRoot, 'apps/web');
const nextBin = path.join(repoRoot, 'node_modules/next/dist/bin/next');
export const artifactsDir = path.join(repoRoot, 'test-artifacts', 'console');
export const CHROMIUM = process.env.TERN_CHROMIUM ?? '/usr/bin/chromium';
/** The console's build output (next.config.ts reads the same variable). */
const distDir = path.join(webDir, process.env.TERN_WEB_DIST_DIR ?? '.next');

function newestMtime(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const e of fs.readdirSync(p)) max = Math.max(max, newestMtime(path.join(p, e)));
  return max;
}

/**
 * Builds the console unless a build newer than every source file exists (CI builds it before the
 * tests with `npm run build:web`; locally an edit triggers a rebuild here, ~30-50 s).
 */
export function ensureBuilt(): void {
  const buildId = path.join(distDir, 'BUILD_ID');
  const sources = Math.max(newestMtime(path.join(webDir, 'src')), newestMtime(path.join(webDir, 'next.config.ts')), newestMtime(path.join(webDir, 'package.json')));
  if (fs.existsSync(buildId) && fs.statSync(buildId).mtimeMs >= sources) return;
  const r = spawnSync(process.execPath, [nextBin, 'build'], { cwd: webDir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`next build failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Console {
  url: string;
  child: ChildProcess;
  log: () => string;
  close(): Promise<void>;
}

export async function startConsole(apiUrl: string): Promise<Console> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, [nextBin, 'start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: webDir,
    env: { ...process.env, TERN_API_URL: apiUrl, NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`next start exited with ${child.exitCode}: ${output}`);
      return (await fetch(`${url}/login`)).ok;
    },
    20_000,
    'the console to answer',
  );
  return {
    url,
    child,
    log: () => output,
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * An xDS client standing in for a sidecar: subscribes to clusters and listeners and ACKs every
 * response — or NACKs clusters with `nackClusters` as the reason.
 */
export function connectProxy(address: string, id: string, metadata: Record<string, string>, opts: { nackClusters?: string } = {}): SotwClient {
  const c = new SotwClient(address);
  c.call.on('data', (m: { type_url: string; nonce: string; version_info: string }) => {
    if (opts.nackClusters && m.type_url === TYPE_URL.cluster) {
      c.send({ type_url: m.type_url, response_nonce: m.nonce, error_detail: { code: 3, message: opts.nackClusters } });
    } else {
      c.ack(m as Parameters<SotwClient['ack']>[0]);
    }
  });
  c.send({ node: node(id, metadata), type_url: TYPE_URL.cluster });
  c.send({ type_url: TYPE_URL.listener });
  return c;
}

export async function startApi(): Promise<TestApi> {
  return startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
}

/**
 * Telemetry as the sidecars' reports would leave it (per-minute rollups), written the way the
 * API's own telemetry tests do: the graph is then drawn from real queries over real rows.
 */
export async function seedTelemetry(api: TestApi, edges: { src: string; dst: string; requests: number; errors?: number; mtls: boolean }[]): Promise<void> {
  const bucket = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
  const split = (w: string) => {
    const [app, version] = w.split('-') as [string, string];
    return { app, version };
  };
  const rows: RollupRow[] = edges.map((e) => {
    const d = new Array<number>(BUCKETS).fill(0);
    d[4] = e.requests;
    return {
      bucket,
      srcWorkload: e.src, srcNamespace: 'default', srcPrincipal: 'unknown', srcApp: split(e.src).app, srcVersion: split(e.src).version,
      dstService: `${split(e.dst).app}.default.svc.cluster.local`, dstWorkload: e.dst, dstNamespace: 'default', dstApp: split(e.dst).app, dstVersion: split(e.dst).version,
      codeClass: e.errors ? '5xx' : '2xx', protocol: 'http', mtls: e.mtls,
      requests: e.requests, errors: e.errors ?? 0, bytesIn: 100 * e.requests, bytesOut: 1000 * e.requests, durationSumMs: 20 * e.requests, d,
    };
  });
  await writeRows(api.app.db.prisma, 'TelemetryMinute', rows);
}
