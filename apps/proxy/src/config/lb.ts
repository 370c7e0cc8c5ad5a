/**
 * Load balancers per cluster. Compiled endpoints are immutable (model.ts); the runtime counters
 * the data plane updates (active requests, outlier state) live in EndpointStats objects owned by an
 * LbRegistry, keyed by cluster name and endpoint address, so they survive snapshot swaps: an
 * endpoint that is still there keeps its counters even when other resources (or the cluster's
 * other endpoints) change.
 */
import type { ClusterConfig, Endpoint, LbPolicy, ProxySnapshot } from './model.ts';
import { hashString } from './hash.ts';

/** Mutable per-endpoint runtime state. The data plane updates these fields. */
export interface EndpointStats {
  /** Requests in flight (used by LEAST_REQUEST). Increment on send, decrement on completion. */
  activeRequests: number;
  activeConnections: number;
  totalRequests: number;
  /** Outlier detection state (dataplane/resilience/outlier.ts drives these). */
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  consecutiveLocalOriginFailure: number;
  /**
   * Ejected by outlier detection: not a candidate, and counted as unhealthy for the panic
   * threshold. Change it through LbRegistry.setEjected (candidates are rebuilt on change).
   */
  ejected: boolean;
  ejectedUntilMs: number;
  ejectionCount: number;
}

export function newEndpointStats(): EndpointStats {
  return { activeRequests: 0, activeConnections: 0, totalRequests: 0, consecutive5xx: 0, consecutiveGatewayFailure: 0, consecutiveLocalOriginFailure: 0, ejected: false, ejectedUntilMs: 0, ejectionCount: 0 };
}

/** An endpoint with its runtime stats: what a picker returns. */
export interface UpstreamHost {
  readonly cluster: string;
  readonly endpoint: Endpoint;
  readonly stats: EndpointStats;
}

/** Per-pick input. */
export interface PickContext {
  /** Request hash for RING_HASH / MAGLEV (from hash.ts requestHash); absent = random. */
  readonly hash?: number;
  /** Endpoint keys to avoid (retries with previous_hosts). */
  readonly exclude?: ReadonlySet<string>;
  /** Random source in [0, 1) (tests pass a seeded one). */
  readonly random?: () => number;
}

export interface LoadBalancer {
  readonly cluster: ClusterConfig;
  /** Every host of the cluster. */
  readonly hosts: readonly UpstreamHost[];
  /** Hosts the picker chooses from (the highest priority with healthy hosts; all of it in panic mode). */
  readonly candidates: readonly UpstreamHost[];
  /** True when too few hosts were healthy (healthy_panic_threshold) and unhealthy ones are used too. */
  readonly panic: boolean;
  /** Undefined when there is no usable host (or for ORIGINAL_DST clusters: use the original destination). */
  pick(ctx?: PickContext): UpstreamHost | undefined;
}

/** Owns endpoint stats across snapshots and caches one LoadBalancer per compiled ClusterConfig. */
export class LbRegistry {
  private readonly balancers = new WeakMap<ClusterConfig, LoadBalancer>();
  private readonly stats = new Map<string, Map<string, EndpointStats>>();
  private readonly originalDst = new Map<string, Map<string, UpstreamHost>>();
  /** Per cluster name: bumped when an endpoint's ejection changes, so balancers rebuild candidates. */
  private readonly epochs = new Map<string, { n: number }>();

  /** The load balancer for this compiled cluster (built once per ClusterConfig object). */
  forCluster(cluster: ClusterConfig): LoadBalancer {
    let lb = this.balancers.get(cluster);
    if (!lb) {
      let byKey = this.stats.get(cluster.name);
      if (!byKey) this.stats.set(cluster.name, (byKey = new Map()));
      const hosts = cluster.endpoints.all.map((endpoint): UpstreamHost => {
        let s = byKey!.get(endpoint.key);
        if (!s) byKey!.set(endpoint.key, (s = newEndpointStats()));
        return { cluster: cluster.name, endpoint, stats: s };
      });
      lb = new EjectionAwareBalancer(cluster, hosts, this.epoch(cluster.name));
      this.balancers.set(cluster, lb);
    }
    return lb;
  }

