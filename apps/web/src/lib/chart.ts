// Pure helpers for the metric charts (components/metric-chart.tsx): scales, "nice" axis ticks,
// time ticks, value formatting with units, line paths with gaps, and the text summary that
// screen readers get instead of the picture.

export type Unit = 'rps' | 'percent' | 'ms' | 'count';

export interface Scale {
  (v: number): number;
  domain: [number, number];
  range: [number, number];
  invert(px: number): number;
}

/** A linear map from `domain` to `range`; a zero-width domain maps everything to the range's middle. */
export function linearScale(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const f = ((v: number) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0))) as Scale;
  f.domain = domain;
  f.range = range;
  f.invert = (px: number) => (r1 === r0 ? d0 : d0 + ((px - r0) / (r1 - r0)) * span);
  return f;
}

/**
 * Heckbert's nice number: 1, 2, 5 or 10 times a power of ten, close to `x` (rounded) or at least
 * `x` (not rounded, for ranges).
 */
export function niceNumber(x: number, round: boolean): number {
  if (!(x > 0) || !Number.isFinite(x)) return 0;
  const exp = Math.floor(Math.log10(x));
  const pow = 10 ** exp;
  const f = x / pow;
  let nf: number;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * pow;
}

/** Strip binary noise (0.1 + 0.2) from a tick value computed by repeated steps. */
function clean(v: number, step: number): number {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(v.toFixed(Math.min(20, digits)));
}

/**
 * About `count` evenly spaced round ticks covering [min, max]. The axis extends to the outer
 * ticks. An empty or flat range still gets a readable axis: [0, 1] for all zeros, else around
 * the value.
 */
export function niceTicks(min: number, max: number, count = 4): { min: number; max: number; step: number; ticks: number[] } {
  let lo = Number.isFinite(min) ? min : 0;
  let hi = Number.isFinite(max) ? max : 0;
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) {
    if (lo === 0) hi = 1;
    else if (lo > 0) lo = 0;
    else hi = 0;
  }
  const step = niceNumber(niceNumber(hi - lo, false) / Math.max(1, count), true);
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let i = 0; start + i * step <= end + step / 2; i++) ticks.push(clean(start + i * step, step));
  return { min: ticks[0]!, max: ticks[ticks.length - 1]!, step, ticks };
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const TIME_STEPS = [MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY];

/**
 * Time ticks at round clock times (multiples of 1 min … 7 d) inside [from, to], at most `max`
 * of them. `offsetMs` is the local time zone's offset (east of UTC positive), so that ticks
 * land on round local times (a day tick at local midnight).
 */
export function timeTicks(from: number, to: number, max = 6, offsetMs = 0): { step: number; ticks: number[] } {
  if (!(to > from)) return { step: MIN, ticks: [from] };
  const span = to - from;
  const step = TIME_STEPS.find((s) => span / s < max) ?? Math.ceil(span / max / DAY) * DAY;
  const ticks: number[] = [];
  const first = Math.ceil((from + offsetMs) / step) * step - offsetMs;
  for (let t = first; t <= to; t += step) ticks.push(t);
  return { step, ticks };
}

/** A tick label: the clock time, or the date when ticks are a day or more apart. */
export function formatTime(ms: number, step: number, utc = false): string {
  const d = new Date(ms);
  const hh = String(utc ? d.getUTCHours() : d.getHours()).padStart(2, '0');
  const mm = String(utc ? d.getUTCMinutes() : d.getMinutes()).padStart(2, '0');
  if (step < DAY) return `${hh}:${mm}`;
  const month = MONTHS[utc ? d.getUTCMonth() : d.getMonth()]!;
  return `${month} ${utc ? d.getUTCDate() : d.getDate()}`;
}
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A number in at most ~3 significant digits: 0.123, 1.23, 12.3, 123, 1.23k, 12.3M. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e4) return `${trim(v / 1e3)}k`;
  if (a >= 100) return String(Math.round(v));
  if (a >= 10) return trim(v, 1);
  if (a >= 0.01) return trim(v, 2);
  return v.toPrecision(2);
}

