import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeJson, EXTENSION_TYPE_URL, normalizeJson, type JsonObject } from '@tern/xds';
import type { AuthorizationRule } from '@tern/shared';
import { prepareMesh } from '../src/compile/index.ts';
import { AuthzIndex, cidrRange, rbacHttpFilters, RBAC_FILTER_NAME, translateRule } from '../src/compile/authz.ts';
import { assertEncodes, assertGolden, buildMesh, OPTIONS, proxy, serialize, shuffled, type ServiceSpec, type WorkloadSpec } from './compile-fixtures.ts';

// AuthorizationPolicy -> Envoy RBAC HTTP filters on inbound HCMs (compile/authz.ts), checked
// against istiod's translation (pilot/pkg/security/authz): golden files for whole proxies, then the
// translation field by field, action by action, and which policies apply to which workload.

const TD = { trustDomain: 'cluster.local' };

const ap = (name: string, ns: string, body: string, extra = '') => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: ${ns}${extra} }\nspec:\n${body}\n---\n`;

const SERVICES: ServiceSpec[] = [
  { name: 'api', ports: [{ name: 'http', number: 8080, protocol: 'HTTP' }] },
  { name: 'db', ports: [{ name: 'tcp', number: 5432, protocol: 'TCP' }] },
];
const WORKLOADS: WorkloadSpec[] = [
  { name: 'api-1', labels: { app: 'api', version: 'v1' }, addresses: ['10.1.0.2'], serviceAccount: 'api' },
  { name: 'db-1', labels: { app: 'db' }, addresses: ['10.1.0.3'] },
];
/** Local mode: the inbound listener 10.1.0.2:8080 in front of the app on 18080. */
const API_LOCAL = { NAMESPACE: 'default', WORKLOAD_NAME: 'api-1', OUTBOUND_PORT: 0, APP_PORTS: { '8080': 18080 } };
const API_REDIRECT = { NAMESPACE: 'default', WORKLOAD_NAME: 'api-1', INTERCEPTION: 'REDIRECT' };

/** An RBAC filter config (the Any's content, "@type" aside) must encode as envoy.extensions.filters.http.rbac.v3.RBAC. */
function encodeRbac(tc: JsonObject): Buffer {
  const { ['@type']: type, ...body } = tc;
  if (type !== undefined) assert.equal(type, EXTENSION_TYPE_URL.httpRbac);
  return Buffer.from(encodeJson(EXTENSION_TYPE_URL.httpRbac, body));
}

interface Case {
  name: string;
  yaml: string;
  node: JsonObject;
  /** Filters expected on the inbound HCM, in order (RBAC actions, then the router). */
  chain: string[];
}

const CASES: Case[] = [
  {
    name: 'authz-allow-principals-paths-methods',
    yaml: ap(
      'api-readers',
      'default',
      `  selector: { matchLabels: { app: api } }
  action: ALLOW
  rules:
  - from:
    - source: { principals: [cluster.local/ns/default/sa/web, "*/sa/admin"] }
    to:
    - operation: { methods: [GET, HEAD], paths: [/api/*, /healthz, "*.json"] }`,
    ),
    node: API_LOCAL,
    chain: ['ALLOW', 'router'],
  },
  {
    name: 'authz-deny-notnamespaces-ipblocks',
    yaml: ap(
      'deny-outsiders',
      'default',
      `  action: DENY
  rules:
  - from:
    - source: { notNamespaces: [default, istio-system] }
  - from:
    - source: { ipBlocks: [10.9.0.0/16, 192.168.1.7], notIpBlocks: [10.9.1.0/24] }`,
    ),
    node: API_LOCAL,
    chain: ['DENY', 'router'],
  },
  {
    name: 'authz-when-headers-source-ip',
    yaml: ap(
      'tenant-header',
      'default',
      `  selector: { matchLabels: { app: api } }
  rules:
  - when:
    - key: request.headers[x-tenant]
      values: [acme, "beta-*"]
    - key: source.ip
      notValues: [10.66.0.0/16]`,
    ),
    node: API_LOCAL,
    chain: ['ALLOW', 'router'],
  },
  {
    name: 'authz-mesh-deny-workload-allow',
    yaml:
      ap('no-admin', 'istio-system', `  action: DENY\n  rules:\n  - to:\n    - operation: { paths: ["/admin*"] }`) +
      ap('api-from-web', 'default', `  selector: { matchLabels: { app: api } }\n  rules:\n  - from:\n    - source: { serviceAccounts: [web, other/batch] }`) +
      // Neither applies to api-1: another namespace, another selector.
      ap('elsewhere', 'other', `  action: DENY\n  rules: [{}]`) +
      ap('db-only', 'default', `  selector: { matchLabels: { app: db } }\n  action: DENY\n  rules: [{}]`),
    node: API_REDIRECT,
    chain: ['DENY', 'ALLOW', 'router'],
  },
  {
    name: 'authz-allow-nothing',
    yaml: ap('allow-nothing', 'default', `  selector: { matchLabels: { app: api } }\n  action: ALLOW`),
    node: API_LOCAL,
    chain: ['ALLOW', 'router'],
  },
  {
    name: 'authz-audit',
    yaml: ap('audit-deletes', 'default', `  action: AUDIT\n  rules:\n  - to:\n    - operation: { methods: [DELETE] }`),
    node: API_LOCAL,
    chain: ['LOG', 'router'],
  },
];

/** The HCMs of a proxy's inbound HTTP listeners and chains. */
function inboundHcms(listeners: ReadonlyMap<string, JsonObject>): JsonObject[] {
  const out: JsonObject[] = [];
  for (const l of listeners.values()) {
    if (l['traffic_direction'] !== 'INBOUND') continue;
    for (const chain of l['filter_chains'] as JsonObject[]) {
      for (const f of (chain['filters'] as JsonObject[]) ?? []) {
        if (f['name'] === 'envoy.filters.network.http_connection_manager') out.push(f['typed_config'] as JsonObject);
      }
    }
  }
  return out;
}

const chainOf = (h: JsonObject) =>
  (h['http_filters'] as JsonObject[]).map((f) => (f['name'] === RBAC_FILTER_NAME ? String(((f['typed_config'] as JsonObject)['rules'] as JsonObject)['action']) : String(f['name']).replace('envoy.filters.http.', '')));

describe('compile: AuthorizationPolicy golden output', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const mesh = buildMesh({ yaml: c.yaml, services: SERVICES, workloads: WORKLOADS });
      const out = prepareMesh(mesh, '1', OPTIONS).compileFor(proxy(c.node));
      const hcms = inboundHcms(out.listeners);
      assert.equal(hcms.length, 1, 'one inbound HTTP port');
      assert.deepEqual(chainOf(hcms[0]!), c.chain);
      assert.equal(hcms[0]!['normalize_path'], true);
      // Each RBAC config encodes as its own type too (what the proxy unpacks from the Any).
      for (const f of hcms[0]!['http_filters'] as JsonObject[]) if (f['name'] === RBAC_FILTER_NAME) encodeRbac(f['typed_config'] as JsonObject);
      assertEncodes(out);
      assertGolden(c.name, out);
      // Determinism: the same mesh in another order compiles to the same bytes.
      assert.equal(serialize(prepareMesh(shuffled(mesh), '1', OPTIONS).compileFor(proxy(c.node))), serialize(out));
    });
  }

  it('leaves outbound HCMs, TCP ports and policy-free meshes as they were', () => {
    const yaml = ap('deny-all', 'default', `  action: DENY\n  rules: [{}]`);
    const withPolicy = prepareMesh(buildMesh({ yaml, services: SERVICES, workloads: WORKLOADS }), '1', OPTIONS);
    const without = prepareMesh(buildMesh({ services: SERVICES, workloads: WORKLOADS }), '1', OPTIONS);
    const client = proxy({ NAMESPACE: 'default', LABELS: { app: 'client' }, OUTBOUND_PORT: 15001 });
    assert.equal(serialize(withPolicy.compileFor(client)), serialize(without.compileFor(client)), 'no inbound port: nothing changes');
    const api = without.compileFor(proxy(API_LOCAL));
    assert.deepEqual(chainOf(inboundHcms(api.listeners)[0]!), ['router']);
    assert.equal(inboundHcms(api.listeners)[0]!['normalize_path'], undefined);
    // db's inbound port is TCP: the HTTP filter has nowhere to go.
    const db = withPolicy.compileFor(proxy({ NAMESPACE: 'default', WORKLOAD_NAME: 'db-1', OUTBOUND_PORT: 0, APP_PORTS: { '5432': 15432 } }));
    assert.equal(serialize(db), serialize(without.compileFor(proxy({ NAMESPACE: 'default', WORKLOAD_NAME: 'db-1', OUTBOUND_PORT: 0, APP_PORTS: { '5432': 15432 } }))));
    const proxyless = proxy({ NAMESPACE: 'default', TERN_MODE: 'proxyless' });
    assert.equal(serialize(withPolicy.compileFor(proxyless)), serialize(without.compileFor(proxyless)));
  });

  it('shares one filter list between workloads under the same policies', () => {
    const yaml = ap('deny-all', 'default', `  action: DENY\n  rules: [{}]`);
    const workloads = [...WORKLOADS, { name: 'api-2', labels: { app: 'api', version: 'v2' }, addresses: ['10.1.0.9'] }];
    const prepared = prepareMesh(buildMesh({ yaml, services: SERVICES, workloads }), '1', OPTIONS);
    const a = inboundHcms(prepared.compileFor(proxy(API_LOCAL)).listeners)[0]!;
    const b = inboundHcms(prepared.compileFor(proxy({ ...API_LOCAL, WORKLOAD_NAME: 'api-2' })).listeners)[0]!;
    assert.equal((a['http_filters'] as JsonObject[])[0], (b['http_filters'] as JsonObject[])[0]);
  });
});

