import { parseClusterName } from '@tern/xds';
import type { ClusterConfig, Endpoint, Json } from '../config/model.ts';
import { decodePeer, type PeerIdentity } from '../dataplane/headers.ts';
import type { TlsIdentity } from '../dataplane/tls-peer.ts';
import type { LabelBase, LabelSet, Metrics } from './metrics.ts';

const UNKNOWN = 'unknown';

/**
 * Resolves Istio's metric labels for a request without building label objects per request:
 * results are cached per cluster/endpoint object (snapshots are immutable, so identity is a
 * valid key) and per peer-header value.
 */
export class LabelCache {
  private readonly byCluster = new WeakMap<ClusterConfig, LabelBase>();
  private readonly byEndpoint = new WeakMap<Endpoint, LabelBase>();
  private readonly byPeer = new Map<string, LabelBase>();
  /** TLS upstreams without a peer header: per endpoint, then per `peer|local` principals. */
  private readonly byEndpointTls = new WeakMap<Endpoint, Map<string, LabelBase>>();
  private outboundDefault: LabelBase | undefined;
  private inboundDefault: LabelBase | undefined;

  constructor(private readonly metrics: Metrics, private readonly self: PeerIdentity) {}

  /**
   * reporter=source: we are the source; the destination comes from the cluster, endpoint or peer
   * header, and its principal from the upstream TLS connection's verified certificate (`tls`).
   */
  outbound(cluster: ClusterConfig | undefined, ep: Endpoint | undefined, peer: string | undefined, tls?: TlsIdentity): LabelBase {
    if (!cluster) return (this.outboundDefault ??= this.metrics.base(this.outboundSet(undefined, undefined, undefined)));
    if (tls !== undefined) return this.outboundTls(cluster, ep, peer, tls);
    if (peer !== undefined) {
      const key = `o|${cluster.name}|${peer}`;
      let b = this.byPeer.get(key);
      if (!b) {
        b = this.metrics.base(this.outboundSet(cluster, ep, decodePeer(peer)));
        this.remember(key, b);
      }
      return b;
    }
    if (ep) {
      let b = this.byEndpoint.get(ep);
      if (!b) {
        b = this.metrics.base(this.outboundSet(cluster, ep, undefined));
        this.byEndpoint.set(ep, b);
      }
      return b;
    }
    let b = this.byCluster.get(cluster);
    if (!b) {
      b = this.metrics.base(this.outboundSet(cluster, undefined, undefined));
      this.byCluster.set(cluster, b);
    }
    return b;
  }

  /**
   * reporter=destination: we are the destination; the source is whoever the peer header names,
   * its principal whoever the downstream TLS connection's verified client certificate names (`tls`).
   */
  inbound(peer: string | undefined, cluster: ClusterConfig | undefined, tls?: TlsIdentity): LabelBase {
    const mtls = tls?.peer !== undefined ? tls : undefined;
    if (peer === undefined && cluster === undefined && mtls === undefined) return (this.inboundDefault ??= this.metrics.base(this.inboundSet(undefined, undefined, undefined)));
    const key = mtls === undefined ? `i|${cluster?.name ?? ''}|${peer ?? ''}` : `i|${cluster?.name ?? ''}|${peer ?? ''}|${mtls.peer}|${mtls.local}`;
    let b = this.byPeer.get(key);
    if (!b) {
      b = this.metrics.base(this.inboundSet(peer === undefined ? undefined : decodePeer(peer), cluster, mtls));
      this.remember(key, b);
    }
    return b;
  }

  private outboundTls(cluster: ClusterConfig, ep: Endpoint | undefined, peer: string | undefined, tls: TlsIdentity): LabelBase {
    const principals = `${tls.peer ?? ''}|${tls.local}`;
    if (peer !== undefined || ep === undefined) {
      const key = `o|${cluster.name}|${peer ?? ''}|${principals}`;
      let b = this.byPeer.get(key);
      if (!b) {
        b = this.metrics.base(this.outboundSet(cluster, ep, peer === undefined ? undefined : decodePeer(peer), tls));
        this.remember(key, b);
      }
      return b;
    }
    let m = this.byEndpointTls.get(ep);
    if (!m) this.byEndpointTls.set(ep, (m = new Map()));
    let b = m.get(principals);
    if (!b) {
      b = this.metrics.base(this.outboundSet(cluster, ep, undefined, tls));
      if (m.size >= 100) m.clear();
      m.set(principals, b);
    }
    return b;
  }

  /** Peer values come from the network: bound the cache so a hostile client cannot grow it forever. */
  private remember(key: string, b: LabelBase): void {
    if (this.byPeer.size >= 10000) this.byPeer.clear();
    this.byPeer.set(key, b);
  }

