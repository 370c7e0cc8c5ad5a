import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServiceRecord, StoredResource } from '../src/lib/api-types.ts';
import { toYaml, cleanResource } from '../src/lib/traffic.ts';
import { destinationRuleFor } from '../src/lib/wizards/common.ts';
import { durationWords } from '../src/lib/wizards/destination-rule.ts';
import { checkDuration, checkInt, checkPercent, parseDurationMs } from '../src/lib/wizards/fields.ts';
import {
  circuitBreakerFormFrom,
  describeCircuitBreaker,
  EMPTY_CIRCUIT_BREAKER,
  keptCircuitBreakerFields,
  planCircuitBreaker,
  type CircuitBreakerForm,
} from '../src/lib/wizards/circuit-breaker.ts';
import { describeLoadBalancer, EMPTY_LOAD_BALANCER, loadBalancerFormFrom, planLoadBalancer, type LoadBalancerForm } from '../src/lib/wizards/load-balancer.ts';

// The DestinationRule wizards' pure logic: form state to the rule they write (changing only their
// own part), the stored rule back to form state, and field errors for bad input.

const reviews: ServiceRecord = { namespace: 'default', name: 'reviews', hosts: ['reviews.default.svc.cluster.local'], ports: [{ number: 9080, protocol: 'HTTP' }], labels: {}, resourceVersion: '1' };

function stored(kind: string, name: string, spec: Record<string, unknown>, rv = '5', extraMeta: Record<string, unknown> = {}): StoredResource {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace: 'default', uid: 'u', resourceVersion: rv, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z', ...extraMeta }, spec } as StoredResource;
}

const SUBSETS = [
  { name: 'v1', labels: { version: 'v1' } },
  { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } },
];

const drWithSubsets = () =>
  stored('DestinationRule', 'reviews-dr', {
    host: 'reviews',
    exportTo: ['.'],
    subsets: SUBSETS,
    trafficPolicy: {
      tls: { mode: 'ISTIO_MUTUAL' },
      connectionPool: { tcp: { maxConnections: 100, tcpKeepalive: { time: '7200s' } }, http: { idleTimeout: '1h' } },
      outlierDetection: { consecutive5xxErrors: 7, minHealthPercent: 50 },
    },
  }, '8', { labels: { team: 'books' }, annotations: { note: 'keep me' } });

const cb = (patch: Partial<CircuitBreakerForm>): CircuitBreakerForm => ({ ...EMPTY_CIRCUIT_BREAKER, ...patch });
const lbf = (patch: Partial<LoadBalancerForm>): LoadBalancerForm => ({ ...EMPTY_LOAD_BALANCER, ...patch });

