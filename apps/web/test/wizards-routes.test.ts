import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServiceRecord, StoredResource } from '../src/lib/api-types.ts';
import { currentWeights, planTrafficShift } from '../src/lib/traffic.ts';
import { findingsAt, pathUnder } from '../src/lib/wizards/common.ts';
import { checkDuration, isDuration, type FormError } from '../src/lib/wizards/fields.ts';
import { emptyFaultForm, FAULT_ROUTE_NAME, faultFormFrom, planFaults, type FaultForm } from '../src/lib/wizards/faults.ts';
import { emptyRule, planRouting, routingFormFrom, type RoutingForm, type RoutingRule } from '../src/lib/wizards/routing.ts';
import { emptyTimeoutForm, planTimeouts, targetsDiffer, timeoutFormFrom, type TimeoutForm } from '../src/lib/wizards/timeouts.ts';

// The VirtualService wizards' planners: form -> documents, stored VS -> form, field errors.

const HOST = 'reviews.default.svc.cluster.local';
const reviews: ServiceRecord = { namespace: 'default', name: 'reviews', hosts: [HOST], ports: [{ number: 9080, protocol: 'HTTP' }], labels: {}, resourceVersion: '1' };

function stored(kind: string, name: string, spec: Record<string, unknown>, rv = '5'): StoredResource {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace: 'default', uid: 'u', resourceVersion: rv, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' }, spec };
}

const dest = (subset?: string, weight?: number) => ({ destination: { host: HOST, ...(subset ? { subset } : {}) }, ...(weight !== undefined ? { weight } : {}) });

/** A VS as traffic shifting leaves it (80/20), plus gateways/exportTo that no wizard touches. */
const shifted = stored('VirtualService', 'reviews', {
  hosts: ['reviews'],
  exportTo: ['.'],
  http: [{ route: [dest('v1', 80), dest('v2', 20)], timeout: '3s' }],
});
const dr = stored('DestinationRule', 'reviews', { host: HOST, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }, '4');

const vsOf = (plan: { documents: Record<string, unknown>[] }) => plan.documents.find((d) => d.kind === 'VirtualService') as { metadata: Record<string, unknown>; spec: Record<string, unknown> & { http: Record<string, unknown>[] } };
const paths = (errors: FormError[]) => errors.map((e) => e.path);

function rule(patch: Partial<RoutingRule>): RoutingRule {
  return { ...emptyRule(), ...patch };
}

