/**
 * Pure pieces of the ADS client: turning a response's Anys into named resources and computing the
 * complete per-type set that the sink receives. No I/O here.
 */
import { FULL_STATE_TYPES, TYPE_URL, unpackAny, type AnyMessage, type DeltaResource, type JsonObject } from '@tern/xds';
import type { HeldResource } from './sink.ts';

/** A response that cannot be applied; the message goes into the NACK's error_detail. */
export class ResourceDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResourceDecodeError';
  }
}

export function shortTypeName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1) || typeUrl;
}

/** The field that names a resource: ClusterLoadAssignment is keyed by cluster_name, the rest by name. */
export function resourceNameOf(typeUrl: string, json: JsonObject): string | undefined {
  const name = typeUrl === TYPE_URL.endpoint ? json.cluster_name : json.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

export function isFullState(typeUrl: string): boolean {
  return FULL_STATE_TYPES.has(typeUrl);
}

function label(typeUrl: string, index: number, name?: string): string {
  return `${shortTypeName(typeUrl)} resource [${index}]${name ? ` "${name}"` : ''}`;
}

/**
 * Looks up the JSON held for `name` when its encoded bytes are unchanged. Handing the store the
 * very same object lets it reuse the compiled form (it compares raw JSON by identity).
 */
export type ReuseLookup = (name: string, bytes: Buffer) => JsonObject | undefined;

export interface Decoded {
  json: JsonObject;
  bytes: Buffer;
}

function bytesOf(any: AnyMessage): Buffer {
  const v = any.value as Buffer | Uint8Array | undefined;
  if (!v) return Buffer.alloc(0);
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function unpack(typeUrl: string, any: AnyMessage | undefined, index: number, name?: string): JsonObject {
  if (!any) throw new ResourceDecodeError(`${label(typeUrl, index, name)}: has no resource`);
  if (any.type_url !== typeUrl) {
    throw new ResourceDecodeError(`${label(typeUrl, index, name)}: type_url "${any.type_url}" does not match the response's type_url "${typeUrl}"`);
  }
  try {
    return unpackAny({ type_url: any.type_url, value: bytesOf(any) });
  } catch (err) {
    throw new ResourceDecodeError(`${label(typeUrl, index, name)}: cannot be decoded as ${shortTypeName(typeUrl)}: ${(err as Error).message}`);
  }
}

/** A state-of-the-world response's resources by name. Throws ResourceDecodeError naming the culprit. */
export function decodeSotwResources(typeUrl: string, anys: readonly AnyMessage[], reuse?: ReuseLookup): Map<string, Decoded> {
  const out = new Map<string, Decoded>();
  anys.forEach((any, i) => {
    const json = unpack(typeUrl, any, i);
    const name = resourceNameOf(typeUrl, json);
    if (name === undefined) {
      const field = typeUrl === TYPE_URL.endpoint ? 'cluster_name' : 'name';
      throw new ResourceDecodeError(`${label(typeUrl, i)}: ${field} is required`);
    }
    if (out.has(name)) throw new ResourceDecodeError(`${label(typeUrl, i, name)}: duplicate resource name in one response`);
    const bytes = bytesOf(any);
    out.set(name, { json: reuse?.(name, bytes) ?? json, bytes });
  });
  return out;
}

/**
 * The complete set after a state-of-the-world response. Listeners and clusters: the response is
 * the whole set. Routes and endpoints: the response's resources replace those names; other held
 * names stay while subscribed. Names the client did not subscribe to are left out (`ignored`).
 */
export function sotwResourceSet(
  typeUrl: string,
  held: ReadonlyMap<string, HeldResource>,
  decoded: ReadonlyMap<string, Decoded>,
  version: string,
  subscribed: ReadonlySet<string> | 'wildcard',
): { set: Map<string, HeldResource>; ignored: string[] } {
  const set = new Map<string, HeldResource>();
  const ignored: string[] = [];
  const wanted = (name: string) => subscribed === 'wildcard' || subscribed.has(name);
  if (!isFullState(typeUrl)) {
    for (const [name, r] of held) if (wanted(name)) set.set(name, r);
  }
  for (const [name, { json }] of decoded) {
    if (wanted(name)) set.set(name, { version, json });
    else ignored.push(name);
  }
  return { set, ignored };
}

export interface DecodedDelta {
  updates: Map<string, HeldResource>;
  bytes: Map<string, Buffer>;
  /** removed_resources plus entries that came without a resource body (Envoy reads those as "does not exist"). */
  removed: string[];
}

/** A delta response's changes. Throws ResourceDecodeError naming the culprit. */
export function decodeDeltaResources(
  typeUrl: string,
  resources: readonly DeltaResource[],
  removedResources: readonly string[],
  reuse?: ReuseLookup,
): DecodedDelta {
  const updates = new Map<string, HeldResource>();
  const bytes = new Map<string, Buffer>();
  const removed = [...removedResources];
  resources.forEach((r, i) => {
    const name = r.name ?? '';
    if (!r.resource) {
      if (name === '') throw new ResourceDecodeError(`${label(typeUrl, i)}: has neither a name nor a resource`);
      removed.push(name);
      return;
    }
    const json = unpack(typeUrl, r.resource, i, name || undefined);
    const inner = resourceNameOf(typeUrl, json);
    const effective = name || inner;
    if (effective === undefined) throw new ResourceDecodeError(`${label(typeUrl, i)}: name is required`);
    if (inner !== undefined && inner !== effective) {
      throw new ResourceDecodeError(`${label(typeUrl, i, effective)}: the resource's own name is "${inner}"`);
    }
    if (updates.has(effective)) throw new ResourceDecodeError(`${label(typeUrl, i, effective)}: duplicate resource name in one response`);
    const raw = bytesOf(r.resource);
    updates.set(effective, { version: r.version ?? '', json: reuse?.(effective, raw) ?? json });
    bytes.set(effective, raw);
  });
  return { updates, bytes, removed };
}

/** The held set with a delta applied; changes for names not subscribed are ignored. */
export function deltaResourceSet(
  held: ReadonlyMap<string, HeldResource>,
  delta: DecodedDelta,
  subscribed: ReadonlySet<string> | 'wildcard',
): { set: Map<string, HeldResource>; ignored: string[] } {
  const set = new Map(held);
  const ignored: string[] = [];
  for (const name of delta.removed) set.delete(name);
  for (const [name, r] of delta.updates) {
    if (subscribed === 'wildcard' || subscribed.has(name)) set.set(name, r);
    else ignored.push(name);
  }
  return { set, ignored };
}

export function sortedNames(names: Iterable<string>): string[] {
  return [...new Set(names)].sort();
}

export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
