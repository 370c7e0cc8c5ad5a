import { healthOf, type GraphEdge, type GraphGranularity, type GraphNode } from '@tern/shared';
import { quantile } from './quantile.ts';
import type { RollupKey, RollupValues } from './rows.ts';

// Pure: aggregated rollup rows -> graph nodes and edges at a granularity.

/** One row of the graph query: a (source, destination, protocol) aggregate over the window. */
export type EdgeAggregate = Omit<RollupKey, 'srcPrincipal' | 'codeClass' | 'mtls'> &
  Pick<RollupValues, 'requests' | 'errors' | 'bytesIn' | 'bytesOut' | 'd'> & { mtlsRequests: number };

const UNKNOWN = 'unknown';
const PASSTHROUGH = new Set(['PassthroughCluster', 'InboundPassthroughCluster']);

type NodeDraft = Omit<GraphNode, 'health' | 'inboundRps' | 'outboundRps' | 'errorPercent'> & { inReq: number; inErr: number; outReq: number };

function sourceNode(r: EdgeAggregate, g: GraphGranularity): NodeDraft {
  if (r.srcWorkload === UNKNOWN) return draft('unknown', 'unknown', UNKNOWN, 'unknown', null, null, null, null);
  if (g === 'app' && r.srcApp !== UNKNOWN) {
    return draft(`app:${r.srcNamespace}:${r.srcApp}:${r.srcVersion}`, 'app', r.srcNamespace, r.srcApp, r.srcApp, r.srcVersion, null, null);
  }
  return draft(`workload:${r.srcNamespace}:${r.srcWorkload}`, 'workload', r.srcNamespace, r.srcWorkload, nn(r.srcApp), nn(r.srcVersion), r.srcWorkload, null);
}

function destNode(r: EdgeAggregate, g: GraphGranularity, domainSuffix: string): NodeDraft {
  if (PASSTHROUGH.has(r.dstService)) return draft('passthrough', 'passthrough', UNKNOWN, r.dstService, null, null, null, null);
  if (r.dstWorkload === UNKNOWN) {
    // No sidecar answered: a mesh service that failed before its sidecar, or an outside host.
    const internal = r.dstService.endsWith(`.svc.${domainSuffix}`);
    return draft(`service:${r.dstService}`, internal ? 'service' : 'external', r.dstNamespace, r.dstService.split('.')[0] ?? r.dstService, null, null, null, r.dstService);
  }
  if (g === 'service') return draft(`service:${r.dstService}`, 'service', r.dstNamespace, r.dstService.split('.')[0] ?? r.dstService, null, null, null, r.dstService);
  if (g === 'app' && r.dstApp !== UNKNOWN) {
    return draft(`app:${r.dstNamespace}:${r.dstApp}:${r.dstVersion}`, 'app', r.dstNamespace, r.dstApp, r.dstApp, r.dstVersion, null, null);
  }
  return draft(`workload:${r.dstNamespace}:${r.dstWorkload}`, 'workload', r.dstNamespace, r.dstWorkload, nn(r.dstApp), nn(r.dstVersion), r.dstWorkload, null);
}

function nn(v: string): string | null {
  return v === UNKNOWN ? null : v;
}

function draft(id: string, kind: GraphNode['kind'], namespace: string, name: string, app: string | null, version: string | null, workload: string | null, service: string | null): NodeDraft {
  return { id, kind, namespace, name, app, version, workload, service, inReq: 0, inErr: 0, outReq: 0 };
}

export function buildGraph(rows: readonly EdgeAggregate[], g: GraphGranularity, windowSeconds: number, domainSuffix: string): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const nodes = new Map<string, NodeDraft>();
  const edges = new Map<string, { e: Omit<GraphEdge, 'rps' | 'errorPercent' | 'p50' | 'p95' | 'p99' | 'bytesPerSecond' | 'mtlsShare'>; mtls: number; d: number[] }>();
  const node = (n: NodeDraft) => {
    const have = nodes.get(n.id);
    if (have) return have;
    nodes.set(n.id, n);
    return n;
  };
  for (const r of rows) {
    const s = node(sourceNode(r, g));
    const t = node(destNode(r, g, domainSuffix));
    s.outReq += r.requests;
    t.inReq += r.requests;
    t.inErr += r.errors;
    const protocol = r.protocol === 'grpc' || r.protocol === 'tcp' ? r.protocol : 'http';
    const id = `${s.id}->${t.id}:${protocol}`;
    let e = edges.get(id);
    if (!e) {
      e = { e: { id, source: s.id, target: t.id, protocol, requests: 0, errors: 0, bytesIn: 0, bytesOut: 0 }, mtls: 0, d: new Array<number>(r.d.length).fill(0) };
      edges.set(id, e);
    }
    e.e.requests += r.requests;
    e.e.errors += r.errors;
    e.e.bytesIn += r.bytesIn;
    e.e.bytesOut += r.bytesOut;
    e.mtls += r.mtlsRequests;
    for (let i = 0; i < r.d.length; i++) e.d[i]! += r.d[i]!;
  }
  const sec = Math.max(1, windowSeconds);
  const outNodes: GraphNode[] = [];
  for (const n of nodes.values()) {
    const { inReq, inErr, outReq, ...rest } = n;
    const errorPercent = inReq > 0 ? (inErr / inReq) * 100 : 0;
    outNodes.push({ ...rest, health: n.kind === 'unknown' ? 'na' : healthOf(inReq, errorPercent), inboundRps: inReq / sec, outboundRps: outReq / sec, errorPercent });
  }
  const outEdges: GraphEdge[] = [];
  for (const { e, mtls, d } of edges.values()) {
    const latency = e.protocol !== 'tcp';
    outEdges.push({
      ...e,
      rps: e.requests / sec,
      errorPercent: e.requests > 0 ? (e.errors / e.requests) * 100 : 0,
      p50: latency ? quantile(0.5, d) : null,
      p95: latency ? quantile(0.95, d) : null,
      p99: latency ? quantile(0.99, d) : null,
      bytesPerSecond: (e.bytesIn + e.bytesOut) / sec,
      mtlsShare: e.requests > 0 ? mtls / e.requests : 0,
    });
  }
  return { nodes: outNodes, edges: outEdges };
}
