import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { freePort, httpGet, startApp, startSidecar, type Sidecar } from './lib/sidecar.ts';

// Istio's traffic-management tasks as a user runs them: resources written from Istio's
// documentation, applied through the REST API, compiled by the control plane, enforced by a real
// `tern-proxy` process. The app calls through the sidecar's forward-proxy port (HTTP_PROXY style).
// Times are scaled down from Istio's (its 7 s delay is 1 s here) to keep the suite fast.

let api: TestApi;
let proxy: Sidecar | undefined;
const servers: http.Server[] = [];
const forwardPort = await freePort();
const adminPort = await freePort();

/** What each app instance saw: requests by path, and the Host of each request. */
const seen = new Map<string, { hosts: string[]; flaky: number }>();

async function app(name: string, behaviour: (req: http.IncomingMessage, res: http.ServerResponse, state: { hosts: string[]; flaky: number }) => void): Promise<number> {
  const state = { hosts: [] as string[], flaky: 0 };
  seen.set(name, state);
  const { server, port } = await startApp((req, res) => {
    req.resume();
    state.hosts.push(String(req.headers.host));
    behaviour(req, res, state);
  });
  servers.push(server);
  return port;
}

/** reviews: /slow answers after 2 s, /flaky fails every other request with 503, /hold takes 30 ms. */
function reviews(version: string) {
  return (req: http.IncomingMessage, res: http.ServerResponse, state: { flaky: number }) => {
    if (req.url === '/slow') setTimeout(() => res.end(`reviews-${version} slow`), 2000).unref();
    else if (req.url === '/flaky' && state.flaky++ % 2 === 0) {
      res.statusCode = 503;
      res.end('flaky');
    } else if (req.url === '/hold') setTimeout(() => res.end(`reviews-${version}`), 30);
    else res.end(`reviews-${version}`);
  };
}

const call = (path: string, headers: Record<string, string> = {}, host = 'reviews:9080') => httpGet(forwardPort, path, { host, ...headers });

