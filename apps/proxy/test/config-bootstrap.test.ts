import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TYPE_URL } from '@tern/xds';
import { BootstrapError, loadBootstrap, parseBootstrap } from '../src/config/bootstrap.ts';
import { selectRoute } from '../src/config/route-select.ts';
import { ConfigStore } from '../src/config/store.ts';

const YAML_BOOTSTRAP = `
node:
  id: sidecar~10.0.0.7~productpage-v1-abc.default~default.svc.cluster.local
  cluster: productpage.default
  locality: { region: eu-west1, zone: eu-west1-b }
  metadata:
    NAMESPACE: default
    LABELS: { app: productpage, version: v1 }
    tern.dev/anything: free-form
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 15001 } }
dynamic_resources:
  lds_config: { ads: {}, resource_api_version: V3 }
  cds_config: { ads: {}, resource_api_version: V3 }
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc: { cluster_name: xds-grpc }
      initial_metadata: [{ key: Authorization, value: Bearer t0ken }]
static_resources:
  listeners:
  - name: inbound_9080
    address: { socket_address: { address: 0.0.0.0, port_value: 15006 } }
    traffic_direction: INBOUND
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: inbound_9080
          codec_type: AUTO
          route_config:
            name: inbound|9080||
            virtual_hosts:
            - name: inbound
              domains: ["*"]
              routes:
              - match: { prefix: / }
                route: { cluster: "inbound|9080||", timeout: 0s }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  - name: outbound_9080
    address: { socket_address: { address: 127.0.0.1, port_value: 15001 } }
    traffic_direction: OUTBOUND
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: outbound|9080||reviews.default.svc.cluster.local
          cluster: outbound|9080||reviews.default.svc.cluster.local
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 10.96.0.10, port_value: 15010 } } }
  - name: "inbound|9080||"
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: "inbound|9080||"
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9080 } } } }] }]
  - name: outbound|9080||reviews.default.svc.cluster.local
    type: STRICT_DNS
    connect_timeout: 1s
    load_assignment:
      cluster_name: outbound|9080||reviews.default.svc.cluster.local
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: reviews.default.svc.cluster.local, port_value: 9080 } } } }] }]
`;

function expectBootstrapError(text: string, pathRe: string, rule: RegExp, format?: 'json' | 'yaml'): void {
  assert.throws(
    () => parseBootstrap(text, format, 'test.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof BootstrapError, String(e));
      assert.equal(e.path, pathRe);
      assert.match(e.rule, rule);
      assert.ok(e.message.startsWith('bootstrap test.yaml: '), e.message);
      return true;
    },
  );
}

