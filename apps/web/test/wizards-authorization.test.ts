import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StoredResource } from '../src/lib/api-types.ts';
import { authzFormFrom, compilerNotes, emptyAuthzForm, emptyOperation, emptyRule, emptySource, planAuthorization, summarizePolicy, type AuthzForm } from '../src/lib/wizards/authorization.ts';
import { checkIpBlocks, checkLabels, isIpOrCidr } from '../src/lib/wizards/fields.ts';

// The AuthorizationPolicy editor's planner: form -> policy, stored policy -> form -> same policy
// (fields the form does not show kept), and the field checks.

function stored(name: string, spec: Record<string, unknown>, rv = '7'): StoredResource {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'default', uid: 'u', resourceVersion: rv, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z', labels: { owner: 'team-a' } },
    spec,
  };
}

function allowForm(): AuthzForm {
  const f = emptyAuthzForm('default');
  f.name = 'reviews-viewer';
  f.selector = 'app=reviews';
  const rule = emptyRule();
  rule.from.push({ ...emptySource(), principals: 'cluster.local/ns/default/sa/productpage' });
  rule.to.push({ ...emptyOperation(), methods: 'GET, HEAD', paths: '/reviews/*' });
  f.rules = [rule];
  return f;
}

describe('AuthorizationPolicy planner', () => {
  test('a new ALLOW policy: exactly the fields typed', () => {
    const plan = planAuthorization({ form: allowForm(), resources: [] });
    assert.deepEqual(plan.errors, []);
    assert.deepEqual(plan.existing, []);
    assert.deepEqual(plan.documents, [
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'reviews-viewer', namespace: 'default' },
        spec: {
          action: 'ALLOW',
          selector: { matchLabels: { app: 'reviews' } },
          rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/productpage'] } }], to: [{ operation: { methods: ['GET', 'HEAD'], paths: ['/reviews/*'] } }] }],
        },
      },
    ]);
    assert.ok(plan.notes.some((n) => /only requests over mTLS/.test(n)));
  });

  test('round trip: a stored policy read into the form and planned unchanged gives the same spec, unshown fields kept', () => {
    const spec = {
      action: 'DENY',
      selector: { matchLabels: { app: 'ratings', version: 'v2' } },
      rules: [
        {
          from: [
            { source: { notNamespaces: ['default'], ipBlocks: ['10.0.0.0/8', '192.168.1.1'], requestPrincipals: ['iss/sub'] } },
            { source: { serviceAccounts: ['reviews'] } },
          ],
          to: [{ operation: { notPaths: ['/healthz'], ports: ['9080'], hosts: ['ratings'], notMethods: ['GET'] } }],
          when: [
            { key: 'request.headers[x-user]', values: ['jason'] },
            { key: 'source.ip', notValues: ['10.1.0.0/16'] },
            { key: 'request.auth.claims[iss]', values: ['x'] },
          ],
        },
        {},
      ],
    };
    const p = stored('deny-ratings', spec);
    const form = authzFormFrom(p);
    assert.equal(form.action, 'DENY');
    assert.equal(form.selector, 'app=ratings, version=v2');
    assert.equal(form.rules![0]!.from[0]!.ipBlocks, '10.0.0.0/8, 192.168.1.1');
    assert.deepEqual(form.rules![0]!.from[0]!.extra, { requestPrincipals: ['iss/sub'] });
    const plan = planAuthorization({ form, resources: [p], stored: p });
    assert.deepEqual(plan.errors, []);
    const doc = plan.documents[0] as StoredResource;
    assert.deepEqual(doc.spec, spec);
    assert.equal(doc.metadata.resourceVersion, '7');
    assert.deepEqual(doc.metadata.labels, { owner: 'team-a' });
    assert.ok(plan.notes.some((n) => /request\.auth\.claims\[iss\] needs JWT.*only that value is dropped/.test(n)), plan.notes.join('\n'));
    assert.ok(plan.notes.some((n) => /requestPrincipals need JWT/.test(n)));
  });

  test('targetRef and provider and rule-level extras survive an edit of the action', () => {
    const p = stored('custom', { action: 'CUSTOM', provider: { name: 'ext' }, rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] });
    const form = authzFormFrom(p);
    const plan = planAuthorization({ form: { ...form, action: 'DENY' }, resources: [p], stored: p });
    assert.deepEqual((plan.documents[0] as StoredResource).spec, { action: 'DENY', provider: { name: 'ext' }, rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] });
  });

  test('no rules: ALLOW denies everything (said in words), DENY is refused', () => {
    const f = { ...allowForm(), rules: undefined };
    const allow = planAuthorization({ form: f, resources: [] });
    assert.deepEqual(allow.errors, []);
    assert.equal((allow.documents[0] as StoredResource).spec.rules, undefined);
    assert.ok(allow.notes.some((n) => /denies every request/.test(n)));
    const deny = planAuthorization({ form: { ...f, action: 'DENY' }, resources: [] });
    assert.deepEqual(deny.errors.map((e) => e.path), ['rules']);
    assert.equal(summarizePolicy({ action: 'ALLOW' }), 'ALLOW nothing: denies every request');
  });

  test('field errors name the field: bad ipBlock, port, method, path, label, empty source, unknown key, missing values, taken name', () => {
    const f = allowForm();
    const r = f.rules![0]!;
    r.from[0]!.ipBlocks = '10.0.0.0/33';
    r.from.push(emptySource());
    r.to[0]!.ports = '0';
    r.to[0]!.methods = 'GET, G ET';
    r.to[0]!.paths = 'reviews';
    r.when.push({ key: 'source.ipx', values: '1.2.3.4', notValues: '' }, { key: 'destination.port', values: '', notValues: '' });
    f.selector = 'app=re views';
    const plan = planAuthorization({ form: f, resources: [stored('reviews-viewer', {})] });
    const by = Object.fromEntries(plan.errors.map((e) => [e.path, e.message]));
    assert.match(by['rules[0].from[0].ipBlocks']!, /^Rule 1, source 1, IP blocks: must be IP addresses or CIDR blocks .*\(got "10\.0\.0\.0\/33"\)/);
    assert.match(by['rules[0].from[1]']!, /set at least one field/);
    assert.match(by['rules[0].to[0].ports']!, /port numbers from 1 to 65535 \(got "0"\)/);
    assert.match(by['rules[0].to[0].methods']!, /HTTP methods .*"G ET"/);
    assert.match(by['rules[0].to[0].paths']!, /paths starting with "\/"/);
    assert.match(by['rules[0].when[0].key']!, /"source\.ipx" is not a condition key Istio knows/);
    assert.match(by['rules[0].when[1].values']!, /set values or not values for destination\.port/);
    assert.match(by.selector!, /invalid value "re views"/);
    assert.match(by.name!, /exists already/);
  });

  test('summaries and notes', () => {
    assert.equal(summarizePolicy({ action: 'ALLOW', rules: [{ from: [{ source: { principals: ['a'] } }], to: [{ operation: { methods: ['GET'] } }] }] }), 'ALLOW from principals a to methods GET');
    assert.equal(summarizePolicy({ action: 'DENY', rules: [{}] }), 'DENY every request');
    assert.ok(compilerNotes({ targetRef: { kind: 'Gateway', name: 'g' } }).some((n) => /gateways and waypoints/.test(n)));
    assert.ok(compilerNotes({ rules: [{ to: [{ operation: { paths: ['/a/{*}'] } }] }] }).some((n) => /path templates.*whole rule is dropped/.test(n)));
  });
});

describe('field checks', () => {
  test('IP addresses and CIDR blocks', () => {
    for (const ok of ['10.0.0.1', '10.0.0.0/16', '0.0.0.0/0', '::1', 'fd00::/8', '2001:db8::1/128', '::ffff:10.0.0.1']) assert.ok(isIpOrCidr(ok), ok);
    for (const bad of ['10.0.0', '10.0.0.256', '10.0.0.0/33', '010.0.0.1', 'fd00::/129', '1::2::3', 'host', '10.0.0.0/']) assert.ok(!isIpOrCidr(bad), bad);
    assert.deepEqual(checkIpBlocks(' 10.0.0.1 ,\n1.2.3.0/24'), { ok: true, value: ['10.0.0.1', '1.2.3.0/24'] });
  });
  test('labels', () => {
    assert.deepEqual(checkLabels('app=reviews, app.kubernetes.io/version=v1'), { ok: true, value: { app: 'reviews', 'app.kubernetes.io/version': 'v1' } });
    assert.equal(checkLabels('').ok, true);
    assert.equal(checkLabels('-app=x').ok, false);
  });
});
