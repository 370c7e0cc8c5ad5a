import type { AuditEvent, RouterOutputs } from './api-types.ts';

// What the Config page's Kubernetes panel shows (pure): the reconciler's state in one line, and
// the drift it recently corrected or adopted, from GET /api/v1/kubernetes/status.

export type KubernetesStatus = RouterOutputs['kubernetes']['status'];

export interface DriftRow {
  id: string;
  at: string;
  kind: string;
  namespace: string;
  name: string;
  outcome: 'corrected' | 'adopted';
  /** Field managers that edited the object in the cluster (kubectl, another controller…). */
  editedBy: string[];
  /** The spec change in a few words: "2 fields: spec.http[0].route[0].weight 50 → 90, …". */
  summary: string;
}

const short = (v: unknown) => {
  if (v === undefined) return '∅';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}…` : s;
};

export function driftRows(events: readonly AuditEvent[]): DriftRow[] {
  return events
    .filter((e) => e.action === 'drift-corrected' || e.action === 'drift-adopted')
    .map((e) => {
      const diff = e.diff ?? [];
      const first = diff[0];
      const change = first ? `${first.path} ${first.op === 'add' ? '' : short(first.from)}${first.op === 'replace' ? ' → ' : ' '}${first.op === 'remove' ? 'removed' : short(first.to)}`.replace(/\s+/g, ' ').trim() : 'no spec change recorded';
      const editedBy = Array.isArray(e.details?.editedBy) ? (e.details.editedBy as unknown[]).filter((x): x is string => typeof x === 'string') : [];
      return {
        id: e.id,
        at: e.at,
        kind: e.kind ?? '',
        namespace: e.namespace ?? '',
        name: e.name ?? '',
        outcome: e.action === 'drift-adopted' ? ('adopted' as const) : ('corrected' as const),
        editedBy,
        summary: diff.length > 1 ? `${diff.length} changes: ${change}, …` : change,
      };
    });
}

/** "This replica runs the reconciler · edits in the cluster are corrected · last pass …: 2 applied, 0 deleted, 1 drift, 0 errors". */
export function reconcilerSummary(s: KubernetesStatus, formatTime: (iso: string) => string): string {
  const who = s.leader ? 'This replica runs the reconciler' : 'Another replica runs the reconciler';
  const mode = s.mode === 'adopt' ? 'edits in the cluster are adopted into Tern' : 'edits in the cluster are corrected';
  const p = s.lastPass;
  if (!p) return `${who} · ${mode}`;
  const parts = [`${p.applied} applied`, `${p.deleted} deleted`, `${p.drifted + p.adopted} drift`, `${p.errors.length} error${p.errors.length === 1 ? '' : 's'}`];
  return `${who} · ${mode} · last pass ${formatTime(p.at)}: ${parts.join(', ')}`;
}
