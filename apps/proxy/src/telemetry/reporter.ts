import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  createTelemetryClient,
  type TelemetryClient,
  type TelemetryHttpSeries,
  type TelemetryLabels,
  type TelemetryReportRequest,
  type TelemetryReportResponse,
  type TelemetryTcpSeries,
} from '@tern/xds';
import type { LabelBase, Metrics } from './metrics.ts';

// Pushes this proxy's counters to the control plane (`tern.telemetry.v1.Telemetry/Report`) on the
// ADS connection's target. Reports are cumulative since this process started, tagged with a boot
// id and a sequence number: the control plane turns them into deltas, so a lost or repeated report
// never loses or double-counts anything (docs/telemetry.md).

export interface ReporterLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ReporterOptions {
  metrics: Metrics;
  nodeId: string;
  /** The control plane to report to: the ADS client's current server (host:port). */
  server: () => string | undefined;
  credentials: grpc.ChannelCredentials;
  /** Milliseconds between reports (default 5000). */
  intervalMs?: number;
  /** Per-report deadline (default: the interval, at least 2 s). */
  timeoutMs?: number;
  logger?: ReporterLogger;
  /** Fixed boot id (tests); random by default. */
  bootId?: string;
}

export interface ReporterStatus {
  bootId: string;
  seq: number;
  lastAckedSeq: number;
  lastError: string | undefined;
  reportsSent: number;
  reportsFailed: number;
}

export const DEFAULT_TELEMETRY_INTERVAL_MS = 5000;

export class TelemetryReporter {
  readonly bootId: string;
  private seq = 0;
  private lastAckedSeq = 0;
  private lastError: string | undefined;
  private sent = 0;
  private failed = 0;
  private intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;
  private readonly clients = new Map<string, TelemetryClient>();

  constructor(private readonly o: ReporterOptions) {
    this.bootId = o.bootId ?? randomBytes(12).toString('hex');
    this.intervalMs = o.intervalMs ?? DEFAULT_TELEMETRY_INTERVAL_MS;
    if (!Number.isFinite(this.intervalMs) || this.intervalMs < 10) throw new Error(`telemetry interval: must be a number of milliseconds >= 10, got ${o.intervalMs}`);
  }

  start(): this {
    this.schedule();
    return this;
  }

  status(): ReporterStatus {
    return { bootId: this.bootId, seq: this.seq, lastAckedSeq: this.lastAckedSeq, lastError: this.lastError, reportsSent: this.sent, reportsFailed: this.failed };
  }

  /** Sends one report now (waits for one in flight first). Resolves false when it failed. */
  async flush(): Promise<boolean> {
    if (this.inFlight) await this.inFlight;
    let ok = false;
    this.inFlight = this.send().then((r) => {
      ok = r;
    });
    await this.inFlight;
    this.inFlight = undefined;
    return ok;
  }

  /** Stops the timer, sends a last report (best effort) so a graceful restart loses nothing, closes the clients. */
  async close(finalReport = true): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (finalReport) await this.flush().catch(() => false);
    else if (this.inFlight) await this.inFlight;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** The report as it would be sent now (cumulative values). */
  buildReport(): TelemetryReportRequest {
    const { http, tcp } = this.o.metrics.series();
    const labels: TelemetryLabels[] = [];
    const index = new Map<LabelBase, number>();
    const idx = (b: LabelBase) => {
      let i = index.get(b);
      if (i === undefined) {
        i = labels.length;
        labels.push(b.set as TelemetryLabels);
        index.set(b, i);
      }
      return i;
    };
    const httpOut: TelemetryHttpSeries[] = [];
    for (const s of http) {
      const h = s.duration;
      const d = Array.from(h.counts);
      let finite = 0;
      for (const c of d) finite += c;
      d.push(h.count - finite);
      httpOut.push({ l: idx(s.base), p: s.protocol, c: s.code, f: s.flags, g: s.grpcStatus, n: s.requests, d, ds: h.sum, rq: s.requestBytes.sum, rs: s.responseBytes.sum });
    }
    const tcpOut: TelemetryTcpSeries[] = [];
    for (const s of tcp) tcpOut.push({ l: idx(s.base), f: s.flags, opened: s.opened, closed: s.closed, sent: s.sent, received: s.received });
    return { v: 1, node: this.o.nodeId, boot: this.bootId, seq: ++this.seq, labels, http: httpOut, tcp: tcpOut };
  }

  private schedule() {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.flush().finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private client(server: string): TelemetryClient {
    let c = this.clients.get(server);
    if (!c) {
      // Clients of servers we no longer use are closed: failover moves the ADS stream.
      for (const [k, old] of this.clients) {
        old.close();
        this.clients.delete(k);
      }
      c = createTelemetryClient(server, this.o.credentials);
      this.clients.set(server, c);
    }
    return c;
  }

  private send(): Promise<boolean> {
    const server = this.o.server();
    if (!server) return Promise.resolve(false);
    const report = this.buildReport();
    const timeout = this.o.timeoutMs ?? Math.max(2000, this.intervalMs);
    return new Promise((resolve) => {
      this.client(server).Report(report, { deadline: Date.now() + timeout }, (err, res?: TelemetryReportResponse) => {
        if (err || !res) {
          this.failed++;
          this.lastError = err?.details || err?.message || 'no response';
          this.o.logger?.debug({ err: this.lastError, seq: report.seq }, 'telemetry report failed; the next one carries the counts');
          return resolve(false);
        }
        this.sent++;
        this.lastError = undefined;
        this.lastAckedSeq = Math.max(this.lastAckedSeq, res.seq);
        if (res.intervalMs >= 10 && res.intervalMs !== this.intervalMs && this.o.intervalMs === undefined) this.intervalMs = res.intervalMs;
        resolve(true);
      });
    });
  }
}
