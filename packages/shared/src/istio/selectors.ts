import { z } from 'zod';

import { report } from './issues.ts';
import { labelMap } from './names.ts';

// Two ways Istio policies pick what they apply to: by workload labels (selector) or by naming a
// Service, ServiceEntry or Gateway (targetRef/targetRefs, used by ambient mode's waypoints).

/** istio.type.v1beta1.WorkloadSelector: `matchLabels` (used by security policies and DestinationRule). */
export const workloadSelectorSchema = z.strictObject({
  matchLabels: labelMap({ noWildcard: true, maxProperties: 4096 }).optional(),
});
export type WorkloadSelector = z.infer<typeof workloadSelectorSchema>;

const GROUP = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

/** Kinds a policy may target, as Istio's webhook allows them: [group, kind]; "" is the core group. */
export const POLICY_TARGET_KINDS: ReadonlyArray<readonly [string, string]> = [
  ['', 'Service'],
  ['networking.istio.io', 'ServiceEntry'],
  ['gateway.networking.k8s.io', 'Gateway'],
  ['gateway.networking.k8s.io', 'GatewayClass'],
];

export const policyTargetReferenceSchema = z
  .strictObject({
    group: z.string().max(253).optional(),
    kind: z.string().min(1).max(63),
    name: z.string().min(1).max(253),
    namespace: z.string().optional(),
  })
  .superRefine((ref, ctx) => {
    const group = ref.group ?? '';
    if (!GROUP.test(group)) report(ctx, 'dns1123_subdomain', 'must be an API group such as "gateway.networking.k8s.io", or "" for the core group', ['group']);
    if (!KIND.test(ref.kind)) report(ctx, 'type', 'must be a Kubernetes kind name such as "Service"', ['kind']);
    const canonical = group === 'core' ? '' : group;
    if (!POLICY_TARGET_KINDS.some(([g, k]) => g === canonical && k === ref.kind)) {
      const allowed = POLICY_TARGET_KINDS.map(([g, k]) => (g ? `${k} (${g})` : `${k} (core)`)).join(', ');
      report(ctx, 'target_ref_kind', `must refer to one of ${allowed}; got ${ref.kind}${group ? ` in group ${group}` : ''}`);
    }
    if (ref.namespace !== undefined && ref.namespace !== '') {
      report(ctx, 'target_ref_namespace', 'must be empty: a policy can only target resources in its own namespace', ['namespace']);
    }
  });
export type PolicyTargetReference = z.infer<typeof policyTargetReferenceSchema>;

/** Security policies choose at most one way of selecting what they apply to. */
export function checkOneSelector(
  spec: { selector?: unknown; targetRef?: unknown; targetRefs?: unknown[] | undefined },
  ctx: z.RefinementCtx<unknown>,
): void {
  const set = (['selector', 'targetRef', 'targetRefs'] as const).filter((k) =>
    k === 'targetRefs' ? (spec.targetRefs?.length ?? 0) > 0 : spec[k] !== undefined,
  );
  if (set.length > 1) {
    report(ctx, 'one_of', `must set only one of selector, targetRef or targetRefs (it sets ${set.join(' and ')})`, [set[1] as string]);
  }
}
