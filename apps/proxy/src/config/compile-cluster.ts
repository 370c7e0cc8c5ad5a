/**
 * Cluster (+ its ClusterLoadAssignment) → ClusterConfig. Pure; throws ConfigError naming the path.
 */
import { EXTENSION_TYPE_URL, TYPE_URL, type JsonObject } from '@tern/xds';
import { bool, duration, enumOf, fail, fraction, join, list, num, obj, rejectFields, socketAddress, str, type Ctx } from './compile-common.ts';
import { compileTransportSocket, RAW_BUFFER } from './compile-upstream-tls.ts';
import type { CircuitBreakerThresholds, ClusterConfig, ClusterEndpoints, Endpoint, LbPolicy, Locality, OutlierDetection } from './model.ts';

const CLUSTER_TYPES = ['EDS', 'STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'ORIGINAL_DST'] as const;

/** The name of the ClusterLoadAssignment an EDS cluster wants (undefined for other types). */
export function edsServiceName(json: JsonObject): string | undefined {
  if (json.type !== 'EDS') return undefined;
  const eds = json.eds_cluster_config as JsonObject | undefined;
  const service = typeof eds?.service_name === 'string' ? eds.service_name : '';
  return service || String(json.name ?? '');
}

/**
 * Compiles a cluster. `assignment` is the ClusterLoadAssignment for an EDS cluster (undefined when
 * not received yet), ignored for other types (they carry load_assignment inline).
 */
export function compileCluster(json: JsonObject, assignment: JsonObject | undefined, ctx: Ctx = { typeUrl: TYPE_URL.cluster, name: String(json.name ?? '') }): ClusterConfig {
  const path = '';
  const name = str(ctx, json, 'name', path);
  if (!name) fail(ctx, 'name', 'is required');
  rejectFields(ctx, json, path, {
    cluster_type: 'custom cluster types (cluster_type) are not supported',
    health_checks: 'active health checking is not supported (use outlier_detection)',
    lrs_server: 'load reporting (lrs_server) is not supported',
    upstream_bind_config: 'upstream_bind_config is not supported',
    lb_subset_config: 'lb_subset_config is not supported',
    filters: 'upstream network filters are not supported',
    upstream_config: 'upstream_config is not supported',
    preconnect_policy: 'preconnect_policy is not supported',
  });
  const type = enumOf(ctx, json, 'type', path, CLUSTER_TYPES, 'STATIC');
  const lb = compileLbPolicy(ctx, json, type);

  let endpoints: ClusterEndpoints;
  let eds: string | undefined;
  if (type === 'EDS') {
    const cfg = obj(ctx, json, 'eds_cluster_config', path);
    if (cfg) {
      const cs = obj(ctx, cfg, 'eds_config', 'eds_cluster_config');
      if (cs && cs.api_config_source !== undefined) fail(ctx, 'eds_cluster_config.eds_config', 'only ads (or self) config sources are supported');
    }
    eds = edsServiceName(json)!;
    if (json.load_assignment !== undefined) fail(ctx, 'load_assignment', 'must not be set on an EDS cluster');
    endpoints = assignment
      ? compileAssignment({ typeUrl: TYPE_URL.endpoint, name: eds }, assignment, '', false)
      : { known: false, all: [], overprovisioningFactor: 140 };
  } else if (type === 'ORIGINAL_DST') {
    if (json.load_assignment !== undefined) fail(ctx, 'load_assignment', 'must not be set on an ORIGINAL_DST cluster');
    endpoints = { known: true, all: [], overprovisioningFactor: 140 };
  } else {
    const la = obj(ctx, json, 'load_assignment', path);
    if (!la) fail(ctx, 'load_assignment', `is required for a ${type} cluster`);
    endpoints = compileAssignment(ctx, la, 'load_assignment', type !== 'STATIC');
    if (type === 'LOGICAL_DNS' && endpoints.all.length !== 1) fail(ctx, 'load_assignment', 'a LOGICAL_DNS cluster must have exactly one endpoint');
  }

  const protocol = compileProtocolOptions(ctx, json);
  const cb = compileCircuitBreakers(ctx, obj(ctx, json, 'circuit_breakers', path));
  const od = obj(ctx, json, 'outlier_detection', path);
  const common = obj(ctx, json, 'common_lb_config', path) ?? {};
  const panic = obj(ctx, common, 'healthy_panic_threshold', 'common_lb_config');
  const legacyMaxReq = num(ctx, json, 'max_requests_per_connection', path);
  const odc = obj(ctx, json, 'original_dst_lb_config', path);
  const useHeader = odc ? bool(ctx, odc, 'use_http_header', 'original_dst_lb_config') : undefined;
  const headerName = odc ? str(ctx, odc, 'http_header_name', 'original_dst_lb_config') : undefined;
  const bufferLimit = num(ctx, json, 'per_connection_buffer_limit_bytes', path);
  const metadata = obj(ctx, json, 'metadata', path);
  const maxRequestsPerConnection = protocol.maxRequestsPerConnection ?? legacyMaxReq;
  const ts = obj(ctx, json, 'transport_socket', path);
  const upstreamTls = ts ? compileTransportSocket(ctx, ts, 'transport_socket') : undefined;
  const transportSocketMatches = list(ctx, json, 'transport_socket_matches', path).map((m, i) => {
    const mp = join('transport_socket_matches', i);
    const tsm = obj(ctx, m, 'transport_socket', mp);
    if (!tsm) fail(ctx, join(mp, 'transport_socket'), 'is required');
    const tls = compileTransportSocket(ctx, tsm, join(mp, 'transport_socket'));
    return { name: str(ctx, m, 'name', mp) ?? '', match: obj(ctx, m, 'match', mp) ?? {}, transportSocket: tsm, ...(tls ? { tls } : {}) };
  });
  return {
    name,
    type,
    ...(eds !== undefined ? { edsServiceName: eds } : {}),
    connectTimeoutMs: duration(ctx, json, 'connect_timeout', path) ?? 5_000,
    lb,
    endpoints,
    upstreamProtocol: protocol.upstream,
    ...(ts && upstreamTls ? { transportSocket: ts, upstreamTls } : {}),
    transportSocketMatches,
    circuitBreakers: cb,
    ...(od ? { outlierDetection: compileOutlier(ctx, od, 'outlier_detection') } : {}),
    healthyPanicThreshold: panic ? fraction(ctx, panic, 'common_lb_config.healthy_panic_threshold', 0.5) * 100 : 50,
    ...(maxRequestsPerConnection ? { maxRequestsPerConnection } : {}),
    idleTimeoutMs: protocol.idleTimeoutMs ?? 3_600_000,
    ...(protocol.maxConnectionDurationMs ? { maxConnectionDurationMs: protocol.maxConnectionDurationMs } : {}),
    ...(bufferLimit !== undefined ? { perConnectionBufferLimitBytes: bufferLimit } : {}),
    dnsRefreshRateMs: duration(ctx, json, 'dns_refresh_rate', path) ?? 5_000,
    dnsLookupFamily: enumOf(ctx, json, 'dns_lookup_family', path, ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'], 'AUTO'),
    ...(useHeader ? { originalDstHeader: (headerName || 'x-envoy-original-dst-host').toLowerCase() } : {}),
    ...(metadata ? { metadata } : {}),
    raw: json,
  };
}

const LB_EXTENSIONS: Record<string, LbPolicy['kind']> = {
  'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin': 'ROUND_ROBIN',
  'type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest': 'LEAST_REQUEST',
  'type.googleapis.com/envoy.extensions.load_balancing_policies.random.v3.Random': 'RANDOM',
  [EXTENSION_TYPE_URL.ringHash]: 'RING_HASH',
  'type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev': 'MAGLEV',
};
export { RAW_BUFFER };
const WRR_LOCALITY = 'type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality';

function compileLbPolicy(ctx: Ctx, json: JsonObject, type: ClusterConfig['type']): LbPolicy {
  const typed = obj(ctx, json, 'load_balancing_policy', '');
  if (typed) {
    if (json.lb_policy !== undefined) fail(ctx, 'lb_policy', 'must not be set together with load_balancing_policy');
    return typedLbPolicy(ctx, typed, 'load_balancing_policy');
  }
  const policy = enumOf(ctx, json, 'lb_policy', '', ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV', 'CLUSTER_PROVIDED'], 'ROUND_ROBIN', {
    LOAD_BALANCING_POLICY_CONFIG: 'LOAD_BALANCING_POLICY_CONFIG requires load_balancing_policy',
  });
  if (type === 'ORIGINAL_DST') {
    if (json.lb_policy !== undefined && policy !== 'CLUSTER_PROVIDED') fail(ctx, 'lb_policy', 'an ORIGINAL_DST cluster must use CLUSTER_PROVIDED');
    return { kind: 'CLUSTER_PROVIDED' };
  }
  if (policy === 'CLUSTER_PROVIDED') fail(ctx, 'lb_policy', 'CLUSTER_PROVIDED is only valid for ORIGINAL_DST clusters');
  switch (policy) {
    case 'LEAST_REQUEST':
      return leastRequest(ctx, obj(ctx, json, 'least_request_lb_config', '') ?? {}, 'least_request_lb_config');
    case 'RING_HASH':
      return ringHash(ctx, obj(ctx, json, 'ring_hash_lb_config', '') ?? {}, 'ring_hash_lb_config');
    case 'MAGLEV':
      return maglev(ctx, obj(ctx, json, 'maglev_lb_config', '') ?? {}, 'maglev_lb_config');
    default:
      return { kind: policy };
  }
}

function typedLbPolicy(ctx: Ctx, p: JsonObject, path: string): LbPolicy {
  // The first policy this proxy supports is used, as Envoy does with its list.
  const policies = list(ctx, p, 'policies', path);
  for (let i = 0; i < policies.length; i++) {
    const pp = join(join(path, 'policies'), i);
    const ext = obj(ctx, policies[i]!, 'typed_extension_config', pp);
    const tc = ext ? obj(ctx, ext, 'typed_config', join(pp, 'typed_extension_config')) : undefined;
    if (!tc) fail(ctx, join(pp, 'typed_extension_config'), 'typed_config is required');
    const tp = join(join(pp, 'typed_extension_config'), 'typed_config');
    if (tc['@type'] === WRR_LOCALITY) {
      // Locality weighting is not implemented; the endpoint picking child policy is used.
      const child = obj(ctx, tc, 'endpoint_picking_policy', tp);
      if (!child) fail(ctx, join(tp, 'endpoint_picking_policy'), 'is required');
      return typedLbPolicy(ctx, child, join(tp, 'endpoint_picking_policy'));
    }
    const kind = LB_EXTENSIONS[String(tc['@type'])];
    if (!kind) continue;
    if (kind === 'LEAST_REQUEST') return leastRequest(ctx, tc, tp);
    if (kind === 'RING_HASH') return ringHash(ctx, tc, tp);
    if (kind === 'MAGLEV') return maglev(ctx, tc, tp);
    return { kind } as LbPolicy;
  }
  return fail(ctx, join(path, 'policies'), 'none of the load balancing policies is supported (supported: round_robin, least_request, random, ring_hash, maglev, wrr_locality)');
}

function leastRequest(ctx: Ctx, c: JsonObject, path: string): LbPolicy {
  const choiceCount = num(ctx, c, 'choice_count', path) ?? 2;
  if (choiceCount < 2) fail(ctx, join(path, 'choice_count'), 'must be at least 2');
  const bias = obj(ctx, c, 'active_request_bias', path);
  const activeRequestBias = bias ? (num(ctx, bias, 'default_value', join(path, 'active_request_bias')) ?? 1) : 1;
  if (activeRequestBias < 0) fail(ctx, join(path, 'active_request_bias'), 'must not be negative');
  return { kind: 'LEAST_REQUEST', choiceCount, activeRequestBias };
}

function ringHash(ctx: Ctx, c: JsonObject, path: string): LbPolicy {
  const minimumRingSize = num(ctx, c, 'minimum_ring_size', path) ?? 1024;
  const maximumRingSize = num(ctx, c, 'maximum_ring_size', path) ?? 8 * 1024 * 1024;
  if (minimumRingSize < 1) fail(ctx, join(path, 'minimum_ring_size'), 'must be at least 1');
  if (maximumRingSize > 8 * 1024 * 1024) fail(ctx, join(path, 'maximum_ring_size'), 'must be at most 8M');
  if (minimumRingSize > maximumRingSize) fail(ctx, join(path, 'minimum_ring_size'), 'must not exceed maximum_ring_size');
  const hashFunction = enumOf(ctx, c, 'hash_function', path, ['XX_HASH', 'MURMUR_HASH_2', 'DEFAULT_HASH'], 'XX_HASH');
  rejectFields(ctx, c, path, { consistent_hashing_lb_config: 'consistent_hashing_lb_config is not supported', locality_weighted_lb_config: 'locality_weighted_lb_config is not supported' });
  return { kind: 'RING_HASH', minimumRingSize, maximumRingSize, hashFunction: hashFunction === 'MURMUR_HASH_2' ? 'MURMUR_HASH_2' : 'XX_HASH' };
}

function maglev(ctx: Ctx, c: JsonObject, path: string): LbPolicy {
  const tableSize = num(ctx, c, 'table_size', path) ?? 65537;
  if (!isPrime(tableSize) || tableSize > 5000011) fail(ctx, join(path, 'table_size'), 'must be a prime number no larger than 5000011');
  return { kind: 'MAGLEV', tableSize };
}

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

interface ProtocolOptions {
  upstream: ClusterConfig['upstreamProtocol'];
  idleTimeoutMs?: number;
  maxConnectionDurationMs?: number;
  maxRequestsPerConnection?: number;
}

function compileProtocolOptions(ctx: Ctx, json: JsonObject): ProtocolOptions {
  const out: ProtocolOptions = { upstream: 'http1' };
  const typed = obj(ctx, json, 'typed_extension_protocol_options', '');
  const key = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
  if (typed) {
    for (const [k, v] of Object.entries(typed)) {
      const p = join('typed_extension_protocol_options', k);
      const type = (v as JsonObject)?.['@type'];
      if (type !== EXTENSION_TYPE_URL.httpProtocolOptions) fail(ctx, join(p, '@type'), `protocol options of type ${String(type)} are not supported`);
      if (k !== key && k !== 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions') fail(ctx, p, `must be keyed ${key}`);
      const o = v as JsonObject;
      rejectFields(ctx, o, p, { auto_config: 'auto_config (ALPN protocol selection) is not supported', http_filters: 'upstream HTTP filters are not supported' });
      const explicit = obj(ctx, o, 'explicit_http_config', p);
      if (explicit) {
        if (explicit.http3_protocol_options !== undefined) fail(ctx, join(join(p, 'explicit_http_config'), 'http3_protocol_options'), 'HTTP/3 is not supported');
        out.upstream = explicit.http2_protocol_options !== undefined ? 'http2' : 'http1';
      }
      if (o.use_downstream_protocol_config !== undefined) out.upstream = 'downstream';
      const common = obj(ctx, o, 'common_http_protocol_options', p);
      if (common) readCommon(ctx, common, join(p, 'common_http_protocol_options'), out);
    }
  }
  // Deprecated fields (still sent by older control planes).
  if (json.http2_protocol_options !== undefined) out.upstream = 'http2';
  if (json.protocol_selection === 'USE_DOWNSTREAM_PROTOCOL') out.upstream = 'downstream';
  const common = obj(ctx, json, 'common_http_protocol_options', '');
  if (common) readCommon(ctx, common, 'common_http_protocol_options', out);
  return out;
}

function readCommon(ctx: Ctx, c: JsonObject, path: string, out: ProtocolOptions): void {
  const idle = duration(ctx, c, 'idle_timeout', path);
  if (idle !== undefined) out.idleTimeoutMs = idle;
  const dur = duration(ctx, c, 'max_connection_duration', path);
  if (dur !== undefined) out.maxConnectionDurationMs = dur;
  const mr = num(ctx, c, 'max_requests_per_connection', path);
  if (mr !== undefined) out.maxRequestsPerConnection = mr;
}

const DEFAULT_THRESHOLDS: CircuitBreakerThresholds = Object.freeze({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, trackRemaining: false });

function compileCircuitBreakers(ctx: Ctx, cb: JsonObject | undefined): ClusterConfig['circuitBreakers'] {
  let def = DEFAULT_THRESHOLDS;
  let high = DEFAULT_THRESHOLDS;
  if (cb) {
    list(ctx, cb, 'thresholds', 'circuit_breakers').forEach((t, i) => {
      const p = join('circuit_breakers.thresholds', i);
      const priority = enumOf(ctx, t, 'priority', p, ['DEFAULT', 'HIGH'], 'DEFAULT');
      const budget = obj(ctx, t, 'retry_budget', p);
      const maxConnectionPools = num(ctx, t, 'max_connection_pools', p);
      const compiled: CircuitBreakerThresholds = {
        maxConnections: num(ctx, t, 'max_connections', p) ?? 1024,
        maxPendingRequests: num(ctx, t, 'max_pending_requests', p) ?? 1024,
        maxRequests: num(ctx, t, 'max_requests', p) ?? 1024,
        maxRetries: num(ctx, t, 'max_retries', p) ?? 3,
        ...(maxConnectionPools !== undefined ? { maxConnectionPools } : {}),
        ...(budget
          ? {
              retryBudget: {
                budgetFraction: fraction(ctx, budget.budget_percent, join(join(p, 'retry_budget'), 'budget_percent'), 0.2),
                minRetryConcurrency: num(ctx, budget, 'min_retry_concurrency', join(p, 'retry_budget')) ?? 3,
              },
            }
          : {}),
        trackRemaining: bool(ctx, t, 'track_remaining', p) ?? false,
      };
      if (priority === 'HIGH') high = compiled;
      else def = compiled;
    });
  }
  return { default: def, high };
}

function compileOutlier(ctx: Ctx, o: JsonObject, path: string): OutlierDetection {
  const n = (k: string, d: number) => num(ctx, o, k, path) ?? d;
  const base = duration(ctx, o, 'base_ejection_time', path) ?? 30_000;
  return {
    consecutive5xx: n('consecutive_5xx', 5),
    consecutiveGatewayFailure: n('consecutive_gateway_failure', 5),
    consecutiveLocalOriginFailure: n('consecutive_local_origin_failure', 5),
    intervalMs: duration(ctx, o, 'interval', path) ?? 10_000,
    baseEjectionTimeMs: base,
    maxEjectionTimeMs: duration(ctx, o, 'max_ejection_time', path) ?? Math.max(300_000, base),
    maxEjectionPercent: n('max_ejection_percent', 10),
    enforcingConsecutive5xx: n('enforcing_consecutive_5xx', 100),
    enforcingConsecutiveGatewayFailure: n('enforcing_consecutive_gateway_failure', 0),
    enforcingSuccessRate: n('enforcing_success_rate', 100),
    splitExternalLocalOriginErrors: bool(ctx, o, 'split_external_local_origin_errors', path) ?? false,
    raw: o,
  };
}

const HEALTH = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'] as const;

/** A ClusterLoadAssignment (EDS resource or inline load_assignment) → endpoints. */
export function compileAssignment(ctx: Ctx, la: JsonObject, path: string, allowHostname: boolean): ClusterEndpoints {
  const all: Endpoint[] = [];
  const seen = new Set<string>();
  list(ctx, la, 'endpoints', path).forEach((lle, i) => {
    const lp = join(join(path, 'endpoints'), i);
    const loc = obj(ctx, lle, 'locality', lp) ?? {};
    const locality: Locality = { region: String(loc.region ?? ''), zone: String(loc.zone ?? ''), subZone: String(loc.sub_zone ?? '') };
    const localityWeight = num(ctx, lle, 'load_balancing_weight', lp);
    const priority = num(ctx, lle, 'priority', lp) ?? 0;
    if (lle.leds_cluster_locality_config !== undefined) fail(ctx, join(lp, 'leds_cluster_locality_config'), 'LEDS is not supported');
    list(ctx, lle, 'lb_endpoints', lp).forEach((le, j) => {
      const ep = join(join(lp, 'lb_endpoints'), j);
      if (le.endpoint_name !== undefined) fail(ctx, join(ep, 'endpoint_name'), 'named endpoints are not supported');
      const e = obj(ctx, le, 'endpoint', ep);
      if (!e) fail(ctx, join(ep, 'endpoint'), 'is required');
      const addr = socketAddress(ctx, obj(ctx, e, 'address', join(ep, 'endpoint')), join(join(ep, 'endpoint'), 'address'), { allowHostname });
      const weight = num(ctx, le, 'load_balancing_weight', ep) ?? 1;
      if (!Number.isInteger(weight) || weight < 1) fail(ctx, join(ep, 'load_balancing_weight'), 'must be an integer >= 1');
      const key = addr.isPipe ? addr.address : `${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
      // Envoy accepts duplicates but they are one host for stats; keep the first.
      if (seen.has(key)) return;
      seen.add(key);
      const healthStatus = enumOf(ctx, le, 'health_status', ep, HEALTH, 'UNKNOWN');
      const hostname = str(ctx, e, 'hostname', join(ep, 'endpoint'));
      const metadata = obj(ctx, le, 'metadata', ep);
      all.push({
        key,
        address: addr.address,
        port: addr.port,
        isPipe: addr.isPipe,
        ...(hostname ? { hostname } : {}),
        weight,
        healthStatus,
        healthy: healthStatus !== 'UNHEALTHY' && healthStatus !== 'DRAINING' && healthStatus !== 'TIMEOUT',
        locality,
        ...(localityWeight !== undefined ? { localityWeight } : {}),
        priority,
        ...(metadata ? { metadata } : {}),
      });
    });
  });
  const policy = obj(ctx, la, 'policy', path);
  return { known: true, all, overprovisioningFactor: policy ? (num(ctx, policy, 'overprovisioning_factor', join(path, 'policy')) ?? 140) : 140 };
}
