// mTLS in the telemetry labels: LabelCache with connection identities, and tlsIdentity() reading
// them from real TLS sockets on loopback (certificates from a throwaway openssl CA).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { ClusterConfig, Endpoint } from '../src/config/model.ts';
import { encodePeer, type PeerIdentity } from '../src/dataplane/headers.ts';
import { setResumedPeer, spiffeOf, tlsIdentity } from '../src/dataplane/tls-peer.ts';
import { LabelCache } from '../src/telemetry/labels.ts';
import { Metrics } from '../src/telemetry/metrics.ts';

const self: PeerIdentity = { workload: 'reviews-v1', namespace: 'default', app: 'reviews', version: 'v1', principal: '' };
const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/productpage';
const cluster = { name: 'outbound|9080||ratings.default.svc.cluster.local' } as unknown as ClusterConfig;
const inboundCluster = { name: 'inbound|9080||' } as unknown as ClusterConfig;
const ep = { key: '127.0.0.1:1', metadata: { filter_metadata: { istio: { workload: 'ratings-v1;default;ratings;v1;Kubernetes' } } } } as unknown as Endpoint;

describe('labels from the connection', () => {
  test('inbound over mutual TLS: policy mutual_tls, source principal from the client certificate, destination principal our own', () => {
    const labels = new LabelCache(new Metrics(), self);
    const peer = encodePeer({ workload: 'productpage-v1', namespace: 'default', app: 'productpage', version: 'v1', principal: 'spiffe://claimed/by/header' });
    const b = labels.inbound(peer, inboundCluster, { peer: CLIENT_ID, local: SERVER_ID });
    assert.equal(b.set.connection_security_policy, 'mutual_tls');
    assert.equal(b.set.source_principal, CLIENT_ID);
    assert.equal(b.set.destination_principal, SERVER_ID);
    assert.equal(b.set.source_workload, 'productpage-v1');
    // Cached per (peer header, cluster, principals): the same object on the next request.
    assert.equal(labels.inbound(peer, inboundCluster, { peer: CLIENT_ID, local: SERVER_ID }), b);
    assert.notEqual(labels.inbound(peer, inboundCluster, { peer: 'spiffe://cluster.local/ns/x/sa/y', local: SERVER_ID }), b);
    // Without a peer header or a route, the connection still names the source.
    const bare = labels.inbound(undefined, undefined, { peer: CLIENT_ID, local: SERVER_ID });
    assert.equal(bare.set.connection_security_policy, 'mutual_tls');
    assert.equal(bare.set.source_workload, 'unknown');
    assert.equal(bare.set.source_principal, CLIENT_ID);
  });

  test('inbound plaintext, or TLS without a verified client certificate: none, principals unknown (a header claim is not a proof)', () => {
    const labels = new LabelCache(new Metrics(), self);
    const peer = encodePeer({ workload: 'productpage-v1', namespace: 'default', app: 'productpage', version: 'v1', principal: CLIENT_ID });
    for (const tlsId of [undefined, { peer: undefined, local: SERVER_ID }]) {
      const b = labels.inbound(peer, inboundCluster, tlsId);
      assert.equal(b.set.connection_security_policy, 'none');
      assert.equal(b.set.source_principal, 'unknown');
      assert.equal(b.set.destination_principal, 'unknown');
    }
    assert.equal(labels.inbound(undefined, undefined, { peer: undefined, local: SERVER_ID }), labels.inbound(undefined, undefined));
  });

  test('a verified client certificate without a URI SAN: mutual_tls, source principal unknown', () => {
    const b = new LabelCache(new Metrics(), self).inbound(undefined, inboundCluster, { peer: '', local: SERVER_ID });
    assert.equal(b.set.connection_security_policy, 'mutual_tls');
    assert.equal(b.set.source_principal, 'unknown');
  });

  test('outbound over TLS: policy stays unknown (Istio’s client side), principals from the certificates', () => {
    const labels = new LabelCache(new Metrics(), { ...self, workload: 'productpage-v1', app: 'productpage' });
    const plain = labels.outbound(cluster, ep, undefined);
    assert.equal(plain.set.destination_principal, 'unknown');
    assert.equal(plain.set.source_principal, 'unknown');
    const viaTls = labels.outbound(cluster, ep, undefined, { peer: SERVER_ID, local: CLIENT_ID });
    assert.equal(viaTls.set.connection_security_policy, 'unknown');
    assert.equal(viaTls.set.destination_principal, SERVER_ID);
    assert.equal(viaTls.set.source_principal, CLIENT_ID);
    assert.equal(viaTls.set.destination_workload, 'ratings-v1');
    assert.equal(labels.outbound(cluster, ep, undefined, { peer: SERVER_ID, local: CLIENT_ID }), viaTls);
    const peer = encodePeer({ workload: 'ratings-v1', namespace: 'default', app: 'ratings', version: 'v1', principal: '' });
    const withPeer = labels.outbound(cluster, ep, peer, { peer: SERVER_ID, local: CLIENT_ID });
    assert.equal(withPeer.set.destination_principal, SERVER_ID);
    assert.equal(labels.outbound(cluster, ep, peer, { peer: SERVER_ID, local: CLIENT_ID }), withPeer);
    // An unverified server certificate names no one.
    assert.equal(labels.outbound(cluster, ep, undefined, { peer: undefined, local: CLIENT_ID }).set.destination_principal, 'unknown');
  });

  test('spiffeOf: the SPIFFE URI SAN first, else the first URI SAN, else empty', () => {
    assert.equal(spiffeOf(`DNS:reviews, URI:https://x.example, URI:${SERVER_ID}`), SERVER_ID);
    assert.equal(spiffeOf('URI:https://x.example'), 'https://x.example');
    assert.equal(spiffeOf('DNS:reviews'), '');
    assert.equal(spiffeOf(undefined), '');
  });
});

