import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { EXTENSION_TYPE_URL, TYPE_URL, type JsonObject } from '@tern/xds';
import { IdentityAgent, ROOT_SECRET, WORKLOAD_SECRET } from '../src/identity/agent.ts';
import type { IdentityConfig } from '../src/identity/config.ts';
import { ConfigStore } from '../src/config/store.ts';
import { Engine } from '../src/dataplane/engine.ts';
import { listenerTlsCounters } from '../src/dataplane/listener-tls-stats.ts';
import { ListenerManager } from '../src/dataplane/listeners.ts';
import { cluster, eventually, httpListener, httpUpstream, quiet, routeTo } from './dataplane-helpers.ts';
import { makeRoot, startTestCa, type TestCa } from './identity-helpers.ts';

const SPIFFE = 'spiffe://cluster.local/ns/shop/sa/web';
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function config(ca: TestCa, extra: Partial<IdentityConfig> = {}): IdentityConfig {
  return { caAddress: ca.address, caTls: false, token: { kind: 'env', name: 'TERN_JOIN_TOKEN', value: 'good' }, trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web', spiffeId: SPIFFE, ttlSeconds: 0, outputDir: undefined, renew: { fraction: 0.5, jitter: 0.1 }, proxyId: undefined, ...extra };
}

function agent(ca: TestCa, extra: Partial<IdentityConfig> = {}) {
  const published: Map<string, JsonObject>[] = [];
  const a = new IdentityAgent({ config: config(ca, extra), log: quiet, onSecrets: (s) => published.push(s), random: () => 0 });
  cleanups.push(() => a.close());
  return { a, published };
}

test('obtains a certificate for its SPIFFE ID and publishes the default and ROOTCA secrets', async () => {
  const ca = await startTestCa({ token: 'good' });
  cleanups.push(() => ca.close());
  const { a, published } = agent(ca);
  await a.renewNow();
  const st = a.status();
  assert.equal(st.state, 'ready');
  assert.equal(st.cert?.spiffeId, SPIFFE);
  assert.deepEqual(ca.issued.map((i) => [i.sans, i.token]), [[[SPIFFE], 'good']]);
  const s = published.at(-1)!;
  assert.deepEqual([...s.keys()].sort(), [ROOT_SECRET, WORKLOAD_SECRET]);
  const tc = (s.get(WORKLOAD_SECRET)!.tls_certificate as { certificate_chain: { inline_string: string }; private_key: { inline_string: string } });
  assert.match(tc.private_key.inline_string, /BEGIN PRIVATE KEY/);
  tls.createSecureContext({ cert: tc.certificate_chain.inline_string, key: tc.private_key.inline_string });
  assert.equal((s.get(ROOT_SECRET)!.validation_context as { trusted_ca: { inline_string: string } }).trusted_ca.inline_string.trim(), ca.root.pem.trim());
  // The status never carries the key.
  assert.doesNotMatch(JSON.stringify(st), /PRIVATE KEY/);
});

test('renewals authenticate with the current certificate; the join token only when that is refused', async () => {
  const ca = await startTestCa({ token: 'good' });
  cleanups.push(() => ca.close());
  const { a } = agent(ca);
  await a.renewNow();
  assert.equal(a.status().lastCredential, 'join-token');
  // The (single-use) token is gone: renewals do not need it.
  ca.tokens.clear();
  await a.renewNow();
  await a.renewNow();
  assert.deepEqual(ca.issued.map((i) => i.token), ['good', 'svid', 'svid']);
  assert.equal(a.status().lastCredential, 'certificate');
  assert.equal(a.status().consecutiveFailures, 0);
  // A CA that does not accept the certificate: the join token again.
  ca.acceptSvid = false;
  await a.renewNow();
  assert.equal(a.status().state, 'ready');
  assert.equal(a.status().consecutiveFailures, 1);
  assert.match(a.status().lastError!.message, /\(join token\): UNAUTHENTICATED: join token not accepted/);
  ca.tokens.add('good');
  const before = a.status().cert!.serial;
  await a.renewNow();
  assert.notEqual(a.status().cert!.serial, before);
  assert.equal(a.status().lastCredential, 'join-token');
  assert.deepEqual(ca.issued.map((i) => i.token).at(-1), 'good');
});

test('a refused token: no certificate, the error in the status, retried with backoff', async () => {
  const ca = await startTestCa({ token: 'good' });
  cleanups.push(() => ca.close());
  const { a, published } = agent(ca, { token: { kind: 'env', name: 'TERN_JOIN_TOKEN', value: 'wrong' } });
  a.start();
  await eventually(() => a.status().consecutiveFailures >= 2, 8000);
  const st = a.status();
  assert.equal(st.state, 'error');
  assert.equal(st.cert, undefined);
  assert.match(st.lastError!.message, /UNAUTHENTICATED: join token not accepted/);
  assert.equal(published.length, 0);
  // Once the CA accepts it, the next retry succeeds.
  ca.tokens.add('wrong');
  await eventually(() => a.status().state === 'ready', 8000);
});

test('TERN_SA_TOKEN_FILE: the projected token file is re-read for every call (kubelet rotates it)', async () => {
  const ca = await startTestCa({ token: 'token-A' });
  cleanups.push(() => ca.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-sa-token-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'tern-token');
  fs.writeFileSync(file, 'token-A\n');
  const { a } = agent(ca, { token: { kind: 'sa-file', path: file, from: 'TERN_SA_TOKEN_FILE' } });
  await a.renewNow();
  assert.equal(a.status().state, 'ready');
  assert.equal(a.status().lastCredential, 'service-account-token');
  assert.match(a.status().credential, /^service-account token from file .*tern-token \(TERN_SA_TOKEN_FILE\)$/);
  assert.deepEqual(ca.issued.map((i) => i.token), ['token-A']);
  // kubelet rotated the token: the next call that needs it sends the new content.
  ca.acceptSvid = false;
  ca.tokens = new Set(['token-B']);
  fs.writeFileSync(file, 'token-B\n');
  await a.renewNow();
  assert.equal(a.status().consecutiveFailures, 0, a.status().lastError?.message);
  assert.deepEqual(ca.issued.map((i) => i.token), ['token-A', 'token-B']);
  // A token the CA refuses: the error names the credential and the file.
  fs.writeFileSync(file, 'token-C');
  await a.renewNow();
  assert.match(a.status().lastError!.message, /\(service-account token\): UNAUTHENTICATED: join token not accepted \(the token from .*tern-token was refused/);
  // An empty or missing file is named with the variable.
  fs.writeFileSync(file, '  \n');
  await a.renewNow();
  assert.match(a.status().lastError!.message, /^TERN_SA_TOKEN_FILE: the service-account token file .*tern-token is empty/);
  fs.rmSync(file);
  await a.renewNow();
  assert.match(a.status().lastError!.message, /^TERN_SA_TOKEN_FILE: cannot read the service-account token file .*tern-token: ENOENT/);
  fs.writeFileSync(file, 'token-B');
  await a.renewNow();
  assert.deepEqual(ca.issued.map((i) => i.token), ['token-A', 'token-B', 'token-B']);
});

test('renewal failures keep the current certificate until it expires, then drop it; a recovered CA issues a new one', async () => {
  const ca = await startTestCa({ token: 'good', lifetimeMs: 4000 });
  cleanups.push(() => ca.close());
  const { a, published } = agent(ca);
  await a.renewNow();
  const first = a.status().cert!.serial;
  ca.failWith = grpc.status.UNAVAILABLE;
  await a.renewNow();
  assert.equal(a.status().cert?.serial, first, 'the old certificate stays');
  assert.equal(a.status().consecutiveFailures, 1);
  assert.match(a.status().lastError!.message, /UNAVAILABLE/);
  assert.ok(published.at(-1)!.has(WORKLOAD_SECRET));
  // Past its notAfter (about 4 s) the certificate is withdrawn; the roots stay.
  await eventually(() => a.status().cert === undefined, 8000);
  assert.equal(published.at(-1)!.has(WORKLOAD_SECRET), false);
  assert.equal(published.at(-1)!.has(ROOT_SECRET), true);
  ca.failWith = undefined;
  ca.lifetimeMs = 3_600_000;
  await eventually(() => a.status().state === 'ready', 8000);
  assert.notEqual(a.status().cert!.serial, first);
});

test('root rotation: old and new roots are both trusted during the overlap', async () => {
  const ca = await startTestCa({ token: 'good' });
  cleanups.push(() => ca.close());
  const { a, published } = agent(ca);
  await a.renewNow();
  const oldRoot = ca.root;
  ca.root = await makeRoot('next-root');
  await a.renewNow();
  assert.deepEqual(a.roots.map((r) => r.subject), ['CN=next-root', 'CN=test-root']);
  const bundle = (published.at(-1)!.get(ROOT_SECRET)!.validation_context as { trusted_ca: { inline_string: string } }).trusted_ca.inline_string;
  assert.ok(bundle.includes(oldRoot.pem.trim().split('\n')[1]!) && bundle.includes(ca.root.pem.trim().split('\n')[1]!));
  await a.renewNow();
  assert.equal(a.roots.length, 2, 'no duplicates');
});

test('a trust bundle from the CA is the whole truth: a root added ahead of a rotation is trusted at once, a dropped one no longer', async () => {
  const ca = await startTestCa({ token: 'good' });
  cleanups.push(() => ca.close());
  const { a, published } = agent(ca, { proxyId: 'web-1.shop' });
  const next = await makeRoot('next-root');
  const stale = await makeRoot('stale-root');
  // Learnt from an earlier chain (no bundle then): kept while nothing says otherwise.
  const earlier = ca.root;
  ca.root = stale;
  await a.renewNow();
  ca.root = earlier;
  ca.bundle = [earlier.pem, next.pem];
  await a.renewNow();
  assert.deepEqual(a.roots.map((r) => r.subject).sort(), ['CN=next-root', 'CN=test-root'], 'the bundle replaces what was learnt; the stale root is gone');
  const trusted = (published.at(-1)!.get(ROOT_SECRET)!.validation_context as { trusted_ca: { inline_string: string } }).trusted_ca.inline_string;
  assert.ok(trusted.includes(next.pem.trim().split('\n')[1]!), 'the next root is in ROOTCA before anything is issued from it');
  assert.ok(!trusted.includes(stale.pem.trim().split('\n')[1]!));
  // The switch: issued from the next root, the old one still in the bundle.
  ca.root = next;
  await a.renewNow();
  assert.deepEqual(a.roots.map((r) => r.subject).sort(), ['CN=next-root', 'CN=test-root']);
  // The old root dropped from the bundle: no longer trusted.
  ca.bundle = [next.pem];
  await a.renewNow();
  assert.deepEqual(a.roots.map((r) => r.subject), ['CN=next-root']);
  assert.deepEqual(ca.proxyIds, ['web-1.shop', 'web-1.shop', 'web-1.shop', 'web-1.shop'], 'the node id goes with every call');
});

test('file output for proxyless gRPC on every rotation', async () => {
  const ca = await startTestCa({ token: 'good' });
  cleanups.push(() => ca.close());
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tern-id-')), 'out');
  cleanups.push(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));
  const { a } = agent(ca, { outputDir: dir });
  await a.renewNow();
  const chain1 = fs.readFileSync(path.join(dir, 'cert-chain.pem'), 'utf8');
  await a.renewNow();
  const chain2 = fs.readFileSync(path.join(dir, 'cert-chain.pem'), 'utf8');
  assert.notEqual(chain1, chain2);
  assert.equal(fs.statSync(path.join(dir, 'key.pem')).mode & 0o777, 0o600);
  // The files are a usable pair: the key matches the chain.
  tls.createSecureContext({ cert: chain2, key: fs.readFileSync(path.join(dir, 'key.pem')), ca: fs.readFileSync(path.join(dir, 'root-cert.pem')) });
  assert.equal(new (await import('node:crypto')).X509Certificate(chain2).serialNumber, a.status().cert!.serial);
});

test('an mTLS listener using the SDS secrets: rotation reaches new handshakes, an open connection keeps working', async () => {
  const ca = await startTestCa({ token: 'good' });
  cleanups.push(() => ca.close());
  const up = await httpUpstream();
  cleanups.push(() => up.close());
  const transportSocket = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': EXTENSION_TYPE_URL.downstreamTls,
      require_client_certificate: true,
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
        validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
        alpn_protocols: ['http/1.1'],
      },
    },
  };
  const statics = new Map([
    [TYPE_URL.listener, new Map([['mtls', httpListener({ name: 'mtls', routes: routeTo('web'), transportSocket })]])],
    [TYPE_URL.cluster, new Map([['web', cluster('web', [up.port])]])],
  ]);
  const store = new ConfigStore({ staticResources: statics });
  const engine = new Engine({ snapshot: () => store.snapshot, self: { workload: 'web', namespace: 'shop', app: 'web', version: 'v1', principal: '' }, accessLog: false, lb: store.lb });
  const listeners = new ListenerManager(engine, quiet, 200);
  cleanups.push(async () => {
    await listeners.close(100);
    engine.close();
  });
  store.onChange(({ snapshot }) => void listeners.apply(snapshot));
  await listeners.apply(store.snapshot);
  // Bound before the certificate exists; its TLS chain closes connections (counted) until it arrives.
  assert.equal(listeners.failed.get('mtls'), undefined);
  const port = (listeners.address('mtls') as { port: number }).port;
  const early = await new Promise<string>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve('handshake'));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.on('close', () => resolve('closed'));
  });
  assert.notEqual(early, 'handshake');
  // Named by the configured address, as Envoy does (port 0 here: the kernel picked one).
  assert.equal(listenerTlsCounters(engine, '127.0.0.1_0').connection_error, 1);
  // The ADS client does not subscribe to what the agent provides.
  const a = new IdentityAgent({ config: config(ca), log: quiet, onSecrets: (s) => store.setLocal(TYPE_URL.secret, s), random: () => 0.5 });
  cleanups.push(() => a.close());
  await a.renewNow();
  assert.deepEqual(store.wantedNames(TYPE_URL.secret), []);
  const first = a.certificate!;
  const client = { cert: first.chainPem[0], key: first.keyPem, ca: ca.root.pem, checkServerIdentity: () => undefined };
  const agentKeepAlive = new https.Agent({ keepAlive: true, maxSockets: 1, ...client });
  cleanups.push(() => agentKeepAlive.destroy());
  const get = (ag: https.Agent | false) => new Promise<{ status: number; serial: string; socket: unknown }>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', agent: ag, ...(ag === false ? client : {}) }, (res) => {
      res.resume();
      const sock = res.socket as tls.TLSSocket;
      const serial = sock.getPeerCertificate().serialNumber;
      res.on('end', () => resolve({ status: res.statusCode!, serial, socket: sock }));
    });
    req.on('error', reject);
    req.end();
  });
  const r1 = await get(agentKeepAlive);
  assert.equal(r1.status, 200);
  assert.equal(r1.serial, first.serial);
  await a.renewNow();
  const second = a.certificate!;
  assert.notEqual(second.serial, first.serial);
  await eventually(async () => (await get(false)).serial === second.serial, 5000);
  // The keep-alive connection made before the rotation is the same socket, still serving.
  const r2 = await get(agentKeepAlive);
  assert.equal(r2.status, 200);
  assert.equal(r2.socket, r1.socket);
  assert.equal(r2.serial, first.serial);
  // A client without a certificate is refused (ROOTCA is enforced).
  await assert.rejects(new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', agent: false, ca: ca.root.pem, checkServerIdentity: () => undefined }, (res) => resolve(res.statusCode));
    req.on('error', reject);
    req.end();
  }));
});

