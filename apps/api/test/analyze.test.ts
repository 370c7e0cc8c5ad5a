import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKind, KIND_API_GROUPS, parseResource, parseYamlDocuments, type MeshResource, type ServiceRecord, type WorkloadRecord } from '@tern/shared';
import { ANALYZERS, analyze, type Diagnostic, type MeshState } from '../src/policy/analyze.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures

type Resource = MeshState['resources'][number];

// Istio's v1 for the five kinds; anything else (a Gateway) gets networking's, as analysis ignores it.
const API = (kind: string): string => `${isKind(kind) ? KIND_API_GROUPS[kind] : 'networking.istio.io'}/v1`;

function res(kind: string, name: string, spec: unknown, namespace: string | undefined = 'default'): Resource {
  const metadata = namespace === undefined ? { name } : { name, namespace };
  return { apiVersion: API(kind), kind, metadata, spec } as unknown as Resource;
}
const vs = (name: string, spec: unknown, ns?: string): Resource => res('VirtualService', name, spec, ns);
const dr = (name: string, spec: unknown, ns?: string): Resource => res('DestinationRule', name, spec, ns);
const se = (name: string, spec: unknown, ns?: string): Resource => res('ServiceEntry', name, spec, ns);
const pa = (name: string, spec: unknown, ns?: string): Resource => res('PeerAuthentication', name, spec, ns);
const ap = (name: string, spec: unknown, ns?: string): Resource => res('AuthorizationPolicy', name, spec, ns);

function svc(name: string, namespace = 'default', ports: ServiceRecord['ports'] = [{ name: 'http', number: 9080, protocol: 'HTTP' }]): ServiceRecord {
  return { namespace, name, hosts: [`${name}.${namespace}.svc.cluster.local`], ports, labels: { app: name, service: name }, resourceVersion: '1' };
}

function wl(app: string, version: string, namespace = 'default', serviceAccount = `bookinfo-${app}`): WorkloadRecord {
  return {
    namespace,
    name: `${app}-${version}`,
    // Injected, as in Istio's samples: auto mTLS sends them mutual TLS (TRN0305).
    labels: { app, version, 'security.istio.io/tlsMode': 'istio' },
    serviceAccount,
    addresses: [],
    ports: {},
    resourceVersion: '1',
  };
}

const subsets = (...versions: string[]) => versions.map((v) => ({ name: v, labels: { version: v } }));
const route = (host: string, subset?: string, weight?: number) => ({
  destination: subset === undefined ? { host } : { host, subset },
  ...(weight === undefined ? {} : { weight }),
});

/** Bookinfo as in Istio's samples: four services, six workloads, destination-rule-all, virtual-service-all-v1. */
function bookinfo(): MeshState {
  return {
    services: [svc('productpage'), svc('details'), svc('reviews'), svc('ratings')],
    workloads: [
      wl('productpage', 'v1'),
      wl('details', 'v1'),
      wl('reviews', 'v1'),
      wl('reviews', 'v2'),
      wl('reviews', 'v3'),
      wl('ratings', 'v1'),
      {
        namespace: 'istio-system',
        name: 'istio-ingressgateway',
        labels: { istio: 'ingressgateway', app: 'istio-ingressgateway', 'security.istio.io/tlsMode': 'istio' },
        serviceAccount: 'istio-ingressgateway-service-account',
        addresses: [],
        ports: {},
        resourceVersion: '1',
      },
    ],
    resources: [
      dr('productpage', { host: 'productpage', subsets: subsets('v1') }),
      dr('reviews', { host: 'reviews', subsets: subsets('v1', 'v2', 'v3') }),
      dr('ratings', { host: 'ratings', subsets: subsets('v1') }),
      dr('details', { host: 'details', subsets: subsets('v1') }),
      vs('productpage', { hosts: ['productpage'], http: [{ route: [route('productpage', 'v1')] }] }),
      vs('reviews', { hosts: ['reviews'], http: [{ route: [route('reviews', 'v1')] }] }),
      vs('ratings', { hosts: ['ratings'], http: [{ route: [route('ratings', 'v1')] }] }),
      vs('details', { hosts: ['details'], http: [{ route: [route('details', 'v1')] }] }),
      vs('bookinfo', {
        hosts: ['*'],
        gateways: ['bookinfo-gateway'],
        http: [{ match: [{ uri: { exact: '/productpage' } }], route: [{ destination: { host: 'productpage', port: { number: 9080 } } }] }],
      }),
    ],
  };
}

function withResources(base: MeshState, ...resources: Resource[]): MeshState {
  return { ...base, resources: [...base.resources, ...resources] };
}

