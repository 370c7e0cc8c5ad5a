import type { ClusterConfig, Endpoint, FaultConfig, FilterChain, HttpConnectionManagerConfig, ListenerConfig, ProxySnapshot, RouteTable } from '../config/model.ts';
import { faultFilter } from './fault.ts';
import { hasCorsFilter } from './cors.ts';
import { RbacRequest, rbacFilters, type RbacFilterRuntime } from './rbac.ts';
import type { LabelBase } from '../telemetry/metrics.ts';
import type { Engine } from './engine.ts';
import type { Exchange } from './exchange.ts';
import { plainAddress } from './headers.ts';
import type { Socket } from 'node:net';
import { restoredDestination, type Destination } from './original-dst.ts';
import { tlsIdentity, type TlsIdentity } from './tls-peer.ts';

/**
 * What an HTTP connection manager filter chain needs per request, computed once per chain
 * (per listener configuration), not per request.
 */
export class HttpContext {
  readonly outbound: boolean;
  readonly defaultLabels: LabelBase;
  readonly accessLog: boolean;
  readonly suppressEnvoyHeaders: boolean;
  /** The HCM's fault filter config (undefined: no fault filter, no faults) and whether it has the CORS filter. */
  readonly fault: FaultConfig | undefined;
  readonly cors: boolean;
  /** The HCM's RBAC filters in order; undefined (no cost per request) when it has none. */
  readonly rbac: readonly RbacFilterRuntime[] | undefined;
  /** Set when the listener drains: HTTP/1.1 responses carry Connection: close. */
  draining = false;

  constructor(
    readonly engine: Engine,
    readonly listener: ListenerConfig,
    readonly chain: FilterChain,
    readonly hcm: HttpConnectionManagerConfig,
  ) {
    this.outbound = isOutbound(listener);
    this.defaultLabels = this.outbound ? engine.labels.outbound(undefined, undefined, undefined) : engine.labels.inbound(undefined, undefined);
    this.accessLog = engine.accessLogEnabled || hcm.accessLog;
    const router = hcm.httpFilters.find((f) => f.kind === 'router');
    this.suppressEnvoyHeaders = router?.kind === 'router' ? router.config.suppressEnvoyHeaders : false;
    this.fault = faultFilter(hcm);
    this.cors = hasCorsFilter(hcm);
    this.rbac = rbacFilters(engine, hcm);
  }

  /** The request as the RBAC filter sees it (before any route rewrite). */
  rbacRequest(ex: Exchange): RbacRequest {
    const socket = downstreamSocket(ex);
    return new RbacRequest({
      method: ex.method,
      authority: ex.authority,
      path: ex.path,
      headers: ex.headers,
      scheme: ex.scheme,
      hcm: this.hcm,
      socket,
      originalDestination: () => restoredDestination(socket),
    });
  }

  routeTable(snap: ProxySnapshot): RouteTable | undefined {
    const src = this.hcm.routeSource;
    return src.kind === 'inline' ? src.table : snap.routes.get(src.name);
  }

  outboundLabels(cluster: ClusterConfig, ep: Endpoint | undefined, peer?: string, tls?: TlsIdentity): LabelBase {
    return this.engine.labels.outbound(cluster, ep, peer, tls);
  }

  inboundLabels(peer: string | undefined, cluster: ClusterConfig | undefined, tls?: TlsIdentity): LabelBase {
    return this.engine.labels.inbound(peer, cluster, tls);
  }

  /** The downstream connection's verified identities when it is mutual TLS (undefined otherwise; a plaintext chain answers at once). */
  downstreamMtls(ex: Exchange): TlsIdentity | undefined {
    if (this.chain.transportSocket === undefined) return undefined;
    const id = tlsIdentity(downstreamSocket(ex));
    return id?.peer !== undefined ? id : undefined;
  }

  remoteAddress(ex: Exchange): string {
    return plainAddress(downstreamSocket(ex)?.remoteAddress);
  }

  /** The original destination of a redirected connection (none for a connection made to us directly). */
  originalDestination(ex: Exchange): Destination | undefined {
    return restoredDestination(downstreamSocket(ex));
  }
}

function downstreamSocket(ex: Exchange): Socket | undefined {
  return ex.fast?.conn.socket ?? ex.h1req?.socket ?? ex.h2?.session?.socket ?? ex.raw;
}

/**
 * Outbound unless the listener says INBOUND or carries Istio's inbound naming: it decides the
 * metrics reporter and which way the peer-metadata header flows.
 */
export function isOutbound(l: ListenerConfig): boolean {
  if (l.trafficDirection === 'INBOUND') return false;
  if (l.trafficDirection === 'OUTBOUND') return true;
  return !/^(virtual)?inbound/i.test(l.name);
}
