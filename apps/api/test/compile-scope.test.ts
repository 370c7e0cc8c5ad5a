import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '@tern/xds';
import { prepareMesh } from '../src/compile/index.ts';
import { assertEncodes, buildMesh, HELPER_VS, httpPort, OPTIONS, proxy, SCOPE_SERVICES, scopeWorkloads, serialize, shuffled, type ServiceSpec, type WorkloadSpec } from './compile-fixtures.ts';

// Scoping (what a proxy receives), determinism (same input, same bytes, whatever the order) and
// identity sharing (proxies with identical output get the same objects).

const SERVICES = SCOPE_SERVICES;
const WORKLOADS = scopeWorkloads([{ namespace: 'a', name: 'front-2', labels: { app: 'front' }, addresses: ['10.0.1.2'] }]);

const YAML = `${HELPER_VS}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: private, namespace: b }
spec:
  hosts: [private.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: DNS
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: public, namespace: b }
spec:
  hosts: [public.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: DNS
`;

const clusterHosts = (r: { clusters: ReadonlyMap<string, unknown> }) =>
  [...new Set([...r.clusters.keys()].filter((n) => n.startsWith('outbound|')).map((n) => n.split('|')[3]))].sort();

describe('compile: scoping', () => {
  const prepared = prepareMesh(buildMesh({ yaml: YAML, services: SERVICES, workloads: WORKLOADS }), 'r1', OPTIONS);

  it('a proxy in namespace a gets its namespace and the closure of its VirtualServices, not b or c', () => {
    const r = prepared.compileFor(proxy({ NAMESPACE: 'a', WORKLOAD_NAME: 'front-1' }));
    assert.deepEqual(clusterHosts(r), ['front.a.svc.cluster.local', 'helper.a.svc.cluster.local', 'mirror.b.svc.cluster.local', 'target.b.svc.cluster.local']);
    assert.ok(!r.endpoints.has('outbound|9090||backend.b.svc.cluster.local'));
    assertEncodes(r);
  });

  it('UPSTREAMS and EGRESS_HOSTS widen the scope', () => {
    const up = prepared.compileFor(proxy({ NAMESPACE: 'c', UPSTREAMS: [{ host: 'backend.b.svc.cluster.local', port: 9090, localPort: 19090 }] }));
    assert.deepEqual(clusterHosts(up), ['backend.b.svc.cluster.local', 'other.c.svc.cluster.local']);
    // Written as an app would look it up in DNS (the pod's search path), the same service; a name
    // that is no service keeps its own host (its listener answers 503 until one appears).
    const routeCluster = (r: { routes: ReadonlyMap<string, unknown> }) => JSON.stringify(r.routes.get('127.0.0.1_19090')).match(/outbound\|9090\|\|[^"]+/)?.[0];
    for (const host of ['backend.b', 'backend.b.svc', 'Backend.B.svc.cluster.local']) {
      const r = prepared.compileFor(proxy({ NAMESPACE: 'c', UPSTREAMS: [{ host, port: 9090, localPort: 19090 }] }));
      assert.deepEqual(clusterHosts(r), ['backend.b.svc.cluster.local', 'other.c.svc.cluster.local'], host);
      assert.equal(routeCluster(r), 'outbound|9090||backend.b.svc.cluster.local', host);
    }
    const unknown = prepared.compileFor(proxy({ NAMESPACE: 'c', UPSTREAMS: [{ host: 'nothing.b', port: 9090, localPort: 19090 }] }));
    assert.equal(routeCluster(unknown), 'outbound|9090||nothing.b');
    const eg = prepared.compileFor(proxy({ NAMESPACE: 'c', EGRESS_HOSTS: ['b/*'] }));
    assert.deepEqual(clusterHosts(eg), ['backend.b.svc.cluster.local', 'mirror.b.svc.cluster.local', 'public.example.com', 'target.b.svc.cluster.local']);
    const one = prepared.compileFor(proxy({ NAMESPACE: 'c', EGRESS_HOSTS: '*/public.example.com' }));
    assert.deepEqual(clusterHosts(one), ['public.example.com']);
  });

  it('exportTo "." hides a ServiceEntry from other namespaces, even with */*', () => {
    const fromA = prepared.compileFor(proxy({ NAMESPACE: 'a', EGRESS_HOSTS: ['*/*'] }));
    assert.ok(clusterHosts(fromA).includes('public.example.com'));
    assert.ok(!clusterHosts(fromA).includes('private.example.com'));
    const fromB = prepared.compileFor(proxy({ NAMESPACE: 'b' }));
    assert.ok(clusterHosts(fromB).includes('private.example.com'));
  });

  it('a VirtualService exported elsewhere does not pull its destinations into namespaces that cannot see it', () => {
    const p = prepareMesh(buildMesh({ yaml: YAML.replace('hosts: [helper]', 'hosts: [helper]\n  exportTo: [b]'), services: SERVICES, workloads: WORKLOADS }), 'r2', OPTIONS);
    const r = p.compileFor(proxy({ NAMESPACE: 'a' }));
    assert.deepEqual(clusterHosts(r), ['front.a.svc.cluster.local', 'helper.a.svc.cluster.local']);
    // The forward proxy routes helper by default: the VirtualService is not visible here.
    const fwd = JSON.stringify(r.routes.get('forward-proxy'));
    assert.match(fwd, /outbound\|8080\|\|helper\.a\.svc\.cluster\.local/);
    assert.doesNotMatch(fwd, /target\.b/);
  });

  it('proxyless clients get every visible host', () => {
    const r = prepared.compileFor(proxy({ NAMESPACE: 'c', TERN_MODE: 'proxyless' }));
    // DNS ServiceEntries are not for grpc-js-xds; every registry service is.
    assert.deepEqual(clusterHosts(r), ['backend.b.svc.cluster.local', 'front.a.svc.cluster.local', 'helper.a.svc.cluster.local', 'mirror.b.svc.cluster.local', 'other.c.svc.cluster.local', 'target.b.svc.cluster.local']);
    assert.ok(r.listeners.has('other:7070') && r.listeners.has('other') && r.listeners.has('front.a:8080') && !r.listeners.has('front:8080'));
  });
});

describe('compile: determinism and identity', () => {
  const mesh = buildMesh({ yaml: YAML, services: SERVICES, workloads: WORKLOADS });
  const nodes: JsonObject[] = [
    { NAMESPACE: 'a', WORKLOAD_NAME: 'front-1', INTERCEPTION: 'REDIRECT' },
    { NAMESPACE: 'a', WORKLOAD_NAME: 'front-1', OUTBOUND_PORT: 15001, UPSTREAMS: [{ host: 'helper', port: 8080, localPort: 18080 }] },
    { NAMESPACE: 'b', TERN_MODE: 'proxyless' },
  ];

  it('same input twice, and the same input in another order, give identical bytes', () => {
    for (const md of nodes) {
      const a = serialize(prepareMesh(mesh, 'r1', OPTIONS).compileFor(proxy(md)));
      const b = serialize(prepareMesh(mesh, 'r1', OPTIONS).compileFor(proxy(md)));
      const shuffledOut = prepareMesh(shuffled(mesh), 'r1', OPTIONS).compileFor(proxy(md));
      assertEncodes(shuffledOut);
      const c = serialize(shuffledOut);
      assert.equal(a, b);
      assert.equal(a, c);
    }
  });

  it('map iteration order is sorted by name', () => {
    const r = prepareMesh(shuffled(mesh), 'r1', OPTIONS).compileFor(proxy(nodes[0]!));
    for (const m of [r.listeners, r.routes, r.clusters, r.endpoints]) assert.deepEqual([...m.keys()], [...m.keys()].sort());
  });

  it('two proxies in one namespace share cluster, endpoint and route objects', () => {
    const p = prepareMesh(mesh, 'r1', OPTIONS);
    const one = p.compileFor(proxy({ NAMESPACE: 'a', WORKLOAD_NAME: 'front-1', INTERCEPTION: 'REDIRECT' }));
    const two = p.compileFor(proxy({ NAMESPACE: 'a', WORKLOAD_NAME: 'front-2', INTERCEPTION: 'REDIRECT' }));
    const name = 'outbound|8080||helper.a.svc.cluster.local';
    assert.ok(one.clusters.get(name));
    assert.equal(one.clusters.get(name), two.clusters.get(name));
    assert.equal(one.endpoints.get(name), two.endpoints.get(name));
    assert.equal(one.routes.get('8080'), two.routes.get('8080'));
    // Their inbound sides differ (own addresses are not shared), yet the inbound cluster is identical.
    assert.equal(one.clusters.get('inbound|8080||'), two.clusters.get('inbound|8080||'));
    // A proxy in another namespace sees the same service cluster too (same DestinationRule: none).
    const three = p.compileFor(proxy({ NAMESPACE: 'b', EGRESS_HOSTS: ['a/*'] }));
    assert.equal(one.clusters.get(name), three.clusters.get(name));
  });

  it('the same proxy asking again gets the very same resources', () => {
    const p = prepareMesh(mesh, 'r1', OPTIONS);
    const md = nodes[1]!;
    const a = p.compileFor(proxy(md));
    const b = p.compileFor(proxy({ ...md }));
    for (const k of ['listeners', 'routes', 'clusters', 'endpoints'] as const) for (const [n, v] of a[k]) assert.equal(b[k].get(n), v, `${k} ${n}`);
  });

  it('a DestinationRule in the client namespace takes precedence, so clusters differ by namespace', () => {
    const yaml = `${YAML}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: helper-from-c, namespace: c }
spec:
  host: helper.a.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: helper, namespace: a }
spec:
  host: helper
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
`;
    const p = prepareMesh(buildMesh({ yaml, services: SERVICES, workloads: WORKLOADS }), 'r3', OPTIONS);
    const name = 'outbound|8080||helper.a.svc.cluster.local';
    const fromC = p.compileFor(proxy({ NAMESPACE: 'c', EGRESS_HOSTS: ['*/*'] })).clusters.get(name);
    const fromB = p.compileFor(proxy({ NAMESPACE: 'b', EGRESS_HOSTS: ['*/*'] })).clusters.get(name);
    assert.equal(fromC?.['lb_policy'], 'RANDOM');
    assert.equal(fromB?.['lb_policy'], 'ROUND_ROBIN');
  });
});

describe('compile: scale', () => {
  it('compiles 2,000 proxies over 500 services, sharing what is identical', () => {
    const services: ServiceSpec[] = [];
    const workloads: WorkloadSpec[] = [];
    for (let i = 0; i < 500; i++) {
      const ns = `ns${i % 10}`;
      services.push({ namespace: ns, name: `svc${i}`, ports: httpPort(8000 + (i % 5)) });
      for (let j = 0; j < 4; j++) workloads.push({ namespace: ns, name: `svc${i}-${j}`, labels: { app: `svc${i}` }, addresses: [`10.${i % 250}.${j}.${(i >> 3) % 250}`] });
    }
    const p = prepareMesh(buildMesh({ services, workloads }), 'big', OPTIONS);
    const seen = new Set<object>();
    for (let k = 0; k < 2000; k++) {
      const w = workloads[k % workloads.length]!;
      const r = p.compileFor(proxy({ NAMESPACE: w.namespace!, WORKLOAD_NAME: w.name, INTERCEPTION: 'REDIRECT' }));
      assert.equal(r.clusters.size, 50 + 3); // the namespace's 50 services + inbound + 2 passthrough
      for (const c of r.clusters.values()) seen.add(c);
    }
    // 500 outbound clusters, one inbound cluster per service (its metadata names the service,
    // shared by the service's 4 workloads) and the 2 passthrough clusters: not 2,000 x 53.
    assert.equal(seen.size, 500 + 500 + 2, `distinct cluster objects: ${seen.size}`);
  });
});