describe('routing', () => {
  test('header and URI rules before a default version, with no VirtualService yet: VS + DR', () => {
    const form: RoutingForm = {
      rows: [
        rule({ header: { name: 'end-user', type: 'exact', value: 'jason' }, version: 'v2' }),
        rule({ uri: { type: 'prefix', value: '/api/v3' }, method: 'GET', version: 'v3' }),
      ],
      defaultVersion: 'v1',
    };
    const plan = planRouting({ service: reviews, resources: [], form });
    assert.deepEqual(plan.errors, []);
    assert.deepEqual(plan.existing, []);
    assert.deepEqual(plan.documents, [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'reviews', namespace: 'default' },
        spec: { host: HOST, subsets: [{ name: 'v2', labels: { version: 'v2' } }, { name: 'v3', labels: { version: 'v3' } }, { name: 'v1', labels: { version: 'v1' } }] },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'reviews', namespace: 'default' },
        spec: {
          hosts: ['reviews'],
          http: [
            { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v2')] },
            { match: [{ uri: { prefix: '/api/v3' }, method: { exact: 'GET' } }], route: [dest('v3')] },
            { route: [dest('v1')] },
          ],
        },
      },
    ]);
  });

  test('on a traffic-shifted VS: the weighted default and its timeout are kept, the DR is not rewritten when it has the subsets', () => {
    const form = routingFormFrom(shifted);
    assert.deepEqual(form, { rows: [], defaultVersion: '' } as RoutingForm, 'a weighted default reads as "keep"');
    form.rows.push(rule({ header: { name: 'end-user', type: 'regex', value: 'ja.*' }, version: 'v2' }));
    const plan = planRouting({ service: reviews, resources: [shifted, dr], form });
    assert.deepEqual(plan.errors, []);
    assert.equal(plan.documents.length, 1, 'v2 already has a subset: only the VS is written');
    const vs = vsOf(plan);
    assert.equal(vs.metadata.resourceVersion, '5');
    assert.deepEqual(vs.spec.exportTo, ['.']);
    assert.deepEqual(vs.spec.http, [
      { match: [{ headers: { 'end-user': { regex: 'ja.*' } } }], route: [dest('v2')] },
      { route: [dest('v1', 80), dest('v2', 20)], timeout: '3s' },
    ]);
  });

  test('round trip: rules read back from what was written; routes the form cannot show are kept in place', () => {
    const vs = stored('VirtualService', 'reviews', {
      hosts: ['reviews'],
      http: [
        { name: FAULT_ROUTE_NAME, match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v1')], fault: { abort: { httpStatus: 500 } } },
        { match: [{ queryParams: { debug: { exact: '1' } } }], route: [dest('v3')] },
        { match: [{ uri: { exact: '/health' } }], route: [dest('v2')], retries: { attempts: 5 } },
        { route: [dest('v1')] },
      ],
    });
    const form = routingFormFrom(vs);
    assert.deepEqual(form.rows.map((r) => r.kind), ['kept', 'kept', 'rule']);
    assert.deepEqual(form.rows.map((r) => r.origin), [0, 1, 2]);
    assert.equal(form.defaultVersion, 'v1');
    const r = form.rows[2] as RoutingRule;
    assert.deepEqual([r.origin, r.uri, r.version], [2, { type: 'exact', value: '/health' }, 'v2']);
    // Move the rule first and change its version: its retries stay with it.
    r.version = 'v3';
    form.rows = [r, form.rows[0]!, form.rows[1]!];
    form.defaultVersion = 'v2';
    const plan = planRouting({ service: reviews, resources: [vs, dr], form });
    assert.deepEqual(plan.errors, []);
    const http = vsOf(plan).spec.http;
    assert.deepEqual(http[0], { match: [{ uri: { exact: '/health' } }], route: [dest('v3')], retries: { attempts: 5 } });
    assert.deepEqual(http[1], (vs.spec.http as unknown[])[0]);
    assert.deepEqual(http[2], (vs.spec.http as unknown[])[1]);
    assert.deepEqual(http[3], { route: [dest('v2')] });
    // Saved, the routes are stored in the new order: the same form plans the same routes (no change).
    const saved = { ...vs, spec: vsOf(plan).spec };
    assert.deepEqual(vsOf(planRouting({ service: reviews, resources: [saved, dr], form })).spec.http, http);
    // v3 has no subset in the DR: the DR gains it and keeps its traffic policy.
    const drDoc = plan.documents.find((d) => d.kind === 'DestinationRule') as { spec: { subsets: { name: string }[]; trafficPolicy: unknown } };
    assert.deepEqual(drDoc.spec.subsets.map((s) => s.name), ['v1', 'v2', 'v3']);
    assert.deepEqual(drDoc.spec.trafficPolicy, { tls: { mode: 'ISTIO_MUTUAL' } });
  });

  test('field errors: a header value with no name, a rule with no condition, a relative URI, no version, no default', () => {
    const form: RoutingForm = {
      rows: [
        rule({ header: { name: '', type: 'exact', value: 'jason' }, version: 'v2' }),
        rule({ version: 'v2' }),
        rule({ uri: { type: 'prefix', value: 'api' }, version: '' }),
        rule({ header: { name: 'bad header', type: 'regex', value: '(' }, version: 'v1' }),
      ],
      defaultVersion: '',
    };
    const plan = planRouting({ service: reviews, resources: [], form });
    assert.deepEqual(paths(plan.errors), ['rules[0].header.name', 'rules[1]', 'rules[2].uri.value', 'rules[2].version', 'rules[3].header.name', 'rules[3].header.value', 'default.version']);
    assert.match(plan.errors[0]!.message, /^Rule 1, header: a header name is required/);
    assert.match(plan.errors[2]!.message, /URI path: must start with "\/"/);
    assert.ok(plan.errors.every((e) => e.level === 'error' && e.kind === 'form'));
  });
});

