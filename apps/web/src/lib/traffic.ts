import { stringify } from 'yaml';
import type { ServiceRecord, StoredResource } from './api-types.ts';
import { policyFor, serviceFqdn } from './mesh.ts';
import { catchAllIndex, httpRoutesOf, type HttpRoute } from './wizards/common.ts';

// The traffic-shifting wizard's logic, pure so it is tested without a browser: weights that always
// sum to 100, and the VirtualService + DestinationRule it writes.

/** n integer weights summing to 100, as even as possible (the first ones get the remainder). */
export function evenSplit(n: number): number[] {
  if (n <= 0) return [];
  const base = Math.floor(100 / n);
  return Array.from({ length: n }, (_, i) => base + (i < 100 - base * n ? 1 : 0));
}

/**
 * Sets weights[index] to value (clamped to 0..100) and spreads the rest over the others in
 * proportion to their current weights (evenly if they are all 0), rounding by largest remainder so
 * the total is exactly 100.
 */
export function rebalance(weights: number[], index: number, value: number): number[] {
  const n = weights.length;
  if (n === 0) return [];
  if (n === 1) return [100];
  const v = Math.max(0, Math.min(100, Math.round(Number.isFinite(value) ? value : 0)));
  const rest = 100 - v;
  const others = weights.map((w, i) => (i === index ? 0 : Math.max(0, w)));
  const sum = others.reduce((a, b) => a + b, 0);
  const shares = others.map((w, i) => (i === index ? 0 : sum > 0 ? (w / sum) * rest : rest / (n - 1)));
  const out = shares.map((s) => Math.floor(s));
  let left = rest - out.reduce((a, b) => a + b, 0);
  const order = shares
    .map((s, i) => ({ i, r: s - Math.floor(s) }))
    .filter((x) => x.i !== index)
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k]!.i]! += 1;
  out[index] = v;
  return out;
}

export interface ShiftInput {
  service: ServiceRecord;
  versions: string[];
  weights: number[];
  /** Write the DestinationRule subsets too (off: the VirtualService relies on existing ones). */
  writeSubsets: boolean;
  resources: StoredResource[];
}

export interface ShiftPlan {
  documents: Record<string, unknown>[];
  /** What each document replaces (undefined: created). */
  existing: (StoredResource | undefined)[];
}

const SERVER_FIELDS = ['uid', 'resourceVersion', 'generation', 'creationTimestamp'];

/** A resource as a user would write it: no server-managed metadata, no status. */
export function cleanResource(r: StoredResource | Record<string, unknown>): Record<string, unknown> {
  const o = r as { apiVersion: string; kind: string; metadata: Record<string, unknown>; spec: unknown };
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o.metadata)) if (!SERVER_FIELDS.includes(k)) metadata[k] = v;
  return { apiVersion: o.apiVersion, kind: o.kind, metadata, spec: o.spec };
}

/** YAML with keys sorted at every level, so diffs show changes, not the order fields were stored in. */
export function toYaml(docs: Record<string, unknown>[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0, sortMapEntries: true })).join('---\n');
}

export function planTrafficShift(input: ShiftInput): ShiftPlan {
  const { service, versions, weights } = input;
  const ns = service.namespace;
  const host = serviceFqdn(service);
  const { virtualServices, destinationRules } = policyFor(service, input.resources);
  const vs = virtualServices.find((r) => r.metadata.namespace === ns);
  const dr = destinationRules.find((r) => r.metadata.namespace === ns);

  const route = versions
    .map((v, i) => ({ destination: { host, subset: v }, weight: weights[i] ?? 0 }))
    .filter((d) => d.weight > 0);
  const vsDoc = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: vs?.metadata.name ?? service.name, namespace: ns, ...(vs ? { resourceVersion: vs.metadata.resourceVersion } : {}) },
    // Other fields of an existing rule (gateways, exportTo…) are kept, and so are its other http
    // routes (request routing, fault injection) and the default route's other fields (timeout,
    // retries): only the default route's destinations are replaced.
    spec: { ...(vs?.spec ?? {}), hosts: (vs?.spec.hosts as string[] | undefined) ?? [service.name], http: withDefaultRoute(vs, route) },
  };
  const documents: Record<string, unknown>[] = [];
  const existing: (StoredResource | undefined)[] = [];
  if (input.writeSubsets) {
    type Subset = { name: string; labels?: Record<string, string> };
    const current = ((dr?.spec.subsets as Subset[] | undefined) ?? []).slice();
    const names = new Set(current.map((s) => s.name));
    for (const v of versions) if (!names.has(v)) current.push({ name: v, labels: { version: v } });
    const drDoc = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: dr?.metadata.name ?? service.name, namespace: ns, ...(dr ? { resourceVersion: dr.metadata.resourceVersion } : {}) },
      spec: { ...(dr?.spec ?? {}), host: (dr?.spec.host as string | undefined) ?? host, subsets: current },
    };
    documents.push(drDoc);
    existing.push(dr);
  }
  documents.push(vsDoc);
  existing.push(vs);
  return { documents, existing };
}

/** The stored http routes with the default (catch-all) route's destinations set to `route` (appended when there is none). */
function withDefaultRoute(vs: StoredResource | undefined, route: HttpRoute['route']): HttpRoute[] {
  const http = httpRoutesOf(vs);
  const def = catchAllIndex(http);
  if (def >= 0) http[def] = { ...http[def]!, route };
  else http.push({ route });
  return http;
}

/** The weight of each version in a VirtualService's default (catch-all) http route (to start the sliders there). */
export function currentWeights(vs: StoredResource | undefined, versions: string[]): number[] | undefined {
  const http = httpRoutesOf(vs);
  const route = http[catchAllIndex(http)]?.route;
  if (!route?.length) return undefined;
  const out = versions.map((v) => {
    const d = route.find((r) => r.destination?.subset === v);
    return d ? (d.weight ?? (route.length === 1 ? 100 : 0)) : 0;
  });
  return out.reduce((a, b) => a + b, 0) === 100 ? out : undefined;
}
