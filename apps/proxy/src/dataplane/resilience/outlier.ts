/**
 * Passive outlier detection (Envoy's outlier_detection): every finished upstream attempt reports
 * its result here; hosts that fail too often are ejected from load balancing for
 * base_ejection_time × (number of ejections), capped by max_ejection_time, and return at the
 * first interval sweep after that. Detection types:
 *  - consecutive_5xx: 5xx responses (and, unless split_external_local_origin_errors, local-origin
 *    failures mapped to 503/504) in a row;
 *  - consecutive_gateway_failure: 502/503/504 (and mapped local-origin failures) in a row;
 *  - consecutive_local_origin_failure (split_external_local_origin_errors only): connect
 *    failures, timeouts and resets in a row;
 *  - success rate, at each interval: hosts with at least success_rate_request_volume requests
 *    in the interval, when at least success_rate_minimum_hosts have, are ejected below
 *    mean − stdev_factor/1000 × stdev.
 * max_ejection_percent caps the share of ejected hosts (at least one with always_eject_one_host);
 * enforcing_* percentages decide whether a detected outlier is really ejected. Ejection state
 * lives in lb.ts EndpointStats (across snapshots); LbRegistry.setEjected rebuilds candidates.
 */
import type { ClusterConfig, JsonObject, OutlierDetection } from '../../config/model.ts';
import type { EndpointStats, LbRegistry, UpstreamHost } from '../../config/lb.ts';

/** A local-origin result of an upstream attempt (no HTTP status from the upstream). */
export type LocalOrigin = 'connect_failed' | 'timeout' | 'reset';

/** A finished upstream attempt: the upstream's HTTP status, or a local-origin failure. */
export type AttemptResult = number | LocalOrigin;

type Detection = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure' | 'success_rate' | 'local_origin_success_rate';

/** Envoy's outlier_detection stats (cluster.<name>.outlier_detection.*). */
export interface OutlierCounters {
  ejections_active: number;
  ejections_total: number;
  ejections_overflow: number;
  ejections_enforced_total: number;
  ejections_detected_consecutive_5xx: number;
  ejections_enforced_consecutive_5xx: number;
  ejections_detected_consecutive_gateway_failure: number;
  ejections_enforced_consecutive_gateway_failure: number;
  ejections_detected_consecutive_local_origin_failure: number;
  ejections_enforced_consecutive_local_origin_failure: number;
  ejections_detected_success_rate: number;
  ejections_enforced_success_rate: number;
  ejections_detected_local_origin_success_rate: number;
  ejections_enforced_local_origin_success_rate: number;
}

function newCounters(): OutlierCounters {
  return {
    ejections_active: 0, ejections_total: 0, ejections_overflow: 0, ejections_enforced_total: 0,
    ejections_detected_consecutive_5xx: 0, ejections_enforced_consecutive_5xx: 0,
    ejections_detected_consecutive_gateway_failure: 0, ejections_enforced_consecutive_gateway_failure: 0,
    ejections_detected_consecutive_local_origin_failure: 0, ejections_enforced_consecutive_local_origin_failure: 0,
    ejections_detected_success_rate: 0, ejections_enforced_success_rate: 0,
    ejections_detected_local_origin_success_rate: 0, ejections_enforced_local_origin_success_rate: 0,
  };
}

/** Per-host state besides EndpointStats: success-rate buckets of the current interval. */
interface Monitor {
  host: UpstreamHost;
  ok: number;
  total: number;
  localOk: number;
  localTotal: number;
  lastEjectionMs: number;
  lastUnejectionMs: number;
}

/** Options of the detector not in the compiled model (read from the raw proto, Envoy's defaults). */
interface Extra {
  enforcingLocalOrigin: number;
  enforcingLocalOriginSuccessRate: number;
  successRateMinimumHosts: number;
  successRateRequestVolume: number;
  successRateStdevFactor: number;
  alwaysEjectOneHost: boolean;
}

function extra(raw: JsonObject): Extra {
  const n = (k: string, d: number): number => {
    const v = raw[k];
    const x = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonObject).value : v;
    return typeof x === 'number' ? x : typeof x === 'string' && x !== '' && !Number.isNaN(Number(x)) ? Number(x) : d;
  };
  const b = raw.always_eject_one_host;
  const one = typeof b === 'object' && b !== null && !Array.isArray(b) ? (b as JsonObject).value : b;
  return {
    enforcingLocalOrigin: n('enforcing_consecutive_local_origin_failure', 100),
    enforcingLocalOriginSuccessRate: n('enforcing_local_origin_success_rate', 100),
    successRateMinimumHosts: n('success_rate_minimum_hosts', 5),
    successRateRequestVolume: n('success_rate_request_volume', 100),
    successRateStdevFactor: n('success_rate_stdev_factor', 1900),
    alwaysEjectOneHost: one === true,
  };
}

export class ClusterOutlier {
  readonly counters = newCounters();
  private readonly monitors = new Map<EndpointStats, Monitor>();
  private timer: NodeJS.Timeout | undefined;
  private od: OutlierDetection;
  private ex: Extra;
  private intervalMs = 0;

