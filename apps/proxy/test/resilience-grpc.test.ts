// gRPC resilience through the proxy (h2c downstream, HTTP/2 upstream, real @grpc/grpc-js):
// `unavailable` retried, grpc-timeout honoured, fault abort with a gRPC status.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { EXTENSION_TYPE_URL, type JsonObject } from '@tern/xds';
import { cluster, eventually, httpListener, snapshot, startProxy, type TestProxy } from './dataplane-helpers.ts';
import { retryCounters } from '../src/dataplane/retry.ts';

const ECHO = 'outbound|7070||echo.default.svc.cluster.local';
const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
const Service = {
  unary: { path: '/tern.test.Echo/Unary', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
} as unknown as grpc.ServiceDefinition;
const Client = grpc.makeGenericClientConstructor(Service, 'Echo');
type Msg = { text?: string; sleepMs?: number };
type EchoClient = grpc.Client & { unary: (m: Msg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void) => void };

const open: { close(): Promise<void> }[] = [];
after(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** A gRPC server whose odd-numbered calls fail UNAVAILABLE (when `flaky`); `sleepMs` delays the answer. */
async function grpcServer(flaky: boolean): Promise<{ port: number; calls: number; cancelled: number }> {
  const state = { port: 0, calls: 0, cancelled: 0 };
  const server = new grpc.Server();
  server.addService(Service, {
    unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      state.calls++;
      if (flaky && state.calls % 2 === 1) {
        cb({ code: grpc.status.UNAVAILABLE, details: 'flaky' });
        return;
      }
      const ms = call.request.sleepMs ?? 0;
      if (ms > 0) {
        const t = setTimeout(() => cb(null, { text: 'slow' }), ms);
        call.on('cancelled', () => {
          state.cancelled++;
          clearTimeout(t);
        });
        return;
      }
      cb(null, { text: `echo:${call.request.text}` });
    },
  });
  state.port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  open.push({ close: async () => server.forceShutdown() });
  return state;
}

async function proxy(route: JsonObject, port: number, perRoute: JsonObject = {}): Promise<TestProxy> {
  const p = await startProxy(snapshot({
    listeners: [httpListener({
      name: 'grpc',
      routes: { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: ECHO, ...route }, ...perRoute }] }] },
      hcm: { http_filters: [{ name: 'envoy.filters.http.fault', typed_config: { '@type': EXTENSION_TYPE_URL.fault } }, { name: 'envoy.filters.http.router', typed_config: { '@type': EXTENSION_TYPE_URL.router } }] },
    })],
    clusters: [cluster(ECHO, [port], { h2: true })],
  }), { accessLog: true });
  open.push(p);
  return p;
}

