import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  KINDS,
  KIND_API_VERSIONS,
  parseDurationMs,
  parseResource,
  parseYamlDocuments,
  resolveKind,
  type FieldIssue,
  type MeshResource,
} from '../src/istio/index.ts';

const here = dirname(fileURLToPath(import.meta.url));
// Istio's samples live with the project's samples; only the exhaustive field file is test-only.
const fixturePath = (file: string) => (file === 'all-fields.yaml' ? join(here, 'fixtures', file) : join(here, '../../../samples/bookinfo', file));

function loadFixture(file: string): unknown[] {
  const entries = parseYamlDocuments(readFileSync(fixturePath(file), 'utf8'));
  for (const e of entries) assert.equal(e.error, undefined, `${file} document ${e.index}: ${e.error?.message}`);
  return entries.map((e) => e.doc);
}

function parseOk(doc: unknown): MeshResource {
  const r = parseResource(doc);
  assert.ok(r.ok, `expected success, got ${r.ok ? '' : JSON.stringify(r.issues, null, 2)}`);
  return r.resource;
}

function issuesOf(doc: unknown): FieldIssue[] {
  const r = parseResource(doc);
  assert.ok(!r.ok, 'expected the document to be rejected');
  return r.issues;
}

/** Asserts an issue with exactly this path and rule, and returns it. */
function expectIssue(doc: unknown, path: string, rule: string): FieldIssue {
  const issues = issuesOf(doc);
  const hit = issues.find((i) => i.path === path && i.rule === rule);
  assert.ok(hit, `expected ${rule} at ${JSON.stringify(path)}, got ${JSON.stringify(issues, null, 2)}`);
  assert.ok(hit.message.length > 0 && /[.!?]$/.test(hit.message), `message should be a sentence: ${hit.message}`);
  return hit;
}

const clone = <T>(v: T): T => structuredClone(v);

// A small valid document of each kind, mutated by the negative tests below.
const vs = () =>
  clone({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews' },
    spec: {
      hosts: ['reviews'],
      http: [
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
            { destination: { host: 'reviews', subset: 'v2' }, weight: 50 },
          ],
        },
      ],
    } as Record<string, any>,
  });

const dr = () =>
  clone({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews' },
    spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] } as Record<string, any>,
  });

const se = () =>
  clone({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'httpbin-ext' },
    spec: { hosts: ['httpbin.org'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', location: 'MESH_EXTERNAL' } as Record<string, any>,
  });

const pa = () =>
  clone({
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'default', namespace: 'istio-system' },
    spec: { mtls: { mode: 'STRICT' } } as Record<string, any>,
  });

const ap = () =>
  clone({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'get-ratings' },
    spec: {
      selector: { matchLabels: { app: 'ratings' } },
      action: 'ALLOW',
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-reviews'] } }], to: [{ operation: { methods: ['GET'] } }] }],
    } as Record<string, any>,
  });