// ---- translation matrix ----------------------------------------------------------------------

const policyOf = (rule: AuthorizationRule, action: 'ALLOW' | 'DENY' | 'LOG' = 'ALLOW', ns = 'default', opts = TD): JsonObject => {
  const r = translateRule(rule, action, ns, opts);
  assert.ok('policy' in r, `rule skipped: ${'skipped' in r ? r.skipped : ''}`);
  // Every translated policy is a valid envoy.config.rbac.v3.Policy.
  encodeRbac({ rules: { action, policies: { p: r.policy } } });
  return r.policy;
};
/** The AND list of the only principal / permission. */
const ids = (p: JsonObject) => (((p['principals'] as JsonObject[])[0]!['and_ids'] as JsonObject)['ids'] as JsonObject[]);
const perms = (p: JsonObject) => (((p['permissions'] as JsonObject[])[0]!['and_rules'] as JsonObject)['rules'] as JsonObject[]);
const ANY_ID = [{ any: true }];
const ANY_RULE = [{ any: true }];
const auth = (m: JsonObject) => ({ authenticated: { principal_name: m } });

describe('authz: source fields (principals)', () => {
  it('principals / notPrincipals: spiffe:// prefix with exact, prefix*, *suffix, *', () => {
    const p = policyOf({ from: [{ source: { principals: ['cluster.local/ns/a/sa/b', 'cluster.local/ns/a/*', '*/sa/c', '*'], notPrincipals: ['cluster.local/ns/a/sa/x'] } }] });
    assert.deepEqual(ids(p), [
      {
        or_ids: {
          ids: [
            auth({ exact: 'spiffe://cluster.local/ns/a/sa/b' }),
            auth({ prefix: 'spiffe://cluster.local/ns/a/' }),
            auth({ safe_regex: { regex: 'spiffe://.*/sa/c' } }),
            auth({ safe_regex: { regex: '.+' } }),
          ],
        },
      },
      { not_id: { or_ids: { ids: [auth({ exact: 'spiffe://cluster.local/ns/a/sa/x' })] } } },
    ]);
    assert.deepEqual(perms(p), ANY_RULE);
  });

  it('principals naming cluster.local follow the mesh trust domain', () => {
    const p = policyOf({ from: [{ source: { principals: ['cluster.local/ns/a/sa/b', 'other.td/ns/a/sa/b', '*/sa/c'] } }] }, 'ALLOW', 'default', { trustDomain: 'example.org' });
    assert.deepEqual(ids(p), [{ or_ids: { ids: [auth({ exact: 'spiffe://example.org/ns/a/sa/b' }), auth({ exact: 'spiffe://other.td/ns/a/sa/b' }), auth({ safe_regex: { regex: 'spiffe://.*/sa/c' } })] } }]);
  });

  it('namespaces / notNamespaces: the principal regex .*/ns/<ns>/.*', () => {
    const p = policyOf({ from: [{ source: { namespaces: ['prod', 'team-*'], notNamespaces: ['kube-system'] } }] });
    assert.deepEqual(ids(p), [
      { or_ids: { ids: [auth({ safe_regex: { regex: '.*/ns/prod/.*' } }), auth({ safe_regex: { regex: '.*/ns/team-.*/.*' } })] } },
      { not_id: { or_ids: { ids: [auth({ safe_regex: { regex: '.*/ns/kube-system/.*' } })] } } },
    ]);
  });

  it("serviceAccounts / notServiceAccounts: <ns>/<sa>, or <sa> in the policy's namespace", () => {
    const p = policyOf({ from: [{ source: { serviceAccounts: ['web', 'other/batch'], notServiceAccounts: ['legacy'] } }] }, 'ALLOW', 'shop');
    assert.deepEqual(ids(p), [
      { or_ids: { ids: [auth({ safe_regex: { regex: 'spiffe://.+/ns/shop/(.+/|)sa/web(/.+)?' } }), auth({ safe_regex: { regex: 'spiffe://.+/ns/other/(.+/|)sa/batch(/.+)?' } })] } },
      { not_id: { or_ids: { ids: [auth({ safe_regex: { regex: 'spiffe://.+/ns/shop/(.+/|)sa/legacy(/.+)?' } })] } } },
    ]);
  });

  it('ipBlocks / notIpBlocks: direct_remote_ip; remoteIpBlocks / notRemoteIpBlocks: remote_ip (masked, /32 and /128 for addresses)', () => {
    const p = policyOf({ from: [{ source: { ipBlocks: ['10.1.2.3', '10.9.8.7/16'], notIpBlocks: ['2001:db8::1'], remoteIpBlocks: ['203.0.113.0/24'], notRemoteIpBlocks: ['2001:DB8:0:0:1::5/64'] } }] });
    assert.deepEqual(ids(p), [
      { or_ids: { ids: [{ remote_ip: { address_prefix: '203.0.113.0', prefix_len: 24 } }] } },
      { not_id: { or_ids: { ids: [{ remote_ip: { address_prefix: '2001:db8::', prefix_len: 64 } }] } } },
      { or_ids: { ids: [{ direct_remote_ip: { address_prefix: '10.1.2.3', prefix_len: 32 } }, { direct_remote_ip: { address_prefix: '10.9.0.0', prefix_len: 16 } }] } },
      { not_id: { or_ids: { ids: [{ direct_remote_ip: { address_prefix: '2001:db8::1', prefix_len: 128 } }] } } },
    ]);
  });

  it('cidrRange formats IPv6 canonically and rejects garbage', () => {
    assert.deepEqual(cidrRange('::ffff:10.0.0.1'), { address_prefix: '::ffff:a00:1', prefix_len: 128 });
    assert.deepEqual(cidrRange('fe80:0:0:1:0:0:0:0/64'), { address_prefix: 'fe80:0:0:1::', prefix_len: 64 });
    assert.deepEqual(cidrRange('0.0.0.0/0'), { address_prefix: '0.0.0.0', prefix_len: 0 });
    assert.throws(() => cidrRange('10.0.0.1/33'));
    assert.throws(() => cidrRange('nope'));
  });

  it('requestPrincipals (JWT, unsupported): an ALLOW rule is skipped, a DENY rule drops the value (wider)', () => {
    const rule: AuthorizationRule = { from: [{ source: { requestPrincipals: ['https://issuer/*'], namespaces: ['prod'] } }] };
    const allow = translateRule(rule, 'ALLOW', 'default', TD);
    assert.ok('skipped' in allow && /JWT/.test(allow.skipped));
    assert.deepEqual(ids(policyOf(rule, 'DENY')), [{ or_ids: { ids: [auth({ safe_regex: { regex: '.*/ns/prod/.*' } })] } }]);
    assert.deepEqual(ids(policyOf({ from: [{ source: { notRequestPrincipals: ['*'] } }] }, 'LOG')), ANY_ID);
  });

  it('several sources OR (one principal each); fields inside a source AND', () => {
    const p = policyOf({ from: [{ source: { namespaces: ['a'] } }, { source: { ipBlocks: ['10.0.0.1'], principals: ['x'] } }] });
    const principals = p['principals'] as JsonObject[];
    assert.equal(principals.length, 2);
    assert.equal(((principals[1]!['and_ids'] as JsonObject)['ids'] as JsonObject[]).length, 2);
  });
});

