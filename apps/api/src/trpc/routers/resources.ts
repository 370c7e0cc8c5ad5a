import { z } from 'zod';
import { applyResultSchema, diagnosticSchema, storedResourceSchema, toYaml } from '@tern/shared';
import { editorProcedure, router, viewerProcedure } from '../trpc.ts';
import { parseDocuments, parseRefs } from '../../policy/documents.ts';
import { kindParam, namespaceParam, nameParam, toKind } from './params.ts';
import { ValidationError } from '../../errors.ts';
import type { WriteOutcome } from '../../store/writer.ts';

const documentsInput = {
  yaml: z.string().optional().describe('One or more YAML documents, exactly as `kubectl apply -f` takes them'),
  resources: z.array(z.unknown()).max(1000).optional().describe('Resources as JSON objects'),
  namespace: namespaceParam.optional().describe('Namespace for documents that name none'),
  dryRun: z.boolean().optional().describe('Validate and report without writing'),
};

const writeOutput = z.object({
  results: z.array(applyResultSchema),
  revision: z.string(),
  dryRun: z.boolean(),
});

const outcome = (o: WriteOutcome) => ({ results: o.results, revision: o.revision.toString(), dryRun: o.dryRun });

const refInput = z.object({ kind: kindParam, namespace: namespaceParam, name: nameParam });

export const resourcesRouter = router({
  list: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/resources', tags: ['resources'], summary: 'List policy resources' } })
    .input(z.object({ kind: kindParam.optional(), namespace: namespaceParam.optional() }))
    .output(z.object({ items: z.array(storedResourceSchema), revision: z.string() }))
    .query(async ({ ctx, input }) => {
      const [items, revision] = await Promise.all([
        ctx.app.resources.list({ kind: input.kind ? toKind(input.kind) : undefined, namespace: input.namespace }),
        ctx.app.resources.currentRevision(),
      ]);
      return { items, revision };
    }),

  get: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/resources/{kind}/{namespace}/{name}', tags: ['resources'], summary: 'Get one resource' } })
    .input(refInput)
    .output(storedResourceSchema)
    .query(({ ctx, input }) => ctx.app.resources.get(toKind(input.kind), input.namespace, input.name)),

  applyDocuments: editorProcedure
    .meta({ openapi: { method: 'POST', path: '/apply', tags: ['resources'], summary: 'Create or update resources (multi-document YAML or JSON), all or nothing' } })
    .input(z.object({ ...documentsInput, mode: z.enum(['apply', 'create', 'update']).default('apply') }))
    .output(writeOutput)
    .mutation(async ({ ctx, input }) => outcome(await ctx.app.resources.apply(parseDocuments(input), input.mode, ctx.principal, { dryRun: input.dryRun ?? false }))),

  replace: editorProcedure
    .meta({ openapi: { method: 'PUT', path: '/resources/{kind}/{namespace}/{name}', tags: ['resources'], summary: 'Replace one resource; send metadata.resourceVersion to guard against concurrent edits' } })
    .input(refInput.extend({ resource: z.record(z.string(), z.unknown()), dryRun: z.boolean().optional() }))
    .output(writeOutput)
    .mutation(async ({ ctx, input }) => {
      const [item] = parseDocuments({ resources: [input.resource], namespace: input.namespace });
      const o = item!.object;
      if (o.kind !== toKind(input.kind) || o.metadata.name !== input.name) {
        throw new ValidationError('the resource does not match the URL', [
          { path: 'resource.metadata.name', rule: 'path_mismatch', message: `the body is ${o.kind} ${o.metadata.name}, the URL names ${toKind(input.kind)} ${input.name}` },
        ]);
      }
      return outcome(await ctx.app.resources.apply([item!], 'update', ctx.principal, { dryRun: input.dryRun ?? false }));
    }),

  delete: editorProcedure
    .meta({ openapi: { method: 'DELETE', path: '/resources/{kind}/{namespace}/{name}', tags: ['resources'], summary: 'Delete one resource' } })
    .input(refInput.extend({ resourceVersion: z.string().regex(/^\d+$/).optional(), dryRun: z.boolean().optional() }))
    .output(writeOutput)
    .mutation(async ({ ctx, input }) =>
      outcome(await ctx.app.resources.delete([{ ...input, kind: toKind(input.kind) }], ctx.principal, { dryRun: input.dryRun ?? false })),
    ),

  deleteDocuments: editorProcedure
    .meta({ openapi: { method: 'POST', path: '/delete', tags: ['resources'], summary: 'Delete the resources named in YAML/JSON documents (like kubectl delete -f), all or nothing' } })
    .input(z.object(documentsInput))
    .output(writeOutput)
    .mutation(async ({ ctx, input }) => {
      return outcome(await ctx.app.resources.delete(parseRefs(input), ctx.principal, { dryRun: input.dryRun ?? false }));
    }),

  export: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/export', tags: ['resources'], summary: 'Export resources as multi-document YAML, ready to apply elsewhere' } })
    .input(z.object({ kind: kindParam.optional(), namespace: namespaceParam.optional() }))
    .output(z.object({ yaml: z.string(), count: z.number().int() }))
    .query(async ({ ctx, input }) => {
      const items = await ctx.app.resources.list({ kind: input.kind ? toKind(input.kind) : undefined, namespace: input.namespace });
      const clean = items.map((r) => ({
        apiVersion: r.apiVersion,
        kind: r.kind,
        metadata: {
          name: r.metadata.name,
          namespace: r.metadata.namespace,
          ...(r.metadata.labels ? { labels: r.metadata.labels } : {}),
          ...(r.metadata.annotations ? { annotations: r.metadata.annotations } : {}),
        },
        spec: r.spec,
      }));
      return { yaml: toYaml(clean), count: clean.length };
    }),

  analyze: viewerProcedure
    .meta({ openapi: { method: 'POST', path: '/analyze', tags: ['analysis'], summary: 'Analyse the mesh, optionally with documents applied on top (nothing is written)' } })
    .input(z.object({ yaml: documentsInput.yaml, resources: documentsInput.resources, namespace: documentsInput.namespace }))
    .output(z.object({ diagnostics: z.array(diagnosticSchema), revision: z.string() }))
    .mutation(async ({ ctx, input }) => {
      const withFiles = input.yaml !== undefined || input.resources !== undefined;
      const items = withFiles ? parseDocuments(input) : [];
      const o = await ctx.app.resources.apply(items, 'apply', ctx.principal, { dryRun: true, enforce: false });
      return { diagnostics: o.diagnostics, revision: o.revision.toString() };
    }),
});
