import type { StoredResource } from './api-types.ts';
import { ROOT_NAMESPACE, type MtlsMode } from './mesh.ts';

// The mTLS mode a workload accepts, as Istio composes PeerAuthentication policies
// (pilot/pkg/model/authentication.go): the workload's own selector policy, else its namespace's
// namespace-wide policy, else the mesh-wide one in the root namespace, else PERMISSIVE. A level
// whose mode is UNSET (or absent) inherits from the level above; a port-level mode of the workload
// policy overrides the result for that port. When a level has several candidates, the oldest wins.
// Certificates' time left and the observed-mTLS list are also derived here (pure, unit-tested).

export type PolicyMode = 'UNSET' | MtlsMode;
export type MtlsSource = 'workload' | 'namespace' | 'mesh' | 'default';

export interface PeerAuthSpec {
  selector?: { matchLabels?: Record<string, string> };
  mtls?: { mode?: string };
  portLevelMtls?: Record<string, { mode?: string }>;
}

export interface EffectiveMtls {
  mode: MtlsMode;
  source: MtlsSource;
  /** The policy the mode comes from (namespace/name), when not Istio's default. */
  policy?: string;
}

export interface WorkloadMtls extends EffectiveMtls {
  /** The workload's selector policy (namespace/name), when one selects it (even if its mode is UNSET). */
  workloadPolicy?: string;
  /** Per-port modes from the workload policy's portLevelMtls (UNSET ports inherit the workload's mode). */
  ports: { port: number; mode: MtlsMode; source: MtlsSource | 'port' }[];
}

const MODES: readonly string[] = ['STRICT', 'PERMISSIVE', 'DISABLE'];

function concreteMode(m: string | undefined): MtlsMode | undefined {
  return m !== undefined && MODES.includes(m) ? (m as MtlsMode) : undefined;
}

function specOf(r: StoredResource): PeerAuthSpec {
  return r.spec as PeerAuthSpec;
}

function hasSelector(r: StoredResource): boolean {
  return Object.keys(specOf(r).selector?.matchLabels ?? {}).length > 0;
}

/** Oldest first, then by name: Istio resolves conflicts in favour of the oldest policy. */
function byAge(a: StoredResource, b: StoredResource): number {
  const t = a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp);
  return t !== 0 ? t : a.metadata.name.localeCompare(b.metadata.name);
}

function peerAuthentications(resources: StoredResource[]): StoredResource[] {
  return resources.filter((r) => r.kind === 'PeerAuthentication').sort(byAge);
}

export const refOf = (r: StoredResource): string => `${r.metadata.namespace}/${r.metadata.name}`;

/** The namespace-wide policy of `ns` (no selector), the oldest when there are several. */
export function namespacePolicy(resources: StoredResource[], ns: string): StoredResource | undefined {
  return peerAuthentications(resources).find((r) => r.metadata.namespace === ns && !hasSelector(r));
}

/** The mesh-wide policy: namespace-wide in the root namespace. */
export function meshPolicy(resources: StoredResource[], root = ROOT_NAMESPACE): StoredResource | undefined {
  return namespacePolicy(resources, root);
}

export function selectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/**
 * The selector policy for a workload: in its own namespace, matchLabels all present on the
 * workload. Root-namespace selector policies select only root-namespace workloads (Istio).
 */
export function workloadPolicy(resources: StoredResource[], ns: string, labels: Record<string, string>): StoredResource | undefined {
  return peerAuthentications(resources).find((r) => r.metadata.namespace === ns && hasSelector(r) && selectorMatches(specOf(r).selector?.matchLabels, labels));
}

/** The mesh's mode: the mesh-wide policy, else Istio's default PERMISSIVE (UNSET counts as none). */
export function meshMtls(resources: StoredResource[], root = ROOT_NAMESPACE): EffectiveMtls {
  const p = meshPolicy(resources, root);
  const mode = concreteMode(p ? specOf(p).mtls?.mode : undefined);
  return mode && p ? { mode, source: 'mesh', policy: refOf(p) } : { mode: 'PERMISSIVE', source: 'default' };
}

/** A namespace's mode: its namespace-wide policy unless UNSET, else the mesh's. */
export function namespaceMtlsOf(resources: StoredResource[], ns: string, root = ROOT_NAMESPACE): EffectiveMtls {
  const p = namespacePolicy(resources, ns);
  const mode = concreteMode(p ? specOf(p).mtls?.mode : undefined);
  if (mode && p) return { mode, source: ns === root ? 'mesh' : 'namespace', policy: refOf(p) };
  return meshMtls(resources, root);
}

