/**
 * The proxy's internal configuration model: an immutable snapshot compiled from Envoy xDS v3
 * resources (JSON as @tern/xds decodes them: snake_case, "@type" Any, "1.5s" durations).
 *
 * Everything here is built once per configuration change by `buildSnapshot` (snapshot.ts) and then
 * only read: the data plane keeps a reference to a snapshot for the life of a request/connection,
 * so a published snapshot and every object reachable from it must never be mutated. Mutable
 * per-endpoint runtime state (active requests, …) lives outside, in lb.ts (`EndpointStats`).
 *
 * Durations are milliseconds (number). `undefined` means "not configured" (the data plane applies
 * Envoy's default where this file does not already say which value is filled in).
 */
import type { JsonObject } from '@tern/xds';
import type { RbacFilterConfig, RbacPerRoute } from './compile-rbac.ts';
import type { UpstreamTls } from './compile-upstream-tls.ts';

export type { Json, JsonObject } from '@tern/xds';

// ---------------------------------------------------------------- errors

/**
 * An invalid or unsupported resource. The ADS client turns it into a NACK (error_detail = message);
 * `path` is the field path inside the resource, `rule` what is wrong with it.
 */
export class ConfigError extends Error {
  constructor(
    readonly typeUrl: string,
    readonly resourceName: string,
    readonly path: string,
    readonly rule: string,
  ) {
    super(`${shortType(typeUrl)} "${resourceName}": ${path || '(root)'}: ${rule}`);
    this.name = 'ConfigError';
  }
}

function shortType(typeUrl: string): string {
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  return name.slice(name.lastIndexOf('.') + 1) || typeUrl;
}

// ---------------------------------------------------------------- snapshot

/** One resource as received: the version of the response that carried it and its JSON. */
export interface ResourceEntry {
  readonly version: string;
  readonly json: JsonObject;
  /** True for bootstrap static_resources (never replaced or removed by xDS). */
  readonly static?: boolean;
}

/** The complete set of resources of one type, by resource name. */
export type ResourceSet = ReadonlyMap<string, ResourceEntry>;

/** An immutable, fully compiled configuration. Swapped whole by ConfigStore, never mutated. */
export interface ProxySnapshot {
  /** Increases by one on every successful swap ("0" = empty, before any configuration). */
  readonly version: string;
  /** Listeners by name (LDS + static). */
  readonly listeners: ReadonlyMap<string, ListenerConfig>;
  /** Route tables by RouteConfiguration name (RDS + static; inline HCM route configs are NOT here). */
  readonly routes: ReadonlyMap<string, RouteTable>;
  /** Clusters by name (CDS + static), with their endpoints already resolved from EDS or load_assignment. */
  readonly clusters: ReadonlyMap<string, ClusterConfig>;
  /** Secrets by name (SDS + static), raw JSON: TLS is handled by the data plane. */
  readonly secrets: ReadonlyMap<string, JsonObject>;
  /** Raw resources by type URL then name, as received (for /config_dump and for rebuilding). */
  readonly resources: ReadonlyMap<string, ResourceSet>;
  /** The xDS version_info last accepted per type URL. */
  readonly typeVersions: ReadonlyMap<string, string>;
  /**
   * Names referenced but not (yet) received. Not an error: the data plane answers 404 (NR) for a
   * listener whose RDS route table is missing and 503 (NC) for a route to an unknown cluster,
   * exactly as when it looks the name up in `routes` / `clusters` and finds nothing.
   */
  readonly missing: { readonly routes: ReadonlySet<string>; readonly clusters: ReadonlySet<string>; readonly endpoints: ReadonlySet<string> };
}

// ---------------------------------------------------------------- common pieces

/** A socket address (`socket_address`) or a unix socket (`pipe`, port 0). */
export interface SocketAddress {
  /** IP address, hostname (DNS clusters) or, for `pipe`, the socket path. */
  readonly address: string;
  readonly port: number;
  /** 'TCP' only is supported; UDP is rejected. */
  readonly protocol: 'TCP';
  readonly isPipe: boolean;
}

