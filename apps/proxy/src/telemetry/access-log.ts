import type { Exchange } from '../dataplane/exchange.ts';

/**
 * One JSON line per request, with Envoy's default access-log field names (the JSON form of its
 * default format string), so log tooling built for Istio reads it.
 */
export function writeAccessLog(ex: Exchange, durationMs: number): string {
  const h = ex.headers ?? ex.h1req?.headers ?? ex.h2Headers;
  const ep = ex.endpoint;
  return JSON.stringify({
    start_time: new Date(performance.timeOrigin + ex.start).toISOString(),
    method: ex.method,
    path: ex.originalPath,
    protocol: ex.down === 2 ? 'HTTP/2' : 'HTTP/1.1',
    response_code: ex.status,
    response_flags: ex.flags,
    response_code_details: ex.details ?? null,
    grpc_status: ex.grpcStatus < 0 ? null : ex.grpcStatus,
    bytes_received: ex.reqBytes,
    bytes_sent: ex.respBytes,
    duration: Math.round(durationMs),
    upstream_service_time: ex.upStart && ex.responseStarted ? Math.round(ex.upServiceTime) : null,
    x_forwarded_for: h?.['x-forwarded-for'] ?? null,
    user_agent: h?.['user-agent'] ?? null,
    request_id: ex.requestId || null,
    authority: ex.originalAuthority,
    upstream_host: ep ? (ep.isPipe ? ep.address : `${ep.address}:${ep.port}`) : null,
    upstream_cluster: ex.cluster?.name ?? null,
    downstream_remote_address: ex.ctx.remoteAddress(ex) || null,
    listener: ex.ctx.listener.name,
    route_name: ex.routeName ?? null,
    traceparent: h?.traceparent ?? null,
  }) + '\n';
}
