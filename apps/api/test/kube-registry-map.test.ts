import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  desiredRegistry,
  endpointPortsFromEndpoints,
  endpointPortsFromSlices,
  hasSidecar,
  namespaceInjectionEnabled,
  podReady,
  portProtocol,
  serviceSpecFrom,
  workloadSpecFrom,
  type KPod,
  type KService,
} from '../src/kube/registry-map.ts';

const readyPod = (name: string, labels: Record<string, string>, extra: Partial<KPod['spec']> = {}, ns = 'default'): KPod => ({
  metadata: { name, namespace: ns, labels },
  spec: { containers: [{ name: 'app' }], ...extra },
  status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
});

describe('Kubernetes objects -> registry rows', () => {
  test('port protocols as Istio reads them: appProtocol first, then the name prefix; UDP/SCTP are not meshed', () => {
    const cases: Array<[Parameters<typeof portProtocol>[0], string | undefined]> = [
      [{ name: 'http' }, 'HTTP'],
      [{ name: 'http-web' }, 'HTTP'],
      [{ name: 'HTTP2-x' }, 'HTTP2'],
      [{ name: 'https' }, 'HTTPS'],
      [{ name: 'grpc' }, 'GRPC'],
      [{ name: 'grpc-api' }, 'GRPC'],
      [{ name: 'grpc-web' }, 'HTTP'],
      [{ name: 'grpc-web-x' }, 'HTTP'],
      [{ name: 'tcp-db' }, 'TCP'],
      [{ name: 'tls' }, 'TLS'],
      [{ name: 'mongo' }, 'MONGO'],
      [{ name: 'redis' }, 'TCP'],
      [{ name: 'web' }, 'TCP'],
      [{}, 'TCP'],
      [{ name: 'tcp', appProtocol: 'http' }, 'HTTP'],
      [{ name: 'http', appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
      [{ appProtocol: 'kubernetes.io/wss' }, 'HTTPS'],
      [{ name: 'web', appProtocol: 'something-custom' }, 'TCP'],
      [{ name: 'dns', protocol: 'UDP' }, undefined],
      [{ name: 'http', protocol: 'SCTP' }, undefined],
    ];
    for (const [port, want] of cases) assert.equal(portProtocol(port), want, JSON.stringify(port));
  });

  test('a Service: selector as labels, numeric target ports kept, UDP dropped; ExternalName and UDP-only skipped', () => {
    const svc: KService = {
      metadata: { name: 'reviews', namespace: 'bookinfo', labels: { team: 'x' } },
      spec: {
        selector: { app: 'reviews' },
        ports: [
          { name: 'http', port: 9080, targetPort: 9080 },
          { name: 'grpc', port: 7070, targetPort: 7071 },
          { name: 'named', port: 8000, targetPort: 'web' },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ],
      },
    };
    assert.deepEqual(serviceSpecFrom(svc), {
      namespace: 'bookinfo',
      name: 'reviews',
      labels: { app: 'reviews' },
      ports: [
        { name: 'http', number: 9080, protocol: 'HTTP' },
        { name: 'grpc', number: 7070, protocol: 'GRPC', targetPort: 7071 },
        { name: 'named', number: 8000, protocol: 'TCP' },
      ],
    });
    assert.equal(serviceSpecFrom({ metadata: { name: 'ext', namespace: 'a' }, spec: { type: 'ExternalName', ports: [{ port: 80 }] } }), undefined);
    assert.equal(serviceSpecFrom({ metadata: { name: 'dns', namespace: 'a' }, spec: { ports: [{ port: 53, protocol: 'UDP' }] } }), undefined);
    assert.equal(serviceSpecFrom({ metadata: { name: 'none', namespace: 'a' }, spec: {} }), undefined);
  });

  test('readiness: Running, Ready=True, not terminating', () => {
    assert.equal(podReady(readyPod('a', {})), true);
    assert.equal(podReady({ ...readyPod('a', {}), status: { phase: 'Pending', conditions: [{ type: 'Ready', status: 'True' }] } }), false);
    assert.equal(podReady({ ...readyPod('a', {}), status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] } }), false);
    assert.equal(podReady({ ...readyPod('a', {}), metadata: { name: 'a', namespace: 'd', deletionTimestamp: '2026-01-01T00:00:00Z' } }), false);
  });

  test('the tlsMode label only with a tern-proxy container (or native sidecar); a pod-provided one is dropped', () => {
    const withSidecar = readyPod('a', { app: 'a' }, { containers: [{ name: 'app' }, { name: 'tern-proxy' }] });
    assert.equal(hasSidecar(withSidecar), true);
    assert.equal(workloadSpecFrom(withSidecar, [], new Map())?.labels['security.istio.io/tlsMode'], 'istio');
    const native = readyPod('b', {}, { initContainers: [{ name: 'tern-proxy', restartPolicy: 'Always' }] });
    assert.equal(hasSidecar(native), true);
    assert.equal(hasSidecar(readyPod('c', {}, { initContainers: [{ name: 'tern-proxy' }] })), false, 'a plain init container exits');
    const liar = readyPod('d', { app: 'd', 'security.istio.io/tlsMode': 'istio' });
    assert.deepEqual(workloadSpecFrom(liar, [], new Map())?.labels, { app: 'd' });
    assert.equal(hasSidecar(readyPod('e', {}, { containers: [{ name: 'istio-proxy' }] })), false);
  });

  test('a workload: service account, dual-stack addresses; no workload without an IP', () => {
    const p = readyPod('a', { app: 'a' }, { serviceAccountName: 'sa-a' });
    p.status!.podIPs = [{ ip: '10.0.0.1' }, { ip: 'fd00::1' }];
    const w = workloadSpecFrom(p, [], new Map())!;
    assert.equal(w.serviceAccount, 'sa-a');
    assert.deepEqual(w.addresses, ['10.0.0.1', 'fd00::1']);
    assert.equal(workloadSpecFrom(readyPod('b', {}), [], new Map())?.serviceAccount, 'default');
    const noIp = readyPod('c', {});
    noIp.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
    assert.equal(workloadSpecFrom(noIp, [], new Map()), undefined);
  });

  test('workload ports: endpoint resolution first, then a named container port; only where they differ from the service', () => {
    const svc: KService = {
      metadata: { name: 'web', namespace: 'default' },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http-alt' }, { name: 'tcp', port: 90, targetPort: 9090 }, { name: 'same', port: 70 }] },
    };
    const pod = readyPod('web-1', { app: 'web' }, { containers: [{ name: 'app', ports: [{ name: 'http-alt', containerPort: 8080 }] }] });
    assert.deepEqual(workloadSpecFrom(pod, [svc], new Map())?.ports, { '80': 8080 });
    const slices = endpointPortsFromSlices([
      {
        metadata: { name: 'web-x', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
        endpoints: [{ addresses: ['10.0.0.1'], targetRef: { kind: 'Pod', name: 'web-1' } }],
        ports: [{ name: 'http', port: 8181 }, { name: 'tcp', port: 9191 }],
      },
    ]);
    assert.deepEqual(workloadSpecFrom(pod, [svc], slices)?.ports, { '80': 8181, '90': 9191 });
    const eps = endpointPortsFromEndpoints([
      { metadata: { name: 'web', namespace: 'default' }, subsets: [{ notReadyAddresses: [{ ip: '10.0.0.1', targetRef: { kind: 'Pod', name: 'web-1' } }], ports: [{ name: 'http', port: 8282 }] }] },
    ]);
    assert.deepEqual(workloadSpecFrom(pod, [svc], eps)?.ports, { '80': 8282 });
    // Not selected (other namespace, other labels, empty selector): no mapping.
    const other: KService = { metadata: { name: 'web', namespace: 'other' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 81 }] } };
    const open: KService = { metadata: { name: 'all', namespace: 'default' }, spec: { ports: [{ port: 80, targetPort: 81 }] } };
    assert.deepEqual(workloadSpecFrom(readyPod('web-2', { app: 'web' }), [other, open], new Map())?.ports, {});
  });

  test('desired registry: sorted, not-ready pods left out, namespace selector', () => {
    const state = {
      services: [
        { metadata: { name: 'b', namespace: 'in' }, spec: { selector: { app: 'b' }, ports: [{ port: 80 }] } },
        { metadata: { name: 'a', namespace: 'out' }, spec: { selector: { app: 'a' }, ports: [{ port: 80 }] } },
      ],
      pods: [readyPod('p2', { app: 'b' }, {}, 'in'), readyPod('p1', { app: 'b' }, {}, 'in'), readyPod('q', { app: 'a' }, {}, 'out'), { ...readyPod('r', {}, {}, 'in'), status: { phase: 'Pending' } }],
      namespaces: [{ metadata: { name: 'in', labels: { mesh: 'on' } } }, { metadata: { name: 'out' } }],
      endpointSlices: [],
    };
    const all = desiredRegistry(state);
    assert.deepEqual(all.services.map((s) => `${s.namespace}/${s.name}`), ['in/b', 'out/a']);
    assert.deepEqual(all.workloads.map((w) => `${w.namespace}/${w.name}`), ['in/p1', 'in/p2', 'out/q']);
    const scoped = desiredRegistry({ ...state, namespaceSelector: { mesh: 'on' } });
    assert.deepEqual(scoped.services.map((s) => s.name), ['b']);
    assert.deepEqual(scoped.workloads.map((w) => w.name), ['p1', 'p2']);
  });

  test('namespace injection label, as the injector reads it', () => {
    assert.equal(namespaceInjectionEnabled({ metadata: { name: 'a', labels: { 'istio-injection': 'enabled' } } }), true);
    assert.equal(namespaceInjectionEnabled({ metadata: { name: 'a', labels: { 'tern-injection': 'enabled' } } }), true);
    assert.equal(namespaceInjectionEnabled({ metadata: { name: 'a', labels: { 'istio-injection': 'disabled' } } }), false);
    assert.equal(namespaceInjectionEnabled({ metadata: { name: 'a' } }), false);
  });
});
