// Upstream TLS origination (UpstreamTlsContext, transport_socket_matches): real TLS servers on
// loopback, certificates from a small test CA (identity-helpers.ts), the proxy's `default` and
// `ROOTCA` SDS secrets in the snapshot as the identity agent publishes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { EXTENSION_TYPE_URL, TYPE_URL, type JsonObject } from '@tern/xds';
import { compileCluster } from '../src/config/compile-cluster.ts';
import { renderStatsText } from '../src/dataplane/resilience/stats.ts';
import { parseSubjectAltName, sanMatches } from '../src/dataplane/upstream-tls.ts';
import { loadX509 } from '../src/identity/x509.ts';
import { makeRoot, type TestRoot } from './identity-helpers.ts';
import { eventually, httpListener, httpUpstream, request, routeTo, snapshot, startProxy, tcpListener, type TestProxy } from './dataplane-helpers.ts';

const x509 = await loadX509();
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
let serial = 0x10000000;

interface Leaf {
  cert: string;
  key: string;
  serial: string;
}

/** A leaf certificate with URI/DNS SANs signed by `root` (chain: leaf + root). */
async function issue(root: TestRoot, sans: { uri?: string; dns?: string }): Promise<Leaf> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const s = (serial++).toString(16).padStart(8, '0');
  const names = [...(sans.uri ? [{ type: 'url' as const, value: sans.uri }] : []), ...(sans.dns ? [{ type: 'dns' as const, value: sans.dns }] : [])];
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: s,
    subject: 'CN=leaf',
    issuer: root.cert.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    publicKey: keys.publicKey,
    signingKey: (root.keys as unknown as webcrypto.CryptoKeyPair).privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names, false),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { cert: leaf.toString('pem') + '\n' + root.pem, key, serial: s.toUpperCase() };
}

const root = await makeRoot('mesh-root');
const otherRoot = await makeRoot('other-root');
const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/productpage';
const serverLeaf = await issue(root, { uri: SERVER_ID });
const clientLeaf = await issue(root, { uri: CLIENT_ID });

function secrets(client: Leaf, ca: string = root.pem): JsonObject[] {
  return [
    { name: 'default', tls_certificate: { certificate_chain: { inline_string: client.cert }, private_key: { inline_string: client.key } } },
    { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca } } },
  ];
}

/** Istio's auto-mTLS UpstreamTlsContext (as apps/api's mtls compiler emits it). */
function mtlsSocket(san: string | JsonObject = SERVER_ID, alpn = ['istio-peer-exchange', 'istio', 'h2', 'http/1.1']): JsonObject {
  const matcher = typeof san === 'string' ? { san_type: 'URI', matcher: { exact: san } } : san;
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': EXTENSION_TYPE_URL.upstreamTls,
      sni: 'outbound_.9080_._.reviews.default.svc.cluster.local',
      common_tls_context: {
        alpn_protocols: alpn,
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [matcher] },
          validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' } },
        },
      },
    },
  };
}

const H2_OPTIONS = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': EXTENSION_TYPE_URL.httpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } },
  },
};

/** A cluster whose endpoints carry Istio's tlsMode label; `tls` endpoints get the mTLS socket by transport_socket_matches. */
function autoMtlsCluster(name: string, endpoints: { port: number; tls: boolean }[], o: { san?: string | JsonObject; h2?: boolean } = {}): JsonObject {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: e.port } } },
          ...(e.tls ? { metadata: { filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } } } } : {}),
        })),
      }],
    },
    transport_socket_matches: [
      { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: mtlsSocket(o.san, o.h2 ? ['istio', 'h2'] : undefined) },
      { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer' } },
    ],
    ...(o.h2 ? H2_OPTIONS : {}),
  };
}


interface TlsUpstream {
  port: number;
  /** Per request: the client certificate's serial and SANs, whether the TLS session was resumed. */
  seen: { serial: string; san: string; resumed: boolean; httpVersion: string; alpn: string | false | null }[];
  connections: number;
  close(): Promise<void>;
}