function replacing(base: MeshState, ...resources: Resource[]): MeshState {
  const key = (r: Resource) => `${r.kind}/${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
  const replaced = new Set(resources.map(key));
  return { ...base, resources: [...base.resources.filter((r) => !replaced.has(key(r))), ...resources] };
}

function only(diags: Diagnostic[], code: string): Diagnostic[] {
  return diags.filter((d) => d.code === code);
}

function one(diags: Diagnostic[], code: string): Diagnostic {
  const found = only(diags, code);
  assert.equal(found.length, 1, `expected exactly one ${code}, got ${JSON.stringify(diags, null, 2)}`);
  return found[0] as Diagnostic;
}

function expectOne(
  state: MeshState,
  code: string,
  want: { level: string; kind: string; resourceName: string; path: string; namespace?: string; mentions: string[] },
): Diagnostic {
  const d = one(analyze(state), code);
  assert.equal(d.level, want.level);
  assert.equal(d.kind, want.kind);
  assert.equal(d.resourceName, want.resourceName);
  assert.equal(d.namespace, want.namespace ?? 'default');
  assert.equal(d.path, want.path);
  for (const m of want.mentions) assert.ok(d.message.includes(m), `message "${d.message}" should mention "${m}"`);
  return d;
}

function expectNone(state: MeshState, code: string): void {
  const found = only(analyze(state), code);
  assert.deepEqual(found, [], `expected no ${code}`);
}

// ---------------------------------------------------------------------------------------------

describe('catalogue', () => {
  test('codes are unique, well-formed and carry a level, name and description', () => {
    const codes = new Set<string>();
    for (const a of ANALYZERS) {
      assert.match(a.code, /^TRN\d{4}$/);
      assert.match(a.name, /^[A-Z][A-Za-z0-9]+$/);
      assert.ok(['error', 'warning', 'info'].includes(a.level));
      assert.ok(a.description.length > 20);
      assert.ok(!codes.has(a.code), `duplicate ${a.code}`);
      codes.add(a.code);
    }
    assert.equal(new Set(ANALYZERS.map((a) => a.name)).size, ANALYZERS.length);
  });

  test('docs/analysis.md lists every code with its name and level', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../../../docs/analysis.md', import.meta.url), 'utf8');
    for (const a of ANALYZERS) {
      const row = doc.split('\n').find((l) => l.startsWith(`| ${a.code} `));
      assert.ok(row, `docs/analysis.md has no row for ${a.code}`);
      assert.ok(row.includes(a.name) && row.includes(a.level), `row for ${a.code} should name ${a.name} (${a.level})`);
    }
  });
});

describe('Bookinfo', () => {
  test('the clean Bookinfo set yields no diagnostics at all', () => {
    assert.deepEqual(analyze(bookinfo()), []);
  });

  test("Istio's destination-rule-all (subsets with no workloads) yields no errors, only subset warnings", () => {
    const state = replacing(
      bookinfo(),
      dr('details', { host: 'details', subsets: subsets('v1', 'v2') }),
      dr('ratings', { host: 'ratings', subsets: subsets('v1', 'v2', 'v2-mysql', 'v2-mysql-vm') }),
    );
    const diags = analyze(state);
    assert.deepEqual(diags.filter((d) => d.level === 'error'), []);
    assert.deepEqual(
      diags.map((d) => `${d.code} ${d.resourceName} ${d.path}`),
      [
        'TRN0202 details spec.subsets[1].labels',
        'TRN0202 ratings spec.subsets[1].labels',
        'TRN0202 ratings spec.subsets[2].labels',
        'TRN0202 ratings spec.subsets[3].labels',
      ],
    );
  });

  test('mesh-wide STRICT mTLS with ISTIO_MUTUAL rules and the ingress AuthorizationPolicy is clean', () => {
    const state = replacing(
      bookinfo(),
      pa('default', { mtls: { mode: 'STRICT' } }, 'istio-system'),
      dr('reviews', { host: 'reviews', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } }, subsets: subsets('v1', 'v2', 'v3') }),
      ap('productpage-viewer', {
        selector: { matchLabels: { app: 'productpage' } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account'] } }] }],
      }),
      ap('reviews-viewer', {
        selector: { matchLabels: { app: 'reviews' } },
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-productpage'], namespaces: ['default'] } }] }],
      }),
    );
    assert.deepEqual(analyze(state), []);
  });
});

// Istio's samples/bookinfo/networking/destination-rule-all-mtls.yaml and virtual-service-all-v1.yaml
// (trimmed to the subsets Bookinfo deploys), as a user would apply them.
const BOOKINFO_YAML = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: productpage
spec:
  host: productpage
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
  subsets:
  - name: v1
    labels:
      version: v1
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
  subsets:
  - name: v1
    labels:
      version: v1
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: details
spec:
  host: details
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
  subsets:
  - name: v1
    labels:
      version: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: productpage
spec:
  hosts:
  - productpage
  http:
  - route:
    - destination:
        host: productpage
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - route:
    - destination:
        host: ratings
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
spec:
  hosts:
  - details
  http:
  - route:
    - destination:
        host: details
        subset: v1
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`;

function parseAll(yaml: string): MeshResource[] {
  return parseYamlDocuments(yaml).map((d) => {
    assert.equal(d.error, undefined, JSON.stringify(d.error));
    const r = parseResource(d.doc);
    assert.ok(r.ok, JSON.stringify(r));
    return r.resource;
  });
}

describe('Bookinfo through the schema', () => {
  test('the YAML a user applies, parsed by @tern/shared, analyses clean', () => {
    const { services, workloads } = bookinfo();
    assert.deepEqual(analyze({ resources: parseAll(BOOKINFO_YAML), services, workloads }), []);
  });

  test('parsed resources trip the checks too', () => {
    const { services, workloads } = bookinfo();
    const yaml = BOOKINFO_YAML.replace('subset: v1\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ratings', 'subset: v9\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ratings')
      .replace(/mode: ISTIO_MUTUAL/, 'mode: DISABLE');
    const diags = analyze({ resources: parseAll(yaml), services, workloads });
    assert.deepEqual(
      diags.map((d) => `${d.code} ${d.kind} ${d.resourceName} ${d.path}`),
      ['TRN0301 DestinationRule productpage spec.trafficPolicy.tls.mode', 'TRN0102 VirtualService reviews spec.http[0].route[0].destination.subset'],
    );
  });
});

describe('TRN0101 VirtualServiceDestinationHostNotFound', () => {
  test('route destination to an unknown host', () => {
    const state = replacing(bookinfo(), vs('reviews', { hosts: ['reviews'], http: [{ route: [route('reviewz')] }] }));
    expectOne(state, 'TRN0101', {
      level: 'warning',
      kind: 'VirtualService',
      resourceName: 'reviews',
      path: 'spec.http[0].route[0].destination.host',
      mentions: ['reviewz', 'reviewz.default.svc.cluster.local'],
    });
  });

  test('mirror, mirrors and tcp destinations are checked too', () => {
    const state = replacing(
      bookinfo(),
      vs('reviews', {
        hosts: ['reviews'],
        http: [{ route: [route('reviews', 'v1')], mirror: { host: 'shadow' }, mirrors: [{ destination: { host: 'shadow2' } }] }],
        tcp: [{ route: [route('db.example.com')] }],
      }),
    );
    const paths = only(analyze(state), 'TRN0101').map((d) => d.path);
    assert.deepEqual(paths, [
      'spec.http[0].mirror.host',
      'spec.http[0].mirrors[0].destination.host',
      'spec.tcp[0].route[0].destination.host',
    ]);
  });

  test('hosts of registry services (short, FQDN, extra hosts) and of ServiceEntries are known', () => {
    const base = bookinfo();
    base.services.push({ ...svc('legacy'), hosts: ['legacy.default.svc.cluster.local', 'legacy.corp.internal'] });
    const state = withResources(
      base,
      se('external', { hosts: ['*.example.com'], location: 'MESH_EXTERNAL', ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] }, 'egress'),
      vs('mixed', {
        hosts: ['mixed.example.com'],
        gateways: ['egress-gw'],
        http: [
          {
            route: [
              route('reviews.default.svc.cluster.local', undefined, 50),
              route('legacy.corp.internal', undefined, 25),
              route('api.example.com', undefined, 25),
            ],
          },
        ],
      }),
    );
    expectNone(state, 'TRN0101');
  });

  test('a ServiceEntry exported only to its own namespace is not visible elsewhere', () => {
    const state = withResources(
      bookinfo(),
      se('private', { hosts: ['api.partner.com'], exportTo: ['.'] }, 'payments'),
      vs('partner', { hosts: ['partner'], gateways: ['gw'], http: [{ route: [route('api.partner.com')] }] }),
    );
    expectOne(state, 'TRN0101', {
      level: 'warning',
      kind: 'VirtualService',
      resourceName: 'partner',
      path: 'spec.http[0].route[0].destination.host',
      mentions: ['api.partner.com', '"default"'],
    });
    const visible = withResources(
      bookinfo(),
      se('private', { hosts: ['api.partner.com'], exportTo: ['.'] }, 'payments'),
      vs('partner', { hosts: ['partner'], gateways: ['gw'], http: [{ route: [route('api.partner.com')] }] }, 'payments'),
    );
    expectNone(visible, 'TRN0101');
  });
});

