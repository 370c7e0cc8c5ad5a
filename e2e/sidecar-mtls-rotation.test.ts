import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { testRoot, testSvid, type TestCa as Ca, type TestLeaf as Leaf } from './lib/pki.ts';
import { freePort, httpGet, joinToken, registerWorkload, type Sidecar, startApp, startSidecar, strictMtls } from './lib/sidecar.ts';

// Certificate rotation under steady load loses no request. productpage's sidecar calls reviews'
// sidecar over mutual TLS (STRICT), both with 60 s certificates renewed at 5 % of their life
// (about every 3 s), while keep-alive clients and fresh connections keep ~150 requests/s going
// through both. Both sidecars must rotate at least twice; every request must answer 200 with the
// app's body. Meanwhile two probes check that NEW handshakes present the NEW certificate on each
// side: a raw TLS client at reviews' inbound port (the server certificate it is shown), and a TLS
// server of the test's own posing as a mesh workload ("echo", no sidecar) that productpage's sidecar
// calls on a fresh connection each time (the client certificate it is shown). The control plane
// issues from a root this test made (TERN_CA_CERT_FILE / TERN_CA_KEY_FILE), so the test can mint
// the probe's client certificate and echo's server certificate.

const TD = 'cluster.local';
const spiffe = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;
const normSerial = (s: string) => s.toLowerCase().replace(/^0+/, '');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the mesh