/** An HTTPS (or h2) server requiring a client certificate from `clientCa`. */
async function tlsUpstream(leaf: Leaf, o: { h2?: boolean; allowHTTP1?: boolean; clientCa?: string; handler?: (path: string, res: { end(b: string): void; setHeader(k: string, v: string): void }) => void } = {}): Promise<TlsUpstream> {
  const u: TlsUpstream = { port: 0, seen: [], connections: 0, close: async () => {} };
  const opts = { cert: leaf.cert, key: leaf.key, ca: o.clientCa ?? root.pem, requestCert: true, rejectUnauthorized: true };
  const onRequest = (req: { socket: tls.TLSSocket; httpVersion: string; url?: string }, res: { end(b: string): void; setHeader(k: string, v: string): void }) => {
    const sock = req.socket as tls.TLSSocket;
    const peer = sock.getPeerCertificate();
    u.seen.push({ serial: peer.serialNumber ?? '', san: peer.subjectaltname ?? '', resumed: sock.isSessionReused(), httpVersion: req.httpVersion, alpn: sock.alpnProtocol });
    if (o.handler) o.handler(req.url ?? '/', res);
    else res.end(`hello over ${req.httpVersion}`);
  };
  const sockets = new Set<net.Socket>();
  if (o.h2) {
    const server = http2.createSecureServer({ ...opts, allowHTTP1: o.allowHTTP1 ?? false }, (req, res) => onRequest({ socket: req.socket as tls.TLSSocket, httpVersion: req.httpVersion, url: req.url }, res));
    server.on('secureConnection', (s: tls.TLSSocket) => {
      u.connections++;
      sockets.add(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    u.port = (server.address() as AddressInfo).port;
    u.close = () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  } else {
    const server = https.createServer(opts, (req, res) => onRequest({ socket: req.socket as tls.TLSSocket, httpVersion: req.httpVersion, url: req.url }, res));
    server.on('secureConnection', () => u.connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    u.port = (server.address() as AddressInfo).port;
    u.close = () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  }
  return u;
}

async function proxyTo(clusterJson: JsonObject, sec: JsonObject[] = secrets(clientLeaf)): Promise<{ p: TestProxy; port: number }> {
  const listener = httpListener({ name: 'out', routes: routeTo(String(clusterJson.name)) });
  const p = await startProxy(snapshot({ listeners: [listener], clusters: [clusterJson], secrets: sec }), { accessLog: true });
  return { p, port: p.port('out') };
}

const stat = (p: TestProxy, name: string): number => {
  const m = new RegExp(`^${name.replace(/[.|]/g, (c) => `\\${c}`)}: (\\d+)$`, 'm').exec(renderStatsText(p.engine));
  return m ? Number(m[1]) : -1;
};

test('mTLS to an upstream requiring client certificates: the proxy presents its default certificate', async () => {
  const up = await tlsUpstream(serverLeaf);
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }]));
  try {
    const r = await request(port);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello over 1.1');
    assert.equal(up.seen.length, 1);
    assert.equal(up.seen[0]!.serial, clientLeaf.serial);
    assert.match(up.seen[0]!.san, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage/);
    assert.equal(up.seen[0]!.alpn, 'http/1.1');
    // Connection reuse as for plaintext.
    assert.equal((await request(port)).status, 200);
    assert.equal(up.connections, 1);
    assert.equal(stat(p, 'cluster.reviews.ssl.handshake'), 1);
  } finally {
    await p.close();
    await up.close();
  }
});

test('a SAN mismatch fails the connection: 503 UF, ssl.fail_verify_san, the upstream app is never reached', async () => {
  const up = await tlsUpstream(serverLeaf);
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }], { san: 'spiffe://cluster.local/ns/default/sa/ratings' }));
  try {
    const r = await request(port);
    assert.equal(r.status, 503);
    assert.equal(up.seen.length, 0);
    assert.equal(stat(p, 'cluster.reviews.ssl.fail_verify_san'), 1);
    await eventually(() => p.accessLog.length > 0);
    const log = JSON.parse(p.accessLog[0]!) as { response_flags: string; response_code_details: string };
    assert.equal(log.response_flags, 'UF');
    assert.match(log.response_code_details, /TLS_error:_SAN_mismatch/);
  } finally {
    await p.close();
    await up.close();
  }
});

