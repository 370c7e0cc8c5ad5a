import type { Actor } from '../store/writer.ts';

// Who Tern's Kubernetes work acts as in the store and the audit log. No Kubernetes client here:
// the API's routers import it, and they must not load @kubernetes/client-node (kube/runtime.ts).

/** The cluster, as an actor: registry rows discovered from it, drift corrected or adopted. */
export const KUBERNETES_ACTOR: Actor = { name: 'system:kubernetes', kind: 'system', role: 'admin' };

/** The audit actions of the policy reconciler when a custom resource was edited in the cluster. */
export const DRIFT_ACTIONS = ['drift-corrected', 'drift-adopted'] as const;
export type DriftAction = (typeof DRIFT_ACTIONS)[number];
