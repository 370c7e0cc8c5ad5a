import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { x509 } from '../apps/api/src/ca/x509.ts';
import { testRoot, testSvid, type TestCa as Ca, type TestLeaf as Leaf } from './lib/pki.ts';
import { freePort, httpGet, joinToken, registerWorkload, type Sidecar, startApp, startSidecar, strictMtls } from './lib/sidecar.ts';

// What a STRICT mTLS sidecar refuses, end to end. The control plane issues from a root CA this test
// made (TERN_CA_CERT_FILE / TERN_CA_KEY_FILE: "bring your own CA"), so the test can mint client
// certificates of its own: one from another CA, an expired one from the mesh root, none at all,
// plaintext — each refused by reviews' inbound before its app sees anything — and a valid one
// (the control, so the refusals are not just a broken listener). Then the other direction:
// productpage's sidecar refuses a reviews server presenting another service account's identity
// (SAN mismatch: 503 UF, ssl.fail_verify_san), and passes once the right identity is back.

const TD = 'cluster.local';
const spiffe = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;

// ---- a small CA (WebCrypto + @peculiar/x509), for the control plane's root and the test's own certificates



// ---- a raw client at the inbound port

interface Attempt {
  /** The TLS handshake completed on the client's side (TLS 1.3: before the server has judged the client certificate). */
  secure: boolean;
  /** The error code the connection ended with (undefined: it ended cleanly). */
  error: string | undefined;
  /** Everything the server sent back. */
  response: string;
}

const REQUEST = (p: string) => `GET ${p} HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n\r\n`;

/** One HTTP/1.1 request over TLS (ALPN http/1.1, the server verified against the mesh root) or plaintext. */
function attempt(port: number, p: string, o: { root?: string; client?: Leaf; plaintext?: boolean }): Promise<Attempt> {
  return new Promise((resolve) => {
    const a: Attempt = { secure: false, error: undefined, response: '' };
    const socket = o.plaintext
      ? net.connect({ host: '127.0.0.1', port }, () => socket.write(REQUEST(p)))
      : tls.connect({
          host: '127.0.0.1',
          port,
          ALPNProtocols: ['http/1.1'],
          ca: o.root,
          rejectUnauthorized: true,
          // SPIFFE certificates carry a URI SAN only: the identity is checked by the caller.
          checkServerIdentity: () => undefined,
          ...(o.client ? { cert: o.client.certPem, key: o.client.keyPem } : {}),
        });
    if (socket instanceof tls.TLSSocket) {
      socket.once('secureConnect', () => {
        a.secure = true;
        socket.write(REQUEST(p));
      });
    }
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('no answer within 5 s'), { code: 'TEST_TIMEOUT' })), 5000);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (a.response += d));
    socket.on('error', (err: NodeJS.ErrnoException) => (a.error ??= err.code ?? err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(a);
    });
  });
}

// ---- the mesh

let api: TestApi;
let app: http.Server;
let dir: string;
let meshCa: Ca;
let reviews: Sidecar | undefined;
let productpage: Sidecar | undefined;
const reached: string[] = [];
const logFile = () => path.join(dir, 'productpage-access.log');
// Ports are taken just before a sidecar binds them (other suites on the machine pick free ports too).
const ports = { reviewsInbound: 0, productpageUpstream: 0, app: 0 };
const admin = { reviews: 0, productpage: 0 };

