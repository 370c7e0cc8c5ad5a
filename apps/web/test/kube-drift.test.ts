import assert from 'node:assert/strict';
import { test } from 'node:test';
import { driftRows, reconcilerSummary, type KubernetesStatus } from '../src/lib/kube-drift.ts';

const event = (over: Record<string, unknown>) => ({
  id: '1', at: '2026-11-26T08:00:00.000Z', actor: 'system:kubernetes', actorKind: 'system', action: 'drift-corrected',
  kind: 'VirtualService', namespace: 'shop', name: 'reviews', revision: '7',
  diff: [{ op: 'replace' as const, path: 'spec.http[0].route[0].weight', from: 50, to: 90 }],
  details: { mode: 'correct', editedBy: ['kubectl-edit'] },
  ...over,
});

test('driftRows: corrected and adopted drift, with who edited and the spec change; other audit events left out', () => {
  const rows = driftRows([
    event({}),
    event({ id: '2', action: 'drift-adopted', diff: [{ op: 'replace', path: 'a', from: 1, to: 2 }, { op: 'add', path: 'b', to: 'x' }], details: { editedBy: [3, 'helm'] } }),
    event({ id: '3', action: 'resource.updated' }),
    event({ id: '4', diff: [{ op: 'remove', path: 'spec.gateways', from: ['mesh'] }], details: null }),
    event({ id: '5', diff: null, kind: null }),
  ]);
  assert.deepEqual(rows.map((r) => [r.id, r.outcome, r.editedBy.join(','), r.summary]), [
    ['1', 'corrected', 'kubectl-edit', 'spec.http[0].route[0].weight 50 → 90'],
    ['2', 'adopted', 'helm', '2 changes: a 1 → 2, …'],
    ['4', 'corrected', '', 'spec.gateways ["mesh"] removed'],
    ['5', 'corrected', 'kubectl-edit', 'no spec change recorded'],
  ]);
  assert.equal(rows[3]!.kind, '');
  assert.match(driftRows([event({ diff: [{ op: 'add', path: 'p', to: 'x'.repeat(100) }] })])[0]!.summary, /^p "x+…$/);
});

test('reconcilerSummary: who leads, the mode, the last pass', () => {
  const s: KubernetesStatus = { enabled: true, leader: true, replica: 'r1', mode: 'correct', recentDrift: [], lastPass: { at: 'T', applied: 2, deleted: 0, drifted: 1, adopted: 0, statusWritten: 3, unsettled: 0, errors: ['x'] } };
  assert.equal(reconcilerSummary(s, (t) => `<${t}>`), 'This replica runs the reconciler · edits in the cluster are corrected · last pass <T>: 2 applied, 0 deleted, 1 drift, 1 error');
  assert.equal(reconcilerSummary({ ...s, leader: false, mode: 'adopt', lastPass: null }, String), 'Another replica runs the reconciler · edits in the cluster are adopted into Tern');
});
