import { clusterName, type JsonObject } from '@tern/xds';
import type { MeshSnapshot, WorkloadRow } from '../store/snapshot.ts';
import { arr, backsService, hostMatches, labelsOf, scopeIncludes } from '../policy/mesh-model.ts';
import { AuthzIndex, rbacHttpFilters, samePolicies, type AuthzPolicy } from './authz.ts';
import { changedHosts } from './changes.ts';
import { clusterDiscovery, inboundCluster, outboundCluster, passthroughCluster, proxylessCanUse, type ClusterContext } from './cluster.ts';
import { clusterLoadAssignment, dnsLoadAssignment, workloadPort, type AcceptsMtls } from './endpoints.ts';
import { apiListener, FORWARD_PROXY_ROUTE, hcm, hcmFilter, INBOUND_PASSTHROUGH, inboundRouteConfig, listener, tcpProxyFilter, virtualInbound, virtualOutbound } from './listeners.ts';
import { needsTlsInspector, PeerAuthIndex, peerChains, peerModeFor, TLS_INSPECTOR, type PeerPolicy } from './mtls.ts';
import { MeshModel, type PortModel, type ServiceModel } from './model.ts';
import { effectivePolicy } from './policy.ts';
import { domainsFor, hostNames, httpRoutes, tcpTarget, virtualServiceDestinations, type RouteContext } from './routes.ts';
import type { CompileOptions, PreparedMesh, ProxyIdentity, ProxyResources } from './types.ts';
import { cmpStr, Interner, labelsKey, ObjectIds, sortedMap } from './util.ts';

// prepareMesh: index a revision once, then compile per proxy from caches. Everything a proxy gets
// is interned by the inputs that decide it, so proxies with identical output share objects.


type Kind = ProxyIdentity['kind'];

interface Outbound {
  clusters: Map<string, JsonObject>;
  endpoints: Map<string, JsonObject>;
}

/** What decides a proxy's view of routes and DestinationRules: its namespace, and its labels only when some policy reads them. */
interface ClientView {
  key: string;
  namespace: string;
  labels: Record<string, string>;
  kind: Kind;
}

/** The AuthorizationPolicies that apply to a workload and the RBAC filters they compile to. */
interface Authz {
  policies: AuthzPolicy[];
  filters: JsonObject[];
}

const NO_AUTHZ: Authz = { policies: [], filters: [] };

/** What shapes a proxy's listeners apart from the mesh (identities are immutable: computed once per proxy). */
const shapeKeys = new WeakMap<ProxyIdentity, string>();

function shapeKey(proxy: ProxyIdentity): string {
  let k = shapeKeys.get(proxy);
  if (k === undefined) {
    k = JSON.stringify([proxy.interception, proxy.outboundPort, proxy.inboundPort, proxy.upstreams, proxy.appPorts]);
    shapeKeys.set(proxy, k);
  }
  return k;
}

class Prepared implements PreparedMesh {
  private readonly model: MeshModel;
  private readonly clusterCtx: { sidecar: ClusterContext; proxyless: ClusterContext };
  private readonly clusterId: string;
  private readonly labelsMatter: boolean;
  private readonly ids = new ObjectIds();
  private readonly scopes = new Interner<ServiceModel[]>();
  private readonly outbound = new Interner<Outbound>();
  private readonly clusters = new Interner<JsonObject>();
  private readonly loadAssignments = new Interner<JsonObject>();
  private readonly vhosts = new Interner<JsonObject>();
  private readonly routeConfigs = new Interner<JsonObject>();
  private readonly listeners = new Interner<JsonObject>();
  private readonly results = new Interner<ProxyResources>();
  private readonly maps = new Interner<Map<string, JsonObject>>();
  private readonly authz: AuthzIndex;
  private readonly authzSets = new Interner<Authz>();
  /** Per identity, like scopeOf: compileFor and changedSince ask for the same proxy repeatedly. */
  private readonly authzOf = new WeakMap<ProxyIdentity, Authz>();
  /** Per identity (the server asks for the same proxy in this revision and, for changedSince, the next). */
  private readonly scopeOf = new WeakMap<ProxyIdentity, ServiceModel[]>();
  private readonly changedFrom = new WeakMap<PreparedMesh, (proxy: ProxyIdentity) => boolean>();
  /** PeerAuthentications; undefined unless options.mtls (then nothing inbound reads them). */
  private readonly peers: PeerAuthIndex | undefined;
  private readonly peerOf = new WeakMap<ProxyIdentity, PeerPolicy>();
  private readonly acceptsMtls: AcceptsMtls | undefined;

