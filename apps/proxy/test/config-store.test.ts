import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXTENSION_TYPE_URL, TYPE_URL, type JsonObject } from '@tern/xds';
import { selectFilterChain } from '../src/config/chain-select.ts';
import { ConfigError, type ResourceSet } from '../src/config/model.ts';
import { buildSnapshot } from '../src/config/snapshot.ts';
import { ConfigStore, type SnapshotChange } from '../src/config/store.ts';
import { assignment, edsCluster, hcm, inboundListener, INBOUND, outboundListener, reviewsRoutes, set, sidecarResources, staticCluster, V1, V2, V3 } from './config-fixtures.ts';

function withType(typeUrl: string, ...items: JsonObject[]): Map<string, ResourceSet> {
  const r = sidecarResources();
  r.set(typeUrl, set(...items));
  return r;
}

function expectConfigError(fn: () => unknown, typeUrl: string, resourceName: string, path: string, rule: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    assert.equal(e.typeUrl, typeUrl);
    assert.equal(e.resourceName, resourceName);
    assert.equal(e.path, path);
    assert.match(e.rule, rule);
    assert.ok(e.message.includes(resourceName) && e.message.includes(path), e.message);
    return true;
  });
}

describe('buildSnapshot', () => {
  it('compiles an Istio-shaped sidecar configuration', () => {
    const s = buildSnapshot(sidecarResources());
    assert.deepEqual([...s.listeners.keys()], ['0.0.0.0_9080', 'virtualInbound']);
    const out = s.listeners.get('0.0.0.0_9080')!;
    assert.equal(out.trafficDirection, 'OUTBOUND');
    assert.equal(out.bindToPort, false);
    const h = out.filterChains[0]!.handler;
    assert.ok(h.kind === 'http');
    assert.deepEqual(h.routeSource, { kind: 'rds', name: '9080' });
    assert.equal(h.codecType, 'AUTO');
    assert.equal(h.generateRequestId, true);
    assert.equal(h.streamIdleTimeoutMs, 300_000);
    assert.deepEqual(h.httpFilters.map((f) => f.kind), ['router']);
    const inbound = s.listeners.get('virtualInbound')!;
    assert.equal(inbound.useOriginalDst, true);
    assert.deepEqual(inbound.listenerFilters, [EXTENSION_TYPE_URL.originalDst]);
    const tcp = inbound.filterChains[1]!.handler;
    assert.ok(tcp.kind === 'tcp');
    assert.equal(tcp.idleTimeoutMs, 30_000);
    const v1 = s.clusters.get(V1)!;
    assert.equal(v1.type, 'EDS');
    assert.equal(v1.edsServiceName, V1);
    assert.equal(v1.connectTimeoutMs, 10_000);
    assert.deepEqual(v1.lb, { kind: 'ROUND_ROBIN' });
    assert.deepEqual(v1.endpoints.all.map((e) => [e.key, e.weight, e.locality.zone]), [['10.0.0.1:9080', 1, 'eu-west1-b']]);
    assert.equal(s.clusters.get('PassthroughCluster')!.lb.kind, 'CLUSTER_PROVIDED');
    assert.equal(s.routes.get('9080')!.virtualHosts.length, 2);
    assert.equal(s.missing.routes.size + s.missing.clusters.size + s.missing.endpoints.size, 0);
    assert.equal(s.resources.get(TYPE_URL.cluster)!.get(V1)!.json.name, V1);
  });

  it('references not received yet are not errors: they are listed as missing', () => {
    const r = sidecarResources();
    r.delete(TYPE_URL.route);
    r.set(TYPE_URL.endpoint, set(assignment(V1, [['10.0.0.1', 9080]])));
    r.set(TYPE_URL.cluster, set(edsCluster(V1), edsCluster(V2), staticCluster(INBOUND, [['127.0.0.1', 9080]])));
    const s = buildSnapshot(r);
    assert.deepEqual([...s.missing.routes], ['9080']);
    assert.deepEqual([...s.missing.endpoints].sort(), [V2]);
    assert.deepEqual([...s.missing.clusters].sort(), ['inbound|3306||']);
    assert.equal(s.clusters.get(V2)!.endpoints.known, false);
    assert.equal(s.routes.get('9080'), undefined);
    const withRoutes = buildSnapshot(new Map([...r, [TYPE_URL.route, set(reviewsRoutes())]]));
    assert.deepEqual([...withRoutes.missing.clusters].sort(), [V3, 'PassthroughCluster', 'inbound|3306||'].sort());
  });

  it('cluster options: least request, ring hash, maglev, typed load_balancing_policy, HTTP/2, circuit breakers, outlier detection', () => {
    const c = (extra: JsonObject) => buildSnapshot(withType(TYPE_URL.cluster, staticCluster('c', [['10.0.0.1', 80]], extra))).clusters.get('c')!;
    assert.deepEqual(c({ lb_policy: 'LEAST_REQUEST', least_request_lb_config: { choice_count: 3 } }).lb, { kind: 'LEAST_REQUEST', choiceCount: 3, activeRequestBias: 1 });
    assert.deepEqual(c({ lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: 2048 } }).lb, { kind: 'RING_HASH', minimumRingSize: 2048, maximumRingSize: 8388608, hashFunction: 'XX_HASH' });
    assert.deepEqual(c({ lb_policy: 'MAGLEV' }).lb, { kind: 'MAGLEV', tableSize: 65537 });
    assert.deepEqual(
      c({ load_balancing_policy: { policies: [{ typed_extension_config: { name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality', endpoint_picking_policy: { policies: [{ typed_extension_config: { name: 'rh', typed_config: { '@type': EXTENSION_TYPE_URL.ringHash, minimum_ring_size: 512 } } }] } } } }] } }).lb,
      { kind: 'RING_HASH', minimumRingSize: 512, maximumRingSize: 8388608, hashFunction: 'XX_HASH' },
    );
    const h2 = c({
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': EXTENSION_TYPE_URL.httpProtocolOptions, explicit_http_config: { http2_protocol_options: {} }, common_http_protocol_options: { idle_timeout: '90s', max_requests_per_connection: 100 } },
      },
      circuit_breakers: { thresholds: [{ max_connections: 10, max_pending_requests: 5, max_requests: 20, max_retries: 1 }] },
      outlier_detection: { consecutive_5xx: 3, interval: '5s', base_ejection_time: '15s', max_ejection_percent: 50 },
      common_lb_config: { healthy_panic_threshold: { value: 0 } },
    });
    assert.equal(h2.upstreamProtocol, 'http2');
    assert.equal(h2.idleTimeoutMs, 90_000);
    assert.equal(h2.maxRequestsPerConnection, 100);
    assert.deepEqual(h2.circuitBreakers.default, { maxConnections: 10, maxPendingRequests: 5, maxRequests: 20, maxRetries: 1, trackRemaining: false });
    assert.equal(h2.circuitBreakers.high.maxConnections, 1024);
    assert.equal(h2.outlierDetection!.consecutive5xx, 3);
    assert.equal(h2.outlierDetection!.intervalMs, 5000);
    assert.equal(h2.outlierDetection!.baseEjectionTimeMs, 15_000);
    assert.equal(h2.healthyPanicThreshold, 0);
    assert.equal(c({}).upstreamProtocol, 'http1');
    assert.equal(c({ http2_protocol_options: {} }).upstreamProtocol, 'http2');
    assert.equal(c({}).healthyPanicThreshold, 50);
  });

  it('rejects invalid or unsupported resources with the resource, field path and rule', () => {
    const L = TYPE_URL.listener;
    const C = TYPE_URL.cluster;
    expectConfigError(() => buildSnapshot(withType(C, staticCluster('c', [['10.0.0.1', 80]], { lb_policy: 'CLUSTER_PROVIDED' }))), C, 'c', 'lb_policy', /only valid for ORIGINAL_DST/);
    expectConfigError(() => buildSnapshot(withType(C, staticCluster('c', [['10.0.0.1', 80]], { lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 1000 } }))), C, 'c', 'maglev_lb_config.table_size', /prime/);
    expectConfigError(() => buildSnapshot(withType(C, staticCluster('c', [['not-an-ip', 80]]))), C, 'c', 'load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address', /IP address/);
    expectConfigError(() => buildSnapshot(withType(C, { name: 'c', type: 'STATIC', connect_timeout: '1s' })), C, 'c', 'load_assignment', /required/);
    expectConfigError(() => buildSnapshot(withType(C, staticCluster('c', [['10.0.0.1', 80]], { health_checks: [{ timeout: '1s' }] }))), C, 'c', 'health_checks', /not supported/);
    const unknownFilter = outboundListener();
    ((unknownFilter.filter_chains as JsonObject[])[0]!.filters as JsonObject[])[0]!.typed_config = hcm({
      rds: { route_config_name: '9080' },
      http_filters: [{ name: 'envoy.filters.http.lua', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua' } }, { name: 'r', typed_config: { '@type': EXTENSION_TYPE_URL.router } }],
    });
    expectConfigError(() => buildSnapshot(withType(L, unknownFilter)), L, '0.0.0.0_9080', 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.@type', /not supported/);
    const noRouter = outboundListener();
    ((noRouter.filter_chains as JsonObject[])[0]!.filters as JsonObject[])[0]!.typed_config = hcm({ rds: { route_config_name: '9080' }, http_filters: [] });
    expectConfigError(() => buildSnapshot(withType(L, noRouter)), L, '0.0.0.0_9080', 'filter_chains[0].filters[0].typed_config.http_filters', /router/);
    // Two listeners bound to one address.
    const dup = { ...outboundListener(), name: 'second', bind_to_port: true };
    const first = { ...outboundListener(), bind_to_port: true };
    expectConfigError(() => buildSnapshot(withType(L, first, dup)), L, 'second', 'address', /already used by listener "0.0.0.0_9080"/);
    // Same-address listeners that do not bind (Istio's per-port virtual listeners) are fine.
    buildSnapshot(withType(L, outboundListener(), { ...outboundListener(), name: 'other' }));
    expectConfigError(() => buildSnapshot(withType(TYPE_URL.route, { ...reviewsRoutes(), name: 'other' }).set(TYPE_URL.route, new Map([['9080', { version: '1', json: { ...reviewsRoutes(), name: 'other' } }]]))), TYPE_URL.route, '9080', 'name', /delivered as "9080"/);
    expectConfigError(() => buildSnapshot(withType(TYPE_URL.endpoint, assignment(V1, [['10.0.0.1', 70000]]))), TYPE_URL.endpoint, V1, 'endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value', /port/);
    // An assignment nobody references yet is still validated.
    expectConfigError(() => buildSnapshot(withType(TYPE_URL.endpoint, assignment('orphan', [['x.y', 1]]))), TYPE_URL.endpoint, 'orphan', 'endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address', /IP address/);
  });

  it('HTTP connection manager and TCP proxy options', () => {
    const l = outboundListener({ bind_to_port: true });
    ((l.filter_chains as JsonObject[])[0]!.filters as JsonObject[])[0]!.typed_config = hcm({
      rds: { route_config_name: '9080' },
      codec_type: 'HTTP2',
      request_timeout: '30s',
      stream_idle_timeout: '0s',
      use_remote_address: true,
      xff_num_trusted_hops: 2,
      generate_request_id: false,
      preserve_external_request_id: true,
      server_name: 'istio-envoy',
      upgrade_configs: [{ upgrade_type: 'WebSocket' }, { upgrade_type: 'CONNECT', enabled: false }],
      access_log: [{ name: 'envoy.access_loggers.stdout', typed_config: { '@type': EXTENSION_TYPE_URL.stdoutAccessLog } }],
      common_http_protocol_options: { idle_timeout: '120s' },
      http_filters: [
        { name: 'envoy.filters.http.fault', typed_config: { '@type': EXTENSION_TYPE_URL.fault } },
        { name: 'envoy.filters.http.cors', typed_config: { '@type': EXTENSION_TYPE_URL.cors } },
        { name: 'istio.stats', is_optional: true, typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct' } },
        { name: 'envoy.filters.http.router', typed_config: { '@type': EXTENSION_TYPE_URL.router, suppress_envoy_headers: true } },
      ],
    });
    const tcp = {
      name: 'tcp',
      address: { socket_address: { address: '0.0.0.0', port_value: 3306 } },
      filter_chains: [{ filters: [{ name: 't', typed_config: { '@type': EXTENSION_TYPE_URL.tcpProxy, stat_prefix: 'mysql', weighted_clusters: { clusters: [{ name: 'a', weight: 1 }, { name: 'b', weight: 0 }, { name: 'c', weight: 3 }] } } }] }],
    };
    const s = buildSnapshot(withType(TYPE_URL.listener, l, tcp));
    const h = s.listeners.get('0.0.0.0_9080')!.filterChains[0]!.handler;
    assert.ok(h.kind === 'http');
    assert.equal(h.codecType, 'HTTP2');
    assert.equal(h.requestTimeoutMs, 30_000);
    assert.equal(h.streamIdleTimeoutMs, 0);
    assert.equal(h.useRemoteAddress, true);
    assert.equal(h.xffNumTrustedHops, 2);
    assert.equal(h.generateRequestId, false);
    assert.equal(h.preserveExternalRequestId, true);
    assert.equal(h.serverName, 'istio-envoy');
    assert.deepEqual(h.upgradeTypes, ['websocket']);
    assert.equal(h.accessLog, true);
    assert.equal(h.idleTimeoutMs, 120_000);
    assert.deepEqual(h.httpFilters.map((f) => f.kind), ['fault', 'cors', 'router'], 'optional unknown filters are skipped');
    const router = h.httpFilters[2]!;
    assert.ok(router.kind === 'router' && router.config.suppressEnvoyHeaders);
    const t = s.listeners.get('tcp')!.filterChains[0]!.handler;
    assert.ok(t.kind === 'tcp' && t.target.kind === 'weighted');
    assert.deepEqual(t.target.clusters.map((c) => c.cluster), ['a', 'c']);
    assert.equal(t.target.totalWeight, 4);
    assert.equal(t.idleTimeoutMs, 3_600_000);
    assert.equal(t.accessLog, false);
  });

  it('filter chain selection: destination port, server names, transport protocol, ALPN, default chain', () => {
    const s = buildSnapshot(sidecarResources());
    const inbound = s.listeners.get('virtualInbound')!;
    assert.equal(selectFilterChain(inbound, { destinationPort: 9080 })?.name, '0.0.0.0_9080');
    assert.equal(selectFilterChain(inbound, { destinationPort: 3306 })?.name, 'tcp-passthrough');
    assert.equal(selectFilterChain(inbound, { destinationPort: 1234 }), undefined);
    const chain = (name: string, match: JsonObject) => ({ name, filter_chain_match: match, filters: [{ name: 't', typed_config: { '@type': EXTENSION_TYPE_URL.tcpProxy, stat_prefix: name, cluster: name } }] });
    const l = buildSnapshot(
      withType(TYPE_URL.listener, {
        name: 'l',
        address: { socket_address: { address: '0.0.0.0', port_value: 443 } },
        filter_chains: [
          chain('exact', { server_names: ['api.example.com'], transport_protocol: 'tls' }),
          chain('wild', { server_names: ['*.example.com'], transport_protocol: 'tls' }),
          chain('mtls-h2', { transport_protocol: 'tls', application_protocols: ['istio-h2', 'h2'] }),
          chain('tls', { transport_protocol: 'tls' }),
          chain('plain', { transport_protocol: 'raw_buffer' }),
          chain('ten', { prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] }),
          chain('ten-one', { prefix_ranges: [{ address_prefix: '10.1.0.0', prefix_len: 16 }] }),
        ],
        default_filter_chain: chain('fallback', {}),
      }),
    ).listeners.get('l')!;
    const name = (c: Parameters<typeof selectFilterChain>[1]) => selectFilterChain(l, c)?.name;
    assert.equal(name({ destinationIp: '10.1.2.3' }), 'ten-one', 'longest destination prefix');
    assert.equal(name({ destinationIp: '10.2.2.3' }), 'ten');
    assert.equal(name({ serverName: 'api.example.com', transportProtocol: 'tls' }), 'exact');
    assert.equal(name({ serverName: 'www.example.com', transportProtocol: 'tls' }), 'wild');
    assert.equal(name({ serverName: 'other.org', transportProtocol: 'tls', applicationProtocols: ['h2'] }), 'mtls-h2');
    assert.equal(name({ transportProtocol: 'tls', applicationProtocols: ['http/1.1'] }), 'tls');
    assert.equal(name({}), 'plain');
    assert.equal(name({ destinationIp: '192.168.0.1', transportProtocol: 'quic' }), 'fallback');
  });
});

describe('ConfigStore', () => {
  const fullSet = (typeUrl: string) => new Map([...sidecarResources().get(typeUrl)!].map(([n, e]) => [n, { json: e.json }]));

  function loaded(): ConfigStore {
    const store = new ConfigStore();
    for (const t of [TYPE_URL.cluster, TYPE_URL.endpoint, TYPE_URL.listener, TYPE_URL.route]) store.replaceType(t, fullSet(t), 'v1');
    return store;
  }

  it('swaps in new snapshots, never mutating a published one', () => {
    const store = loaded();
    const held = store.snapshot;
    const heldRoutes = held.routes.get('9080')!;
    const heldJson = JSON.stringify([...held.resources.get(TYPE_URL.route)!]);
    const changed = reviewsRoutes();
    (changed.virtual_hosts as JsonObject[]).reverse();
    const next = store.replaceType(TYPE_URL.route, new Map([['9080', { json: changed }]]), 'v2');
    assert.notEqual(next, held);
    assert.equal(store.snapshot, next);
    assert.equal(held.routes.get('9080'), heldRoutes, 'the held snapshot still has its route table');
    assert.equal(heldRoutes.virtualHosts[0]!.name, 'reviews.default.svc.cluster.local:9080');
    assert.equal(next.routes.get('9080')!.virtualHosts[0]!.name, 'allow_any');
    assert.equal(JSON.stringify([...held.resources.get(TYPE_URL.route)!]), heldJson);
    assert.equal(held.typeVersions.get(TYPE_URL.route), 'v1');
    assert.equal(next.typeVersions.get(TYPE_URL.route), 'v2');
    assert.equal(Number(next.version), Number(held.version) + 1);
    // Unchanged resources keep their compiled objects (cheap swaps, load-balancer state kept).
    assert.equal(next.clusters.get(V1), held.clusters.get(V1));
    assert.equal(next.listeners.get('virtualInbound'), held.listeners.get('virtualInbound'));
  });

  it('an invalid update throws ConfigError and keeps the old snapshot', () => {
    const store = loaded();
    const before = store.snapshot;
    let changes = 0;
    store.onChange(() => changes++);
    const bad = reviewsRoutes();
    ((bad.virtual_hosts as JsonObject[])[0]!.routes as JsonObject[])[1]!.route = { weighted_clusters: { clusters: [{ name: V1, weight: 0 }] } };
    expectConfigError(() => store.replaceType(TYPE_URL.route, new Map([['9080', { json: bad }]]), 'v2'), TYPE_URL.route, '9080', 'virtual_hosts[0].routes[1].route.weighted_clusters.clusters', /sum of weights/);
    assert.equal(store.snapshot, before);
    assert.equal(store.snapshot.typeVersions.get(TYPE_URL.route), 'v1');
    assert.equal(changes, 0);
    // The next good update applies on top of the last good state.
    store.replaceType(TYPE_URL.route, new Map([['9080', { json: reviewsRoutes() }]]), 'v3');
    assert.equal(changes, 1);
    assert.equal(store.snapshot.typeVersions.get(TYPE_URL.route), 'v3');
  });

  it('a type replaced without a resource deletes it', () => {
    const store = loaded();
    store.replaceType(TYPE_URL.cluster, new Map([...fullSet(TYPE_URL.cluster)].filter(([n]) => n !== V3)), 'v2');
    assert.equal(store.snapshot.clusters.has(V3), false);
    assert.ok(store.snapshot.missing.clusters.has(V3));
  });

  it('wantedNames: RDS names from listeners, EDS service names from EDS clusters', () => {
    const store = loaded();
    assert.deepEqual(store.wantedNames(TYPE_URL.route), ['9080']);
    assert.deepEqual(store.wantedNames(TYPE_URL.endpoint), [V1, V2, V3]);
    assert.deepEqual(store.wantedNames(TYPE_URL.listener), []);
    store.replaceType(TYPE_URL.cluster, new Map([['svc', { json: { name: 'svc', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } } }]]), 'v2');
    assert.deepEqual(store.wantedNames(TYPE_URL.endpoint), ['svc'], 'without service_name the cluster name is used');
  });

  it('notifies listeners with the new and previous snapshots; a throwing listener does not break the swap', () => {
    const errors: unknown[] = [];
    const store = new ConfigStore({ onListenerError: (e) => errors.push(e) });
    const seen: SnapshotChange[] = [];
    store.onChange(() => {
      throw new Error('boom');
    });
    const off = store.onChange((c) => seen.push(c));
    const prev = store.snapshot;
    store.replaceType(TYPE_URL.cluster, fullSet(TYPE_URL.cluster), '1');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.previous, prev);
    assert.equal(seen[0]!.snapshot, store.snapshot);
    assert.deepEqual(seen[0]!.typeUrls, [TYPE_URL.cluster]);
    assert.equal(errors.length, 1);
    off();
    store.replaceType(TYPE_URL.cluster, new Map(), '2');
    assert.equal(seen.length, 1);
  });

  it('static resources are kept across xDS updates and cannot be overridden', () => {
    const store = new ConfigStore({ staticResources: new Map([[TYPE_URL.cluster, new Map([['xds-grpc', staticCluster('xds-grpc', [['127.0.0.1', 15010]])]])]]) });
    assert.ok(store.snapshot.clusters.has('xds-grpc'));
    store.replaceType(TYPE_URL.cluster, fullSet(TYPE_URL.cluster), '1');
    assert.ok(store.snapshot.clusters.has('xds-grpc'));
    assert.ok(store.snapshot.clusters.has(V1));
    store.replaceType(TYPE_URL.cluster, new Map(), '2');
    assert.ok(store.snapshot.clusters.has('xds-grpc'));
    expectConfigError(() => store.replaceType(TYPE_URL.cluster, new Map([['xds-grpc', { json: staticCluster('xds-grpc', [['127.0.0.1', 1]]) }]]), '3'), TYPE_URL.cluster, 'xds-grpc', '', /static resource/);
  });

  it('inline route configs in listeners are compiled and checked', () => {
    const l = inboundListener();
    const hcmJson = ((((l.filter_chains as JsonObject[])[0]!.filters as JsonObject[])[0]!.typed_config as JsonObject).route_config as JsonObject);
    ((hcmJson.virtual_hosts as JsonObject[])[0]!.routes as JsonObject[])[0]!.match = { safe_regex: { regex: '(?=x)' } };
    expectConfigError(() => buildSnapshot(withType(TYPE_URL.listener, l)), TYPE_URL.listener, 'virtualInbound', 'filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].match.safe_regex.regex', /lookahead/);
  });
});
