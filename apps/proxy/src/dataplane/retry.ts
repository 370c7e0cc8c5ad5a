/**
 * Envoy's router retry logic (RetryStateImpl), as pure decisions the exchange asks about: is this
 * response / this failure retriable under the route's retry_on, how long to back off, and the
 * per-cluster retry counters shown on /stats.
 *
 * Conditions (envoy.config.route.v3.RetryPolicy.retry_on, Envoy's meaning):
 * - `5xx`: any 5xx response, and any reset / connect failure / per-try timeout (no response);
 * - `gateway-error`: 502, 503, 504 responses, and the same failures as 5xx;
 * - `reset`: the upstream did not answer (disconnect, reset, per-try timeout);
 * - `connect-failure`: the connection could not be made (UF);
 * - `refused-stream`: the HTTP/2 stream was refused (REFUSED_STREAM);
 * - `retriable-4xx`: 409;
 * - `retriable-status-codes`: a status listed in retriable_status_codes;
 * - gRPC (grpc-status of a headers-only response): `cancelled` 1, `deadline-exceeded` 4,
 *   `resource-exhausted` 8, `internal` 13, `unavailable` 14.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { RetryPolicy } from '../config/model.ts';

/** Why an attempt failed before any response: Envoy's response flag for it, or 'UT' for a per-try timeout. */
export type FailureKind = 'UF' | 'UC' | 'UR' | 'UPE' | 'UT' | 'REFUSED';

const GRPC_CONDITIONS: ReadonlyMap<string, number> = new Map([
  ['cancelled', 1],
  ['deadline-exceeded', 4],
  ['resource-exhausted', 8],
  ['internal', 13],
  ['unavailable', 14],
]);

/** A route's retry policy, pre-digested once per policy object (snapshots are immutable). */
export interface RetryPlan {
  readonly policy: RetryPolicy;
  readonly on5xx: boolean;
  readonly onGatewayError: boolean;
  readonly onReset: boolean;
  readonly onConnectFailure: boolean;
  readonly onRefusedStream: boolean;
  readonly on4xx: boolean;
  readonly onStatusCodes: boolean;
  /** gRPC statuses that are retried. */
  readonly grpcStatuses: ReadonlySet<number>;
  readonly previousHosts: boolean;
  /** Any condition that looks at response headers at all. */
  readonly onHeaders: boolean;
}

const plans = new WeakMap<RetryPolicy, RetryPlan | null>();

/** The plan for a policy, or undefined when it can never retry (no retries or no conditions). */
export function retryPlan(policy: RetryPolicy | undefined): RetryPlan | undefined {
  if (policy === undefined) return undefined;
  let p = plans.get(policy);
  if (p === undefined) {
    const on = policy.retryOn;
    const grpcStatuses = new Set<number>();
    for (const [name, code] of GRPC_CONDITIONS) if (on.has(name)) grpcStatuses.add(code);
    const plan: RetryPlan = {
      policy,
      on5xx: on.has('5xx'),
      onGatewayError: on.has('gateway-error'),
      onReset: on.has('reset') || on.has('reset-before-request'),
      onConnectFailure: on.has('connect-failure'),
      onRefusedStream: on.has('refused-stream'),
      on4xx: on.has('retriable-4xx'),
      onStatusCodes: on.has('retriable-status-codes') && policy.retriableStatusCodes.size > 0,
      grpcStatuses,
      previousHosts: policy.hostPredicates.includes('envoy.retry_host_predicates.previous_hosts'),
      onHeaders: false,
    };
    (plan as { onHeaders: boolean }).onHeaders = plan.on5xx || plan.onGatewayError || plan.on4xx || plan.onStatusCodes || grpcStatuses.size > 0;
    const useful = policy.numRetries > 0 && (plan.onHeaders || plan.onReset || plan.onConnectFailure || plan.onRefusedStream);
    p = useful ? plan : null;
    plans.set(policy, p);
  }
  return p ?? undefined;
}

/**
 * Whether a response (its status, and for gRPC its headers-only grpc-status) is retriable.
 * `grpc`: the request is a gRPC call.
 */
export function retriableResponse(plan: RetryPlan, status: number, headers: IncomingHttpHeaders, grpc: boolean): boolean {
  // An upstream saying it is overloaded or rate limited is not retried (Envoy).
  if (headers['x-envoy-overloaded'] !== undefined || headers['x-envoy-ratelimited'] !== undefined) return false;
  if (plan.on5xx && status >= 500 && status < 600) return true;
  if (plan.onGatewayError && (status === 502 || status === 503 || status === 504)) return true;
  if (plan.on4xx && status === 409) return true;
  if (plan.onStatusCodes && plan.policy.retriableStatusCodes.has(status)) return true;
  if (grpc && plan.grpcStatuses.size > 0) {
    const gs = headers['grpc-status'];
    if (gs !== undefined && plan.grpcStatuses.has(Number(gs))) return true;
  }
  return false;
}

