import type { ProxyView, ServiceRecord, StoredResource, WorkloadRecord } from './api-types.ts';

// Pure derivations the pages share: namespaces, a service's workloads and versions, the policy that
// applies to a host (mTLS modes: security.ts).

export const ROOT_NAMESPACE = 'istio-system';
export const DOMAIN_SUFFIX = 'cluster.local';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export function namespacesOf(input: { resources?: StoredResource[]; services?: ServiceRecord[]; workloads?: WorkloadRecord[]; proxies?: ProxyView[] }): string[] {
  const set = new Set<string>();
  for (const r of input.resources ?? []) set.add(r.metadata.namespace);
  for (const s of input.services ?? []) set.add(s.namespace);
  for (const w of input.workloads ?? []) set.add(w.namespace);
  for (const p of input.proxies ?? []) set.add(p.namespace);
  return [...set].sort();
}

export function appOf(labels: Record<string, string>): string | undefined {
  return labels['app'] ?? labels['app.kubernetes.io/name'];
}

export function versionOf(labels: Record<string, string>): string | undefined {
  return labels['version'] ?? labels['app.kubernetes.io/version'];
}

/** Workloads behind a service: same namespace, `app` label equal to the service name (as the compiler does). */
export function workloadsOf(svc: { namespace: string; name: string }, workloads: WorkloadRecord[]): WorkloadRecord[] {
  return workloads.filter((w) => w.namespace === svc.namespace && appOf(w.labels) === svc.name);
}

export function versionsOf(svc: { namespace: string; name: string }, workloads: WorkloadRecord[]): string[] {
  const set = new Set<string>();
  for (const w of workloadsOf(svc, workloads)) {
    const v = versionOf(w.labels);
    if (v) set.add(v);
  }
  return [...set].sort(compareVersions);
}

/** v1 < v2 < v10. */
export function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export function serviceFqdn(svc: { namespace: string; name: string; hosts?: string[] }): string {
  return svc.hosts?.[0] ?? `${svc.name}.${svc.namespace}.svc.${DOMAIN_SUFFIX}`;
}

/** Every name a VirtualService or DestinationRule in namespace `ns` could use for this service. */
export function hostAliases(svc: { namespace: string; name: string; hosts?: string[] }, ns: string): Set<string> {
  const out = new Set<string>([...(svc.hosts ?? []), `${svc.name}.${svc.namespace}.svc.${DOMAIN_SUFFIX}`, `${svc.name}.${svc.namespace}`, `${svc.name}.${svc.namespace}.svc`]);
  if (ns === svc.namespace) out.add(svc.name);
  return out;
}

/** VirtualServices and DestinationRules whose hosts name the service. */
export function policyFor(svc: ServiceRecord, resources: StoredResource[]): { virtualServices: StoredResource[]; destinationRules: StoredResource[] } {
  const virtualServices = resources.filter((r) => r.kind === 'VirtualService' && ((r.spec.hosts as string[] | undefined) ?? []).some((h) => hostAliases(svc, r.metadata.namespace).has(h)));
  const destinationRules = resources.filter((r) => r.kind === 'DestinationRule' && hostAliases(svc, r.metadata.namespace).has(String(r.spec.host ?? '')));
  return { virtualServices, destinationRules };
}

export function proxiesOf(svc: { namespace: string; name: string }, workloads: WorkloadRecord[], proxies: ProxyView[]): ProxyView[] {
  const names = new Set(workloadsOf(svc, workloads).map((w) => w.name));
  return proxies.filter((p) => p.namespace === svc.namespace && p.workload !== null && names.has(p.workload));
}