describe('TRN0102 VirtualServiceDestinationSubsetNotFound', () => {
  test('route subset missing from the DestinationRule', () => {
    const state = replacing(
      bookinfo(),
      vs('reviews', { hosts: ['reviews'], http: [{ route: [route('reviews', 'v1', 50), route('reviews', 'v4', 50)] }] }),
    );
    expectOne(state, 'TRN0102', {
      level: 'error',
      kind: 'VirtualService',
      resourceName: 'reviews',
      path: 'spec.http[0].route[1].destination.subset',
      mentions: ['"v4"', 'reviews.default.svc.cluster.local'],
    });
  });

  test('mirror, mirrors, tcp and tls routes are checked', () => {
    const state = replacing(
      bookinfo(),
      vs('reviews', {
        hosts: ['reviews'],
        http: [
          {
            route: [route('reviews', 'v1')],
            mirror: { host: 'reviews', subset: 'shadow' },
            mirrors: [{ destination: { host: 'reviews', subset: 'v2' } }, { destination: { host: 'reviews', subset: 'canary' } }],
          },
        ],
        tcp: [{ route: [route('reviews', 'tcp-missing')] }],
        tls: [{ match: [{ sniHosts: ['reviews'] }], route: [route('reviews', 'tls-missing')] }],
      }),
    );
    const diags = only(analyze(state), 'TRN0102');
    assert.deepEqual(
      diags.map((d) => d.path),
      [
        'spec.http[0].mirror.subset',
        'spec.http[0].mirrors[1].destination.subset',
        'spec.tcp[0].route[0].destination.subset',
        'spec.tls[0].route[0].destination.subset',
      ],
    );
    assert.ok(diags.every((d) => d.level === 'error'));
    assert.ok(diags[0]?.message.includes('"shadow"'));
    assert.ok(diags[3]?.message.includes('"tls-missing"'));
  });

  test('a DestinationRule in another namespace counts when exported, not when exported only to "."', () => {
    const base: MeshState = { ...bookinfo(), resources: bookinfo().resources.filter((r) => r.metadata.name !== 'reviews' || r.kind !== 'DestinationRule') };
    const exported = withResources(base, dr('reviews', { host: 'reviews.default.svc.cluster.local', subsets: subsets('v1', 'v2', 'v3') }, 'shared'));
    expectNone(exported, 'TRN0102');
    const hidden = withResources(
      base,
      dr('reviews', { host: 'reviews.default.svc.cluster.local', exportTo: ['.'], subsets: subsets('v1', 'v2', 'v3') }, 'shared'),
    );
    const d = one(analyze(hidden), 'TRN0102');
    assert.equal(d.path, 'spec.http[0].route[0].destination.subset');
  });

  test('a wildcard DestinationRule host covers the destination', () => {
    const base: MeshState = { ...bookinfo(), resources: bookinfo().resources.filter((r) => r.kind !== 'DestinationRule') };
    const state = withResources(base, dr('all-v1', { host: '*.default.svc.cluster.local', subsets: subsets('v1') }));
    expectNone(state, 'TRN0102');
  });
});

