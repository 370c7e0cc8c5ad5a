/**
 * The TCP proxy's circuit breaking and outlier reporting: a connection takes a max_connections
 * slot (overflow: the downstream is closed, response flag UO, upstream_cx_overflow), and its
 * connect result is one outlier-detection result (a connect failure is a local-origin failure;
 * a connect success resets the consecutive counters, as Envoy's tcp_proxy reports them).
 */
import type { ClusterConfig } from '../../config/model.ts';
import type { UpstreamHost } from '../../config/lb.ts';
import type { BreakerRegistry } from './breakers.ts';
import type { OutlierRegistry } from './outlier.ts';

export interface TcpHooks {
  /** The upstream connection is established. */
  connected(): void;
  /** Both sides closed; `connected`: the upstream connection was ever established. */
  closed(connected: boolean): void;
}

/** Undefined when max_connections is reached (the caller closes the downstream with flag UO). */
export function admitTcp(engine: { readonly breakers: BreakerRegistry; readonly outliers: OutlierRegistry }, cluster: ClusterConfig, host: UpstreamHost): TcpHooks | undefined {
  const b = engine.breakers.for(cluster);
  if (!b.tryConnection()) return undefined;
  let released = false;
  return {
    connected: () => engine.outliers.report(cluster, host, 200),
    closed: (connected) => {
      if (released) return;
      released = true;
      b.releaseConnection();
      if (!connected) engine.outliers.report(cluster, host, 'connect_failed');
    },
  };
}
