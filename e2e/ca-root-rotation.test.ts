import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { openTestDatabase, startTestApi, type TestApi, type TestDatabase } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { testRoot, testSvid, type TestCa as Ca, type TestLeaf as Leaf } from './lib/pki.ts';
import { freePort, httpGet, joinToken, startApp, startSidecar, type Sidecar } from './lib/sidecar.ts';

// A root rotation, mid-way (docs/security.md, TERN_CA_TRUST_BUNDLE_FILE): workloads holding
// certificates from the OLD root R1 and from the NEW root R2 must keep talking mTLS to each other.
// Three independent control planes stand for the moments of the rotation, each on its own database
// with the same registry and a STRICT PeerAuthentication:
//   CP1 — before the switch: issues from R1, bundle {R2}  -> S1 "productpage" (client)
//   CP2 — after the switch:  issues from R2, bundle {R1}  -> S2 "reviews"     (server)
//   CP3 — switched without the overlap: R2, no bundle     -> S3 "reviews-b"   (server)
// S1 -> S2 works only if trust crosses roots both ways (S1 verifies S2's R2 server certificate
// through its bundle; S2 verifies S1's R1 client certificate through its own). S1 -> S3 must fail:
// S3 trusts R2 only, so it refuses S1's R1 client certificate before its app sees anything.
// A direct client with test-made certificates shows S3's listener itself is sound (R2 passes, R1 is
// refused). Last, the CA refuses a bundle holding a non-CA or an expired certificate at start.

const TD = 'cluster.local';
const spiffe = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;

// ---- certificates

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** One HTTP/1.1 request over mTLS straight at a sidecar's inbound port; what came back, or how it failed. */
function directMtls(port: number, root: string, client: Leaf): Promise<{ response: string; error: string | undefined }> {
  return new Promise((resolve) => {
    const out = { response: '', error: undefined as string | undefined };
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ca: root, cert: client.certPem, key: client.keyPem, checkServerIdentity: () => undefined });
    socket.once('secureConnect', () => socket.write('GET /direct HTTP/1.1\r\nhost: reviews-b:9080\r\nconnection: close\r\n\r\n'));
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('no answer within 5 s'), { code: 'TEST_TIMEOUT' })), 5000);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (out.response += d));
    socket.on('error', (err: NodeJS.ErrnoException) => (out.error ??= err.code ?? err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

// ---- the mesh

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-root-rotation-'));
const write = (name: string, text: string) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text, { mode: 0o600 });
  return p;
};

let r1: Ca;
let r2: Ca;
const apis: { cp1?: TestApi; cp2?: TestApi; cp3?: TestApi } = {};
const apps: http.Server[] = [];
const sidecars: { s1?: Sidecar; s2?: Sidecar; s3?: Sidecar } = {};
const reached = { reviews: [] as string[], reviewsB: [] as string[] };
const ports = { s2Inbound: await freePort(), s3Inbound: await freePort(), toReviews: await freePort(), toReviewsB: await freePort() };
const admin = { s1: await freePort(), s2: await freePort(), s3: await freePort() };

/** The same registry and STRICT PeerAuthentication on every control plane. */
async function seed(api: TestApi): Promise<void> {
  const ok = (what: string, r: { status: number; body: unknown }) => assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.body)}`);
  const sidecar = { 'security.istio.io/tlsMode': 'istio' };
  for (const name of ['reviews', 'reviews-b']) {
    ok(name, await api.rest('PUT', `/api/v1/registry/services/default/${name}`, { namespace: 'default', name, ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  }
  ok('reviews-v1', await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', serviceAccount: 'reviews', labels: { app: 'reviews', version: 'v1', ...sidecar }, addresses: ['127.0.0.1'], ports: { '9080': ports.s2Inbound } }));
  ok('reviews-b-v1', await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-b-v1', { namespace: 'default', name: 'reviews-b-v1', serviceAccount: 'reviews-b', labels: { app: 'reviews-b', version: 'v1', ...sidecar }, addresses: ['127.0.0.1'], ports: { '9080': ports.s3Inbound } }));
  ok('productpage-v1', await api.rest('PUT', '/api/v1/registry/workloads/default/productpage-v1', { namespace: 'default', name: 'productpage-v1', serviceAccount: 'productpage', labels: { app: 'productpage', version: 'v1', ...sidecar }, addresses: ['127.0.0.1'] }));
  ok('PeerAuthentication', await api.rest('POST', '/api/v1/apply', {
    yaml: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: default }
spec:
  mtls: { mode: STRICT }
`,
  }));
}

