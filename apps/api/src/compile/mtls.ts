import { EXTENSION_TYPE_URL, type JsonObject } from '@tern/xds';
import type { PeerAuthenticationSpec } from '@tern/shared';
import type { MeshSnapshot, ResourceRow } from '../store/snapshot.ts';
import { labelsOf, selects } from '../policy/mesh-model.ts';
import { cmpStr } from './util.ts';

// Mutual TLS on the inbound side: which mode a workload's port accepts (PeerAuthentication, with
// Istio's precedence) and the filter chains that enforce it. The outbound half (UpstreamTlsContext,
// auto mTLS) lives in cluster.ts. Pure; docs/xds.md "Mutual TLS" has the translation.

export type PeerMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** SDS secret names the sidecar's own identity agent serves (Istio's names). */
export const SDS_CERT = 'default';
export const SDS_ROOT = 'ROOTCA';

/**
 * The mode a workload accepts, and per-port overrides (keyed by the port the workload receives
 * traffic on). `key` names the content: equal keys, equal inbound output.
 */
export interface PeerPolicy {
  mode: PeerMode;
  ports: ReadonlyMap<number, PeerMode>;
  key: string;
}

type SpecMode = PeerMode | 'UNSET' | undefined;

interface PeerEntry {
  namespace: string;
  name: string;
  /** Creation time, then namespace/name: the oldest of two conflicting policies wins. */
  order: string;
  /** matchLabels; undefined or empty = namespace-wide (mesh-wide in the root namespace). */
  selector: Record<string, string> | undefined;
  mode: SpecMode;
  ports: Array<[number, SpecMode]>;
}

export const DEFAULT_PEER: PeerPolicy = { mode: 'PERMISSIVE', ports: new Map(), key: 'PERMISSIVE' };

function toEntry(r: ResourceRow): PeerEntry {
  const spec = (r.spec ?? {}) as PeerAuthenticationSpec;
  const t = r.createdAt instanceof Date ? r.createdAt.toISOString() : String(r.createdAt ?? '');
  const selector = spec.selector ? labelsOf(spec.selector.matchLabels) : undefined;
  const ports: Array<[number, SpecMode]> = Object.entries(spec.portLevelMtls ?? {})
    .map(([k, v]): [number, SpecMode] => [Number(k), v?.mode])
    .filter(([n]) => Number.isInteger(n) && n > 0)
    .sort(([a], [b]) => a - b);
  return {
    namespace: r.namespace,
    name: r.name,
    order: `${t}|${r.namespace}|${r.name}`,
    selector: selector && Object.keys(selector).length > 0 ? selector : undefined,
    mode: spec.mtls?.mode,
    ports,
  };
}

const set = (m: SpecMode): m is PeerMode => m !== undefined && m !== 'UNSET';

/** Istio's ComposePeerAuthentication over the (at most) three policies that decide. */
function composePeer(mesh: PeerEntry | undefined, namespace: PeerEntry | undefined, workload: PeerEntry | undefined): PeerPolicy {
  let mode: PeerMode = 'PERMISSIVE';
  if (mesh && set(mesh.mode)) mode = mesh.mode;
  if (namespace && set(namespace.mode)) mode = namespace.mode;
  const ports = new Map<number, PeerMode>();
  if (workload) {
    if (set(workload.mode)) mode = workload.mode;
    // A port left UNSET inherits the workload's mode (after the workload's own override).
    for (const [port, m] of workload.ports) ports.set(port, set(m) ? m : mode);
  }
  const key = [mode, ...[...ports].map(([p, m]) => `${p}=${m}`)].join(',');
  return { mode, ports, key };
}

export function peerModeFor(policy: PeerPolicy, port: number): PeerMode {
  return policy.ports.get(port) ?? policy.mode;
}

/** PeerAuthentications of one revision, by namespace, oldest first. */
export class PeerAuthIndex {
  private readonly byNamespace = new Map<string, PeerEntry[]>();
  private readonly interned = new Map<string, PeerPolicy>([[DEFAULT_PEER.key, DEFAULT_PEER]]);
  /** Everything the index decides by, as text: equal signatures, equal answers. */
  readonly signature: string;

