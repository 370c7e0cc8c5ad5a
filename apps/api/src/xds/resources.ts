import { createHash } from 'node:crypto';
import { TYPE_URL, canonicalResourceName, packAny, type AnyMessage, type JsonObject } from '@tern/xds';
import type { ProxyResources } from '../compile/types.ts';

// Resource types the ADS server serves, their encodings and versions. Pure apart from caches keyed
// by the compiler's (immutable) resource objects.

export type ResourceType = keyof ProxyResources;

export interface TypeInfo {
  key: ResourceType;
  url: string;
  /** istioctl's column name. */
  short: 'CDS' | 'EDS' | 'LDS' | 'RDS';
  /** State-of-the-world responses carry every resource of the type (absence = deletion). */
  fullState: boolean;
}

/** In the order a client should apply them: clusters before their endpoints, listeners before their routes. */
export const TYPES: readonly TypeInfo[] = [
  { key: 'clusters', url: TYPE_URL.cluster, short: 'CDS', fullState: true },
  { key: 'endpoints', url: TYPE_URL.endpoint, short: 'EDS', fullState: false },
  { key: 'listeners', url: TYPE_URL.listener, short: 'LDS', fullState: true },
  { key: 'routes', url: TYPE_URL.route, short: 'RDS', fullState: false },
];

const byUrl = new Map(TYPES.map((t) => [t.url, t]));
export const typeByUrl = (url: string | undefined): TypeInfo | undefined => (url ? byUrl.get(url) : undefined);

export interface Encoded {
  any: AnyMessage;
  /** Short content hash of the encoded bytes: equal across replicas for equal content. */
  version: string;
}

/**
 * Encodings by resource object. The compiler hands the same object to every proxy that gets an
 * identical resource, so a cluster shared by a thousand proxies is encoded and hashed once.
 */
const encodings = new WeakMap<JsonObject, Encoded | Error>();

export function encode(type: TypeInfo, json: JsonObject): Encoded {
  let e = encodings.get(json);
  if (!e) {
    try {
      const any = packAny({ '@type': type.url, ...json });
      e = { any, version: shortHash(any.value) };
    } catch (err) {
      e = err instanceof Error ? err : new Error(String(err));
    }
    encodings.set(json, e);
  }
  if (e instanceof Error) throw e;
  return e;
}

export function shortHash(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('base64url').slice(0, 16);
}

/**
 * A state-of-the-world version: a hash of the sorted (name, version) list. It depends on content
 * only, so another replica with the same config announces the same version and a proxy that moves
 * over is not pushed again for nothing.
 */
export function typeVersion(entries: Iterable<[string, string]>): string {
  const list = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return shortHash(list.map(([n, v]) => `${n}\u0000${v}`).join('\n'));
}

/** canonicalResourceName without the decode attempt for the common name with no escapes. */
export function canonicalName(name: string): string {
  return name.includes('%') ? canonicalResourceName(name) : name;
}

/** canonical name -> the compiler's name, per resource map (built once per map). */
const canonicalIndexes = new WeakMap<ReadonlyMap<string, JsonObject>, Map<string, string>>();

export function canonicalIndex(m: ReadonlyMap<string, JsonObject>): Map<string, string> {
  let idx = canonicalIndexes.get(m);
  if (!idx) {
    idx = new Map();
    for (const name of m.keys()) idx.set(canonicalName(name), name);
    canonicalIndexes.set(m, idx);
  }
  return idx;
}

/** Every canonical name of a resource map, as a set (built once per map and shared: never mutated). */
const nameSets = new WeakMap<ReadonlyMap<string, JsonObject>, Set<string>>();

function canonicalNameSet(m: ReadonlyMap<string, JsonObject>): Set<string> {
  let set = nameSets.get(m);
  if (!set) nameSets.set(m, (set = new Set(canonicalIndex(m).keys())));
  return set;
}