test('an upstream certificate from another CA is rejected: 503 UF, ssl.fail_verify_error', async () => {
  const foreign = await issue(otherRoot, { uri: SERVER_ID });
  const up = await tlsUpstream(foreign);
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }]));
  try {
    const r = await request(port);
    assert.equal(r.status, 503);
    assert.equal(up.seen.length, 0);
    assert.equal(stat(p, 'cluster.reviews.ssl.fail_verify_error'), 1);
    await eventually(() => p.accessLog.length > 0);
    assert.match(p.accessLog[0]!, /"response_flags":"UF"/);
    assert.match(p.accessLog[0]!, /certificate_verify_failed/);
  } finally {
    await p.close();
    await up.close();
  }
});

test('a server that refuses the client certificate (other CA) is a connection failure too', async () => {
  const up = await tlsUpstream(serverLeaf, { clientCa: otherRoot.pem });
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }]));
  try {
    const r = await request(port);
    assert.equal(r.status, 503);
    assert.equal(up.seen.length, 0);
  } finally {
    await p.close();
    await up.close();
  }
});

test('transport_socket_matches: the tlsMode=istio endpoint gets TLS, the other stays plaintext', async () => {
  const secure = await tlsUpstream(serverLeaf);
  const plain = await httpUpstream((_req, res) => res.end('plain'));
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: secure.port, tls: true }, { port: plain.port, tls: false }]));
  try {
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await request(port);
      assert.equal(r.status, 200);
      bodies.push(r.body);
    }
    assert.ok(bodies.includes('plain') && bodies.includes('hello over 1.1'), bodies.join(','));
    assert.equal(secure.seen.length + plain.requests.length, 6);
    assert.ok(secure.seen.every((s) => s.serial === clientLeaf.serial));
  } finally {
    await p.close();
    await secure.close();
    await plain.close();
  }
});

test('rotation of the default secret: new connections present the new certificate, pooled ones keep working', async () => {
  let release: (() => void) | undefined;
  const up = await tlsUpstream(serverLeaf, {
    handler: (path, res) => {
      if (path === '/slow') release = () => res.end('slow done');
      else res.end('ok');
    },
  });
  const clusterJson = autoMtlsCluster('reviews', [{ port: up.port, tls: true }]);
  const listener = httpListener({ name: 'out', routes: routeTo('reviews') });
  const p = await startProxy(snapshot({ listeners: [listener], clusters: [clusterJson], secrets: secrets(clientLeaf) }));
  const port = p.port('out');
  try {
    assert.equal((await request(port)).status, 200);
    assert.equal(up.connections, 1);
    const rotated = await issue(root, { uri: CLIENT_ID });
    await p.set(snapshot({ listeners: [listener], clusters: [clusterJson], secrets: secrets(rotated) }, p.current));
    // The idle (old-certificate) connection carries /slow; /fresh needs a new connection meanwhile.
    const slow = request(port, { path: '/slow' });
    await eventually(() => release !== undefined);
    const fresh = await request(port, { path: '/fresh' });
    assert.equal(fresh.status, 200);
    release!();
    const s = await slow;
    assert.equal(s.status, 200);
    assert.equal(s.body, 'slow done');
    assert.equal(up.connections, 2);
    assert.deepEqual(up.seen.map((x) => x.serial), [clientLeaf.serial, clientLeaf.serial, rotated.serial]);
  } finally {
    await p.close();
    await up.close();
  }
});

test('HTTP/2 upstream over TLS (ALPN h2)', async () => {
  const up = await tlsUpstream(serverLeaf, { h2: true });
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }], { h2: true }));
  try {
    const r = await request(port);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello over 2.0');
    assert.equal(up.seen[0]!.alpn, 'h2');
    assert.equal(up.seen[0]!.serial, clientLeaf.serial);
    assert.equal((await request(port)).status, 200);
    assert.equal(up.connections, 1);
  } finally {
    await p.close();
    await up.close();
  }
});

test('HTTP/2 over TLS with a SAN mismatch: 503 UF, counted, the upstream never reached', async () => {
  const up = await tlsUpstream(serverLeaf, { h2: true });
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }], { h2: true, san: { san_type: 'URI', matcher: { prefix: 'spiffe://other.domain/' } } }));
  try {
    assert.equal((await request(port)).status, 503);
    assert.equal(up.seen.length, 0);
    assert.equal(stat(p, 'cluster.reviews.ssl.fail_verify_san'), 1);
    await eventually(() => p.accessLog.length > 0);
    assert.match(p.accessLog[0]!, /"response_flags":"UF"/);
    assert.match(p.accessLog[0]!, /TLS_error:_SAN_mismatch/);
  } finally {
    await p.close();
    await up.close();
  }
});

