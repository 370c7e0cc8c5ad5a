/** ADS client, state of the world: real gRPC on loopback against a scripted in-test ADS server. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TYPE_URL, type DiscoveryRequest } from '@tern/xds';
import { structToPlain } from '@tern/xds';
import { AdsClient, type AdsClientOptions } from '../src/ads/index.ts';
import { any, cla, cluster, deadAddress, eventually, FakeAdsServer, listener, MemorySink, routeConfig, sotwResponse, type SotwStream } from './ads-client-helpers.ts';

const C = TYPE_URL.cluster;
const E = TYPE_URL.endpoint;
const L = TYPE_URL.listener;
const R = TYPE_URL.route;

const names = (r: DiscoveryRequest) => r.resource_names ?? [];
const ver = (r: DiscoveryRequest) => r.version_info ?? '';
const nonce = (r: DiscoveryRequest) => r.response_nonce ?? '';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: Partial<AdsClientOptions> & { servers?: string[] } = {}) {
  const server = await new FakeAdsServer().start();
  cleanups.push(() => server.stop());
  const sink = opts.sink instanceof MemorySink ? opts.sink : new MemorySink();
  const client = new AdsClient({
    servers: opts.servers ?? [server.address],
    node: { id: 'sidecar~10.0.0.5~reviews-v1.default~default.svc.cluster.local', cluster: 'reviews', metadata: { NAMESPACE: 'default', LABELS: { app: 'reviews' }, PORTS: [9080, 15090], MESH: true, NOTHING: null }, locality: { region: 'eu', zone: 'eu-1' } },
    sink,
    backoff: { baseMs: 20, maxMs: 200 },
    ...opts,
  });
  cleanups.push(() => client.close());
  client.start();
  return { server, sink, client };
}

/** Brings a fresh stream to: cluster "a" (EDS, endpoints v1), listener "l1" -> route "r1". */
async function converge(stream: SotwStream) {
  assert.equal((await stream.nextOf(C)).type_url, C);
  await stream.nextOf(L);
  stream.send(sotwResponse(C, 'c1', 'n-c1', [cluster('a')]));
  await stream.nextOf(C); // ACK
  assert.deepEqual(names(await stream.nextOf(E)), ['a']);
  stream.send(sotwResponse(E, 'e1', 'n-e1', [cla('a')]));
  await stream.nextOf(E);
  stream.send(sotwResponse(L, 'l1', 'n-l1', [listener('l1', 'r1')]));
  await stream.nextOf(L);
  assert.deepEqual(names(await stream.nextOf(R)), ['r1']);
  stream.send(sotwResponse(R, 'r1', 'n-r1', [routeConfig('r1')]));
  await stream.nextOf(R);
}

