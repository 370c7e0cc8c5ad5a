// Certificates for the mTLS sidecar pair: a root and X.509-SVIDs shaped like the ones Tern's CA
// issues (apps/api/src/ca/issue.ts): ECDSA P-256, empty subject, the SPIFFE ID as a critical URI
// SAN, serverAuth+clientAuth, CA:false. Made fresh at every run; nothing is written to disk.
import { randomBytes } from 'node:crypto';
import { subtle, x509, type CryptoKeyPair } from '../../apps/api/src/ca/x509.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface Svid {
  spiffeId: string;
  /** The leaf, PEM (no intermediates: the root signs it directly). */
  chainPem: string;
  keyPem: string;
}

export interface BenchPki {
  rootPem: string;
  svid(spiffeId: string): Promise<Svid>;
}

const serial = () => {
  const b = randomBytes(16);
  b[0]! &= 0x7f; // positive
  return b.toString('hex');
};

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
}

export async function createBenchPki(): Promise<BenchPki> {
  const now = Date.now();
  const rootKeys = (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'O=tern-bench, CN=tern bench root',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * 3600_000),
    keys: rootKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const rootPem = root.toString('pem') + '\n';
  return {
    rootPem,
    async svid(spiffeId: string): Promise<Svid> {
      const keys = (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: [],
        issuer: root.subjectName,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 24 * 3600_000),
        publicKey: keys.publicKey,
        signingKey: rootKeys.privateKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
          await x509.AuthorityKeyIdentifierExtension.create(root.publicKey, false),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false),
        ],
      });
      return { spiffeId, chainPem: leaf.toString('pem') + '\n', keyPem: await keyPem(keys) };
    },
  };
}
