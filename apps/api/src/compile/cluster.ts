import { clusterName, EXTENSION_TYPE_URL, type JsonObject } from '@tern/xds';
import { spiffeId, type ClientTLSSettings, type ConnectionPoolSettings, type LoadBalancerSettings, type OutlierDetection } from '@tern/shared';
import type { PortModel, ServiceModel } from './model.ts';
import type { EffectivePolicy } from './policy.ts';
import { SDS_CERT, SDS_ROOT } from './mtls.ts';
import { compact, durationSeconds, envoyDuration } from './util.ts';

// Envoy Clusters: `outbound|PORT|SUBSET|HOST` per service port and DestinationRule subset, and the
// few fixed ones (inbound, passthrough). What a DestinationRule's traffic policy sets is mapped
// field by field in docs/xds.md "Compilation".

export const ADS_CONFIG: JsonObject = { ads: {}, resource_api_version: 'V3' };
const MAX_U32 = 4294967295;
const DEFAULT_CONNECT_TIMEOUT = '10s';
export { SDS_CERT, SDS_ROOT };

export interface ClusterContext {
  proxyless: boolean;
  mtls: boolean;
  trustDomain: string;
}

/** The transport a cluster is reached over: EDS (from us), DNS (Envoy resolves), or original destination. */
export function clusterDiscovery(svc: ServiceModel): 'EDS' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST' {
  switch (svc.resolution) {
    case 'NONE':
      return svc.seHasSelector ? 'EDS' : 'ORIGINAL_DST';
    case 'DNS':
      return 'STRICT_DNS';
    case 'DNS_ROUND_ROBIN':
      return 'LOGICAL_DNS';
    default:
      return 'EDS';
  }
}

/** Whether grpc-js-xds can use the cluster: it understands EDS (and aggregate/logical DNS, which we do not emit for it). */
export function proxylessCanUse(svc: ServiceModel): boolean {
  return clusterDiscovery(svc) === 'EDS';
}

export function outboundCluster(svc: ServiceModel, port: PortModel, subset: string | undefined, policy: EffectivePolicy, ctx: ClusterContext, dnsEndpoints: JsonObject | undefined): JsonObject {
  const name = clusterName({ direction: 'outbound', port: port.number, ...(subset ? { subset } : {}), host: svc.host });
  const discovery = clusterDiscovery(svc);
  const lb = loadBalancing(policy.loadBalancer, ctx.proxyless);
  const passthrough = policy.loadBalancer?.simple === 'PASSTHROUGH' && !ctx.proxyless;
  const type = passthrough ? 'ORIGINAL_DST' : discovery;
  const cluster: JsonObject = { name, type, connect_timeout: envoyDuration(policy.connectionPool?.tcp?.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT };
  if (type === 'EDS') cluster['eds_cluster_config'] = { eds_config: ADS_CONFIG, service_name: name };
  if (type === 'ORIGINAL_DST') cluster['lb_policy'] = 'CLUSTER_PROVIDED';
  else Object.assign(cluster, lb);
  if ((type === 'STRICT_DNS' || type === 'LOGICAL_DNS') && dnsEndpoints) {
    cluster['load_assignment'] = dnsEndpoints;
    cluster['dns_lookup_family'] = 'V4_ONLY';
  }
  Object.assign(cluster, circuitBreakers(policy.connectionPool));
  const keepalive = tcpKeepalive(policy.connectionPool);
  if (keepalive) cluster['upstream_connection_options'] = keepalive;
  const protocol = httpProtocolOptions(port, policy.connectionPool);
  if (protocol) cluster['typed_extension_protocol_options'] = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': protocol };
  const od = outlierDetection(policy.outlierDetection);
  if (od) {
    cluster['outlier_detection'] = od.outlier;
    if (od.panic !== undefined) cluster['common_lb_config'] = { healthy_panic_threshold: { value: od.panic } };
  }
  const tls = transportSocket(svc, port, policy.tls, ctx, subset);
  if (tls) Object.assign(cluster, tls);
  cluster['metadata'] = { filter_metadata: { istio: compact({ services: [{ host: svc.host, name: svc.name, namespace: svc.namespace }], subset }) } };
  return cluster;
}

function loadBalancing(lb: LoadBalancerSettings | undefined, proxyless: boolean): JsonObject {
  const ch = lb?.consistentHash;
  if (ch) {
    if (ch.maglev) return { lb_policy: 'MAGLEV', ...(ch.maglev.tableSize ? { maglev_lb_config: { table_size: ch.maglev.tableSize } } : {}) };
    const size = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ?? 1024;
    return { lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: size } };
  }
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      return { lb_policy: 'ROUND_ROBIN' };
    case 'RANDOM':
      return { lb_policy: 'RANDOM' };
    default:
      // Istio's default (UNSPECIFIED) and LEAST_CONN are least-request; grpc-js-xds NACKs it.
      return { lb_policy: proxyless ? 'ROUND_ROBIN' : 'LEAST_REQUEST' };
  }
}

