import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from './helpers.ts';
import { SotwClient, TYPE_URL, decode, eventually, meshCaughtUp, names, node } from './xds-fixtures.ts';

// State-of-the-world ADS against a real gRPC server and the real compiler.

let api: TestApi;
const clients: SotwClient[] = [];
const connect = () => {
  const c = new SotwClient(api.xdsAddress!);
  clients.push(c);
  return c;
};
const service = (namespace: string, name: string, port = 9080) => api.rest('PUT', `/api/v1/registry/services/${namespace}/${name}`, { namespace, name, ports: [{ number: port, protocol: 'HTTP' }] });
const workload = (namespace: string, name: string, app: string, address: string) =>
  api.rest('PUT', `/api/v1/registry/workloads/${namespace}/${name}`, { namespace, name, labels: { app }, addresses: [address] });

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 100, xdsDebounceMaxMs: 1000 }, undefined, { xds: true });
  assert.equal((await service('default', 'reviews')).status, 200);
  await service('default', 'ratings', 9081);
  await workload('default', 'reviews-1', 'reviews', '10.0.0.1');
  await service('other', 'lonely', 7000);
  await meshCaughtUp(api);
});
after(async () => {
  for (const c of clients) c.close();
  await api?.close();
});

/**
 * Subscribes to CDS and LDS (wildcard), ACKs both; returns the responses. The proxies are
 * Kubernetes-style sidecars (INTERCEPTION: REDIRECT), whose routes are named by port as in Istio.
 */
async function bootstrap(c: SotwClient, id: string, namespace = 'default') {
  c.send({ node: node(id, { NAMESPACE: namespace, INTERCEPTION: 'REDIRECT' }), type_url: TYPE_URL.cluster });
  const cds = await c.next(TYPE_URL.cluster);
  c.ack(cds);
  c.send({ type_url: TYPE_URL.listener });
  const lds = await c.next(TYPE_URL.listener);
  c.ack(lds);
  return { cds, lds };
}

