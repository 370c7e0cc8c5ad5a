'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { Suspense } from 'react';
import { useRouter } from 'next/navigation';
import { ErrorMessage, Empty, LevelBadge, Loading, RoleButton } from '../../../components/ui.tsx';
import { KubernetesDriftPanel } from '../../../components/kubernetes-drift.tsx';
import { resourceHref } from '../../../lib/links.ts';
import { useTRPC } from '../../../lib/trpc.ts';
import { useQueryState } from '../../../lib/use-query-state.ts';

const KINDS = ['VirtualService', 'DestinationRule', 'ServiceEntry', 'PeerAuthentication', 'AuthorizationPolicy'];

function ConfigList() {
  const trpc = useTRPC();
  const [params, setParams] = useQueryState();
  const q = params.get('q') ?? '';
  const kind = params.get('kind') ?? '';
  const list = useQuery(trpc.resources.list.queryOptions({}));
  const needle = q.trim().toLowerCase();
  const items = (list.data?.items ?? []).filter(
    (r) =>
      (!kind || r.kind === kind) &&
      (!needle || `${r.kind} ${r.metadata.namespace}/${r.metadata.name} ${JSON.stringify(r.spec)}`.toLowerCase().includes(needle)),
  );
  return (
    <>
      <div className="spread"><h1>Config</h1><NewResourceLink /></div>
      <div className="panel">
        <div className="row" role="search">
          <label className="inline">
            Search
            <input type="search" name="q" value={q} placeholder="name, namespace, host…" onChange={(e) => setParams({ q: e.target.value })} />
          </label>
          <label className="inline">
            Kind
            <select name="kind" value={kind} onChange={(e) => setParams({ kind: e.target.value })}>
              <option value="">All kinds</option>
              {KINDS.map((k) => <option key={k} value={k}>{k}</option>)}
            </select>
          </label>
        </div>
      </div>
      <div className="panel">
        {list.isPending ? <Loading what="resources" /> : list.isError ? <ErrorMessage error={list.error} /> : items.length === 0 ? (
          <Empty>{list.data.items.length === 0 ? 'No policy resources yet. Apply some with `tern apply -f` or the traffic wizard.' : 'Nothing matches this search.'}</Empty>
        ) : (
          <table data-testid="resource-table">
            <thead><tr><th>Kind</th><th>Namespace</th><th>Name</th><th>Version</th><th>Messages</th></tr></thead>
            <tbody>
              {items.map((r) => (
                <tr key={`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`}>
                  <td>{r.kind}</td>
                  <td>{r.metadata.namespace}</td>
                  <td><Link href={resourceHref(r.kind, r.metadata.namespace, r.metadata.name)}>{r.metadata.name}</Link></td>
                  <td>{r.metadata.resourceVersion}</td>
                  <td>{(r.status?.validationMessages ?? []).map((m, i) => <span key={i} title={m.message}><LevelBadge level={m.level} /> </span>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {list.data && <p className="small muted">{items.length} of {list.data.items.length} resources · revision {list.data.revision}</p>}
      </div>
      <KubernetesDriftPanel />
    </>
  );
}

/** Editors get a link to /config/new; others see the control disabled with the reason. */
function NewResourceLink() {
  const router = useRouter();
  return <RoleButton need="editor" id="new-resource" onClick={() => router.push('/config/new')}>New resource</RoleButton>;
}

export default function ConfigPage() {
  return <Suspense fallback={<Loading what="page" />}><ConfigList /></Suspense>;
}
