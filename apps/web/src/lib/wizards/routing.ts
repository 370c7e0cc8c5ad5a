import type { ServiceRecord, StoredResource } from '../api-types.ts';
import { serviceFqdn } from '../mesh.ts';
import {
  catchAllIndex,
  checkHeader,
  currentVirtualService,
  describeRoute,
  headerMatch,
  httpRoutesOf,
  readStringMatch,
  subsetsDocument,
  virtualServiceDocument,
  type HeaderCondition,
  type HttpRoute,
  type WizardPlan,
} from './common.ts';
import { formError, type FormError } from './fields.ts';
import { FAULT_ROUTE_NAME } from './faults.ts';

// Request routing: ordered rules "match → version" and a default version for everything else.
// Routes the form cannot show exactly (several match blocks, query parameters, redirects, the
// fault wizard's route…) stay as they are, in their place, listed as kept rules.

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export interface RoutingRule {
  kind: 'rule';
  /** Index of the stored route this rule was read from (for display). */
  origin?: number;
  /**
   * The stored route as read: its other fields (timeout, retries, fault…) are kept. A copy, not an
   * index, so the form stays right after a save reorders the stored routes.
   */
  base?: HttpRoute;
  header: HeaderCondition;
  uri: { type: 'exact' | 'prefix'; value: string };
  /** '' = any method. */
  method: string;
  version: string;
}

export interface KeptRoute {
  kind: 'kept';
  origin: number;
  description: string;
  /** The stored route as read, written back unchanged. */
  route: HttpRoute;
}

export type RoutingRow = RoutingRule | KeptRoute;

export interface RoutingForm {
  rows: RoutingRow[];
  /** The subset for requests no rule matches; '' keeps the stored default route's destinations (e.g. traffic-shifting weights). */
  defaultVersion: string;
}

export function emptyRule(): RoutingRule {
  return { kind: 'rule', header: { name: '', type: 'exact', value: '' }, uri: { type: 'prefix', value: '' }, method: '', version: '' };
}

/** The single destination's subset of a route, when it has exactly one. */
function singleSubset(r: HttpRoute): string | undefined {
  return r.route?.length === 1 ? r.route[0]!.destination?.subset : undefined;
}

/** A stored route as a form rule, or undefined when the form cannot represent it exactly. */
function asRule(r: HttpRoute, origin: number): RoutingRule | undefined {
  if (r.name === FAULT_ROUTE_NAME || r.redirect || r.directResponse || r.delegate) return undefined;
  const subset = singleSubset(r);
  if (subset === undefined || r.match?.length !== 1) return undefined;
  const m = r.match[0]!;
  if (Object.keys(m).some((k) => k !== 'headers' && k !== 'uri' && k !== 'method')) return undefined;
  const rule: RoutingRule = { ...emptyRule(), origin, base: structuredClone(r), version: subset };
  const headers = Object.entries((m.headers as Record<string, unknown> | undefined) ?? {});
  if (headers.length > 1) return undefined;
  if (headers.length === 1) {
    const [name, sm] = headers[0]!;
    const s = readStringMatch(sm);
    if (!s) return undefined;
    rule.header = { name, type: s[0], value: s[1] };
  }
  if (m.uri !== undefined) {
    const s = readStringMatch(m.uri);
    if (!s || s[0] === 'regex') return undefined;
    rule.uri = { type: s[0], value: s[1] };
  }
  if (m.method !== undefined) {
    const s = readStringMatch(m.method);
    if (!s || s[0] !== 'exact') return undefined;
    rule.method = s[1];
  }
  return rule;
}

/** The form for a stored VirtualService: its rules in order, then the default. */
export function routingFormFrom(vs: StoredResource | undefined): RoutingForm {
  const http = httpRoutesOf(vs);
  const def = catchAllIndex(http);
  const rows: RoutingRow[] = http.flatMap((r, i): RoutingRow[] => (i === def ? [] : [asRule(r, i) ?? { kind: 'kept', origin: i, description: describeRoute(r, i), route: structuredClone(r) }]));
  const defaultVersion = def >= 0 ? (singleSubset(http[def]!) ?? '') : '';
  return { rows, defaultVersion };
}

