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

/** canonical name -> the compiler's name, per resource map (built once per map). */
const canonicalIndexes = new WeakMap<ReadonlyMap<string, JsonObject>, Map<string, string>>();

export function canonicalIndex(m: ReadonlyMap<string, JsonObject>): Map<string, string> {
  let idx = canonicalIndexes.get(m);
  if (!idx) {
    idx = new Map();
    for (const name of m.keys()) idx.set(canonicalResourceName(name), name);
    canonicalIndexes.set(m, idx);
  }
  return idx;
}

export const EMPTY_RESOURCES: ProxyResources = { listeners: new Map(), routes: new Map(), clusters: new Map(), endpoints: new Map() };
