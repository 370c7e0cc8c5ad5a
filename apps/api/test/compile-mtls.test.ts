import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EXTENSION_TYPE_URL, type JsonObject } from '@tern/xds';
import { prepareMesh } from '../src/compile/index.ts';
import { PeerAuthIndex, peerModeFor } from '../src/compile/mtls.ts';
import { assertEncodes, assertGolden, buildMesh, injected, OPTIONS, proxy, serialize, shuffled, type ServiceSpec, type WorkloadSpec } from './compile-fixtures.ts';

// Mutual TLS (CompileOptions.mtls): PeerAuthentication precedence, the inbound chains per mode,
// outbound UpstreamTlsContext (auto mTLS, DestinationRule tls), golden files, determinism.

const MTLS = { ...OPTIONS, mtls: true };

const pa = (name: string, ns: string, body: string, created = '2026-01-01T00:00:00Z') =>
  `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: ${name}, namespace: ${ns}, creationTimestamp: "${created}" }\nspec:\n${body || '  {}'}\n---\n`;
const dr = (name: string, body: string, ns = 'default') => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${body}\n---\n`;
const se = (name: string, body: string, ns = 'default') => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${body}\n---\n`;
const port = (number: number, protocol: 'HTTP' | 'TCP' | 'GRPC' = 'HTTP', targetPort?: number) => ({ name: `${protocol.toLowerCase()}-${number}`, number, protocol, ...(targetPort ? { targetPort } : {}) });

function index(yaml: string, root = 'istio-system'): PeerAuthIndex {
  return new PeerAuthIndex(buildMesh({ yaml }), root);
}

