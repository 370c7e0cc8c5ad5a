import {
  type AnyMessage,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type JsonObject,
} from '@tern/xds';
import type { ProxyIdentity, ProxyResources } from '../compile/types.ts';
import type { PreparedMesh } from '../compile/types.ts';
import { EMPTY_RESOURCES, TYPES, canonicalIndex, canonicalName, encode, reuseUnchangedResources, subscriptionSet, typeByUrl, typeVersion, wildcardView, type TypeInfo } from './resources.ts';

// One ADS stream's protocol state: per type the subscription, what was sent (with its version and
// nonce), what was ACKed or NACKed. No I/O here: the server feeds requests and mesh updates in and
// writes out the responses these methods return, so the rules of Envoy's xDS protocol live in one
// place and can be read top to bottom.

export interface SentResource {
  name: string;
  version: string;
  /** Absent for what a delta client declared it has (initial_resource_versions) but we never sent. */
  json?: JsonObject;
  any?: AnyMessage;
}

export interface TypeState {
  info: TypeInfo;
  /** A request for this type arrived: only then is anything sent for it. */
  requested: boolean;
  wildcard: boolean;
  /** Canonical (percent-decoded) names. State of the world replaces the set and never changes it (it may be shared); delta changes its own. */
  subscribed: Set<string>;
  /** State of the world: what the last response carried. Delta: what the client has, by our account. Keyed by canonical name. */
  sent: Map<string, SentResource>;
  lastSent?: { version: string; nonce: string; at: Date; revision: string; count: number };
  acked?: { version: string; nonce: string; at: Date };
  nack?: { version: string; nonce: string; message: string; at: Date };
  /** The resource map the last pushType worked from, under the current subscription: a mesh update with the same map has nothing to send. */
  basis?: ReadonlyMap<string, JsonObject>;
}

export interface Push<R> {
  type: TypeInfo;
  nonce: string;
  response: R;
}

export interface RequestOutcome<R> {
  /** Set when the request did not answer the latest response of its type (ignored, or only its subscription changes applied). */
  stale?: boolean;
  ack?: { type: TypeInfo; nonce: string; version: string };
  nack?: { type: TypeInfo; nonce: string; version: string; message: string };
  push?: Push<R>;
  /** The type URL is not one this server serves (e.g. SDS secrets, for now). */
  unknownType?: string;
}

let nextConnId = 1;

abstract class Connection<Req, Res> {
  readonly connId = nextConnId++;
  readonly connectedAt = new Date();
  identity: ProxyIdentity | undefined;
  /** What the proxy should have, and the mesh revision it was compiled from. */
  desired: ProxyResources = EMPTY_RESOURCES;
  desiredRevision = '0';
  /** The prepared mesh `desired` is known to be current for (compiled from it, or found unaffected by its changes). */
  basis: PreparedMesh | undefined;
  /** The latest mesh revision at which every type the proxy asked for was ACKed. */
  convergedRevision: string | undefined;
  readonly types = new Map<string, TypeState>();
  /** Encoding failures (a compiler bug): logged by the server, shown nowhere else. */
  readonly encodeErrors: { type: string; name: string; message: string }[] = [];
  private nonceCounter = 0;

  constructor(readonly controlPlaneId: string) {}

  abstract readonly protocol: 'sotw' | 'delta';
  abstract handle(req: Req): RequestOutcome<Res>;
  /** The response for one type after `desired` changed, or undefined if the proxy already has it. */
  abstract pushType(type: TypeInfo, force: boolean): Push<Res> | undefined;

  get proxyId(): string {
    return this.identity?.id ?? '';
  }

  state(type: TypeInfo): TypeState {
    let st = this.types.get(type.url);
    if (!st) {
      st = { info: type, requested: false, wildcard: false, subscribed: new Set(), sent: new Map() };
      this.types.set(type.url, st);
    }
    return st;
  }

  /** New output for this proxy: the responses to send, in Envoy's apply order (CDS, EDS, LDS, RDS). */
  update(resources: ProxyResources, revision: string): Push<Res>[] {
    this.desired = reuseUnchangedResources(this.desired, resources);
    this.desiredRevision = revision;
    const pushes: Push<Res>[] = [];
    for (const type of TYPES) {
      const st = this.types.get(type.url);
      if (!st?.requested || st.basis === this.desired[type.key]) continue;
      const p = this.pushType(type, false);
      if (p) pushes.push(p);
    }
    this.noteConvergence();
    return pushes;
  }

  /** A new mesh revision that does not change this proxy's output. */
  advance(revision: string) {
    this.desiredRevision = revision;
    this.noteConvergence();
  }

  /** Every requested type ACKed at its latest version. */
  get synced(): boolean {
    let any = false;
    for (const st of this.types.values()) {
      if (!st.requested) continue;
      any = true;
      if (!st.lastSent || st.acked?.nonce !== st.lastSent.nonce) return false;
    }
    return any;
  }

  protected noteConvergence() {
    if (this.synced) this.convergedRevision = this.desiredRevision;
  }

  protected nextNonce(): string {
    return String(++this.nonceCounter);
  }