  constructor(
    mesh: MeshSnapshot,
    readonly revision: string,
    private readonly options: CompileOptions,
  ) {
    this.model = new MeshModel(mesh, options.domainSuffix, options.rootNamespace ?? 'istio-system');
    const mtls = options.mtls ?? false;
    this.clusterCtx = {
      sidecar: { proxyless: false, mtls, trustDomain: options.trustDomain },
      // grpc-js-xds takes certificates from file-watcher certificate providers, not SDS: proxyless
      // clients stay plain text (a STRICT server refuses them; see docs/xds.md "Mutual TLS").
      proxyless: { proxyless: true, mtls: false, trustDomain: options.trustDomain },
    };
    this.clusterId = options.clusterId ?? 'Kubernetes';
    this.authz = new AuthzIndex(mesh, options.rootNamespace ?? 'istio-system');
    this.peers = mtls ? new PeerAuthIndex(mesh, options.rootNamespace ?? 'istio-system') : undefined;
    const peers = this.peers;
    this.acceptsMtls = peers ? (w, port) => peers.acceptsMtls(w.namespace, labelsOf(w.labels), port) : undefined;
    this.labelsMatter = this.model.virtualServices.some((v) => v.usesSourceLabels) || this.model.destinationRules.some((d) => d.selector !== undefined);
  }

  compileFor(proxy: ProxyIdentity): ProxyResources {
    const workload = proxy.workload ? this.model.workloadsByKey.get(`${proxy.namespace}/${proxy.workload}`) : undefined;
    const labels = workload ? labelsOf(workload.labels) : proxy.labels;
    const view: ClientView = {
      key: `${proxy.namespace}|${proxy.kind}|${this.labelsMatter ? labelsKey(labels) : ''}`,
      namespace: proxy.namespace,
      labels,
      kind: proxy.kind,
    };
    const scope = this.scopeFor(proxy);
    const scopeKey = this.ids.of(scope);
    // The whole result depends on these and nothing else (node.id does not change resources). The
    // workload row stands for its name, addresses and ports (one row per name in a revision).
    // The applicable AuthorizationPolicies follow from namespace and labels, already in the key; named
    // anyway so that the key states every input.
    const key = `${scopeKey}|${view.key}|${shapeKey(proxy)}|${workload ? `w${this.ids.of(workload)}` : `l${labelsKey(proxy.labels)}`}|z${this.ids.of(this.authzFor(proxy, workload))}${this.peers ? `|p${this.peerFor(proxy, workload)?.key ?? ''}` : ''}`;
    return this.results.get(key, () => this.build(proxy, view, scope, workload));
  }

  /**
   * Which proxies may compile differently here than in `previous`: those whose scope changed, whose
   * scope holds a changed host, or whose own workload or services changed. Anything else compiles
   * to equal output, so the server need not compile or push for it.
   */
  changedSince(previous: PreparedMesh): (proxy: ProxyIdentity) => boolean {
    // Asked twice per change (warming ahead of the push, then the push): found once.
    let verdict = this.changedFrom.get(previous);
    if (!verdict) this.changedFrom.set(previous, (verdict = this.findChanges(previous)));
    return verdict;
  }