describe('bootstrap', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tern-bootstrap-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a YAML bootstrap: node, admin, ADS target resolved from the static cluster, initial snapshot', async () => {
    const file = path.join(dir, 'envoy.yaml');
    await writeFile(file, YAML_BOOTSTRAP);
    const b = await loadBootstrap(file);
    assert.equal(b.node.id, 'sidecar~10.0.0.7~productpage-v1-abc.default~default.svc.cluster.local');
    assert.equal(b.node.cluster, 'productpage.default');
    assert.deepEqual(b.node.locality, { region: 'eu-west1', zone: 'eu-west1-b', subZone: '' });
    assert.deepEqual(b.node.metadata, { NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v1' }, 'tern.dev/anything': 'free-form' });
    assert.deepEqual(b.admin, { address: '127.0.0.1', port: 15001 });
    assert.equal(b.ads?.apiType, 'GRPC');
    assert.deepEqual(b.ads?.target, { kind: 'envoy_grpc', clusterName: 'xds-grpc', address: '10.96.0.10', port: 15010, tls: false });
    assert.equal(b.ads?.setNodeOnFirstMessageOnly, true);
    assert.equal(b.ads?.initialMetadata.get('authorization'), 'Bearer t0ken');
    const s = b.initialSnapshot;
    assert.deepEqual([...s.listeners.keys()], ['inbound_9080', 'outbound_9080']);
    assert.deepEqual([...s.clusters.keys()].sort(), ['inbound|9080||', 'outbound|9080||reviews.default.svc.cluster.local', 'xds-grpc']);
    assert.equal(s.clusters.get('xds-grpc')!.upstreamProtocol, 'http2');
    assert.equal(s.clusters.get('outbound|9080||reviews.default.svc.cluster.local')!.endpoints.all[0]!.address, 'reviews.default.svc.cluster.local');
    const chain = s.listeners.get('inbound_9080')!.filterChains[0]!.handler;
    assert.ok(chain.kind === 'http' && chain.routeSource.kind === 'inline');
    const sel = selectRoute(chain.routeSource.table, { method: 'GET', authority: 'x', path: '/productpage', headers: {} });
    assert.ok('route' in sel && sel.route.action.kind === 'route' && sel.route.action.target.kind === 'cluster' && sel.route.action.target.cluster === 'inbound|9080||');
    // The same static resources seed a store.
    const store = new ConfigStore({ staticResources: b.staticResources });
    assert.deepEqual([...store.snapshot.listeners.keys()], [...s.listeners.keys()]);
    assert.equal(store.snapshot.resources.get(TYPE_URL.cluster)!.get('xds-grpc')!.static, true);
  });

  it('JSON bootstrap, by extension; defaults: admin 127.0.0.1:15000, no ADS', async () => {
    const file = path.join(dir, 'b.json');
    await writeFile(file, JSON.stringify({ node: { id: 'n1', cluster: 'c' } }));
    const b = await loadBootstrap(file);
    assert.deepEqual(b.admin, { address: '127.0.0.1', port: 15000 });
    assert.equal(b.ads, undefined);
    assert.equal(b.initialSnapshot.listeners.size, 0);
    const g = parseBootstrap(JSON.stringify({ node: { id: 'n' }, dynamic_resources: { ads_config: { api_type: 'DELTA_GRPC', grpc_services: [{ google_grpc: { target_uri: 'istiod.istio-system.svc:15012', stat_prefix: 'xds' } }] } } }));
    assert.deepEqual(g.ads?.target, { kind: 'google_grpc', targetUri: 'istiod.istio-system.svc:15012', tls: false });
    assert.equal(g.ads?.apiType, 'DELTA_GRPC');
  });

  it('unknown fields are errors naming the path', () => {
    expectBootstrapError(YAML_BOOTSTRAP.replace('    traffic_direction: INBOUND', '    traffic_direction: INBOUND\n    colour: blue'), 'static_resources.listeners[0].colour', /unknown field/);
    expectBootstrapError('node: { id: a, idd: b }', 'node.idd', /unknown field/);
  });

  it('bad durations and bad enum values are errors naming the path', () => {
    expectBootstrapError(YAML_BOOTSTRAP.replace('connect_timeout: 1s\n    typed_extension', 'connect_timeout: 1 second\n    typed_extension'), 'static_resources.clusters[0].connect_timeout', /duration/);
    expectBootstrapError(YAML_BOOTSTRAP.replace('traffic_direction: INBOUND', 'traffic_direction: SIDEWAYS'), 'static_resources.listeners[0].traffic_direction', /must be one of/);
  });

  it('static resources that do not compile are errors naming their path in the bootstrap', () => {
    expectBootstrapError(YAML_BOOTSTRAP.replace('route: { cluster: "inbound|9080||", timeout: 0s }', 'route: { weighted_clusters: { clusters: [{ name: a, weight: 0 }] } }'), 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters', /sum of weights/);
    expectBootstrapError(YAML_BOOTSTRAP.replace('address: 127.0.0.1, port_value: 15001 } }\n    traffic_direction: OUTBOUND', 'address: 0.0.0.0, port_value: 15006 } }\n    traffic_direction: OUTBOUND'), 'static_resources.listeners[1].address', /already used/);
  });

  it('ADS and node problems', () => {
    expectBootstrapError(YAML_BOOTSTRAP.replace('cluster_name: xds-grpc }', 'cluster_name: nowhere }'), 'dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name', /not a static cluster/);
    expectBootstrapError(YAML_BOOTSTRAP.replace('lds_config: { ads: {}, resource_api_version: V3 }', 'lds_config: { path_config_source: { path: /etc/lds.yaml } }'), 'dynamic_resources.lds_config', /ads/);
    expectBootstrapError('admin: {}', 'node.id', /required/);
    expectBootstrapError('node: { id: a }\nhds_config: { api_type: GRPC }', 'hds_config', /not supported/);
    expectBootstrapError('node: [1', '', /not valid YAML/);
    expectBootstrapError('{"node": ', '', /not valid JSON/, 'json');
  });

  it('the example in docs/proxy.md builds and routes as described', async () => {
    const doc = await readFile(new URL('../../../docs/proxy.md', import.meta.url), 'utf8');
    const m = /<!-- bootstrap-example -->\s*```yaml\n([\s\S]*?)```/.exec(doc);
    assert.ok(m, 'docs/proxy.md has the marked bootstrap example');
    const b = parseBootstrap(m[1]!, 'yaml', 'docs/proxy.md');
    assert.deepEqual([...b.initialSnapshot.listeners.keys()], ['virtualInbound', 'virtualOutbound']);
    assert.deepEqual(b.ads?.target, { kind: 'envoy_grpc', clusterName: 'xds-grpc', address: 'tern-api.tern-system.svc', port: 15010, tls: false });
    assert.equal(b.initialSnapshot.missing.clusters.size, 0);
    const out = b.initialSnapshot.listeners.get('virtualOutbound')!.filterChains[0]!.handler;
    assert.ok(out.kind === 'http' && out.routeSource.kind === 'inline');
    const sel = selectRoute(out.routeSource.table, { method: 'GET', authority: 'reviews:9080', path: '/reviews/1', headers: {} });
    assert.ok('route' in sel && sel.route.name === 'reviews');
  });

  it('a missing file is a clear error', async () => {
    await assert.rejects(loadBootstrap(path.join(dir, 'missing.yaml')), (e: unknown) => e instanceof BootstrapError && /cannot be read/.test(e.rule));
  });
});
