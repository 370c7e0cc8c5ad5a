import { resolveHost, serviceFqdn, type ServiceRecord, type WorkloadRecord } from '@tern/shared';
import {
  info,
  type AuthorizationPolicySpecView,
  type Code,
  type Diagnostic,
  type DestinationRuleSpecView,
  type PeerAuthenticationSpecView,
  type Res,
  type ServiceEntrySpecView,
  type VirtualServiceSpecView,
} from './model.ts';

// The indexed view of the mesh every check reads: resources grouped by kind with namespaces
// defaulted, registry lookups by host, and the small pieces of Istio semantics (host resolution,
// wildcard matching, exportTo visibility, label selection) the checks share.

export interface AnalyzeOptions {
  /** DNS suffix of registry services; default "cluster.local". */
  domainSuffix?: string;
  /** Istio's root namespace (mesh-wide policies live there); default "istio-system". */
  rootNamespace?: string;
}

export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_ROOT_NAMESPACE = 'istio-system';

/** Arrays from resources that did not come through the schema may be missing or malformed. */
export function arr<T>(x: readonly T[] | null | undefined): readonly T[] {
  return Array.isArray(x) ? x : [];
}

export function str(x: unknown): string | undefined {
  return typeof x === 'string' && x !== '' ? x : undefined;
}

export function labelsOf(x: Record<string, string> | null | undefined): Record<string, string> {
  return x !== null && typeof x === 'object' && !Array.isArray(x) ? x : {};
}

/** True when every key/value of `selector` is present in `labels` (an empty selector selects all). */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** Istio host wildcard: "*" matches anything, "*.example.com" matches any name ending in ".example.com". */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host || pattern === '*') return true;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    return host.length > suffix.length && host.endsWith(suffix);
  }
  return false;
}

/** Istio's string match in security policy: exact, "prefix*", "*suffix" or "*". */
export function globMatches(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === value;
  if (star === pattern.length - 1) return value.startsWith(pattern.slice(0, -1));
  if (star === 0 && pattern.indexOf('*', 1) < 0) return value.endsWith(pattern.slice(1));
  return true; // a form Istio does not define: do not second-guess it
}

/**
 * The namespaces a resource with this exportTo is visible in, or "all". Absent/empty exportTo and
 * "*" mean all namespaces; "." is the resource's own namespace; "~" is none.
 */
export type Scope = 'all' | ReadonlySet<string>;

export function exportScope(exportTo: readonly string[] | undefined, ownNamespace: string): Scope {
  const list = arr(exportTo);
  if (list.length === 0) return 'all';
  const out = new Set<string>();
  for (const e of list) {
    if (e === '*') return 'all';
    if (e === '.') out.add(ownNamespace);
    else if (e !== '~') out.add(e);
  }
  return out;
}

export function scopeIncludes(scope: Scope, namespace: string): boolean {
  return scope === 'all' || scope.has(namespace);
}

export function scopesOverlap(a: Scope, b: Scope): boolean {
  if (a === 'all') return b === 'all' || b.size > 0;
  if (b === 'all') return a.size > 0;
  for (const ns of a) if (b.has(ns)) return true;
  return false;
}

export type HostOwner =
  | { kind: 'service'; services: readonly ServiceRecord[] }
  | { kind: 'serviceEntry'; entries: ReadonlyArray<Res<ServiceEntrySpecView>> };

interface SeHost {
  pattern: string;
  entry: Res<ServiceEntrySpecView>;
  scope: Scope;
}

export type PeerMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface EffectivePeerMode {
  mode: PeerMode;
  /** The PeerAuthentication that decided the mode; undefined for the built-in default (PERMISSIVE). */
  policy: Res<PeerAuthenticationSpecView> | undefined;
}