function trim(v: number, digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2): string {
  return String(Number(v.toFixed(digits)));
}

export const UNIT_LABEL: Record<Unit, string> = { rps: 'req/s', percent: '%', ms: 'ms', count: '' };

/** A value with its unit; latency from 1 s up in seconds; null (no data) as a dash. */
export function formatValue(v: number | null | undefined, unit: Unit): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  switch (unit) {
    case 'rps':
      return `${formatNumber(v)} req/s`;
    case 'percent':
      // 99.95 % must not round to 100 %: keep the digits that tell it apart.
      return `${v >= 99.9 && v < 100 ? v.toFixed(2) : v >= 10 ? trim(v, 1) : trim(v, 2)}%`;
    case 'ms':
      return v >= 1000 ? `${trim(v / 1000)} s` : `${formatNumber(v)} ms`;
    default:
      return formatNumber(v);
  }
}

/** A short axis label (no unit for percent/rps: the chart title carries it). */
export function formatTick(v: number, unit: Unit): string {
  if (unit === 'ms') return v >= 1000 ? `${trim(v / 1000)}s` : `${formatNumber(v)}`;
  if (unit === 'percent') return `${formatNumber(v)}%`;
  return formatNumber(v);
}

/** SVG path of a line through (x, y) points; a null y breaks the line (no traffic there). */
export function linePath(xs: readonly number[], ys: readonly (number | null)[]): string {
  let d = '';
  let pen = false;
  for (let i = 0; i < xs.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined || !Number.isFinite(y)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${round2(xs[i]!)},${round2(y)}`;
    pen = true;
  }
  return d;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** min / max / latest of the values that exist (null when there are none). */
export function summarize(values: readonly (number | null)[]): { min: number | null; max: number | null; latest: number | null } {
  let min: number | null = null;
  let max: number | null = null;
  let latest: number | null = null;
  for (const v of values) {
    if (v === null || !Number.isFinite(v)) continue;
    min = min === null ? v : Math.min(min, v);
    max = max === null ? v : Math.max(max, v);
    latest = v;
  }
  return { min, max, latest };
}

/** The chart's text alternative: "requests/s, last 1h: min 1 req/s, max 10 req/s, latest 5 req/s". */
export function describeSeries(title: string, windowLabel: string, series: readonly { name?: string; values: readonly (number | null)[] }[], unit: Unit): string {
  const parts = series.map((s) => {
    const { min, max, latest } = summarize(s.values);
    const prefix = s.name ? `${s.name} ` : '';
    if (latest === null) return `${prefix}no data`;
    return `${prefix}min ${formatValue(min, unit)}, max ${formatValue(max, unit)}, latest ${formatValue(latest, unit)}`;
  });
  return `${title}, last ${windowLabel}: ${parts.join('; ')}`;
}

/** The index of the x closest to `x` (xs ascending), for the hover readout. */
export function nearestIndex(xs: readonly number[], x: number): number {
  if (xs.length === 0) return -1;
  let lo = 0;
  let hi = xs.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= x) lo = mid;
    else hi = mid;
  }
  return Math.abs(xs[lo]! - x) <= Math.abs(xs[hi]! - x) ? lo : hi;
}

/** The golden metrics of a series point, as the charts show them. */
export interface GoldenPoint {
  t: string;
  requests: number;
  rps: number;
  errorPercent: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** Success rate in %, or null for a step without requests (a gap, not a 100 % or 0 %). */
export function successRate(p: Pick<GoldenPoint, 'requests' | 'errorPercent'>): number | null {
  return p.requests > 0 ? 100 - p.errorPercent : null;
}

/** Sort helper for metric columns: nulls (no traffic) last in both directions. */
export function compareMetric(a: number | null | undefined, b: number | null | undefined, dir: 'asc' | 'desc'): number {
  const an = a === null || a === undefined || Number.isNaN(a);
  const bn = b === null || b === undefined || Number.isNaN(b);
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  return dir === 'asc' ? a - b : b - a;
}
