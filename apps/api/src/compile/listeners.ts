import { clusterName, EXTENSION_TYPE_URL, type JsonObject } from '@tern/xds';
import { ADS_CONFIG } from './cluster.ts';

// Listener shapes. Which listeners a proxy gets is decided in prepare.ts; these build one each.

export const HCM_NAME = 'envoy.filters.network.http_connection_manager';
export const TCP_PROXY_NAME = 'envoy.filters.network.tcp_proxy';
export const FORWARD_PROXY_ROUTE = 'forward-proxy';

function httpFilter(name: string, typeUrl: string): JsonObject {
  return { name, typed_config: { '@type': typeUrl } };
}

const ROUTER = httpFilter('envoy.filters.http.router', EXTENSION_TYPE_URL.router);
const OUTBOUND_FILTERS = [httpFilter('envoy.filters.http.fault', EXTENSION_TYPE_URL.fault), httpFilter('envoy.filters.http.cors', EXTENSION_TYPE_URL.cors), ROUTER];
const PROXYLESS_FILTERS = [httpFilter('envoy.filters.http.fault', EXTENSION_TYPE_URL.fault), ROUTER];

export function socketAddress(address: string, port: number): JsonObject {
  return { socket_address: { address, port_value: port } };
}

/**
 * HttpConnectionManager config: RDS from ADS, or an inline route configuration (inbound). `authz`:
 * the inbound RBAC filters (compile/authz.ts), placed before the router.
 */
export function hcm(statPrefix: string, route: { rds: string } | { inline: JsonObject }, filters: 'outbound' | 'proxyless' | 'inbound', authz: readonly JsonObject[] = []): JsonObject {
  const out: JsonObject = { '@type': EXTENSION_TYPE_URL.httpConnectionManager, stat_prefix: statPrefix };
  if ('rds' in route) out['rds'] = { config_source: ADS_CONFIG, route_config_name: route.rds };
  else out['route_config'] = route.inline;
  out['http_filters'] = filters === 'outbound' ? OUTBOUND_FILTERS : filters === 'proxyless' ? PROXYLESS_FILTERS : authz.length > 0 ? [...authz, ROUTER] : [ROUTER];
  // RBAC url_path rules match the normalised path (Istio's default pathNormalization BASE sets
  // normalize_path on every HCM); only set here so HCMs without RBAC stay as they were.
  if (authz.length > 0) out['normalize_path'] = true;
  if (filters !== 'proxyless') {
    out['use_remote_address'] = false;
    out['generate_request_id'] = true;
  }
  return out;
}

export function hcmFilter(config: JsonObject): JsonObject {
  return { name: HCM_NAME, typed_config: config };
}

export function tcpProxyFilter(statPrefix: string, target: JsonObject): JsonObject {
  return { name: TCP_PROXY_NAME, typed_config: { '@type': EXTENSION_TYPE_URL.tcpProxy, stat_prefix: statPrefix, ...target } };
}

export function listener(name: string, address: string, port: number, filterChains: JsonObject[], direction: 'INBOUND' | 'OUTBOUND', extra: JsonObject = {}): JsonObject {
  return { name, address: socketAddress(address, port), filter_chains: filterChains, traffic_direction: direction, ...extra };
}

/** Inline route configuration of an inbound HTTP port: everything to the local app. */
export function inboundRouteConfig(servicePort: number): JsonObject {
  const cluster = clusterName({ direction: 'inbound', port: servicePort });
  return {
    name: cluster,
    virtual_hosts: [
      {
        name: `inbound|http|${servicePort}`,
        domains: ['*'],
        routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: '0s', max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' } } }],
      },
    ],
  };
}

/** A gRPC proxyless client's listener: an api_listener per name it may dial. */
export function apiListener(name: string, routeConfigName: string): JsonObject {
  return { name, api_listener: { api_listener: hcm(name, { rds: routeConfigName }, 'proxyless') } };
}

/** Istio's virtualOutbound: catches redirected traffic, hands it to the listener of its original port. */
export function virtualOutbound(port: number): JsonObject {
  return listener('virtualOutbound', '0.0.0.0', port, [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxyFilter('PassthroughCluster', { cluster: 'PassthroughCluster' })] }], 'OUTBOUND', {
    use_original_dst: true,
  });
}

/** The plaintext chain for ports no service names: straight to the original destination. */
export const INBOUND_PASSTHROUGH: JsonObject = { name: 'inbound-passthrough', filters: [tcpProxyFilter('InboundPassthroughCluster', { cluster: 'InboundPassthroughCluster' })] };

/**
 * `passthrough`: the chains for unknown ports (default the plaintext one; mTLS swaps in its own);
 * `extraListenerFilters` go after original_dst (tls_inspector when chains match on TLS).
 */
export function virtualInbound(port: number, chains: JsonObject[], passthrough: JsonObject[] = [INBOUND_PASSTHROUGH], extraListenerFilters: JsonObject[] = []): JsonObject {
  return listener('virtualInbound', '0.0.0.0', port, [...chains, ...passthrough], 'INBOUND', {
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': EXTENSION_TYPE_URL.originalDst } }, ...extraListenerFilters],
  });
}
