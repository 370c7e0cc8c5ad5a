import type { PrismaClient } from '../generated/prisma/client.ts';
import { logger } from '../log.ts';
import { deleteBefore, deleteCursorsBefore, deleteUnusedEdges, recomputeHours } from './store.ts';

// Downsampling and retention: hour rows are recomputed from the minutes (the hours touched since
// the previous run; on a process's first run every minute still stored), then minutes older than the minute
// retention and hours older than the hour retention are deleted.

export interface RollupOptions {
  minuteRetentionHours: number;
  hourRetentionDays: number;
  intervalMs: number;
  now?: () => number;
}

const HOUR = 3_600_000;

export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR) * HOUR;
}

export class TelemetryRollups {
  private timer: NodeJS.Timeout | undefined;
  private lastRunAt: number | undefined;
  private lastEdgeCleanupAt: number | undefined;
  private running: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly opts: RollupOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.run().catch((err) => logger.warn({ err: (err as Error).message }, 'telemetry: rollup failed; retried next run')), this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One downsampling + retention pass. */
  run(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      const now = this.now();
      const minuteKeep = this.opts.minuteRetentionHours * HOUR;
      // Every hour whose minutes might have changed since the last run (one hour of slack for late
      // flushes); the first run of a process takes every minute still stored (after downtime too).
      const from = this.lastRunAt === undefined ? 0 : hourOf(this.lastRunAt) - HOUR;
      const to = hourOf(now) + HOUR;
      await this.prisma.$transaction(
        async (tx) => {
          await recomputeHours(tx, new Date(from), new Date(to));
          // Every minute before `to` has had its hour recomputed (now or on an earlier run).
          await deleteBefore(tx, 'TelemetryMinute', new Date(hourOf(now - minuteKeep)));
          await deleteBefore(tx, 'TelemetryHour', new Date(hourOf(now - this.opts.hourRetentionDays * 24 * HOUR)));
          await deleteCursorsBefore(tx, new Date(now - this.opts.hourRetentionDays * 24 * HOUR));
        },
        { timeout: 120_000 },
      );
      this.lastRunAt = now;
      // The edge dictionary is swept once a day: a full scan, and it only shrinks when keys die.
      if (this.lastEdgeCleanupAt === undefined || now - this.lastEdgeCleanupAt >= 24 * HOUR) {
        await deleteUnusedEdges(this.prisma, new Date(now - this.opts.hourRetentionDays * 24 * HOUR));
        this.lastEdgeCleanupAt = now;
      }
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}
