/**
 * Istio's standard metrics, hand-kept because they are updated on every request: a request costs
 * a couple of Map lookups with a numeric key and a few array increments; the Prometheus text is
 * only produced on scrape.
 */

import { TELEMETRY_DURATION_BOUNDS, type TelemetryLabels } from '@tern/xds';

/** Istio's request duration buckets (milliseconds): the ones reported to the control plane. */
export const DURATION_BUCKETS = TELEMETRY_DURATION_BOUNDS;
/** Istio's size buckets: 1 to 10^9, by factors of ten. */
export const BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** The labels fixed for a (reporter, source, destination) triple: everything but the outcome. */
export type LabelSet = TelemetryLabels;

const BASE_ORDER: (keyof LabelSet)[] = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_service_name', 'destination_service_namespace',
];

export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

export class HttpSeries {
  requests = 0;
  readonly duration = new Histogram(DURATION_BUCKETS);
  readonly requestBytes = new Histogram(BYTES_BUCKETS);
  readonly responseBytes = new Histogram(BYTES_BUCKETS);
  constructor(
    readonly labels: string,
    readonly base: LabelBase,
    readonly protocol: RequestProtocol,
    readonly code: number,
    readonly flags: string,
    readonly grpcStatus: number,
  ) {}
}

export class TcpSeries {
  opened = 0;
  closed = 0;
  sent = 0;
  received = 0;
  constructor(readonly labels: string, readonly base: LabelBase, readonly flags: string) {}
}

/** An interned label base; callers keep it (per cluster/endpoint, per peer) and pass it per request. */
export class LabelBase {
  /** Series without response flags, keyed by a number packing code, protocol and gRPC status. */
  readonly plain = new Map<number, HttpSeries>();
  readonly flagged = new Map<string, HttpSeries>();
  readonly tcp = new Map<string, TcpSeries>();
  constructor(readonly text: string, readonly policy: string, readonly set: Readonly<LabelSet>) {}
}

export type RequestProtocol = 'http' | 'grpc';

export class Metrics {
  private readonly bases = new Map<string, LabelBase>();
  private readonly httpSeries: HttpSeries[] = [];
  private readonly tcpSeries: TcpSeries[] = [];

  base(labels: LabelSet): LabelBase {
    let text = '';
    for (const k of BASE_ORDER) text += `${k}="${escapeLabel(labels[k])}",`;
    let b = this.bases.get(text + labels.connection_security_policy);
    if (!b) {
      b = new LabelBase(text, labels.connection_security_policy, { ...labels });
      this.bases.set(text + labels.connection_security_policy, b);
    }
    return b;
  }

  /**
   * One finished HTTP request. `grpcStatus` is -1 for non-gRPC requests (and gRPC ones that ended
   * without a status); `flags` is '-' when none.
   */
  recordRequest(base: LabelBase, protocol: RequestProtocol, code: number, flags: string, grpcStatus: number, durationMs: number, requestBytes: number, responseBytes: number): void {
    let s: HttpSeries | undefined;
    if (flags === '-') {
      const key = code * 1000 + (protocol === 'grpc' ? 100 : 0) + (grpcStatus + 1);
      s = base.plain.get(key);
      if (!s) {
        s = this.newHttpSeries(base, protocol, code, flags, grpcStatus);
        base.plain.set(key, s);
      }
    } else {
      const key = `${code}|${protocol}|${grpcStatus}|${flags}`;
      s = base.flagged.get(key);
      if (!s) {
        s = this.newHttpSeries(base, protocol, code, flags, grpcStatus);
        base.flagged.set(key, s);
      }
    }
    s.requests++;
    s.duration.observe(durationMs);
    s.requestBytes.observe(requestBytes);
    s.responseBytes.observe(responseBytes);
  }

  tcpOpened(base: LabelBase): void {
    this.tcpSeriesFor(base, '-').opened++;
  }

  /** A closed TCP connection; byte counts are added at close (documented limit). */
  tcpClosed(base: LabelBase, flags: string, sent: number, received: number): void {
    const s = this.tcpSeriesFor(base, flags);
    s.closed++;
    s.sent += sent;
    s.received += received;
  }

  private tcpSeriesFor(base: LabelBase, flags: string): TcpSeries {
    let s = base.tcp.get(flags);
    if (!s) {
      s = new TcpSeries(`{${base.text}request_protocol="tcp",response_flags="${escapeLabel(flags)}",connection_security_policy="${escapeLabel(base.policy)}"`, base, flags);
      base.tcp.set(flags, s);
      this.tcpSeries.push(s);
    }
    return s;
  }

  private newHttpSeries(base: LabelBase, protocol: RequestProtocol, code: number, flags: string, grpcStatus: number): HttpSeries {
    const s = new HttpSeries(
      `{${base.text}request_protocol="${protocol}",response_code="${code}",response_flags="${escapeLabel(flags)}",grpc_response_status="${grpcStatus < 0 ? '' : grpcStatus}",connection_security_policy="${escapeLabel(base.policy)}"`,
      base, protocol, code, flags, grpcStatus,
    );
    this.httpSeries.push(s);
    return s;
  }

  /** Every series so far (live objects: read them synchronously, e.g. to build a telemetry report). */
  series(): { http: readonly HttpSeries[]; tcp: readonly TcpSeries[] } {
    return { http: this.httpSeries, tcp: this.tcpSeries };
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    out.push('# HELP istio_requests_total Total requests.', '# TYPE istio_requests_total counter');
    for (const s of this.httpSeries) out.push(`istio_requests_total${s.labels}} ${s.requests}`);
    histogram(out, 'istio_request_duration_milliseconds', 'Request duration in milliseconds.', this.httpSeries, (s) => s.duration);
    histogram(out, 'istio_request_bytes', 'Request body size in bytes.', this.httpSeries, (s) => s.requestBytes);
    histogram(out, 'istio_response_bytes', 'Response body size in bytes.', this.httpSeries, (s) => s.responseBytes);
    counter(out, 'istio_tcp_sent_bytes_total', 'Bytes sent to the downstream on TCP connections.', this.tcpSeries, (s) => s.sent);
    counter(out, 'istio_tcp_received_bytes_total', 'Bytes received from the downstream on TCP connections.', this.tcpSeries, (s) => s.received);
    counter(out, 'istio_tcp_connections_opened_total', 'TCP connections opened.', this.tcpSeries, (s) => s.opened);
    counter(out, 'istio_tcp_connections_closed_total', 'TCP connections closed.', this.tcpSeries, (s) => s.closed);
    return out.join('\n') + '\n';
  }
}

function counter(out: string[], name: string, help: string, series: TcpSeries[], get: (s: TcpSeries) => number): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
  for (const s of series) out.push(`${name}${s.labels}} ${get(s)}`);
}

function histogram(out: string[], name: string, help: string, series: HttpSeries[], get: (s: HttpSeries) => Histogram): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  for (const s of series) {
    const h = get(s);
    let cum = 0;
    for (let i = 0; i < h.bounds.length; i++) {
      cum += h.counts[i]!;
      out.push(`${name}_bucket${s.labels},le="${h.bounds[i]}"} ${cum}`);
    }
    out.push(`${name}_bucket${s.labels},le="+Inf"} ${h.count}`);
    out.push(`${name}_sum${s.labels}} ${h.sum}`);
    out.push(`${name}_count${s.labels}} ${h.count}`);
  }
}

function escapeLabel(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}
