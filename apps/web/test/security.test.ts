import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StoredResource } from '../src/lib/api-types.ts';
import { certificateUrgency, formatShare, formatTimeLeft, meshMtls, namespaceMtlsOf, observedMtls, portMtls, workloadMtls } from '../src/lib/security.ts';
import { peerAuthFormFrom, planPeerAuthentication, type PeerAuthForm } from '../src/lib/wizards/peer-authentication.ts';

// Istio's PeerAuthentication precedence (workload > namespace > mesh > PERMISSIVE, UNSET inherits,
// port-level wins for its port), the PeerAuthentication form, certificate urgency, observed mTLS.

let age = 0;
function pa(ns: string, name: string, spec: Record<string, unknown>, created?: string): StoredResource {
  age++;
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace: ns, uid: name, resourceVersion: String(age), generation: 1, creationTimestamp: created ?? `2026-01-01T00:00:${String(age).padStart(2, '0')}Z` },
    spec,
  };
}
const mode = (m: string) => ({ mtls: { mode: m } });
const sel = (labels: Record<string, string>, m?: string, ports?: Record<string, string>) => ({
  selector: { matchLabels: labels },
  ...(m ? { mtls: { mode: m } } : {}),
  ...(ports ? { portLevelMtls: Object.fromEntries(Object.entries(ports).map(([p, x]) => [p, { mode: x }])) } : {}),
});
const reviews = { app: 'reviews', version: 'v1' };

describe('mTLS precedence', () => {
  test('no policy anywhere: PERMISSIVE, Istio\'s default', () => {
    assert.deepEqual(meshMtls([]), { mode: 'PERMISSIVE', source: 'default' });
    assert.deepEqual(namespaceMtlsOf([], 'default'), { mode: 'PERMISSIVE', source: 'default' });
    assert.deepEqual(workloadMtls([], 'default', reviews), { mode: 'PERMISSIVE', source: 'default', ports: [] });
  });

  // mesh × namespace × workload, each unset / UNSET / a mode: the most specific concrete mode wins.
  const cases: [string | null, string | null, string | null, string, string][] = [
    ['STRICT', null, null, 'STRICT', 'mesh'],
    ['STRICT', 'PERMISSIVE', null, 'PERMISSIVE', 'namespace'],
    ['STRICT', 'UNSET', null, 'STRICT', 'mesh'],
    ['DISABLE', 'UNSET', 'UNSET', 'DISABLE', 'mesh'],
    ['PERMISSIVE', 'STRICT', 'DISABLE', 'DISABLE', 'workload'],
    ['PERMISSIVE', 'STRICT', 'UNSET', 'STRICT', 'namespace'],
    [null, 'DISABLE', 'STRICT', 'STRICT', 'workload'],
    [null, null, 'UNSET', 'PERMISSIVE', 'default'],
    ['UNSET', null, null, 'PERMISSIVE', 'default'],
    [null, 'STRICT', null, 'STRICT', 'namespace'],
  ];
  for (const [mesh, ns, wl, want, source] of cases) {
    test(`mesh ${mesh ?? '-'}, namespace ${ns ?? '-'}, workload ${wl ?? '-'} → ${want} from ${source}`, () => {
      const rs: StoredResource[] = [];
      if (mesh) rs.push(pa('istio-system', 'default', mode(mesh)));
      if (ns) rs.push(pa('default', 'default', mode(ns)));
      if (wl) rs.push(pa('default', 'reviews', sel({ app: 'reviews' }, wl)));
      const got = workloadMtls(rs, 'default', reviews);
      assert.equal(got.mode, want);
      assert.equal(got.source, source);
      if (wl) assert.equal(got.workloadPolicy, 'default/reviews');
    });
  }

  test('a workload policy selects only workloads carrying all its labels, in its own namespace', () => {
    const rs = [pa('default', 'v2-only', sel({ app: 'reviews', version: 'v2' }, 'DISABLE')), pa('other', 'reviews', sel({ app: 'reviews' }, 'DISABLE'))];
    assert.equal(workloadMtls(rs, 'default', reviews).mode, 'PERMISSIVE');
    assert.equal(workloadMtls(rs, 'default', { app: 'reviews', version: 'v2' }).mode, 'DISABLE');
    // A selector policy in the root namespace is no mesh-wide default for other namespaces.
    assert.equal(workloadMtls([pa('istio-system', 'sel', sel({ app: 'reviews' }, 'STRICT'))], 'default', reviews).mode, 'PERMISSIVE');
  });

  test('the oldest policy wins when two apply at one level', () => {
    const rs = [pa('default', 'b', mode('DISABLE'), '2026-02-01T00:00:00Z'), pa('default', 'a', mode('STRICT'), '2026-01-01T00:00:00Z')];
    assert.deepEqual(namespaceMtlsOf(rs, 'default'), { mode: 'STRICT', source: 'namespace', policy: 'default/a' });
  });

  test('port-level modes override for their port; UNSET ports inherit the workload\'s mode', () => {
    const rs = [pa('istio-system', 'default', mode('STRICT')), pa('default', 'reviews', sel({ app: 'reviews' }, undefined, { '9080': 'PERMISSIVE', '9443': 'UNSET', '8080': 'DISABLE' }))];
    const w = workloadMtls(rs, 'default', reviews);
    assert.equal(w.mode, 'STRICT');
    assert.equal(w.source, 'mesh');
    assert.deepEqual(w.ports, [
      { port: 8080, mode: 'DISABLE', source: 'port' },
      { port: 9080, mode: 'PERMISSIVE', source: 'port' },
      { port: 9443, mode: 'STRICT', source: 'mesh' },
    ]);
    assert.equal(portMtls(rs, 'default', reviews, 9080), 'PERMISSIVE');
    assert.equal(portMtls(rs, 'default', reviews, 9443), 'STRICT');
    assert.equal(portMtls(rs, 'default', reviews, 1234), 'STRICT');
  });

  test('the root namespace\'s own policy is the mesh\'s', () => {
    assert.deepEqual(namespaceMtlsOf([pa('istio-system', 'default', mode('STRICT'))], 'istio-system'), { mode: 'STRICT', source: 'mesh', policy: 'istio-system/default' });
  });
});

