import { xdsConvergenceSeconds } from '../metrics.ts';

// How long a mesh change takes to reach every proxy it affects, per revision, on this replica.
// The clock starts when the change event reaches this replica (for a debounced batch: its first
// event; commit-to-arrival is the NOTIFY latency, a few ms) and stops at the last affected proxy's
// ACK of what was pushed for it.

export interface ConvergenceRecord {
  revision: string;
  startedAt: string;
  affectedProxies: number;
  ackedProxies: number;
  nackedProxies: number;
  /** Proxies that disconnected before answering. */
  disconnectedProxies: number;
  convergedAt: string | null;
  durationMs: number | null;
}

interface Open {
  record: ConvergenceRecord;
  started: number;
  /** connection id -> type URL -> the nonce whose ACK is awaited. */
  pending: Map<number, Map<string, number>>;
}

export class ConvergenceTracker {
  private readonly records: Open[] = [];

  constructor(private readonly keep = 200) {}

  /** A revision's pushes went out: `pushes` maps each affected connection to the (type, nonce) it was sent. */
  begin(revision: string, startedAtMs: number, pushes: Map<number, { type: string; nonce: string }[]>) {
    if (pushes.size === 0) return;
    const pending = new Map<number, Map<string, number>>();
    for (const [conn, list] of pushes) pending.set(conn, new Map(list.map((p) => [p.type, Number(p.nonce)])));
    this.records.push({
      record: {
        revision,
        startedAt: new Date(startedAtMs).toISOString(),
        affectedProxies: pushes.size,
        ackedProxies: 0,
        nackedProxies: 0,
        disconnectedProxies: 0,
        convergedAt: null,
        durationMs: null,
      },
      started: startedAtMs,
      pending,
    });
    while (this.records.length > this.keep) this.records.shift();
  }

  /**
   * An ACK of `nonce` for a type. Nonces grow per stream, and state-of-the-world responses are
   * whole: an ACK of a later response also settles an earlier one that was superseded before the
   * proxy answered it.
   */
  ack(conn: number, type: string, nonce: string) {
    this.settle(conn, type, Number(nonce), 'ack');
  }

  nack(conn: number, type: string, nonce: string) {
    this.settle(conn, type, Number(nonce), 'nack');
  }

  disconnected(conn: number) {
    for (const o of this.records) {
      if (o.pending.delete(conn)) {
        o.record.disconnectedProxies++;
        this.maybeDone(o);
      }
    }
  }

  /** A push sent within `withinMs` still awaits an answer from some proxy. */
  inFlight(withinMs: number): boolean {
    const since = Date.now() - withinMs;
    for (let i = this.records.length - 1; i >= 0; i--) {
      const o = this.records[i]!;
      if (o.started < since) break;
      if (o.pending.size > 0) return true;
    }
    return false;
  }

  recent(limit = 200): ConvergenceRecord[] {
    return this.records.slice(-limit).reverse().map((o) => ({ ...o.record }));
  }

  private settle(conn: number, type: string, nonce: number, how: 'ack' | 'nack') {
    for (const o of this.records) {
      const types = o.pending.get(conn);
      const awaited = types?.get(type);
      if (awaited === undefined || nonce < awaited) continue;
      if (how === 'nack') {
        o.pending.delete(conn);
        o.record.nackedProxies++;
      } else {
        types!.delete(type);
        if (types!.size === 0) {
          o.pending.delete(conn);
          o.record.ackedProxies++;
        }
      }
      this.maybeDone(o);
    }
  }

  private maybeDone(o: Open) {
    if (o.pending.size > 0 || o.record.convergedAt) return;
    const now = Date.now();
    o.record.convergedAt = new Date(now).toISOString();
    o.record.durationMs = now - o.started;
    // Only revisions that reached at least one proxy say anything about convergence time.
    if (o.record.ackedProxies > 0) xdsConvergenceSeconds.observe(o.record.durationMs / 1000);
  }
}
