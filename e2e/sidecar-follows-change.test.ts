import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { freePort, httpGet, startApp, startSidecar, type Sidecar } from './lib/sidecar.ts';

// The whole path as a user runs it: a control plane with its ADS server, a real `tern-proxy`
// process bootstrapped to it (local mode: an HTTP forward-proxy port and a Consul-style upstream
// port), and two versions of an app on loopback. Policy written through the REST API changes
// where the proxy sends requests.

let api: TestApi;
let proxy: Sidecar | undefined;
const servers: http.Server[] = [];

async function app(version: string): Promise<number> {
  const { server, port } = await startApp((req, res) => {
    req.resume();
    res.setHeader('content-type', 'text/plain');
    res.end(`reviews-${version} ${req.headers['x-request-id'] ? 'with-request-id' : 'no-request-id'}`);
  });
  servers.push(server);
  return port;
}

const get = httpGet;

const forwardPort = await freePort();
const upstreamPort = await freePort();
const adminPort = await freePort();

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
  const [v1, v2] = [await app('v1'), await app('v2')];
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, addresses: ['127.0.0.1'], ports: { '9080': v1 } }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v2', { namespace: 'default', name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, addresses: ['127.0.0.1'], ports: { '9080': v2 } }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/productpage-v1', { namespace: 'default', name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, addresses: ['127.0.0.1'] }));

  proxy = await startSidecar({
    id: 'productpage-v1.default',
    metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', OUTBOUND_PORT: forwardPort, UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: upstreamPort }] },
    xdsAddress: api.xdsAddress!,
    adminPort,
    waitForListener: `127.0.0.1_${upstreamPort}`,
  });
});

after(async () => {
  await proxy?.stop();
  for (const s of servers) s.close();
  await api?.close();
});

test('a sidecar follows policy written through the API: default route, all to v2, a header match, back to v1', async () => {
  // No VirtualService yet: the default route spreads over both versions.
  const seen = new Set<string>();
  await eventually(async () => {
    const r = await get(forwardPort, '/reviews/1', { host: 'reviews:9080' });
    if (r.status === 200) seen.add(r.body.split(' ')[0]!);
    return seen.size === 2;
  }, 15_000, 'default route reaches both versions through the forward proxy');

  const apply = async (yaml: string) => {
    const r = await api.rest('POST', '/api/v1/apply', { yaml });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  await apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - route: [{ destination: { host: reviews, subset: v2 } }]
`);
  const allV2 = async (port: number, headers: Record<string, string>) => {
    for (let i = 0; i < 20; i++) {
      const r = await get(port, '/reviews/1', headers);
      if (r.status !== 200 || !r.body.startsWith('reviews-v2')) return false;
    }
    return true;
  };
  await eventually(() => allV2(forwardPort, { host: 'reviews:9080' }), 10_000, 'all to v2 through the forward proxy');
  // The Consul-style upstream port routes the same way, whatever Host the app sends.
  await eventually(() => allV2(upstreamPort, { host: '127.0.0.1' }), 10_000, 'all to v2 through the upstream port');
  const jason = await get(forwardPort, '/reviews/1', { host: 'reviews:9080', 'end-user': 'jason' });
  assert.equal(jason.status, 200);
  assert.match(jason.body, /^reviews-v1 with-request-id$/);

  // An unknown host gets Envoy's answer, not a hang.
  const unknown = await get(forwardPort, '/', { host: 'nowhere:9080' });
  assert.equal(unknown.status, 404);

  // The control plane reports the proxy synced, and what it sent.
  const status = await api.rest('GET', '/api/v1/proxies');
  assert.equal(status.status, 200);
  const me = (status.body.proxies as { id: string; status: string }[]).find((p) => p.id === 'productpage-v1.default');
  assert.equal(me?.status, 'SYNCED');
});
