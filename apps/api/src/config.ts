import os from 'node:os';
import path from 'node:path';

// Every port, address and limit of the control plane, read once from the environment.
// docs/configuration.md lists them; keep the two in step.
export interface Config {
  apiHost: string;
  apiPort: number;
  dataDir: string;
  databaseUrl: string | undefined;
  adminPassword: string | undefined;
  maxBodyBytes: number;
  sessionTtlMs: number;
  loginMaxAttempts: number;
  loginWindowMs: number;
  domainSuffix: string;
  secureCookies: boolean;
  logLevel: string;
  /** The ADS (xDS) gRPC server. */
  xdsHost: string;
  xdsPort: number;
  /** Changes are coalesced until this long after the last one… */
  xdsDebounceMs: number;
  /** …but never delayed more than this after the first. */
  xdsDebounceMaxMs: number;
  /** This replica's name in proxy status (which replica holds which proxy). */
  replicaId: string;
  /** Telemetry (docs/telemetry.md): how often ingested reports are written (batched upserts). */
  telemetryFlushMs: number;
  /** The report interval the control plane asks sidecars for (0: leave theirs, default 5 s). */
  telemetryReportIntervalMs: number;
  /** How long 1-minute rollups are kept (hours), and 1-hour rollups (days). */
  telemetryMinuteRetentionHours: number;
  telemetryHourRetentionDays: number;
  /** How often hour rollups are recomputed and old rows deleted. */
  telemetryRollupIntervalMs: number;
  /** The CA (docs/security.md): SPIFFE trust domain of workload identities. */
  trustDomain: string;
  /** Compile mutual TLS for sidecars (CompileOptions.mtls: PeerAuthentication, ISTIO_MUTUAL, auto-mTLS); TERN_MTLS. */
  mtls: boolean;
  /** Workload certificate lifetime when the caller asks for none, and the most it may ask for. */
  caDefaultTtlSeconds: number;
  caMaxTtlSeconds: number;
  /** Key-encryption key for the stored CA key (base64 of 32 bytes), or a file holding it. */
  caKeyEncryptionKey: string | undefined;
  caKeyEncryptionKeyFile: string | undefined;
  /** An operator-provided CA instead of the generated root. */
  caCertFile: string | undefined;
  caKeyFile: string | undefined;
  caChainFile: string | undefined;
  /** More roots to trust (TERN_CA_TRUST_BUNDLE_FILE), for a root rotation. */
  caTrustBundleFile: string | undefined;
  /** Accept Kubernetes service-account tokens at the CA (TokenReview); TERN_CA_TOKEN_REVIEW, on in a cluster by default. */
  caTokenReview: boolean;
  /** The audience those tokens must be for (TERN_CA_TOKEN_AUDIENCE). */
  caTokenAudience: string;
  /** The kubeconfig to reach the API server with (KUBECONFIG; in a pod: its service account). */
  kubeconfig: string | undefined;
  /** Write policy into the cluster as custom resources (leader only); TERN_KUBE_RECONCILE, on in a pod by default. */
  kubeReconcile: boolean;
  /** What to do with a custom resource edited in the cluster: `correct` it, or `adopt` the edit (TERN_KUBE_DRIFT). */
  kubeDrift: 'correct' | 'adopt';
  /** The reconciler's safety-net pass besides the watch (TERN_KUBE_RESYNC_SECONDS, default 30). */
  kubeResyncMs: number;
  /** Register the cluster's Services and Pods in the registry (leader only); TERN_KUBE_REGISTRY, on in a pod by default. */
  kubeRegistry: boolean;
  /** The control plane's own namespace (its Lease lives there); TERN_NAMESPACE, else POD_NAMESPACE, else tern-system. */
  namespace: string;
  /** Serve the sidecar-injection webhook on every replica, keep its caBundle (leader); TERN_KUBE_INJECT, on in a pod by default. */
  kubeInject: boolean;
  /** The webhook's HTTPS listener (TERN_KUBE_INJECT_HOST, default TERN_API_HOST's value; TERN_KUBE_INJECT_PORT). */
  kubeInjectHost: string;
  kubeInjectPort: number;
  /** Lifetime of the webhook's serving certificate (renewed at about half of it); TERN_KUBE_INJECT_CERT_TTL_SECONDS. */
  kubeInjectCertTtlSeconds: number;
  /** More DNS names for the serving certificate besides tern-webhook.<namespace>.svc…; TERN_KUBE_INJECT_DNS_NAMES. */
  kubeInjectDnsNames: string[];
  /** How often the leader checks the webhook configuration's caBundle (TERN_KUBE_INJECT_CA_BUNDLE_CHECK_SECONDS). */
  kubeInjectCaBundleCheckMs: number;
  /** The image injected as the sidecar (and its init container); TERN_PROXY_IMAGE. */
  proxyImage: string;
  /** Where injected sidecars reach xDS and the CA; TERN_KUBE_INJECT_XDS_ADDRESS, default tern-api.<namespace>.svc:15010. */
  kubeInjectXdsAddress: string;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new Error('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  return {
    apiHost: env.TERN_API_HOST ?? '127.0.0.1',
    apiPort: int(env, 'TERN_API_PORT', 8080),
    dataDir: path.resolve(env.TERN_DATA_DIR ?? '.tern'),
    databaseUrl,
    adminPassword: env.TERN_ADMIN_PASSWORD || undefined,
    maxBodyBytes: int(env, 'TERN_API_MAX_BODY_BYTES', 2 * 1024 * 1024, 1024),
    sessionTtlMs: int(env, 'TERN_SESSION_TTL_SECONDS', 12 * 3600, 60) * 1000,
    loginMaxAttempts: int(env, 'TERN_LOGIN_MAX_ATTEMPTS', 10, 1),
    loginWindowMs: int(env, 'TERN_LOGIN_WINDOW_SECONDS', 300, 1) * 1000,
    domainSuffix: env.TERN_DOMAIN_SUFFIX ?? 'cluster.local',
    secureCookies: env.TERN_SECURE_COOKIES === 'true',
    logLevel: env.TERN_LOG_LEVEL ?? 'info',
    xdsHost: env.TERN_XDS_HOST ?? '127.0.0.1',
    xdsPort: int(env, 'TERN_XDS_PORT', 15010),
    xdsDebounceMs: int(env, 'TERN_XDS_DEBOUNCE_MS', 100),
    xdsDebounceMaxMs: int(env, 'TERN_XDS_DEBOUNCE_MAX_MS', 1000),
    replicaId: env.TERN_REPLICA_ID?.trim() || `${os.hostname()}-${process.pid}`,
    telemetryFlushMs: int(env, 'TERN_TELEMETRY_FLUSH_MS', 2000, 10),
    telemetryReportIntervalMs: int(env, 'TERN_TELEMETRY_REPORT_INTERVAL_MS', 0),
    telemetryMinuteRetentionHours: int(env, 'TERN_TELEMETRY_MINUTE_RETENTION_HOURS', 24, 1),
    telemetryHourRetentionDays: int(env, 'TERN_TELEMETRY_HOUR_RETENTION_DAYS', 30, 1),
    telemetryRollupIntervalMs: int(env, 'TERN_TELEMETRY_ROLLUP_INTERVAL_SECONDS', 300, 1) * 1000,
    ...caConfig(env),
  };
}