describe('authz: operation fields (permissions)', () => {
  it('hosts / notHosts: :authority, ignoring case; "*" is present', () => {
    const p = policyOf({ to: [{ operation: { hosts: ['api.example.com', '*.example.com', 'api.*', '*'], notHosts: ['evil.example.com'] } }] });
    const h = (m: JsonObject) => ({ header: { name: ':authority', ...m } });
    assert.deepEqual(perms(p), [
      {
        or_rules: {
          rules: [
            h({ string_match: { exact: 'api.example.com', ignore_case: true } }),
            h({ string_match: { suffix: '.example.com', ignore_case: true } }),
            h({ string_match: { prefix: 'api.', ignore_case: true } }),
            h({ present_match: true }),
          ],
        },
      },
      { not_rule: { or_rules: { rules: [h({ string_match: { exact: 'evil.example.com', ignore_case: true } })] } } },
    ]);
    assert.deepEqual(ids(p), ANY_ID);
  });

  it('ports / notPorts: destination_port', () => {
    assert.deepEqual(perms(policyOf({ to: [{ operation: { ports: ['8080', '9090'], notPorts: ['15000'] } }] })), [
      { or_rules: { rules: [{ destination_port: 8080 }, { destination_port: 9090 }] } },
      { not_rule: { or_rules: { rules: [{ destination_port: 15000 }] } } },
    ]);
  });

  it('methods / notMethods: :method, case-sensitive', () => {
    assert.deepEqual(perms(policyOf({ to: [{ operation: { methods: ['GET'], notMethods: ['DELETE', 'P*'] } }] })), [
      { or_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }] } },
      { not_rule: { or_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'DELETE' } } }, { header: { name: ':method', string_match: { prefix: 'P' } } }] } } },
    ]);
  });

  it('paths / notPaths: url_path exact, prefix*, *suffix, *', () => {
    assert.deepEqual(perms(policyOf({ to: [{ operation: { paths: ['/a', '/b/*', '*.png', '*'], notPaths: ['/b/private*'] } }] })), [
      { or_rules: { rules: [{ url_path: { path: { exact: '/a' } } }, { url_path: { path: { prefix: '/b/' } } }, { url_path: { path: { suffix: '.png' } } }, { url_path: { path: { safe_regex: { regex: '.+' } } } }] } },
      { not_rule: { or_rules: { rules: [{ url_path: { path: { prefix: '/b/private' } } }] } } },
    ]);
  });

  it('path templates are refused: ALLOW skips the rule, DENY drops the value', () => {
    const rule: AuthorizationRule = { to: [{ operation: { paths: ['/users/{*}/profile', '/x'] } }] };
    assert.ok('skipped' in translateRule(rule, 'ALLOW', 'default', TD));
    assert.deepEqual(perms(policyOf(rule, 'DENY')), [{ or_rules: { rules: [{ url_path: { path: { exact: '/x' } } }] } }]);
  });

  it('fields of one operation AND in Istio order (hosts, methods, paths, ports, then when)', () => {
    const p = policyOf({ to: [{ operation: { ports: ['80'], paths: ['/p'], methods: ['GET'], hosts: ['h'] } }], when: [{ key: 'destination.port', values: ['81'] }] });
    const kinds = perms(p).map((r) => Object.keys(((r['or_rules'] as JsonObject)['rules'] as JsonObject[])[0]!)[0]);
    assert.deepEqual(kinds, ['header', 'header', 'url_path', 'destination_port', 'destination_port']);
  });
});