function ruleMatch(rule: RoutingRule): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  if (rule.header.name.trim() !== '' || rule.header.value !== '') m.headers = headerMatch(rule.header);
  if (rule.uri.value !== '') m.uri = { [rule.uri.type]: rule.uri.value };
  if (rule.method !== '') m.method = { exact: rule.method };
  return m;
}

function checkRule(errors: FormError[], rule: RoutingRule, i: number): void {
  const path = `rules[${i}]`;
  const label = `Rule ${i + 1}`;
  const hasHeader = checkHeader(errors, `${path}.header`, `${label}, header`, rule.header);
  const uri = rule.uri.value;
  if (uri !== '' && !uri.startsWith('/')) errors.push(formError(`${path}.uri.value`, `${label}, URI path: must start with "/" (got ${JSON.stringify(uri)})`, 'uri'));
  if (rule.method !== '' && !(HTTP_METHODS as readonly string[]).includes(rule.method)) {
    errors.push(formError(`${path}.method`, `${label}, method: must be one of ${HTTP_METHODS.join(', ')}`, 'method'));
  }
  if (!hasHeader && uri === '' && rule.method === '') errors.push(formError(path, `${label} has no condition: set a header, a URI path or a method (requests no rule matches go to the default version)`, 'match_required'));
  if (rule.version === '') errors.push(formError(`${path}.version`, `${label}: choose the version that matching requests go to`, 'required'));
}

export interface RoutingInput {
  service: ServiceRecord;
  resources: StoredResource[];
  form: RoutingForm;
}

/** The VirtualService (and, when a rule names a version without a subset, the DestinationRule) for the form. */
export function planRouting({ service, resources, form }: RoutingInput): WizardPlan<RoutingForm> {
  const vs = currentVirtualService(service, resources);
  const stored = httpRoutesOf(vs);
  const host = serviceFqdn(service);
  const errors: FormError[] = [];
  let ruleNo = 0;
  const http: HttpRoute[] = [];
  for (const row of form.rows) {
    if (row.kind === 'kept') {
      http.push(structuredClone(row.route));
      continue;
    }
    checkRule(errors, row, ruleNo++);
    const orig = row.base ? structuredClone(row.base) : undefined;
    const dest = orig?.route?.[0];
    http.push({
      ...(orig ?? {}),
      match: [ruleMatch(row)],
      route: [{ ...(dest ?? {}), destination: { ...(dest?.destination ?? {}), host: dest?.destination?.host ?? host, subset: row.version } }],
    });
  }
  const def = catchAllIndex(stored);
  const storedDefault = def >= 0 ? stored[def] : undefined;
  if (form.defaultVersion !== '') {
    const dest = storedDefault?.route?.length === 1 ? storedDefault.route[0] : undefined;
    const { weight: _w, ...destRest } = dest ?? {};
    http.push({ ...(storedDefault ?? {}), route: [{ ...destRest, destination: { ...(dest?.destination ?? {}), host: dest?.destination?.host ?? host, subset: form.defaultVersion } }] });
  } else if (storedDefault) {
    http.push(storedDefault);
  } else {
    errors.push(formError('default.version', 'Default version: choose where requests that match no rule go', 'required'));
  }

  const used = form.rows.flatMap((r) => (r.kind === 'rule' ? [r.version] : [])).concat(form.defaultVersion);
  const dr = subsetsDocument(service, resources, used);
  const documents = [...(dr ? [dr.document] : []), virtualServiceDocument(service, vs, http)];
  const existing = [...(dr?.existing ? [dr.existing] : []), ...(vs ? [vs] : [])];
  return { documents, existing, errors, form };
}

/** The VirtualService path of each form row's route (to place the analyzer's findings next to the rule). */
export function routePathsOfRows(form: RoutingForm): { rows: string[]; default: string } {
  return { rows: form.rows.map((_, i) => `spec.http[${i}]`), default: `spec.http[${form.rows.length}]` };
}
