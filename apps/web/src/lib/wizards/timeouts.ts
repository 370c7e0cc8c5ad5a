import type { ServiceRecord, StoredResource } from '../api-types.ts';
import {
  catchAllIndex,
  currentVirtualService,
  httpRoutesOf,
  isForwarding,
  plainRoute,
  virtualServiceDocument,
  type HttpRoute,
  type WizardPlan,
} from './common.ts';
import { checkDuration, checkInt, compact, formError, INT32_MAX, record, type FormError } from './fields.ts';

// Timeouts and retries of a service's routes: the route timeout and the retry policy (attempts,
// per-try timeout, retry conditions), on every forwarding route or on one. Retry fields the form
// does not show (backoff, retryRemoteLocalities…) are kept.

/** Retry conditions offered as checkboxes (Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on). */
export const HTTP_RETRY_CONDITIONS = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-4xx', 'refused-stream'] as const;
export const GRPC_RETRY_CONDITIONS = ['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'] as const;
/** Everything else Istio accepts in retryOn besides status codes (typed in "other conditions"). */
const OTHER_RETRY_CONDITIONS = ['reset-before-request', 'envoy-ratelimited', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure'];
const OFFERED: readonly string[] = [...HTTP_RETRY_CONDITIONS, ...GRPC_RETRY_CONDITIONS];

export interface TimeoutForm {
  /** 'all': every forwarding route; a number: that route only (index in spec.http). */
  target: 'all' | number;
  /** '' = no timeout set (Istio's default: none for HTTP routes). */
  timeout: string;
  retries: {
    /** 'default' writes no retry policy (Istio then retries twice); 'custom' writes the fields below. */
    mode: 'default' | 'custom';
    attempts: string;
    perTryTimeout: string;
    retryOn: string[];
    /** Comma-separated conditions not offered as checkboxes (status codes such as 503…). */
    otherRetryOn: string;
  };
}

export function emptyTimeoutForm(): TimeoutForm {
  return { target: 'all', timeout: '', retries: { mode: 'default', attempts: '3', perTryTimeout: '', retryOn: [], otherRetryOn: '' } };
}

/** The routes the form applies to (indexes in spec.http). */
export function targetIndexes(http: HttpRoute[], target: 'all' | number): number[] {
  if (target === 'all') return http.flatMap((r, i) => (isForwarding(r) ? [i] : []));
  return http[target] && isForwarding(http[target]) ? [target] : [];
}

/** The form for a stored VirtualService, read from the targeted route (for 'all': the default route). */
export function timeoutFormFrom(vs: StoredResource | undefined, target: 'all' | number = 'all'): TimeoutForm {
  const http = httpRoutesOf(vs);
  const form = emptyTimeoutForm();
  form.target = target;
  const idx = target === 'all' ? (catchAllIndex(http) >= 0 ? catchAllIndex(http) : targetIndexes(http, 'all')[0]) : target;
  const r = idx === undefined ? undefined : http[idx];
  if (!r) return form;
  form.timeout = r.timeout ?? '';
  const retries = r.retries as { attempts?: number; perTryTimeout?: string; retryOn?: string } | undefined;
  if (retries) {
    const on = (retries.retryOn ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    form.retries = {
      mode: 'custom',
      attempts: String(retries.attempts ?? 0),
      perTryTimeout: retries.perTryTimeout ?? '',
      retryOn: on.filter((c) => OFFERED.includes(c)),
      otherRetryOn: on.filter((c) => !OFFERED.includes(c)).join(','),
    };
  }
  return form;
}

/** Whether the targeted routes disagree (then saving sets the form's values on all of them). */
export function targetsDiffer(vs: StoredResource | undefined): boolean {
  const http = httpRoutesOf(vs);
  const seen = new Set(targetIndexes(http, 'all').map((i) => JSON.stringify([http[i]!.timeout ?? null, http[i]!.retries ?? null])));
  return seen.size > 1;
}

function retryOnOf(form: TimeoutForm, errors: FormError[]): string {
  const other = form.retries.otherRetryOn.split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of other) {
    const code = /^\d{3}$/.test(c) ? Number(c) : Number.NaN;
    if (!(code >= 100 && code <= 599) && !OFFERED.includes(c) && !OTHER_RETRY_CONDITIONS.includes(c)) {
      errors.push(formError('retries.retryOn', `Other retry conditions: ${JSON.stringify(c)} is neither an HTTP status code nor one of ${[...OFFERED, ...OTHER_RETRY_CONDITIONS].join(', ')}`, 'retry_on'));
    }
  }
  return [...new Set([...OFFERED.filter((c) => form.retries.retryOn.includes(c)), ...other])].join(',');
}

export interface TimeoutInput {
  service: ServiceRecord;
  resources: StoredResource[];
  form: TimeoutForm;
}

export function planTimeouts({ service, resources, form }: TimeoutInput): WizardPlan<TimeoutForm> {
  const vs = currentVirtualService(service, resources);
  const errors: FormError[] = [];
  record(errors, 'timeout', 'Timeout', checkDuration(form.timeout, { minMs: 0 }));
  let retries: Record<string, unknown> | undefined;
  if (form.retries.mode === 'custom') {
    const attempts = record(errors, 'retries.attempts', 'Retry attempts', checkInt(form.retries.attempts, { required: true, min: 0, max: INT32_MAX }));
    record(errors, 'retries.perTryTimeout', 'Per-try timeout', checkDuration(form.retries.perTryTimeout, { minMs: 0 }));
    const retryOn = retryOnOf(form, errors);
    if (attempts === 0 && (retryOn !== '' || form.retries.perTryTimeout.trim() !== '')) {
      errors.push(formError('retries.attempts', 'Retry attempts: 0 disables retries, so retry conditions and a per-try timeout would do nothing; set attempts to 1 or more, or clear them', 'retries_disabled'));
    }
    retries = { attempts, perTryTimeout: form.retries.perTryTimeout.trim() || undefined, retryOn: retryOn || undefined };
  }
  const http = httpRoutesOf(vs);
  const nothing = form.timeout.trim() === '' && retries === undefined;
  if (http.length === 0) {
    if (nothing) return { documents: [], existing: [], errors, form };
    http.push(plainRoute(service));
  }
  const targets = targetIndexes(http, form.target);
  if (targets.length === 0) errors.push(formError('target', 'Apply to: the chosen route does not forward requests (redirects and direct responses have no timeout or retries)', 'target'));
  for (const i of targets) {
    const r = http[i]!;
    if (form.timeout.trim() === '') delete r.timeout;
    else r.timeout = form.timeout.trim();
    if (retries === undefined) delete r.retries;
    // Fields the form does not show (backoff, retryRemoteLocalities…) stay as they were.
    else r.retries = compact({ ...(r.retries ?? {}), ...retries, perTryTimeout: retries.perTryTimeout, retryOn: retries.retryOn });
  }
  return { documents: [virtualServiceDocument(service, vs, http)], existing: vs ? [vs] : [], errors, form };
}
