import type { ServiceRecord, StoredResource } from '../api-types.ts';
import {
  durationWords,
  FormReader,
  isObject,
  policyPath,
  rewriteTrafficPolicy,
  subsetNames,
  trafficPolicyOf,
  type DestinationRulePlan,
  type Json,
} from './destination-rule.ts';
import { checkDuration, checkInt, formError } from './fields.ts';

// The load-balancer wizard: a DestinationRule's trafficPolicy.loadBalancer (or one subset's),
// either a simple algorithm or a consistent hash on one request attribute. The other parts of
// loadBalancer (localityLbSetting, warmup) and of the rule are kept.

export const SIMPLE_ALGORITHMS = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH'] as const;
/** Also accepted when a stored rule has them (older names Istio still takes). */
const LEGACY_SIMPLE = ['LEAST_CONN', 'UNSPECIFIED'];

export const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const;
export type HashOn = (typeof HASH_KEYS)[number];

export interface LoadBalancerForm {
  /** 'default': no algorithm set here (Istio's default, LEAST_REQUEST, or the rule-level one for a subset). */
  mode: 'default' | 'simple' | 'consistentHash';
  simple: string;
  hashOn: HashOn;
  httpHeaderName: string;
  cookieName: string;
  cookieTtl: string;
  httpQueryParameterName: string;
  minimumRingSize: string;
}

export type LoadBalancerField = Exclude<keyof LoadBalancerForm, 'mode'>;

export const EMPTY_LOAD_BALANCER: LoadBalancerForm = {
  mode: 'default',
  simple: 'ROUND_ROBIN',
  hashOn: 'httpHeaderName',
  httpHeaderName: '',
  cookieName: '',
  cookieTtl: '',
  httpQueryParameterName: '',
  minimumRingSize: '',
};

/** Where each field goes under the trafficPolicy. */
export const LOAD_BALANCER_PATHS: Record<LoadBalancerField, string> = {
  simple: 'loadBalancer.simple',
  hashOn: 'loadBalancer.consistentHash',
  httpHeaderName: 'loadBalancer.consistentHash.httpHeaderName',
  cookieName: 'loadBalancer.consistentHash.httpCookie.name',
  cookieTtl: 'loadBalancer.consistentHash.httpCookie.ttl',
  httpQueryParameterName: 'loadBalancer.consistentHash.httpQueryParameterName',
  minimumRingSize: 'loadBalancer.consistentHash.ringHash.minimumRingSize',
};

const text = (v: unknown): string => (typeof v === 'number' || typeof v === 'string' ? String(v) : '');

export function loadBalancerFormFrom(existing: StoredResource | undefined, subset?: string): LoadBalancerForm {
  const lb = trafficPolicyOf(existing, subset).loadBalancer;
  const form: LoadBalancerForm = { ...EMPTY_LOAD_BALANCER };
  if (!isObject(lb)) return form;
  if (typeof lb.simple === 'string') return { ...form, mode: 'simple', simple: lb.simple };
  const ch = lb.consistentHash;
  if (!isObject(ch)) return form;
  form.mode = 'consistentHash';
  form.hashOn = HASH_KEYS.find((k) => ch[k] !== undefined) ?? 'httpHeaderName';
  form.httpHeaderName = text(ch.httpHeaderName);
  form.httpQueryParameterName = text(ch.httpQueryParameterName);
  if (isObject(ch.httpCookie)) {
    form.cookieName = text(ch.httpCookie.name);
    form.cookieTtl = text(ch.httpCookie.ttl);
  }
  form.minimumRingSize = text(isObject(ch.ringHash) ? ch.ringHash.minimumRingSize : ch.minimumRingSize);
  return form;
}

// RFC 9110 token: what a header or cookie name may consist of.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Envoy's RingHashLbConfig caps the ring at 8M entries.
const MAX_RING_SIZE = 8_388_608;