function caConfig(env: NodeJS.ProcessEnv) {
  const trustDomain = env.TERN_TRUST_DOMAIN?.trim() || 'cluster.local';
  if (!/^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/.test(trustDomain) || trustDomain.length > 255) {
    throw new Error(`TERN_TRUST_DOMAIN must be a lowercase DNS-like name (letters, digits, ".", "-", "_"), got "${trustDomain}"`);
  }
  const caDefaultTtlSeconds = int(env, 'TERN_CA_DEFAULT_TTL_SECONDS', 24 * 3600, 60);
  const caMaxTtlSeconds = int(env, 'TERN_CA_MAX_TTL_SECONDS', 7 * 24 * 3600, 60);
  if (caDefaultTtlSeconds > caMaxTtlSeconds) throw new Error(`TERN_CA_DEFAULT_TTL_SECONDS (${caDefaultTtlSeconds}) must not exceed TERN_CA_MAX_TTL_SECONDS (${caMaxTtlSeconds})`);
  const file = (name: string) => env[name]?.trim() || undefined;
  const caCertFile = file('TERN_CA_CERT_FILE');
  const caKeyFile = file('TERN_CA_KEY_FILE');
  if (Boolean(caCertFile) !== Boolean(caKeyFile)) throw new Error('TERN_CA_CERT_FILE and TERN_CA_KEY_FILE must be set together');
  const caChainFile = file('TERN_CA_CHAIN_FILE');
  if (caChainFile && !caCertFile) throw new Error('TERN_CA_CHAIN_FILE needs TERN_CA_CERT_FILE and TERN_CA_KEY_FILE');
  const caTokenReview = flag(env, 'TERN_CA_TOKEN_REVIEW', Boolean(env.KUBERNETES_SERVICE_HOST));
  const kubeDrift = (env.TERN_KUBE_DRIFT?.trim() || 'correct') as 'correct' | 'adopt';
  if (kubeDrift !== 'correct' && kubeDrift !== 'adopt') throw new Error(`TERN_KUBE_DRIFT must be "correct" or "adopt", got "${env.TERN_KUBE_DRIFT}"`);
  const mtlsRaw = env.TERN_MTLS?.trim().toLowerCase() ?? '';
  const namespace = env.TERN_NAMESPACE?.trim() || env.POD_NAMESPACE?.trim() || 'tern-system';
  if (!['', 'true', 'false', '1', '0'].includes(mtlsRaw)) throw new Error(`TERN_MTLS must be true or false, got "${env.TERN_MTLS}"`);
  return {
    trustDomain,
    // On unless turned off: Istio's default (PERMISSIVE inbound, auto-mTLS to endpoints with sidecars).
    mtls: mtlsRaw !== 'false' && mtlsRaw !== '0',
    caDefaultTtlSeconds,
    caMaxTtlSeconds,
    caKeyEncryptionKey: env.TERN_CA_KEY_ENCRYPTION_KEY?.trim() || undefined,
    caKeyEncryptionKeyFile: file('TERN_CA_KEY_ENCRYPTION_KEY_FILE'),
    caCertFile,
    caKeyFile,
    caChainFile,
    caTrustBundleFile: file('TERN_CA_TRUST_BUNDLE_FILE'),
    caTokenReview,
    caTokenAudience: env.TERN_CA_TOKEN_AUDIENCE?.trim() || 'tern-ca',
    kubeconfig: file('KUBECONFIG'),
    kubeReconcile: flag(env, 'TERN_KUBE_RECONCILE', Boolean(env.KUBERNETES_SERVICE_HOST)),
    kubeDrift,
    kubeResyncMs: int(env, 'TERN_KUBE_RESYNC_SECONDS', 30, 1) * 1000,
    kubeRegistry: flag(env, 'TERN_KUBE_REGISTRY', Boolean(env.KUBERNETES_SERVICE_HOST)),
    ...injectConfig(env, namespace),
    namespace,
  };
}

