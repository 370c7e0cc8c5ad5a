import { serviceFqdn } from '@tern/shared';

// The small pieces of Istio semantics that both the analyzers and the xDS compiler read: label
// selection, host wildcards, exportTo visibility, which names a registry service answers to and
// which workloads back it. One copy, so that what analysis reports and what proxies get agree.

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

/** Istio host wildcard: "*" matches anything, "*.example.com" matches any name ending in ".example.com". */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host || pattern === '*') return true;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    return host.length > suffix.length && host.endsWith(suffix);
  }
  return false;
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

interface RegistryService {
  namespace: string;
  name: string;
  hosts?: readonly string[] | null | undefined;
  labels?: Record<string, string> | null | undefined;
}

/** Every name a registry service answers to: its default FQDN first, then its declared hosts. */
export function serviceHosts(svc: RegistryService, domainSuffix: string): string[] {
  const hosts = new Set<string>([serviceFqdn(svc.name, svc.namespace, domainSuffix)]);
  for (const h of arr(svc.hosts)) if (str(h)) hosts.add(h.toLowerCase());
  return [...hosts];
}

/**
 * Whether a workload backs a registry service. The registry carries no Service selector, so
 * membership follows the conventions Kiali uses: same namespace, and either the workload carries
 * every label of the service, or its `app` / `app.kubernetes.io/name` label equals the service name.
 */
export function backsService(svc: RegistryService, workload: { namespace: string; labels?: Record<string, string> | null | undefined }): boolean {
  if (workload.namespace !== svc.namespace) return false;
  const labels = labelsOf(workload.labels);
  const svcLabels = labelsOf(svc.labels);
  if (Object.keys(svcLabels).length > 0 && selects(svcLabels, labels)) return true;
  return labels['app'] === svc.name || labels['app.kubernetes.io/name'] === svc.name;
}
