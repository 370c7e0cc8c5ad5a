/**
 * Listener → ListenerConfig: address, filter chains (match + TLS + HTTP connection manager or TCP
 * proxy). Pure; throws ConfigError naming the field path.
 */
import { EXTENSION_TYPE_URL, TYPE_URL, type JsonObject } from '@tern/xds';
import {
  bool,
  duration,
  enumOf,
  fail,
  faultConfig,
  isIp,
  join,
  list,
  num,
  obj,
  rejectFields,
  socketAddress,
  str,
  strings,
  type Ctx,
} from './compile-common.ts';
import { compileRouteTable } from './compile-route.ts';
import { compileRbacFilter } from './compile-rbac.ts';
import type {
  CidrRange,
  FilterChain,
  FilterChainMatch,
  HttpConnectionManagerConfig,
  HttpFilter,
  ListenerConfig,
  NetworkFilter,
  TcpProxyConfig,
  WeightedClusterEntry,
} from './model.ts';
import { NO_MUTATIONS } from './compile-common.ts';

const LISTENER_FILTERS = new Set<string>([EXTENSION_TYPE_URL.originalDst, EXTENSION_TYPE_URL.tlsInspector, EXTENSION_TYPE_URL.httpInspector]);
/** Non-terminal network filters accepted and passed through raw: none today. Authorization filters never pass unenforced. */
const PASSTHROUGH_NETWORK_FILTERS = new Set<string>();

export function compileListener(json: JsonObject, ctx: Ctx = { typeUrl: TYPE_URL.listener, name: String(json.name ?? '') }): ListenerConfig {
  const path = '';
  const name = str(ctx, json, 'name', path);
  if (!name) fail(ctx, 'name', 'is required');
  rejectFields(ctx, json, path, {
    api_listener: 'api_listener is not supported (a sidecar listens on sockets)',
    udp_listener_config: 'UDP listeners are not supported',
    internal_listener: 'internal listeners are not supported',
    additional_addresses: 'additional_addresses is not supported',
    filter_chain_matcher: 'filter_chain_matcher (matcher tree) is not supported; use filter_chain_match',
    connection_balance_config: 'connection_balance_config is not supported',
  });
  const address = socketAddress(ctx, obj(ctx, json, 'address', path), 'address', { allowHostname: false });
  const listenerFilters = list(ctx, json, 'listener_filters', path).map((f, i) => {
    const fp = join('listener_filters', i);
    const tc = obj(ctx, f, 'typed_config', fp);
    const type = tc ? String(tc['@type']) : '';
    if (!LISTENER_FILTERS.has(type)) fail(ctx, join(fp, 'typed_config'), `listener filter ${JSON.stringify(type || str(ctx, f, 'name', fp))} is not supported (supported: original_dst, tls_inspector, http_inspector)`);
    return type;
  });
  const chains = list(ctx, json, 'filter_chains', path).map((c, i) => compileFilterChain(ctx, c, join('filter_chains', i), i));
  const dfc = obj(ctx, json, 'default_filter_chain', path);
  const defaultFilterChain = dfc ? compileFilterChain(ctx, dfc, 'default_filter_chain', -1) : undefined;
  if (chains.length === 0 && !defaultFilterChain) fail(ctx, 'filter_chains', 'at least one filter chain (or default_filter_chain) is required');
  checkDuplicateMatches(ctx, chains);
  const bufferLimit = num(ctx, json, 'per_connection_buffer_limit_bytes', path);
  return {
    name,
    address,
    trafficDirection: enumOf(ctx, json, 'traffic_direction', path, ['UNSPECIFIED', 'INBOUND', 'OUTBOUND'], 'UNSPECIFIED'),
    useOriginalDst: bool(ctx, json, 'use_original_dst', path) ?? false,
    bindToPort: bool(ctx, json, 'bind_to_port', path) ?? true,
    listenerFilters,
    filterChains: chains,
    ...(defaultFilterChain ? { defaultFilterChain } : {}),
    ...(bufferLimit !== undefined ? { perConnectionBufferLimitBytes: bufferLimit } : {}),
    raw: json,
  };
}

