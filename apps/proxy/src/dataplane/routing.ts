import type { OutgoingHttpHeaders } from 'node:http';
import type { ClusterConfig, Endpoint, HeaderMutations, Route, RouteAction, RouteTable, VirtualHost, WeightedClusterEntry } from '../config/model.ts';
import { buildRedirectUrl, resolveCluster, rewritePath, selectRoute, stripQuery, type RouteRequest } from '../config/route-select.ts';
import type { Engine } from './engine.ts';
import { cookieToGenerate, hashString, requestHash, setCookieValue } from '../config/hash.ts';
import type { UpstreamHost } from '../config/lb.ts';
import type { Destination } from './original-dst.ts';

export type Decision =
  | { kind: 'forward'; route: Route; vh: VirtualHost; action: RouteAction; cluster: string; weighted: WeightedClusterEntry | undefined; path: string; authority: string; mutations: readonly HeaderMutations[] }
  | { kind: 'local'; status: number; flag: string; body?: string | Buffer; headers?: OutgoingHttpHeaders; mutations: readonly HeaderMutations[] | undefined; route?: Route; vh?: VirtualHost };

/**
 * The data plane's view of routing (config/route-select.ts does the matching): one call turns a
 * request into "forward to cluster X with this path/authority and these header mutations" or a
 * local reply. Mutation levels are listed in application order: Envoy applies the most specific
 * level first so that the route table's own mutations win (most_specific_header_mutations_wins
 * unset).
 */
export function decide(table: RouteTable, req: RouteRequest): Decision {
  const sel = selectRoute(table, req);
  if (!('route' in sel)) return { kind: 'local', status: 404, flag: 'NR', mutations: 'virtualHost' in sel ? [sel.virtualHost.headers, table.headers] : [table.headers] };
  const { route, virtualHost: vh } = sel;
  const a = route.action;
  if (a.kind === 'direct') return { kind: 'local', status: a.status, flag: '-', ...(a.body ? { body: a.body } : {}), mutations: [route.headers, vh.headers, table.headers], route, vh };
  if (a.kind === 'redirect') {
    return { kind: 'local', status: a.status, flag: '-', headers: { location: buildRedirectUrl(route, a, req) }, mutations: [route.headers, vh.headers, table.headers], route, vh };
  }
  const { cluster, weighted } = resolveCluster(a.target, req);
  const path = rewritePath(route, a, req.path);
  let authority = req.authority;
  const hr = a.hostRewrite;
  if (weighted?.hostRewrite !== undefined) authority = weighted.hostRewrite;
  else if (hr?.kind === 'literal') authority = hr.value;
  else if (hr?.kind === 'header') {
    const v = req.headers[hr.header];
    if (typeof v === 'string' && v) authority = v;
  } else if (hr?.kind === 'pathRegex') {
    hr.regex.lastIndex = 0;
    authority = stripQuery(req.path).replace(hr.regex, hr.substitution);
  }
  return {
    kind: 'forward', route, vh, action: a, cluster: cluster ?? '', weighted, path, authority,
    mutations: weighted ? [weighted.headers, route.headers, vh.headers, table.headers] : [route.headers, vh.headers, table.headers],
  };
}

/** auto_host_rewrite: the endpoint's hostname, else its address. */
export function autoHost(ep: Endpoint): string {
  return ep.hostname ?? (ep.isPipe ? 'localhost' : `${ep.address}:${ep.port}`);
}

// ------------------------------------------------------------ header mutations

export function applyRequestMutations(out: OutgoingHttpHeaders, levels: readonly HeaderMutations[] | undefined): void {
  if (!levels) return;
  for (const m of levels) {
    if (m.requestRemove.length === 0 && m.requestAdd.length === 0) continue;
    for (const n of m.requestRemove) delete out[n];
    for (const h of m.requestAdd) addHeader(out, h.name, h.value, h.appendAction, h.keepEmptyValue);
  }
}

