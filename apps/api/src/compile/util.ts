import { parseDurationMs } from '@tern/shared';
import { formatDuration, type Json, type JsonObject } from '@tern/xds';

// Small helpers every part of the compiler shares: Istio -> Envoy value conversions and the
// ordering rules that make output independent of input order.

/** An Istio duration ("300ms", "1m30s") as protobuf JSON ("0.300s"); undefined when absent or bad. */
export function envoyDuration(istio: string | undefined | null): string | undefined {
  if (typeof istio !== 'string') return undefined;
  const ms = parseDurationMs(istio);
  if (ms === null) return undefined;
  const ns = Math.round(ms * 1e6);
  return formatDuration({ seconds: Math.floor(ns / 1e9), nanos: ns % 1e9 });
}

/** Whole seconds of an Istio duration (TCP keepalive fields are uint32 seconds). */
export function durationSeconds(istio: string | undefined | null): number | undefined {
  if (typeof istio !== 'string') return undefined;
  const ms = parseDurationMs(istio);
  return ms === null ? undefined : Math.max(0, Math.floor(ms / 1000));
}

export function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortBy<T>(items: Iterable<T>, key: (t: T) => string): T[] {
  return [...items].sort((a, b) => cmpStr(key(a), key(b)));
}

/** Labels as a canonical string, for cache keys. */
export function labelsKey(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** A map whose iteration order is sorted by key: what callers serialise. */
export function sortedMap<V>(entries: Iterable<[string, V]>): Map<string, V> {
  return new Map([...entries].sort(([a], [b]) => cmpStr(a, b)));
}

/**
 * Interns built values by a key, so every proxy that needs identical output gets the same object
 * (the ADS server caches encodings by identity).
 */
export class Interner<V> {
  private readonly byKey = new Map<string, V>();
  get(key: string, build: () => V): V {
    let v = this.byKey.get(key);
    if (v === undefined) {
      v = build();
      this.byKey.set(key, v);
    }
    return v;
  }
  get size(): number {
    return this.byKey.size;
  }
}

/** Identity numbers for objects, so a key can name "this exact object". */
export class ObjectIds {
  private readonly ids = new WeakMap<object, number>();
  private next = 1;
  of(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.next++;
      this.ids.set(o, id);
    }
    return id;
  }
}

/** Drops undefined values, so optional fields are simply absent from the JSON. */
export function compact(o: Record<string, Json | undefined>): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** JSON with object keys sorted, for golden files and byte comparisons. */
export function stableStringify(value: unknown, indent = 2): string {
  return JSON.stringify(sortKeys(value), null, indent);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/** Istio's Percent ({value}) or a whole percent as Envoy's FractionalPercent. */
export function fractionalPercent(value: number): JsonObject {
  // Whole percentages keep Envoy's HUNDRED denominator; anything finer needs MILLION.
  if (Number.isInteger(value)) return { numerator: value, denominator: 'HUNDRED' };
  return { numerator: Math.round(value * 10000), denominator: 'MILLION' };
}
