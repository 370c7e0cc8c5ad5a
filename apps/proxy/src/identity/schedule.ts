// When to renew and how long to wait after a failure. Pure: the agent passes the clock and the
// random source.

export interface RenewPolicy {
  /** Fraction of the lifetime after which to renew (Istio: 0.5). */
  fraction: number;
  /** Up to this fraction of that delay earlier or later, so a fleet does not renew in lockstep. */
  jitter: number;
}

export const DEFAULT_RENEW: RenewPolicy = { fraction: 0.5, jitter: 0.1 };

/** Never renew sooner than this after issuance, and at least this long before expiry when possible. */
export const MIN_RENEW_DELAY_MS = 1000;

/**
 * Milliseconds from `now` until a certificate should be renewed: start + lifetime × fraction ×
 * (1 ± jitter), clamped to [now + 1 s, notAfter - 1 s] (now + 1 s when even that is past).
 * `start` is when the certificate was received, not its notBefore: CAs backdate notBefore for
 * clock skew (Tern's by a minute), which would otherwise pull renewals of short-lived
 * certificates forward to the moment they arrive.
 */
export function renewDelayMs(start: number, notAfter: number, now: number, policy: RenewPolicy = DEFAULT_RENEW, random: () => number = Math.random): number {
  const life = Math.max(0, notAfter - start);
  const factor = policy.fraction * (1 + (random() * 2 - 1) * policy.jitter);
  const at = start + life * Math.min(1, Math.max(0, factor));
  const latest = notAfter - MIN_RENEW_DELAY_MS;
  const delay = Math.min(at, latest) - now;
  return Math.max(MIN_RENEW_DELAY_MS, Math.round(delay));
}

/** Retry delay after `failures` consecutive failures (1, 2, 4 … 60 s), with ±20 % jitter. */
export function backoffMs(failures: number, random: () => number = Math.random, minMs = 1000, maxMs = 60_000): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1));
  return Math.round(Math.min(maxMs, base * (0.8 + random() * 0.4)));
}
