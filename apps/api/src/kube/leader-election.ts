import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { logger } from '../log.ts';

// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: the
// holder renews the lease every `retryPeriod`; a candidate takes it over once the holder has not
// renewed for `leaseDuration` as measured on the candidate's own clock (from when it last saw the
// record change, so clock skew between replicas does not matter); every write carries the
// resourceVersion read, so two candidates racing for it get one 409 and one lease. A leader that
// cannot renew for `renewDeadline` stops leading before anyone else can take over.

export interface LeaderElectionOptions {
  kc: KubeConfig;
  namespace: string;
  /** The Lease's name, e.g. `tern-reconciler`. */
  name: string;
  /** This replica (TERN_REPLICA_ID). */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

const isConflict = (err: unknown) => (err as { code?: number }).code === 409;
const isNotFound = (err: unknown) => (err as { code?: number }).code === 404;

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private leading = false;
  /** The last lease record seen (holder + renewTime) and when, on our clock. */
  private observed: { key: string; at: number } | undefined;
  private lastRenew = 0;

  constructor(private readonly o: LeaderElectionOptions) {
    this.api = o.kc.makeApiClient(CoordinationV1Api);
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
    if (!(this.renewDeadlineMs < this.leaseMs && this.retryMs < this.renewDeadlineMs)) throw new Error('leader election: need retryPeriod < renewDeadline < leaseDuration');
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): this {
    void this.tick();
    return this;
  }

  /** Stops campaigning; a leader gives the lease up (holder cleared) so another takes over at once. */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false);
    if (!release) return;
    try {
      const lease = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new V1MicroTime() };
      await this.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: lease });
    } catch (err) {
      logger.warn({ lease: this.o.name, err: (err as Error).message }, 'leader election: could not release the lease');
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.retryMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      const held = await this.tryAcquireOrRenew();
      if (held) this.lastRenew = Date.now();
      if (this.stopped) return;
      if (held && !this.leading) this.setLeading(true);
      if (!held && this.leading) this.setLeading(false);
    } catch (err) {
      logger.warn({ lease: this.o.name, err: (err as Error).message }, 'leader election: the lease could not be read or written');
      // Keep leading only while the last renewal is within the deadline: after it, another
      // replica may soon take the lease.
      if (this.leading && Date.now() - this.lastRenew > this.renewDeadlineMs) this.setLeading(false);
    }
    this.schedule();
  }

  private setLeading(v: boolean): void {
    this.leading = v;
    logger.info({ lease: this.o.name, identity: this.o.identity }, v ? 'leader election: leading' : 'leader election: stopped leading');
    (v ? this.o.onStartedLeading : this.o.onStoppedLeading)();
  }

  /** True when this replica holds the lease after the call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity } = this.o;
    const now = new V1MicroTime();
    const durationS = Math.ceil(this.leaseMs / 1000);
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now, leaseTransitions: 0 } } });
        return true;
      } catch (e) {
        if (isConflict(e)) return false; // another replica created it first
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const key = `${holder}|${spec.renewTime ? new Date(spec.renewTime).getTime() : 0}`;
    if (this.observed?.key !== key) this.observed = { key, at: Date.now() };
    const heldByOther = holder !== '' && holder !== identity;
    const expired = this.observed.at + (spec.leaseDurationSeconds ?? durationS) * 1000 < Date.now();
    if (heldByOther && !expired) return false;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationS,
      renewTime: now,
      ...(holder === identity ? {} : { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
    };
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (err) {
      if (isConflict(err)) return false; // someone wrote it since we read it
      throw err;
    }
  }
}
