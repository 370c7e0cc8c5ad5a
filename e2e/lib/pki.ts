import { x509, subtle, type CryptoKeyPair } from '../../apps/api/src/ca/x509.ts';

// Certificates for end-to-end tests that must mint their own: a mesh root given to the control
// plane (TERN_CA_CERT_FILE/KEY_FILE), foreign or expired client certificates, impostors.

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface TestCa {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  certPem: string;
  keyPem: string;
}

export interface TestLeaf {
  certPem: string;
  keyPem: string;
  /** Hex, as @peculiar/x509 prints it (lowercase, with the leading 01). */
  serial: string;
}

const randomSerial = () => '01' + Buffer.from(crypto.getRandomValues(new Uint8Array(15))).toString('hex');
const pkcs8Pem = async (k: CryptoKeyPair) => x509.PemConverter.encode(await subtle.exportKey('pkcs8', k.privateKey), 'PRIVATE KEY');
const hour = 3600_000;

/** A self-signed ECDSA P-256 certificate `O=Tern test, CN=<cn>`: a root CA (CA:true, keyCertSign) unless `ca: false`. */
export async function testRoot(cn: string, o: { ca?: boolean; notBefore?: Date; notAfter?: Date } = {}): Promise<TestCa> {
  const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=Tern test, CN=${cn}`,
    notBefore: o.notBefore ?? new Date(Date.now() - hour),
    notAfter: o.notAfter ?? new Date(Date.now() + 30 * 24 * hour),
    keys,
    signingAlgorithm: EC,
    extensions: (o.ca ?? true)
      ? [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ]
      : [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  return { cert, keys, certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys) };
}

/** An X.509 SVID as Tern's CA makes one (empty subject, the SPIFFE ID as the only SAN), valid for an hour unless told otherwise. */
export async function testSvid(ca: TestCa, spiffeId: string, o: { notBefore?: Date; notAfter?: Date } = {}): Promise<TestLeaf> {
  const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const serial = randomSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [],
    issuer: ca.cert.subjectName,
    notBefore: o.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: o.notAfter ?? new Date(Date.now() + hour),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys), serial };
}