describe('Istio samples from the documentation', () => {
  const samples: Array<[string, number, string]> = [
    ['destination-rule-all.yaml', 4, 'DestinationRule'],
    ['virtual-service-all-v1.yaml', 4, 'VirtualService'],
    ['virtual-service-reviews-test-v2.yaml', 1, 'VirtualService'],
    ['virtual-service-ratings-test-delay.yaml', 1, 'VirtualService'],
    ['virtual-service-ratings-test-abort.yaml', 1, 'VirtualService'],
    ['virtual-service-reviews-50-v3.yaml', 1, 'VirtualService'],
    ['peer-authentication-strict.yaml', 1, 'PeerAuthentication'],
    ['authorization-policy-get-ratings.yaml', 1, 'AuthorizationPolicy'],
    ['service-entry-external.yaml', 2, 'ServiceEntry'],
  ];
  for (const [file, count, kind] of samples) {
    it(`${file} parses`, () => {
      const docs = loadFixture(file);
      assert.equal(docs.length, count);
      for (const d of docs) assert.equal(parseOk(d).kind, kind);
    });
  }

  it('fills in the default namespace and keeps the given one', () => {
    const [review] = loadFixture('virtual-service-reviews-test-v2.yaml');
    assert.equal(parseOk(review).metadata.namespace, 'default');
    const [strict] = loadFixture('peer-authentication-strict.yaml');
    assert.equal(parseOk(strict).metadata.namespace, 'istio-system');
  });

  it('keeps the parsed values (delay sample)', () => {
    const [delay] = loadFixture('virtual-service-ratings-test-delay.yaml');
    const r = parseOk(delay);
    assert.equal(r.kind, 'VirtualService');
    if (r.kind !== 'VirtualService') return;
    assert.equal(r.spec.http?.[0]?.fault?.delay?.fixedDelay, '7s');
    assert.equal(r.spec.http?.[0]?.fault?.delay?.percentage?.value, 100);
    assert.deepEqual(r.spec.http?.[0]?.match?.[0]?.headers?.['end-user'], { exact: 'jason' });
  });

  it('accepts every documented field (all-fields.yaml)', () => {
    const docs = loadFixture('all-fields.yaml');
    assert.equal(docs.length, 9);
    for (const d of docs) parseOk(d);
  });
});

describe('kind and apiVersion come first', () => {
  it('unknown kind is a single issue at kind', () => {
    const doc = { ...vs(), kind: 'Gateway', spec: { bogus: true } };
    const issues = issuesOf(doc);
    assert.deepEqual(
      issues.map((i) => [i.path, i.rule]),
      [['kind', 'unknown_kind']],
    );
  });

  it('suggests the kind for a lower-case or plural spelling', () => {
    const hit = expectIssue({ ...vs(), kind: 'virtualservices' }, 'kind', 'unknown_kind');
    assert.match(hit.message, /Did you mean VirtualService\?/);
  });

  it('missing kind is required', () => {
    const { kind: _k, ...doc } = vs();
    expectIssue(doc, 'kind', 'required');
  });

  it('apiVersion not served for the kind', () => {
    const issues = issuesOf({ ...pa(), apiVersion: 'security.istio.io/v1alpha1' });
    assert.deepEqual(
      issues.map((i) => [i.path, i.rule]),
      [['apiVersion', 'unsupported_api_version']],
    );
    expectIssue({ ...ap(), apiVersion: 'networking.istio.io/v1' }, 'apiVersion', 'unsupported_api_version');
    expectIssue({ ...vs(), apiVersion: 'networking.istio.io/v2' }, 'apiVersion', 'unsupported_api_version');
  });

  it('every accepted apiVersion parses', () => {
    for (const v of KIND_API_VERSIONS.VirtualService) parseOk({ ...vs(), apiVersion: v });
    for (const v of KIND_API_VERSIONS.DestinationRule) parseOk({ ...dr(), apiVersion: v });
    for (const v of KIND_API_VERSIONS.ServiceEntry) parseOk({ ...se(), apiVersion: v });
    for (const v of KIND_API_VERSIONS.PeerAuthentication) parseOk({ ...pa(), apiVersion: v });
    for (const v of KIND_API_VERSIONS.AuthorizationPolicy) parseOk({ ...ap(), apiVersion: v });
  });

  it('non-object documents', () => {
    for (const doc of [[vs()], 'VirtualService', 42, null, undefined, true]) {
      const issues = issuesOf(doc);
      assert.deepEqual(
        issues.map((i) => [i.path, i.rule]),
        [['', 'not_an_object']],
      );
    }
  });
});

