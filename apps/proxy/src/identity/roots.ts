import { X509Certificate } from 'node:crypto';

// The trust bundle the workload keeps: every root the CA has handed out that has not expired.
// During a root rotation the CA signs with the new root while workloads holding certificates from
// the old one are still around, so both stay trusted until the old one expires.

export interface TrustedRoot {
  pem: string;
  /** SHA-256 fingerprint (colon hex, as node prints it): the identity of a root. */
  fingerprint: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

export function parseRoot(pem: string): TrustedRoot {
  const c = new X509Certificate(pem);
  return { pem: c.toString(), fingerprint: c.fingerprint256, subject: c.subject, notBefore: new Date(c.validFrom), notAfter: new Date(c.validTo) };
}

/** `current` plus the roots in `incoming` not already there (by fingerprint), minus expired ones; newest first. */
export function mergeRoots(current: readonly TrustedRoot[], incoming: readonly string[], now: Date): TrustedRoot[] {
  const byFp = new Map<string, TrustedRoot>();
  for (const r of [...incoming.map(parseRoot), ...current]) if (!byFp.has(r.fingerprint)) byFp.set(r.fingerprint, r);
  return [...byFp.values()].filter((r) => r.notAfter.getTime() > now.getTime()).sort((a, b) => b.notBefore.getTime() - a.notBefore.getTime());
}

export const rootsPem = (roots: readonly TrustedRoot[]): string => roots.map((r) => r.pem.trimEnd() + '\n').join('');
