/**
 * Envoy's HTTP fault filter (envoy.filters.http.fault): a fixed delay and/or an abort, each with
 * a percentage, optionally limited to requests whose headers match and to one upstream cluster.
 * The filter's own config applies unless the route (most specific first: weighted cluster, route,
 * virtual host) carries a typed_per_filter_config override, which replaces it entirely — that is
 * how Istio's VirtualService `fault` arrives (an empty filter in the HCM, the fault per route).
 *
 * With header_delay / header_abort the request's `x-envoy-fault-delay-request` /
 * `x-envoy-fault-abort-request` (`x-envoy-fault-abort-grpc-request` for gRPC) headers give the
 * value; they are read only when so configured.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FaultConfig, HttpConnectionManagerConfig, Route, VirtualHost, WeightedClusterEntry } from '../config/model.ts';
import { matchHeader, type RouteRequest } from '../config/route-select.ts';

/** What to do to one request. */
export interface FaultDecision {
  readonly delayMs: number;
  /** Abort after the delay (if any): an HTTP status, or a gRPC status for gRPC requests. */
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: number };
}

/** Envoy's body for an aborted request. */
export const FAULT_ABORT_BODY = 'fault filter abort';

/** The HCM's fault filter config (undefined when the HCM has no fault filter: no faults at all). */
export function faultFilter(hcm: HttpConnectionManagerConfig): FaultConfig | undefined {
  for (const f of hcm.httpFilters) if (f.kind === 'fault') return f.config;
  return undefined;
}

/** The fault config for a request: the most specific per-route override, else the filter's own. */
export function effectiveFault(filter: FaultConfig, route: Route, vh: VirtualHost, weighted: WeightedClusterEntry | undefined): FaultConfig {
  return weighted?.perFilterConfig.fault ?? route.perFilterConfig.fault ?? vh.perFilterConfig.fault ?? filter;
}

/** Active faults across the proxy (max_active_faults). */
let activeFaults = 0;

export function faultStarted(): void {
  activeFaults++;
}

export function faultEnded(): void {
  if (activeFaults > 0) activeFaults--;
}

export function activeFaultCount(): number {
  return activeFaults;
}

/**
 * Decides the faults for one request, or undefined for none. `cluster` is the upstream cluster
 * the request is routed to (for upstream_cluster).
 */
export function decideFault(f: FaultConfig, req: RouteRequest, cluster: string, grpc: boolean, random: () => number = Math.random): FaultDecision | undefined {
  if (f.delay === undefined && f.abort === undefined) return undefined;
  if (f.upstreamCluster !== undefined && f.upstreamCluster !== cluster) return undefined;
  for (const h of f.headers) if (!matchHeader(h, req)) return undefined;
  if (f.maxActiveFaults !== undefined && activeFaults >= f.maxActiveFaults) return undefined;
  let delayMs = 0;
  const d = f.delay;
  if (d !== undefined && hit(d.fraction, random)) {
    if (d.headerDelay) delayMs = headerNumber(req.headers, 'x-envoy-fault-delay-request') ?? 0;
    else delayMs = d.fixedDelayMs ?? 0;
  }
  let abort: FaultDecision['abort'];
  const a = f.abort;
  if (a !== undefined && hit(a.fraction, random)) {
    if (a.headerAbort) {
      const g = grpc ? headerNumber(req.headers, 'x-envoy-fault-abort-grpc-request') : undefined;
      const h = headerNumber(req.headers, 'x-envoy-fault-abort-request');
      if (g !== undefined) abort = { grpcStatus: g };
      else if (h !== undefined && h >= 200 && h < 600) abort = { httpStatus: h };
    } else if (grpc && a.grpcStatus !== undefined) abort = { grpcStatus: a.grpcStatus };
    else if (a.httpStatus !== undefined) abort = { httpStatus: a.httpStatus };
    else if (a.grpcStatus !== undefined) abort = { grpcStatus: a.grpcStatus };
  }
  if (delayMs <= 0 && abort === undefined) return undefined;
  return abort === undefined ? { delayMs } : { delayMs, abort };
}

function hit(fraction: number, random: () => number): boolean {
  return fraction >= 1 || (fraction > 0 && random() < fraction);
}

function headerNumber(headers: IncomingHttpHeaders, name: string): number | undefined {
  const v = headers[name];
  if (typeof v !== 'string' || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}
