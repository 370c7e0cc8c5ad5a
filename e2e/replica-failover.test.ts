import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '@tern/xds';
import { onPostgres, openTestDatabase, startTestApi, type TestApi, type TestDatabase } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { AdsClient } from '../apps/proxy/src/ads/index.ts';
import { ConfigStore } from '../apps/proxy/src/config/store.ts';

// Two control-plane replicas on one PostgreSQL and a sidecar's real ADS client and config store:
// a write through either replica reaches the proxy; when the replica it is connected to dies, the
// proxy keeps serving its last config, reconnects to the other replica and catches up, including
// the change written while it was disconnected.


const vs = (w1: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: ${w1} }
    - { destination: { host: reviews, subset: v2 }, weight: ${100 - w1} }
`;
const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;

/** The weight of subset v1 in the forward-proxy route the proxy holds for reviews:9080. */
function v1Weight(store: ConfigStore): number | undefined {
  const route = store.snapshot.resources.get(TYPE_URL.route)?.get('forward-proxy')?.json as
    | { virtual_hosts?: { domains?: string[]; routes?: { route?: { cluster?: string; weighted_clusters?: { clusters?: { name: string; weight: number }[] } } }[] }[] }
    | undefined;
  const action = route?.virtual_hosts?.find((v) => v.domains?.includes('reviews:9080'))?.routes?.[0]?.route;
  // A 100/0 split compiles to a single cluster, as Istio emits it.
  if (action?.cluster) return action.cluster.startsWith('outbound|9080|v1|') ? 100 : 0;
  return action?.weighted_clusters?.clusters?.find((c) => c.name.startsWith('outbound|9080|v1|'))?.weight ?? (action?.weighted_clusters ? 0 : undefined);
}

if (onPostgres) {
  describe('replica failover', () => {
    let db: TestDatabase;
    let a: TestApi;
    let b: TestApi;
    let client: AdsClient | undefined;
    const fast = { xdsDebounceMs: 10, xdsDebounceMaxMs: 100 };

    before(async () => {
      db = await openTestDatabase();
      a = await startTestApi(fast, db, { xds: true });
      b = await startTestApi(fast, db, { xds: true });
    });
    after(async () => {
      await client?.close();
      await a?.close().catch(() => {});
      await b?.close();
      await db?.drop();
    });

    test('a proxy on a dead replica keeps its config, fails over to the other and loses no change', async () => {
      const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
      ok(await a.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
      for (const v of ['v1', 'v2']) {
        ok(await a.rest('PUT', `/api/v1/registry/workloads/default/reviews-${v}`, { namespace: 'default', name: `reviews-${v}`, labels: { app: 'reviews', version: v }, addresses: ['10.0.0.' + v.slice(1)] }));
      }
      ok(await a.rest('PUT', '/api/v1/registry/workloads/default/productpage-v1', { namespace: 'default', name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, addresses: ['10.0.1.1'] }));
      ok(await a.rest('POST', '/api/v1/apply', { yaml: dr + '---\n' + vs(100) }));

      const store = new ConfigStore();
      client = new AdsClient({
        servers: [a.xdsAddress!, b.xdsAddress!],
        node: { id: 'productpage-v1.default', cluster: 'productpage', metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1' } },
        sink: store,
        backoff: { baseMs: 50, maxMs: 200 },
      }).start();
      await eventually(() => v1Weight(store) === 100, 10_000, 'initial config from replica A');

      // A write through B reaches the proxy connected to A (change feed across replicas).
      ok(await b.rest('POST', '/api/v1/apply', { yaml: vs(80) }));
      await eventually(() => v1Weight(store) === 80, 10_000, 'write through B reaches a proxy on A');
      // The store has the config; the ACK that makes the proxy SYNCED follows on the wire.
      await eventually(async () => (await a.app.xds.getProxy('productpage-v1.default')).status === 'SYNCED', 10_000, 'A reports the proxy SYNCED');

      // A dies. The proxy keeps what it has; a change written meanwhile through B must not be lost.
      await a.close();
      assert.equal(v1Weight(store), 80, 'last config kept while disconnected');
      ok(await b.rest('POST', '/api/v1/apply', { yaml: vs(30) }));
      await eventually(() => v1Weight(store) === 30, 15_000, 'reconnect to B and resync');
      const status = await eventually(async () => {
        const p = await b.app.xds.getProxy('productpage-v1.default').catch(() => undefined);
        return p?.status === 'SYNCED' ? p : undefined;
      }, 10_000, 'B reports the proxy SYNCED');
      assert.equal(status.replica, b.app.config.replicaId);
      assert.ok(client.status().reconnects >= 1, JSON.stringify(client.status()));

      // And it keeps following B.
      ok(await b.rest('POST', '/api/v1/apply', { yaml: vs(0) }));
      await eventually(() => v1Weight(store) === 0, 10_000, 'follows B after failover');
    });
  });
}