/** The image injected as the sidecar when TERN_PROXY_IMAGE is unset (deploy/kubernetes/base/control-plane.yaml sets the same). */
export const DEFAULT_PROXY_IMAGE = 'tern-proxy:0.1.0';
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

function injectConfig(env: NodeJS.ProcessEnv, namespace: string) {
  const port = int(env, 'TERN_KUBE_INJECT_PORT', 15017);
  if (port > 65535) throw new Error(`TERN_KUBE_INJECT_PORT must be a port number (0-65535), got "${env.TERN_KUBE_INJECT_PORT}"`);
  // Set but empty is a mistake (a templating gap), not "use the default": the sidecar would have no image.
  const image = env.TERN_PROXY_IMAGE;
  if (image !== undefined && image.trim() === '') throw new Error('TERN_PROXY_IMAGE must name an image (e.g. registry.example/tern-proxy:0.1.0), got an empty value');
  if (image !== undefined && /\s/.test(image.trim())) throw new Error(`TERN_PROXY_IMAGE must be an image reference without spaces, got "${image}"`);
  const xds = env.TERN_KUBE_INJECT_XDS_ADDRESS?.trim() || `tern-api.${namespace}.svc:15010`;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d+)$/.exec(xds);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`TERN_KUBE_INJECT_XDS_ADDRESS must be host:port (the control plane's xDS address as pods reach it), got "${xds}"`);
  const names = (env.TERN_KUBE_INJECT_DNS_NAMES ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  names.forEach((n, i) => {
    if (!DNS_NAME.test(n)) throw new Error(`TERN_KUBE_INJECT_DNS_NAMES: item ${i + 1} ("${n}") must be a lower-case DNS name`);
  });
  return {
    kubeInject: flag(env, 'TERN_KUBE_INJECT', Boolean(env.KUBERNETES_SERVICE_HOST)),
    kubeInjectHost: env.TERN_KUBE_INJECT_HOST?.trim() || env.TERN_API_HOST?.trim() || '127.0.0.1',
    kubeInjectPort: port,
    kubeInjectCertTtlSeconds: int(env, 'TERN_KUBE_INJECT_CERT_TTL_SECONDS', 7 * 24 * 3600, 60),
    kubeInjectDnsNames: names,
    kubeInjectCaBundleCheckMs: int(env, 'TERN_KUBE_INJECT_CA_BUNDLE_CHECK_SECONDS', 60, 1) * 1000,
    proxyImage: image?.trim() || DEFAULT_PROXY_IMAGE,
    kubeInjectXdsAddress: xds,
  };
}

/** A true/false variable (also 1/0); unset or empty: `fallback`. */
function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase() ?? '';
  if (raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, got "${env[name]}"`);
}
