import type { ProxySnapshot } from '../config/model.ts';
import { LabelCache } from '../telemetry/labels.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { writeAccessLog } from '../telemetry/access-log.ts';
import type { Exchange } from './exchange.ts';
import { encodePeer, type PeerIdentity } from './headers.ts';
import { LbRegistry } from '../config/lb.ts';
import { UpstreamPools } from './upstream.ts';

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
  readonly pools = new UpstreamPools();
  readonly metrics = new Metrics();
  readonly labels: LabelCache;
  readonly lb: LbRegistry;
  readonly self: PeerIdentity;
  readonly selfPeerHeader: string;
  readonly accessLogEnabled: boolean;
  readonly snapshot: () => ProxySnapshot;
  private readonly sink: (line: string) => void;

  constructor(opts: EngineOptions) {
    this.snapshot = opts.snapshot;
    this.lb = opts.lb ?? new LbRegistry();
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
    this.lb.retain(snap);
  }

  close(): void {
    this.pools.closeAll();
  }
}