describe('tlsIdentity on real sockets', () => {
  let dir: string;
  const file = (n: string) => path.join(dir, n);
  const read = (n: string) => fs.readFileSync(file(n));
  const servers: net.Server[] = [];

  function leaf(name: string, ca: string, san: string): void {
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${name}`], { stdio: 'ignore' });
    fs.writeFileSync(file(`${name}.ext`), `subjectAltName=${san}\n`);
    execFileSync('openssl', ['x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}.key`), '-CAcreateserial', '-out', file(`${name}.pem`), '-days', '1', '-extfile', file(`${name}.ext`)], { stdio: 'ignore' });
  }
  function root(name: string): void {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.pem`), '-subj', `/CN=${name}`, '-days', '1'], { stdio: 'ignore' });
  }

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-telemetry-mtls-'));
    root('ca');
    root('other-ca');
    leaf('server', 'ca', `URI:${SERVER_ID}`);
    leaf('client', 'ca', `DNS:client, URI:${CLIENT_ID}`);
    leaf('stranger', 'other-ca', 'URI:spiffe://cluster.local/ns/evil/sa/x');
  });

  after(() => {
    for (const s of servers) s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A TLS server that reports tlsIdentity() of each accepted connection (twice: the second from the cache). */
  async function server(verify: boolean): Promise<{ port: number; seen: unknown[] }> {
    const seen: unknown[] = [];
    const s = tls.createServer({ key: read('server.key'), cert: read('server.pem'), ca: read('ca.pem'), requestCert: true, rejectUnauthorized: verify }, (sock) => {
      const a = tlsIdentity(sock);
      seen.push(a, tlsIdentity(sock) === a);
      sock.end('ok');
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { port: (s.address() as net.AddressInfo).port, seen };
  }

  function connect(port: number, cert: string | undefined, session?: Buffer): Promise<{ sock: tls.TLSSocket; session?: Buffer }> {
    return new Promise((resolve, reject) => {
      let newSession: Buffer | undefined;
      const sock = tls.connect({
        host: '127.0.0.1', port, ca: read('ca.pem'), checkServerIdentity: () => undefined,
        ...(cert ? { key: read(`${cert}.key`), cert: read(`${cert}.pem`) } : {}),
        ...(session ? { session } : {}),
      });
      sock.on('session', (s: Buffer) => (newSession = s));
      sock.on('error', reject);
      sock.resume();
      sock.on('end', () => resolve({ sock, ...(newSession ? { session: newSession } : {}) }));
    });
  }

  test('server side: a verified client certificate names the peer, our certificate names us; cached per connection', async () => {
    const { port, seen } = await server(true);
    const { sock } = await connect(port, 'client');
    sock.destroy();
    assert.deepEqual(seen, [{ peer: CLIENT_ID, local: SERVER_ID }, true]);
  });

  test('server side: no client certificate, or one from another CA, names no peer', async () => {
    const { port, seen } = await server(false);
    (await connect(port, undefined)).sock.destroy();
    (await connect(port, 'stranger')).sock.destroy();
    assert.deepEqual(seen, [{ peer: undefined, local: SERVER_ID }, true, { peer: undefined, local: SERVER_ID }, true]);
  });

  test('client side: the server’s principal, read any number of times; a resumed session has none unless the connector names it', async () => {
    const { port } = await server(true);
    const first = await connect(port, 'client');
    assert.deepEqual(tlsIdentity(first.sock), { peer: SERVER_ID, local: CLIENT_ID });
    assert.equal(tlsIdentity(first.sock), tlsIdentity(first.sock));
    first.sock.destroy();
    assert.ok(first.session, 'a session ticket');
    const resumed = await connect(port, 'client', first.session);
    assert.equal(resumed.sock.isSessionReused(), true);
    setResumedPeer(resumed.sock, SERVER_ID);
    assert.deepEqual(tlsIdentity(resumed.sock), { peer: SERVER_ID, local: CLIENT_ID });
    resumed.sock.destroy();
    const bare = await connect(port, 'client', resumed.session ?? first.session);
    assert.equal(bare.sock.isSessionReused(), true);
    assert.equal(tlsIdentity(bare.sock)?.peer, undefined, 'Node gives no peer certificate on a resumed client session');
    bare.sock.destroy();
  });

  test('plaintext sockets cost nothing and name no one', async () => {
    const s = net.createServer((c) => c.end());
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const c = net.connect((s.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    assert.equal(tlsIdentity(c), undefined);
    assert.equal(tlsIdentity(undefined), undefined);
    c.destroy();
  });
});
