import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createTelemetryClient, TELEMETRY_DURATION_BOUNDS, type TelemetryClient, type TelemetryHttpSeries, type TelemetryLabels, type TelemetryReportRequest, type TelemetryReportResponse } from '@tern/xds';
import { onPostgres, openTestDatabase, startTestApi, type TestApi } from './helpers.ts';
import { TelemetryIngest } from '../src/telemetry/ingest.ts';

// Reports over real gRPC into a real control plane and database: exact counts, reset handling on
// either side's restart, duplicates, bad reports, and the graph API's answers and 400s.

const B = TELEMETRY_DURATION_BOUNDS.length + 1;

function labels(over: Partial<TelemetryLabels> = {}): TelemetryLabels {
  return {
    reporter: 'destination',
    source_workload: 'productpage-v1', source_workload_namespace: 'default', source_principal: 'unknown', source_app: 'productpage', source_version: 'v1',
    destination_workload: 'reviews-v1', destination_workload_namespace: 'default', destination_principal: 'unknown', destination_app: 'reviews', destination_version: 'v1',
    destination_service: 'reviews.default.svc.cluster.local', destination_service_name: 'reviews', destination_service_namespace: 'default',
    connection_security_policy: 'none',
    ...over,
  };
}

/** n requests with code, each with `ms` latency (all in one bucket). */
function series(l: number, code: number, n: number, ms: number): TelemetryHttpSeries {
  const d = new Array<number>(B).fill(0);
  let i = TELEMETRY_DURATION_BOUNDS.findIndex((b) => ms <= b);
  if (i < 0) i = B - 1;
  d[i] = n;
  return { l, p: 'http', c: code, f: '-', g: -1, n, d, ds: n * ms, rq: n * 10, rs: n * 100 };
}

function add(a: TelemetryHttpSeries, b: TelemetryHttpSeries): TelemetryHttpSeries {
  return { ...a, n: a.n + b.n, d: a.d.map((x, i) => x + b.d[i]!), ds: a.ds + b.ds, rq: a.rq + b.rq, rs: a.rs + b.rs };
}

function report(boot: string, seq: number, http: TelemetryHttpSeries[], lbls: TelemetryLabels[] = [labels()], node = 'reviews-v1.default'): TelemetryReportRequest {
  return { v: 1, node, boot, seq, labels: lbls, http, tcp: [] };
}

function send(c: TelemetryClient, r: unknown): Promise<TelemetryReportResponse> {
  return new Promise((resolve, reject) => c.Report(r as TelemetryReportRequest, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!))));
}

type Edge = { source: string; target: string; requests: number; errors: number; errorPercent: number; p50: number | null; p95: number | null; p99: number | null; bytesIn: number; bytesOut: number; mtlsShare: number };

