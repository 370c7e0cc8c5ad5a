import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  compareMetric,
  describeSeries,
  formatNumber,
  formatTick,
  formatTime,
  formatValue,
  linearScale,
  linePath,
  nearestIndex,
  niceNumber,
  niceTicks,
  successRate,
  summarize,
  timeTicks,
} from '../src/lib/chart.ts';
import { healthCounts, neighbourInDirection, nextSort, parseSort, seriesForEdge, seriesForNode } from '../src/lib/golden.ts';

describe('scales', () => {
  test('linear scale maps and inverts, including an inverted pixel range (y axes)', () => {
    const y = linearScale([0, 100], [200, 0]);
    assert.equal(y(0), 200);
    assert.equal(y(100), 0);
    assert.equal(y(25), 150);
    assert.equal(y.invert(150), 25);
  });
  test('a flat domain maps to the middle instead of dividing by zero', () => {
    const s = linearScale([5, 5], [0, 100]);
    assert.equal(s(5), 50);
    assert.ok(Number.isFinite(s.invert(10)));
  });
});

describe('nice numbers and ticks', () => {
  test('nice numbers are 1, 2, 5 or 10 times a power of ten', () => {
    assert.equal(niceNumber(0.37, true), 0.5);
    assert.equal(niceNumber(1.2, true), 1);
    assert.equal(niceNumber(2.6, true), 2);
    assert.equal(niceNumber(7.1, true), 10);
    assert.equal(niceNumber(1.2, false), 2);
    assert.equal(niceNumber(430, false), 500);
    assert.equal(niceNumber(0, true), 0);
    assert.equal(niceNumber(Number.NaN, true), 0);
  });
  test('ticks cover the data with round steps and no float noise', () => {
    const t = niceTicks(0, 10, 4);
    assert.deepEqual(t.ticks, [0, 2, 4, 6, 8, 10]);
    const f = niceTicks(0.1, 0.7, 4);
    assert.ok(f.ticks.every((v) => String(v).length <= 4), f.ticks.join(','));
    assert.ok(f.min <= 0.1 && f.max >= 0.7);
    const big = niceTicks(0, 1234, 4);
    assert.equal(big.min, 0);
    assert.ok(big.max >= 1234 && big.max <= 1500, String(big.max));
    assert.ok(big.ticks.length >= 3 && big.ticks.length <= 8);
  });
  test('empty and flat ranges still give a readable axis', () => {
    assert.deepEqual(niceTicks(0, 0).ticks.at(0), 0);
    assert.equal(niceTicks(0, 0).max, 1);
    const flat = niceTicks(10, 10);
    assert.equal(flat.min, 0);
    assert.ok(flat.max >= 10);
    assert.ok(niceTicks(Number.NaN, Number.POSITIVE_INFINITY).ticks.length >= 2);
    const swapped = niceTicks(10, 0);
    assert.equal(swapped.min, 0);
    assert.equal(swapped.max, 10);
  });
});

describe('time ticks and labels', () => {
  const t0 = Date.UTC(2026, 10, 26, 3, 7, 30);
  test('round clock times within the range, at most max of them', () => {
    const { step, ticks } = timeTicks(t0, t0 + 3_600_000, 6);
    assert.equal(step, 15 * 60_000);
    assert.ok(ticks.length <= 6 && ticks.length >= 3);
    assert.ok(ticks.every((t) => t % step === 0 && t >= t0 && t <= t0 + 3_600_000));
    assert.deepEqual(ticks.map((t) => formatTime(t, step, true)), ['03:15', '03:30', '03:45', '04:00']);
  });
  test('ten minutes: 2-minute ticks; a week: day ticks labelled with dates; zone offset shifts them', () => {
    assert.equal(timeTicks(t0, t0 + 600_000, 6).step, 2 * 60_000);
    const week = timeTicks(t0, t0 + 7 * 86_400_000, 8);
    assert.equal(week.step, 86_400_000);
    assert.equal(formatTime(week.ticks[0]!, week.step, true), 'Nov 27');
    const shifted = timeTicks(t0, t0 + 7 * 86_400_000, 8, 3_600_000);
    assert.equal((shifted.ticks[0]! + 3_600_000) % 86_400_000, 0, 'local midnight');
  });
  test('an empty range gives one tick', () => {
    assert.deepEqual(timeTicks(t0, t0).ticks, [t0]);
  });
});

