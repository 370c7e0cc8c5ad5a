import type { StoredResource } from '@tern/shared';

// Policy as custom resources in Tern's own groups: Istio's kinds and fields under
// networking.tern.dev / security.tern.dev (deploy/kubernetes/base/crds), so a cluster can run Tern
// beside Istio without the two fighting over networking.istio.io objects, and Istio YAML ports by
// changing its apiVersion. docs/kubernetes.md.

export interface CrKind {
  kind: string;
  group: string;
  version: string;
  plural: string;
  /** Istio's group for the same kind (for importing existing Istio resources). */
  istioGroup: string;
}

export const CR_KINDS: readonly CrKind[] = [
  { kind: 'VirtualService', group: 'networking.tern.dev', version: 'v1', plural: 'virtualservices', istioGroup: 'networking.istio.io' },
  { kind: 'DestinationRule', group: 'networking.tern.dev', version: 'v1', plural: 'destinationrules', istioGroup: 'networking.istio.io' },
  { kind: 'ServiceEntry', group: 'networking.tern.dev', version: 'v1', plural: 'serviceentries', istioGroup: 'networking.istio.io' },
  { kind: 'PeerAuthentication', group: 'security.tern.dev', version: 'v1', plural: 'peerauthentications', istioGroup: 'security.istio.io' },
  { kind: 'AuthorizationPolicy', group: 'security.tern.dev', version: 'v1', plural: 'authorizationpolicies', istioGroup: 'security.istio.io' },
];

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'tern';
/** The store's resourceVersion the custom resource was written from. */
export const REVISION_ANNOTATION = 'tern.dev/resource-version';

export interface CustomResource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string; generation?: number; managedFields?: { manager?: string; operation?: string }[] };
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export const crKindOf = (kind: string): CrKind | undefined => CR_KINDS.find((k) => k.kind === kind);

/** The custom resource a stored policy object is written to the cluster as (undefined: a kind with no CRD). */
export function desiredCustomResource(r: StoredResource): CustomResource | undefined {
  const k = crKindOf(r.kind);
  if (!k) return undefined;
  return {
    apiVersion: `${k.group}/${k.version}`,
    kind: k.kind,
    metadata: {
      name: r.metadata.name,
      namespace: r.metadata.namespace,
      labels: { ...(r.metadata.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: { ...(r.metadata.annotations ?? {}), [REVISION_ANNOTATION]: r.metadata.resourceVersion },
    },
    spec: r.spec,
  };
}

/** Deep equality of JSON values (key order ignored): is the cluster's spec still ours? */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((v, i) => sameJson(v, (b as unknown[])[i]));
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export type ReconcileAction =
  /** `current`: the cluster's object, when there is one (for a drift: what was edited). */
  | { kind: 'apply'; cr: CustomResource; reason: 'missing' | 'changed' | 'drifted'; current?: CustomResource }
  | { kind: 'delete'; crKind: CrKind; namespace: string; name: string }
  /** `cr`: the cluster's edited object; `stored`: the store's object it replaces. */
  | { kind: 'adopt'; cr: CustomResource; stored: StoredResource };

/**
 * What to do to make the cluster match the store (pure): apply what is missing or differs, delete
 * what Tern manages but no longer has. A resource whose cluster spec differs from the store's at
 * the same store revision was edited in the cluster (drift): corrected, or with `adopt`, taken into
 * the store. Objects not labelled as Tern's are left alone.
 */
export function planReconcile(stored: readonly StoredResource[], inCluster: readonly CustomResource[], mode: 'correct' | 'adopt'): ReconcileAction[] {
  const key = (kind: string, ns: string, name: string) => `${kind}/${ns}/${name}`;
  const have = new Map(inCluster.map((c) => [key(c.kind, c.metadata.namespace, c.metadata.name), c]));
  const actions: ReconcileAction[] = [];
  const wanted = new Set<string>();
  for (const r of stored) {
    const cr = desiredCustomResource(r);
    if (!cr) continue;
    const k = key(cr.kind, cr.metadata.namespace, cr.metadata.name);
    wanted.add(k);
    const cur = have.get(k);
    if (!cur) {
      actions.push({ kind: 'apply', cr, reason: 'missing' });
      continue;
    }
    const writtenFrom = cur.metadata.annotations?.[REVISION_ANNOTATION];
    // Same spec from an older revision (an adopted edit, a label change): rewritten so the
    // annotation names the current revision, else the next edit would not be seen as drift.
    if (sameJson(cur.spec, cr.spec)) {
      if (writtenFrom !== r.metadata.resourceVersion) actions.push({ kind: 'apply', cr, reason: 'changed', current: cur });
      continue;
    }
    const drifted = writtenFrom === r.metadata.resourceVersion;
    if (drifted && mode === 'adopt') actions.push({ kind: 'adopt', cr: cur, stored: r });
    else actions.push({ kind: 'apply', cr, reason: drifted ? 'drifted' : 'changed', current: cur });
  }
  for (const c of inCluster) {
    if (c.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) continue;
    if (wanted.has(key(c.kind, c.metadata.namespace, c.metadata.name))) continue;
    const crKind = crKindOf(c.kind);
    if (crKind) actions.push({ kind: 'delete', crKind, namespace: c.metadata.namespace, name: c.metadata.name });
  }
  return actions;
}
