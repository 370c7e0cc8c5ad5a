'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { Suspense } from 'react';
import { HealthBadge, SeriesCharts } from '../../../../components/metric-chart.tsx';
import { ErrorMessage, Empty, Loading, MtlsLock, StatusBadge, when } from '../../../../components/ui.tsx';
import { formatValue } from '../../../../lib/chart.ts';
import { resourceHref } from '../../../../lib/links.ts';
import { compareVersions, DOMAIN_SUFFIX, policyFor, proxiesOf, serviceFqdn, versionOf, workloadsOf } from '../../../../lib/mesh.ts';
import { namespaceMtlsOf } from '../../../../lib/security.ts';
import { useTRPC } from '../../../../lib/trpc.ts';
import { useQueryState } from '../../../../lib/use-query-state.ts';

const WINDOWS = ['5m', '10m', '30m', '1h', '3h', '6h', '24h', '7d'] as const;
type Win = (typeof WINDOWS)[number];

/** Golden-metric charts of the service and its traffic per workload / version. */
function ServiceMetrics({ ns, fqdn, win, setWin }: { ns: string; fqdn: string; win: Win; setWin(w: string): void }) {
  const trpc = useTRPC();
  const perWorkload = useQuery({ ...trpc.graph.summary.queryOptions({ window: win, by: 'workload', namespace: ns }), refetchInterval: 10_000 });
  const rows = (perWorkload.data?.rows ?? []).filter((r) => r.service === fqdn).sort((a, b) => compareVersions(a.version ?? '', b.version ?? '') || (a.workload ?? '').localeCompare(b.workload ?? ''));
  return (
    <section className="panel" aria-labelledby="h-metrics" data-testid="service-metrics">
      <div className="spread">
        <h2 id="h-metrics">Requests into {fqdn}</h2>
        <label className="inline">Window
          <select name="window" value={win} onChange={(e) => setWin(e.target.value)}>{WINDOWS.map((w) => <option key={w}>{w}</option>)}</select>
        </label>
      </div>
      <SeriesCharts input={{ window: win, service: fqdn }} />
      <h3 style={{ marginTop: 12 }}>By workload and version</h3>
      {perWorkload.isPending ? <Loading what="metrics" /> : perWorkload.isError ? <ErrorMessage error={perWorkload.error} /> : rows.length === 0 ? <Empty>No requests reached this service in the last {win}.</Empty> : (
        <table data-testid="workload-metrics">
          <thead><tr><th>Workload</th><th>Version</th><th className="num">Requests/s</th><th className="num">Success</th><th className="num">p50</th><th className="num">p95</th><th className="num">p99</th><th>Health</th></tr></thead>
          <tbody>{rows.map((r) => (
            <tr key={`${r.workload}/${r.version}`}>
              <td>{r.workload ?? <span className="muted">no sidecar answered</span>}</td>
              <td>{r.version ?? '—'}</td>
              <td className="num">{formatValue(r.rps, 'rps')}</td>
              <td className="num">{r.requests > 0 ? formatValue(100 - r.errorPercent, 'percent') : '—'}</td>
              <td className="num">{formatValue(r.p50, 'ms')}</td>
              <td className="num">{formatValue(r.p95, 'ms')}</td>
              <td className="num">{formatValue(r.p99, 'ms')}</td>
              <td><HealthBadge health={r.health} /></td>
            </tr>
          ))}</tbody>
        </table>
      )}
      <p className="small muted">Success: responses that are not 5xx or missing (gRPC: status OK). Latency percentiles are accurate to one histogram bucket.</p>
    </section>
  );
}

