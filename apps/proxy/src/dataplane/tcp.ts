import net from 'node:net';
import type { FilterChain, ListenerConfig, TcpProxyConfig } from '../config/model.ts';
import type { LabelBase } from '../telemetry/metrics.ts';
import { isOutbound } from './context.ts';
import type { Engine } from './engine.ts';
import { pickWeightedCluster } from '../config/route-select.ts';
import { pickHost, releaseHost } from './routing.ts';
import { restoredDestination } from './original-dst.ts';
import { admitTcp } from './resilience/tcp-hooks.ts';
import { tlsIdentity } from './tls-peer.ts';

/** A TCP proxy filter chain: each connection goes to one endpoint of the target cluster. */
export class TcpContext {
  readonly outbound: boolean;
  constructor(
    readonly engine: Engine,
    readonly listener: ListenerConfig,
    readonly chain: FilterChain,
    readonly tcp: TcpProxyConfig,
  ) {
    this.outbound = isOutbound(listener);
  }

  handle(down: net.Socket): void {
    const engine = this.engine;
    const snap = engine.snapshot();
    const t = this.tcp.target;
    const clusterName = t.kind === 'cluster' ? t.cluster : pickWeightedCluster(t).cluster;
    const cluster = snap.clusters.get(clusterName);
    let labels: LabelBase = this.outbound ? engine.labels.outbound(cluster, undefined, undefined) : engine.labels.inbound(undefined, cluster, tlsIdentity(down));
    if (!cluster) {
      engine.metrics.tcpOpened(labels);
      engine.metrics.tcpClosed(labels, 'NC', 0, 0);
      down.destroy();
      return;
    }
    const host = pickHost(engine, cluster, undefined, undefined, down.remoteAddress ?? '', undefined, cluster.type === 'ORIGINAL_DST' ? restoredDestination(down) : undefined);
    if (!host) {
      engine.metrics.tcpOpened(labels);
      engine.metrics.tcpClosed(labels, 'UH', 0, 0);
      down.destroy();
      return;
    }
    // Circuit breakers (max_connections → UO) and outlier detection of connect results.
    const hooks = admitTcp(engine, cluster, host);
    if (!hooks) {
      releaseHost(host);
      engine.metrics.tcpOpened(labels);
      engine.metrics.tcpClosed(labels, 'UO', 0, 0);
      down.destroy();
      return;
    }
    const ep = host.endpoint;
    host.stats.activeConnections++;
    if (this.outbound) labels = engine.labels.outbound(cluster, ep, undefined);
    engine.metrics.tcpOpened(labels);
    // A TLS endpoint (transport socket / istio tlsMode) is wrapped; 'connect' then means secure.
    const upTls = engine.pools.for(cluster).connectTls(ep, 'tcp', { allowHalfOpen: true });
    const up = upTls ?? (ep.isPipe ? net.createConnection({ path: ep.address, allowHalfOpen: true }) : net.createConnection({ host: ep.address, port: ep.port, allowHalfOpen: true }));
    let flags = '-';
    let connected = false;
    const connectTimer = cluster.connectTimeoutMs > 0 ? setTimeout(() => {
      flags = 'UF';
      up.destroy();
    }, cluster.connectTimeoutMs) : undefined;
    // Nothing is read from the downstream until the upstream is there: backpressure by pause.
    down.pause();
    up.once(upTls ? 'secureConnect' : 'connect', () => {
      hooks.connected();
      connected = true;
      clearTimeout(connectTimer);
      down.pipe(up);
      up.pipe(down);
      down.resume();
    });
    const idle = this.tcp.idleTimeoutMs;
    if (idle > 0) {
      down.setTimeout(idle, () => down.destroy());
      up.setTimeout(idle, () => up.destroy());
    }
    up.on('error', () => {
      if (!connected && flags === '-') flags = 'UF';
    });
    down.on('error', () => {});
    let closed = 0;
    const onClose = () => {
      if (++closed === 1) {
        // One side is gone: the other follows once its buffered data is flushed.
        if (up.destroyed && !down.destroyed) down.end();
        if (down.destroyed && !up.destroyed) up.end();
        setTimeout(() => {
          down.destroy();
          up.destroy();
        }, 5000).unref();
        return;
      }
      clearTimeout(connectTimer);
      releaseHost(host);
      hooks.closed(connected);
      host.stats.activeConnections--;
      engine.metrics.tcpClosed(labels, flags, down.bytesWritten, down.bytesRead);
    };
    down.on('close', onClose);
    up.on('close', onClose);
  }
}