/** A workload's mode and its per-port modes, with where each comes from. */
export function workloadMtls(resources: StoredResource[], ns: string, labels: Record<string, string>, root = ROOT_NAMESPACE): WorkloadMtls {
  const inherited = namespaceMtlsOf(resources, ns, root);
  const p = workloadPolicy(resources, ns, labels);
  if (!p) return { ...inherited, ports: [] };
  const spec = specOf(p);
  const own = concreteMode(spec.mtls?.mode);
  const base: EffectiveMtls = own ? { mode: own, source: 'workload', policy: refOf(p) } : inherited;
  const ports = Object.entries(spec.portLevelMtls ?? {})
    .map(([port, m]) => {
      const pm = concreteMode(m.mode);
      return { port: Number(port), mode: pm ?? base.mode, source: pm ? ('port' as const) : base.source };
    })
    .filter((x) => Number.isInteger(x.port))
    .sort((a, b) => a.port - b.port);
  return { ...base, workloadPolicy: refOf(p), ports };
}

/** The mode for one port of a workload (a port-level mode wins over everything else). */
export function portMtls(resources: StoredResource[], ns: string, labels: Record<string, string>, port: number, root = ROOT_NAMESPACE): MtlsMode {
  const w = workloadMtls(resources, ns, labels, root);
  return w.ports.find((p) => p.port === port)?.mode ?? w.mode;
}

/** How a source reads in the table ("from the namespace policy default/x", "Istio's default"). */
export function describeSource(e: EffectiveMtls): string {
  if (e.source === 'default') return "Istio's default (no policy)";
  return `${e.source === 'workload' ? 'workload' : e.source === 'namespace' ? 'namespace' : 'mesh'} policy ${e.policy ?? ''}`.trim();
}

// ---- certificates ------------------------------------------------------------------------------

export type Urgency = 'expired' | 'critical' | 'warning' | 'ok';

/**
 * How urgent a certificate's renewal is: expired; critical under one hour left; warning under a
 * quarter of its lifetime left (Istio's agent renews at about half, so a quarter means it missed it).
 */
export function certificateUrgency(notBefore: string, notAfter: string, now: number): { left: number; lifetime: number; urgency: Urgency } {
  const start = Date.parse(notBefore);
  const end = Date.parse(notAfter);
  const left = end - now;
  const lifetime = Math.max(end - start, 0);
  const urgency: Urgency = left <= 0 ? 'expired' : left < 3_600_000 ? 'critical' : left < lifetime / 4 ? 'warning' : 'ok';
  return { left, lifetime, urgency };
}

/** "2d 3h", "45m", "30s", "expired 5m ago". */
export function formatTimeLeft(ms: number): string {
  const abs = Math.abs(ms);
  const d = Math.floor(abs / 86_400_000);
  const h = Math.floor((abs % 86_400_000) / 3_600_000);
  const m = Math.floor((abs % 3_600_000) / 60_000);
  const s = Math.floor((abs % 60_000) / 1000);
  const text = d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m` : `${s}s`;
  return ms <= 0 ? `expired ${text} ago` : text;
}

// ---- observed mTLS -----------------------------------------------------------------------------

export interface ObservedEdge {
  id: string;
  source: string;
  target: string;
  requests: number;
  mtlsShare: number;
  /** The destination's effective mode, when the destination is a known workload. */
  targetMode?: MtlsMode;
  /** Plain-text requests reached a STRICT workload: they were (or will be) refused. */
  flagged: boolean;
}

/**
 * Edges with traffic, lowest mTLS share first (then busiest first); an edge at 0 % into a STRICT
 * workload is flagged. `modeOf` gives a graph node's effective mode (undefined: not a workload).
 */
export function observedMtls(
  edges: { id: string; source: string; target: string; requests: number; mtlsShare: number }[],
  modeOf: (nodeId: string) => MtlsMode | undefined,
): ObservedEdge[] {
  return edges
    .filter((e) => e.requests > 0)
    .map((e) => {
      const targetMode = modeOf(e.target);
      return { ...e, targetMode, flagged: e.mtlsShare === 0 && targetMode === 'STRICT' };
    })
    .sort((a, b) => a.mtlsShare - b.mtlsShare || b.requests - a.requests || a.id.localeCompare(b.id));
}

/** 0.995 → "99.5%", 1 → "100%", 0 → "0%"; never rounds a partial share to 0 % or 100 %. */
export function formatShare(share: number): string {
  if (share <= 0) return '0%';
  if (share >= 1) return '100%';
  const pct = Math.min(Math.max(share * 100, 0.01), 99.99);
  const text = pct < 1 ? pct.toFixed(2) : pct > 99 ? pct.toFixed(2) : pct.toFixed(1);
  return `${text.replace(/\.?0+$/, '')}%`;
}