export interface LoadBalancerInput {
  service: ServiceRecord;
  existing: StoredResource | undefined;
  form: LoadBalancerForm;
  /** Edit this subset's trafficPolicy instead of the rule's. */
  subset?: string;
}

/** The DestinationRule with the form's load balancer (see the module comment for what is kept). */
export function planLoadBalancer(input: LoadBalancerInput): DestinationRulePlan {
  const { form, existing, subset } = input;
  const prefix = policyPath(existing, subset);
  const r = new FormReader(prefix);
  if (subset !== undefined && !subsetNames(existing).includes(subset)) {
    r.errors.push(formError('spec.subsets', `Subset ${JSON.stringify(subset)} is not defined in the DestinationRule`, 'subset'));
  }

  let chosen: Json | undefined;
  if (form.mode === 'simple') {
    if (!(SIMPLE_ALGORITHMS as readonly string[]).includes(form.simple) && !LEGACY_SIMPLE.includes(form.simple)) {
      r.fail(LOAD_BALANCER_PATHS.simple, `Algorithm must be one of ${SIMPLE_ALGORITHMS.join(', ')} (got ${JSON.stringify(form.simple)})`);
    } else chosen = { simple: form.simple };
  } else if (form.mode === 'consistentHash') {
    const required = (field: 'httpHeaderName' | 'cookieName' | 'httpQueryParameterName', label: string, token: boolean): string | undefined => {
      const v = form[field].trim();
      if (v === '') r.fail(LOAD_BALANCER_PATHS[field], `${label} is required to hash on it`);
      else if (token && !TOKEN.test(v)) r.fail(LOAD_BALANCER_PATHS[field], `${label} must be a single word of letters, digits and !#$%&'*+-.^_\`|~ (got ${JSON.stringify(v)})`);
      else return v;
      return undefined;
    };
    const key: Json = {};
    if (form.hashOn === 'httpHeaderName') key.httpHeaderName = required('httpHeaderName', 'Header name', true);
    else if (form.hashOn === 'httpQueryParameterName') key.httpQueryParameterName = required('httpQueryParameterName', 'Query parameter name', false);
    else if (form.hashOn === 'useSourceIp') key.useSourceIp = true;
    else if (form.hashOn === 'httpCookie') {
      const name = required('cookieName', 'Cookie name', true);
      // 0 is meaningful: a session cookie.
      const ttl = r.take(LOAD_BALANCER_PATHS.cookieTtl, 'Cookie TTL', checkDuration(form.cookieTtl, { minMs: 0 }));
      if (name !== undefined) key.httpCookie = { name, ...(ttl !== undefined ? { ttl } : {}) };
    } else r.fail(LOAD_BALANCER_PATHS.hashOn, `Hash on must be one of ${HASH_KEYS.join(', ')} (got ${JSON.stringify(form.hashOn)})`);
    const ring = r.take(LOAD_BALANCER_PATHS.minimumRingSize, 'Minimum ring size', checkInt(form.minimumRingSize, { min: 1, max: MAX_RING_SIZE }));
    chosen = { consistentHash: { ...key, ...(ring !== undefined ? { ringHash: { minimumRingSize: ring } } : {}) } };
  }

  const document = rewriteTrafficPolicy(
    input.service,
    existing,
    (policy) => {
      const lb: Json = isObject(policy.loadBalancer) ? { ...policy.loadBalancer } : {};
      const before = lb.consistentHash;
      delete lb.simple;
      delete lb.consistentHash;
      if (chosen?.simple !== undefined) lb.simple = chosen.simple;
      if (isObject(chosen?.consistentHash)) lb.consistentHash = mergeHash(before, chosen.consistentHash, form.minimumRingSize.trim() !== '');
      policy.loadBalancer = Object.keys(lb).length > 0 ? lb : undefined;
      return policy;
    },
    subset,
  );
  return { document, existing, errors: r.errors };
}

/**
 * The new hash key over what was stored: the other keys are dropped (Istio takes only one); a
 * maglev table is kept unless a ring size is asked for (ringHash and maglev exclude each other);
 * httpCookie.path is kept when the cookie name stays the same.
 */
