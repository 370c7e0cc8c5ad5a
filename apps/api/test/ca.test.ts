import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { symbols as pinoSymbols } from 'pino';
import { createIstioCertificateClient, encodeSvidCredential, PROXY_ID_METADATA, TRUST_BUNDLE_METADATA, type IstioCertificateClient, type IstioCertificateResponse } from '@tern/xds';
import { logger } from '../src/log.ts';
import { subtle, x509, type CryptoKeyPair } from '../src/ca/x509.ts';
import { loadKek, open, parseKek } from '../src/ca/kek.ts';
import { certificateDigest, issuerFromFiles } from '../src/ca/issuer.ts';
import { loadOrCreateRoot } from '../src/ca/store.ts';
import { openDatabase } from '../src/store/db.ts';
import { onPostgres, openTestDatabase, startTestApi, type TestApi } from './helpers.ts';
import type { Config } from '../src/config.ts';

// The control plane's CA: the root (generated once, sealed at rest, one per database), join tokens,
// Istio's CreateCertificate over real gRPC, and that the CA key shows up in no log line and no
// API response.

// Every log line of this process, at debug level: the key must not be in any of them.
const logLines: string[] = [];
logger.level = 'debug';
// pino writes each line with the destination's `write(string)`: swap in one that keeps them.
(logger as unknown as Record<symbol, unknown>)[pinoSymbols.streamSym] = { write: (line: string) => void logLines.push(line) };

const KEK = randomBytes(32).toString('base64');
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

const ED25519 = { name: 'Ed25519' } as const;
const RSA = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const;

async function makeCsr(opts: { uris?: string[]; dns?: string[]; alg?: typeof EC | typeof RSA | typeof ED25519 } = {}): Promise<string> {
  const alg = opts.alg ?? EC;
  const keys = (await subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const names = [...(opts.uris ?? []).map((value) => ({ type: 'url' as const, value })), ...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=workload',
    keys,
    signingAlgorithm: alg,
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return csr.toString('pem');
}

interface CallResult {
  err: grpc.ServiceError | null;
  res: IstioCertificateResponse | undefined;
}

function createCertificate(client: IstioCertificateClient, token: string | undefined, csr: string, ttlSeconds = 0): Promise<CallResult> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    client.CreateCertificate({ csr, validity_duration: ttlSeconds }, md, { deadline: Date.now() + 10_000 }, (err, res) => resolve({ err, res }));
  });
}

/** Everything that must never contain the CA key: API responses and gRPC answers seen in this file. */
const outputs: string[] = [];