describe('TRN0103 VirtualServiceRouteWeightsInvalid', () => {
  test('http weights that do not sum to 100', () => {
    const state = replacing(
      bookinfo(),
      vs('reviews', { hosts: ['reviews'], http: [{ route: [route('reviews', 'v1', 50), route('reviews', 'v2', 40)] }] }),
    );
    expectOne(state, 'TRN0103', {
      level: 'error',
      kind: 'VirtualService',
      resourceName: 'reviews',
      path: 'spec.http[0].route',
      mentions: ['90', 'reviews/v1=50', 'reviews/v2=40'],
    });
  });

  test('missing weights on a split count as 0; tcp routes are checked', () => {
    const state = replacing(
      bookinfo(),
      vs('reviews', {
        hosts: ['reviews'],
        http: [{ route: [route('reviews', 'v1'), route('reviews', 'v2')] }],
        tcp: [{ route: [route('reviews', 'v1', 80), route('reviews', 'v2', 30)] }],
      }),
    );
    const diags = only(analyze(state), 'TRN0103');
    assert.deepEqual(diags.map((d) => d.path), ['spec.http[0].route', 'spec.tcp[0].route']);
    assert.ok(diags[0]?.message.includes('sum to 0'));
    assert.ok(diags[1]?.message.includes('sum to 110'));
  });

  test('a 50/50 split and a single unweighted destination are fine', () => {
    const state = replacing(
      bookinfo(),
      vs('reviews', {
        hosts: ['reviews'],
        http: [
          { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [route('reviews', 'v2')] },
          { route: [route('reviews', 'v1', 50), route('reviews', 'v3', 50)] },
        ],
      }),
    );
    expectNone(state, 'TRN0103');
  });
});

describe('TRN0104 ConflictingMeshVirtualServiceHosts', () => {
  test('two sidecar VirtualServices for one host, each names the other', () => {
    const state = withResources(
      bookinfo(),
      vs('reviews-canary', { hosts: ['reviews.default.svc.cluster.local'], gateways: ['mesh'], http: [{ route: [route('reviews', 'v2')] }] }),
    );
    const diags = only(analyze(state), 'TRN0104');
    assert.equal(diags.length, 2);
    const [orig, canary] = diags as [Diagnostic, Diagnostic];
    assert.equal(orig.resourceName, 'reviews');
    assert.equal(canary.resourceName, 'reviews-canary');
    for (const d of diags) {
      assert.equal(d.level, 'warning');
      assert.equal(d.path, 'spec.hosts[0]');
      assert.ok(d.message.includes('reviews.default.svc.cluster.local'));
      assert.ok(d.message.includes('default/reviews') && d.message.includes('default/reviews-canary'));
    }
  });

  test('a gateway-only VirtualService or non-overlapping exportTo does not conflict', () => {
    const gatewayOnly = withResources(
      bookinfo(),
      vs('reviews-edge', { hosts: ['reviews'], gateways: ['bookinfo-gateway'], http: [{ route: [route('reviews', 'v2')] }] }),
    );
    expectNone(gatewayOnly, 'TRN0104');
    const local = replacing(
      bookinfo(),
      vs('reviews', { hosts: ['reviews.default.svc.cluster.local'], exportTo: ['.'], http: [{ route: [route('reviews', 'v1')] }] }),
      vs('reviews', { hosts: ['reviews.default.svc.cluster.local'], exportTo: ['.'], http: [{ route: [route('reviews.default.svc.cluster.local', 'v1')] }] }, 'other'),
    );
    expectNone(local, 'TRN0104');
  });

  test('exportTo "*" in one namespace overlaps with "." in another', () => {
    const state = withResources(
      bookinfo(),
      vs('reviews', { hosts: ['reviews.default.svc.cluster.local'], exportTo: ['.'], http: [{ route: [route('reviews.default.svc.cluster.local', 'v1')] }] }, 'other'),
    );
    const diags = only(analyze(state), 'TRN0104');
    assert.deepEqual(diags.map((d) => `${d.namespace}/${d.resourceName}`), ['default/reviews', 'other/reviews']);
    assert.ok(diags[0]?.message.includes('other/reviews'));
  });
});

describe('TRN0105 VirtualServiceHostNotFound', () => {
  test('a short sidecar host that resolves nowhere', () => {
    const state = withResources(bookinfo(), vs('typo', { hosts: ['reveiws'], http: [{ route: [route('reviews', 'v1')] }] }));
    expectOne(state, 'TRN0105', {
      level: 'warning',
      kind: 'VirtualService',
      resourceName: 'typo',
      path: 'spec.hosts[0]',
      mentions: ['reveiws', 'reveiws.default.svc.cluster.local'],
    });
  });

  test('gateway hosts, ServiceEntry hosts and wildcards are not flagged', () => {
    const state = withResources(
      bookinfo(),
      se('ext', { hosts: ['api.example.com'] }),
      vs('edge', { hosts: ['bookinfo.example.com'], gateways: ['bookinfo-gateway'], http: [{ route: [route('productpage')] }] }),
      vs('ext', { hosts: ['api.example.com'], http: [{ route: [route('api.example.com')] }] }),
    );
    expectNone(state, 'TRN0105');
  });
});

