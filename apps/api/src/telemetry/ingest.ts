import type { TelemetryReportRequest } from '@tern/xds';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { logger } from '../log.ts';
import {
  BUCKETS,
  addValues,
  delta,
  emptyValues,
  httpKey,
  httpSeriesKey,
  httpValues,
  isError,
  keepSeries,
  minuteOf,
  rowKeyString,
  tcpKey,
  tcpSeriesKey,
  tcpValues,
  type RollupKey,
  type RollupRow,
  type RollupValues,
} from './rows.ts';
import { EdgeDictionary, loadCursor, saveCursors, upsertIncrement, type CursorRow } from './store.ts';
import { telemetryFlushErrorsTotal, telemetryFlushSeconds, telemetryReportsTotal, telemetryRowsWrittenTotal } from './metrics.ts';

// Reports in, deltas out. Each proxy process reports cumulative values with a boot id and a
// sequence number; the last values seen per proxy (its cursor) turn them into deltas, which are
// added to per-minute rows in memory and written in batches. A batch writes the rows and the
// cursors that produced them in one transaction, so a crash loses both or neither: the next
// report after a restart is diffed against the stored cursor (nothing lost, nothing twice).

export interface IngestOptions {
  flushMs: number;
  now?: () => number;
}

export type IngestOutcome = 'counted' | 'duplicate';

interface Cursor {
  bootId: string;
  seq: number;
  values: Map<string, number[]>;
  /** When this replica last saw a report from the proxy (in-memory eviction). */
  seenAt?: number;
}

/** Cursors of proxies silent this long leave memory (they stay stored; a report reloads them). */
const CURSOR_IDLE_MS = 3_600_000;

export class TelemetryIngest {
  private pending = new Map<string, RollupRow>();
  private dirty = new Map<string, Cursor>();
  private readonly cursors = new Map<string, Cursor>();
  private readonly edges = new EdgeDictionary();
  /** Reports of one proxy are handled one at a time, in arrival order. */
  private readonly perProxy = new Map<string, Promise<unknown>>();
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly now: () => number;
  /** Reports counted / recognised as duplicates, rows written (for /metrics and tests). */
  readonly stats = { reports: 0, duplicates: 0, rowsWritten: 0, flushes: 0, flushErrors: 0 };

