import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Diagnostic, StoredResource } from '@tern/shared';
import { acceptedCondition, nextConditions, proxiesConvergedCondition, proxyFingerprint, sameConditions, settled, type ProxyConvergence } from '../src/kube/conditions.ts';

// The status conditions, pure: Accepted with the analyzer's warnings, ProxiesConverged from the
// shared proxy status, and Kubernetes' lastTransitionTime rule.

const stored = (rv: string, messages: Diagnostic[] = []): StoredResource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop', uid: 'u', resourceVersion: rv, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: {},
  status: { observedGeneration: 1, ...(messages.length ? { validationMessages: messages } : {}) },
});
const diag = (level: Diagnostic['level'], code: string, message: string): Diagnostic => ({ code, name: code, level, kind: 'VirtualService', namespace: 'shop', resourceName: 'reviews', path: 'spec.http[0].route[0].destination.host', message });
const proxy = (id: string, convergedRevision: string | null, status = 'SYNCED', nack?: string): ProxyConvergence => ({ id, convergedRevision, status, lastNack: nack ? { type: 'CDS', version: '7', message: nack } : null });

test('Accepted: True; the warnings (not infos) as the message, with the reason saying so; observedGeneration is the given one', () => {
  const plain = acceptedCondition(stored('12'), 3);
  assert.deepEqual(plain, { type: 'Accepted', status: 'True', reason: 'Stored', message: 'stored in Tern at resourceVersion 12', observedGeneration: 3 });
  const warned = acceptedCondition(stored('12', [diag('info', 'I1', 'just so you know'), diag('warning', 'IST0101', 'host "nope" is not in the registry')]), 3);
  assert.equal(warned.status, 'True');
  assert.equal(warned.reason, 'StoredWithWarnings');
  assert.match(warned.message, /IST0101 at spec\.http\[0\]\.route\[0\]\.destination\.host: host "nope" is not in the registry/);
  assert.doesNotMatch(warned.message, /just so you know/);
  const many = acceptedCondition(stored('1', Array.from({ length: 8 }, (_, i) => diag('warning', `W${i}`, 'x'.repeat(300)))));
  assert.ok(many.message.length <= 1024, 'clipped');
  assert.equal('observedGeneration' in many, false, 'no generation given: none written');
});

test('ProxiesConverged: no proxies, all at or after the revision, some pending, one rejecting', () => {
  assert.deepEqual(proxiesConvergedCondition('10', []), { type: 'ProxiesConverged', status: 'True', reason: 'NoProxies', message: 'no proxies are connected' });
  const ok = proxiesConvergedCondition('10', [proxy('a', '10'), proxy('b', '15', 'NACKED', 'later config rejected')]);
  assert.equal(ok.status, 'True', 'b ACKed revision 15 >= 10 before NACKing a later one: it keeps this object');
  assert.equal(ok.reason, 'Converged');
  const pending = proxiesConvergedCondition('10', [proxy('a', '10'), proxy('b', '9', 'STALE'), proxy('c', null, 'STALE')], 2);
  assert.deepEqual({ status: pending.status, reason: pending.reason, g: pending.observedGeneration }, { status: 'False', reason: 'Pending', g: 2 });
  assert.match(pending.message, /^1 of 3 proxies converged/);
  const rejected = proxiesConvergedCondition('10', [proxy('z-bad', '4', 'NACKED', 'unknown field "foo"'), proxy('a', '10'), proxy('m-bad', null, 'NACKED', 'other')]);
  assert.equal(rejected.status, 'False');
  assert.equal(rejected.reason, 'Rejected');
  assert.match(rejected.message, /^proxy m-bad rejected CDS version 7: other \(and 1 more proxies rejected\); 1 of 3 proxies converged$/);
  // Revisions compare as numbers, not strings.
  assert.equal(proxiesConvergedCondition('9', [proxy('a', '10')]).status, 'True');
  assert.equal(proxiesConvergedCondition('100', [proxy('a', '99')]).status, 'False');
  assert.equal(proxiesConvergedCondition('1', [proxy('a', 'not-a-revision')]).reason, 'Pending', 'an unreadable revision is not converged, and does not throw');
});

test('lastTransitionTime moves only when the status does; other types are kept; sameConditions decides whether to write', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T00:01:00Z');
  const first = nextConditions(undefined, [acceptedCondition(stored('1')), proxiesConvergedCondition('1', [proxy('a', null)])], t0);
  assert.deepEqual(first.map((c) => [c.type, c.status, c.lastTransitionTime]), [['Accepted', 'True', t0.toISOString()], ['ProxiesConverged', 'False', t0.toISOString()]]);
  assert.equal(settled(first), false);

  // Same statuses, another message (the revision moved): times kept, but there is something to write.
  const second = nextConditions(first, [acceptedCondition(stored('2')), proxiesConvergedCondition('2', [proxy('a', '1')])], t1);
  assert.deepEqual(second.map((c) => c.lastTransitionTime), [t0.toISOString(), t0.toISOString()]);
  assert.equal(sameConditions(first, second), false);

  // Converged: its time moves, Accepted's does not.
  const third = nextConditions(second, [acceptedCondition(stored('2')), proxiesConvergedCondition('2', [proxy('a', '2')])], t1);
  assert.deepEqual(third.map((c) => c.lastTransitionTime), [t0.toISOString(), t1.toISOString()]);
  assert.equal(settled(third), true);

  // Nothing changed: nothing to write, whatever the order the API server hands them back in.
  const again = nextConditions([...third].reverse(), [acceptedCondition(stored('2')), proxiesConvergedCondition('2', [proxy('a', '2')])], new Date());
  assert.equal(sameConditions([...third].reverse(), again), true);
  // A generation change is a change.
  const gen = nextConditions(third, [acceptedCondition(stored('2'), 5), proxiesConvergedCondition('2', [proxy('a', '2')], 5)], t1);
  assert.equal(sameConditions(third, gen), false);

  // Someone else's condition survives; garbage in the current status is ignored.
  const withOther = nextConditions([{ type: 'Ready', status: 'True', reason: 'X', message: '', lastTransitionTime: 'then' }, 'junk', null], [acceptedCondition(stored('1'))], t0);
  assert.deepEqual(withOther.map((c) => c.type), ['Accepted', 'Ready']);
  assert.equal(sameConditions(undefined, []), false, 'no status at all yet: write');
  assert.equal(sameConditions([{ type: 'Accepted' }, 'junk'], [{ ...first[0]! }]), false);
});

test('proxyFingerprint: order-independent; changes with what the conditions read (a proxy, its revision, status, NACK)', () => {
  const a = proxy('a', '3');
  const b = proxy('b', null, 'STALE');
  const base = proxyFingerprint([a, b]);
  assert.equal(proxyFingerprint([b, a]), base);
  for (const other of [[a], [a, b, proxy('c', '1')], [proxy('a', '4'), b], [a, proxy('b', null, 'NACKED', 'bad')], [a, { ...b, lastNack: { type: 'CDS', version: '8', message: 'bad' } }]]) {
    assert.notEqual(proxyFingerprint(other), base, JSON.stringify(other));
  }
  assert.equal(proxyFingerprint([]), '');
});
