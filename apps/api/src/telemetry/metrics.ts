import { Counter, Histogram } from 'prom-client';
import { register } from '../metrics.ts';

// The telemetry pipeline's own health on the control plane's /metrics.

export const telemetryReportsTotal = new Counter({
  name: 'tern_telemetry_reports_total',
  help: 'Sidecar telemetry reports, by outcome (counted, duplicate, invalid, unavailable)',
  labelNames: ['outcome'] as const,
  registers: [register],
});

export const telemetryRowsWrittenTotal = new Counter({
  name: 'tern_telemetry_rows_written_total',
  help: 'Per-minute rollup rows upserted',
  registers: [register],
});

export const telemetryFlushErrorsTotal = new Counter({
  name: 'tern_telemetry_flush_errors_total',
  help: 'Batched rollup writes that failed (retried with the next flush)',
  registers: [register],
});

export const telemetryFlushSeconds = new Histogram({
  name: 'tern_telemetry_flush_seconds',
  help: 'Time to write one batch of rollup rows and cursors',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [register],
});
