import type { JsonObject } from '@tern/xds';
import { DEFAULT_RENEW, type RenewPolicy } from './schedule.ts';

// Where the sidecar's workload identity comes from: node metadata (Istio's names where Istio has
// one) and the environment. docs/proxy.md "Workload identity".

export class IdentityConfigError extends Error {
  override readonly name = 'IdentityConfigError';
}

/**
 * The credential for the first certificate (and when renewing with the current one is refused):
 * a join token (env or file), or a Kubernetes projected service-account token (`sa-file`, checked
 * by the CA with TokenReview). Files are re-read for every CreateCertificate call: kubelet rotates
 * the projected token, an operator may replace a join token.
 */
export type TokenSource = { kind: 'env'; name: string; value: string } | { kind: 'file'; path: string; from: string } | { kind: 'sa-file'; path: string; from: string };

/** What a token source is called in logs, errors and `/certs`. */
export function tokenKind(t: TokenSource): 'join token' | 'service-account token' {
  return t.kind === 'sa-file' ? 'service-account token' : 'join token';
}

export interface IdentityConfig {
  /** The control plane's gRPC address (the xDS port): the CA listens next to ADS. */
  caAddress: string;
  caTls: boolean;
  token: TokenSource;
  trustDomain: string;
  namespace: string | undefined;
  serviceAccount: string | undefined;
  /** The SPIFFE ID asked for in the CSR; undefined = whatever the credential's identity is. */
  spiffeId: string | undefined;
  /** Requested certificate lifetime in seconds; 0 = the CA's default. */
  ttlSeconds: number;
  /** Write cert-chain.pem, key.pem, root-cert.pem here on every rotation. */
  outputDir: string | undefined;
  renew: RenewPolicy;
  /** The xDS node id, sent to the CA (`tern-proxy-id`) so the API can show certificate expiry per proxy. */
  proxyId: string | undefined;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

function num(name: string, v: string | undefined, check: (n: number) => boolean, rule: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || !check(n)) throw new IdentityConfigError(`${name}: ${rule}, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * The identity configuration, or undefined when no credential is configured (the proxy then runs
 * without a workload certificate, as before). Throws IdentityConfigError on bad values.
 */
export function resolveIdentityConfig(o: { metadata: JsonObject; nodeId?: string | undefined; env: NodeJS.ProcessEnv; caAddress: string | undefined; caTls: boolean; outputDir?: string | undefined }): IdentityConfig | undefined {
  const { metadata: md, env } = o;
  let token: TokenSource | undefined;
  // The service-account token first: set by the injection webhook, it is the pod's own identity.
  if (str(env.TERN_SA_TOKEN_FILE)) token = { kind: 'sa-file', path: str(env.TERN_SA_TOKEN_FILE)!, from: 'TERN_SA_TOKEN_FILE' };
  else if (str(env.TERN_JOIN_TOKEN)) token = { kind: 'env', name: 'TERN_JOIN_TOKEN', value: str(env.TERN_JOIN_TOKEN)! };
  else if (str(env.TERN_JOIN_TOKEN_FILE)) token = { kind: 'file', path: str(env.TERN_JOIN_TOKEN_FILE)!, from: 'TERN_JOIN_TOKEN_FILE' };
  else if (str(md.JOIN_TOKEN_FILE)) token = { kind: 'file', path: str(md.JOIN_TOKEN_FILE)!, from: 'node.metadata.JOIN_TOKEN_FILE' };
  if (!token) return undefined;
  if (!o.caAddress) throw new IdentityConfigError(`${token.kind === 'env' ? token.name : token.from}: a ${tokenKind(token)} is set but the bootstrap has no dynamic_resources.ads_config: the CA is reached at the control plane's xDS address`);
  const trustDomain = str(md.TRUST_DOMAIN) ?? str(env.TERN_TRUST_DOMAIN) ?? 'cluster.local';
  if (!/^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/.test(trustDomain)) throw new IdentityConfigError(`node.metadata.TRUST_DOMAIN: must be lowercase letters, digits, "-", "." and "_", got ${JSON.stringify(trustDomain)}`);
  const namespace = str(md.NAMESPACE);
  const serviceAccount = str(md.SERVICE_ACCOUNT);
  const fraction = num('TERN_IDENTITY_RENEW_FRACTION', env.TERN_IDENTITY_RENEW_FRACTION, (n) => n > 0 && n < 1, 'a number between 0 and 1 (exclusive)');
  const ttlSeconds = num('TERN_IDENTITY_TTL_SECONDS', env.TERN_IDENTITY_TTL_SECONDS, (n) => Number.isInteger(n) && n >= 0, 'a whole number of seconds >= 0') ?? 0;
  return {
    caAddress: o.caAddress,
    caTls: o.caTls,
    token,
    trustDomain,
    namespace,
    serviceAccount,
    spiffeId: namespace && serviceAccount ? `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}` : undefined,
    ttlSeconds,
    outputDir: o.outputDir ?? str(env.TERN_CERT_OUTPUT_DIR) ?? str(md.CERT_OUTPUT_DIR),
    renew: { ...DEFAULT_RENEW, ...(fraction !== undefined ? { fraction } : {}) },
    proxyId: str(o.nodeId),
  };
}
