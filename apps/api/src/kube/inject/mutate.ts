import type { V1Container, V1EnvVar, V1Pod, V1Probe, V1ResourceRequirements, V1Volume } from '@kubernetes/client-node';
import { iptablesRestoreInput, parseCidrList, parsePortList, RedirectOptionError, type RedirectOptions } from './iptables.ts';

// Sidecar injection as a pure function: given the pod a mutating admission webhook receives and
// its namespace's labels, decide whether to inject and build the JSON patch that does it
// (docs/kubernetes-injection.md). No I/O: webhook-server.ts does the HTTP side.

export interface JsonPatchOp {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

export interface InjectConfig {
  /** The tern-proxy image; its entrypoint must be `tern-proxy` (arguments are appended). */
  proxyImage: string;
  /** The init container's image (needs sh, sed and iptables-restore); default `proxyImage`. */
  initImage?: string | undefined;
  /** The control plane's xDS (and CA) address, `host:port`, e.g. `tern-api.tern-system.svc:15010`. */
  xdsAddress: string;
  trustDomain?: string | undefined;
  /** Kubernetes cluster domain for the Istio-style node id; default `cluster.local`. */
  clusterDomain?: string | undefined;
  /** Audience of the projected service-account token the proxy presents to the CA. */
  tokenAudience?: string | undefined;
  tokenExpirationSeconds?: number | undefined;
  resources?: V1ResourceRequirements | undefined;
  imagePullPolicy?: string | undefined;
}

export const INJECT_LABEL = 'tern-injection';
export const ISTIO_INJECT_LABEL = 'istio-injection';
export const INJECT_ANNOTATION = 'sidecar.tern.dev/inject';
export const ISTIO_INJECT_ANNOTATION = 'sidecar.istio.io/inject';
export const STATUS_ANNOTATION = 'sidecar.tern.dev/status';
export const REWRITE_PROBES_ANNOTATIONS = ['sidecar.tern.dev/rewriteAppHTTPProbers', 'sidecar.istio.io/rewriteAppHTTPProbers'] as const;
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

export const PROXY_CONTAINER = 'tern-proxy';
export const INIT_CONTAINER = 'tern-init';
export const PROXY_UID = 1337;
export const OUTBOUND_PORT = 15001;
export const INBOUND_PORT = 15006;
export const ADMIN_PORT = 15000;
/** Where the proxy must answer the rewritten app probes: `/app-health/<container>/<livez|readyz|startupz>`. */
export const PROBE_PORT = 15020;
/** Where the proxy must answer its own readiness: `GET /healthz/ready` (Istio's port and path). */
export const HEALTH_PORT = 15021;
export const STATS_PORT = 15090;

export const CONFIG_DIR = '/etc/tern';
export const BOOTSTRAP_FILE = `${CONFIG_DIR}/bootstrap.json`;
export const TOKEN_DIR = '/var/run/secrets/tern/tokens';
export const TOKEN_FILE = `${TOKEN_DIR}/tern-token`;
/** The env var naming the projected service-account token file the proxy presents to the CA. */
export const TOKEN_FILE_ENV = 'TERN_SA_TOKEN_FILE';
/** The env var holding the original app probes (JSON: probe path → original handler). */
export const APP_PROBERS_ENV = 'TERN_KUBE_APP_PROBERS';
export const CONFIG_VOLUME = 'tern-config';
export const TOKEN_VOLUME = 'tern-token';

/** Istio's traffic annotations, read as istio-init reads them. */
export const TRAFFIC_ANNOTATIONS = {
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
} as const;

export type InjectReason =
  | 'injected'
  | 'namespace-not-enabled'
  | 'pod-opted-out'
  | 'already-injected'
  | 'host-network'
  | 'no-spec'
  | 'invalid-annotation';

export interface InjectResult {
  patch: JsonPatchOp[];
  reason: InjectReason;
  /** Human-readable detail; surfaced as an AdmissionReview warning when nothing was injected for a problem. */
  message: string;
  /** Probes left as they were (e.g. a named port no container declares), one line each. */
  warnings: string[];
}

/** The annotation value recorded on an injected pod (and the proof of injection on reinvocation). */
export interface InjectionStatus {
  version: 1;
  initContainers: string[];
  containers: string[];
  volumes: string[];
  rewrittenProbes: string[];
}

const falsy = (v: string | undefined) => v !== undefined && ['false', 'no', 'n', '0', 'off'].includes(v.trim().toLowerCase());

/** RFC 6901: `~` and `/` in a key. */
export const pointer = (...parts: (string | number)[]) => '/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** The namespace opted in: `tern-injection=enabled` or Istio's `istio-injection=enabled`. */
export function namespaceInjectionEnabled(labels: Record<string, string>): boolean {
  return labels[INJECT_LABEL] === 'enabled' || labels[ISTIO_INJECT_LABEL] === 'enabled';
}

export function injectSidecar(pod: V1Pod, namespaceLabels: Record<string, string>, config: InjectConfig): InjectResult {
  const none = (reason: InjectReason, message: string): InjectResult => ({ patch: [], reason, message, warnings: [] });
  const annotations = pod.metadata?.annotations ?? {};
  if (!namespaceInjectionEnabled(namespaceLabels)) return none('namespace-not-enabled', `the namespace is not labelled ${INJECT_LABEL}=enabled (or ${ISTIO_INJECT_LABEL}=enabled)`);
  for (const a of [INJECT_ANNOTATION, ISTIO_INJECT_ANNOTATION]) {
    if (falsy(annotations[a])) return none('pod-opted-out', `the pod is annotated ${a}: ${JSON.stringify(annotations[a])}`);
  }
  const spec = pod.spec;
  // Reinvocation (reinvocationPolicy: IfNeeded) or a pod created from an already injected spec.
  if (annotations[STATUS_ANNOTATION] !== undefined || spec?.containers?.some((c) => c.name === PROXY_CONTAINER) || spec?.initContainers?.some((c) => c.name === INIT_CONTAINER)) {
    return none('already-injected', `the pod already has the ${PROXY_CONTAINER} sidecar (${STATUS_ANNOTATION} or the container is present)`);
  }
  if (!spec?.containers) return none('no-spec', 'the pod has no spec.containers');
  // The rules would change the node's own network namespace.
  if (spec.hostNetwork) return none('host-network', 'the pod uses hostNetwork: a sidecar would redirect the node\'s traffic');

  let redirect: RedirectOptions;
  try {
    redirect = redirectOptions(annotations);
  } catch (err) {
    if (err instanceof RedirectOptionError) return none('invalid-annotation', `not injected: ${err.message}`);
    throw err;
  }

  const warnings: string[] = [];
  const patch: JsonPatchOp[] = [];
  const probers: Record<string, unknown> = {};
  const rewrite = !REWRITE_PROBES_ANNOTATIONS.some((a) => falsy(annotations[a]));
  if (rewrite) {
    spec.containers.forEach((c, i) => {
      for (const [field, kind] of [['livenessProbe', 'livez'], ['readinessProbe', 'readyz'], ['startupProbe', 'startupz']] as const) {
        const probe = c[field];
        if (!probe) continue;
        const r = rewriteProbe(probe, c, kind);
        if (r.kind === 'skip') {
          if (r.why) warnings.push(`containers[${i}] (${c.name}).${field}: ${r.why}; left as it is`);
          continue;
        }
        probers[r.path] = r.original;
        patch.push({ op: 'replace', path: pointer('spec', 'containers', i, field), value: r.probe });
      }
    });
  }

  const status: InjectionStatus = {
    version: 1,
    initContainers: [INIT_CONTAINER],
    containers: [PROXY_CONTAINER],
    volumes: [CONFIG_VOLUME, TOKEN_VOLUME],
    rewrittenProbes: Object.keys(probers),
  };
  const bootstrap = bootstrapTemplate(pod, config);
  const init = initContainer(config, redirect, bootstrap);
  const proxy = proxyContainer(config, probers);
  const volumes: V1Volume[] = [
    // Memory-backed: the bootstrap is small and must not outlive the pod.
    { name: CONFIG_VOLUME, emptyDir: { medium: 'Memory' } },
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [{ serviceAccountToken: { audience: config.tokenAudience ?? 'tern-ca', expirationSeconds: config.tokenExpirationSeconds ?? 3600, path: 'tern-token' } }],
      },
    },
  ];

  // The init container goes first so no other init container runs before traffic is captured.
  if (spec.initContainers?.length) patch.push({ op: 'add', path: pointer('spec', 'initContainers', 0), value: init });
  else patch.push({ op: 'add', path: pointer('spec', 'initContainers'), value: [init] });
  patch.push({ op: 'add', path: pointer('spec', 'containers', '-'), value: proxy });
  if (spec.volumes?.length) for (const v of volumes) patch.push({ op: 'add', path: pointer('spec', 'volumes', '-'), value: v });
  else patch.push({ op: 'add', path: pointer('spec', 'volumes'), value: volumes });

  const labels = pod.metadata?.labels;
  if (labels) patch.push({ op: 'add', path: pointer('metadata', 'labels', TLS_MODE_LABEL), value: 'istio' });
  else patch.push({ op: 'add', path: pointer('metadata', 'labels'), value: { [TLS_MODE_LABEL]: 'istio' } });
  if (pod.metadata?.annotations) patch.push({ op: 'add', path: pointer('metadata', 'annotations', STATUS_ANNOTATION), value: JSON.stringify(status) });
  else patch.push({ op: 'add', path: pointer('metadata', 'annotations'), value: { [STATUS_ANNOTATION]: JSON.stringify(status) } });

  return { patch, reason: 'injected', message: `injected ${PROXY_CONTAINER} and ${INIT_CONTAINER}${status.rewrittenProbes.length ? `; rewrote ${status.rewrittenProbes.length} probe(s)` : ''}`, warnings };
}