describe('state of the world', () => {
  test('initial push on connect: every cluster and listener of the proxy’s scope; the ACK is recorded', async () => {
    const c = connect();
    const { cds, lds } = await bootstrap(c, 'sotw-initial');
    // The proxy's namespace only (not `other`), plus Istio's passthrough clusters of an intercepting sidecar.
    assert.deepEqual(names(cds), ['InboundPassthroughCluster', 'PassthroughCluster', 'outbound|9080||reviews.default.svc.cluster.local', 'outbound|9081||ratings.default.svc.cluster.local']);
    assert.deepEqual(names(lds), ['0.0.0.0_9080', '0.0.0.0_9081', 'virtualInbound', 'virtualOutbound']);
    assert.ok(cds.version_info && cds.nonce);
    const p = await eventually(async () => {
      const p = await api.app.xds.getProxy('sotw-initial');
      return p.types.clusters.ackedVersion === cds.version_info && p.types.listeners.status === 'SYNCED' ? p : undefined;
    });
    assert.equal(p.namespace, 'default');
    assert.equal(p.types.clusters.status, 'SYNCED');
    assert.equal(p.types.routes.status, 'NOT SENT');
    assert.equal(p.status, 'SYNCED');
  });

  test('RDS and EDS carry only subscribed names; a name subscribed later is sent at once', async () => {
    const c = connect();
    await bootstrap(c, 'sotw-rds');
    c.send({ type_url: TYPE_URL.route, resource_names: ['9080'] });
    const rds = await c.next(TYPE_URL.route);
    assert.deepEqual(names(rds), ['9080']);
    c.ack(rds, ['9080']);
    c.send({ type_url: TYPE_URL.endpoint, resource_names: ['outbound|9080||reviews.default.svc.cluster.local'] });
    const eds = await c.next(TYPE_URL.endpoint);
    assert.deepEqual(names(eds), ['outbound|9080||reviews.default.svc.cluster.local']);
    const cla = decode(eds.resources[0]!) as any;
    assert.equal(cla.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address, '10.0.0.1');
    c.ack(eds, ['outbound|9080||reviews.default.svc.cluster.local']);
    // A new name, percent-encoded as some clients send it: compared canonically.
    c.send({ type_url: TYPE_URL.route, version_info: rds.version_info, response_nonce: rds.nonce, resource_names: ['9080', '%39081'] });
    const rds2 = await c.next(TYPE_URL.route);
    assert.deepEqual(names(rds2), ['9080', '9081']);
    assert.notEqual(rds2.version_info, rds.version_info);
  });

  test('a stale nonce is ignored; a NACK is recorded with its message, keeps the ACKed version, and is not answered with a resend', async () => {
    const c = connect();
    const { cds } = await bootstrap(c, 'sotw-nack');
    // A change makes a new CDS version.
    await service('default', 'nacked', 9090);
    const cds2 = await c.next(TYPE_URL.cluster);
    assert.ok(names(cds2).includes('outbound|9090||nacked.default.svc.cluster.local'));
    // An answer to the old nonce, even a NACK, says nothing about the current push.
    c.send({ type_url: TYPE_URL.cluster, version_info: cds.version_info, response_nonce: cds.nonce, error_detail: { code: 3, message: 'stale complaint' } });
    c.send({ type_url: TYPE_URL.cluster, version_info: cds.version_info, response_nonce: cds2.nonce, error_detail: { code: 3, message: 'cluster nacked: bad config' } });
    const p = await eventually(async () => {
      const p = await api.app.xds.getProxy('sotw-nack');
      return p.status === 'NACKED' ? p : undefined;
    });
    assert.equal(p.types.clusters.status, 'NACKED');
    assert.equal(p.types.clusters.ackedVersion, cds.version_info);
    assert.equal(p.types.clusters.nack?.version, cds2.version_info);
    assert.equal(p.types.clusters.nack?.message, 'cluster nacked: bad config');
    assert.equal(p.lastNack?.message, 'cluster nacked: bad config');
    // No resend loop: a barrier on another type, and nothing for CDS arrived before it.
    c.send({ type_url: TYPE_URL.route, resource_names: ['9080'] });
    await c.next(TYPE_URL.route);
    assert.equal(c.inbox.items.length, 0);
    const list = await api.rest('GET', '/api/v1/proxies');
    const row = list.body.proxies.find((x: any) => x.id === 'sotw-nack');
    assert.equal(row.status, 'NACKED');
    assert.equal(row.lastNack.message, 'cluster nacked: bad config');
    await api.rest('DELETE', '/api/v1/registry/services/default/nacked');
    await meshCaughtUp(api);
  });

  test('a reconnecting proxy gets everything again', async () => {
    const c = connect();
    const first = await bootstrap(c, 'sotw-reconnect');
    c.close();
    const c2 = connect();
    const again = await bootstrap(c2, 'sotw-reconnect');
    assert.deepEqual(names(again.cds), names(first.cds));
    assert.equal(again.cds.version_info, first.cds.version_info, 'same content, same version');
    // A client resuming with the version and nonce of its previous stream (as Envoy does) is answered too.
    const c3 = connect();
    c3.send({ node: node('sotw-resume', { NAMESPACE: 'default', INTERCEPTION: 'REDIRECT' }), type_url: TYPE_URL.cluster, version_info: first.cds.version_info, response_nonce: first.cds.nonce });
    assert.deepEqual(names(await c3.next(TYPE_URL.cluster)), names(first.cds));
  });

  test('a change pushes only to affected proxies: another namespace gets nothing', async () => {
    const a = connect();
    const b = connect();
    await bootstrap(a, 'sotw-scope-a');
    await bootstrap(b, 'sotw-scope-b', 'other');
    b.send({ type_url: TYPE_URL.route, resource_names: ['7000'] });
    b.ack(await b.next(TYPE_URL.route), ['7000']);
    await service('default', 'scoped', 9095);
    const cds = await a.next(TYPE_URL.cluster);
    assert.ok(names(cds).includes('outbound|9095||scoped.default.svc.cluster.local'));
    // The server pushes to every affected stream in one pass; a round trip on b after a's push proves b got nothing.
    b.send({ type_url: TYPE_URL.endpoint, resource_names: ['outbound|7000||lonely.other.svc.cluster.local'] });
    await b.next(TYPE_URL.endpoint);
    assert.equal(b.inbox.items.length, 0);
  });

  test('debounce: a burst of 20 writes becomes a few pushes', async () => {
    // 20 services registered at once on port 9080: each is a write and a virtual host in route 9080.
    const c = connect();
    await bootstrap(c, 'sotw-burst');
    c.send({ type_url: TYPE_URL.route, resource_names: ['9080'] });
    const r0 = await c.next(TYPE_URL.route);
    c.ack(r0, ['9080']);
    const before = (await api.app.xds.getProxy('sotw-burst')).types.routes.sentNonce;
    await Promise.all(Array.from({ length: 20 }, (_, i) => service('default', `burst-${i}`)));
    let rds = r0;
    await eventually(async () => {
      while (c.inbox.items.length) {
        rds = await c.next(TYPE_URL.route);
        c.ack(rds, ['9080']);
      }
      return (decode(rds.resources[0]!) as any).virtual_hosts.filter((v: any) => v.name.startsWith('burst-')).length === 20;
    }, 5000, 'all 20 services pushed');
    const after = (await api.app.xds.getProxy('sotw-burst')).types.routes.sentNonce;
    const pushes = Number(after) - Number(before);
    assert.ok(pushes >= 1 && pushes < 20, `pushes: ${pushes}`);
    console.log(`20 writes, ${pushes} RDS push(es)`);
  });

  test('convergence: recorded per revision and on /metrics', async () => {
    // Earlier tests' proxies stop answering pushes; a revision converges only when every affected proxy ACKs.
    for (const old of clients.splice(0)) old.close();
    await eventually(() => api.app.xds.liveViews().length === 0);
    const c = connect();
    await bootstrap(c, 'sotw-conv');
    const w = await service('default', 'converge', 9096);
    const rev = w.body.revision;
    const cds = await c.next(TYPE_URL.cluster);
    c.ack(cds);
    const lds = await c.next(TYPE_URL.listener);
    c.ack(lds);
    const rec = await eventually(async () => {
      const r = await api.rest('GET', '/api/v1/xds/convergence');
      return r.body.revisions.find((x: any) => BigInt(x.revision) >= BigInt(rev) && x.convergedAt);
    });
    assert.ok(rec.affectedProxies >= 1);
    assert.ok(rec.durationMs >= 0);
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(metrics, /tern_xds_convergence_seconds_count [1-9]/);
    assert.match(metrics, /tern_xds_pushes_total\{type="cds"\} [1-9]/);
    assert.match(metrics, /tern_xds_nacks_total\{type="cds"\} [1-9]/);
    assert.match(metrics, /tern_xds_connected_proxies [1-9]/);
  });

  test('invalid node metadata closes the stream with INVALID_ARGUMENT naming the key', async () => {
    const c = connect();
    c.send({ node: node('bad-node', { NAMESPACE: 'Not_A_Namespace' }), type_url: TYPE_URL.cluster });
    const err = await c.inbox.error();
    assert.equal(err.code, 3);
    assert.match(err.details, /NAMESPACE/);
    const c2 = connect();
    c2.send({ type_url: TYPE_URL.cluster });
    const err2 = await c2.inbox.error();
    assert.equal(err2.code, 3);
    assert.match(err2.details, /node/);
  });

  test('proxies API: list, get, config; 404 for an unknown proxy', async () => {
    const c = connect();
    await bootstrap(c, 'sotw-api');
    const list = await api.rest('GET', '/api/v1/proxies?namespace=default');
    assert.equal(list.status, 200);
    const row = list.body.proxies.find((p: any) => p.id === 'sotw-api');
    assert.equal(row.replica, api.app.config.replicaId);
    const cfg = await api.rest('GET', `/api/v1/proxies/sotw-api/config`);
    assert.equal(cfg.status, 200, JSON.stringify(cfg.body));
    assert.equal(cfg.body.types.clusters.resources[0]['@type'], TYPE_URL.cluster);
    const only = await api.rest('GET', `/api/v1/proxies/sotw-api/config?type=listeners`);
    assert.deepEqual(Object.keys(only.body.types), ['listeners']);
    // Istio-style ids, with ~ and dots, work as a REST path segment.
    const istioId = 'sidecar~10.0.0.1~reviews-v1.default~default.svc.cluster.local';
    const c2 = connect();
    await bootstrap(c2, istioId);
    const byId = await api.rest('GET', `/api/v1/proxies/${encodeURIComponent(istioId)}`);
    assert.equal(byId.status, 200, JSON.stringify(byId.body));
    assert.equal(byId.body.id, istioId);
    const missing = await api.rest('GET', '/api/v1/proxies/nobody/config');
    assert.equal(missing.status, 404);
    assert.match(missing.body.message, /nobody/);
    // Gone after disconnect.
    c.close();
    await eventually(async () => !(await api.app.xds.listProxies()).some((p) => p.id === 'sotw-api'));
  });
});
