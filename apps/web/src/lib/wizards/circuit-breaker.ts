import type { ServiceRecord, StoredResource } from '../api-types.ts';
import {
  durationWords,
  FormReader,
  isObject,
  ordinal,
  plural,
  policyPath,
  rewriteTrafficPolicy,
  trafficPolicyOf,
  type DestinationRulePlan,
  type Json,
} from './destination-rule.ts';
import { checkDuration, checkInt, checkPercent, formError, INT32_MAX, UINT32_MAX } from './fields.ts';

// The circuit-breaker wizard: a DestinationRule's trafficPolicy.connectionPool and
// trafficPolicy.outlierDetection, each switched on or off as a group. Fields are strings as typed
// ("" = not set); fields of these groups that the form does not show are kept as they are.

export interface CircuitBreakerForm {
  pool: boolean;
  maxConnections: string;
  connectTimeout: string;
  http1MaxPendingRequests: string;
  http2MaxRequests: string;
  maxRequestsPerConnection: string;
  maxRetries: string;
  outlier: boolean;
  consecutive5xxErrors: string;
  consecutiveGatewayErrors: string;
  interval: string;
  baseEjectionTime: string;
  maxEjectionPercent: string;
}

export type CircuitBreakerField = Exclude<keyof CircuitBreakerForm, 'pool' | 'outlier'>;

/** Each field: where it lives under trafficPolicy and its label in messages. */
export const CIRCUIT_BREAKER_FIELDS: Record<CircuitBreakerField, { group: 'connectionPool' | 'outlierDetection'; sub?: 'tcp' | 'http'; key: string; label: string }> = {
  maxConnections: { group: 'connectionPool', sub: 'tcp', key: 'maxConnections', label: 'Max connections' },
  connectTimeout: { group: 'connectionPool', sub: 'tcp', key: 'connectTimeout', label: 'Connect timeout' },
  http1MaxPendingRequests: { group: 'connectionPool', sub: 'http', key: 'http1MaxPendingRequests', label: 'Max pending requests' },
  http2MaxRequests: { group: 'connectionPool', sub: 'http', key: 'http2MaxRequests', label: 'Max requests' },
  maxRequestsPerConnection: { group: 'connectionPool', sub: 'http', key: 'maxRequestsPerConnection', label: 'Max requests per connection' },
  maxRetries: { group: 'connectionPool', sub: 'http', key: 'maxRetries', label: 'Max retries' },
  consecutive5xxErrors: { group: 'outlierDetection', key: 'consecutive5xxErrors', label: 'Consecutive 5xx errors' },
  consecutiveGatewayErrors: { group: 'outlierDetection', key: 'consecutiveGatewayErrors', label: 'Consecutive gateway errors' },
  interval: { group: 'outlierDetection', key: 'interval', label: 'Interval' },
  baseEjectionTime: { group: 'outlierDetection', key: 'baseEjectionTime', label: 'Base ejection time' },
  maxEjectionPercent: { group: 'outlierDetection', key: 'maxEjectionPercent', label: 'Max ejection percent' },
};

/** The path of a field under the trafficPolicy ("connectionPool.tcp.maxConnections"). */
export function fieldSubpath(field: CircuitBreakerField): string {
  const f = CIRCUIT_BREAKER_FIELDS[field];
  return [f.group, f.sub, f.key].filter(Boolean).join('.');
}

export const EMPTY_CIRCUIT_BREAKER: CircuitBreakerForm = {
  pool: false,
  maxConnections: '',
  connectTimeout: '',
  http1MaxPendingRequests: '',
  http2MaxRequests: '',
  maxRequestsPerConnection: '',
  maxRetries: '',
  outlier: false,
  consecutive5xxErrors: '',
  consecutiveGatewayErrors: '',
  interval: '',
  baseEjectionTime: '',
  maxEjectionPercent: '',
};

const text = (v: unknown): string => (typeof v === 'number' || typeof v === 'string' ? String(v) : '');

/** The form as the stored rule has it (or empty, both groups off, when there is no rule). */
export function circuitBreakerFormFrom(existing: StoredResource | undefined, subset?: string): CircuitBreakerForm {
  const policy = trafficPolicyOf(existing, subset);
  const form: CircuitBreakerForm = { ...EMPTY_CIRCUIT_BREAKER, pool: isObject(policy.connectionPool), outlier: isObject(policy.outlierDetection) };
  for (const [field, f] of Object.entries(CIRCUIT_BREAKER_FIELDS) as [CircuitBreakerField, (typeof CIRCUIT_BREAKER_FIELDS)[CircuitBreakerField]][]) {
    const group = policy[f.group];
    const holder = isObject(group) ? (f.sub ? group[f.sub] : group) : undefined;
    form[field] = isObject(holder) ? text(holder[f.key]) : '';
  }
  return form;
}

