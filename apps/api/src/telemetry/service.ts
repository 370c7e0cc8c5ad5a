import * as grpc from '@grpc/grpc-js';
import { telemetryServiceDefinition, type TelemetryReportHandler } from '@tern/xds';
import type { GraphQuery, GraphResponse, SeriesQuery, SeriesResponse, SummaryQuery, SummaryResponse } from '@tern/shared';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { logger } from '../log.ts';
import { TelemetryIngest } from './ingest.ts';
import { queryGraph, querySeries, querySummary } from './query.ts';
import { TelemetryRollups } from './rollup.ts';
import { ReportError, validateReport } from './validate.ts';
import { telemetryReportsTotal } from './metrics.ts';

// The control plane's telemetry: the gRPC Report handler (added to the ADS server), ingest with
// batched writes, downsampling/retention, and the reads behind the graph API.

export interface TelemetryOptions {
  flushMs: number;
  reportIntervalMs: number;
  minuteRetentionHours: number;
  hourRetentionDays: number;
  rollupIntervalMs: number;
  domainSuffix: string;
  now?: () => number;
}

export class TelemetryService {
  readonly ingest: TelemetryIngest;
  readonly rollups: TelemetryRollups;
  private started = false;

  constructor(
    private readonly prisma: PrismaClient,
    readonly opts: TelemetryOptions,
  ) {
    this.ingest = new TelemetryIngest(prisma, { flushMs: opts.flushMs, ...(opts.now ? { now: opts.now } : {}) });
    this.rollups = new TelemetryRollups(prisma, {
      minuteRetentionHours: opts.minuteRetentionHours,
      hourRetentionDays: opts.hourRetentionDays,
      intervalMs: opts.rollupIntervalMs,
      ...(opts.now ? { now: opts.now } : {}),
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.ingest.start();
    this.rollups.start();
  }

  async stop(): Promise<void> {
    await this.ingest.stop();
    await this.rollups.stop();
  }

  /** For `grpc.Server.addService` next to ADS. */
  grpcService(): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
    const Report: TelemetryReportHandler = (call, callback) => {
      let report;
      try {
        report = validateReport(call.request);
      } catch (err) {
        telemetryReportsTotal.inc({ outcome: 'invalid' });
        const details = err instanceof ReportError ? `invalid telemetry report: ${err.message}` : 'invalid telemetry report';
        return callback({ code: grpc.status.INVALID_ARGUMENT, details });
      }
      this.ingest.ingest(report).then(
        () => callback(null, { seq: report.seq, intervalMs: this.opts.reportIntervalMs }),
        (err: Error) => {
          telemetryReportsTotal.inc({ outcome: 'unavailable' });
          logger.warn({ err: err.message, proxy: report.node }, 'telemetry: report not counted');
          // Not counted: the proxy's next (cumulative) report carries the same counts.
          callback({ code: grpc.status.UNAVAILABLE, details: 'telemetry store unavailable; counts are kept for the next report' });
        },
      );
    };
    return { definition: telemetryServiceDefinition(), implementation: { Report } };
  }

  graph(input: GraphQuery): Promise<GraphResponse> {
    return queryGraph(this.prisma, input, this.queryOptions());
  }

  series(input: SeriesQuery): Promise<SeriesResponse> {
    return querySeries(this.prisma, input, this.queryOptions());
  }

  summary(input: SummaryQuery): Promise<SummaryResponse> {
    return querySummary(this.prisma, input, this.queryOptions());
  }

  private queryOptions() {
    return { minuteRetentionHours: this.opts.minuteRetentionHours, domainSuffix: this.opts.domainSuffix, ...(this.opts.now ? { now: this.opts.now() } : {}) };
  }
}