let api: TestApi;
let dir: string;
let meshCa: Ca;
let app: http.Server;
let echo: https.Server;
const sidecars: Sidecar[] = [];
// Taken just before the sidecars bind them (other suites on the machine pick free ports too).
const ports = { reviewsInbound: 0, reviews: 0, echo: 0 };
const admin = { productpage: 0, reviews: 0 };
/** Per echo request: the client certificate productpage's sidecar presented, and whether the session was resumed. */
const echoSeen: { serial: string; reused: boolean; authorized: boolean }[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-mtls-rotation-'));
  meshCa = await testRoot('Mesh Root');
  fs.writeFileSync(path.join(dir, 'ca-cert.pem'), meshCa.certPem);
  fs.writeFileSync(path.join(dir, 'ca-key.pem'), meshCa.keyPem, { mode: 0o600 });
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, mtls: true, caCertFile: path.join(dir, 'ca-cert.pem'), caKeyFile: path.join(dir, 'ca-key.pem') }, undefined, { xds: true });

  const started = await startApp((req, res) => {
    req.resume();
    res.end(`reviews ${req.url}`);
  });
  app = started.server;
  // echo: a mesh workload whose "sidecar" is the test itself (labelled tlsMode istio, so clients send
  // it mutual TLS), terminating mTLS with a mesh certificate.
  // No session tickets: every connection is a full handshake with the client's certificate.
  const echoCert = await testSvid(meshCa, spiffe('echo'));
  echo = https.createServer({ cert: echoCert.certPem, key: echoCert.keyPem, ca: meshCa.certPem, requestCert: true, rejectUnauthorized: true, secureOptions: constants.SSL_OP_NO_TICKET }, (req, res) => {
    const s = req.socket as tls.TLSSocket;
    echoSeen.push({ serial: normSerial(s.getPeerCertificate().serialNumber ?? ''), reused: s.isSessionReused(), authorized: s.authorized });
    req.resume();
    // Closing makes productpage's sidecar open (and handshake) a new connection for the next request.
    res.setHeader('connection', 'close');
    res.end('echo');
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const echoPort = (echo.address() as net.AddressInfo).port;

  for (const k of ['reviewsInbound', 'reviews', 'echo'] as const) ports[k] = await freePort();
  for (const k of ['productpage', 'reviews'] as const) admin[k] = await freePort();
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/echo', { namespace: 'default', name: 'echo', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  await registerWorkload(api, { name: 'reviews-v1', serviceAccount: 'reviews', labels: { app: 'reviews', version: 'v1' }, ports: { '9080': ports.reviewsInbound } });
  await registerWorkload(api, { name: 'echo-v1', serviceAccount: 'echo', labels: { app: 'echo', version: 'v1' }, ports: { '9080': echoPort } });
  await registerWorkload(api, { name: 'productpage-v1', serviceAccount: 'productpage', labels: { app: 'productpage', version: 'v1' } });
  await strictMtls(api);
  const short = { TERN_IDENTITY_TTL_SECONDS: '60', TERN_IDENTITY_RENEW_FRACTION: '0.05' };
  const [reviewsToken, productpageToken] = [await joinToken(api, 'default', 'reviews'), await joinToken(api, 'default', 'productpage')];
  // allSettled: a sidecar that started is stopped by after() even when the other one failed.
  const proxies = await Promise.allSettled([
    startSidecar({
      id: 'reviews-v1.default',
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'reviews', WORKLOAD_NAME: 'reviews-v1', LABELS: { app: 'reviews', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': started.port } },
      xdsAddress: api.xdsAddress!,
      adminPort: admin.reviews,
      waitForListener: `127.0.0.1_${ports.reviewsInbound}`,
      args: ['--drain-seconds', '0'],
      env: { TERN_JOIN_TOKEN: reviewsToken, ...short },
    }),
    startSidecar({
      id: 'productpage-v1.default',
      metadata: {
        NAMESPACE: 'default', SERVICE_ACCOUNT: 'productpage', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, OUTBOUND_PORT: 0,
        UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: ports.reviews }, { host: 'echo', port: 9080, localPort: ports.echo }],
      },
      xdsAddress: api.xdsAddress!,
      adminPort: admin.productpage,
      waitForListener: `127.0.0.1_${ports.reviews}`,
      args: ['--drain-seconds', '0'],
      env: { TERN_JOIN_TOKEN: productpageToken, ...short },
    }),
  ]);
  for (const r of proxies) if (r.status === 'fulfilled') sidecars.push(r.value);
  for (const r of proxies) if (r.status === 'rejected') throw r.reason;
  // startSidecar waited for one listener each; productpage's second one (to echo) too.
  let l: any;
  await eventually(async () => {
    l = JSON.parse((await httpGet(sidecars[1]!.adminPort, '/listeners?format=json')).body);
    return l.failed[`127.0.0.1_${ports.echo}`] === undefined && l.listener_statuses.some((x: { name: string }) => x.name === `127.0.0.1_${ports.echo}`);
  }, 15_000, 'the echo listener bound').catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(l)}`);
  });
});

after(async () => {
  for (const s of sidecars) await s.stop();
  app?.closeAllConnections();
  app?.close();
  echo?.closeAllConnections();
  echo?.close();
  await api?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function currentSerial(adminPort: number): Promise<string> {
  const c = JSON.parse((await httpGet(adminPort, '/certs')).body);
  return c.identity.state === 'ready' ? normSerial(c.identity.serial_number) : '';
}

/** One request through productpage's sidecar; status and body, or the error. */
function request(port: number, p: string, host: string, agent: http.Agent | false): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, agent, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: `response: ${err.code ?? err.message}` }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

/** A fresh TLS connection to reviews' inbound with a valid mesh client certificate: the server certificate's serial and the answer. */
function probeInbound(client: Leaf): Promise<{ serial: string; response: string; error?: string }> {
  return new Promise((resolve) => {
    let serial = '';
    let response = '';
    let error: string | undefined;
    const s = tls.connect({ host: '127.0.0.1', port: ports.reviewsInbound, ca: meshCa.certPem, cert: client.certPem, key: client.keyPem, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined }, () => {
      serial = normSerial(s.getPeerCertificate().serialNumber ?? '');
      s.write('GET /probe HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n\r\n');
    });
    s.setEncoding('utf8');
    s.setTimeout(5000, () => s.destroy(new Error('probe timed out')));
    s.on('data', (d: string) => (response += d));
    s.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    s.on('close', () => resolve({ serial, response, ...(error ? { error } : {}) }));
  });
}

test('both sidecars rotate their certificates at least twice under steady load: no request is lost, and new handshakes present the new certificates', async (t) => {
  const probeClient = await testSvid(meshCa, spiffe('probe'));
  // Both identities issued and both configurations converged.
  let last: unknown;
  await eventually(async () => {
    last = await request(ports.reviews, '/warm', 'reviews:9080', false);
    return 'status' in (last as object) && (last as { status: number }).status === 200;
  }, 20_000, 'productpage -> reviews over mTLS').catch((err: Error) => {
    throw new Error(`${err.message}: last ${JSON.stringify(last)}\n${sidecars.map((s) => s.stderr().slice(-1500)).join('\n---\n')}`);
  });
  await eventually(async () => {
    last = await request(ports.echo, '/warm', 'echo:9080', false);
    return 'status' in (last as object) && (last as { status: number }).status === 200;
  }, 10_000, 'productpage -> echo over mTLS').catch((err: Error) => {
    throw new Error(`${err.message}: last ${JSON.stringify(last)}`);
  });

  // Serial history of each sidecar, from /certs.
  const history = { productpage: [] as string[], reviews: [] as string[] };
  const poll = async () => {
    for (const [name, port] of [['productpage', admin.productpage], ['reviews', admin.reviews]] as const) {
      const s = await currentSerial(port);
      const h = history[name];
      if (s && h.at(-1) !== s) h.push(s);
    }
  };
  await poll();
  const inboundSeen = new Set<string>();
  const echoPresented = new Set<string>();
  const rotatedTwice = () => history.productpage.length >= 3 && history.reviews.length >= 3;
  // Until the probes, too, have been shown three certificates on each side (or the deadline).
  const enough = () => rotatedTwice() && inboundSeen.size >= 3 && echoPresented.size >= 3;

  let stop = false;
  const failures: string[] = [];
  let okCount = 0;
  const check = (what: string, r: { status: number; body: string } | { error: string }, expectBody: string) => {
    if ('status' in r && r.status === 200 && r.body === expectBody) okCount++;
    else if (failures.length < 20) failures.push(`${what}: ${JSON.stringify(r)}`);
    else failures.push('…');
  };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  // 8 keep-alive clients (~20 req/s each) and one client opening a new connection per request.
  const keepAlive = Array.from({ length: 8 }, async (_, i) => {
    for (let n = 0; !stop; n++) {
      const p = `/ka/${i}/${n}`;
      check(p, await request(ports.reviews, p, 'reviews:9080', agent), `reviews ${p}`);
      await sleep(40);
    }
  });
  const fresh = (async () => {
    for (let n = 0; !stop; n++) {
      const p = `/fresh/${n}`;
      check(p, await request(ports.reviews, p, 'reviews:9080', false), `reviews ${p}`);
      await sleep(30);
    }
  })();

  // Probes: each new handshake must present the certificate that was current just before or just
  // after it (a listener or connector that kept an old certificate fails this once it rotated).
  const probeErrors: string[] = [];
  const deadline = Date.now() + 20_000;
  while (!enough() && Date.now() < deadline) {
    const [r0, p0] = [await currentSerial(admin.reviews), await currentSerial(admin.productpage)];
    const seenBefore = echoSeen.length;
    const [inbound, viaEcho] = await Promise.all([probeInbound(probeClient), request(ports.echo, '/probe', 'echo:9080', false)]);
    const [r1, p1] = [await currentSerial(admin.reviews), await currentSerial(admin.productpage)];
    if (!inbound.response.startsWith('HTTP/1.1 200') || inbound.error) probeErrors.push(`inbound probe: ${JSON.stringify(inbound)}`);
    else if (inbound.serial !== r0 && inbound.serial !== r1) probeErrors.push(`reviews presented ${inbound.serial}, its certificate was ${r0} then ${r1}`);
    else inboundSeen.add(inbound.serial);
    check('/probe via echo', viaEcho, 'echo');
    const e = echoSeen.slice(seenBefore);
    if (e.length !== 1 || e[0]!.reused || !e[0]!.authorized) probeErrors.push(`echo saw ${JSON.stringify(e)} for one probe`);
    else if (e[0]!.serial !== p0 && e[0]!.serial !== p1) probeErrors.push(`productpage presented ${e[0]!.serial}, its certificate was ${p0} then ${p1}`);
    else echoPresented.add(e[0]!.serial);
    await poll();
    await sleep(100);
  }
  // A little more load after the last rotation, then stop and let every client finish.
  await sleep(500);
  stop = true;
  await Promise.all([...keepAlive, fresh]);
  agent.destroy();

  const [pp, rv] = await Promise.all([admin.productpage, admin.reviews].map(async (port) => JSON.parse((await httpGet(port, '/certs')).body)));
  t.diagnostic(`requests ok: ${okCount}; serials productpage ${history.productpage.length}, reviews ${history.reviews.length}; probes saw reviews ${inboundSeen.size}, productpage ${echoPresented.size}`);
  assert.ok(rotatedTwice(), `both sidecars rotated at least twice: ${JSON.stringify(history)}`);
  assert.deepEqual(failures, [], `every request answered 200 with its body (${okCount} did)`);
  assert.ok(okCount > 200, `steady load: ${okCount} requests`);
  assert.deepEqual(probeErrors, []);
  // The probes saw the rotations too: at least three different certificates on each side.
  assert.ok(inboundSeen.size >= 3, `reviews' inbound presented ${[...inboundSeen].join(', ')}; history ${history.reviews.join(', ')}`);
  assert.ok(echoPresented.size >= 3, `productpage presented ${[...echoPresented].join(', ')}; history ${history.productpage.join(', ')}`);
  for (const seen of inboundSeen) assert.ok(history.reviews.includes(seen) || normSerial(rv.identity.serial_number) === seen, seen);
  for (const seen of echoPresented) assert.ok(history.productpage.includes(seen) || normSerial(pp.identity.serial_number) === seen, seen);
  // Renewals used the current certificate and never failed.
  for (const c of [pp, rv]) {
    assert.equal(c.identity.consecutive_failures, 0, JSON.stringify(c.identity.last_error));
    assert.equal(c.identity.last_credential, 'certificate');
    assert.ok(c.identity.certificates_issued >= 3, String(c.identity.certificates_issued));
  }
  // The client sidecar kept verifying reviews across its rotations: no TLS failure on its cluster.
  const stats = (await httpGet(admin.productpage, '/stats')).body;
  for (const counter of ['connection_error', 'fail_verify_error', 'fail_verify_san']) {
    assert.match(stats, new RegExp(`^cluster\\.outbound\\|9080\\|\\|reviews[^:]*\\.ssl\\.${counter}: 0$`, 'm'), stats.split('\n').filter((l) => l.includes('.ssl.')).join('\n'));
  }
});
