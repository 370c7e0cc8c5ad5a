/** ADS client, incremental (delta) xDS: real gRPC on loopback against a scripted in-test ADS server. */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { TYPE_URL, type DeltaDiscoveryRequest } from '@tern/xds';
import { AdsClient } from '../src/ads/index.ts';
import { any, cla, cluster, deltaResponse, eventually, FakeAdsServer, listener, MemorySink, routeConfig, type DeltaStream } from './ads-client-helpers.ts';

const C = TYPE_URL.cluster;
const E = TYPE_URL.endpoint;
const L = TYPE_URL.listener;
const R = TYPE_URL.route;

const sub = (r: DeltaDiscoveryRequest) => r.resource_names_subscribe ?? [];
const unsub = (r: DeltaDiscoveryRequest) => r.resource_names_unsubscribe ?? [];
const initial = (r: DeltaDiscoveryRequest) => r.initial_resource_versions ?? {};

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup() {
  const server = await new FakeAdsServer().start();
  cleanups.push(() => server.stop());
  const sink = new MemorySink();
  const client = new AdsClient({ servers: [server.address], node: { id: 'sidecar~1', cluster: 'reviews' }, mode: 'delta', sink, backoff: { baseMs: 20, maxMs: 200 } });
  cleanups.push(() => client.close());
  client.start();
  return { server, sink, client };
}

/** clusters a, b (EDS) with endpoints; listener l1 -> r1. */
async function converge(s: DeltaStream) {
  await s.nextOf(C);
  await s.nextOf(L);
  s.send(deltaResponse(C, 's1', 'n1', [{ name: 'a', version: 'a1', json: cluster('a') }, { name: 'b', version: 'b1', json: cluster('b') }]));
  await s.nextOf(C);
  assert.deepEqual(sub(await s.nextOf(E)), ['a', 'b']);
  s.send(deltaResponse(E, 's2', 'n2', [{ name: 'a', version: 'ea1', json: cla('a') }, { name: 'b', version: 'eb1', json: cla('b') }]));
  await s.nextOf(E);
  s.send(deltaResponse(L, 's3', 'n3', [{ name: 'l1', version: 'l1', json: listener('l1', 'r1') }]));
  await s.nextOf(L);
  assert.deepEqual(sub(await s.nextOf(R)), ['r1']);
  s.send(deltaResponse(R, 's4', 'n4', [{ name: 'r1', version: 'r1', json: routeConfig('r1') }]));
  await s.nextOf(R);
}

