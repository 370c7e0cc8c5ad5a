import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException, CoreV1Api, DiscoveryV1Api, KubernetesObjectApi, ListWatch, PatchStrategy, Watch, makeInformer, setHeaderOptions, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { FakeApiServer, kubeconfigFor } from './fake-apiserver.ts';
import { eventually } from '../xds-fixtures.ts';

// The fake API server through the real @kubernetes/client-node: if these pass, code written
// against client-node sees the fake as it would see a cluster (for the parts the fake models).

const pod = (name: string, labels: Record<string, string> = {}): V1Pod => ({
  metadata: { name, namespace: 'default', labels },
  spec: { containers: [{ name: 'app', image: 'app:1' }] },
});


async function apiError(p: Promise<unknown>): Promise<{ code: number; body: any }> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiException, `expected an ApiException, got ${String(err)}`);
    const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
    return { code: err.code, body };
  }
  assert.fail('expected the call to fail');
}

describe('fake API server through client-node', () => {
  let fake: FakeApiServer;
  let core: CoreV1Api;

  before(async () => {
    fake = await FakeApiServer.start();
    core = kubeconfigFor(fake).makeApiClient(CoreV1Api);
  });
  after(() => fake.close());

  test('create, get, 409 AlreadyExists, replace with a stale version is a 409 Conflict', async () => {
    const created = await core.createNamespacedPod({ namespace: 'default', body: pod('a', { app: 'a' }) });
    assert.equal(created.metadata?.name, 'a');
    assert.ok(created.metadata?.uid);
    const rv1 = created.metadata!.resourceVersion!;

    const dup = await apiError(core.createNamespacedPod({ namespace: 'default', body: pod('a') }));
    assert.equal(dup.code, 409);
    assert.equal(dup.body.kind, 'Status');
    assert.equal(dup.body.reason, 'AlreadyExists');

    const got = await core.readNamespacedPod({ name: 'a', namespace: 'default' });
    got.metadata!.labels = { app: 'a', v: '2' };
    const replaced = await core.replaceNamespacedPod({ name: 'a', namespace: 'default', body: got });
    assert.notEqual(replaced.metadata?.resourceVersion, rv1);
    assert.equal(replaced.metadata?.uid, created.metadata?.uid);

    const stale = { ...got, metadata: { ...got.metadata, resourceVersion: rv1 } };
    const conflict = await apiError(core.replaceNamespacedPod({ name: 'a', namespace: 'default', body: stale }));
    assert.equal(conflict.code, 409);
    assert.equal(conflict.body.reason, 'Conflict');

    const missing = await apiError(core.readNamespacedPod({ name: 'nope', namespace: 'default' }));
    assert.equal(missing.code, 404);
    assert.equal(missing.body.reason, 'NotFound');
  });

  test('merge patch, server-side apply (needs fieldManager, records the manager), JSON patch by default', async () => {
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'cm' }, data: { a: '1', b: '2' } } });
    const merged = await core.patchNamespacedConfigMap(
      { name: 'cm', namespace: 'default', body: { data: { b: null, c: '3' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.deepEqual(merged.data, { a: '1', c: '3' });

    const applyBody = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm2', namespace: 'default' }, data: { x: '1' } };
    const noManager = await apiError(core.patchNamespacedConfigMap({ name: 'cm2', namespace: 'default', body: applyBody }, setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)));
    assert.equal(noManager.code, 400);
    const applied = await core.patchNamespacedConfigMap(
      { name: 'cm2', namespace: 'default', body: applyBody, fieldManager: 'tern' },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    assert.deepEqual(applied.data, { x: '1' });
    assert.deepEqual(applied.metadata?.managedFields?.map((m) => [m.manager, m.operation]), [['tern', 'Apply']]);
    const reapplied = await core.patchNamespacedConfigMap(
      { name: 'cm2', namespace: 'default', body: { ...applyBody, data: { x: '2' } }, fieldManager: 'tern' },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    assert.equal(reapplied.data?.x, '2');
    assert.equal(reapplied.metadata?.managedFields?.length, 1);

    // client-node's default content type is JSON patch.
    const jp = await core.patchNamespacedConfigMap({ name: 'cm', namespace: 'default', body: [{ op: 'replace', path: '/data/a', value: '9' }] });
    assert.equal(jp.data?.a, '9');

    // A merge patch carrying a stale resourceVersion is a precondition: 409.
    const stale = await apiError(
      core.patchNamespacedConfigMap({ name: 'cm', namespace: 'default', body: { metadata: { resourceVersion: '1' }, data: { a: '0' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    );
    assert.equal(stale.code, 409);
  });

  test('list pagination with limit/continue is a consistent snapshot; an expired continue token is a 410', async () => {
    for (let i = 0; i < 7; i++) fake.upsert('services', { metadata: { name: `svc-${i}`, namespace: 'pages' }, spec: { ports: [{ port: 80 }] } });
    const names: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    let firstRv: string | undefined;
    do {
      const page = await core.listNamespacedService({ namespace: 'pages', limit: 3, ...(cont ? { _continue: cont } : {}) });
      firstRv ??= page.metadata?.resourceVersion;
      assert.equal(page.metadata?.resourceVersion, firstRv);
      names.push(...page.items.map((s) => s.metadata!.name!));
      cont = page.metadata?._continue;
      pages++;
      // Written mid-list: not part of this list's snapshot.
      if (pages === 1) fake.upsert('services', { metadata: { name: 'svc-late', namespace: 'pages' }, spec: { ports: [{ port: 80 }] } });
    } while (cont);
    assert.equal(pages, 3);
    assert.deepEqual(names, [0, 1, 2, 3, 4, 5, 6].map((i) => `svc-${i}`));

    const first = await core.listNamespacedService({ namespace: 'pages', limit: 2 });
    fake.expireContinueTokens();
    const expired = await apiError(core.listNamespacedService({ namespace: 'pages', limit: 2, _continue: first.metadata!._continue! }));
    assert.equal(expired.code, 410);
    assert.equal(expired.body.reason, 'Expired');
  });

  test('label selectors: equality, inequality, set-based', async () => {
    fake.upsert('pods', { metadata: { name: 'sel-1', namespace: 'sel', labels: { app: 'x', tier: 'web' } } });
    fake.upsert('pods', { metadata: { name: 'sel-2', namespace: 'sel', labels: { app: 'y', tier: 'db' } } });
    fake.upsert('pods', { metadata: { name: 'sel-3', namespace: 'sel', labels: { app: 'x' } } });
    const names = async (labelSelector: string) => (await core.listNamespacedPod({ namespace: 'sel', labelSelector })).items.map((p) => p.metadata!.name).sort();
    assert.deepEqual(await names('app=x'), ['sel-1', 'sel-3']);
    assert.deepEqual(await names('app=x,tier=web'), ['sel-1']);
    assert.deepEqual(await names('app!=x'), ['sel-2']);
    assert.deepEqual(await names('tier in (db,web)'), ['sel-1', 'sel-2']);
    assert.deepEqual(await names('!tier'), ['sel-3']);
    const bad = await apiError(core.listNamespacedPod({ namespace: 'sel', labelSelector: 'a b c' }));
    assert.equal(bad.code, 400);
  });

  test('a raw watch resumes from a resourceVersion, gets bookmarks when allowed, and an in-stream 410 after compaction', async () => {
    const start = fake.resourceVersion;
    fake.upsert('configmaps', { metadata: { name: 'w1', namespace: 'watch' }, data: { a: '1' } });
    fake.remove('configmaps', 'watch', 'w1');
    const events: Array<{ type: string; name?: string; code?: number }> = [];
    let done: unknown = 'open';
    const watch = new Watch(kubeconfigFor(fake));
    await watch.watch(
      '/api/v1/namespaces/watch/configmaps',
      { resourceVersion: start, allowWatchBookmarks: true },
      (type, obj) => events.push({ type, name: obj?.metadata?.name, code: obj?.code }),
      (err) => (done = err),
    );
    await eventually(() => events.length === 2, 5000, 'replayed history');
    assert.deepEqual(events.map((e) => `${e.type}:${e.name}`), ['ADDED:w1', 'DELETED:w1']);
    fake.bookmark();
    await eventually(() => events.some((e) => e.type === 'BOOKMARK'), 5000, 'a bookmark');
    fake.expire('configmaps');
    await eventually(() => done !== 'open', 5000, '410 then close');
    assert.deepEqual(events.at(-1), { type: 'ERROR', name: undefined, code: 410 });
    assert.equal(done, null);

    // Resuming from before the compaction: 410 at once.
    const again: number[] = [];
    let closed = false;
    await watch.watch('/api/v1/namespaces/watch/configmaps', { resourceVersion: start }, (type, obj) => type === 'ERROR' && again.push(obj.code), () => (closed = true));
    await eventually(() => closed && again[0] === 410, 5000, '410 on resume');
  });

  test('makeInformer: list then watch; a 410 mid-watch re-lists and reports a delete missed during the gap', async () => {
    const kc = kubeconfigFor(fake);
    const informer = makeInformer(kc, '/api/v1/namespaces/inf/pods', () => core.listNamespacedPod({ namespace: 'inf' }));
    const seen: string[] = [];
    informer.on('add', (p) => seen.push(`add:${p.metadata?.name}`));
    informer.on('update', (p) => seen.push(`update:${p.metadata?.name}`));
    informer.on('delete', (p) => seen.push(`delete:${p.metadata?.name}`));
    const errors: unknown[] = [];
    informer.on('error', (e) => errors.push(e));
    fake.upsert('pods', { metadata: { name: 'p1', namespace: 'inf' } });
    await informer.start();
    try {
      await eventually(() => seen.includes('add:p1'), 5000, 'initial add');
      fake.upsert('pods', { metadata: { name: 'p2', namespace: 'inf' } });
      await eventually(() => seen.includes('add:p2'), 5000, 'watched add');

      // Compaction closes the watch with a 410 and the changes in between are not replayed:
      // only a re-list can tell the informer that p1 is gone.
      const lists = () => fake.requests.filter((r) => r.path === '/api/v1/namespaces/inf/pods' && r.query.watch === undefined).length;
      const before = lists();
      fake.expire('pods');
      fake.remove('pods', 'inf', 'p1');
      await eventually(() => lists() > before, 5000, 're-listed after 410');
      await eventually(() => seen.includes('delete:p1'), 5000, 'delete seen through the re-list');
      fake.upsert('pods', { metadata: { name: 'p3', namespace: 'inf' } });
      await eventually(() => seen.includes('add:p3'), 5000, 'watching again');
      assert.deepEqual(errors, []);
      assert.deepEqual(informer.list().map((p) => p.metadata?.name).sort(), ['p2', 'p3']);
    } finally {
      await informer.stop();
    }
  });

  test('a clean server-side close resumes the watch from the last version without a re-list', async () => {
    const kc = kubeconfigFor(fake);
    const informer = makeInformer(kc, '/api/v1/namespaces/resume/pods', () => core.listNamespacedPod({ namespace: 'resume' }));
    const seen: string[] = [];
    informer.on('add', (p) => seen.push(p.metadata!.name!));
    await informer.start();
    try {
      const lists = () => fake.requests.filter((r) => r.path === '/api/v1/namespaces/resume/pods' && r.query.watch === undefined).length;
      assert.equal(lists(), 1);
      fake.closeWatches('pods');
      fake.upsert('pods', { metadata: { name: 'during-gap', namespace: 'resume' } });
      await eventually(() => seen.includes('during-gap'), 5000, 'caught up after the resume');
      assert.equal(lists(), 1);
      const watches = fake.requests.filter((r) => r.path === '/api/v1/namespaces/resume/pods' && r.query.watch === 'true');
      assert.ok(watches.length >= 2);
      assert.ok(watches.at(-1)!.query.resourceVersion, 'resumed from a version');
    } finally {
      await informer.stop();
    }
  });

  test('a 410 answered as the watch response status (not in the stream) also makes the informer re-list', async () => {
    const kc = kubeconfigFor(fake);
    const informer = makeInformer(kc, '/api/v1/namespaces/gone/pods', () => core.listNamespacedPod({ namespace: 'gone' }));
    const errors: unknown[] = [];
    informer.on('error', (e) => errors.push(e));
    await informer.start();
    try {
      const lists = () => fake.requests.filter((r) => r.path === '/api/v1/namespaces/gone/pods' && r.query.watch === undefined).length;
      fake.fail({ status: 410, resource: 'pods', watch: true });
      fake.closeWatches('pods');
      await eventually(() => lists() === 2, 5000, 're-listed');
      assert.ok(fake.requests.some((r) => r.path === '/api/v1/namespaces/gone/pods' && r.status === 410));
      assert.deepEqual(errors, []);
    } finally {
      await informer.stop();
    }
  });

  test('injected 500 on a watch stops a client-node informer (it reports an error and does not restart)', async () => {
    const kc = kubeconfigFor(fake);
    const informer = makeInformer(kc, '/api/v1/namespaces/err/pods', () => core.listNamespacedPod({ namespace: 'err' }));
    const errors: any[] = [];
    informer.on('error', (e) => errors.push(e));
    fake.fail({ status: 500, resource: 'pods', watch: true });
    await informer.start();
    await eventually(() => errors.length === 1, 5000, 'error reported');
    assert.equal(errors[0].statusCode, 500);
    await informer.stop();
  });

  test('bookmarks through a ListWatch whose watch asks for them', async () => {
    const kc = kubeconfigFor(fake);
    class BookmarkWatch extends Watch {
      override watch(path: string, params: Record<string, unknown>, cb: (phase: string, obj: any, w: any) => void, done: (err: any) => void) {
        return super.watch(path, { ...params, allowWatchBookmarks: true }, cb, done);
      }
    }
    const lw = new ListWatch<KubernetesObject>('/api/v1/namespaces/bm/pods', new BookmarkWatch(kc), () => core.listNamespacedPod({ namespace: 'bm' }), false);
    await lw.start();
    try {
      fake.upsert('configmaps', { metadata: { name: 'elsewhere', namespace: 'bm' } });
      const rv = fake.resourceVersion;
      fake.bookmark();
      await eventually(() => lw.latestResourceVersion() === rv, 5000, 'the bookmark advanced the informer');
    } finally {
      await lw.stop();
    }
  });

  test('KubernetesObjectApi (generic, discovery-driven) on a custom resource type, with server-side apply', async () => {
    fake.addResourceType({ group: 'networking.istio.io', version: 'v1', resource: 'virtualservices', kind: 'VirtualService', namespaced: true });
    const objects = KubernetesObjectApi.makeApiClient(kubeconfigFor(fake));
    const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' }, spec: { hosts: ['reviews'] } };
    const created = await objects.create(vs);
    assert.ok((created as KubernetesObject).metadata?.resourceVersion);
    const read = await objects.read({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' } });
    assert.deepEqual((read as any).spec, { hosts: ['reviews'] });
    const applied = await objects.patch({ ...vs, spec: { hosts: ['reviews', 'reviews.default'] } }, undefined, undefined, 'tern', true, PatchStrategy.ServerSideApply);
    assert.deepEqual((applied as any).spec.hosts, ['reviews', 'reviews.default']);
    assert.equal(fake.requests.filter((r) => r.method === 'PATCH').at(-1)?.contentType, 'application/apply-patch+yaml');
    assert.deepEqual((fake.get('virtualservices', 'default', 'reviews')?.metadata.managedFields as any[]).map((m) => [m.manager, m.operation]), [['tern', 'Apply']]);
    const dup = await apiError(objects.create(vs));
    assert.equal(dup.code, 409);
  });

  test('an unavailable API answers 404 and leaves discovery; 403 injection on a list', async () => {
    const discovery = kubeconfigFor(fake).makeApiClient(DiscoveryV1Api);
    assert.deepEqual((await discovery.listEndpointSliceForAllNamespaces()).items, []);
    fake.unavailable('endpointslices');
    try {
      const gone = await apiError(discovery.listEndpointSliceForAllNamespaces());
      assert.equal(gone.code, 404);
      const groups = (await (await fetch(`${fake.url}/apis`)).json()) as { groups: Array<{ name: string }> };
      assert.ok(!groups.groups.some((g) => g.name === 'discovery.k8s.io'));
    } finally {
      fake.unavailable('endpointslices', false);
    }
    fake.fail({ status: 403, resource: 'services', method: 'GET' });
    const denied = await apiError(core.listServiceForAllNamespaces());
    assert.equal(denied.code, 403);
    assert.equal(denied.body.reason, 'Forbidden');
    assert.ok(Array.isArray((await core.listServiceForAllNamespaces()).items), 'the failure was for one request');
  });
});
