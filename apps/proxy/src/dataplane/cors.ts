/**
 * Envoy's CORS filter (envoy.filters.http.cors) with a per-route/virtual-host CorsPolicy
 * (typed_per_filter_config; the route's wins). Only requests with an Origin the policy allows are
 * CORS requests: a preflight (OPTIONS with Access-Control-Request-Method) is answered 200 by the
 * proxy with the allow-* headers; any other request is forwarded and its response gets
 * Access-Control-Allow-Origin (the request's origin), -Allow-Credentials and -Expose-Headers.
 * A preflight whose origin is not allowed is forwarded untouched (Envoy's default
 * forward_not_matching_preflights: true).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { CorsPolicy, HttpConnectionManagerConfig, Route, VirtualHost } from '../config/model.ts';
import { matchString } from '../config/compile-common.ts';

export function hasCorsFilter(hcm: HttpConnectionManagerConfig): boolean {
  for (const f of hcm.httpFilters) if (f.kind === 'cors') return true;
  return false;
}

export function corsPolicyFor(route: Route | undefined, vh: VirtualHost | undefined): CorsPolicy | undefined {
  return route?.perFilterConfig.cors ?? vh?.perFilterConfig.cors;
}

/** The allowed origin of a CORS request, or undefined when this is not one. */
export function corsOrigin(policy: CorsPolicy, headers: IncomingHttpHeaders, random: () => number = Math.random): string | undefined {
  const origin = headers.origin;
  if (typeof origin !== 'string' || origin === '') return undefined;
  if (policy.enabled < 1 && !(policy.enabled > 0 && random() < policy.enabled)) return undefined;
  for (const m of policy.allowOrigins) if (matchString(m, origin)) return origin;
  return undefined;
}

export function isPreflight(method: string, headers: IncomingHttpHeaders): boolean {
  const m = headers['access-control-request-method'];
  return method === 'OPTIONS' && typeof m === 'string' && m !== '';
}

/** Headers of the local answer to a preflight. */
export function preflightHeaders(policy: CorsPolicy, origin: string): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = { 'access-control-allow-origin': origin };
  if (policy.allowCredentials) h['access-control-allow-credentials'] = 'true';
  if (policy.allowMethods) h['access-control-allow-methods'] = policy.allowMethods;
  if (policy.allowHeaders) h['access-control-allow-headers'] = policy.allowHeaders;
  if (policy.maxAge) h['access-control-max-age'] = policy.maxAge;
  return h;
}

/** Adds the CORS headers to a forwarded request's response. */
export function addCorsResponseHeaders(headers: OutgoingHttpHeaders, policy: CorsPolicy, origin: string): void {
  headers['access-control-allow-origin'] = origin;
  if (policy.allowCredentials) headers['access-control-allow-credentials'] = 'true';
  if (policy.exposeHeaders) headers['access-control-expose-headers'] = policy.exposeHeaders;
}
