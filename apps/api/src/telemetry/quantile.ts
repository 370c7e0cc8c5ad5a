import { TELEMETRY_DURATION_BOUNDS } from '@tern/xds';

/**
 * The q-quantile of a histogram (non-cumulative counts, last = +Inf) the way Prometheus'
 * histogram_quantile computes it: linear interpolation inside the bucket holding the rank; in the
 * +Inf bucket, the highest finite bound. null when the histogram is empty.
 */
export function quantile(q: number, counts: readonly number[], bounds: readonly number[] = TELEMETRY_DURATION_BOUNDS): number | null {
  let total = 0;
  for (const c of counts) total += c;
  if (total <= 0) return null;
  const rank = q * total;
  let cum = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (cum + c >= rank && c > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1]!;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      return lower + (upper - lower) * ((rank - cum) / c);
    }
    cum += c;
  }
  return bounds[bounds.length - 1]!;
}