describe('faults', () => {
  const delayForm = (patch: Partial<FaultForm> = {}): FaultForm => ({ ...emptyFaultForm(), delay: { enabled: true, fixedDelay: '7s', percent: '100' }, ...patch });

  test('a delay for end-user jason, as in Bookinfo: a route of its own, first, to the default destinations', () => {
    const plan = planFaults({ service: reviews, resources: [shifted, dr], form: delayForm({ scope: 'header', header: { name: 'end-user', type: 'exact', value: 'jason' } }) });
    assert.deepEqual(plan.errors, []);
    assert.equal(plan.documents.length, 1);
    assert.deepEqual(vsOf(plan).spec.http, [
      { name: FAULT_ROUTE_NAME, match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v1', 80), dest('v2', 20)], fault: { delay: { fixedDelay: '7s', percentage: { value: 100 } } } },
      { route: [dest('v1', 80), dest('v2', 20)], timeout: '3s' },
    ]);
    assert.deepEqual(faultFormFrom({ ...shifted, spec: vsOf(plan).spec }), plan.form, 'reads back');
  });

  test('the fault route sends where the header\'s requests went before: a routing rule on the same header', () => {
    const routed = stored('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v2')] }, { route: [dest('v1')] }] });
    const plan = planFaults({ service: reviews, resources: [routed], form: delayForm({ scope: 'header', header: { name: 'end-user', type: 'exact', value: 'jason' } }) });
    const http = vsOf(plan).spec.http;
    assert.deepEqual(http[0]!.route, [dest('v2')]);
    assert.deepEqual(http.slice(1), routed.spec.http);
  });

  test('delay and abort for all requests: set on every forwarding route; turning both off removes them', () => {
    const two = stored('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/x' } }], route: [dest('v2')] }, { match: [{ uri: { prefix: '/old' } }], redirect: { uri: '/new' } }, { route: [dest('v1')] }] });
    const form = delayForm({ abort: { enabled: true, httpStatus: '503', percent: '12.5' } });
    const plan = planFaults({ service: reviews, resources: [two], form });
    assert.deepEqual(plan.errors, []);
    const fault = { delay: { fixedDelay: '7s', percentage: { value: 100 } }, abort: { httpStatus: 503, percentage: { value: 12.5 } } };
    const http = vsOf(plan).spec.http;
    assert.deepEqual(http.map((r) => r.fault), [fault, undefined, fault], 'not on the redirect');
    const back = faultFormFrom({ ...two, spec: vsOf(plan).spec });
    assert.deepEqual(back, { ...form, header: back.header });
    const off = planFaults({ service: reviews, resources: [{ ...two, spec: vsOf(plan).spec }], form: emptyFaultForm() });
    assert.deepEqual(vsOf(off).spec.http, two.spec.http);
  });

  test('no VirtualService and no fault: nothing to write; with a fault: a VS to the service itself', () => {
    assert.deepEqual(planFaults({ service: reviews, resources: [], form: emptyFaultForm() }).documents, []);
    const plan = planFaults({ service: reviews, resources: [], form: { ...emptyFaultForm(), abort: { enabled: true, httpStatus: '500', percent: '50' } } });
    assert.deepEqual(vsOf(plan).spec.http, [{ route: [dest()], fault: { abort: { httpStatus: 500, percentage: { value: 50 } } } }]);
  });

  test('field errors: percentage 150, a bad delay, status 600, header scope without a name', () => {
    const plan = planFaults({
      service: reviews,
      resources: [shifted],
      form: { delay: { enabled: true, fixedDelay: '2 seconds', percent: '150' }, abort: { enabled: true, httpStatus: '600', percent: '-1' }, scope: 'header', header: { name: '', type: 'exact', value: '' } },
    });
    assert.deepEqual(paths(plan.errors), ['delay.fixedDelay', 'delay.percent', 'abort.httpStatus', 'abort.percent', 'header.name']);
    assert.equal(plan.errors[1]!.message, 'Delay percentage must be a percentage from 0 to 100 (got 150)');
    assert.equal(plan.errors[2]!.message, 'Abort HTTP status must be at most 599 (got 600)');
    assert.match(plan.errors[0]!.message, /Delay must be a duration such as "10s", "500ms" or "1m30s" \(got "2 seconds"\)/);
  });
});