/** Envoy rejects a listener with two chains whose matches are identical ("multiple filter chains with the same matching rules"). */
function checkDuplicateMatches(ctx: Ctx, chains: readonly FilterChain[]): void {
  const seen = new Map<string, string>();
  chains.forEach((c, i) => {
    const m = c.match;
    const key = JSON.stringify([
      m.destinationPort ?? 0,
      m.prefixRanges.map((r) => `${r.addressPrefix}/${r.prefixLen}`).sort(),
      [...m.serverNames].sort(),
      m.transportProtocol ?? '',
      [...m.applicationProtocols].sort(),
      m.sourceType,
      m.sourcePrefixRanges.map((r) => `${r.addressPrefix}/${r.prefixLen}`).sort(),
      [...m.sourcePorts].sort(),
    ]);
    const other = seen.get(key);
    if (other !== undefined) fail(ctx, join(join('filter_chains', i), 'filter_chain_match'), `has the same matching rules as filter chain ${other}`);
    seen.set(key, c.name);
  });
}

function compileFilterChain(ctx: Ctx, c: JsonObject, path: string, index: number): FilterChain {
  rejectFields(ctx, c, path, { on_demand_configuration: 'on_demand_configuration is not supported' });
  const m = obj(ctx, c, 'filter_chain_match', path) ?? {};
  const match = compileChainMatch(ctx, m, join(path, 'filter_chain_match'));
  const filters = list(ctx, c, 'filters', path);
  if (filters.length === 0) fail(ctx, join(path, 'filters'), 'at least one network filter is required');
  const networkFilters: NetworkFilter[] = [];
  let handler: FilterChain['handler'] | undefined;
  filters.forEach((f, i) => {
    const fp = join(join(path, 'filters'), i);
    const fname = str(ctx, f, 'name', fp) ?? '';
    const tc = obj(ctx, f, 'typed_config', fp);
    if (!tc) fail(ctx, join(fp, 'typed_config'), `is required (filter ${JSON.stringify(fname)})`);
    const type = String(tc['@type']);
    const last = i === filters.length - 1;
    if (type === EXTENSION_TYPE_URL.httpConnectionManager || type === EXTENSION_TYPE_URL.tcpProxy) {
      if (!last) fail(ctx, fp, `${fname || type} is a terminal filter and must be the last in the chain`);
      handler = type === EXTENSION_TYPE_URL.httpConnectionManager ? compileHcm(ctx, tc, join(fp, 'typed_config')) : compileTcpProxy(ctx, tc, join(fp, 'typed_config'));
    } else if (PASSTHROUGH_NETWORK_FILTERS.has(type)) {
      if (last) fail(ctx, fp, 'the last network filter must be envoy.filters.network.http_connection_manager or tcp_proxy');
      networkFilters.push({ name: fname, typeUrl: type, config: tc });
    } else if (type === EXTENSION_TYPE_URL.networkRbac) {
      // Accepting it without enforcing it would let through connections a DENY policy names.
      fail(ctx, join(join(fp, 'typed_config'), '@type'), 'the network RBAC filter (authorization of TCP connections) is not enforced by this proxy; refused rather than ignored (HTTP RBAC is supported)');
    } else fail(ctx, join(join(fp, 'typed_config'), '@type'), `network filter ${type} is not supported`);
  });
  const ts = obj(ctx, c, 'transport_socket', path);
  if (ts) {
    const tsc = obj(ctx, ts, 'typed_config', join(path, 'transport_socket'));
    const type = tsc ? String(tsc['@type']) : '';
    const plainByName = type === '' && (ts.name === undefined || ts.name === 'envoy.transport_sockets.raw_buffer' || ts.name === 'raw_buffer');
    if (!plainByName && type !== EXTENSION_TYPE_URL.downstreamTls && type !== 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer') {
      fail(ctx, join(join(join(path, 'transport_socket'), 'typed_config'), '@type'), `transport socket ${JSON.stringify(type)} is not supported (DownstreamTlsContext only)`);
    }
  }
  const isTls = ts && String((ts.typed_config as JsonObject | undefined)?.['@type']) === EXTENSION_TYPE_URL.downstreamTls;
  return {
    name: str(ctx, c, 'name', path) || (index >= 0 ? `#${index}` : 'default'),
    match,
    ...(isTls ? { transportSocket: ts } : {}),
    handler: handler!,
    networkFilters,
  };
}