/**
 * A state-of-the-world subscription (canonical names, without "*") as a set that is only ever
 * replaced, never changed. Names arrive decoded afresh with every request, a hundred or more per
 * proxy (EDS: one per cluster), and a thousand proxies would each hold copies: this returns `prev`
 * when the names are the same, the set of `m`'s names when they are all of them (the usual EDS
 * subscription), else a new set holding `m`'s own strings where it has the name.
 */
export function subscriptionSet(names: readonly string[], m: ReadonlyMap<string, JsonObject>, prev: Set<string>): Set<string> {
  let same = true;
  for (const n of names) if (!prev.has(n)) {
    same = false;
    break;
  }
  if (same && new Set(names).size === prev.size) return prev;
  const idx = canonicalIndex(m);
  const all = canonicalNameSet(m);
  if (names.length >= all.size) {
    let every = true;
    for (const n of names) if (!all.has(n)) {
      every = false;
      break;
    }
    if (every && new Set(names).size === all.size) return all;
  }
  const out = new Set<string>();
  for (const n of names) {
    const own = idx.get(n);
    out.add(own === n ? own : n);
  }
  return out;
}

/** A wildcard subscriber's view of a resource map: canonical name -> entry (built once per map, shared by every proxy holding the map). */
const wildcardViews = new WeakMap<ReadonlyMap<string, JsonObject>, ReadonlyMap<string, { name: string; json: JsonObject }>>();

export function wildcardView(m: ReadonlyMap<string, JsonObject>): ReadonlyMap<string, { name: string; json: JsonObject }> {
  let v = wildcardViews.get(m);
  if (!v) {
    const out = new Map<string, { name: string; json: JsonObject }>();
    for (const [name, json] of m) out.set(canonicalName(name), { name, json });
    wildcardViews.set(m, (v = out));
  }
  return v;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** The last comparison of a new resource object with an older one (most proxies compare the same pair). */
const compared = new WeakMap<JsonObject, { old: JsonObject; equal: boolean }>();

function sameContent(old: JsonObject, next: JsonObject): boolean {
  const c = compared.get(next);
  if (c && c.old === old) return c.equal;
  const equal = deepEqual(old, next);
  compared.set(next, { old, equal });
  return equal;
}

const reconciled = new WeakMap<ReadonlyMap<string, JsonObject>, { prev: ReadonlyMap<string, JsonObject>; out: ReadonlyMap<string, JsonObject> }>();

/**
 * `next` with every resource whose content equals the one in `prev` (same name) replaced by
 * `prev`'s object, and `prev` itself when nothing differs. A new mesh revision builds new objects;
 * this keeps the identity of what did not change, so the connection compares identities (no
 * re-encoding, no hashing) and skips a type whose map is the one it already sent. Memoised per
 * pair of maps: proxies with equal compile inputs share both.
 */
export function reuseUnchanged(prev: ReadonlyMap<string, JsonObject>, next: ReadonlyMap<string, JsonObject>): ReadonlyMap<string, JsonObject> {
  if (prev === next || prev.size === 0) return next;
  const memo = reconciled.get(next);
  if (memo && memo.prev === prev) return memo.out;
  let all = prev.size === next.size;
  let any = false;
  const out = new Map<string, JsonObject>();
  for (const [name, json] of next) {
    const old = prev.get(name);
    let v = json;
    if (old !== undefined && (old === json || sameContent(old, json))) {
      v = old;
      any = true;
    } else {
      all = false;
    }
    out.set(name, v);
  }
  const result = all ? prev : any ? out : next;
  reconciled.set(next, { prev, out: result });
  return result;
}

export function reuseUnchangedResources(prev: ProxyResources, next: ProxyResources): ProxyResources {
  return {
    listeners: reuseUnchanged(prev.listeners, next.listeners),
    routes: reuseUnchanged(prev.routes, next.routes),
    clusters: reuseUnchanged(prev.clusters, next.clusters),
    endpoints: reuseUnchanged(prev.endpoints, next.endpoints),
  };
}

export const EMPTY_RESOURCES: ProxyResources = { listeners: new Map(), routes: new Map(), clusters: new Map(), endpoints: new Map() };