export function redirectOptions(annotations: Record<string, string>): RedirectOptions {
  const a = (k: keyof typeof TRAFFIC_ANNOTATIONS) => annotations[TRAFFIC_ANNOTATIONS[k]];
  const inc = a('includeInboundPorts');
  const excIn = a('excludeInboundPorts');
  const incOut = a('includeOutboundIPRanges');
  const excOut = a('excludeOutboundIPRanges');
  const excPorts = a('excludeOutboundPorts');
  return {
    proxyUid: PROXY_UID,
    proxyGid: PROXY_UID,
    outboundPort: OUTBOUND_PORT,
    inboundPort: INBOUND_PORT,
    includeInboundPorts: inc === undefined ? '*' : parsePortList(inc, TRAFFIC_ANNOTATIONS.includeInboundPorts, true),
    // kubelet must reach the probe and health ports directly, Prometheus the stats port.
    excludeInboundPorts: [PROBE_PORT, HEALTH_PORT, STATS_PORT, ...(excIn === undefined ? [] : parsePortList(excIn, TRAFFIC_ANNOTATIONS.excludeInboundPorts))],
    includeOutboundIpRanges: incOut === undefined ? '*' : parseCidrList(incOut, TRAFFIC_ANNOTATIONS.includeOutboundIPRanges, true),
    excludeOutboundIpRanges: excOut === undefined ? [] : parseCidrList(excOut, TRAFFIC_ANNOTATIONS.excludeOutboundIPRanges),
    excludeOutboundPorts: excPorts === undefined ? [] : parsePortList(excPorts, TRAFFIC_ANNOTATIONS.excludeOutboundPorts),
  };
}