async function serverApp(name: string, log: string[]): Promise<number> {
  const { server, port } = await startApp((req, res) => {
    log.push(req.url ?? '');
    req.resume();
    res.end(name);
  });
  apps.push(server);
  return port;
}

before(async () => {
  [r1, r2] = await Promise.all([testRoot('Mesh Root R1'), testRoot('Mesh Root R2')]);
  const files = {
    r1: write('r1.pem', r1.certPem),
    r1Key: write('r1-key.pem', r1.keyPem),
    r2: write('r2.pem', r2.certPem),
    r2Key: write('r2-key.pem', r2.keyPem),
  };
  const base = { xdsDebounceMs: 20, xdsDebounceMaxMs: 200, mtls: true } as const;
  // One after the other: PGlite runs on this process's thread, so starting them together gains nothing.
  apis.cp1 = await startTestApi({ ...base, caCertFile: files.r1, caKeyFile: files.r1Key, caTrustBundleFile: files.r2 }, undefined, { xds: true });
  apis.cp2 = await startTestApi({ ...base, caCertFile: files.r2, caKeyFile: files.r2Key, caTrustBundleFile: files.r1 }, undefined, { xds: true });
  apis.cp3 = await startTestApi({ ...base, caCertFile: files.r2, caKeyFile: files.r2Key }, undefined, { xds: true });
  for (const api of [apis.cp1, apis.cp2, apis.cp3]) await seed(api);

  const [reviewsApp, reviewsBApp] = [await serverApp('reviews', reached.reviews), await serverApp('reviews-b', reached.reviewsB)];
  const [t1, t2, t3] = [await joinToken(apis.cp1, 'default', 'productpage'), await joinToken(apis.cp2, 'default', 'reviews'), await joinToken(apis.cp3, 'default', 'reviews-b')];
  const started = await Promise.allSettled([
    startSidecar({
      id: 'reviews-v1.default',
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'reviews', WORKLOAD_NAME: 'reviews-v1', LABELS: { app: 'reviews', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': reviewsApp } },
      xdsAddress: apis.cp2.xdsAddress!,
      adminPort: admin.s2,
      waitForListener: `127.0.0.1_${ports.s2Inbound}`,
      args: ['--drain-seconds', '0'],
      env: { TERN_JOIN_TOKEN: t2 },
    }),
    startSidecar({
      id: 'reviews-b-v1.default',
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'reviews-b', WORKLOAD_NAME: 'reviews-b-v1', LABELS: { app: 'reviews-b', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': reviewsBApp } },
      xdsAddress: apis.cp3.xdsAddress!,
      adminPort: admin.s3,
      waitForListener: `127.0.0.1_${ports.s3Inbound}`,
      args: ['--drain-seconds', '0'],
      env: { TERN_JOIN_TOKEN: t3 },
    }),
    startSidecar({
      id: 'productpage-v1.default',
      metadata: {
        NAMESPACE: 'default', SERVICE_ACCOUNT: 'productpage', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, OUTBOUND_PORT: 0,
        UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: ports.toReviews }, { host: 'reviews-b', port: 9080, localPort: ports.toReviewsB }],
      },
      xdsAddress: apis.cp1.xdsAddress!,
      adminPort: admin.s1,
      waitForListener: `127.0.0.1_${ports.toReviewsB}`,
      args: ['--drain-seconds', '0'],
      env: { TERN_JOIN_TOKEN: t1 },
    }),
  ]);
  const [s2, s3, s1] = started;
  if (s2.status === 'fulfilled') sidecars.s2 = s2.value;
  if (s3.status === 'fulfilled') sidecars.s3 = s3.value;
  if (s1.status === 'fulfilled') sidecars.s1 = s1.value;
  const failed = started.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed.length) throw failed[0]!.reason;
});

