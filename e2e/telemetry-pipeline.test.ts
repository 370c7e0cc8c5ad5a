import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { TELEMETRY_DURATION_BOUNDS, type JsonObject } from '@tern/xds';
import { freePort, startApp, startSidecar as spawnSidecar, type Sidecar } from './lib/sidecar.ts';

// The telemetry pipeline end to end: two real `tern-proxy` processes (productpage-v1 calling
// reviews-v1 through its upstream port; reviews-v1's sidecar in front of the app), pushing their
// counters over gRPC to a real control plane every 200 ms. A known traffic pattern must come out
// of the graph API exactly; a sidecar restart mid-window must neither lose nor double-count.

let api: TestApi;
let appServer: http.Server;

const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
function get(port: number, pathname: string, keepAlive = true): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, headers: { host: 'reviews:9080' }, agent: keepAlive ? agent : false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const upstreamPort = await freePort();
const reviewsInboundPort = await freePort();
const admin = { productpage: await freePort(), reviews: await freePort() };

const sidecars = new Map<string, Sidecar>();

/** A sidecar reporting telemetry every 200 ms; ready once `listener` (from the control plane) is bound. */
async function startSidecar(name: 'productpage' | 'reviews', metadata: JsonObject, adminPort: number, listener: string): Promise<void> {
  sidecars.set(name, await spawnSidecar({
    id: `${name}-v1.default`, metadata, xdsAddress: api.xdsAddress!, adminPort, waitForListener: listener,
    args: ['--drain-seconds', '0'], env: { TERN_TELEMETRY_INTERVAL_MS: '200' },
  }));
}

async function stopSidecar(name: string): Promise<void> {
  await sidecars.get(name)?.stop();
}

const reviewsMetadata = (): JsonObject => ({ NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-v1', LABELS: { app: 'reviews', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': appPort } });
let appPort = 0;

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, telemetryFlushMs: 100 }, undefined, { xds: true });
  ({ server: appServer, port: appPort } = await startApp((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const ms = Number(u.searchParams.get('ms') ?? 0);
    const status = u.pathname === '/fail' ? 503 : 200;
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'failed');
    }, ms);
  }));
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, addresses: ['127.0.0.1'], ports: { '9080': reviewsInboundPort } }));
  // Istio's default retry policy retries 503s: every attempt reaches the destination and counts
  // there. The pattern wants one attempt per request.
  ok(await api.rest('POST', '/api/v1/apply', {
    yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews } }]
    retries: { attempts: 0 }
