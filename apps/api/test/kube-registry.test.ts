import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from './helpers.ts';
import { FakeApiServer, kubeconfigFor, type KubeObject } from './kube/fake-apiserver.ts';
import { KubeRegistrySync, type RegistrySyncOptions } from '../src/kube/registry-sync.ts';
import { eventually } from './xds-fixtures.ts';

// The registry from a cluster, end to end: objects written to the fake API server show up in the
// control plane's REST registry (source kubernetes), through the real client-node informers and
// the real write path, across 410s, watch failures, pagination and a cluster without EndpointSlices.


interface PodOpts {
  ip?: string;
  ready?: boolean;
  sidecar?: boolean;
  sa?: string;
  containerPorts?: Array<{ name?: string; containerPort: number }>;
}

function pod(namespace: string, name: string, labels: Record<string, string>, o: PodOpts = {}): KubeObject {
  const containers: Array<Record<string, unknown>> = [{ name: 'app', image: 'app:1', ports: o.containerPorts ?? [] }];
  if (o.sidecar) containers.push({ name: 'tern-proxy', image: 'tern-proxy:1' });
  return {
    metadata: { name, namespace, labels },
    spec: { serviceAccountName: o.sa ?? 'default', containers },
    status: {
      phase: 'Running',
      podIP: o.ip ?? '10.0.0.1',
      podIPs: [{ ip: o.ip ?? '10.0.0.1' }],
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

function service(namespace: string, name: string, selector: Record<string, string>, ports: Array<Record<string, unknown>>): KubeObject {
  return { metadata: { name, namespace }, spec: { selector, ports } };
}

describe('registry from a Kubernetes cluster', () => {
  let fake: FakeApiServer;
  let api: TestApi;
  let sync: KubeRegistrySync;
  const options = (): RegistrySyncOptions => ({
    kubeConfig: kubeconfigFor(fake),
    prisma: api.app.db.prisma,
    analyze: api.app.analyze,
    domainSuffix: api.app.config.domainSuffix,
    pageSize: 2,
    debounceMs: 20,
    backoff: { initialMs: 50, maxMs: 400 },
  });
  const workloads = async (ns: string) => (await api.rest('GET', `/api/v1/registry/workloads?namespace=${ns}`)).body.workloads as any[];
  const services = async (ns: string) => (await api.rest('GET', `/api/v1/registry/services?namespace=${ns}`)).body.services as any[];
  // Expiring while the informer is between a list and its watch would compact nothing it needs.
  const podsWatched = () => eventually(() => fake.watchCount('pods') > 0, 10_000, 'a pods watch');
  const workload = async (ns: string, name: string) => (await workloads(ns)).find((w) => w.name === name);

  before(async () => {
    fake = await FakeApiServer.start();
    api = await startTestApi();
    // Registered by hand: the cluster sync must never touch these.
    assert.equal((await api.rest('PUT', '/api/v1/registry/services/shop/legacy', { namespace: 'shop', name: 'legacy', ports: [{ number: 80, protocol: 'HTTP' }] })).status, 200);
    assert.equal((await api.rest('PUT', '/api/v1/registry/workloads/shop/legacy-1', { namespace: 'shop', name: 'legacy-1', labels: { app: 'legacy' }, addresses: ['127.0.0.1'] })).status, 200);

    fake.upsert('namespaces', { metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } });
    fake.upsert('services', service('shop', 'reviews', { app: 'reviews' }, [
      { name: 'http', port: 9080, targetPort: 'http-api', protocol: 'TCP' },
      { name: 'metrics', port: 9090, targetPort: 9091, appProtocol: 'http' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ]));
    fake.upsert('pods', pod('shop', 'reviews-v1', { app: 'reviews', version: 'v1' }, { ip: '10.0.0.11', sidecar: true, sa: 'bookinfo-reviews', containerPorts: [{ name: 'http-api', containerPort: 8080 }] }));
    // Claims mTLS by label but runs no Tern sidecar: must not be labelled for auto mTLS.
    fake.upsert('pods', pod('shop', 'reviews-v2', { app: 'reviews', version: 'v2', 'security.istio.io/tlsMode': 'istio' }, { ip: '10.0.0.12', containerPorts: [{ name: 'http-api', containerPort: 8080 }] }));
    fake.upsert('pods', pod('shop', 'reviews-v3', { app: 'reviews', version: 'v3' }, { ip: '10.0.0.13', ready: false }));
    // The endpoints controller's resolution wins over the container port lookup.
    fake.upsert('endpointslices', {
      metadata: { name: 'reviews-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'reviews' } },
      addressType: 'IPv4',
      endpoints: [
        { addresses: ['10.0.0.11'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'reviews-v1', namespace: 'shop' } },
        { addresses: ['10.0.0.12'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'reviews-v2', namespace: 'shop' } },
      ],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'metrics', port: 9091, protocol: 'TCP' }],
    });
    // A cluster Service named like the local registration: left out.
    fake.upsert('services', service('shop', 'legacy', { app: 'legacy' }, [{ name: 'tcp', port: 81 }]));

    sync = new KubeRegistrySync(options());
    await sync.start();
    await sync.whenSynced();
  });

  after(async () => {
    await sync?.stop();
    await api?.close();
    await fake?.close();
  });

  test('Services and ready Pods become registry rows with source kubernetes; local rows are untouched', async () => {
    const svc = (await services('shop')).find((s) => s.name === 'reviews');
    assert.ok(svc, 'reviews registered');
    assert.deepEqual(svc.hosts, ['reviews.shop.svc.cluster.local']);
    assert.deepEqual(svc.labels, { app: 'reviews' });
    assert.deepEqual(svc.ports, [
      { name: 'http', number: 9080, protocol: 'HTTP' },
      { name: 'metrics', number: 9090, protocol: 'HTTP', targetPort: 9091 },
    ]);

    const v1 = await workload('shop', 'reviews-v1');
    assert.deepEqual(v1, {
      namespace: 'shop',
      name: 'reviews-v1',
      labels: { app: 'reviews', version: 'v1', 'security.istio.io/tlsMode': 'istio' },
      serviceAccount: 'bookinfo-reviews',
      addresses: ['10.0.0.11'],
      ports: { '9080': 8080 },
      resourceVersion: v1.resourceVersion,
      source: 'kubernetes',
    });
    const v2 = await workload('shop', 'reviews-v2');
    assert.deepEqual(v2.labels, { app: 'reviews', version: 'v2' }, 'no tlsMode label without the tern-proxy container');
    assert.equal(await workload('shop', 'reviews-v3'), undefined, 'a pod that is not ready is not a workload');

    const prisma = api.app.db.prisma;
    const rows = await prisma.service.findMany({ where: { namespace: 'shop' }, orderBy: { name: 'asc' } });
    assert.deepEqual(rows.map((r) => [r.name, r.source]), [['legacy', 'local'], ['reviews', 'kubernetes']]);
    const legacy = rows[0]!;
    assert.deepEqual(legacy.ports, [{ number: 80, protocol: 'HTTP' }], 'the local row kept its ports');
    const wl = await prisma.workload.findMany({ where: { namespace: 'shop' }, orderBy: { name: 'asc' } });
    assert.deepEqual(wl.map((r) => [r.name, r.source]), [['legacy-1', 'local'], ['reviews-v1', 'kubernetes'], ['reviews-v2', 'kubernetes']]);
    assert.deepEqual(sync.status().conflicts, ['service shop/legacy']);
    assert.equal(sync.status().endpointsApi, 'discovery.k8s.io/v1');
    assert.equal(sync.namespaceInjection('shop'), true);
    assert.equal(sync.namespaceInjection('nowhere'), undefined);

    // Recorded like any registry change: revisions and audit under the sync's actor.
    const audit = await prisma.auditEvent.findMany({ where: { namespace: 'shop', name: 'reviews-v1' } });
    assert.ok(audit.some((a) => a.actor === 'system:kubernetes' && a.action === 'registry.created'));
  });

  test('changes follow: a pod turning ready, a label change, deletions', async () => {
    fake.upsert('pods', pod('shop', 'reviews-v3', { app: 'reviews', version: 'v3' }, { ip: '10.0.0.13', ready: true }));
    await eventually(() => workload('shop', 'reviews-v3'), 10_000, 'v3 ready');

    fake.upsert('pods', pod('shop', 'reviews-v2', { app: 'reviews', version: 'v2b' }, { ip: '10.0.0.12' }));
    await eventually(async () => (await workload('shop', 'reviews-v2'))?.labels.version === 'v2b', 10_000, 'v2 relabelled');

    fake.remove('pods', 'shop', 'reviews-v3');
    await eventually(async () => (await workload('shop', 'reviews-v3')) === undefined, 10_000, 'v3 gone');

    fake.upsert('services', service('shop', 'ratings', { app: 'ratings' }, [{ name: 'grpc', port: 50051 }]));
    await eventually(async () => (await services('shop')).find((s) => s.name === 'ratings')?.ports[0].protocol === 'GRPC', 10_000, 'ratings added');
    fake.remove('services', 'shop', 'ratings');
    await eventually(async () => !(await services('shop')).some((s) => s.name === 'ratings'), 10_000, 'ratings removed');
    assert.ok((await services('shop')).some((s) => s.name === 'legacy'), 'the local service stays');

    // Deleting the cluster's look-alike of the local service leaves the local one alone.
    fake.remove('services', 'shop', 'legacy');
    await eventually(() => sync.status().conflicts.length === 0, 10_000, 'conflict cleared');
    assert.equal((await api.app.db.prisma.service.findUnique({ where: { namespace_name: { namespace: 'shop', name: 'legacy' } } }))?.source, 'local');
  });

  test('a 410 mid-watch: the informer re-lists and no update made during the gap is lost', async () => {
    fake.upsert('pods', pod('gap', 'a', { app: 'a' }, { ip: '10.1.0.1' }));
    fake.upsert('pods', pod('gap', 'b', { app: 'b' }, { ip: '10.1.0.2' }));
    await eventually(async () => (await workloads('gap')).length === 2, 10_000, 'a and b');
    const lists = () => fake.requests.filter((r) => r.path === '/api/v1/pods' && r.query.watch === undefined && !r.query.continue).length;
    const before = lists();
    await podsWatched();
    // Compaction ends the watch with 410; what happens next is not in any history it could resume from.
    fake.expire('pods');
    fake.upsert('pods', pod('gap', 'a', { app: 'a', version: 'after-gap' }, { ip: '10.1.0.1' }));
    fake.remove('pods', 'gap', 'b');
    fake.expire('pods');
    await eventually(async () => {
      const w = await workloads('gap');
      return w.length === 1 && w[0].labels.version === 'after-gap';
    }, 10_000, 'the update made during the gap');
    assert.ok(lists() > before, 're-listed');
    // And it keeps watching afterwards.
    fake.upsert('pods', pod('gap', 'c', { app: 'c' }, { ip: '10.1.0.3' }));
    await eventually(() => workload('gap', 'c'), 10_000, 'c after the re-list');
  });

  test('a 500 on the watch stops client-node\'s informer: restarted with backoff, it catches up', async () => {
    const restartsBefore = sync.status().informers.find((i) => i.name === 'pods')!.restarts;
    await podsWatched();
    fake.fail({ status: 500, resource: 'pods', watch: true, times: 3 });
    fake.closeWatches('pods'); // the resumed watch hits the injected 500s
    fake.upsert('pods', pod('boom', 'x', { app: 'x' }, { ip: '10.2.0.1' }));
    await eventually(() => workload('boom', 'x'), 10_000, 'x after the restarts');
    const pods = sync.status().informers.find((i) => i.name === 'pods')!;
    assert.ok(pods.restarts >= restartsBefore + 3, `restarted ${pods.restarts - restartsBefore} times`);
    assert.match(pods.lastError ?? '', /Internal Server Error/);

    // A 403 on the re-list (RBAC not there yet) is retried the same way.
    await podsWatched();
    fake.fail({ status: 403, resource: 'pods', watch: false, times: 2 });
    fake.expire('pods');
    fake.upsert('pods', pod('boom', 'y', { app: 'y' }, { ip: '10.2.0.2' }));
    await eventually(() => workload('boom', 'y'), 10_000, 'y after a forbidden re-list');
  });

  test('lists are paged: more objects than the page size all arrive', async () => {
    for (let i = 0; i < 7; i++) fake.upsert('pods', pod('paged', `p-${i}`, { app: 'p' }, { ip: `10.3.0.${i + 1}` }));
    // Force a re-list so the pods come through a paged list rather than the watch.
    const from = fake.requests.length;
    await podsWatched();
    fake.expire('pods');
    await eventually(async () => (await workloads('paged')).length === 7, 10_000, 'all seven');
    const total = fake.list('pods').length;
    const pages = await eventually(() => {
      const p = fake.requests.slice(from).filter((r) => r.path === '/api/v1/pods' && r.query.watch === undefined && r.status === 200);
      return p.length >= Math.ceil(total / 2) ? p : undefined;
    }, 10_000, 'the whole paged re-list');
    assert.ok(pages.length >= 5, `a paged list (${pages.length} requests)`);
    assert.ok(pages.every((r) => r.query.limit === '2'));
    assert.ok(pages.some((r) => r.query.continue));
    // Watches asked for bookmarks.
    assert.ok(fake.requests.filter((r) => r.query.watch === 'true').every((r) => r.query.allowWatchBookmarks === 'true'));
  });

  test('an expired continue token mid-list restarts the list from scratch', async () => {
    const from = fake.requests.length;
    const restarts = sync.status().informers.find((i) => i.name === 'pods')!.restarts;
    await podsWatched();
    fake.fail({ status: 410, resource: 'pods', watch: false, continue: true, times: 1 });
    fake.expire('pods');
    fake.upsert('pods', pod('paged', 'p-late', { app: 'p' }, { ip: '10.3.0.99' }));
    await eventually(() => workload('paged', 'p-late'), 10_000, 'p-late');
    await eventually(() => fake.requests.slice(from).some((r) => r.path === '/api/v1/pods' && r.query.continue && r.status === 410), 10_000, 'a 410 on a continued page');
    // Handled inside the paged list: the informer itself never failed.
    assert.equal(sync.status().informers.find((i) => i.name === 'pods')!.restarts, restarts);
  });

  test('stop() ends every watch and nothing more is written', async () => {
    await sync.stop();
    await eventually(() => fake.watchCount() === 0, 10_000, 'no watches left');
    const revision = sync.status().lastRevision;
    fake.upsert('pods', pod('shop', 'after-stop', { app: 'reviews' }, { ip: '10.0.0.99' }));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await workload('shop', 'after-stop'), undefined);
    assert.equal(sync.status().lastRevision, revision);
    fake.remove('pods', 'shop', 'after-stop');
  });

  test('without discovery.k8s.io/v1 EndpointSlices (404), v1 Endpoints resolve the ports', async () => {
    fake.unavailable('endpointslices');
    try {
      // The Service targets a port name the pod does not declare: only the Endpoints know 8081.
      fake.upsert('services', service('legacyapi', 'web', { app: 'web' }, [{ name: 'http', port: 80, targetPort: 'web' }]));
      fake.upsert('pods', pod('legacyapi', 'web-1', { app: 'web' }, { ip: '10.4.0.1' }));
      fake.upsert('endpoints', {
        metadata: { name: 'web', namespace: 'legacyapi' },
        subsets: [{ addresses: [{ ip: '10.4.0.1', targetRef: { kind: 'Pod', name: 'web-1' } }], ports: [{ name: 'http', port: 8081, protocol: 'TCP' }] }],
      });
      sync = new KubeRegistrySync(options());
      await sync.start();
      await sync.whenSynced();
      assert.equal(sync.status().endpointsApi, 'v1');
      assert.deepEqual((await workload('legacyapi', 'web-1'))?.ports, { '80': 8081 });
      // The earlier state is still reconciled by the new instance (nothing lost across a restart).
      assert.ok(await workload('gap', 'c'));
      assert.ok(await workload('shop', 'reviews-v1'));
      fake.upsert('endpoints', {
        metadata: { name: 'web', namespace: 'legacyapi' },
        subsets: [{ addresses: [{ ip: '10.4.0.1', targetRef: { kind: 'Pod', name: 'web-1' } }], ports: [{ name: 'http', port: 8082, protocol: 'TCP' }] }],
      });
      await eventually(async () => (await workload('legacyapi', 'web-1'))?.ports['80'] === 8082, 10_000, 'endpoints change followed');
      assert.ok(!fake.requests.some((r) => r.path === '/apis/discovery.k8s.io/v1/endpointslices' && r.query.watch === 'true' && r.status === 404));
    } finally {
      fake.unavailable('endpointslices', false);
    }
  });
});
