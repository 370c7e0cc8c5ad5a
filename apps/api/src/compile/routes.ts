import { GRPC_STATUS_CODES, type CorsPolicy, type Destination, type HTTPFaultInjection, type HTTPHeaders, type HTTPMatchRequest, type HTTPRetry, type HTTPRoute, type HeaderOperations, type StringMatch } from '@tern/shared';
import { clusterName, EXTENSION_TYPE_URL, RETRY_TYPE_URL, type JsonObject } from '@tern/xds';
import { arr, labelsOf, selects } from '../policy/mesh-model.ts';
import type { MeshModel, PortModel, ServiceModel, VsEntry } from './model.ts';
import { effectivePolicy } from './policy.ts';
import { compact, envoyDuration, fractionalPercent } from './util.ts';

// A VirtualService's http and tcp routes as Envoy routes for one service port, seen by one kind of
// client (its namespace and labels decide exportTo, sourceLabels and sourceNamespace matches).

export interface RouteContext {
  model: MeshModel;
  namespace: string;
  labels: Record<string, string>;
  proxyless: boolean;
}

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const CORS_FILTER = 'envoy.filters.http.cors';

/** Istio's retry policy when a route names none. */
export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

/** The names a client may use for a service on a port (Istio's generateVirtualHostDomains). */
export function hostNames(svc: ServiceModel, clientNamespace: string): string[] {
  if (!svc.isDefaultHost) return [svc.host];
  const names = [svc.host, `${svc.name}.${svc.namespace}.svc`, `${svc.name}.${svc.namespace}`];
  if (svc.namespace === clientNamespace) names.push(svc.name);
  return names;
}

/** Virtual host domains: every name, with `:port`, and bare when `bare` (the request's port is implied). */
export function domainsFor(svc: ServiceModel, port: PortModel, clientNamespace: string, bare: boolean): string[] {
  const out: string[] = [];
  for (const n of hostNames(svc, clientNamespace)) {
    if (bare) out.push(n);
    out.push(`${n}:${port.number}`);
  }
  return out;
}

function matchSelected(m: HTTPMatchRequest | { port?: number | undefined; sourceLabels?: Record<string, string> | undefined; sourceNamespace?: string | undefined; gateways?: string[] | undefined }, port: number, ctx: RouteContext): boolean {
  if (m.port !== undefined && m.port !== port) return false;
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== ctx.namespace) return false;
  if (m.sourceLabels !== undefined && !selects(labelsOf(m.sourceLabels), ctx.labels)) return false;
  const gw = arr(m.gateways);
  if (gw.length > 0 && !gw.includes('mesh')) return false;
  return true;
}

function stringMatcher(sm: StringMatch): JsonObject | undefined {
  if (sm.exact !== undefined) return { exact: sm.exact };
  if (sm.prefix !== undefined) return { prefix: sm.prefix };
  if (sm.regex !== undefined) return { safe_regex: { regex: sm.regex } };
  return undefined;
}

function headerMatcher(name: string, sm: StringMatch | null | undefined, invert: boolean): JsonObject {
  const m = sm ? stringMatcher(sm) : undefined;
  return compact({ name, ...(m ? { string_match: m } : { present_match: true }), invert_match: invert || undefined });
}

function routeMatch(m: HTTPMatchRequest | undefined): JsonObject {
  const out: JsonObject = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out['path'] = uri.exact;
  else if (uri?.prefix !== undefined) out['prefix'] = uri.prefix;
  else if (uri?.regex !== undefined) out['safe_regex'] = { regex: uri.regex };
  else out['prefix'] = '/';
  if (m?.ignoreUriCase) out['case_sensitive'] = false;
  const headers: JsonObject[] = [];
  for (const k of Object.keys(m?.headers ?? {}).sort()) headers.push(headerMatcher(k.toLowerCase(), m!.headers![k], false));
  for (const k of Object.keys(m?.withoutHeaders ?? {}).sort()) headers.push(headerMatcher(k.toLowerCase(), m!.withoutHeaders![k], true));
  if (m?.method) headers.push(headerMatcher(':method', m.method, false));
  if (m?.authority) headers.push(headerMatcher(':authority', m.authority, false));
  if (m?.scheme) headers.push(headerMatcher(':scheme', m.scheme, false));
  if (headers.length > 0) out['headers'] = headers;
  const qp = Object.keys(m?.queryParams ?? {}).sort();
  if (qp.length > 0) {
    out['query_parameters'] = qp.map((k): JsonObject => {
      const sm = m!.queryParams![k];
      const matcher = sm ? stringMatcher(sm) : undefined;
      return matcher ? { name: k, string_match: matcher } : { name: k, present_match: true };
    });
  }
  return out;
}

