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
// stored resources, and the service picker (ns/svc in the URL for the VirtualService wizards; the
// DestinationRule wizards keep their own scope). The wizard itself gets the service.

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

/** What the traffic wizards read: the registry and the stored resources. */
export interface MeshData {
  services: ServiceRecord[];
  workloads: WorkloadRecord[];
  resources: StoredResource[];
}

/** Loads the registry and the stored resources; `view` (loading, error, nothing registered) until there is something to pick from. */
export function useMeshData(): { view: ReactNode } | MeshData {
  const trpc = useTRPC();
  const services = useQuery(trpc.registry.services.queryOptions({}));
  const workloads = useQuery(trpc.registry.workloads.queryOptions({}));
  const resources = useQuery(trpc.resources.list.queryOptions({}));
  if (services.isPending || workloads.isPending || resources.isPending) return { view: <Loading what="services" /> };
  if (services.isError) return { view: <ErrorMessage error={services.error} /> };
  if (workloads.isError) return { view: <ErrorMessage error={workloads.error} /> };
  if (resources.isError) return { view: <ErrorMessage error={resources.error} /> };
  if (services.data.services.length === 0) return { view: <Empty>No services are registered yet.</Empty> };
  return { services: services.data.services, workloads: workloads.data.workloads, resources: resources.data.items };
}

/** The service select; `note` adds a word on each service to its option ("no DestinationRule yet"). */
export function ServicePicker({ services, ns, svc, onPick, note }: { services: ServiceRecord[]; ns: string; svc: string; onPick: (ns: string, svc: string) => void; note?: (s: ServiceRecord) => string }) {
  const service = services.find((s) => s.namespace === ns && s.name === svc);
  return (
    <div className="panel">
      <label>
        Service
        <select
          name="service"
          value={service ? `${ns}/${svc}` : ''}
          data-testid="service-select"
          onChange={(e) => {
            const [n = '', s = ''] = e.target.value.split('/');
            onPick(n, s);
          }}
        >
          <option value="">Choose a service…</option>
          {services.map((s) => (
            <option key={`${s.namespace}/${s.name}`} value={`${s.namespace}/${s.name}`}>
              {s.namespace}/{s.name}
              {note ? ` (${note(s)})` : ''}
            </option>
          ))}
        </select>
      </label>
      {ns && svc && !service && <div className="msg warning">There is no service {ns}/{svc} in the registry.</div>}
    </div>
  );
}

function Picker({ services, workloads, resources, children }: MeshData & { children: (ctx: ServiceWizardContext) => ReactNode }) {
  const [params, setParams] = useQueryState();
  const ns = params.get('ns') ?? '';
  const svcName = params.get('svc') ?? '';
  const service = services.find((s) => s.namespace === ns && s.name === svcName);
  return (
    <>
      <ServicePicker services={services} ns={ns} svc={svcName} onPick={(n, s) => setParams({ ns: n, svc: s })} />
      {service && children({ service, versions: versionsOf(service, workloads).sort(compareVersions), resources, workloads })}
    </>
  );
}

function Loader({ title, intro, children }: { title: string; intro: ReactNode; children: (data: MeshData) => ReactNode }) {
  const data = useMeshData();
  return (
    <>
      <h1>{title}</h1>
      <TrafficTabs />
      <p className="muted">{intro}</p>
      {'view' in data ? data.view : children(data)}
    </>
  );
}

/** A traffic wizard page: title, the wizards' tabs, the intro, then `children` once the registry and resources are loaded. */
export function TrafficWizardPage(props: { title: string; intro: ReactNode; children: (data: MeshData) => ReactNode }) {
  return (
    <Suspense fallback={<Loading what="page" />}>
      <Loader {...props} />
    </Suspense>
  );
}

/**
 * A traffic wizard page. `children` renders the wizard for the chosen service; give its root a
 * `key` of the service so its form starts again from the stored state when another is picked.
 */
export function ServiceWizardPage({ children, ...props }: { title: string; intro: ReactNode; children: (ctx: ServiceWizardContext) => ReactNode }) {
  return <TrafficWizardPage {...props}>{(data) => <Picker {...data}>{children}</Picker>}</TrafficWizardPage>;
}
