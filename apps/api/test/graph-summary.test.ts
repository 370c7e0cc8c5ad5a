import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from './helpers.ts';
import { writeRows } from '../src/telemetry/store.ts';
import { BUCKETS, type RollupRow } from '../src/telemetry/rows.ts';

// graph.summary: golden metrics per destination service / workload and for the whole mesh, from
// real rollup rows in the database (percentiles from the summed histograms).

let api: TestApi;
const bucket = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);

function row(dst: string, requests: number, over: Partial<RollupRow> & { bucketIndex?: number } = {}): RollupRow {
  const [app, version] = dst.split('-') as [string, string];
  const d = new Array<number>(BUCKETS).fill(0);
  d[over.bucketIndex ?? 4] = requests;
  const { bucketIndex: _, ...rest } = over;
  return {
    bucket,
    srcWorkload: 'productpage-v1', srcNamespace: 'default', srcPrincipal: 'unknown', srcApp: 'productpage', srcVersion: 'v1',
    dstService: `${app}.default.svc.cluster.local`, dstWorkload: dst, dstNamespace: 'default', dstApp: app, dstVersion: version,
    codeClass: '2xx', protocol: 'http', mtls: false,
    requests, errors: 0, bytesIn: 0, bytesOut: 0, durationSumMs: 0, d,
    ...rest,
  };
}

before(async () => {
  api = await startTestApi();
  await writeRows(api.app.db.prisma, 'TelemetryMinute', [
    row('reviews-v1', 600),
    // A different code class is a different rollup key: the service sums both.
    row('reviews-v2', 30, { codeClass: '5xx', errors: 30, bucketIndex: 9 }),
    row('reviews-v2', 270),
    row('ratings-v1', 100, { srcWorkload: 'reviews-v2', srcApp: 'reviews', srcVersion: 'v2', dstNamespace: 'other', dstService: 'ratings.other.svc.cluster.local' }),
  ]);
});
after(() => api.close());

type Row = { service: string; namespace: string; workload: string | null; version: string | null; requests: number; rps: number; errors: number; errorPercent: number; p50: number | null; p95: number | null; health: string };

test('per service: summed requests, error %, health by Kiali thresholds, and percentiles of the merged histogram', async () => {
  const r = await api.rest('GET', '/api/v1/graph/summary?window=5m');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const rows = r.body.rows as Row[];
  assert.deepEqual(rows.map((x) => x.service), ['ratings.other.svc.cluster.local', 'reviews.default.svc.cluster.local']);
  const reviews = rows[1]!;
  assert.equal(reviews.requests, 900);
  assert.equal(reviews.errors, 30);
  assert.ok(Math.abs(reviews.errorPercent - 30 / 9) < 1e-9);
  assert.equal(reviews.health, 'degraded');
  assert.equal(reviews.workload, null, 'by service: no workload');
  const seconds = (Date.parse(r.body.to) - Date.parse(r.body.from)) / 1000;
  assert.ok(Math.abs(reviews.rps - 900 / seconds) < 1e-9);
  // 870 of 900 in the 10-25 ms bucket, 30 in a slower one: p50 inside 10-25, p99 beyond it.
  assert.ok(reviews.p50! > 10 && reviews.p50! <= 25, String(reviews.p50));
  assert.ok(r.body.total.p99 > 25, String(r.body.total.p99));
  assert.equal(r.body.total.requests, 1000);
  assert.equal(r.body.total.errors, 30);
  assert.ok(Math.abs(r.body.total.errorPercent - 3) < 1e-9);
});

test('per workload, and filtered by namespace', async () => {
  const r = await api.rest('GET', '/api/v1/graph/summary?window=5m&by=workload&namespace=default');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const rows = r.body.rows as Row[];
  assert.deepEqual(rows.map((x) => `${x.workload}:${x.version}:${x.requests}:${x.health}`), ['reviews-v1:v1:600:healthy', 'reviews-v2:v2:300:failing']);
  assert.equal(r.body.total.requests, 900);
});

test('an empty window is zeros and nulls; bad input names the field', async () => {
  const none = await api.rest('GET', '/api/v1/graph/summary?window=5m&namespace=nowhere');
  assert.equal(none.status, 200);
  assert.deepEqual(none.body.rows, []);
  assert.deepEqual(none.body.total, { requests: 0, rps: 0, errors: 0, errorPercent: 0, p50: null, p95: null, p99: null });
  const bad = await api.rest('GET', '/api/v1/graph/summary?window=2m');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.data?.issues?.[0]?.path ?? bad.body.issues?.[0]?.path, 'window');
  const by = await api.rest('GET', '/api/v1/graph/summary?by=pod');
  assert.equal(by.status, 400);
  const anon = await api.rest('GET', '/api/v1/graph/summary', undefined, { token: null });
  assert.equal(anon.status, 401);
});
