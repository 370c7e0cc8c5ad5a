import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredResource } from '@tern/shared';
import { desiredCustomResource, planReconcile, sameJson, type CustomResource } from '../src/kube/policy-crs.ts';

// The reconciler's plan, pure: what to apply, delete, correct or adopt.

const stored = (name: string, rv: string, spec: Record<string, unknown>, kind = 'VirtualService'): StoredResource => ({
  apiVersion: 'networking.istio.io/v1', kind,
  metadata: { name, namespace: 'shop', uid: `u-${name}`, resourceVersion: rv, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec,
});
const inCluster = (s: StoredResource, spec = s.spec, managed = true, writtenFrom = s.metadata.resourceVersion): CustomResource => {
  const cr = desiredCustomResource(s)!;
  return { ...cr, metadata: { ...cr.metadata, labels: managed ? cr.metadata.labels! : {}, annotations: { 'tern.dev/resource-version': writtenFrom } }, spec };
};

test('the custom resource of a stored object: Tern group, managed-by label, the store revision it came from', () => {
  const cr = desiredCustomResource(stored('reviews', '7', { hosts: ['reviews'] }))!;
  assert.equal(cr.apiVersion, 'networking.tern.dev/v1');
  assert.equal(cr.metadata.labels!['app.kubernetes.io/managed-by'], 'tern');
  assert.equal(cr.metadata.annotations!['tern.dev/resource-version'], '7');
  assert.equal(desiredCustomResource(stored('pa', '1', {}, 'PeerAuthentication'))!.apiVersion, 'security.tern.dev/v1');
  assert.equal(desiredCustomResource(stored('x', '1', {}, 'Gateway')), undefined, 'no CRD: not written');
});

test('plan: missing applied, equal skipped, changed in Tern re-applied, edited in the cluster corrected or adopted, gone deleted, unmanaged left', () => {
  const a = stored('a', '3', { hosts: ['a'] });
  const b = stored('b', '4', { hosts: ['b'] });
  const c = stored('c', '9', { hosts: ['c'], http: [{ route: [] }] });
  const d = stored('d', '5', { hosts: ['d'] });
  const cluster = [
    inCluster(b), // equal
    inCluster(c, { hosts: ['c'] }, true, '8'), // Tern changed it since (revision 8 -> 9)
    inCluster(d, { hosts: ['d', 'evil'] }), // edited in the cluster at the same revision
    inCluster(stored('gone', '2', {})), // Tern no longer has it
    inCluster(stored('handmade', '1', {}), {}, false), // not Tern's
  ];
  const plan = planReconcile([a, b, c, d], cluster, 'correct');
  assert.deepEqual(plan.map((p) => (p.kind === 'delete' ? `delete ${p.name}` : `${p.kind} ${p.cr.metadata.name}${p.kind === 'apply' ? ` ${p.reason}` : ''}`)), ['apply a missing', 'apply c changed', 'apply d drifted', 'delete gone']);
  const adopt = planReconcile([a, b, c, d], cluster, 'adopt');
  assert.deepEqual(adopt.filter((p) => p.kind === 'adopt').map((p) => (p as { cr: CustomResource }).cr.spec), [{ hosts: ['d', 'evil'] }]);
});

test('sameJson ignores key order and undefined members, not array order', () => {
  assert.ok(sameJson({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined }));
  assert.ok(!sameJson({ a: [1, 2] }, { a: [2, 1] }));
  assert.ok(!sameJson({ a: 1 }, { a: '1' }));
});

test('plan: a drift carries the edited object (for the audit diff); an adoption the stored one; same spec from an older revision is rewritten', () => {
  const d = stored('d', '5', { hosts: ['d'] });
  const edited = inCluster(d, { hosts: ['d', 'evil'] });
  const [fix] = planReconcile([d], [edited], 'correct');
  assert.equal(fix!.kind, 'apply');
  assert.deepEqual((fix as { current?: CustomResource }).current!.spec, { hosts: ['d', 'evil'] });
  const [adopt] = planReconcile([d], [edited], 'adopt');
  assert.equal(adopt!.kind, 'adopt');
  assert.deepEqual((adopt as { stored: { spec: unknown } }).stored.spec, { hosts: ['d'] });
  // After an adoption the store's revision moved while the spec is the cluster's: rewrite the
  // annotation (a 'changed' apply), or the next edit would be taken for a change made in Tern.
  const adopted = stored('d', '6', { hosts: ['d', 'evil'] });
  const plan = planReconcile([adopted], [inCluster(adopted, adopted.spec, true, '5')], 'adopt');
  assert.deepEqual(plan.map((p) => `${p.kind} ${p.kind === 'apply' ? p.reason : ''}`), ['apply changed']);
  assert.deepEqual(planReconcile([adopted], [inCluster(adopted)], 'adopt'), [], 'written from the current revision: nothing');
});
