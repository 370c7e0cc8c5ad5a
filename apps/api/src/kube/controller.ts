import type { KubeConfig } from '@kubernetes/client-node';
import { logger } from '../log.ts';
import type { ChangeFeed } from '../store/changes.ts';
import type { ResourceStore } from '../store/resources.ts';
import type { AuditLog } from '../store/audit.ts';
import type { ProxyConvergence } from './conditions.ts';
import { CustomResourceWatch } from './cr-watch.ts';
import { LeaderElector } from './leader-election.ts';
import { PolicyReconciler } from './reconciler.ts';

// What the control plane does in a cluster, on the leader only (one Lease for all of it): keeping
// the cluster's custom resources in step with the store — a pass when it becomes leader, after
// every change (debounced), and every `resyncMs` to catch kubectl edits — and, when given, syncing
// the registry from the cluster (two replicas writing the same rows would only fight).

/** A leader-only service: started when this replica takes the lead, stopped when it loses it. */
export interface LeaderService {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface KubeControllerOptions {
  kc: KubeConfig;
  resources: ResourceStore;
  changes: ChangeFeed;
  namespace: string;
  identity: string;
  /** Write policy into the cluster (undefined: do not). */
  reconcile?: { mode: 'correct' | 'adopt' } | undefined;
  /** Where drift is recorded. */
  audit?: AuditLog | undefined;
  /** Every connected proxy, from the shared status table (the ProxiesConverged condition). */
  proxies?: (() => Promise<ProxyConvergence[]>) | undefined;
  /** How often the proxies' shared status is read for a change (which triggers a pass: conditions). */
  statusMs?: number;
  /** Watch Tern's custom resources (a pass on each change); default on. */
  watch?: boolean;
  leaderServices?: LeaderService[];
  resyncMs?: number;
  debounceMs?: number;
  lease?: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
}

export class KubeController {
  private readonly elector: LeaderElector;
  readonly reconciler: PolicyReconciler;
  private watch: CustomResourceWatch | undefined;
  private proxyPoll: NodeJS.Timeout | undefined;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private dueAt = 0;
  private running: Promise<void> | undefined;
  private again = false;
  private unsubscribe: (() => void) | undefined;
  /** Passes completed while leading (for tests and the log). */
  passes = 0;

  constructor(private readonly o: KubeControllerOptions) {
    this.reconciler = new PolicyReconciler(o.kc, o.resources, { mode: o.reconcile?.mode ?? 'correct', audit: o.audit, proxies: o.proxies });
    this.elector = new LeaderElector({
      kc: o.kc,
      namespace: o.namespace,
      name: 'tern-control-plane',
      identity: o.identity,
      ...(o.lease ? { leaseDurationMs: o.lease.durationMs, renewDeadlineMs: o.lease.renewDeadlineMs, retryPeriodMs: o.lease.retryPeriodMs } : {}),
      onStartedLeading: () => {
        this.leading = true;
        this.trigger(0);
        this.startWatch();
        for (const s of o.leaderServices ?? []) s.start().catch((err: Error) => logger.error({ err: err.message }, 'kubernetes: a leader service failed to start'));
      },
      onStoppedLeading: () => {
        this.leading = false;
        this.cancelTimer();
        void this.stopWatch();
        for (const s of o.leaderServices ?? []) void s.stop();
      },
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Custom resource events seen by this replica's watch (tests). */
  get watchEvents(): number {
    return this.watch?.events ?? 0;
  }

  private startWatch(): void {
    if (!this.o.reconcile || this.o.watch === false || this.watch) return;
    const w = new CustomResourceWatch(this.o.kc, () => this.trigger(this.o.debounceMs ?? 200));
    this.watch = w;
    void w.start();
    this.pollProxies();
  }

  /**
   * Proxy status lives in the database (any replica's proxies), with no change feed of its own:
   * read it every `statusMs` and run a pass when what the conditions depend on changed (a proxy
   * came, left, ACKed a revision, NACKed). The read is one query; the pass (a LIST per kind) runs
   * only on a change.
   */
  private pollProxies(): void {
    if (!this.o.proxies) return;
    clearTimeout(this.proxyPoll);
    this.proxyPoll = setTimeout(async () => {
      try {
        if (this.leading && !this.running && (await this.reconciler.proxiesChanged())) this.trigger(0);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'kubernetes: reading proxy status failed');
      }
      if (this.watch) this.pollProxies();
    }, this.o.statusMs ?? 2_000);
    this.proxyPoll.unref();
  }

  private async stopWatch(): Promise<void> {
    clearTimeout(this.proxyPoll);
    const w = this.watch;
    this.watch = undefined;
    await w?.stop();
  }

  start(): this {
    this.unsubscribe = this.o.changes.subscribe(() => this.trigger(this.o.debounceMs ?? 200));
    this.elector.start();
    return this;
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.cancelTimer();
    await this.stopWatch();
    await this.elector.stop(true);
    await Promise.all((this.o.leaderServices ?? []).map((s) => s.stop()));
    await this.running;
  }

  private trigger(delayMs: number): void {
    if (!this.leading || !this.o.reconcile) return;
    // The earliest pass asked for wins: a resync scheduled at the end of a pass must not push back
    // a pass an event asked for meanwhile (a watch event of the pass's own writes, a store change).
    const due = Date.now() + delayMs;
    if (this.timer && this.dueAt <= due) return;
    clearTimeout(this.timer);
    this.dueAt = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run();
    }, delayMs);
    this.timer.unref();
  }

  private cancelTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private run(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.reconciler
      .reconcileOnce()
      .then(() => void this.passes++, (err: Error) => logger.error({ err: err.message }, 'kubernetes: reconcile pass failed; retrying at the next resync'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.trigger(0);
        } else this.trigger(this.o.resyncMs ?? 30_000);
      });
  }
}