  private epoch(name: string): { n: number } {
    let e = this.epochs.get(name);
    if (!e) this.epochs.set(name, (e = { n: 0 }));
    return e;
  }

  /**
   * Ejects or returns a host (outlier detection). Balancers of the cluster rebuild their
   * candidates (and re-evaluate panic) on their next pick: once per change, not per request.
   */
  setEjected(host: UpstreamHost, ejected: boolean): void {
    if (host.stats.ejected === ejected) return;
    host.stats.ejected = ejected;
    this.ejectionChanged(host.cluster);
  }

  /** Ejection state of some host of the cluster changed (for code that sets stats.ejected itself). */
  ejectionChanged(cluster: string): void {
    this.epoch(cluster).n++;
  }

  /** The stats of one endpoint, if the registry has seen it. */
  statsFor(cluster: string, endpointKey: string): EndpointStats | undefined {
    return this.stats.get(cluster)?.get(endpointKey);
  }

  /**
   * The host for one original destination of an ORIGINAL_DST cluster (Envoy creates hosts on
   * demand as well). Hosts nobody uses are forgotten once a cluster has seen too many.
   */
  originalDstHost(cluster: ClusterConfig, address: string, port: number): UpstreamHost {
    let hosts = this.originalDst.get(cluster.name);
    if (!hosts) this.originalDst.set(cluster.name, (hosts = new Map()));
    const key = `${address}:${port}`;
    let host = hosts.get(key);
    if (!host) {
      if (hosts.size >= MAX_ORIGINAL_DST_HOSTS) {
        for (const [k, h] of hosts) if (h.stats.activeRequests === 0 && h.stats.activeConnections === 0) hosts.delete(k);
      }
      const endpoint: Endpoint = { key, address, port, isPipe: false, weight: 1, healthStatus: 'UNKNOWN', healthy: true, locality: { region: '', zone: '', subZone: '' }, priority: 0 };
      hosts.set(key, (host = { cluster: cluster.name, endpoint, stats: newEndpointStats() }));
    }
    return host;
  }

  /** Forgets stats of clusters and endpoints no longer in the snapshot. */
  retain(snapshot: ProxySnapshot): void {
    for (const name of this.originalDst.keys()) if (!snapshot.clusters.has(name)) this.originalDst.delete(name);
    for (const name of this.epochs.keys()) if (!snapshot.clusters.has(name)) this.epochs.delete(name);
    for (const [name, byKey] of this.stats) {
      const cluster = snapshot.clusters.get(name);
      if (!cluster) {
        this.stats.delete(name);
        continue;
      }
      const keys = new Set(cluster.endpoints.all.map((e) => e.key));
      for (const key of byKey.keys()) if (!keys.has(key)) byKey.delete(key);
    }
  }
}

const MAX_ORIGINAL_DST_HOSTS = 1024;

/** Builds the picker for a cluster over hosts (with their stats), for their current ejection state. */
export function createLoadBalancer(cluster: ClusterConfig, hosts: readonly UpstreamHost[]): LoadBalancer {
  const { candidates, panic } = chooseCandidates(cluster, hosts);
  const pick = makePicker(cluster.lb, candidates, panic);
  return { cluster, hosts, candidates, panic, pick };
}

/**
 * A balancer that follows outlier ejections: when the cluster's ejection epoch moved since the
 * candidates were chosen, they are chosen again (one integer compare per pick otherwise).
 * Round-robin and weighted positions restart on a rebuild, which only happens on an ejection change.
 */
class EjectionAwareBalancer implements LoadBalancer {
  private current: LoadBalancer;
  private seen: number;

  constructor(
    readonly cluster: ClusterConfig,
    readonly hosts: readonly UpstreamHost[],
    private readonly epoch: { n: number },
  ) {
    this.seen = epoch.n;
    this.current = createLoadBalancer(cluster, hosts);
  }

