import { healthOf, windowSeconds, type GraphQuery, type GraphResponse, type GraphWindow, type SeriesPoint, type SeriesQuery, type SeriesResponse, type SummaryQuery, type SummaryResponse, type SummaryRow, type SummaryStats } from '@tern/shared';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { buildGraph, type EdgeAggregate } from './graph.ts';
import { quantile } from './quantile.ts';
import { BUCKETS } from './rows.ts';
import { D_COLUMNS } from './store.ts';

// Reads for the graph API: which rollup table covers a window, then one aggregate query.

const MINUTE = 60_000;
const HOUR = 3_600_000;

export interface WindowPlan {
  resolution: 'minute' | 'hour';
  from: number;
  to: number;
  /** SQL for the rows in the window (parameters $1 = from, $2 = hour boundary). */
  source: string;
  params: Date[];
}

/**
 * Windows within the minute retention read minutes (from the minute holding now - window, so the
 * window is covered whole); longer ones read hours up to the current hour plus the current hour's
 * minutes, which the hour rows may not have caught up with yet.
 */
export function planWindow(window: GraphWindow, now: number, minuteRetentionHours: number): WindowPlan {
  const w = windowSeconds(window) * 1000;
  if (w <= minuteRetentionHours * HOUR) {
    const from = Math.floor((now - w) / MINUTE) * MINUTE;
    return { resolution: 'minute', from, to: now, source: `SELECT * FROM "TelemetryMinute" WHERE "bucket" >= $1::timestamptz`, params: [new Date(from)] };
  }
  const from = Math.floor((now - w) / HOUR) * HOUR;
  const hourNow = Math.floor(now / HOUR) * HOUR;
  return {
    resolution: 'hour',
    from,
    to: now,
    source: `SELECT * FROM "TelemetryHour" WHERE "bucket" >= $1::timestamptz AND "bucket" < $2::timestamptz UNION ALL SELECT * FROM "TelemetryMinute" WHERE "bucket" >= $2::timestamptz`,
    params: [new Date(from), new Date(hourNow)],
  };
}

const SUMS = [
  `sum("requests")::float8 AS "requests"`,
  `sum("errors")::float8 AS "errors"`,
  `sum("bytesIn")::float8 AS "bytesIn"`,
  `sum("bytesOut")::float8 AS "bytesOut"`,
  // One array column instead of twenty: row conversion dominates once the SQL is fast.
  `ARRAY[${D_COLUMNS.map((c) => `sum("${c}")`).join(', ')}]::float8[] AS "d"`,
].join(', ');

const EDGE_COLUMNS = ['srcWorkload', 'srcNamespace', 'srcApp', 'srcVersion', 'dstService', 'dstWorkload', 'dstNamespace', 'dstApp', 'dstVersion', 'protocol', 'mtls'].map((c) => `e."${c}"`).join(', ');

type Row = Record<string, unknown>;

function histogramOf(r: Row): number[] {
  const raw = r.d as unknown[] | undefined;
  const d = new Array<number>(BUCKETS);
  for (let i = 0; i < BUCKETS; i++) d[i] = Number(raw?.[i] ?? 0);
  return d;
}

export interface QueryOptions {
  minuteRetentionHours: number;
  domainSuffix: string;
  now?: number;
}

export async function queryGraph(prisma: PrismaClient, input: GraphQuery, o: QueryOptions): Promise<GraphResponse> {
  const plan = planWindow(input.window, o.now ?? Date.now(), o.minuteRetentionHours);
  const params: unknown[] = [...plan.params];
  let where = '';
  if (input.namespace) {
    params.push(input.namespace);
    where = `WHERE "edgeId" IN (SELECT "id" FROM "TelemetryEdge" WHERE "srcNamespace" = $${params.length} OR "dstNamespace" = $${params.length})`;
  }
  // Sum per edge id (one integer to group by), then name the edges.
  const rows = await prisma.$queryRawUnsafe<Row[]>(
    `SELECT ${EDGE_COLUMNS}, a.* FROM (SELECT "edgeId", ${SUMS} FROM (${plan.source}) x ${where} GROUP BY "edgeId") a JOIN "TelemetryEdge" e ON e."id" = a."edgeId"`,
    ...params,
  );
  const aggregates: EdgeAggregate[] = rows.map((r) => ({
    srcWorkload: String(r.srcWorkload),
    srcNamespace: String(r.srcNamespace),
    srcApp: String(r.srcApp),
    srcVersion: String(r.srcVersion),
    dstService: String(r.dstService),
    dstWorkload: String(r.dstWorkload),
    dstNamespace: String(r.dstNamespace),
    dstApp: String(r.dstApp),
    dstVersion: String(r.dstVersion),
    protocol: String(r.protocol),
    requests: Number(r.requests),
    errors: Number(r.errors),
    mtlsRequests: r.mtls === true ? Number(r.requests) : 0,
    bytesIn: Number(r.bytesIn),
    bytesOut: Number(r.bytesOut),
    d: histogramOf(r),
  }));
  const seconds = (plan.to - plan.from) / 1000;
  const { nodes, edges } = buildGraph(aggregates, input.granularity, seconds, o.domainSuffix);
  return {
    window: input.window,
    granularity: input.granularity,
    namespace: input.namespace ?? null,
    from: new Date(plan.from).toISOString(),
    to: new Date(plan.to).toISOString(),
    resolution: plan.resolution,
    nodes,
    edges,
  };
}

/** About 60 points per chart, never finer than the rollups. */
export function stepFor(window: GraphWindow, resolution: 'minute' | 'hour'): number {
  const unit = resolution === 'minute' ? 60 : 3600;
  return Math.max(1, Math.ceil(windowSeconds(window) / 60 / unit)) * unit;
}

