import { resolveHost, type DestinationRuleSpec, type ServiceEntrySpec, type VirtualServiceSpec, type WorkloadEntry } from '@tern/shared';
import type { MeshSnapshot, ResourceRow, ServiceRow, WorkloadRow } from '../store/snapshot.ts';
import { arr, backsService, exportScope, hostMatches, labelsOf, scopeIncludes, selects, serviceHosts, str, type Scope } from '../policy/mesh-model.ts';
import { cmpStr } from './util.ts';

// The indexed mesh of one revision: every service host (registry services and ServiceEntries alike)
// with its ports and backing workloads, and the VirtualServices / DestinationRules by host. Built
// once per revision; every lookup a proxy's compilation makes is answered from here.

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY']);
const H2_PROTOCOLS = new Set(['HTTP2', 'GRPC']);

export interface PortModel {
  number: number;
  name: string;
  protocol: string;
  targetPort: number | undefined;
  /** Routed by the HTTP connection manager (else TCP proxied). */
  http: boolean;
  /** Upstream HTTP/2 regardless of policy (gRPC, HTTP2). */
  h2: boolean;
}

export interface ServiceModel {
  /** Unique and sortable: `<host>|<kind>|<namespace>/<name>`. */
  id: string;
  /** The FQDN (or ServiceEntry wildcard pattern) clusters and virtual hosts are named after. */
  host: string;
  namespace: string;
  /** Registry service or ServiceEntry name. */
  name: string;
  kind: 'service' | 'serviceEntry';
  ports: readonly PortModel[];
  /** Namespaces that may see it (exportTo). */
  scope: Scope;
  /** The service's `<name>.<ns>.svc.<suffix>` host, which also answers to its short names. */
  isDefaultHost: boolean;
  /** Registry workloads behind it: a service's members, or a ServiceEntry's workloadSelector matches. */
  workloads: readonly WorkloadRow[];
  /** ServiceEntry specifics. */
  resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'EDS';
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  seEndpoints: readonly WorkloadEntry[];
  seHasSelector: boolean;
  /** ServiceEntry `subjectAltNames`: identities mTLS clients also accept (Istio adds them to the SAN check). */
  seSubjectAltNames: readonly string[];
}

export interface PolicyRes<S> {
  namespace: string;
  name: string;
  spec: S;
  /** Oldest first, then namespace/name: Istio's precedence between conflicting resources. */
  order: string;
  scope: Scope;
}

export interface VsEntry extends PolicyRes<VirtualServiceSpec> {
  /** Hosts resolved in the VirtualService's namespace. */
  hosts: string[];
  /** Bound to sidecars: no gateways, or "mesh" among them. */
  mesh: boolean;
  /** Whether some match reads the client's labels (the route then depends on who asks). */
  usesSourceLabels: boolean;
}

export interface DrEntry extends PolicyRes<DestinationRuleSpec> {
  host: string;
  selector: Record<string, string> | undefined;
}

function orderKey(r: ResourceRow): string {
  const t = r.createdAt instanceof Date ? r.createdAt.toISOString() : String(r.createdAt ?? '');
  return `${t}|${r.namespace}|${r.name}`;
}

function byOrder<T extends { order: string }>(a: T, b: T): number {
  return cmpStr(a.order, b.order);
}

export class MeshModel {
  readonly services: readonly ServiceModel[];
  readonly virtualServices: readonly VsEntry[];
  readonly destinationRules: readonly DrEntry[];
  private readonly byHost = new Map<string, ServiceModel[]>();
  private readonly wildcardServices: ServiceModel[] = [];
  private readonly vsByHost = new Map<string, VsEntry[]>();
  private readonly drByHost = new Map<string, DrEntry[]>();
  readonly workloadsByKey = new Map<string, WorkloadRow>();
  readonly servicesOfWorkload = new Map<string, ServiceModel[]>();