/** A fraction in [0, 1] from an Envoy FractionalPercent or Percent. */
export type Fraction = number;

/** A compiled envoy.type.matcher.v3.StringMatcher. `value` is already lower-case when ignoreCase. */
export type StringMatcher =
  | { readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains'; readonly value: string; readonly ignoreCase: boolean }
  | { readonly kind: 'regex'; readonly regex: RegExp; readonly source: string };

/** How a header value is added: `append_action` (or the legacy `append` bool mapped onto it). */
export type AppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

/** One `HeaderValueOption`. `name` is lower-case. */
export interface HeaderToAdd {
  readonly name: string;
  readonly value: string;
  readonly appendAction: AppendAction;
  /** keep_if_empty_value: add even when the value is empty (default false: skip). */
  readonly keepEmptyValue: boolean;
}

/** Header mutations at one level (route table, virtual host, route or weighted cluster). Names lower-case. */
export interface HeaderMutations {
  readonly requestAdd: readonly HeaderToAdd[];
  readonly requestRemove: readonly string[];
  readonly responseAdd: readonly HeaderToAdd[];
  readonly responseRemove: readonly string[];
}

/** Compiled `typed_per_filter_config` entries the proxy understands; others are kept raw. */
export interface PerFilterConfig {
  /** envoy.filters.http.fault override (HTTPFault). */
  readonly fault?: FaultConfig;
  /** envoy.filters.http.cors policy (CorsPolicy). */
  readonly cors?: CorsPolicy;
  /** RBACPerRoute overrides by HTTP filter name (Istio names its DENY and ALLOW filters alike). */
  readonly rbac?: ReadonlyMap<string, RbacPerRoute>;
  /** Every entry as received, by filter name. */
  readonly raw: ReadonlyMap<string, JsonObject>;
}

// ---------------------------------------------------------------- listeners

/** A compiled envoy.config.listener.v3.Listener. */
export interface ListenerConfig {
  readonly name: string;
  /** Where to bind. */
  readonly address: SocketAddress;
  readonly trafficDirection: 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';
  /** Hand connections over to the listener matching their original destination (iptables redirect). */
  readonly useOriginalDst: boolean;
  /** bind_to_port (default true); Istio's per-port virtual listeners set false. */
  readonly bindToPort: boolean;
  /** Listener filter type URLs (original_dst, tls_inspector, http_inspector), in order. */
  readonly listenerFilters: readonly string[];
  readonly filterChains: readonly FilterChain[];
  /** Used when no chain matches; undefined = close the connection. */
  readonly defaultFilterChain?: FilterChain;
  /** per_connection_buffer_limit_bytes (default 1 MiB in Envoy). */
  readonly perConnectionBufferLimitBytes?: number;
  /** The listener resource as received. */
  readonly raw: JsonObject;
}

/** A compiled FilterChainMatch; empty lists / undefined mean "any". */
export interface FilterChainMatch {
  readonly destinationPort?: number;
  /** Destination IP ranges (`prefix_ranges`). */
  readonly prefixRanges: readonly CidrRange[];
  /** Lower-case SNI names; `*.example.com` wildcards allowed. */
  readonly serverNames: readonly string[];
  /** 'raw_buffer' | 'tls' | other, as a listener filter detects it. */
  readonly transportProtocol?: string;
  /** ALPN values (e.g. 'h2', 'http/1.1', 'istio-peer-exchange'). */
  readonly applicationProtocols: readonly string[];
  readonly sourceType: 'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL';
  readonly sourcePrefixRanges: readonly CidrRange[];
  readonly sourcePorts: readonly number[];
}

/** An address range: `addressPrefix/prefixLen`. `bytes` is the parsed address for fast compare. */
export interface CidrRange {
  readonly addressPrefix: string;
  readonly prefixLen: number;
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** A filter chain: how to match a connection and what to do with it. */
export interface FilterChain {
  /** name, or `#<index>` when the chain has none. */
  readonly name: string;
  readonly match: FilterChainMatch;
  /** Downstream TLS (DownstreamTlsContext `transport_socket`), raw JSON; undefined = plaintext. */
  readonly transportSocket?: JsonObject;
  /** The terminal network filter: HTTP connection manager or TCP proxy. */
  readonly handler: HttpConnectionManagerConfig | TcpProxyConfig;
  /** Non-terminal network filters before it (e.g. network RBAC), raw, in order. */
  readonly networkFilters: readonly NetworkFilter[];
}

/** A non-terminal network filter, kept as received. */
export interface NetworkFilter {
  readonly name: string;
  readonly typeUrl: string;
  readonly config: JsonObject;
}

/** A compiled HttpConnectionManager. */
export interface HttpConnectionManagerConfig {
  readonly kind: 'http';
  readonly statPrefix: string;
  readonly codecType: 'AUTO' | 'HTTP1' | 'HTTP2';
  /** Where the route table comes from: RDS (looked up by name in the snapshot) or inline. */
  readonly routeSource: { readonly kind: 'rds'; readonly name: string } | { readonly kind: 'inline'; readonly table: RouteTable };
  /** HTTP filters in order; the last is always the router. */
  readonly httpFilters: readonly HttpFilter[];
  /** True when at least one access_log entry is configured. */
  readonly accessLog: boolean;
  /** access_log entries as received. */
  readonly accessLogConfigs: readonly JsonObject[];
  /** request_timeout; undefined/0 = disabled (Envoy's default). */
  readonly requestTimeoutMs?: number;
  /** stream_idle_timeout; Envoy's default is 5 min, filled in here; 0 = disabled. */
  readonly streamIdleTimeoutMs: number;
  /** request_headers_timeout; undefined/0 = disabled. */
  readonly requestHeadersTimeoutMs?: number;
  /** common_http_protocol_options.idle_timeout for downstream connections (default 1 h). */
  readonly idleTimeoutMs: number;
  /** max_connection_duration, undefined = unlimited. */
  readonly maxConnectionDurationMs?: number;
  readonly useRemoteAddress: boolean;
  readonly xffNumTrustedHops: number;
  /** generate_request_id (default true). */
  readonly generateRequestId: boolean;
  readonly preserveExternalRequestId: boolean;
  /** server_name (default "envoy"; Istio sets "istio-envoy"). */
  readonly serverName: string;
  readonly serverHeaderTransformation: 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';
  /** normalize_path / merge_slashes. */
  readonly normalizePath: boolean;
  readonly mergeSlashes: boolean;
  /** Upgrade types allowed (lower-case, e.g. 'websocket'), from upgrade_configs with enabled != false. */
  readonly upgradeTypes: readonly string[];
  /** forward_client_cert_details (mTLS XFCC handling). */
  readonly forwardClientCertDetails: 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';
  /** The filter's config as received. */
  readonly raw: JsonObject;
}

/** One HTTP filter with its parsed config. */
export type HttpFilter =
  | { readonly kind: 'router'; readonly name: string; readonly config: RouterConfig }
  | { readonly kind: 'fault'; readonly name: string; readonly config: FaultConfig }
  | { readonly kind: 'cors'; readonly name: string }
  | { readonly kind: 'rbac'; readonly name: string; readonly config: RbacFilterConfig };

/** envoy.filters.http.router options. */
export interface RouterConfig {
  readonly suppressEnvoyHeaders: boolean;
  readonly startChildSpan: boolean;
}

/** envoy.filters.http.fault (HTTPFault), as filter config or per-route override. */
export interface FaultConfig {
  readonly delay?: { readonly fixedDelayMs?: number; readonly headerDelay: boolean; readonly fraction: Fraction };
  readonly abort?: {
    /** HTTP status to answer with, or grpcStatus for gRPC requests; headerAbort = take it from x-envoy-fault-abort-request. */
    readonly httpStatus?: number;
    readonly grpcStatus?: number;
    readonly headerAbort: boolean;
    readonly fraction: Fraction;
  };
  /** Only apply to requests to these upstream clusters (empty = all). */
  readonly upstreamCluster?: string;
  /** Only apply when these headers match. */
  readonly headers: readonly HeaderMatcher[];
  readonly maxActiveFaults?: number;
}

/** A CORS policy (CorsPolicy per-route config). */
export interface CorsPolicy {
  readonly allowOrigins: readonly StringMatcher[];
  readonly allowMethods?: string;
  readonly allowHeaders?: string;
  readonly exposeHeaders?: string;
  readonly maxAge?: string;
  readonly allowCredentials: boolean;
  /** filter_enabled fraction (default 1 = enforced). */
  readonly enabled: Fraction;
  /** shadow_enabled fraction (default 0). */
  readonly shadow: Fraction;
}

/** A compiled TcpProxy. */
export interface TcpProxyConfig {
  readonly kind: 'tcp';
  readonly statPrefix: string;
  /** A single cluster or a weighted split. */
  readonly target: { readonly kind: 'cluster'; readonly cluster: string } | { readonly kind: 'weighted'; readonly clusters: readonly WeightedClusterEntry[]; readonly totalWeight: number };
  /** idle_timeout (Envoy's default 1 h, filled in); 0 = disabled. */
  readonly idleTimeoutMs: number;
  readonly maxConnectAttempts: number;
  readonly accessLog: boolean;
  readonly raw: JsonObject;
}

// ---------------------------------------------------------------- routes

/** A compiled RouteConfiguration with its virtual-host lookup index. */
export interface RouteTable {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHost[];
  /** Domain index, built once (Envoy's precedence; see route-select.ts). */
  readonly domainIndex: DomainIndex;
  readonly headers: HeaderMutations;
  /** internal_only_headers: removed from requests from external clients. */
  readonly internalOnlyHeaders: readonly string[];
  /** The RouteConfiguration as received (inline ones: the HCM's route_config). */
  readonly raw: JsonObject;
}

/** Virtual host lookup by Host header (Envoy's rules: exact, longest `*.suffix`, longest `prefix.*`, `*`). */
export interface DomainIndex {
  readonly exact: ReadonlyMap<string, VirtualHost>;
  /** Suffix wildcards ('*.foo.com' stored as '.foo.com' and '*-bar.com' as '-bar.com'), longest first. */
  readonly suffixes: readonly (readonly [string, VirtualHost])[];
  /** Prefix wildcards ('foo.*' stored as 'foo.'), longest first. */
  readonly prefixes: readonly (readonly [string, VirtualHost])[];
  readonly star?: VirtualHost;
}

/** A compiled VirtualHost. */
export interface VirtualHost {
  readonly name: string;
  /** Lower-case domains as configured. */
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
  readonly headers: HeaderMutations;
  readonly requireTls: 'NONE' | 'EXTERNAL_ONLY' | 'ALL';
  /** Virtual-host level retry policy, used when the route has none. */
  readonly retryPolicy?: RetryPolicy;
  /** typed_per_filter_config at virtual-host level (a route's own entry wins). */
  readonly perFilterConfig: PerFilterConfig;
  readonly includeAttemptCountInRequest: boolean;
  readonly includeAttemptCountInResponse: boolean;
}

/** A compiled Route: first route whose `match` matches wins. */
export interface Route {
  /** name, or `#<index>` when unnamed. */
  readonly name: string;
  readonly match: RouteMatch;
  readonly action: RouteAction | RedirectAction | DirectResponseAction;
  readonly headers: HeaderMutations;
  readonly perFilterConfig: PerFilterConfig;
  /** decorator.operation (tracing span name). */
  readonly operation?: string;
  /** metadata as received (Istio puts its config source here). */
  readonly metadata?: JsonObject;
}

/** A compiled RouteMatch. */
export interface RouteMatch {
  readonly path: PathMatcher;
  readonly headers: readonly HeaderMatcher[];
  readonly queryParameters: readonly QueryParameterMatcher[];
  /** grpc: {} — only requests with content-type application/grpc*. */
  readonly grpc: boolean;
  /** runtime_fraction default value: match only this fraction of requests (undefined = all). */
  readonly fraction?: Fraction;
}

/** How the path (without the query string) is matched. `caseSensitive` defaults to true. */
export type PathMatcher =
  | { readonly kind: 'prefix'; readonly value: string; readonly caseSensitive: boolean }
  | { readonly kind: 'path'; readonly value: string; readonly caseSensitive: boolean }
  /** path_separated_prefix: the path equals value or continues with '/' (or '?'/'#', stripped before). */
  | { readonly kind: 'separated'; readonly value: string; readonly caseSensitive: boolean }
  /** safe_regex: must match the whole path. */
  | { readonly kind: 'regex'; readonly regex: RegExp; readonly source: string };

/** A compiled HeaderMatcher. `name` is lower-case (pseudo-headers keep their colon). */
export interface HeaderMatcher {
  readonly name: string;
  readonly rule:
    | { readonly kind: 'string'; readonly matcher: StringMatcher }
    /** present_match: true = header present, false = header absent. */
    | { readonly kind: 'present'; readonly present: boolean }
    /** range_match: integer value in [start, end). */
    | { readonly kind: 'range'; readonly start: number; readonly end: number };
  readonly invert: boolean;
  /** treat_missing_header_as_empty: evaluate a missing header as "". */
  readonly treatMissingAsEmpty: boolean;
}

/** A compiled QueryParameterMatcher (parameter present, or its value matches). */
export interface QueryParameterMatcher {
  readonly name: string;
  readonly rule: { readonly kind: 'string'; readonly matcher: StringMatcher } | { readonly kind: 'present' };
}

/** route: forward upstream. */
export interface RouteAction {
  readonly kind: 'route';
  readonly target: ClusterTarget;
  /** cluster_not_found_response_code (default 503). */
  readonly clusterNotFoundStatus: number;
  readonly prefixRewrite?: string;
  readonly regexRewrite?: { readonly regex: RegExp; readonly substitution: string };
  readonly hostRewrite?: { readonly kind: 'literal'; readonly value: string } | { readonly kind: 'auto' } | { readonly kind: 'header'; readonly header: string } | { readonly kind: 'pathRegex'; readonly regex: RegExp; readonly substitution: string };
  /** timeout (default 15 s, filled in); 0 = disabled. */
  readonly timeoutMs: number;
  /** idle_timeout for the stream; undefined = HCM stream_idle_timeout. */
  readonly idleTimeoutMs?: number;
  readonly retryPolicy?: RetryPolicy;
  readonly hashPolicies: readonly HashPolicy[];
  readonly mirrors: readonly MirrorPolicy[];
  /** max_stream_duration.grpc_timeout_header_max: honour grpc-timeout up to this (0 = unlimited); undefined = ignore grpc-timeout. */
  readonly grpcTimeoutHeaderMaxMs?: number;
  readonly grpcTimeoutHeaderOffsetMs?: number;
  readonly maxStreamDurationMs?: number;
  /** Upgrade types allowed on this route (overrides the HCM's), lower-case → enabled. */
  readonly upgrades: ReadonlyMap<string, boolean>;
}

/** Which cluster(s) a RouteAction sends to. */
export type ClusterTarget =
  | { readonly kind: 'cluster'; readonly cluster: string }
  | { readonly kind: 'weighted'; readonly clusters: readonly WeightedClusterEntry[]; readonly totalWeight: number }
  /** cluster_header: the cluster name is read from this (lower-case) request header. */
  | { readonly kind: 'header'; readonly header: string };

/** One weighted cluster. Weights > 0 only (zero-weight entries are dropped at compile time). */
export interface WeightedClusterEntry {
  readonly cluster: string;
  readonly weight: number;
  readonly headers: HeaderMutations;
  readonly hostRewrite?: string;
  readonly perFilterConfig: PerFilterConfig;
}

/** A compiled RetryPolicy. */
export interface RetryPolicy {
  /** retry_on conditions, e.g. '5xx', 'gateway-error', 'connect-failure', 'reset', 'retriable-status-codes', 'cancelled', … */
  readonly retryOn: ReadonlySet<string>;
  /** num_retries (default 1). */
  readonly numRetries: number;
  readonly perTryTimeoutMs?: number;
  readonly perTryIdleTimeoutMs?: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  /** Back-off (Envoy's defaults: 25 ms base, 10x base max). */
  readonly backOffBaseMs: number;
  readonly backOffMaxMs: number;
  /** retry_host_predicate names (e.g. envoy.retry_host_predicates.previous_hosts). */
  readonly hostPredicates: readonly string[];
  readonly hostSelectionRetryMaxAttempts: number;
  readonly retriableHeaders: readonly HeaderMatcher[];
}

/** A compiled HashPolicy entry (for RING_HASH / MAGLEV). */
export type HashPolicy = { readonly terminal: boolean } & (
  | { readonly kind: 'header'; readonly header: string }
  /** cookie: when ttlMs is set and the cookie is absent Envoy generates one (see docs/proxy.md). */
  | { readonly kind: 'cookie'; readonly name: string; readonly ttlMs?: number; readonly path?: string }
  | { readonly kind: 'sourceIp' }
  | { readonly kind: 'queryParameter'; readonly name: string }
  | { readonly kind: 'filterState'; readonly key: string }
);

/** request_mirror_policies entry. */
export interface MirrorPolicy {
  readonly cluster: string;
  /** runtime_fraction default (default 1 = every request). */
  readonly fraction: Fraction;
  readonly traceSampled?: boolean;
}

/** redirect: answer with a 3xx. Unset parts keep the request's. */
export interface RedirectAction {
  readonly kind: 'redirect';
  /** https_redirect sets 'https'. */
  readonly scheme?: string;
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly prefixRewrite?: string;
  readonly regexRewrite?: { readonly regex: RegExp; readonly substitution: string };
  /** 301 (default), 302, 303, 307, 308. */
  readonly status: number;
  readonly stripQuery: boolean;
}

/** direct_response: answer locally. */
export interface DirectResponseAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body?: Buffer;
}

// ---------------------------------------------------------------- clusters

/** A compiled envoy.config.cluster.v3.Cluster with its endpoints. */
export interface ClusterConfig {
  readonly name: string;
  readonly type: 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';
  /** For EDS: the ClusterLoadAssignment name (eds_cluster_config.service_name or the cluster name). */
  readonly edsServiceName?: string;
  /** connect_timeout (default 5 s, filled in). */
  readonly connectTimeoutMs: number;
  readonly lb: LbPolicy;
  /** Endpoints from EDS or inline load_assignment. */
  readonly endpoints: ClusterEndpoints;
  /** Upstream HTTP protocol: 'http1', 'http2', or 'downstream' (same as the downstream request). */
  readonly upstreamProtocol: 'http1' | 'http2' | 'downstream';
  /** Upstream TLS (UpstreamTlsContext `transport_socket`), raw; undefined = plaintext. */
  readonly transportSocket?: JsonObject;
  /** The cluster's transport_socket compiled (set exactly when transportSocket is). */
  readonly upstreamTls?: UpstreamTls;
  /** transport_socket_matches (Istio's tlsMode-based auto mTLS), in order; `tls` undefined = plaintext. */
  readonly transportSocketMatches: readonly { readonly name: string; readonly match: JsonObject; readonly transportSocket: JsonObject; readonly tls?: UpstreamTls }[];
  /** circuit_breakers.thresholds by priority (DEFAULT filled in with Envoy's defaults). */
  readonly circuitBreakers: { readonly default: CircuitBreakerThresholds; readonly high: CircuitBreakerThresholds };
  readonly outlierDetection?: OutlierDetection;
  /** common_lb_config.healthy_panic_threshold percent (default 50; 0 = never panic). */
  readonly healthyPanicThreshold: number;
  /** max_requests_per_connection (HttpProtocolOptions.common_http_protocol_options or legacy field). */
  readonly maxRequestsPerConnection?: number;
  /** Upstream connection idle timeout (common_http_protocol_options.idle_timeout, default 1 h). */
  readonly idleTimeoutMs: number;
  readonly maxConnectionDurationMs?: number;
  readonly perConnectionBufferLimitBytes?: number;
  /** DNS clusters: dns_refresh_rate (default 5 s) and dns_lookup_family. */
  readonly dnsRefreshRateMs: number;
  readonly dnsLookupFamily: 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';
  /** ORIGINAL_DST: use this header for the destination (original_dst_lb_config.use_http_header → x-envoy-original-dst-host). */
  readonly originalDstHeader?: string;
  readonly metadata?: JsonObject;
  readonly raw: JsonObject;
}

/** The load-balancing policy with its options (defaults filled in). */
export type LbPolicy =
  | { readonly kind: 'ROUND_ROBIN' }
  | { readonly kind: 'LEAST_REQUEST'; readonly choiceCount: number; readonly activeRequestBias: number }
  | { readonly kind: 'RANDOM' }
  | { readonly kind: 'RING_HASH'; readonly minimumRingSize: number; readonly maximumRingSize: number; readonly hashFunction: 'XX_HASH' | 'MURMUR_HASH_2' }
  | { readonly kind: 'MAGLEV'; readonly tableSize: number }
  /** ORIGINAL_DST clusters: the destination is the connection's original destination. */
  | { readonly kind: 'CLUSTER_PROVIDED' };

/** One circuit-breaker threshold set (Envoy's defaults: 1024 / 1024 / 1024 / 3 retries). */
export interface CircuitBreakerThresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  readonly maxConnectionPools?: number;
  /** retry_budget: fraction of active requests that may be retries, with a floor. */
  readonly retryBudget?: { readonly budgetFraction: Fraction; readonly minRetryConcurrency: number };
  readonly trackRemaining: boolean;
}