export async function querySeries(prisma: PrismaClient, input: SeriesQuery, o: QueryOptions): Promise<SeriesResponse> {
  const now = o.now ?? Date.now();
  const plan = planWindow(input.window, now, o.minuteRetentionHours);
  const step = stepFor(input.window, plan.resolution);
  const params: unknown[] = [...plan.params];
  const conds: string[] = [];
  const eq = (col: string, v: string) => {
    params.push(v);
    conds.push(`e."${col}" = $${params.length}`);
  };
  if (input.service) eq('dstService', input.service);
  if (input.workload && input.namespace) {
    if (input.direction === 'outbound') {
      eq('srcWorkload', input.workload);
      eq('srcNamespace', input.namespace);
    } else {
      eq('dstWorkload', input.workload);
      eq('dstNamespace', input.namespace);
    }
  }
  if (input.sourceWorkload && input.sourceNamespace) {
    eq('srcWorkload', input.sourceWorkload);
    eq('srcNamespace', input.sourceNamespace);
  }
  params.push(step);
  const stepParam = `$${params.length}`;
  const rows = await prisma.$queryRawUnsafe<Row[]>(
    `SELECT (floor(extract(epoch from x."bucket") / ${stepParam}::float8) * ${stepParam}::float8)::float8 AS "t", ${SUMS},
            sum(CASE WHEN e."mtls" THEN x."requests" ELSE 0 END)::float8 AS "mtlsRequests"
     FROM (${plan.source}) x JOIN "TelemetryEdge" e ON e."id" = x."edgeId" ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} GROUP BY 1 ORDER BY 1`,
    ...params,
  );
  const byT = new Map<number, Row>(rows.map((r) => [Number(r.t), r]));
  const points: SeriesPoint[] = [];
  const first = Math.floor(plan.from / 1000 / step) * step;
  for (let t = first; t * 1000 <= plan.to; t += step) {
    const r = byT.get(t);
    const requests = r ? Number(r.requests) : 0;
    const errors = r ? Number(r.errors) : 0;
    const d = r ? histogramOf(r) : new Array<number>(BUCKETS).fill(0);
    // The last point covers only up to now.
    const covered = Math.max(1, Math.min(step, (plan.to - t * 1000) / 1000));
    points.push({
      t: new Date(t * 1000).toISOString(),
      requests,
      rps: requests / covered,
      errors,
      errorPercent: requests > 0 ? (errors / requests) * 100 : 0,
      p50: quantile(0.5, d),
      p95: quantile(0.95, d),
      p99: quantile(0.99, d),
      bytesIn: r ? Number(r.bytesIn) : 0,
      bytesOut: r ? Number(r.bytesOut) : 0,
      mtlsShare: requests > 0 && r ? Number(r.mtlsRequests) / requests : 0,
    });
  }
  return { window: input.window, stepSeconds: step, resolution: plan.resolution, points };
}

function statsOf(requests: number, errors: number, d: number[], seconds: number): SummaryStats {
  return {
    requests,
    rps: requests / Math.max(1, seconds),
    errors,
    errorPercent: requests > 0 ? (errors / requests) * 100 : 0,
    p50: quantile(0.5, d),
    p95: quantile(0.95, d),
    p99: quantile(0.99, d),
  };
}

/**
 * Golden metrics per destination service (or per destination workload) over a window, plus the
 * mesh-wide total: percentiles need the summed histograms, which neither the graph's nodes nor
 * per-edge percentiles can give the console.
 */
export async function querySummary(prisma: PrismaClient, input: SummaryQuery, o: QueryOptions): Promise<SummaryResponse> {
  const plan = planWindow(input.window, o.now ?? Date.now(), o.minuteRetentionHours);
  const params: unknown[] = [...plan.params];
  let where = '';
  if (input.namespace) {
    params.push(input.namespace);
    where = `WHERE e."dstNamespace" = $${params.length}`;
  }
  const keys = input.by === 'workload' ? ['dstService', 'dstNamespace', 'dstWorkload', 'dstApp', 'dstVersion'] : ['dstService', 'dstNamespace'];
  const cols = keys.map((k) => `e."${k}"`).join(', ');
  const rows = await prisma.$queryRawUnsafe<Row[]>(
    `SELECT ${cols}, ${SUMS} FROM (${plan.source}) x JOIN "TelemetryEdge" e ON e."id" = x."edgeId" ${where} GROUP BY ${cols}`,
    ...params,
  );
  const seconds = (plan.to - plan.from) / 1000;
  const totalD = new Array<number>(BUCKETS).fill(0);
  let totalReq = 0;
  let totalErr = 0;
  const out: SummaryRow[] = rows.map((r) => {
    const d = histogramOf(r);
    const requests = Number(r.requests);
    const errors = Number(r.errors);
    totalReq += requests;
    totalErr += errors;
    for (let i = 0; i < BUCKETS; i++) totalD[i]! += d[i]!;
    const s = statsOf(requests, errors, d, seconds);
    const known = (v: unknown) => (v === undefined || v === 'unknown' ? null : String(v));
    return {
      service: String(r.dstService),
      namespace: String(r.dstNamespace),
      workload: known(r.dstWorkload),
      app: known(r.dstApp),
      version: known(r.dstVersion),
      ...s,
      health: healthOf(requests, s.errorPercent),
    };
  });
  out.sort((a, b) => a.service.localeCompare(b.service) || (a.workload ?? '').localeCompare(b.workload ?? ''));
  return {
    window: input.window,
    from: new Date(plan.from).toISOString(),
    to: new Date(plan.to).toISOString(),
    resolution: plan.resolution,
    total: statsOf(totalReq, totalErr, totalD, seconds),
    rows: out,
  };
}
