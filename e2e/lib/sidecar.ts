/**
 * A real `tern-proxy` process bootstrapped to a control plane, as a user starts one: the
 * bootstrap file (Envoy's shape: node metadata, admin, ADS over the static `xds` cluster) and the
 * process, ready once its admin answers /ready and the control plane's listeners are bound.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { JsonObject } from '@tern/xds';
// The bootstrap file is the demo's (one shape for every local-mode sidecar).
import { sidecarBootstrap } from '../../demo/lib/sidecar.ts';

const root = path.resolve(import.meta.dirname, '../..');

export interface Sidecar {
  process: ChildProcess;
  adminPort: number;
  /** The proxy's last stderr output (for failure messages). */
  stderr(): string;
  stop(): Promise<void>;
}

/** One HTTP/1.1 request on a fresh connection; the body as text. */
export function httpGet(port: number, urlPath: string, headers: Record<string, string> = {}, host = '127.0.0.1'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: urlPath, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An app on loopback (or `host`): its server (to close) and port. */
export async function startApp(handler: http.RequestListener, host = '127.0.0.1', port = 0): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(port, host, () => r()));
  return { server, port: (server.address() as net.AddressInfo).port };
}

export { freePort, freePortBlock, freePortOutside } from '../../apps/api/test/ports.ts';

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts the sidecar and waits until it is ready with the listener named `waitForListener` (from
 * the control plane) bound.
 */
export async function startSidecar(o: { id: string; metadata: JsonObject; xdsAddress: string; adminPort: number; waitForListener: string; spawn?: SpawnOptions; env?: Record<string, string>; args?: string[] }): Promise<Sidecar> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-sidecar-'));
  const file = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify(sidecarBootstrap(o)));
  fs.chmodSync(dir, 0o755);
  const entry = process.env.TERN_E2E_PROXY_BUNDLE ? [process.env.TERN_E2E_PROXY_BUNDLE] : ['--import', 'tsx', 'apps/proxy/src/main.ts'];
  const child = spawn(process.execPath, [...entry, '--bootstrap', file, '--stats-port', 'off', ...(o.args ?? [])], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TERN_LOG_LEVEL: 'warn', ...o.env },
    ...o.spawn,
  });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(async () => (await httpGet(o.adminPort, '/ready')).status === 200, 20_000, 'proxy ready');
    // Bound, not merely known: a listener that failed (its port taken, say) is listed as FAILED.
    await until(async () => {
      const l = JSON.parse((await httpGet(o.adminPort, '/listeners?format=json')).body) as { listener_statuses: { name: string }[]; failed: Record<string, string> };
      return l.failed[o.waitForListener] === undefined && l.listener_statuses.some((x) => x.name === o.waitForListener);
    }, 10_000, `listener ${o.waitForListener} bound`);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}; proxy stderr: ${err}`);
  }
  return { process: child, adminPort: o.adminPort, stderr: () => err, stop };
}

/** A single-use join token (1 h) for a workload identity, as an admin creates one through the API. */
export async function joinToken(api: { rest(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> }, namespace: string, serviceAccount: string): Promise<string> {
  const r = await api.rest('POST', '/api/v1/ca/join-tokens', { namespace, serviceAccount, maxUses: 1, ttlSeconds: 3600 });
  if (r.status !== 200) throw new Error(`join token for ${namespace}/${serviceAccount}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

type RestApi = { rest(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> };

/**
 * Registers a workload in the registry, labelled as running a Tern sidecar unless `sidecar: false`
 * (Istio's `security.istio.io/tlsMode: istio`: auto mTLS sends only such workloads mutual TLS).
 */
export async function registerWorkload(api: RestApi, w: { namespace?: string; name: string; serviceAccount: string; labels: Record<string, string>; ports?: Record<string, number>; sidecar?: boolean }): Promise<void> {
  const namespace = w.namespace ?? 'default';
  const labels = w.sidecar === false ? w.labels : { ...w.labels, 'security.istio.io/tlsMode': 'istio' };
  const r = await api.rest('PUT', `/api/v1/registry/workloads/${namespace}/${w.name}`, { namespace, name: w.name, serviceAccount: w.serviceAccount, labels, addresses: ['127.0.0.1'], ...(w.ports ? { ports: w.ports } : {}) });
  if (r.status !== 200) throw new Error(`workload ${namespace}/${w.name}: ${r.status} ${JSON.stringify(r.body)}`);
}

/** A namespace-wide STRICT PeerAuthentication (`default` in `namespace`), applied through the API. */
export async function strictMtls(api: RestApi, namespace = 'default'): Promise<void> {
  const r = await api.rest('POST', '/api/v1/apply', { yaml: `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: ${namespace} }\nspec:\n  mtls: { mode: STRICT }\n` });
  if (r.status !== 200) throw new Error(`STRICT PeerAuthentication in ${namespace}: ${r.status} ${JSON.stringify(r.body)}`);
}
