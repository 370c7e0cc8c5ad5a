/**
 * Circuit breaking per cluster, as Envoy's ResourceManager does it: counters of open upstream
 * connections, requests waiting for a connection (pending), active requests and active retries,
 * each checked against the cluster's circuit_breakers thresholds (DEFAULT, or HIGH for routes
 * with priority HIGH). The state is keyed by cluster name and lives on the Engine across
 * snapshots: a snapshot that changes a threshold applies it to the requests already counted.
 *
 * Overflow is never an error here: callers get `false` and answer 503 UO (or reset, for TCP),
 * and the overflow is counted in Envoy's stat names (cluster.<name>.upstream_rq_pending_overflow,
 * upstream_cx_overflow, upstream_rq_retry_overflow).
 */
import type { CircuitBreakerThresholds, ClusterConfig } from '../../config/model.ts';

export type Priority = 'default' | 'high';

/** Envoy's local reply for an overflow (503, response flag UO, x-envoy-overloaded: true). */
export const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
export const OVERFLOW_FLAG = 'UO';

/** Per-cluster counters shown on /stats (Envoy's names under cluster.<name>.). */
export interface BreakerCounters {
  upstream_rq_pending_overflow: number;
  upstream_cx_overflow: number;
  upstream_rq_retry_overflow: number;
}

/** What one priority's thresholds count (Envoy keeps separate resource counts per priority). */
class Resources {
  requests = 0;
  pending = 0;
  retries = 0;
}

export class ClusterBreakers {
  /** Open upstream connections of the cluster, across hosts and protocols (HTTP/1.1, HTTP/2, TCP). */
  connections = 0;
  readonly counters: BreakerCounters = { upstream_rq_pending_overflow: 0, upstream_cx_overflow: 0, upstream_rq_retry_overflow: 0 };
  private readonly res = { default: new Resources(), high: new Resources() };
  /** Callbacks run when a connection slot frees (the HTTP/1.1 pending queue drains on it). */
  private readonly slotWaiters = new Set<() => void>();

  constructor(
    readonly name: string,
    public cluster: ClusterConfig,
  ) {}

  thresholds(priority: Priority = 'default'): CircuitBreakerThresholds {
    return priority === 'high' ? this.cluster.circuitBreakers.high : this.cluster.circuitBreakers.default;
  }

  // ---------------------------------------------------------------- retries (max_retries)

  /**
   * A retry may start (max_retries, or retry_budget when configured). On true the caller owns one
   * retry slot and must call releaseRetry() exactly once when that retry attempt ends; on false
   * the overflow is counted (upstream_rq_retry_overflow) and the caller must not retry.
   */
  tryRetry(priority: Priority = 'default'): boolean {
    const r = this.res[priority];
    if (r.retries >= this.maxRetries(priority)) {
      this.counters.upstream_rq_retry_overflow++;
      return false;
    }
    r.retries++;
    return true;
  }

  releaseRetry(priority: Priority = 'default'): void {
    const r = this.res[priority];
    if (r.retries > 0) r.retries--;
  }

  /** retry_budget: a share of active + pending requests (at least min_retry_concurrency). */
  maxRetries(priority: Priority = 'default'): number {
    const t = this.thresholds(priority);
    const b = t.retryBudget;
    if (!b) return t.maxRetries;
    const r = this.res[priority];
    return Math.max(b.minRetryConcurrency, Math.floor(b.budgetFraction * (r.requests + r.pending)));
  }

  // ---------------------------------------------------------------- requests (max_requests)

  /** An upstream request may become active (max_requests); counts the overflow when not. */
  tryRequest(priority: Priority = 'default'): boolean {
    const r = this.res[priority];
    if (r.requests >= this.thresholds(priority).maxRequests) {
      // Envoy counts a max_requests overflow as a pending overflow as well.
      this.counters.upstream_rq_pending_overflow++;
      return false;
    }
    r.requests++;
    return true;
  }

  releaseRequest(priority: Priority = 'default'): void {
    const r = this.res[priority];
    if (r.requests > 0) r.requests--;
  }

