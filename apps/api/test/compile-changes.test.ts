import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { prepareMesh } from '../src/compile/index.ts';
import type { MeshSnapshot, ServiceRow, WorkloadRow } from '../src/store/snapshot.ts';
import { buildMesh, HELPER_VS, injected, httpPort, OPTIONS, proxy, resourceRows, SCOPE_SERVICES, scopeWorkloads, serialize, type ServiceSpec, type WorkloadSpec } from './compile-fixtures.ts';

// PreparedMesh.changedSince: the ADS server compiles and pushes only for the proxies it names. It
// may name too many, never too few: whenever a proxy's compiled output differs between two
// revisions, it must be named — including changes in another namespace that the proxy reaches
// through EGRESS_HOSTS or through a VirtualService destination.

const SERVICES = SCOPE_SERVICES;
const WORKLOADS = injected(scopeWorkloads());

const PROXIES = {
  /** Namespace a, default egress: reaches b's target and mirror only through helper's VirtualService. */
  viaVs: proxy({ NAMESPACE: 'a', WORKLOAD_NAME: 'front-1' }),
  /** Namespace c, reaches namespace b through EGRESS_HOSTS. */
  viaEgress: proxy({ NAMESPACE: 'c', WORKLOAD_NAME: 'other-1', EGRESS_HOSTS: ['./*', 'b/*'] }),
  /** Namespace c, default egress: sees only c. */
  local: proxy({ NAMESPACE: 'c', WORKLOAD_NAME: 'other-1' }),
  redirect: proxy({ NAMESPACE: 'a', WORKLOAD_NAME: 'front-1', INTERCEPTION: 'REDIRECT' }),
  proxyless: proxy({ NAMESPACE: 'a', TERN_MODE: 'proxyless' }),
  labelsOnly: proxy({ NAMESPACE: 'b', LABELS: { app: 'target' } }),
  /** Namespace b, target's labels, an inbound HTTP listener (APP_PORTS differs from the port): where RBAC filters land. */
  inboundB: proxy({ NAMESPACE: 'b', LABELS: { app: 'target' }, APP_PORTS: { '9090': 19090 } }),
  /** Namespace b, backend's workload, inbound HTTP listener. */
  backend: proxy({ NAMESPACE: 'b', WORKLOAD_NAME: 'backend-1', APP_PORTS: { '9090': 19090 } }),
};
type Name = keyof typeof PROXIES;

const base = () => buildMesh({ yaml: HELPER_VS, services: SERVICES, workloads: WORKLOADS });

/** A new revision as the snapshot follower makes it: untouched rows stay the same objects. */
function edit(mesh: MeshSnapshot, fn: (next: MeshSnapshot) => void): MeshSnapshot {
  const next = { resources: new Map(mesh.resources), services: new Map(mesh.services), workloads: new Map(mesh.workloads) };
  fn(next);
  return next;
}
const setService = (m: MeshSnapshot, key: string, patch: Partial<ServiceRow>) => m.services.set(key, { ...m.services.get(key)!, ...patch });
const setWorkload = (m: MeshSnapshot, key: string, patch: Partial<WorkloadRow>) => m.workloads.set(key, { ...m.workloads.get(key)!, ...patch });
const addYaml = (m: MeshSnapshot, yaml: string) => {
  for (const r of resourceRows(yaml)) m.resources.set(`${r.kind}/${r.namespace}/${r.name}`, r);
};

