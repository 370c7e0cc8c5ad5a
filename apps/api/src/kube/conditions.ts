import type { Diagnostic, StoredResource } from '@tern/shared';

// The status conditions the reconciler writes on each of Tern's custom resources (pure), following
// Kubernetes' conventions (metav1.Condition): `Accepted` (stored in Tern, with the analyzer's
// warnings for the object) and `ProxiesConverged` (every connected proxy has ACKed configuration
// compiled from the object's store revision or a later one). lastTransitionTime moves only when a
// condition's status does; the reconciler writes status only when a condition changed.

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type DesiredCondition = Omit<Condition, 'lastTransitionTime'>;

/** What the conditions need to know about a proxy (ProxyStatusView has it, from any replica). */
export interface ProxyConvergence {
  id: string;
  /** The latest mesh (store) revision at which the proxy had ACKed every type; null: never yet. */
  convergedRevision: string | null;
  status: string;
  lastNack: { type: string; version: string; message: string } | null;
}

export const ACCEPTED = 'Accepted';
export const PROXIES_CONVERGED = 'ProxiesConverged';
/** Kubernetes caps a condition's message at 32 KiB; a status line should be much shorter. */
const MAX_MESSAGE = 1024;
const MAX_WARNINGS = 5;

const clip = (s: string) => (s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE - 1)}…` : s);
const gen = (generation: number | undefined) => (generation === undefined ? {} : { observedGeneration: generation });

/** The analyzer's findings worth a user's attention (what the API returns as `warnings` on apply). */
export function warningsOf(r: StoredResource): Diagnostic[] {
  return (r.status?.validationMessages ?? []).filter((d) => d.level !== 'info');
}

/** `Accepted`: the object is in Tern's store (the CR is written from it); warnings as the message. */
export function acceptedCondition(r: StoredResource, generation?: number): DesiredCondition {
  const warnings = warningsOf(r);
  if (warnings.length === 0) {
    return { type: ACCEPTED, status: 'True', reason: 'Stored', message: `stored in Tern at resourceVersion ${r.metadata.resourceVersion}`, ...gen(generation) };
  }
  const shown = warnings.slice(0, MAX_WARNINGS).map((d) => `${d.level} ${d.code}${d.path ? ` at ${d.path}` : ''}: ${d.message}`);
  const more = warnings.length > MAX_WARNINGS ? ` (and ${warnings.length - MAX_WARNINGS} more)` : '';
  return { type: ACCEPTED, status: 'True', reason: 'StoredWithWarnings', message: clip(`${shown.join('; ')}${more}`), ...gen(generation) };
}

/**
 * `ProxiesConverged` for an object stored at `revision`, over every connected proxy of the mesh.
 * A proxy has converged when it ACKed everything at that revision or a later one (a later NACK does
 * not undo that: the proxy keeps its last good config, which has this object); one that has not and
 * whose last answer was a NACK rejected it; the others are pending. No proxies: True (`NoProxies`),
 * so `kubectl wait --for=condition=ProxiesConverged` does not hang on an empty mesh.
 */
export function proxiesConvergedCondition(revision: string, proxies: readonly ProxyConvergence[], generation?: number): DesiredCondition {
  const base = { type: PROXIES_CONVERGED, ...gen(generation) };
  if (proxies.length === 0) return { ...base, status: 'True', reason: 'NoProxies', message: 'no proxies are connected' };
  const rev = BigInt(revision);
  const rejected: ProxyConvergence[] = [];
  let converged = 0;
  for (const p of [...proxies].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    // A row from another Tern version with something else in the field counts as not converged.
    if (p.convergedRevision !== null && /^\d{1,19}$/.test(p.convergedRevision) && BigInt(p.convergedRevision) >= rev) converged++;
    else if (p.status === 'NACKED' && p.lastNack) rejected.push(p);
  }
  const n = proxies.length;
  if (converged === n) return { ...base, status: 'True', reason: 'Converged', message: `every connected proxy has ACKed resourceVersion ${revision} or later` };
  const count = `${converged} of ${n} proxies converged`;
  const first = rejected[0];
  if (first) {
    const others = rejected.length > 1 ? ` (and ${rejected.length - 1} more proxies rejected)` : '';
    return { ...base, status: 'False', reason: 'Rejected', message: clip(`proxy ${first.id} rejected ${first.lastNack!.type} version ${first.lastNack!.version}: ${first.lastNack!.message}${others}; ${count}`) };
  }
  return { ...base, status: 'False', reason: 'Pending', message: `${count} at resourceVersion ${revision}` };
}

function readConditions(current: unknown): Condition[] {
  if (!Array.isArray(current)) return [];
  return current.filter((c): c is Condition => !!c && typeof c === 'object' && typeof (c as Condition).type === 'string');
}

/**
 * The conditions to write: `desired`, each keeping the current lastTransitionTime while its status
 * is unchanged (a new reason or message is not a transition), `now` otherwise. Conditions of other
 * types (someone else's) are kept as they are.
 */
export function nextConditions(current: unknown, desired: readonly DesiredCondition[], now: Date): Condition[] {
  const have = readConditions(current);
  const out: Condition[] = [];
  for (const d of desired) {
    const prev = have.find((c) => c.type === d.type);
    const lastTransitionTime = prev && prev.status === d.status && typeof prev.lastTransitionTime === 'string' ? prev.lastTransitionTime : now.toISOString();
    out.push({ ...d, lastTransitionTime });
  }
  for (const c of have) if (!desired.some((d) => d.type === c.type)) out.push(c);
  return out;
}

/** Same conditions, field by field, in any order: nothing to write. */
export function sameConditions(current: unknown, next: readonly Condition[]): boolean {
  const have = readConditions(current);
  if (!Array.isArray(current) || have.length !== current.length || have.length !== next.length) return false;
  return next.every((n) => {
    const c = have.find((h) => h.type === n.type);
    return !!c && c.status === n.status && c.reason === n.reason && c.message === n.message && c.lastTransitionTime === n.lastTransitionTime && c.observedGeneration === n.observedGeneration;
  });
}

/** Something is still on its way (or stuck): worth looking again soon. */
export function settled(conditions: readonly Condition[]): boolean {
  return conditions.every((c) => c.status === 'True');
}

/** What the conditions read of the proxies, as one string: a pass is due when it changes. */
export function proxyFingerprint(proxies: readonly ProxyConvergence[]): string {
  return proxies
    .map((p) => `${p.id}\u0000${p.status}\u0000${p.convergedRevision ?? ''}\u0000${p.lastNack ? `${p.lastNack.type}/${p.lastNack.version}/${p.lastNack.message}` : ''}`)
    .sort()
    .join('\n');
}