type ProbeRewrite = { kind: 'skip'; why?: string } | { kind: 'rewrite'; path: string; probe: V1Probe; original: unknown };

/** The port number a probe means: a number, or the name of one of the container's ports. */
function resolvePort(port: number | string | undefined, c: V1Container): number | undefined {
  if (typeof port === 'number') return port;
  if (typeof port === 'string') {
    if (/^\d+$/.test(port)) return Number(port);
    return c.ports?.find((p) => p.name === port)?.containerPort;
  }
  return undefined;
}

/**
 * Istio's probe rewrite: an httpGet or tcpSocket probe is pointed at the proxy's probe port, whose
 * handler forwards it to the app as the original would have (that connection comes from the proxy,
 * uid 1337, so it is not redirected and needs no mTLS). Exec and gRPC probes need no rewrite.
 */
function rewriteProbe(probe: V1Probe, c: V1Container, kind: 'livez' | 'readyz' | 'startupz'): ProbeRewrite {
  const path = `/app-health/${c.name}/${kind}`;
  let original: Record<string, unknown>;
  if (probe.httpGet) {
    const port = resolvePort(probe.httpGet.port as number | string, c);
    if (port === undefined) return { kind: 'skip', why: `httpGet.port ${JSON.stringify(probe.httpGet.port)} names no port of the container` };
    original = { httpGet: { ...probe.httpGet, port, scheme: probe.httpGet.scheme ?? 'HTTP' } };
  } else if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port as number | string, c);
    if (port === undefined) return { kind: 'skip', why: `tcpSocket.port ${JSON.stringify(probe.tcpSocket.port)} names no port of the container` };
    original = { tcpSocket: { ...probe.tcpSocket, port } };
  } else {
    return { kind: 'skip' };
  }
  if (probe.timeoutSeconds !== undefined) original.timeoutSeconds = probe.timeoutSeconds;
  const { httpGet: _h, tcpSocket: _t, ...timing } = probe;
  return { kind: 'rewrite', path, original, probe: { ...timing, httpGet: { path, port: PROBE_PORT as never, scheme: 'HTTP' } } };
}

