'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { ErrorMessage, Empty, LevelBadge, Loading, MtlsLock, StatusBadge, when } from '../../components/ui.tsx';
import { namespacesOf } from '../../lib/mesh.ts';
import { namespaceMtlsOf } from '../../lib/security.ts';
import { useTRPC } from '../../lib/trpc.ts';
import { resourceHref } from '../../lib/links.ts';
import { useAnalysis } from '../../lib/analyze.ts';
import { MeshHealth } from '../../components/mesh-health.tsx';

const STATUSES = ['SYNCED', 'STALE', 'NACKED', 'DISCONNECTED'] as const;

export default function OverviewPage() {
  const trpc = useTRPC();
  const resources = useQuery(trpc.resources.list.queryOptions({}));
  const proxies = useQuery({ ...trpc.proxies.list.queryOptions({}), refetchInterval: 5_000 });
  const services = useQuery(trpc.registry.services.queryOptions({}));
  const workloads = useQuery(trpc.registry.workloads.queryOptions({}));
  const analysis = useAnalysis({});
  const head = resources.data ? BigInt(resources.data.revision) : undefined;
  const since = head === undefined ? '0' : (head > 20n ? head - 20n : 0n).toString();
  const changes = useQuery({ ...trpc.history.changes.queryOptions({ since, limit: 20 }), enabled: head !== undefined });

  const namespaces = namespacesOf({ resources: resources.data?.items, services: services.data?.services, workloads: workloads.data?.workloads, proxies: proxies.data?.proxies });
  const counts = Object.fromEntries(STATUSES.map((s) => [s, proxies.data?.proxies.filter((p) => p.status === s).length ?? 0]));
  const diagnostics = analysis.data?.diagnostics ?? [];

  return (
    <>
      <h1>Overview</h1>
      <MeshHealth />
      <div className="grid2">
        <section className="panel" aria-labelledby="h-proxies">
          <h2 id="h-proxies">Proxies by sync status</h2>
          {proxies.isPending ? <Loading what="proxies" /> : proxies.isError ? <ErrorMessage error={proxies.error} /> : (
            <>
              <div className="row" data-testid="proxy-counts">
                {STATUSES.map((s) => (
                  <span key={s} className="row"><StatusBadge status={s} /> <span className="stat">{counts[s]}</span></span>
                ))}
              </div>
              {proxies.data.proxies.length === 0 ? <Empty>No proxies are connected to this control plane.</Empty> : (
                <table>
                  <thead><tr><th>Proxy</th><th>Namespace</th><th>Workload</th><th>Status</th><th>Last NACK</th></tr></thead>
                  <tbody>
                    {proxies.data.proxies.slice(0, 20).map((p) => (
                      <tr key={p.id}><td className="mono">{p.id}</td><td>{p.namespace}</td><td>{p.workload ?? '—'}</td><td><StatusBadge status={p.status} /></td><td className="small">{p.lastNack?.message ?? ''}</td></tr>
                    ))}
                  </tbody>
                </table>
              )}
              <p className="small muted">Mesh revision {proxies.data.meshRevision}.</p>
            </>
          )}
        </section>

        <section className="panel" aria-labelledby="h-ns">
          <h2 id="h-ns">Namespaces</h2>
          {resources.isPending || services.isPending ? <Loading what="namespaces" /> : resources.isError ? <ErrorMessage error={resources.error} /> : namespaces.length === 0 ? <Empty>No namespaces yet: register a service or apply a resource.</Empty> : (
            <table>
              <thead><tr><th>Namespace</th><th>mTLS</th><th>Services</th></tr></thead>
              <tbody>
                {namespaces.map((ns) => {
                  const m = namespaceMtlsOf(resources.data.items, ns);
                  return (
                    <tr key={ns}>
                      <td><Link href={`/services?ns=${encodeURIComponent(ns)}`}>{ns}</Link></td>
                      <td>
                        <MtlsLock mode={m.mode} title={`${m.mode} (${m.source === 'default' ? 'default' : `from the ${m.source} policy`})`} />
                        {m.source !== 'namespace' && <span className="small muted"> ({m.source})</span>}
                      </td>
                      <td>{services.data?.services.filter((s) => s.namespace === ns).length ?? 0}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
        </section>

        <section className="panel" aria-labelledby="h-warn">
          <h2 id="h-warn">Validation messages</h2>
          {analysis.isPending ? <Loading what="analysis" /> : analysis.isError ? <ErrorMessage error={analysis.error} /> : diagnostics.length === 0 ? <Empty>The analyzer found nothing to report.</Empty> : (
            <ul data-testid="diagnostics">
              {diagnostics.map((d, i) => (
                <li key={i}>
                  <LevelBadge level={d.level} /> <Link href={resourceHref(d.kind, d.namespace, d.resourceName)}>{d.kind} {d.namespace}/{d.resourceName}</Link> <code>{d.path}</code>: {d.message} <span className="small muted">{d.code}</span>
                </li>
              ))}
            </ul>
          )}
        </section>

        <section className="panel" aria-labelledby="h-changes">
          <h2 id="h-changes">Recent changes</h2>
          {changes.isPending ? <Loading what="changes" /> : changes.isError ? <ErrorMessage error={changes.error} /> : changes.data.changes.length === 0 ? <Empty>No changes yet.</Empty> : (
            <table>
              <thead><tr><th>Revision</th><th>Change</th><th>Resource</th></tr></thead>
              <tbody>
                {[...changes.data.changes].reverse().map((c) => (
                  <tr key={c.revision}>
                    <td>{c.revision}</td>
                    <td>{c.action}</td>
                    <td>{['Service', 'Workload'].includes(c.kind) ? `${c.kind} ${c.namespace}/${c.name}` : <Link href={resourceHref(c.kind, c.namespace, c.name, 'history')}>{c.kind} {c.namespace}/{c.name}</Link>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <p className="small"><Link href="/audit">Audit log →</Link></p>
        </section>
      </div>
      <p className="small muted">Updated {when(new Date(proxies.dataUpdatedAt || Date.now()).toISOString())}.</p>
    </>
  );
}