function byName<T extends { namespace: string; name: string }>(a: T, b: T): number {
  return a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Istio resolves conflicts between equivalent policies by age: oldest first, then by name. */
function oldestFirst(a: Res<unknown>, b: Res<unknown>): number {
  const ta = a.creationTimestamp ?? '';
  const tb = b.creationTimestamp ?? '';
  if (ta !== tb) {
    if (ta === '') return 1;
    if (tb === '') return -1;
    return ta < tb ? -1 : 1;
  }
  return byName(a, b);
}

export class MeshIndex {
  readonly domainSuffix: string;
  readonly rootNamespace: string;
  readonly virtualServices: ReadonlyArray<Res<VirtualServiceSpecView>>;
  readonly destinationRules: ReadonlyArray<Res<DestinationRuleSpecView>>;
  readonly serviceEntries: ReadonlyArray<Res<ServiceEntrySpecView>>;
  readonly peerAuthentications: ReadonlyArray<Res<PeerAuthenticationSpecView>>;
  readonly authorizationPolicies: ReadonlyArray<Res<AuthorizationPolicySpecView>>;
  readonly services: readonly ServiceRecord[];
  readonly workloads: readonly WorkloadRecord[];
  /** Namespaces that have at least one workload or service. */
  readonly namespaces: ReadonlySet<string>;

  private readonly servicesByHost = new Map<string, ServiceRecord[]>();
  private readonly seHosts: SeHost[] = [];
  private readonly workloadsByNamespace = new Map<string, WorkloadRecord[]>();
  private readonly memberCache = new Map<ServiceRecord, readonly WorkloadRecord[]>();
  private readonly peerModeCache = new Map<string, EffectivePeerMode>();

  constructor(
    groups: {
      virtualServices: Array<Res<VirtualServiceSpecView>>;
      destinationRules: Array<Res<DestinationRuleSpecView>>;
      serviceEntries: Array<Res<ServiceEntrySpecView>>;
      peerAuthentications: Array<Res<PeerAuthenticationSpecView>>;
      authorizationPolicies: Array<Res<AuthorizationPolicySpecView>>;
    },
    services: readonly ServiceRecord[],
    workloads: readonly WorkloadRecord[],
    opts: AnalyzeOptions,
  ) {
    this.domainSuffix = opts.domainSuffix ?? 'cluster.local';
    this.rootNamespace = opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
    // Sorting every group up front makes every check's iteration order independent of input order.
    this.virtualServices = [...groups.virtualServices].sort(byName);
    this.destinationRules = [...groups.destinationRules].sort(byName);
    this.serviceEntries = [...groups.serviceEntries].sort(byName);
    this.peerAuthentications = [...groups.peerAuthentications].sort(byName);
    this.authorizationPolicies = [...groups.authorizationPolicies].sort(byName);
    this.services = [...arr(services)].sort(byName);
    this.workloads = [...arr(workloads)].sort(byName);

    const namespaces = new Set<string>();
    for (const svc of this.services) {
      namespaces.add(svc.namespace);
      for (const h of this.hostsOf(svc)) {
        const list = this.servicesByHost.get(h);
        if (list) list.push(svc);
        else this.servicesByHost.set(h, [svc]);
      }
    }
    for (const w of this.workloads) {
      namespaces.add(w.namespace);
      const list = this.workloadsByNamespace.get(w.namespace);
      if (list) list.push(w);
      else this.workloadsByNamespace.set(w.namespace, [w]);
    }
    this.namespaces = namespaces;

    for (const se of this.serviceEntries) {
      const scope = exportScope(se.spec.exportTo, se.namespace);
      for (const h of arr(se.spec.hosts)) {
        if (!str(h)) continue;
        this.seHosts.push({ pattern: this.resolve(h, se.namespace), entry: se, scope });
      }
    }
  }

  /** Every name a registry service answers to: its default FQDN first, then its declared hosts. */
  hostsOf(svc: ServiceRecord): string[] {
    const hosts = new Set<string>([serviceFqdn(svc.name, svc.namespace, this.domainSuffix)]);
    for (const h of arr(svc.hosts)) if (str(h)) hosts.add(h.toLowerCase());
    return [...hosts];
  }

  resolve(host: string, namespace: string): string {
    return resolveHost(host.trim(), namespace, this.domainSuffix);
  }

  /** Registry services answering to exactly this (resolved) host. */
  servicesForHost(host: string): readonly ServiceRecord[] {
    return this.servicesByHost.get(host) ?? [];
  }

  /** Registry services whose hosts the (possibly wildcard) pattern covers. */
  servicesMatching(pattern: string): readonly ServiceRecord[] {
    if (!pattern.includes('*')) return this.servicesForHost(pattern);
    const out = new Set<ServiceRecord>();
    for (const [h, list] of this.servicesByHost) if (hostMatches(pattern, h)) for (const s of list) out.add(s);
    return [...out].sort(byName);
  }

  /** Who provides a concrete (resolved) host as seen from `fromNamespace`; undefined when nobody. */
  ownerOf(host: string, fromNamespace: string): HostOwner | undefined {
    const services = this.servicesForHost(host);
    if (services.length > 0) return { kind: 'service', services };
    const entries = this.seHosts
      .filter((e) => scopeIncludes(e.scope, fromNamespace) && hostMatches(e.pattern, host))
      .map((e) => e.entry);
    if (entries.length > 0) return { kind: 'serviceEntry', entries: [...new Set(entries)] };
    return undefined;
  }

  workloadsIn(namespace: string): readonly WorkloadRecord[] {
    return this.workloadsByNamespace.get(namespace) ?? [];
  }

  /**
   * The workloads behind a registry service. The registry carries no Service selector, so membership
   * follows the conventions Kiali uses: same namespace, and either the workload carries every label
   * of the service, or its `app` / `app.kubernetes.io/name` label equals the service name.
   */
  workloadsOf(svc: ServiceRecord): readonly WorkloadRecord[] {
    const cached = this.memberCache.get(svc);
    if (cached) return cached;
    const svcLabels = labelsOf(svc.labels);
    const hasLabels = Object.keys(svcLabels).length > 0;
    const out = this.workloadsIn(svc.namespace).filter((w) => {
      const labels = labelsOf(w.labels);
      if (hasLabels && selects(svcLabels, labels)) return true;
      return labels['app'] === svc.name || labels['app.kubernetes.io/name'] === svc.name;
    });
    this.memberCache.set(svc, out);
    return out;
  }

  /**
   * The peer-authentication mode in force for a workload (namespace + labels) on one of its ports:
   * workload-selector policy, then namespace-wide, then mesh-wide (root namespace), each level's
   * UNSET (or missing) deferring to the next; port-level settings of the workload policy win.
   */
  effectivePeerMode(namespace: string, labels: Record<string, string>, port: number | undefined): EffectivePeerMode {
    const sorted = Object.keys(labels).sort().map((k) => [k, labels[k]]);
    const key = JSON.stringify([namespace, sorted, port ?? null]);
    let m = this.peerModeCache.get(key);
    if (!m) this.peerModeCache.set(key, (m = this.computePeerMode(namespace, labels, port)));
    return m;
  }

  private computePeerMode(namespace: string, labels: Record<string, string>, port: number | undefined): EffectivePeerMode {
    const inNs = this.peerAuthentications.filter((p) => p.namespace === namespace);
    const withSelector = (p: Res<PeerAuthenticationSpecView>): Record<string, string> =>
      labelsOf(p.spec.selector?.matchLabels);
    const workloadPolicy = inNs
      .filter((p) => Object.keys(withSelector(p)).length > 0 && selects(withSelector(p), labels))
      .sort(oldestFirst)[0];
    const nsPolicy = inNs.filter((p) => Object.keys(withSelector(p)).length === 0).sort(oldestFirst)[0];
    const meshPolicy = this.peerAuthentications
      .filter((p) => p.namespace === this.rootNamespace && Object.keys(withSelector(p)).length === 0)
      .sort(oldestFirst)[0];

    if (workloadPolicy) {
      if (port !== undefined) {
        const pl = workloadPolicy.spec.portLevelMtls;
        const m = pl && typeof pl === 'object' ? peerMode(pl[String(port)]?.mode) : undefined;
        if (m) return { mode: m, policy: workloadPolicy };
      }
      const m = peerMode(workloadPolicy.spec.mtls?.mode);
      if (m) return { mode: m, policy: workloadPolicy };
    }
    for (const p of [nsPolicy, meshPolicy]) {
      if (!p) continue;
      const m = peerMode(p.spec.mtls?.mode);
      if (m) return { mode: m, policy: p };
    }
    return { mode: 'PERMISSIVE', policy: undefined };
  }
}

function peerMode(m: string | undefined): PeerMode | undefined {
  return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : undefined;
}

export function describe(r: { kind: string; namespace: string; name: string }): string {
  return `${r.kind} ${r.namespace}/${r.name}`;
}

/** Collects diagnostics; `name` and `level` always come from the catalogue. */
export class Reporter {
  readonly out: Diagnostic[] = [];

  report(code: Code, r: Res<unknown>, path: string, message: string): void {
    const a = info(code);
    this.out.push({
      code: a.code,
      name: a.name,
      level: a.level,
      kind: r.kind,
      namespace: r.namespace,
      resourceName: r.name,
      path,
      message,
    });
  }
}