describe('formatting', () => {
  test('numbers keep about three significant digits', () => {
    assert.equal(formatNumber(0), '0');
    assert.equal(formatNumber(0.1234), '0.12');
    assert.equal(formatNumber(5), '5');
    assert.equal(formatNumber(12.345), '12.3');
    assert.equal(formatNumber(123.4), '123');
    assert.equal(formatNumber(12_345), '12.3k');
    assert.equal(formatNumber(2_500_000), '2.5M');
    assert.equal(formatNumber(0.004), '0.0040');
    assert.equal(formatNumber(Number.NaN), '—');
  });
  test('values with units; null is a dash; 99.95 % does not round to 100 %', () => {
    assert.equal(formatValue(10, 'rps'), '10 req/s');
    assert.equal(formatValue(0.5, 'rps'), '0.5 req/s');
    assert.equal(formatValue(99.95, 'percent'), '99.95%');
    assert.equal(formatValue(100, 'percent'), '100%');
    assert.equal(formatValue(3.3333, 'percent'), '3.33%');
    assert.equal(formatValue(17.5, 'ms'), '17.5 ms');
    assert.equal(formatValue(2500, 'ms'), '2.5 s');
    assert.equal(formatValue(null, 'ms'), '—');
    assert.equal(formatTick(2500, 'ms'), '2.5s');
    assert.equal(formatTick(50, 'percent'), '50%');
  });
});

describe('paths, summaries, hover', () => {
  test('a null breaks the line into two segments', () => {
    assert.equal(linePath([0, 10, 20, 30], [1, null, 3, 4.005]), 'M0,1M20,3L30,4.01');
    assert.equal(linePath([], []), '');
  });
  test('summary ignores gaps; the text alternative names min, max and latest with units', () => {
    assert.deepEqual(summarize([null, 3, 1, null, 2, null]), { min: 1, max: 3, latest: 2 });
    assert.deepEqual(summarize([null]), { min: null, max: null, latest: null });
    assert.equal(describeSeries('Requests/s', '1h', [{ values: [1, 10, 5] }], 'rps'), 'Requests/s, last 1h: min 1 req/s, max 10 req/s, latest 5 req/s');
    assert.equal(
      describeSeries('Latency', '5m', [{ name: 'p50', values: [10] }, { name: 'p99', values: [null] }], 'ms'),
      'Latency, last 5m: p50 min 10 ms, max 10 ms, latest 10 ms; p99 no data',
    );
  });
  test('nearest index by binary search', () => {
    const xs = [0, 10, 20, 30];
    assert.equal(nearestIndex(xs, -5), 0);
    assert.equal(nearestIndex(xs, 14), 1);
    assert.equal(nearestIndex(xs, 16), 2);
    assert.equal(nearestIndex(xs, 99), 3);
    assert.equal(nearestIndex([], 1), -1);
  });
  test('success rate is a gap without requests; metric sort puts no-traffic rows last both ways', () => {
    assert.equal(successRate({ requests: 0, errorPercent: 0 }), null);
    assert.equal(successRate({ requests: 10, errorPercent: 10 }), 90);
    const vals = [3, null, 1, 2];
    assert.deepEqual([...vals].sort((a, b) => compareMetric(a, b, 'asc')), [1, 2, 3, null]);
    assert.deepEqual([...vals].sort((a, b) => compareMetric(a, b, 'desc')), [3, 2, 1, null]);
  });
});