describe('field checks', () => {
  test('durations as Istio reads them; a bare number or junk is refused', () => {
    assert.equal(parseDurationMs('10s'), 10_000);
    assert.equal(parseDurationMs('500ms'), 500);
    assert.equal(parseDurationMs('1m30s'), 90_000);
    assert.equal(parseDurationMs('1.5s'), 1500);
    assert.equal(parseDurationMs('0'), 0);
    for (const bad of ['abc', '10', '10 s', '-1s', 's', '1x', '']) assert.equal(parseDurationMs(bad), null, bad);
    assert.deepEqual(checkDuration(''), { ok: true, value: undefined }, 'empty = not set');
    assert.deepEqual(checkDuration(' 30s '), { ok: true, value: '30s' });
    assert.deepEqual(checkDuration('abc'), { ok: false, message: 'must be a duration such as "10s", "500ms" or "1m30s" (got "abc")', code: 'duration' });
    assert.deepEqual(checkDuration('0s'), { ok: false, message: 'must be at least 1ms (got "0s")', code: 'duration', value: '0s' });
    assert.deepEqual(checkDuration('0s', { minMs: 0 }), { ok: true, value: '0s' });
  });

  test('integers and percentages', () => {
    assert.deepEqual(checkInt('3', { min: 1, max: 10 }), { ok: true, value: 3 });
    assert.deepEqual(checkInt('0', { min: 1, max: 10, why: 'because' }), { ok: false, message: 'must be at least 1 (got 0): because', code: 'range', value: 0 });
    assert.deepEqual(checkInt('1.5', { min: 1, max: 10 }), { ok: false, message: 'must be a whole number (got "1.5")', code: 'integer' });
    assert.deepEqual(checkInt('11', { min: 1, max: 10 }), { ok: false, message: 'must be at most 10 (got 11)', code: 'range', value: 11 });
    assert.deepEqual(checkPercent('100'), { ok: true, value: 100 });
    assert.deepEqual(checkPercent('101'), { ok: false, message: 'must be a percentage from 0 to 100 (got 101)', code: 'percent', value: 101 });
    assert.deepEqual(checkPercent('ten'), { ok: false, message: 'must be a whole-number percentage from 0 to 100 (got "ten")', code: 'percent' });
  });

  test('durations in words', () => {
    assert.equal(durationWords('30s'), '30 seconds');
    assert.equal(durationWords('1m30s'), '1 minute 30 seconds');
    assert.equal(durationWords('500ms'), '500 ms');
    assert.equal(durationWords('2h'), '2 hours');
    assert.equal(durationWords('1.5s'), '1.5 seconds');
  });
});

