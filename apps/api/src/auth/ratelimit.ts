// Failed sign-ins per key (client address, and username) within a sliding window. Kept in
// memory: each replica limits on its own, so N replicas allow at most N times the budget.
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until another attempt is allowed for any of the keys; 0 when allowed now. */
  retryAfterMs(keys: string[]): number {
    const t = this.now();
    let wait = 0;
    for (const key of keys) {
      const list = this.prune(key, t);
      if (list.length >= this.max) wait = Math.max(wait, list[0]! + this.windowMs - t);
    }
    return wait;
  }

  fail(keys: string[]): void {
    const t = this.now();
    for (const key of keys) {
      const list = this.prune(key, t);
      list.push(t);
      this.failures.set(key, list);
    }
    if (this.failures.size > 10_000) this.sweep(t);
  }

  reset(keys: string[]): void {
    for (const key of keys) this.failures.delete(key);
  }

  private prune(key: string, t: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((x) => x > t - this.windowMs);
    if (list.length) this.failures.set(key, list);
    else this.failures.delete(key);
    return list;
  }

  private sweep(t: number) {
    for (const key of [...this.failures.keys()]) this.prune(key, t);
  }
}
