import { z } from 'zod';

import { report } from './issues.ts';

// Istio's CRDs store durations as strings and check them with CEL's duration(), which is Go's
// time.ParseDuration: a sequence of decimal numbers, each with an optional fraction and a unit
// ("300ms", "1.5h", "2h45m"). Protobuf's own JSON form ("1.5s") is a subset of that.

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 MICRO SIGN, accepted by Go
  'μs': 1e3, // U+03BC GREEK SMALL LETTER MU, accepted by Go
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

// Go rejects durations past int64 nanoseconds (about 292 years).
const MAX_NS = 9223372036854775807;

const COMPONENT = /([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)/y;

function parseDurationNs(s: string): number | null {
  if (typeof s !== 'string' || s.length === 0) return null;
  let i = 0;
  if (s[0] === '+') i = 1;
  if (s[0] === '-') return null; // a negative duration is never meaningful in Istio's API
  const rest = s.slice(i);
  if (rest === '0') return 0;
  if (rest.length === 0) return null;
  let total = 0;
  let pos = 0;
  while (pos < rest.length) {
    COMPONENT.lastIndex = pos;
    const m = COMPONENT.exec(rest);
    if (!m || m.index !== pos) return null;
    const whole = m[1] ?? '';
    const frac = m[2];
    const unit = m[3] as string;
    // "." alone, or a unit with no digits at all, is not a number (Go agrees).
    if (whole === '' && (frac === undefined || frac === '')) return null;
    const value = Number(`${whole === '' ? '0' : whole}.${frac ?? ''}0`);
    total += value * (UNIT_NS[unit] as number);
    pos = COMPONENT.lastIndex;
  }
  if (!Number.isFinite(total) || total > MAX_NS) return null;
  return total;
}

/**
 * Parses a Go/protobuf duration string ("10s", "1.5s", "500ms", "3m", "1h30m", "0") into
 * milliseconds. Returns null when the string is not a valid, non-negative duration.
 */
export function parseDurationMs(s: string): number | null {
  const ns = parseDurationNs(s);
  return ns === null ? null : ns / 1e6;
}

export interface DurationOptions {
  /** Smallest accepted value in ms. Istio's CRDs require most durations to be at least 1ms. */
  minMs?: number;
  /** Zero is accepted even when below minMs (e.g. TCP idle timeout "0s" disables it). */
  allowZero?: boolean;
  /** Only whole seconds are meaningful (CORS max-age is sent to browsers in seconds). */
  wholeSeconds?: boolean;
}

const FORMAT_HINT = 'a duration such as "10s", "1.5s", "500ms", "3m" or "1h30m"';

/** A duration field, validated for Go duration syntax and Istio's bounds. */
export function duration(opts: DurationOptions = { minMs: 1 }) {
  const { minMs = 0, allowZero = false, wholeSeconds = false } = opts;
  return z.string().superRefine((s, ctx) => {
    const ms = parseDurationMs(s);
    if (ms === null) {
      const why = s.startsWith('-') ? 'must not be negative' : `must be ${FORMAT_HINT} (got ${JSON.stringify(s)})`;
      report(ctx, 'duration', why);
      return;
    }
    if (ms < minMs && !(allowZero && ms === 0)) {
      report(ctx, 'min', `must be at least ${minMs}ms (got ${JSON.stringify(s)})`);
      return;
    }
    if (wholeSeconds && ms % 1000 !== 0) {
      report(ctx, 'duration_precision', `must be a whole number of seconds (got ${JSON.stringify(s)})`);
    }
  });
}
