/**
 * Request-time routing over a compiled RouteTable: virtual host by Host, first matching route,
 * weighted cluster choice, path rewrites and redirect URLs. Runs on every request: everything is
 * precompiled by buildSnapshot, nothing here compiles a regex or builds per-route objects.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { matchString } from './compile-common.ts';
import type { ClusterTarget, DomainIndex, HeaderMatcher, RedirectAction, Route, RouteAction, RouteMatch, RouteTable, VirtualHost, WeightedClusterEntry } from './model.ts';

/** What routing needs from a request. Header names lower-case (Node's shape, values may be arrays). */
export interface RouteRequest {
  readonly method: string;
  /** :authority / Host, possibly with a port. */
  readonly authority: string;
  /** :path including the query string. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** :scheme, default 'http'. */
  readonly scheme?: string;
}

export type RouteSelection =
  | { readonly virtualHost: VirtualHost; readonly route: Route }
  | { readonly reason: 'no_vhost' }
  | { readonly reason: 'no_route'; readonly virtualHost: VirtualHost };

/**
 * Picks the virtual host and the first route that matches (Envoy: first match wins).
 * `random` is used only for routes with runtime_fraction.
 */
export function selectRoute(table: RouteTable, req: RouteRequest, random: () => number = Math.random): RouteSelection {
  const virtualHost = findVirtualHost(table.domainIndex, req.authority);
  if (!virtualHost) return { reason: 'no_vhost' };
  const ctx: MatchState = { req, pathOnly: undefined, lowerPath: undefined, lowerPathOnly: undefined, query: undefined };
  const routes = virtualHost.routes;
  for (let i = 0; i < routes.length; i++) {
    const route = routes[i]!;
    if (matchRoute(route.match, ctx, random)) return { virtualHost, route };
  }
  return { reason: 'no_route', virtualHost };
}

/**
 * Envoy's domain search: exact, then the longest suffix wildcard (`*.foo.com`, at least one
 * character must match the `*`), then the longest prefix wildcard (`foo.*`), then `*`. The Host
 * is tried as given (with its port) and, when it has a port, again without it, before `*`.
 */
export function findVirtualHost(index: DomainIndex, authority: string): VirtualHost | undefined {
  const host = authority.toLowerCase();
  const found = lookupDomain(index, host);
  if (found) return found;
  const colon = host.lastIndexOf(':');
  if (colon > 0 && host.indexOf(']', colon) < 0 && (host[0] !== '[' || host[colon - 1] === ']')) {
    const bare = lookupDomain(index, host.slice(0, colon));
    if (bare) return bare;
  }
  return index.star;
}

function lookupDomain(index: DomainIndex, host: string): VirtualHost | undefined {
  const exact = index.exact.get(host);
  if (exact) return exact;
  const suffixes = index.suffixes;
  for (let i = 0; i < suffixes.length; i++) {
    const [s, vh] = suffixes[i]!;
    if (host.length > s.length && host.endsWith(s)) return vh;
  }
  const prefixes = index.prefixes;
  for (let i = 0; i < prefixes.length; i++) {
    const [p, vh] = prefixes[i]!;
    if (host.length > p.length && host.startsWith(p)) return vh;
  }
  return undefined;
}

/** Per-request lazily computed views of the path (computed at most once per request). */
interface MatchState {
  readonly req: RouteRequest;
  pathOnly: string | undefined;
  lowerPath: string | undefined;
  lowerPathOnly: string | undefined;
  query: Map<string, string> | undefined;
}

function pathOnly(s: MatchState): string {
  if (s.pathOnly === undefined) s.pathOnly = stripQuery(s.req.path);
  return s.pathOnly;
}

export function stripQuery(path: string): string {
  const q = path.indexOf('?');
  const h = path.indexOf('#');
  const end = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  return end < 0 ? path : path.slice(0, end);
}

function matchRoute(m: RouteMatch, s: MatchState, random: () => number): boolean {
  const pm = m.path;
  switch (pm.kind) {
    case 'prefix': {
      // Envoy matches a prefix against the whole :path, query string included.
      const p = pm.caseSensitive ? s.req.path : (s.lowerPath ??= s.req.path.toLowerCase());
      if (!p.startsWith(pm.value)) return false;
      break;
    }
    case 'path': {
      const p = pm.caseSensitive ? pathOnly(s) : (s.lowerPathOnly ??= pathOnly(s).toLowerCase());
      if (p !== pm.value) return false;
      break;
    }
    case 'separated': {
      const p = pm.caseSensitive ? pathOnly(s) : (s.lowerPathOnly ??= pathOnly(s).toLowerCase());
      if (!p.startsWith(pm.value) || (p.length !== pm.value.length && p.charCodeAt(pm.value.length) !== 47)) return false;
      break;
    }
    default:
      if (!pm.regex.test(pathOnly(s))) return false;
  }
  if (m.grpc) {
    const ct = s.req.headers['content-type'];
    if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) return false;
  }
  const headers = m.headers;
  for (let i = 0; i < headers.length; i++) if (!matchHeader(headers[i]!, s.req)) return false;
  const qps = m.queryParameters;
  if (qps.length > 0) {
    const query = (s.query ??= parseQuery(s.req.path));
    for (let i = 0; i < qps.length; i++) {
      const qp = qps[i]!;
      const v = query.get(qp.name);
      if (v === undefined) return false;
      if (qp.rule.kind === 'string' && !matchString(qp.rule.matcher, v)) return false;
    }
  }
  if (m.fraction !== undefined && !(random() < m.fraction)) return false;
  return true;
}

