import type { ClientTLSSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, TrafficPolicy } from '@tern/shared';
import { arr } from '../policy/mesh-model.ts';
import type { DrEntry } from './model.ts';

// DestinationRule traffic policy as it applies to one cluster (service port, maybe a subset),
// merged the way istiod does: the top-level policy, overridden field by field by its port-level
// settings for the port; then the subset's policy (and its port-level settings) over that.

export interface EffectivePolicy {
  loadBalancer?: LoadBalancerSettings | undefined;
  connectionPool?: ConnectionPoolSettings | undefined;
  outlierDetection?: OutlierDetection | undefined;
  tls?: ClientTLSSettings | undefined;
}

function forPort(tp: TrafficPolicy | undefined, port: number): EffectivePolicy {
  if (!tp) return {};
  const out: EffectivePolicy = { loadBalancer: tp.loadBalancer, connectionPool: tp.connectionPool, outlierDetection: tp.outlierDetection, tls: tp.tls };
  const pl = arr(tp.portLevelSettings).find((p) => p.port?.number === port);
  if (pl) {
    if (pl.loadBalancer) out.loadBalancer = pl.loadBalancer;
    if (pl.connectionPool) out.connectionPool = pl.connectionPool;
    if (pl.outlierDetection) out.outlierDetection = pl.outlierDetection;
    if (pl.tls) out.tls = pl.tls;
  }
  return out;
}

export function effectivePolicy(dr: DrEntry | undefined, port: number, subset: string | undefined): EffectivePolicy {
  if (!dr) return {};
  const top = forPort(dr.spec.trafficPolicy, port);
  if (subset === undefined) return top;
  const sub = forPort(arr(dr.spec.subsets).find((s) => s.name === subset)?.trafficPolicy, port);
  return {
    loadBalancer: sub.loadBalancer ?? top.loadBalancer,
    connectionPool: sub.connectionPool ?? top.connectionPool,
    outlierDetection: sub.outlierDetection ?? top.outlierDetection,
    tls: sub.tls ?? top.tls,
  };
}
