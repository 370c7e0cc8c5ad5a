'use client';
import { useQuery } from '@tanstack/react-query';
import type { StoredResource, WorkloadRecord } from '../lib/api-types.ts';
import { namespaceMtlsOf, observedMtls, formatShare, workloadMtls } from '../lib/security.ts';
import type { MtlsMode } from '../lib/mesh.ts';
import { useTRPC } from '../lib/trpc.ts';
import { useQueryState } from '../lib/use-query-state.ts';
import { Empty, ErrorMessage, Loading, MtlsLock } from './ui.tsx';

// The observed-mTLS tab: per graph edge (workload granularity), the share of requests that
// travelled over mTLS in the window, lowest first; plain-text traffic into a STRICT workload flagged.

const GRAPH_WINDOWS_UI = ['5m', '10m', '30m', '1h', '3h', '24h', '7d'] as const;

export function ObservedTab({ resources, workloads }: { resources: StoredResource[]; workloads: WorkloadRecord[] }) {
  const trpc = useTRPC();
  const [params, setParams] = useQueryState();
  const win = (GRAPH_WINDOWS_UI as readonly string[]).includes(params.get('window') ?? '') ? (params.get('window') as (typeof GRAPH_WINDOWS_UI)[number]) : '1h';
  const graph = useQuery({ ...trpc.graph.get.queryOptions({ window: win, granularity: 'workload' }), refetchInterval: 10_000 });

  const nodes = new Map((graph.data?.nodes ?? []).map((n) => [n.id, n]));
  const modeOf = (id: string): MtlsMode | undefined => {
    const n = nodes.get(id);
    if (!n || n.kind !== 'workload' || !n.workload) return undefined;
    const w = workloads.find((x) => x.namespace === n.namespace && x.name === n.workload);
    return w ? workloadMtls(resources, w.namespace, w.labels).mode : namespaceMtlsOf(resources, n.namespace).mode;
  };
  const rows = graph.data ? observedMtls(graph.data.edges, modeOf) : [];
  const label = (id: string) => {
    const n = nodes.get(id);
    return n ? `${n.namespace}/${n.name}` : id;
  };
  const flagged = rows.filter((r) => r.flagged).length;

  return (
    <section className="panel" aria-labelledby="h-observed">
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <h2 id="h-observed">Observed mTLS per edge</h2>
        <label>
          Window
          <select value={win} onChange={(e) => setParams({ window: e.target.value })} aria-label="Window">
            {GRAPH_WINDOWS_UI.map((w) => <option key={w} value={w}>{w}</option>)}
          </select>
        </label>
      </div>
      <p className="small muted">From the sidecars&apos; telemetry: the share of each edge&apos;s requests that arrived over mutual TLS, lowest first. The mode column is the destination&apos;s effective PeerAuthentication mode now.</p>
      {graph.isPending ? <Loading what="telemetry" /> : graph.isError ? <ErrorMessage error={graph.error} /> : rows.length === 0 ? <Empty>No requests in the last {win}.</Empty> : (
        <>
          {flagged > 0 && <div className="msg error" role="alert" data-testid="flagged-summary">{flagged} edge{flagged === 1 ? '' : 's'} sent only plain text to a STRICT workload: a STRICT workload refuses such requests.</div>}
          <table data-testid="observed-edges">
            <thead><tr><th>From</th><th>To</th><th>Requests</th><th>mTLS share</th><th>Destination mode</th></tr></thead>
            <tbody>
              {rows.map((e) => (
                <tr key={e.id} className={e.flagged ? 'flagged' : undefined} data-testid="observed-edge" data-flagged={e.flagged ? 'true' : 'false'}>
                  <td>{label(e.source)}</td>
                  <td>{label(e.target)}</td>
                  <td>{e.requests}</td>
                  <td>
                    <span className="share" aria-hidden="true"><span style={{ width: `${Math.round(e.mtlsShare * 100)}%` }} /></span> <span data-testid="share">{formatShare(e.mtlsShare)}</span>
                  </td>
                  <td>{e.targetMode ? <MtlsLock mode={e.targetMode} /> : <span className="muted">—</span>}{e.flagged && <span className="badge err" style={{ marginLeft: 6 }}>plain text to STRICT</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
