/** ADS client feeding the real ConfigStore (apps/proxy/src/config/store.ts) over real gRPC. */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { TYPE_URL, type DeltaDiscoveryRequest, type DiscoveryRequest } from '@tern/xds';
import { AdsClient } from '../src/ads/index.ts';
import { ConfigStore } from '../src/config/store.ts';
import { cla, cluster, deltaResponse, eventually, FakeAdsServer, listener, routeConfig, sotwResponse } from './ads-client-helpers.ts';

const C = TYPE_URL.cluster;
const E = TYPE_URL.endpoint;
const L = TYPE_URL.listener;
const R = TYPE_URL.route;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(mode: 'sotw' | 'delta', store = new ConfigStore()) {
  const server = await new FakeAdsServer().start();
  cleanups.push(() => server.stop());
  const client = new AdsClient({ servers: [server.address], node: { id: 'sidecar~1', cluster: 'reviews' }, mode, sink: store, backoff: { baseMs: 20, maxMs: 200 } });
  cleanups.push(() => client.close());
  client.start();
  return { server, store, client };
}

describe('ADS client with the real ConfigStore', () => {
  test('state of the world: the snapshot builds up, wanted names drive EDS/RDS, a ConfigError is NACKed and the snapshot kept', async () => {
    const { server, store, client } = await setup('sotw');
    const s = await server.nextSotwStream();
    await s.nextOf(C);
    await s.nextOf(L);
    s.send(sotwResponse(C, 'c1', 'n1', [cluster('a'), cluster('b', { serviceName: 'svc-b' })]));
    assert.equal((await s.nextOf(C)).error_detail, undefined);
    assert.deepEqual((await s.nextOf(E)).resource_names, ['a', 'svc-b'], 'EDS names come from the store (service_name wins)');
    s.send(sotwResponse(E, 'e1', 'n2', [cla('a'), cla('svc-b', 9090)]));
    await s.nextOf(E);
    s.send(sotwResponse(L, 'l1', 'n3', [listener('l1', 'r1')]));
    await s.nextOf(L);
    assert.deepEqual((await s.nextOf(R)).resource_names, ['r1']);
    s.send(sotwResponse(R, 'r1', 'n4', [routeConfig('r1', 'a')]));
    const rAck: DiscoveryRequest = await s.nextOf(R);
    assert.equal(rAck.error_detail, undefined, JSON.stringify(rAck.error_detail));

    const snap = store.snapshot;
    assert.deepEqual([...snap.clusters.keys()].sort(), ['a', 'b']);
    assert.deepEqual([...snap.listeners.keys()], ['l1']);
    assert.deepEqual([...snap.routes.keys()], ['r1']);
    assert.equal(snap.missing.endpoints.size, 0);
    assert.equal(snap.missing.routes.size, 0);
    assert.equal(snap.typeVersions.get(C), 'c1');

    // The store rejects this cluster: NACK with its message, previous version, snapshot unchanged.
    s.send(sotwResponse(C, 'c2', 'n5', [cluster('a'), { ...cluster('b'), lb_policy: 'CLUSTER_PROVIDED' }]));
    const nack = await s.nextOf(C);
    assert.equal(nack.version_info, 'c1');
    assert.equal(nack.response_nonce, 'n5');
    assert.equal(nack.error_detail?.code, 3);
    assert.match(nack.error_detail?.message ?? '', /Cluster "b".*lb_policy.*CLUSTER_PROVIDED/);
    assert.equal(store.snapshot, snap, 'the same snapshot object is still current');
    assert.match(client.status().types[C]?.lastNack?.message ?? '', /CLUSTER_PROVIDED/);

    // Dropping the listener drops the route subscription and the route table from the store.
    s.send(sotwResponse(L, 'l2', 'n6', []));
    await s.nextOf(L);
    assert.deepEqual((await s.nextOf(R)).resource_names ?? [], []);
    await eventually(() => store.snapshot.routes.size === 0, 'route table pruned from the store');
    assert.equal(store.snapshot.listeners.size, 0);
  });

  test('delta: changes and removals reach the store', async () => {
    const { server, store } = await setup('delta');
    const s = await server.nextDeltaStream();
    await s.nextOf(C);
    await s.nextOf(L);
    s.send(deltaResponse(C, 'v1', 'n1', [{ name: 'a', version: '1', json: cluster('a') }, { name: 'b', version: '1', json: cluster('b') }]));
    await s.nextOf(C);
    const eds: DeltaDiscoveryRequest = await s.nextOf(E);
    assert.deepEqual(eds.resource_names_subscribe, ['a', 'b']);
    s.send(deltaResponse(E, 'v2', 'n2', [{ name: 'a', version: '1', json: cla('a') }, { name: 'b', version: '1', json: cla('b') }]));
    await s.nextOf(E);
    assert.equal(store.snapshot.missing.endpoints.size, 0);
    s.send(deltaResponse(C, 'v3', 'n3', [], ['a']));
    await s.nextOf(C);
    assert.deepEqual([...store.snapshot.clusters.keys()], ['b']);
    assert.deepEqual((await s.nextOf(E)).resource_names_unsubscribe, ['a']);
    await eventually(() => !store.snapshot.resources.get(E)?.has('a'), 'endpoints of "a" dropped from the store');
  });

  test('static listeners subscribe their routes from the first request; a change made outside the client is followed', async () => {
    const l0 = listener('static-l0', 'r0', 15000);
    const store = new ConfigStore({ staticResources: new Map([[L, new Map([['static-l0', l0]])]]) });
    const { server } = await setup('sotw', store);
    const s = await server.nextSotwStream();
    const first = [await s.next(), await s.next(), await s.next()];
    assert.deepEqual(first.map((r) => r.type_url), [C, L, R]);
    assert.deepEqual(first[2]!.resource_names, ['r0']);

    store.replaceType(L, new Map([['l9', { json: listener('l9', 'r9', 15009) }]]));
    const sub = await s.nextOf(R);
    assert.deepEqual(sub.resource_names, ['r0', 'r9']);
  });
});
