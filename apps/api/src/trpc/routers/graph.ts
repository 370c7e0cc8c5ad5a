import { z } from 'zod';
import { graphQuerySchema, graphResponseSchema, seriesQuerySchema, seriesResponseSchema, summaryQuerySchema, summaryResponseSchema } from '@tern/shared';
import { router, viewerProcedure } from '../trpc.ts';

// The service graph and golden-metric series from the telemetry rollups (docs/telemetry.md).

export const graphRouter = router({
  get: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/graph', tags: ['graph'], summary: 'Service graph: nodes, edges with rates, errors, latency percentiles, bytes and mTLS share' } })
    .input(graphQuerySchema)
    .output(graphResponseSchema)
    .query(({ ctx, input }) => ctx.app.telemetry.graph(input)),

  series: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/graph/series', tags: ['graph'], summary: 'Golden-metric time series for a service, a workload or an edge' } })
    .input(seriesQuerySchema)
    .output(seriesResponseSchema)
    .query(({ ctx, input }) => ctx.app.telemetry.series(input)),

  summary: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/graph/summary', tags: ['graph'], summary: 'Golden metrics per destination service or workload over a window, and for the whole mesh' } })
    .input(summaryQuerySchema)
    .output(summaryResponseSchema)
    .query(({ ctx, input }) => ctx.app.telemetry.summary(input)),

  /**
   * Live graph for the console (tRPC subscription over SSE: GET /api/trpc/graph.live?input=…):
   * the graph at once, then after every telemetry write, at most every `minIntervalSeconds`.
   */
  live: viewerProcedure
    .input(graphQuerySchema.extend({ minIntervalSeconds: z.number().int().min(1).max(300).default(5) }))
    .subscription(async function* ({ ctx, input, signal }) {
      const { minIntervalSeconds, ...query } = input;
      const telemetry = ctx.app.telemetry;
      let wake: (() => void) | undefined;
      let changed = true;
      const off = telemetry.ingest.onFlush(() => {
        changed = true;
        wake?.();
      });
      const aborted = new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
      try {
        while (!signal?.aborted) {
          if (changed) {
            changed = false;
            yield await telemetry.graph(query);
          }
          await Promise.race([aborted, new Promise<void>((r) => setTimeout(r, minIntervalSeconds * 1000).unref())]);
          if (!changed) await Promise.race([aborted, new Promise<void>((r) => (wake = r))]);
          wake = undefined;
        }
      } finally {
        off();
      }
    }),
});