  private findChanges(previous: PreparedMesh): (proxy: ProxyIdentity) => boolean {
    if (!(previous instanceof Prepared) || previous.options !== this.options) return () => true;
    const prev = previous;
    const hosts = changedHosts(prev.model, this.model);
    // Endpoints' tlsMode follows their workload's PeerAuthentication (DISABLE or not): hosts whose
    // workloads moved in or out of DISABLE changed for every client that reaches them.
    if (this.peers && prev.peers && this.peers.signature !== prev.peers.signature) {
      for (const svc of this.model.services) {
        if (hosts.has(svc.host)) continue;
        const moved = svc.workloads.some((w) => svc.ports.some((p) => prev.acceptsMtls!(w, workloadPort(w, p)) !== this.acceptsMtls!(w, workloadPort(w, p))));
        if (moved) hosts.add(svc.host);
      }
    }
    // Per scope (interned, so a handful per mesh): does it differ, or hold a changed host?
    const scopeVerdict = new Map<ServiceModel[], Map<ServiceModel[], boolean>>();
    const scopeChanged = (a: ServiceModel[], b: ServiceModel[]): boolean => {
      let inner = scopeVerdict.get(b);
      if (!inner) scopeVerdict.set(b, (inner = new Map()));
      let v = inner.get(a);
      if (v === undefined) {
        v = a.length !== b.length || a.some((s, i) => s.id !== b[i]!.id) || b.some((s) => hosts.has(s.host));
        inner.set(a, v);
      }
      return v;
    };
    return (proxy) => {
      if (scopeChanged(prev.scopeFor(proxy), this.scopeFor(proxy))) return true;
      const key = proxy.workload ? `${proxy.namespace}/${proxy.workload}` : undefined;
      const wa = key ? prev.model.workloadsByKey.get(key) : undefined;
      const wb = key ? this.model.workloadsByKey.get(key) : undefined;
      if (wa !== wb) return true;
      // An AuthorizationPolicy added, removed or edited that applies to the workload before or after.
      if (!samePolicies(prev.authzFor(proxy, wa).policies, this.authzFor(proxy, wb).policies)) return true;
      // A PeerAuthentication change matters only where it changes the effective mode.
      if (prev.peerFor(proxy, wa)?.key !== this.peerFor(proxy, wb)?.key) return true;
      const oa = prev.ownServices(proxy, wa);
      const ob = this.ownServices(proxy, wb);
      return oa.length !== ob.length || oa.some((s, i) => s.id !== ob[i]!.id) || ob.some((s) => hosts.has(s.host));
    };
  }

  // ---- authorization ------------------------------------------------------------------------

  /** Interned per set of applicable policies: workloads under the same policies share the filters. */
  private authzFor(proxy: ProxyIdentity, workload: WorkloadRow | undefined): Authz {
    if (proxy.kind === 'proxyless' || this.authz.empty) return NO_AUTHZ;
    let a = this.authzOf.get(proxy);
    if (!a) this.authzOf.set(proxy, (a = this.computeAuthz(proxy, workload)));
    return a;
  }

  /** `workload` is always this revision's row for the proxy (compileFor and findChanges look it up the same way). */
  private computeAuthz(proxy: ProxyIdentity, workload: WorkloadRow | undefined): Authz {
    const policies = this.authz.applicable(proxy.namespace, workload ? labelsOf(workload.labels) : proxy.labels);
    if (policies.length === 0) return NO_AUTHZ;
    return this.authzSets.get(policies.map((p) => `${p.namespace}/${p.name}`).join('\u0000'), () => ({
      policies,
      filters: rbacHttpFilters(policies, { trustDomain: this.options.trustDomain }),
    }));
  }

  // ---- mutual TLS --------------------------------------------------------------------------

  /** The effective PeerAuthentication of a sidecar (undefined when mtls is off or for proxyless clients, which have no inbound). */
  private peerFor(proxy: ProxyIdentity, workload: WorkloadRow | undefined): PeerPolicy | undefined {
    if (!this.peers || proxy.kind === 'proxyless') return undefined;
    let p = this.peerOf.get(proxy);
    if (!p) this.peerOf.set(proxy, (p = this.peers.effective(proxy.namespace, workload ? labelsOf(workload.labels) : proxy.labels)));
    return p;
  }

  // ---- scoping -----------------------------------------------------------------------------