test('the store: the agent\'s secrets win over secrets of the same name from xDS and are not subscribed to', () => {
  const store = new ConfigStore();
  const listener = httpListener({ name: 'l', routes: routeTo('web'), transportSocket: { name: 'tls', typed_config: { '@type': EXTENSION_TYPE_URL.downstreamTls, common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default' }], validation_context_sds_secret_config: { name: 'ROOTCA' } } } } });
  store.replaceType(TYPE_URL.listener, new Map([['l', { json: listener }]]), '1');
  assert.deepEqual(store.wantedNames(TYPE_URL.secret), ['ROOTCA', 'default']);
  const fromXds = { name: 'default', tls_certificate: { certificate_chain: { inline_string: 'from-xds' }, private_key: { inline_string: 'k' } } };
  const fromAgent = { name: 'default', tls_certificate: { certificate_chain: { inline_string: 'from-agent' }, private_key: { inline_string: 'k' } } };
  store.replaceType(TYPE_URL.secret, new Map([['default', { json: fromXds }]]), '1');
  assert.equal(store.snapshot.secrets.get('default'), fromXds);
  store.setLocal(TYPE_URL.secret, new Map([['default', fromAgent]]));
  assert.equal(store.snapshot.secrets.get('default'), fromAgent);
  assert.deepEqual(store.wantedNames(TYPE_URL.secret), ['ROOTCA']);
  // A later xDS update does not displace it.
  store.replaceType(TYPE_URL.secret, new Map([['default', { json: fromXds }]]), '2');
  assert.equal(store.snapshot.secrets.get('default'), fromAgent);
  // Withdrawn (an expired certificate): the xDS one shows again.
  store.setLocal(TYPE_URL.secret, new Map());
  assert.equal(store.snapshot.secrets.get('default'), fromXds);
});
