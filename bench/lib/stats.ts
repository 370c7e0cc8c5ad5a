// Small statistics and table helpers for the benchmarks. No dependencies.

export const now = (): number => performance.now();

/** Nearest-rank percentile of a list of samples (ms). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export const median = (samples: readonly number[]): number => percentile(samples, 50);

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  const mean = samples.reduce((a, b) => a + b, 0) / (samples.length || 1);
  return { n: samples.length, p50: percentile(samples, 50), p95: percentile(samples, 95), mean };
}

/** Milliseconds with a precision that suits the magnitude. */
export function ms(x: number): string {
  if (!Number.isFinite(x)) return '-';
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  const r = a / b;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(1)}x`;
}

export function pct(part: number, whole: number): string {
  if (!Number.isFinite(part) || !Number.isFinite(whole) || whole === 0) return '-';
  return `${Math.round((100 * part) / whole)}%`;
}

/** A plain-text table, numbers right-aligned; also usable as Markdown (`|` separated). */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => cells.every((r) => /^[-+]?[\d.,]+(x|%| ms)?$|^-$/.test(r[i] ?? '')));
  const fmt = (r: string[]) =>
    '| ' + r.map((c, i) => (numeric[i] && i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ') + ' |';
  const sep = '|' + widths.map((w, i) => (numeric[i] && i > 0 ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [fmt(headers), sep, ...cells.map(fmt)].join('\n');
}