after(async () => {
  await Promise.all(Object.values(sidecars).map((s) => s.stop()));
  for (const a of apps) {
    a.closeAllConnections();
    a.close();
  }
  for (const api of Object.values(apis)) await api.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface CertsView {
  certificates: { ca_cert: { sha256_fingerprint: string }[] }[];
  identity: { state: string; spiffe_id: string | null; cert_chain_pem: string[] };
}

/** The sidecar's /certs once it holds a workload certificate. */
async function certsOf(adminPort: number): Promise<CertsView> {
  return eventually(async () => {
    const v = JSON.parse((await httpGet(adminPort, '/certs')).body) as CertsView;
    return v.identity.spiffe_id ? v : undefined;
  }, 20_000, `a workload certificate on the sidecar with admin port ${adminPort}`);
}

const trustedRoots = (v: CertsView) => (v.certificates[0]?.ca_cert ?? []).map((c) => c.sha256_fingerprint).sort();
const chainRoot = (v: CertsView) => fingerprint(v.identity.cert_chain_pem.at(-1)!);

describe('mid-rotation: the old root and the new root trust each other through the bundle', () => {
  test('each control plane lists its issuer root first, then the bundle', async () => {
    const roots = async (api: TestApi) => {
      const r = await api.rest('GET', '/api/v1/ca');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return (r.body.roots as string[]).map(fingerprint);
    };
    const [f1, f2] = [fingerprint(r1.certPem), fingerprint(r2.certPem)];
    assert.deepEqual(await roots(apis.cp1!), [f1, f2]);
    assert.deepEqual(await roots(apis.cp2!), [f2, f1]);
    assert.deepEqual(await roots(apis.cp3!), [f2]);
  });

  test('the sidecars hold certificates from different roots and trust what their CA sent', async () => {
    const [f1, f2] = [fingerprint(r1.certPem), fingerprint(r2.certPem)];
    const [c1, c2, c3] = [await certsOf(admin.s1), await certsOf(admin.s2), await certsOf(admin.s3)];
    assert.equal(c1.identity.spiffe_id, spiffe('productpage'));
    assert.equal(chainRoot(c1), f1, 'S1 was issued from R1');
    assert.equal(chainRoot(c2), f2, 'S2 was issued from R2');
    assert.equal(chainRoot(c3), f2, 'S3 was issued from R2');
    assert.deepEqual(trustedRoots(c1), [f1, f2].sort(), 'S1 trusts R1 and R2');
    assert.deepEqual(trustedRoots(c2), [f1, f2].sort(), 'S2 trusts R1 and R2');
    assert.deepEqual(trustedRoots(c3), [f2], 'S3 trusts R2 only');
  });

  test('productpage (R1) -> reviews (R2) over mTLS: 200, both sides verified across roots', async () => {
    let last = '';
    await eventually(async () => {
      const r = await httpGet(ports.toReviews, '/across', { host: 'reviews:9080' }).catch((err: Error) => ({ status: 0, body: err.message }));
      last = `${r.status} ${r.body}`;
      return r.status === 200 && r.body === 'reviews';
    }, 20_000, 'productpage -> reviews across roots').catch(async (err: Error) => {
      const ssl = (await httpGet(admin.s1, '/stats')).body.split('\n').filter((l) => l.includes('ssl.')).join('\n');
      throw new Error(`${err.message}; last response: ${last}; S1 ssl stats:\n${ssl}\nS1 stderr:\n${sidecars.s1!.stderr().slice(-2000)}\nS2 stderr:\n${sidecars.s2!.stderr().slice(-2000)}`);
    });
    assert.ok(reached.reviews.includes('/across'));
    const stats = (await httpGet(admin.s1, '/stats')).body;
    const handshakes = /^cluster\.outbound\|9080\|\|reviews\.[^:]*\.ssl\.handshake: (\d+)$/m.exec(stats);
    assert.ok(handshakes && Number(handshakes[1]) >= 1, stats.split('\n').filter((l) => l.includes('ssl.')).join('\n'));
    assert.match(stats, /^cluster\.outbound\|9080\|\|reviews\.[^:]*\.ssl\.fail_verify_error: 0$/m);
  });

  test('productpage (R1) -> reviews-b (R2, no bundle): refused by reviews-b, whose app is never reached', async () => {
    // The control first: reviews-b's listener serves mTLS to a client certificate from R2 and
    // refuses the same identity from R1 — so what fails below is trust, not a broken listener.
    const fromR2 = await directMtls(ports.s3Inbound, r2.certPem, await testSvid(r2, spiffe('productpage')));
    assert.match(fromR2.response, /^HTTP\/1\.1 200 /, `R2 client at reviews-b: ${fromR2.error ?? ''} ${fromR2.response}`);
    assert.ok(fromR2.response.endsWith('reviews-b'), fromR2.response);
    const fromR1 = await directMtls(ports.s3Inbound, r2.certPem, await testSvid(r1, spiffe('productpage')));
    assert.equal(fromR1.response, '', `R1 client at reviews-b got an answer: ${fromR1.response}`);
    reached.reviewsB.length = 0;

    // S1 is up and converged (its certificate and the reviews route work); now reviews-b.
    await certsOf(admin.s3);
    await eventually(async () => (await httpGet(ports.toReviews, '/ready-check', { host: 'reviews:9080' })).status === 200, 20_000, 'S1 -> S2 still passes');
    for (let i = 0; i < 3; i++) {
      const r = await httpGet(ports.toReviewsB, `/refused-${i}`, { host: 'reviews-b:9080' });
      assert.equal(r.status, 503, `attempt ${i}: ${r.status} ${r.body}`);
    }
    assert.deepEqual(reached.reviewsB, [], 'reviews-b\'s app was never reached through S1');
    // S1 did its part (it verified reviews-b's R2 certificate through its bundle: TLS 1.3 completes
    // on the client's side before the server judges the client certificate); reviews-b refused.
    const stats = (await httpGet(admin.s1, '/stats')).body;
    const handshakes = /^cluster\.outbound\|9080\|\|reviews-b\.[^:]*\.ssl\.handshake: (\d+)$/m.exec(stats);
    assert.ok(handshakes && Number(handshakes[1]) >= 1, stats.split('\n').filter((l) => l.includes('reviews-b') && l.includes('ssl.')).join('\n'));
    assert.match(stats, /^cluster\.outbound\|9080\|\|reviews-b\.[^:]*\.ssl\.fail_verify_error: 0$/m);
  });
});

describe('the CA refuses a bad trust bundle at start', () => {
  // Our own database, shared by the refused starts: a start that throws leaves it to the caller.
  let db: TestDatabase;
  before(async () => {
    db = await openTestDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  async function startWithBundle(bundlePem: string): Promise<Error> {
    const issuer = await testRoot('Issuing Root');
    const files = { cert: write(`issuer-${randomUUID()}.pem`, issuer.certPem), key: write(`issuer-key-${randomUUID()}.pem`, issuer.keyPem), bundle: write(`bundle-${randomUUID()}.pem`, bundlePem) };
    let api: TestApi;
    try {
      api = await startTestApi({ mtls: true, caCertFile: files.cert, caKeyFile: files.key, caTrustBundleFile: files.bundle }, db);
    } catch (err) {
      return err as Error;
    }
    await api.close();
    throw new Error('the control plane started with this bundle');
  }

  test('a certificate that is not a CA', async () => {
    const leaf = await testRoot('Not A CA', { ca: false });
    const err = await startWithBundle(leaf.certPem);
    assert.match(err.message, /TERN_CA_TRUST_BUNDLE_FILE/);
    assert.match(err.message, /not a CA certificate/);
  });

  test('an expired CA certificate (next to a good one)', async () => {
    const good = await testRoot('Next Root');
    const expired = await testRoot('Old Root', { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
    const err = await startWithBundle(good.certPem + expired.certPem);
    assert.match(err.message, /TERN_CA_TRUST_BUNDLE_FILE/);
    assert.match(err.message, /expired/);
    assert.match(err.message, /Old Root/);
  });
});