  private scopeFor(proxy: ProxyIdentity): ServiceModel[] {
    let scope = this.scopeOf.get(proxy);
    if (!scope) this.scopeOf.set(proxy, (scope = this.computeScope(proxy)));
    return scope;
  }

  private computeScope(proxy: ProxyIdentity): ServiceModel[] {
    const ns = proxy.namespace;
    if (proxy.kind === 'proxyless') return this.scopes.get(`proxyless|${ns}`, () => this.firstPerHost(this.model.services.filter((s) => scopeIncludes(s.scope, ns)), ns));
    const egress = proxy.egressHosts ?? ['./*'];
    const upstreamHosts = proxy.upstreams.map((u) => this.model.resolveUpstream(u.host, ns)).sort();
    return this.scopes.get(JSON.stringify(['sidecar', ns, egress, upstreamHosts]), () => {
      const chosen = new Set<ServiceModel>();
      for (const s of this.model.services) {
        if (!scopeIncludes(s.scope, ns)) continue;
        if (egress.some((e) => this.egressAllows(e, s, ns)) || upstreamHosts.includes(s.host)) chosen.add(s);
      }
      // Closure: what the VirtualServices of reachable hosts route or mirror to is reachable too.
      const queue = [...chosen];
      while (queue.length > 0) {
        const s = queue.pop()!;
        const vs = this.model.virtualServiceFor(s.host, ns);
        if (!vs) continue;
        for (const h of virtualServiceDestinations(vs, this.model)) {
          for (const d of this.model.servicesMatching(h, ns)) {
            if (!chosen.has(d)) {
              chosen.add(d);
              queue.push(d);
            }
          }
        }
      }
      return this.firstPerHost(chosen, ns);
    });
  }

  /** One service per host (a registry service before a ServiceEntry of the same name), sorted. */
  private firstPerHost(services: Iterable<ServiceModel>, ns: string): ServiceModel[] {
    return [...services].filter((s) => this.model.serviceFor(s.host, ns) === s).sort((a, b) => cmpStr(a.id, b.id));
  }

  /** Istio Sidecar egress host "namespace/host" against a service. */
  private egressAllows(entry: string, s: ServiceModel, proxyNs: string): boolean {
    const slash = entry.indexOf('/');
    const nsPart = entry.slice(0, slash);
    const hostPart = entry.slice(slash + 1);
    if (nsPart === '~') return false;
    if (nsPart !== '*' && (nsPart === '.' ? proxyNs : nsPart) !== s.namespace) return false;
    if (hostPart === '*') return true;
    if (hostPart.includes('*')) return hostMatches(hostPart, s.host) || hostPart === s.host;
    return s.host === hostPart || hostNames(s, s.namespace).includes(hostPart);
  }

  // ---- outbound: clusters and endpoints ------------------------------------------------------

  private routeContext(view: ClientView): RouteContext {
    return { model: this.model, namespace: view.namespace, labels: view.labels, proxyless: view.kind === 'proxyless' };
  }

