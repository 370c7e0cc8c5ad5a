/**
 * One `tern-proxy` process in local mode (no iptables), started as a user starts one: an Envoy
 * bootstrap file (node metadata, admin address, ADS over the static `xds` cluster), a join token in
 * its environment, readiness judged from its admin port (/ready, and the wanted listeners bound).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function sidecarBootstrap(o: { id: string; metadata: Record<string, Json>; xdsAddress: string; adminPort: number }): Record<string, Json> {
  const i = o.xdsAddress.lastIndexOf(':');
  const host = o.xdsAddress.slice(0, i);
  const port = Number(o.xdsAddress.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`xdsAddress: must be host:port, got ${JSON.stringify(o.xdsAddress)}`);
  return {
    node: { id: o.id, cluster: String(o.metadata.WORKLOAD_NAME ?? o.id), metadata: o.metadata },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } },
    dynamic_resources: {
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }] },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [{
        name: 'xds',
        // A host name (a compose service, a Kubernetes Service) is resolved by DNS, as in Istio's own
        // bootstrap; STATIC takes IP addresses only.
        type: net.isIP(host) ? 'STATIC' : 'STRICT_DNS',
        connect_timeout: '1s',
        load_assignment: { cluster_name: 'xds', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }] },
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
      }],
    },
  };
}

/** GET on a fresh connection to 127.0.0.1:port; the body as text. */
export function localGet(port: number, urlPath: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET :${port}${urlPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export async function until(check: () => Promise<boolean>, ms: number, what: string, isDead: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    if (isDead()) throw new Error(`${what}: the proxy exited`);
    try {
      if (await check()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface SidecarProcess {
  process: ChildProcess;
  pid: number;
  adminPort: number;
  /** The proxy's last stderr output (for failure messages). */
  stderr(): string;
  /** SIGTERM and wait for the exit; idempotent. */
  stop(): Promise<void>;
}

export interface SidecarOptions {
  id: string;
  metadata: Record<string, Json>;
  xdsAddress: string;
  adminPort: number;
  /** The built proxy (apps/proxy/dist/tern-proxy.mjs). */
  bundle: string;
  /** Listener names that must be bound before the sidecar counts as started. */
  listeners: string[];
  /** Wait for the workload certificate as well (the sidecar has a join token). */
  waitForCertificate: boolean;
  env?: Record<string, string>;
  drainSeconds?: number;
  timeoutMs?: number;
}

const GUARD = path.join(import.meta.dirname, 'parent-guard.mjs');

export async function startSidecarProcess(o: SidecarOptions): Promise<SidecarProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-demo-'));
  const file = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify(sidecarBootstrap(o)), { mode: 0o600 });
  // --max-semi-space-size=4 and the malloc settings: docs/proxy.md "Memory" (~20 MB less per sidecar).
  const nodeFlags = process.env.TERN_DEMO_PROXY_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? ['--max-semi-space-size=4'];
  const child = spawn(process.execPath, [...nodeFlags, '--import', GUARD, o.bundle, '--bootstrap', file, '--stats-port', 'off', '--drain-seconds', String(o.drainSeconds ?? 1)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '1048576', TERN_LOG_LEVEL: process.env.TERN_LOG_LEVEL ?? 'warn', ...o.env },
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (err = (err + d).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const dead = () => child.exitCode !== null || child.signalCode !== null;
  // The bootstrap holds no secret (the token is in the environment), but it is ours to clean up.
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  void exited.then(cleanup);
  const stop = async () => {
    if (!dead()) child.kill('SIGTERM');
    await exited;
  };
  if (child.pid === undefined) {
    await new Promise((r) => setTimeout(r, 0));
    cleanup();
    throw new Error(`sidecar ${o.id}: could not start ${process.execPath}`);
  }
  const timeout = o.timeoutMs ?? 30_000;
  try {
    await until(async () => (await localGet(o.adminPort, '/ready')).status === 200, timeout, `sidecar ${o.id} ready on admin port ${o.adminPort}`, dead);
    // Bound, not merely known: a listener that failed (its port taken, say) is listed as failed.
    let failed = '';
    await until(async () => {
      const l = JSON.parse((await localGet(o.adminPort, '/listeners?format=json')).body) as { listener_statuses: { name: string }[]; failed: Record<string, string> };
      failed = o.listeners.filter((n) => l.failed[n] !== undefined).map((n) => `${n}: ${l.failed[n]}`).join('; ');
      if (failed) throw new Error(failed);
      return o.listeners.every((n) => l.listener_statuses.some((x) => x.name === n));
    }, 10_000, `sidecar ${o.id} listeners ${o.listeners.join(', ')} bound`, dead);
    if (o.waitForCertificate) {
      await until(async () => {
        const c = JSON.parse((await localGet(o.adminPort, '/certs')).body) as { identity?: { state?: string; last_error?: string } };
        if (c.identity?.state === 'error') throw new Error(c.identity.last_error ?? 'identity error');
        return c.identity?.state === 'ready';
      }, 15_000, `sidecar ${o.id} workload certificate`, dead);
    }
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}; proxy stderr: ${err.slice(-2000)}`);
  }
  // Read at start only: gone now, nothing is left behind even if this process is killed.
  cleanup();
  return { process: child, pid: child.pid, adminPort: o.adminPort, stderr: () => err, stop };
}
