import type { JsonObject } from '@tern/xds';
import type { MeshSnapshot } from '../store/snapshot.ts';

/**
 * The contract between the compiler (pure: mesh + proxy -> xDS resources) and the ADS server
 * (I/O: who is connected, what was sent, what was ACKed).
 */

/**
 * Who is asking, from the xDS `node` (id + metadata Struct, Istio-style upper-case keys) — see
 * docs/xds.md "Node metadata". Everything optional except the namespace: a proxyless gRPC client's
 * bootstrap usually carries little.
 */
export interface ProxyIdentity {
  /** xDS node.id, unique per proxy. */
  id: string;
  /** NAMESPACE: the workload's namespace (required; `default` when absent). */
  namespace: string;
  /** WORKLOAD_NAME: the registry workload this proxy fronts (labels, service account, addresses, ports come from it). */
  workload?: string;
  /** LABELS, used when the workload is not in the registry. */
  labels: Record<string, string>;
  /** SERVICE_ACCOUNT, used when the workload is not in the registry. */
  serviceAccount?: string;
  /** `sidecar` (a Tern proxy) or `proxyless` (a gRPC client using xds:///; detected from a user agent starting with `grpc` (any case) or TERN_MODE). */
  kind: 'sidecar' | 'proxyless';
  /**
   * INTERCEPTION: `REDIRECT` — traffic reaches the proxy through iptables (Kubernetes): one outbound
   * listener on 15001 using the original destination and one inbound listener on 15006 with a filter
   * chain per port; `NONE` (local mode, the default) — explicit listeners: the forward proxy on
   * OUTBOUND_PORT, a local port per UPSTREAMS entry, an inbound listener per service port.
   */
  interception: 'REDIRECT' | 'NONE';
  /** OUTBOUND_PORT: the HTTP forward-proxy listener (apps set HTTP_PROXY), default 15001; 0 = none. */
  outboundPort: number;
  /** INBOUND_PORT: the single inbound listener in REDIRECT mode, default 15006. */
  inboundPort: number;
  /**
   * UPSTREAMS: explicit upstream listeners, Consul style, e.g. [{ host: 'reviews', port: 9080,
   * localPort: 19080 }] -> 127.0.0.1:19080 routes to reviews:9080. Also widens scoping (below).
   */
  upstreams: { host: string; port: number; localPort: number }[];
  /** APP_PORTS: service port -> the port the local app listens on (local mode); default the service port's targetPort ?? number. */
  appPorts: Record<string, number>;
  /**
   * EGRESS_HOSTS: Istio Sidecar egress hosts ("./*", "ns/*", "*\/host", "*\/*") limiting what the
   * proxy receives; absent = ["./*"] plus the UPSTREAMS hosts. Ignored for proxyless clients.
   */
  egressHosts?: string[];
  /** Everything else from the metadata, untouched. */
  metadata: JsonObject;
}

/** Resources for one proxy, by type, keyed by resource name; each value is Envoy JSON without "@type". */
export interface ProxyResources {
  listeners: ReadonlyMap<string, JsonObject>;
  routes: ReadonlyMap<string, JsonObject>;
  clusters: ReadonlyMap<string, JsonObject>;
  endpoints: ReadonlyMap<string, JsonObject>;
}

export interface CompileOptions {
  domainSuffix: string;
  /** Trust domain for SPIFFE identities (later: mTLS). */
  trustDomain: string;
  /**
   * Emit Istio mutual TLS to mesh-internal upstreams (DestinationRule ISTIO_MUTUAL and auto-mTLS),
   * with SDS secrets `default` (workload certificate) and `ROOTCA` (trust bundle). Default false.
   */
  mtls?: boolean;
  /** Istio's root namespace (mesh-wide DestinationRules); default "istio-system". */
  rootNamespace?: string;
  /** Cluster id in endpoint metadata (`istio.workload`); default "Kubernetes". */
  clusterId?: string;
}

/**
 * Indexes over one mesh revision, built once and shared by every proxy's compilation. Resource
 * objects it returns are shared between proxies that get identical output (same object identity),
 * so the ADS server can cache their encoding by identity.
 */
export interface PreparedMesh {
  readonly revision: string;
  compileFor(proxy: ProxyIdentity): ProxyResources;
  /**
   * A test for the proxies whose output may differ from what `previous` compiles for them (a
   * superset: false only when the output is certainly equal). Absent: assume every proxy.
   */
  changedSince?(previous: PreparedMesh): (proxy: ProxyIdentity) => boolean;
}

export type PrepareMesh = (mesh: MeshSnapshot, revision: string, options: CompileOptions) => PreparedMesh;