describe('TRN0106 VirtualServiceDestinationPortNotFound', () => {
  test('a destination port the service does not expose', () => {
    const state = replacing(
      bookinfo(),
      vs('reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1', port: { number: 9999 } } }] }] }),
    );
    expectOne(state, 'TRN0106', {
      level: 'warning',
      kind: 'VirtualService',
      resourceName: 'reviews',
      path: 'spec.http[0].route[0].destination.port.number',
      mentions: ['9999', 'reviews.default.svc.cluster.local', '9080'],
    });
  });

  test('the right port is fine (Bookinfo gateway route uses 9080)', () => {
    expectNone(bookinfo(), 'TRN0106');
  });
});

describe('TRN0201 DestinationRuleHostNotFound', () => {
  test('a DestinationRule for a host nobody provides', () => {
    const state = withResources(bookinfo(), dr('reviewz', { host: 'reviewz', subsets: subsets('v1') }));
    expectOne(state, 'TRN0201', {
      level: 'warning',
      kind: 'DestinationRule',
      resourceName: 'reviewz',
      path: 'spec.host',
      mentions: ['reviewz', 'reviewz.default.svc.cluster.local'],
    });
  });

  test('ServiceEntry hosts and wildcard hosts are fine', () => {
    const state = withResources(
      bookinfo(),
      se('ext', { hosts: ['*.googleapis.com'] }, 'istio-system'),
      dr('storage', { host: 'storage.googleapis.com', trafficPolicy: { tls: { mode: 'SIMPLE' } } }),
      dr('defaults', { host: '*.local', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }, 'istio-system'),
    );
    expectNone(state, 'TRN0201');
  });
});

describe('TRN0202 DestinationRuleSubsetNoWorkloads', () => {
  test("a subset whose labels select no workload in the service's namespace", () => {
    const state = replacing(bookinfo(), dr('reviews', { host: 'reviews', subsets: subsets('v1', 'v2', 'v3', 'v4') }));
    expectOne(state, 'TRN0202', {
      level: 'warning',
      kind: 'DestinationRule',
      resourceName: 'reviews',
      path: 'spec.subsets[3].labels',
      mentions: ['"v4"', 'version=v4', 'reviews.default.svc.cluster.local', 'service default/reviews'],
    });
  });

  test('labels on workloads of another service do not count; without known members the namespace is searched', () => {
    // details has no v2 workload, though reviews-v2 carries version=v2 in the same namespace
    const state = replacing(bookinfo(), dr('details', { host: 'details', subsets: subsets('v1', 'v2') }));
    expectOne(state, 'TRN0202', {
      level: 'warning',
      kind: 'DestinationRule',
      resourceName: 'details',
      path: 'spec.subsets[1].labels',
      mentions: ['"v2"', 'details.default.svc.cluster.local', 'service default/details'],
    });
    // a service whose workloads cannot be told apart from the registry: any workload in its namespace counts
    const base = bookinfo();
    base.services.push({ ...svc('cache', 'infra'), labels: {} });
    base.workloads.push({ ...wl('redis', 'v1', 'infra'), labels: { tier: 'cache', version: 'v1' } });
    expectNone(withResources(base, dr('cache', { host: 'cache', subsets: subsets('v1') }, 'infra')), 'TRN0202');
    expectOne(withResources(base, dr('cache', { host: 'cache', subsets: subsets('v1', 'v2') }, 'infra')), 'TRN0202', {
      level: 'warning',
      kind: 'DestinationRule',
      resourceName: 'cache',
      namespace: 'infra',
      path: 'spec.subsets[1].labels',
      mentions: ['"v2"', 'cache.infra.svc.cluster.local', 'namespace "infra"'],
    });
  });

  test('ServiceEntry hosts and label-less subsets are skipped', () => {
    const state = withResources(
      bookinfo(),
      se('ext', { hosts: ['api.example.com'] }),
      dr('ext', { host: 'api.example.com', subsets: subsets('v9') }),
      dr('reviews-all', { host: 'reviews', subsets: [{ name: 'everything' }] }, 'other'),
    );
    expectNone(state, 'TRN0202');
  });
});

describe('TRN0203 / TRN0204 several DestinationRules for one host', () => {
  test('the same subset name in two rules is an error on both', () => {
    const state = withResources(bookinfo(), dr('reviews-extra', { host: 'reviews.default.svc.cluster.local', subsets: subsets('v3') }));
    const diags = only(analyze(state), 'TRN0203');
    assert.deepEqual(
      diags.map((d) => `${d.resourceName} ${d.path} ${d.level}`),
      ['reviews spec.subsets[2].name error', 'reviews-extra spec.subsets[0].name error'],
    );
    assert.ok(diags[0]?.message.includes('"v3"') && diags[0].message.includes('default/reviews-extra'));
    assert.ok(diags[1]?.message.includes('default/reviews'));
    expectNone(state, 'TRN0204');
  });

  test('two rules with distinct subsets are a warning on both', () => {
    const state = withResources(bookinfo(), dr('reviews-tls', { host: 'reviews', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }));
    const diags = only(analyze(state), 'TRN0204');
    assert.deepEqual(diags.map((d) => `${d.resourceName} ${d.path} ${d.level}`), ['reviews spec.host warning', 'reviews-tls spec.host warning']);
    assert.ok(diags[0]?.message.includes('default/reviews-tls') && diags[0].message.includes('reviews.default.svc.cluster.local'));
    expectNone(state, 'TRN0203');
  });

  test('rules in different namespaces or with different workloadSelectors do not clash', () => {
    const state = withResources(
      bookinfo(),
      dr('reviews', { host: 'reviews.default.svc.cluster.local', subsets: subsets('v1') }, 'frontend'),
      dr('reviews-for-productpage', {
        host: 'reviews',
        workloadSelector: { matchLabels: { app: 'productpage' } },
        subsets: subsets('v1'),
      }),
    );
    expectNone(state, 'TRN0203');
    expectNone(state, 'TRN0204');
  });
});