async function startReviews(serviceAccount: string, token: string): Promise<Sidecar> {
  admin.reviews = await freePort();
  return startSidecar({
    id: 'reviews-v1.default',
    metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: serviceAccount, WORKLOAD_NAME: 'reviews-v1', LABELS: { app: 'reviews', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': ports.app } },
    xdsAddress: api.xdsAddress!,
    adminPort: admin.reviews,
    waitForListener: `127.0.0.1_${ports.reviewsInbound}`,
    args: ['--drain-seconds', '0'],
    env: { TERN_JOIN_TOKEN: token },
  });
}

async function certs(adminPort: number): Promise<any> {
  return JSON.parse((await httpGet(adminPort, '/certs')).body);
}

/** The sidecar has its certificate, and its inbound TLS chain is bound (it fails until the certificate is there). */
async function identityReady(adminPort: number, id: string): Promise<void> {
  await eventually(async () => {
    const c = await certs(adminPort);
    return c.identity.state === 'ready' && c.identity.spiffe_id === id;
  }, 15_000, `identity ${id} on admin port ${adminPort}`);
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-mtls-refusals-'));
  meshCa = await testRoot('Mesh Root');
  fs.writeFileSync(path.join(dir, 'ca-cert.pem'), meshCa.certPem);
  fs.writeFileSync(path.join(dir, 'ca-key.pem'), meshCa.keyPem, { mode: 0o600 });
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, mtls: true, caCertFile: path.join(dir, 'ca-cert.pem'), caKeyFile: path.join(dir, 'ca-key.pem') }, undefined, { xds: true });
  const started = await startApp((req, res) => {
    reached.push(req.url ?? '');
    req.resume();
    res.end('reviews');
  });
  app = started.server;
  ports.app = started.port;
  ports.reviewsInbound = await freePort();
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  await registerWorkload(api, { name: 'reviews-v1', serviceAccount: 'reviews', labels: { app: 'reviews', version: 'v1' }, ports: { '9080': ports.reviewsInbound } });
  await registerWorkload(api, { name: 'productpage-v1', serviceAccount: 'productpage', labels: { app: 'productpage', version: 'v1' } });
  await strictMtls(api);
  // The control plane really issues from this root.
  const bundle = (await api.rest('GET', '/api/v1/ca')).body;
  assert.deepEqual((bundle.roots as string[]).map((p) => new x509.X509Certificate(p).serialNumber), [meshCa.cert.serialNumber], JSON.stringify(bundle));
  // productpage's sidecar (for the second test) starts with reviews': one wait instead of two.
  const logFd = fs.openSync(logFile(), 'w');
  ports.productpageUpstream = await freePort();
  admin.productpage = await freePort();
  const [r, pp] = await Promise.allSettled([
    startReviews('reviews', await joinToken(api, 'default', 'reviews')),
    startSidecar({
      id: 'productpage-v1.default',
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'productpage', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, OUTBOUND_PORT: 0, UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: ports.productpageUpstream }] },
      xdsAddress: api.xdsAddress!,
      adminPort: admin.productpage,
      waitForListener: `127.0.0.1_${ports.productpageUpstream}`,
      args: ['--drain-seconds', '0', '--access-log'],
      env: { TERN_JOIN_TOKEN: await joinToken(api, 'default', 'productpage') },
      // The access log (stdout) into a file.
      spawn: { stdio: ['ignore', logFd, 'pipe'] },
    }),
  ]);
  fs.closeSync(logFd);
  if (r.status === 'fulfilled') reviews = r.value;
  if (pp.status === 'fulfilled') productpage = pp.value;
  for (const x of [r, pp]) if (x.status === 'rejected') throw x.reason;
  await identityReady(admin.reviews, spiffe('reviews'));
  await identityReady(admin.productpage, spiffe('productpage'));
});

