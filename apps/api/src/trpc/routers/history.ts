import { z } from 'zod';
import { tracked } from '@trpc/server';
import { applyResultSchema, auditEventSchema, changeEventSchema, revisionSchema, type ChangeEvent } from '@tern/shared';
import { editorProcedure, router, viewerProcedure } from '../trpc.ts';
import { kindParam, namespaceParam, nameParam, toKind } from './params.ts';

const refInput = z.object({ kind: kindParam, namespace: namespaceParam, name: nameParam });
const revisionParam = z.string().regex(/^\d{1,19}$/, 'must be a revision number');

export const historyRouter = router({
  list: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/history/{kind}/{namespace}/{name}', tags: ['history'], summary: 'Revisions of one resource, newest first' } })
    .input(refInput.extend({ limit: z.coerce.number().int().min(1).max(1000).default(100) }))
    .output(z.object({ revisions: z.array(revisionSchema) }))
    .query(async ({ ctx, input }) => ({ revisions: await ctx.app.resources.history({ ...input, kind: toKind(input.kind) }, input.limit) })),

  rollback: editorProcedure
    .meta({ openapi: { method: 'POST', path: '/rollback', tags: ['history'], summary: 'Make a resource what it was at an earlier revision' } })
    .input(refInput.extend({ toRevision: revisionParam, resourceVersion: revisionParam.optional() }))
    .output(z.object({ results: z.array(applyResultSchema), revision: z.string() }))
    .mutation(async ({ ctx, input }) => {
      const o = await ctx.app.resources.rollback({ ...input, kind: toKind(input.kind) }, input.toRevision, ctx.principal);
      return { results: o.results, revision: o.revision.toString() };
    }),

  changes: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/changes', tags: ['history'], summary: 'The change log after a revision, oldest first' } })
    .input(z.object({ since: revisionParam.default('0'), limit: z.coerce.number().int().min(1).max(1000).default(500) }))
    .output(z.object({ changes: z.array(changeEventSchema), revision: z.string() }))
    .query(async ({ ctx, input }) => {
      const [changes, revision] = await Promise.all([ctx.app.resources.changesSince(input.since, input.limit), ctx.app.resources.currentRevision()]);
      return { changes, revision };
    }),

  /** Live change events (server-sent events over tRPC), after catching up from `since`. */
  watch: viewerProcedure.input(z.object({ since: revisionParam.optional() }).optional()).subscription(async function* ({ ctx, input, signal }) {
    const pending: ChangeEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = ctx.app.changes.subscribe((e) => {
      pending.push(e);
      wake?.();
    });
    try {
      let last = BigInt(input?.since ?? ctx.app.changes.revision);
      if (input?.since) {
        for (const e of await ctx.app.resources.changesSince(input.since, 1000)) {
          last = BigInt(e.revision);
          yield tracked(e.revision, e);
        }
      }
      while (!signal?.aborted) {
        const e = pending.shift();
        if (!e) {
          await new Promise<void>((r) => {
            wake = r;
            signal?.addEventListener('abort', () => r(), { once: true });
          });
          wake = undefined;
          continue;
        }
        if (BigInt(e.revision) <= last) continue;
        last = BigInt(e.revision);
        yield tracked(e.revision, e);
      }
    } finally {
      unsubscribe();
    }
  }),

  audit: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/audit', tags: ['audit'], summary: 'Audit events, newest first' } })
    .input(
      z.object({
        limit: z.coerce.number().int().min(1).max(500).default(100),
        before: revisionParam.optional().describe('Cursor: return events older than this id'),
        actor: z.string().max(300).optional(),
        kind: z.string().max(64).optional(),
        namespace: namespaceParam.optional(),
        name: nameParam.optional(),
      }),
    )
    .output(z.object({ events: z.array(auditEventSchema), nextCursor: z.string().nullable() }))
    .query(({ ctx, input }) => ctx.app.audit.list(input)),
});
