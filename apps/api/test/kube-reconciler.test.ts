import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { PolicyReconciler } from '../src/kube/reconciler.ts';
import { startTestApi, type TestApi } from './helpers.ts';
import { registerCrds, startRealApiServer, ternCrds, type RealApiServer } from './kube/real-apiserver.ts';

// The reconciler against a real kube-apiserver with Tern's CRDs (deploy/kubernetes/base/crds):
// policy written through the API appears as custom resources (server-side apply, status), a
// kubectl edit is corrected (or adopted), deleting in Tern deletes in the cluster, and objects Tern
// does not manage are left alone.

let kube: RealApiServer;
let kc: KubeConfig;
let api: TestApi;
let objects: CustomObjectsApi;
const VS = { group: 'networking.tern.dev', version: 'v1', plural: 'virtualservices' };

before(async () => {
  kube = await startRealApiServer();
  kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfig);
  const crds = ternCrds();
  assert.ok(crds.length >= 5, 'the CRDs are there');
  await registerCrds(kc, crds);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'shop' } } });
  objects = kc.makeApiClient(CustomObjectsApi);
  api = await startTestApi();
});

after(async () => {
  await api?.close();
  await kube?.stop();
});

const apply = async (yaml: string) => assert.equal((await api.rest('POST', '/api/v1/apply', { yaml })).status, 200);
const vs = (weights: [number, number]) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: ${weights[0]} }
    - { destination: { host: reviews, subset: v2 }, weight: ${weights[1]} }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;
const read = async () => (await objects.getNamespacedCustomObject({ ...VS, namespace: 'shop', name: 'reviews' })) as { metadata: { labels: Record<string, string>; annotations: Record<string, string>; managedFields: { manager: string }[] }; spec: { http: { route: { weight: number }[] }[] }; status?: { conditions?: { type: string; status: string }[] } };
const weights = (cr: Awaited<ReturnType<typeof read>>) => cr.spec.http[0]!.route.map((r) => r.weight);

test('stored policy is applied as Tern custom resources with server-side apply and an Accepted condition; a kubectl edit is corrected', async () => {
  await apply(vs([90, 10]));
  const r = new PolicyReconciler(kc, api.app.resources, { audit: api.app.audit });
  const first = await r.reconcileOnce();
  assert.deepEqual(first.errors, []);
  assert.equal(first.applied, 2, "the VirtualService and its DestinationRule");
  let cr = await read();
  assert.deepEqual(weights(cr), [90, 10]);
  assert.equal(cr.metadata.labels['app.kubernetes.io/managed-by'], 'tern');
  assert.ok(cr.metadata.managedFields.some((m) => m.manager === 'tern-control-plane'), JSON.stringify(cr.metadata.managedFields));
  assert.ok(cr.status?.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True'), JSON.stringify(cr));
  // Nothing to do the second time.
  assert.deepEqual(await r.reconcileOnce(), { applied: 0, deleted: 0, drifted: 0, adopted: 0, statusWritten: 0, unsettled: 0, errors: [] });

  // Someone edits it with kubectl (a merge patch by another manager): drift, corrected.
  await objects.patchNamespacedCustomObject({ ...VS, namespace: 'shop', name: 'reviews', body: { spec: { http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 50 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 50 }] }] } }, fieldManager: 'kubectl-edit' }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.deepEqual(weights(await read()), [50, 50]);
  const fix = await r.reconcileOnce();
  assert.equal(fix.drifted, 1);
  assert.deepEqual(weights(await read()), [90, 10]);
  const [drift] = (await api.app.audit.list({ actor: 'system:kubernetes', actions: ['drift-corrected'], limit: 10 })).events;
  assert.deepEqual(drift?.diff, [
    { op: 'replace', path: 'spec.http[0].route[0].weight', from: 50, to: 90 },
    { op: 'replace', path: 'spec.http[0].route[1].weight', from: 50, to: 10 },
  ]);
  // Corrected, and its status written once: the next pass has nothing to do.
  assert.deepEqual(await r.reconcileOnce(), { applied: 0, deleted: 0, drifted: 0, adopted: 0, statusWritten: 0, unsettled: 0, errors: [] });

  // A change in Tern reaches the cluster; a deletion in Tern deletes there too.
  await apply(vs([80, 20]));
  const changed = await r.reconcileOnce();
  assert.equal(changed.applied, 1);
  assert.equal(changed.drifted, 0);
  cr = await read();
  assert.deepEqual(weights(cr), [80, 20]);
  assert.equal((await api.rest('DELETE', '/api/v1/resources/VirtualService/shop/reviews')).status, 200);
  assert.equal((await r.reconcileOnce()).deleted, 1);
  await assert.rejects(read(), (err: { code?: number }) => err.code === 404);
});

test('objects Tern does not manage are left alone; with adopt, a kubectl edit is taken into the store', async () => {
  await objects.createNamespacedCustomObject({ ...VS, namespace: 'shop', body: { apiVersion: 'networking.tern.dev/v1', kind: 'VirtualService', metadata: { name: 'handmade', namespace: 'shop' }, spec: { hosts: ['handmade'] } } });
  await apply(vs([70, 30]));
  const r = new PolicyReconciler(kc, api.app.resources, { mode: 'adopt' });
  assert.deepEqual((await r.reconcileOnce()).errors, []);
  await objects.patchNamespacedCustomObject({ ...VS, namespace: 'shop', name: 'reviews', body: { spec: { http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 60 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 40 }] }] } }, fieldManager: 'kubectl-edit' }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const adopted = await r.reconcileOnce();
  assert.equal(adopted.adopted, 1);
  const stored = (await api.rest('GET', '/api/v1/resources/VirtualService/shop/reviews')).body;
  assert.deepEqual(stored.spec.http[0].route.map((x: { weight: number }) => x.weight), [60, 40]);
  // The next pass writes the store's (adopted) version back with a new revision: nothing drifts.
  await r.reconcileOnce();
  assert.deepEqual(await r.reconcileOnce(), { applied: 0, deleted: 0, drifted: 0, adopted: 0, statusWritten: 0, unsettled: 0, errors: [] });
  // The hand-made object is still there.
  await objects.getNamespacedCustomObject({ ...VS, namespace: 'shop', name: 'handmade' });
});

test('the running control plane: the leader writes what the API stores into the cluster (TERN_KUBE_RECONCILE) and registers the cluster Services (TERN_KUBE_REGISTRY)', async () => {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'tern-system' } } });
  await core.createNamespacedService({ namespace: 'shop', body: { metadata: { name: 'ratings' }, spec: { selector: { app: 'ratings' }, ports: [{ name: 'http', port: 9080, targetPort: 9080 as never }] } } });
  const cp = await startTestApi({ kubeReconcile: true, kubeRegistry: true, kubeconfig: kube.kubeconfig, namespace: 'tern-system' });
  try {
    await until(() => cp.app.kube?.isLeader === true, 10_000, 'leading');
    await until(async () => (await cp.rest('GET', '/api/v1/registry/services?namespace=shop')).body.services?.some((x: { name: string }) => x.name === 'ratings'), 10_000, 'the cluster Service in the registry');
    assert.equal((await cp.rest('POST', '/api/v1/apply', { yaml: vs([95, 5]).replace(/namespace: shop/g, 'namespace: shop') })).status, 200);
    await until(async () => {
      try {
        return weights(await read()).join('/') === '95/5';
      } catch {
        return false;
      }
    }, 10_000, 'the VirtualService in the cluster');
  } finally {
    await cp.close();
  }
});

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