describe('field validation', () => {
  it('unknown field deep inside', () => {
    const doc = vs();
    doc.spec.http[0].route[1].destination.subsett = 'v2';
    const hit = expectIssue(doc, 'spec.http[0].route[1].destination.subsett', 'unknown_field');
    assert.match(hit.message, /subsett/);
  });

  it('unknown top-level and metadata fields', () => {
    expectIssue({ ...vs(), specs: {} }, 'specs', 'unknown_field');
    const doc = vs();
    (doc.metadata as Record<string, unknown>).nmae = 'x';
    expectIssue(doc, 'metadata.nmae', 'unknown_field');
  });

  it('missing required field', () => {
    const doc = dr();
    delete doc.spec.host;
    expectIssue(doc, 'spec.host', 'required');
    const noSpec = vs() as Record<string, unknown>;
    delete noSpec.spec;
    expectIssue(noSpec, 'spec', 'required');
  });

  it('wrong type', () => {
    const doc = vs();
    doc.spec.hosts = 'reviews';
    const hit = expectIssue(doc, 'spec.hosts', 'type');
    assert.match(hit.message, /must be a list, not the string "reviews"/);
    const dr1 = dr();
    dr1.spec.trafficPolicy = { connectionPool: { tcp: { maxConnections: '100' } } };
    expectIssue(dr1, 'spec.trafficPolicy.connectionPool.tcp.maxConnections', 'type');
  });

  it('negative number', () => {
    const doc = dr();
    doc.spec.trafficPolicy = { connectionPool: { tcp: { maxConnections: -1 } } };
    expectIssue(doc, 'spec.trafficPolicy.connectionPool.tcp.maxConnections', 'min');
    const retries = vs();
    retries.spec.http[0].retries = { attempts: -3 };
    expectIssue(retries, 'spec.http[0].retries.attempts', 'min');
  });

  it('number over range', () => {
    const doc = dr();
    doc.spec.trafficPolicy = { outlierDetection: { consecutive5xxErrors: 4294967296 } };
    expectIssue(doc, 'spec.trafficPolicy.outlierDetection.consecutive5xxErrors', 'max');
    const int32 = dr();
    int32.spec.trafficPolicy = { connectionPool: { http: { http2MaxRequests: 2147483648 } } };
    expectIssue(int32, 'spec.trafficPolicy.connectionPool.http.http2MaxRequests', 'max');
    const portDoc = se();
    portDoc.spec.ports[0].number = 70000;
    expectIssue(portDoc, 'spec.ports[0].number', 'max');
  });

  it('non-integer where an integer is required', () => {
    const doc = vs();
    doc.spec.http[0].route[0].weight = 49.5;
    expectIssue(doc, 'spec.http[0].route[0].weight', 'integer');
  });

  it('weight 101', () => {
    const doc = vs();
    doc.spec.http[0].route = [{ destination: { host: 'reviews' }, weight: 101 }];
    expectIssue(doc, 'spec.http[0].route[0].weight', 'max');
  });

  it('weights summing to 90', () => {
    const doc = vs();
    doc.spec.http[0].route[1].weight = 40;
    const hit = expectIssue(doc, 'spec.http[0].route', 'weights_sum_100');
    assert.match(hit.message, /50 \+ 40 = 90/);
  });

  it('weights also add up to 100 on tcp and tls routes', () => {
    const doc = vs();
    doc.spec.tcp = [{ route: [{ destination: { host: 'db' }, weight: 30 }, { destination: { host: 'db2' }, weight: 30 }] }];
    expectIssue(doc, 'spec.tcp[0].route', 'weights_sum_100');
  });

  it('a single destination needs no weight', () => {
    const doc = vs();
    doc.spec.http[0].route = [{ destination: { host: 'reviews' } }];
    parseOk(doc);
  });

  it('bad duration', () => {
    for (const bad of ['10 seconds', '10', 'abc', '1.5.s', '-1s', '']) {
      const doc = vs();
      doc.spec.http[0].timeout = bad;
      expectIssue(doc, 'spec.http[0].timeout', 'duration');
    }
    const tooShort = vs();
    tooShort.spec.http[0].timeout = '500us';
    expectIssue(tooShort, 'spec.http[0].timeout', 'min');
  });

  it('bad enum', () => {
    const doc = pa();
    doc.spec.mtls.mode = 'STRICTER';
    const hit = expectIssue(doc, 'spec.mtls.mode', 'enum');
    assert.match(hit.message, /UNSET, DISABLE, PERMISSIVE, STRICT/);
    const lb = dr();
    lb.spec.trafficPolicy = { loadBalancer: { simple: 'round_robin' } };
    expectIssue(lb, 'spec.trafficPolicy.loadBalancer.simple', 'enum');
    const action = ap();
    action.spec.action = 'PERMIT';
    expectIssue(action, 'spec.action', 'enum');
  });
});