describe('golden metrics glue (lib/golden.ts)', () => {
  type N = Parameters<typeof seriesForNode>[0];
  const node = (over: Partial<N>): N => ({ id: 'x', kind: 'workload', namespace: 'default', name: 'x', app: null, version: null, workload: null, service: null, health: 'healthy', inboundRps: 0, outboundRps: 0, errorPercent: 0, ...over });
  const reviews = node({ id: 'workload:default:reviews-v1', name: 'reviews-v1', workload: 'reviews-v1', inboundRps: 10 });
  const caller = node({ id: 'workload:default:productpage-v1', name: 'productpage-v1', workload: 'productpage-v1', outboundRps: 10 });

  test('a workload: inbound by default, outbound for a pure caller, or as asked', () => {
    assert.deepEqual(seriesForNode(reviews, '10m')?.input, { window: '10m', workload: 'reviews-v1', namespace: 'default', direction: 'inbound' });
    assert.equal(seriesForNode(caller, '10m')?.input.direction, 'outbound');
    assert.equal(seriesForNode(reviews, '10m', 'outbound')?.input.direction, 'outbound');
  });
  test('services, external hosts, passthrough, unknown callers and versioned apps', () => {
    assert.deepEqual(seriesForNode(node({ kind: 'service', service: 'reviews.default.svc.cluster.local' }), '1h')?.input, { window: '1h', service: 'reviews.default.svc.cluster.local' });
    assert.deepEqual(seriesForNode(node({ kind: 'passthrough', name: 'PassthroughCluster' }), '1h')?.input, { window: '1h', service: 'PassthroughCluster' });
    assert.deepEqual(seriesForNode(node({ kind: 'unknown' }), '1h')?.input, { window: '1h', workload: 'unknown', namespace: 'unknown', direction: 'outbound' });
    const app = seriesForNode(node({ kind: 'app', app: 'reviews', version: 'v2' }), '1h');
    assert.deepEqual(app?.input, { window: '1h', service: 'reviews.default.svc.cluster.local' });
    assert.match(app!.caption, /all versions/);
    assert.equal(seriesForNode(node({ kind: 'workload', workload: null }), '1h'), null);
  });
  test('an edge narrows the destination to the calling workload; an app caller cannot be narrowed', () => {
    const nodes = new Map([reviews, caller].map((n) => [n.id, n]));
    const e = { id: 'e', source: caller.id, target: reviews.id, protocol: 'http' as const, requests: 1, rps: 1, errors: 0, errorPercent: 0, p50: 1, p95: 1, p99: 1, bytesIn: 0, bytesOut: 0, bytesPerSecond: 0, mtlsShare: 0 };
    assert.deepEqual(seriesForEdge(e, nodes, '5m')?.input, { window: '5m', workload: 'reviews-v1', namespace: 'default', direction: 'inbound', sourceWorkload: 'productpage-v1', sourceNamespace: 'default' });
    const appCaller = node({ id: 'app:default:productpage:v1', kind: 'app', app: 'productpage' });
    const viaApp = seriesForEdge({ ...e, source: appCaller.id }, new Map([...nodes, [appCaller.id, appCaller]]), '5m');
    assert.equal(viaApp?.input.sourceWorkload, undefined);
    assert.match(viaApp!.caption, /every caller/);
    assert.equal(seriesForEdge({ ...e, source: 'missing' }, nodes, '5m'), null);
  });
  test('arrow keys move to the nearest node in that direction, straight ahead before diagonal', () => {
    const pos = new Map([
      ['a', { x: 0, y: 0 }],
      ['right-far', { x: 300, y: 0 }],
      ['right-diag', { x: 200, y: 150 }],
      ['below', { x: 10, y: 100 }],
    ]);
    assert.equal(neighbourInDirection('a', 'ArrowRight', pos), 'right-far');
    assert.equal(neighbourInDirection('a', 'ArrowDown', pos), 'below');
    assert.equal(neighbourInDirection('a', 'ArrowLeft', pos), null);
    assert.equal(neighbourInDirection('a', 'ArrowUp', pos), null);
    assert.equal(neighbourInDirection('nope', 'ArrowUp', pos), null);
  });
  test('health counts and sort parameters', () => {
    assert.deepEqual(healthCounts([{ health: 'healthy' }, { health: 'failing' }, { health: 'failing' }, { health: 'idle' }, { health: 'na' }]), { healthy: 1, degraded: 0, failing: 2, idle: 1 });
    assert.deepEqual(parseSort('-rps'), { key: 'rps', dir: 'desc' });
    assert.deepEqual(parseSort('p95'), { key: 'p95', dir: 'asc' });
    assert.deepEqual(parseSort('bogus'), { key: 'name', dir: 'asc' });
    assert.deepEqual(parseSort(null), { key: 'name', dir: 'asc' });
    assert.equal(nextSort({ key: 'name', dir: 'asc' }, 'rps'), '-rps', 'a metric starts busiest first');
    assert.equal(nextSort({ key: 'rps', dir: 'desc' }, 'rps'), 'rps');
    assert.equal(nextSort({ key: 'rps', dir: 'asc' }, 'rps'), '-rps');
    assert.equal(nextSort({ key: 'rps', dir: 'asc' }, 'name'), 'name');
  });
});