  constructor(
    public cluster: ClusterConfig,
    private readonly lb: LbRegistry,
    private readonly now: () => number,
    private readonly random: () => number,
  ) {
    this.od = cluster.outlierDetection!;
    this.ex = extra(this.od.raw);
    this.arm();
  }

  /** A new snapshot's ClusterConfig for the same name. */
  update(cluster: ClusterConfig): void {
    if (cluster === this.cluster) return;
    this.cluster = cluster;
    this.od = cluster.outlierDetection!;
    this.ex = extra(this.od.raw);
    this.arm();
    // Endpoints gone from the cluster no longer count (an ejected one would skew max_ejection_percent).
    const live = new Set(this.lb.forCluster(cluster).hosts.map((h) => h.stats));
    for (const stats of this.monitors.keys()) if (!live.has(stats)) this.monitors.delete(stats);
  }

  /** The interval sweep runs while the cluster has outlier detection (unref'd: never keeps the process up). */
  private arm(): void {
    if (this.timer !== undefined && this.intervalMs === this.od.intervalMs) return;
    clearInterval(this.timer);
    this.intervalMs = this.od.intervalMs;
    this.timer = setInterval(() => this.sweep(), Math.max(1, this.intervalMs));
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    // Hosts of a removed cluster are forgotten with it; nothing stays ejected.
    for (const m of this.monitors.values()) if (m.host.stats.ejected) this.lb.setEjected(m.host, false);
  }

  private monitor(host: UpstreamHost): Monitor {
    let m = this.monitors.get(host.stats);
    if (!m) this.monitors.set(host.stats, (m = { host, ok: 0, total: 0, localOk: 0, localTotal: 0, lastEjectionMs: 0, lastUnejectionMs: 0 }));
    else m.host = host;
    return m;
  }

  /** One finished upstream attempt on `host`. */
  report(host: UpstreamHost, result: AttemptResult): void {
    const od = this.od;
    const s = host.stats;
    const m = this.monitor(host);
    if (typeof result !== 'number') {
      if (od.splitExternalLocalOriginErrors) {
        m.localTotal++;
        if (++s.consecutiveLocalOriginFailure >= od.consecutiveLocalOriginFailure && od.consecutiveLocalOriginFailure > 0) {
          s.consecutiveLocalOriginFailure = 0;
          this.detected(m, 'consecutive_local_origin_failure');
        }
        return;
      }
      // Not split: Envoy maps a local-origin failure to the status it answers with.
      result = result === 'timeout' ? 504 : 503;
    } else if (od.splitExternalLocalOriginErrors) {
      // A response arrived: the connection worked (Envoy's LOCAL_ORIGIN_CONNECT_SUCCESS).
      s.consecutiveLocalOriginFailure = 0;
      m.localTotal++;
      m.localOk++;
    }
    m.total++;
    if (result >= 500) {
      if (result === 502 || result === 503 || result === 504) {
        if (++s.consecutiveGatewayFailure >= od.consecutiveGatewayFailure && od.consecutiveGatewayFailure > 0) {
          s.consecutiveGatewayFailure = 0;
          this.detected(m, 'consecutive_gateway_failure');
        }
      } else s.consecutiveGatewayFailure = 0;
      if (++s.consecutive5xx >= od.consecutive5xx && od.consecutive5xx > 0) {
        s.consecutive5xx = 0;
        this.detected(m, 'consecutive_5xx');
      }
      return;
    }
    m.ok++;
    s.consecutive5xx = 0;
    s.consecutiveGatewayFailure = 0;
  }

  private enforcing(type: Detection): number {
    switch (type) {
      case 'consecutive_5xx': return this.od.enforcingConsecutive5xx;
      case 'consecutive_gateway_failure': return this.od.enforcingConsecutiveGatewayFailure;
      case 'consecutive_local_origin_failure': return this.ex.enforcingLocalOrigin;
      case 'success_rate': return this.od.enforcingSuccessRate;
      case 'local_origin_success_rate': return this.ex.enforcingLocalOriginSuccessRate;
    }
  }

  private detected(m: Monitor, type: Detection): void {
    if (m.host.stats.ejected) return;
    this.counters[`ejections_detected_${type}`]++;
    const enforce = this.enforcing(type);
    if (enforce <= 0 || this.random() * 100 >= enforce) return;
    const hosts = this.lb.forCluster(this.cluster).hosts.length;
    const active = this.activeEjections();
    const allowed = (100 * (active + 1)) / Math.max(1, hosts) <= this.od.maxEjectionPercent || (this.ex.alwaysEjectOneHost && active === 0);
    if (!allowed) {
      this.counters.ejections_overflow++;
      return;
    }
    const s = m.host.stats;
    // Repeated ejections last longer, up to max_ejection_time (the multiplier stops growing once
    // it reaches the cap, so that healthy intervals bring it down again quickly).
    const max = Math.max(this.od.maxEjectionTimeMs, this.od.baseEjectionTimeMs);
    if (this.od.baseEjectionTimeMs * s.ejectionCount < max || s.ejectionCount === 0) s.ejectionCount++;
    const now = this.now();
    s.ejectedUntilMs = now + Math.min(this.od.baseEjectionTimeMs * s.ejectionCount, max);
    m.lastEjectionMs = now;
    this.lb.setEjected(m.host, true);
    this.counters.ejections_total++;
    this.counters.ejections_enforced_total++;
    this.counters[`ejections_enforced_${type}`]++;
    this.counters.ejections_active = this.activeEjections();
  }

