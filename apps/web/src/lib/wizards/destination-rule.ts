import type { ServiceRecord, StoredResource } from '../api-types.ts';
import { policyFor, serviceFqdn } from '../mesh.ts';

// What the DestinationRule wizards (circuit breaker, load balancer) share: finding the service's
// rule, rewriting one part of its trafficPolicy while keeping everything else, and checking form
// fields (strings as typed) with messages that name the field.

export type Json = Record<string, unknown>;

/** A problem with one form field: `path` is where the value goes in the DestinationRule. */
export interface FieldError {
  field: string;
  path: string;
  message: string;
}

export interface DestinationRulePlan {
  /** The complete DestinationRule to write (with the stored resourceVersion when it exists). */
  document: Json;
  /** The stored rule it replaces; undefined when it is created. */
  existing: StoredResource | undefined;
  errors: FieldError[];
}

/** The DestinationRule for the service in the service's own namespace (the one the wizards edit). */
export function destinationRuleFor(service: ServiceRecord, resources: StoredResource[]): StoredResource | undefined {
  return policyFor(service, resources).destinationRules.find((r) => r.metadata.namespace === service.namespace);
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A copy of `obj` without the keys whose value is undefined (an empty object can mean something: `outlierDetection: {}`). */
export function compact(obj: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out;
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

// ---- field checks ----------------------------------------------------------------------------

export const INT32_MAX = 2147483647;
export const UINT32_MAX = 4294967295;

/** Only fields that are filled in are checked: an empty field means "not set". */
export type Checked<T> = { ok: true; value: T | undefined } | { ok: false; message: string };

/** A whole number within [min, max], as typed. */
export function checkInt(raw: string, opts: { min: number; max: number; why?: string }): Checked<number> {
  const s = raw.trim();
  if (s === '') return { ok: true, value: undefined };
  if (!/^[+-]?\d+$/.test(s)) return { ok: false, message: `must be a whole number (got ${JSON.stringify(raw)})` };
  const n = Number(s);
  if (n < opts.min) return { ok: false, message: `must be at least ${opts.min} (got ${n})${opts.why ? `: ${opts.why}` : ''}` };
  if (n > opts.max) return { ok: false, message: `must be at most ${opts.max} (got ${n})` };
  return { ok: true, value: n };
}

/** A percentage: a whole number from 0 to 100. */
export function checkPercent(raw: string): Checked<number> {
  const s = raw.trim();
  if (s === '') return { ok: true, value: undefined };
  if (!/^[+-]?\d+$/.test(s)) return { ok: false, message: `must be a whole-number percentage from 0 to 100 (got ${JSON.stringify(raw)})` };
  const n = Number(s);
  if (n < 0 || n > 100) return { ok: false, message: `must be a percentage from 0 to 100 (got ${n})` };
  return { ok: true, value: n };
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h)/;

/**
 * A duration as Istio reads it (Go's time.ParseDuration: "10s", "1.5s", "500ms", "1h30m"), in
 * milliseconds; null when it is not one. A bare number is refused: "10" could mean anything.
 */
export function parseDurationMs(raw: string): number | null {
  let s = raw.trim();
  if (s === '0') return 0;
  if (s === '') return null;
  let total = 0;
  while (s.length > 0) {
    const m = DURATION.exec(s);
    if (!m) return null;
    const unit = /(ns|us|µs|μs|ms|s|m|h)$/.exec(m[0])![1]!;
    total += Number(m[0].slice(0, -unit.length)) * UNIT_MS[unit]!;
    s = s.slice(m[0].length);
  }
  return Number.isFinite(total) ? total : null;
}

/** A duration of at least `minMs` (Istio wants most of them ≥ 1ms). */
export function checkDuration(raw: string, opts: { minMs?: number } = {}): Checked<string> {
  const s = raw.trim();
  if (s === '') return { ok: true, value: undefined };
  const ms = parseDurationMs(s);
  const minMs = opts.minMs ?? 1;
  if (ms === null) return { ok: false, message: `must be a duration such as "10s", "500ms" or "1m30s" (got ${JSON.stringify(raw)})` };
  if (ms < minMs) return { ok: false, message: `must be at least ${minMs}ms (got ${JSON.stringify(s)})` };
  return { ok: true, value: s };
}

/** Collects field errors while reading a form. */
export class FormReader {
  readonly errors: FieldError[] = [];
  constructor(private readonly prefix: string) {}

  /** Records the error (with the field's label first) or returns the checked value. */
  take<T>(field: string, subpath: string, label: string, result: Checked<T>): T | undefined {
    if (result.ok) return result.value;
    this.errors.push({ field, path: `${this.prefix}.${subpath}`, message: `${label} ${result.message}` });
    return undefined;
  }

  fail(field: string, subpath: string, message: string): void {
    this.errors.push({ field, path: subpath === '' ? this.prefix : `${this.prefix}.${subpath}`, message });
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
