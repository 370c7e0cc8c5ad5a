import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny, type DiscoveryResponse, type JsonObject } from '@tern/xds';
import { startTestApi, type TestApi } from './helpers.ts';
import { SotwClient, meshCaughtUp, node, TYPE_URL } from './xds-fixtures.ts';

// End to end through the API and the ADS server: applying an AuthorizationPolicy pushes RBAC
// filters to the inbound listener of the workload it selects (and only there); deleting it takes
// them away again. The compile-level detail is in compile-authz.test.ts.

let api: TestApi;
const clients: SotwClient[] = [];

const policy = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'api-deny-admin', namespace: 'default' },
  spec: { selector: { matchLabels: { app: 'api' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] },
};

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
  for (const [name, address] of [['api', '10.7.0.2'], ['web', '10.7.0.3']] as const) {
    assert.equal((await api.rest('PUT', `/api/v1/registry/services/default/${name}`, { namespace: 'default', name, ports: [{ number: 8080, protocol: 'HTTP' }] })).status, 200);
    assert.equal((await api.rest('PUT', `/api/v1/registry/workloads/default/${name}-1`, { namespace: 'default', name: `${name}-1`, labels: { app: name }, addresses: [address] })).status, 200);
  }
  // Proxies connect to the mesh with every registry write in it (on PostgreSQL the change feed
  // may learn of the last one after its response), so the only later pushes are the policy's.
  await meshCaughtUp(api);
});
after(async () => {
  for (const c of clients) c.close();
  await api?.close();
});

/** The http_filters names (RBAC by action) of the proxy's inbound listener. */
function inboundFilters(res: DiscoveryResponse, listenerName: string): string[] {
  const l = res.resources.map((r) => unpackAny(r) as JsonObject).find((x) => x['name'] === listenerName);
  assert.ok(l, `listener ${listenerName}`);
  const hcm = ((l['filter_chains'] as JsonObject[])[0]!['filters'] as JsonObject[])[0]!['typed_config'] as JsonObject;
  return (hcm['http_filters'] as JsonObject[]).map((f) => (f['name'] === 'envoy.filters.http.rbac' ? `rbac:${String(((f['typed_config'] as JsonObject)['rules'] as JsonObject)['action'])}` : String(f['name'])));
}

async function subscribe(workload: string): Promise<SotwClient> {
  const c = new SotwClient(api.xdsAddress!);
  clients.push(c);
  c.send({ node: node(`${workload}~test`, { NAMESPACE: 'default', WORKLOAD_NAME: workload, OUTBOUND_PORT: 0, APP_PORTS: { '8080': 18080 } }), type_url: TYPE_URL.listener });
  return c;
}

describe('AuthorizationPolicy over ADS', () => {
  test('applied: the selected workload gets a DENY RBAC filter before its router; deleted: it goes away; others never change', async () => {
    const apiProxy = await subscribe('api-1');
    const webProxy = await subscribe('web-1');
    const first = await apiProxy.next(TYPE_URL.listener);
    assert.deepEqual(inboundFilters(first, '10.7.0.2_8080'), ['envoy.filters.http.router']);
    apiProxy.ack(first);
    webProxy.ack(await webProxy.next(TYPE_URL.listener));

    const applied = await api.rest('POST', '/api/v1/apply', { resources: [policy] });
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const pushed = await apiProxy.next(TYPE_URL.listener);
    assert.deepEqual(inboundFilters(pushed, '10.7.0.2_8080'), ['rbac:DENY', 'envoy.filters.http.router']);
    apiProxy.ack(pushed);

    assert.equal((await api.rest('DELETE', '/api/v1/resources/AuthorizationPolicy/default/api-deny-admin')).status, 200);
    const removed = await apiProxy.next(TYPE_URL.listener);
    assert.deepEqual(inboundFilters(removed, '10.7.0.2_8080'), ['envoy.filters.http.router']);
    apiProxy.ack(removed);
    // web-1 was never selected: nothing was pushed to it for either change.
    assert.equal(webProxy.inbox.items.filter((m) => m.type_url === TYPE_URL.listener).length, 0);
  });
});
