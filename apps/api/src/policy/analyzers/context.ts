import { resolveHost, type ServiceRecord, type WorkloadRecord } from '@tern/shared';
import { arr, backsService, exportScope, hostMatches, labelsOf, scopeIncludes, selects, serviceHosts, str, type Scope } from '../mesh-model.ts';

import { HostPatternIndex, LabelIndex, SelectorIndex, StringSearch, inScanOrder, pushTo } from './indexes.ts';
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

// Re-exported for the checks, which import their vocabulary from here.
export { arr, exportScope, hostMatches, labelsOf, scopeIncludes, selects, str, type Scope };

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

export function formatLabels(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** A string pattern of security policy, by form: see parseGlob. */
export type Glob = { form: 'any' } | { form: 'exact' | 'prefix' | 'suffix'; text: string };

/** Istio's string match in security policy: exact, "prefix*", "*suffix" or "*". */
export function parseGlob(pattern: string): Glob {
  if (pattern === '*') return { form: 'any' };
  const star = pattern.indexOf('*');
  if (star < 0) return { form: 'exact', text: pattern };
  if (star === pattern.length - 1) return { form: 'prefix', text: pattern.slice(0, -1) };
  if (star === 0 && pattern.indexOf('*', 1) < 0) return { form: 'suffix', text: pattern.slice(1) };
  return { form: 'any' }; // a form Istio does not define: do not second-guess it
}

export function globMatches(pattern: string, value: string): boolean {
  const g = parseGlob(pattern);
  if (g.form === 'any') return true;
  if (g.form === 'exact') return value === g.text;
  return g.form === 'prefix' ? value.startsWith(g.text) : value.endsWith(g.text);
}

/** Whether globMatches(pattern, v) holds for some string v of `search`, without testing each one. */
export function globMatchesSome(pattern: string, search: StringSearch): boolean {
  const g = parseGlob(pattern);
  if (g.form === 'any') return search.size > 0;
  if (g.form === 'exact') return search.has(g.text);
  return g.form === 'prefix' ? search.hasPrefix(g.text) : search.hasSuffix(g.text);
}

/** Positions (ascending) of the strings of `search` that globMatches(pattern, ·) accepts. */
export function globMatching(pattern: string, search: StringSearch): number[] {
  const g = parseGlob(pattern);
  if (g.form === 'any') return search.all();
  if (g.form === 'exact') return search.equalTo(g.text);
  return g.form === 'prefix' ? search.withPrefix(g.text) : search.withSuffix(g.text);
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

/** The first of `list` in Istio's precedence (oldestFirst): what `[...list].sort(oldestFirst)[0]` gives. */
function oldest<T extends Res<unknown>>(list: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const p of list) if (!best || oldestFirst(p, best) < 0) best = p;
  return best;
}

function peerSelector(p: Res<PeerAuthenticationSpecView>): Record<string, string> {
  return labelsOf(p.spec.selector?.matchLabels);
}

function isWorkloadSpecific(p: Res<PeerAuthenticationSpecView>): boolean {
  return Object.keys(peerSelector(p)).length > 0;
}

/** One namespace's PeerAuthentications, split into the levels effectivePeerMode ranks. */
interface NamespacePeerPolicies {
  /** Workload-specific policies (non-empty selector), found by the labels of a workload. */
  workloadSpecific: SelectorIndex<Res<PeerAuthenticationSpecView>>;
  /** The policy that applies namespace-wide: the oldest one without a selector. */
  namespaceWide: Res<PeerAuthenticationSpecView> | undefined;
}

const NO_PEER_POLICIES: NamespacePeerPolicies = {
  workloadSpecific: new SelectorIndex([], peerSelector, selects),
  namespaceWide: undefined,
};

/** Who runs in the registry, by namespace and service account, for AuthorizationPolicy principals. */
interface AccountIndex {
  /** The distinct namespaces of workloads. */
  namespaces: StringSearch;
  /** The distinct service accounts of the workloads of each of those namespaces (same positions). */
  accountsIn: StringSearch[];
  /** The distinct service accounts of all workloads. */
  accounts: StringSearch;
  /** The distinct namespaces of the workloads running as each service account. */
  namespacesOf: ReadonlyMap<string, readonly string[]>;
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

  // Every check asks these questions once per resource (or per route destination); answering
  // each by scanning the registry or the policies made analysis quadratic in the mesh size.
  // Everything below is built once per analyze() call — the lazily built parts on first use.
  private readonly servicesByHost = new Map<string, ServiceRecord[]>();
  /** The keys of servicesByHost, searchable by suffix, for wildcard hosts (see servicesMatching). */
  private serviceHosts: StringSearch | undefined;
  /** ServiceEntry hosts by pattern, for ownerOf. */
  private readonly seHosts = new HostPatternIndex<SeHost>();
  private readonly workloadsByNamespace = new Map<string, WorkloadRecord[]>();
  /** Each namespace's workloads by label, for selectors and service membership. */
  private readonly workloadLabels = new Map<string, LabelIndex<WorkloadRecord>>();
  private peerPolicies: Map<string, NamespacePeerPolicies> | undefined;
  private namespaceSearch: StringSearch | undefined;
  private accountIndex: AccountIndex | undefined;
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
      for (const h of this.hostsOf(svc)) pushTo(this.servicesByHost, h, svc);
    }
    for (const w of this.workloads) {
      namespaces.add(w.namespace);
      pushTo(this.workloadsByNamespace, w.namespace, w);
    }
    this.namespaces = namespaces;

    for (const se of this.serviceEntries) {
      const scope = exportScope(se.spec.exportTo, se.namespace);
      for (const h of arr(se.spec.hosts)) {
        if (!str(h)) continue;
        const pattern = this.resolve(h, se.namespace);
        this.seHosts.add(pattern, { pattern, entry: se, scope });
      }
    }
  }

  /** Every name a registry service answers to: its default FQDN first, then its declared hosts. */
  hostsOf(svc: ServiceRecord): string[] {
    return serviceHosts(svc, this.domainSuffix);
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
    const hosts = (this.serviceHosts ??= new StringSearch([...this.servicesByHost.keys()]));
    // Candidates from the index, then hostMatches decides; in servicesByHost order, as a scan would visit them.
    const candidates =
      pattern === '*'
        ? hosts.all()
        : pattern.startsWith('*')
          ? inScanOrder([...hosts.equalTo(pattern), ...hosts.withSuffix(pattern.slice(1))])
          : hosts.equalTo(pattern);
    const out = new Set<ServiceRecord>();
    for (const i of candidates) {
      const h = hosts.values[i] as string;
      if (hostMatches(pattern, h)) for (const s of this.servicesForHost(h)) out.add(s);
    }
    return [...out].sort(byName);
  }

  /** Who provides a concrete (resolved) host as seen from `fromNamespace`; undefined when nobody. */
  ownerOf(host: string, fromNamespace: string): HostOwner | undefined {
    const services = this.servicesForHost(host);
    if (services.length > 0) return { kind: 'service', services };
    const entries = this.seHosts
      .matching(host)
      .filter((e) => scopeIncludes(e.scope, fromNamespace) && hostMatches(e.pattern, host))
      .map((e) => e.entry);
    if (entries.length > 0) return { kind: 'serviceEntry', entries: [...new Set(entries)] };
    return undefined;
  }

  workloadsIn(namespace: string): readonly WorkloadRecord[] {
    return this.workloadsByNamespace.get(namespace) ?? [];
  }

  private workloadIndex(namespace: string): LabelIndex<WorkloadRecord> {
    let index = this.workloadLabels.get(namespace);
    if (!index) {
      index = new LabelIndex(this.workloadsIn(namespace), (w) => labelsOf(w.labels), selects);
      this.workloadLabels.set(namespace, index);
    }
    return index;
  }

  /** Whether some workload in the namespace carries every label of `selector` (any workload for an empty one). */
  anyWorkloadSelected(namespace: string, selector: Record<string, string>): boolean {
    return this.workloadIndex(namespace).anySelected(selector);
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
    // Only workloads named after the service or carrying its labels can be members.
    const index = this.workloadIndex(svc.namespace);
    const candidates = inScanOrder([
      ...index.withLabel('app', svc.name),
      ...index.withLabel('app.kubernetes.io/name', svc.name),
      ...(hasLabels ? index.positionsSelected(svcLabels) : []),
    ]);
    const out = candidates
      .map((i) => index.items[i] as WorkloadRecord)
      .filter((w) => backsService(svc, w));
    this.memberCache.set(svc, out);
    return out;
  }

  /** Whether some namespace with workloads or services matches the security-policy pattern. */
  someNamespaceMatches(pattern: string): boolean {
    this.namespaceSearch ??= new StringSearch([...this.namespaces]);
    return globMatchesSome(pattern, this.namespaceSearch);
  }

  /**
   * Which part of a principal's namespace / service-account patterns no workload uses: "namespace"
   * when no workload's namespace matches, "account" when no workload in a matching namespace runs
   * as a matching service account, undefined when some workload fits both.
   */
  unusedPrincipalPart(nsPattern: string, saPattern: string): 'namespace' | 'account' | undefined {
    const index = (this.accountIndex ??= this.buildAccountIndex());
    if (!globMatchesSome(nsPattern, index.namespaces)) return 'namespace';
    // Some workload runs in a namespace the pattern names. Visiting each such namespace would be
    // quadratic for patterns like "ns/team-*/sa/api", so start from whichever side is narrower.
    const ns = parseGlob(nsPattern);
    const sa = parseGlob(saPattern);
    let used: boolean;
    if (ns.form === 'any') used = globMatchesSome(saPattern, index.accounts); // every workload qualifies
    else if (sa.form === 'any') used = true; // any workload of those namespaces does
    else if (sa.form === 'exact') used = (index.namespacesOf.get(sa.text) ?? []).some((n) => globMatches(nsPattern, n));
    else used = globMatching(nsPattern, index.namespaces).some((i) => globMatchesSome(saPattern, index.accountsIn[i] as StringSearch));
    return used ? undefined : 'account';
  }

  private buildAccountIndex(): AccountIndex {
    const byNamespace = new Map<string, Set<string>>();
    const byAccount = new Map<string, Set<string>>();
    const add = (m: Map<string, Set<string>>, k: string, v: string): void => {
      const set = m.get(k);
      if (set) set.add(v);
      else m.set(k, new Set([v]));
    };
    for (const w of this.workloads) {
      add(byNamespace, w.namespace, w.serviceAccount);
      add(byAccount, w.serviceAccount, w.namespace);
    }
    return {
      namespaces: new StringSearch([...byNamespace.keys()]),
      accountsIn: [...byNamespace.values()].map((accounts) => new StringSearch([...accounts])),
      accounts: new StringSearch([...byAccount.keys()]),
      namespacesOf: new Map([...byAccount].map(([account, nss]) => [account, [...nss]])),
    };
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

  private peerPoliciesIn(namespace: string): NamespacePeerPolicies {
    this.peerPolicies ??= this.groupPeerPolicies();
    return this.peerPolicies.get(namespace) ?? NO_PEER_POLICIES;
  }

  private groupPeerPolicies(): Map<string, NamespacePeerPolicies> {
    const byNamespace = new Map<string, Array<Res<PeerAuthenticationSpecView>>>();
    for (const pa of this.peerAuthentications) pushTo(byNamespace, pa.namespace, pa);
    const out = new Map<string, NamespacePeerPolicies>();
    for (const [namespace, policies] of byNamespace) {
      out.set(namespace, {
        workloadSpecific: new SelectorIndex(policies.filter(isWorkloadSpecific), peerSelector, selects),
        namespaceWide: oldest(policies.filter((p) => !isWorkloadSpecific(p))),
      });
    }
    return out;
  }

  private computePeerMode(namespace: string, labels: Record<string, string>, port: number | undefined): EffectivePeerMode {
    const inNs = this.peerPoliciesIn(namespace);
    const workloadPolicy = oldest(inNs.workloadSpecific.selecting(labels));
    const nsPolicy = inNs.namespaceWide;
    const meshPolicy = this.peerPoliciesIn(this.rootNamespace).namespaceWide;

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
