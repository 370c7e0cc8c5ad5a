import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { subtle, x509, type CryptoKey, type CryptoKeyPair, type KeyImportAlgorithm, type SigningAlgorithm } from './x509.ts';
import { CaKeyError } from './kek.ts';

// The signing side of the CA: a certificate, its private key (a non-extractable WebCrypto key once
// loaded) and the certificates above it up to the root.

export interface CaIssuer {
  /** The certificate that signs workload certificates. */
  certificate: x509.X509Certificate;
  privateKey: CryptoKey;
  signingAlgorithm: SigningAlgorithm;
  /** `certificate` and every certificate above it, root last (what follows the leaf in a chain). */
  chain: x509.X509Certificate[];
  /** The trust bundle: the root(s) workloads must trust. */
  roots: x509.X509Certificate[];
  mode: 'generated' | 'provided';
}

export const ROOT_SUBJECT = 'O=Tern, CN=Tern Root CA';
export const ROOT_VALIDITY_YEARS = 10;
const ROOT_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A positive random 128-bit serial number, as hex. */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  if (b[0] === 0) b[0] = 0x01; // keep it 16 bytes long in DER (no leading zero octet to strip)
  return b.toString('hex');
}

export const certificateDigest = (cert: x509.X509Certificate) => createHash('sha256').update(Buffer.from(cert.rawData)).digest();

/** Clock skew allowance: a certificate is valid from a minute before it was issued. */
export const BACKDATE_MS = 60_000;

/**
 * An end-entity certificate signed by the issuer: not a CA, digitalSignature + keyEncipherment,
 * key identifiers, valid from a minute back and never beyond the issuer (a leaf outliving its CA
 * would not verify for its last stretch). What varies — subject, names, purposes — is the caller's.
 */
export async function signLeaf(
  issuer: CaIssuer,
  o: { publicKey: CryptoKey | x509.PublicKey; subject: string | []; sans: x509.JsonGeneralNames; sansCritical: boolean; usages: x509.ExtendedKeyUsageType[]; ttlSeconds: number; now: Date },
): Promise<{ leaf: x509.X509Certificate; serial: string }> {
  const serial = randomSerial();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: o.subject,
    issuer: issuer.certificate.subjectName,
    notBefore: new Date(o.now.getTime() - BACKDATE_MS),
    notAfter: new Date(Math.min(o.now.getTime() + o.ttlSeconds * 1000, issuer.certificate.notAfter.getTime())),
    publicKey: o.publicKey,
    signingKey: issuer.privateKey,
    signingAlgorithm: issuer.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(o.usages, false),
      new x509.SubjectAlternativeNameExtension(o.sans, o.sansCritical),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate.publicKey, false),
      await x509.SubjectKeyIdentifierExtension.create(o.publicKey, false),
    ],
  });
  return { leaf, serial };
}

/** A new self-signed root: ECDSA P-256, CA:true, keyCertSign+cRLSign. Returns the PKCS#8 DER key to seal. */
export async function generateRoot(now = new Date()): Promise<{ certificate: x509.X509Certificate; pkcs8: Buffer }> {
  const keys = (await subtle.generateKey(ROOT_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_VALIDITY_YEARS);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: ROOT_SUBJECT,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter,
    keys,
    signingAlgorithm: ROOT_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  return { certificate, pkcs8 };
}

interface KeyFacts {
  importAlgorithm: KeyImportAlgorithm;
  signingAlgorithm: SigningAlgorithm;
}

function keyFacts(key: KeyObject, where: string): KeyFacts {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { importAlgorithm: { name: 'ECDSA', namedCurve: 'P-256' }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } };
    if (curve === 'secp384r1') return { importAlgorithm: { name: 'ECDSA', namedCurve: 'P-384' }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } };
    throw new CaKeyError(`${where}: EC curve ${curve ?? 'unknown'} is not supported (P-256 or P-384)`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new CaKeyError(`${where}: RSA keys must have at least 2048 bits`);
    return { importAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } };
  }
  throw new CaKeyError(`${where}: key type ${key.asymmetricKeyType ?? 'unknown'} is not supported (ECDSA P-256/P-384 or RSA)`);
}

/** Imports a private key for signing only: the in-memory key cannot be exported again. */
async function importSigningKey(key: KeyObject, where: string): Promise<{ privateKey: CryptoKey; signingAlgorithm: SigningAlgorithm }> {
  const facts = keyFacts(key, where);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  try {
    const privateKey = await subtle.importKey('pkcs8', der, facts.importAlgorithm, false, ['sign']);
    return { privateKey, signingAlgorithm: facts.signingAlgorithm };
  } finally {
    der.fill(0);
  }
}

function assertKeyMatches(cert: x509.X509Certificate, key: KeyObject, where: string) {
  const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!fromKey.equals(Buffer.from(cert.publicKey.rawData))) throw new CaKeyError(`${where}: the private key does not belong to the CA certificate`);
}