test('an HTTP/1.1 cluster does not offer h2: a server speaking both answers in HTTP/1.1', async () => {
  const up = await tlsUpstream(serverLeaf, { h2: true, allowHTTP1: true });
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }]));
  try {
    const r = await request(port);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello over 1.1');
    assert.equal(up.seen[0]!.alpn, 'http/1.1');
  } finally {
    await p.close();
    await up.close();
  }
});

test('the node:http (agent) upstream path originates TLS too (HTTP/2 downstream, HTTP/1.1 TLS upstream)', async () => {
  const up = await tlsUpstream(serverLeaf);
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }]));
  const client = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const get = () => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = client.request({ ':path': '/' });
      let status = 0;
      let body = '';
      s.on('response', (h) => (status = Number(h[':status'])));
      s.on('data', (d) => (body += d));
      s.on('end', () => resolve({ status, body }));
      s.on('error', reject);
      s.end();
    });
    assert.deepEqual(await get(), { status: 200, body: 'hello over 1.1' });
    assert.deepEqual(await get(), { status: 200, body: 'hello over 1.1' });
    assert.equal(up.connections, 1);
    assert.equal(up.seen[0]!.serial, clientLeaf.serial);
  } finally {
    client.close();
    await p.close();
    await up.close();
  }
});

test('session resumption: a second connection to the endpoint resumes the TLS session', async () => {
  // Every response closes its connection: each request needs a new one.
  const up = await tlsUpstream(serverLeaf, {
    handler: (_path, res) => {
      res.setHeader('connection', 'close');
      res.end('bye');
    },
  });
  const { p, port } = await proxyTo(autoMtlsCluster('reviews', [{ port: up.port, tls: true }]));
  try {
    assert.equal((await request(port)).status, 200);
    await new Promise((r) => setTimeout(r, 50)); // TLS 1.3 tickets arrive after the handshake
    assert.equal((await request(port)).status, 200);
    assert.equal(up.connections, 2);
    assert.deepEqual(up.seen.map((s) => s.resumed), [false, true]);
    assert.equal(up.seen[1]!.serial, clientLeaf.serial);
    assert.equal(stat(p, 'cluster.reviews.ssl.session_reused'), 1);
  } finally {
    await p.close();
    await up.close();
  }
});

