import { isAcceptedApiVersion, isKind, KIND_API_GROUPS, KIND_API_VERSIONS, KINDS, type Kind } from '@tern/shared';

// Importing existing Istio resources (`tern import istio`): what is read from a cluster's
// networking.istio.io / security.istio.io objects becomes the documents Tern's apply takes.
// Pure: the cluster is read in istio-source.ts, the API call is made by the CLI. Nothing is dropped
// silently: every object either becomes a document or a skip with its reason.

/** Istio's API groups read by the import; the first two hold every kind Tern can import. */
export const ISTIO_GROUPS = ['networking.istio.io', 'security.istio.io', 'telemetry.istio.io', 'extensions.istio.io'] as const;
export const IMPORTABLE_GROUPS: readonly string[] = ['networking.istio.io', 'security.istio.io'];

/** Which served version to read a kind at: Tern's preferred versions first, then any other served one. */
export const VERSION_PREFERENCE = ['v1', 'v1beta1', 'v1alpha3', 'v1alpha2', 'v1alpha1'] as const;

/** Why Tern cannot take Istio's other kinds (docs/kubernetes.md "Importing from Istio"). */
export const UNSUPPORTED_KIND_REASONS: Readonly<Record<string, string>> = {
  Gateway: 'Tern has no gateways (standalone edge proxies): route external traffic to a meshed workload instead',
  Sidecar: 'Tern computes every proxy\'s configuration from the whole mesh; per-workload Sidecar scoping is not modelled',
  EnvoyFilter: 'Tern does not accept raw Envoy configuration patches',
  WorkloadEntry: 'workloads outside Kubernetes are registered in Tern\'s service registry (/api/v1/registry/workloads, docs/api.md), not as WorkloadEntry',
  WorkloadGroup: 'workloads outside Kubernetes are registered in Tern\'s service registry (/api/v1/registry/workloads, docs/api.md), not as WorkloadGroup',
  ProxyConfig: 'proxy settings come from Tern\'s own configuration',
  RequestAuthentication: 'Tern does not validate end-user JWTs (no RequestAuthentication model)',
  Telemetry: 'Tern\'s telemetry is configured by the control plane, not by Telemetry resources',
  WasmPlugin: 'Tern\'s proxy does not run Wasm plugins',
};

/** An object as the API server returns it (only what the import looks at is typed). */
export interface ClusterObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: {
    name?: unknown;
    namespace?: unknown;
    labels?: unknown;
    annotations?: unknown;
    deletionTimestamp?: unknown;
    [k: string]: unknown;
  };
  spec?: unknown;
  [k: string]: unknown;
}

/** A document for Tern's apply: only what a user would have written. */
export interface ImportDocument {
  apiVersion: string;
  kind: Kind;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

export interface ImportSkip {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  reason: string;
}

export type ConvertResult = { ok: true; document: ImportDocument } | { ok: false; skip: ImportSkip };

/** kubectl's copy of the last applied file: a second, stale copy of the spec that means nothing to Tern. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown, drop: readonly string[] = []): Record<string, string> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    // Non-strings cannot come from an API server; left to the API's validation if they do.
    if (!drop.includes(k)) out[k] = val as string;
  }
  return Object.keys(out).length ? out : undefined;
}

/** One cluster object → a document Tern's apply accepts, or the reason it is skipped. */
export function convertIstioObject(obj: ClusterObject): ConvertResult {
  const apiVersion = typeof obj.apiVersion === 'string' ? obj.apiVersion : '';
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  const meta = isRecord(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : '';
  const skip = (reason: string): ConvertResult => ({ ok: false, skip: { apiVersion, kind, namespace, name, reason } });

  if (!apiVersion || !kind || !name) return skip('not a Kubernetes object (apiVersion, kind and metadata.name are required)');
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  if (!isKind(kind) || KIND_API_GROUPS[kind] !== group) {
    return skip(UNSUPPORTED_KIND_REASONS[kind] ?? `Tern has no model for ${kind} (${group || apiVersion}); it imports ${KINDS.join(', ')}`);
  }
  if (!isAcceptedApiVersion(kind, apiVersion)) {
    return skip(`apiVersion ${apiVersion} is not one Tern accepts for ${kind} (${KIND_API_VERSIONS[kind].join(', ')})`);
  }
  if (!namespace) return skip('metadata.namespace is missing (Istio policy objects are namespaced)');
  if (meta.deletionTimestamp) return skip('being deleted in the cluster (metadata.deletionTimestamp is set)');

  const labels = stringMap(meta.labels);
  const annotations = stringMap(meta.annotations, [LAST_APPLIED_ANNOTATION]);
  return {
    ok: true,
    document: {
      apiVersion,
      kind,
      metadata: { name, namespace, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
      // A spec that is not an object goes through as it is, for the API to refuse with its field path.
      spec: (obj.spec === undefined ? {} : structuredClone(obj.spec)) as Record<string, unknown>,
    },
  };
}

const kindOrder = (k: string) => {
  const i = (KINDS as readonly string[]).indexOf(k);
  return i < 0 ? KINDS.length : i;
};
const byKindNamespaceName = (a: { kind: string; namespace: string; name: string }, b: { kind: string; namespace: string; name: string }) =>
  kindOrder(a.kind) - kindOrder(b.kind) || a.kind.localeCompare(b.kind) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);

/** Every object, converted or skipped, in a stable order (kind as Tern lists them, namespace, name). */
export function convertIstioObjects(objects: readonly ClusterObject[]): { documents: ImportDocument[]; skipped: ImportSkip[] } {
  const documents: ImportDocument[] = [];
  const skipped: ImportSkip[] = [];
  for (const o of objects) {
    const r = convertIstioObject(o);
    if (r.ok) documents.push(r.document);
    else skipped.push(r.skip);
  }
  documents.sort((a, b) => byKindNamespaceName({ kind: a.kind, ...a.metadata }, { kind: b.kind, ...b.metadata }));
  skipped.sort(byKindNamespaceName);
  return { documents, skipped };
}

/** What discovery says a group/version serves. */
export interface ServedResource {
  group: string;
  version: string;
  /** The plural, e.g. "virtualservices" (subresources like "virtualservices/status" are ignored). */
  name: string;
  kind: string;
  namespaced: boolean;
  verbs: readonly string[];
}

export type ListTarget = Omit<ServedResource, 'verbs'>;

/**
 * Which version to list each kind at (pure): per group and kind, the first of VERSION_PREFERENCE
 * the cluster serves it at, else the first other served version. Istio serves one stored object
 * under every version, so listing a kind once is enough.
 */
export function chooseListTargets(served: readonly ServedResource[]): ListTarget[] {
  const rank = (v: string) => {
    const i = (VERSION_PREFERENCE as readonly string[]).indexOf(v);
    return i < 0 ? VERSION_PREFERENCE.length : i;
  };
  const best = new Map<string, ServedResource>();
  for (const r of served) {
    if (r.name.includes('/') || !r.verbs.includes('list')) continue;
    const key = `${r.group}/${r.kind}`;
    const cur = best.get(key);
    if (!cur || rank(r.version) < rank(cur.version)) best.set(key, r);
  }
  return [...best.values()]
    .map(({ verbs: _verbs, ...t }) => t)
    .sort((a, b) => a.group.localeCompare(b.group) || kindOrder(a.kind) - kindOrder(b.kind) || a.kind.localeCompare(b.kind));
}
