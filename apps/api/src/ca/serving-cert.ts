import { createPrivateKey } from 'node:crypto';
import { subtle, x509, type CryptoKeyPair } from './x509.ts';
import { signLeaf, type CaIssuer } from './issuer.ts';

// Server certificates with DNS names, for the control plane's own internal servers (the sidecar
// injection webhook, which the Kubernetes API server calls over HTTPS). Deliberately separate from
// issue.ts: workloads asking through CreateCertificate only ever get their SPIFFE ID, never DNS
// names; nothing here is reachable from the API or gRPC.

export interface ServingCertificate {
  /** Leaf first, then the issuer's chain up to the root (what a TLS server sends). */
  certPem: string;
  /** PKCS#8 PEM; stays in memory. */
  keyPem: string;
  /** PEM roots a client must trust (the issuer's trust bundle). */
  caPem: string;
  serial: string;
  notAfter: Date;
}

export const SERVING_DEFAULT_TTL_SECONDS = 30 * 24 * 3600;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

export class ServingCertError extends Error {
  override readonly name = 'ServingCertError';
}

/** Signs a fresh P-256 key for these DNS names (serverAuth only). The first name is the subject CN. */
export async function issueServingCertificate(issuer: CaIssuer, o: { dnsNames: string[]; ttlSeconds?: number; now?: Date }): Promise<ServingCertificate> {
  if (o.dnsNames.length === 0) throw new ServingCertError('dnsNames: at least one DNS name is required');
  o.dnsNames.forEach((n, i) => {
    if (!DNS_NAME.test(n)) throw new ServingCertError(`dnsNames[${i}]: ${JSON.stringify(n)} is not a lower-case DNS name`);
  });
  const ttl = o.ttlSeconds ?? SERVING_DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 60) throw new ServingCertError(`ttlSeconds: must be a whole number >= 60, got ${ttl}`);
  const now = o.now ?? new Date();
  const keys = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const { leaf, serial } = await signLeaf(issuer, {
    publicKey: keys.publicKey,
    subject: `CN=${o.dnsNames[0]}`,
    sans: o.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    sansCritical: false,
    usages: [x509.ExtendedKeyUsage.serverAuth],
    ttlSeconds: ttl,
    now,
  });
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  pkcs8.fill(0);
  return {
    certPem: [leaf, ...issuer.chain].map((c) => c.toString('pem')).join('\n'),
    keyPem,
    caPem: issuer.roots.map((c) => c.toString('pem')).join('\n'),
    serial,
    notAfter: leaf.notAfter,
  };
}

/**
 * `caBundle` for a MutatingWebhookConfiguration: base64 of the PEM roots. Accepts the CaService
 * (its trustBundle()) or the roots' PEM text. Keeping the cluster's copy current (after a root
 * rotation) is the reconciler's job.
 */
export function webhookCaBundle(ca: { trustBundle(): { roots: string[] } } | string): string {
  const pem = typeof ca === 'string' ? ca : ca.trustBundle().roots.join('\n');
  return Buffer.from(pem).toString('base64');
}