describe('timeouts and retries', () => {
  const custom = (patch: Partial<TimeoutForm['retries']>): TimeoutForm['retries'] => ({ ...emptyTimeoutForm().retries, mode: 'custom', ...patch });

  test('timeout and retries on every route; weights, matches and faults untouched', () => {
    const vs = stored('VirtualService', 'reviews', {
      hosts: ['reviews'],
      http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v2')], fault: { abort: { httpStatus: 500 } } }, { route: [dest('v1', 80), dest('v2', 20)], retries: { attempts: 1, backoff: '25ms' } }],
    });
    const form: TimeoutForm = { target: 'all', timeout: '1.5s', retries: custom({ attempts: '3', perTryTimeout: '500ms', retryOn: ['gateway-error', '5xx', 'unavailable'], otherRetryOn: '503' }) };
    const plan = planTimeouts({ service: reviews, resources: [vs], form });
    assert.deepEqual(plan.errors, []);
    const retries = { attempts: 3, perTryTimeout: '500ms', retryOn: '5xx,gateway-error,unavailable,503' };
    assert.deepEqual(vsOf(plan).spec.http, [
      { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v2')], fault: { abort: { httpStatus: 500 } }, timeout: '1.5s', retries },
      { route: [dest('v1', 80), dest('v2', 20)], retries: { ...retries, backoff: '25ms' }, timeout: '1.5s' },
    ]);
    const back = timeoutFormFrom({ ...vs, spec: vsOf(plan).spec });
    assert.deepEqual(back, { ...form, retries: { ...form.retries, retryOn: ['5xx', 'gateway-error', 'unavailable'] } });
    assert.equal(targetsDiffer(vs), true);
    assert.equal(targetsDiffer({ ...vs, spec: vsOf(plan).spec }), true, 'backoff differs');
  });

  test('one route only; clearing removes the timeout and the retry policy', () => {
    const plan = planTimeouts({ service: reviews, resources: [shifted], form: { target: 0, timeout: '', retries: emptyTimeoutForm().retries } });
    assert.deepEqual(plan.errors, []);
    assert.deepEqual(vsOf(plan).spec.http, [{ route: [dest('v1', 80), dest('v2', 20)] }]);
    assert.deepEqual(timeoutFormFrom(shifted), { ...emptyTimeoutForm(), timeout: '3s' });
    assert.deepEqual(planTimeouts({ service: reviews, resources: [], form: emptyTimeoutForm() }).documents, [], 'nothing to write');
  });

  test('field errors: durations, attempts, conditions, attempts 0 with conditions', () => {
    const plan = planTimeouts({ service: reviews, resources: [shifted], form: { target: 'all', timeout: '10 s', retries: custom({ attempts: '-1', perTryTimeout: 'soon', otherRetryOn: '5xx-ish' }) } });
    assert.deepEqual(paths(plan.errors), ['timeout', 'retries.attempts', 'retries.perTryTimeout', 'retries.retryOn']);
    assert.equal(plan.errors[1]!.message, 'Retry attempts must be at least 0 (got -1)');
    const zero = planTimeouts({ service: reviews, resources: [shifted], form: { target: 'all', timeout: '', retries: custom({ attempts: '0', retryOn: ['5xx'] }) } });
    assert.deepEqual(paths(zero.errors), ['retries.attempts']);
    const none = planTimeouts({ service: reviews, resources: [shifted], form: { target: 'all', timeout: '', retries: custom({ attempts: '0' }) } });
    assert.deepEqual(none.errors, []);
    assert.deepEqual(vsOf(none).spec.http[0]!.retries, { attempts: 0 }, 'attempts 0 disables retries');
  });
});

describe('shared checks', () => {
  test('durations as Istio parses them', () => {
    for (const ok of ['1.5s', '500ms', '1m30s', '0', '2h', '.5s', '10us']) assert.ok(isDuration(ok), ok);
    for (const bad of ['', '1.5', 's', '1 s', '-1s', '1d', '5 seconds']) assert.ok(!isDuration(bad), bad);
    assert.deepEqual(checkDuration(''), { ok: true, value: undefined }, 'empty is fine unless required');
    assert.equal(checkDuration('', { required: true }).ok, false);
  });

  test('analyzer findings are placed by path prefix, once per message', () => {
    assert.ok(pathUnder('spec.http[1].retries', 'spec.http[1]'));
    assert.ok(!pathUnder('spec.http[10].retries', 'spec.http[1]'));
    const f = (path: string, message = 'm') => ({ level: 'error' as const, kind: 'VirtualService', path, message, code: 'c' });
    const all = [f('spec.http[0].retries.attempts'), f('spec.http[1].retries.attempts'), f('spec.http[1].timeout', 'other'), { ...f('spec.http[0]'), kind: 'DestinationRule' }];
    assert.deepEqual(findingsAt(all, 'VirtualService', ['spec.http[0].retries', 'spec.http[1].retries']), [all[0]]);
    // The same rule broken in several routes: one message (they differ only by the route's index).
    const perRoute = [f('spec.http[0].timeout', 'spec.http[0].timeout must be a duration'), f('spec.http[2].timeout', 'spec.http[2].timeout must be a duration')];
    assert.deepEqual(findingsAt(perRoute, 'VirtualService', ['spec.http[0].timeout', 'spec.http[2].timeout']), [perRoute[0]]);
  });

  test('traffic shifting after the other wizards: only the default route\'s destinations change', () => {
    const vs = stored('VirtualService', 'reviews', {
      hosts: ['reviews'],
      http: [
        { name: FAULT_ROUTE_NAME, match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v2')], fault: { abort: { httpStatus: 500 } } },
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v2')] },
        { route: [dest('v1')], timeout: '1.5s', retries: { attempts: 3 } },
      ],
    });
    assert.deepEqual(currentWeights(vs, ['v1', 'v2']), [100, 0]);
    const plan = planTrafficShift({ service: reviews, versions: ['v1', 'v2'], weights: [70, 30], writeSubsets: false, resources: [vs] });
    const http = vsOf(plan).spec.http;
    assert.deepEqual(http.slice(0, 2), (vs.spec.http as unknown[]).slice(0, 2));
    assert.deepEqual(http[2], { route: [dest('v1', 70), dest('v2', 30)], timeout: '1.5s', retries: { attempts: 3 } });
  });
});