export interface CircuitBreakerInput {
  service: ServiceRecord;
  existing: StoredResource | undefined;
  form: CircuitBreakerForm;
}

// Istio reads 0 in these as "not set" (no limit), so a 0 typed in the form would silently mean
// the opposite of what it looks like.
const ZERO_IS_UNSET = 'Istio treats 0 as "no limit"; leave the field empty for that';

/** Reads the form: the checked values (invalid ones left out) and an error per bad field. */
export function readCircuitBreaker(form: CircuitBreakerForm, prefix = 'spec.trafficPolicy'): { values: Partial<Record<CircuitBreakerField, number | string>>; errors: FormReader['errors'] } {
  const r = new FormReader(prefix);
  const values: Partial<Record<CircuitBreakerField, number | string>> = {};
  const take = (field: CircuitBreakerField, result: Parameters<FormReader['take']>[2]) => {
    const v = r.take(fieldSubpath(field), CIRCUIT_BREAKER_FIELDS[field].label, result);
    if (v !== undefined) values[field] = v as number | string;
  };
  if (form.pool) {
    for (const field of ['maxConnections', 'http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries'] as const) {
      take(field, checkInt(form[field], { min: 1, max: INT32_MAX, why: ZERO_IS_UNSET }));
    }
    take('connectTimeout', checkDuration(form.connectTimeout));
  }
  if (form.outlier) {
    // 0 is meaningful here: it switches that kind of ejection off.
    take('consecutive5xxErrors', checkInt(form.consecutive5xxErrors, { min: 0, max: UINT32_MAX }));
    take('consecutiveGatewayErrors', checkInt(form.consecutiveGatewayErrors, { min: 0, max: UINT32_MAX }));
    take('interval', checkDuration(form.interval));
    take('baseEjectionTime', checkDuration(form.baseEjectionTime));
    take('maxEjectionPercent', checkPercent(form.maxEjectionPercent));
  }
  return { values, errors: r.errors };
}

