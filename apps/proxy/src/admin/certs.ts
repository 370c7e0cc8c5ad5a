import { X509Certificate } from 'node:crypto';
import type { IdentityStatus } from '../identity/agent.ts';

// The admin's view of the workload identity: Envoy's /certs shape (ca_cert, cert_chain with
// serial, SANs, days until expiration) plus Tern's status (errors, next renewal), and the
// expiry gauges. Never key material.

const DAY_MS = 86_400_000;

function certDetails(pem: string, now: number, path: string) {
  const c = new X509Certificate(pem);
  const notAfter = new Date(c.validTo);
  return {
    path,
    serial_number: c.serialNumber.toLowerCase(),
    subject: c.subject,
    subject_alt_names: (c.subjectAltName ?? '').split(/,\s*/).filter(Boolean).map((s) => (s.startsWith('URI:') ? { uri: s.slice(4) } : s.startsWith('DNS:') ? { dns: s.slice(4) } : { other: s })),
    days_until_expiration: String(Math.floor((notAfter.getTime() - now) / DAY_MS)),
    valid_from: new Date(c.validFrom).toISOString(),
    expiration_time: notAfter.toISOString(),
    sha256_fingerprint: c.fingerprint256,
  };
}

export function certsJson(status: IdentityStatus | undefined, now = Date.now()) {
  if (!status) return { certificates: [], identity: { state: 'disabled', reason: 'no credential configured (TERN_SA_TOKEN_FILE, TERN_JOIN_TOKEN, TERN_JOIN_TOKEN_FILE or node.metadata.JOIN_TOKEN_FILE)' } };
  const cert = status.cert;
  return {
    certificates: [{
      ca_cert: status.roots.map((r) => certDetails(r.pem, now, 'sds:ROOTCA')),
      cert_chain: cert ? cert.chainPem.slice(0, Math.max(1, cert.chainPem.length - 1)).map((p) => certDetails(p, now, 'sds:default')) : [],
    }],
    identity: {
      state: status.state,
      spiffe_id: cert?.spiffeId ?? null,
      expected_spiffe_id: status.expectedSpiffeId ?? null,
      credential: status.credential,
      serial_number: cert?.serial.toLowerCase() ?? null,
      valid_from: cert?.notBefore.toISOString() ?? null,
      expiration_time: cert?.notAfter.toISOString() ?? null,
      seconds_until_expiration: cert ? Math.floor((cert.notAfter.getTime() - now) / 1000) : null,
      days_until_expiration: cert ? Math.floor((cert.notAfter.getTime() - now) / DAY_MS) : null,
      next_renewal: status.nextRenewal?.toISOString() ?? null,
      certificates_issued: status.issued,
      last_credential: status.lastCredential ?? null,
      consecutive_failures: status.consecutiveFailures,
      last_error: status.lastError ? { message: status.lastError.message, at: status.lastError.at.toISOString() } : null,
      // The whole chain as issued, for checking it against the control plane's trust bundle.
      cert_chain_pem: cert?.chainPem ?? [],
    },
  };
}

/** Seconds until the first certificate in use expires (the workload certificate or a root); undefined without any. */
function firstExpiry(status: IdentityStatus | undefined, now: number): number | undefined {
  if (!status) return undefined;
  const ends = [status.cert?.notAfter.getTime(), ...status.roots.map((r) => r.notAfter.getTime())].filter((t): t is number => t !== undefined);
  return ends.length ? Math.min(...ends) - now : undefined;
}

export function identityPrometheus(status: IdentityStatus | undefined, now = Date.now()): string {
  if (!status) return '';
  let out = '# HELP tern_identity_cert_expiry_seconds Seconds until the workload certificate expires (0 without one).\n# TYPE tern_identity_cert_expiry_seconds gauge\n';
  out += `tern_identity_cert_expiry_seconds ${status.cert ? Math.max(0, Math.floor((status.cert.notAfter.getTime() - now) / 1000)) : 0}\n`;
  out += '# TYPE tern_identity_cert_renewal_failures gauge\n';
  out += `tern_identity_cert_renewal_failures ${status.consecutiveFailures}\n`;
  const first = firstExpiry(status, now);
  if (first !== undefined) out += `# TYPE envoy_server_days_until_first_cert_expiring gauge\nenvoy_server_days_until_first_cert_expiring ${Math.max(0, Math.floor(first / DAY_MS))}\n`;
  return out;
}

export function identityStatsText(status: IdentityStatus | undefined, now = Date.now()): string {
  const first = firstExpiry(status, now);
  return first === undefined ? '' : `server.days_until_first_cert_expiring: ${Math.max(0, Math.floor(first / DAY_MS))}\n`;
}
