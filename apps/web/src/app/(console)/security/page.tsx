'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { Suspense } from 'react';
import { AuthzTab } from '../../../components/security-authz.tsx';
import { CertificatesTab } from '../../../components/security-certs.tsx';
import { MtlsTab } from '../../../components/security-mtls.tsx';
import { ObservedTab } from '../../../components/security-observed.tsx';
import { ErrorMessage, Loading } from '../../../components/ui.tsx';
import { namespacesOf } from '../../../lib/mesh.ts';
import { useTRPC } from '../../../lib/trpc.ts';
import { useQueryState } from '../../../lib/use-query-state.ts';

// The Security page: mTLS modes, authorization policies, certificates, observed mTLS; the tab is
// in the URL (`tab=`), and so is what each tab edits.

const TABS = [
  { id: 'mtls', label: 'mTLS modes' },
  { id: 'authz', label: 'Authorization policies' },
  { id: 'certs', label: 'Certificates' },
  { id: 'observed', label: 'Observed mTLS' },
] as const;
type TabId = (typeof TABS)[number]['id'];

function Security() {
  const trpc = useTRPC();
  const [params] = useQueryState();
  const tab: TabId = TABS.some((t) => t.id === params.get('tab')) ? (params.get('tab') as TabId) : 'mtls';
  const resources = useQuery(trpc.resources.list.queryOptions({}));
  const workloads = useQuery(trpc.registry.workloads.queryOptions({}));
  const services = useQuery(trpc.registry.services.queryOptions({}));
  const needsMesh = tab !== 'certs';

  let body;
  if (!needsMesh) body = <CertificatesTab />;
  else if (resources.isPending || workloads.isPending || services.isPending) body = <Loading what="policies" />;
  else if (resources.isError) body = <ErrorMessage error={resources.error} />;
  else if (workloads.isError) body = <ErrorMessage error={workloads.error} />;
  else if (services.isError) body = <ErrorMessage error={services.error} />;
  else {
    const items = resources.data.items;
    const ws = workloads.data.workloads;
    const namespaces = namespacesOf({ resources: items, workloads: ws, services: services.data.services });
    body =
      tab === 'mtls' ? <MtlsTab resources={items} workloads={ws} extraNamespaces={services.data.services.map((s) => s.namespace)} />
      : tab === 'authz' ? <AuthzTab resources={items} namespaces={namespaces} />
      : <ObservedTab resources={items} workloads={ws} />;
  }

  return (
    <>
      <h1>Security</h1>
      <nav className="tabs" aria-label="Security">
        {TABS.map((t) => (
          <Link key={t.id} href={`/security?tab=${t.id}`} aria-current={tab === t.id ? 'page' : undefined}>{t.label}</Link>
        ))}
      </nav>
      {body}
    </>
  );
}

export default function Page() {
  return (
    <Suspense fallback={<Loading what="page" />}>
      <Security />
    </Suspense>
  );
}
