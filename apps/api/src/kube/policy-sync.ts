import type { KubeConfig } from '@kubernetes/client-node';
import { logger } from '../log.ts';
import type { ChangeFeed } from '../store/changes.ts';
import type { ResourceStore } from '../store/resources.ts';
import { LeaderElector } from './leader-election.ts';
import { PolicyReconciler } from './reconciler.ts';

// Keeps the cluster's custom resources in step with the store, on the leader only: a pass when it
// becomes leader, after every change (debounced), and every `resyncMs` to catch kubectl edits.

export interface PolicySyncOptions {
  kc: KubeConfig;
  resources: ResourceStore;
  changes: ChangeFeed;
  namespace: string;
  identity: string;
  mode: 'correct' | 'adopt';
  resyncMs?: number;
  debounceMs?: number;
  lease?: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
}

export class PolicySync {
  private readonly elector: LeaderElector;
  private readonly reconciler: PolicyReconciler;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private unsubscribe: (() => void) | undefined;
  /** Passes completed while leading (for tests and the log). */
  passes = 0;

  constructor(private readonly o: PolicySyncOptions) {
    this.reconciler = new PolicyReconciler(o.kc, o.resources, o.mode);
    this.elector = new LeaderElector({
      kc: o.kc,
      namespace: o.namespace,
      name: 'tern-policy-reconciler',
      identity: o.identity,
      ...(o.lease ? { leaseDurationMs: o.lease.durationMs, renewDeadlineMs: o.lease.renewDeadlineMs, retryPeriodMs: o.lease.retryPeriodMs } : {}),
      onStartedLeading: () => {
        this.leading = true;
        this.trigger(0);
      },
      onStoppedLeading: () => {
        this.leading = false;
        clearTimeout(this.timer);
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
    await this.running;
  }

  private trigger(delayMs: number): void {
    if (!this.leading) return;
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
