import type { ProxySnapshot } from '../config/model.ts';
import { LabelCache } from '../telemetry/labels.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { writeAccessLog } from '../telemetry/access-log.ts';
import type { Exchange } from './exchange.ts';
import { encodePeer, type PeerIdentity } from './headers.ts';
import { LbRegistry } from '../config/lb.ts';
import { UpstreamPools } from './upstream.ts';
import { BreakerRegistry } from './resilience/breakers.ts';
import { OutlierRegistry } from './resilience/outlier.ts';

export interface EngineOptions {
  /** The current configuration; read once per request/connection. */
  snapshot: () => ProxySnapshot;
  /** Who this proxy fronts (node metadata): the source of outbound metrics, the destination of inbound. */
  self: PeerIdentity;
  /** Access log for every listener (TERN_ACCESS_LOG=1), besides HCMs that configure access_log. */
  accessLog?: boolean;
  /** Where access-log lines go (default: process.stdout). */
  accessLogSink?: (line: string) => void;
  /** Load balancers and endpoint stats (ConfigStore.lb in the proxy; a fresh one by default). */
  lb?: LbRegistry;
}

/** Proxy-wide data-plane state shared by every listener: pools, metrics, load-balancer state. */
export class Engine {
  /** Circuit-breaker state per cluster name (resilience/breakers.ts), across snapshots. */
  readonly breakers = new BreakerRegistry();
  readonly pools = new UpstreamPools(this.breakers, () => this.snapshot());
  readonly metrics = new Metrics();
  readonly labels: LabelCache;
  readonly lb: LbRegistry;
  /** Outlier detection per cluster (resilience/outlier.ts); ejections land in lb's endpoint stats. */
  readonly outliers: OutlierRegistry;
  readonly self: PeerIdentity;
  readonly selfPeerHeader: string;
  readonly accessLogEnabled: boolean;
  readonly snapshot: () => ProxySnapshot;
  private readonly sink: (line: string) => void;

  constructor(opts: EngineOptions) {
    this.snapshot = opts.snapshot;
    this.lb = opts.lb ?? new LbRegistry();
    this.outliers = new OutlierRegistry(this.lb);
    this.self = opts.self;
    this.selfPeerHeader = encodePeer(opts.self);
    this.labels = new LabelCache(this.metrics, opts.self);
    this.accessLogEnabled = opts.accessLog ?? false;
    this.sink = opts.accessLogSink ?? ((line) => process.stdout.write(line));
  }

  accessLog(ex: Exchange, durationMs: number): void {
    this.sink(writeAccessLog(ex, durationMs));
  }

  /** A new snapshot is live: forget pools and LB state of clusters that are gone. */
  applySnapshot(snap: ProxySnapshot): void {
    this.pools.retain(snap.clusters);
    this.breakers.retain(snap.clusters);
    this.outliers.retain(snap.clusters);
    this.lb.retain(snap);
  }

  close(): void {
    this.pools.closeAll();
    this.outliers.close();
  }
}