/** A request header's value as Envoy sees it: pseudo-headers from the request line, repeated values joined by ','. */
export function headerValue(req: RouteRequest, name: string): string | undefined {
  if (name.charCodeAt(0) === 58 /* ':' */) {
    switch (name) {
      case ':method':
        return req.method;
      case ':authority':
        return req.authority;
      case ':path':
        return req.path;
      case ':scheme':
        return req.scheme ?? 'http';
      default:
        return undefined;
    }
  }
  if (name === 'host') return req.authority;
  const v = req.headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

/** Envoy's HeaderUtility::matchHeaders for one matcher. */
export function matchHeader(m: HeaderMatcher, req: RouteRequest): boolean {
  let value = headerValue(req, m.name);
  if (value === undefined) {
    if (!m.treatMissingAsEmpty) {
      // Absent: only present_match can match (present:false, or inverted present:true).
      return m.rule.kind === 'present' && (m.invert ? m.rule.present : !m.rule.present);
    }
    value = '';
  }
  let matched: boolean;
  switch (m.rule.kind) {
    case 'string':
      matched = matchString(m.rule.matcher, value);
      break;
    case 'present':
      matched = m.rule.present;
      break;
    default: {
      const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
      matched = Number.isInteger(n) && n >= m.rule.start && n < m.rule.end;
    }
  }
  return matched !== m.invert;
}

/** Query string → first value per (decoded) name, as Envoy's query parameter matcher reads it. */
export function parseQuery(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0) return out;
  const h = path.indexOf('#', q);
  const text = path.slice(q + 1, h < 0 ? undefined : h);
  for (const part of text.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq));
    if (!out.has(name)) out.set(name, eq < 0 ? '' : decode(part.slice(eq + 1)));
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** Chooses a weighted cluster: `random()` in [0, 1) scaled to the total weight. */
export function pickWeightedCluster(target: { readonly clusters: readonly WeightedClusterEntry[]; readonly totalWeight: number }, random: () => number = Math.random): WeightedClusterEntry {
  let r = Math.floor(random() * target.totalWeight);
  const clusters = target.clusters;
  for (let i = 0; i < clusters.length; i++) {
    const c = clusters[i]!;
    if (r < c.weight) return c;
    r -= c.weight;
  }
  return clusters[clusters.length - 1]!;
}

/**
 * The cluster a RouteAction sends this request to, plus the chosen weighted entry (for its header
 * mutations). For cluster_header the name comes from the request; undefined when the header is absent.
 */
export function resolveCluster(target: ClusterTarget, req: RouteRequest, random: () => number = Math.random): { cluster: string | undefined; weighted?: WeightedClusterEntry } {
  switch (target.kind) {
    case 'cluster':
      return { cluster: target.cluster };
    case 'weighted': {
      const w = pickWeightedCluster(target, random);
      return { cluster: w.cluster, weighted: w };
    }
    default: {
      const v = headerValue(req, target.header);
      return { cluster: v || undefined };
    }
  }
}

/**
 * The upstream :path after prefix_rewrite / regex_rewrite (Envoy semantics): prefix_rewrite
 * replaces the part the route's prefix (or exact path) matched; regex_rewrite substitutes every
 * match in the path without its query string, which is kept.
 */
export function rewritePath(route: Route, action: Pick<RouteAction, 'prefixRewrite' | 'regexRewrite'>, path: string): string {
  if (action.prefixRewrite !== undefined) {
    const pm = route.match.path;
    if (pm.kind === 'prefix' || pm.kind === 'separated') return action.prefixRewrite + path.slice(pm.value.length);
    if (pm.kind === 'path') {
      const only = stripQuery(path);
      return action.prefixRewrite + path.slice(only.length);
    }
    return path;
  }
  if (action.regexRewrite) {
    const only = stripQuery(path);
    const { regex, substitution } = action.regexRewrite;
    regex.lastIndex = 0;
    return only.replace(regex, substitution) + path.slice(only.length);
  }
  return path;
}

const DEFAULT_PORT: Record<string, number> = { http: 80, https: 443 };

/** The Location for a redirect route (Envoy's rules: unset parts keep the request's). */
export function buildRedirectUrl(route: Route, action: RedirectAction, req: { readonly scheme?: string; readonly authority: string; readonly path: string }): string {
  const origScheme = (req.scheme ?? 'http').toLowerCase();
  const scheme = action.scheme ?? origScheme;
  let { host, port } = splitHostPort(req.authority);
  if (action.host !== undefined) {
    const hp = splitHostPort(action.host);
    host = hp.host;
    port = hp.port;
  }
  if (action.port !== undefined) port = action.port;
  else if (action.scheme !== undefined && action.scheme !== origScheme && port === DEFAULT_PORT[origScheme]) port = undefined;
  if (port !== undefined && port === DEFAULT_PORT[scheme]) port = undefined;

  let path = req.path;
  if (action.path !== undefined) {
    // path_redirect replaces path and, if it carries one, the query string.
    const q = path.indexOf('?');
    path = action.path.includes('?') || q < 0 ? action.path : action.path + path.slice(q);
  } else if (action.prefixRewrite !== undefined || action.regexRewrite) {
    path = rewritePath(route, action, path);
  }
  if (action.stripQuery) path = stripQuery(path);
  return `${scheme}://${host}${port !== undefined ? `:${port}` : ''}${path}`;
}

function splitHostPort(authority: string): { host: string; port: number | undefined } {
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && authority.indexOf(']', colon) < 0 && /^\d+$/.test(authority.slice(colon + 1))) {
    return { host: authority.slice(0, colon), port: Number(authority.slice(colon + 1)) };
  }
  return { host: authority, port: undefined };
}