describe('TRN0305 StrictWorkloadWithoutSidecarLabel', () => {
  const plain = (app: string, namespace = 'default'): WorkloadRecord => ({ ...wl(app, 'v1', namespace), labels: { app, version: 'v1' } });

  test('namespace-wide STRICT over workloads without the sidecar label: one warning on the policy naming them', () => {
    const base = bookinfo();
    const state = replacing({ ...base, workloads: [...base.workloads, plain('legacy'), plain('batch')] }, pa('default', { mtls: { mode: 'STRICT' } }));
    expectOne(state, 'TRN0305', { level: 'warning', kind: 'PeerAuthentication', resourceName: 'default', path: 'spec.mtls.mode', mentions: ['2 workload(s)', 'default/legacy-v1', 'default/batch-v1'] });
  });

  test('a workload-level PERMISSIVE overriding it, PERMISSIVE, or labelled workloads: nothing', () => {
    const base = bookinfo();
    const withLegacy = { ...base, workloads: [...base.workloads, plain('legacy')] };
    expectNone(replacing(withLegacy, pa('default', { mtls: { mode: 'STRICT' } }), pa('legacy', { selector: { matchLabels: { app: 'legacy' } }, mtls: { mode: 'PERMISSIVE' } })), 'TRN0305');
    expectNone(replacing(withLegacy, pa('default', { mtls: { mode: 'PERMISSIVE' } })), 'TRN0305');
    expectNone(replacing(base, pa('default', { mtls: { mode: 'STRICT' } })), 'TRN0305');
  });

  test('mesh-wide STRICT reports workloads in every namespace on the root policy', () => {
    const base = bookinfo();
    const state = replacing({ ...base, workloads: [...base.workloads, plain('legacy', 'other')] }, pa('default', { mtls: { mode: 'STRICT' } }, 'istio-system'));
    expectOne(state, 'TRN0305', { level: 'warning', kind: 'PeerAuthentication', resourceName: 'default', namespace: 'istio-system', path: 'spec.mtls.mode', mentions: ['1 workload(s)', 'other/legacy-v1'] });
  });
});

describe('TRN0301 MTLSPolicyConflict', () => {
  const strictMesh = pa('default', { mtls: { mode: 'STRICT' } }, 'istio-system');

  test('DISABLE against mesh-wide STRICT', () => {
    const state = replacing(
      bookinfo(),
      strictMesh,
      dr('reviews', { host: 'reviews', trafficPolicy: { tls: { mode: 'DISABLE' } }, subsets: subsets('v1', 'v2', 'v3') }),
    );
    expectOne(state, 'TRN0301', {
      level: 'error',
      kind: 'DestinationRule',
      resourceName: 'reviews',
      path: 'spec.trafficPolicy.tls.mode',
      mentions: ['DISABLE', 'reviews.default.svc.cluster.local:9080', 'istio-system/default', 'mesh-wide'],
    });
  });

  test('SIMPLE on a subset against namespace-wide STRICT', () => {
    const state = replacing(
      bookinfo(),
      pa('default', { mtls: { mode: 'STRICT' } }),
      dr('reviews', {
        host: 'reviews',
        subsets: [...subsets('v1', 'v2'), { name: 'v3', labels: { version: 'v3' }, trafficPolicy: { tls: { mode: 'SIMPLE' } } }],
      }),
    );
    expectOne(state, 'TRN0301', {
      level: 'error',
      kind: 'DestinationRule',
      resourceName: 'reviews',
      path: 'spec.subsets[2].trafficPolicy.tls.mode',
      mentions: ['SIMPLE', 'subset v3', 'default/default', 'namespace-wide'],
    });
  });

  test('port-level DISABLE against a workload-specific STRICT policy', () => {
    const state = replacing(
      bookinfo(),
      pa('ratings-strict', { selector: { matchLabels: { app: 'ratings' } }, mtls: { mode: 'STRICT' } }),
      dr('ratings', {
        host: 'ratings',
        trafficPolicy: { portLevelSettings: [{ port: { number: 9080 }, tls: { mode: 'DISABLE' } }] },
        subsets: subsets('v1'),
      }),
    );
    expectOne(state, 'TRN0301', {
      level: 'error',
      kind: 'DestinationRule',
      resourceName: 'ratings',
      path: 'spec.trafficPolicy.portLevelSettings[0].tls.mode',
      mentions: ['ratings.default.svc.cluster.local:9080', 'default/ratings-strict', 'workload-specific'],
    });
  });

  test('no conflict when a closer policy relaxes STRICT, the selector targets other workloads, or the mode is ISTIO_MUTUAL', () => {
    const disableReviews = dr('reviews', { host: 'reviews', trafficPolicy: { tls: { mode: 'DISABLE' } }, subsets: subsets('v1', 'v2', 'v3') });
    expectNone(replacing(bookinfo(), strictMesh, pa('default', { mtls: { mode: 'PERMISSIVE' } }), disableReviews), 'TRN0301');
    expectNone(
      replacing(bookinfo(), pa('ratings-strict', { selector: { matchLabels: { app: 'ratings' } }, mtls: { mode: 'STRICT' } }), disableReviews),
      'TRN0301',
    );
    expectNone(
      replacing(
        bookinfo(),
        strictMesh,
        pa('reviews-permissive', { selector: { matchLabels: { app: 'reviews' } }, mtls: { mode: 'PERMISSIVE' } }),
        disableReviews,
      ),
      'TRN0301',
    );
    expectNone(
      replacing(bookinfo(), strictMesh, dr('reviews', { host: 'reviews', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } }, subsets: subsets('v1') })),
      'TRN0301',
    );
  });

  test('a mesh-wide wildcard rule applies to services without their own rule, and yields to host-specific ones', () => {
    const base = bookinfo();
    base.services.push(svc('mongodb', 'default', [{ name: 'mongo', number: 27017, protocol: 'TCP' }]));
    base.workloads.push(wl('mongodb', 'v1'));
    const state = withResources(
      base,
      strictMesh,
      dr('plaintext-default', { host: '*.local', trafficPolicy: { tls: { mode: 'DISABLE' } } }, 'istio-system'),
    );
    expectOne(state, 'TRN0301', {
      level: 'error',
      kind: 'DestinationRule',
      resourceName: 'plaintext-default',
      namespace: 'istio-system',
      path: 'spec.trafficPolicy.tls.mode',
      mentions: ['mongodb.default.svc.cluster.local:27017', 'istio-system/default'],
    });
    // every Bookinfo service has its own DestinationRule (without tls): none is affected by the wildcard rule
    assert.equal(one(analyze(state), 'TRN0301').message.includes('reviews'), false);
  });
});