function compileChainMatch(ctx: Ctx, m: JsonObject, path: string): FilterChainMatch {
  rejectFields(ctx, m, path, { direct_source_prefix_ranges: 'direct_source_prefix_ranges is not supported', address_suffix: 'address_suffix is not supported', suffix_len: 'suffix_len is not supported' });
  const destinationPort = num(ctx, m, 'destination_port', path);
  if (destinationPort !== undefined && (destinationPort < 1 || destinationPort > 65535)) fail(ctx, join(path, 'destination_port'), 'must be a port number 1-65535');
  const transportProtocol = str(ctx, m, 'transport_protocol', path);
  return {
    ...(destinationPort !== undefined ? { destinationPort } : {}),
    prefixRanges: list(ctx, m, 'prefix_ranges', path).map((r, i) => cidr(ctx, r, join(join(path, 'prefix_ranges'), i))),
    serverNames: strings(ctx, m, 'server_names', path).map((s) => s.toLowerCase()),
    ...(transportProtocol ? { transportProtocol } : {}),
    applicationProtocols: strings(ctx, m, 'application_protocols', path),
    sourceType: enumOf(ctx, m, 'source_type', path, ['ANY', 'SAME_IP_OR_LOOPBACK', 'EXTERNAL'], 'ANY'),
    sourcePrefixRanges: list(ctx, m, 'source_prefix_ranges', path).map((r, i) => cidr(ctx, r, join(join(path, 'source_prefix_ranges'), i))),
    sourcePorts: ((m.source_ports ?? []) as number[]).map(Number),
  };
}

export function cidr(ctx: Ctx, r: JsonObject, path: string): CidrRange {
  const addressPrefix = str(ctx, r, 'address_prefix', path) ?? '';
  if (!isIp(addressPrefix)) fail(ctx, join(path, 'address_prefix'), `must be an IP address, got ${JSON.stringify(addressPrefix)}`);
  const bytes = ipBytes(addressPrefix);
  if (!bytes) fail(ctx, join(path, 'address_prefix'), `is not a valid IP address`);
  const family = bytes.length === 4 ? 4 : 6;
  const prefixLen = num(ctx, r, 'prefix_len', path) ?? 0;
  if (prefixLen < 0 || prefixLen > bytes.length * 8) fail(ctx, join(path, 'prefix_len'), `must be 0-${bytes.length * 8}`);
  return { addressPrefix, prefixLen, family, bytes };
}

/** Parses an IPv4 or IPv6 address to bytes; undefined if invalid. */
export function ipBytes(ip: string): Uint8Array | undefined {
  if (ip.startsWith('::ffff:') && ip.includes('.')) ip = ip.slice(7);
  if (ip.includes('.') && !ip.includes(':')) {
    const parts = ip.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
    return Uint8Array.from(parts);
  }
  const pct = ip.indexOf('%');
  if (pct >= 0) ip = ip.slice(0, pct);
  const halves = ip.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s ? s.split(':') : []);
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  return out;
}

const HTTP_FILTER_TYPES: Record<string, HttpFilter['kind']> = {
  [EXTENSION_TYPE_URL.router]: 'router',
  [EXTENSION_TYPE_URL.fault]: 'fault',
  [EXTENSION_TYPE_URL.cors]: 'cors',
  [EXTENSION_TYPE_URL.httpRbac]: 'rbac',
};

