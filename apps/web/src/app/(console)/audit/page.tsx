'use client';
import { useQuery } from '@tanstack/react-query';
import { Suspense } from 'react';
import { ErrorMessage, Empty, Loading, when } from '../../../components/ui.tsx';
import { useTRPC } from '../../../lib/trpc.ts';
import { useQueryState } from '../../../lib/use-query-state.ts';

function fmt(v: unknown): string {
  if (v === undefined) return '∅';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}…` : s;
}

function AuditLog() {
  const trpc = useTRPC();
  const [params, setParams] = useQueryState();
  const actor = params.get('actor') ?? '';
  const kind = params.get('kind') ?? '';
  const before = params.get('before') ?? '';
  // Paging by cursor in the URL: every page of the log is a link.
  const q = useQuery(trpc.history.audit.queryOptions({ limit: 50, ...(actor ? { actor } : {}), ...(kind ? { kind } : {}), ...(before ? { before } : {}) }));
  const events = q.data?.events ?? [];
  return (
    <>
      <h1>Audit log</h1>
      <div className="panel row" role="search">
        <label className="inline">Actor <input name="actor" value={actor} onChange={(e) => setParams({ actor: e.target.value, before: undefined })} /></label>
        <label className="inline">Kind <input name="kind" value={kind} placeholder="VirtualService" onChange={(e) => setParams({ kind: e.target.value, before: undefined })} /></label>
      </div>
      <div className="panel">
        {q.isPending ? <Loading what="audit events" /> : q.isError ? <ErrorMessage error={q.error} /> : events.length === 0 ? <Empty>No audit events match.</Empty> : (
          <table data-testid="audit-table">
            <thead><tr><th>When</th><th>Who</th><th>Action</th><th>What</th><th>Changes</th></tr></thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.id}>
                  <td className="small">{when(e.at)}</td>
                  <td>{e.actor}</td>
                  <td>{e.action}</td>
                  <td>{e.kind ? `${e.kind} ${e.namespace ?? ''}/${e.name ?? ''}` : '—'}{e.revision ? <span className="small muted"> @{e.revision}</span> : null}</td>
                  <td className="small mono">
                    {(e.diff ?? []).slice(0, 4).map((d, i) => <div key={i}>{d.op} {d.path}: {d.op !== 'add' ? fmt(d.from) : ''}{d.op === 'replace' ? ' → ' : ''}{d.op !== 'remove' ? fmt(d.to) : ''}</div>)}
                    {(e.diff?.length ?? 0) > 4 && <div className="muted">…and {(e.diff?.length ?? 0) - 4} more</div>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div className="row">
          {before && <button type="button" onClick={() => setParams({ before: undefined }, { push: true })}>Newest events</button>}
          {q.data?.nextCursor && <button type="button" onClick={() => setParams({ before: q.data.nextCursor ?? undefined }, { push: true })}>Older events</button>}
        </div>
      </div>
    </>
  );
}

export default function AuditPage() {
  return <Suspense fallback={<Loading what="page" />}><AuditLog /></Suspense>;
}
