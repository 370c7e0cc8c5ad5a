/**
 * buildSnapshot: the complete set of resources per type → a validated, compiled ProxySnapshot.
 * Pure (apart from reusing unchanged compiled objects of a previous snapshot, which are immutable).
 */
import { TYPE_URL, type JsonObject } from '@tern/xds';
import { compileCluster, edsServiceName } from './compile-cluster.ts';
import { compileListener } from './compile-listener.ts';
import { compileRouteTable } from './compile-route.ts';
import { ConfigError, type ClusterConfig, type ListenerConfig, type ProxySnapshot, type ResourceSet, type RouteTable } from './model.ts';

const KNOWN_TYPES = new Set<string>([TYPE_URL.listener, TYPE_URL.route, TYPE_URL.cluster, TYPE_URL.endpoint, TYPE_URL.secret]);

export interface BuildOptions {
  /** Version string of the new snapshot (ConfigStore passes a counter). */
  readonly version?: string;
  /** xDS version_info per type URL, kept on the snapshot. */
  readonly typeVersions?: ReadonlyMap<string, string>;
  /** A previous snapshot whose compiled objects may be reused where the raw JSON is the same object. */
  readonly previous?: ProxySnapshot;
}

const EMPTY_SET: ResourceSet = new Map();

/** The empty snapshot (no listeners, no clusters), version "0". */
export function emptySnapshot(): ProxySnapshot {
  return {
    version: '0',
    listeners: new Map(),
    routes: new Map(),
    clusters: new Map(),
    secrets: new Map(),
    resources: new Map(),
    typeVersions: new Map(),
    missing: { routes: new Set(), clusters: new Set(), endpoints: new Set() },
  };
}

/**
 * Validates and compiles every resource. Throws ConfigError for the first invalid or unsupported
 * one. References to route tables, clusters or endpoints not received yet are not errors; they
 * are listed in `missing`.
 */
