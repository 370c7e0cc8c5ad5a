import type { ServiceRecord, StoredResource } from '../api-types.ts';
import { policyFor, serviceFqdn } from '../mesh.ts';
import { formError, type FormError } from './fields.ts';

// What the VirtualService wizards (routing, faults, timeouts) share: reading the service's current
// VirtualService, writing it back with only the wizard's own part changed, the DestinationRule
// subsets a route needs, and the checks of header conditions (field checks: fields.ts).

export type StringMatchType = 'exact' | 'prefix' | 'regex';
export const STRING_MATCH_TYPES: readonly StringMatchType[] = ['exact', 'prefix', 'regex'];

export interface HeaderCondition {
  name: string;
  type: StringMatchType;
  value: string;
}

export type HttpRoute = Record<string, unknown> & {
  name?: string;
  match?: Record<string, unknown>[];
  route?: { destination?: { host?: string; subset?: string; port?: unknown }; weight?: number; [k: string]: unknown }[];
  fault?: Record<string, unknown>;
  timeout?: string;
  retries?: Record<string, unknown>;
};

export interface WizardPlan<Form> {
  documents: Record<string, unknown>[];
  existing: StoredResource[];
  errors: FormError[];
  /** The form as the planner understood it (for round trips in tests). */
  form?: Form;
}

/** The service's VirtualService in its own namespace (the one the wizards edit), if any. */
export function currentVirtualService(service: ServiceRecord, resources: StoredResource[]): StoredResource | undefined {
  return policyFor(service, resources).virtualServices.find((r) => r.metadata.namespace === service.namespace);
}

/** The service's DestinationRule in its own namespace (the one the wizards edit), if any. */
export function destinationRuleFor(service: ServiceRecord, resources: StoredResource[]): StoredResource | undefined {
  return policyFor(service, resources).destinationRules.find((r) => r.metadata.namespace === service.namespace);
}

/** A deep copy of the VirtualService's http routes (the wizards never mutate what they read). */
export function httpRoutesOf(vs: StoredResource | undefined): HttpRoute[] {
  return structuredClone((vs?.spec.http as HttpRoute[] | undefined) ?? []);
}

/** The route that catches everything: the last one, when it has no match conditions. */
export function catchAllIndex(http: HttpRoute[]): number {
  const last = http.length - 1;
  if (last < 0) return -1;
  const m = http[last]!.match;
  return m === undefined || m.length === 0 ? last : -1;
}

/** Routes that forward to destinations (not redirects, direct responses or delegates): the ones a fault, timeout or retry policy applies to. */
export function isForwarding(r: HttpRoute): boolean {
  return (r.route?.length ?? 0) > 0 && r.redirect === undefined && r.directResponse === undefined && r.delegate === undefined;
}

/** A route for everything to the service itself (when no VirtualService exists yet). */
export function plainRoute(service: ServiceRecord): HttpRoute {
  return { route: [{ destination: { host: serviceFqdn(service) } }] };
}

/**
 * The VirtualService with its http routes replaced by `http` and everything else (hosts, gateways,
 * exportTo, tcp/tls routes, metadata) as stored. resourceVersion makes a concurrent change a 409.
 */
export function virtualServiceDocument(service: ServiceRecord, vs: StoredResource | undefined, http: HttpRoute[]): Record<string, unknown> {
  return {
    apiVersion: vs?.apiVersion ?? 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: {
      ...(vs ? { labels: vs.metadata.labels, annotations: vs.metadata.annotations } : {}),
      name: vs?.metadata.name ?? service.name,
      namespace: service.namespace,
      ...(vs ? { resourceVersion: vs.metadata.resourceVersion } : {}),
    },
    spec: { ...structuredClone(vs?.spec ?? {}), hosts: (vs?.spec.hosts as string[] | undefined) ?? [service.name], http },
  };
}

/**
 * The DestinationRule with a subset (labels version=<v>) for each version in `versions` it lacks,
 * or undefined when it already has them all: the wizards write it only when a route needs it.
 */
export function subsetsDocument(service: ServiceRecord, resources: StoredResource[], versions: string[]): { document: Record<string, unknown>; existing?: StoredResource } | undefined {
  const dr = destinationRuleFor(service, resources);
  type Subset = { name: string; labels?: Record<string, string> };
  const subsets = structuredClone((dr?.spec.subsets as Subset[] | undefined) ?? []);
  const have = new Set(subsets.map((s) => s.name));
  const missing = [...new Set(versions)].filter((v) => v !== '' && !have.has(v));
  if (missing.length === 0) return undefined;
  for (const v of missing) subsets.push({ name: v, labels: { version: v } });
  const document = {
    apiVersion: dr?.apiVersion ?? 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: dr?.metadata.name ?? service.name, namespace: service.namespace, ...(dr ? { resourceVersion: dr.metadata.resourceVersion } : {}) },
    spec: { ...structuredClone(dr?.spec ?? {}), host: (dr?.spec.host as string | undefined) ?? serviceFqdn(service), subsets },
  };
  return { document, existing: dr };
}