interface Target {
  cluster: string;
  svc: ServiceModel | undefined;
  port: number;
  subset: string | undefined;
}

/** Where a destination goes: its cluster name, even when nothing answers to it (Envoy then says 503 NC, as with Istio). */
export function destinationTarget(dest: Destination, vsNamespace: string, currentPort: number, ctx: RouteContext): Target {
  const host = ctx.model.resolve(dest.host, vsNamespace);
  const svc = ctx.model.serviceFor(host, ctx.namespace);
  const only = svc && svc.ports.length === 1 ? svc.ports[0]!.number : undefined;
  const port = dest.port?.number ?? only ?? currentPort;
  return { cluster: clusterName({ direction: 'outbound', port, ...(dest.subset ? { subset: dest.subset } : {}), host }), svc, port, subset: dest.subset };
}

function headerValues(ops: HeaderOperations | undefined, prefix: 'request' | 'response'): JsonObject {
  if (!ops) return {};
  const add: JsonObject[] = [];
  for (const k of Object.keys(ops.set ?? {}).sort()) add.push({ header: { key: k, value: ops.set![k]! }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  for (const k of Object.keys(ops.add ?? {}).sort()) add.push({ header: { key: k, value: ops.add![k]! }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
  const out: JsonObject = {};
  if (add.length > 0) out[`${prefix}_headers_to_add`] = add;
  if (ops.remove?.length) out[`${prefix}_headers_to_remove`] = [...ops.remove];
  return out;
}

function headerOperations(h: HTTPHeaders | undefined): { fields: JsonObject; authority: string | undefined } {
  // Istio turns a set of the Host header into a host rewrite: Envoy does not let headers_to_add change it.
  const request = h?.request;
  let authority: string | undefined;
  let req = request;
  if (request?.set) {
    const set = { ...request.set };
    for (const k of Object.keys(set)) {
      if (k.toLowerCase() === 'host' || k.toLowerCase() === ':authority') {
        authority = set[k];
        delete set[k];
      }
    }
    req = { ...request, set };
  }
  return { fields: { ...headerValues(req, 'request'), ...headerValues(h?.response, 'response') }, authority };
}

export function retryPolicy(r: HTTPRetry | undefined): JsonObject | undefined {
  if (r !== undefined && (r.attempts ?? 0) === 0) return undefined; // attempts 0 disables retries
  const on = (r?.retryOn || DEFAULT_RETRY_ON).split(',').map((s) => s.trim()).filter(Boolean);
  const codes = on.filter((p) => /^[0-9]{3}$/.test(p)).map(Number);
  const conditions = on.filter((p) => !/^[0-9]{3}$/.test(p));
  if (codes.length > 0 && !conditions.includes('retriable-status-codes')) conditions.push('retriable-status-codes');
  if (conditions.includes('retriable-status-codes') && codes.length === 0) codes.push(503);
  const out: JsonObject = { retry_on: conditions.join(','), num_retries: r?.attempts ?? 2 };
  const perTry = envoyDuration(r?.perTryTimeout);
  if (perTry) out['per_try_timeout'] = perTry;
  if (r?.retryIgnorePreviousHosts !== false) {
    out['retry_host_predicate'] = [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': RETRY_TYPE_URL.previousHosts } }];
    out['host_selection_retry_max_attempts'] = 5;
  }
  if (codes.length > 0) out['retriable_status_codes'] = codes;
  if (r?.retryRemoteLocalities) {
    out['retry_priority'] = { name: 'envoy.retry_priorities.previous_priorities', typed_config: { '@type': RETRY_TYPE_URL.previousPriorities, update_frequency: 2 } };
  }
  const backoff = envoyDuration(r?.backoff);
  if (backoff) out['retry_back_off'] = { base_interval: backoff };
  return out;
}

function percentOf(p: { value?: number | undefined } | undefined, legacy: number | undefined): number {
  if (p?.value !== undefined) return p.value;
  return legacy ?? 100;
}

function faultConfig(f: HTTPFaultInjection): JsonObject | undefined {
  const out: JsonObject = { '@type': EXTENSION_TYPE_URL.fault };
  const d = f.delay;
  if (d?.fixedDelay) out['delay'] = { fixed_delay: envoyDuration(d.fixedDelay) ?? '0s', percentage: fractionalPercent(percentOf(d.percentage, d.percent)) };
  const a = f.abort;
  if (a && (a.httpStatus !== undefined || a.grpcStatus !== undefined)) {
    const abort: JsonObject = { percentage: fractionalPercent(percentOf(a.percentage, undefined)) };
    if (a.httpStatus !== undefined) abort['http_status'] = a.httpStatus;
    else abort['grpc_status'] = GRPC_STATUS_CODES.indexOf(a.grpcStatus!);
    out['abort'] = abort;
  }
  return out['delay'] || out['abort'] ? out : undefined;
}

function corsConfig(c: CorsPolicy): JsonObject {
  const origins: JsonObject[] = [];
  for (const o of arr(c.allowOrigins)) {
    const m = stringMatcher(o);
    if (m) origins.push(m);
  }
  for (const o of arr(c.allowOrigin)) origins.push(o === '*' ? { safe_regex: { regex: '.*' } } : { exact: o });
  const maxAge = envoyDuration(c.maxAge);
  return compact({
    '@type': EXTENSION_TYPE_URL.corsPolicy,
    allow_origin_string_match: origins.length > 0 ? origins : undefined,
    allow_methods: c.allowMethods?.length ? c.allowMethods.join(',') : undefined,
    allow_headers: c.allowHeaders?.length ? c.allowHeaders.join(',') : undefined,
    expose_headers: c.exposeHeaders?.length ? c.exposeHeaders.join(',') : undefined,
    max_age: maxAge ? String(Math.floor(Number(maxAge.slice(0, -1)))) : undefined,
    allow_credentials: c.allowCredentials,
    forward_not_matching_preflights: c.unmatchedPreflights === 'FORWARD' ? true : c.unmatchedPreflights === 'IGNORE' ? false : undefined,
  });
}

const REDIRECT_CODES: Record<number, string> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

/** The hash policy of a destination's DestinationRule (consistentHash), for the route. */
function hashPolicy(t: Target, ctx: RouteContext): JsonObject[] | undefined {
  if (!t.svc) return undefined;
  const dr = ctx.model.destinationRuleFor(t.svc, ctx.namespace, ctx.labels);
  const ch = effectivePolicy(dr, t.port, t.subset).loadBalancer?.consistentHash;
  if (!ch) return undefined;
  if (ch.httpHeaderName) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie) return [{ cookie: compact({ name: ch.httpCookie.name, path: ch.httpCookie.path, ttl: envoyDuration(ch.httpCookie.ttl) }) }];
  if (ch.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (ch.httpQueryParameterName) return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  return undefined;
}

function routeAction(http: HTTPRoute, m: HTTPMatchRequest | undefined, vsNamespace: string, port: number, ctx: RouteContext): { action: JsonObject; routeFields: JsonObject } | undefined {
  const dests = arr(http.route);
  const targets = dests.map((d) => ({ d, t: destinationTarget(d.destination, vsNamespace, port, ctx) }));
  const live = targets.length > 1 ? targets.filter((x) => (x.d.weight ?? 0) > 0) : targets;
  if (live.length === 0) return undefined;
  const action: JsonObject = {};
  const routeFields: JsonObject = {};
  if (live.length === 1) {
    const only = live[0]!;
    action['cluster'] = only.t.cluster;
    const h = headerOperations(only.d.headers);
    Object.assign(routeFields, h.fields);
    if (h.authority) action['host_rewrite_literal'] = h.authority;
  } else {
    action['weighted_clusters'] = {
      clusters: live.map(({ d, t }) => ({ name: t.cluster, weight: d.weight ?? 0, ...headerOperations(d.headers).fields })),
    };
  }
  // One hash policy for the route: only when every destination agrees on it.
  const hashes = live.map(({ t }) => JSON.stringify(hashPolicy(t, ctx) ?? null));
  if (hashes.every((h) => h === hashes[0]) && hashes[0] !== 'null') action['hash_policy'] = JSON.parse(hashes[0]!);
  const timeout = envoyDuration(http.timeout) ?? '0s';
  action['timeout'] = timeout;
  action['max_stream_duration'] = { max_stream_duration: timeout, grpc_timeout_header_max: timeout };
  const retry = retryPolicy(http.retries);
  if (retry) action['retry_policy'] = retry;
  const rw = http.rewrite;
  if (rw?.uri) {
    // Istio rewrites the whole path for an exact match and the matched prefix otherwise.
    if (m?.uri?.exact !== undefined) action['regex_rewrite'] = { pattern: { regex: '^.*$' }, substitution: rw.uri };
    else if (m?.uri?.regex !== undefined) action['regex_rewrite'] = { pattern: { regex: m.uri.regex }, substitution: rw.uri };
    else action['prefix_rewrite'] = rw.uri;
  }
  if (rw?.uriRegexRewrite) action['regex_rewrite'] = { pattern: { regex: rw.uriRegexRewrite.match }, substitution: rw.uriRegexRewrite.rewrite };
  if (rw?.authority) action['host_rewrite_literal'] = rw.authority;
  const mirrors: JsonObject[] = [];
  if (http.mirror) mirrors.push(mirrorPolicy(http.mirror, percentOf(http.mirrorPercentage, http.mirrorPercent ?? http.mirror_percent), vsNamespace, port, ctx));
  for (const mp of arr(http.mirrors)) mirrors.push(mirrorPolicy(mp.destination, percentOf(mp.percentage, undefined), vsNamespace, port, ctx));
  if (mirrors.length > 0) action['request_mirror_policies'] = mirrors;
  return { action, routeFields };
}

function mirrorPolicy(dest: Destination, percent: number, vsNamespace: string, port: number, ctx: RouteContext): JsonObject {
  return { cluster: destinationTarget(dest, vsNamespace, port, ctx).cluster, runtime_fraction: { default_value: fractionalPercent(percent) } };
}

function envoyRoute(http: HTTPRoute, m: HTTPMatchRequest | undefined, vs: VsEntry, port: number, ctx: RouteContext): JsonObject | undefined {
  const out: JsonObject = {};
  const name = [http.name, m?.name].filter(Boolean).join('.');
  if (name) out['name'] = name;
  out['match'] = routeMatch(m);
  if (http.redirect) {
    if (ctx.proxyless) return undefined; // grpc-js-xds NACKs redirect routes
    const r = http.redirect;
    out['redirect'] = compact({
      path_redirect: r.uri,
      host_redirect: r.authority,
      port_redirect: r.port,
      scheme_redirect: r.scheme,
      response_code: r.redirectCode && r.redirectCode !== 301 ? REDIRECT_CODES[r.redirectCode] : undefined,
    });
  } else if (http.directResponse) {
    const d = http.directResponse;
    const body: JsonObject | undefined = d.body?.string !== undefined ? { inline_string: d.body.string } : d.body?.bytes !== undefined ? { inline_bytes: d.body.bytes.replace(/\s+/g, '') } : undefined;
    out['direct_response'] = compact({ status: d.status, body });
  } else {
    const a = routeAction(http, m, vs.namespace, port, ctx);
    if (!a) return undefined;
    out['route'] = a.action;
    Object.assign(out, a.routeFields);
  }
  const h = headerOperations(http.headers);
  for (const [k, v] of Object.entries(h.fields)) out[k] = Array.isArray(out[k]) && Array.isArray(v) ? [...(out[k] as JsonObject[]), ...(v as JsonObject[])] : v;
  if (h.authority && out['route']) (out['route'] as JsonObject)['host_rewrite_literal'] = h.authority;
  const perFilter: JsonObject = {};
  if (http.fault) {
    const f = faultConfig(http.fault);
    if (f) perFilter[FAULT_FILTER] = f;
  }
  if (http.corsPolicy && !ctx.proxyless) perFilter[CORS_FILTER] = corsConfig(http.corsPolicy);
  if (Object.keys(perFilter).length > 0) out['typed_per_filter_config'] = perFilter;
  return out;
}

/** Istio's route for a service no VirtualService routes: everything to the service's cluster. */
export function defaultRoute(svc: ServiceModel, port: PortModel, ctx: RouteContext): JsonObject {
  const t: Target = { cluster: clusterName({ direction: 'outbound', port: port.number, host: svc.host }), svc, port: port.number, subset: undefined };
  const action: JsonObject = { cluster: t.cluster, timeout: '0s', max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' }, retry_policy: retryPolicy(undefined)! };
  const hp = hashPolicy(t, ctx);
  if (hp) action['hash_policy'] = hp;
  return { name: 'default', match: { prefix: '/' }, route: action };
}

/** The Envoy routes of a service port: its VirtualService's http routes, else the default route. */
export function httpRoutes(svc: ServiceModel, port: PortModel, ctx: RouteContext): JsonObject[] {
  const vs = ctx.model.virtualServiceFor(svc.host, ctx.namespace);
  const routes: JsonObject[] = [];
  if (vs) {
    for (const http of arr(vs.spec.http)) {
      if (http.delegate) continue; // delegation is not supported yet (docs/xds.md)
      const matches = arr(http.match);
      if (matches.length === 0) {
        const r = envoyRoute(http, undefined, vs, port.number, ctx);
        if (r) routes.push(r);
        continue;
      }
      for (const m of matches) {
        if (!matchSelected(m, port.number, ctx)) continue;
        const r = envoyRoute(http, m, vs, port.number, ctx);
        if (r) routes.push(r);
      }
    }
  }
  return routes.length > 0 ? routes : [defaultRoute(svc, port, ctx)];
}

/** A TCP port's destination: the first matching tcp route of its VirtualService, else the service itself. */
export function tcpTarget(svc: ServiceModel, port: PortModel, ctx: RouteContext): JsonObject {
  const vs = ctx.model.virtualServiceFor(svc.host, ctx.namespace);
  for (const tcp of arr(vs?.spec.tcp)) {
    const matches = arr(tcp.match);
    if (matches.length > 0 && !matches.some((m) => matchSelected(m, port.number, ctx))) continue;
    const dests = arr(tcp.route).map((d) => ({ d, t: destinationTarget(d.destination, vs!.namespace, port.number, ctx) }));
    const live = dests.length > 1 ? dests.filter((x) => (x.d.weight ?? 0) > 0) : dests;
    if (live.length === 1) return { cluster: live[0]!.t.cluster };
    if (live.length > 1) return { weighted_clusters: { clusters: live.map(({ d, t }) => ({ name: t.cluster, weight: d.weight ?? 0 })) } };
  }
  return { cluster: clusterName({ direction: 'outbound', port: port.number, host: svc.host }) };
}

/** Every destination (route and mirror) of the VirtualService routing `svc` for this client, resolved. */
export function virtualServiceDestinations(vs: VsEntry, model: MeshModel): string[] {
  const hosts: string[] = [];
  for (const http of arr(vs.spec.http)) {
    for (const d of arr(http.route)) hosts.push(model.resolve(d.destination.host, vs.namespace));
    if (http.mirror) hosts.push(model.resolve(http.mirror.host, vs.namespace));
    for (const mp of arr(http.mirrors)) hosts.push(model.resolve(mp.destination.host, vs.namespace));
  }
  for (const t of [...arr(vs.spec.tcp), ...arr(vs.spec.tls)]) for (const d of arr(t.route)) hosts.push(model.resolve(d.destination.host, vs.namespace));
  return hosts;
}
