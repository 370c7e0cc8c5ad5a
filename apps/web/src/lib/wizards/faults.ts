import type { ServiceRecord, StoredResource } from '../api-types.ts';
import {
  catchAllIndex,
  checkHeader,
  currentVirtualService,
  headerMatch,
  httpRoutesOf,
  isForwarding,
  plainRoute,
  readHeaderOnlyMatch,
  virtualServiceDocument,
  type HeaderCondition,
  type HttpRoute,
  type WizardPlan,
} from './common.ts';
import { checkDuration, checkInt, checkPercent, compact, record, type FormError } from './fields.ts';

// Fault injection: a fixed delay and/or an HTTP abort for a share of requests, for all of them or
// only those carrying a header (Bookinfo's `end-user: jason`). Scoped to a header, the fault lives
// in a route of its own, first, named FAULT_ROUTE_NAME, that sends where those requests went
// before (a route matching exactly that header, else the default route); for all requests, it is set on every forwarding route. Faults are this wizard's
// part: any other fault in the VirtualService is replaced.

export const FAULT_ROUTE_NAME = 'fault-injection';

export interface FaultForm {
  delay: { enabled: boolean; fixedDelay: string; percent: string };
  abort: { enabled: boolean; httpStatus: string; percent: string };
  scope: 'all' | 'header';
  header: HeaderCondition;
}

export function emptyFaultForm(): FaultForm {
  return {
    delay: { enabled: false, fixedDelay: '2s', percent: '100' },
    abort: { enabled: false, httpStatus: '500', percent: '100' },
    scope: 'all',
    header: { name: 'end-user', type: 'exact', value: '' },
  };
}

function percentOf(p: unknown, legacy: unknown): string {
  const v = (p as { value?: unknown } | undefined)?.value;
  if (typeof v === 'number') return String(v);
  if (typeof legacy === 'number') return String(legacy);
  // Istio faults every request when no percentage is given.
  return '100';
}

function formFromFault(f: Record<string, unknown> | undefined, base: FaultForm): FaultForm {
  const delay = f?.delay as { fixedDelay?: string; percentage?: unknown; percent?: unknown } | undefined;
  const abort = f?.abort as { httpStatus?: number; percentage?: unknown } | undefined;
  return {
    ...base,
    delay: delay?.fixedDelay !== undefined ? { enabled: true, fixedDelay: delay.fixedDelay, percent: percentOf(delay.percentage, delay.percent) } : base.delay,
    abort: abort?.httpStatus !== undefined ? { enabled: true, httpStatus: String(abort.httpStatus), percent: percentOf(abort.percentage, undefined) } : base.abort,
  };
}

/** The form for a stored VirtualService: its fault route if it has one, else the fault of its routes. */
export function faultFormFrom(vs: StoredResource | undefined): FaultForm {
  const http = httpRoutesOf(vs);
  const base = emptyFaultForm();
  const own = http.find((r) => r.name === FAULT_ROUTE_NAME);
  const header = own ? readHeaderOnlyMatch(own.match) : undefined;
  if (own && header) return { ...formFromFault(own.fault, base), scope: 'header', header };
  const def = catchAllIndex(http);
  const withFault = (def >= 0 && http[def]!.fault ? http[def] : undefined) ?? http.find((r) => r.fault !== undefined);
  return formFromFault(withFault?.fault, base);
}

/** The fault object for the form (undefined: no fault), with the form's errors. */
export function faultOf(form: FaultForm, errors: FormError[]): Record<string, unknown> | undefined {
  const fault: Record<string, unknown> = {};
  if (form.delay.enabled) {
    record(errors, 'delay.fixedDelay', 'Delay', checkDuration(form.delay.fixedDelay, { required: true, minMs: 0 }));
    const pct = record(errors, 'delay.percent', 'Delay percentage', checkPercent(form.delay.percent, { required: true, decimals: true }));
    fault.delay = compact({ fixedDelay: form.delay.fixedDelay.trim(), percentage: pct === undefined ? undefined : { value: pct } });
  }
  if (form.abort.enabled) {
    const status = record(errors, 'abort.httpStatus', 'Abort HTTP status', checkInt(form.abort.httpStatus, { required: true, min: 200, max: 599 }));
    const pct = record(errors, 'abort.percent', 'Abort percentage', checkPercent(form.abort.percent, { required: true, decimals: true }));
    fault.abort = compact({ httpStatus: status, percentage: pct === undefined ? undefined : { value: pct } });
  }
  return Object.keys(fault).length > 0 ? fault : undefined;
}

function sameHeader(a: HeaderCondition | undefined, b: HeaderCondition): boolean {
  return a !== undefined && a.name === b.name.trim() && a.type === b.type && a.value === b.value;
}

export interface FaultInput {
  service: ServiceRecord;
  resources: StoredResource[];
  form: FaultForm;
}

export function planFaults({ service, resources, form }: FaultInput): WizardPlan<FaultForm> {
  const vs = currentVirtualService(service, resources);
  const errors: FormError[] = [];
  const fault = faultOf(form, errors);
  // Start from the routes without any fault (and without our own route): faults are ours to set.
  const http = httpRoutesOf(vs)
    .filter((r) => r.name !== FAULT_ROUTE_NAME)
    .map((r) => {
      const { fault: _f, ...rest } = r;
      return rest as HttpRoute;
    });
  if (form.scope === 'header' && form.header.name.trim() === '' && form.header.value === '') {
    errors.push({ level: 'error', kind: 'form', path: 'header.name', message: 'Only requests with a header: a header name is required', code: 'required' });
  } else if (form.scope === 'header') {
    checkHeader(errors, 'header', 'Only requests with a header', form.header);
  }
  if (!fault) {
    // Nothing to inject: remove what was there (or write nothing when there is no VirtualService).
    return { documents: vs ? [virtualServiceDocument(service, vs, http)] : [], existing: vs ? [vs] : [], errors, form };
  }
  if (http.length === 0) http.push(plainRoute(service));
  if (form.scope === 'all') {
    for (const r of http) if (isForwarding(r)) r.fault = structuredClone(fault);
  } else {
    // Requests with this header go where they went before: to the route that matches exactly this
    // header (a routing rule such as end-user: jason -> v2), else to the default route's destinations.
    const same = http.find((r) => isForwarding(r) && sameHeader(readHeaderOnlyMatch(r.match), form.header));
    const def = catchAllIndex(http);
    const to = same?.route ?? (def >= 0 && isForwarding(http[def]!) ? http[def]!.route! : plainRoute(service).route!);
    http.unshift({ name: FAULT_ROUTE_NAME, match: [{ headers: headerMatch(form.header) }], route: structuredClone(to), fault });
  }
  return { documents: [virtualServiceDocument(service, vs, http)], existing: vs ? [vs] : [], errors, form };
}