/** outlier_detection with Envoy's defaults filled in. */
export interface OutlierDetection {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly consecutiveLocalOriginFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  /** enforcing_* percentages (0..100). */
  readonly enforcingConsecutive5xx: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingSuccessRate: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly raw: JsonObject;
}

/** A cluster's endpoints. */
export interface ClusterEndpoints {
  /** False for an EDS cluster whose ClusterLoadAssignment has not arrived yet (no endpoints: 503 UH). */
  readonly known: boolean;
  /** Every endpoint, in order (locality by locality). */
  readonly all: readonly Endpoint[];
  /** policy.overprovisioning_factor (default 140) and drop_overloads are accepted but not used yet. */
  readonly overprovisioningFactor: number;
}

/** One upstream endpoint (LbEndpoint). Immutable; counters live in lb.ts EndpointStats. */
export interface Endpoint {
  /** `address:port` (or the pipe path): identifies the endpoint across snapshots. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly isPipe: boolean;
  /** endpoint.hostname (used for auto_host_rewrite), if any. */
  readonly hostname?: string;
  /** load_balancing_weight (default 1). */
  readonly weight: number;
  readonly healthStatus: 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';
  /** True unless the health status is UNHEALTHY, DRAINING or TIMEOUT. */
  readonly healthy: boolean;
  readonly locality: Locality;
  /** The locality's load_balancing_weight, if set. */
  readonly localityWeight?: number;
  /** Priority of its LocalityLbEndpoints (0 = highest). */
  readonly priority: number;
  readonly metadata?: JsonObject;
}

/** envoy.config.core.v3.Locality. */
export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}