async function rest(api: TestApi, method: string, p: string, body?: unknown, token?: string | null) {
  const r = await api.rest(method, p, body, token === undefined ? {} : { token });
  outputs.push(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
  return r;
}

/** The stored root's private key, decrypted with the KEK, in every form a leak could take. */
async function rootKeyForms(api: TestApi, kekB64: string): Promise<string[]> {
  const row = await api.app.db.prisma.caRoot.findUniqueOrThrow({ where: { id: 1 } });
  const cert = new x509.X509Certificate(row.certificatePem);
  const pkcs8 = open(parseKek(kekB64, 'test'), Buffer.from(row.keyCiphertext), certificateDigest(cert));
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const sec1 = key.export({ type: 'sec1', format: 'pem' }) as string;
  const body = (p: string) => p.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  return [body(pem), body(sec1), pkcs8.toString('base64'), pkcs8.toString('hex'), key.export({ format: 'jwk' }).d!];
}

describe('CA root', () => {
  test('generated once, sealed at rest, reused after a restart; the KEK is generated (0600) when none is set; the wrong KEK is refused at start', async () => {
    const db = await openTestDatabase();
    try {
      // No KEK configured (local mode): one is generated into <dataDir>/ca-kek and logged without the key.
      const before = logLines.length;
      const a = await startTestApi({}, db);
      const file = path.join(db.dataDir, 'ca-kek');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const kek = fs.readFileSync(file, 'utf8').trim();
      assert.equal(Buffer.from(kek, 'base64').length, 32);
      const lines = logLines.slice(before).join('');
      assert.match(lines, /generated a key-encryption key/);
      assert.ok(lines.includes(file));
      assert.ok(!lines.includes(kek), 'the KEK is not logged');

      const first = await rest(a, 'GET', '/api/v1/ca');
      assert.equal(first.status, 200);
      assert.equal(first.body.mode, 'generated');
      assert.equal(first.body.trustDomain, 'cluster.local');
      assert.equal(first.body.roots.length, 1);
      const root = new X509Certificate(first.body.roots[0]);
      assert.ok(root.ca);
      assert.match(root.subject, /O=Tern/);
      assert.match(root.subject, /CN=Tern Root CA/);
      assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.ok(new Date(root.validTo).getTime() - Date.now() > 9.9 * 365 * 24 * 3600 * 1000, 'about ten years');
      assert.ok(root.verify(root.publicKey), 'self-signed');

      // The row holds no plaintext key: not PEM, not the DER, and it opens only with the KEK.
      const row = await a.app.db.prisma.caRoot.findUniqueOrThrow({ where: { id: 1 } });
      const sealed = Buffer.from(row.keyCiphertext);
      assert.ok(!sealed.toString('latin1').includes('PRIVATE KEY'));
      assert.ok(!row.certificatePem.includes('PRIVATE KEY'));
      const forms = await rootKeyForms(a, kek);
      const der = Buffer.from(forms[2]!, 'base64');
      assert.equal(sealed.indexOf(der), -1, 'the PKCS#8 DER is not in the row');
      const cert = new x509.X509Certificate(row.certificatePem);
      assert.throws(() => open(parseKek(randomBytes(32).toString('base64'), 'other'), sealed, certificateDigest(cert)), /cannot be decrypted/);
      assert.ok(root.checkPrivateKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })), 'the sealed key is the root’s key');
      await a.close();

      // Restarted with that key given through the environment variable: the same root.
      const b = await startTestApi({ caKeyEncryptionKey: kek }, db);
      const again = await rest(b, 'GET', '/api/v1/ca');
      assert.deepEqual(again.body.roots, first.body.roots, 'same root after a restart');
      assert.equal(await b.app.db.prisma.caRoot.count(), 1);
      await b.close();
      assert.equal(fs.readFileSync(file, 'utf8').trim(), kek, 'the generated file is left alone');

      await assert.rejects(startTestApi({ caKeyEncryptionKey: randomBytes(32).toString('base64') }, db), (err: Error) => {
        assert.match(err.message, /sealed with key-encryption key [0-9a-f]{16}, but this control plane has [0-9a-f]{16}.*TERN_CA_KEY_ENCRYPTION_KEY/);
        return true;
      });
    } finally {
      await db.drop();
    }
  });

  test('a malformed KEK is refused with the variable it came from', () => {
    assert.throws(() => parseKek('c2hvcnQ=', 'TERN_CA_KEY_ENCRYPTION_KEY'), /TERN_CA_KEY_ENCRYPTION_KEY must be base64 of exactly 32 bytes \(it decodes to 5 bytes\)/);
    assert.throws(() => parseKek('not base64 at all!', 'TERN_CA_KEY_ENCRYPTION_KEY'), /it is not base64/);
    assert.throws(() => loadKek({ file: '/nonexistent/kek', generatePath: '/unused' }), /TERN_CA_KEY_ENCRYPTION_KEY_FILE \/nonexistent\/kek cannot be read/);
  });

  test('replicas racing on first start end up with one root', async () => {
    const db = await openTestDatabase();
    try {
      if (onPostgres) {
        // Two control planes on one fresh PostgreSQL database, started at once.
        const [a, b] = await Promise.all([startTestApi({ caKeyEncryptionKey: KEK }, db), startTestApi({ caKeyEncryptionKey: KEK }, db)]);
        const [ra, rb] = await Promise.all([rest(a, 'GET', '/api/v1/ca'), rest(b, 'GET', '/api/v1/ca')]);
        assert.deepEqual(ra.body.roots, rb.body.roots);
        assert.equal(await a.app.db.prisma.caRoot.count(), 1);
        await Promise.all([a.close(), b.close()]);
      } else {
        // PGlite has one process per directory: race the store itself on a fresh database.
        const database = await openDatabase({ databaseUrl: undefined, dataDir: db.dataDir });
        try {
          const kek = parseKek(KEK, 'test');
          const results = await Promise.all([1, 2, 3].map(() => loadOrCreateRoot(database.prisma, kek)));
          assert.equal(results.filter((r) => r.created).length, 1, 'exactly one replica created the root');
          const pems = new Set(results.map((r) => r.issuer.certificate.toString('pem')));
          assert.equal(pems.size, 1, 'everyone uses that one');
          assert.equal(await database.prisma.caRoot.count(), 1);
        } finally {
          await database.close();
        }
      }
    } finally {
      await db.drop();
    }
  });
});

