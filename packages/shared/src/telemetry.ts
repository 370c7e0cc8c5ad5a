import { z } from 'zod';
import { namespaceName } from './registry.ts';

// The service graph and golden-metric API shapes (docs/telemetry.md, docs/api.md).

export const GRAPH_WINDOWS = ['1m', '5m', '10m', '15m', '30m', '1h', '3h', '6h', '12h', '24h', '2d', '7d', '30d'] as const;
export const graphWindowSchema = z.enum(GRAPH_WINDOWS);
export type GraphWindow = z.infer<typeof graphWindowSchema>;

const WINDOW_SECONDS: Record<GraphWindow, number> = {
  '1m': 60, '5m': 300, '10m': 600, '15m': 900, '30m': 1800, '1h': 3600, '3h': 10800, '6h': 21600, '12h': 43200,
  '24h': 86400, '2d': 172800, '7d': 604800, '30d': 2592000,
};

export function windowSeconds(w: GraphWindow): number {
  return WINDOW_SECONDS[w];
}

export const graphGranularitySchema = z.enum(['service', 'workload', 'app']);
export type GraphGranularity = z.infer<typeof graphGranularitySchema>;

export const graphQuerySchema = z.object({
  namespace: namespaceName.optional().describe('Only edges with a source or destination in this namespace'),
  window: graphWindowSchema.default('10m').describe('How far back from now'),
  granularity: graphGranularitySchema.default('workload').describe('service: destinations are services; workload; app: versioned apps'),
});
export type GraphQuery = z.infer<typeof graphQuerySchema>;

export const nodeHealthSchema = z.enum(['healthy', 'degraded', 'failing', 'idle', 'na']);
export type NodeHealth = z.infer<typeof nodeHealthSchema>;

export const graphNodeSchema = z.object({
  id: z.string(),
  /** unknown = callers without identity; external = a destination without a sidecar (ServiceEntry, outside host); passthrough = original-destination traffic. */
  kind: z.enum(['workload', 'app', 'service', 'unknown', 'external', 'passthrough']),
  namespace: z.string(),
  name: z.string(),
  app: z.string().nullable(),
  version: z.string().nullable(),
  workload: z.string().nullable(),
  service: z.string().nullable(),
  health: nodeHealthSchema,
  /** Requests/s into and out of the node in the window. */
  inboundRps: z.number(),
  outboundRps: z.number(),
  /** Percentage (0-100) of inbound requests that failed. */
  errorPercent: z.number(),
});
export type GraphNode = z.infer<typeof graphNodeSchema>;

/** Golden metrics over a window: of an edge, a destination, or the whole mesh. */
const summaryStatsSchema = z.object({
  requests: z.number(),
  /** requests (TCP: connections closed) per second over the window. */
  rps: z.number(),
  errors: z.number(),
  errorPercent: z.number(),
  /** Latency percentiles in ms (Prometheus' histogram_quantile interpolation); null without HTTP/gRPC data. */
  p50: z.number().nullable(),
  p95: z.number().nullable(),
  p99: z.number().nullable(),
});
export type SummaryStats = z.infer<typeof summaryStatsSchema>;

export const graphEdgeSchema = summaryStatsSchema.extend({
  id: z.string(),
  source: z.string(),
  target: z.string(),
  protocol: z.enum(['http', 'grpc', 'tcp']),
  bytesIn: z.number(),
  bytesOut: z.number(),
  bytesPerSecond: z.number(),
  /** Share (0-1) of requests that travelled over mutual TLS. */
  mtlsShare: z.number(),
});
export type GraphEdge = z.infer<typeof graphEdgeSchema>;

export const graphResponseSchema = z.object({
  window: graphWindowSchema,
  granularity: graphGranularitySchema,
  namespace: z.string().nullable(),
  /** The time range the figures cover, and the rollup resolution used. */
  from: z.string(),
  to: z.string(),
  resolution: z.enum(['minute', 'hour']),
  nodes: z.array(graphNodeSchema),
  edges: z.array(graphEdgeSchema),
});
export type GraphResponse = z.infer<typeof graphResponseSchema>;

export const seriesQuerySchema = z
  .object({
    window: graphWindowSchema.default('1h'),
    service: z.string().min(1).max(253).optional().describe('Destination service FQDN (inbound traffic to it)'),
    workload: z.string().min(1).max(253).optional().describe('Workload name (with namespace)'),
    namespace: namespaceName.optional().describe('The workload’s namespace'),
    direction: z.enum(['inbound', 'outbound']).default('inbound').describe('For a workload: traffic it receives or sends'),
    sourceWorkload: z.string().min(1).max(253).optional().describe('An edge: the calling workload'),
    sourceNamespace: namespaceName.optional(),
  })
  .superRefine((v, ctx) => {
    if (!v.service && !v.workload) ctx.addIssue({ code: 'custom', path: ['service'], message: 'service or workload is required' });
    if (v.workload && !v.namespace) ctx.addIssue({ code: 'custom', path: ['namespace'], message: 'is required with workload' });
    if (v.sourceWorkload && !v.sourceNamespace) ctx.addIssue({ code: 'custom', path: ['sourceNamespace'], message: 'is required with sourceWorkload' });
  });
export type SeriesQuery = z.infer<typeof seriesQuerySchema>;

/** One step of a golden-metric series: an edge's figures over that step. */
export const seriesPointSchema = z
  .object({ t: z.string() })
  .extend(graphEdgeSchema.pick({ requests: true, rps: true, errors: true, errorPercent: true, p50: true, p95: true, p99: true, bytesIn: true, bytesOut: true, mtlsShare: true }).shape);
export type SeriesPoint = z.infer<typeof seriesPointSchema>;

export const seriesResponseSchema = z.object({
  window: graphWindowSchema,
  stepSeconds: z.number(),
  resolution: z.enum(['minute', 'hour']),
  points: z.array(seriesPointSchema),
});
export type SeriesResponse = z.infer<typeof seriesResponseSchema>;

/** Kiali's health thresholds on the error percentage of a node's inbound requests. */
export function healthOf(requests: number, errorPercent: number): NodeHealth {
  if (requests <= 0) return 'idle';
  if (errorPercent >= 10) return 'failing';
  if (errorPercent >= 0.1) return 'degraded';
  return 'healthy';
}


export const summaryQuerySchema = z.object({
  window: graphWindowSchema.default('5m'),
  namespace: namespaceName.optional().describe('Only destinations in this namespace'),
  by: z.enum(['service', 'workload']).default('service').describe('One row per destination service, or per destination workload'),
});
export type SummaryQuery = z.infer<typeof summaryQuerySchema>;

export const summaryRowSchema = summaryStatsSchema.extend({
  service: z.string(),
  namespace: z.string(),
  /** by = workload only (null for traffic no sidecar answered). */
  workload: z.string().nullable(),
  app: z.string().nullable(),
  version: z.string().nullable(),
  health: nodeHealthSchema,
});
export type SummaryRow = z.infer<typeof summaryRowSchema>;

/** Percentiles need summed histograms, which neither the graph's nodes nor per-edge figures give: the console's lists and overview read this. */
export const summaryResponseSchema = z.object({
  window: graphWindowSchema,
  from: z.string(),
  to: z.string(),
  resolution: z.enum(['minute', 'hour']),
  total: summaryStatsSchema,
  rows: z.array(summaryRowSchema),
});
export type SummaryResponse = z.infer<typeof summaryResponseSchema>;