  constructor(
    mesh: MeshSnapshot,
    readonly rootNamespace: string,
  ) {
    const all: PeerEntry[] = [];
    for (const r of mesh.resources.values()) if (r.kind === 'PeerAuthentication') all.push(toEntry(r));
    all.sort((a, b) => cmpStr(a.order, b.order));
    for (const p of all) (this.byNamespace.get(p.namespace) ?? this.byNamespace.set(p.namespace, []).get(p.namespace)!).push(p);
    this.signature = JSON.stringify(all);
  }

  /**
   * Whether a workload's sidecar takes mTLS on a port (anything but DISABLE): clients label its
   * endpoints `tlsMode: istio` only then, so auto mTLS sends plain text to a DISABLE port instead of
   * TLS bytes a plaintext chain would hand to the app.
   */
  acceptsMtls(namespace: string, labels: Record<string, string>, port: number): boolean {
    return peerModeFor(this.effective(namespace, labels), port) !== 'DISABLE';
  }

  /**
   * The effective policy of a workload (Istio's precedence): the oldest selector-less policy of the
   * root namespace (mesh), then of the workload's namespace, then the oldest policy of the
   * workload's namespace whose selector matches its labels; UNSET inherits. Selector policies in
   * the root namespace apply to no one, as in istiod. Equal results are the same object.
   */
  effective(namespace: string, labels: Record<string, string>): PeerPolicy {
    const first = <T>(list: readonly T[] | undefined, ok: (x: T) => boolean): T | undefined => list?.find(ok);
    const root = this.byNamespace.get(this.rootNamespace);
    const mesh = first(root, (p) => !p.selector);
    const own = namespace === this.rootNamespace ? undefined : this.byNamespace.get(namespace);
    const nsWide = first(own, (p) => !p.selector);
    const workload = first(own, (p) => p.selector !== undefined && selects(p.selector, labels));
    const policy = composePeer(mesh, nsWide, workload);
    const known = this.interned.get(policy.key);
    if (known) return known;
    this.interned.set(policy.key, policy);
    return policy;
  }
}

function sds(name: string): JsonObject {
  // No sds_config: the sidecar's own identity agent (workload certificate from the CA) serves
  // these two names; they never come over ADS.
  return { name };
}

/** ALPN a server offers: HTTP ports speak h2 or HTTP/1.1 inside TLS; TCP ports match Istio's client ALPN. */
export function inboundAlpn(http: boolean): string[] {
  return http ? ['h2', 'http/1.1'] : ['istio-peer-exchange', 'istio'];
}

/** Istio's inbound mTLS: our certificate from SDS `default`, client certificates required and verified against `ROOTCA`. */
export function downstreamMtls(http: boolean): JsonObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': EXTENSION_TYPE_URL.downstreamTls,
      common_tls_context: {
        alpn_protocols: inboundAlpn(http),
        tls_certificate_sds_secret_configs: [sds(SDS_CERT)],
        // Top-level (not combined_validation_context): inbound checks only the chain to the mesh
        // root; who the peer is, is AuthorizationPolicy's business.
        validation_context_sds_secret_config: sds(SDS_ROOT),
      },
      require_client_certificate: true,
    },
  };
}

export const TLS_INSPECTOR: JsonObject = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': EXTENSION_TYPE_URL.tlsInspector } };

/**
 * The filter chains for one inbound port under a mode. `chain` is the plaintext chain (its
 * filter_chain_match, if any, is kept). STRICT: only TLS connections match (plaintext finds no
 * chain and is closed); PERMISSIVE: TLS and plaintext, told apart per connection by the first
 * byte (transport_protocol only: the proxy does not parse the ClientHello, so no ALPN/SNI match);
 * DISABLE: the plaintext chain as it is.
 */
export function peerChains(mode: PeerMode, chain: JsonObject, http: boolean): JsonObject[] {
  if (mode === 'DISABLE') return [chain];
  const match = (chain['filter_chain_match'] as JsonObject | undefined) ?? {};
  const tls: JsonObject = { ...chain, filter_chain_match: { ...match, transport_protocol: 'tls' }, transport_socket: downstreamMtls(http) };
  if (mode === 'STRICT') return [tls];
  return [tls, { ...chain, filter_chain_match: { ...match, transport_protocol: 'raw_buffer' } }];
}

/** Whether chains need the listener's TLS detection (a transport_protocol match). */
export function needsTlsInspector(chains: readonly JsonObject[]): boolean {
  return chains.some((c) => (c['filter_chain_match'] as JsonObject | undefined)?.['transport_protocol'] !== undefined);
}
