import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from './helpers.ts';
import { DeltaClient, TYPE_URL, decode, deltaNames, eventually, meshCaughtUp, removedNames, node } from './xds-fixtures.ts';

// Incremental (delta) ADS against a real gRPC server, with the real compiler.

let api: TestApi;
const clients: DeltaClient[] = [];
const connect = () => {
  const c = new DeltaClient(api.xdsAddress!);
  clients.push(c);
  return c;
};
const service = (namespace: string, name: string, port = 9080) => api.rest('PUT', `/api/v1/registry/services/${namespace}/${name}`, { namespace, name, ports: [{ number: port, protocol: 'HTTP' }] });

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 30, xdsDebounceMaxMs: 300 }, undefined, { xds: true });
  await service('default', 'reviews');
  await service('default', 'ratings', 9081);
  await meshCaughtUp(api);
});
after(async () => {
  for (const c of clients) c.close();
  await api?.close();
});

describe('delta', () => {
  test('initial: every resource with its own version; then only what changed; removed_resources on delete', async () => {
    const c = connect();
    c.send({ node: node('delta-1'), type_url: TYPE_URL.cluster });
    const first = await c.next(TYPE_URL.cluster);
    assert.deepEqual(deltaNames(first), ['outbound|9080||reviews.default.svc.cluster.local', 'outbound|9081||ratings.default.svc.cluster.local']);
    for (const r of first.resources) {
      assert.ok(r.version, 'per-resource version');
      assert.equal(decode(r.resource!).name, r.name);
    }
    assert.notEqual(first.resources[0]!.version, first.resources[1]!.version);
    assert.deepEqual(removedNames(first), []);
    c.ack(first);
    await eventually(async () => (await api.app.xds.getProxy('delta-1')).types.clusters.status === 'SYNCED');

    await service('default', 'details', 9082);
    const added = await c.next(TYPE_URL.cluster);
    assert.deepEqual(deltaNames(added), ['outbound|9082||details.default.svc.cluster.local'], 'only the new cluster');
    c.ack(added);

    await api.rest('DELETE', '/api/v1/registry/services/default/details');
    const removed = await c.next(TYPE_URL.cluster);
    assert.deepEqual(deltaNames(removed), []);
    assert.deepEqual(removedNames(removed), ['outbound|9082||details.default.svc.cluster.local']);
    c.ack(removed);
    const p = await eventually(async () => {
      const p = await api.app.xds.getProxy('delta-1');
      return p.types.clusters.status === 'SYNCED' ? p : undefined;
    });
    assert.equal(p.protocol, 'delta');
    assert.equal(p.types.clusters.resourceCount, 2);
  });

  test('reconnect with initial_resource_versions: what the client has is not sent again; what changed is', async () => {
    const c = connect();
    c.send({ node: node('delta-2'), type_url: TYPE_URL.cluster });
    const first = await c.next(TYPE_URL.cluster);
    c.ack(first);
    const versions = Object.fromEntries(first.resources.map((r) => [r.name, r.version]));
    c.close();

    // While it is away: reviews changes (a new port means a different cluster set), ratings stays.
    await service('default', 'reviews', 9085);
    await meshCaughtUp(api);

    const c2 = connect();
    c2.send({ node: node('delta-2'), type_url: TYPE_URL.cluster, initial_resource_versions: { ...versions, 'outbound|1||gone.default.svc.cluster.local': 'old' } });
    const again = await c2.next(TYPE_URL.cluster);
    assert.deepEqual(deltaNames(again), ['outbound|9085||reviews.default.svc.cluster.local'], 'ratings is not resent');
    assert.deepEqual(removedNames(again), ['outbound|1||gone.default.svc.cluster.local', 'outbound|9080||reviews.default.svc.cluster.local']);
    await service('default', 'reviews', 9080);
    await meshCaughtUp(api);
  });

  test('per-name subscribe and unsubscribe for EDS; a missing name is reported removed; stale ACKs are not recorded', async () => {
    const c = connect();
    c.send({ node: node('delta-3'), type_url: TYPE_URL.endpoint, resource_names_subscribe: ['outbound|9080||reviews.default.svc.cluster.local'] });
    const eds = await c.next(TYPE_URL.endpoint);
    assert.deepEqual(deltaNames(eds), ['outbound|9080||reviews.default.svc.cluster.local']);
    c.send({ type_url: TYPE_URL.endpoint, response_nonce: eds.nonce, resource_names_subscribe: ['outbound|9081||ratings.default.svc.cluster.local', 'outbound|1||nope'] });
    const more = await c.next(TYPE_URL.endpoint);
    assert.deepEqual(deltaNames(more), ['outbound|9081||ratings.default.svc.cluster.local']);
    assert.deepEqual(removedNames(more), ['outbound|1||nope']);
    // ACK of the older nonce: stale, not recorded; the status stays STALE until the latest is ACKed.
    c.send({ type_url: TYPE_URL.endpoint, response_nonce: eds.nonce });
    c.send({ type_url: TYPE_URL.endpoint, resource_names_unsubscribe: ['outbound|9080||reviews.default.svc.cluster.local'] });
    await eventually(async () => (await api.app.xds.getProxy('delta-3')).types.endpoints.resourceCount === 1);
    assert.equal((await api.app.xds.getProxy('delta-3')).types.endpoints.status, 'STALE');
    c.ack(more);
    await eventually(async () => (await api.app.xds.getProxy('delta-3')).types.endpoints.status === 'SYNCED');
    // A change to the unsubscribed cluster's endpoints is not pushed; one to the subscribed is.
    await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-9', { namespace: 'default', name: 'reviews-9', labels: { app: 'reviews' }, addresses: ['10.0.0.9'] });
    await api.rest('PUT', '/api/v1/registry/workloads/default/ratings-9', { namespace: 'default', name: 'ratings-9', labels: { app: 'ratings' }, addresses: ['10.0.0.19'] });
    const upd = await c.next(TYPE_URL.endpoint);
    assert.deepEqual(deltaNames(upd), ['outbound|9081||ratings.default.svc.cluster.local']);
    const cla = decode(upd.resources[0]!.resource!) as any;
    assert.equal(cla.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address, '10.0.0.19');
  });

  test('a NACK on a delta stream is recorded and not answered with a resend', async () => {
    const c = connect();
    c.send({ node: node('delta-4'), type_url: TYPE_URL.cluster });
    const first = await c.next(TYPE_URL.cluster);
    c.send({ type_url: TYPE_URL.cluster, response_nonce: first.nonce, error_detail: { code: 3, message: 'delta says no' } });
    const p = await eventually(async () => {
      const p = await api.app.xds.getProxy('delta-4');
      return p.status === 'NACKED' ? p : undefined;
    });
    assert.equal(p.types.clusters.nack?.message, 'delta says no');
    c.send({ type_url: TYPE_URL.listener });
    await c.next(TYPE_URL.listener);
    assert.equal(c.inbox.items.length, 0);
  });
});
