import type { ServiceRecord, StoredResource } from '../api-types.ts';
import { serviceFqdn } from '../mesh.ts';
import { compact, formError, parseDurationMs, record, type Checked, type FormError } from './fields.ts';

// What the DestinationRule wizards (circuit breaker, load balancer) share: finding the service's
// rule (destinationRuleFor in common.ts), rewriting one part of its trafficPolicy while keeping
// everything else, and reading form fields into it (checks in fields.ts).

export type Json = Record<string, unknown>;

export interface DestinationRulePlan {
  /** The complete DestinationRule to write (with the stored resourceVersion when it exists). */
  document: Json;
  /** The stored rule it replaces; undefined when it is created. */
  existing: StoredResource | undefined;
  errors: FormError[];
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The document to write: the stored rule (or a new one named after the service) with one
 * trafficPolicy replaced by `edit`. Metadata labels and annotations, host, exportTo, subsets and
 * every other field are kept. An empty trafficPolicy is dropped (Istio rejects `trafficPolicy: {}`).
 *
 * `subset` names the subset whose own trafficPolicy is edited instead of the rule's.
 */
export function rewriteTrafficPolicy(
  service: ServiceRecord,
  existing: StoredResource | undefined,
  edit: (policy: Json) => Json,
  subset?: string,
): Json {
  const meta = existing?.metadata as (Json & { name: string; labels?: unknown; annotations?: unknown }) | undefined;
  const metadata: Json = { name: meta?.name ?? service.name, namespace: service.namespace };
  if (meta?.labels !== undefined) metadata.labels = meta.labels;
  if (meta?.annotations !== undefined) metadata.annotations = meta.annotations;
  if (existing) metadata.resourceVersion = existing.metadata.resourceVersion;

  const spec: Json = { ...(existing?.spec ?? {}) };
  spec.host = typeof spec.host === 'string' ? spec.host : serviceFqdn(service);
  if (subset === undefined) {
    const policy = compact(edit(isObject(spec.trafficPolicy) ? { ...spec.trafficPolicy } : {}));
    if (Object.keys(policy).length > 0) spec.trafficPolicy = policy;
    else delete spec.trafficPolicy;
  } else {
    const subsets = Array.isArray(spec.subsets) ? (spec.subsets as unknown[]) : [];
    spec.subsets = subsets.map((s) => {
      if (!isObject(s) || s.name !== subset) return s;
      const out: Json = { ...s };
      const policy = compact(edit(isObject(s.trafficPolicy) ? { ...s.trafficPolicy } : {}));
      if (Object.keys(policy).length > 0) out.trafficPolicy = policy;
      else delete out.trafficPolicy;
      return out;
    });
  }
  return { apiVersion: existing?.apiVersion ?? 'networking.istio.io/v1', kind: 'DestinationRule', metadata, spec };
}

/** Subset names of a stored rule, in order. */
export function subsetNames(existing: StoredResource | undefined): string[] {
  const subsets = existing?.spec.subsets;
  if (!Array.isArray(subsets)) return [];
  return subsets.filter(isObject).map((s) => String(s.name ?? ''));
}

/** The trafficPolicy being edited: the rule's, or one subset's. */
export function trafficPolicyOf(existing: StoredResource | undefined, subset?: string): Json {
  if (!existing) return {};
  if (subset === undefined) return isObject(existing.spec.trafficPolicy) ? existing.spec.trafficPolicy : {};
  const s = (Array.isArray(existing.spec.subsets) ? (existing.spec.subsets as unknown[]) : []).find((x) => isObject(x) && x.name === subset);
  return isObject(s) && isObject(s.trafficPolicy) ? s.trafficPolicy : {};
}

/** The YAML path prefix of the trafficPolicy being edited. */
export function policyPath(existing: StoredResource | undefined, subset?: string): string {
  if (subset === undefined) return 'spec.trafficPolicy';
  return `spec.subsets[${Math.max(0, subsetNames(existing).indexOf(subset))}].trafficPolicy`;
}

/** Collects form errors while reading a form into a trafficPolicy at `prefix`. */
export class FormReader {
  readonly errors: FormError[] = [];
  constructor(private readonly prefix: string) {}

  path(subpath: string): string {
    return subpath === '' ? this.prefix : `${this.prefix}.${subpath}`;
  }

  /** The checked value; an invalid one is recorded and left out of the document (undefined). */
  take<T>(subpath: string, label: string, result: Checked<T>): T | undefined {
    const value = record(this.errors, this.path(subpath), label, result);
    return result.ok ? value : undefined;
  }

  fail(subpath: string, message: string, code?: string): void {
    this.errors.push(formError(this.path(subpath), message, code));
  }
}

// ---- words -----------------------------------------------------------------------------------

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

export function ordinal(n: number): string {
  const mod100 = n % 100;
  const suffix = mod100 >= 11 && mod100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** "1m30s" → "1 minute 30 seconds", for sentences. Falls back to the string as typed. */
export function durationWords(s: string): string {
  const ms = parseDurationMs(s);
  if (ms === null) return s;
  if (ms === 0) return '0 seconds';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['hour', 3_600_000], ['minute', 60_000]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(plural(n, unit));
    rest -= n * size;
  }
  if (rest >= 1000) {
    parts.push(plural(Math.round(rest) / 1000, 'second'));
  } else if (rest > 0) {
    parts.push(`${Math.round(rest * 1000) / 1000} ms`);
  }
  return parts.join(' ');
}
