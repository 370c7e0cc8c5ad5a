import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adsServiceDefinition, packAny, TYPE_URL, type DiscoveryResponse } from '@tern/xds';
import { startTestApi, type TestApi } from './helpers.ts';
import { SotwClient, eventually, names, node } from './xds-fixtures.ts';
import { XdsServer } from '../src/xds/server.ts';
import { encodeDiscoveryResponse } from '../src/xds/response-encoding.ts';
import { prepareMesh, proxyIdentityFromNode } from '../src/compile/index.ts';

// How responses are written: their encoding (the same bytes protobufjs writes), and the server's
// limit on responses being written at once (streams queue for a slot; none is starved or lost).

describe('DiscoveryResponse encoding', () => {
  const protobufjs = adsServiceDefinition().StreamAggregatedResources!.responseSerialize;
  const cluster = (name: string) => packAny({ '@type': TYPE_URL.cluster, name, connect_timeout: '1s' });
  const full: DiscoveryResponse = {
    version_info: 'v-é1',
    resources: [cluster('outbound|9080||reviews.default.svc.cluster.local'), cluster('x'.repeat(300))],
    type_url: TYPE_URL.cluster,
    nonce: '17',
    control_plane: { identifier: 'replica-1' },
  };

  test('the same bytes as protobufjs, with and without optional fields, empty strings and empty resources', () => {
    const cases = [
      full,
      { ...full, resources: [] },
      { ...full, version_info: '', nonce: '' },
      { ...full, control_plane: {} },
      { resources: [{ type_url: '', value: Buffer.alloc(0) }] },
    ] as DiscoveryResponse[];
    for (const res of cases) {
      const ours = Buffer.from(encodeDiscoveryResponse(res)!);
      assert.ok(ours.equals(protobufjs(res)), JSON.stringify(res).slice(0, 200));
    }
  });

  test('a response bigger than the reused buffer, then a small one: both decode whole', () => {
    const big = { ...full, resources: Array.from({ length: 400 }, (_, i) => cluster(`c${i}-${'y'.repeat(3000)}`)) };
    const bigBytes = Buffer.from(encodeDiscoveryResponse(big)!);
    assert.ok(bigBytes.length > 1 << 20);
    const small = Buffer.from(encodeDiscoveryResponse(full)!);
    const decode = adsServiceDefinition().StreamAggregatedResources!.responseDeserialize;
    assert.equal((decode(bigBytes) as DiscoveryResponse).resources.length, 400);
    assert.ok(bigBytes.equals(protobufjs(big)));
    assert.ok(small.equals(protobufjs(full)));
  });

  test('a shape it does not know (another field, a resource without bytes) is left to protobufjs', () => {
    assert.equal(encodeDiscoveryResponse({ ...full, canary: true } as DiscoveryResponse), undefined);
    assert.equal(encodeDiscoveryResponse({ ...full, resources: [{ type_url: TYPE_URL.cluster, value: 'abc' }] } as unknown as DiscoveryResponse), undefined);
    assert.equal(encodeDiscoveryResponse({ ...full, nonce: 7 } as unknown as DiscoveryResponse), undefined);
  });
});

describe('one response written at a time (maxConcurrentWrites: 1)', () => {
  let api: TestApi;
  let server: XdsServer;
  let address: string;
  const clients: SotwClient[] = [];
  const service = (name: string) => api.rest('PUT', `/api/v1/registry/services/default/${name}`, { namespace: 'default', name, ports: [{ number: 9080, protocol: 'HTTP' }] });

  before(async () => {
    api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 });
    assert.equal((await service('reviews')).status, 200);
    server = new XdsServer(api.app.db.prisma, api.app.changes, { prepareMesh, proxyIdentityFromNode }, { ...api.app.xds.opts, replicaId: 'one-writer', maxConcurrentWrites: 1 });
    address = await server.start('127.0.0.1', 0);
  });
  after(async () => {
    for (const c of clients) c.close();
    await server?.close();
    await api?.close();
  });

  test('many streams at once all get their clusters and listeners, and every later change, also after one of them leaves', async () => {
    const n = 8;
    for (let i = 0; i < n; i++) clients.push(new SotwClient(address));
    // Every stream asks for both types at once: up to 2n responses wait for the one slot.
    for (const [i, c] of clients.entries()) {
      c.send({ node: node(`writer-${i}`, { NAMESPACE: 'default' }), type_url: TYPE_URL.cluster });
      c.send({ type_url: TYPE_URL.listener });
    }
    for (const c of clients) {
      const cds = await c.next(TYPE_URL.cluster);
      assert.ok(names(cds).includes('outbound|9080||reviews.default.svc.cluster.local'));
      c.ack(cds);
      c.ack(await c.next(TYPE_URL.listener));
    }
    await eventually(async () => (await server.listProxies()).filter((p) => p.replica === 'one-writer' && p.status === 'SYNCED').length === n, 5000, 'all proxies SYNCED');

    // One leaves without a word while the others have pushes queued: its slot must not be lost.
    clients[0]!.close();
    assert.equal((await service('ratings')).status, 200);
    for (const c of clients.slice(1)) {
      const cds = await c.next(TYPE_URL.cluster);
      assert.ok(names(cds).includes('outbound|9080||ratings.default.svc.cluster.local'));
      c.ack(cds);
    }
    // Two quick changes: each remaining stream ends up with the last state (an unwritten response may be superseded, never reordered after a newer one).
    assert.equal((await service('details')).status, 200);
    assert.equal((await service('pages')).status, 200);
    for (const c of clients.slice(1)) {
      const cds = await c.inbox.next((m) => m.type_url === TYPE_URL.cluster && names(m).includes('outbound|9080||pages.default.svc.cluster.local'));
      assert.ok(names(cds).includes('outbound|9080||details.default.svc.cluster.local'));
      c.ack(cds);
    }
  });
});
