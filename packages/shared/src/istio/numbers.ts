import { z } from 'zod';

import { report } from './issues.ts';

// Istio's protos use uint32/int32/double; Kubernetes stores them as JSON numbers. We check the
// proto range (so a value cannot wrap or truncate on its way to Envoy) and then Istio's own,
// usually narrower, bound. One schema reports one issue: the first bound that fails.

export const INT32_MAX = 2147483647;
export const UINT32_MAX = 4294967295;

export interface IntRange {
  min: number;
  max: number;
  /** What the number is, with its article, for messages: "a port number". */
  what?: string;
}

/** An integer within [min, max]. */
export function intIn({ min, max, what = 'an integer' }: IntRange) {
  return z.number().superRefine((n, ctx) => {
    if (!Number.isFinite(n) || !Number.isInteger(n)) {
      report(ctx, 'integer', `must be a whole number, but got ${n}`);
    } else if (n < min) {
      report(ctx, 'min', `must be ${what} between ${min} and ${max}, but got ${n}`);
    } else if (n > max) {
      report(ctx, 'max', `must be ${what} between ${min} and ${max}, but got ${n}`);
    }
  });
}

/** Istio uint32: non-negative, at most 2^32-1. */
export const uint32 = () => intIn({ min: 0, max: UINT32_MAX, what: 'a uint32 integer' });

/** Istio int32 counters, which its webhook rejects when negative. */
export const nonNegativeInt32 = () => intIn({ min: 0, max: INT32_MAX, what: 'a non-negative int32 integer' });

/** uint64 fields; JavaScript numbers are exact only up to 2^53-1, so that is our ceiling. */
export const uint64 = () => intIn({ min: 0, max: Number.MAX_SAFE_INTEGER, what: 'a non-negative integer' });

/** A TCP/UDP port number. */
export const port = () => intIn({ min: 1, max: 65535, what: 'a port number' });

/** Whole-number percentages (int32/uint32 fields such as maxEjectionPercent). */
export const intPercent = () => intIn({ min: 0, max: 100, what: 'a whole percentage' });

/** Route weights: a share of traffic in whole percent. */
export const weight = () => intIn({ min: 0, max: 100, what: 'a route weight' });

/** A double within [min, max]. */
export function numberIn(min: number, max: number, what = 'a number') {
  return z.number().superRefine((n, ctx) => {
    if (!Number.isFinite(n)) report(ctx, 'type', `must be a finite number, but got ${n}`);
    else if (n < min) report(ctx, 'min', `must be ${what} of at least ${min}${max < Number.MAX_VALUE ? ` and at most ${max}` : ''}, but got ${n}`);
    else if (n > max) report(ctx, 'max', `must be ${what} of at most ${max}, but got ${n}`);
  });
}

/**
 * Istio's `Percent` message: `{ value: <double> }`. Its webhook accepts 0, or 0.0001 to 100;
 * anything finer than a millionth of traffic is below Envoy's resolution.
 */
export const percentSchema = z.strictObject({
  value: z.number().superRefine((n, ctx) => {
    if (!Number.isFinite(n)) report(ctx, 'type', `must be a finite number, but got ${n}`);
    else if (n < 0) report(ctx, 'min', `must be a percentage between 0 and 100, but got ${n}`);
    else if (n > 100) report(ctx, 'max', `must be a percentage between 0 and 100, but got ${n}`);
    else if (n > 0 && n < 0.0001) report(ctx, 'min', `must be 0 or at least 0.0001 (Envoy's resolution), but got ${n}`);
  }).optional(),
});
export type Percent = z.infer<typeof percentSchema>;
