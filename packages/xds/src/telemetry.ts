import * as grpc from '@grpc/grpc-js';

// Tern's telemetry push: `tern.telemetry.v1.Telemetry/Report`, served by the same grpc-js server as
// ADS and called by sidecars on the channel they already hold. The messages are JSON (a grpc-js
// service definition with JSON serializers): they are Tern-to-Tern only, and JSON keeps the shapes
// readable and versionable without a .proto toolchain. See docs/telemetry.md.

export const TELEMETRY_REPORT_PATH = '/tern.telemetry.v1.Telemetry/Report';

/** Istio's request duration buckets (ms); a report's `d` has one more entry, for +Inf. */
export const TELEMETRY_DURATION_BOUNDS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/** Istio's label names fixed per (reporter, source, destination), as the sidecar exposes them. */
export interface TelemetryLabels {
  reporter: 'source' | 'destination';
  source_workload: string;
  source_workload_namespace: string;
  source_principal: string;
  source_app: string;
  source_version: string;
  destination_workload: string;
  destination_workload_namespace: string;
  destination_principal: string;
  destination_app: string;
  destination_version: string;
  destination_service: string;
  destination_service_name: string;
  destination_service_namespace: string;
  connection_security_policy: string;
}

/**
 * One HTTP/gRPC series, cumulative since the proxy process started. Non-cumulative per-bucket
 * counts in `d` (length TELEMETRY_DURATION_BOUNDS.length + 1, the last one for +Inf).
 */
export interface TelemetryHttpSeries {
  /** Index into ReportRequest.labels. */
  l: number;
  /** request_protocol. */
  p: 'http' | 'grpc';
  /** response_code (0: no response). */
  c: number;
  /** response_flags ('-' when none). */
  f: string;
  /** grpc_response_status, -1 when none. */
  g: number;
  /** Requests. */
  n: number;
  /** Duration bucket counts. */
  d: number[];
  /** Sum of durations (ms). */
  ds: number;
  /** Sum of request body bytes. */
  rq: number;
  /** Sum of response body bytes. */
  rs: number;
}

/** One TCP series, cumulative since the proxy process started. */
export interface TelemetryTcpSeries {
  l: number;
  f: string;
  opened: number;
  closed: number;
  /** Bytes sent to the downstream. */
  sent: number;
  /** Bytes received from the downstream. */
  received: number;
}

export interface TelemetryReportRequest {
  /** Schema version of this message. */
  v: 1;
  /** The xDS node id. */
  node: string;
  /** Random per proxy process: a new one means the counters restarted from zero. */
  boot: string;
  /** 1, 2, 3… per boot, one per report attempt. */
  seq: number;
  /** Label sets referenced by index from the series (sent once per report, not per series). */
  labels: TelemetryLabels[];
  http: TelemetryHttpSeries[];
  tcp: TelemetryTcpSeries[];
}

export interface TelemetryReportResponse {
  /** The seq the control plane accepted (counted, or recognised as already counted). */
  seq: number;
  /** The report interval the control plane asks for (ms); 0 = keep the current one. */
  intervalMs: number;
}

export type TelemetryReportHandler = grpc.handleUnaryCall<TelemetryReportRequest, TelemetryReportResponse>;

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown,
};

/** The service definition, for `server.addService(telemetryServiceDefinition(), { Report })`. */
export function telemetryServiceDefinition(): grpc.ServiceDefinition {
  return {
    Report: {
      path: TELEMETRY_REPORT_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: json.serialize,
      requestDeserialize: json.deserialize,
      responseSerialize: json.serialize,
      responseDeserialize: json.deserialize,
      originalName: 'report',
    },
  } as grpc.ServiceDefinition;
}

export interface TelemetryClient extends grpc.Client {
  Report(req: TelemetryReportRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: TelemetryReportResponse) => void): grpc.ClientUnaryCall;
}

/**
 * A telemetry client for `address`. grpc-js shares subchannels between clients with the same
 * target, credentials and options, so this rides the ADS client's HTTP/2 connection.
 */
export function createTelemetryClient(address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions): TelemetryClient {
  const Ctor = grpc.makeGenericClientConstructor(telemetryServiceDefinition() as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>, 'tern.telemetry.v1.Telemetry');
  return new Ctor(address, credentials, options) as unknown as TelemetryClient;
}
