import type { KubeConfig } from '@kubernetes/client-node';
import { logger } from '../log.ts';
import type { ChangeFeed } from '../store/changes.ts';
import type { ResourceStore } from '../store/resources.ts';
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
  leaderServices?: LeaderService[];
  resyncMs?: number;
  debounceMs?: number;
  lease?: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
}

export class KubeController {
  private readonly elector: LeaderElector;
  private readonly reconciler: PolicyReconciler;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private unsubscribe: (() => void) | undefined;
  /** Passes completed while leading (for tests and the log). */
  passes = 0;

  constructor(private readonly o: KubeControllerOptions) {
    this.reconciler = new PolicyReconciler(o.kc, o.resources, o.reconcile?.mode ?? 'correct');
    this.elector = new LeaderElector({
      kc: o.kc,
      namespace: o.namespace,
      name: 'tern-control-plane',
      identity: o.identity,
      ...(o.lease ? { leaseDurationMs: o.lease.durationMs, renewDeadlineMs: o.lease.renewDeadlineMs, retryPeriodMs: o.lease.retryPeriodMs } : {}),
      onStartedLeading: () => {
        this.leading = true;
        this.trigger(0);
        for (const s of o.leaderServices ?? []) s.start().catch((err: Error) => logger.error({ err: err.message }, 'kubernetes: a leader service failed to start'));
      },
      onStoppedLeading: () => {
        this.leading = false;
        clearTimeout(this.timer);
        for (const s of o.leaderServices ?? []) void s.stop();
      },
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): this {
    this.unsubscribe = this.o.changes.subscribe(() => this.trigger(this.o.debounceMs ?? 200));
    this.elector.start();
    return this;
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearTimeout(this.timer);
    await this.elector.stop(true);
    await Promise.all((this.o.leaderServices ?? []).map((s) => s.stop()));
    await this.running;
  }

  private trigger(delayMs: number): void {
    if (!this.leading || !this.o.reconcile) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), delayMs);
    this.timer.unref();
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