describe('ADS client (state of the world)', () => {
  test('subscribes CDS then LDS as wildcards, node only on the first request; ACKs carry version and nonce; EDS and RDS follow', async () => {
    const { server, sink, client } = await setup();
    const stream = await server.nextSotwStream();
    const cds = await stream.nextOf(C);
    assert.deepEqual(names(cds), [], 'legacy wildcard: no names');
    assert.equal(ver(cds), '');
    assert.equal(nonce(cds), '');
    assert.ok(cds.node, 'first request carries the node');
    assert.equal(cds.node.id, 'sidecar~10.0.0.5~reviews-v1.default~default.svc.cluster.local');
    assert.equal(cds.node.cluster, 'reviews');
    assert.equal(cds.node.user_agent_name, 'tern-proxy');
    assert.ok(cds.node.user_agent_version);
    assert.deepEqual(cds.node.locality, { region: 'eu', zone: 'eu-1' });
    assert.deepEqual(structToPlain(cds.node.metadata), { NAMESPACE: 'default', LABELS: { app: 'reviews' }, PORTS: [9080, 15090], MESH: true, NOTHING: null });
    const lds = await stream.nextOf(L);
    assert.equal(lds.node, undefined, 'node is sent once per stream');
    assert.deepEqual(names(lds), []);
    assert.deepEqual(await stream.quiet(), [], 'nothing wanted yet: no EDS/RDS request');

    stream.send(sotwResponse(C, 'c1', 'n-c1', [cluster('a'), cluster('b'), cluster('dns', { eds: false })]));
    const ack = await stream.nextOf(C);
    assert.equal(ver(ack), 'c1');
    assert.equal(nonce(ack), 'n-c1');
    assert.equal(ack.error_detail, undefined);
    assert.deepEqual(sink.names(C), ['a', 'b', 'dns']);
    const eds = await stream.nextOf(E);
    assert.deepEqual(names(eds), ['a', 'b']);

    stream.send(sotwResponse(E, 'e1', 'n-e1', [cla('a'), cla('b')]));
    const edsAck = await stream.nextOf(E);
    assert.equal(ver(edsAck), 'e1');
    assert.equal(nonce(edsAck), 'n-e1');
    assert.deepEqual(names(edsAck), ['a', 'b'], 'ACK repeats the subscription');

    stream.send(sotwResponse(L, 'l1', 'n-l1', [listener('l1', 'r1')]));
    assert.equal(ver(await stream.nextOf(L)), 'l1');
    assert.deepEqual(names(await stream.nextOf(R)), ['r1']);
    stream.send(sotwResponse(R, 'r1', 'n-r1', [routeConfig('r1')]));
    assert.equal(nonce(await stream.nextOf(R)), 'n-r1');
    assert.deepEqual(sink.names(R), ['r1']);
    assert.equal(sink.version(R, 'r1'), 'r1');

    const st = client.status();
    assert.equal(st.connected, true);
    assert.equal(st.server, server.address);
    assert.equal(st.types[C]?.version, 'c1');
    assert.equal(st.types[E]?.resources, 2);
    assert.ok(st.types[R]?.lastUpdate);
  });

  test('with wanted names already known, the first requests go CDS, EDS, LDS, RDS', async () => {
    const sink = new MemorySink();
    sink.replaceType(C, new Map([['a', { json: cluster('a') }]]));
    sink.replaceType(L, new Map([['l1', { json: listener('l1', 'r1') }]]));
    const { server } = await setup({ sink });
    const stream = await server.nextSotwStream();
    const first = [await stream.next(), await stream.next(), await stream.next(), await stream.next()];
    assert.deepEqual(first.map((r) => r.type_url), [C, E, L, R]);
    assert.deepEqual(first.map(names), [[], ['a'], [], ['r1']]);
  });

  test('a resource the sink rejects is NACKed with its message and the previous version; the old config stays', async () => {
    const { server, sink, client } = await setup();
    const stream = await server.nextSotwStream();
    await converge(stream);
    sink.reject = (t, set) => (t === C && set.has('bad') ? 'Cluster "bad": lb_policy: LEAST_REQUEST is not supported' : undefined);
    stream.send(sotwResponse(C, 'c2', 'n-c2', [cluster('a'), cluster('bad')]));
    const nack = await stream.nextOf(C);
    assert.equal(ver(nack), 'c1', 'NACK carries the last accepted version');
    assert.equal(nonce(nack), 'n-c2', 'and the rejected response nonce');
    assert.equal(nack.error_detail?.code, 3);
    assert.equal(nack.error_detail?.message, 'Cluster "bad": lb_policy: LEAST_REQUEST is not supported');
    assert.deepEqual(sink.names(C), ['a']);
    const st = client.status().types[C];
    assert.equal(st?.version, 'c1');
    assert.match(st?.lastNack?.message ?? '', /LEAST_REQUEST/);
    assert.equal(st?.lastNack?.version, 'c2');
    assert.deepEqual(await stream.quiet(), [], 'no subscription change after a NACK');

    // The next good push is ACKed and clears the NACK.
    stream.send(sotwResponse(C, 'c3', 'n-c3', [cluster('a'), cluster('b')]));
    const ack = await stream.nextOf(C);
    assert.equal(ver(ack), 'c3');
    assert.equal(ack.error_detail, undefined);
    assert.deepEqual(names(await stream.nextOf(E)), ['a', 'b']);
    assert.equal(client.status().types[C]?.lastNack, undefined);
  });

  test('an Any that does not decode, or has the wrong type_url, is NACKed naming the resource', async () => {
    const { server, sink } = await setup();
    const stream = await server.nextSotwStream();
    await converge(stream);

    stream.send(sotwResponse(L, 'l2', 'n-l2', [listener('l1', 'r1'), { type_url: L, value: Buffer.from([0xff, 0xff]) }]));
    const nack1 = await stream.nextOf(L);
    assert.equal(ver(nack1), 'l1');
    assert.equal(nonce(nack1), 'n-l2');
    assert.match(nack1.error_detail?.message ?? '', /^Listener resource \[1\]: cannot be decoded as Listener/);

    stream.send(sotwResponse(L, 'l3', 'n-l3', [any(cluster('sneaky'))]));
    const nack2 = await stream.nextOf(L);
    assert.equal(ver(nack2), 'l1');
    assert.equal(nonce(nack2), 'n-l3');
    assert.match(nack2.error_detail?.message ?? '', /Listener resource \[0\]: type_url "type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster" does not match/);

    stream.send(sotwResponse(R, 'r2', 'n-r2', [routeConfig('r1'), routeConfig('r1')]));
    assert.match((await stream.nextOf(R)).error_detail?.message ?? '', /duplicate resource name/);

    assert.deepEqual(sink.names(L), ['l1']);
    assert.equal(sink.version(L, 'l1'), 'l1');
    assert.equal(sink.version(R, 'r1'), 'r1');
  });

  test('RDS names follow the listeners: a new route config is subscribed, a dropped one unsubscribed and pruned', async () => {
    const { server, sink } = await setup();
    const stream = await server.nextSotwStream();
    await converge(stream);

    stream.send(sotwResponse(L, 'l2', 'n-l2', [listener('l1', 'r1'), listener('l2', 'r2', 15002)]));
    assert.equal(ver(await stream.nextOf(L)), 'l2');
    const sub = await stream.nextOf(R);
    assert.deepEqual(names(sub), ['r1', 'r2']);
    assert.equal(ver(sub), 'r1', 'a subscription change carries the last accepted version');
    assert.equal(nonce(sub), 'n-r1', 'and the latest nonce of that type');

    // Only r2 in the response: r1 is kept (RDS responses replace only the names they carry).
    stream.send(sotwResponse(R, 'r2', 'n-r2', [routeConfig('r2')]));
    await stream.nextOf(R);
    assert.deepEqual(sink.names(R), ['r1', 'r2']);
    assert.equal(sink.version(R, 'r1'), 'r1');
    assert.equal(sink.version(R, 'r2'), 'r2');

    stream.send(sotwResponse(L, 'l3', 'n-l3', [listener('l2', 'r2', 15002)]));
    await stream.nextOf(L);
    assert.deepEqual(names(await stream.nextOf(R)), ['r2']);
    await eventually(() => sink.names(R).join() === 'r2', 'r1 pruned from the sink');

    // The same for EDS when a cluster goes away.
    stream.send(sotwResponse(C, 'c2', 'n-c2', []));
    await stream.nextOf(C);
    const eds = await stream.nextOf(E);
    assert.deepEqual(names(eds), [], 'unsubscribing everything after an explicit subscription is an empty list');
    await eventually(() => sink.names(E).length === 0, 'endpoints of a removed cluster pruned');
  });

  test('an unchanged resource in a new full-state response is handed over as the same JSON object', async () => {
    const { server, sink } = await setup();
    const stream = await server.nextSotwStream();
    await converge(stream);
    const before = sink.sets.get(L)!.get('l1')!.json;
    stream.send(sotwResponse(L, 'l2', 'n-l2', [listener('l1', 'r1'), listener('l2', 'r1', 15002)]));
    await stream.nextOf(L);
    const after = sink.sets.get(L)!;
    assert.equal(after.get('l1')!.json, before, 'same bytes -> same object (the store reuses its compiled form)');
    assert.equal(after.get('l1')!.version, 'l2');
    stream.send(sotwResponse(L, 'l3', 'n-l3', [listener('l1', 'r1', 15009), listener('l2', 'r1', 15002)]));
    await stream.nextOf(L);
    assert.notEqual(sink.sets.get(L)!.get('l1')!.json, before);
    assert.equal(sink.sets.get(L)!.get('l2')!.json, after.get('l2')!.json);
  });

  test('the server dies: state is kept, the client reconnects with backoff when it returns and resubscribes', async () => {
    const statuses: boolean[] = [];
    const { server, sink, client } = await setup({ hooks: { onStatus: (s) => void statuses.push(s.connected) } });
    const stream = await server.nextSotwStream();
    await converge(stream);
    const port = server.port;

    server.stop();
    await eventually(() => !client.status().connected, 'disconnected');
    const down = client.status();
    assert.ok(down.lastError, 'the reason is shown');
    assert.deepEqual(sink.names(C), ['a'], 'config kept while disconnected');
    assert.deepEqual(sink.names(R), ['r1']);
    // Let a few attempts fail against the closed port.
    await eventually(() => client.status().reconnects >= 3, 'several reconnect attempts');

    await server.start(port);
    const again = await server.nextSotwStream(10_000);
    const reqs = [await again.next(), await again.next(), await again.next(), await again.next()];
    assert.deepEqual(reqs.map((r) => r.type_url), [C, E, L, R]);
    assert.ok(reqs[0]!.node, 'node again on the new stream');
    assert.deepEqual(reqs.map(ver), ['c1', 'e1', 'l1', 'r1'], 'the new stream states the versions held');
    assert.deepEqual(reqs.map(nonce), ['', '', '', '']);
    assert.deepEqual(reqs.map(names), [[], ['a'], [], ['r1']]);
    await eventually(() => client.status().connected, 'connected again');
    assert.deepEqual(sink.names(E), ['a']);

    again.send(sotwResponse(C, 'c2', 'n-c2', [cluster('a'), cluster('b')]));
    assert.equal(ver(await again.nextOf(C)), 'c2');
    assert.deepEqual(names(await again.nextOf(E)), ['a', 'b']);
    assert.ok(statuses.includes(false) && statuses.at(-1) === true);
  });

  test('with only a dead address it keeps retrying (counted, with the error shown) and close() stops it', async () => {
    const dead = await deadAddress();
    const { client } = await setup({ servers: [dead] });
    await eventually(() => client.status().reconnects >= 3, 'retries against a dead address');
    const st = client.status();
    assert.equal(st.connected, false);
    assert.match(st.lastError ?? '', /UNAVAILABLE|ECONNREFUSED|connect/i);
    await client.close();
    const after = client.status().reconnects;
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(client.status().reconnects, after, 'no attempts after close()');
  });

  test('fails over to the next server address, and back to the first when that one returns', async () => {
    const b = await new FakeAdsServer().start();
    cleanups.push(() => b.stop());
    const dead = await deadAddress();
    const sink = new MemorySink();
    const client = new AdsClient({ servers: [dead, b.address], node: { id: 'n', cluster: 'c' }, sink, backoff: { baseMs: 20, maxMs: 100 } });
    cleanups.push(() => client.close());
    client.start();
    const s = await b.nextSotwStream();
    await s.nextOf(C);
    await s.nextOf(L);
    s.send(sotwResponse(C, 'c1', 'n1', [cluster('x', { eds: false })]));
    await s.nextOf(C);
    await eventually(() => client.status().connected && client.status().server === b.address, 'connected to the second address');
    assert.deepEqual(sink.names(C), ['x']);

    const a = await new FakeAdsServer().start(Number(dead.split(':')[1]));
    cleanups.push(() => a.stop());
    b.stop();
    const sa = await a.nextSotwStream(10_000);
    const cds = await sa.nextOf(C);
    assert.equal(cds.version_info, 'c1');
    assert.ok(cds.node);
    await eventually(() => client.status().connected && client.status().server === a.address, 'connected to the first address again');
    assert.deepEqual(sink.names(C), ['x'], 'config kept across the failover');
  });

  test('a response for a type not subscribed is ignored; bad options are refused', async () => {
    const { server, sink } = await setup();
    const stream = await server.nextSotwStream();
    await stream.nextOf(C);
    await stream.nextOf(L);
    stream.send(sotwResponse(TYPE_URL.secret, 's1', 'n-s1', []));
    assert.deepEqual(await stream.quiet(), []);
    assert.equal(sink.sets.has(TYPE_URL.secret), false);
    assert.throws(() => new AdsClient({ servers: [], node: { id: 'x', cluster: 'c' }, sink }), /servers: at least one/);
    assert.throws(() => new AdsClient({ servers: ['a:1'], node: { id: '', cluster: 'c' }, sink }), /node\.id/);
    assert.throws(() => new AdsClient({ servers: ['a:1'], node: { id: 'x', cluster: 'c' }, sink, mode: 'rest' as never }), /mode: must be/);
  });

  test('close() lets the process exit: stream ended, reconnect timers cancelled', async () => {
    const server = await new FakeAdsServer().start();
    cleanups.push(() => server.stop());
    const dead = await deadAddress();
    const dir = mkdtempSync(path.join(tmpdir(), 'tern-ads-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const entry = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/ads/index.ts');
    const script = path.join(dir, 'child.mts');
    writeFileSync(
      script,
      `import { AdsClient } from ${JSON.stringify(entry)};
const sink = { replaceType() {}, wantedNames() { return []; } };
const live = new AdsClient({ servers: [process.argv[2]], node: { id: 'live', cluster: 'c' }, sink,
  hooks: { onConnected() { console.log('connected'); } } }).start();
const retrying = new AdsClient({ servers: [process.argv[3]], node: { id: 'dead', cluster: 'c' }, sink, backoff: { baseMs: 60_000, maxMs: 60_000 } }).start();
const wait = () => new Promise((r) => setTimeout(r, 20));
while (!live.status().connected || retrying.status().reconnects < 1) await wait();
await live.close();
await retrying.close();
console.log('closed');
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script, server.address, dead], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve('did not exit within 15 s');
      }, 15_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c ?? -1);
      });
    });
    assert.equal(code, 0, `child: ${out} ${err}`);
    assert.match(out, /connected[\s\S]*closed/);
    assert.equal(server.streams.length, 1);
    await eventually(() => server.streams[0]!.ended, 'the server sees the stream end');
  });
});