async function edge(api: TestApi, source = 'workload:default:productpage-v1', target = 'workload:default:reviews-v1', q = 'window=1h'): Promise<Edge | undefined> {
  const r = await api.rest('GET', `/api/v1/graph?${q}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body.edges as Edge[]).find((e) => e.source === source && e.target === target);
}

describe('telemetry ingest over gRPC', () => {
  let api: TestApi;
  let client: TelemetryClient;
  before(async () => {
    api = await startTestApi({ telemetryFlushMs: 60_000 }, undefined, { xds: true });
    client = createTelemetryClient(api.xdsAddress!, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await api.close();
  });

  test('a known pattern: 600 requests, 6 failures, known latencies -> exact counts, 1% errors, percentiles in the right bucket', async () => {
    // 400 at 30 ms (25-50 bucket, 6 of them 503), 200 at 120 ms (100-250 bucket).
    const ok30 = series(0, 200, 394, 30);
    const fail = series(0, 503, 6, 30);
    const ok120 = series(0, 200, 200, 120);
    // Sent in two cumulative steps: the second carries everything.
    const half = { ...ok30, n: 200, d: ok30.d.map((x) => (x ? 200 : 0)), ds: 200 * 30, rq: 2000, rs: 20000 };
    await send(client, report('boot-a', 1, [half]));
    const res = await send(client, report('boot-a', 2, [ok30, fail, ok120]));
    assert.equal(res.seq, 2);
    await api.app.telemetry.ingest.flush();
    const e = await edge(api);
    assert.ok(e, 'edge productpage-v1 -> reviews-v1');
    assert.equal(e.requests, 600);
    assert.equal(e.errors, 6);
    assert.equal(e.errorPercent, 1);
    assert.ok(e.p50! > 25 && e.p50! <= 50, `p50 ${e.p50}`);
    assert.ok(e.p95! > 100 && e.p95! <= 250, `p95 ${e.p95}`);
    assert.ok(e.p99! > 100 && e.p99! <= 250, `p99 ${e.p99}`);
    assert.equal(e.bytesIn, 6000);
    assert.equal(e.bytesOut, 60000);
    assert.equal(e.mtlsShare, 0);
    const g = await api.rest('GET', '/api/v1/graph?window=1h');
    const reviews = g.body.nodes.find((n: { id: string }) => n.id === 'workload:default:reviews-v1');
    assert.equal(reviews.health, 'degraded', '1% 5xx is over Kiali’s 0.1% threshold');
    assert.equal(g.body.nodes.find((n: { id: string }) => n.id === 'workload:default:productpage-v1').health, 'idle');
  });

  test('a repeated report (same boot, same seq) is not counted twice; a sidecar restart (new boot) counts from zero', async () => {
    const l = [labels({ destination_workload: 'ratings-v1', destination_app: 'ratings', destination_service: 'ratings.default.svc.cluster.local' })];
    const target = 'workload:default:ratings-v1';
    await send(client, report('r-1', 1, [series(0, 200, 100, 5)], l, 'ratings'));
    await send(client, report('r-1', 2, [series(0, 200, 150, 5)], l, 'ratings'));
    // The ACK was lost, the proxy sends the same seq again.
    await send(client, report('r-1', 2, [series(0, 200, 150, 5)], l, 'ratings'));
    // Restart mid-window: the new process starts again from zero.
    await send(client, report('r-2', 1, [series(0, 200, 30, 5)], l, 'ratings'));
    // A counter that goes down without a new boot id is a reset too.
    await send(client, report('r-2', 2, [series(0, 200, 10, 5)], l, 'ratings'));
    await api.app.telemetry.ingest.flush();
    const e = await edge(api, 'workload:default:productpage-v1', target);
    assert.equal(e?.requests, 150 + 30 + 10);
    assert.equal(api.app.telemetry.ingest.stats.duplicates >= 1, true);
  });

  test('bad reports are refused with INVALID_ARGUMENT naming the field', async () => {
    await assert.rejects(send(client, { ...report('b', 1, [series(0, 200, 1, 1)]), seq: 0 }), (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /seq: must be an integer >= 1/.test(err.details));
    const bad = report('b', 1, [{ ...series(0, 200, 1, 1), d: [1, 2] }]);
    await assert.rejects(send(client, bad), (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /http\[0\]\.d: must be an array of 20 bucket counts/.test(err.details));
    await assert.rejects(send(client, report('b', 1, [series(3, 200, 1, 1)])), (err: grpc.ServiceError) => /http\[0\]\.l: must be an index into labels/.test(err.details));
    await assert.rejects(send(client, report('b', 1, [], [{ ...labels(), reporter: 'sideways' as 'source' }])), (err: grpc.ServiceError) => /labels\[0\]\.reporter/.test(err.details));
    // The control plane's own /metrics counts them.
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(metrics, /tern_telemetry_reports_total\{outcome="invalid"\} [1-9]/);
    assert.match(metrics, /tern_telemetry_reports_total\{outcome="counted"\} [1-9]/);
  });

  test('source-reported series count only where no destination sidecar answered (external hosts, passthrough)', async () => {
    const l = [
      labels({ reporter: 'source', destination_workload: 'unknown', destination_app: 'unknown', destination_version: 'unknown', destination_service: 'api.example.com', destination_workload_namespace: 'unknown', destination_service_namespace: 'unknown' }),
      // Also reported by the destination: must not be counted twice.
      labels({ reporter: 'source' }),
      labels({ reporter: 'source', destination_workload: 'unknown', destination_service: 'PassthroughCluster', destination_workload_namespace: 'unknown', destination_service_namespace: 'unknown' }),
    ];
    await send(client, report('s-1', 1, [series(0, 200, 7, 40), series(1, 200, 1000, 40), series(2, 502, 3, 40)], l, 'productpage'));
    await api.app.telemetry.ingest.flush();
    const g = await api.rest('GET', '/api/v1/graph?window=1h');
    const ext = g.body.nodes.find((n: { id: string }) => n.id === 'service:api.example.com');
    assert.equal(ext?.kind, 'external');
    const pass = g.body.nodes.find((n: { id: string }) => n.id === 'passthrough');
    assert.equal(pass?.health, 'failing');
    const e = g.body.edges.find((x: Edge) => x.target === 'service:api.example.com');
    assert.equal(e.requests, 7);
    const reviewsEdge = await edge(api);
    assert.equal(reviewsEdge?.requests, 600, 'source-reported copy of an answered request is not added');
  });

  test('granularities: service, versioned app; namespace filter', async () => {
    const svc = await api.rest('GET', '/api/v1/graph?window=1h&granularity=service');
    assert.ok(svc.body.edges.some((e: Edge) => e.source === 'workload:default:productpage-v1' && e.target === 'service:reviews.default.svc.cluster.local'));
    const app = await api.rest('GET', '/api/v1/graph?window=1h&granularity=app');
    const e = app.body.edges.find((x: Edge) => x.source === 'app:default:productpage:v1' && x.target === 'app:default:reviews:v1');
    assert.equal(e?.requests, 600);
    const other = await api.rest('GET', '/api/v1/graph?window=1h&namespace=elsewhere');
    assert.equal(other.status, 200);
    assert.deepEqual(other.body.edges, []);
  });

  test('golden-metric series for a service, a workload and an edge add up to the graph', async () => {
    const sum = (pts: { requests: number }[]) => pts.reduce((a, p) => a + p.requests, 0);
    const s = await api.rest('GET', '/api/v1/graph/series?window=1h&service=reviews.default.svc.cluster.local');
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal(s.body.stepSeconds, 60);
    assert.equal(sum(s.body.points), 600);
    const withData = s.body.points.filter((p: { requests: number }) => p.requests > 0);
    assert.equal(withData.length, 1);
    assert.equal(withData[0].errorPercent, 1);
    const w = await api.rest('GET', '/api/v1/graph/series?window=1h&workload=productpage-v1&namespace=default&direction=outbound');
    // reviews 600, ratings 190, the external host 7, passthrough 3.
    assert.equal(sum(w.body.points), 600 + 190 + 7 + 3);
    const ed = await api.rest('GET', '/api/v1/graph/series?window=1h&workload=reviews-v1&namespace=default&sourceWorkload=productpage-v1&sourceNamespace=default');
    assert.equal(sum(ed.body.points), 600);
  });

  test('bad graph input gets a 400 naming the field', async () => {
    const w = await api.rest('GET', '/api/v1/graph?window=2m');
    assert.equal(w.status, 400);
    assert.match(w.body.message, /window/);
    assert.equal(w.body.data.issues[0].path, 'window');
    const ns = await api.rest('GET', '/api/v1/graph?namespace=Bad_NS');
    assert.equal(ns.status, 400);
    assert.equal(ns.body.data.issues[0].path, 'namespace');
    const g = await api.rest('GET', '/api/v1/graph?granularity=pods');
    assert.equal(g.status, 400);
    assert.equal(g.body.data.issues[0].path, 'granularity');
    const s = await api.rest('GET', '/api/v1/graph/series?window=1h');
    assert.equal(s.status, 400);
    assert.equal(s.body.data.issues[0].path, 'service');
    const anon = await api.rest('GET', '/api/v1/graph', undefined, { token: null });
    assert.equal(anon.status, 401);
  });

  test('live updates: a tRPC subscription over SSE sends the graph, then again after a write', async () => {
    const viewer = await api.makeToken('viewer');
    const ac = new AbortController();
    const input = encodeURIComponent(JSON.stringify({ window: '1h', minIntervalSeconds: 1 }));
    const res = await fetch(`${api.url}/api/trpc/graph.live?input=${input}`, { headers: { authorization: `Bearer ${viewer}` }, signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const graphs = () => text.split('\n').filter((l) => l.startsWith('data: ') && l.includes('"edges"'));
    const read = async (n: number) => {
      while (graphs().length < n) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += Buffer.from(value).toString('utf8');
      }
    };
    await read(1);
    const l = [labels({ destination_workload: 'details-v1', destination_app: 'details', destination_service: 'details.default.svc.cluster.local' })];
    await send(client, report('d-1', 1, [series(0, 200, 5, 5)], l, 'details'));
    await api.app.telemetry.ingest.flush();
    await read(2);
    assert.match(graphs()[1]!, /workload:default:details-v1/);
    ac.abort();
    await reader.cancel().catch(() => undefined);
  });
});

describe('control-plane restarts', () => {
  test('a restarted control plane diffs against the stored cursor: no double count, nothing lost', async () => {
    const db = await openTestDatabase();
    try {
      let api = await startTestApi({ telemetryFlushMs: 60_000 }, db, { xds: true });
      let client = createTelemetryClient(api.xdsAddress!, grpc.credentials.createInsecure());
      await send(client, report('p-1', 1, [series(0, 200, 100, 5)]));
      client.close();
      await api.close(); // flushes on the way out
      api = await startTestApi({ telemetryFlushMs: 60_000 }, db, { xds: true });
      client = createTelemetryClient(api.xdsAddress!, grpc.credentials.createInsecure());
      // The first report after the restart is cumulative: 100 of it were counted before.
      await send(client, report('p-1', 2, [series(0, 200, 130, 5)]));
      await api.app.telemetry.ingest.flush();
      assert.equal((await edge(api))?.requests, 130);

      // A crash: counted in memory but never written. A fresh ingest (new process) on the same
      // database diffs the next report against the last written cursor: the lost delta comes back.
      await send(client, report('p-1', 3, [series(0, 200, 170, 5)]));
      const fresh = new TelemetryIngest(api.app.db.prisma, { flushMs: 60_000 });
      await fresh.ingest(report('p-1', 4, [series(0, 200, 200, 5)]));
      await fresh.flush();
      assert.equal((await edge(api))?.requests, 200);
      // (the crashed one's pending rows are dropped: it "died")
      client.close();
      await api.close().catch(() => undefined);
    } finally {
      await db.drop();
    }
  });
});

// Two replicas on one PostgreSQL: a proxy that moves from A to B and back must not be counted
// against A's stale cursor (A sees the gap in seq and reloads the stored one).
if (onPostgres) {
  describe('replicas sharing one database', () => {
    test('a proxy moving between replicas is counted once', async () => {
      const db = await openTestDatabase();
      const a = await startTestApi({ telemetryFlushMs: 60_000 }, db, { xds: true });
      const b = await startTestApi({ telemetryFlushMs: 60_000 }, db, { xds: true });
      const ca = createTelemetryClient(a.xdsAddress!, grpc.credentials.createInsecure());
      const cb = createTelemetryClient(b.xdsAddress!, grpc.credentials.createInsecure());
      try {
        await send(ca, report('m-1', 1, [series(0, 200, 100, 5)]));
        await a.app.telemetry.ingest.flush();
        await send(cb, report('m-1', 2, [series(0, 200, 150, 5)]));
        await b.app.telemetry.ingest.flush();
        await send(ca, report('m-1', 3, [series(0, 200, 200, 5)]));
        await a.app.telemetry.ingest.flush();
        assert.equal((await edge(a))?.requests, 200);
        assert.equal((await edge(b))?.requests, 200);
      } finally {
        ca.close();
        cb.close();
        await a.close();
        await b.close();
        await db.drop();
      }
    });
  });
}
