'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { Suspense } from 'react';
import { ErrorMessage, Empty, Loading } from '../../../components/ui.tsx';
import { compareMetric, formatValue } from '../../../lib/chart.ts';
import { nextSort, parseSort, type SortKey } from '../../../lib/golden.ts';
import { DOMAIN_SUFFIX, namespacesOf, proxiesOf, versionsOf, workloadsOf } from '../../../lib/mesh.ts';
import { useTRPC } from '../../../lib/trpc.ts';
import { useQueryState } from '../../../lib/use-query-state.ts';

const WINDOWS = ['1m', '5m', '10m', '30m', '1h', '3h', '24h'] as const;
type Win = (typeof WINDOWS)[number];

type Metrics = { rps: number; success: number | null; p95: number | null };

function SortHeader({ label, k, sort, onSort, num }: { label: string; k: SortKey; sort: { key: SortKey; dir: 'asc' | 'desc' }; onSort(k: SortKey): void; num?: boolean }) {
  const active = sort.key === k;
  return (
    <th className={num ? 'num' : undefined} aria-sort={active ? (sort.dir === 'asc' ? 'ascending' : 'descending') : undefined}>
      <button type="button" className="sort" onClick={() => onSort(k)}>{label}{active ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : ''}</button>
    </th>
  );
}

function ServicesList() {
  const trpc = useTRPC();
  const [params, setParams] = useQueryState();
  const ns = params.get('ns') ?? '';
  const q = (params.get('q') ?? '').trim().toLowerCase();
  const services = useQuery(trpc.registry.services.queryOptions({}));
  const workloads = useQuery(trpc.registry.workloads.queryOptions({}));
  const proxies = useQuery({ ...trpc.proxies.list.queryOptions({}), refetchInterval: 10_000 });
  const win: Win = (WINDOWS as readonly string[]).includes(params.get('window') ?? '') ? (params.get('window') as Win) : '5m';
  const sort = parseSort(params.get('sort'));
  const summary = useQuery({ ...trpc.graph.summary.queryOptions({ window: win, by: 'service' }), refetchInterval: 10_000 });
  const byFqdn = new Map((summary.data?.rows ?? []).map((r) => [r.service, r]));
  const metricsOf = (s: { name: string; namespace: string; hosts: string[] }): Metrics | undefined => {
    const r = byFqdn.get(`${s.name}.${s.namespace}.svc.${DOMAIN_SUFFIX}`) ?? s.hosts.map((h) => byFqdn.get(h)).find((x) => x !== undefined);
    return r && r.requests > 0 ? { rps: r.rps, success: 100 - r.errorPercent, p95: r.p95 } : undefined;
  };
  const all = services.data?.services ?? [];
  const filtered = all.filter((s) => (!ns || s.namespace === ns) && (!q || `${s.namespace}/${s.name} ${s.hosts.join(' ')}`.includes(q)));
  const rows = filtered.map((s) => ({ s, m: metricsOf(s) }));
  const byName = (a: (typeof rows)[number], b: (typeof rows)[number]) => `${a.s.namespace}/${a.s.name}`.localeCompare(`${b.s.namespace}/${b.s.name}`);
  const shown = [...rows].sort((a, b) => {
    if (sort.key === 'name') return sort.dir === 'asc' ? byName(a, b) : byName(b, a);
    return compareMetric(a.m?.[sort.key], b.m?.[sort.key], sort.dir) || byName(a, b);
  });
  const onSort = (k: SortKey) => setParams({ sort: nextSort(sort, k) === 'name' ? undefined : nextSort(sort, k) });
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
        <label className="inline">Window
          <select name="window" value={win} onChange={(e) => setParams({ window: e.target.value })}>{WINDOWS.map((w) => <option key={w}>{w}</option>)}</select>
        </label>
      </div>
      <div className="panel">
        {services.isPending || workloads.isPending ? <Loading what="services" /> : services.isError ? <ErrorMessage error={services.error} /> : workloads.isError ? <ErrorMessage error={workloads.error} /> : shown.length === 0 ? (
          <Empty>{all.length === 0 ? 'No services are registered yet.' : 'No service matches.'}</Empty>
        ) : (
          <table data-testid="services-table">
            <thead><tr>
              <SortHeader label="Service" k="name" sort={sort} onSort={onSort} />
              <SortHeader label="Requests/s" k="rps" sort={sort} onSort={onSort} num />
              <SortHeader label="Success" k="success" sort={sort} onSort={onSort} num />
              <SortHeader label="p95" k="p95" sort={sort} onSort={onSort} num />
              <th>Ports</th><th>Versions</th><th>Workloads</th><th>Proxies synced</th>
            </tr></thead>
            <tbody>
              {shown.map(({ s, m }) => {
                const px = proxiesOf(s, workloads.data.workloads, proxies.data?.proxies ?? []);
                return (
                  <tr key={`${s.namespace}/${s.name}`}>
                    <td><Link href={`/services/detail?ns=${encodeURIComponent(s.namespace)}&name=${encodeURIComponent(s.name)}&window=${win}`}>{s.namespace}/{s.name}</Link></td>
                    {summary.isError ? <td colSpan={3} className="small muted">metrics unavailable</td> : !summary.data ? <td colSpan={3} className="small muted">…</td> : (
                      <>
                        <td className="num" data-testid="svc-rps">{m ? formatValue(m.rps, 'rps') : '—'}</td>
                        <td className="num" data-testid="svc-success">{m ? formatValue(m.success, 'percent') : '—'}</td>
                        <td className="num" data-testid="svc-p95">{m ? formatValue(m.p95, 'ms') : '—'}</td>
                      </>
                    )}
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
        {summary.isError ? <ErrorMessage error={summary.error} title="Could not load the request metrics" /> : (
          <p className="small muted">Requests/s, success rate (responses that are not 5xx or missing) and p95 latency of the requests into each service over the last {win}; — means no requests. Refreshed every 10 s.</p>
        )}
      </div>
    </>
  );
}

export default function ServicesPage() {
  return <Suspense fallback={<Loading what="page" />}><ServicesList /></Suspense>;
}