  private fresh(): LoadBalancer {
    if (this.seen !== this.epoch.n) {
      this.seen = this.epoch.n;
      this.current = createLoadBalancer(this.cluster, this.hosts);
    }
    return this.current;
  }

  get candidates(): readonly UpstreamHost[] {
    return this.fresh().candidates;
  }

  get panic(): boolean {
    return this.fresh().panic;
  }

  pick(ctx?: PickContext): UpstreamHost | undefined {
    return this.fresh().pick(ctx);
  }
}

/** Usable as far as health goes: not failed by EDS health status nor ejected by outlier detection. */
const isHealthy = (h: UpstreamHost) => h.endpoint.healthy && !h.stats.ejected;

/**
 * Priorities: the lowest priority number that has a healthy host is used (Envoy would spill
 * over gradually using the overprovisioning factor; not implemented). Healthy means neither
 * unhealthy by EDS nor ejected by outlier detection. Within the level, when the healthy share is
 * below healthy_panic_threshold, every host of that priority is used, ejected or not (Envoy's
 * panic mode: spreading load over all hosts beats overloading the few healthy ones).
 */
function chooseCandidates(cluster: ClusterConfig, hosts: readonly UpstreamHost[]): { candidates: readonly UpstreamHost[]; panic: boolean } {
  if (hosts.length === 0) return { candidates: [], panic: false };
  const priorities = [...new Set(hosts.map((h) => h.endpoint.priority))].sort((a, b) => a - b);
  let level = priorities.find((p) => hosts.some((h) => h.endpoint.priority === p && isHealthy(h)));
  if (level === undefined) level = priorities[0]!;
  const inLevel = hosts.filter((h) => h.endpoint.priority === level);
  const healthy = inLevel.filter(isHealthy);
  const threshold = cluster.healthyPanicThreshold;
  // healthy_panic_threshold 0 disables panic mode: with no healthy host there is no host.
  if (threshold === 0) return { candidates: healthy, panic: false };
  const panic = (healthy.length / inLevel.length) * 100 < threshold;
  if (panic) return { candidates: inLevel, panic: true };
  return { candidates: healthy, panic: false };
}

type Picker = (ctx?: PickContext) => UpstreamHost | undefined;

function eligible(h: UpstreamHost, exclude: ReadonlySet<string> | undefined, ignoreEjection: boolean): boolean {
  return (ignoreEjection || !h.stats.ejected) && !(exclude && exclude.has(h.endpoint.key));
}

/**
 * In panic mode ejected hosts are candidates like the others. Otherwise the candidates exclude
 * them already; the check per pick covers an ejection made without LbRegistry.setEjected and, if
 * every candidate is ejected that way, falls back to ignoring ejections rather than failing.
 */
function withPanic(hosts: readonly UpstreamHost[], panic: boolean, pick: (ctx: PickContext | undefined, ignoreEjection: boolean) => UpstreamHost | undefined): Picker {
  if (panic) return (ctx) => pick(ctx, true);
  return (ctx) => pick(ctx, false) ?? (hosts.some((h) => h.stats.ejected) ? pick(ctx, true) : undefined);
}

function makePicker(policy: LbPolicy, hosts: readonly UpstreamHost[], panic: boolean): Picker {
  if (hosts.length === 0 || policy.kind === 'CLUSTER_PROVIDED') return () => undefined;
  switch (policy.kind) {
    case 'ROUND_ROBIN':
      return roundRobin(hosts, panic);
    case 'LEAST_REQUEST':
      return leastRequest(hosts, policy.choiceCount, policy.activeRequestBias, panic);
    case 'RANDOM':
      return randomPicker(hosts, panic);
    case 'RING_HASH':
      return ringHash(hosts, policy.minimumRingSize, policy.maximumRingSize, panic);
    case 'MAGLEV':
      return maglev(hosts, policy.tableSize, panic);
  }
}

const allEqual = (hosts: readonly UpstreamHost[]) => hosts.every((h) => h.endpoint.weight === hosts[0]!.endpoint.weight);