function ServiceDetail() {
  const trpc = useTRPC();
  const [params, setParams] = useQueryState();
  const ns = params.get('ns') ?? '';
  const name = params.get('name') ?? '';
  const win: Win = (WINDOWS as readonly string[]).includes(params.get('window') ?? '') ? (params.get('window') as Win) : '1h';
  const services = useQuery(trpc.registry.services.queryOptions({ namespace: ns || undefined }));
  const workloads = useQuery(trpc.registry.workloads.queryOptions({ namespace: ns || undefined }));
  const resources = useQuery(trpc.resources.list.queryOptions({}));
  const proxies = useQuery({ ...trpc.proxies.list.queryOptions({}), refetchInterval: 5_000 });
  if (services.isPending || workloads.isPending || resources.isPending) return <Loading what="service" />;
  if (services.isError) return <ErrorMessage error={services.error} />;
  if (workloads.isError) return <ErrorMessage error={workloads.error} />;
  if (resources.isError) return <ErrorMessage error={resources.error} />;
  const svc = services.data.services.find((s) => s.name === name);
  if (!svc) return <><p className="small"><Link href="/services">← Services</Link></p><Empty>There is no service {ns}/{name}.</Empty></>;
  const wls = workloadsOf(svc, workloads.data.workloads);
  const policy = policyFor(svc, resources.data.items);
  const mtls = namespaceMtlsOf(resources.data.items, svc.namespace);
  const px = proxiesOf(svc, workloads.data.workloads, proxies.data?.proxies ?? []);
  const endpoints = wls.flatMap((w) => svc.ports.flatMap((p) => w.addresses.map((a) => ({ w, p, addr: a, port: w.ports[String(p.number)] ?? p.targetPort ?? p.number }))));
  return (
    <>
      <p className="small"><Link href="/services">← Services</Link></p>
      <div className="spread">
        <h1>{svc.namespace}/{svc.name}</h1>
        <Link className="button" href={`/traffic?ns=${encodeURIComponent(svc.namespace)}&svc=${encodeURIComponent(svc.name)}`}>Shift traffic…</Link>
      </div>
      <p className="muted">{serviceFqdn(svc)} · ports {svc.ports.map((p) => `${p.number}/${p.protocol}`).join(', ')} · mTLS <MtlsLock mode={mtls.mode} /></p>
      <ServiceMetrics ns={svc.namespace} fqdn={`${svc.name}.${svc.namespace}.svc.${DOMAIN_SUFFIX}`} win={win} setWin={(w) => setParams({ window: w })} />
      <div className="grid2">
        <section className="panel" aria-labelledby="h-wl">
          <h2 id="h-wl">Workloads and versions</h2>
          {wls.length === 0 ? <Empty>No workload has the label app={svc.name} in {svc.namespace}.</Empty> : (
            <table><thead><tr><th>Workload</th><th>Version</th><th>Service account</th><th>Addresses</th></tr></thead>
              <tbody>{wls.map((w) => <tr key={w.name}><td>{w.name}</td><td>{versionOf(w.labels) ?? '—'}</td><td>{w.serviceAccount}</td><td className="mono">{w.addresses.join(', ') || '—'}</td></tr>)}</tbody>
            </table>
          )}
        </section>
        <section className="panel" aria-labelledby="h-ep">
          <h2 id="h-ep">Endpoints</h2>
          {endpoints.length === 0 ? <Empty>No endpoints: no workload with an address.</Empty> : (
            <table><thead><tr><th>Address</th><th>Service port</th><th>Workload</th></tr></thead>
              <tbody>{endpoints.map((e, i) => <tr key={i}><td className="mono">{e.addr}:{e.port}</td><td>{e.p.number}/{e.p.protocol}</td><td>{e.w.name}</td></tr>)}</tbody>
            </table>
          )}
        </section>
        <section className="panel" aria-labelledby="h-policy">
          <h2 id="h-policy">Policy that applies</h2>
          {policy.virtualServices.length + policy.destinationRules.length === 0 ? <Empty>No VirtualService or DestinationRule names this service: traffic goes round-robin to all its workloads.</Empty> : (
            <ul>
              {[...policy.virtualServices, ...policy.destinationRules].map((r) => (
                <li key={`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`}>
                  <Link href={resourceHref(r.kind, r.metadata.namespace, r.metadata.name)}>{r.kind} {r.metadata.namespace}/{r.metadata.name}</Link>
                  <span className="small muted"> · <Link href={resourceHref(r.kind, r.metadata.namespace, r.metadata.name, 'history')}>history</Link></span>
                </li>
              ))}
            </ul>
          )}
          <p className="small muted">mTLS: {mtls.mode} ({mtls.source === 'default' ? 'no PeerAuthentication: default' : `from the ${mtls.source}-wide PeerAuthentication`}).</p>
        </section>
        <section className="panel" aria-labelledby="h-px">
          <h2 id="h-px">Proxy sync state</h2>
          {proxies.isPending ? <Loading what="proxies" /> : proxies.isError ? <ErrorMessage error={proxies.error} /> : px.length === 0 ? <Empty>No proxy of this service&apos;s workloads is connected.</Empty> : (
            <table><thead><tr><th>Proxy</th><th>Status</th><th>CDS</th><th>LDS</th><th>EDS</th><th>RDS</th><th>Since</th></tr></thead>
              <tbody>{px.map((p) => (
                <tr key={p.id}><td className="mono">{p.id}</td><td><StatusBadge status={p.status} /></td>
                  <td><StatusBadge status={p.types.clusters.status} /></td><td><StatusBadge status={p.types.listeners.status} /></td>
                  <td><StatusBadge status={p.types.endpoints.status} /></td><td><StatusBadge status={p.types.routes.status} /></td>
                  <td className="small">{when(p.connectedSince)}</td></tr>
              ))}</tbody>
            </table>
          )}
        </section>
      </div>
    </>
  );
}

export default function ServiceDetailPage() {
  return <Suspense fallback={<Loading what="page" />}><ServiceDetail /></Suspense>;
}