function compileHcm(ctx: Ctx, h: JsonObject, path: string): HttpConnectionManagerConfig {
  rejectFields(ctx, h, path, {
    scoped_routes: 'scoped_routes is not supported (use rds or route_config)',
    http3_protocol_options: 'HTTP/3 is not supported',
    original_ip_detection_extensions: 'original_ip_detection_extensions is not supported',
    early_header_mutation_extensions: 'early_header_mutation_extensions is not supported',
  });
  const statPrefix = str(ctx, h, 'stat_prefix', path);
  if (!statPrefix) fail(ctx, join(path, 'stat_prefix'), 'is required');
  const codecType = enumOf(ctx, h, 'codec_type', path, ['AUTO', 'HTTP1', 'HTTP2'], 'AUTO', { HTTP3: 'HTTP/3 is not supported' });

  let routeSource: HttpConnectionManagerConfig['routeSource'];
  const rds = obj(ctx, h, 'rds', path);
  const inline = obj(ctx, h, 'route_config', path);
  if (rds) {
    const name = str(ctx, rds, 'route_config_name', join(path, 'rds'));
    if (!name) fail(ctx, join(join(path, 'rds'), 'route_config_name'), 'is required');
    const cs = obj(ctx, rds, 'config_source', join(path, 'rds'));
    if (cs && cs.ads === undefined && cs.self === undefined && cs.path === undefined) {
      // Only ADS is spoken; an api_config_source pointing elsewhere would never be answered.
      if (cs.api_config_source !== undefined) fail(ctx, join(join(path, 'rds'), 'config_source'), 'only ads (or self) config sources are supported');
    }
    routeSource = { kind: 'rds', name };
  } else if (inline) {
    routeSource = { kind: 'inline', table: compileRouteTable(inline, ctx, join(path, 'route_config')) };
  } else return fail(ctx, path, 'one of rds or route_config is required');

  const filtersJson = list(ctx, h, 'http_filters', path);
  const httpFilters: HttpFilter[] = filtersJson.map((f, i) => {
    const fp = join(join(path, 'http_filters'), i);
    const fname = str(ctx, f, 'name', fp) ?? '';
    const tc = obj(ctx, f, 'typed_config', fp);
    if (f.config_discovery !== undefined) fail(ctx, join(fp, 'config_discovery'), 'filter config discovery (ECDS) is not supported');
    if (!tc) fail(ctx, join(fp, 'typed_config'), `is required (filter ${JSON.stringify(fname)})`);
    const type = String(tc['@type']);
    const kind = HTTP_FILTER_TYPES[type];
    if (!kind) {
      if (f.is_optional === true) return undefined;
      return fail(ctx, join(join(fp, 'typed_config'), '@type'), `HTTP filter ${type} is not supported (supported: router, fault, cors, rbac; mark others is_optional to skip them)`);
    }
    const tp = join(fp, 'typed_config');
    switch (kind) {
      case 'router':
        rejectFields(ctx, tc, tp, { upstream_http_filters: 'upstream HTTP filters are not supported' });
        return { kind, name: fname, config: { suppressEnvoyHeaders: bool(ctx, tc, 'suppress_envoy_headers', tp) ?? false, startChildSpan: bool(ctx, tc, 'start_child_span', tp) ?? false } };
      case 'fault':
        return { kind, name: fname, config: faultConfig(ctx, tc, tp) };
      case 'cors':
        return { kind, name: fname };
      default:
        return { kind: 'rbac' as const, name: fname, config: compileRbacFilter(ctx, tc, tp) };
    }
  }).filter((f): f is HttpFilter => f !== undefined);
  const routerAt = httpFilters.findIndex((f) => f.kind === 'router');
  if (routerAt < 0) fail(ctx, join(path, 'http_filters'), 'the router filter (envoy.filters.http.router) is required');
  if (routerAt !== httpFilters.length - 1) fail(ctx, join(join(path, 'http_filters'), routerAt), 'the router filter must be the last HTTP filter');

  const common = obj(ctx, h, 'common_http_protocol_options', path) ?? {};
  const cp = join(path, 'common_http_protocol_options');
  const upgradeTypes: string[] = [];
  list(ctx, h, 'upgrade_configs', path).forEach((u, i) => {
    const up = join(join(path, 'upgrade_configs'), i);
    const type = str(ctx, u, 'upgrade_type', up);
    if (!type) fail(ctx, join(up, 'upgrade_type'), 'is required');
    if (u.filters !== undefined) fail(ctx, join(up, 'filters'), 'per-upgrade filter chains are not supported');
    if ((bool(ctx, u, 'enabled', up) ?? true) && !upgradeTypes.includes(type.toLowerCase())) upgradeTypes.push(type.toLowerCase());
  });
  const accessLogConfigs = list(ctx, h, 'access_log', path);
  const requestTimeoutMs = duration(ctx, h, 'request_timeout', path);
  const requestHeadersTimeoutMs = duration(ctx, h, 'request_headers_timeout', path);
  const maxConnectionDurationMs = duration(ctx, common, 'max_connection_duration', cp);
  return {
    kind: 'http',
    statPrefix,
    codecType,
    routeSource,
    httpFilters,
    accessLog: accessLogConfigs.length > 0,
    accessLogConfigs,
    ...(requestTimeoutMs ? { requestTimeoutMs } : {}),
    streamIdleTimeoutMs: duration(ctx, h, 'stream_idle_timeout', path) ?? 300_000,
    ...(requestHeadersTimeoutMs ? { requestHeadersTimeoutMs } : {}),
    idleTimeoutMs: duration(ctx, common, 'idle_timeout', cp) ?? 3_600_000,
    ...(maxConnectionDurationMs ? { maxConnectionDurationMs } : {}),
    useRemoteAddress: bool(ctx, h, 'use_remote_address', path) ?? false,
    xffNumTrustedHops: num(ctx, h, 'xff_num_trusted_hops', path) ?? 0,
    generateRequestId: bool(ctx, h, 'generate_request_id', path) ?? true,
    preserveExternalRequestId: bool(ctx, h, 'preserve_external_request_id', path) ?? false,
    serverName: str(ctx, h, 'server_name', path) ?? 'envoy',
    serverHeaderTransformation: enumOf(ctx, h, 'server_header_transformation', path, ['OVERWRITE', 'APPEND_IF_ABSENT', 'PASS_THROUGH'], 'OVERWRITE'),
    normalizePath: bool(ctx, h, 'normalize_path', path) ?? false,
    mergeSlashes: bool(ctx, h, 'merge_slashes', path) ?? false,
    upgradeTypes,
    forwardClientCertDetails: enumOf(ctx, h, 'forward_client_cert_details', path, ['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY'], 'SANITIZE'),
    raw: h,
  };
}