function assertIsCa(cert: x509.X509Certificate, where: string) {
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new CaKeyError(`${where}: the certificate (${cert.subject}) is not a CA certificate (basicConstraints CA:true is missing)`);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku && !(ku.usages & x509.KeyUsageFlags.keyCertSign)) throw new CaKeyError(`${where}: the certificate (${cert.subject}) may not sign certificates (keyUsage lacks keyCertSign)`);
}

/** The issuer from a stored root: the decrypted PKCS#8 key is imported and then wiped. */
export async function issuerFromStoredRoot(certificatePem: string, pkcs8: Buffer): Promise<CaIssuer> {
  const certificate = new x509.X509Certificate(certificatePem);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } finally {
    pkcs8.fill(0);
  }
  assertKeyMatches(certificate, key, 'the stored CA');
  const { privateKey, signingAlgorithm } = await importSigningKey(key, 'the stored CA');
  return { certificate, privateKey, signingAlgorithm, chain: [certificate], roots: [certificate], mode: 'generated' };
}

export function parseCertificates(pem: string, where: string): x509.X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CaKeyError(`${where} holds no PEM certificate`);
  return blocks.map((b, i) => {
    try {
      return new x509.X509Certificate(b);
    } catch (err) {
      throw new CaKeyError(`${where}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

const isSelfSigned = async (c: x509.X509Certificate) => c.subject === c.issuer && (await c.verify({ signatureOnly: true }));

export interface ProvidedCaFiles {
  certFile: string;
  keyFile: string;
  chainFile?: string | undefined;
}

function readFile(file: string, variable: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CaKeyError(`${variable} ${file} cannot be read: ${(err as Error).message}`);
  }
}

/**
 * An operator's CA: a root, or an intermediate with its chain up to the root. The key stays in its
 * file (nothing is written to the database); the trust bundle is the chain's root.
 */
export async function issuerFromFiles(files: ProvidedCaFiles): Promise<CaIssuer> {
  const certs = parseCertificates(readFile(files.certFile, 'TERN_CA_CERT_FILE'), `TERN_CA_CERT_FILE (${files.certFile})`);
  const certificate = certs[0]!;
  const above = [...certs.slice(1), ...(files.chainFile ? parseCertificates(readFile(files.chainFile, 'TERN_CA_CHAIN_FILE'), `TERN_CA_CHAIN_FILE (${files.chainFile})`) : [])];
  let key: KeyObject;
  try {
    key = createPrivateKey(readFile(files.keyFile, 'TERN_CA_KEY_FILE'));
  } catch (err) {
    if (err instanceof CaKeyError) throw err;
    // Not the key's content: node's message names only the format problem.
    throw new CaKeyError(`TERN_CA_KEY_FILE (${files.keyFile}) is not an unencrypted PEM private key: ${(err as Error).message}`);
  }
  assertKeyMatches(certificate, key, 'TERN_CA_CERT_FILE/TERN_CA_KEY_FILE');
  assertIsCa(certificate, 'TERN_CA_CERT_FILE');
  const chain = [certificate, ...above];
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    assertIsCa(parent, 'TERN_CA_CHAIN_FILE');
    if (!(await child.verify({ publicKey: parent.publicKey, signatureOnly: true }))) {
      throw new CaKeyError(`the CA chain is broken: "${child.subject}" is not signed by "${parent.subject}" (list the chain leaf-side first, root last)`);
    }
  }
  const root = chain[chain.length - 1]!;
  if (!(await isSelfSigned(root))) {
    throw new CaKeyError(`the CA chain does not end at a root: "${root.subject}" is issued by "${root.issuer}"; put the certificates up to the self-signed root in TERN_CA_CHAIN_FILE`);
  }
  const { privateKey, signingAlgorithm } = await importSigningKey(key, 'TERN_CA_KEY_FILE');
  return { certificate, privateKey, signingAlgorithm, chain, roots: [root], mode: 'provided' };
}

/**
 * The issuer with more roots in its trust bundle (TERN_CA_TRUST_BUNDLE_FILE): how a root rotation
 * overlaps. Each must be a CA certificate that has not expired; duplicates of the issuer's own
 * root are dropped. docs/security.md "Rotating the root".
 */
export async function withTrustedRoots(issuer: CaIssuer, file: string): Promise<CaIssuer> {
  const where = `TERN_CA_TRUST_BUNDLE_FILE (${file})`;
  const roots = [...issuer.roots];
  for (const c of parseCertificates(readFile(file, 'TERN_CA_TRUST_BUNDLE_FILE'), where)) {
    assertIsCa(c, where);
    if (c.notAfter.getTime() <= Date.now()) throw new CaKeyError(`${where}: "${c.subject}" expired on ${c.notAfter.toISOString()}; remove it`);
    if (!roots.some((r) => Buffer.from(r.rawData).equals(Buffer.from(c.rawData)))) roots.push(c);
  }
  return { ...issuer, roots };
}