  private outboundFor(scope: ServiceModel[], view: ClientView): Outbound {
    return this.outbound.get(`${this.ids.of(scope)}#${view.key}`, () => {
      const clusters = new Map<string, JsonObject>();
      const endpoints = new Map<string, JsonObject>();
      const proxyless = view.kind === 'proxyless';
      const ctx = proxyless ? this.clusterCtx.proxyless : this.clusterCtx.sidecar;
      for (const svc of scope) {
        if (proxyless && !proxylessCanUse(svc)) continue;
        const dr = this.model.destinationRuleFor(svc, view.namespace, view.labels);
        const subsets: Array<{ name: string | undefined; labels: Record<string, string> | undefined }> = [{ name: undefined, labels: undefined }];
        for (const s of arr(dr?.spec.subsets)) if (s.name) subsets.push({ name: s.name, labels: labelsOf(s.labels) });
        for (const port of svc.ports) {
          if (proxyless && !port.http) continue;
          for (const subset of subsets) {
            const name = clusterName({ direction: 'outbound', port: port.number, ...(subset.name ? { subset: subset.name } : {}), host: svc.host });
            const drKey = dr ? `${dr.namespace}/${dr.name}` : '';
            const discovery = clusterDiscovery(svc);
            const cluster = this.clusters.get(`${svc.id}#${name}#${drKey}#${view.kind}`, () => {
              const dns = discovery === 'STRICT_DNS' || discovery === 'LOGICAL_DNS' ? dnsLoadAssignment(name, svc, port, subset.labels, this.clusterId) : undefined;
              return outboundCluster(svc, port, subset.name, effectivePolicy(dr, port.number, subset.name), ctx, dns);
            });
            clusters.set(name, cluster);
            if (cluster['type'] === 'EDS') {
              endpoints.set(
                name,
                // Shared by sidecars and proxyless clients: the tlsMode label follows the option, not the client.
                this.loadAssignments.get(`${svc.id}#${name}#${labelsKey(subset.labels ?? {})}`, () => clusterLoadAssignment(name, svc, port, subset.labels, this.clusterId, this.clusterCtx.sidecar.mtls, this.acceptsMtls)),
              );
            }
          }
        }
      }
      // Sorted once here: most proxies get these maps as they are (see finish).
      return { clusters: sortedMap(clusters), endpoints: sortedMap(endpoints) };
    });
  }

  // ---- routes ------------------------------------------------------------------------------

  private virtualHost(svc: ServiceModel, port: PortModel, view: ClientView, domains: 'bare' | 'port' | 'any'): JsonObject {
    return this.vhosts.get(`${svc.id}|${port.number}|${view.key}|${domains}`, () => ({
      name: `${svc.host}:${port.number}`,
      domains: domains === 'any' ? ['*'] : domainsFor(svc, port, view.namespace, domains === 'bare'),
      routes: httpRoutes(svc, port, this.routeContext(view)),
    }));
  }

  /** A route configuration from virtual hosts, interned by name and the identity of its hosts. */
  private routeConfig(name: string, vhosts: JsonObject[]): JsonObject {
    return this.routeConfigs.get(`${name}#${vhosts.map((v) => this.ids.of(v)).join(',')}`, () => {
      // Two hosts may claim one name (a service host and a ServiceEntry host, say): Envoy rejects
      // duplicate domains, so the first in order keeps it.
      const taken = new Set<string>();
      const out: JsonObject[] = [];
      for (const v of vhosts) {
        const domains = v['domains'] as string[];
        const free = domains.filter((d) => !taken.has(d));
        for (const d of free) taken.add(d);
        if (free.length === 0) continue;
        out.push(free.length === domains.length ? v : { ...v, domains: free });
      }
      return { name, virtual_hosts: out, validate_clusters: false };
    });
  }

