import { mtlsStatusQuerySchema, mtlsStatusSchema } from '@tern/shared';
import { router, viewerProcedure } from '../trpc.ts';
import { loadSnapshot } from '../../store/snapshot.ts';
import { mtlsStatus, observedByWorkload } from '../../security/mtls-status.ts';

export const securityRouter = router({
  mtls: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/security/mtls', tags: ['security'], summary: 'Configured mTLS mode per namespace and workload (PeerAuthentication precedence) and the observed mTLS share per workload' } })
    .input(mtlsStatusQuerySchema)
    .output(mtlsStatusSchema)
    .query(async ({ ctx, input }) => {
      const app = ctx.app;
      const [mesh, graph] = await Promise.all([loadSnapshot(app.db.prisma), app.telemetry.graph({ window: input.window, granularity: 'workload' })]);
      return mtlsStatus(mesh, observedByWorkload(graph), { enabled: app.config.mtls });
    }),
});
