import { PeerAuthIndex, type PeerMode } from '../compile/mtls.ts';
import type { GraphResponse, MtlsStatus } from '@tern/shared';
import type { MeshSnapshot } from '../store/snapshot.ts';

// What mTLS the configuration asks for (PeerAuthentication precedence, compile/mtls.ts) next to
// what the telemetry saw (the share of requests each workload received over mutual TLS).

export interface ObservedTraffic {
  requests: number;
  mtlsRequests: number;
}

/** Received HTTP/gRPC traffic per workload (`namespace/name`), summed over its callers, from a workload-granularity graph. */
export function observedByWorkload(graph: GraphResponse): Map<string, ObservedTraffic> {
  const observed = new Map<string, ObservedTraffic>();
  for (const e of graph.edges) {
    const m = /^workload:([^:]+):(.+)$/.exec(e.target);
    if (!m || e.protocol === 'tcp') continue;
    const key = `${m[1]}/${m[2]}`;
    const o = observed.get(key) ?? { requests: 0, mtlsRequests: 0 };
    o.requests += e.requests;
    o.mtlsRequests += e.requests * e.mtlsShare;
    observed.set(key, o);
  }
  return observed;
}

/**
 * Per namespace, the mode a workload without matching selector policies gets (mesh, then
 * namespace policy); per registry workload, its effective policy and the observed share keyed by
 * `namespace/name`.
 */
export function mtlsStatus(mesh: MeshSnapshot, observed: ReadonlyMap<string, ObservedTraffic>, opts: { enabled: boolean; rootNamespace?: string }): MtlsStatus {
  const index = new PeerAuthIndex(mesh, opts.rootNamespace ?? 'istio-system');
  const namespaces = new Set<string>();
  for (const r of mesh.resources.values()) if (r.kind === 'PeerAuthentication') namespaces.add(r.namespace);
  for (const s of mesh.services.values()) namespaces.add(s.namespace);
  for (const w of mesh.workloads.values()) namespaces.add(w.namespace);
  const workloads = [...mesh.workloads.values()]
    .sort((a, b) => (a.namespace === b.namespace ? cmp(a.name, b.name) : cmp(a.namespace, b.namespace)))
    .map((w) => {
      const policy = index.effective(w.namespace, w.labels);
      const seen = observed.get(`${w.namespace}/${w.name}`);
      const requests = seen?.requests ?? 0;
      return {
        namespace: w.namespace,
        name: w.name,
        mode: policy.mode,
        ports: Object.fromEntries([...policy.ports].map(([p, m]) => [String(p), m])),
        requests,
        mtlsShare: requests > 0 ? seen!.mtlsRequests / requests : null,
      };
    });
  return {
    enabled: opts.enabled,
    namespaces: [...namespaces].sort(cmp).map((namespace) => ({ namespace, mode: index.effective(namespace, {}).mode })),
    workloads,
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