/** Sets (or, when undefined, removes) the given keys on a copy of `base`. */
function assign(base: unknown, entries: [string, unknown][]): Json {
  const out: Json = isObject(base) ? { ...base } : {};
  for (const [k, v] of entries) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * The DestinationRule with the form's connectionPool and outlierDetection: a group switched off is
 * removed; within a group the form's fields are set or removed and the fields it does not show
 * (tcpKeepalive, idleTimeout, minHealthPercent…) are kept. Everything else in the rule is kept.
 */
export function planCircuitBreaker(input: CircuitBreakerInput, subset?: string): DestinationRulePlan {
  const { values, errors } = readCircuitBreaker(input.form, policyPath(input.existing, subset));
  const fieldsOf = (group: string, sub?: string) =>
    (Object.entries(CIRCUIT_BREAKER_FIELDS) as [CircuitBreakerField, (typeof CIRCUIT_BREAKER_FIELDS)[CircuitBreakerField]][])
      .filter(([, f]) => f.group === group && f.sub === sub)
      .map(([field, f]): [string, unknown] => [f.key, values[field]]);
  const document = rewriteTrafficPolicy(
    input.service,
    input.existing,
    (policy) => {
      if (input.form.pool) {
        const pool = isObject(policy.connectionPool) ? policy.connectionPool : {};
        const tcp = assign(pool.tcp, fieldsOf('connectionPool', 'tcp'));
        const http = assign(pool.http, fieldsOf('connectionPool', 'http'));
        const next = assign(pool, [['tcp', Object.keys(tcp).length > 0 ? tcp : undefined], ['http', Object.keys(http).length > 0 ? http : undefined]]);
        policy.connectionPool = Object.keys(next).length > 0 ? next : undefined;
      } else delete policy.connectionPool;
      if (input.form.outlier) {
        // An empty outlierDetection is meaningful: ejection with Istio's defaults.
        policy.outlierDetection = assign(policy.outlierDetection, fieldsOf('outlierDetection'));
      } else delete policy.outlierDetection;
      return policy;
    },
    subset,
  );
  // Istio rejects an empty connectionPool; say so at the group rather than as a schema error.
  const prefix = policyPath(input.existing, subset);
  const written = subset === undefined ? (document.spec as Json).trafficPolicy : ((document.spec as Json).subsets as Json[]).find((x) => x.name === subset)?.trafficPolicy;
  const poolFieldsBad = errors.some((e) => e.path.startsWith(`${prefix}.connectionPool.`));
  if (input.form.pool && !poolFieldsBad && !(isObject(written) && isObject(written.connectionPool))) {
    errors.push(formError(`${prefix}.connectionPool`, 'Connection pool: set at least one limit, or switch the group off', 'required'));
  }
  return { document, existing: input.existing, errors };
}

/** Fields of the groups the form does not show, which a save keeps ("tcp.tcpKeepalive"). */
export function keptCircuitBreakerFields(existing: StoredResource | undefined, subset?: string): string[] {
  const policy = trafficPolicyOf(existing, subset);
  const shown = new Set(Object.values(CIRCUIT_BREAKER_FIELDS).map((f) => [f.group, f.sub, f.key].filter(Boolean).join('.')));
  const out: string[] = [];
  const walk = (prefix: string, v: unknown, depth: number) => {
    if (!isObject(v)) return;
    for (const [k, child] of Object.entries(v)) {
      const p = `${prefix}.${k}`;
      if (depth === 0 && prefix === 'connectionPool' && (k === 'tcp' || k === 'http') && isObject(child)) walk(p, child, 1);
      else if (!shown.has(p)) out.push(p);
    }
  };
  walk('connectionPool', policy.connectionPool, 0);
  walk('outlierDetection', policy.outlierDetection, 0);
  return out;
}

// ---- in words --------------------------------------------------------------------------------

/** What the settings do, one sentence each, for the people who did not read Envoy's docs. */
export function describeCircuitBreaker(form: CircuitBreakerForm, host: string): string[] {
  const { values: v, errors } = readCircuitBreaker(form);
  const n = (f: CircuitBreakerField) => (typeof v[f] === 'number' ? (v[f] as number) : undefined);
  const s = (f: CircuitBreakerField) => (typeof v[f] === 'string' ? (v[f] as string) : undefined);
  // A group with a bad field is not described: the sentence would be about values nobody typed.
  const bad = (group: string) => errors.some((e) => e.path.includes(`.${group}.`));
  const out: string[] = [];
  if (!form.pool) out.push(`No connection limits: each calling proxy opens as many connections to ${host} as it needs.`);
  else if (bad('connectionPool')) out.push('Connection pool: fix the marked fields to see what these limits do.');
  else {
    const conns = n('maxConnections');
    const pending = n('http1MaxPendingRequests');
    if (conns !== undefined && pending !== undefined) {
      const waitFrom = conns + 1;
      const waitTo = conns + pending;
      const waits = pending === 1 ? `a ${ordinal(waitFrom)} concurrent request waits` : `the ${ordinal(waitFrom)} to ${ordinal(waitTo)} concurrent requests wait`;
      out.push(`At most ${plural(conns, 'connection')} from each calling proxy to ${host}; ${waits}, a ${ordinal(waitTo + 1)} gets 503 (HTTP/1.1: one request per connection at a time).`);
    } else if (conns !== undefined) {
      out.push(`At most ${plural(conns, 'connection')} from each calling proxy to ${host}; further requests wait for a free connection (the queue is unlimited unless Max pending requests is set).`);
    } else if (pending !== undefined) {
      out.push(`At most ${plural(pending, 'request')} may wait for a connection; one more gets 503.`);
    }
    const reqs = n('http2MaxRequests');
    if (reqs !== undefined) out.push(`At most ${plural(reqs, 'request')} to ${host} in flight at once from each calling proxy; the next one gets 503.`);
    const perConn = n('maxRequestsPerConnection');
    if (perConn === 1) out.push('Keep-alive off: every request gets a new connection.');
    else if (perConn !== undefined) out.push(`A connection is closed after ${plural(perConn, 'request')} and a new one opened.`);
    const retries = n('maxRetries');
    if (retries !== undefined) out.push(`At most ${plural(retries, 'retry', 'retries')} to ${host} outstanding at once; beyond that, failed requests are not retried.`);
    const ct = s('connectTimeout');
    if (ct !== undefined) out.push(`A connection that is not established within ${durationWords(ct)} fails (503).`);
  }
  if (!form.outlier) out.push('No outlier detection: an endpoint that keeps failing keeps getting its share of requests.');
  else if (bad('outlierDetection')) out.push('Outlier detection: fix the marked fields to see what it does.');
  else {
    const e5 = n('consecutive5xxErrors');
    const gw = n('consecutiveGatewayErrors');
    const triggers: string[] = [];
    if (e5 === undefined && gw === undefined) triggers.push('5 consecutive 5xx errors (Istio\'s default)');
    if (e5 !== undefined && e5 > 0) triggers.push(`${plural(e5, 'consecutive 5xx error')}`);
    if (gw !== undefined && gw > 0) triggers.push(`${plural(gw, 'consecutive gateway error')} (502, 503, 504 or a failed connection)`);
    const interval = s('interval') ?? '10s';
    const base = s('baseEjectionTime') ?? '30s';
    const pct = n('maxEjectionPercent') ?? 10;
    if (triggers.length === 0) out.push('Outlier detection is on but both error counts are 0, so no endpoint is ever ejected.');
    else out.push(`An endpoint of ${host} that returns ${triggers.join(' or ')} is ejected: it gets no requests for ${durationWords(base)}, longer each time it is ejected again.`);
    out.push(`Endpoints are checked every ${durationWords(interval)}; at most ${pct}% of the endpoints are ejected at once.`);
  }
  return out;
}
