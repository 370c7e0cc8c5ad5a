// Shared fixtures for the data-plane suites: Envoy JSON builders, a proxy on loopback, upstreams.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { EXTENSION_TYPE_URL, TYPE_URL, type JsonObject } from '@tern/xds';
import { buildSnapshot } from '../src/config/snapshot.ts';
import type { ProxySnapshot } from '../src/config/model.ts';
import { Engine } from '../src/dataplane/engine.ts';
import { ListenerManager } from '../src/dataplane/listeners.ts';

export const quiet = pino({ level: 'silent' });

export interface HttpListenerOpts {
  name: string;
  port?: number;
  /** Inline route config; or `rds` names a RouteConfiguration. */
  routes?: JsonObject;
  rds?: string;
  direction?: 'INBOUND' | 'OUTBOUND';
  hcm?: JsonObject;
  transportSocket?: JsonObject;
}

export function httpListener(o: HttpListenerOpts): JsonObject {
  const hcm: JsonObject = {
    '@type': EXTENSION_TYPE_URL.httpConnectionManager,
    stat_prefix: o.name,
    ...(o.rds ? { rds: { route_config_name: o.rds, config_source: { ads: {} } } } : { route_config: o.routes ?? { name: o.name, virtual_hosts: [] } }),
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': EXTENSION_TYPE_URL.router } }],
    upgrade_configs: [{ upgrade_type: 'websocket' }],
    ...o.hcm,
  };
  return {
    name: o.name,
    address: { socket_address: { address: '127.0.0.1', port_value: o.port ?? 0 } },
    traffic_direction: o.direction ?? 'OUTBOUND',
    filter_chains: [{
      filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }],
      ...(o.transportSocket ? { transport_socket: o.transportSocket } : {}),
    }],
  };
}

export function tcpListener(name: string, cluster: string): JsonObject {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': EXTENSION_TYPE_URL.tcpProxy, stat_prefix: name, cluster } }] }],
  };
}

/** A route table sending everything for `domains` to `cluster`. */
export function routeTo(cluster: string, extra: JsonObject = {}, domains = ['*'], name = 'routes'): JsonObject {
  return { name, virtual_hosts: [{ name: 'vh', domains, routes: [{ match: { prefix: '/' }, route: { cluster, ...extra } }] }] };
}

export function cluster(name: string, ports: number[], opts: { h2?: boolean; connectTimeout?: string; metadata?: JsonObject } = {}): JsonObject {
  return {
    name,
    type: 'STATIC',
    connect_timeout: opts.connectTimeout ?? '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } }, ...(opts.metadata ? { metadata: opts.metadata } : {}) })) }],
    },
    ...(opts.h2 ? {
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': EXTENSION_TYPE_URL.httpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } },
      },
    } : {}),
  };
}

let version = 0;
export function snapshot(r: { listeners?: JsonObject[]; clusters?: JsonObject[]; routes?: JsonObject[]; secrets?: JsonObject[] }, previous?: ProxySnapshot): ProxySnapshot {
  const v = String(++version);
  const set = (list: JsonObject[] = []) => new Map(list.map((j) => [String(j.name), { version: v, json: j }]));
  return buildSnapshot(new Map([
    [TYPE_URL.listener, set(r.listeners)],
    [TYPE_URL.cluster, set(r.clusters)],
    [TYPE_URL.route, set(r.routes)],
    [TYPE_URL.secret, set(r.secrets)],
  ]), { version: v, ...(previous ? { previous } : {}) });
}

export interface TestProxy {
  engine: Engine;
  listeners: ListenerManager;
  current: ProxySnapshot;
  set(s: ProxySnapshot): Promise<void>;
  port(listener: string): number;
  accessLog: string[];
  close(): Promise<void>;
}

export async function startProxy(initial: ProxySnapshot, opts: { accessLog?: boolean } = {}): Promise<TestProxy> {
  const accessLog: string[] = [];
  const p: TestProxy = {
    current: initial,
    engine: undefined as unknown as Engine,
    listeners: undefined as unknown as ListenerManager,
    accessLog,
    async set(s) {
      p.current = s;
      await p.listeners.apply(s);
    },
    port(name) {
      const a = p.listeners.address(name);
      if (!a || typeof a === 'string') throw new Error(`listener ${name} is not bound`);
      return a.port;
    },
    async close() {
      await p.listeners.close(200);
      p.engine.close();
    },
  };
  p.engine = new Engine({
    snapshot: () => p.current,
    self: { workload: 'productpage-v1', namespace: 'default', app: 'productpage', version: 'v1', principal: '' },
    accessLog: opts.accessLog ?? false,
    accessLogSink: (line) => accessLog.push(line),
  });
  p.listeners = new ListenerManager(p.engine, quiet, 200);
  await p.listeners.apply(initial);
  return p;
}

/** An HTTP/1.1 upstream that counts its connections and requests. */
export interface Upstream {
  server: http.Server;
  port: number;
  connections: number;
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}

export async function httpUpstream(handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void): Promise<Upstream> {
  const u: Upstream = {
    server: undefined as unknown as http.Server,
    port: 0,
    connections: 0,
    requests: [],
    close: () => new Promise((r) => {
      u.server.closeAllConnections();
      u.server.close(() => r());
    }),
  };
  u.server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      u.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (handler) handler(req, res, body);
      else {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers, body }));
      }
    });
  });
  u.server.on('connection', () => u.connections++);
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
  u.port = (u.server.address() as AddressInfo).port;
  return u;
}

/** One request over a given agent (keep-alive when the agent keeps sockets). */
export function request(port: number, opts: http.RequestOptions & { body?: string | Buffer } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function eventually(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met in time');
}

/** Runs src/main.ts in a child process on a static bootstrap; resolves once its listeners are bound. */
export async function spawnProxy(resources: { listeners: object[]; clusters: object[] }, env: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-proxy-'));
  const file = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify({
    node: { id: 'sidecar~127.0.0.1~test.default~default.svc.cluster.local', cluster: 'test', metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'test' } },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: resources,
  }));
  const main = path.resolve(import.meta.dirname, '../src/main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--bootstrap', file, '--stats-port', 'off'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const ports: Record<string, number> = {};
  let admin = 0;
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      log += d;
      for (const line of log.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const e = JSON.parse(line) as { msg?: string; listener?: string; address?: string; admin?: number };
          if (e.msg === 'listener bound' && e.listener && e.address) ports[e.listener] = Number(e.address.split(':').pop());
          if (e.msg === 'admin listening' && e.admin) admin = e.admin;
        } catch { /* partial line */ }
      }
      if (admin && Object.keys(ports).length === resources.listeners.length) resolve();
    });
    child.once('exit', (code) => reject(new Error(`proxy exited with ${code}: ${log}`)));
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // A failed or timed-out test must not leave the proxy running (the runner would wait for it).
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  void exited.then(() => process.off('exit', reap));
  return {
    pid: child.pid!,
    ports,
    admin,
    child,
    exited,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