describe('TRN0302 AuthorizationPolicyUnknownNamespace', () => {
  test('a source namespace with no workloads and no services', () => {
    const state = withResources(
      bookinfo(),
      ap('allow-frontend', { selector: { matchLabels: { app: 'reviews' } }, rules: [{ from: [{ source: { namespaces: ['default', 'frontnd'] } }] }] }),
    );
    expectOne(state, 'TRN0302', {
      level: 'warning',
      kind: 'AuthorizationPolicy',
      resourceName: 'allow-frontend',
      path: 'spec.rules[0].from[0].source.namespaces[1]',
      mentions: ['"frontnd"'],
    });
  });

  test('known namespaces and wildcards are fine', () => {
    const state = withResources(
      bookinfo(),
      ap('ok', { rules: [{ from: [{ source: { namespaces: ['default', 'istio-*', '*', '*-system'] } }, { source: { notNamespaces: ['default'] } }] }] }),
    );
    expectNone(state, 'TRN0302');
  });
});

describe('TRN0303 AuthorizationPolicyUnknownPrincipal', () => {
  test('a service account no workload uses', () => {
    const state = withResources(
      bookinfo(),
      ap('reviews-viewer', {
        selector: { matchLabels: { app: 'reviews' } },
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-productpage', 'cluster.local/ns/default/sa/productpage'] } }] }],
      }),
    );
    expectOne(state, 'TRN0303', {
      level: 'warning',
      kind: 'AuthorizationPolicy',
      resourceName: 'reviews-viewer',
      path: 'spec.rules[0].from[0].source.principals[1]',
      mentions: ['cluster.local/ns/default/sa/productpage', '"productpage"', '"default"'],
    });
  });

  test('a spiffe:// principal in a namespace without workloads', () => {
    const state = withResources(
      bookinfo(),
      ap('deny-legacy', { action: 'DENY', rules: [{ from: [{ source: { notPrincipals: ['spiffe://cluster.local/ns/legacy/sa/app'] } }] }] }),
    );
    expectOne(state, 'TRN0303', {
      level: 'warning',
      kind: 'AuthorizationPolicy',
      resourceName: 'deny-legacy',
      path: 'spec.rules[0].from[0].source.notPrincipals[0]',
      mentions: ['spiffe://cluster.local/ns/legacy/sa/app', '"legacy"'],
    });
  });

  test('wildcard forms match what exists', () => {
    const state = withResources(
      bookinfo(),
      ap('ok', {
        rules: [
          {
            from: [
              {
                source: {
                  principals: [
                    '*',
                    '*/ns/default/sa/bookinfo-reviews',
                    'cluster.local/ns/default/sa/*',
                    'cluster.local/ns/default/*',
                    'cluster.local/ns/default/sa/bookinfo-*',
                    'td.example/ns/istio-system/sa/istio-ingressgateway-service-account',
                    '*sa/bookinfo-ratings',
                  ],
                },
              },
            ],
          },
        ],
      }),
    );
    expectNone(state, 'TRN0303');
  });
});

describe('TRN0304 WorkloadSelectorMatchesNoWorkload', () => {
  test('a PeerAuthentication selector matching nothing', () => {
    const state = withResources(bookinfo(), pa('reviewz', { selector: { matchLabels: { app: 'reviewz' } }, mtls: { mode: 'STRICT' } }));
    expectOne(state, 'TRN0304', {
      level: 'warning',
      kind: 'PeerAuthentication',
      resourceName: 'reviewz',
      path: 'spec.selector.matchLabels',
      mentions: ['app=reviewz', '"default"'],
    });
  });

  test('an AuthorizationPolicy selector matching nothing in its own namespace', () => {
    const state = withResources(bookinfo(), ap('deny', { selector: { matchLabels: { app: 'reviews' } }, action: 'DENY', rules: [{}] }, 'other'));
    expectOne(state, 'TRN0304', {
      level: 'warning',
      kind: 'AuthorizationPolicy',
      resourceName: 'deny',
      namespace: 'other',
      path: 'spec.selector.matchLabels',
      mentions: ['app=reviews', '"other"'],
    });
  });

  test('matching selectors, selector-less and targetRef policies are fine', () => {
    const state = withResources(
      bookinfo(),
      pa('reviews', { selector: { matchLabels: { app: 'reviews', version: 'v2' } }, mtls: { mode: 'STRICT' } }),
      pa('ns', { mtls: { mode: 'PERMISSIVE' } }),
      ap('gw', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], rules: [{}] }),
    );
    expectNone(state, 'TRN0304');
  });
});

