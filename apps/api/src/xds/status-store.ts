import type { PrismaClient } from '../generated/prisma/client.ts';
import { logger } from '../log.ts';
import { proxyStatusViewSchema, type ProxyStatusView } from '@tern/shared';

// Proxy status shared between replicas through the ProxyStatus table. Writes are batched: the
// server marks proxies dirty and this flushes at most every `flushMs`; a heartbeat touches every
// row this replica holds, so rows of a replica that died stop being touched and are shown as
// DISCONNECTED after `staleMs`, and deleted after `expireMs`.

export interface StatusStoreOptions {
  replicaId: string;
  flushMs?: number;
  heartbeatMs?: number;
  staleMs?: number;
  expireMs?: number;
  /**
   * While this says so (a push is on its way to proxies), a due flush waits — up to another
   * `flushMs` — so that serializing rows and the database's work on them do not compete with the
   * push and its ACKs for the CPU.
   */
  busy?: () => boolean;
}

/** Rows per INSERT of a status flush (a row is ~1.3 KB of JSON). */
export const STATUS_ROWS_PER_STATEMENT = 100;

/** How often a held flush looks again whether the push it waits for is done. */
const HOLD_RECHECK_MS = 20;

export interface StoredProxyStatus {
  view: ProxyStatusView;
  replicaId: string;
  ageMs: number;
}

