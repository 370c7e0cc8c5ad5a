'use client';
import { useQuery } from '@tanstack/react-query';
import { useId, useMemo, useState, type KeyboardEvent, type PointerEvent, type ReactNode } from 'react';
import type { RouterInputs, RouterOutputs } from '../lib/api-types.ts';
import {
  describeSeries,
  formatTick,
  formatTime,
  formatValue,
  linearScale,
  linePath,
  nearestIndex,
  niceTicks,
  successRate,
  timeTicks,
  UNIT_LABEL,
  type Unit,
} from '../lib/chart.ts';
import { useTRPC } from '../lib/trpc.ts';
import { ErrorMessage } from './ui.tsx';

// Time-series charts in plain SVG (no chart library): one small chart per golden metric, a text
// alternative for screen readers, and a readout that follows the pointer (or the arrow keys).

export interface ChartLine {
  name: string;
  values: readonly (number | null)[];
  /** A CSS colour (a variable, so the dark theme applies). */
  color: string;
}

const W = 320;
const H = 140;
const M = { top: 8, right: 10, bottom: 22, left: 40 };

export interface MetricChartProps {
  title: string;
  unit: Unit;
  /** Step start times (ms), ascending; one per value of every line. */
  times: readonly number[];
  lines: readonly ChartLine[];
  /** "10m", "1h": for the text summary. */
  windowLabel: string;
  /** The last step that is complete (the current one is still filling): the default readout. */
  latestIndex?: number;
  /** Fixed y range (success rate: 0-100). */
  yDomain?: [number, number];
  testId?: string;
}

