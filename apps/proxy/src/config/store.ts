/**
 * ConfigStore: the current ProxySnapshot and how it changes. Each xDS type is replaced whole
 * (`replaceType`); the candidate snapshot is built from the current resources plus the new set and
 * swapped in only if it compiles. Published snapshots are never mutated, so a request that took a
 * snapshot keeps a consistent view however many updates arrive meanwhile.
 */
import { TYPE_URL, type Json, type JsonObject } from '@tern/xds';
import { ConfigError, type ProxySnapshot, type ResourceEntry, type ResourceSet } from './model.ts';
import { buildSnapshot, emptySnapshot } from './snapshot.ts';
import { LbRegistry, type LoadBalancer } from './lb.ts';

/** A change notification: the new snapshot, the one it replaced and which types changed. */
export interface SnapshotChange {
  readonly snapshot: ProxySnapshot;
  readonly previous: ProxySnapshot;
  readonly typeUrls: readonly string[];
}

export type SnapshotListener = (change: SnapshotChange) => void;

export interface ConfigStoreOptions {
  /** Bootstrap static_resources by type URL then name. They cannot be replaced or removed by xDS. */
  readonly staticResources?: ReadonlyMap<string, ReadonlyMap<string, JsonObject>>;
  /** Where an exception thrown by a change listener goes (default: console.error). */
  readonly onListenerError?: (err: unknown) => void;
}

/** Input of replaceType: the complete set of resources of one type by name. */
export type ResourceUpdate = ReadonlyMap<string, { readonly version?: string; readonly json: JsonObject }>;

export class ConfigStore {
  #current: ProxySnapshot;
  readonly #static = new Map<string, ReadonlyMap<string, ResourceEntry>>();
  readonly #dynamic = new Map<string, ReadonlyMap<string, ResourceEntry>>();
  /** Resources the proxy makes itself (the identity agent's SDS secrets); they win over xDS. */
  readonly #local = new Map<string, ReadonlyMap<string, ResourceEntry>>();
  readonly #typeVersions = new Map<string, string>();
  readonly #listeners = new Set<SnapshotListener>();
  readonly #onListenerError: (err: unknown) => void;
  /** Load balancers and endpoint runtime stats, kept across swaps. */
  readonly lb = new LbRegistry();

  /** Throws ConfigError when the static resources are invalid. */
  constructor(opts: ConfigStoreOptions = {}) {
    this.#onListenerError = opts.onListenerError ?? ((err) => console.error('snapshot listener failed:', err));
    for (const [typeUrl, set] of opts.staticResources ?? []) {
      this.#static.set(typeUrl, new Map([...set].map(([name, json]) => [name, { version: 'static', json, static: true }] as const)));
    }
    this.#current = this.#static.size > 0 ? buildSnapshot(this.#merged(), { version: '1', typeVersions: this.#typeVersions }) : emptySnapshot();
  }

  /** The current snapshot. Keep the reference for the duration of a request/connection. */
  get snapshot(): ProxySnapshot {
    return this.#current;
  }