  constructor(
    private readonly prisma: PrismaClient,
    private readonly opts: IngestOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      void this.flush().catch(() => undefined);
      this.evictIdle();
    }, this.opts.flushMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.perProxy.values()]);
    await this.flush().catch((err) => logger.warn({ err }, 'telemetry: last flush failed; the counts come again with the next report'));
  }

  /** Called after every successful flush (live graph updates). */
  onFlush(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** One validated report. Resolves once it is counted in memory (written with the next flush). */
  ingest(r: TelemetryReportRequest): Promise<IngestOutcome> {
    const prev = this.perProxy.get(r.node) ?? Promise.resolve();
    const run = prev.then(
      () => this.ingestOne(r),
      () => this.ingestOne(r),
    );
    const tail = run.catch(() => undefined);
    this.perProxy.set(r.node, tail);
    void tail.then(() => {
      if (this.perProxy.get(r.node) === tail) this.perProxy.delete(r.node);
    });
    return run;
  }

  private async ingestOne(r: TelemetryReportRequest): Promise<IngestOutcome> {
    let c = this.cursors.get(r.node);
    // Unknown proxy (or this replica's view may be stale: another replica counted reports in
    // between, seen as a gap in seq): the stored cursor is the truth. Write ours first.
    if (!c || (c.bootId === r.boot && r.seq !== c.seq + 1 && r.seq > c.seq)) {
      if (c) await this.flush();
      const stored = await loadCursor(this.prisma, r.node);
      c = stored ? { bootId: stored.bootId, seq: stored.seq, values: new Map(Object.entries(stored.values)) } : undefined;
    }
    if (c && c.bootId === r.boot && r.seq <= c.seq) {
      this.stats.duplicates++;
      telemetryReportsTotal.inc({ outcome: 'duplicate' });
      return 'duplicate';
    }
    const base = c && c.bootId === r.boot ? c.values : undefined;
    const next: Cursor = { bootId: r.boot, seq: r.seq, values: new Map() };
    const bucket = minuteOf(this.now());

    for (const s of r.http) {
      const l = r.labels[s.l]!;
      const sk = httpSeriesKey(l, s);
      const cur = httpValues(s);
      next.values.set(sk, cur);
      if (!keepSeries(l)) continue;
      const d = delta(cur, base?.get(sk));
      const n = d[0]!;
      if (n === 0 && d[2] === 0 && d[3] === 0) continue;
      const v: RollupValues = { requests: n, errors: isError(s.p, s.c, s.g) ? n : 0, bytesIn: d[2]!, bytesOut: d[3]!, durationSumMs: d[1]!, d: d.slice(4, 4 + BUCKETS) };
      this.add(bucket, httpKey(l, s), v);
    }
    for (const s of r.tcp) {
      const l = r.labels[s.l]!;
      const sk = tcpSeriesKey(l, s);
      const cur = tcpValues(s);
      next.values.set(sk, cur);
      if (!keepSeries(l)) continue;
      const d = delta(cur, base?.get(sk));
      if (d.every((x) => x === 0)) continue;
      const v = emptyValues();
      v.requests = d[1]!;
      v.bytesIn = d[3]!;
      v.bytesOut = d[2]!;
      this.add(bucket, tcpKey(l), v);
    }
    next.seenAt = Date.now();
    this.cursors.set(r.node, next);
    this.dirty.set(r.node, next);
    this.stats.reports++;
    telemetryReportsTotal.inc({ outcome: 'counted' });
    return 'counted';
  }

  private add(bucket: Date, key: RollupKey, v: RollupValues): void {
    const k = `${bucket.getTime()}\u0002${rowKeyString(key)}`;
    const row = this.pending.get(k);
    if (row) addValues(row, v);
    else this.pending.set(k, { bucket, ...key, ...emptyValues(), ...cloneValues(v) });
  }

  /** Writes what is pending (rows + cursors in one transaction). Concurrent calls share one write. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.pending.size === 0 && this.dirty.size === 0) return Promise.resolve();
    const rows = this.pending;
    const cursors = this.dirty;
    this.pending = new Map();
    this.dirty = new Map();
    const run = (async () => {
      const timer = telemetryFlushSeconds.startTimer();
      try {
        const rowList = [...rows.values()];
        const cursorList: CursorRow[] = [...cursors].map(([proxyId, c]) => ({ proxyId, bootId: c.bootId, seq: c.seq, values: Object.fromEntries(c.values) }));
        // Edge ids are committed before (and independently of) the rows that use them.
        const ids = await this.edges.resolve(this.prisma, rowList);
        await this.prisma.$transaction(
          async (tx) => {
            if (rowList.length) await upsertIncrement(tx, 'TelemetryMinute', rowList, ids);
            if (cursorList.length) await saveCursors(tx, cursorList);
          },
          { timeout: 60_000 },
        );
        timer();
        this.stats.rowsWritten += rowList.length;
        telemetryRowsWrittenTotal.inc(rowList.length);
        this.stats.flushes++;
        for (const fn of this.listeners) fn();
      } catch (err) {
        // Put everything back: counts merge with whatever arrived meanwhile, newer cursors win.
        this.stats.flushErrors++;
        telemetryFlushErrorsTotal.inc();
        for (const [k, row] of rows) {
          const cur = this.pending.get(k);
          if (cur) addValues(cur, row);
          else this.pending.set(k, row);
        }
        for (const [p, c] of cursors) if (!this.dirty.has(p)) this.dirty.set(p, c);
        logger.warn({ err: (err as Error).message, rows: rows.size }, 'telemetry: flush failed; will retry');
        throw err;
      } finally {
        this.flushing = undefined;
      }
    })();
    this.flushing = run;
    return run;
  }

  /** Pods come and go with new node ids: drop cursors of proxies that stopped reporting. */
  private evictIdle(): void {
    const now = Date.now();
    if (now - this.lastEviction < 60_000) return;
    this.lastEviction = now;
    for (const [id, c] of this.cursors) if (now - (c.seenAt ?? 0) > CURSOR_IDLE_MS && !this.dirty.has(id)) this.cursors.delete(id);
  }

  private lastEviction = 0;
}

function cloneValues(v: RollupValues): RollupValues {
  return { requests: v.requests, errors: v.errors, bytesIn: v.bytesIn, bytesOut: v.bytesOut, durationSumMs: v.durationSumMs, d: v.d.slice() };
}