function mergeHash(before: unknown, next: Json, ringAsked: boolean): Json {
  const out: Json = isObject(before) ? { ...before } : {};
  for (const k of HASH_KEYS) delete out[k];
  // The deprecated top-level minimumRingSize is what the form shows when ringHash is absent.
  delete out.minimumRingSize;
  if (ringAsked) delete out.maglev;
  if (isObject(out.ringHash)) {
    const ring = { ...out.ringHash };
    delete ring.minimumRingSize;
    out.ringHash = ring;
  }
  const beforeCookie = isObject(before) && isObject(before.httpCookie) ? before.httpCookie : undefined;
  for (const [k, v] of Object.entries(next)) {
    if (v === undefined) continue;
    if (k === 'httpCookie' && isObject(v) && beforeCookie && beforeCookie.name === v.name && beforeCookie.path !== undefined) out[k] = { ...v, path: beforeCookie.path };
    else if (k === 'ringHash' && isObject(v)) out.ringHash = { ...(isObject(out.ringHash) ? out.ringHash : {}), ...v };
    else out[k] = v;
  }
  return out;
}

// ---- in words --------------------------------------------------------------------------------

const SIMPLE_WORDS: Record<string, string> = {
  ROUND_ROBIN: 'Each calling proxy sends requests to the endpoints in turn.',
  LEAST_REQUEST: 'Each calling proxy picks two endpoints at random and sends the request to the one with fewer requests in flight.',
  RANDOM: 'Each request goes to an endpoint picked at random.',
  PASSTHROUGH: 'No load balancing: the request goes to the address the caller asked for (the original destination).',
  LEAST_CONN: 'LEAST_CONN is the old name of LEAST_REQUEST: the endpoint with fewer requests in flight of two picked at random.',
  UNSPECIFIED: 'UNSPECIFIED: Istio picks its default (LEAST_REQUEST).',
};

export function describeLoadBalancer(form: LoadBalancerForm, host: string, subset?: string): string[] {
  const scope = subset ? `subset ${subset} of ${host}` : host;
  if (form.mode === 'default') {
    return [subset ? `Subset ${subset} uses the rule's load balancer for ${host}.` : `${host} uses Istio's default: LEAST_REQUEST (the endpoint with fewer requests in flight of two picked at random).`];
  }
  if (form.mode === 'simple') return [`${SIMPLE_WORDS[form.simple] ?? form.simple} (${scope})`];
  const out: string[] = [];
  const h = form.httpHeaderName.trim();
  const c = form.cookieName.trim();
  const q = form.httpQueryParameterName.trim();
  if (form.hashOn === 'httpHeaderName') out.push(`Requests to ${scope} with the same ${h ? `${h} header` : 'header'} go to the same endpoint.`);
  else if (form.hashOn === 'useSourceIp') out.push(`Requests to ${scope} from the same client IP address go to the same endpoint.`);
  else if (form.hashOn === 'httpQueryParameterName') out.push(`Requests to ${scope} with the same ${q ? `?${q}=` : 'query parameter'} value go to the same endpoint.`);
  else {
    out.push(`Requests to ${scope} carrying the same ${c ? `${c} cookie` : 'cookie'} go to the same endpoint.`);
    const ttl = form.cookieTtl.trim();
    if (ttl === '') out.push('A request without the cookie is balanced as if there were no hash (no cookie is set: give a TTL for that).');
    else if (/^0+(\.0*)?[a-zµμ]*$/.test(ttl)) out.push('A request without the cookie gets one, as a session cookie (it ends with the browser session).');
    else out.push(`A request without the cookie gets one that lasts ${durationWords(ttl)}.`);
  }
  out.push('When endpoints come or go, only a share of the keys moves to other endpoints (consistent hashing).');
  const ring = form.minimumRingSize.trim();
  if (ring) out.push(`The hash ring has at least ${ring} entries (more entries spread the keys more evenly, at some memory cost).`);
  return out;
}
