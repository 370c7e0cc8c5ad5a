import { createPrivateKey, sign, verify, type KeyObject } from 'node:crypto';

// The credential a workload renews its certificate with: the certificate the CA gave it before
// (still valid) plus proof that it holds that certificate's key, a signature over the new CSR.
// The signature binds the proof to this one request: a copy of the credential seen on the wire
// only obtains a certificate for the CSR's key, which the copier does not have. Sent as
// `authorization: Bearer tern_svid_<base64url leaf DER>.<base64url signature>`.
// Proxy side: apps/proxy/src/identity; CA side: apps/api/src/ca/svid-authenticator.ts.

export const SVID_CREDENTIAL_PREFIX = 'tern_svid_';

/** What is signed: a context string (so the signature means nothing elsewhere) and the CSR as sent. */
export function svidRenewalSignedData(csrPem: string): Buffer {
  return Buffer.from(`tern svid renewal v1\n${csrPem}`, 'utf8');
}

/** SHA-256 for EC and RSA keys; none for Ed25519 (it hashes itself). */
const digestFor = (key: KeyObject) => (key.asymmetricKeyType === 'ed25519' ? null : 'sha256');

export function encodeSvidCredential(leafDer: Buffer, keyPem: string, csrPem: string): string {
  const key = createPrivateKey(keyPem);
  const signature = sign(digestFor(key), svidRenewalSignedData(csrPem), key);
  return `${SVID_CREDENTIAL_PREFIX}${leafDer.toString('base64url')}.${signature.toString('base64url')}`;
}

export interface DecodedSvidCredential {
  leafDer: Buffer;
  signature: Buffer;
}

/** undefined when `credential` is not of this form. */
export function decodeSvidCredential(credential: string): DecodedSvidCredential | undefined {
  if (!credential.startsWith(SVID_CREDENTIAL_PREFIX)) return undefined;
  const [leaf, sig, ...rest] = credential.slice(SVID_CREDENTIAL_PREFIX.length).split('.');
  if (!leaf || !sig || rest.length > 0 || !/^[A-Za-z0-9_-]+$/.test(leaf + sig)) return undefined;
  return { leafDer: Buffer.from(leaf, 'base64url'), signature: Buffer.from(sig, 'base64url') };
}

/** Whether `signature` over the CSR was made with the key of the certificate whose public key is `publicKey`. */
export function verifySvidSignature(publicKey: KeyObject, csrPem: string, signature: Buffer): boolean {
  try {
    return verify(digestFor(publicKey), svidRenewalSignedData(csrPem), publicKey, signature);
  } catch {
    return false;
  }
}
