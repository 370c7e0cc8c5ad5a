import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResource } from '@tern/shared';
import { chooseListTargets, convertIstioObject, convertIstioObjects, LAST_APPLIED_ANNOTATION, type ClusterObject, type ServedResource } from '../src/kube/istio-import.ts';
import { summarize } from '../src/cli/import-istio.ts';

// The pure half of `tern import istio`: cluster objects → documents Tern's apply takes.

/** A VirtualService as `kubectl get -o json` shows it after `kubectl apply`. */
const fromCluster = (over: Partial<ClusterObject> = {}): ClusterObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: {
    name: 'reviews',
    namespace: 'bookinfo',
    uid: '6f1c3a7e-0000-4000-8000-000000000001',
    resourceVersion: '48213',
    generation: 3,
    creationTimestamp: '2026-11-01T10:00:00Z',
    labels: { app: 'reviews' },
    annotations: { [LAST_APPLIED_ANNOTATION]: '{"apiVersion":"networking.istio.io/v1","kind":"VirtualService"}', 'team.example.com/owner': 'reviews-team' },
    managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'networking.istio.io/v1', time: '2026-11-01T10:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }],
    ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u' }],
    finalizers: ['example.com/keep'],
  },
  spec: { hosts: ['reviews'], http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
  status: { observedGeneration: 3, validationMessages: [] },
  ...over,
});

test('server fields, status and kubectl\'s last-applied annotation are dropped; the spec, labels and other annotations are kept', () => {
  const r = convertIstioObject(fromCluster());
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.document, {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'bookinfo', labels: { app: 'reviews' }, annotations: { 'team.example.com/owner': 'reviews-team' } },
    spec: fromCluster().spec,
  });
  // What is sent is exactly what Tern's apply parses (it would treat resourceVersion as a guard).
  assert.ok(parseResource(r.document).ok);
});

test('an annotations map holding only the last-applied copy disappears; the spec is a copy', () => {
  const src = fromCluster({ metadata: { name: 'r', namespace: 'ns', annotations: { [LAST_APPLIED_ANNOTATION]: '{}' }, labels: {} } });
  const r = convertIstioObject(src);
  assert.ok(r.ok);
  assert.deepEqual(r.document.metadata, { name: 'r', namespace: 'ns' });
  (r.document.spec.hosts as string[]).push('changed');
  assert.deepEqual((src.spec as { hosts: string[] }).hosts, ['reviews']);
});

test('v1beta1 and v1alpha3 networking objects and v1beta1 security objects are accepted as they are', () => {
  for (const [apiVersion, kind, spec] of [
    ['networking.istio.io/v1beta1', 'DestinationRule', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }],
    ['networking.istio.io/v1alpha3', 'ServiceEntry', { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS', location: 'MESH_EXTERNAL' }],
    ['security.istio.io/v1beta1', 'PeerAuthentication', { mtls: { mode: 'STRICT' } }],
    ['security.istio.io/v1beta1', 'AuthorizationPolicy', { action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/bookinfo/sa/productpage'] } }] }] }],
  ] as const) {
    const r = convertIstioObject({ apiVersion, kind, metadata: { name: 'x', namespace: 'bookinfo', resourceVersion: '1' }, spec });
    assert.ok(r.ok, `${apiVersion} ${kind}: ${JSON.stringify(r)}`);
    assert.equal(r.document.apiVersion, apiVersion);
    assert.ok(parseResource(r.document).ok, `${kind} parses`);
  }
  // A PeerAuthentication with no spec (mesh default mode) is still a document.
  const bare = convertIstioObject({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'istio-system' } });
  assert.ok(bare.ok);
  assert.deepEqual(bare.document.spec, {});
});

test('kinds Tern does not model are skipped with a reason, never dropped', () => {
  const objs: ClusterObject[] = [
    { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'bookinfo-gateway', namespace: 'bookinfo' }, spec: {} },
    { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'bookinfo' }, spec: {} },
    { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { name: 'lua', namespace: 'istio-system' }, spec: {} },
    { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: 'bookinfo' }, spec: {} },
    { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 'mesh-default', namespace: 'istio-system' }, spec: {} },
    { apiVersion: 'networking.istio.io/v1', kind: 'SomethingNew', metadata: { name: 'n', namespace: 'bookinfo' }, spec: {} },
    fromCluster(),
  ];
  const { documents, skipped } = convertIstioObjects(objs);
  assert.equal(documents.length, 1);
  assert.deepEqual(skipped.map((s) => s.kind), ['EnvoyFilter', 'Gateway', 'RequestAuthentication', 'Sidecar', 'SomethingNew', 'Telemetry']);
  assert.equal(skipped.length + documents.length, objs.length);
  for (const s of skipped) assert.ok(s.reason.length > 10, `${s.kind} has a reason`);
  assert.match(skipped.find((s) => s.kind === 'Sidecar')!.reason, /Sidecar/);
  assert.match(skipped.find((s) => s.kind === 'RequestAuthentication')!.reason, /JWT/);
  assert.match(skipped.find((s) => s.kind === 'SomethingNew')!.reason, /no model for SomethingNew/);
  assert.deepEqual(skipped.find((s) => s.kind === 'Sidecar'), { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', namespace: 'bookinfo', name: 'default', reason: skipped.find((s) => s.kind === 'Sidecar')!.reason });
});