  /** The resources of `type` this proxy should see: all of them for a wildcard subscription, else the subscribed names that exist. */
  protected wanted(type: TypeInfo, st: TypeState): ReadonlyMap<string, { name: string; json: JsonObject }> {
    const m = this.desired[type.key];
    st.basis = m;
    if (st.wildcard) return wildcardView(m);
    const out = new Map<string, { name: string; json: JsonObject }>();
    const idx = canonicalIndex(m);
    // Subscribed to every resource there is (EDS names from CDS, typically): the shared view.
    if (st.subscribed.size >= idx.size) {
      let all = true;
      for (const c of idx.keys()) if (!st.subscribed.has(c)) {
        all = false;
        break;
      }
      if (all) return wildcardView(m);
    }
    for (const c of st.subscribed) {
      const name = idx.get(c);
      if (name !== undefined) out.set(c, { name, json: m.get(name)! });
    }
    return out;
  }

  protected encodeOrSkip(type: TypeInfo, name: string, json: JsonObject) {
    try {
      return encode(type, json);
    } catch (err) {
      this.encodeErrors.push({ type: type.short, name, message: (err as Error).message });
      return undefined;
    }
  }

  /** Records an ACK or NACK of the latest response of this type; false if the nonce is not the latest (stale). */
  protected answer(st: TypeState, nonce: string, error: { message?: string } | undefined, out: RequestOutcome<Res>): boolean {
    const last = st.lastSent;
    if (!last || last.nonce !== nonce) return false;
    const at = new Date();
    if (error) {
      st.nack = { version: last.version, nonce, message: error.message ?? '', at };
      out.nack = { type: st.info, nonce, version: last.version, message: st.nack.message };
    } else {
      st.acked = { version: last.version, nonce, at };
      out.ack = { type: st.info, nonce, version: last.version };
    }
    return true;
  }
}

/** One record per resource object (a compiled object has one name): shared by every proxy sent it. */
const sentResources = new WeakMap<JsonObject, SentResource>();

function sentResource(name: string, json: JsonObject, enc: { version: string; any: AnyMessage }): SentResource {
  let r = sentResources.get(json);
  if (!r || r.name !== name || r.version !== enc.version) {
    r = { name, version: enc.version, json, any: enc.any };
    sentResources.set(json, r);
  }
  return r;
}

/** State of the world: the `sent` record of a wanted map, when it was sent whole. */
const sentMaps = new WeakMap<ReadonlyMap<string, { name: string; json: JsonObject }>, Map<string, SentResource>>();

/** State of the world (StreamAggregatedResources). */
export class SotwConnection extends Connection<DiscoveryRequest, DiscoveryResponse> {
  readonly protocol = 'sotw' as const;

  handle(req: DiscoveryRequest): RequestOutcome<DiscoveryResponse> {
    const out: RequestOutcome<DiscoveryResponse> = {};
    const type = typeByUrl(req.type_url);
    if (!type) return { unknownType: req.type_url ?? '' };
    const st = this.state(type);
    const nonce = req.response_nonce ?? '';
    // A request that answers an older response says nothing about the current one: ignore it whole.
    // (A nonce on a type this stream never answered comes from an earlier stream, maybe to another
    // replica: that request is an initial one.)
    if (nonce && st.lastSent && !this.answer(st, nonce, req.error_detail, out)) return { stale: true };

    const names = (req.resource_names ?? []).map(canonicalName);
    const wildcard = names.includes('*') || (names.length === 0 && type.fullState);
    const subscribed = subscriptionSet(
      names.filter((n) => n !== '*'),
      this.desired[type.key],
      st.subscribed,
    );
    const added = (wildcard && !st.wildcard) || (!wildcard && subscribed !== st.subscribed && [...subscribed].some((n) => !st.subscribed.has(n)));
    if (added || wildcard !== st.wildcard || subscribed.size !== st.subscribed.size) st.basis = undefined;
    const first = !st.requested;
    st.requested = true;
    st.wildcard = wildcard;
    st.subscribed = subscribed;
    // First request of a type (or a fresh one, without nonce) and newly subscribed names get an
    // answer at once; a plain ACK or NACK does not (no resend loop after a NACK).
    if (first || !nonce || added) {
      const push = this.pushType(type, true);
      if (push) out.push = push;
    }
    this.noteConvergence();
    return out;
  }