describe('PeerAuthentication form', () => {
  const nsForm = (m: PeerAuthForm['mode']): PeerAuthForm => ({ level: 'namespace', namespace: 'default', name: 'default', mode: m, selector: '', ports: [] });

  test('a namespace without a policy gets one named default; a stored one is edited in place, keeping labels', () => {
    const fresh = planPeerAuthentication(nsForm('STRICT'), []);
    assert.deepEqual(fresh.errors, []);
    assert.deepEqual(fresh.documents, [{ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'default' }, spec: { mtls: { mode: 'STRICT' } } }]);
    const stored = pa('default', 'ns-wide', mode('PERMISSIVE'));
    stored.metadata.labels = { team: 'a' };
    const form = peerAuthFormFrom('namespace', 'default', stored);
    assert.equal(form.mode, 'PERMISSIVE');
    const plan = planPeerAuthentication({ ...form, mode: 'STRICT' }, [stored]);
    const doc = plan.documents[0] as { metadata: Record<string, unknown>; spec: unknown };
    assert.equal(doc.metadata.name, 'ns-wide');
    assert.equal(doc.metadata.resourceVersion, stored.metadata.resourceVersion);
    assert.deepEqual(doc.metadata.labels, { team: 'a' });
    assert.deepEqual(doc.spec, { mtls: { mode: 'STRICT' } });
    assert.deepEqual(plan.existing, [stored]);
  });

  test('the mesh level writes to istio-system', () => {
    const plan = planPeerAuthentication({ ...nsForm('STRICT'), level: 'mesh', namespace: 'anything' }, []);
    assert.equal((plan.documents[0] as { metadata: { namespace: string } }).metadata.namespace, 'istio-system');
  });

  test('a workload policy: selector and ports round-trip', () => {
    const form: PeerAuthForm = { level: 'workload', namespace: 'default', name: 'reviews-mtls', mode: 'UNSET', selector: 'app=reviews, version=v1', ports: [{ port: '9080', mode: 'PERMISSIVE' }] };
    const plan = planPeerAuthentication(form, []);
    assert.deepEqual(plan.errors, []);
    const doc = plan.documents[0] as StoredResource;
    assert.deepEqual(doc.spec, { mtls: { mode: 'UNSET' }, selector: { matchLabels: { app: 'reviews', version: 'v1' } }, portLevelMtls: { '9080': { mode: 'PERMISSIVE' } } });
    const back = peerAuthFormFrom('workload', 'default', { ...doc, metadata: { ...doc.metadata, uid: 'x', resourceVersion: '1', generation: 1, creationTimestamp: '' } });
    assert.deepEqual(back, form);
  });

  test('field errors: missing selector, bad labels, bad and duplicate ports, bad name', () => {
    const base: PeerAuthForm = { level: 'workload', namespace: 'default', name: 'Bad_Name', mode: 'STRICT', selector: '', ports: [] };
    const paths = (f: PeerAuthForm) => planPeerAuthentication(f, []).errors.map((e) => `${e.path}: ${e.message}`);
    const e1 = paths(base);
    assert.ok(e1.some((e) => /^name: Name must be lowercase/.test(e)), e1.join('\n'));
    assert.ok(e1.some((e) => /^selector: Workload labels is required/.test(e)), e1.join('\n'));
    assert.ok(paths({ ...base, name: 'ok', selector: 'app' }).some((e) => /selector: .*key=value/.test(e)));
    const e2 = paths({ ...base, name: 'ok', selector: 'app=reviews', ports: [{ port: '70000', mode: 'STRICT' }, { port: '80', mode: 'STRICT' }, { port: '80', mode: 'DISABLE' }] });
    assert.ok(e2.some((e) => /^ports\[0\]\.port: Port 1 must be at most 65535/.test(e)), e2.join('\n'));
    assert.ok(e2.some((e) => /^ports\[2\]\.port: Port 3: 80 is listed twice/.test(e)), e2.join('\n'));
  });
});

