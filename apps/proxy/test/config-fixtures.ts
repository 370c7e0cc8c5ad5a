/** Istio-shaped xDS resources (as @tern/xds decodes them) shared by the config-*.test.ts suites. */
import { EXTENSION_TYPE_URL, TYPE_URL, type JsonObject } from '@tern/xds';
import type { ResourceSet } from '../src/config/model.ts';

export const REVIEWS = 'reviews.default.svc.cluster.local';
export const V1 = `outbound|9080|v1|${REVIEWS}`;
export const V2 = `outbound|9080|v2|${REVIEWS}`;
export const V3 = `outbound|9080|v3|${REVIEWS}`;
export const INBOUND = 'inbound|9080||';

export const router = { name: 'envoy.filters.http.router', typed_config: { '@type': EXTENSION_TYPE_URL.router } };

export function hcm(extra: JsonObject): JsonObject {
  return { '@type': EXTENSION_TYPE_URL.httpConnectionManager, stat_prefix: 'outbound_0.0.0.0_9080', http_filters: [router], ...extra };
}

export function outboundListener(extra: JsonObject = {}): JsonObject {
  return {
    name: '0.0.0.0_9080',
    address: { socket_address: { address: '0.0.0.0', port_value: 9080 } },
    traffic_direction: 'OUTBOUND',
    bind_to_port: false,
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm({ rds: { route_config_name: '9080', config_source: { ads: {} } } }) }] }],
    ...extra,
  };
}

export function inboundListener(): JsonObject {
  return {
    name: 'virtualInbound',
    address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
    traffic_direction: 'INBOUND',
    use_original_dst: true,
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': EXTENSION_TYPE_URL.originalDst } }],
    filter_chains: [
      {
        name: '0.0.0.0_9080',
        filter_chain_match: { destination_port: 9080 },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: hcm({
              stat_prefix: 'inbound_0.0.0.0_9080',
              route_config: { name: 'inbound|9080||', virtual_hosts: [{ name: 'inbound|http|9080', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: INBOUND, timeout: '0s' } }] }] },
            }),
          },
        ],
      },
      {
        name: 'tcp-passthrough',
        filter_chain_match: { destination_port: 3306 },
        filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': EXTENSION_TYPE_URL.tcpProxy, stat_prefix: 'inbound|3306||', cluster: 'inbound|3306||', idle_timeout: '30s' } }],
      },
    ],
  };
}

export function reviewsRoutes(): JsonObject {
  return {
    name: '9080',
    virtual_hosts: [
      {
        name: `${REVIEWS}:9080`,
        domains: [REVIEWS, `${REVIEWS}:9080`, 'reviews', 'reviews:9080', 'reviews.default', 'reviews.default:9080'],
        routes: [
          { name: 'jason', match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }, route: { cluster: V2, timeout: '0s' } },
          {
            name: 'split',
            match: { prefix: '/' },
            route: { weighted_clusters: { clusters: [{ name: V1, weight: 80 }, { name: V3, weight: 20 }] }, timeout: '10s', retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: 2 } },
          },
        ],
      },
      { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster', timeout: '0s' } }] },
    ],
  };
}

export function edsCluster(name: string, extra: JsonObject = {}): JsonObject {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: name }, connect_timeout: '10s', ...extra };
}

export function assignment(name: string, hosts: [string, number, number?][]): JsonObject {
  return {
    cluster_name: name,
    endpoints: [
      {
        locality: { region: 'eu-west1', zone: 'eu-west1-b' },
        lb_endpoints: hosts.map(([ip, port, weight]) => ({
          endpoint: { address: { socket_address: { address: ip, port_value: port } } },
          ...(weight !== undefined ? { load_balancing_weight: weight } : {}),
        })),
      },
    ],
  };
}

export function staticCluster(name: string, hosts: [string, number, number?][], extra: JsonObject = {}): JsonObject {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: assignment(name, hosts), ...extra };
}

export function set(...items: JsonObject[]): ResourceSet {
  return new Map(items.map((json) => [String(json.name ?? json.cluster_name), { version: '1', json }] as const));
}

/** A full Istio-like sidecar configuration. */
export function sidecarResources(): Map<string, ResourceSet> {
  return new Map<string, ResourceSet>([
    [TYPE_URL.listener, set(outboundListener(), inboundListener())],
    [TYPE_URL.route, set(reviewsRoutes())],
    [TYPE_URL.cluster, set(edsCluster(V1), edsCluster(V2), edsCluster(V3), staticCluster(INBOUND, [['127.0.0.1', 9080]]), staticCluster('inbound|3306||', [['127.0.0.1', 3306]]), { name: 'PassthroughCluster', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '10s' })],
    [TYPE_URL.endpoint, set(assignment(V1, [['10.0.0.1', 9080]]), assignment(V2, [['10.0.0.2', 9080]]), assignment(V3, [['10.0.0.3', 9080]]))],
  ]);
}

/** Seeded PRNG (mulberry32) so distribution tests are reproducible. */
export function seeded(seed = 42): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
