import type { ServingCertificate } from '../../ca/serving-cert.ts';
import { logger } from '../../log.ts';

// Keeps the injection webhook's serving certificate fresh: a new one at about half the current
// one's lifetime (jittered, so two replicas started together do not renew in step), swapped into
// the running server. A failed issuance is logged and retried with exponential backoff; the
// current certificate stays in use meanwhile. Never throws into the process.

export interface CertRenewerOptions {
  issue(): Promise<ServingCertificate>;
  /** Puts a new certificate in use (the server's setCertificate). */
  apply(cert: ServingCertificate): void;
  /** Renew after this fraction of the lifetime (from issuance); default 0.5. */
  renewFraction?: number;
  /** ± this fraction of the delay, at random; default 0.1. */
  jitter?: number;
  backoff?: { initialMs: number; maxMs: number };
  random?: () => number;
  now?: () => number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** When to renew a certificate obtained at `issuedAt` that expires at `notAfter` (ms from `issuedAt`). */
export function renewDelayMs(issuedAt: number, notAfter: number, fraction: number, jitter: number, random: () => number): number {
  const lifetime = Math.max(0, notAfter - issuedAt);
  return Math.max(0, Math.round(lifetime * fraction * (1 + jitter * (2 * random() - 1))));
}

export function renewBackoffMs(failures: number, b: { initialMs: number; maxMs: number }, random: () => number): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export class CertRenewer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private renewAt = 0;
  private inflight: Promise<void> | undefined;
  /** Consecutive failed issuances (0 after a success). */
  failures = 0;
  renewals = 0;
  current: ServingCertificate | undefined;

  constructor(private readonly o: CertRenewerOptions) {}

  private get now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Issues the first certificate (an error here is the caller's: the server cannot start without one). */
  async start(): Promise<ServingCertificate> {
    const cert = await this.o.issue();
    this.current = cert;
    this.scheduleAfter(cert);
    return cert;
  }

  /** Renews now (what the timer runs). Resolves whatever the outcome. */
  renewNow(): Promise<void> {
    this.inflight ??= this.renew().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inflight;
  }

  private scheduleAfter(cert: ServingCertificate): void {
    const issuedAt = this.now;
    this.schedule(renewDelayMs(issuedAt, cert.notAfter.getTime(), this.o.renewFraction ?? 0.5, this.o.jitter ?? 0.1, this.o.random ?? Math.random));
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.renewAt = this.now + delayMs;
    this.arm();
  }

  // setTimeout cannot wait more than ~24.8 days: long lifetimes wait in steps.
  private arm(): void {
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, this.renewAt - this.now));
    this.timer = setTimeout(() => {
      if (this.now < this.renewAt) this.arm();
      else void this.renewNow();
    }, wait);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const previous = this.current;
    try {
      const cert = await this.o.issue();
      if (this.stopped) return;
      this.o.apply(cert);
      this.current = cert;
      this.failures = 0;
      this.renewals++;
      this.scheduleAfter(cert);
      logger.info({ serial: cert.serial, notAfter: cert.notAfter.toISOString(), previousSerial: previous?.serial, renewAt: new Date(this.renewAt).toISOString() }, 'injection webhook: serving certificate renewed');
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const delay = renewBackoffMs(this.failures, this.o.backoff ?? { initialMs: 1000, maxMs: 60_000 }, this.o.random ?? Math.random);
      this.schedule(delay);
      logger.error(
        { err: err instanceof Error ? err.message : String(err), failures: this.failures, retryInMs: delay, keeping: previous ? { serial: previous.serial, notAfter: previous.notAfter.toISOString() } : undefined },
        'injection webhook: serving certificate renewal failed; keeping the current one and retrying',
      );
    }
  }
}