function circuitBreakers(cp: ConnectionPoolSettings | undefined): JsonObject {
  // Istio's defaults: effectively unlimited, so Envoy's own small defaults (1024) never bite.
  return {
    circuit_breakers: {
      thresholds: [
        {
          max_connections: cp?.tcp?.maxConnections ?? MAX_U32,
          max_pending_requests: cp?.http?.http1MaxPendingRequests ?? MAX_U32,
          max_requests: cp?.http?.http2MaxRequests ?? MAX_U32,
          max_retries: cp?.http?.maxRetries ?? MAX_U32,
          track_remaining: true,
        },
      ],
    },
  };
}

function tcpKeepalive(cp: ConnectionPoolSettings | undefined): JsonObject | undefined {
  const k = cp?.tcp?.tcpKeepalive;
  if (!k) return undefined;
  return {
    tcp_keepalive: compact({
      keepalive_probes: k.probes,
      keepalive_time: durationSeconds(k.time),
      keepalive_interval: durationSeconds(k.interval),
    }),
  };
}

function httpProtocolOptions(port: PortModel, cp: ConnectionPoolSettings | undefined): JsonObject | undefined {
  if (!port.http) return undefined;
  const http = cp?.http;
  const h2 = port.h2 || http?.h2UpgradePolicy === 'UPGRADE';
  const h2Options = compact({ max_concurrent_streams: http?.maxConcurrentStreams });
  const common = compact({
    idle_timeout: envoyDuration(http?.idleTimeout),
    max_requests_per_connection: http?.maxRequestsPerConnection || undefined,
    max_connection_duration: envoyDuration(cp?.tcp?.maxConnectionDuration),
  });
  if (!h2 && !http?.useClientProtocol && Object.keys(common).length === 0) return undefined;
  const out: JsonObject = { '@type': EXTENSION_TYPE_URL.httpProtocolOptions };
  if (Object.keys(common).length > 0) out['common_http_protocol_options'] = common;
  if (http?.useClientProtocol && !port.h2) out['use_downstream_protocol_config'] = { http_protocol_options: {}, http2_protocol_options: h2Options };
  else out['explicit_http_config'] = h2 ? { http2_protocol_options: h2Options } : { http_protocol_options: {} };
  return out;
}

function outlierDetection(od: OutlierDetection | undefined): { outlier: JsonObject; panic: number | undefined } | undefined {
  if (!od) return undefined;
  const out: JsonObject = {};
  const gateway = od.consecutiveGatewayErrors ?? od.consecutiveErrors;
  if (gateway !== undefined) {
    out['consecutive_gateway_failure'] = gateway;
    out['enforcing_consecutive_gateway_failure'] = gateway > 0 ? 100 : 0;
  }
  if (od.consecutive5xxErrors !== undefined) {
    out['consecutive_5xx'] = od.consecutive5xxErrors;
    out['enforcing_consecutive_5xx'] = od.consecutive5xxErrors > 0 ? 100 : 0;
  } else {
    // Istio turns the 5xx detector off unless asked: Envoy's default (5, enforcing) would eject.
    out['enforcing_consecutive_5xx'] = 0;
  }
  if (od.splitExternalLocalOriginErrors) {
    out['split_external_local_origin_errors'] = true;
    if (od.consecutiveLocalOriginFailures !== undefined) {
      out['consecutive_local_origin_failure'] = od.consecutiveLocalOriginFailures;
      out['enforcing_consecutive_local_origin_failure'] = 100;
    }
  }
  const interval = envoyDuration(od.interval);
  if (interval) out['interval'] = interval;
  const base = envoyDuration(od.baseEjectionTime);
  if (base) out['base_ejection_time'] = base;
  if (od.maxEjectionPercent !== undefined) out['max_ejection_percent'] = od.maxEjectionPercent;
  // Envoy's outlier detection has no minimum health: Istio maps it to the panic threshold.
  return { outlier: out, panic: od.minHealthPercent };
}

function sdsSecret(name: string): JsonObject {
  return { name, sds_config: ADS_CONFIG };
}

/** Istio's SNI for mesh mTLS: `outbound_.PORT_.SUBSET_.HOST`. */
export function istioSni(port: number, subset: string | undefined, host: string): string {
  return `outbound_.${port}_.${subset ?? ''}_.${host}`;
}