describe('metadata', () => {
  const named = (name: unknown) => ({ ...vs(), metadata: { name } });

  it('name with upper case', () => {
    const hit = expectIssue(named('Reviews'), 'metadata.name', 'dns1123_subdomain');
    assert.match(hit.message, /uppercase letter "R"/);
  });

  it('name with unicode', () => {
    const hit = expectIssue(named('réviews'), 'metadata.name', 'dns1123_subdomain');
    assert.match(hit.message, /non-ASCII character "é" \(U\+00E9\)/);
    expectIssue(named('reviews\u200b'), 'metadata.name', 'dns1123_subdomain');
  });

  it('name with control characters', () => {
    for (const name of ['rev\u0000iews', 'reviews\n', 'rev\tiews', 'a\u007f']) {
      const hit = expectIssue(named(name), 'metadata.name', 'dns1123_subdomain');
      assert.match(hit.message, /control character U\+00/);
    }
  });

  it('name shape', () => {
    expectIssue(named('-reviews'), 'metadata.name', 'dns1123_subdomain');
    expectIssue(named('reviews.'), 'metadata.name', 'dns1123_subdomain');
    expectIssue(named('a..b'), 'metadata.name', 'dns1123_subdomain');
    expectIssue(named(''), 'metadata.name', 'dns1123_subdomain');
    parseOk(named('reviews-v2.prod'));
  });

  it('name too long', () => {
    parseOk(named('a'.repeat(253)));
    expectIssue(named('a'.repeat(254)), 'metadata.name', 'max_length');
  });

  it('name is required', () => {
    expectIssue({ ...vs(), metadata: { namespace: 'default' } }, 'metadata.name', 'required');
  });

  it('namespace is a DNS-1123 label', () => {
    const dotted = vs();
    (dotted.metadata as Record<string, unknown>).namespace = 'a.b';
    expectIssue(dotted, 'metadata.namespace', 'dns1123_label');
    const long = vs();
    (long.metadata as Record<string, unknown>).namespace = 'n'.repeat(64);
    expectIssue(long, 'metadata.namespace', 'max_length');
  });

  it('generateName is not supported', () => {
    const doc = vs();
    (doc.metadata as Record<string, unknown>).generateName = 'reviews-';
    expectIssue(doc, 'metadata.generateName', 'unsupported_field');
  });

  it('label keys and values follow Kubernetes rules', () => {
    const doc = vs();
    (doc.metadata as Record<string, unknown>).labels = { 'app.kubernetes.io/name': 'ok', 'bad key': 'x', good: 'bad value!' };
    expectIssue(doc, 'metadata.labels["bad key"]', 'label_key');
    expectIssue(doc, 'metadata.labels.good', 'label_value');
    const long = vs();
    (long.metadata as Record<string, unknown>).labels = { app: 'v'.repeat(64) };
    expectIssue(long, 'metadata.labels.app', 'label_value');
  });

  it('accepts server-populated fields from kubectl get -o yaml', () => {
    const doc = vs();
    Object.assign(doc.metadata, { uid: 'x', resourceVersion: '1', generation: 2, creationTimestamp: null, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } });
    parseOk(doc);
  });

  it('status is accepted and not validated', () => {
    parseOk({ ...vs(), status: { anything: [1, 2, { deep: true }] } });
    expectIssue({ ...vs(), status: 'fine' }, 'status', 'type');
  });
});