const authz = (name: string, ns: string, body: string) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${ns} }
spec:
${body}
`;
const AP_TARGET = authz('target-only', 'b', '  selector: { matchLabels: { app: target } }\n  action: DENY\n  rules: [{ to: [{ operation: { paths: [/admin] } }] }]');

const peerAuth = (name: string, ns: string, body: string) => `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${ns} }
spec:
${body}
`;
const NOT_B: Name[] = ['local', 'viaEgress', 'viaVs', 'redirect', 'proxyless'];

const CHANGES: { name: string; mtls?: boolean; setup?: (m: MeshSnapshot) => void; apply: (m: MeshSnapshot) => void; affects: Name[]; spares: Name[] }[] = [
  { name: 'ports of a VirtualService destination in another namespace', apply: (m) => setService(m, 'b/target', { ports: httpPort(9091) }), affects: ['viaVs', 'viaEgress', 'redirect', 'proxyless', 'labelsOnly'], spares: ['local'] },
  { name: 'endpoints of a mirror destination in another namespace', apply: (m) => m.workloads.set('b/mirror-1', { namespace: 'b', name: 'mirror-1', labels: { app: 'mirror' }, serviceAccount: 'default', addresses: ['10.0.2.9'], ports: {}, source: 'local', resourceVersion: 2n }), affects: ['viaVs', 'viaEgress'], spares: ['local'] },
  { name: 'a workload address behind a reached service', apply: (m) => setWorkload(m, 'b/target-1', { addresses: ['10.0.2.22'] }), affects: ['viaVs', 'viaEgress', 'labelsOnly'], spares: ['local'] },
  {
    name: 'a DestinationRule (consistent hash) for a VirtualService destination',
    apply: (m) => addYaml(m, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: target, namespace: b }
spec:
  host: target.b.svc.cluster.local
  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }
`),
    affects: ['viaVs', 'viaEgress'],
    spares: ['local'],
  },
  {
    name: 'a VirtualService for a host reached through EGRESS_HOSTS',
    apply: (m) => addYaml(m, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: backend, namespace: b }
spec:
  hosts: [backend]
  http: [{ timeout: 3s, route: [{ destination: { host: backend } }] }]
`),
    affects: ['viaEgress'],
    spares: ['local', 'viaVs'],
  },
  {
    name: 'a VirtualService now routing to a service in a third namespace',
    apply: (m) => addYaml(m, HELPER_VS.replace('target.b.svc.cluster.local', 'other.c.svc.cluster.local')),
    affects: ['viaVs', 'redirect', 'proxyless'],
    spares: ['local', 'viaEgress'],
  },
  { name: "the proxy's own workload", apply: (m) => setWorkload(m, 'a/front-1', { addresses: ['10.0.1.11'] }), affects: ['viaVs', 'redirect'], spares: ['local', 'viaEgress'] },
  { name: 'a service in the local namespace', apply: (m) => setService(m, 'c/other', { ports: httpPort(7071) }), affects: ['local', 'viaEgress'], spares: ['labelsOnly'] },
  { name: 'a new service reached through EGRESS_HOSTS', apply: (m) => m.services.set('b/fresh', { namespace: 'b', name: 'fresh', hosts: [], ports: httpPort(9090), labels: {}, source: 'local', resourceVersion: 2n }), affects: ['viaEgress', 'labelsOnly'], spares: ['local', 'viaVs'] },
  { name: 'a service removed', apply: (m) => m.services.delete('b/mirror'), affects: ['viaVs', 'viaEgress'], spares: ['local'] },
  { name: 'a row re-read with the same content', apply: (m) => setService(m, 'b/backend', {}), affects: [], spares: ['local', 'viaVs'] },
  // AuthorizationPolicies: exactly the proxies whose workloads a changed policy selects, before or after.
  { name: 'an AuthorizationPolicy selecting one workload', apply: (m) => addYaml(m, AP_TARGET), affects: ['inboundB'], spares: ['backend', 'local', 'viaEgress', 'viaVs', 'redirect', 'proxyless'] },
  {
    name: 'an AuthorizationPolicy edited',
    setup: (m) => addYaml(m, AP_TARGET),
    apply: (m) => addYaml(m, AP_TARGET.replace('/admin', '/debug')),
    affects: ['inboundB'],
    spares: ['backend', 'local', 'viaEgress', 'viaVs', 'redirect', 'proxyless'],
  },
  {
    name: "an AuthorizationPolicy's selector moved to another workload (both flagged)",
    setup: (m) => addYaml(m, AP_TARGET),
    apply: (m) => addYaml(m, AP_TARGET.replace('app: target', 'app: backend')),
    affects: ['inboundB', 'backend'],
    spares: ['local', 'viaEgress', 'viaVs', 'redirect', 'proxyless'],
  },
  { name: 'an AuthorizationPolicy removed', setup: (m) => addYaml(m, AP_TARGET), apply: (m) => m.resources.delete('AuthorizationPolicy/b/target-only'), affects: ['inboundB'], spares: ['backend', 'local', 'viaVs', 'redirect'] },
  { name: 'a namespace-wide AuthorizationPolicy', apply: (m) => addYaml(m, authz('ns-wide', 'b', '  action: AUDIT\n  rules: [{}]')), affects: ['inboundB', 'backend'], spares: ['local', 'viaEgress', 'viaVs', 'redirect', 'proxyless'] },
  { name: 'a mesh-wide AuthorizationPolicy in the root namespace', apply: (m) => addYaml(m, authz('mesh', 'istio-system', '  action: DENY\n  rules: [{ from: [{ source: { notNamespaces: [a, b, c] } }] }]')), affects: ['inboundB', 'backend', 'redirect'], spares: ['proxyless'] },
  { name: 'an AuthorizationPolicy selecting no workload', apply: (m) => addYaml(m, authz('nobody', 'b', '  selector: { matchLabels: { app: nobody } }\n  rules: [{}]')), affects: [], spares: ['inboundB', 'backend', 'local', 'viaEgress', 'viaVs', 'redirect', 'proxyless', 'labelsOnly'] },
  // PeerAuthentication (mtls on): the proxies whose effective inbound mode changes; a move in or out
  // of DISABLE also changes the endpoints' tlsMode, so the clients reaching those services too.
  { name: 'a namespace-wide STRICT PeerAuthentication', mtls: true, apply: (m) => addYaml(m, peerAuth('default', 'b', '  mtls: { mode: STRICT }')), affects: ['inboundB', 'backend'], spares: NOT_B },
  { name: 'a mesh-wide PeerAuthentication in the root namespace', mtls: true, apply: (m) => addYaml(m, peerAuth('default', 'istio-system', '  mtls: { mode: STRICT }')), affects: ['inboundB', 'backend', 'redirect'], spares: ['proxyless'] },
  { name: 'a workload PeerAuthentication (STRICT)', mtls: true, apply: (m) => addYaml(m, peerAuth('target', 'b', '  selector: { matchLabels: { app: target } }\n  mtls: { mode: STRICT }')), affects: ['inboundB'], spares: ['backend', ...NOT_B] },
  {
    name: "a workload PeerAuthentication DISABLE (its inbound, and its endpoints' tlsMode for clients)",
    mtls: true,
    apply: (m) => addYaml(m, peerAuth('target', 'b', '  selector: { matchLabels: { app: target } }\n  mtls: { mode: DISABLE }')),
    affects: ['inboundB', 'viaVs', 'viaEgress', 'labelsOnly', 'backend', 'proxyless'],
    spares: ['local'],
  },
  {
    name: 'a PeerAuthentication edited from STRICT to DISABLE',
    mtls: true,
    setup: (m) => addYaml(m, peerAuth('default', 'b', '  mtls: { mode: STRICT }')),
    apply: (m) => addYaml(m, peerAuth('default', 'b', '  mtls: { mode: DISABLE }')),
    affects: ['inboundB', 'backend', 'viaVs', 'viaEgress', 'labelsOnly'],
    spares: ['local'],
  },
  { name: 'a PeerAuthentication that changes no effective mode (explicit PERMISSIVE)', mtls: true, apply: (m) => addYaml(m, peerAuth('default', 'b', '  mtls: { mode: PERMISSIVE }')), affects: [], spares: ['inboundB', 'backend', 'labelsOnly', ...NOT_B] },
  { name: 'a PeerAuthentication with mtls off', apply: (m) => addYaml(m, peerAuth('default', 'b', '  mtls: { mode: STRICT }')), affects: [], spares: ['inboundB', 'backend', 'labelsOnly', ...NOT_B] },
  // The SAN check of every cluster of a service lists its workloads' identities.
  { name: "a workload's service account (SAN lists of its services' clusters)", mtls: true, apply: (m) => setWorkload(m, 'b/target-1', { serviceAccount: 'target-sa' }), affects: ['viaVs', 'viaEgress', 'labelsOnly', 'backend'], spares: ['local'] },
  { name: 'an AuthorizationPolicy with targetRefs (gateways only)', apply: (m) => addYaml(m, authz('gw', 'b', '  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: gw }]\n  rules: [{}]')), affects: [], spares: ['inboundB', 'backend', 'labelsOnly'] },
];

describe('compile: changedSince (which proxies a change reaches)', () => {
  for (const change of CHANGES) {
    it(change.name, () => {
      const before = change.setup ? edit(base(), change.setup) : base();
      const after = edit(before, change.apply);
      const options = change.mtls ? { ...OPTIONS, mtls: true } : OPTIONS;
      const prev = prepareMesh(before, '1', options);
      const next = prepareMesh(after, '2', options);
      const affects = next.changedSince!(prev);
      for (const [name, p] of Object.entries(PROXIES) as [Name, (typeof PROXIES)[Name]][]) {
        const differs = serialize(prev.compileFor(p)) !== serialize(next.compileFor(p));
        const flagged = affects(p);
        // Soundness: never skip a proxy whose output changed.
        if (differs) assert.equal(flagged, true, `${name}: output changed but the proxy was not flagged`);
        if (change.affects.includes(name)) assert.equal(differs, true, `${name}: expected this change to reach it`);
        // Precision: the point of scoping.
        if (change.spares.includes(name)) assert.equal(flagged, false, `${name}: flagged for a change outside its scope`);
      }
    });
  }

  it('flags everyone when the previous mesh was prepared with other options', () => {
    const prev = prepareMesh(base(), '1', { ...OPTIONS });
    const next = prepareMesh(base(), '2', { ...OPTIONS });
    assert.equal(next.changedSince!(prev)(PROXIES.local), true);
  });
});