function istioMutual(port: PortModel, subset: string | undefined, host: string, sans: readonly string[], sni: string | undefined): JsonObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': EXTENSION_TYPE_URL.upstreamTls,
      sni: sni ?? istioSni(port.number, subset, host),
      common_tls_context: {
        alpn_protocols: port.http ? ['istio-peer-exchange', 'istio', 'h2', 'http/1.1'] : ['istio-peer-exchange', 'istio'],
        // No sds_config: the sidecar's identity agent serves `default` and `ROOTCA` itself.
        tls_certificate_sds_secret_configs: [{ name: SDS_CERT }],
        combined_validation_context: {
          default_validation_context: sans.length > 0 ? { match_typed_subject_alt_names: sans.map((s) => ({ san_type: 'URI', matcher: { exact: s } })) } : {},
          validation_context_sds_secret_config: { name: SDS_ROOT },
        },
      },
    },
  };
}

function simpleOrMutual(tls: ClientTLSSettings, host: string): JsonObject {
  const common: JsonObject = {};
  if (tls.credentialName) {
    common['tls_certificate_sds_secret_configs'] = [sdsSecret(tls.credentialName)];
  } else if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) {
    common['tls_certificates'] = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
  }
  if (!tls.insecureSkipVerify) {
    const validation: JsonObject = {};
    if (tls.caCertificates) validation['trusted_ca'] = { filename: tls.caCertificates };
    else if (tls.credentialName) common['validation_context_sds_secret_config'] = sdsSecret(`${tls.credentialName}-cacert`);
    if (tls.caCrl) validation['crl'] = { filename: tls.caCrl };
    if (tls.subjectAltNames?.length) validation['match_typed_subject_alt_names'] = tls.subjectAltNames.map((s) => ({ san_type: 'DNS', matcher: { exact: s } }));
    if (Object.keys(validation).length > 0) common['validation_context'] = validation;
  }
  const sni = tls.sni ?? (host.includes('*') ? undefined : host);
  return { name: 'envoy.transport_sockets.tls', typed_config: compact({ '@type': EXTENSION_TYPE_URL.upstreamTls, sni, common_tls_context: common }) };
}

/**
 * Who may answer for a service (istiod's ServiceAccounts): the SPIFFE ids of its registry
 * workloads, of its ServiceEntry endpoints' service accounts, and the ServiceEntry's own
 * subjectAltNames; deduplicated, sorted.
 */
export function serviceIdentities(svc: ServiceModel, trustDomain: string): string[] {
  const out = new Set<string>(svc.seSubjectAltNames);
  for (const w of svc.workloads) out.add(spiffeId(trustDomain, w.namespace, w.serviceAccount));
  for (const e of svc.seEndpoints) if (e.serviceAccount) out.add(spiffeId(trustDomain, svc.namespace, e.serviceAccount));
  return [...out].sort();
}

function transportSocket(svc: ServiceModel, port: PortModel, tls: ClientTLSSettings | undefined, ctx: ClusterContext, subset: string | undefined): JsonObject | undefined {
  const mode = tls?.mode ?? (tls ? 'DISABLE' : undefined);
  if (mode === 'DISABLE') return undefined;
  if (tls && (mode === 'SIMPLE' || mode === 'MUTUAL')) return { transport_socket: simpleOrMutual(tls, svc.host) };
  if (!ctx.mtls) return undefined; // ISTIO_MUTUAL and auto-mTLS wait for CompileOptions.mtls
  // Like istiod: verify the peer is one of the service's workload identities unless told otherwise.
  const sans = tls?.subjectAltNames?.length ? tls.subjectAltNames : serviceIdentities(svc, ctx.trustDomain);
  if (mode === 'ISTIO_MUTUAL') return { transport_socket: istioMutual(port, subset, svc.host, sans, tls?.sni) };
  // Auto mTLS: mesh-internal endpoints that carry a sidecar (tlsMode=istio) get Istio mTLS, others plain text.
  if (svc.location !== 'MESH_INTERNAL') return undefined;
  return {
    transport_socket_matches: [
      { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: istioMutual(port, subset, svc.host, sans, undefined) },
      { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer' } },
    ],
  };
}

/** `inbound|PORT||`: the local app, a static endpoint on loopback. */
export function inboundCluster(servicePort: number, appPort: number, port: PortModel, services: JsonObject[]): JsonObject {
  const name = clusterName({ direction: 'inbound', port: servicePort });
  const cluster: JsonObject = {
    name,
    type: 'STATIC',
    connect_timeout: DEFAULT_CONNECT_TIMEOUT,
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: appPort } } } }] }],
    },
    // Istio's shape: {host, name, namespace} of each service this port serves.
    metadata: { filter_metadata: { istio: { services } } },
  };
  if (port.h2) cluster['typed_extension_protocol_options'] = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': EXTENSION_TYPE_URL.httpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } } };
  return cluster;
}

export function passthroughCluster(name: 'PassthroughCluster' | 'InboundPassthroughCluster'): JsonObject {
  return { name, type: 'ORIGINAL_DST', connect_timeout: DEFAULT_CONNECT_TIMEOUT, lb_policy: 'CLUSTER_PROVIDED' };
}