describe('circuit breaker planner', () => {
  test('no DestinationRule yet: one named after the service with exactly the limits asked for', () => {
    const plan = planCircuitBreaker({
      service: reviews,
      existing: undefined,
      form: cb({ pool: true, maxConnections: '1', http1MaxPendingRequests: '1', maxRequestsPerConnection: '1', outlier: true, consecutive5xxErrors: '1', interval: '1s', baseEjectionTime: '3m', maxEjectionPercent: '100' }),
    });
    assert.deepEqual(plan.errors, []);
    assert.equal(plan.existing, undefined);
    assert.equal(
      toYaml([cleanResource(plan.document)]),
      [
        'apiVersion: networking.istio.io/v1',
        'kind: DestinationRule',
        'metadata:',
        '  name: reviews',
        '  namespace: default',
        'spec:',
        '  host: reviews.default.svc.cluster.local',
        '  trafficPolicy:',
        '    connectionPool:',
        '      http:',
        '        http1MaxPendingRequests: 1',
        '        maxRequestsPerConnection: 1',
        '      tcp:',
        '        maxConnections: 1',
        '    outlierDetection:',
        '      baseEjectionTime: 3m',
        '      consecutive5xxErrors: 1',
        '      interval: 1s',
        '      maxEjectionPercent: 100',
        '',
      ].join('\n'),
    );
  });

  test('existing rule: subsets, host, exportTo, tls, metadata and unshown fields kept; resourceVersion sent', () => {
    const dr = drWithSubsets();
    const form = circuitBreakerFormFrom(dr);
    assert.deepEqual(form, cb({ pool: true, maxConnections: '100', outlier: true, consecutive5xxErrors: '7' }));
    const plan = planCircuitBreaker({ service: reviews, existing: dr, form: { ...form, maxConnections: '10', http2MaxRequests: '50', connectTimeout: '250ms', baseEjectionTime: '1m' } });
    assert.deepEqual(plan.errors, []);
    const doc = plan.document as any;
    assert.deepEqual(doc.metadata, { name: 'reviews-dr', namespace: 'default', labels: { team: 'books' }, annotations: { note: 'keep me' }, resourceVersion: '8' });
    assert.deepEqual(doc.spec, {
      host: 'reviews',
      exportTo: ['.'],
      subsets: SUBSETS,
      trafficPolicy: {
        tls: { mode: 'ISTIO_MUTUAL' },
        connectionPool: { tcp: { maxConnections: 10, connectTimeout: '250ms', tcpKeepalive: { time: '7200s' } }, http: { idleTimeout: '1h', http2MaxRequests: 50 } },
        outlierDetection: { consecutive5xxErrors: 7, minHealthPercent: 50, baseEjectionTime: '1m' },
      },
    });
    assert.deepEqual(keptCircuitBreakerFields(dr), ['connectionPool.tcp.tcpKeepalive', 'connectionPool.http.idleTimeout', 'outlierDetection.minHealthPercent']);
  });

  test('a cleared field is removed; the form read back from the result is what was typed', () => {
    const dr = drWithSubsets();
    const plan = planCircuitBreaker({ service: reviews, existing: dr, form: { ...circuitBreakerFormFrom(dr), maxConnections: '', consecutive5xxErrors: '' } });
    const tp = (plan.document as any).spec.trafficPolicy;
    assert.deepEqual(tp.connectionPool, { tcp: { tcpKeepalive: { time: '7200s' } }, http: { idleTimeout: '1h' } });
    assert.deepEqual(tp.outlierDetection, { minHealthPercent: 50 });
    const roundTrip = planCircuitBreaker({ service: reviews, existing: undefined, form: cb({ pool: true, maxRetries: '3', outlier: true, interval: '5s' }) });
    assert.deepEqual(circuitBreakerFormFrom(roundTrip.document as unknown as StoredResource), cb({ pool: true, maxRetries: '3', outlier: true, interval: '5s' }));
  });

  test('a group switched off is removed; both off and nothing else leaves no trafficPolicy', () => {
    const dr = drWithSubsets();
    const off = planCircuitBreaker({ service: reviews, existing: dr, form: { ...circuitBreakerFormFrom(dr), pool: false } });
    assert.deepEqual((off.document as any).spec.trafficPolicy, { tls: { mode: 'ISTIO_MUTUAL' }, outlierDetection: { consecutive5xxErrors: 7, minHealthPercent: 50 } });
    assert.deepEqual((off.document as any).spec.subsets, SUBSETS);
    const bare = stored('DestinationRule', 'reviews', { host: 'reviews', subsets: SUBSETS, trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 } } } });
    const none = planCircuitBreaker({ service: reviews, existing: bare, form: cb({}) });
    assert.deepEqual(none.errors, []);
    assert.deepEqual((none.document as any).spec, { host: 'reviews', subsets: SUBSETS });
  });

  test('an empty outlierDetection is kept (Istio defaults); an empty connection pool is an error at the group', () => {
    const plan = planCircuitBreaker({ service: reviews, existing: undefined, form: cb({ pool: true, outlier: true }) });
    assert.deepEqual((plan.document as any).spec.trafficPolicy, { outlierDetection: {} });
    assert.deepEqual(plan.errors, [{ level: 'error', kind: 'form', path: 'spec.trafficPolicy.connectionPool', message: 'Connection pool: set at least one limit, or switch the group off', code: 'required' }]);
  });

  test('bad input: an error per field naming it; the bad values are left out of the document', () => {
    const plan = planCircuitBreaker({
      service: reviews,
      existing: undefined,
      form: cb({ pool: true, maxConnections: '0', connectTimeout: '10', http2MaxRequests: '2.5', maxRetries: '5', outlier: true, baseEjectionTime: 'abc', interval: '0s', maxEjectionPercent: '150', consecutiveGatewayErrors: '-1' }),
    });
    assert.deepEqual(plan.errors, [
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.connectionPool.tcp.maxConnections', message: 'Max connections must be at least 1 (got 0): Istio treats 0 as "no limit"; leave the field empty for that', code: 'range' },
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.connectionPool.http.http2MaxRequests', message: 'Max requests must be a whole number (got "2.5")', code: 'integer' },
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.connectionPool.tcp.connectTimeout', message: 'Connect timeout must be a duration such as "10s", "500ms" or "1m30s" (got "10")', code: 'duration' },
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.outlierDetection.consecutiveGatewayErrors', message: 'Consecutive gateway errors must be at least 0 (got -1)', code: 'range' },
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.outlierDetection.interval', message: 'Interval must be at least 1ms (got "0s")', code: 'duration' },
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.outlierDetection.baseEjectionTime', message: 'Base ejection time must be a duration such as "10s", "500ms" or "1m30s" (got "abc")', code: 'duration' },
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', message: 'Max ejection percent must be a percentage from 0 to 100 (got 150)', code: 'percent' },
    ]);
    assert.deepEqual((plan.document as any).spec.trafficPolicy, { connectionPool: { http: { maxRetries: 5 } }, outlierDetection: {} });
  });

  test('fields of a switched-off group are not checked', () => {
    const plan = planCircuitBreaker({ service: reviews, existing: undefined, form: cb({ pool: false, maxConnections: '0', outlier: true, consecutive5xxErrors: '3' }) });
    assert.deepEqual(plan.errors, []);
  });

  test('in words', () => {
    const words = describeCircuitBreaker(cb({ pool: true, maxConnections: '1', http1MaxPendingRequests: '1', maxRequestsPerConnection: '1', outlier: true, consecutive5xxErrors: '1', interval: '1s', baseEjectionTime: '3m', maxEjectionPercent: '100' }), 'reviews');
    assert.deepEqual(words, [
      'At most 1 connection from each calling proxy to reviews; a 2nd concurrent request waits, a 3rd gets 503 (HTTP/1.1: one request per connection at a time).',
      'Keep-alive off: every request gets a new connection.',
      'An endpoint of reviews that returns 1 consecutive 5xx error is ejected: it gets no requests for 3 minutes, longer each time it is ejected again.',
      'Endpoints are checked every 1 second; at most 100% of the endpoints are ejected at once.',
    ]);
    assert.match(describeCircuitBreaker(cb({ pool: true, maxConnections: '2', http1MaxPendingRequests: '3' }), 'r')[0]!, /the 3rd to 5th concurrent requests wait, a 6th gets 503/);
    assert.deepEqual(describeCircuitBreaker(cb({}), 'r'), [
      'No connection limits: each calling proxy opens as many connections to r as it needs.',
      'No outlier detection: an endpoint that keeps failing keeps getting its share of requests.',
    ]);
    assert.match(describeCircuitBreaker(cb({ outlier: true }), 'r').join(' '), /5 consecutive 5xx errors \(Istio's default\).*30 seconds.*every 10 seconds; at most 10%/);
    assert.deepEqual(describeCircuitBreaker(cb({ pool: true, maxConnections: '0', http1MaxPendingRequests: '1', outlier: true, baseEjectionTime: 'abc' }), 'r'), [
      'Connection pool: fix the marked fields to see what these limits do.',
      'Outlier detection: fix the marked fields to see what it does.',
    ], 'bad values are not described');
  });
});