export function MetricChart({ title, unit, times, lines, windowLabel, latestIndex, yDomain, testId }: MetricChartProps) {
  const [hover, setHover] = useState<number | null>(null);
  const titleId = useId();
  const geometry = useMemo(() => {
    const t0 = times[0] ?? 0;
    const t1 = times[times.length - 1] ?? t0;
    const x = linearScale([t0, t1], [M.left, W - M.right]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const l of lines) for (const v of l.values) if (v !== null && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const yt = yDomain ? niceTicks(yDomain[0], Math.max(yDomain[1], hi === -Infinity ? yDomain[1] : hi), 4) : niceTicks(Math.min(0, lo === Infinity ? 0 : lo), hi === -Infinity ? 0 : hi, 4);
    const y = linearScale([yt.min, yt.max], [H - M.bottom, M.top]);
    const tt = timeTicks(t0, t1, 6, -new Date(t0).getTimezoneOffset() * 60_000);
    const xs = times.map((t) => x(t));
    return { x, y, yt, tt, xs };
  }, [times, lines, yDomain]);
  const { x, y, yt, tt, xs } = geometry;
  const empty = times.length === 0 || lines.every((l) => l.values.every((v) => v === null));
  const summary = describeSeries(title, windowLabel, lines.map((l) => ({ ...(lines.length > 1 ? { name: l.name } : {}), values: latestIndex === undefined ? l.values : l.values.slice(0, latestIndex + 1) })), unit);
  const shown = hover ?? (latestIndex !== undefined && latestIndex >= 0 ? latestIndex : times.length - 1);

  const move = (e: PointerEvent<SVGSVGElement>) => {
    const box = e.currentTarget.getBoundingClientRect();
    if (box.width === 0) return;
    const vx = ((e.clientX - box.left) / box.width) * W;
    setHover(nearestIndex(xs, vx));
  };
  const key = (e: KeyboardEvent<SVGSVGElement>) => {
    if (times.length === 0) return;
    const at = hover ?? shown;
    if (e.key === 'ArrowLeft') setHover(Math.max(0, at - 1));
    else if (e.key === 'ArrowRight') setHover(Math.min(times.length - 1, at + 1));
    else if (e.key === 'Home') setHover(0);
    else if (e.key === 'End') setHover(times.length - 1);
    else return;
    e.preventDefault();
  };

  return (
    <figure className="chart" data-testid={testId} aria-labelledby={titleId}>
      <figcaption className="chart-head">
        <span id={titleId} className="chart-title">{title}</span>
        {!empty && shown >= 0 && <span className="muted chart-time" title={hover === null ? 'The last complete step; the dashed part is still filling' : undefined}>{formatTime(times[shown]!, 60_000)}</span>}
        {!empty && shown >= 0 && (
          <span className="chart-readout" data-testid="chart-readout" aria-live="off">
            {lines.map((l) => (
              <span key={l.name} className="chart-value">
                {lines.length > 1 && <span className="swatch" style={{ background: l.color }} aria-hidden="true" />}
                {lines.length > 1 ? `${l.name} ` : ''}
                <span data-testid={`value-${l.name}`}>{formatValue(l.values[shown] ?? null, unit)}</span>
              </span>
            ))}
          </span>
        )}
      </figcaption>
      {empty ? (
        <div className="chart-empty" style={{ aspectRatio: `${W} / ${H}` }}>No data in the last {windowLabel}.</div>
      ) : (
        <svg
          viewBox={`0 0 ${W} ${H}`}
          role="img"
          aria-label={summary}
          tabIndex={0}
          onPointerMove={move}
          onPointerLeave={() => setHover(null)}
          onKeyDown={key}
          onBlur={() => setHover(null)}
        >
          <title>{summary}</title>
          <g className="chart-grid">
            {yt.ticks.map((v) => (
              <g key={v}>
                <line x1={M.left} x2={W - M.right} y1={y(v)} y2={y(v)} />
                <text x={M.left - 4} y={y(v)} dy="0.32em" textAnchor="end">{formatTick(v, unit)}</text>
              </g>
            ))}
            {tt.ticks.map((t) => (
              <text key={t} x={x(t)} y={H - 6} textAnchor="middle">{formatTime(t, tt.step)}</text>
            ))}
            <line className="chart-axis" x1={M.left} x2={W - M.right} y1={H - M.bottom} y2={H - M.bottom} />
          </g>
          {lines.map((l) => {
            const ys = l.values.map((v) => (v === null ? null : y(v)));
            const single = l.values.filter((v) => v !== null).length === 1;
            // Steps after the last complete one are still filling: dashed, so a dip there reads as "so far".
            const cut = latestIndex !== undefined && latestIndex >= 0 && latestIndex < xs.length - 1 ? latestIndex : xs.length - 1;
            return (
              <g key={l.name}>
                <path d={linePath(xs.slice(0, cut + 1), ys.slice(0, cut + 1))} fill="none" stroke={l.color} strokeWidth={1.75} strokeLinejoin="round" />
                {cut < xs.length - 1 && <path d={linePath(xs.slice(cut), ys.slice(cut))} fill="none" stroke={l.color} strokeWidth={1.5} strokeDasharray="3 3" opacity={0.7} data-testid="in-progress" />}
                {/* A lone point has no line to draw: show it as a dot. */}
                {single && ys.map((py, i) => (py === null ? null : <circle key={i} cx={xs[i]} cy={py} r={2.5} fill={l.color} />))}
              </g>
            );
          })}
          {hover !== null && xs[hover] !== undefined && (
            <g className="chart-hover">
              <line x1={xs[hover]} x2={xs[hover]} y1={M.top} y2={H - M.bottom} />
              {lines.map((l) => {
                const v = l.values[hover];
                return v === null || v === undefined ? null : <circle key={l.name} cx={xs[hover]} cy={y(v)} r={3} fill={l.color} />;
              })}
            </g>
          )}
        </svg>
      )}
      {lines.length > 1 && (
        <ul className="chart-legend" aria-hidden="true">
          {lines.map((l) => <li key={l.name}><span className="swatch" style={{ background: l.color }} />{l.name}</li>)}
        </ul>
      )}
      <span className="sr-only">{UNIT_LABEL[unit] ? `Values in ${UNIT_LABEL[unit]}.` : ''}</span>
    </figure>
  );
}

export function ChartPlaceholder({ title, children }: { title: string; children: ReactNode }) {
  return (
    <figure className="chart">
      <figcaption className="chart-head"><span className="chart-title">{title}</span><span className="chart-readout">&nbsp;</span></figcaption>
      <div className="chart-empty" style={{ aspectRatio: `${W} / ${H}` }}>{children}</div>
    </figure>
  );
}

export type SeriesInput = RouterInputs['graph']['series'];
type SeriesData = RouterOutputs['graph']['series'];

const GOLDEN_TITLES = ['Requests/s', 'Success rate', 'Latency (ms)'] as const;

/** The three golden-metric charts of one series: requests/s, success rate, p50/p95/p99 latency. */
export function GoldenCharts({ data, windowLabel, now = Date.now() }: { data: SeriesData; windowLabel: string; now?: number }) {
  const times = useMemo(() => data.points.map((p) => Date.parse(p.t)), [data]);
  // The step in progress is drawn, but the readout starts on the last complete one.
  let latestIndex = times.length - 1;
  while (latestIndex > 0 && times[latestIndex]! + data.stepSeconds * 1000 > now) latestIndex--;
  const lines = useMemo(() => ({
    rps: [{ name: 'requests/s', values: data.points.map((p) => p.rps), color: 'var(--accent)' }],
    success: [{ name: 'success', values: data.points.map(successRate), color: 'var(--ok)' }],
    latency: [
      { name: 'p50', values: data.points.map((p) => p.p50), color: 'var(--chart-1)' },
      { name: 'p95', values: data.points.map((p) => p.p95), color: 'var(--chart-2)' },
      { name: 'p99', values: data.points.map((p) => p.p99), color: 'var(--chart-3)' },
    ],
  }), [data]);
  if (data.points.every((p) => p.requests === 0)) {
    return (
      <div className="charts" data-testid="golden-charts-empty">
        {GOLDEN_TITLES.map((t) => <ChartPlaceholder key={t} title={t}>No requests in the last {windowLabel}.</ChartPlaceholder>)}
      </div>
    );
  }
  return (
    <div className="charts" data-testid="golden-charts">
      <MetricChart title="Requests/s" unit="rps" times={times} lines={lines.rps} windowLabel={windowLabel} latestIndex={latestIndex} testId="chart-rps" />
      <MetricChart title="Success rate" unit="percent" times={times} lines={lines.success} windowLabel={windowLabel} latestIndex={latestIndex} yDomain={[0, 100]} testId="chart-success" />
      <MetricChart title="Latency (ms)" unit="ms" times={times} lines={lines.latency} windowLabel={windowLabel} latestIndex={latestIndex} testId="chart-latency" />
    </div>
  );
}

/** Fetches a golden-metric series and draws it; loading, error and no-traffic states included. */
export function SeriesCharts({ input, refetchMs = 10_000 }: { input: SeriesInput; refetchMs?: number }) {
  const trpc = useTRPC();
  const q = useQuery({ ...trpc.graph.series.queryOptions(input), refetchInterval: refetchMs });
  const windowLabel = input.window ?? '1h';
  if (q.isError) return <ErrorMessage error={q.error} title="Could not load the charts" />;
  if (q.isPending) {
    return (
      <div className="charts" data-testid="golden-charts-loading" role="status" aria-live="polite">
        {GOLDEN_TITLES.map((t) => <ChartPlaceholder key={t} title={t}>Loading…</ChartPlaceholder>)}
      </div>
    );
  }
  return <GoldenCharts data={q.data} windowLabel={windowLabel} now={q.dataUpdatedAt || Date.now()} />;
}

/** A node's or service's health (Kiali's thresholds, from the API) as a badge. */
export function HealthBadge({ health }: { health: string }) {
  const cls = health === 'healthy' ? 'ok' : health === 'degraded' ? 'warn' : health === 'failing' ? 'err' : 'neutral';
  return <span className={`badge ${cls}`}>{health}</span>;
}