test('a supported kind in another group, at a version Tern does not accept, being deleted or malformed, is skipped with why', () => {
  const reason = (o: ClusterObject) => {
    const r = convertIstioObject(o);
    assert.equal(r.ok, false, JSON.stringify(o));
    return (r as { skip: { reason: string } }).skip.reason;
  };
  // Tern's own CRs are not Istio's.
  assert.match(reason({ ...fromCluster(), apiVersion: 'networking.tern.dev/v1' }), /no model for VirtualService \(networking\.tern\.dev\)/);
  assert.match(reason({ ...fromCluster(), apiVersion: 'security.istio.io/v1alpha1', kind: 'AuthorizationPolicy' }), /security\.istio\.io\/v1alpha1 is not one Tern accepts/);
  assert.match(reason(fromCluster({ metadata: { name: 'r', namespace: 'b', deletionTimestamp: '2026-11-26T00:00:00Z' } })), /being deleted/);
  assert.match(reason(fromCluster({ metadata: { namespace: 'b' } })), /metadata\.name/);
  assert.match(reason(fromCluster({ metadata: { name: 'r' } })), /namespace/);
});

test('documents come out in a stable order: kind as Tern lists them, then namespace and name', () => {
  const mk = (kind: string, ns: string, name: string): ClusterObject => ({
    apiVersion: kind.endsWith('Policy') || kind === 'PeerAuthentication' ? 'security.istio.io/v1' : 'networking.istio.io/v1',
    kind,
    metadata: { name, namespace: ns },
    spec: {},
  });
  const { documents } = convertIstioObjects([mk('AuthorizationPolicy', 'a', 'z'), mk('DestinationRule', 'b', 'r'), mk('VirtualService', 'b', 'b'), mk('VirtualService', 'a', 'c')]);
  assert.deepEqual(documents.map((d) => `${d.kind}/${d.metadata.namespace}/${d.metadata.name}`), ['VirtualService/a/c', 'VirtualService/b/b', 'DestinationRule/b/r', 'AuthorizationPolicy/a/z']);
});

test('each kind is listed once, at v1 when served, else v1beta1, else whatever is served; subresources and unlistable ones are ignored', () => {
  const r = (group: string, version: string, name: string, kind: string, verbs = ['get', 'list', 'watch']): ServedResource => ({ group, version, name, kind, namespaced: true, verbs });
  const targets = chooseListTargets([
    r('networking.istio.io', 'v1alpha3', 'virtualservices', 'VirtualService'),
    r('networking.istio.io', 'v1', 'virtualservices', 'VirtualService'),
    r('networking.istio.io', 'v1beta1', 'virtualservices', 'VirtualService'),
    r('networking.istio.io', 'v1', 'virtualservices/status', 'VirtualService'),
    r('networking.istio.io', 'v1beta1', 'proxyconfigs', 'ProxyConfig'),
    r('networking.istio.io', 'v1alpha3', 'envoyfilters', 'EnvoyFilter'),
    r('security.istio.io', 'v1beta1', 'peerauthentications', 'PeerAuthentication'),
    r('security.istio.io', 'v1beta1', 'authorizationpolicies', 'AuthorizationPolicy'),
    r('security.istio.io', 'v1', 'authorizationpolicies', 'AuthorizationPolicy'),
    r('security.istio.io', 'v9', 'weird', 'Weird'),
    r('security.istio.io', 'v1', 'noreads', 'NoRead', ['get']),
  ]);
  assert.deepEqual(
    targets.map((t) => `${t.group}/${t.version}/${t.name}`),
    [
      'networking.istio.io/v1/virtualservices',
      'networking.istio.io/v1alpha3/envoyfilters',
      'networking.istio.io/v1beta1/proxyconfigs',
      'security.istio.io/v1beta1/peerauthentications',
      'security.istio.io/v1/authorizationpolicies',
      'security.istio.io/v9/weird',
    ],
  );
});

test('the summary counts what the API answered and lists every skip with its reason', () => {
  const { documents, skipped } = convertIstioObjects([
    fromCluster(),
    { ...fromCluster(), kind: 'DestinationRule', spec: { host: 'reviews' } },
    { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'bookinfo' } },
  ]);
  const text = summarize(documents, skipped, [
    { kind: 'VirtualService', namespace: 'bookinfo', name: 'reviews', action: 'created', resourceVersion: '2', warnings: [] },
    { kind: 'DestinationRule', namespace: 'bookinfo', name: 'reviews', action: 'unchanged', resourceVersion: '1', warnings: [] },
  ], false);
  assert.match(text, /^bookinfo\s+VirtualService\s+reviews\s+networking\.istio\.io\/v1\s+created$/m);
  assert.match(text, /^bookinfo\s+Sidecar\s+default\s+networking\.istio\.io\/v1\s+skipped$/m);
  assert.match(text, /Imported 2 objects: 1 created, 0 updated, 1 unchanged; 1 skipped\./);
  assert.match(text, /skipped sidecar\.networking\.istio\.io\/default -n bookinfo: .*Sidecar/);
  assert.match(summarize(documents, [], undefined, true), /would import 2 objects; 0 skipped/);
  assert.match(summarize([], skipped, undefined, false), /Nothing to import/);
});
