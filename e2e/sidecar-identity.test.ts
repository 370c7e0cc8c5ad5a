import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { freePort, httpGet, startApp, startSidecar, type Sidecar } from './lib/sidecar.ts';

// The sidecar's workload identity as a user runs it: a control plane with its CA, a join token
// created through the API, a real `tern-proxy` process started with it. The proxy makes its key,
// obtains a certificate for its SPIFFE ID, shows it on /certs, and rotates it (a 60 s certificate
// renewed at 5 % of its life here, to keep the test short) without disturbing open connections.

let api: TestApi;
const sidecars: Sidecar[] = [];
let app: http.Server;

/** The first test's single-use token, spent by then (the second test shows how that is reported). */
let usedToken = '';

const normSerial = (s: string) => s.toLowerCase().replace(/^0+/, '');

async function certs(adminPort: number): Promise<any> {
  const r = await httpGet(adminPort, '/certs');
  assert.equal(r.status, 200);
  return JSON.parse(r.body);
}

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
  const started = await startApp((req, res) => {
    req.resume();
    res.end('reviews');
  });
  app = started.server;
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, addresses: ['127.0.0.1'], ports: { '9080': started.port } }));
});

after(async () => {
  for (const s of sidecars) await s.stop();
  app?.close();
  await api?.close();
});

test('a sidecar obtains its workload certificate with a single-use join token, shows it on /certs and rotates it (with itself) under an open connection', async () => {
  const created = await api.rest('POST', '/api/v1/ca/join-tokens', { namespace: 'default', serviceAccount: 'productpage', maxUses: 1, ttlSeconds: 3600 });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  usedToken = created.body.token;
  const upstreamPort = await freePort();
  const adminPort = await freePort();
  const proxy = await startSidecar({
    id: 'productpage-v1.default',
    metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'productpage', WORKLOAD_NAME: 'productpage-v1', UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: upstreamPort }] },
    xdsAddress: api.xdsAddress!,
    adminPort,
    waitForListener: `127.0.0.1_${upstreamPort}`,
    env: { TERN_JOIN_TOKEN: created.body.token, TERN_IDENTITY_TTL_SECONDS: '60', TERN_IDENTITY_RENEW_FRACTION: '0.05' },
  });
  sidecars.push(proxy);

  let c: any;
  await eventually(async () => (c = await certs(adminPort)).identity.state === 'ready', 10_000, 'identity ready');
  assert.equal(c.identity.spiffe_id, 'spiffe://cluster.local/ns/default/sa/productpage');
  assert.deepEqual(c.certificates[0].cert_chain[0].subject_alt_names, [{ uri: 'spiffe://cluster.local/ns/default/sa/productpage' }]);
  assert.ok(Number(c.identity.seconds_until_expiration) <= 60);
  // The chain verifies against the control plane's trust bundle.
  const bundle = (await api.rest('GET', '/api/v1/ca')).body;
  const roots = (bundle.roots as string[]).map((p) => new X509Certificate(p));
  const chain = (c.identity.cert_chain_pem as string[]).map((p) => new X509Certificate(p));
  assert.ok(chain[0]!.verify(chain[1]!.publicKey));
  assert.ok(roots.some((r) => r.fingerprint256 === chain.at(-1)!.fingerprint256 && chain.at(-2)!.verify(r.publicKey)), 'the chain ends in a root of GET /api/v1/ca');
  assert.deepEqual(c.certificates[0].ca_cert.map((x: any) => x.sha256_fingerprint), roots.map((r) => r.fingerprint256));
  assert.doesNotMatch(JSON.stringify(c), /PRIVATE KEY/);
  // The CA recorded it.
  const issued = (await api.rest('GET', '/api/v1/ca/certificates?namespace=default')).body.certificates as { serial: string; spiffeId: string; credential: string }[];
  const firstSerial = normSerial(c.identity.serial_number);
  assert.ok(issued.some((i) => normSerial(i.serial) === firstSerial && i.spiffeId === c.identity.spiffe_id && i.credential.startsWith('join-token:')), JSON.stringify(issued));
  const metrics = await httpGet(adminPort, '/stats/prometheus');
  assert.match(metrics.body, /^tern_identity_cert_expiry_seconds [1-6]?\d$/m);
  assert.match((await httpGet(adminPort, '/stats')).body, /^server\.days_until_first_cert_expiring: 0$/m);

  // A keep-alive connection through the proxy, opened before the rotation.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const viaProxy = () => new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: upstreamPort, path: '/', agent, headers: { host: 'reviews:9080' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, socket: res.socket }));
    });
    req.on('error', reject);
    req.end();
  });
  const before = await viaProxy();
  assert.equal(before.status, 200);
  await eventually(async () => normSerial((c = await certs(adminPort)).identity.serial_number ?? '') !== firstSerial, 10_000, 'rotated to a new serial');
  assert.ok(c.identity.certificates_issued >= 2);
  // The single-use token was spent on the first certificate: the renewal authenticated with it.
  assert.equal(c.identity.last_credential, 'certificate');
  const renewed = (await api.rest('GET', '/api/v1/ca/certificates?namespace=default&serviceAccount=productpage')).body.certificates as { serial: string; credential: string }[];
  assert.equal(renewed.find((i) => normSerial(i.serial) === normSerial(c.identity.serial_number))?.credential.replace(/^svid:[0-9a-f]+ /, 'svid:… '), `svid:… via join-token:${created.body.info.id}`);
  assert.equal(c.identity.consecutive_failures, 0);
  // Certificate expiry per proxy: the proxy list shows the newest certificate issued to this node id.
  let shown: any;
  await eventually(async () => {
    shown = (await api.rest('GET', `/api/v1/proxies/${encodeURIComponent('productpage-v1.default')}`)).body;
    return normSerial(shown.certificate?.serial ?? '') === normSerial(c.identity.serial_number);
  }, 10_000, 'the proxy shows its current certificate');
  assert.equal(shown.certificate.spiffeId, 'spiffe://cluster.local/ns/default/sa/productpage');
  assert.equal(new Date(shown.certificate.notAfter).getTime(), new Date(c.identity.expiration_time).getTime());
  const listed = (await api.rest('GET', '/api/v1/proxies?namespace=default')).body.proxies as { id: string; certificate: { serial: string } | null }[];
  assert.equal(normSerial(listed.find((p) => p.id === 'productpage-v1.default')?.certificate?.serial ?? ''), normSerial(shown.certificate.serial));
  const afterRotation = await viaProxy();
  assert.equal(afterRotation.status, 200);
  assert.equal(afterRotation.socket, before.socket, 'the same connection');
  agent.destroy();
});

