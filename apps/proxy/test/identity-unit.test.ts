import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadX509 } from '../src/identity/x509.ts';

const x509 = await loadX509();
import { createKeyAndCsr } from '../src/identity/csr.ts';
import { backoffMs, renewDelayMs } from '../src/identity/schedule.ts';
import { mergeRoots, parseRoot } from '../src/identity/roots.ts';
import { writeIdentityFiles } from '../src/identity/files.ts';
import { IdentityConfigError, resolveIdentityConfig } from '../src/identity/config.ts';
import { makeRoot } from './identity-helpers.ts';

test('the CSR asks for the SPIFFE ID as its only URI SAN, with an ECDSA P-256 key it is signed by', async () => {
  const id = 'spiffe://cluster.local/ns/shop/sa/web';
  const { keyPem, csrPem } = await createKeyAndCsr(id);
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  assert.equal(await csr.verify(), true);
  const san = csr.extensions.find((e) => e.type === '2.5.29.17');
  assert.ok(san, 'a SAN extension');
  assert.deepEqual(new x509.SubjectAlternativeNameExtension(san.rawData).names.items.map((n) => [n.type, n.value]), [['url', id]]);
  const key = createPrivateKey(keyPem);
  assert.equal(key.asymmetricKeyType, 'ec');
  assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  // A new key every time.
  assert.notEqual((await createKeyAndCsr(id)).keyPem, keyPem);
  // Without an identity the CSR asks for none (the CA decides from the credential).
  assert.equal(new x509.Pkcs10CertificateRequest((await createKeyAndCsr(undefined)).csrPem).extensions.find((e) => e.type === '2.5.29.17'), undefined);
});

test('renewal at half the lifetime (from receipt, not the backdated notBefore), ± 10 % jitter, clamped', () => {
  const start = 1_000_000;
  const end = start + 3_600_000;
  const p = { fraction: 0.5, jitter: 0.1 };
  assert.equal(renewDelayMs(start, end, start, p, () => 0.5), 1_800_000);
  assert.equal(renewDelayMs(start, end, start, p, () => 0), 1_620_000);
  assert.equal(renewDelayMs(start, end, start, p, () => 1), 1_980_000);
  for (let i = 0; i < 200; i++) {
    const d = renewDelayMs(start, end, start);
    assert.ok(d >= 1_620_000 && d <= 1_980_000, String(d));
  }
  // Later: measured from now.
  assert.equal(renewDelayMs(start, end, start + 600_000, p, () => 0.5), 1_200_000);
  // Past the renewal point or the expiry: soon, never a busy loop.
  assert.equal(renewDelayMs(start, end, end + 5000, p, () => 0.5), 1000);
  // A fraction near 1 still renews before expiry.
  assert.equal(renewDelayMs(start, end, start, { fraction: 0.999, jitter: 0.1 }, () => 1), 3_599_000);
});

test('backoff after failures: 1 s doubling to 60 s, jittered', () => {
  const mid = () => 0.5;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffMs(n, mid)), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
  assert.equal(backoffMs(1, () => 0), 800);
  assert.ok(backoffMs(30, () => 1) <= 60_000);
});

test('roots: new and old kept during the overlap (deduplicated by fingerprint), an old one dropped when it expires', async () => {
  const now = Date.now();
  const oldRoot = await makeRoot('old', new Date(now - 86_400_000), new Date(now + 10_000));
  const newRoot = await makeRoot('new', new Date(now - 1000), new Date(now + 86_400_000));
  let roots = mergeRoots([], [oldRoot.pem], new Date(now));
  roots = mergeRoots(roots, [oldRoot.pem], new Date(now));
  assert.equal(roots.length, 1);
  roots = mergeRoots(roots, [newRoot.pem], new Date(now));
  assert.deepEqual(roots.map((r) => r.subject), ['CN=new', 'CN=old']);
  assert.equal(roots[0]!.fingerprint, parseRoot(newRoot.pem).fingerprint);
  // After the old root's notAfter it goes, even with nothing new.
  roots = mergeRoots(roots, [], new Date(now + 11_000));
  assert.deepEqual(roots.map((r) => r.subject), ['CN=new']);
});

