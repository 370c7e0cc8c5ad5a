import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '@tern/xds';
import { prepareMesh } from '../src/compile/index.ts';
import { AuthzIndex, type AuthzPolicy } from '../src/compile/authz.ts';
import { buildMesh, OPTIONS, proxy, type ServiceSpec, type WorkloadSpec } from './compile-fixtures.ts';

// Which AuthorizationPolicies apply to a sidecar workload (Istio's ListAuthorizationPolicies plus
// its sidecar attachment rules): namespace-wide, selector, root namespace, targetRefs, dry-run.

const ap = (name: string, ns: string, body: string, extra = '') => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: ${ns}${extra} }\nspec:\n${body}\n---\n`;

const SERVICES: ServiceSpec[] = [{ name: 'api', ports: [{ name: 'http', number: 8080, protocol: 'HTTP' }] }];
const WORKLOADS: WorkloadSpec[] = [{ name: 'api-1', labels: { app: 'api', version: 'v1' }, addresses: ['10.1.0.2'], serviceAccount: 'api' }];
const API_LOCAL = { NAMESPACE: 'default', WORKLOAD_NAME: 'api-1', OUTBOUND_PORT: 0, APP_PORTS: { '8080': 18080 } };

function inboundHcm(listeners: ReadonlyMap<string, JsonObject>): JsonObject {
  const l = listeners.get('10.1.0.2_8080');
  assert.ok(l, 'the inbound listener');
  const chain = (l['filter_chains'] as JsonObject[])[0]!;
  return (chain['filters'] as JsonObject[])[0]!['typed_config'] as JsonObject;
}

function index(yaml: string, root = 'istio-system'): AuthzIndex {
  const mesh = buildMesh({ yaml });
  return new AuthzIndex(mesh, root);
}
const names = (ps: AuthzPolicy[]) => ps.map((p) => `${p.namespace}/${p.name}`);

describe('authz: which policies apply to a workload', () => {
  const yaml =
    ap('ns-wide', 'default', `  action: DENY\n  rules: [{}]`) +
    ap('api-only', 'default', `  selector: { matchLabels: { app: api } }\n  rules: [{}]`) +
    ap('mesh-wide', 'istio-system', `  action: AUDIT\n  rules: [{}]`) +
    ap('mesh-api', 'istio-system', `  selector: { matchLabels: { app: api } }\n  action: DENY\n  rules: [{}]`) +
    ap('other-ns', 'other', `  rules: [{}]`) +
    ap('gateway', 'default', `  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: gw }]\n  rules: [{}]`) +
    ap('dry', 'default', `  action: DENY\n  rules: [{}]`, ', annotations: { istio.io/dry-run: "true" }');

  it('root namespace first, then the workload namespace; selectors match labels; targetRef and dry-run never attach', () => {
    const idx = index(yaml);
    assert.deepEqual(names(idx.applicable('default', { app: 'api' })).sort(), ['default/api-only', 'default/ns-wide', 'istio-system/mesh-api', 'istio-system/mesh-wide']);
    assert.deepEqual(names(idx.applicable('default', { app: 'web' })).sort(), ['default/ns-wide', 'istio-system/mesh-wide']);
    // A root-namespace policy with a selector reaches matching workloads in every namespace.
    assert.deepEqual(names(idx.applicable('other', { app: 'api' })).sort(), ['istio-system/mesh-api', 'istio-system/mesh-wide', 'other/other-ns']);
    assert.deepEqual(names(idx.applicable('third', {})), ['istio-system/mesh-wide']);
  });

  it('honours another root namespace', () => {
    const idx = index(yaml, 'mesh-root');
    assert.deepEqual(names(idx.applicable('third', { app: 'api' })), []);
    const prepared = prepareMesh(buildMesh({ yaml: yaml + ap('root', 'mesh-root', `  action: DENY\n  rules: [{}]`), services: SERVICES, workloads: WORKLOADS }), '1', { ...OPTIONS, rootNamespace: 'mesh-root' });
    const hcm = inboundHcm(prepared.compileFor(proxy(API_LOCAL)).listeners);
    const deny = ((hcm['http_filters'] as JsonObject[])[0]!['typed_config'] as JsonObject)['rules'] as JsonObject;
    assert.deepEqual(Object.keys(deny['policies'] as JsonObject).sort(), ['ns[default]-policy[ns-wide]-rule[0]', 'ns[mesh-root]-policy[root]-rule[0]']);
  });

  it('a selector without labels selects every workload of its namespace; a missing selector likewise', () => {
    const idx = index(ap('empty-selector', 'default', `  selector: {}\n  rules: [{}]`) + ap('none', 'default', `  rules: [{}]`));
    assert.deepEqual(names(idx.applicable('default', {})).sort(), ['default/empty-selector', 'default/none']);
    assert.deepEqual(names(idx.applicable('other', {})), []);
  });
});
