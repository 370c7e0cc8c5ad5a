import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { telemetryServiceDefinition, type TelemetryReportRequest, type TelemetryReportResponse } from '@tern/xds';
import type { ClusterConfig } from '../src/config/model.ts';
import { LabelCache, inboundServiceOf } from '../src/telemetry/labels.ts';
import { Metrics } from '../src/telemetry/metrics.ts';
import { identityFromNodeMetadata } from '../src/telemetry/identity.ts';
import { TelemetryReporter } from '../src/telemetry/reporter.ts';

// The sidecar's side of telemetry: Istio's destination labels on inbound requests, and the
// reporter against a real gRPC server speaking the telemetry service.

const self = { workload: 'productpage-v1', namespace: 'default', app: 'productpage', version: 'v1', principal: '' };
const inboundCluster = (metadata?: object) => ({ name: 'inbound|9080||', ...(metadata ? { metadata } : {}) }) as unknown as ClusterConfig;

describe('inbound destination labels', () => {
  test('the service is the FQDN of the own service, app/version from LABELS (not the workload name)', () => {
    const m = new Metrics();
    const labels = new LabelCache(m, self);
    const b = labels.inbound(undefined, inboundCluster());
    assert.equal(b.set.destination_service, 'productpage.default.svc.cluster.local');
    assert.equal(b.set.destination_service_name, 'productpage');
    assert.equal(b.set.destination_service_namespace, 'default');
    assert.equal(b.set.destination_app, 'productpage');
    assert.equal(b.set.destination_version, 'v1');
    assert.equal(b.set.destination_workload, 'productpage-v1');
    assert.equal(b.set.reporter, 'destination');
  });

  test('Istio’s cluster metadata (filter_metadata.istio.services) wins', () => {
    const svc = inboundServiceOf(inboundCluster({ filter_metadata: { istio: { services: [{ host: 'pages.web.svc.example.org', name: 'pages', namespace: 'web' }] } } }), self);
    assert.deepEqual(svc, { host: 'pages.web.svc.example.org', name: 'pages', namespace: 'web' });
  });

  test('without an app label: the workload name, never "unknown" service with a known workload', () => {
    const svc = inboundServiceOf(inboundCluster(), { ...self, app: 'unknown' });
    assert.deepEqual(svc, { host: 'productpage-v1', name: 'productpage-v1', namespace: 'default' });
  });

  test('node metadata: LABELS as a struct or a JSON string; workload and namespace from an Istio node id', () => {
    assert.deepEqual(identityFromNodeMetadata({ LABELS: '{"app":"reviews","version":"v2"}', NAMESPACE: 'shop', WORKLOAD_NAME: 'reviews-v2' }), {
      workload: 'reviews-v2', namespace: 'shop', app: 'reviews', version: 'v2', principal: '',
    });
    assert.deepEqual(identityFromNodeMetadata({ LABELS: { 'service.istio.io/canonical-name': 'rv', 'service.istio.io/canonical-revision': '3' } }, 'sidecar~10.0.0.5~reviews-v3-7d9f.shop~shop.svc.cluster.local'), {
      workload: 'reviews-v3-7d9f', namespace: 'shop', app: 'rv', version: '3', principal: '',
    });
    assert.equal(identityFromNodeMetadata({ LABELS: 'not json' }).app, 'unknown');
  });
});

async function telemetryServer(handler: (r: TelemetryReportRequest) => TelemetryReportResponse | grpc.ServiceError): Promise<{ address: string; server: grpc.Server; reports: TelemetryReportRequest[] }> {
  const reports: TelemetryReportRequest[] = [];
  const server = new grpc.Server();
  server.addService(telemetryServiceDefinition(), {
    Report: (call: grpc.ServerUnaryCall<TelemetryReportRequest, TelemetryReportResponse>, cb: grpc.sendUnaryData<TelemetryReportResponse>) => {
      reports.push(call.request);
      const out = handler(call.request);
      if ('code' in out) cb(out);
      else cb(null, out);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { address: `127.0.0.1:${port}`, server, reports };
}

describe('reporter', () => {
  test('reports are cumulative, carry boot id and increasing seq, labels once per label set; a failed report’s counts come with the next one', async () => {
    const m = new Metrics();
    const labels = new LabelCache(m, self);
    const base = labels.inbound('reviews-v1;default;reviews;v1;', inboundCluster());
    m.recordRequest(base, 'http', 200, '-', -1, 30, 10, 100);
    m.recordRequest(base, 'http', 200, '-', -1, 120, 10, 100);
    m.recordRequest(base, 'http', 503, '-', -1, 2, 0, 19);
    let fail = true;
    const srv = await telemetryServer((r) => (fail ? ({ code: grpc.status.UNAVAILABLE, details: 'down', name: 'e', message: 'down', metadata: new grpc.Metadata() } as grpc.ServiceError) : { seq: r.seq, intervalMs: 0 }));
    const rep = new TelemetryReporter({ metrics: m, nodeId: 'productpage-v1.default', server: () => srv.address, credentials: grpc.credentials.createInsecure(), intervalMs: 60_000 });
    try {
      assert.equal(await rep.flush(), false);
      assert.match(rep.status().lastError ?? '', /down/);
      fail = false;
      m.recordRequest(base, 'http', 200, '-', -1, 30, 10, 100);
      assert.equal(await rep.flush(), true);
      const [first, second] = srv.reports;
      assert.equal(first!.boot, second!.boot);
      assert.deepEqual([first!.seq, second!.seq], [1, 2]);
      assert.equal(second!.labels.length, 1);
      assert.equal(second!.labels[0]!.source_workload, 'reviews-v1');
      const ok = second!.http.find((s) => s.c === 200)!;
      assert.equal(ok.n, 3, 'cumulative: includes what the failed report carried');
      assert.equal(ok.d.length, 20);
      assert.equal(ok.d[5], 2, '30 ms twice in the 25-50 bucket');
      assert.equal(ok.d[7], 1, '120 ms in the 100-250 bucket');
      assert.equal(ok.rs, 300);
      assert.equal(second!.http.find((s) => s.c === 503)!.n, 1);
      assert.equal(rep.status().lastAckedSeq, 2);
      // Closing sends a last report, so a graceful restart loses nothing.
      m.recordRequest(base, 'http', 200, '-', -1, 1, 0, 0);
      await rep.close();
      assert.equal(srv.reports.at(-1)!.http.find((s) => s.c === 200)!.n, 4);
    } finally {
      await rep.close(false);
      srv.server.forceShutdown();
    }
  });

  test('a dead control plane: reports fail within the deadline, the reporter keeps going', async () => {
    const m = new Metrics();
    const rep = new TelemetryReporter({ metrics: m, nodeId: 'x', server: () => '127.0.0.1:1', credentials: grpc.credentials.createInsecure(), intervalMs: 50, timeoutMs: 300 });
    try {
      assert.equal(await rep.flush(), false);
      assert.ok(rep.status().reportsFailed >= 1);
    } finally {
      await rep.close(false);
    }
  });

  test('the interval is validated', () => {
    assert.throws(() => new TelemetryReporter({ metrics: new Metrics(), nodeId: 'x', server: () => undefined, credentials: grpc.credentials.createInsecure(), intervalMs: 0 }), /telemetry interval: must be a number of milliseconds >= 10/);
  });
});
