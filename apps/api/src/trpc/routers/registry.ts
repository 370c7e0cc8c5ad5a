import { z } from 'zod';
import { namespaceName, objectName, registeredServiceSchema, registeredWorkloadSchema, serviceSchema, workloadSchema } from '@tern/shared';
import { editorProcedure, router, viewerProcedure } from '../trpc.ts';

const ref = z.object({ namespace: namespaceName, name: objectName });
const okOutput = z.object({ revision: z.string() });

export const registryRouter = router({
  services: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/registry/services', tags: ['registry'], summary: 'List registered services' } })
    .input(z.object({ namespace: namespaceName.optional() }))
    .output(z.object({ services: z.array(registeredServiceSchema) }))
    .query(async ({ ctx, input }) => ({ services: await ctx.app.registry.services(input.namespace) })),

  upsertService: editorProcedure
    .meta({ openapi: { method: 'PUT', path: '/registry/services/{namespace}/{name}', tags: ['registry'], summary: 'Register or update a service' } })
    .input(serviceSchema)
    .output(okOutput)
    .mutation(async ({ ctx, input }) => ({ revision: (await ctx.app.registry.upsertService(input, ctx.principal)).revision.toString() })),

  deleteService: editorProcedure
    .meta({ openapi: { method: 'DELETE', path: '/registry/services/{namespace}/{name}', tags: ['registry'], summary: 'Remove a service' } })
    .input(ref)
    .output(okOutput)
    .mutation(async ({ ctx, input }) => ({ revision: (await ctx.app.registry.deleteService(input.namespace, input.name, ctx.principal)).revision.toString() })),

  workloads: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/registry/workloads', tags: ['registry'], summary: 'List registered workloads' } })
    .input(z.object({ namespace: namespaceName.optional() }))
    .output(z.object({ workloads: z.array(registeredWorkloadSchema) }))
    .query(async ({ ctx, input }) => ({ workloads: await ctx.app.registry.workloads(input.namespace) })),

  upsertWorkload: editorProcedure
    .meta({ openapi: { method: 'PUT', path: '/registry/workloads/{namespace}/{name}', tags: ['registry'], summary: 'Register or update a workload' } })
    .input(workloadSchema)
    .output(okOutput)
    .mutation(async ({ ctx, input }) => ({ revision: (await ctx.app.registry.upsertWorkload(input, ctx.principal)).revision.toString() })),

  deleteWorkload: editorProcedure
    .meta({ openapi: { method: 'DELETE', path: '/registry/workloads/{namespace}/{name}', tags: ['registry'], summary: 'Remove a workload' } })
    .input(ref)
    .output(okOutput)
    .mutation(async ({ ctx, input }) => ({ revision: (await ctx.app.registry.deleteWorkload(input.namespace, input.name, ctx.principal)).revision.toString() })),
});
