import { X509Certificate } from 'node:crypto';
import { decodeSvidCredential, verifySvidSignature } from '@tern/xds';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { CredentialError, type AuthenticatedCaller, type Authenticator, type CredentialRequest } from './authenticator.ts';
import type { CaIssuer } from './issuer.ts';

// Renewal with the current certificate: a workload that holds a valid certificate from this CA
// proves it with the certificate plus a signature over the new CSR made with that certificate's
// key (the format: @tern/xds svid-credential.ts). This is what lets a sidecar started with a
// single-use join token keep renewing. The new certificate carries the same identity, and the
// record keeps the lineage: `svid:<serial> via <first credential>` (e.g. `via join-token:<id>`),
// so revoking the join token also stops the renewals that descend from it.

const VIA = ' via ';

/** The credential a lineage started with (`join-token:<id>`), from a recorded credential. */
export const rootCredential = (recorded: string): string => (recorded.includes(VIA) ? recorded.slice(recorded.indexOf(VIA) + VIA.length) : recorded);

function signedBy(leaf: X509Certificate, issuerDer: ArrayBuffer): boolean {
  try {
    return leaf.verify(new X509Certificate(Buffer.from(issuerDer)).publicKey);
  } catch {
    return false; // another key type: not its issuer
  }
}

export class SvidAuthenticator implements Authenticator {
  readonly kind = 'svid';

  constructor(
    private readonly prisma: PrismaClient,
    private readonly issuer: () => CaIssuer,
  ) {}

  async authenticate(credential: string, request?: CredentialRequest): Promise<AuthenticatedCaller | undefined> {
    const decoded = decodeSvidCredential(credential);
    if (!decoded) return undefined;
    const refuse = (why: string) => new CredentialError(`certificate credential refused: ${why}`);
    if (!request) throw refuse('no CSR to check the signature against');
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(decoded.leafDer);
    } catch {
      throw refuse('the certificate does not parse');
    }
    // The issuing certificate, or one from the trust bundle: after a root switch, workloads still
    // hold certificates from the previous root (kept in the bundle) and must renew with them. The
    // record check below is what ties a leaf to this CA.
    const { certificate, roots } = this.issuer();
    if (leaf.ca || ![certificate, ...roots].some((c) => signedBy(leaf, c.rawData))) {
      throw refuse('not a workload certificate issued by this CA');
    }
    const now = Date.now();
    if (new Date(leaf.validFrom).getTime() > now || new Date(leaf.validTo).getTime() <= now) throw refuse(`certificate ${leaf.serialNumber} is not valid now (expired or not yet valid): use a join token`);
    if (!verifySvidSignature(leaf.publicKey, request.csrPem, decoded.signature)) throw refuse('the signature over the CSR does not verify with the certificate\'s key');
    // Serials are stored as @peculiar/x509 prints them; node's X509Certificate uppercases them.
    const row = await this.prisma.issuedCertificate.findFirst({ where: { serial: { in: [leaf.serialNumber, leaf.serialNumber.toLowerCase()] } } });
    if (!row) throw refuse(`certificate ${leaf.serialNumber} is not in this CA's records`);
    if (leaf.subjectAltName !== `URI:${row.spiffeId}`) throw refuse('the certificate\'s identity does not match the record');
    const origin = rootCredential(row.credential);
    if (origin.startsWith('join-token:')) {
      const t = await this.prisma.joinToken.findUnique({ where: { id: origin.slice('join-token:'.length) } });
      if (!t || t.revokedAt) throw refuse(`the join token this certificate descends from (${origin}) was revoked`);
    }
    return { identity: { namespace: row.namespace, serviceAccount: row.serviceAccount }, credential: `svid:${row.serial}${VIA}${origin}` };
  }
}