  // ---------------------------------------------------------------- pending (max_pending_requests)

  /** A request may wait for a connection (max_pending_requests); counts the overflow when not. */
  tryPending(priority: Priority = 'default'): boolean {
    const r = this.res[priority];
    if (r.pending >= this.thresholds(priority).maxPendingRequests) {
      this.counters.upstream_rq_pending_overflow++;
      return false;
    }
    r.pending++;
    return true;
  }

  releasePending(priority: Priority = 'default'): void {
    const r = this.res[priority];
    if (r.pending > 0) r.pending--;
  }

  // ---------------------------------------------------------------- connections (max_connections)

  /** Room for one more upstream connection (no counting: see tryConnection). */
  canConnect(): boolean {
    return this.connections < this.thresholds('default').maxConnections;
  }

  /**
   * Opens a connection slot (max_connections of the DEFAULT thresholds: pools are not split by
   * priority). False counts upstream_cx_overflow. On true, releaseConnection() must follow once
   * when the connection closes.
   */
  tryConnection(): boolean {
    if (!this.canConnect()) {
      this.counters.upstream_cx_overflow++;
      return false;
    }
    this.connections++;
    return true;
  }

  /** Counts a connection that is opened regardless of the limit (an HTTP/2 session, an upgrade). */
  addConnection(): void {
    this.connections++;
  }

  releaseConnection(): void {
    if (this.connections > 0) this.connections--;
    this.notifySlot();
  }

  /** A connection slot freed or an idle connection became available: pending requests may go. */
  notifySlot(): void {
    for (const w of this.slotWaiters) w();
  }

  /** Someone waits for a connection (so a released idle connection is worth announcing). */
  hasSlotWaiters(): boolean {
    return this.slotWaiters.size > 0;
  }

  /** Called whenever a connection slot frees (or an idle connection returns): pending queues drain. */
  onSlot(cb: () => void): () => void {
    this.slotWaiters.add(cb);
    return () => this.slotWaiters.delete(cb);
  }

  /** Gauges for /stats and tests. */
  snapshot(priority: Priority = 'default'): { cx_open: number; rq_pending_open: number; rq_open: number; rq_retry_open: number } {
    const r = this.res[priority];
    return { cx_open: this.connections, rq_pending_open: r.pending, rq_open: r.requests, rq_retry_open: r.retries };
  }
}

/** One ClusterBreakers per cluster name, surviving snapshot swaps (owned by the Engine). */
export class BreakerRegistry {
  private readonly byName = new Map<string, ClusterBreakers>();

  for(cluster: ClusterConfig): ClusterBreakers {
    let b = this.byName.get(cluster.name);
    if (!b) this.byName.set(cluster.name, (b = new ClusterBreakers(cluster.name, cluster)));
    else if (b.cluster !== cluster) b.cluster = cluster;
    return b;
  }

  get(name: string): ClusterBreakers | undefined {
    return this.byName.get(name);
  }

  all(): IterableIterator<ClusterBreakers> {
    return this.byName.values();
  }

  /** Forgets clusters gone from the configuration. */
  retain(names: ReadonlySet<string> | ReadonlyMap<string, unknown>): void {
    for (const name of this.byName.keys()) if (!names.has(name)) this.byName.delete(name);
  }
}

/** Where the Engine keeps its registry (engine.breakers). */
export interface HasBreakers {
  readonly breakers: BreakerRegistry;
}

/**
 * For the retry code: may one more retry start on this cluster? True reserves a slot that
 * releaseRetry() must free exactly once when the retry attempt ends (success, failure or abort).
 * False counts upstream_rq_retry_overflow; the caller then answers with what it has (Envoy
 * returns the last upstream response / failure and does not retry).
 */
export function tryRetry(engine: HasBreakers, cluster: ClusterConfig, priority: Priority = 'default'): boolean {
  return engine.breakers.for(cluster).tryRetry(priority);
}

export function releaseRetry(engine: HasBreakers, cluster: ClusterConfig, priority: Priority = 'default'): void {
  engine.breakers.for(cluster).releaseRetry(priority);
}