  constructor(
    mesh: MeshSnapshot,
    readonly domainSuffix: string,
    readonly rootNamespace: string,
  ) {
    const rows = [...mesh.resources.values()].sort((a, b) => cmpStr(`${a.kind}/${a.namespace}/${a.name}`, `${b.kind}/${b.namespace}/${b.name}`));
    const workloads = [...mesh.workloads.values()].sort((a, b) => cmpStr(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));
    const registry = [...mesh.services.values()].sort((a, b) => cmpStr(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));
    for (const w of workloads) this.workloadsByKey.set(`${w.namespace}/${w.name}`, w);
    const wlByNs = new Map<string, WorkloadRow[]>();
    for (const w of workloads) (wlByNs.get(w.namespace) ?? wlByNs.set(w.namespace, []).get(w.namespace)!).push(w);

    const services: ServiceModel[] = [];
    for (const svc of registry) services.push(...this.fromRegistry(svc, wlByNs.get(svc.namespace) ?? []));
    for (const r of rows) if (r.kind === 'ServiceEntry') services.push(...this.fromServiceEntry(r, wlByNs.get(r.namespace) ?? []));
    services.sort((a, b) => cmpStr(a.id, b.id));
    this.services = services;
    for (const s of services) {
      if (s.host.includes('*')) this.wildcardServices.push(s);
      (this.byHost.get(s.host) ?? this.byHost.set(s.host, []).get(s.host)!).push(s);
      if (s.kind === 'service') {
        for (const w of s.workloads) {
          const k = `${w.namespace}/${w.name}`;
          (this.servicesOfWorkload.get(k) ?? this.servicesOfWorkload.set(k, []).get(k)!).push(s);
        }
      }
    }
    // Registry services win over ServiceEntries for the same host (Istio: Kubernetes first).
    for (const list of this.byHost.values()) list.sort((a, b) => (a.kind === b.kind ? cmpStr(a.id, b.id) : a.kind === 'service' ? -1 : 1));

    const vss: VsEntry[] = [];
    const drs: DrEntry[] = [];
    for (const r of rows) {
      if (r.kind === 'VirtualService') {
        const spec = r.spec as VirtualServiceSpec;
        const gateways = arr(spec.gateways);
        const http = arr(spec.http);
        vss.push({
          namespace: r.namespace,
          name: r.name,
          spec,
          order: orderKey(r),
          scope: exportScope(spec.exportTo, r.namespace),
          hosts: arr(spec.hosts).filter((h) => str(h)).map((h) => this.resolve(h, r.namespace)),
          mesh: gateways.length === 0 || gateways.includes('mesh'),
          usesSourceLabels: http.some((h) => arr(h.match).some((m) => m.sourceLabels !== undefined)) || arr(spec.tcp).some((t) => arr(t.match).some((m) => m.sourceLabels !== undefined)),
        });
      } else if (r.kind === 'DestinationRule') {
        const spec = r.spec as DestinationRuleSpec;
        if (!str(spec.host)) continue;
        const sel = spec.workloadSelector?.matchLabels;
        drs.push({
          namespace: r.namespace,
          name: r.name,
          spec,
          order: orderKey(r),
          scope: exportScope(spec.exportTo, r.namespace),
          host: this.resolve(spec.host, r.namespace),
          selector: sel && Object.keys(sel).length > 0 ? sel : undefined,
        });
      }
    }
    this.virtualServices = vss.sort(byOrder);
    this.destinationRules = drs.sort(byOrder);

    // Per service host, the candidate policies in precedence order; visibility is checked per proxy.
    // Exact hosts are looked up, only wildcard patterns are scanned: hosts x policies would be
    // quadratic in the mesh size, and this runs on every revision.
    const vsExact = new Map<string, Set<VsEntry>>();
    const vsWild: VsEntry[] = [];
    for (const v of this.virtualServices) {
      if (!v.mesh) continue;
      for (const p of v.hosts) {
        if (p.includes('*')) vsWild.push(v);
        (vsExact.get(p) ?? vsExact.set(p, new Set()).get(p)!).add(v);
      }
    }
    const drExact = new Map<string, DrEntry[]>();
    const drWild: DrEntry[] = [];
    for (const d of this.destinationRules) {
      if (d.host.includes('*')) drWild.push(d);
      (drExact.get(d.host) ?? drExact.set(d.host, []).get(d.host)!).push(d);
    }
    const vsMatches = (v: VsEntry, h: string) => v.hosts.some((p) => hostMatches(p, h) || (h.includes('*') && p === h));
    const drMatches = (d: DrEntry, h: string) => hostMatches(d.host, h) || d.host === h;
    const hosts = [...this.byHost.keys()].sort();
    for (const h of hosts) {
      const vs = new Set<VsEntry>(vsExact.get(h));
      for (const v of vsWild) vs.add(v);
      this.vsByHost.set(h, rankByHost([...vs].filter((v) => vsMatches(v, h)), (v) => bestPattern(v.hosts, h)));
      const dr = new Set<DrEntry>(drExact.get(h));
      for (const d of drWild) dr.add(d);
      this.drByHost.set(h, rankByHost([...dr].filter((d) => drMatches(d, h)), (d) => bestPattern([d.host], h)));
    }
  }

