import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { startTestApi, ADMIN_PASSWORD, type TestApi } from '../../apps/api/test/helpers.ts';
import { SotwClient, TYPE_URL, decode, node, eventually } from '../../apps/api/test/xds-fixtures.ts';
import { writeRows } from '../../apps/api/src/telemetry/store.ts';
import { BUCKETS, type RollupRow } from '../../apps/api/src/telemetry/rows.ts';
import { freePort } from './sidecar.ts';
import { ensureWebBuiltSync, nextBin, webDir, webDistDir } from '../../scripts/web-build.ts';

// The console's browser tests: a real control plane (fresh PGlite database, ADS server), the
// production build of the console (`next start`) pointed at it, and Debian's Chromium.
//
// The suite runs on PGlite only: it exercises the console, and the database backends are covered
// by apps/api's suites (scripts/test.mjs re-runs files importing the helpers directly).

export { ADMIN_PASSWORD, eventually, type TestApi };

const repoRoot = path.resolve(import.meta.dirname, '../..');
export const artifactsDir = path.join(repoRoot, 'test-artifacts', 'console');
export const CHROMIUM = process.env.TERN_CHROMIUM ?? '/usr/bin/chromium';
/** The console's build output (next.config.ts reads the same variable). */
const distDir = webDistDir();

/**
 * Builds the console unless a build newer than every source file exists (CI builds it before the
 * tests with `npm run build:web`; locally an edit triggers a rebuild here, ~30-50 s). The rule is
 * shared with `npm start` (scripts/web-build.ts).
 */
export function ensureBuilt(): void {
  ensureWebBuiltSync(distDir);
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

/** Route configuration names in a listener: every `rds.route_config_name`, wherever its filters put it. */
function routeConfigNames(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) routeConfigNames(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'rds' && v !== null && typeof v === 'object' && typeof (v as { route_config_name?: unknown }).route_config_name === 'string') {
        out.add((v as { route_config_name: string }).route_config_name);
      } else routeConfigNames(v, out);
    }
  }
  return out;
}

/**
 * An xDS client standing in for a sidecar: subscribes to clusters and listeners and ACKs every
 * response — or NACKs clusters with `nackClusters` as the reason. Like Envoy, it also subscribes
 * to the route configurations its listeners name (RDS), so route-only changes (faults, timeouts)
 * reach it too; `rds: false` leaves them out.
 */
export function connectProxy(address: string, id: string, metadata: Record<string, string>, opts: { nackClusters?: string; rds?: boolean } = {}): SotwClient {
  const c = new SotwClient(address);
  let routes: string[] = [];
  c.call.on('data', (m: { type_url: string; nonce: string; version_info: string; resources?: { type_url: string; value: Buffer }[] }) => {
    if (opts.nackClusters && m.type_url === TYPE_URL.cluster) {
      c.send({ type_url: m.type_url, response_nonce: m.nonce, error_detail: { code: 3, message: opts.nackClusters } });
      return;
    }
    c.ack(m as Parameters<SotwClient['ack']>[0], m.type_url === TYPE_URL.route ? routes : []);
    if (m.type_url === TYPE_URL.listener && opts.rds !== false) {
      const names = new Set<string>();
      for (const r of m.resources ?? []) routeConfigNames(decode(r), names);
      const next = [...names].sort();
      if (next.join('\u0000') !== routes.join('\u0000')) {
        routes = next;
        c.send({ type_url: TYPE_URL.route, resource_names: routes });
      }
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

// ---- what every console suite sets up --------------------------------------------------------

/** The users the suites sign in as (created by seedUsers). */
export const USERS = {
  editor: { username: 'erin', password: 'editor-password-1', role: 'editor' as const },
  viewer: { username: 'victor', password: 'viewer-password-1', role: 'viewer' as const },
};

export async function seedUsers(api: TestApi, ...users: { username: string; password: string; role: string }[]): Promise<void> {
  for (const u of users) {
    const r = await api.rest('POST', '/api/v1/users', u);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
}

/**
 * A Bookinfo-like registry in namespace default: a workload per `app-version` (labels app and
 * version, and `security.istio.io/tlsMode: istio` as Istio's injector sets it on a workload with a
 * sidecar; addresses 10.0.0.1, .2…) and a service (port 9080, HTTP) per app.
 */
export async function seedServices(api: TestApi, workloads: string[] = ['reviews-v1', 'reviews-v2', 'ratings-v1', 'ratings-v2']): Promise<void> {
  const split = (w: string) => {
    const i = w.lastIndexOf('-');
    return { app: w.slice(0, i), version: w.slice(i + 1), 'security.istio.io/tlsMode': 'istio' };
  };
  for (const name of [...new Set(workloads.map((w) => split(w).app))]) {
    const r = await api.rest('PUT', `/api/v1/registry/services/default/${name}`, { namespace: 'default', name, ports: [{ number: 9080, protocol: 'HTTP' }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  let ip = 1;
  for (const w of workloads) {
    const r = await api.rest('PUT', `/api/v1/registry/workloads/default/${w}`, { namespace: 'default', name: w, labels: split(w), addresses: [`10.0.0.${ip++}`] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
}

/** A console on `api` and a browser page (10 s default timeout); close() stops both. */
export interface ConsoleSession {
  web: Console;
  page: Page;
  close(): Promise<void>;
}

export async function openConsole(api: TestApi): Promise<ConsoleSession> {
  const web = await startConsole(api.url);
  const browser = await launchBrowser().catch(async (e: unknown) => {
    await web.close();
    throw e;
  });
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(10_000);
  return {
    web,
    page,
    async close() {
      await browser.close();
      await web.close();
    },
  };
}

/** A full-page screenshot at test-artifacts/console/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(artifactsDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactsDir, `${name}.png`), fullPage: true });
}

/** Signs in through the login form (signed out first), as a person would: Enter submits. */
export async function signIn(page: Page, webUrl: string, user: { username: string; password: string }): Promise<void> {
  await page.context().clearCookies();
  await page.goto(`${webUrl}/login`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByLabel('Password').press('Enter');
  await page.getByTestId('role').waitFor();
}

/** A stored resource in namespace default through REST (`vs`, `dr`: the API's short kind names). */
export async function getResource(api: TestApi, kind: 'vs' | 'dr', name: string): Promise<{ status: number; body: any }> {
  return api.rest('GET', `/api/v1/resources/${kind}/default/${name}`);
}

/** The control plane's current revision. */
export async function revision(api: TestApi): Promise<string> {
  return (await api.rest('GET', '/api/v1/changes?since=0&limit=1000')).body.revision;
}

/**
 * Clicks a wizard's Save once it is enabled, waits for "saved" and for the convergence panel to
 * reach `expected`; returns the panel. A timeout says what the panel showed instead.
 */
export async function saveAndConverge(page: Page, expected: 'converged' | 'nacked' = 'converged'): Promise<Locator> {
  const save = page.getByRole('button', { name: 'Save' });
  await eventually(async () => !(await save.isDisabled()), 15_000, 'Save enabled');
  await save.click();
  await page.getByTestId('saved').waitFor();
  const conv = page.getByTestId('convergence');
  await eventually(async () => (await conv.getAttribute('data-state')) === expected, 15_000, `convergence ${expected}`).catch(async (e: Error) => {
    throw new Error(`${e.message}: ${await conv.getAttribute('data-state')} ${await conv.textContent()}`);
  });
  return conv;
}
