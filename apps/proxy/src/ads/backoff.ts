/**
 * Exponential backoff with jitter for control-plane reconnects. The delay for attempt n is drawn
 * from [cap/2, cap] where cap = min(max, base * 2^n): the lower half keeps a flapping control
 * plane from being hammered, the random half spreads a fleet of sidecars reconnecting at once.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    readonly baseMs = 250,
    readonly maxMs = 30_000,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt; each call doubles the cap until maxMs. */
  next(): number {
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  /** After a healthy stream: the next failure starts again from baseMs. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