describe('VirtualService cross-field rules', () => {
  it('redirect together with route', () => {
    const doc = vs();
    doc.spec.http[0].redirect = { uri: '/v2' };
    expectIssue(doc, 'spec.http[0].redirect', 'redirect_with_route');
  });

  it('directResponse together with route', () => {
    const doc = vs();
    doc.spec.http[0].directResponse = { status: 503 };
    expectIssue(doc, 'spec.http[0].directResponse', 'direct_response_with_route');
  });

  it('directResponse together with redirect', () => {
    const doc = vs();
    doc.spec.http[0] = { redirect: { uri: '/x' }, directResponse: { status: 200 } };
    expectIssue(doc, 'spec.http[0].directResponse', 'direct_response_with_redirect');
  });

  it('a route with nothing to do', () => {
    const doc = vs();
    doc.spec.http[0] = { name: 'empty', timeout: '1s' };
    expectIssue(doc, 'spec.http[0]', 'route_required');
  });

  it('mirrorPercent with mirrorPercentage', () => {
    const doc = vs();
    Object.assign(doc.spec.http[0], { mirror: { host: 'shadow' }, mirrorPercent: 10, mirrorPercentage: { value: 10 } });
    expectIssue(doc, 'spec.http[0].mirrorPercent', 'mirror_percent_with_mirror_percentage');
  });

  it('mirror with mirrors', () => {
    const doc = vs();
    Object.assign(doc.spec.http[0], { mirror: { host: 'shadow' }, mirrors: [{ destination: { host: 'other' } }] });
    expectIssue(doc, 'spec.http[0].mirrors', 'mirror_with_mirrors');
  });

  it('an http match header with no match type', () => {
    const doc = vs();
    doc.spec.http[0].match = [{ headers: { 'end-user': null } }];
    expectIssue(doc, 'spec.http[0].match[0].headers.end-user', 'match_type_required');
    // {} is Istio's documented "header is present" match.
    const present = vs();
    present.spec.http[0].match = [{ headers: { 'end-user': {} } }];
    parseOk(present);
  });

  it('a string match with two match types', () => {
    const doc = vs();
    doc.spec.http[0].match = [{ uri: { exact: '/a', prefix: '/a' } }];
    expectIssue(doc, 'spec.http[0].match[0].uri', 'one_of');
  });

  it('percentages are 0 to 100', () => {
    const doc = vs();
    doc.spec.http[0].fault = { abort: { httpStatus: 500, percentage: { value: 100.5 } } };
    expectIssue(doc, 'spec.http[0].fault.abort.percentage.value', 'max');
    const neg = vs();
    neg.spec.http[0].fault = { delay: { fixedDelay: '1s', percentage: { value: -1 } } };
    expectIssue(neg, 'spec.http[0].fault.delay.percentage.value', 'min');
  });

  it('fault, retries, redirect and CORS checks', () => {
    const fault = vs();
    fault.spec.http[0].fault = {};
    expectIssue(fault, 'spec.http[0].fault', 'fault_type_required');
    const retries = vs();
    retries.spec.http[0].retries = { attempts: 0, perTryTimeout: '1s' };
    expectIssue(retries, 'spec.http[0].retries.attempts', 'retries_disabled');
    const retryOn = vs();
    retryOn.spec.http[0].retries = { attempts: 2, retryOn: '5xx,sometimes' };
    expectIssue(retryOn, 'spec.http[0].retries.retryOn', 'retry_on');
    const redirect = vs();
    redirect.spec.http[0] = { redirect: { redirectCode: 200, uri: '/' } };
    expectIssue(redirect, 'spec.http[0].redirect.redirectCode', 'min');
    const cors = vs();
    cors.spec.http[0].corsPolicy = { allowMethods: ['GET', 'FETCH'], maxAge: '1.5s' };
    expectIssue(cors, 'spec.http[0].corsPolicy.allowMethods[1]', 'http_method');
    expectIssue(cors, 'spec.http[0].corsPolicy.maxAge', 'duration_precision');
  });

  it('delegate VirtualServices (no hosts) carry http routes only', () => {
    const doc = vs();
    doc.spec.hosts = [];
    doc.spec.gateways = ['mesh'];
    expectIssue(doc, 'spec.gateways', 'delegate_gateways');
  });

  it('needs at least one route list', () => {
    const doc = vs();
    delete doc.spec.http;
    expectIssue(doc, 'spec', 'routes_required');
  });

  it('host and subset names', () => {
    const doc = vs();
    doc.spec.http[0].route[0].destination.subset = 'V1';
    expectIssue(doc, 'spec.http[0].route[0].destination.subset', 'dns1123_label');
    const host = vs();
    host.spec.hosts = ['reviews', 'bad_host'];
    expectIssue(host, 'spec.hosts[1]', 'hostname');
    const gw = vs();
    gw.spec.gateways = ['ns/'];
    expectIssue(gw, 'spec.gateways[0]', 'gateway_name');
    const dup = vs();
    dup.spec.hosts = ['reviews', 'Reviews'];
    expectIssue(dup, 'spec.hosts[1]', 'unique');
  });

  it('exportTo', () => {
    const doc = vs();
    doc.spec.exportTo = ['*', 'bookinfo'];
    expectIssue(doc, 'spec.exportTo', 'export_to');
  });
});