describe('ADS client (delta)', () => {
  test('subscribes "*" for CDS and LDS, then EDS/RDS by name; ACK is the nonce alone', async () => {
    const { server, sink, client } = await setup();
    const s = await server.nextDeltaStream();
    const cds = await s.nextOf(C);
    assert.deepEqual(sub(cds), ['*']);
    assert.deepEqual(initial(cds), {});
    assert.equal(cds.node?.id, 'sidecar~1');
    assert.equal(cds.node?.user_agent_name, 'tern-proxy');
    const lds = await s.nextOf(L);
    assert.deepEqual(sub(lds), ['*']);
    assert.equal(lds.node, undefined);

    s.send(deltaResponse(C, 's1', 'n1', [{ name: 'a', version: 'a1', json: cluster('a') }, { name: 'b', version: 'b1', json: cluster('b') }]));
    const ack = await s.nextOf(C);
    assert.equal(ack.response_nonce, 'n1');
    assert.equal(ack.error_detail, undefined);
    assert.deepEqual(sub(ack), []);
    assert.deepEqual(sub(await s.nextOf(E)), ['a', 'b']);
    assert.deepEqual(sink.names(C), ['a', 'b']);
    assert.equal(client.status().types[C]?.version, 's1');
    assert.equal(client.status().mode, 'delta');
  });

  test('only changed resources are applied; removed_resources removes; EDS unsubscribes a removed cluster', async () => {
    const { server, sink } = await setup();
    const s = await server.nextDeltaStream();
    await converge(s);

    s.send(deltaResponse(C, 's5', 'n5', [{ name: 'b', version: 'b2', json: { ...cluster('b'), connect_timeout: '2s' } }]));
    await s.nextOf(C);
    assert.deepEqual(sink.names(C), ['a', 'b']);
    assert.equal(sink.version(C, 'a'), 'a1', 'untouched resource keeps its version');
    assert.equal(sink.version(C, 'b'), 'b2');
    assert.equal(sink.sets.get(C)?.get('b')?.json.connect_timeout, '2s');
    assert.deepEqual(await s.quiet(), [], 'same clusters: no EDS subscription change');

    s.send(deltaResponse(C, 's6', 'n6', [], ['a']));
    await s.nextOf(C);
    assert.deepEqual(sink.names(C), ['b']);
    const eds = await s.nextOf(E);
    assert.deepEqual(unsub(eds), ['a']);
    assert.deepEqual(sub(eds), []);
    await eventually(() => sink.names(E).join() === 'b', 'endpoints of "a" dropped');

    // An EDS removal keeps the subscription (the name may come back); an entry without a body is a removal too.
    s.send(deltaResponse(E, 's7', 'n7', [{ name: 'b', version: '' }]));
    await s.nextOf(E);
    assert.deepEqual(sink.names(E), []);
    assert.deepEqual(await s.quiet(), []);
  });

  test('RDS follows the listeners: subscribe to a new route config, unsubscribe a dropped one', async () => {
    const { server, sink } = await setup();
    const s = await server.nextDeltaStream();
    await converge(s);
    s.send(deltaResponse(L, 's5', 'n5', [{ name: 'l1', version: 'l2', json: listener('l1', 'r2') }]));
    await s.nextOf(L);
    const rds = await s.nextOf(R);
    assert.deepEqual(sub(rds), ['r2']);
    assert.deepEqual(unsub(rds), ['r1']);
    await eventually(() => sink.names(R).length === 0, 'r1 dropped');
    s.send(deltaResponse(R, 's6', 'n6', [{ name: 'r2', version: 'r2', json: routeConfig('r2') }, { name: 'r1', version: 'late', json: routeConfig('r1') }]));
    await s.nextOf(R);
    assert.deepEqual(sink.names(R), ['r2'], 'a late resource for an unsubscribed name is ignored');
  });

  test('bad resources are NACKed with the nonce and a message naming them; state kept', async () => {
    const { server, sink, client } = await setup();
    const s = await server.nextDeltaStream();
    await converge(s);

    s.send(deltaResponse(C, 's5', 'n5', [{ name: 'c', version: 'c1', any: { type_url: C, value: Buffer.from([0xff, 0xff]) } }]));
    let nack = await s.nextOf(C);
    assert.equal(nack.response_nonce, 'n5');
    assert.equal(nack.error_detail?.code, 3);
    assert.match(nack.error_detail?.message ?? '', /^Cluster resource \[0\] "c": cannot be decoded/);

    s.send(deltaResponse(C, 's6', 'n6', [{ name: 'c', version: 'c1', any: any(listener('c', 'r')) }]));
    nack = await s.nextOf(C);
    assert.match(nack.error_detail?.message ?? '', /"c": type_url ".*Listener" does not match/);

    s.send(deltaResponse(C, 's7', 'n7', [{ name: 'c', version: 'c1', json: cluster('not-c') }]));
    nack = await s.nextOf(C);
    assert.match(nack.error_detail?.message ?? '', /"c": the resource's own name is "not-c"/);

    sink.reject = (t) => (t === R ? 'RouteConfiguration "r1": virtual_hosts[0].domains: duplicate domain "*"' : undefined);
    s.send(deltaResponse(R, 's8', 'n8', [{ name: 'r1', version: 'r1b', json: routeConfig('r1', 'b') }]));
    nack = await s.nextOf(R);
    assert.equal(nack.error_detail?.message, 'RouteConfiguration "r1": virtual_hosts[0].domains: duplicate domain "*"');

    assert.deepEqual(sink.names(C), ['a', 'b']);
    assert.equal(sink.version(R, 'r1'), 'r1');
    assert.equal(client.status().types[C]?.version, 's1');
    assert.match(client.status().types[R]?.lastNack?.message ?? '', /duplicate domain/);
  });

  test('on reconnect the client sends initial_resource_versions for what it holds', async () => {
    const { server, sink, client } = await setup();
    const s = await server.nextDeltaStream();
    await converge(s);
    const port = server.port;
    server.stop();
    await eventually(() => !client.status().connected, 'disconnected');
    assert.deepEqual(sink.names(C), ['a', 'b']);
    await server.start(port);
    const s2 = await server.nextDeltaStream(10_000);
    const reqs = [await s2.next(), await s2.next(), await s2.next(), await s2.next()];
    assert.deepEqual(reqs.map((r) => r.type_url), [C, E, L, R]);
    assert.ok(reqs[0]!.node);
    assert.deepEqual(reqs.map(sub), [['*'], ['a', 'b'], ['*'], ['r1']]);
    assert.deepEqual(reqs.map(initial), [{ a: 'a1', b: 'b1' }, { a: 'ea1', b: 'eb1' }, { l1: 'l1' }, { r1: 'r1' }]);
    // Only the difference is sent back.
    s2.send(deltaResponse(C, 't1', 'm1', [], ['b']));
    await s2.nextOf(C);
    assert.deepEqual(sink.names(C), ['a']);
    assert.deepEqual(unsub(await s2.nextOf(E)), ['b']);
    assert.ok(client.status().reconnects >= 1);
  });
});
