'use client';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { Suspense, useState } from 'react';
import { Convergence } from '../../../../components/convergence.tsx';
import { DiffView } from '../../../../components/diff-view.tsx';
import { ResourceEditor } from '../../../../components/resource-editor.tsx';
import { ErrorMessage, Empty, LevelBadge, Loading, RoleButton, when } from '../../../../components/ui.tsx';
import type { RevisionEntry } from '../../../../lib/api-types.ts';
import { errorInfo } from '../../../../lib/errors.ts';
import { resourceHref } from '../../../../lib/links.ts';
import { cleanResource, toYaml } from '../../../../lib/traffic.ts';
import { useTRPC } from '../../../../lib/trpc.ts';
import { useQueryState } from '../../../../lib/use-query-state.ts';

function revisionYaml(r: RevisionEntry | undefined): string {
  if (!r) return '';
  return toYaml([cleanResource(r.object as Parameters<typeof cleanResource>[0])]);
}

function History({ kind, ns, name }: { kind: string; ns: string; name: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [params, setParams] = useQueryState();
  const history = useQuery(trpc.history.list.queryOptions({ kind, namespace: ns, name, limit: 100 }));
  const [done, setDone] = useState<string | undefined>();
  const rollback = useMutation(
    trpc.history.rollback.mutationOptions({
      onSuccess: (out) => {
        setDone(`Rolled back: now at revision ${out.revision}.`);
        void queryClient.invalidateQueries();
      },
    }),
  );
  if (history.isPending) return <Loading what="history" />;
  if (history.isError) return <ErrorMessage error={history.error} />;
  const revs = history.data.revisions;
  if (revs.length === 0) return <Empty>No revisions recorded.</Empty>;
  // Compare `to` (default: newest) against `from` (default: the one before it).
  const to = revs.find((r) => r.revision === params.get('to')) ?? revs[0]!;
  const toIdx = revs.indexOf(to);
  const from = revs.find((r) => r.revision === params.get('from')) ?? revs[toIdx + 1];
  return (
    <>
      {done && <div className="msg ok" role="status">{done}</div>}
      {rollback.isError && <ErrorMessage error={rollback.error} title="Rollback refused" />}
      <table data-testid="history-table">
        <thead><tr><th>Revision</th><th>Change</th><th>By</th><th>When</th><th>Compare</th><th></th></tr></thead>
        <tbody>
          {revs.map((r, i) => (
            <tr key={r.revision} aria-current={r === to ? 'true' : undefined}>
              <td>{r.revision}{i === 0 && <span className="small muted"> (current)</span>}</td>
              <td>{r.action}</td>
              <td>{r.actor}</td>
              <td className="small">{when(r.createdAt)}</td>
              <td className="row">
                <button type="button" aria-pressed={r === from} onClick={() => setParams({ from: r.revision })} disabled={r === to}>from</button>
                <button type="button" aria-pressed={r === to} onClick={() => setParams({ to: r.revision })} disabled={r === from}>to</button>
              </td>
              <td>
                {i > 0 && r.action !== 'deleted' && (
                  <RoleButton
                    need="editor"
                    id={`rollback-${r.revision}`}
                    disabled={rollback.isPending}
                    onClick={() => {
                      setDone(undefined);
                      rollback.mutate({ kind, namespace: ns, name, toRevision: r.revision, resourceVersion: revs[0]!.action === 'deleted' ? undefined : revs[0]!.revision });
                    }}
                  >
                    Roll back to {r.revision}
                  </RoleButton>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3 style={{ marginTop: 16 }}>
        {from ? `Revision ${from.revision} → ${to.revision}` : `Revision ${to.revision} (first)`}
      </h3>
      <DiffView before={revisionYaml(from)} after={to.action === 'deleted' ? '' : revisionYaml(to)} label="Diff between revisions" />
    </>
  );
}

function ResourceView() {
  const trpc = useTRPC();
  const [params, setParams] = useQueryState();
  const queryClient = useQueryClient();
  const editing = params.get('edit') === '1';
  const [savedAt, setSavedAt] = useState<string | undefined>();
  const kind = params.get('kind') ?? '';
  const ns = params.get('ns') ?? '';
  const name = params.get('name') ?? '';
  const tab = params.get('tab') === 'history' ? 'history' : 'yaml';
  const res = useQuery({ ...trpc.resources.get.queryOptions({ kind, namespace: ns, name }), enabled: Boolean(kind && ns && name) });
  if (!kind || !ns || !name) return <ErrorMessage error={new Error('this page needs ?kind=&ns=&name=')} />;
  const notFound = res.isError && errorInfo(res.error).code === 'NOT_FOUND';
  return (
    <>
      <p className="small"><Link href="/config">← Config</Link></p>
      <h1>{kind} {ns}/{name}</h1>
      <div className="tabs" role="tablist">
        <Link role="tab" href={resourceHref(kind, ns, name, 'yaml')} aria-current={tab === 'yaml' ? 'page' : undefined} aria-selected={tab === 'yaml'}>YAML</Link>
        <Link role="tab" href={resourceHref(kind, ns, name, 'history')} aria-current={tab === 'history' ? 'page' : undefined} aria-selected={tab === 'history'}>History</Link>
      </div>
      {tab === 'yaml' ? (
        res.isPending ? <Loading what="resource" /> : notFound ? <Empty>This resource does not exist (any more). Its <Link href={resourceHref(kind, ns, name, 'history')}>history</Link> can bring it back.</Empty> : res.isError ? <ErrorMessage error={res.error} /> : (
          <div className="panel">
            {savedAt && !editing && (
              <div data-testid="saved">
                <div className="msg ok" role="status">Saved: revision {savedAt}.</div>
                <Convergence revision={savedAt} />
              </div>
            )}
            {editing ? (
              <ResourceEditor
                key={`${kind}/${ns}/${name}`}
                resource={res.data}
                onCancel={() => setParams({ edit: undefined })}
                onSaved={(rev) => {
                  setSavedAt(rev);
                  void queryClient.invalidateQueries();
                  setParams({ edit: undefined });
                }}
              />
            ) : (
              <div className="row" style={{ justifyContent: 'flex-end' }}>
                <RoleButton need="editor" id="edit-yaml" onClick={() => { setSavedAt(undefined); setParams({ edit: '1' }); }}>Edit</RoleButton>
              </div>
            )}
            {!editing && (res.data.status?.validationMessages ?? []).map((m, i) => (
              <div key={i} className={`msg ${m.level === 'error' ? 'error' : 'warning'}`}><LevelBadge level={m.level} /> <code>{m.path}</code>: {m.message}</div>
            ))}
            {!editing && <p className="small muted">resourceVersion {res.data.metadata.resourceVersion} · generation {res.data.metadata.generation} · created {when(res.data.metadata.creationTimestamp)}</p>}
            {!editing && <pre data-testid="resource-yaml">{toYaml([cleanResource(res.data)])}</pre>}
          </div>
        )
      ) : (
        <div className="panel"><History kind={kind} ns={ns} name={name} /></div>
      )}
    </>
  );
}

export default function ResourcePage() {
  return <Suspense fallback={<Loading what="page" />}><ResourceView /></Suspense>;
}