/** Whether a failure before any response is retriable (Envoy's wouldRetryFromReset). */
export function retriableFailure(plan: RetryPlan, kind: FailureKind): boolean {
  if (kind === 'UPE') return plan.on5xx || plan.onGatewayError;
  // Envoy counts an upstream reset as a "5xx" (it would become one).
  if (plan.on5xx || plan.onGatewayError || plan.onReset) return true;
  if (kind === 'UF') return plan.onConnectFailure;
  if (kind === 'REFUSED') return plan.onRefusedStream;
  return false;
}

/**
 * Envoy's JitteredExponentialBackOffStrategy: the n-th retry waits a uniformly random time in
 * [0, min(base * 2^(n-1), max)) ("full jitter").
 */
export function backoffMs(plan: RetryPlan, retryNumber: number, random: () => number = Math.random): number {
  const base = plan.policy.backOffBaseMs;
  const max = plan.policy.backOffMaxMs;
  const interval = Math.min(base * 2 ** Math.min(retryNumber - 1, 30), max);
  return Math.floor(random() * interval);
}

/** Per-cluster retry counters (Envoy's cluster.<name>.upstream_rq_retry* stats). */
export interface RetryCounters {
  /** Retries started. */
  upstream_rq_retry: number;
  /** Requests that succeeded after at least one retry. */
  upstream_rq_retry_success: number;
  /** Requests that ended with a retriable failure because num_retries was used up (URX). */
  upstream_rq_retry_limit_exceeded: number;
  /** Retries not started because the request body was beyond the replay buffer. */
  retry_or_shadow_abandoned: number;
}

const counters = new WeakMap<object, Map<string, RetryCounters>>();

/** The counters of one cluster, owned by an engine (any object identifying it). */
export function retryCounters(owner: object, cluster: string): RetryCounters {
  let byName = counters.get(owner);
  if (!byName) counters.set(owner, (byName = new Map()));
  let c = byName.get(cluster);
  if (!c) byName.set(cluster, (c = { upstream_rq_retry: 0, upstream_rq_retry_success: 0, upstream_rq_retry_limit_exceeded: 0, retry_or_shadow_abandoned: 0 }));
  return c;
}

/** Every cluster's counters, for /stats: `cluster.<name>.<counter>: value` lines. */
export function retryStatsText(owner: object): string {
  const byName = counters.get(owner);
  if (!byName) return '';
  let s = '';
  for (const [name, c] of byName) for (const k in c) s += `cluster.${name}.${k}: ${c[k as keyof RetryCounters]}\n`;
  return s;
}

/** The same counters in Prometheus form (envoy_cluster_<counter>{cluster_name="…"}). */
export function retryStatsPrometheus(owner: object): string {
  const byName = counters.get(owner);
  if (!byName || byName.size === 0) return '';
  let s = '';
  for (const k of ['upstream_rq_retry', 'upstream_rq_retry_success', 'upstream_rq_retry_limit_exceeded', 'retry_or_shadow_abandoned'] as const) {
    s += `# TYPE envoy_cluster_${k} counter\n`;
    for (const [name, c] of byName) s += `envoy_cluster_${k}{cluster_name="${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"} ${c[k]}\n`;
  }
  return s;
}

/**
 * grpc-timeout (gRPC over HTTP/2): up to 8 digits and a unit H M S m u n. Undefined when
 * absent or malformed (then it is ignored, as Envoy does).
 */
export function parseGrpcTimeout(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H': return n * 3_600_000;
    case 'M': return n * 60_000;
    case 'S': return n * 1000;
    case 'm': return n;
    case 'u': return Math.ceil(n / 1000);
    default: return Math.ceil(n / 1_000_000);
  }
}

/**
 * Request bodies are kept for replay up to this many bytes (Envoy buffers up to the listener's
 * per_connection_buffer_limit_bytes, 1 MiB by default; a sidecar keeps less). A longer body streams
 * on and the request is no longer retried.
 */
export const REPLAY_LIMIT = 64 * 1024;

/** One request's retry state (allocated only for routes with a usable retry policy). */
export class RetryRun {
  /** Retries left (num_retries). */
  left: number;
  /** Retries started so far. */
  retries = 0;
  /** Endpoint keys tried (previous_hosts predicate). */
  tried: Set<string> | undefined;
  /** The request body so far, while it fits REPLAY_LIMIT (allocated with the first chunk). */
  chunks: Buffer[] | undefined = undefined;
  bytes = 0;
  /** The body outgrew the replay buffer: no more retries. */
  overflow = false;
  /**
   * The upstream request headers, reused by each retry: what an attempt adds to them (host or
   * pseudo-headers, x-envoy-attempt-count) is set again by the next one, so no copy is needed.
   */
  base: OutgoingHttpHeaders | undefined = undefined;
  /** The current attempt holds a circuit-breaker retry slot. */
  slot = false;

  constructor(readonly plan: RetryPlan) {
    this.left = plan.policy.numRetries;
  }

  keep(chunk: Buffer): void {
    if (this.overflow) return;
    this.bytes += chunk.length;
    if (this.bytes > REPLAY_LIMIT) {
      this.overflow = true;
      this.chunks = undefined;
      return;
    }
    (this.chunks ??= []).push(chunk);
  }
}
