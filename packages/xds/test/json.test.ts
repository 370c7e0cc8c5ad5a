import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TYPE_URL,
  encodeJson,
  decodeJson,
  packAny,
  unpackAny,
  normalizeJson,
  XdsJsonError,
  clusterName,
  parseClusterName,
  adsServiceDefinition,
  plainToStruct,
  structToPlain,
  durationMs,
} from '@tern/xds';

const route = {
  name: '9080',
  virtual_hosts: [
    {
      name: 'reviews',
      domains: ['reviews', 'reviews.default.svc.cluster.local:9080'],
      routes: [
        {
          match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
          route: {
            weighted_clusters: { clusters: [{ name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: 90 }, { name: 'outbound|9080|v2|reviews.default.svc.cluster.local', weight: 10 }] },
            timeout: '1.5s',
            retry_policy: { retry_on: '5xx,connect-failure', num_retries: 2, per_try_timeout: '0.25s' },
          },
          typed_per_filter_config: {
            'envoy.filters.http.fault': {
              '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
              abort: { http_status: 503, percentage: { numerator: 10, denominator: 'HUNDRED' } },
            },
          },
        },
      ],
    },
  ],
};

test('a RouteConfiguration survives encode/decode unchanged, nested Any and durations included', () => {
  assert.deepEqual(decodeJson(TYPE_URL.route, encodeJson(TYPE_URL.route, route)), route);
});

test('wrappers, enums, 64-bit integers and camelCase names follow the proto3 JSON mapping', () => {
  const cluster = normalizeJson(TYPE_URL.cluster, {
    name: 'outbound|9080||reviews.default.svc.cluster.local',
    type: 'EDS',
    connectTimeout: '0.5s',
    lb_policy: 'RING_HASH',
    ring_hash_lb_config: { minimum_ring_size: '1024' },
    circuit_breakers: { thresholds: [{ max_connections: 100, max_pending_requests: { value: 5 } }] },
    eds_cluster_config: { eds_config: { ads: {} } },
  });
  assert.deepEqual(cluster, {
    name: 'outbound|9080||reviews.default.svc.cluster.local',
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} } },
    connect_timeout: '0.5s',
    lb_policy: 'RING_HASH',
    circuit_breakers: { thresholds: [{ max_connections: 100, max_pending_requests: 5 }] },
    ring_hash_lb_config: { minimum_ring_size: 1024 },
  });
});

test('bad input names the field and the rule', () => {
  const cases: [unknown, string, RegExp][] = [
    [{ name: 7 }, 'name', /must be a string/],
    [{ virtual_hosts: [{ name: 'a', colour: 'red' }] }, 'virtual_hosts[0].colour', /unknown field/],
    [{ virtual_hosts: [{ routes: [{ route: { cluster: 'a', timeout: '10 seconds' } }] }] }, 'virtual_hosts[0].routes[0].route.timeout', /duration/],
    [{ virtual_hosts: [{ routes: [{ route: { cluster: 'a', weighted_clusters: { clusters: [] } } }] }] }, 'virtual_hosts[0].routes[0].route.weighted_clusters', /only one of cluster and weighted_clusters/],
    [{ virtual_hosts: [{ routes: [{ typed_per_filter_config: { f: { '@type': 'type.googleapis.com/no.such.Type' } } }] }] }, 'virtual_hosts[0].routes[0].typed_per_filter_config.f.@type', /unknown type/],
    [{ virtual_hosts: [{ routes: [{ typed_per_filter_config: { f: { abort: {} } } }] }] }, 'virtual_hosts[0].routes[0].typed_per_filter_config.f.@type', /required/],
    [{ virtual_hosts: [{ routes: [{ match: { prefix: '/', case_sensitive: 'yes' } }] }] }, 'virtual_hosts[0].routes[0].match.case_sensitive', /boolean/],
    [{ max_direct_response_body_size_bytes: -1 }, 'max_direct_response_body_size_bytes', /negative/],
  ];
  for (const [input, path, rule] of cases) {
    assert.throws(() => encodeJson(TYPE_URL.route, input), (err: unknown) => {
      assert.ok(err instanceof XdsJsonError, String(err));
      assert.equal(err.path, path);
      assert.match(err.rule, rule);
      return true;
    });
  }
  assert.throws(() => encodeJson(TYPE_URL.cluster, { type: 'SOMETIMES' }), /type: must be one of STATIC, STRICT_DNS/);
});

test('Any packing round-trips and carries the canonical type URL', () => {
  const any = packAny({ '@type': TYPE_URL.endpoint, cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 9080 } } }, load_balancing_weight: 3 }] }] });
  assert.equal(any.type_url, TYPE_URL.endpoint);
  assert.ok(Buffer.isBuffer(any.value) && any.value.length > 0);
  assert.deepEqual(unpackAny(any), {
    '@type': TYPE_URL.endpoint,
    cluster_name: 'c',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 9080 } } }, load_balancing_weight: 3 }] }],
  });
});

test('same JSON, same bytes', () => {
  const a = encodeJson(TYPE_URL.route, route);
  const b = encodeJson(TYPE_URL.route, structuredClone(route));
  assert.deepEqual(Buffer.from(a), Buffer.from(b));
});

test('Istio cluster names', () => {
  assert.equal(clusterName({ direction: 'outbound', port: 9080, subset: 'v1', host: 'reviews.default.svc.cluster.local' }), 'outbound|9080|v1|reviews.default.svc.cluster.local');
  assert.equal(clusterName({ direction: 'inbound', port: 9080 }), 'inbound|9080||');
  assert.deepEqual(parseClusterName('outbound|9080||reviews.default.svc.cluster.local'), { direction: 'outbound', port: 9080, host: 'reviews.default.svc.cluster.local' });
  assert.equal(parseClusterName('sideways|1||x'), undefined);
  assert.equal(parseClusterName('outbound|99999||x'), undefined);
});

test('ADS service definition and Struct helpers', () => {
  const svc = adsServiceDefinition();
  assert.equal(svc.StreamAggregatedResources!.path, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
  assert.equal(svc.DeltaAggregatedResources!.path, '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources');
  const meta = { NAMESPACE: 'default', LABELS: { app: 'reviews', version: 'v2' }, PORTS: [9080], MTLS: true, NOTHING: null };
  assert.deepEqual(structToPlain(plainToStruct(meta)), meta);
  // Over the wire, through grpc-js' own serializers: the metadata must survive.
  const method = svc.StreamAggregatedResources!;
  const bytes = method.requestSerialize({ type_url: TYPE_URL.cluster, node: { id: 'p1', metadata: plainToStruct(meta) } });
  const back = method.requestDeserialize(bytes) as { node: { id: string; metadata: Parameters<typeof structToPlain>[0] } };
  assert.equal(back.node.id, 'p1');
  assert.deepEqual(structToPlain(back.node.metadata), meta);
  // And through the JSON mapping (bootstrap files carry metadata as plain JSON).
  const node = { id: 'p1', metadata: meta, locality: { zone: 'a' } };
  assert.deepEqual(decodeJson('envoy.config.core.v3.Node', encodeJson('envoy.config.core.v3.Node', node)), node);
  assert.equal(durationMs('1.25s'), 1250);
  assert.equal(durationMs(undefined), undefined);
});