function compileTcpProxy(ctx: Ctx, t: JsonObject, path: string): TcpProxyConfig {
  rejectFields(ctx, t, path, {
    tunneling_config: 'tunneling_config is not supported',
    on_demand: 'on_demand is not supported',
    hash_policy: 'hash_policy is not supported for tcp_proxy',
    metadata_match: 'metadata_match is not supported',
  });
  const statPrefix = str(ctx, t, 'stat_prefix', path);
  if (!statPrefix) fail(ctx, join(path, 'stat_prefix'), 'is required');
  const cluster = str(ctx, t, 'cluster', path);
  const weighted = obj(ctx, t, 'weighted_clusters', path);
  let target: TcpProxyConfig['target'];
  if (cluster) target = { kind: 'cluster', cluster };
  else if (weighted) {
    const wp = join(path, 'weighted_clusters');
    const items = list(ctx, weighted, 'clusters', wp);
    if (items.length === 0) fail(ctx, join(wp, 'clusters'), 'at least one cluster is required');
    const all: WeightedClusterEntry[] = items.map((c, i) => {
      const cp = join(join(wp, 'clusters'), i);
      const name = str(ctx, c, 'name', cp);
      if (!name) fail(ctx, join(cp, 'name'), 'is required');
      const weight = num(ctx, c, 'weight', cp) ?? 0;
      if (!Number.isInteger(weight) || weight < 0) fail(ctx, join(cp, 'weight'), 'must be a non-negative integer');
      return { cluster: name, weight, headers: NO_MUTATIONS, perFilterConfig: { raw: new Map() } };
    });
    const totalWeight = all.reduce((s, c) => s + c.weight, 0);
    if (totalWeight === 0) fail(ctx, join(wp, 'clusters'), 'the sum of weights must be greater than 0');
    target = { kind: 'weighted', clusters: all.filter((c) => c.weight > 0), totalWeight };
  } else return fail(ctx, path, 'one of cluster or weighted_clusters is required');
  return {
    kind: 'tcp',
    statPrefix,
    target,
    idleTimeoutMs: duration(ctx, t, 'idle_timeout', path) ?? 3_600_000,
    maxConnectAttempts: num(ctx, t, 'max_connect_attempts', path) ?? 1,
    accessLog: list(ctx, t, 'access_log', path).length > 0,
    raw: t,
  };
}