describe('DestinationRule cross-field rules', () => {
  it('duplicate subset names', () => {
    const doc = dr();
    doc.spec.subsets.push({ name: 'v1', labels: { version: 'v1b' } });
    expectIssue(doc, 'spec.subsets[1].name', 'unique');
  });

  it('load balancer oneofs', () => {
    const doc = dr();
    doc.spec.trafficPolicy = { loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } };
    expectIssue(doc, 'spec.trafficPolicy.loadBalancer.consistentHash', 'one_of');
    const ch = dr();
    ch.spec.trafficPolicy = { loadBalancer: { consistentHash: { httpHeaderName: 'x', useSourceIp: true } } };
    expectIssue(ch, 'spec.trafficPolicy.loadBalancer.consistentHash.useSourceIp', 'one_of');
    const maglev = dr();
    maglev.spec.trafficPolicy = { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 1000 } } } };
    expectIssue(maglev, 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'prime');
  });

  it('locality distribute weights add up to 100', () => {
    const doc = dr();
    doc.spec.trafficPolicy = { loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 60, 'b/*': 30 } }] } } };
    expectIssue(doc, 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to', 'weights_sum_100');
  });

  it('mutual TLS needs certificates unless a credential is named', () => {
    const doc = dr();
    doc.spec.trafficPolicy = { tls: { mode: 'MUTUAL' } };
    expectIssue(doc, 'spec.trafficPolicy.tls.clientCertificate', 'required');
    expectIssue(doc, 'spec.trafficPolicy.tls.privateKey', 'required');
    const cred = dr();
    cred.spec.trafficPolicy = { tls: { mode: 'MUTUAL', credentialName: 'client' } };
    parseOk(cred);
  });

  it('empty traffic policy, tunnel with proxyProtocol, idle timeout 0s', () => {
    const empty = dr();
    empty.spec.trafficPolicy = {};
    expectIssue(empty, 'spec.trafficPolicy', 'not_empty');
    const both = dr();
    both.spec.trafficPolicy = { tunnel: { targetHost: 'egress', targetPort: 8080 }, proxyProtocol: { version: 'V1' } };
    expectIssue(both, 'spec.trafficPolicy.proxyProtocol', 'tunnel_with_proxy_protocol');
    const idle = dr();
    idle.spec.trafficPolicy = { connectionPool: { tcp: { idleTimeout: '0s' }, http: { idleTimeout: '0s' } } };
    const issues = issuesOf(idle);
    assert.ok(!issues.some((i) => i.path.endsWith('tcp.idleTimeout')), JSON.stringify(issues));
    assert.ok(issues.some((i) => i.path === 'spec.trafficPolicy.connectionPool.http.idleTimeout' && i.rule === 'min'));
  });
});