describe('load balancer planner', () => {
  test('simple algorithm on a new rule', () => {
    const plan = planLoadBalancer({ service: reviews, existing: undefined, form: lbf({ mode: 'simple', simple: 'LEAST_REQUEST' }) });
    assert.deepEqual(plan.errors, []);
    assert.deepEqual((plan.document as any).spec, { host: 'reviews.default.svc.cluster.local', trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } });
    assert.deepEqual(describeLoadBalancer(lbf({ mode: 'simple', simple: 'ROUND_ROBIN' }), 'reviews'), ['Each calling proxy sends requests to the endpoints in turn. (reviews)']);
  });

  test('consistent hash replaces simple; subsets, connection pool and locality settings kept', () => {
    const dr = stored('DestinationRule', 'reviews', {
      host: 'reviews',
      subsets: SUBSETS,
      trafficPolicy: { connectionPool: { tcp: { maxConnections: 5 } }, loadBalancer: { simple: 'ROUND_ROBIN', localityLbSetting: { enabled: true } } },
    });
    assert.deepEqual(loadBalancerFormFrom(dr), lbf({ mode: 'simple', simple: 'ROUND_ROBIN' }));
    const plan = planLoadBalancer({ service: reviews, existing: dr, form: lbf({ mode: 'consistentHash', hashOn: 'httpHeaderName', httpHeaderName: 'x-user', minimumRingSize: '1024' }) });
    assert.deepEqual(plan.errors, []);
    assert.deepEqual((plan.document as any).spec, {
      host: 'reviews',
      subsets: SUBSETS,
      trafficPolicy: {
        connectionPool: { tcp: { maxConnections: 5 } },
        loadBalancer: { localityLbSetting: { enabled: true }, consistentHash: { httpHeaderName: 'x-user', ringHash: { minimumRingSize: 1024 } } },
      },
    });
    assert.deepEqual(loadBalancerFormFrom(plan.document as unknown as StoredResource), lbf({ mode: 'consistentHash', hashOn: 'httpHeaderName', httpHeaderName: 'x-user', minimumRingSize: '1024' }));
  });

  test('each hash key; switching keys drops the old one; cookie path and maglev kept when not replaced', () => {
    const dr = stored('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'user', ttl: '0s', path: '/app' }, maglev: { tableSize: 65537 } } } } });
    assert.deepEqual(loadBalancerFormFrom(dr), lbf({ mode: 'consistentHash', hashOn: 'httpCookie', cookieName: 'user', cookieTtl: '0s' }));
    const same = planLoadBalancer({ service: reviews, existing: dr, form: lbf({ mode: 'consistentHash', hashOn: 'httpCookie', cookieName: 'user', cookieTtl: '1h' }) });
    assert.deepEqual((same.document as any).spec.trafficPolicy.loadBalancer.consistentHash, { httpCookie: { name: 'user', ttl: '1h', path: '/app' }, maglev: { tableSize: 65537 } });
    const ip = planLoadBalancer({ service: reviews, existing: dr, form: lbf({ mode: 'consistentHash', hashOn: 'useSourceIp', minimumRingSize: '64' }) });
    assert.deepEqual((ip.document as any).spec.trafficPolicy.loadBalancer.consistentHash, { useSourceIp: true, ringHash: { minimumRingSize: 64 } });
    const q = planLoadBalancer({ service: reviews, existing: dr, form: lbf({ mode: 'consistentHash', hashOn: 'httpQueryParameterName', httpQueryParameterName: 'user id' }) });
    assert.deepEqual((q.document as any).spec.trafficPolicy.loadBalancer.consistentHash, { httpQueryParameterName: 'user id', maglev: { tableSize: 65537 } });
    assert.deepEqual(q.errors, []);
  });

  test('default: loadBalancer removed (and trafficPolicy with it when it was all there was)', () => {
    const dr = stored('DestinationRule', 'reviews', { host: 'reviews', subsets: SUBSETS, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } });
    const plan = planLoadBalancer({ service: reviews, existing: dr, form: lbf({ mode: 'default' }) });
    assert.deepEqual((plan.document as any).spec, { host: 'reviews', subsets: SUBSETS });
  });

  test('per subset: only that subset\'s trafficPolicy changes', () => {
    const dr = drWithSubsets();
    assert.deepEqual(loadBalancerFormFrom(dr, 'v2'), lbf({ mode: 'simple', simple: 'RANDOM' }));
    assert.deepEqual(loadBalancerFormFrom(dr, 'v1'), lbf({}));
    const plan = planLoadBalancer({ service: reviews, existing: dr, subset: 'v1', form: lbf({ mode: 'consistentHash', hashOn: 'useSourceIp' }) });
    assert.deepEqual(plan.errors, []);
    const doc = plan.document as any;
    assert.deepEqual(doc.spec.subsets, [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } } }, SUBSETS[1]]);
    assert.deepEqual(doc.spec.trafficPolicy, drWithSubsets().spec.trafficPolicy, 'the rule-level policy is untouched');
    const back = planLoadBalancer({ service: reviews, existing: dr, subset: 'v2', form: lbf({ mode: 'default' }) });
    assert.deepEqual((back.document as any).spec.subsets[1], { name: 'v2', labels: { version: 'v2' } }, 'an emptied subset policy is removed');
    const bad = planLoadBalancer({ service: reviews, existing: dr, subset: 'v9', form: lbf({ mode: 'simple', simple: 'RANDOM' }) });
    assert.deepEqual(bad.errors, [{ level: 'error', kind: 'form', path: 'spec.subsets', message: 'Subset "v9" is not defined in the DestinationRule', code: 'subset' }]);
    const noHeader = planLoadBalancer({ service: reviews, existing: dr, subset: 'v2', form: lbf({ mode: 'consistentHash', hashOn: 'httpHeaderName' }) });
    assert.deepEqual(noHeader.errors.map((e) => e.path), ['spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.httpHeaderName'], 'errors point into the subset');
    assert.equal(describeLoadBalancer(lbf({ mode: 'consistentHash', hashOn: 'useSourceIp' }), 'reviews', 'v1')[0], 'Requests to subset v1 of reviews from the same client IP address go to the same endpoint.');
  });

  test('bad input: field errors naming the field', () => {
    const noHeader = planLoadBalancer({ service: reviews, existing: undefined, form: lbf({ mode: 'consistentHash', hashOn: 'httpHeaderName', httpHeaderName: ' ', minimumRingSize: '0' }) });
    assert.deepEqual(noHeader.errors, [
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName', message: 'Header name is required to hash on it', code: 'form' },
      { level: 'error', kind: 'form', path: 'spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize', message: 'Minimum ring size must be at least 1 (got 0)', code: 'range' },
    ]);
    const cookie = planLoadBalancer({ service: reviews, existing: undefined, form: lbf({ mode: 'consistentHash', hashOn: 'httpCookie', cookieName: 'a b', cookieTtl: 'soon' }) });
    assert.deepEqual(cookie.errors.map((e) => [e.path.replace('spec.trafficPolicy.loadBalancer.consistentHash.', ''), e.message]), [
      ['httpCookie.name', 'Cookie name must be a single word of letters, digits and !#$%&\'*+-.^_`|~ (got "a b")'],
      ['httpCookie.ttl', 'Cookie TTL must be a duration such as "10s", "500ms" or "1m30s" (got "soon")'],
    ]);
    const algo = planLoadBalancer({ service: reviews, existing: undefined, form: lbf({ mode: 'simple', simple: 'FASTEST' }) });
    assert.deepEqual(algo.errors.map((e) => e.path), ['spec.trafficPolicy.loadBalancer.simple']);
  });

  test('cookie words: TTL decides whether the proxy sets the cookie', () => {
    const w = (ttl: string) => describeLoadBalancer(lbf({ mode: 'consistentHash', hashOn: 'httpCookie', cookieName: 'user', cookieTtl: ttl }), 'reviews')[1];
    assert.match(w('')!, /no cookie is set/);
    assert.match(w('0s')!, /session cookie/);
    assert.match(w('1h')!, /lasts 1 hour/);
  });
});

describe('which rule', () => {
  test('the service\'s DestinationRule in its own namespace, by any host alias', () => {
    const mine = stored('DestinationRule', 'x', { host: 'reviews.default' });
    const other = { ...stored('DestinationRule', 'y', { host: 'reviews.default.svc.cluster.local' }), metadata: { ...stored('DestinationRule', 'y', {}).metadata, namespace: 'other' } } as StoredResource;
    assert.equal(destinationRuleFor(reviews, [other, mine]), mine);
    assert.equal(destinationRuleFor(reviews, [other]), undefined);
  });
});