export function buildSnapshot(resources: ReadonlyMap<string, ResourceSet>, opts: BuildOptions = {}): ProxySnapshot {
  for (const typeUrl of resources.keys()) {
    if (!KNOWN_TYPES.has(typeUrl)) throw new ConfigError(typeUrl, '', '', `resource type ${typeUrl} is not supported`);
  }
  const prev = opts.previous;
  const get = (t: string) => resources.get(t) ?? EMPTY_SET;
  const sameRaw = (t: string, name: string, json: JsonObject) => prev?.resources.get(t)?.get(name)?.json === json;

  checkNames(TYPE_URL.listener, get(TYPE_URL.listener), 'name');
  checkNames(TYPE_URL.route, get(TYPE_URL.route), 'name');
  checkNames(TYPE_URL.cluster, get(TYPE_URL.cluster), 'name');
  checkNames(TYPE_URL.endpoint, get(TYPE_URL.endpoint), 'cluster_name');

  // Clusters (with their endpoints).
  const clusters = new Map<string, ClusterConfig>();
  const endpointsSet = get(TYPE_URL.endpoint);
  const missingEndpoints = new Set<string>();
  for (const [name, entry] of sortedEntries(get(TYPE_URL.cluster))) {
    const service = edsServiceName(entry.json);
    const cla = service !== undefined ? endpointsSet.get(service) : undefined;
    if (service !== undefined && !cla) missingEndpoints.add(service);
    const old = prev?.clusters.get(name);
    const reuse =
      old && sameRaw(TYPE_URL.cluster, name, entry.json) && (service === undefined || prev!.resources.get(TYPE_URL.endpoint)?.get(service)?.json === cla?.json);
    clusters.set(name, reuse ? old : compileCluster(entry.json, cla?.json));
  }
  // ClusterLoadAssignments nobody references yet are still validated (and kept raw): a bad one must be NACKed.
  for (const [name, entry] of sortedEntries(endpointsSet)) {
    if (prev?.resources.get(TYPE_URL.endpoint)?.get(name)?.json === entry.json) continue;
    validateAssignment(name, entry.json);
  }

  // Route tables.
  const routes = new Map<string, RouteTable>();
  for (const [name, entry] of sortedEntries(get(TYPE_URL.route))) {
    const old = prev?.routes.get(name);
    routes.set(name, old && sameRaw(TYPE_URL.route, name, entry.json) ? old : compileRouteTable(entry.json));
  }

  // Listeners, with the duplicate-address check across them.
  const listeners = new Map<string, ListenerConfig>();
  const bound = new Map<string, string>();
  const missingRoutes = new Set<string>();
  for (const [name, entry] of sortedEntries(get(TYPE_URL.listener))) {
    const old = prev?.listeners.get(name);
    const l = old && sameRaw(TYPE_URL.listener, name, entry.json) ? old : compileListener(entry.json);
    if (l.bindToPort) {
      const key = `${l.address.address}:${l.address.port}`;
      const other = bound.get(key);
      if (other !== undefined && l.address.port !== 0) {
        throw new ConfigError(TYPE_URL.listener, name, 'address', `${key} is already used by listener "${other}"`);
      }
      bound.set(key, name);
    }
    listeners.set(name, l);
    for (const chain of [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])]) {
      if (chain.handler.kind === 'http' && chain.handler.routeSource.kind === 'rds' && !routes.has(chain.handler.routeSource.name)) {
        missingRoutes.add(chain.handler.routeSource.name);
      }
    }
  }

  const missingClusters = new Set<string>();
  const want = (c: string) => {
    if (!clusters.has(c)) missingClusters.add(c);
  };
  const tables = [...routes.values()];
  for (const l of listeners.values()) {
    for (const chain of [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])]) {
      const h = chain.handler;
      if (h.kind === 'tcp') {
        if (h.target.kind === 'cluster') want(h.target.cluster);
        else h.target.clusters.forEach((c) => want(c.cluster));
      } else if (h.routeSource.kind === 'inline') tables.push(h.routeSource.table);
    }
  }
  for (const t of tables) {
    for (const vh of t.virtualHosts) {
      for (const r of vh.routes) {
        if (r.action.kind !== 'route') continue;
        const target = r.action.target;
        if (target.kind === 'cluster') want(target.cluster);
        else if (target.kind === 'weighted') target.clusters.forEach((c) => want(c.cluster));
        r.action.mirrors.forEach((m) => want(m.cluster));
      }
    }
  }

  const secrets = new Map<string, JsonObject>();
  for (const [name, entry] of sortedEntries(get(TYPE_URL.secret))) secrets.set(name, entry.json);

  return {
    version: opts.version ?? String(Number(prev?.version ?? '0') + 1),
    listeners,
    routes,
    clusters,
    secrets,
    resources: new Map([...resources].map(([t, set]) => [t, new Map(set)] as const)),
    typeVersions: new Map(opts.typeVersions ?? prev?.typeVersions ?? []),
    missing: { routes: missingRoutes, clusters: missingClusters, endpoints: missingEndpoints },
  };
}

/** Envoy identifies resources by their own name field; a mismatch is a control-plane bug worth a NACK. */
function checkNames(typeUrl: string, set: ResourceSet, field: string): void {
  for (const [name, entry] of set) {
    const own = entry.json[field];
    if (typeof own !== 'string' || own === '') throw new ConfigError(typeUrl, name, field, 'is required');
    if (own !== name) throw new ConfigError(typeUrl, name, field, `is ${JSON.stringify(own)} but the resource was delivered as ${JSON.stringify(name)}`);
  }
}

function validateAssignment(name: string, json: JsonObject): void {
  // An EDS cluster compiles its assignment; this catches assignments delivered before their cluster.
  compileCluster({ name: `eds:${name}`, type: 'EDS', eds_cluster_config: { service_name: name } }, json, { typeUrl: TYPE_URL.endpoint, name });
}

function sortedEntries(set: ResourceSet) {
  return [...set].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