  private outboundSet(cluster: ClusterConfig | undefined, ep: Endpoint | undefined, peer: PeerIdentity | undefined, tls?: TlsIdentity): LabelSet {
    const svc = serviceOf(cluster);
    const w = peer ?? workloadOf(ep);
    const s = this.self;
    return {
      reporter: 'source',
      source_workload: s.workload, source_workload_namespace: s.namespace,
      // Over TLS the principals are the certificates' (ours as presented, the upstream's as
      // verified); Istio still reports the policy as unknown on the client side.
      source_principal: (tls === undefined ? s.principal : tls.local) || UNKNOWN,
      source_app: s.app, source_version: s.version,
      destination_workload: w?.workload || UNKNOWN, destination_workload_namespace: w?.namespace || svc.namespace,
      destination_principal: (tls === undefined ? w?.principal : tls.peer) || UNKNOWN, destination_app: w?.app || UNKNOWN, destination_version: w?.version || UNKNOWN,
      destination_service: svc.host, destination_service_name: svc.name, destination_service_namespace: svc.namespace,
      connection_security_policy: UNKNOWN,
    };
  }

  private inboundSet(peer: PeerIdentity | undefined, cluster: ClusterConfig | undefined, mtls: TlsIdentity | undefined): LabelSet {
    const s = this.self;
    const svc = inboundServiceOf(cluster, s);
    return {
      reporter: 'destination',
      source_workload: peer?.workload || UNKNOWN, source_workload_namespace: peer?.namespace || UNKNOWN,
      // The peer header is a claim, not a proof: only mTLS can establish a principal.
      source_principal: mtls?.peer || UNKNOWN,
      source_app: peer?.app || UNKNOWN, source_version: peer?.version || UNKNOWN,
      destination_workload: s.workload, destination_workload_namespace: s.namespace, destination_principal: (mtls === undefined ? s.principal : mtls.local || s.principal) || UNKNOWN,
      destination_app: s.app, destination_version: s.version,
      destination_service: svc.host,
      destination_service_name: svc.name,
      destination_service_namespace: svc.namespace,
      connection_security_policy: mtls === undefined ? 'none' : 'mutual_tls',
    };
  }
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` → host, short name, namespace. */
export function serviceOf(cluster: ClusterConfig | undefined): { host: string; name: string; namespace: string } {
  const key = cluster ? parseClusterName(cluster.name) : undefined;
  const host = key?.host;
  if (!host) return { host: cluster && !key ? cluster.name : UNKNOWN, name: cluster && !key ? cluster.name : UNKNOWN, namespace: UNKNOWN };
  const parts = host.split('.');
  return { host, name: parts[0] ?? host, namespace: parts.length > 1 && parts[1] ? parts[1] : UNKNOWN };
}

/**
 * The service an inbound request was addressed to. Istio reads it from the inbound cluster's
 * metadata (`filter_metadata.istio.services[0]`); the cluster name `inbound|9080||` carries no
 * host, so without that metadata the service is the proxy's own canonical service in its
 * namespace (`<app>.<namespace>.svc.cluster.local`, Kubernetes' naming), and only without an app
 * label the workload name.
 */
export function inboundServiceOf(cluster: ClusterConfig | undefined, self: PeerIdentity): { host: string; name: string; namespace: string } {
  const fromMeta = clusterServiceMeta(cluster);
  if (fromMeta) return fromMeta;
  if (cluster) {
    const key = parseClusterName(cluster.name);
    // A non-Istio cluster name (a static bootstrap's own naming) is the service as-is.
    if (!key) return serviceOf(cluster);
    if (key.host) return serviceOf(cluster);
  }
  const ns = self.namespace && self.namespace !== UNKNOWN ? self.namespace : UNKNOWN;
  if (self.app && self.app !== UNKNOWN) {
    return { host: ns === UNKNOWN ? self.app : `${self.app}.${ns}.svc.${DOMAIN_SUFFIX}`, name: self.app, namespace: ns };
  }
  return { host: self.workload || UNKNOWN, name: self.workload || UNKNOWN, namespace: ns };
}

const DOMAIN_SUFFIX = 'cluster.local';

/** `metadata.filter_metadata.istio.services[0]` = {host, name, namespace}, as Istio writes it on clusters. */
function clusterServiceMeta(cluster: ClusterConfig | undefined): { host: string; name: string; namespace: string } | undefined {
  const md = cluster?.metadata as { filter_metadata?: { istio?: { services?: Json } } } | undefined;
  const services = md?.filter_metadata?.istio?.services;
  if (!Array.isArray(services)) return undefined;
  const first = services[0] as { host?: Json; name?: Json; namespace?: Json } | undefined;
  if (!first || typeof first.host !== 'string' || !first.host) return undefined;
  const parts = first.host.split('.');
  return {
    host: first.host,
    name: typeof first.name === 'string' && first.name ? first.name : (parts[0] ?? first.host),
    namespace: typeof first.namespace === 'string' && first.namespace ? first.namespace : parts.length > 1 && parts[1] ? parts[1] : UNKNOWN,
  };
}

/**
 * Endpoint metadata as Istio writes it: filter_metadata.istio.workload =
 * "workload;namespace;canonical-service;canonical-revision;cluster" (app = canonical service,
 * version = canonical revision).
 */
export function workloadOf(ep: Endpoint | undefined): PeerIdentity | undefined {
  const md = ep?.metadata as { filter_metadata?: { istio?: { workload?: Json } } } | undefined;
  const w = (md?.filter_metadata?.istio ?? (md as { istio?: { workload?: Json } } | undefined)?.istio)?.workload;
  if (typeof w !== 'string' || !w) return undefined;
  const [workload = '', namespace = '', app = '', version = ''] = w.split(';');
  return { workload, namespace, app, version, principal: '' };
}