describe('authz: when conditions', () => {
  it('request.headers[...]: header matchers on the principal side', () => {
    assert.deepEqual(ids(policyOf({ when: [{ key: 'request.headers[X-Tenant]', values: ['acme', '*-beta', '*'], notValues: ['evil*'] }] })), [
      { or_ids: { ids: [{ header: { name: 'X-Tenant', string_match: { exact: 'acme' } } }, { header: { name: 'X-Tenant', string_match: { suffix: '-beta' } } }, { header: { name: 'X-Tenant', present_match: true } }] } },
      { not_id: { or_ids: { ids: [{ header: { name: 'X-Tenant', string_match: { prefix: 'evil' } } }] } } },
    ]);
  });

  it('source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount', () => {
    const p = policyOf(
      {
        when: [
          { key: 'source.ip', values: ['10.0.0.0/8'] },
          { key: 'remote.ip', notValues: ['1.2.3.4'] },
          { key: 'source.namespace', values: ['prod'] },
          { key: 'source.principal', values: ['cluster.local/ns/prod/sa/web'] },
          { key: 'source.serviceAccount', values: ['web'] },
        ],
      },
      'ALLOW',
      'prod',
    );
    assert.deepEqual(ids(p), [
      { or_ids: { ids: [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }] } },
      { not_id: { or_ids: { ids: [{ remote_ip: { address_prefix: '1.2.3.4', prefix_len: 32 } }] } } },
      { or_ids: { ids: [auth({ safe_regex: { regex: '.*/ns/prod/.*' } })] } },
      { or_ids: { ids: [auth({ exact: 'spiffe://cluster.local/ns/prod/sa/web' })] } },
      { or_ids: { ids: [auth({ safe_regex: { regex: 'spiffe://.+/ns/prod/(.+/|)sa/web(/.+)?' } })] } },
    ]);
  });

  it('destination.ip, destination.port, connection.sni: permissions', () => {
    assert.deepEqual(perms(policyOf({ when: [{ key: 'destination.ip', values: ['10.1.0.2'] }, { key: 'destination.port', notValues: ['9090'] }, { key: 'connection.sni', values: ['*.example.com'] }] })), [
      { or_rules: { rules: [{ destination_ip: { address_prefix: '10.1.0.2', prefix_len: 32 } }] } },
      { not_rule: { or_rules: { rules: [{ destination_port: 9090 }] } } },
      { or_rules: { rules: [{ requested_server_name: { suffix: '.example.com' } }] } },
    ]);
  });

  it('request.auth.* (JWT) is refused: ALLOW skips the rule, DENY drops it (wider)', () => {
    for (const key of ['request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'request.auth.claims[iss]']) {
      const rule: AuthorizationRule = { when: [{ key, values: ['x'] }], to: [{ operation: { paths: ['/p'] } }] };
      assert.ok('skipped' in translateRule(rule, 'ALLOW', 'default', TD), key);
      assert.deepEqual(ids(policyOf(rule, 'DENY')), ANY_ID, key);
    }
  });

  it('an unknown key or a malformed header key skips the rule', () => {
    const unknown = translateRule({ when: [{ key: 'request.nope', values: ['x'] }] }, 'DENY', 'default', TD);
    assert.ok('skipped' in unknown && /unknown attribute request.nope/.test(unknown.skipped));
    assert.ok('skipped' in translateRule({ when: [{ key: 'request.headers[x', values: ['x'] }] }, 'ALLOW', 'default', TD));
  });

  it('from, to and when AND together; the empty rule matches everything', () => {
    const p = policyOf({ from: [{ source: { namespaces: ['a'] } }], to: [{ operation: { methods: ['GET'] } }], when: [{ key: 'source.ip', values: ['10.0.0.1'] }, { key: 'destination.port', values: ['80'] }] });
    assert.equal(ids(p).length, 2);
    assert.equal(perms(p).length, 2);
    assert.deepEqual(policyOf({}), { permissions: [{ and_rules: { rules: ANY_RULE } }], principals: [{ and_ids: { ids: ANY_ID } }] });
  });
});

