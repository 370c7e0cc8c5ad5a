'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { Suspense } from 'react';
import { ErrorMessage, Empty, Loading } from '../../../components/ui.tsx';
import { namespacesOf, proxiesOf, versionsOf, workloadsOf } from '../../../lib/mesh.ts';
import { useTRPC } from '../../../lib/trpc.ts';
import { useQueryState } from '../../../lib/use-query-state.ts';

function ServicesList() {
  const trpc = useTRPC();
  const [params, setParams] = useQueryState();
  const ns = params.get('ns') ?? '';
  const q = (params.get('q') ?? '').trim().toLowerCase();
  const services = useQuery(trpc.registry.services.queryOptions({}));
  const workloads = useQuery(trpc.registry.workloads.queryOptions({}));
  const proxies = useQuery({ ...trpc.proxies.list.queryOptions({}), refetchInterval: 10_000 });
  const all = services.data?.services ?? [];
  const shown = all.filter((s) => (!ns || s.namespace === ns) && (!q || `${s.namespace}/${s.name} ${s.hosts.join(' ')}`.includes(q)));
  return (
    <>
      <h1>Services</h1>
      <div className="panel row" role="search">
        <label className="inline">Namespace
          <select name="ns" value={ns} onChange={(e) => setParams({ ns: e.target.value })}>
            <option value="">All namespaces</option>
            {namespacesOf({ services: all }).map((n) => <option key={n} value={n}>{n}</option>)}
          </select>
        </label>
        <label className="inline">Search <input type="search" name="q" value={params.get('q') ?? ''} onChange={(e) => setParams({ q: e.target.value })} /></label>
      </div>
      <div className="panel">
        {services.isPending || workloads.isPending ? <Loading what="services" /> : services.isError ? <ErrorMessage error={services.error} /> : workloads.isError ? <ErrorMessage error={workloads.error} /> : shown.length === 0 ? (
          <Empty>{all.length === 0 ? 'No services are registered yet.' : 'No service matches.'}</Empty>
        ) : (
          <table data-testid="services-table">
            <thead><tr><th>Service</th><th>Ports</th><th>Versions</th><th>Workloads</th><th>Proxies synced</th></tr></thead>
            <tbody>
              {shown.map((s) => {
                const px = proxiesOf(s, workloads.data.workloads, proxies.data?.proxies ?? []);
                return (
                  <tr key={`${s.namespace}/${s.name}`}>
                    <td><Link href={`/services/detail?ns=${encodeURIComponent(s.namespace)}&name=${encodeURIComponent(s.name)}`}>{s.namespace}/{s.name}</Link></td>
                    <td className="mono">{s.ports.map((p) => `${p.number}/${p.protocol}`).join(', ')}</td>
                    <td>{versionsOf(s, workloads.data.workloads).join(', ') || '—'}</td>
                    <td>{workloadsOf(s, workloads.data.workloads).length}</td>
                    <td>{proxies.data ? `${px.filter((p) => p.status === 'SYNCED').length} / ${px.length}` : '…'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        <p className="small muted">Request rates and latencies per service come with the telemetry views (not in the console yet).</p>
      </div>
    </>
  );
}

export default function ServicesPage() {
  return <Suspense fallback={<Loading what="page" />}><ServicesList /></Suspense>;
}
