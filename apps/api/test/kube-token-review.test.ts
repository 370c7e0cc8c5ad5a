import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createIstioCertificateClient, type IstioCertificateClient } from '@tern/xds';
import { subtle, x509, type CryptoKeyPair } from '../src/ca/x509.ts';
import { startTestApi, type TestApi } from './helpers.ts';
import { startRealApiServer, type RealApiServer } from './kube/real-apiserver.ts';

// Issue 9 item 4 against the real kube-apiserver: the CA takes a projected service-account token
// (audience tern-ca), asks TokenReview whose it is, and issues that service account's SPIFFE ID —
// and nothing else: a token for one service account gets no certificate for another.

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
let kube: RealApiServer;
let api: TestApi;
let client: IstioCertificateClient;
let core: CoreV1Api;

async function csr(uri?: string): Promise<string> {
  const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const req = await x509.Pkcs10CertificateRequestGenerator.create({ name: '', keys, signingAlgorithm: EC, extensions: uri ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }])] : [] });
  return req.toString('pem');
}

function create(token: string, csrPem: string): Promise<{ err: grpc.ServiceError | null; chain: string[] }> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => client.CreateCertificate({ csr: csrPem, validity_duration: 3600 }, md, { deadline: Date.now() + 15_000 }, (err, res) => resolve({ err, chain: res?.cert_chain ?? [] })));
}

async function saToken(namespace: string, name: string, audience: string): Promise<string> {
  const r = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [audience], expirationSeconds: 600 } } });
  return r.status!.token;
}

before(async () => {
  kube = await startRealApiServer();
  const kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'shop' } } });
  for (const name of ['cart', 'web']) await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name } } });
  api = await startTestApi({ caTokenReview: true, kubeconfig: kube.kubeconfig }, undefined, { xds: true });
  client = createIstioCertificateClient(api.xdsAddress!, grpc.credentials.createInsecure());
});

after(async () => {
  client?.close();
  await api?.close();
  await kube?.stop();
});

test('a projected service-account token gets a certificate for exactly its service account, recorded with the token review as credential', async () => {
  const token = await saToken('shop', 'cart', 'tern-ca');
  const r = await create(token, await csr());
  assert.equal(r.err, null, r.err?.details);
  const leaf = new X509Certificate(r.chain[0]!);
  assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/cart');
  const roots = (await api.rest('GET', '/api/v1/ca')).body.roots as string[];
  assert.ok(leaf.verify(new X509Certificate(roots[0]!).publicKey));
  const recorded = (await api.rest('GET', '/api/v1/ca/certificates?namespace=shop&serviceAccount=cart')).body.certificates as { serial: string; credential: string }[];
  assert.equal(recorded.find((c) => c.serial === leaf.serialNumber.toLowerCase())?.credential, 'k8s-sa:shop/cart');
  // The same token asks again (a restarted sidecar): a token is not used up.
  assert.equal((await create(token, await csr('spiffe://cluster.local/ns/shop/sa/cart'))).err, null);
});

test('a token for the wrong service account, the wrong audience, or no real token at all gets no certificate', async () => {
  const cart = await saToken('shop', 'cart', 'tern-ca');
  const wrongSa = await create(cart, await csr('spiffe://cluster.local/ns/shop/sa/web'));
  assert.equal(wrongSa.err?.code, grpc.status.PERMISSION_DENIED);
  assert.match(wrongSa.err!.details, /identity mismatch: the CSR asks for URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web but the credential is for spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart/);

  const otherAudience = await create(await saToken('shop', 'web', 'somebody-else'), await csr());
  assert.equal(otherAudience.err?.code, grpc.status.UNAUTHENTICATED);
  assert.match(otherAudience.err!.details, /service-account token refused/);

  const forged = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"sub":"system:serviceaccount:shop:web"}').toString('base64url')}.c2ln`;
  const r = await create(forged, await csr());
  assert.equal(r.err?.code, grpc.status.UNAUTHENTICATED);
  assert.match(r.err!.details, /service-account token refused/);
  const none = (await api.rest('GET', '/api/v1/ca/certificates?namespace=shop&serviceAccount=web')).body.certificates as unknown[];
  assert.deepEqual(none, [], 'nothing was issued for web');
});

test('the API server unreachable: UNAVAILABLE (retry), not a refusal', async () => {
  const token = await saToken('shop', 'cart', 'tern-ca');
  await kube.stop();
  const r = await create(token, await csr());
  assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
  assert.match(r.err!.details, /Kubernetes API server could not review the token/);
});