`,
  }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/productpage-v1', { namespace: 'default', name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, addresses: ['127.0.0.1'] }));
  await Promise.all([
    startSidecar('reviews', reviewsMetadata(), admin.reviews, `127.0.0.1_${reviewsInboundPort}`),
    startSidecar(
      'productpage',
      {
        NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, OUTBOUND_PORT: 0,
        UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: upstreamPort }],
      },
      admin.productpage,
      `127.0.0.1_${upstreamPort}`,
    ),
  ]);
});

after(async () => {
  agent.destroy();
  for (const name of sidecars.keys()) await stopSidecar(name);
  appServer?.closeAllConnections();
  appServer?.close();
  await api?.close();
});

/** Requests until one succeeds end to end (config converged on both sidecars); returns how many succeeded (all reached reviews' sidecar). */
async function warmUp(): Promise<number> {
  let ok = 0;
  let last = '';
  await eventually(async () => {
    const r = await get(upstreamPort, '/warm', false).catch((err: Error) => ({ status: 0, body: err.message }));
    if (r.status === 200 && r.body === 'ok') ok++;
    else last = `${r.status} ${r.body.slice(0, 200)}`;
    return ok > 0;
  }, 20_000, 'productpage -> reviews through both sidecars').catch(async (err: Error) => {
    // Say why: the last answer, and what each sidecar's listeners and clusters look like.
    const state = await Promise.all(
      (['productpage', 'reviews'] as const).map(async (n) => `${n}: ${await fetch(`http://127.0.0.1:${admin[n]}/clusters`).then((r) => r.text(), (e: Error) => e.message).then((t) => t.slice(0, 600))}`),
    );
    throw new Error(`${err.message}; last answer: ${last}\n${state.join('\n')}`);
  });
  return ok;
}

interface Edge { source: string; target: string; requests: number; errors: number; errorPercent: number; p50: number; p95: number; p99: number; mtlsShare: number }

async function reviewsEdge(): Promise<Edge | undefined> {
  const r = await api.rest('GET', '/api/v1/graph?window=15m');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body.edges as Edge[]).find((e) => e.source === 'workload:default:productpage-v1' && e.target === 'workload:default:reviews-v1');
}

/** Status counts, and each request's latency as the client saw it (ms). */
async function pattern(list: string[], concurrency = 20): Promise<{ codes: Map<number, number>; latencies: number[] }> {
  const codes = new Map<number, number>();
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < list.length) {
        const p = list[next++]!;
        const started = performance.now();
        const r = await get(upstreamPort, p);
        latencies.push(performance.now() - started);
        codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
      }
    }),
  );
  return { codes, latencies };
}

/**
 * The upper bound of the histogram bucket holding the client's q-quantile: a sidecar times each
 * request within the client's time, so the graph's estimate (interpolated inside the bucket of the
 * sidecars' own quantile) cannot lie above it, however loaded the machine is.
 */
function bucketCeiling(latencies: number[], q: number): number {
  const sorted = [...latencies].sort((a, b) => a - b);
  const v = sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return TELEMETRY_DURATION_BOUNDS.find((b) => v <= b) ?? Infinity;
}

test('600 requests (6 failures, 30/120 ms latencies) through real sidecars come out of the graph exactly; a sidecar restart loses and doubles nothing', async () => {
  const warm1 = await warmUp();
  // 396 fast OK, 6 fast 503s, 198 slow OK, interleaved.
  const list: string[] = [];
  for (let i = 0; i < 600; i++) list.push(i % 100 === 0 ? '/fail?ms=30' : i % 3 === 2 ? '/ok?ms=120' : '/ok?ms=30');
  const { codes, latencies } = await pattern(list);
  assert.deepEqual(Object.fromEntries(codes), { 200: 594, 503: 6 });

  let seen: unknown;
  const e = await eventually(async () => {
    const x = await reviewsEdge();
    seen = x ?? (await api.rest('GET', '/api/v1/graph?window=15m')).body;
    return x && x.requests === warm1 + 600 ? x : undefined;
  }, 10_000, 'the graph shows every request').catch((err) => {
    throw new Error(`${(err as Error).message}; warm-up ${warm1}; last seen ${JSON.stringify(seen)}`);
  });
  assert.equal(e.errors, 6);
  assert.ok(Math.abs(e.errorPercent - (600 / (600 + warm1))) < 1e-9, `error % ${e.errorPercent}`);
  // Lower bounds from the app's own delays (2/3 take 30 ms, 1/3 120 ms); upper bounds from what the
  // client saw (the 25-50 and 100-250 ms buckets on a quiet machine).
  const ceiling = { p50: bucketCeiling(latencies, 0.5), p95: bucketCeiling(latencies, 0.95), p99: bucketCeiling(latencies, 0.99) };
  assert.ok(e.p50 > 25 && e.p50 <= ceiling.p50, `p50 ${e.p50} above 25 ms and within the client's bucket (≤ ${ceiling.p50})`);
  assert.ok(e.p95 > 100 && e.p95 <= ceiling.p95, `p95 ${e.p95} above 100 ms and within the client's bucket (≤ ${ceiling.p95})`);
  assert.ok(e.p99 > 100 && e.p99 <= ceiling.p99, `p99 ${e.p99} above 100 ms and within the client's bucket (≤ ${ceiling.p99})`);
  assert.equal(e.mtlsShare, 0, 'plaintext until mTLS lands');

  // The inbound sidecar labels the destination as Istio does.
  const stats = await get(admin.reviews, '/stats/prometheus', false);
  assert.match(stats.body, /reporter="destination",source_workload="productpage-v1",[^}]*destination_app="reviews",destination_version="v1",destination_service="reviews\.default\.svc\.cluster\.local",destination_service_name="reviews",destination_service_namespace="default"/);

  // Restart the destination sidecar mid-window: a new process, a new boot id, counters from zero.
  await stopSidecar('reviews');
  await startSidecar('reviews', reviewsMetadata(), admin.reviews, `127.0.0.1_${reviewsInboundPort}`);
  const warm2 = await warmUp();
  const { codes: codes2 } = await pattern(Array.from({ length: 100 }, () => '/ok?ms=1'));
  assert.deepEqual(Object.fromEntries(codes2), { 200: 100 });
  const total = warm1 + 600 + warm2 + 100;
  const after = await eventually(async () => {
    const x = await reviewsEdge();
    return x && x.requests >= total ? x : undefined;
  }, 10_000, 'the graph shows the requests after the restart');
  assert.equal(after.requests, total, 'nothing counted twice');
  assert.equal(after.errors, 6);
  // And it stays exact over a few more reports.
  await new Promise((r) => setTimeout(r, 700));
  assert.equal((await reviewsEdge())?.requests, total);

  // Versioned-app and service views of the same traffic.
  const appGraph = await api.rest('GET', '/api/v1/graph?window=15m&granularity=app&namespace=default');
  assert.ok(appGraph.body.edges.some((x: Edge) => x.source === 'app:default:productpage:v1' && x.target === 'app:default:reviews:v1' && x.requests === total));
  const reviewsNode = appGraph.body.nodes.find((n: { id: string }) => n.id === 'app:default:reviews:v1');
  assert.equal(reviewsNode.health, 'degraded');
});
