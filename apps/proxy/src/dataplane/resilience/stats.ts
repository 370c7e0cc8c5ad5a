/**
 * Cluster stats of circuit breaking and outlier detection in Envoy's names: the /stats text
 * format (`cluster.<name>.upstream_rq_pending_overflow: 3`) and Prometheus
 * (`envoy_cluster_upstream_rq_pending_overflow{cluster_name="<name>"} 3`), for every cluster of
 * the snapshot (zeros included, as Envoy prints them).
 */
import type { ClusterConfig, ProxySnapshot } from '../../config/model.ts';
import type { BreakerRegistry } from './breakers.ts';
import type { OutlierRegistry } from './outlier.ts';
import { clusterHasTls, TLS_COUNTERS, type TlsCounters } from '../upstream-tls.ts';

interface StatsSource {
  readonly breakers: BreakerRegistry;
  readonly outliers: OutlierRegistry;
  /** Upstream TLS counters per cluster (dataplane/upstream-tls.ts), shown for clusters with TLS. */
  readonly pools?: { readonly tlsCounters: ReadonlyMap<string, TlsCounters> };
  snapshot(): ProxySnapshot;
}

interface Stat {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly value: number;
}

const COUNTERS = ['upstream_rq_pending_overflow', 'upstream_cx_overflow', 'upstream_rq_retry_overflow'] as const;
const OUTLIER_COUNTERS = [
  'ejections_total', 'ejections_overflow', 'ejections_enforced_total',
  'ejections_detected_consecutive_5xx', 'ejections_enforced_consecutive_5xx',
  'ejections_detected_consecutive_gateway_failure', 'ejections_enforced_consecutive_gateway_failure',
  'ejections_detected_consecutive_local_origin_failure', 'ejections_enforced_consecutive_local_origin_failure',
  'ejections_detected_success_rate', 'ejections_enforced_success_rate',
] as const;

/** The stats of one cluster, in Envoy's names below `cluster.<name>.`. */
export function clusterStats(src: StatsSource, cluster: ClusterConfig): Stat[] {
  const out: Stat[] = [];
  const b = src.breakers.get(cluster.name);
  for (const c of COUNTERS) out.push({ name: c, type: 'counter', value: b?.counters[c] ?? 0 });
  for (const [priority, t] of [['default', cluster.circuitBreakers.default], ['high', cluster.circuitBreakers.high]] as const) {
    const g = b?.snapshot(priority) ?? { cx_open: 0, rq_pending_open: 0, rq_open: 0, rq_retry_open: 0 };
    const maxRetries = b?.maxRetries(priority) ?? t.maxRetries;
    const p = `circuit_breakers.${priority}.`;
    // Envoy's *_open gauges say whether the breaker is at its limit (1) or admitting (0).
    out.push({ name: `${p}cx_open`, type: 'gauge', value: g.cx_open >= t.maxConnections ? 1 : 0 });
    out.push({ name: `${p}rq_pending_open`, type: 'gauge', value: g.rq_pending_open >= t.maxPendingRequests ? 1 : 0 });
    out.push({ name: `${p}rq_open`, type: 'gauge', value: g.rq_open >= t.maxRequests ? 1 : 0 });
    out.push({ name: `${p}rq_retry_open`, type: 'gauge', value: g.rq_retry_open >= maxRetries ? 1 : 0 });
    if (t.trackRemaining) {
      out.push({ name: `${p}remaining_cx`, type: 'gauge', value: Math.max(0, t.maxConnections - g.cx_open) });
      out.push({ name: `${p}remaining_pending`, type: 'gauge', value: Math.max(0, t.maxPendingRequests - g.rq_pending_open) });
      out.push({ name: `${p}remaining_rq`, type: 'gauge', value: Math.max(0, t.maxRequests - g.rq_open) });
      out.push({ name: `${p}remaining_retries`, type: 'gauge', value: Math.max(0, maxRetries - g.rq_retry_open) });
    }
  }
  if (src.pools && clusterHasTls(cluster)) {
    const t = src.pools.tlsCounters.get(cluster.name);
    for (const c of TLS_COUNTERS) out.push({ name: `ssl.${c}`, type: 'counter', value: t?.[c] ?? 0 });
  }
  if (cluster.outlierDetection !== undefined) {
    const o = src.outliers.get(cluster.name);
    out.push({ name: 'outlier_detection.ejections_active', type: 'gauge', value: o?.activeEjections() ?? 0 });
    for (const c of OUTLIER_COUNTERS) out.push({ name: `outlier_detection.${c}`, type: 'counter', value: o?.counters[c] ?? 0 });
  }
  return out;
}

/** Envoy's /stats text lines. */
export function renderStatsText(src: StatsSource): string {
  let s = '';
  for (const c of src.snapshot().clusters.values()) for (const st of clusterStats(src, c)) s += `cluster.${c.name}.${st.name}: ${st.value}\n`;
  return s;
}

/** Prometheus exposition, one family per stat (envoy_cluster_<stat with dots as underscores>). */
export function renderStatsPrometheus(src: StatsSource): string {
  const families = new Map<string, { type: string; lines: string[] }>();
  for (const c of src.snapshot().clusters.values()) {
    const label = `{cluster_name="${escapeLabel(c.name)}"}`;
    for (const st of clusterStats(src, c)) {
      const name = `envoy_cluster_${st.name.replace(/\./g, '_')}`;
      let f = families.get(name);
      if (!f) families.set(name, (f = { type: st.type, lines: [] }));
      f.lines.push(`${name}${label} ${st.value}`);
    }
  }
  let s = '';
  for (const [name, f] of families) s += `# TYPE ${name} ${f.type}\n${f.lines.join('\n')}\n`;
  return s;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