describe('certificates and observed mTLS', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  test('urgency: expired, under 1 h, under a quarter of the lifetime, fine', () => {
    assert.equal(certificateUrgency('2026-11-26T00:00:00Z', '2026-11-26T11:00:00Z', now).urgency, 'expired');
    assert.equal(certificateUrgency('2026-11-25T12:30:00Z', '2026-11-26T12:30:00Z', now).urgency, 'critical');
    // 24 h lifetime, 5 h left: under 6 h (25 %).
    assert.equal(certificateUrgency('2026-11-25T17:00:00Z', '2026-11-26T17:00:00Z', now).urgency, 'warning');
    assert.equal(certificateUrgency('2026-11-26T06:00:00Z', '2026-11-27T06:00:00Z', now).urgency, 'ok');
    // A 2-hour certificate with 1h10m left is fine (more than a quarter, more than an hour).
    assert.equal(certificateUrgency('2026-11-26T11:10:00Z', '2026-11-26T13:10:00Z', now).urgency, 'ok');
  });
  test('time left reads as people say it', () => {
    assert.equal(formatTimeLeft(2 * 86_400_000 + 3 * 3_600_000), '2d 3h');
    assert.equal(formatTimeLeft(45 * 60_000), '45m');
    assert.equal(formatTimeLeft(-5 * 60_000), 'expired 5m ago');
  });
  test('edges: lowest share first, idle edges left out, 0 % into STRICT flagged', () => {
    const out = observedMtls(
      [
        { id: 'a', source: 'x', target: 'strict', requests: 10, mtlsShare: 1 },
        { id: 'b', source: 'x', target: 'strict', requests: 5, mtlsShare: 0 },
        { id: 'c', source: 'x', target: 'loose', requests: 50, mtlsShare: 0 },
        { id: 'd', source: 'x', target: 'loose', requests: 0, mtlsShare: 0 },
        { id: 'e', source: 'x', target: 'svc', requests: 7, mtlsShare: 0.5 },
      ],
      (n) => (n === 'strict' ? 'STRICT' : n === 'loose' ? 'PERMISSIVE' : undefined),
    );
    assert.deepEqual(out.map((e) => [e.id, e.flagged]), [['c', false], ['b', true], ['e', false], ['a', false]]);
    assert.equal(formatShare(0), '0%');
    assert.equal(formatShare(1), '100%');
    assert.equal(formatShare(0.5), '50%');
    assert.equal(formatShare(0.99999), '99.99%');
    assert.equal(formatShare(0.00001), '0.01%');
  });
});