test('a TCP proxy to a TLS endpoint originates TLS', async () => {
  const server = tls.createServer({ cert: serverLeaf.cert, key: serverLeaf.key, ca: root.pem, requestCert: true, rejectUnauthorized: true }, (s) => {
    s.end(`peer ${s.getPeerCertificate().serialNumber}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const upPort = (server.address() as AddressInfo).port;
  const p = await startProxy(snapshot({ listeners: [tcpListener('tcp', 'db')], clusters: [autoMtlsCluster('db', [{ port: upPort, tls: true }])], secrets: secrets(clientLeaf) }));
  try {
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect(p.port('tcp'), '127.0.0.1');
      let data = '';
      c.on('data', (d) => (data += d));
      c.on('end', () => resolve(data));
      c.on('error', reject);
    });
    assert.equal(got, `peer ${clientLeaf.serial}`);
  } finally {
    await p.close();
    await new Promise((r) => server.close(r));
  }
});

test('a missing SDS secret fails connections (503 UF) until it arrives', async () => {
  const up = await tlsUpstream(serverLeaf);
  const clusterJson = autoMtlsCluster('reviews', [{ port: up.port, tls: true }]);
  const listener = httpListener({ name: 'out', routes: routeTo('reviews') });
  const p = await startProxy(snapshot({ listeners: [listener], clusters: [clusterJson], secrets: [] }));
  try {
    assert.equal((await request(port(p))).status, 503);
    assert.equal(up.seen.length, 0);
    await p.set(snapshot({ listeners: [listener], clusters: [clusterJson], secrets: secrets(clientLeaf) }, p.current));
    assert.equal((await request(port(p))).status, 200);
  } finally {
    await p.close();
    await up.close();
  }
});
const port = (p: TestProxy) => p.port('out');

test('invalid UpstreamTlsContexts are rejected naming the field', () => {
  const bad = (ts: JsonObject) => () => compileCluster(autoMtlsClusterWith(ts), undefined);
  const withSan = mtlsSocket({ san_type: 'FOO', matcher: { exact: 'x' } });
  assert.throws(bad(withSan), /transport_socket_matches\[0\]\.transport_socket\.typed_config\.common_tls_context\.combined_validation_context\.default_validation_context\.match_typed_subject_alt_names\[0\]\.san_type: must be one of URI, DNS/);
  const noName = mtlsSocket();
  ((noName.typed_config as JsonObject).common_tls_context as JsonObject).tls_certificate_sds_secret_configs = [{ sds_config: { ads: {} } }];
  assert.throws(bad(noName), /common_tls_context\.tls_certificate_sds_secret_configs\[0\]\.name: is required/);
  const noMatcher = mtlsSocket({ san_type: 'URI', matcher: {} });
  assert.throws(bad(noMatcher), /match_typed_subject_alt_names\[0\]\.matcher: one of exact/);
  const other = { name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts' } };
  assert.throws(bad(other), /transport_socket\.typed_config\.@type: transport socket .* is not supported/);
  // SAN rules without any trust anchor would verify nothing (Envoy rejects this too).
  const noTrust: JsonObject = { name: 't', typed_config: { '@type': EXTENSION_TYPE_URL.upstreamTls, common_tls_context: { validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'a' } }] } } } };
  assert.throws(bad(noTrust), /common_tls_context\.validation_context: SAN matchers need a trusted CA/);
  // A DestinationRule SIMPLE/MUTUAL style context with files compiles.
  const files: JsonObject = {
    name: 't',
    typed_config: {
      '@type': EXTENSION_TYPE_URL.upstreamTls,
      sni: 'db.example.com',
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: '/etc/certs/cert.pem' }, private_key: { filename: '/etc/certs/key.pem' } }],
        validation_context: { trusted_ca: { filename: '/etc/certs/ca.pem' }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { suffix: '.example.com' } }] },
      },
    },
  };
  const c = compileCluster(autoMtlsClusterWith(files), undefined);
  const t = c.transportSocketMatches[0]!.tls!;
  assert.equal(t.sni, 'db.example.com');
  assert.deepEqual(t.certs, [{ kind: 'pair', cert: { kind: 'file', path: '/etc/certs/cert.pem' }, key: { kind: 'file', path: '/etc/certs/key.pem' } }]);
  assert.deepEqual(t.trust, { kind: 'ca', ca: { kind: 'file', path: '/etc/certs/ca.pem' } });
  assert.equal(c.transportSocketMatches[1]!.tls, undefined);
});

function autoMtlsClusterWith(ts: JsonObject): JsonObject {
  const c = autoMtlsCluster('reviews', [{ port: 1, tls: true }]);
  (c.transport_socket_matches as JsonObject[])[0]!.transport_socket = ts;
  return c;
}

test('SAN parsing and matching', () => {
  assert.deepEqual(parseSubjectAltName('URI:spiffe://a/b, DNS:x.example.com, URI:"spiffe://c,d"'), [
    { type: 'URI', value: 'spiffe://a/b' },
    { type: 'DNS', value: 'x.example.com' },
    { type: 'URI', value: 'spiffe://c,d' },
  ]);
  const m = (type: 'URI' | 'DNS', kind: 'exact' | 'prefix' | 'suffix' | 'contains', value: string) => ({ type, matcher: { kind, value, ignoreCase: false } as const });
  assert.ok(sanMatches([m('URI', 'prefix', 'spiffe://a/')], 'URI:spiffe://a/b'));
  assert.ok(!sanMatches([m('DNS', 'prefix', 'spiffe://a/')], 'URI:spiffe://a/b'));
  assert.ok(sanMatches([m('DNS', 'suffix', '.example.com')], 'URI:spiffe://a/b, DNS:x.example.com'));
  assert.ok(sanMatches([m('URI', 'contains', 'ns/default')], 'URI:spiffe://cluster.local/ns/default/sa/x'));
  assert.ok(!sanMatches([m('URI', 'exact', 'spiffe://a')], undefined));
  assert.ok(sanMatches([], undefined));
});