describe('ServiceEntry cross-field rules', () => {
  it('endpoints need a resolution that uses them', () => {
    const doc = se();
    doc.spec.resolution = 'NONE';
    doc.spec.endpoints = [{ address: '1.2.3.4' }];
    expectIssue(doc, 'spec.endpoints', 'resolution_none_with_endpoints');
  });

  it('workloadSelector and endpoints are exclusive', () => {
    const doc = se();
    doc.spec.resolution = 'STATIC';
    doc.spec.endpoints = [{ address: '1.2.3.4' }];
    doc.spec.workloadSelector = { labels: { app: 'x' } };
    expectIssue(doc, 'spec.workloadSelector', 'workload_selector_with_endpoints');
  });

  it('hosts, ports and addresses', () => {
    const star = se();
    star.spec.hosts = ['*'];
    expectIssue(star, 'spec.hosts[0]', 'hostname');
    const dupPort = se();
    dupPort.spec.ports.push({ number: 80, name: 'http-alt', protocol: 'HTTP' });
    expectIssue(dupPort, 'spec.ports[1].number', 'unique');
    const cidr = se();
    cidr.spec.addresses = ['10.0.0.0/24'];
    expectIssue(cidr, 'spec.addresses[0]', 'cidr_requires_static');
    const badAddr = se();
    badAddr.spec.addresses = ['10.0.0.300'];
    expectIssue(badAddr, 'spec.addresses[0]', 'ip_address');
    const noName = se();
    delete noName.spec.ports[0].name;
    expectIssue(noName, 'spec.ports[0].name', 'required');
  });

  it('endpoints in WorkloadEntry shape', () => {
    const doc = se();
    doc.spec.resolution = 'STATIC';
    doc.spec.endpoints = [{ address: 'not-an-ip', ports: { http: 8080, grpc: 9090 }, weight: -1 }];
    expectIssue(doc, 'spec.endpoints[0].weight', 'min');
    const good = se();
    good.spec.resolution = 'STATIC';
    good.spec.endpoints = [{ address: 'not-an-ip', ports: { grpc: 9090 } }];
    expectIssue(good, 'spec.endpoints[0].address', 'ip_address');
    expectIssue(good, 'spec.endpoints[0].ports.grpc', 'unknown_port');
  });
});