/** Placeholders the init container fills from the downward API (the pod name may not exist yet at admission: generateName). */
export const PLACEHOLDERS = { podName: '@POD_NAME@', podNamespace: '@POD_NAMESPACE@', podIp: '@POD_IP@' } as const;

/**
 * The Envoy bootstrap the proxy reads (it takes only a bootstrap file), with PLACEHOLDERS for what
 * only the running pod knows. Pod labels are safe inside it: label values cannot contain `@`.
 */
export function bootstrapTemplate(pod: V1Pod, config: InjectConfig): Record<string, unknown> {
  const { podName: name, podNamespace: ns, podIp: ip } = PLACEHOLDERS;
  const [host, portText] = splitHostPort(config.xdsAddress);
  const labels: Record<string, string> = { ...(pod.metadata?.labels ?? {}), [TLS_MODE_LABEL]: 'istio' };
  const app = labels['app.kubernetes.io/name'] ?? labels.app;
  return {
    node: {
      id: `sidecar~${ip}~${name}.${ns}~${ns}.svc.${config.clusterDomain ?? 'cluster.local'}`,
      cluster: `${app ?? name}.${ns}`,
      metadata: {
        NAMESPACE: ns,
        POD_NAME: name,
        INSTANCE_IPS: ip,
        LABELS: labels,
        SERVICE_ACCOUNT: pod.spec?.serviceAccountName ?? 'default',
        TRUST_DOMAIN: config.trustDomain ?? 'cluster.local',
        INTERCEPTION: 'REDIRECT',
        OUTBOUND_PORT: OUTBOUND_PORT,
        INBOUND_PORT: INBOUND_PORT,
      },
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: ADMIN_PORT } } },
    dynamic_resources: {
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [{
        name: 'xds-grpc',
        type: 'STRICT_DNS',
        connect_timeout: '1s',
        load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: Number(portText) } } } }] }] },
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
      }],
    },
  };
}

export class InjectConfigError extends Error {
  override readonly name = 'InjectConfigError';
}

function splitHostPort(address: string): [string, string] {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new InjectConfigError(`xdsAddress: must be host:port, got ${JSON.stringify(address)}`);
  return [m[1]!.replace(/^\[|\]$/g, ''), m[2]!];
}

/** Throws InjectConfigError naming the field: checked once when the webhook starts. */
export function validateInjectConfig(config: InjectConfig): void {
  if (typeof config.proxyImage !== 'string' || config.proxyImage.trim() === '') throw new InjectConfigError('proxyImage: is required');
  splitHostPort(config.xdsAddress);
  const exp = config.tokenExpirationSeconds;
  // The API server's minimum for a projected token.
  if (exp !== undefined && (!Number.isInteger(exp) || exp < 600)) throw new InjectConfigError(`tokenExpirationSeconds: must be a whole number >= 600, got ${exp}`);
}

