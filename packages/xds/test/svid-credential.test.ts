import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { decodeSvidCredential, encodeSvidCredential, SVID_CREDENTIAL_PREFIX, verifySvidSignature } from '../src/svid-credential.ts';

test('a certificate credential round-trips and its signature binds it to one CSR and one key', () => {
  for (const type of ['ec', 'ed25519', 'rsa'] as const) {
    const { privateKey, publicKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const leafDer = Buffer.from('not really DER, carried as is');
    const cred = encodeSvidCredential(leafDer, keyPem, 'CSR-A');
    assert.ok(cred.startsWith(SVID_CREDENTIAL_PREFIX));
    const d = decodeSvidCredential(cred)!;
    assert.deepEqual(d.leafDer, leafDer);
    assert.equal(verifySvidSignature(publicKey, 'CSR-A', d.signature), true, type);
    assert.equal(verifySvidSignature(publicKey, 'CSR-B', d.signature), false, `${type}: another CSR`);
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    assert.equal(verifySvidSignature(other, 'CSR-A', d.signature), false, `${type}: another key`);
  }
});

test('anything else is not a certificate credential', () => {
  for (const s of ['tern_join_abc', 'tern_svid_', 'tern_svid_abc', 'tern_svid_a.b.c', 'tern_svid_a+b.c', 'Bearer x']) assert.equal(decodeSvidCredential(s), undefined, s);
});