function client(p: TestProxy): EchoClient {
  const c = new Client(`127.0.0.1:${p.port('grpc')}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  open.push({ close: async () => c.close() });
  return c;
}

function call(c: EchoClient, m: Msg, opts: grpc.CallOptions = {}): Promise<{ code: number; details?: string; res?: Msg }> {
  return new Promise((resolve) => c.unary(m, new grpc.Metadata(), opts, (e, r) => resolve(e ? { code: e.code, details: e.details } : { code: 0, ...(r ? { res: r } : {}) })));
}

/** A raw HTTP/2 gRPC call with an explicit grpc-timeout header and no client-side deadline. */
function rawCall(port: number, body: Msg, grpcTimeout: string | undefined): Promise<{ status: number; grpcStatus: string | undefined; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const payload = Buffer.from(JSON.stringify(body));
    const frame = Buffer.alloc(5 + payload.length);
    frame.writeUInt32BE(payload.length, 1);
    payload.copy(frame, 5);
    const s = session.request({ ':method': 'POST', ':path': '/tern.test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', ...(grpcTimeout ? { 'grpc-timeout': grpcTimeout } : {}) });
    let status = 0;
    let grpcStatus: string | undefined;
    s.on('response', (h) => {
      status = Number(h[':status']);
      grpcStatus = h['grpc-status'] as string | undefined;
    });
    s.on('trailers', (t) => (grpcStatus ??= t['grpc-status'] as string | undefined));
    s.resume();
    s.on('end', () => {
      session.close();
      resolve({ status, grpcStatus, ms: performance.now() - t0 });
    });
    s.on('error', reject);
    s.end(frame);
  });
}

describe('gRPC resilience', () => {
  test('UNAVAILABLE is retried under retry_on: unavailable: 20/20 calls succeed (10/20 without)', async () => {
    const g = await grpcServer(true);
    const p = await proxy({ retry_policy: { retry_on: 'unavailable', num_retries: 1 } }, g.port);
    const c = client(p);
    let ok = 0;
    for (let i = 0; i < 20; i++) if ((await call(c, { text: String(i) })).code === 0) ok++;
    assert.equal(ok, 20);
    assert.equal(g.calls, 40);
    assert.equal(retryCounters(p.engine, ECHO).upstream_rq_retry, 20);

    const g2 = await grpcServer(true);
    const p2 = await proxy({}, g2.port);
    const c2 = client(p2);
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) codes.push((await call(c2, { text: String(i) })).code);
    assert.equal(codes.filter((x) => x === grpc.status.UNAVAILABLE).length, 10);
  });

  test('grpc-timeout is honoured with grpc_timeout_header_max 0s (Istio), capped by a non-zero max, ignored without it', async () => {
    const g = await grpcServer(false);
    // Istio's default route: timeout 0s, max_stream_duration.grpc_timeout_header_max 0s.
    const p = await proxy({ timeout: '0s', max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' } }, g.port);
    const r = await rawCall(p.port('grpc'), { sleepMs: 3000 }, '300m');
    assert.equal(r.status, 200);
    assert.equal(r.grpcStatus, '14', "Envoy's 504 for gRPC: UNAVAILABLE");
    console.log(`grpc-timeout 300m: answered after ${r.ms.toFixed(0)} ms`);
    assert.ok(r.ms >= 280 && r.ms < 1200, `took ${r.ms} ms`);
    assert.equal(JSON.parse(p.accessLog.at(-1)!).response_flags, 'UT');

    const capped = await proxy({ timeout: '0s', max_stream_duration: { grpc_timeout_header_max: '0.2s' } }, g.port);
    const r2 = await rawCall(capped.port('grpc'), { sleepMs: 3000 }, '5S');
    assert.equal(r2.grpcStatus, '14');
    console.log(`grpc-timeout 5S capped at 0.2 s: answered after ${r2.ms.toFixed(0)} ms`);
    assert.ok(r2.ms >= 180 && r2.ms < 1000, `took ${r2.ms} ms`);

    // Without grpc_timeout_header_max the proxy does not time the call by the header (route
    // timeout 0.8 s); the header still reaches the upstream, whose gRPC server enforces it itself.
    const ignored = await proxy({ timeout: '0.8s' }, g.port);
    const r3 = await rawCall(ignored.port('grpc'), { sleepMs: 3000 }, '100m');
    assert.equal(r3.grpcStatus, '4', "the upstream's own DEADLINE_EXCEEDED");
    assert.equal(JSON.parse(ignored.accessLog.at(-1)!).response_flags, '-');
    const r4 = await rawCall(ignored.port('grpc'), { sleepMs: 3000 }, undefined);
    assert.equal(r4.grpcStatus, '14');
    assert.ok(r4.ms >= 750 && r4.ms < 1800, `route timeout 0.8 s: took ${r4.ms} ms`);

    // A real client deadline through the proxy: DEADLINE_EXCEEDED, and the upstream call is cancelled.
    const c = client(p);
    const d = await call(c, { sleepMs: 3000 }, { deadline: Date.now() + 300 });
    assert.equal(d.code, grpc.status.DEADLINE_EXCEEDED);
    // Five slow calls so far, each timed out by someone: none is left running upstream.
    await eventually(() => g.cancelled === 5, 2000);
  });

  test('fault abort maps to the configured gRPC status (RESOURCE_EXHAUSTED), and an HTTP abort to its gRPC mapping', async () => {
    const g = await grpcServer(false);
    const faultCfg = (abort: JsonObject) => ({ typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': EXTENSION_TYPE_URL.fault, abort: { ...abort, percentage: { numerator: 100 } } } } });
    const p = await proxy({}, g.port, faultCfg({ grpc_status: 8 }));
    const r = await call(client(p), { text: 'x' });
    assert.equal(r.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(r.details, 'fault filter abort');
    assert.equal(g.calls, 0);
    const log = JSON.parse(p.accessLog.at(-1)!) as { response_flags: string; grpc_status: unknown };
    assert.equal(log.response_flags, 'FI');

    const p2 = await proxy({}, g.port, faultCfg({ http_status: 503 }));
    assert.equal((await call(client(p2), { text: 'x' })).code, grpc.status.UNAVAILABLE);
  });
});