  pushType(type: TypeInfo, force: boolean): Push<DiscoveryResponse> | undefined {
    const st = this.state(type);
    const wanted = this.wanted(type, st);
    const list: SentResource[] = [];
    let sent = new Map<string, SentResource>();
    let exact = true;
    let changed = force || wanted.size !== st.sent.size;
    for (const [c, { name, json }] of wanted) {
      const prev = st.sent.get(c);
      if (prev && prev.json === json && prev.name === name) {
        list.push(prev);
        sent.set(c, prev);
        continue;
      }
      const enc = this.encodeOrSkip(type, name, json);
      if (!enc) {
        // Keep what the proxy has rather than deleting it over our own encoding failure.
        exact = false;
        if (prev) {
          list.push(prev);
          sent.set(c, prev);
        }
        continue;
      }
      if (!prev || prev.version !== enc.version || prev.name !== name) changed = true;
      const r = sentResource(name, json, enc);
      list.push(r);
      sent.set(c, r);
    }
    // What was sent is exactly `wanted`, encoded: proxies sharing `wanted` share the record too
    // (state of the world replaces st.sent, never edits it).
    if (exact) {
      const shared = sentMaps.get(wanted);
      if (shared) sent = shared;
      else sentMaps.set(wanted, sent);
    }
    // Same content under new objects: remember the new objects so the next comparison is by identity.
    st.sent = sent;
    if (!changed) return undefined;
    const version = typeVersion(list.map((r) => [r.name, r.version]));
    const nonce = this.nextNonce();
    st.lastSent = { version, nonce, at: new Date(), revision: this.desiredRevision, count: list.length };
    return {
      type,
      nonce,
      response: {
        version_info: version,
        resources: list.map((r) => r.any!),
        type_url: type.url,
        nonce,
        control_plane: { identifier: this.controlPlaneId },
      },
    };
  }
}

/** Incremental (DeltaAggregatedResources). */
export class DeltaConnection extends Connection<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  readonly protocol = 'delta' as const;

  handle(req: DeltaDiscoveryRequest): RequestOutcome<DeltaDiscoveryResponse> {
    const out: RequestOutcome<DeltaDiscoveryResponse> = {};
    const type = typeByUrl(req.type_url);
    if (!type) return { unknownType: req.type_url ?? '' };
    const st = this.state(type);
    const nonce = req.response_nonce ?? '';
    // A stale ACK/NACK is not recorded, but the subscription change it carries still applies:
    // delta requests are changes to the subscription, and dropping one would lose it for good.
    if (nonce && st.lastSent && !this.answer(st, nonce, req.error_detail, out)) out.stale = true;

    const first = !st.requested;
    st.requested = true;
    if (first) {
      // Reconnecting: the client says what it already has, and is not sent it again.
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) {
        st.sent.set(canonicalName(name), { name, version });
      }
    }
    const subscribe = (req.resource_names_subscribe ?? []).map(canonicalName);
    const unsubscribe = (req.resource_names_unsubscribe ?? []).map(canonicalName);
    if (subscribe.length || unsubscribe.length) st.basis = undefined;
    if (first && subscribe.length === 0 && type.fullState) st.wildcard = true;
    const newly: string[] = [];
    for (const n of subscribe) {
      if (n === '*') {
        if (!st.wildcard) newly.push(n);
        st.wildcard = true;
      } else if (!st.subscribed.has(n)) {
        st.subscribed.add(n);
        newly.push(n);
      }
    }
    for (const n of unsubscribe) {
      if (n === '*') st.wildcard = false;
      else st.subscribed.delete(n);
    }
    // What the client unsubscribed from, it forgets: drop it from our account of what it has.
    if (unsubscribe.length && !st.wildcard) for (const c of [...st.sent.keys()]) if (!st.subscribed.has(c)) st.sent.delete(c);

    if (first || newly.length) {
      const push = this.pushType(type, first, newly);
      if (push) out.push = push;
    }
    this.noteConvergence();
    return out;
  }

  pushType(type: TypeInfo, force: boolean, newly: string[] = []): Push<DeltaDiscoveryResponse> | undefined {
    const st = this.state(type);
    const wanted = this.wanted(type, st);
    const changed: SentResource[] = [];
    for (const [c, { name, json }] of wanted) {
      const prev = st.sent.get(c);
      if (prev && prev.json === json) continue;
      const enc = this.encodeOrSkip(type, name, json);
      if (!enc) continue;
      const next: SentResource = { name, version: enc.version, json, any: enc.any };
      if (prev && prev.version === enc.version) {
        st.sent.set(c, next); // same content: only remember the new object
        continue;
      }
      changed.push(next);
    }
    const removed: string[] = [];
    for (const [c, r] of st.sent) if (!wanted.has(c)) removed.push(r.name);
    // A newly subscribed name that does not exist: say so (removed_resources), so the client need not wait.
    for (const c of newly) if (c !== '*' && !wanted.has(c) && !st.sent.has(c)) removed.push(c);
    if (!changed.length && !removed.length && !force) return undefined;

    for (const r of changed) st.sent.set(canonicalName(r.name), r);
    for (const n of removed) st.sent.delete(canonicalName(n));
    const version = typeVersion([...st.sent.values()].map((r) => [r.name, r.version]));
    const nonce = this.nextNonce();
    st.lastSent = { version, nonce, at: new Date(), revision: this.desiredRevision, count: st.sent.size };
    return {
      type,
      nonce,
      response: {
        system_version_info: version,
        resources: changed.map((r) => ({ name: r.name, version: r.version, resource: r.any! })),
        type_url: type.url,
        removed_resources: removed,
        nonce,
        control_plane: { identifier: this.controlPlaneId },
      },
    };
  }
}

export type AnyConnection = SotwConnection | DeltaConnection;