  /** Every service host, and per host its services and candidate policies (what `changedHosts` compares). */
  hostEntries(): IterableIterator<[string, ServiceModel[]]> {
    return this.byHost.entries();
  }

  virtualServicesOfHost(host: string): readonly VsEntry[] {
    return this.vsByHost.get(host) ?? [];
  }

  destinationRulesOfHost(host: string): readonly DrEntry[] {
    return this.drByHost.get(host) ?? [];
  }

  resolve(host: string, namespace: string): string {
    return resolveHost(host.trim(), namespace, this.domainSuffix);
  }

  /**
   * An UPSTREAMS host is a name the app would look up in DNS, not an Istio host: `reviews.default`
   * or `reviews.default.svc` reach `reviews.default.svc.cluster.local` the way a pod's search path
   * (`<ns>.svc.<suffix> svc.<suffix> <suffix>`) does. The first candidate naming a known service
   * wins; none: Istio's rule (resolve).
   */
  resolveUpstream(host: string, namespace: string): string {
    const h = host.trim().toLowerCase();
    if (!h.includes('.') || h.includes('*')) return this.resolve(h, namespace);
    const candidates = [h, `${h}.${namespace}.svc.${this.domainSuffix}`, `${h}.svc.${this.domainSuffix}`, `${h}.${this.domainSuffix}`];
    return candidates.find((c) => this.serviceFor(c, namespace)) ?? h;
  }

  private fromRegistry(svc: ServiceRow, nsWorkloads: readonly WorkloadRow[]): ServiceModel[] {
    const ports = sortPorts(
      arr(svc.ports).map((p) => ({
        number: p.number,
        name: p.name ?? `${p.protocol.toLowerCase()}-${p.number}`,
        protocol: p.protocol,
        targetPort: p.targetPort,
        http: HTTP_PROTOCOLS.has(p.protocol),
        h2: H2_PROTOCOLS.has(p.protocol),
      })),
    );
    const members = nsWorkloads.filter((w) => backsService(svc, w));
    const hosts = serviceHosts(svc, this.domainSuffix);
    return hosts.map((host, i) => ({
      id: `${host}|service|${svc.namespace}/${svc.name}`,
      host,
      namespace: svc.namespace,
      name: svc.name,
      kind: 'service' as const,
      ports,
      scope: 'all' as const,
      isDefaultHost: i === 0,
      workloads: members,
      resolution: 'EDS' as const,
      location: 'MESH_INTERNAL' as const,
      seEndpoints: [],
      seHasSelector: false,
      seSubjectAltNames: [],
    }));
  }