async function apply(yaml: string) {
  const r = await api.rest('POST', '/api/v1/apply', { yaml });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

async function remove(kind: string, name: string) {
  const r = await api.rest('DELETE', `/api/v1/resources/${kind}/default/${name}`);
  assert.ok(r.status === 200 || r.status === 404, JSON.stringify(r.body));
}

const SUBSETS = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
  const v1 = await app('reviews-v1', reviews('v1'));
  const v2 = await app('reviews-v2', reviews('v2'));
  const good = await app('ratings-good', (_req, res) => res.end('ratings-good'));
  const bad = await app('ratings-bad', (_req, res) => {
    res.statusCode = 500;
    res.end('ratings-bad');
  });
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  for (const svc of ['reviews', 'ratings']) ok(await api.rest('PUT', `/api/v1/registry/services/default/${svc}`, { namespace: 'default', name: svc, ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  const workload = (name: string, labels: Record<string, string>, port: number) => api.rest('PUT', `/api/v1/registry/workloads/default/${name}`, { namespace: 'default', name, labels, addresses: ['127.0.0.1'], ports: { '9080': port } });
  ok(await workload('reviews-v1', { app: 'reviews', version: 'v1' }, v1));
  ok(await workload('reviews-v2', { app: 'reviews', version: 'v2' }, v2));
  ok(await workload('ratings-good', { app: 'ratings', version: 'v1' }, good));
  ok(await workload('ratings-bad', { app: 'ratings', version: 'v1' }, bad));
  ok(await workload('productpage-v1', { app: 'productpage', version: 'v1' }, await freePort()));
  await apply(SUBSETS);
  proxy = await startSidecar({
    id: 'productpage-v1.default',
    metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', OUTBOUND_PORT: forwardPort },
    xdsAddress: api.xdsAddress!,
    adminPort,
    waitForListener: `127.0.0.1_${forwardPort}`,
  });
});

after(async () => {
  await proxy?.stop();
  for (const s of servers) s.close();
  await api?.close();
});

/** Waits until `check` holds for the policy just applied (the proxy follows within a moment). */
const effective = (check: () => Promise<boolean>, what: string) => eventually(check, 10_000, what);

describe('Istio traffic-management tasks through the control plane and a sidecar', { timeout: 120_000 }, () => {
  test('fault injection: HTTP abort for end-user jason only (Istio: "Injecting an HTTP abort fault")', async () => {
    await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    fault: { abort: { percentage: { value: 100.0 }, httpStatus: 500 } }
    route: [{ destination: { host: reviews, subset: v1 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
    await effective(async () => (await call('/', { 'end-user': 'jason' })).status === 500, 'abort for jason');
    for (let i = 0; i < 10; i++) {
      const jason = await call('/', { 'end-user': 'jason' });
      assert.equal(jason.status, 500);
      assert.equal(jason.body, 'fault filter abort');
      const other = await call('/', { 'end-user': 'alice' });
      assert.equal(other.status, 200);
      assert.equal(other.body, 'reviews-v1');
    }
  });

  test('fault injection: a delay for jason; a caller giving up at 0.5 s and retrying once fails after ~1 s, others are unaffected', async () => {
    await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    fault: { delay: { percentage: { value: 100.0 }, fixedDelay: 1s } }
    route: [{ destination: { host: reviews, subset: v1 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
    const giveUp = (headers: Record<string, string>) => new Promise<'timeout' | number>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: forwardPort, path: '/', headers: { host: 'reviews:9080', ...headers }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.setTimeout(500, () => {
        req.destroy();
        resolve('timeout');
      });
      req.on('error', () => resolve('timeout'));
      req.end();
    });
    await effective(async () => (await giveUp({ 'end-user': 'jason' })) === 'timeout', 'delay for jason');
    const t0 = performance.now();
    const outcomes = [await giveUp({ 'end-user': 'jason' }), await giveUp({ 'end-user': 'jason' })];
    const ms = performance.now() - t0;
    assert.deepEqual(outcomes, ['timeout', 'timeout'], 'both tries time out');
    assert.ok(ms >= 950 && ms < 2500, `the caller failed after ${ms.toFixed(0)} ms`);
    const t1 = performance.now();
    assert.equal(await giveUp({ 'end-user': 'alice' }), 200);
    assert.ok(performance.now() - t1 < 450, 'others are not delayed');
  });

  test('request timeout: reviews answering in 2 s with a 0.5 s VirtualService timeout gives 504 in ~0.5 s (Istio: "Request Timeouts")', async () => {
    await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: v2 } }]
    timeout: 0.5s
`);
    await effective(async () => (await call('/')).body === 'reviews-v2', 'route to v2');
    const t0 = performance.now();
    const r = await call('/slow');
    const ms = performance.now() - t0;
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.ok(ms >= 450 && ms < 1500, `504 after ${ms.toFixed(0)} ms`);
  });

  test('retries: an endpoint failing every other request with 503 — every call succeeds with attempts: 2, retryOn: 5xx', async () => {
    await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: v1 } }]
    retries: { attempts: 2, retryOn: 5xx }
`);
    await effective(async () => (await call('/')).body === 'reviews-v1', 'route to v1');
    const before = seen.get('reviews-v1')!.hosts.length;
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await call('/flaky')).status);
    assert.deepEqual(statuses, Array(20).fill(200));
    assert.equal(seen.get('reviews-v1')!.hosts.length - before, 40, 'each call took two upstream attempts');
  });

  test('mirroring: every request to v1 is copied to v2 with a -shadow host; the caller sees v1 only (Istio: "Mirroring")', async () => {
    await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: v1 }, weight: 100 }]
    mirror: { host: reviews, subset: v2 }
    mirrorPercentage: { value: 100.0 }
`);
    await effective(async () => {
      const n = seen.get('reviews-v2')!.hosts.length;
      await call('/');
      await new Promise((r) => setTimeout(r, 50));
      return seen.get('reviews-v2')!.hosts.length > n;
    }, 'mirror active');
    const v2 = seen.get('reviews-v2')!;
    const start = v2.hosts.length;
    for (let i = 0; i < 10; i++) assert.equal((await call('/')).body, 'reviews-v1');
    await eventually(() => v2.hosts.length - start === 10, 3000, 'the mirror got all 10');
    assert.deepEqual(new Set(v2.hosts.slice(start)), new Set(['reviews-shadow:9080']));
  });

  test('circuit breaking: maxConnections 1, http1MaxPendingRequests 1, maxRequestsPerConnection 1 — concurrent callers get immediate 503 UO, counted (Istio: "Circuit Breaking")', async () => {
    await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 1 }
      http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 }
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`);
    const cluster = 'outbound|9080|v1|reviews.default.svc.cluster.local';
    await effective(async () => (await httpGet(adminPort, '/clusters')).body.includes(`${cluster}::default_priority::max_connections::1\n`), 'breaker limits on the proxy');
    const results: { status: number; overloaded: boolean }[] = [];
    await Promise.all(Array.from({ length: 3 }, async () => {
      for (let i = 0; i < 10; i++) {
        const r = await call('/hold');
        results.push({ status: r.status, overloaded: r.headers['x-envoy-overloaded'] === 'true' });
      }
    }));
    const overflowed = results.filter((r) => r.status === 503 && r.overloaded).length;
    const ok = results.filter((r) => r.status === 200).length;
    assert.equal(ok + overflowed, 30, 'every call is either served or refused as overflow');
    assert.ok(overflowed > 0, 'three concurrent callers against one connection and one pending slot overflow');
    const stats = (await httpGet(adminPort, '/stats')).body;
    assert.match(stats, new RegExp(`^cluster\\.${cluster.replace(/[|.]/g, '\\$&')}\\.upstream_rq_pending_overflow: ${overflowed}$`, 'm'));
    console.log(`circuit breaking, 3 callers x 10: ${ok} served, ${overflowed} overflowed (${Math.round((100 * overflowed) / 30)}%)`);
    await apply(SUBSETS);
  });

  test('outlier detection: of two ratings endpoints one returns 500s; after consecutive errors it is ejected and every call succeeds', async () => {
    await apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: default }
spec:
  host: ratings
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection: { consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
`);
    const cluster = 'outbound|9080||ratings.default.svc.cluster.local';
    await effective(async () => (await httpGet(adminPort, '/config_dump')).body.includes('"consecutive_5xx": 2'), 'outlier detection on the proxy');
    let failures = 0;
    for (let i = 0; i < 8; i++) if ((await call('/', {}, 'ratings:9080')).status === 500) failures++;
    assert.equal(failures, 2, 'exactly consecutive5xxErrors failures before the ejection');
    assert.match((await httpGet(adminPort, '/clusters')).body, new RegExp(`^${cluster.replace(/[|.]/g, '\\$&')}::127\\.0\\.0\\.1:\\d+::health_flags::/failed_outlier_check$`, 'm'));
    const bodies: string[] = [];
    for (let i = 0; i < 20; i++) bodies.push((await call('/', {}, 'ratings:9080')).body);
    assert.deepEqual(new Set(bodies), new Set(['ratings-good']));
    await remove('DestinationRule', 'ratings');
  });
});
