import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { freePort, httpGet, joinToken, registerWorkload, type Sidecar, startApp, startSidecar } from './lib/sidecar.ts';

// mTLS in telemetry end to end: a control plane compiling mTLS, reviews-v1's sidecar (PERMISSIVE,
// its own certificate) in front of the app, productpage-v1's sidecar (its own certificate) calling
// it over auto-mTLS, and ratings-v1's sidecar in another namespace (no identity) whose
// DestinationRule turns TLS off. Known request counts must come out of the graph API with the
// right mTLS share, and reviews' own metrics must carry the verified principals.

let api: TestApi;
let app: http.Server;
const sidecars: Sidecar[] = [];
const ports = { productpage: await freePort(), ratings: await freePort(), reviewsInbound: await freePort() };
const admin = { productpage: await freePort(), ratings: await freePort(), reviews: await freePort() };

const agent = new http.Agent({ keepAlive: true, maxSockets: 5 });
function get(port: number, keepAlive = true): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/ok', headers: { host: 'reviews.default:9080' }, agent: keepAlive ? agent : false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, telemetryFlushMs: 100, mtls: true }, undefined, { xds: true });
  const started = await startApp((req, res) => {
    req.resume();
    res.end('ok');
  });
  app = started.server;
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  await registerWorkload(api, { name: 'reviews-v1', serviceAccount: 'reviews', labels: { app: 'reviews', version: 'v1' }, ports: { '9080': ports.reviewsInbound } });
  await registerWorkload(api, { name: 'productpage-v1', serviceAccount: 'productpage', labels: { app: 'productpage', version: 'v1' } });
  await registerWorkload(api, { namespace: 'other', name: 'ratings-v1', serviceAccount: 'ratings', labels: { app: 'ratings', version: 'v1' } });
  // No retries: every request is one attempt at the destination. ratings' namespace turns TLS off
  // towards reviews with a DestinationRule only it sees (exported to its own namespace: exported
  // everywhere, it would be productpage's rule too); reviews stays PERMISSIVE.
  ok(await api.rest('POST', '/api/v1/apply', {
    yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route: [{ destination: { host: reviews.default.svc.cluster.local } }]
    retries: { attempts: 0 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-plain, namespace: other }
spec:
  host: reviews.default.svc.cluster.local
  exportTo: [.]
  trafficPolicy: { tls: { mode: DISABLE } }
`,
  }));
  const [reviewsToken, productpageToken] = [await joinToken(api, 'default', 'reviews'), await joinToken(api, 'default', 'productpage')];
  const common = { xdsAddress: api.xdsAddress!, args: ['--drain-seconds', '0'] };
  sidecars.push(...(await Promise.all([
    startSidecar({
      ...common, id: 'reviews-v1.default', adminPort: admin.reviews, waitForListener: `127.0.0.1_${ports.reviewsInbound}`,
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'reviews', WORKLOAD_NAME: 'reviews-v1', LABELS: { app: 'reviews', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': started.port } },
      env: { TERN_JOIN_TOKEN: reviewsToken, TERN_TELEMETRY_INTERVAL_MS: '200' },
    }),
    startSidecar({
      ...common, id: 'productpage-v1.default', adminPort: admin.productpage, waitForListener: `127.0.0.1_${ports.productpage}`,
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'productpage', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, OUTBOUND_PORT: 0, UPSTREAMS: [{ host: 'reviews.default.svc.cluster.local', port: 9080, localPort: ports.productpage }] },
      env: { TERN_JOIN_TOKEN: productpageToken, TERN_TELEMETRY_INTERVAL_MS: '200' },
    }),
    startSidecar({
      ...common, id: 'ratings-v1.other', adminPort: admin.ratings, waitForListener: `127.0.0.1_${ports.ratings}`,
      metadata: { NAMESPACE: 'other', SERVICE_ACCOUNT: 'ratings', WORKLOAD_NAME: 'ratings-v1', LABELS: { app: 'ratings', version: 'v1' }, OUTBOUND_PORT: 0, UPSTREAMS: [{ host: 'reviews.default.svc.cluster.local', port: 9080, localPort: ports.ratings }] },
      env: { TERN_TELEMETRY_INTERVAL_MS: '200' },
    }),
  ])));
});

after(async () => {
  agent.destroy();
  for (const s of sidecars) await s.stop();
  app?.closeAllConnections();
  app?.close();
  await api?.close();
});

/** Requests until one succeeds (certificates issued, configs converged); returns how many reached reviews. */
async function warmUp(port: number, what: string): Promise<number> {
  let ok = 0;
  let last: unknown;
  await eventually(async () => {
    last = await get(port, false).catch((err: Error) => err.message);
    if (last === 200) ok++;
    return ok > 0;
  }, 20_000, what).catch(async (err: Error) => {
    const clusters = (await httpGet(admin.productpage, '/clusters')).body.split('\n').filter((l) => l.includes('reviews')).join('\n');
    const stats = clusters + '\n' + (await httpGet(admin.productpage, '/stats')).body.split('\n').filter((l) => /rq_|cx_|ssl/.test(l) && !l.endsWith(': 0')).join('\n');
    throw new Error(`${err.message}; last ${String(last)}\n${stats}\n${sidecars.map((s) => s.stderr().slice(-1500)).join('\n---\n')}`);
  });
  return ok;
}

interface Edge { source: string; target: string; requests: number; mtlsShare: number }

async function edges(): Promise<Edge[]> {
  const r = await api.rest('GET', '/api/v1/graph?window=5m&granularity=workload');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.edges as Edge[];
}

async function send(port: number, n: number): Promise<void> {
  const codes = await Promise.all(Array.from({ length: n }, () => get(port)));
  assert.deepEqual(codes, Array.from({ length: n }, () => 200));
}

test('mTLS and plaintext callers of one server: the graph shows each edge with its mTLS share, the server labels verified principals', async () => {
  const warmA = await warmUp(ports.productpage, 'productpage -> reviews over mTLS');
  const warmB = await warmUp(ports.ratings, 'ratings -> reviews in plain text');
  await send(ports.productpage, 40);
  await send(ports.ratings, 10);

  const A = 'workload:default:productpage-v1';
  const B = 'workload:other:ratings-v1';
  const S = 'workload:default:reviews-v1';
  let seen: Edge[] = [];
  const [a, b] = await eventually(async () => {
    seen = await edges();
    const a = seen.find((e) => e.source === A && e.target === S);
    const b = seen.find((e) => e.source === B && e.target === S);
    return a?.requests === warmA + 40 && b?.requests === warmB + 10 ? [a, b] as const : undefined;
  }, 10_000, 'the graph shows every request').catch((err: Error) => {
    throw new Error(`${err.message}; warm-ups ${warmA}/${warmB}; edges ${JSON.stringify(seen)}`);
  });
  const serverMetrics = async () => (await httpGet(admin.reviews, '/stats/prometheus')).body.split('\n').filter((l) => l.startsWith('istio_requests_total{')).join('\n');
  assert.equal(a.mtlsShare, 1, `productpage -> reviews is all mutual TLS; reviews reports:\n${await serverMetrics()}`);
  assert.equal(b.mtlsShare, 0, 'ratings -> reviews is all plain text');

  // The destination reports the policy and both principals from the connection's certificates.
  const server = (await httpGet(admin.reviews, '/stats/prometheus')).body;
  const line = (from: string) => server.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes(`source_workload="${from}"`));
  const mtlsLines = line('productpage-v1');
  assert.ok(mtlsLines.length > 0, server);
  for (const l of mtlsLines) {
    assert.match(l, /source_principal="spiffe:\/\/[^/"]+\/ns\/default\/sa\/productpage"/);
    assert.match(l, /destination_principal="spiffe:\/\/[^/"]+\/ns\/default\/sa\/reviews"/);
    assert.match(l, /connection_security_policy="mutual_tls"/);
  }
  assert.equal(mtlsLines.reduce((n, l) => n + Number(l.split(' ').pop()), 0), warmA + 40);
  const plainLines = line('ratings-v1');
  assert.ok(plainLines.length > 0, server);
  for (const l of plainLines) {
    assert.match(l, /source_principal="unknown"/);
    assert.match(l, /destination_principal="unknown"/);
    assert.match(l, /connection_security_policy="none"/);
  }

  // The source side: Istio reports the policy as unknown there, the principals from the
  // certificates. (Only answered requests: a warm-up attempt that found no connection has no peer.)
  const client = (await httpGet(admin.productpage, '/stats/prometheus')).body;
  const answered = (l: string) => l.startsWith('istio_requests_total{') && l.includes('reporter="source"') && l.includes('destination_workload="reviews-v1"') && l.includes('response_code="200"');
  const out = client.split('\n').filter(answered);
  assert.ok(out.length > 0, client);
  for (const l of out) {
    assert.match(l, /source_principal="spiffe:\/\/[^/"]+\/ns\/default\/sa\/productpage"/);
    assert.match(l, /destination_principal="spiffe:\/\/[^/"]+\/ns\/default\/sa\/reviews"/);
    assert.match(l, /connection_security_policy="unknown"/);
  }
  // Some of those connections resumed a TLS session (no peer certificate to read there: the
  // connector remembers whom the full handshake verified).
  const reused = /^cluster\.outbound\|9080\|\|reviews\.default\.svc\.cluster\.local\.ssl\.session_reused: (\d+)$/m.exec((await httpGet(admin.productpage, '/stats')).body);
  assert.ok(reused && Number(reused[1]) > 0, `resumed sessions: ${reused?.[1]}`);
  const plainClient = (await httpGet(admin.ratings, '/stats/prometheus')).body;
  const outB = plainClient.split('\n').filter(answered);
  assert.ok(outB.length > 0, plainClient);
  for (const l of outB) assert.match(l, /source_principal="unknown",[^}]*destination_principal="unknown"/);
});