// RFC 7230 token characters; a leading ':' names an HTTP/2 pseudo-header such as :authority.
const HEADER_NAME = /^:?[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** A header condition: empty (name and value both empty: no condition) or complete and valid. */
export function checkHeader(errors: FormError[], path: string, label: string, h: HeaderCondition): boolean {
  const name = h.name.trim();
  if (name === '' && h.value === '') return false;
  if (name === '') {
    errors.push(formError(`${path}.name`, `${label}: a header name is required to match on a header value`, 'required'));
  } else if (!HEADER_NAME.test(name)) {
    errors.push(formError(`${path}.name`, `${label}: ${JSON.stringify(name)} is not a valid HTTP header name`, 'header_name'));
  }
  if (h.value === '') errors.push(formError(`${path}.value`, `${label}: a value is required for the header ${JSON.stringify(name)}`, 'required'));
  else if (h.type === 'regex') {
    try {
      new RegExp(h.value);
    } catch {
      errors.push(formError(`${path}.value`, `${label}: ${JSON.stringify(h.value)} is not a valid regular expression`, 'regex'));
    }
  }
  return true;
}

/** `{ name: { exact: value } }` from a header condition. */
export function headerMatch(h: HeaderCondition): Record<string, Record<string, string>> {
  return { [h.name.trim()]: { [h.type]: h.value } };
}

/** A StringMatch with exactly one of exact/prefix/regex, as [type, value]; undefined otherwise. */
export function readStringMatch(m: unknown): [StringMatchType, string] | undefined {
  if (m === null || typeof m !== 'object') return undefined;
  const entries = Object.entries(m as Record<string, unknown>);
  if (entries.length !== 1) return undefined;
  const [type, value] = entries[0]!;
  return (STRING_MATCH_TYPES as readonly string[]).includes(type) && typeof value === 'string' ? [type as StringMatchType, value] : undefined;
}

/** The single header condition of a match (`{ headers: { n: { exact: v } } }` and nothing else). */
export function readHeaderOnlyMatch(match: Record<string, unknown>[] | undefined): HeaderCondition | undefined {
  if (match?.length !== 1) return undefined;
  const m = match[0]!;
  if (Object.keys(m).some((k) => k !== 'headers')) return undefined;
  const headers = Object.entries((m.headers as Record<string, unknown> | undefined) ?? {});
  if (headers.length !== 1) return undefined;
  const [name, sm] = headers[0]!;
  const read = readStringMatch(sm);
  return read ? { name, type: read[0], value: read[1] } : undefined;
}

/** A short description of a route for lists ("end-user exact jason → v2"). */
export function describeRoute(r: HttpRoute, i: number): string {
  const conds: string[] = [];
  for (const m of r.match ?? []) {
    for (const [n, sm] of Object.entries((m.headers as Record<string, unknown> | undefined) ?? {})) {
      const s = readStringMatch(sm);
      conds.push(s ? `header ${n} ${s[0]} ${JSON.stringify(s[1])}` : `header ${n}`);
    }
    const uri = readStringMatch(m.uri);
    if (uri) conds.push(`uri ${uri[0]} ${uri[1]}`);
    const method = readStringMatch(m.method);
    if (method) conds.push(`method ${method[1]}`);
    const other = Object.keys(m).filter((k) => k !== 'headers' && k !== 'uri' && k !== 'method');
    if (other.length) conds.push(other.join(', '));
  }
  const to = (r.route ?? []).map((d) => `${d.destination?.subset ?? d.destination?.host ?? '?'}${d.weight !== undefined ? ` ${d.weight}%` : ''}`).join(', ');
  const what = r.redirect ? 'redirect' : r.directResponse ? 'direct response' : r.delegate ? 'delegate' : `→ ${to || '(no destination)'}`;
  return `${i + 1}. ${r.name ? `${r.name}: ` : ''}${conds.length ? conds.join(' and ') : 'everything else'} ${what}`;
}

/**
 * Analyzer findings for the VirtualService at any of `paths` (and below), without repeats: a
 * wizard that writes one setting into several routes shows the message once, next to the field.
 */
export function findingsAt<F extends { kind: string; path: string; message: string; code: string }>(findings: F[], kind: string, paths: string[]): F[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    if (f.kind !== kind || !paths.some((p) => pathUnder(f.path, p))) return false;
    const k = `${f.code}\u0000${f.message.replace(/spec\.http\[\d+\]/g, 'spec.http[*]')}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Whether `path` is `prefix` or lies under it (so spec.http[1] does not claim spec.http[10]). */
export function pathUnder(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  if (!path.startsWith(prefix)) return false;
  const next = path.charAt(prefix.length);
  return next === '' || next === '.' || next === '[';
}
