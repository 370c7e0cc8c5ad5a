import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from './helpers.ts';
import { TelemetryService } from '../src/telemetry/service.ts';
import { writeRows } from '../src/telemetry/store.ts';
import { BUCKETS, type RollupRow } from '../src/telemetry/rows.ts';
import { planWindow } from '../src/telemetry/query.ts';

// Downsampling against the real database with a controlled clock: hour rows keep the minutes'
// totals, retention drops minutes then hours, and long windows read hours plus the current hour's
// minutes.

const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 20, 10, 0, 0);
let api: TestApi;
let now = T0;

function row(minute: number, over: Partial<RollupRow> = {}): RollupRow {
  const d = new Array<number>(BUCKETS).fill(0);
  d[4] = 8; // 10-25 ms
  d[7] = 2; // 100-250 ms
  return {
    bucket: new Date(T0 + minute * 60_000),
    srcWorkload: 'productpage-v1', srcNamespace: 'default', srcPrincipal: 'unknown', srcApp: 'productpage', srcVersion: 'v1',
    dstService: 'reviews.default.svc.cluster.local', dstWorkload: 'reviews-v1', dstNamespace: 'default', dstApp: 'reviews', dstVersion: 'v1',
    codeClass: '2xx', protocol: 'http', mtls: minute % 2 === 0,
    requests: 10, errors: 0, bytesIn: 1000, bytesOut: 5_000_000_000, durationSumMs: 500, d,
    ...over,
  };
}

before(async () => {
  api = await startTestApi({ telemetryRollupIntervalMs: 3_600_000 });
});
after(() => api.close());

function service() {
  return new TelemetryService(api.app.db.prisma, { flushMs: 60_000, reportIntervalMs: 0, minuteRetentionHours: 24, hourRetentionDays: 30, rollupIntervalMs: 3_600_000, domainSuffix: 'cluster.local', now: () => now });
}

test('window planning: minutes within the minute retention, hours + the current hour beyond', () => {
  const m = planWindow('1h', T0 + 30 * 60_000 + 5000, 24);
  assert.equal(m.resolution, 'minute');
  assert.equal(m.from, T0 - 30 * 60_000);
  const h = planWindow('7d', T0 + 30 * 60_000, 24);
  assert.equal(h.resolution, 'hour');
  assert.equal(h.from, T0 - 7 * 24 * H);
  assert.deepEqual(h.params.map((d) => d.getTime()), [T0 - 7 * 24 * H, T0]);
});

test('downsampling keeps totals; retention removes minutes after 24 h and hours after 30 days', async () => {
  const prisma = api.app.db.prisma;
  // 3 hours of minutes: 180 rows of 10 requests, 5xx in one of them.
  const rows: RollupRow[] = [];
  for (let m = 0; m < 180; m++) rows.push(row(m));
  rows.push(row(61, { codeClass: '5xx', errors: 4, requests: 4 }));
  await writeRows(prisma, 'TelemetryMinute', rows);
  // Increments add up on the same key.
  await writeRows(prisma, 'TelemetryMinute', [row(0)]);

  const svc = service();
  now = T0 + 3 * H + 10 * 60_000;
  await svc.rollups.run();
  await svc.rollups.run(); // idempotent
  const totals = async (table: string) =>
    (await prisma.$queryRawUnsafe<{ r: number; e: number; b: number; d4: number; n: number }[]>(`SELECT sum("requests")::float8 r, sum("errors")::float8 e, sum("bytesOut")::float8 b, sum("d4")::float8 d4, count(*)::float8 n FROM "${table}"`))[0]!;
  const minutes = await totals('TelemetryMinute');
  const hours = await totals('TelemetryHour');
  assert.equal(minutes.r, 1814);
  assert.deepEqual({ ...hours, n: 0 }, { ...minutes, n: 0 });
  assert.equal(hours.n, 3 * 2 + 1, 'per hour: mtls yes/no, plus the one 5xx key in the second hour');
  assert.equal(hours.b, 182 * 5_000_000_000, 'bytes beyond 32 bits');

  // The graph for 7 days reads hours (+ the current hour's minutes) and agrees with the minutes.
  let g = await svc.graph({ window: '7d', granularity: 'workload' });
  assert.equal(g.resolution, 'hour');
  assert.equal(g.edges[0]!.requests, 1814);
  assert.equal(g.edges[0]!.errors, 4);
  assert.equal(g.edges[0]!.mtlsShare, 910 / 1814);
  const h6 = await svc.graph({ window: '6h', granularity: 'workload' });
  assert.equal(h6.resolution, 'minute');
  assert.equal(h6.edges[0]!.requests, 1814);

  // Two days later the minutes are gone, the hours still hold everything.
  now = T0 + 50 * H;
  await svc.rollups.run();
  assert.equal((await totals('TelemetryMinute')).n, 0);
  g = await svc.graph({ window: '7d', granularity: 'workload' });
  assert.equal(g.edges[0]!.requests, 1814);
  assert.ok(g.edges[0]!.p50! > 10 && g.edges[0]!.p50! <= 25);
  const s = await svc.series({ window: '7d', direction: 'inbound', service: 'reviews.default.svc.cluster.local' });
  assert.equal(s.stepSeconds, 3 * 3600);
  assert.equal(s.points.reduce((a, p) => a + p.requests, 0), 1814);

  // Past the hour retention: gone.
  now = T0 + 31 * 24 * H;
  await svc.rollups.run();
  assert.equal((await totals('TelemetryHour')).n, 0);
  await svc.stop();
});