// ---- actions and their order -----------------------------------------------------------------

function filtersFor(yaml: string): JsonObject[] {
  const idx = new AuthzIndex(buildMesh({ yaml }), 'istio-system');
  return rbacHttpFilters(idx.applicable('default', { app: 'api' }), TD);
}
const rulesOf = (f: JsonObject) => (f['typed_config'] as JsonObject)['rules'] as JsonObject;

describe('authz: actions and filter order', () => {
  it('CUSTOM, AUDIT (LOG), DENY, ALLOW: one filter per action present, in istiod order', () => {
    const filters = filtersFor(
      ap('allow', 'default', `  rules: [{ to: [{ operation: { methods: [GET] } }] }]`) +
        ap('deny', 'default', `  action: DENY\n  rules: [{ to: [{ operation: { paths: [/admin] } }] }]`) +
        ap('audit', 'default', `  action: AUDIT\n  rules: [{}]`) +
        ap('ext', 'default', `  action: CUSTOM\n  provider: { name: opa }\n  rules: [{ to: [{ operation: { paths: [/ext] } }] }]`),
    );
    assert.deepEqual(filters.map((f) => f['name']), [RBAC_FILTER_NAME, RBAC_FILTER_NAME, RBAC_FILTER_NAME, RBAC_FILTER_NAME]);
    assert.deepEqual(filters.map((f) => rulesOf(f)['action']), ['DENY', 'LOG', 'DENY', 'ALLOW']);
    // CUSTOM: no external authorizer, so (as istiod does for a missing provider) deny what it matches.
    assert.deepEqual(Object.keys(rulesOf(filters[0]!)['policies'] as JsonObject), ['istio-ext-authz-ns[default]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action']);
    assert.deepEqual(Object.keys(rulesOf(filters[2]!)['policies'] as JsonObject), ['ns[default]-policy[deny]-rule[0]']);
    for (const f of filters) encodeRbac(f['typed_config'] as JsonObject);
  });

  it('an ALLOW policy without rules matches nothing (the ALLOW filter then denies everything)', () => {
    const [f] = filtersFor(ap('nothing', 'default', `  {}`));
    assert.deepEqual(rulesOf(f!), { action: 'ALLOW', policies: { 'ns[default]-policy[nothing]-rule[0]': { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] } } });
  });

  it('an ALLOW policy whose every rule is skipped still yields an ALLOW filter (deny by default)', () => {
    const filters = filtersFor(ap('jwt-only', 'default', `  rules: [{ from: [{ source: { requestPrincipals: ["*"] } }] }]`));
    assert.deepEqual(rulesOf(filters[0]!), { action: 'ALLOW', policies: {} });
    encodeRbac(filters[0]!['typed_config'] as JsonObject);
  });

  it('rule names count rules per policy; policies of one action share a filter', () => {
    const [f] = filtersFor(ap('a', 'default', `  rules: [{}, { to: [{ operation: { ports: ["80"] } }] }]`) + ap('b', 'istio-system', `  rules: [{}]`));
    assert.deepEqual(Object.keys(rulesOf(f!)['policies'] as JsonObject).sort(), ['ns[default]-policy[a]-rule[0]', 'ns[default]-policy[a]-rule[1]', 'ns[istio-system]-policy[b]-rule[0]']);
  });

  it('no applicable policy: no filter', () => {
    assert.deepEqual(filtersFor(ap('web', 'default', `  selector: { matchLabels: { app: web } }\n  rules: [{}]`)), []);
  });

  it('normalises without loss (the proto round trip keeps every field)', () => {
    for (const c of CASES) {
      for (const f of filtersFor(c.yaml)) {
        const tc = f['typed_config'] as JsonObject;
        const { ['@type']: type, ...body } = tc;
        assert.equal(type, EXTENSION_TYPE_URL.httpRbac);
        assert.deepEqual(normalizeJson(EXTENSION_TYPE_URL.httpRbac, body), body);
      }
    }
  });
});