  private allowAny(): JsonObject {
    return this.vhosts.get('allow_any', () => ({
      name: 'allow_any',
      domains: ['*'],
      routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster', timeout: '0s', max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' } } }],
    }));
  }

  // ---- per proxy -----------------------------------------------------------------------------

  private build(proxy: ProxyIdentity, view: ClientView, scope: ServiceModel[], workload: WorkloadRow | undefined): ProxyResources {
    const out = this.outboundFor(scope, view);
    /** The proxy's own clusters (inbound, passthrough), on top of the scope's outbound ones. */
    const clusters = new Map<string, JsonObject>();
    const endpoints = out.endpoints;
    const routes = new Map<string, JsonObject>();
    const listeners = new Map<string, JsonObject>();

    if (proxy.kind === 'proxyless') {
      for (const svc of scope) {
        if (!proxylessCanUse(svc)) continue;
        const httpPorts = svc.ports.filter((p) => p.http);
        for (const port of httpPorts) {
          const rcName = `${svc.host}:${port.number}`;
          routes.set(rcName, this.routeConfig(rcName, [this.virtualHost(svc, port, view, 'bare')]));
          const names = hostNames(svc, view.namespace).map((n) => `${n}:${port.number}`);
          if (svc.ports.length === 1) names.push(...hostNames(svc, view.namespace));
          for (const n of names) if (!listeners.has(n)) listeners.set(n, this.listeners.get(`api|${n}|${rcName}`, () => apiListener(n, rcName)));
        }
      }
      return this.finish(listeners, routes, out.clusters, clusters, endpoints);
    }

    if (proxy.interception === 'REDIRECT') this.redirectOutbound(proxy, view, scope, listeners, routes, clusters);
    else this.localOutbound(proxy, view, scope, listeners, routes);
    this.inbound(proxy, view, workload, listeners, clusters);
    return this.finish(listeners, routes, out.clusters, clusters, endpoints);
  }

  /** Services of the scope by port number, HTTP and TCP apart. */
  private byPort(scope: ServiceModel[]): Map<number, { http: Array<[ServiceModel, PortModel]>; tcp: Array<[ServiceModel, PortModel]> }> {
    const m = new Map<number, { http: Array<[ServiceModel, PortModel]>; tcp: Array<[ServiceModel, PortModel]> }>();
    for (const svc of scope) {
      for (const p of svc.ports) {
        const e = m.get(p.number) ?? m.set(p.number, { http: [], tcp: [] }).get(p.number)!;
        (p.http ? e.http : e.tcp).push([svc, p]);
      }
    }
    return new Map([...m].sort(([a], [b]) => a - b));
  }

  private localOutbound(proxy: ProxyIdentity, view: ClientView, scope: ServiceModel[], listeners: Map<string, JsonObject>, routes: Map<string, JsonObject>): void {
    if (proxy.outboundPort > 0) {
      const vhosts: JsonObject[] = [];
      for (const [, e] of this.byPort(scope)) for (const [svc, port] of e.http) vhosts.push(this.virtualHost(svc, port, view, port.number === 80 ? 'bare' : 'port'));
      routes.set(FORWARD_PROXY_ROUTE, this.routeConfig(FORWARD_PROXY_ROUTE, vhosts));
      const name = `127.0.0.1_${proxy.outboundPort}`;
      listeners.set(name, this.listeners.get(`fwd|${name}`, () => listener(name, '127.0.0.1', proxy.outboundPort, [{ filters: [hcmFilter(hcm(FORWARD_PROXY_ROUTE, { rds: FORWARD_PROXY_ROUTE }, 'outbound'))] }], 'OUTBOUND')));
    }
    for (const u of proxy.upstreams) {
      const host = this.model.resolveUpstream(u.host, view.namespace);
      const svc = this.model.serviceFor(host, view.namespace);
      const port = svc?.ports.find((p) => p.number === u.port);
      const name = `127.0.0.1_${u.localPort}`;
      if (svc && port && !port.http) {
        const target = tcpTarget(svc, port, this.routeContext(view));
        listeners.set(name, this.listeners.get(`up-tcp|${name}|${host}|${u.port}|${JSON.stringify(target)}`, () => listener(name, '127.0.0.1', u.localPort, [{ filters: [tcpProxyFilter(`outbound|${u.port}||${host}`, target)] }], 'OUTBOUND')));
        continue;
      }
      // The app talks to 127.0.0.1:localPort, so its Host header names no service: everything on
      // this listener is for the one upstream (domains "*"). Unknown upstreams still get a
      // listener, routing to the cluster they would have (503 until the service appears).
      const vhost = svc && port
        ? this.virtualHost(svc, port, view, 'any')
        : this.vhosts.get(`missing|${host}|${u.port}`, () => ({
            name: `${host}:${u.port}`,
            domains: ['*'],
            routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: clusterName({ direction: 'outbound', port: u.port, host }), timeout: '0s' } }],
          }));
      routes.set(name, this.routeConfig(name, [vhost]));
      listeners.set(name, this.listeners.get(`up-http|${name}`, () => listener(name, '127.0.0.1', u.localPort, [{ filters: [hcmFilter(hcm(name, { rds: name }, 'outbound'))] }], 'OUTBOUND')));
    }
  }

  private redirectOutbound(proxy: ProxyIdentity, view: ClientView, scope: ServiceModel[], listeners: Map<string, JsonObject>, routes: Map<string, JsonObject>, clusters: Map<string, JsonObject>): void {
    clusters.set('PassthroughCluster', this.clusters.get('PassthroughCluster', () => passthroughCluster('PassthroughCluster')));
    listeners.set('virtualOutbound', this.listeners.get(`virtualOutbound|${proxy.outboundPort}`, () => virtualOutbound(proxy.outboundPort || 15001)));
    for (const [number, e] of this.byPort(scope)) {
      const name = `0.0.0.0_${number}`;
      if (e.http.length > 0) {
        const rcName = String(number);
        routes.set(rcName, this.routeConfig(rcName, [...e.http.map(([svc, port]) => this.virtualHost(svc, port, view, 'bare')), this.allowAny()]));
        listeners.set(name, this.listeners.get(`port-http|${number}`, () => listener(name, '0.0.0.0', number, [{ filters: [hcmFilter(hcm(name, { rds: rcName }, 'outbound'))] }], 'OUTBOUND', { bind_to_port: false })));
      } else {
        // Without service addresses a TCP port can go to one service only: the first by host.
        const [svc, port] = e.tcp[0]!;
        const target = tcpTarget(svc, port, this.routeContext(view));
        listeners.set(name, this.listeners.get(`port-tcp|${number}|${svc.host}|${JSON.stringify(target)}`, () => listener(name, '0.0.0.0', number, [{ filters: [tcpProxyFilter(`outbound|${number}||${svc.host}`, target)] }], 'OUTBOUND', { bind_to_port: false })));
      }
    }
  }

  /** The proxy's own services: those its workload backs (by registry labels, else the LABELS it sent). */
  private ownServices(proxy: ProxyIdentity, workload: WorkloadRow | undefined): ServiceModel[] {
    if (workload) return (this.model.servicesOfWorkload.get(`${workload.namespace}/${workload.name}`) ?? []).filter((s) => s.isDefaultHost);
    if (Object.keys(proxy.labels).length === 0) return [];
    return this.model.services.filter((s) => s.kind === 'service' && s.isDefaultHost && backsService(s, { namespace: proxy.namespace, labels: proxy.labels }));
  }

  private inbound(proxy: ProxyIdentity, _view: ClientView, workload: WorkloadRow | undefined, listeners: Map<string, JsonObject>, clusters: Map<string, JsonObject>): void {
    const ports = new Map<number, PortModel>();
    // Istio names the services behind an inbound cluster in its metadata: the sidecar's inbound
    // metrics take destination_service from it (the cluster name carries no host).
    const services = new Map<number, JsonObject[]>();
    for (const svc of this.ownServices(proxy, workload)) {
      for (const p of svc.ports) {
        if (!ports.has(p.number)) ports.set(p.number, p);
        let list = services.get(p.number);
        if (!list) services.set(p.number, (list = []));
        list.push({ host: svc.host, name: svc.name, namespace: svc.namespace });
      }
    }
    const chains: JsonObject[] = [];
    const address = workload?.addresses[0] ?? '0.0.0.0';
    const authz = this.authzFor(proxy, workload);
    const peer = this.peerFor(proxy, workload);
    for (const [number, port] of [...ports].sort(([a], [b]) => a - b)) {
      const appPort = proxy.appPorts[String(number)] ?? port.targetPort ?? number;
      const cname = clusterName({ direction: 'inbound', port: number });
      const filters = (statPrefix: string): JsonObject[] =>
        port.http ? [hcmFilter(hcm(statPrefix, { inline: inboundRouteConfig(number) }, 'inbound', authz.filters))] : [tcpProxyFilter(statPrefix, { cluster: cname })];
      if (proxy.interception === 'REDIRECT') {
        const chain: JsonObject = { name: `0.0.0.0_${appPort}`, filter_chain_match: { destination_port: appPort }, filters: filters(`inbound_0.0.0.0_${appPort}`) };
        // portLevelMtls is keyed by the port the workload receives on: here the redirected destination port.
        chains.push(...(peer ? peerChains(peerModeFor(peer, appPort), chain, port.http) : [chain]));
      } else {
        const listenPort = workload ? workloadPort(workload, port) : (port.targetPort ?? number);
        // The sidecar and the app would share address and port: only a distinct port can be proxied.
        if (listenPort === appPort) continue;
        const name = `${address}_${listenPort}`;
        const mode = peer ? peerModeFor(peer, listenPort) : undefined;
        listeners.set(
          name,
          this.listeners.get(`in|${name}|${number}|${port.http}|z${this.ids.of(authz)}${mode ? `|${mode}` : ''}`, () => {
            const plain: JsonObject = { filters: filters(`inbound_${name}`) };
            if (!mode) return listener(name, address, listenPort, [plain], 'INBOUND');
            const own = peerChains(mode, plain, port.http);
            return listener(name, address, listenPort, own, 'INBOUND', needsTlsInspector(own) ? { listener_filters: [TLS_INSPECTOR] } : {});
          }),
        );
      }
      const behind = services.get(number)!;
      clusters.set(cname, this.clusters.get(`${cname}#${appPort}#${port.h2}#${JSON.stringify(behind)}`, () => inboundCluster(number, appPort, port, behind)));
    }
    if (proxy.interception === 'REDIRECT') {
      clusters.set('InboundPassthroughCluster', this.clusters.get('InboundPassthroughCluster', () => passthroughCluster('InboundPassthroughCluster')));
      // Ports no service names follow the workload-wide mode, but only STRICT changes them: without
      // ALPN matching, PERMISSIVE could not tell mesh mTLS from the app's own TLS, so both pass through.
      const passthrough = peer?.mode === 'STRICT' ? peerChains('STRICT', INBOUND_PASSTHROUGH, false) : [INBOUND_PASSTHROUGH];
      const all = [...chains, ...passthrough];
      listeners.set(
        'virtualInbound',
        this.listeners.get(`virtualInbound|${proxy.inboundPort}|${all.map((c) => JSON.stringify(c)).join()}`, () => virtualInbound(proxy.inboundPort, chains, passthrough, needsTlsInspector(all) ? [TLS_INSPECTOR] : [])),
      );
    }
  }

  /**
   * The result maps, interned by content identity: proxies of one namespace mostly share each map
   * (the ADS server then compares and diffs per map, not per proxy). `base` and `endpoints` are
   * already sorted; `extra` entries win over `base` ones of the same name.
   */
  private finish(listeners: Map<string, JsonObject>, routes: Map<string, JsonObject>, base: Map<string, JsonObject>, extra: Map<string, JsonObject>, endpoints: Map<string, JsonObject>): ProxyResources {
    return { listeners: this.smallMap(listeners), routes: this.smallMap(routes), clusters: this.merged(base, extra), endpoints };
  }

  private mapKey(entries: Array<[string, JsonObject]>): string {
    return entries.map(([n, v]) => `${n}\u0000${this.ids.of(v)}`).join('\u0001');
  }

  private smallMap(m: Map<string, JsonObject>): Map<string, JsonObject> {
    const sorted = sortedMap(m);
    return this.maps.get(`s|${this.mapKey([...sorted])}`, () => sorted);
  }

  private merged(base: Map<string, JsonObject>, extra: Map<string, JsonObject>): Map<string, JsonObject> {
    if (extra.size === 0) return base;
    const ex = [...sortedMap(extra)];
    return this.maps.get(`m|${this.ids.of(base)}|${this.mapKey(ex)}`, () => {
      const out = new Map<string, JsonObject>();
      let i = 0;
      for (const [name, v] of base) {
        while (i < ex.length && cmpStr(ex[i]![0], name) < 0) out.set(ex[i]![0], ex[i++]![1]);
        if (i < ex.length && ex[i]![0] === name) out.set(name, ex[i++]![1]);
        else out.set(name, v);
      }
      while (i < ex.length) out.set(ex[i]![0], ex[i++]![1]);
      return out;
    });
  }
}

export function prepareMesh(mesh: MeshSnapshot, revision: string, options: CompileOptions): PreparedMesh {
  return new Prepared(mesh, revision, options);
}