test('a wrong or used-up join token: the proxy says why on /certs and in its log, and keeps running without an identity', async () => {
  const upstreamPort = await freePort();
  const adminPort = await freePort();
  const usedAdmin = await freePort();
  const usedUpstream = await freePort();
  const start = (id: string, sa: string, admin: number, upstream: number, token: string) => startSidecar({
    id: `${id}.default`,
    metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: sa, WORKLOAD_NAME: id, UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: upstream }] },
    xdsAddress: api.xdsAddress!,
    adminPort: admin,
    waitForListener: `127.0.0.1_${upstream}`,
    env: { TERN_JOIN_TOKEN: token },
  });
  assert.ok(usedToken, 'the first test ran');
  const [proxy, used] = await Promise.all([start('ratings-v1', 'ratings', adminPort, upstreamPort, 'tern_join_not-a-real-token'), start('productpage-v2', 'productpage', usedAdmin, usedUpstream, usedToken)]);
  sidecars.push(proxy, used);
  let u: any;
  await eventually(async () => (u = await certs(usedAdmin)).identity.state === 'error', 10_000, 'used token error');
  assert.match(u.identity.last_error.message, /UNAUTHENTICATED: join token refused: token tern_join_.{6}… is used-up/);
  assert.equal(u.identity.spiffe_id, null);
  let c: any;
  await eventually(async () => (c = await certs(adminPort)).identity.state === 'error', 10_000, 'identity error');
  assert.match(c.identity.last_error.message, /refused CreateCertificate \(join token\): UNAUTHENTICATED: join token refused: unknown token/);
  assert.equal(c.identity.spiffe_id, null);
  assert.deepEqual(c.certificates[0].cert_chain, []);
  await eventually(async () => proxy.stderr().includes('cannot obtain a workload certificate'), 5000, 'logged');
  assert.doesNotMatch(proxy.stderr(), /tern_join_not-a-real-token/, 'the token is never logged');
  assert.equal((await httpGet(adminPort, '/ready')).status, 200);
  assert.equal((await httpGet(upstreamPort, '/', { host: 'reviews:9080' })).status, 200, 'traffic still flows');
  assert.match((await httpGet(adminPort, '/stats/prometheus')).body, /^tern_identity_cert_expiry_seconds 0$/m);
});
