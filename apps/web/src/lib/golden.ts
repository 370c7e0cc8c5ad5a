import type { RouterInputs, RouterOutputs } from './api-types.ts';
import { DOMAIN_SUFFIX } from './mesh.ts';

// Pure glue between the graph and the golden-metric API: which series belongs to a graph node or
// edge, keyboard moves between nodes, health counts for the overview.

type GraphData = RouterOutputs['graph']['get'];
export type GNode = GraphData['nodes'][number];
export type GEdge = GraphData['edges'][number];
export type SeriesInput = RouterInputs['graph']['series'];
export type Window = NonNullable<SeriesInput['window']>;

export interface SeriesChoice {
  input: SeriesInput;
  /** What the charts show, in words ("requests into reviews-v1"). */
  caption: string;
}

/**
 * The series of a node. Workloads: inbound or outbound (a caller that receives nothing defaults
 * to outbound). Services and external hosts: traffic into the service. Versioned apps: the series
 * API has no app/version filter, so the app's service (all versions) — said in the caption.
 */
export function seriesForNode(n: GNode, window: Window, direction?: 'inbound' | 'outbound'): SeriesChoice | null {
  switch (n.kind) {
    case 'workload': {
      if (!n.workload) return null;
      const dir = direction ?? (n.inboundRps > 0 || n.outboundRps === 0 ? 'inbound' : 'outbound');
      return { input: { window, workload: n.workload, namespace: n.namespace, direction: dir }, caption: `${dir === 'inbound' ? 'Requests into' : 'Requests from'} ${n.name}` };
    }
    case 'unknown':
      // Callers without identity are booked as workload "unknown" in namespace "unknown".
      return { input: { window, workload: 'unknown', namespace: 'unknown', direction: 'outbound' }, caption: 'Requests from callers without identity' };
    case 'service':
    case 'external':
      if (!n.service) return null;
      return { input: { window, service: n.service }, caption: `Requests into ${n.service}` };
    case 'passthrough':
      return { input: { window, service: n.name }, caption: `Requests to ${n.name}` };
    case 'app': {
      if (!n.app) return null;
      const service = `${n.app}.${n.namespace}.svc.${DOMAIN_SUFFIX}`;
      return { input: { window, service }, caption: `Requests into ${service} (all versions: per-version charts need the workload view)` };
    }
  }
}

/**
 * The series of an edge: the destination's series narrowed to the calling workload. A caller
 * that is an app (not one workload) cannot be narrowed: then the destination's whole inbound
 * series, said in the caption.
 */
export function seriesForEdge(e: GEdge, nodes: ReadonlyMap<string, GNode>, window: Window): SeriesChoice | null {
  const s = nodes.get(e.source);
  const t = nodes.get(e.target);
  if (!s || !t) return null;
  const dest = seriesForNode(t, window, 'inbound');
  if (!dest) return null;
  const src = s.kind === 'workload' && s.workload ? { sourceWorkload: s.workload, sourceNamespace: s.namespace } : s.kind === 'unknown' ? { sourceWorkload: 'unknown', sourceNamespace: 'unknown' } : null;
  if (!src) return { input: dest.input, caption: `${dest.caption} from every caller (the series API narrows by calling workload, not app)` };
  return { input: { ...dest.input, ...src }, caption: `Requests from ${s.name} to ${t.name}` };
}

export type Direction = 'ArrowUp' | 'ArrowDown' | 'ArrowLeft' | 'ArrowRight';

/**
 * The node to move to with an arrow key: the nearest node whose centre lies in that direction
 * (within a 45° cone either side), distance weighted so that straight ahead wins over diagonal.
 */
export function neighbourInDirection(from: string, dir: Direction, positions: ReadonlyMap<string, { x: number; y: number }>): string | null {
  const p = positions.get(from);
  if (!p) return null;
  const [ux, uy] = dir === 'ArrowRight' ? [1, 0] : dir === 'ArrowLeft' ? [-1, 0] : dir === 'ArrowDown' ? [0, 1] : [0, -1];
  let best: string | null = null;
  let bestScore = Infinity;
  for (const [id, q] of positions) {
    if (id === from) continue;
    const dx = q.x - p.x;
    const dy = q.y - p.y;
    const along = dx * ux + dy * uy;
    const across = Math.abs(dx * uy - dy * ux);
    if (along <= 0 || across > along) continue;
    const score = along + 2 * across;
    if (score < bestScore || (score === bestScore && best !== null && id < best)) {
      best = id;
      bestScore = score;
    }
  }
  return best;
}

export interface HealthCounts {
  healthy: number;
  degraded: number;
  failing: number;
  idle: number;
}

/** Services by health, as the graph API rates its nodes (Kiali's thresholds). */
export function healthCounts(rows: readonly { health: string }[]): HealthCounts {
  const c: HealthCounts = { healthy: 0, degraded: 0, failing: 0, idle: 0 };
  for (const r of rows) if (r.health in c) c[r.health as keyof HealthCounts]++;
  return c;
}

export const SORT_KEYS = ['name', 'rps', 'success', 'p95'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** "rps" / "-rps" in the URL: the column, and descending with a leading minus. */
export function parseSort(v: string | null): { key: SortKey; dir: 'asc' | 'desc' } {
  const desc = v?.startsWith('-') ?? false;
  const k = (desc ? v!.slice(1) : v) ?? '';
  return (SORT_KEYS as readonly string[]).includes(k) ? { key: k as SortKey, dir: desc ? 'desc' : 'asc' } : { key: 'name', dir: 'asc' };
}

/** The next sort when a column header is pressed: a metric starts descending (busiest first). */
export function nextSort(current: { key: SortKey; dir: 'asc' | 'desc' }, key: SortKey): string {
  if (current.key === key) return current.dir === 'asc' ? `-${key}` : key;
  return key === 'name' ? key : `-${key}`;
}
