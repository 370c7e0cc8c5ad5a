import { z } from 'zod';
import { auditEventSchema } from '@tern/shared';
import { DRIFT_ACTIONS, KUBERNETES_ACTOR } from '../../kube/actor.ts';
import { router, viewerProcedure } from '../trpc.ts';

// The policy reconciler's state (docs/kubernetes.md "The reconciler"): whether this control plane
// writes policy into a cluster, whether this replica is the one doing it, its last pass, and the
// drift it recently corrected or adopted (from the audit log, so every replica shows the same).


const lastPassSchema = z.object({
  at: z.string(),
  applied: z.number().int(),
  deleted: z.number().int(),
  drifted: z.number().int(),
  adopted: z.number().int(),
  statusWritten: z.number().int(),
  unsettled: z.number().int().describe('Objects with a condition not True (proxies pending or rejecting)'),
  errors: z.array(z.string()),
});

export const kubernetesStatusSchema = z.object({
  enabled: z.boolean().describe('This control plane writes policy into a cluster (TERN_KUBE_RECONCILE)'),
  leader: z.boolean().describe('This replica holds the lease and runs the reconciler'),
  replica: z.string(),
  mode: z.enum(['correct', 'adopt']).nullable().describe('What happens to a custom resource edited in the cluster (TERN_KUBE_DRIFT)'),
  lastPass: lastPassSchema.nullable().describe('This replica’s last pass (null: it has not led since it started)'),
  recentDrift: z.array(auditEventSchema),
});

export const kubernetesRouter = router({
  status: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/kubernetes/status', tags: ['kubernetes'], summary: 'The Kubernetes reconciler: leader, mode, last pass, recent drift' } })
    .input(z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) }))
    .output(kubernetesStatusSchema)
    .query(async ({ ctx, input }) => {
      const { config, kube } = ctx.app;
      const replica = config.replicaId;
      if (!kube || !config.kubeReconcile) return { enabled: false, leader: false, replica, mode: null, lastPass: null, recentDrift: [] };
      const { events } = await ctx.app.audit.list({ actor: KUBERNETES_ACTOR.name, actions: [...DRIFT_ACTIONS], limit: input.limit });
      return { enabled: true, leader: kube.isLeader, replica, mode: config.kubeDrift, lastPass: kube.reconciler.lastPass ?? null, recentDrift: events };
    }),
});