describe('security cross-field rules', () => {
  it('portLevelMtls needs a workload selector and valid ports', () => {
    const doc = pa();
    doc.spec.portLevelMtls = { '8080': { mode: 'DISABLE' } };
    expectIssue(doc, 'spec.portLevelMtls', 'port_level_mtls_requires_selector');
    const badPort = pa();
    badPort.spec.selector = { matchLabels: { app: 'x' } };
    badPort.spec.portLevelMtls = { '0': { mode: 'DISABLE' }, http: { mode: 'STRICT' } };
    expectIssue(badPort, 'spec.portLevelMtls["0"]', 'port');
    expectIssue(badPort, 'spec.portLevelMtls.http', 'port');
  });

  it('empty specs are allowed for the security kinds', () => {
    const r = parseOk({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'allow-nothing' }, spec: {} });
    assert.deepEqual(r.spec, {});
    parseOk({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default' } });
  });

  it('authorization policy rules', () => {
    const provider = ap();
    provider.spec.provider = { name: 'opa' };
    expectIssue(provider, 'spec.provider', 'provider_requires_custom');
    const custom = ap();
    custom.spec.action = 'CUSTOM';
    expectIssue(custom, 'spec.provider.name', 'required');
    const deny = ap();
    deny.spec.action = 'DENY';
    delete deny.spec.rules;
    expectIssue(deny, 'spec.rules', 'rules_required');
    const sel = ap();
    sel.spec.targetRef = { kind: 'Service', name: 'ratings' };
    expectIssue(sel, 'spec.targetRef', 'one_of');
    const emptySource = ap();
    emptySource.spec.rules[0].from[0].source = {};
    expectIssue(emptySource, 'spec.rules[0].from[0].source', 'not_empty');
    const ip = ap();
    ip.spec.rules[0].from[0].source = { ipBlocks: ['10.0.0.0/33'] };
    expectIssue(ip, 'spec.rules[0].from[0].source.ipBlocks[0]', 'cidr');
    const port = ap();
    port.spec.rules[0].to[0].operation = { ports: ['http'] };
    expectIssue(port, 'spec.rules[0].to[0].operation.ports[0]', 'port');
    const when = ap();
    when.spec.rules[0].when = [{ key: 'request.headers[x]' }];
    expectIssue(when, 'spec.rules[0].when[0]', 'not_empty');
    const target = ap();
    delete target.spec.selector;
    target.spec.targetRefs = [{ kind: 'Deployment', group: 'apps', name: 'x' }];
    expectIssue(target, 'spec.targetRefs[0]', 'target_ref_kind');
    const sa = ap();
    sa.spec.rules[0].from[0].source.serviceAccounts = ['default/reviews'];
    expectIssue(sa, 'spec.rules[0].from[0].source', 'service_accounts_with_principals');
  });

  it('selectors reject wildcards', () => {
    const doc = ap();
    doc.spec.selector = { matchLabels: { app: 'rat*' } };
    expectIssue(doc, 'spec.selector.matchLabels.app', 'label_value');
  });
});

describe('helpers', () => {
  it('parseDurationMs', () => {
    assert.equal(parseDurationMs('10s'), 10_000);
    assert.equal(parseDurationMs('1.5s'), 1_500);
    assert.equal(parseDurationMs('500ms'), 500);
    assert.equal(parseDurationMs('3m'), 180_000);
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('2h45m30.5s'), 9_930_500);
    assert.equal(parseDurationMs('250us'), 0.25);
    assert.equal(parseDurationMs('250µs'), 0.25);
    assert.equal(parseDurationMs('100ns'), 0.0001);
    assert.equal(parseDurationMs('.5s'), 500);
    assert.equal(parseDurationMs('0'), 0);
    assert.equal(parseDurationMs('0s'), 0);
    for (const bad of ['', '10', 's', '.s', '1d', '10 s', ' 10s', '1h 30m', '-1s', '1e3s', '1,5s', 'PT10S', '1.2.3s']) {
      assert.equal(parseDurationMs(bad), null, bad);
    }
  });

  it('resolveKind maps CLI names to kinds', () => {
    const cases: Record<string, string> = {
      virtualservice: 'VirtualService',
      virtualservices: 'VirtualService',
      vs: 'VirtualService',
      VirtualService: 'VirtualService',
      destinationrule: 'DestinationRule',
      destinationrules: 'DestinationRule',
      dr: 'DestinationRule',
      serviceentry: 'ServiceEntry',
      serviceentries: 'ServiceEntry',
      se: 'ServiceEntry',
      peerauthentication: 'PeerAuthentication',
      peerauthentications: 'PeerAuthentication',
      pa: 'PeerAuthentication',
      authorizationpolicy: 'AuthorizationPolicy',
      authorizationpolicies: 'AuthorizationPolicy',
      ap: 'AuthorizationPolicy',
      'vs.networking.istio.io': 'VirtualService',
      'authorizationpolicies.security.istio.io': 'AuthorizationPolicy',
    };
    for (const [typed, kind] of Object.entries(cases)) assert.equal(resolveKind(typed), kind, typed);
    assert.equal(resolveKind('gateway'), undefined);
    assert.equal(resolveKind('pa.networking.istio.io'), undefined);
    assert.deepEqual([...KINDS], ['VirtualService', 'DestinationRule', 'ServiceEntry', 'PeerAuthentication', 'AuthorizationPolicy']);
  });
});
