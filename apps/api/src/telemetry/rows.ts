import { createHash } from 'node:crypto';
import { TELEMETRY_DURATION_BOUNDS, type TelemetryHttpSeries, type TelemetryLabels, type TelemetryTcpSeries } from '@tern/xds';

// Pure pieces of ingest: which reported series the graph keeps, the rollup key of a series, and
// the per-series values whose deltas are added to the rollups.

/** Histogram buckets per row: Istio's bounds plus +Inf. */
export const BUCKETS = TELEMETRY_DURATION_BOUNDS.length + 1;

export const KEY_COLUMNS = [
  'srcWorkload', 'srcNamespace', 'srcPrincipal', 'srcApp', 'srcVersion',
  'dstService', 'dstWorkload', 'dstNamespace', 'dstApp', 'dstVersion',
  'codeClass', 'protocol', 'mtls',
] as const;

export interface RollupKey {
  srcWorkload: string;
  srcNamespace: string;
  srcPrincipal: string;
  srcApp: string;
  srcVersion: string;
  dstService: string;
  dstWorkload: string;
  dstNamespace: string;
  dstApp: string;
  dstVersion: string;
  codeClass: string;
  protocol: string;
  mtls: boolean;
}

/** Additive values of a rollup row. */
export interface RollupValues {
  requests: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  durationSumMs: number;
  /** BUCKETS non-cumulative counts. */
  d: number[];
}

export interface RollupRow extends RollupKey, RollupValues {
  /** Start of the minute (or hour). */
  bucket: Date;
}

const UNKNOWN = 'unknown';

/**
 * Destination-reported series describe every request that reached a sidecar; source-reported ones
 * are kept only where no destination sidecar answered (destination workload unknown: an external
 * host, a ServiceEntry, passthrough, or a failure before the destination), so no request is
 * counted twice.
 */
export function keepSeries(l: TelemetryLabels): boolean {
  return l.reporter === 'destination' || (l.reporter === 'source' && (l.destination_workload === UNKNOWN || l.destination_workload === ''));
}

export function codeClass(code: number): string {
  if (!Number.isFinite(code) || code < 100 || code > 599) return '0xx';
  return `${Math.floor(code / 100)}xx`;
}

/** Kiali's notion of an error: 5xx or no response; for gRPC a non-OK grpc-status. */
export function isError(protocol: string, code: number, grpcStatus: number): boolean {
  if (protocol === 'grpc' && grpcStatus > 0) return true;
  return code === 0 || code >= 500;
}

function baseKey(l: TelemetryLabels): Omit<RollupKey, 'codeClass' | 'protocol'> {
  const v = (s: string | undefined) => (s ? s : UNKNOWN);
  return {
    srcWorkload: v(l.source_workload),
    srcNamespace: v(l.source_workload_namespace),
    srcPrincipal: v(l.source_principal),
    srcApp: v(l.source_app),
    srcVersion: v(l.source_version),
    dstService: v(l.destination_service),
    dstWorkload: v(l.destination_workload),
    dstNamespace: l.destination_workload_namespace && l.destination_workload_namespace !== UNKNOWN ? l.destination_workload_namespace : v(l.destination_service_namespace),
    dstApp: v(l.destination_app),
    dstVersion: v(l.destination_version),
    mtls: l.connection_security_policy === 'mutual_tls',
  };
}

export function httpKey(l: TelemetryLabels, s: TelemetryHttpSeries): RollupKey {
  return { ...baseKey(l), codeClass: codeClass(s.c), protocol: s.p };
}

export function tcpKey(l: TelemetryLabels): RollupKey {
  return { ...baseKey(l), codeClass: 'tcp', protocol: 'tcp' };
}

export function rowKeyString(k: RollupKey): string {
  return `${k.srcWorkload}\u0001${k.srcNamespace}\u0001${k.srcPrincipal}\u0001${k.srcApp}\u0001${k.srcVersion}\u0001${k.dstService}\u0001${k.dstWorkload}\u0001${k.dstNamespace}\u0001${k.dstApp}\u0001${k.dstVersion}\u0001${k.codeClass}\u0001${k.protocol}\u0001${k.mtls ? 1 : 0}`;
}

/**
 * Identity of a reported series across reports of one boot (labels + outcome), hashed: cursors
 * are stored per proxy on every flush, and 16 characters per series instead of ~300 keeps that
 * write small (96 bits: collisions are not a practical concern).
 */
export function httpSeriesKey(l: TelemetryLabels, s: TelemetryHttpSeries): string {
  return hashKey(`h\u0001${labelsKey(l)}\u0001${s.p}\u0001${s.c}\u0001${s.f}\u0001${s.g}`);
}

export function tcpSeriesKey(l: TelemetryLabels, s: TelemetryTcpSeries): string {
  return hashKey(`t\u0001${labelsKey(l)}\u0001${s.f}`);
}

function hashKey(k: string): string {
  return createHash('sha1').update(k).digest('base64url').slice(0, 16);
}

function labelsKey(l: TelemetryLabels): string {
  return [
    l.reporter, l.source_workload, l.source_workload_namespace, l.source_principal, l.source_app, l.source_version,
    l.destination_workload, l.destination_workload_namespace, l.destination_principal, l.destination_app, l.destination_version,
    l.destination_service, l.destination_service_name, l.destination_service_namespace, l.connection_security_policy,
  ].join('\u0001');
}

/** Cumulative values of an HTTP series as stored in the cursor: [n, ds, rq, rs, ...d]. */
export function httpValues(s: TelemetryHttpSeries): number[] {
  return [s.n, s.ds, s.rq, s.rs, ...s.d];
}

/** [opened, closed, sent, received]. */
export function tcpValues(s: TelemetryTcpSeries): number[] {
  return [s.opened, s.closed, s.sent, s.received];
}

/**
 * What happened since `prev` (undefined: nothing seen of this boot). A value that went down means
 * the counters restarted without a new boot id: then the current value is the delta.
 */
export function delta(cur: number[], prev: number[] | undefined): number[] {
  if (!prev || prev.length !== cur.length) return cur.slice();
  const out = new Array<number>(cur.length);
  for (let i = 0; i < cur.length; i++) {
    const d = cur[i]! - prev[i]!;
    if (d < 0) return cur.slice();
    out[i] = d;
  }
  return out;
}

export function emptyValues(): RollupValues {
  return { requests: 0, errors: 0, bytesIn: 0, bytesOut: 0, durationSumMs: 0, d: new Array<number>(BUCKETS).fill(0) };
}

export function addValues(into: RollupValues, v: RollupValues): void {
  into.requests += v.requests;
  into.errors += v.errors;
  into.bytesIn += v.bytesIn;
  into.bytesOut += v.bytesOut;
  into.durationSumMs += v.durationSumMs;
  for (let i = 0; i < BUCKETS; i++) into.d[i]! += v.d[i] ?? 0;
}

export function minuteOf(ms: number): Date {
  return new Date(Math.floor(ms / 60000) * 60000);
}
