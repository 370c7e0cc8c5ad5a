import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { freePort, httpGet, joinToken, registerWorkload, type Sidecar, startApp, startSidecar, strictMtls } from './lib/sidecar.ts';

// Mutual TLS between two real sidecars: a control plane compiling mTLS (TERN_MTLS / Config.mtls),
// each `tern-proxy` with its own join token and workload certificate, STRICT PeerAuthentication in
// the server's namespace. productpage's sidecar originates mTLS (auto-mTLS: the endpoint's
// tlsMode=istio) to reviews' sidecar, which terminates it; plaintext to reviews' inbound port is refused.

let api: TestApi;
let app: http.Server;
const sidecars: Sidecar[] = [];
const upstreamPort = await freePort();
const reviewsInboundPort = await freePort();
const admin = { productpage: await freePort(), reviews: await freePort() };
const seen: string[] = [];

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, mtls: true }, undefined, { xds: true });
  const started = await startApp((req, res) => {
    seen.push(req.url ?? '');
    req.resume();
    res.end('reviews');
  });
  app = started.server;
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  await registerWorkload(api, { name: 'reviews-v1', serviceAccount: 'reviews', labels: { app: 'reviews', version: 'v1' }, ports: { '9080': reviewsInboundPort } });
  await registerWorkload(api, { name: 'productpage-v1', serviceAccount: 'productpage', labels: { app: 'productpage', version: 'v1' } });
  await strictMtls(api);
  const [reviewsToken, productpageToken] = [await joinToken(api, 'default', 'reviews'), await joinToken(api, 'default', 'productpage')];
  const [reviews, productpage] = await Promise.all([
    startSidecar({
      id: 'reviews-v1.default',
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'reviews', WORKLOAD_NAME: 'reviews-v1', LABELS: { app: 'reviews', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': started.port } },
      xdsAddress: api.xdsAddress!,
      adminPort: admin.reviews,
      waitForListener: `127.0.0.1_${reviewsInboundPort}`,
      args: ['--drain-seconds', '0'],
      env: { TERN_JOIN_TOKEN: reviewsToken },
    }),
    startSidecar({
      id: 'productpage-v1.default',
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'productpage', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, OUTBOUND_PORT: 0, UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: upstreamPort }] },
      xdsAddress: api.xdsAddress!,
      adminPort: admin.productpage,
      waitForListener: `127.0.0.1_${upstreamPort}`,
      args: ['--drain-seconds', '0'],
      env: { TERN_JOIN_TOKEN: productpageToken },
    }),
  ]);
  sidecars.push(reviews, productpage);
});

after(async () => {
  for (const s of sidecars) await s.stop();
  app?.closeAllConnections();
  app?.close();
  await api?.close();
});

test('productpage -> reviews through both sidecars over mutual TLS; plaintext to the STRICT inbound port is refused', async () => {
  // Both identities must be issued (and both configs converged) before the first request can pass.
  let last = '';
  await eventually(async () => {
    const r = await httpGet(upstreamPort, '/hello', { host: 'reviews:9080' }).catch((err: Error) => ({ status: 0, body: err.message }));
    last = `${r.status} ${r.body}`;
    return r.status === 200 && r.body === 'reviews';
  }, 20_000, 'productpage -> reviews over mTLS').catch(async (err: Error) => {
    const ssl = (await httpGet(admin.productpage, '/stats')).body.split('\n').filter((l) => l.includes('ssl.')).join('\n');
    throw new Error(`${err.message}; last response: ${last}; client ssl stats:\n${ssl}\nclient stderr:\n${sidecars[1]!.stderr().slice(-3000)}\nserver stderr:\n${sidecars[0]!.stderr().slice(-3000)}`);
  });
  assert.ok(seen.includes('/hello'));
  // The client sidecar originated TLS to the reviews endpoint (auto-mTLS) and verified its SAN.
  const stats = (await httpGet(admin.productpage, '/stats')).body;
  const handshakes = /^cluster\.outbound\|9080\|\|reviews[^:]*\.ssl\.handshake: (\d+)$/m.exec(stats);
  assert.ok(handshakes && Number(handshakes[1]) >= 1, stats.split('\n').filter((l) => l.includes('ssl.')).join('\n'));
  assert.match(stats, /^cluster\.outbound\|9080\|\|reviews[^:]*\.ssl\.fail_verify_san: 0$/m);

  // STRICT: a plaintext client straight at reviews' inbound port gets no chain (the connection closes).
  const before = seen.length;
  const direct = await httpGet(reviewsInboundPort, '/direct', { host: 'reviews:9080' }).then((r) => `status ${r.status}`, (err: Error) => `error ${err.message}`);
  assert.match(direct, /^error /, direct);
  assert.equal(seen.length, before, 'the app was not reached');
});