after(async () => {
  await reviews?.stop();
  await productpage?.stop();
  app?.closeAllConnections();
  app?.close();
  await api?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('reviews\' STRICT inbound refuses a certificate from another CA, an expired mesh certificate, no certificate and plaintext; a valid mesh certificate passes', async (t) => {
  const now = Date.now();
  const otherCa = await testRoot('Mesh Root'); // same name, other key: only the signature tells them apart
  const valid = await testSvid(meshCa, spiffe('productpage'));
  const foreign = await testSvid(otherCa, spiffe('productpage'));
  const expired = await testSvid(meshCa, spiffe('productpage'), { notBefore: new Date(now - 2 * 3600_000), notAfter: new Date(now - 3600_000) });
  const root = meshCa.certPem;
  const port = ports.reviewsInbound;

  // The inbound chain binds only once the certificate arrived: wait for a passing control first.
  let ok: Attempt | undefined;
  await eventually(async () => (ok = await attempt(port, '/warm', { root, client: valid })).response.startsWith('HTTP/1.1 200'), 10_000, 'valid client certificate accepted')
    .catch((err: Error) => { throw new Error(`${err.message}: last ${JSON.stringify(ok)}; reviews stderr: ${reviews!.stderr()}`); });
  reached.length = 0;
  const sslStat = async (k: string) => Number((await httpGet(admin.reviews, '/stats')).body.match(new RegExp(`^listener\\.127\\.0\\.0\\.1_${port}\\.ssl\\.${k}: (\\d+)$`, 'm'))?.[1] ?? NaN);
  const before = { handshake: await sslStat('handshake'), verify: await sslStat('fail_verify_error'), noCert: await sslStat('fail_verify_no_cert') };

  // How the refusal looks from the client: the proxy terminates TLS with node:tls, which judges the
  // client certificate after the handshake (TLS 1.3: the client has finished its side by then) and
  // destroys the socket without a TLS alert. So the client sees its connection closed (or reset)
  // with no HTTP answer; an alert naming the reason is accepted too. A timeout is a failure.
  const refused = /^(closed|ECONNRESET|EPIPE|ERR_SSL_\w+_ALERT_\w+)$/;
  const cases: { name: string; run: () => Promise<Attempt> }[] = [
    { name: 'certificate from another CA', run: () => attempt(port, '/foreign', { root, client: foreign }) },
    { name: 'expired mesh certificate', run: () => attempt(port, '/expired', { root, client: expired }) },
    { name: 'TLS without a client certificate', run: () => attempt(port, '/nocert', { root }) },
    { name: 'plaintext', run: () => attempt(port, '/plain', { plaintext: true }) },
  ];
  const results: Record<string, Attempt> = {};
  for (const c of cases) {
    const r = await c.run();
    results[c.name] = r;
    assert.equal(r.response, '', `${c.name}: no HTTP answer, got ${JSON.stringify(r)}`);
    assert.match(r.error ?? 'closed', refused, `${c.name}: ${JSON.stringify(r)}`);
  }
  t.diagnostic(`refusals as the client saw them: ${JSON.stringify(results)}`);
  assert.equal(reached.length, 0, `the app behind reviews was not reached: ${JSON.stringify(reached)}; ${JSON.stringify(results)}`);
  // The server says why (Envoy's listener.<address>.ssl.* counters): two certificates failed
  // verification, one client sent none; plaintext never reached the TLS chain.
  assert.equal(await sslStat('fail_verify_error'), before.verify + 2);
  assert.equal(await sslStat('fail_verify_no_cert'), before.noCert + 1);
  assert.equal(await sslStat('handshake'), before.handshake);

  // The control, after the refusals: the same listener still serves a valid mesh certificate.
  const good = await attempt(port, '/valid', { root, client: valid });
  assert.ok(good.secure, JSON.stringify(good));
  assert.match(good.response, /^HTTP\/1\.1 200 /);
  assert.match(good.response, /\r\n\r\nreviews$/);
  assert.deepEqual(reached, ['/valid']);
  // reviews' metrics: only the verified request is there, labelled with the client certificate's principal.
  const metrics = (await httpGet(admin.reviews, '/stats/prometheus')).body.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
  assert.ok(metrics.some((l) => l.includes(`source_principal="${spiffe('productpage')}"`) && l.includes('connection_security_policy="mutual_tls"')), metrics.join('\n'));
  assert.equal(metrics.reduce((n, l) => n + Number(l.split(' ').pop()), 0), 2, `the warm-up and the control only:\n${metrics.join('\n')}`);
});

test('productpage\'s sidecar refuses a reviews server presenting another identity (SAN mismatch: 503 UF), and passes with the right one', async () => {
  const call = (p: string) => httpGet(ports.productpageUpstream, p, { host: 'reviews:9080' }).catch((err: Error) => {
    throw new Error(`GET ${p} through productpage's sidecar (port ${ports.productpageUpstream}): ${err.message}`);
  });
  const sslStats = async () => {
    const stats = (await httpGet(admin.productpage, '/stats')).body;
    const n = (name: string) => Number(new RegExp(`^cluster\\.outbound\\|9080\\|\\|reviews[^:]*\\.ssl\\.${name}: (\\d+)$`, 'm').exec(stats)?.[1] ?? NaN);
    return { handshake: n('handshake'), fail_verify_san: n('fail_verify_san'), fail_verify_error: n('fail_verify_error'), connection_error: n('connection_error'), text: stats.split('\n').filter((l) => l.includes('.ssl.')).join('\n') };
  };

  // reviews-v1 (registered with service account reviews) now runs with a ratings identity.
  await reviews!.stop();
  reviews = await startReviews('ratings', await joinToken(api, 'default', 'ratings'));
  await identityReady(admin.reviews, spiffe('ratings'));
  const presented = (await certs(admin.reviews)).certificates[0].cert_chain[0].subject_alt_names;
  assert.deepEqual(presented, [{ uri: spiffe('ratings') }]);
  reached.length = 0;
  const before = await sslStats();
  const wrong = await call('/wrong-identity');
  assert.equal(wrong.status, 503, JSON.stringify(wrong));
  assert.equal(wrong.body, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure');
  const after = await sslStats();
  assert.ok(after.fail_verify_san > (Number.isNaN(before.fail_verify_san) ? 0 : before.fail_verify_san), `fail_verify_san went up:\n${after.text}`);
  assert.equal(after.handshake, Number.isNaN(before.handshake) ? 0 : before.handshake, `no handshake completed:\n${after.text}`);
  assert.equal(reached.length, 0, `the app behind the impostor was not reached: ${JSON.stringify(reached)}`);
  await eventually(() => fs.readFileSync(logFile(), 'utf8').includes('/wrong-identity'), 5000, 'access log line');
  const line = JSON.parse(fs.readFileSync(logFile(), 'utf8').split('\n').find((l) => l.includes('/wrong-identity'))!);
  assert.equal(line.response_code, 503);
  assert.match(line.response_flags, /\bUF\b/);
  assert.equal(line.response_code_details, 'upstream_reset_before_response_started{connection_failure,TLS_error:_SAN_mismatch}');

  // The control: reviews-v1 back with its own identity; the same client now gets through.
  await reviews!.stop();
  reviews = await startReviews('reviews', await joinToken(api, 'default', 'reviews'));
  await identityReady(admin.reviews, spiffe('reviews'));
  let last: unknown;
  await eventually(async () => {
    const r = await call('/right-identity');
    last = r;
    return r.status === 200 && r.body === 'reviews';
  }, 10_000, 'productpage -> reviews with the right identity').catch(async (err: Error) => {
    throw new Error(`${err.message}: last ${JSON.stringify(last)}\n${(await sslStats()).text}`);
  });
  assert.ok(reached.includes('/right-identity'));
  const final = await sslStats();
  assert.ok(final.handshake >= 1, final.text);
  assert.equal(final.fail_verify_san, after.fail_verify_san, `no SAN failure with the right identity:\n${final.text}`);
});