const fieldEnv = (name: string, fieldPath: string): V1EnvVar => ({ name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } });

/** Fills the placeholders and writes the bootstrap, then installs the rules in one iptables-restore. */
export function initScript(redirect: RedirectOptions): string {
  const s = (k: keyof typeof PLACEHOLDERS, env: string) => `-e "s/${PLACEHOLDERS[k]}/$${env}/g"`;
  return [
    'set -eu',
    `printf '%s' "$TERN_BOOTSTRAP_TEMPLATE" | sed ${s('podName', 'POD_NAME')} ${s('podNamespace', 'POD_NAMESPACE')} ${s('podIp', 'POD_IP')} > "$TERN_BOOTSTRAP_FILE.tmp"`,
    'mv "$TERN_BOOTSTRAP_FILE.tmp" "$TERN_BOOTSTRAP_FILE"',
    "iptables-restore --noflush <<'TERN_RULES'",
    iptablesRestoreInput(redirect).trimEnd(),
    'TERN_RULES',
  ].join('\n');
}

function initContainer(config: InjectConfig, redirect: RedirectOptions, bootstrap: Record<string, unknown>): V1Container {
  return {
    name: INIT_CONTAINER,
    image: config.initImage ?? config.proxyImage,
    ...(config.imagePullPolicy ? { imagePullPolicy: config.imagePullPolicy } : {}),
    command: ['sh', '-c', initScript(redirect)],
    env: [
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('POD_IP', 'status.podIP'),
      { name: 'TERN_BOOTSTRAP_FILE', value: BOOTSTRAP_FILE },
      { name: 'TERN_BOOTSTRAP_TEMPLATE', value: JSON.stringify(bootstrap) },
    ],
    volumeMounts: [{ name: CONFIG_VOLUME, mountPath: CONFIG_DIR }],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };
}

function proxyContainer(config: InjectConfig, probers: Record<string, unknown>): V1Container {
  const env: V1EnvVar[] = [
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('POD_IP', 'status.podIP'),
    fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    { name: 'TERN_BOOTSTRAP', value: BOOTSTRAP_FILE },
    // Informational (the proxy reads the address from the bootstrap): shows in `kubectl describe`.
    { name: 'TERN_XDS_ADDRESS', value: config.xdsAddress },
    { name: 'TERN_TRUST_DOMAIN', value: config.trustDomain ?? 'cluster.local' },
    // The proxy's service-account credential source: the file is re-read for every CreateCertificate
    // call (kubelet rotates the token) and sent as the bearer credential, which the CA's
    // TokenReview authenticator claims (a JWT).
    { name: TOKEN_FILE_ENV, value: TOKEN_FILE },
    { name: 'TERN_STATS_PORT', value: String(STATS_PORT) },
  ];
  if (Object.keys(probers).length > 0) env.push({ name: APP_PROBERS_ENV, value: JSON.stringify(probers) });
  return {
    name: PROXY_CONTAINER,
    image: config.proxyImage,
    ...(config.imagePullPolicy ? { imagePullPolicy: config.imagePullPolicy } : {}),
    args: ['--bootstrap', BOOTSTRAP_FILE],
    env,
    ports: [
      { name: 'http-envoy-prom', containerPort: STATS_PORT, protocol: 'TCP' },
      { name: 'tern-health', containerPort: HEALTH_PORT, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: HEALTH_PORT as never }, initialDelaySeconds: 1, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 30 },
    resources: config.resources ?? { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    volumeMounts: [
      { name: CONFIG_VOLUME, mountPath: CONFIG_DIR, readOnly: true },
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
    ],
    securityContext: {
      runAsUser: PROXY_UID,
      // Group 0, not 1337: /proc/net/nf_conntrack (how the proxy finds a redirected connection's
      // original destination) is mode 0440 root:root. The rules skip the proxy by its uid.
      runAsGroup: 0,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };
}