describe('join tokens and CreateCertificate', () => {
  let api: TestApi;
  let client: IstioCertificateClient;
  let viewer: string;
  let editor: string;
  let rootPem: string;

  before(async () => {
    api = await startTestApi({ caKeyEncryptionKey: KEK, caMaxTtlSeconds: 2 * 24 * 3600 }, undefined, { xds: true });
    client = createIstioCertificateClient(api.xdsAddress!, grpc.credentials.createInsecure());
    viewer = await api.makeToken('viewer');
    editor = await api.makeToken('editor');
    rootPem = (await rest(api, 'GET', '/api/v1/ca', undefined, viewer)).body.roots[0];
  });
  after(async () => {
    client?.close();
    await api?.close();
  });

  const joinToken = async (body: Record<string, unknown>) => {
    const r = await rest(api, 'POST', '/api/v1/ca/join-tokens', body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { token: string; info: { id: string; uses: number; state: string } };
  };

  test('lifecycle: admins create (secret shown once), viewers list without secrets, revoke', async () => {
    const denied = await rest(api, 'POST', '/api/v1/ca/join-tokens', { namespace: 'shop', serviceAccount: 'cart' }, viewer);
    assert.equal(denied.status, 403);
    assert.match(denied.body.message, /admin role/);
    assert.equal((await rest(api, 'POST', '/api/v1/ca/join-tokens', { namespace: 'shop', serviceAccount: 'cart' }, editor)).status, 403);
    const bad = await rest(api, 'POST', '/api/v1/ca/join-tokens', { namespace: 'Shop!', serviceAccount: 'cart', maxUses: 0 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /namespace/);
    assert.match(bad.body.message, /maxUses/);

    const created = await joinToken({ namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 600 });
    assert.match(created.token, /^tern_join_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.info.state, 'active');
    assert.equal((created.info as unknown as { maxUses: number }).maxUses, 1, 'single-use by default');

    const list = await rest(api, 'GET', '/api/v1/ca/join-tokens?namespace=shop', undefined, viewer);
    assert.equal(list.status, 200);
    const mine = list.body.joinTokens.find((t: { id: string }) => t.id === created.info.id);
    assert.equal(mine.namespace, 'shop');
    assert.equal(mine.serviceAccount, 'cart');
    assert.ok(!JSON.stringify(list.body).includes(created.token), 'list never shows the secret');
    const stored = await api.app.db.prisma.joinToken.findUniqueOrThrow({ where: { id: created.info.id } });
    assert.notEqual(stored.tokenHash, created.token);
    assert.ok(!JSON.stringify(stored).includes(created.token), 'only a hash is stored');

    assert.equal((await rest(api, 'DELETE', `/api/v1/ca/join-tokens/${created.info.id}`, undefined, viewer)).status, 403);
    const revoked = await rest(api, 'DELETE', `/api/v1/ca/join-tokens/${created.info.id}`);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.state, 'revoked');
    assert.equal((await rest(api, 'DELETE', '/api/v1/ca/join-tokens/00000000-0000-4000-8000-000000000000')).status, 404);

    const audit = await rest(api, 'GET', '/api/v1/audit?namespace=shop');
    const actions = audit.body.events.map((e: { action: string }) => e.action);
    assert.ok(actions.includes('join-token.created') && actions.includes('join-token.revoked'), actions.join());
    assert.ok(!JSON.stringify(audit.body).includes(created.token), 'the audit log has no secret');

    const r = await createCertificate(client, created.token, await makeCsr());
    assert.equal(r.err?.code, grpc.status.UNAUTHENTICATED);
    assert.match(r.err!.details, /revoked/);
  });

  test('a good CSR gets a chain to the trust bundle with exactly the token’s SPIFFE ID; recorded; single use', async () => {
    const { token, info } = await joinToken({ namespace: 'shop', serviceAccount: 'cart' });
    const spiffe = 'spiffe://cluster.local/ns/shop/sa/cart';
    const r = await createCertificate(client, token, await makeCsr({ uris: [spiffe] }), 3600);
    assert.equal(r.err, null, r.err?.details);
    outputs.push(JSON.stringify(r.res));
    const chain = r.res!.cert_chain;
    assert.equal(chain.length, 2, 'leaf, root');
    assert.equal(chain[1], rootPem);
    const leaf = new X509Certificate(chain[0]!);
    const root = new X509Certificate(rootPem);
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), 'the leaf verifies against the trust bundle');
    assert.equal(leaf.subjectAltName, `URI:${spiffe}`);
    assert.equal(leaf.ca, false);
    assert.deepEqual(leaf.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const lifetime = new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime();
    assert.ok(Math.abs(lifetime - (3600 + 60) * 1000) <= 2000, `ttl honoured (${lifetime} ms)`);
    const parsed = new x509.X509Certificate(chain[0]!);
    const ku = parsed.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    assert.ok(parsed.getExtension(x509.BasicConstraintsExtension)!.critical);
    assert.equal(parsed.serialNumber.length, 32, '128-bit serial');

    const certs = await rest(api, 'GET', '/api/v1/ca/certificates?namespace=shop', undefined, viewer);
    assert.equal(certs.status, 200);
    const rec = certs.body.certificates.find((c: { serial: string }) => c.serial === parsed.serialNumber);
    assert.ok(rec, 'the certificate is recorded');
    assert.equal(rec.spiffeId, spiffe);
    assert.equal(rec.serviceAccount, 'cart');
    assert.equal(rec.notAfter, parsed.notAfter.toISOString());
    assert.equal(rec.credential, `join-token:${info.id}`);
    assert.match(rec.requester, /127\.0\.0\.1/);

    const second = await createCertificate(client, token, await makeCsr({ uris: [spiffe] }));
    assert.equal(second.err?.code, grpc.status.UNAUTHENTICATED, 'a used single-use token is refused');
    assert.match(second.err!.details, /used-up/);
  });

  test('a CSR without SANs gets the token’s identity and the default 24 h', async () => {
    const { token } = await joinToken({ namespace: 'default', serviceAccount: 'web.v1' });
    const r = await createCertificate(client, token, await makeCsr());
    assert.equal(r.err, null, r.err?.details);
    const leaf = new X509Certificate(r.res!.cert_chain[0]!);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/web.v1');
    const lifetime = new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime();
    assert.ok(Math.abs(lifetime - (24 * 3600 + 60) * 1000) <= 2000, `default ttl (${lifetime} ms)`);
    // RSA 2048, the key istio-agent makes by default.
    const { token: t2 } = await joinToken({ namespace: 'default', serviceAccount: 'web' });
    const rsa = await createCertificate(client, t2, await makeCsr({ alg: RSA }));
    assert.equal(rsa.err, null, rsa.err?.details);
    const rsaLeaf = new X509Certificate(rsa.res!.cert_chain[0]!);
    assert.equal(rsaLeaf.publicKey.asymmetricKeyType, 'rsa');
    assert.ok(rsaLeaf.verify(new X509Certificate(rootPem).publicKey));
    const { token: t3 } = await joinToken({ namespace: 'default', serviceAccount: 'web' });
    const ed = await createCertificate(client, t3, await makeCsr({ alg: ED25519 }));
    assert.equal(ed.err, null, ed.err?.details);
    assert.equal(new X509Certificate(ed.res!.cert_chain[0]!).publicKey.asymmetricKeyType, 'ed25519');
  });

  test('a CSR for a foreign identity is refused (PERMISSION_DENIED) and does not use the token up', async () => {
    const { token, info } = await joinToken({ namespace: 'shop', serviceAccount: 'cart', maxUses: 2 });
    const foreign = await createCertificate(client, token, await makeCsr({ uris: ['spiffe://cluster.local/ns/kube-system/sa/admin'] }));
    assert.equal(foreign.err?.code, grpc.status.PERMISSION_DENIED);
    assert.match(foreign.err!.details, /identity mismatch: the CSR asks for URI:spiffe:\/\/cluster\.local\/ns\/kube-system\/sa\/admin but the credential is for spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart/);
    const otherDomain = await createCertificate(client, token, await makeCsr({ uris: ['spiffe://evil.example/ns/shop/sa/cart'] }));
    assert.equal(otherDomain.err?.code, grpc.status.PERMISSION_DENIED);
    const dns = await createCertificate(client, token, await makeCsr({ uris: ['spiffe://cluster.local/ns/shop/sa/cart'], dns: ['payments.bank.svc'] }));
    assert.equal(dns.err?.code, grpc.status.PERMISSION_DENIED);
    assert.match(dns.err!.details, /DNS:payments\.bank\.svc/);
    const row = await api.app.db.prisma.joinToken.findUniqueOrThrow({ where: { id: info.id } });
    assert.equal(row.uses, 0, 'refused requests use nothing');
    assert.equal(await api.app.db.prisma.issuedCertificate.count({ where: { credential: `join-token:${info.id}` } }), 0);
  });

  test('bad input: no or unknown credential, garbage CSR, ttl above the maximum', async () => {
    const { token } = await joinToken({ namespace: 'shop', serviceAccount: 'cart', maxUses: 5 });
    const csr = await makeCsr();
    const none = await createCertificate(client, undefined, csr);
    assert.equal(none.err?.code, grpc.status.UNAUTHENTICATED);
    assert.match(none.err!.details, /authorization: Bearer/);
    const unknown = await createCertificate(client, 'tern_join_' + randomBytes(32).toString('base64url'), csr);
    assert.equal(unknown.err?.code, grpc.status.UNAUTHENTICATED);
    assert.match(unknown.err!.details, /unknown token/);
    const apiToken = await createCertificate(client, api.token, csr);
    assert.equal(apiToken.err?.code, grpc.status.UNAUTHENTICATED, 'an API token is no workload credential');
    const garbage = await createCertificate(client, token, 'not a csr');
    assert.equal(garbage.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(garbage.err!.details, /csr must be a PEM "CERTIFICATE REQUEST"/);
    // A CSR whose signature does not match its content.
    const good = new x509.Pkcs10CertificateRequest(csr);
    const raw = Buffer.from(good.rawData);
    raw[raw.length - 5]! ^= 0xff;
    const tampered = new x509.Pkcs10CertificateRequest(raw).toString('pem');
    const bad = await createCertificate(client, token, tampered);
    assert.equal(bad.err?.code, grpc.status.INVALID_ARGUMENT);
    const tooLong = await createCertificate(client, token, csr, 3 * 24 * 3600);
    assert.equal(tooLong.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(tooLong.err!.details, /validity_duration 259200 s is above the maximum 172800 s/);
    const ok = await createCertificate(client, token, csr, 2 * 24 * 3600);
    assert.equal(ok.err, null, 'the maximum itself is fine');
  });

  test('renewal with the current certificate: a single-use token is enough, same identity, lineage recorded; forgeries and a revoked token refused', async () => {
    const { token, info } = await joinToken({ namespace: 'shop', serviceAccount: 'renew' });
    const spiffe = 'spiffe://cluster.local/ns/shop/sa/renew';
    const keyCsr = async (uris = [spiffe]) => {
      const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: '', keys, signingAlgorithm: EC, extensions: [new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })))] });
      return { csr: csr.toString('pem'), keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string };
    };
    const obtain = async (credential: string, csr: string) => {
      const r = await createCertificate(client, credential, csr, 3600);
      assert.equal(r.err, null, r.err?.details);
      const leaf = new X509Certificate(r.res!.cert_chain[0]!);
      assert.equal(leaf.subjectAltName, `URI:${spiffe}`);
      assert.ok(leaf.verify(new X509Certificate(rootPem).publicKey));
      return leaf;
    };
    const k1 = await keyCsr();
    const leaf1 = await obtain(token, k1.csr);
    const k2 = await keyCsr();
    const leaf2 = await obtain(encodeSvidCredential(leaf1.raw, k1.keyPem, k2.csr), k2.csr);
    const k3 = await keyCsr();
    const leaf3 = await obtain(encodeSvidCredential(leaf2.raw, k2.keyPem, k3.csr), k3.csr);
    // The token was used once; the records carry the lineage back to it.
    const tokens = (await rest(api, 'GET', '/api/v1/ca/join-tokens?namespace=shop', undefined, viewer)).body.joinTokens as { id: string; uses: number }[];
    assert.equal(tokens.find((t) => t.id === info.id)!.uses, 1);
    const recs = (await rest(api, 'GET', '/api/v1/ca/certificates?namespace=shop&serviceAccount=renew', undefined, viewer)).body.certificates as { serial: string; credential: string }[];
    const cred = (leaf: X509Certificate) => recs.find((r) => r.serial === leaf.serialNumber.toLowerCase())?.credential;
    assert.equal(cred(leaf1), `join-token:${info.id}`);
    assert.equal(cred(leaf2), `svid:${leaf1.serialNumber.toLowerCase()} via join-token:${info.id}`);
    assert.equal(cred(leaf3), `svid:${leaf2.serialNumber.toLowerCase()} via join-token:${info.id}`);

    const refused = async (credential: string, csr: string, code: grpc.status, why: RegExp) => {
      const r = await createCertificate(client, credential, csr, 3600);
      assert.equal(r.err?.code, code, r.err?.details ?? 'issued');
      assert.match(r.err!.details, why);
    };
    const k4 = await keyCsr();
    // A credential copied off the wire is bound to its CSR: with another CSR it is refused.
    await refused(encodeSvidCredential(leaf3.raw, k3.keyPem, k4.csr).replace(/\.[^.]+$/, '.' + encodeSvidCredential(leaf3.raw, k3.keyPem, k3.csr).split('.')[1]), k4.csr, grpc.status.UNAUTHENTICATED, /signature over the CSR does not verify/);
    // The certificate without its key.
    await refused(encodeSvidCredential(leaf3.raw, k4.keyPem, k4.csr), k4.csr, grpc.status.UNAUTHENTICATED, /signature over the CSR does not verify/);
    // A certificate from another CA.
    const otherKeys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const foreign = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=other', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), keys: otherKeys, signingAlgorithm: EC, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffe }])] });
    const otherKeyPem = KeyObject.from(otherKeys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
    await refused(encodeSvidCredential(Buffer.from(foreign.rawData), otherKeyPem, k4.csr), k4.csr, grpc.status.UNAUTHENTICATED, /not a workload certificate issued by this CA/);
    // Garbage after the prefix is no credential at all.
    await refused('tern_svid_!!', k4.csr, grpc.status.UNAUTHENTICATED, /not a credential this control plane accepts/);
    // The identity stays the certificate's.
    const elsewhere = await keyCsr(['spiffe://cluster.local/ns/shop/sa/admin']);
    await refused(encodeSvidCredential(leaf3.raw, k3.keyPem, elsewhere.csr), elsewhere.csr, grpc.status.PERMISSION_DENIED, /identity mismatch/);
    // Revoking the join token ends the renewals that descend from it.
    assert.equal((await rest(api, 'DELETE', `/api/v1/ca/join-tokens/${info.id}`)).status, 200);
    await refused(encodeSvidCredential(leaf3.raw, k3.keyPem, k4.csr), k4.csr, grpc.status.UNAUTHENTICATED, /join token this certificate descends from .* was revoked/);
  });

  test('concurrent uses of a single-use token: exactly one succeeds', async () => {
    for (let round = 0; round < 3; round++) {
      const { token, info } = await joinToken({ namespace: 'race', serviceAccount: `sa-${round}` });
      const csrs = await Promise.all([1, 2, 3, 4].map(() => makeCsr()));
      const results = await Promise.all(csrs.map((csr) => createCertificate(client, token, csr)));
      assert.equal(results.filter((r) => r.err === null).length, 1, `round ${round}: ${results.map((r) => r.err?.details ?? 'ok').join(' | ')}`);
      for (const r of results.filter((x) => x.err)) assert.equal(r.err!.code, grpc.status.UNAUTHENTICATED);
      assert.equal(await api.app.db.prisma.issuedCertificate.count({ where: { credential: `join-token:${info.id}` } }), 1);
      assert.equal((await api.app.db.prisma.joinToken.findUniqueOrThrow({ where: { id: info.id } })).uses, 1);
    }
  });

  test('an expired token is refused', async () => {
    const { token, info } = await joinToken({ namespace: 'shop', serviceAccount: 'cart', maxUses: 3 });
    await api.app.db.prisma.joinToken.update({ where: { id: info.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const r = await createCertificate(client, token, await makeCsr());
    assert.equal(r.err?.code, grpc.status.UNAUTHENTICATED);
    assert.match(r.err!.details, /expired/);
    const list = await rest(api, 'GET', '/api/v1/ca/join-tokens', undefined, viewer);
    assert.equal(list.body.joinTokens.find((t: { id: string }) => t.id === info.id).state, 'expired');
  });

  test('the CA private key is in no log line and no API response', async () => {
    // Touch every new endpoint once more (and the OpenAPI document), then grep everything.
    const created = await joinToken({ namespace: 'grep', serviceAccount: 'me' });
    const issued = await createCertificate(client, created.token, await makeCsr());
    outputs.push(JSON.stringify(issued.res));
    await rest(api, 'GET', '/api/v1/ca');
    await rest(api, 'GET', '/api/v1/ca/certificates?limit=1000');
    await rest(api, 'GET', '/api/v1/ca/join-tokens');
    await rest(api, 'DELETE', `/api/v1/ca/join-tokens/${created.info.id}`);
    await rest(api, 'GET', '/api/openapi.json');
    await rest(api, 'GET', '/api/v1/audit?limit=500');
    const forms = await rootKeyForms(api, KEK);
    const logs = logLines.join('');
    assert.match(logs, /issued a workload certificate/, 'the log capture works');
    assert.match(logs, /CA ready/);
    assert.ok(outputs.length > 20, `responses captured: ${outputs.length}`);
    for (const form of forms) {
      assert.ok(form.length >= 40, 'a meaningful needle');
      assert.ok(!logs.includes(form), 'the CA key is in a log line');
      for (const out of outputs) assert.ok(!out.includes(form), 'the CA key is in an API response');
    }
    for (const text of [logs, ...outputs]) assert.ok(!text.includes('PRIVATE KEY'), 'no private key PEM anywhere');
  });
});

describe('an operator-provided CA', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-ca-files-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function makeCa(subject: string, issuer?: { cert: x509.X509Certificate; keys: CryptoKeyPair }) {
    const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const extensions = [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)];
    const cert = issuer
      ? await x509.X509CertificateGenerator.create({ subject, issuer: issuer.cert.subjectName, publicKey: keys.publicKey, signingKey: issuer.keys.privateKey, signingAlgorithm: EC, notAfter: new Date(Date.now() + 86400_000 * 30), extensions })
      : await x509.X509CertificateGenerator.createSelfSigned({ name: subject, keys, signingAlgorithm: EC, notAfter: new Date(Date.now() + 86400_000 * 365), extensions });
    const keyPem = x509.PemConverter.encode(await subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    return { cert, keys, keyPem };
  }

  test('an intermediate with its chain: leaves chain to the operator’s root; nothing is stored', async () => {
    const root = await makeCa('CN=Corp Root');
    const inter = await makeCa('CN=Corp Mesh Intermediate', root);
    const write = (name: string, text: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text, { mode: 0o600 });
      return p;
    };
    const caCertFile = write('ca.pem', inter.cert.toString('pem'));
    const caKeyFile = write('ca-key.pem', inter.keyPem);
    const caChainFile = write('chain.pem', root.cert.toString('pem'));

    const api = await startTestApi({ caCertFile, caKeyFile, caChainFile, trustDomain: 'corp.example' }, undefined, { xds: true });
    const client = createIstioCertificateClient(api.xdsAddress!, grpc.credentials.createInsecure());
    try {
      const bundle = await rest(api, 'GET', '/api/v1/ca');
      assert.equal(bundle.body.mode, 'provided');
      assert.deepEqual(bundle.body.roots, [root.cert.toString('pem')]);
      assert.equal(bundle.body.trustDomain, 'corp.example');
      assert.equal(await api.app.db.prisma.caRoot.count(), 0, 'no root is generated or stored');

      const { body } = await rest(api, 'POST', '/api/v1/ca/join-tokens', { namespace: 'shop', serviceAccount: 'cart' });
      const r = await createCertificate(client, body.token, await makeCsr());
      assert.equal(r.err, null, r.err?.details);
      const [leafPem, interPem, rootPem] = r.res!.cert_chain;
      assert.equal(r.res!.cert_chain.length, 3, 'leaf, intermediate, root');
      const leaf = new X509Certificate(leafPem!);
      const i = new X509Certificate(interPem!);
      const rt = new X509Certificate(rootPem!);
      assert.ok(leaf.checkIssued(i) && leaf.verify(i.publicKey));
      assert.ok(i.checkIssued(rt) && i.verify(rt.publicKey));
      assert.equal(rt.fingerprint256, new X509Certificate(bundle.body.roots[0]).fingerprint256);
      assert.equal(leaf.subjectAltName, 'URI:spiffe://corp.example/ns/shop/sa/cart');
      const keyBody = inter.keyPem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
      assert.ok(!logLines.join('').includes(keyBody) && !JSON.stringify(r.res).includes(keyBody));
    } finally {
      client.close();
      await api.close();
    }

    // Mistakes are refused with a message naming what to fix (the same check runs at start).
    await assert.rejects(issuerFromFiles({ certFile: caCertFile, keyFile: caKeyFile }), /does not end at a root: "CN=Corp Mesh Intermediate" is issued by "CN=Corp Root"; .*TERN_CA_CHAIN_FILE/);
    await assert.rejects(issuerFromFiles({ certFile: caCertFile, keyFile: write('root-key.pem', root.keyPem), chainFile: caChainFile }), /private key does not belong to the CA certificate/);
    await assert.rejects(issuerFromFiles({ certFile: caCertFile, keyFile: caChainFile }), /TERN_CA_KEY_FILE .* is not an unencrypted PEM private key/);
  });

  test('a root rotation: the trust bundle lists the extra root, goes with every certificate, and is checked at start; the proxy id is recorded', async () => {
    const current = await makeCa('CN=Corp Root 2026');
    const next = await makeCa('CN=Corp Root 2027');
    const write = (name: string, text: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text, { mode: 0o600 });
      return p;
    };
    const caCertFile = write('r1.pem', current.cert.toString('pem'));
    const caKeyFile = write('r1-key.pem', current.keyPem);
    // The issuer's own root repeated in the file is not listed twice.
    const caTrustBundleFile = write('bundle.pem', next.cert.toString('pem') + current.cert.toString('pem'));
    const db = await openTestDatabase();
    const api = await startTestApi({ caCertFile, caKeyFile, caTrustBundleFile }, db, { xds: true });
    const client = createIstioCertificateClient(api.xdsAddress!, grpc.credentials.createInsecure());
    const keyCsr = async () => {
      const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: '', keys, signingAlgorithm: EC });
      return { csr: csr.toString('pem'), keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string };
    };
    let r1Leaf: { pem: string; keyPem: string } | undefined;
    try {
      const bundle = await rest(api, 'GET', '/api/v1/ca');
      assert.deepEqual(bundle.body.roots, [current.cert.toString('pem'), next.cert.toString('pem')]);
      const { body } = await rest(api, 'POST', '/api/v1/ca/join-tokens', { namespace: 'shop', serviceAccount: 'cart', maxUses: 3 });
      const call = (proxyId: string) => new Promise<{ err: grpc.ServiceError | null; chain: string[]; sent: string | undefined }>((resolve) => {
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${body.token}`);
        md.set(PROXY_ID_METADATA, proxyId);
        let sent: string | undefined;
        const c = client.CreateCertificate({ csr: csrPem, validity_duration: 0 }, md, { deadline: Date.now() + 10_000 }, (err, res) => resolve({ err, chain: res?.cert_chain ?? [], sent }));
        c.on('metadata', (m: grpc.Metadata) => {
          const v = m.get(TRUST_BUNDLE_METADATA)[0];
          sent = Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
        });
      });
      const csrPem = await makeCsr();
      const r = await call('cart-7f9.shop');
      assert.equal(r.err, null, r.err?.details);
      const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
      const sentRoots = r.sent!.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
      assert.deepEqual(sentRoots.map(fp), [current.cert, next.cert].map((c) => fp(c.toString('pem'))), 'the whole bundle, as response metadata');
      assert.equal(fp(r.chain.at(-1)!), fp(current.cert.toString('pem')), 'issued from the current root');
      const listed = (await rest(api, 'GET', '/api/v1/ca/certificates?namespace=shop')).body.certificates as { serial: string; proxyId: string | null }[];
      assert.equal(listed[0]!.proxyId, 'cart-7f9.shop');
      const tooLong = await call('x'.repeat(513));
      assert.equal(tooLong.err?.code, grpc.status.INVALID_ARGUMENT);
      assert.match(tooLong.err!.details, /tern-proxy-id: must be the proxy's xDS node id/);
      const k = await keyCsr();
      const issued = await createCertificate(client, body.token, k.csr, 3600);
      assert.equal(issued.err, null, issued.err?.details);
      r1Leaf = { pem: issued.res!.cert_chain[0]!, keyPem: k.keyPem };
    } finally {
      client.close();
      await api.close();
    }

    // The switch, on the same database: issuing from the next root, the previous one in the bundle.
    // A workload still holding a certificate from the previous root renews with it.
    const renewWith = async (config: Partial<Config>) => {
      const a = await startTestApi({ caCertFile: write('r2.pem', next.cert.toString('pem')), caKeyFile: write('r2-key.pem', next.keyPem), ...config }, db, { xds: true });
      const c = createIstioCertificateClient(a.xdsAddress!, grpc.credentials.createInsecure());
      try {
        const k = await keyCsr();
        return await createCertificate(c, encodeSvidCredential(new X509Certificate(r1Leaf!.pem).raw, r1Leaf!.keyPem, k.csr), k.csr, 3600);
      } finally {
        c.close();
        await a.close();
      }
    };
    try {
      const renewed = await renewWith({ caTrustBundleFile: write('bundle-after.pem', current.cert.toString('pem')) });
      assert.equal(renewed.err, null, renewed.err?.details);
      assert.equal(new X509Certificate(renewed.res!.cert_chain.at(-1)!).fingerprint256, new X509Certificate(next.cert.toString('pem')).fingerprint256, 'now chained to the next root');
      assert.equal(new X509Certificate(renewed.res!.cert_chain[0]!).subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/cart');
      // Once the previous root is retired from the bundle, its certificates no longer renew.
      const retired = await renewWith({});
      assert.equal(retired.err?.code, grpc.status.UNAUTHENTICATED);
      assert.match(retired.err!.details, /not a workload certificate issued by this CA/);
    } finally {
      await db.drop();
    }

    // A leaf or an expired root in the bundle stops the start, naming the file and the certificate.
    const leafKeys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const leaf = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=not a ca', keys: leafKeys, signingAlgorithm: EC, extensions: [new x509.BasicConstraintsExtension(false, undefined, true)] });
    await assert.rejects(startTestApi({ caCertFile, caKeyFile, caTrustBundleFile: write('leaf.pem', leaf.toString('pem')) }), /TERN_CA_TRUST_BUNDLE_FILE \(.*leaf\.pem\): the certificate \(CN=not a ca\) is not a CA certificate/);
    const oldKeys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const expired = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=Corp Root 2020', keys: oldKeys, signingAlgorithm: EC, notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2021-01-01T00:00:00Z'),
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    await assert.rejects(startTestApi({ caCertFile, caKeyFile, caTrustBundleFile: write('expired.pem', expired.toString('pem')) }), /TERN_CA_TRUST_BUNDLE_FILE .*"CN=Corp Root 2020" expired on 2021-01-01T00:00:00.000Z; remove it/);
  });
});