export function applyResponseMutations(out: OutgoingHttpHeaders, levels: readonly HeaderMutations[] | undefined): void {
  if (!levels) return;
  for (const m of levels) {
    if (m.responseRemove.length === 0 && m.responseAdd.length === 0) continue;
    for (const n of m.responseRemove) delete out[n];
    for (const h of m.responseAdd) addHeader(out, h.name, h.value, h.appendAction, h.keepEmptyValue);
  }
}

function addHeader(out: OutgoingHttpHeaders, name: string, value: string, action: string, keepEmpty: boolean): void {
  if (value === '' && !keepEmpty) return;
  const cur = out[name];
  switch (action) {
    case 'ADD_IF_ABSENT':
      if (cur === undefined) out[name] = value;
      break;
    case 'OVERWRITE_IF_EXISTS_OR_ADD':
      out[name] = value;
      break;
    case 'OVERWRITE_IF_EXISTS':
      if (cur !== undefined) out[name] = value;
      break;
    default:
      out[name] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [String(cur), value];
  }
}

// ------------------------------------------------------------ load balancing

/**
 * Picks an upstream host with the cluster's load balancer (config/lb.ts) and counts it as
 * active; `releaseHost` must follow exactly once.
 */
export function pickHost(engine: Engine, cluster: ClusterConfig, action: RouteAction | undefined, req: RouteRequest | undefined, sourceIp: string, out?: { setCookie?: string }, destination?: Destination, exclude?: ReadonlySet<string>): UpstreamHost | undefined {
  if (cluster.lb.kind === 'CLUSTER_PROVIDED') {
    const host = originalDstHost(engine, cluster, req, destination);
    if (host) {
      host.stats.activeRequests++;
      host.stats.totalRequests++;
    }
    return host;
  }
  const lb = engine.lb.forCluster(cluster);
  let hash: number | undefined;
  if (action && req && action.hashPolicies.length > 0 && (cluster.lb.kind === 'RING_HASH' || cluster.lb.kind === 'MAGLEV')) {
    let headers = req.headers;
    const generated = out ? cookieToGenerate(action.hashPolicies, headers, sourceIp) : undefined;
    if (generated) {
      // Hash as if the client had sent the cookie, so its next request lands on the same host.
      headers = { ...headers, cookie: generated.cookieHeader };
      out!.setCookie = setCookieValue(generated);
    }
    hash = requestHash(action.hashPolicies, { headers, path: req.path, sourceIp, authority: req.authority });
  } else if (!action && (cluster.lb.kind === 'RING_HASH' || cluster.lb.kind === 'MAGLEV') && sourceIp) {
    hash = hashString(sourceIp); // TCP: Envoy hashes the downstream address
  }
  // Retries with previous_hosts pass the endpoints tried so far (the picker falls back to them when nothing else is left).
  const host = exclude === undefined ? lb.pick(hash === undefined ? undefined : { hash }) : (lb.pick(hash === undefined ? { exclude } : { hash, exclude }) ?? lb.pick(hash === undefined ? undefined : { hash }));
  if (host) {
    host.stats.activeRequests++;
    host.stats.totalRequests++;
  }
  return host;
}

/**
 * ORIGINAL_DST: the host the client dialled (the connection's restored destination), or the one
 * named by the cluster's header (original_dst_lb_config.use_http_header) when the request has it.
 * A connection made to the proxy directly has no original destination and gets no host: Envoy
 * would use the listener's own address and connect to itself in a loop.
 */
function originalDstHost(engine: Engine, cluster: ClusterConfig, req: RouteRequest | undefined, destination: Destination | undefined): UpstreamHost | undefined {
  const named = cluster.originalDstHeader !== undefined ? req?.headers[cluster.originalDstHeader] : undefined;
  const dst = typeof named === 'string' ? parseHostPort(named) : destination;
  return dst ? engine.lb.originalDstHost(cluster, dst.address, dst.port) : undefined;
}

/** `1.2.3.4:80` or `[::1]:80`; a name or a missing port is not an address. */
function parseHostPort(v: string): Destination | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(v.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  return port > 0 && port < 65536 ? { address: m[1] ?? m[2]!, port } : undefined;
}

export function releaseHost(host: UpstreamHost): void {
  host.stats.activeRequests--;
}