describe('mtls: effective PeerAuthentication (Istio precedence)', () => {
  const APP = { app: 'reviews' };
  const cases: Array<{ name: string; yaml: string; ns?: string; labels?: Record<string, string>; root?: string; mode: string; ports?: Record<number, string> }> = [
    { name: 'no policy: PERMISSIVE', yaml: '', mode: 'PERMISSIVE' },
    { name: 'mesh STRICT applies to every namespace', yaml: pa('default', 'istio-system', '  mtls: { mode: STRICT }'), ns: 'shop', mode: 'STRICT' },
    { name: 'mesh UNSET: the default', yaml: pa('default', 'istio-system', '  mtls: { mode: UNSET }'), mode: 'PERMISSIVE' },
    { name: 'namespace over mesh', yaml: pa('default', 'istio-system', '  mtls: { mode: STRICT }') + pa('ns', 'default', '  mtls: { mode: DISABLE }'), mode: 'DISABLE' },
    { name: 'a namespace policy elsewhere does not apply', yaml: pa('default', 'istio-system', '  mtls: { mode: STRICT }') + pa('ns', 'other', '  mtls: { mode: DISABLE }'), mode: 'STRICT' },
    { name: 'namespace UNSET inherits the mesh', yaml: pa('default', 'istio-system', '  mtls: { mode: STRICT }') + pa('ns', 'default', '  mtls: { mode: UNSET }'), mode: 'STRICT' },
    { name: 'namespace without mtls inherits the mesh', yaml: pa('default', 'istio-system', '  mtls: { mode: DISABLE }') + pa('ns', 'default', ''), mode: 'DISABLE' },
    { name: 'empty matchLabels is namespace-wide', yaml: pa('ns', 'default', '  selector: { matchLabels: {} }\n  mtls: { mode: STRICT }'), labels: {}, mode: 'STRICT' },
    { name: 'workload over namespace', yaml: pa('ns', 'default', '  mtls: { mode: STRICT }') + pa('w', 'default', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: PERMISSIVE }'), mode: 'PERMISSIVE' },
    { name: 'a workload policy for other labels does not apply', yaml: pa('ns', 'default', '  mtls: { mode: STRICT }') + pa('w', 'default', '  selector: { matchLabels: { app: ratings } }\n  mtls: { mode: DISABLE }'), mode: 'STRICT' },
    {
      name: 'portLevelMtls overrides per port; UNSET ports inherit the workload mode',
      yaml: pa('ns', 'default', '  mtls: { mode: STRICT }') + pa('w', 'default', '  selector: { matchLabels: { app: reviews } }\n  portLevelMtls: { "8080": { mode: DISABLE }, "9090": { mode: UNSET }, "7070": { mode: PERMISSIVE } }'),
      mode: 'STRICT',
      ports: { 8080: 'DISABLE', 9090: 'STRICT', 7070: 'PERMISSIVE', 6060: 'STRICT' },
    },
    {
      name: 'UNSET port inherits the workload override, not the namespace',
      yaml: pa('ns', 'default', '  mtls: { mode: STRICT }') + pa('w', 'default', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: PERMISSIVE }\n  portLevelMtls: { "8080": { mode: UNSET } }'),
      mode: 'PERMISSIVE',
      ports: { 8080: 'PERMISSIVE' },
    },
    {
      name: 'oldest namespace policy wins (not the first by name)',
      yaml: pa('a-new', 'default', '  mtls: { mode: DISABLE }', '2026-03-01T00:00:00Z') + pa('z-old', 'default', '  mtls: { mode: STRICT }', '2026-02-01T00:00:00Z'),
      mode: 'STRICT',
    },
    { name: 'same age: by name', yaml: pa('b', 'default', '  mtls: { mode: DISABLE }') + pa('a', 'default', '  mtls: { mode: STRICT }'), mode: 'STRICT' },
    {
      name: 'oldest matching workload policy wins',
      yaml: pa('new', 'default', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: STRICT }', '2026-05-01T00:00:00Z') + pa('old', 'default', '  selector: { matchLabels: { app: reviews, version: v1 } }\n  mtls: { mode: DISABLE }', '2026-04-01T00:00:00Z'),
      labels: { app: 'reviews', version: 'v1' },
      mode: 'DISABLE',
    },
    { name: 'oldest mesh policy wins', yaml: pa('x', 'istio-system', '  mtls: { mode: STRICT }', '2026-02-01T00:00:00Z') + pa('a', 'istio-system', '  mtls: { mode: DISABLE }', '2026-03-01T00:00:00Z'), mode: 'STRICT' },
    { name: 'a selector policy in the root namespace applies to no one', yaml: pa('w', 'istio-system', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: STRICT }'), mode: 'PERMISSIVE' },
    { name: '... not even in the root namespace', yaml: pa('w', 'istio-system', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: STRICT }'), ns: 'istio-system', mode: 'PERMISSIVE' },
    { name: 'a workload in the root namespace gets the mesh policy', yaml: pa('default', 'istio-system', '  mtls: { mode: DISABLE }'), ns: 'istio-system', mode: 'DISABLE' },
    { name: 'rootNamespace option', yaml: pa('default', 'mesh-root', '  mtls: { mode: STRICT }') + pa('default', 'istio-system', '  mtls: { mode: DISABLE }'), root: 'mesh-root', mode: 'STRICT' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const eff = index(c.yaml, c.root).effective(c.ns ?? 'default', c.labels ?? APP);
      assert.equal(eff.mode, c.mode);
      for (const [p, m] of Object.entries(c.ports ?? {})) assert.equal(peerModeFor(eff, Number(p)), m, `port ${p}`);
      if (!c.ports) assert.equal(eff.ports.size, 0);
    });
  }

  it('equal results are one object (interned), so they key caches', () => {
    const idx = index(pa('ns', 'default', '  mtls: { mode: STRICT }') + pa('ns', 'other', '  mtls: { mode: STRICT }'));
    assert.equal(idx.effective('default', {}), idx.effective('other', { a: 'b' }));
    assert.notEqual(idx.effective('default', {}), idx.effective('third', {}));
  });
});

// ---- inbound ------------------------------------------------------------------------------

const REVIEWS_SERVICES: ServiceSpec[] = [
  { name: 'reviews', ports: [port(9080), port(9090, 'TCP')] },
  { name: 'ratings', ports: [port(9080)] },
];
const REVIEWS_WL: WorkloadSpec[] = injected([
  { name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, addresses: ['10.0.0.21'], serviceAccount: 'bookinfo-reviews' },
  { name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, addresses: ['10.0.0.22'], serviceAccount: 'bookinfo-reviews' },
  { name: 'ratings-v1', labels: { app: 'ratings', version: 'v1' }, addresses: ['10.0.0.31'], serviceAccount: 'bookinfo-ratings' },
  { name: 'ratings-v2', labels: { app: 'ratings', version: 'v2' }, addresses: ['10.0.0.32'], serviceAccount: 'ratings-canary' },
  // Local mode: the sidecar listens on 19080/19090, the app on the service ports.
  { name: 'reviews-local', labels: { app: 'reviews', version: 'v9' }, addresses: ['127.0.0.1'], ports: { '9080': 19080, '9090': 19090 } },
]);
const REDIRECT = { NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-v1', INTERCEPTION: 'REDIRECT' };
const LOCAL = { NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-local' };

function compile(yaml: string, node: JsonObject, options: typeof OPTIONS & { mtls?: boolean } = MTLS, userAgent?: string) {
  const mesh = buildMesh({ yaml, services: REVIEWS_SERVICES, workloads: REVIEWS_WL });
  return prepareMesh(mesh, 'r1', options).compileFor(proxy(node, userAgent ? { user_agent_name: userAgent } : {}));
}

type Chain = { name?: string; filter_chain_match?: { destination_port?: number; transport_protocol?: string }; transport_socket?: { typed_config: JsonObject } };

function inboundChains(yaml: string): Chain[] {
  const l = compile(yaml, REDIRECT).listeners.get('virtualInbound')!;
  return l['filter_chains'] as unknown as Chain[];
}

const modesOf = (chains: Chain[], destPort: number | undefined) =>
  chains
    .filter((c) => c.filter_chain_match?.destination_port === destPort)
    .map((c) => c.filter_chain_match?.transport_protocol ?? 'any')
    .sort();

describe('mtls: inbound listeners', () => {
  it('STRICT: only TLS chains, client certificates required, tls_inspector', () => {
    const yaml = pa('ns', 'default', '  mtls: { mode: STRICT }');
    const out = compile(yaml, REDIRECT);
    const l = out.listeners.get('virtualInbound')!;
    const chains = l['filter_chains'] as unknown as Chain[];
    assert.deepEqual(modesOf(chains, 9080), ['tls']);
    assert.deepEqual(modesOf(chains, 9090), ['tls']);
    // Unknown ports too: the passthrough accepts only mTLS.
    assert.deepEqual(modesOf(chains, undefined), ['tls']);
    for (const c of chains) {
      const tls = c.transport_socket!.typed_config;
      assert.equal(tls['@type'], EXTENSION_TYPE_URL.downstreamTls);
      assert.equal(tls['require_client_certificate'], true);
      const common = tls['common_tls_context'] as JsonObject;
      assert.deepEqual(common['tls_certificate_sds_secret_configs'], [{ name: 'default' }]);
      assert.deepEqual(common['validation_context_sds_secret_config'], { name: 'ROOTCA' });
    }
    const alpn = (p: number) => ((chains.find((c) => c.filter_chain_match?.destination_port === p)!.transport_socket!.typed_config['common_tls_context'] as JsonObject)['alpn_protocols']);
    assert.deepEqual(alpn(9080), ['h2', 'http/1.1']);
    assert.deepEqual(alpn(9090), ['istio-peer-exchange', 'istio']);
    const filters = (l['listener_filters'] as JsonObject[]).map((f) => (f['typed_config'] as JsonObject)['@type']);
    assert.deepEqual(filters, [EXTENSION_TYPE_URL.originalDst, EXTENSION_TYPE_URL.tlsInspector]);
    assertEncodes(out);
  });

  it('PERMISSIVE (the default): a TLS and a plaintext chain per port; passthrough unchanged', () => {
    const chains = inboundChains('');
    assert.deepEqual(modesOf(chains, 9080), ['raw_buffer', 'tls']);
    assert.deepEqual(modesOf(chains, 9090), ['raw_buffer', 'tls']);
    assert.deepEqual(modesOf(chains, undefined), ['any']);
    const plain = chains.find((c) => c.filter_chain_match?.destination_port === 9080 && c.filter_chain_match.transport_protocol === 'raw_buffer')!;
    assert.equal(plain.transport_socket, undefined);
  });

  it('DISABLE: plaintext only, no tls_inspector (what mtls off emits)', () => {
    const yaml = pa('default', 'istio-system', '  mtls: { mode: DISABLE }');
    const on = compile(yaml, REDIRECT);
    const off = compile(yaml, REDIRECT, OPTIONS);
    assert.deepEqual(on.listeners.get('virtualInbound'), off.listeners.get('virtualInbound'));
    assert.ok(!JSON.stringify(on.listeners.get('virtualInbound')).includes('tls_inspector'));
  });

  it('portLevelMtls in REDIRECT mode is keyed by the destination port', () => {
    const chains = inboundChains(pa('ns', 'default', '  mtls: { mode: STRICT }') + pa('w', 'default', '  selector: { matchLabels: { app: reviews } }\n  portLevelMtls: { "9090": { mode: DISABLE } }'));
    assert.deepEqual(modesOf(chains, 9080), ['tls']);
    assert.deepEqual(modesOf(chains, 9090), ['any']);
  });

  it('local mode: explicit listeners per mode, keyed by the port the sidecar listens on', () => {
    const out = compile(pa('ns', 'default', '  mtls: { mode: STRICT }') + pa('w', 'default', '  selector: { matchLabels: { version: v9 } }\n  portLevelMtls: { "19090": { mode: PERMISSIVE } }'), LOCAL);
    const http = out.listeners.get('127.0.0.1_19080')!;
    const tcp = out.listeners.get('127.0.0.1_19090')!;
    assert.deepEqual((http['filter_chains'] as unknown as Chain[]).map((c) => c.filter_chain_match?.transport_protocol), ['tls']);
    assert.deepEqual((tcp['filter_chains'] as unknown as Chain[]).map((c) => c.filter_chain_match?.transport_protocol), ['tls', 'raw_buffer']);
    assert.deepEqual(http['listener_filters'], [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': EXTENSION_TYPE_URL.tlsInspector } }]);
    assertEncodes(out);
  });

  it('mtls off: PeerAuthentications change nothing', () => {
    const strict = pa('default', 'istio-system', '  mtls: { mode: STRICT }');
    for (const node of [REDIRECT, LOCAL]) assert.equal(serialize(compile(strict, node, OPTIONS)), serialize(compile('', node, OPTIONS)));
  });
});

// ---- outbound -----------------------------------------------------------------------------

type TlsCluster = { transport_socket?: { typed_config: JsonObject }; transport_socket_matches?: Array<{ name: string; match: JsonObject; transport_socket: { name: string; typed_config?: JsonObject } }> };

function sans(ts: { typed_config?: JsonObject } | undefined): unknown {
  const common = ts?.typed_config?.['common_tls_context'] as JsonObject;
  const dvc = (common['combined_validation_context'] as JsonObject)['default_validation_context'] as JsonObject;
  return (dvc['match_typed_subject_alt_names'] as JsonObject[] | undefined)?.map((m) => (m['matcher'] as JsonObject)['exact']);
}

describe('mtls: outbound clusters and endpoints', () => {
  const CLIENT = { NAMESPACE: 'default', LABELS: { app: 'client' } };

  it('auto mTLS: tlsMode-istio match with the SPIFFE ids of the service (deduplicated, sorted), SNI, SDS without a source', () => {
    const out = compile('', CLIENT);
    const c = out.clusters.get('outbound|9080||ratings.default.svc.cluster.local') as unknown as TlsCluster;
    const [istio, plain] = c.transport_socket_matches!;
    assert.equal(istio!.name, 'tlsMode-istio');
    assert.deepEqual(istio!.match, { tlsMode: 'istio' });
    assert.deepEqual(sans(istio!.transport_socket), ['spiffe://cluster.local/ns/default/sa/bookinfo-ratings', 'spiffe://cluster.local/ns/default/sa/ratings-canary']);
    assert.equal(istio!.transport_socket.typed_config!['sni'], 'outbound_.9080_._.ratings.default.svc.cluster.local');
    const common = istio!.transport_socket.typed_config!['common_tls_context'] as JsonObject;
    assert.deepEqual(common['tls_certificate_sds_secret_configs'], [{ name: 'default' }]);
    assert.deepEqual((common['combined_validation_context'] as JsonObject)['validation_context_sds_secret_config'], { name: 'ROOTCA' });
    assert.deepEqual(plain, { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer' } });
    const reviews = out.clusters.get('outbound|9080||reviews.default.svc.cluster.local') as unknown as TlsCluster;
    // Two workloads share one account, the local one runs as "default".
    assert.deepEqual(sans(reviews.transport_socket_matches![0]!.transport_socket), ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews', 'spiffe://cluster.local/ns/default/sa/default']);
    const cla = out.endpoints.get('outbound|9080||ratings.default.svc.cluster.local')!;
    const eps = ((cla['endpoints'] as JsonObject[])[0]!['lb_endpoints'] as JsonObject[]).map((e) => ((e['metadata'] as JsonObject)['filter_metadata'] as JsonObject)['envoy.transport_socket_match']);
    assert.deepEqual(eps, [{ tlsMode: 'istio' }, { tlsMode: 'istio' }]);
    assertEncodes(out);
  });

  it('auto mTLS sends plain text to endpoints whose sidecar is DISABLE (workload, port, mesh)', () => {
    const tlsModes = (yaml: string, cluster: string) => {
      const cla = compile(yaml, CLIENT).endpoints.get(cluster)!;
      return ((cla['endpoints'] as JsonObject[])[0]!['lb_endpoints'] as JsonObject[]).map((e) => {
        const addr = ((e['endpoint'] as JsonObject)['address'] as JsonObject)['socket_address'] as JsonObject;
        const md = (e['metadata'] as JsonObject | undefined)?.['filter_metadata'] as JsonObject | undefined;
        return `${addr['address']}=${md?.['envoy.transport_socket_match'] ? 'istio' : 'plain'}`;
      });
    };
    const v2Off = pa('v2', 'default', '  selector: { matchLabels: { app: reviews, version: v2 } }\n  mtls: { mode: DISABLE }');
    assert.deepEqual(tlsModes(v2Off, 'outbound|9080||reviews.default.svc.cluster.local'), ['10.0.0.21=istio', '10.0.0.22=plain', '127.0.0.1=istio']);
    const portOff = pa('p', 'default', '  selector: { matchLabels: { app: reviews } }\n  portLevelMtls: { "9090": { mode: DISABLE } }');
    assert.deepEqual(tlsModes(portOff, 'outbound|9080||reviews.default.svc.cluster.local'), ['10.0.0.21=istio', '10.0.0.22=istio', '127.0.0.1=istio']);
    // The local workload receives 9090 on 19090: the port-level key does not name it.
    assert.deepEqual(tlsModes(portOff, 'outbound|9090||reviews.default.svc.cluster.local'), ['10.0.0.21=plain', '10.0.0.22=plain', '127.0.0.1=istio']);
    assert.deepEqual(tlsModes(pa('default', 'istio-system', '  mtls: { mode: DISABLE }'), 'outbound|9080||ratings.default.svc.cluster.local'), ['10.0.0.31=plain', '10.0.0.32=plain']);
  });

  it('a registry workload without security.istio.io/tlsMode: istio (none, or another value) has no sidecar: plain text', () => {
    for (const label of [undefined, 'disabled']) {
      const workloads = REVIEWS_WL.map((w) => {
        if (w.name !== 'ratings-v2') return w;
        const { 'security.istio.io/tlsMode': _, ...labels } = w.labels;
        return { ...w, labels: label === undefined ? labels : { ...labels, 'security.istio.io/tlsMode': label } };
      });
      const out = prepareMesh(buildMesh({ services: REVIEWS_SERVICES, workloads }), 'r1', MTLS).compileFor(proxy(CLIENT));
      const eps = ((out.endpoints.get('outbound|9080||ratings.default.svc.cluster.local')!['endpoints'] as JsonObject[])[0]!['lb_endpoints'] as JsonObject[]).map((e) => ((e['metadata'] as JsonObject)['filter_metadata'] as JsonObject)['envoy.transport_socket_match'] ?? null);
      assert.deepEqual(eps, [{ tlsMode: 'istio' }, null], String(label));
    }
  });

  it('DestinationRule DISABLE: plain text even towards a STRICT server', () => {
    const out = compile(pa('default', 'istio-system', '  mtls: { mode: STRICT }') + dr('ratings', '  host: ratings\n  trafficPolicy: { tls: { mode: DISABLE } }'), CLIENT);
    const c = out.clusters.get('outbound|9080||ratings.default.svc.cluster.local') as unknown as TlsCluster;
    assert.equal(c.transport_socket, undefined);
    assert.equal(c.transport_socket_matches, undefined);
  });

  it('ISTIO_MUTUAL: a plain transport_socket; sni override kept', () => {
    const out = compile(dr('ratings', '  host: ratings\n  trafficPolicy: { tls: { mode: ISTIO_MUTUAL, sni: custom.sni } }'), CLIENT);
    const c = out.clusters.get('outbound|9080||ratings.default.svc.cluster.local') as unknown as TlsCluster;
    assert.equal(c.transport_socket!.typed_config['sni'], 'custom.sni');
    assert.equal(c.transport_socket_matches, undefined);
  });

  it('MESH_EXTERNAL ServiceEntry: plain text; MESH_INTERNAL: identities from endpoints and subjectAltNames', () => {
    const yaml =
      se('ext', '  hosts: [ext.example.com]\n  ports: [{ number: 80, name: http, protocol: HTTP }]\n  resolution: DNS') +
      se('vm', '  hosts: [vm.internal]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{ number: 8080, name: http, protocol: HTTP }]\n  subjectAltNames: ["spiffe://other.td/ns/x/sa/y"]\n  endpoints:\n  - { address: 10.9.0.1, serviceAccount: vm-sa, labels: { security.istio.io/tlsMode: istio } }\n  - { address: 10.9.0.2 }');
    const out = compile(yaml, { ...CLIENT, EGRESS_HOSTS: ['*/*'] });
    const ext = out.clusters.get('outbound|80||ext.example.com') as unknown as TlsCluster;
    assert.equal(ext.transport_socket ?? ext.transport_socket_matches, undefined);
    const vm = out.clusters.get('outbound|8080||vm.internal') as unknown as TlsCluster;
    assert.deepEqual(sans(vm.transport_socket_matches![0]!.transport_socket), ['spiffe://cluster.local/ns/default/sa/vm-sa', 'spiffe://other.td/ns/x/sa/y']);
    const eps = ((out.endpoints.get('outbound|8080||vm.internal')!['endpoints'] as JsonObject[])[0]!['lb_endpoints'] as JsonObject[]).map((e) => JSON.stringify(e['metadata'] ?? null));
    assert.deepEqual(eps, ['{"filter_metadata":{"envoy.transport_socket_match":{"tlsMode":"istio"}}}', 'null']);
  });

  it('proxyless gRPC clients stay plain text', () => {
    const out = compile('', { NAMESPACE: 'default' }, MTLS, 'grpc-node-js');
    assert.ok(out.clusters.size > 0);
    for (const [name, c] of out.clusters) assert.ok(!('transport_socket' in c) && !('transport_socket_matches' in c), name);
  });
});

// ---- golden files, determinism -----------------------------------------------------------

const GOLDEN: Array<{ name: string; yaml: string; node: JsonObject; userAgent?: string }> = [
  { name: 'mtls-strict-namespace', yaml: pa('ns', 'default', '  mtls: { mode: STRICT }'), node: REDIRECT },
  { name: 'mtls-permissive-default', yaml: '', node: LOCAL },
  {
    name: 'mtls-workload-port-level',
    yaml: pa('default', 'istio-system', '  mtls: { mode: STRICT }') + pa('reviews', 'default', '  selector: { matchLabels: { app: reviews } }\n  mtls: { mode: PERMISSIVE }\n  portLevelMtls: { "9090": { mode: DISABLE }, "9080": { mode: UNSET } }'),
    node: REDIRECT,
  },
  { name: 'mtls-disable', yaml: pa('default', 'istio-system', '  mtls: { mode: DISABLE }'), node: LOCAL },
  {
    name: 'mtls-dr-tls',
    yaml:
      dr('ratings', '  host: ratings\n  trafficPolicy: { tls: { mode: DISABLE } }\n  subsets:\n  - { name: v2, labels: { version: v2 }, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }') +
      dr('reviews', '  host: reviews\n  trafficPolicy:\n    tls: { mode: ISTIO_MUTUAL }\n    portLevelSettings:\n    - { port: { number: 9090 }, tls: { mode: SIMPLE, caCertificates: /etc/certs/ca.pem, sni: reviews.example, subjectAltNames: [reviews.example] } }') +
      se('ext', '  hosts: [ext.example.com]\n  ports: [{ number: 443, name: tls, protocol: TLS }]\n  resolution: DNS') +
      dr('ext', '  host: ext.example.com\n  trafficPolicy: { tls: { mode: MUTUAL, clientCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem } }'),
    node: { NAMESPACE: 'default', LABELS: { app: 'client' }, EGRESS_HOSTS: ['./*'] },
  },
  {
    name: 'mtls-service-entry',
    yaml:
      se('ext', '  hosts: [api.example.com]\n  ports: [{ number: 443, name: https, protocol: TLS }, { number: 80, name: http, protocol: HTTP }]\n  resolution: DNS') +
      se('db', '  hosts: [db.internal]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{ number: 5432, name: tcp, protocol: TCP }]\n  endpoints: [{ address: 10.9.0.1 }]'),
    node: { NAMESPACE: 'default', LABELS: { app: 'client' } },
  },
];

describe('mtls: golden output (mtls on)', () => {
  for (const c of GOLDEN) {
    it(c.name, () => {
      const out = compile(c.yaml, c.node, MTLS, c.userAgent);
      assertEncodes(out);
      assertGolden(c.name, out);
    });
  }

  it('is deterministic: same output for a shuffled mesh and a second compile', () => {
    for (const c of GOLDEN) {
      const mesh = buildMesh({ yaml: c.yaml, services: REVIEWS_SERVICES, workloads: REVIEWS_WL });
      const a = serialize(prepareMesh(mesh, 'r1', MTLS).compileFor(proxy(c.node)));
      const b = serialize(prepareMesh(shuffled(mesh), 'r2', MTLS).compileFor(proxy(c.node)));
      const again = serialize(prepareMesh(mesh, 'r3', MTLS).compileFor(proxy(c.node)));
      assert.equal(b, a, c.name);
      assert.equal(again, a, c.name);
    }
  });
});