  private fromServiceEntry(r: ResourceRow, nsWorkloads: readonly WorkloadRow[]): ServiceModel[] {
    const spec = r.spec as ServiceEntrySpec;
    const ports = sortPorts(
      arr(spec.ports).map((p) => {
        const protocol = (p.protocol ?? 'TCP').toUpperCase();
        return { number: p.number, name: p.name, protocol, targetPort: p.targetPort, http: HTTP_PROTOCOLS.has(protocol), h2: H2_PROTOCOLS.has(protocol) };
      }),
    );
    const selector = spec.workloadSelector?.labels;
    const workloads = selector ? nsWorkloads.filter((w) => selects(labelsOf(selector), labelsOf(w.labels))) : [];
    const scope = exportScope(spec.exportTo, r.namespace);
    const hosts = [...new Set(arr(spec.hosts).filter((h) => str(h)).map((h) => this.resolve(h, r.namespace)))].sort();
    return hosts.map((host) => ({
      id: `${host}|serviceEntry|${r.namespace}/${r.name}`,
      host,
      namespace: r.namespace,
      name: r.name,
      kind: 'serviceEntry' as const,
      ports,
      scope,
      isDefaultHost: false,
      workloads,
      resolution: spec.resolution ?? 'NONE',
      location: spec.location ?? 'MESH_EXTERNAL',
      seEndpoints: arr(spec.endpoints),
      seHasSelector: selector !== undefined,
      seSubjectAltNames: arr(spec.subjectAltNames),
    }));
  }

  /** The service answering to an exact (resolved) host as seen from `fromNamespace`. */
  serviceFor(host: string, fromNamespace: string): ServiceModel | undefined {
    return (this.byHost.get(host) ?? []).find((s) => scopeIncludes(s.scope, fromNamespace));
  }

  /** Services whose host a pattern (possibly a wildcard) covers, visible from a namespace. */
  servicesMatching(pattern: string, fromNamespace: string): ServiceModel[] {
    if (!pattern.includes('*')) {
      const s = this.serviceFor(pattern, fromNamespace);
      return s ? [s] : [];
    }
    return this.services.filter((s) => scopeIncludes(s.scope, fromNamespace) && (hostMatches(pattern, s.host) || s.host === pattern));
  }

  /** The VirtualService that routes a service host for clients in `namespace` (Istio: most specific host, then oldest). */
  virtualServiceFor(host: string, namespace: string): VsEntry | undefined {
    return (this.vsByHost.get(host) ?? []).find((v) => scopeIncludes(v.scope, namespace));
  }

  /**
   * The DestinationRule for a host as seen by a client: Istio looks in the client's namespace, then
   * the service's, then the root namespace, then anywhere else it is exported to; within a level the
   * most specific host wins, then the oldest rule. Rules with a workloadSelector apply only to the
   * workloads they select.
   */
  destinationRuleFor(svc: ServiceModel, namespace: string, labels: Record<string, string>): DrEntry | undefined {
    const candidates = (this.drByHost.get(svc.host) ?? []).filter((d) => scopeIncludes(d.scope, namespace) && (!d.selector || (d.namespace === namespace && selects(d.selector, labels))));
    const level = (d: DrEntry) => (d.namespace === namespace ? 0 : d.namespace === svc.namespace ? 1 : d.namespace === this.rootNamespace ? 2 : 3);
    let best: DrEntry | undefined;
    for (const d of candidates) if (!best || level(d) < level(best)) best = d;
    return best;
  }
}

function sortPorts(ports: PortModel[]): PortModel[] {
  const seen = new Set<number>();
  return ports.sort((a, b) => a.number - b.number).filter((p) => (seen.has(p.number) ? false : (seen.add(p.number), true)));
}

/** Specificity of the best of `patterns` for host: exact beats any wildcard, longer wildcards beat shorter. */
function bestPattern(patterns: readonly string[], host: string): number {
  let best = -1;
  for (const p of patterns) {
    if (p === host) return Number.MAX_SAFE_INTEGER;
    if (hostMatches(p, host)) best = Math.max(best, p.length);
  }
  return best;
}

function rankByHost<T extends { order: string }>(items: T[], specificity: (t: T) => number): T[] {
  return items
    .map((t) => ({ t, s: specificity(t) }))
    .sort((a, b) => b.s - a.s || cmpStr(a.t.order, b.t.order))
    .map((x) => x.t);
}