  activeEjections(): number {
    let n = 0;
    for (const m of this.monitors.values()) if (m.host.stats.ejected) n++;
    return n;
  }

  /** The interval: return hosts whose time is up, decay ejection multipliers, run success rate. */
  sweep(): void {
    const now = this.now();
    for (const [stats, m] of this.monitors) {
      if (stats.ejected) {
        if (now >= stats.ejectedUntilMs) {
          this.lb.setEjected(m.host, false);
          m.lastUnejectionMs = now;
          stats.consecutive5xx = stats.consecutiveGatewayFailure = stats.consecutiveLocalOriginFailure = 0;
        }
      } else if (stats.ejectionCount > 0 && now - Math.max(m.lastUnejectionMs, m.lastEjectionMs) >= this.intervalMs) {
        // A whole interval back in service without an ejection: the next ejection is shorter again.
        stats.ejectionCount--;
      }
    }
    this.successRate(false);
    if (this.od.splitExternalLocalOriginErrors) this.successRate(true);
    for (const m of this.monitors.values()) m.ok = m.total = m.localOk = m.localTotal = 0;
    this.counters.ejections_active = this.activeEjections();
  }

  private successRate(local: boolean): void {
    const ex = this.ex;
    const eligible: { m: Monitor; rate: number }[] = [];
    for (const m of this.monitors.values()) {
      const total = local ? m.localTotal : m.total;
      if (m.host.stats.ejected || total < ex.successRateRequestVolume || total === 0) continue;
      eligible.push({ m, rate: (100 * (local ? m.localOk : m.ok)) / total });
    }
    if (eligible.length < ex.successRateMinimumHosts || eligible.length === 0) return;
    const mean = eligible.reduce((a, e) => a + e.rate, 0) / eligible.length;
    const stdev = Math.sqrt(eligible.reduce((a, e) => a + (e.rate - mean) ** 2, 0) / eligible.length);
    const threshold = mean - (ex.successRateStdevFactor / 1000) * stdev;
    for (const e of eligible) if (e.rate < threshold) this.detected(e.m, local ? 'local_origin_success_rate' : 'success_rate');
  }
}

/** Outlier detectors per cluster name (clusters with outlier_detection only), owned by the Engine. */
export class OutlierRegistry {
  private readonly byName = new Map<string, ClusterOutlier>();

  constructor(
    private readonly lb: LbRegistry,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Records one finished upstream attempt (the single entry point of the request path): an HTTP
   * status from the upstream, or a local-origin failure. A no-op for clusters without
   * outlier_detection.
   */
  report(cluster: ClusterConfig, host: UpstreamHost, result: AttemptResult): void {
    if (cluster.outlierDetection === undefined) return;
    let d = this.byName.get(cluster.name);
    if (!d) this.byName.set(cluster.name, (d = new ClusterOutlier(cluster, this.lb, this.now, this.random)));
    else d.update(cluster);
    d.report(host, result);
  }

  get(name: string): ClusterOutlier | undefined {
    return this.byName.get(name);
  }

  entries(): IterableIterator<[string, ClusterOutlier]> {
    return this.byName.entries();
  }

  /** A new snapshot: drop detectors of clusters gone or without outlier_detection now. */
  retain(clusters: ReadonlyMap<string, ClusterConfig>): void {
    for (const [name, d] of this.byName) {
      const c = clusters.get(name);
      if (!c || c.outlierDetection === undefined) {
        d.close();
        this.byName.delete(name);
      } else d.update(c);
    }
  }

  close(): void {
    for (const d of this.byName.values()) d.close();
    this.byName.clear();
  }
}

/** What the request path knows about an attempt (an Exchange, or a TCP connection). */
export interface AttemptSubject {
  readonly ctx: { readonly engine: { readonly outliers: OutlierRegistry } };
  readonly cluster?: ClusterConfig | undefined;
  readonly host?: UpstreamHost | undefined;
}

/** The request path's hook: one call per finished upstream attempt. */
export function reportAttempt(ex: AttemptSubject, result: AttemptResult): void {
  if (ex.cluster !== undefined && ex.host !== undefined) ex.ctx.engine.outliers.report(ex.cluster, ex.host, result);
}

/** Envoy's response flag of an upstream failure → the local-origin result it stands for. */
export function localOriginOf(flag: string): LocalOrigin {
  return flag === 'UF' ? 'connect_failed' : flag === 'UT' ? 'timeout' : 'reset';
}
