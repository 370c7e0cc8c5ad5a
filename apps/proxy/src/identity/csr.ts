import { KeyObject, webcrypto } from 'node:crypto';
import { loadX509 } from './x509.ts';

// The workload's key and its certificate request. The key is made in this process and stays in
// memory (it reaches disk only when file output is asked for); a new one for every certificate.

export interface KeyAndCsr {
  /** PKCS#8 PEM. Never log it. */
  keyPem: string;
  csrPem: string;
}

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** An ECDSA P-256 key and a CSR signed by it asking for `spiffeId` as its only (URI) SAN. */
export async function createKeyAndCsr(spiffeId: string | undefined): Promise<KeyAndCsr> {
  const x509 = await loadX509();
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    // Empty subject, identity in the SAN: the X.509-SVID form the CA issues.
    name: '',
    keys: keys as never,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: spiffeId ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true)] : [],
  });
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
  return { keyPem, csrPem: csr.toString('pem') };
}