/** Round robin; with unequal weights, smooth weighted round robin (nginx's), which interleaves picks. */
function roundRobin(hosts: readonly UpstreamHost[], panic: boolean): Picker {
  const n = hosts.length;
  if (allEqual(hosts)) {
    let next = 0;
    return withPanic(hosts, panic, (ctx, ignore) => {
      for (let i = 0; i < n; i++) {
        const h = hosts[(next + i) % n]!;
        if (eligible(h, ctx?.exclude, ignore)) {
          next = (next + i + 1) % n;
          return h;
        }
      }
      return undefined;
    });
  }
  const current = new Float64Array(n);
  return withPanic(hosts, panic, (ctx, ignore) => {
    let total = 0;
    let best = -1;
    for (let i = 0; i < n; i++) {
      const h = hosts[i]!;
      if (!eligible(h, ctx?.exclude, ignore)) continue;
      current[i]! += h.endpoint.weight;
      total += h.endpoint.weight;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    if (best < 0) return undefined;
    current[best]! -= total;
    return hosts[best];
  });
}

/**
 * Least request. Equal weights: the best of `choiceCount` random choices by active requests
 * (power of two choices; when there are no more hosts than choices, all are compared). Unequal
 * weights: Envoy's effective weight `weight / (active + 1) ^ active_request_bias`, scheduled by
 * smooth weighted round robin (Envoy uses an EDF scheduler to the same effect).
 */
function leastRequest(hosts: readonly UpstreamHost[], choiceCount: number, bias: number, panic: boolean): Picker {
  const n = hosts.length;
  if (allEqual(hosts)) {
    return withPanic(hosts, panic, (ctx, ignore) => {
      const random = ctx?.random ?? Math.random;
      let best: UpstreamHost | undefined;
      if (n <= choiceCount) {
        // Compare all, from a random start: ties (every idle host) must not always go to the first.
        const start = Math.floor(random() * n);
        for (let i = 0; i < n; i++) {
          const h = hosts[(start + i) % n]!;
          if (eligible(h, ctx?.exclude, ignore) && (!best || h.stats.activeRequests < best.stats.activeRequests)) best = h;
        }
        return best;
      }
      for (let tries = 0, chosen = 0; chosen < choiceCount && tries < choiceCount * 4; tries++) {
        const h = hosts[Math.floor(random() * n)]!;
        if (!eligible(h, ctx?.exclude, ignore)) continue;
        chosen++;
        if (!best || h.stats.activeRequests < best.stats.activeRequests) best = h;
      }
      if (best) return best;
      for (const h of hosts) if (eligible(h, ctx?.exclude, ignore) && (!best || h.stats.activeRequests < best.stats.activeRequests)) best = h;
      return best;
    });
  }
  const current = new Float64Array(n);
  return withPanic(hosts, panic, (ctx, ignore) => {
    let total = 0;
    let best = -1;
    for (let i = 0; i < n; i++) {
      const h = hosts[i]!;
      if (!eligible(h, ctx?.exclude, ignore)) continue;
      const w = bias === 0 ? h.endpoint.weight : h.endpoint.weight / Math.pow(h.stats.activeRequests + 1, bias);
      current[i]! += w;
      total += w;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    if (best < 0) return undefined;
    current[best]! -= total;
    return hosts[best];
  });
}

/** Weighted random. */
function randomPicker(hosts: readonly UpstreamHost[], panic: boolean): Picker {
  const n = hosts.length;
  return withPanic(hosts, panic, (ctx, ignore) => {
    const random = ctx?.random ?? Math.random;
    let total = 0;
    for (let i = 0; i < n; i++) if (eligible(hosts[i]!, ctx?.exclude, ignore)) total += hosts[i]!.endpoint.weight;
    if (total === 0) return undefined;
    let r = random() * total;
    for (let i = 0; i < n; i++) {
      const h = hosts[i]!;
      if (!eligible(h, ctx?.exclude, ignore)) continue;
      r -= h.endpoint.weight;
      if (r < 0) return h;
    }
    for (let i = n - 1; i >= 0; i--) if (eligible(hosts[i]!, ctx?.exclude, ignore)) return hosts[i];
    return undefined;
  });
}

/**
 * Ketama-style ring. Unlike Envoy (whose ring is minimum_ring_size entries in total, so every
 * host's share of entries changes when a host comes or goes), each host gets minimum_ring_size
 * entries per unit of the lightest weight: removing one host then moves only that host's keys.
 * The ring is capped at min(maximum_ring_size, 2^20) entries (entries scaled down beyond that).
 */
const RING_CAP = 1 << 20;
function ringHash(hosts: readonly UpstreamHost[], minSize: number, maxSize: number, panic: boolean): Picker {
  const minWeight = Math.min(...hosts.map((h) => h.endpoint.weight));
  let points = hosts.map((h) => Math.ceil((minSize * h.endpoint.weight) / minWeight));
  const total = points.reduce((a, b) => a + b, 0);
  const cap = Math.min(maxSize, RING_CAP);
  if (total > cap) points = points.map((p) => Math.max(1, Math.floor((p * cap) / total)));
  // hash * 2^20 + host index fits exactly in a double: one native numeric sort orders the ring.
  const packed = new Float64Array(points.reduce((a, b) => a + b, 0));
  let n = 0;
  hosts.forEach((h, idx) => {
    for (let i = 0; i < points[idx]!; i++) packed[n++] = hashString(`${h.endpoint.key}_${i}`) * 1048576 + idx;
  });
  packed.sort();
  const size = packed.length;
  const ringHashes = new Uint32Array(size);
  const ringHosts = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    ringHashes[i] = Math.floor(packed[i]! / 1048576);
    ringHosts[i] = packed[i]! % 1048576;
  }
  return withPanic(hosts, panic, (ctx, ignore) => {
    const h = ctx?.hash !== undefined ? ctx.hash >>> 0 : Math.floor((ctx?.random ?? Math.random)() * 0x100000000);
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ringHashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    // Walk clockwise past excluded/ejected hosts.
    for (let i = 0; i < size; i++) {
      const host = hosts[ringHosts[(lo + i) % size]!]!;
      if (eligible(host, ctx?.exclude, ignore)) return host;
    }
    return undefined;
  });
}

/** Maglev lookup table (Envoy's weighted population: a host of weight w/max fills every max/w rounds). */
function maglev(hosts: readonly UpstreamHost[], tableSize: number, panic: boolean): Picker {
  const m = tableSize;
  const n = hosts.length;
  const offset = hosts.map((h) => hashString(h.endpoint.key, 0) % m);
  const skip = hosts.map((h) => (hashString(h.endpoint.key, 0x9e3779b9) % (m - 1)) + 1);
  const next = new Array<number>(n).fill(0);
  const maxWeight = Math.max(...hosts.map((h) => h.endpoint.weight));
  const targetWeight = new Array<number>(n).fill(0);
  const table = new Int32Array(m).fill(-1);
  let filled = 0;
  for (let iteration = 1; filled < m; iteration++) {
    for (let i = 0; i < n && filled < m; i++) {
      const weight = hosts[i]!.endpoint.weight;
      if (iteration * weight < targetWeight[i]!) continue;
      targetWeight[i]! += maxWeight;
      let c = (offset[i]! + skip[i]! * next[i]!) % m;
      while (table[c] !== -1) {
        next[i]!++;
        c = (offset[i]! + skip[i]! * next[i]!) % m;
      }
      table[c] = i;
      next[i]!++;
      filled++;
    }
  }
  return withPanic(hosts, panic, (ctx, ignore) => {
    const h = ctx?.hash !== undefined ? ctx.hash >>> 0 : Math.floor((ctx?.random ?? Math.random)() * 0x100000000);
    const start = h % m;
    for (let i = 0; i < m; i++) {
      const host = hosts[table[(start + i) % m]!]!;
      if (eligible(host, ctx?.exclude, ignore)) return host;
    }
    return undefined;
  });
}