  /**
   * Replaces every dynamic resource of one type with `resources` (a name missing is a deletion).
   * Returns the new snapshot; throws ConfigError (and keeps the current snapshot) when the result
   * does not compile. `versionInfo` is the xDS response's version_info.
   */
  replaceType(typeUrl: string, resources: ResourceUpdate, versionInfo?: string): ProxySnapshot {
    const statics = this.#static.get(typeUrl);
    const prevDynamic = this.#dynamic.get(typeUrl);
    const next = new Map<string, ResourceEntry>();
    for (const [name, r] of resources) {
      if (statics?.has(name)) throw new ConfigError(typeUrl, name, '', 'a static resource (bootstrap static_resources) of this name exists; it cannot be replaced by xDS');
      const old = prevDynamic?.get(name);
      // Reusing the previous entry when the JSON is unchanged lets buildSnapshot reuse compiled objects.
      next.set(name, old && (old.json === r.json || jsonEqual(old.json, r.json)) ? old : { version: r.version ?? versionInfo ?? '', json: r.json });
    }
    const dynamic = new Map(this.#dynamic);
    dynamic.set(typeUrl, next);
    const typeVersions = new Map(this.#typeVersions);
    if (versionInfo !== undefined) typeVersions.set(typeUrl, versionInfo);
    const previous = this.#current;
    const snapshot = buildSnapshot(this.#merged(dynamic), {
      version: String(Number(previous.version) + 1),
      typeVersions,
      previous,
    });
    this.#dynamic.set(typeUrl, next);
    if (versionInfo !== undefined) this.#typeVersions.set(typeUrl, versionInfo);
    this.#current = snapshot;
    this.lb.retain(snapshot);
    this.#emit({ snapshot, previous, typeUrls: [typeUrl] });
    return snapshot;
  }

  /**
   * Sets the resources of one type the proxy provides itself (the workload identity's `default`
   * and `ROOTCA` secrets, as Istio's agent serves them over its local SDS). They take precedence
   * over resources of the same name from xDS, which are ignored while a local one exists, and are
   * not subscribed to. Throws ConfigError (keeping the current snapshot) when the result does not compile.
   */
  setLocal(typeUrl: string, resources: ReadonlyMap<string, JsonObject>): ProxySnapshot {
    const local = new Map(this.#local);
    local.set(typeUrl, new Map([...resources].map(([name, json]) => [name, { version: 'local', json }] as const)));
    const previous = this.#current;
    const snapshot = buildSnapshot(this.#merged(this.#dynamic, local), { version: String(Number(previous.version) + 1), typeVersions: this.#typeVersions, previous });
    this.#local.set(typeUrl, local.get(typeUrl)!);
    this.#current = snapshot;
    this.lb.retain(snapshot);
    this.#emit({ snapshot, previous, typeUrls: [typeUrl] });
    return snapshot;
  }

  /** Names of one type the proxy provides itself (see setLocal). */
  localNames(typeUrl: string): string[] {
    return [...(this.#local.get(typeUrl)?.keys() ?? [])];
  }

  /**
   * Resource names to subscribe to for a type: RDS route names referenced by listeners, EDS
   * service names of EDS clusters (eds_cluster_config.service_name or the cluster name), SDS
   * secret names referenced by transport sockets. Empty for LDS and CDS (wildcard).
   */
  wantedNames(typeUrl: string): string[] {
    const snap = this.#current;
    const out = new Set<string>();
    if (typeUrl === TYPE_URL.route) {
      for (const l of snap.listeners.values()) {
        for (const chain of [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])]) {
          if (chain.handler.kind === 'http' && chain.handler.routeSource.kind === 'rds') out.add(chain.handler.routeSource.name);
        }
      }
    } else if (typeUrl === TYPE_URL.endpoint) {
      for (const c of snap.clusters.values()) if (c.edsServiceName !== undefined) out.add(c.edsServiceName);
    } else if (typeUrl === TYPE_URL.secret) {
      for (const l of snap.listeners.values()) for (const chain of l.filterChains) if (chain.transportSocket) collectSdsNames(chain.transportSocket, out);
      for (const c of snap.clusters.values()) {
        if (c.transportSocket) collectSdsNames(c.transportSocket, out);
        for (const m of c.transportSocketMatches) collectSdsNames(m.transportSocket, out);
      }
      for (const name of this.#local.get(typeUrl)?.keys() ?? []) out.delete(name);
    }
    return [...out].sort();
  }

  /** Calls `listener` after every successful swap. Returns an unsubscribe function. */
  onChange(listener: SnapshotListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The load balancer of a cluster in the current snapshot (undefined if the cluster is unknown). */
  loadBalancer(clusterName: string, snapshot: ProxySnapshot = this.#current): LoadBalancer | undefined {
    const cluster = snapshot.clusters.get(clusterName);
    return cluster ? this.lb.forCluster(cluster) : undefined;
  }

  #merged(dynamic: ReadonlyMap<string, ReadonlyMap<string, ResourceEntry>> = this.#dynamic, local: ReadonlyMap<string, ReadonlyMap<string, ResourceEntry>> = this.#local): Map<string, ResourceSet> {
    const out = new Map<string, ResourceSet>();
    for (const typeUrl of new Set([...this.#static.keys(), ...dynamic.keys(), ...local.keys()])) {
      const s = this.#static.get(typeUrl);
      const d = dynamic.get(typeUrl);
      const l = local.get(typeUrl);
      const merged = s && d ? new Map([...s, ...d]) : (s ?? d ?? new Map());
      out.set(typeUrl, l && l.size > 0 ? new Map([...merged, ...l]) : merged);
    }
    return out;
  }

  #emit(change: SnapshotChange): void {
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
  }
}

/** SDS secret names inside a TLS context (tls_certificate_sds_secret_configs, validation_context_sds_secret_config). */
function collectSdsNames(v: Json, out: Set<string>): void {
  if (Array.isArray(v)) {
    for (const e of v) collectSdsNames(e, out);
    return;
  }
  if (typeof v !== 'object' || v === null) return;
  for (const [k, child] of Object.entries(v)) {
    if (k === 'tls_certificate_sds_secret_configs' && Array.isArray(child)) {
      for (const s of child) if (typeof s === 'object' && s && !Array.isArray(s) && typeof s.name === 'string') out.add(s.name);
    } else if (k === 'validation_context_sds_secret_config' && typeof child === 'object' && child && !Array.isArray(child) && typeof child.name === 'string') {
      out.add(child.name);
    } else collectSdsNames(child, out);
  }
}

function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]!));
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b as JsonObject);
  return ka.length === kb.length && ka.every((k) => k in (b as JsonObject) && jsonEqual(a[k]!, (b as JsonObject)[k]!));
}