export class ProxyStatusStore {
  readonly flushMs: number;
  readonly heartbeatMs: number;
  readonly staleMs: number;
  readonly expireMs: number;
  private readonly dirty = new Map<string, () => ProxyStatusView>();
  private readonly lagging = new Map<string, () => ProxyStatusView>();
  private readonly gone = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private lastExpire = 0;
  private started = false;
  private stopped = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly opts: StatusStoreOptions,
  ) {
    this.flushMs = opts.flushMs ?? 500;
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.staleMs = opts.staleMs ?? 30_000;
    this.expireMs = opts.expireMs ?? 10 * 60_000;
  }

  start() {
    this.started = true;
    this.heartbeat = setInterval(() => void this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** The proxy changed: its view (computed lazily, at flush time) is written with the next batch. */
  markDirty(proxyId: string, view: () => ProxyStatusView) {
    this.gone.delete(proxyId);
    this.lagging.delete(proxyId);
    this.dirty.set(proxyId, view);
    this.schedule();
  }

  /**
   * Only the proxy's mesh revision moved (a change that did not affect it): written with the next
   * batch if there is one for other reasons, else with the heartbeat. A change reaching few proxies
   * then does not rewrite every row of the replica within `flushMs`.
   */
  markLagging(proxyId: string, view: () => ProxyStatusView) {
    if (this.dirty.has(proxyId)) {
      this.dirty.set(proxyId, view);
      return;
    }
    this.gone.delete(proxyId);
    this.lagging.set(proxyId, view);
  }

  markGone(proxyId: string) {
    this.dirty.delete(proxyId);
    this.lagging.delete(proxyId);
    this.gone.add(proxyId);
    this.schedule();
  }

  /** Writes what is pending now (tests, shutdown). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.promoteLagging();
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (!this.started || this.stopped) return;
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.flush();
    // Proxies reconnect to another replica, which writes them again.
    await this.prisma.proxyStatus.deleteMany({ where: { replicaId: this.opts.replicaId } }).catch((err) => {
      logger.warn({ err: (err as Error).message }, 'xds: could not remove this replica’s proxy status rows');
    });
  }

  /** Every stored proxy, with the age of its row by the database's clock (replicas' clocks may differ). */
  async list(proxyId?: string): Promise<StoredProxyStatus[]> {
    const rows = await this.prisma.$queryRaw<{ proxyId: string; replicaId: string; status: unknown; ageMs: number }[]>`
      SELECT "proxyId", "replicaId", "status", (EXTRACT(EPOCH FROM (now() - "updatedAt")) * 1000)::float8 AS "ageMs"
      FROM "ProxyStatus"
      WHERE ${proxyId ?? null}::text IS NULL OR "proxyId" = ${proxyId ?? null}::text
      ORDER BY "proxyId"`;
    const out: StoredProxyStatus[] = [];
    for (const r of rows) {
      // Rows come from every replica, possibly of another Tern version mid-upgrade: one that does
      // not read as a status is left out of the list rather than failing it.
      const view = proxyStatusViewSchema.safeParse(r.status);
      if (view.success) out.push({ view: view.data, replicaId: r.replicaId, ageMs: Number(r.ageMs) });
      else logger.warn({ proxy: r.proxyId, replica: r.replicaId, issue: view.error.issues[0]?.path.join('.') }, 'xds: unreadable proxy status row left out');
    }
    return out;
  }

  async get(proxyId: string): Promise<StoredProxyStatus | undefined> {
    return (await this.list(proxyId))[0];
  }

  /** A row its replica stopped touching: the replica is gone, and so is the proxy's stream. */
  isStale(row: StoredProxyStatus): boolean {
    return row.ageMs > this.staleMs;
  }

  private promoteLagging() {
    for (const [id, v] of this.lagging) this.dirty.set(id, v);
    this.lagging.clear();
  }

  private schedule() {
    if (this.timer || this.stopped) return;
    const due = Date.now() + this.flushMs;
    const fire = () => {
      if (this.opts.busy?.() && Date.now() < due + this.flushMs) {
        this.timer = setTimeout(fire, HOLD_RECHECK_MS);
        this.timer.unref();
        return;
      }
      this.timer = undefined;
      this.flushing = this.flushing.then(() => this.write());
    };
    this.timer = setTimeout(fire, this.flushMs);
    this.timer.unref();
  }

  private async write() {
    if (!this.dirty.size && !this.gone.size) return;
    const dirty = [...this.dirty];
    const gone = [...this.gone];
    this.dirty.clear();
    this.gone.clear();
    // Views are computed in slices, yielding in between: thousands of them at once would hold up
    // the ACKs arriving meanwhile (and so the convergence of the change that dirtied them).
    const rows: { proxyId: string; replicaId: string; namespace: string; status: ProxyStatusView }[] = [];
    for (let i = 0; i < dirty.length; i++) {
      if (i > 0 && i % 500 === 0) await new Promise((r) => setImmediate(r));
      const [proxyId, view] = dirty[i]!;
      const v = view();
      rows.push({ proxyId, replicaId: this.opts.replicaId, namespace: v.namespace, status: v });
    }
    try {
      // A statement per STATUS_ROWS_PER_STATEMENT rows. Prisma (client and pg adapter) keeps the
      // arguments of its last 100 debug calls, DEBUG set or not: one statement for 1,000 proxies
      // (~1.3 MB of JSON) kept ~10 such batches alive; smaller ones keep fewer bytes and make no
      // megabyte-sized buffers.
      for (let i = 0; i < rows.length; i += STATUS_ROWS_PER_STATEMENT) {
        const batch = rows.slice(i, i + STATUS_ROWS_PER_STATEMENT);
        await this.prisma.$executeRaw`
          INSERT INTO "ProxyStatus" ("proxyId", "replicaId", "namespace", "status", "updatedAt")
          SELECT x."proxyId", x."replicaId", x."namespace", x."status", now()
          FROM jsonb_to_recordset(${JSON.stringify(batch)}::jsonb) AS x("proxyId" text, "replicaId" text, "namespace" text, "status" jsonb)
          ON CONFLICT ("proxyId") DO UPDATE
          SET "replicaId" = EXCLUDED."replicaId", "namespace" = EXCLUDED."namespace", "status" = EXCLUDED."status", "updatedAt" = now()`;
      }
      if (gone.length) {
        // Only our own rows: the proxy may already be connected to another replica.
        await this.prisma.proxyStatus.deleteMany({ where: { replicaId: this.opts.replicaId, proxyId: { in: gone } } });
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'xds: writing proxy status failed; retrying');
      for (const [id, v] of dirty) if (!this.dirty.has(id) && !this.gone.has(id)) this.dirty.set(id, v);
      for (const id of gone) if (!this.dirty.has(id)) this.gone.add(id);
      this.schedule();
    }
  }

  /** Touches this replica's rows and, at most once a minute, deletes rows dead replicas left behind. */
  async beat() {
    if (this.lagging.size) {
      this.promoteLagging();
      this.flushing = this.flushing.then(() => this.write());
      await this.flushing;
    }
    try {
      await this.prisma.$executeRaw`UPDATE "ProxyStatus" SET "updatedAt" = now() WHERE "replicaId" = ${this.opts.replicaId}`;
      // Expiry scans the table: once a minute is plenty.
      if (Date.now() - this.lastExpire > 60_000) await this.expireAbandoned();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'xds: proxy status heartbeat failed');
    }
  }

  /** Deletes rows no replica has refreshed for the expiry period (their replica died). */
  async expireAbandoned() {
    this.lastExpire = Date.now();
    await this.prisma.$executeRaw`DELETE FROM "ProxyStatus" WHERE "updatedAt" < now() - make_interval(secs => ${this.expireMs / 1000}::float8)`;
  }
}
