'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { driftRows, reconcilerSummary } from '../lib/kube-drift.ts';
import { resourceHref } from '../lib/links.ts';
import { useTRPC } from '../lib/trpc.ts';
import { ErrorMessage, when } from './ui.tsx';

/**
 * The Kubernetes reconciler on the Config page: who runs it, its mode and last pass, and the custom
 * resources recently edited in the cluster (drift) with what became of the edit. Shown only when
 * the control plane writes policy into a cluster.
 */
export function KubernetesDriftPanel() {
  const trpc = useTRPC();
  const q = useQuery({ ...trpc.kubernetes.status.queryOptions({ limit: 10 }), refetchInterval: 10_000 });
  if (q.isPending) return null;
  if (q.isError) return <div className="panel"><ErrorMessage error={q.error} title="Kubernetes status" /></div>;
  if (!q.data.enabled) return null;
  const rows = driftRows(q.data.recentDrift);
  return (
    <section className="panel" data-testid="kubernetes-panel" aria-labelledby="kubernetes-heading">
      <div className="spread">
        <h2 id="kubernetes-heading">Kubernetes</h2>
        <Link className="small" href="/audit?actor=system%3Akubernetes">Audit log</Link>
      </div>
      <p className="small muted">{reconcilerSummary(q.data, when)}</p>
      {q.data.lastPass && q.data.lastPass.errors.length > 0 && (
        <ul className="small" data-testid="kubernetes-errors">{q.data.lastPass.errors.slice(0, 5).map((e, i) => <li key={i}>{e}</li>)}</ul>
      )}
      {rows.length === 0 ? (
        <p className="small muted">No custom resource has been edited in the cluster recently.</p>
      ) : (
        <table data-testid="drift-table">
          <caption className="small muted">Custom resources edited in the cluster</caption>
          <thead><tr><th>When</th><th>Resource</th><th>Outcome</th><th>Edited by</th><th>Change</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td className="small">{when(r.at)}</td>
                <td>{r.kind} {r.namespace && r.name ? <Link href={resourceHref(r.kind, r.namespace, r.name, 'history')}>{r.namespace}/{r.name}</Link> : '—'}</td>
                <td><span className={`badge ${r.outcome === 'corrected' ? 'warn' : 'neutral'}`}>{r.outcome}</span></td>
                <td className="small">{r.editedBy.join(', ') || '—'}</td>
                <td className="small mono">{r.summary}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