describe('general', () => {
  test('namespace defaults to "default" when metadata.namespace is absent', () => {
    const state = withResources(bookinfo(), vs('no-ns', { hosts: ['no-ns-host'], http: [{ route: [route('reviews', 'v9')] }] }, undefined));
    const d = one(analyze(state), 'TRN0102');
    assert.equal(d.namespace, 'default');
    assert.equal(d.resourceName, 'no-ns');
    assert.ok(d.message.includes('reviews.default.svc.cluster.local'));
  });

  test('domainSuffix changes the default FQDN of registry services', () => {
    const state: MeshState = {
      services: [{ ...svc('reviews'), hosts: [] }],
      workloads: [wl('reviews', 'v1')],
      resources: [vs('reviews', { hosts: ['reviews'], http: [{ route: [route('reviews.default.svc.corp.test')] }] })],
    };
    assert.deepEqual(analyze(state, { domainSuffix: 'corp.test' }), []);
    assert.equal(only(analyze(state), 'TRN0101').length, 1);
  });

  test('every diagnostic carries the catalogue name and level of its code', () => {
    const diags = analyze(messy());
    assert.ok(diags.length >= 10);
    const byCode = new Map(ANALYZERS.map((a) => [a.code, a]));
    for (const d of diags) {
      const a = byCode.get(d.code);
      assert.ok(a, `unknown code ${d.code}`);
      assert.equal(d.name, a.name);
      assert.equal(d.level, a.level);
    }
  });

  test('malformed resources from other sources do not throw', () => {
    const state: MeshState = {
      ...bookinfo(),
      resources: [
        vs('a', {}),
        vs('b', { hosts: 'reviews', http: [null, { route: [null, { destination: null }] }] }),
        dr('c', { host: '', subsets: [null, { labels: null }] }),
        pa('d', { selector: {}, portLevelMtls: null }),
        ap('e', { rules: [{ from: [{ source: { principals: [null, ''] } }] }] }),
        { kind: 'Gateway', apiVersion: 'networking.istio.io/v1', metadata: { name: 'gw' }, spec: {} } as unknown as Resource,
      ],
    };
    assert.doesNotThrow(() => analyze(state));
  });
});

// ---------------------------------------------------------------------------------------------
// Determinism

/** A state that trips most checks at once. */
function messy(): MeshState {
  return withResources(
    bookinfo(),
    pa('default', { mtls: { mode: 'STRICT' } }, 'istio-system'),
    pa('ghost', { selector: { matchLabels: { app: 'ghost' } }, mtls: { mode: 'STRICT' } }),
    vs('reviews-split', {
      hosts: ['reviews'],
      http: [{ route: [route('reviews', 'v1', 30), route('reviews', 'v4', 30), route('reviewz', undefined, 30)], mirror: { host: 'ratings', subset: 'x' } }],
    }),
    vs('typo', { hosts: ['detials'], http: [{ route: [{ destination: { host: 'details', port: { number: 1 } } }] }] }),
    dr('reviews-dup', { host: 'reviews', trafficPolicy: { tls: { mode: 'DISABLE' } }, subsets: subsets('v1', 'v5') }),
    dr('nowhere', { host: 'nowhere' }),
    dr('ratings-tls', { host: 'ratings', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }),
    ap('ap', {
      selector: { matchLabels: { app: 'nothing' } },
      rules: [{ from: [{ source: { namespaces: ['nope'], principals: ['cluster.local/ns/default/sa/nobody', 'cluster.local/ns/x/sa/y'] } }] }],
    }),
  );
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('determinism', () => {
  test('shuffled input gives identical, sorted output', () => {
    const base = messy();
    const expected = analyze(base);
    const codes = new Set(expected.map((d) => d.code));
    for (const c of ['TRN0101', 'TRN0102', 'TRN0103', 'TRN0104', 'TRN0105', 'TRN0106', 'TRN0201', 'TRN0202', 'TRN0203', 'TRN0204', 'TRN0301', 'TRN0302', 'TRN0303', 'TRN0304']) {
      assert.ok(codes.has(c), `messy() should trigger ${c}`);
    }
    for (let seed = 1; seed <= 25; seed++) {
      const state: MeshState = {
        resources: shuffled(base.resources, seed),
        services: shuffled(base.services, seed * 7),
        workloads: shuffled(base.workloads, seed * 13),
      };
      assert.deepEqual(analyze(state), expected, `seed ${seed}`);
    }
    const keys = expected.map((d) => [d.namespace, d.kind, d.resourceName, d.path, d.code, d.message].join('\u0000'));
    assert.deepEqual(keys, [...keys].sort());
  });

  test('analyze does not mutate its input', () => {
    const state = messy();
    const before = JSON.stringify(state);
    analyze(state);
    assert.equal(JSON.stringify(state), before);
  });
});
