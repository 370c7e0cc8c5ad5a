'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { Suspense, type ReactNode } from 'react';
import type { ServiceRecord, StoredResource, WorkloadRecord } from '../lib/api-types.ts';
import { compareVersions, versionsOf } from '../lib/mesh.ts';
import { useTRPC } from '../lib/trpc.ts';
import { useQueryState } from '../lib/use-query-state.ts';
import { Empty, ErrorMessage, Loading } from './ui.tsx';

// The page around a per-service traffic wizard: the wizards' tabs, loading the registry and the
// stored resources, and the service picker (ns/svc in the URL). The wizard itself gets the service.

const TABS = [
  { href: '/traffic', label: 'Shifting' },
  { href: '/traffic/routing', label: 'Request routing' },
  { href: '/traffic/faults', label: 'Fault injection' },
  { href: '/traffic/timeouts', label: 'Timeouts and retries' },
  { href: '/traffic/circuit-breaker', label: 'Circuit breaker' },
  { href: '/traffic/load-balancer', label: 'Load balancer' },
];

/** Links between the traffic wizards, keeping the chosen service. */
export function TrafficTabs() {
  const pathname = usePathname();
  const [params] = useQueryState();
  const keep = new URLSearchParams();
  for (const k of ['ns', 'svc']) {
    const v = params.get(k);
    if (v) keep.set(k, v);
  }
  const qs = keep.toString();
  return (
    <nav className="tabs" aria-label="Traffic wizards">
      {TABS.map((t) => (
        <Link key={t.href} href={qs ? `${t.href}?${qs}` : t.href} aria-current={pathname === t.href ? 'page' : undefined}>
          {t.label}
        </Link>
      ))}
    </nav>
  );
}

export interface ServiceWizardContext {
  service: ServiceRecord;
  /** The service's versions (version labels of its workloads), sorted. */
  versions: string[];
  resources: StoredResource[];
  workloads: WorkloadRecord[];
}

function Picker({ services, workloads, resources, children }: { services: ServiceRecord[]; workloads: WorkloadRecord[]; resources: StoredResource[]; children: (ctx: ServiceWizardContext) => ReactNode }) {
  const [params, setParams] = useQueryState();
  const ns = params.get('ns') ?? '';
  const svcName = params.get('svc') ?? '';
  const service = services.find((s) => s.namespace === ns && s.name === svcName);
  return (
    <>
      <div className="panel">
        <label>
          Service
          <select
            name="service"
            value={service ? `${ns}/${svcName}` : ''}
            data-testid="service-select"
            onChange={(e) => {
              const [n, s] = e.target.value.split('/');
              setParams({ ns: n, svc: s });
            }}
          >
            <option value="">Choose a service…</option>
            {services.map((s) => (
              <option key={`${s.namespace}/${s.name}`} value={`${s.namespace}/${s.name}`}>
                {s.namespace}/{s.name}
              </option>
            ))}
          </select>
        </label>
        {ns && svcName && !service && <div className="msg warning">There is no service {ns}/{svcName} in the registry.</div>}
      </div>
      {service && children({ service, versions: versionsOf(service, workloads).sort(compareVersions), resources, workloads })}
    </>
  );
}

function Loader({ title, intro, children }: { title: string; intro: ReactNode; children: (ctx: ServiceWizardContext) => ReactNode }) {
  const trpc = useTRPC();
  const services = useQuery(trpc.registry.services.queryOptions({}));
  const workloads = useQuery(trpc.registry.workloads.queryOptions({}));
  const resources = useQuery(trpc.resources.list.queryOptions({}));
  return (
    <>
      <h1>{title}</h1>
      <TrafficTabs />
      <p className="muted">{intro}</p>
      {services.isPending || workloads.isPending || resources.isPending ? (
        <Loading what="services" />
      ) : services.isError ? (
        <ErrorMessage error={services.error} />
      ) : workloads.isError ? (
        <ErrorMessage error={workloads.error} />
      ) : resources.isError ? (
        <ErrorMessage error={resources.error} />
      ) : services.data.services.length === 0 ? (
        <Empty>No services are registered yet.</Empty>
      ) : (
        <Picker services={services.data.services} workloads={workloads.data.workloads} resources={resources.data.items}>
          {children}
        </Picker>
      )}
    </>
  );
}

/**
 * A traffic wizard page. `children` renders the wizard for the chosen service; give its root a
 * `key` of the service so its form starts again from the stored state when another is picked.
 */
export function ServiceWizardPage(props: { title: string; intro: ReactNode; children: (ctx: ServiceWizardContext) => ReactNode }) {
  return (
    <Suspense fallback={<Loading what="page" />}>
      <Loader {...props} />
    </Suspense>
  );
}
