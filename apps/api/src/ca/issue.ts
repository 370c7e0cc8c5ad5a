import { createPublicKey } from 'node:crypto';
import { x509 } from './x509.ts';
import { signLeaf, type CaIssuer } from './issuer.ts';
import { spiffeId, type WorkloadIdentity } from './identity.ts';

// Issuing one X.509 SVID: the identity comes from the caller's credential, never from the CSR;
// the CSR only contributes its public key (and must not ask for anything else).

export type IssueErrorCode = 'invalid-csr' | 'identity-mismatch' | 'invalid-ttl';

export class IssueError extends Error {
  override readonly name = 'IssueError';
  constructor(
    readonly code: IssueErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface TtlPolicy {
  defaultSeconds: number;
  maxSeconds: number;
}


export interface IssueRequest {
  csrPem: string;
  identity: WorkloadIdentity;
  trustDomain: string;
  /** Requested lifetime in seconds; 0 = the default. */
  ttlSeconds: number;
  ttl: TtlPolicy;
  now?: Date;
}

export interface IssuedSvid {
  /** Leaf first, then the issuer and every certificate above it, root last (as Istio returns it). */
  chainPem: string[];
  serial: string;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
}

export function resolveTtl(requested: number, policy: TtlPolicy): number {
  if (!Number.isFinite(requested) || !Number.isInteger(requested) || requested < 0) {
    throw new IssueError('invalid-ttl', `validity_duration must be a whole number of seconds >= 0 (0 = the default ${policy.defaultSeconds} s), got ${requested}`);
  }
  if (requested === 0) return policy.defaultSeconds;
  if (requested > policy.maxSeconds) {
    throw new IssueError('invalid-ttl', `validity_duration ${requested} s is above the maximum ${policy.maxSeconds} s (TERN_CA_MAX_TTL_SECONDS)`);
  }
  if (requested < 60) throw new IssueError('invalid-ttl', `validity_duration ${requested} s is below the minimum 60 s`);
  return requested;
}

function parseCsr(pem: string): x509.Pkcs10CertificateRequest {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw new IssueError('invalid-csr', 'csr must be a PEM "CERTIFICATE REQUEST"');
  }
  try {
    return new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    throw new IssueError('invalid-csr', `csr cannot be parsed: ${(err as Error).message}`);
  }
}

function checkPublicKey(csr: x509.Pkcs10CertificateRequest) {
  let key;
  try {
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (err) {
    throw new IssueError('invalid-csr', `csr public key cannot be read: ${(err as Error).message}`);
  }
  const t = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails;
  if (t === 'ec' && (d?.namedCurve === 'prime256v1' || d?.namedCurve === 'secp384r1')) return;
  if (t === 'rsa' && (d?.modulusLength ?? 0) >= 2048) return;
  if (t === 'ed25519') return;
  throw new IssueError('invalid-csr', `csr public key must be ECDSA P-256/P-384, RSA >= 2048 bits or Ed25519 (got ${t}${d?.namedCurve ? ' ' + d.namedCurve : ''}${d?.modulusLength ? ' ' + d.modulusLength + ' bits' : ''})`);
}

/**
 * The CSR may ask for no identity (the certificate gets the credential's) or exactly the
 * credential's SPIFFE ID; any other URI, DNS name, IP or e-mail address is refused.
 */
function checkRequestedNames(csr: x509.Pkcs10CertificateRequest, expected: string) {
  const san = csr.extensions.find((e) => e.type === '2.5.29.17');
  if (!san) return;
  const names = new x509.SubjectAlternativeNameExtension(san.rawData).names.items;
  const foreign = names.filter((n) => !(n.type === 'url' && n.value === expected)).map((n) => `${n.type === 'url' ? 'URI' : n.type.toUpperCase()}:${n.value}`);
  if (foreign.length > 0) {
    throw new IssueError('identity-mismatch', `identity mismatch: the CSR asks for ${foreign.join(', ')} but the credential is for ${expected}; a certificate carries only its credential's identity`);
  }
}

/** Validates the CSR against the identity (no signing): throws IssueError. */
export async function checkCsr(csrPem: string, expectedSpiffeId: string): Promise<x509.Pkcs10CertificateRequest> {
  const csr = parseCsr(csrPem);
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new IssueError('invalid-csr', 'csr signature does not verify (the request was not signed by its own key)');
  checkPublicKey(csr);
  checkRequestedNames(csr, expectedSpiffeId);
  return csr;
}

export async function issueSvid(issuer: CaIssuer, req: IssueRequest): Promise<IssuedSvid> {
  const id = spiffeId(req.trustDomain, req.identity);
  const ttlSeconds = resolveTtl(req.ttlSeconds, req.ttl);
  const csr = await checkCsr(req.csrPem, id);
  // Empty subject, identity in a critical SAN: the X.509-SVID form (and Istio's).
  const { leaf, serial } = await signLeaf(issuer, {
    publicKey: csr.publicKey,
    subject: [],
    sans: [{ type: 'url', value: id }],
    sansCritical: true,
    usages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    ttlSeconds,
    now: req.now ?? new Date(),
  });
  return {
    chainPem: [leaf.toString('pem'), ...issuer.chain.map((c) => c.toString('pem'))],
    serial,
    spiffeId: id,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
  };
}