test('file output: written whole by rename, key mode 0600, no temporaries left; rewritten on rotation', async () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tern-id-')), 'certs');
  try {
    await writeIdentityFiles(dir, { chainPem: 'CHAIN1\n', keyPem: 'KEY1\n', rootsPem: 'ROOT1\n' });
    const ino = fs.statSync(path.join(dir, 'key.pem')).ino;
    await writeIdentityFiles(dir, { chainPem: 'CHAIN2\n', keyPem: 'KEY2\n', rootsPem: 'ROOT2\n' });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['cert-chain.pem', 'key.pem', 'root-cert.pem']);
    assert.equal(fs.readFileSync(path.join(dir, 'cert-chain.pem'), 'utf8'), 'CHAIN2\n');
    assert.equal(fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), 'KEY2\n');
    assert.equal(fs.readFileSync(path.join(dir, 'root-cert.pem'), 'utf8'), 'ROOT2\n');
    assert.equal(fs.statSync(path.join(dir, 'key.pem')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(dir).mode & 0o077, 0);
    // A rename, not an overwrite in place: a reader holding the old file keeps reading the old key.
    assert.notEqual(fs.statSync(path.join(dir, 'key.pem')).ino, ino);
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

test('file output into a path that cannot be a directory fails with the error', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tern-id-')), 'a-file');
  fs.writeFileSync(file, 'x');
  try {
    await assert.rejects(writeIdentityFiles(file, { chainPem: 'C', keyPem: 'K', rootsPem: 'R' }), /EEXIST|ENOTDIR/);
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});

test('configuration: off without a token; token sources, SPIFFE ID and output directory from metadata and env; bad values named', () => {
  const base = { caAddress: '127.0.0.1:15010', caTls: false };
  assert.equal(resolveIdentityConfig({ ...base, metadata: { NAMESPACE: 'shop' }, env: {} }), undefined);
  const c = resolveIdentityConfig({ ...base, metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'web', TRUST_DOMAIN: 'example.org', CERT_OUTPUT_DIR: '/var/run/certs' }, env: { TERN_JOIN_TOKEN: ' tern_join_x ' } })!;
  assert.deepEqual(c.token, { kind: 'env', name: 'TERN_JOIN_TOKEN', value: 'tern_join_x' });
  assert.equal(c.spiffeId, 'spiffe://example.org/ns/shop/sa/web');
  assert.equal(c.outputDir, '/var/run/certs');
  assert.deepEqual(c.renew, { fraction: 0.5, jitter: 0.1 });
  const f = resolveIdentityConfig({ ...base, metadata: { JOIN_TOKEN_FILE: '/etc/tern/token' }, env: { TERN_IDENTITY_RENEW_FRACTION: '0.1' } })!;
  assert.deepEqual(f.token, { kind: 'file', path: '/etc/tern/token', from: 'node.metadata.JOIN_TOKEN_FILE' });
  assert.equal(f.spiffeId, undefined);
  assert.equal(f.renew.fraction, 0.1);
  // The environment wins over node metadata.
  assert.deepEqual(resolveIdentityConfig({ ...base, metadata: { JOIN_TOKEN_FILE: '/a' }, env: { TERN_JOIN_TOKEN_FILE: '/b' } })!.token, { kind: 'file', path: '/b', from: 'TERN_JOIN_TOKEN_FILE' });
  // The injected service-account token wins over a join token (and TERN_JOIN_TOKEN_FILE keeps working alone).
  assert.deepEqual(resolveIdentityConfig({ ...base, metadata: { JOIN_TOKEN_FILE: '/a' }, env: { TERN_SA_TOKEN_FILE: ' /var/run/secrets/tern/tokens/tern-token ', TERN_JOIN_TOKEN: 'j', TERN_JOIN_TOKEN_FILE: '/b' } })!.token, { kind: 'sa-file', path: '/var/run/secrets/tern/tokens/tern-token', from: 'TERN_SA_TOKEN_FILE' });
  assert.throws(() => resolveIdentityConfig({ caAddress: undefined, caTls: false, metadata: {}, env: { TERN_SA_TOKEN_FILE: '/t' } }), /TERN_SA_TOKEN_FILE: a service-account token is set but the bootstrap has no dynamic_resources.ads_config/);
  assert.throws(() => resolveIdentityConfig({ ...base, metadata: {}, env: { TERN_JOIN_TOKEN: 'x', TERN_IDENTITY_RENEW_FRACTION: '2' } }), (e: Error) => e instanceof IdentityConfigError && /TERN_IDENTITY_RENEW_FRACTION: a number between 0 and 1/.test(e.message));
  assert.throws(() => resolveIdentityConfig({ ...base, metadata: { TRUST_DOMAIN: 'Bad Domain' }, env: { TERN_JOIN_TOKEN: 'x' } }), /node.metadata.TRUST_DOMAIN/);
  assert.throws(() => resolveIdentityConfig({ caAddress: undefined, caTls: false, metadata: {}, env: { TERN_JOIN_TOKEN: 'x' } }), /TERN_JOIN_TOKEN: a join token is set but the bootstrap has no dynamic_resources.ads_config/);
});
