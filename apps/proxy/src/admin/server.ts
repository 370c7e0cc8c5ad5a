import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonObject, ProxySnapshot } from '../config/model.ts';
import type { Engine } from '../dataplane/engine.ts';
import type { ListenerManager } from '../dataplane/listeners.ts';
import { configDump } from './config-dump.ts';
import { renderStatsPrometheus, renderStatsText } from '../dataplane/resilience/stats.ts';
import { retryStatsPrometheus, retryStatsText } from '../dataplane/retry.ts';
import { listenerTlsStatsPrometheus, listenerTlsStatsText } from '../dataplane/listener-tls-stats.ts';
import { rbacStatsPrometheus, rbacStatsText } from '../dataplane/rbac.ts';
import type { IdentityStatus } from '../identity/agent.ts';
import { certsJson, identityPrometheus, identityStatsText } from './certs.ts';

export interface AdminState {
  engine: Engine;
  listeners: ListenerManager;
  snapshot(): ProxySnapshot;
  /** First configuration applied and its listeners bound. */
  ready(): boolean;
  draining(): boolean;
  /** POST /drain_listeners. */
  drain(): void;
  /** The bootstrap as loaded (shown by /config_dump). */
  bootstrap?: JsonObject;
  /** The workload identity (GET /certs); undefined when the proxy has none configured. */
  identity?: () => IdentityStatus | undefined;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The admin interface (Envoy's :15000 shape): /ready, /config_dump, /clusters, /listeners,
 * /stats/prometheus, /stats, POST /drain_listeners. Loopback-only by default: it reveals config.
 */
export async function startAdmin(state: AdminState, host: string, port: number): Promise<AdminServer> {
  const server = http.createServer((req, res) => handle(state, req, res));
  return listen(server, host, port);
}

/** The Prometheus-only port (Istio's :15090). */
export async function startStats(state: Pick<AdminState, 'engine' | 'identity'>, host: string, port: number): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/stats/prometheus' || path === '/metrics') return prometheus(state, res);
    send(res, 404, 'text/plain', 'not found\n');
  });
  return listen(server, host, port);
}

function listen(server: http.Server, host: string, port: number): Promise<AdminServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}

function handle(state: AdminState, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const method = req.method ?? 'GET';
  switch (path) {
    case '/ready': {
      const ok = state.ready() && !state.draining();
      return send(res, ok ? 200 : 503, 'text/plain', ok ? 'LIVE\n' : state.draining() ? 'DRAINING\n' : 'PRE_INITIALIZING\n');
    }
    case '/config_dump':
      return send(res, 200, 'application/json', JSON.stringify(configDump(state.snapshot(), state.bootstrap, query.get('resource') ?? undefined), null, 2) + '\n');
    case '/clusters':
      return clusters(state, res, query.get('format') === 'json');
    case '/listeners': {
      const list = state.listeners.list();
      if (query.get('format') === 'json') return send(res, 200, 'application/json', JSON.stringify({ listener_statuses: list.map((l) => ({ name: l.name, local_address: l.address, ...(l.virtual ? { bind_to_port: false } : {}) })), failed: Object.fromEntries(state.listeners.failed) }) + '\n');
      return send(res, 200, 'text/plain', list.map((l) => `${l.name}::${l.address}${l.virtual ? '::virtual' : ''}\n`).join('') + [...state.listeners.failed].map(([n, why]) => `${n}::FAILED::${why}\n`).join(''));
    }
    case '/stats/prometheus':
      return prometheus(state, res);
    case '/certs':
      return send(res, 200, 'application/json', JSON.stringify(certsJson(state.identity?.()), null, 2) + '\n');
    case '/stats':
      // Envoy's text format for the cluster stats, after the Istio metrics.
      return send(res, 200, 'text/plain', state.engine.metrics.render() + renderStatsText(state.engine) + retryStatsText(state.engine) + rbacStatsText(state.engine) + listenerTlsStatsText(state.engine) + identityStatsText(state.identity?.()));
    case '/drain_listeners':
      if (method !== 'POST') return send(res, 405, 'text/plain', 'use POST\n');
      state.drain();
      return send(res, 200, 'text/plain', 'OK\n');
    case '/':
      return send(res, 200, 'text/plain', 'tern-proxy admin: /ready /config_dump /clusters /listeners /certs /stats/prometheus /stats POST /drain_listeners\n');
    default:
      return send(res, 404, 'text/plain', `unknown admin path ${path}\n`);
  }
}

function prometheus(state: Pick<AdminState, 'engine' | 'identity'>, res: http.ServerResponse): void {
  const engine = state.engine;
  send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', engine.metrics.render() + renderStatsPrometheus(engine) + retryStatsPrometheus(engine) + rbacStatsPrometheus(engine) + listenerTlsStatsPrometheus(engine) + identityPrometheus(state.identity?.()));
}

/** Envoy's /clusters: text `cluster::host::field::value` lines, or ?format=json. */
function clusters(state: AdminState, res: http.ServerResponse, json: boolean): void {
  const snap = state.snapshot();
  const lbs = state.engine.lb;
  if (json) {
    const out = [...snap.clusters.values()].map((c) => ({
      name: c.name,
      circuit_breakers: { thresholds: (['default', 'high'] as const).map((p) => ({ priority: p.toUpperCase(), max_connections: c.circuitBreakers[p].maxConnections, max_pending_requests: c.circuitBreakers[p].maxPendingRequests, max_requests: c.circuitBreakers[p].maxRequests, max_retries: c.circuitBreakers[p].maxRetries })) },
      host_statuses: lbs.forCluster(c).hosts.map((h) => ({
        address: h.endpoint.isPipe ? { pipe: { path: h.endpoint.address } } : { socket_address: { address: h.endpoint.address, port_value: h.endpoint.port } },
        stats: [
          { name: 'rq_active', value: h.stats.activeRequests },
          { name: 'rq_total', value: h.stats.totalRequests },
          { name: 'cx_active', value: h.stats.activeConnections },
        ],
        health_status: { eds_health_status: h.endpoint.healthStatus, failed_outlier_check: h.stats.ejected },
        weight: h.endpoint.weight,
        locality: h.endpoint.locality,
      })),
    }));
    return send(res, 200, 'application/json', JSON.stringify({ cluster_statuses: out }, null, 2) + '\n');
  }
  let text = '';
  for (const c of snap.clusters.values()) {
    for (const p of ['default', 'high'] as const) {
      const t = c.circuitBreakers[p];
      const q = `${c.name}::${p}_priority::`;
      text += `${q}max_connections::${t.maxConnections}\n${q}max_pending_requests::${t.maxPendingRequests}\n${q}max_requests::${t.maxRequests}\n${q}max_retries::${t.maxRetries}\n`;
    }
    for (const h of lbs.forCluster(c).hosts) {
      const p = `${c.name}::${h.endpoint.key}::`;
      text += `${p}cx_active::${h.stats.activeConnections}\n${p}rq_active::${h.stats.activeRequests}\n${p}rq_total::${h.stats.totalRequests}\n`;
      text += `${p}health_flags::${h.endpoint.healthy && !h.stats.ejected ? 'healthy' : h.stats.ejected ? '/failed_outlier_check' : `/eds_status_${h.endpoint.healthStatus.toLowerCase()}`}\n`;
      text += `${p}weight::${h.endpoint.weight}\n${p}region::${h.endpoint.locality.region}\n${p}zone::${h.endpoint.locality.zone}\n`;
    }
  }
  send(res, 200, 'text/plain', text);
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
