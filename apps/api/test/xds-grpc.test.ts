import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startTestApi, type TestApi } from './helpers.ts';
import { eventually, meshCaughtUp } from './xds-fixtures.ts';

// End to end with the real compiler and the unmodified grpc-js-xds client: a proxyless gRPC
// client resolves xds:///reviews:9080 through our ADS server and calls a real gRPC server that is
// registered as a workload of the service.

const echo = {
  Echo: {
    path: '/tern.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;

let api: TestApi;
const servers: grpc.Server[] = [];

async function echoServer(reply: string): Promise<number> {
  const s = new grpc.Server();
  s.addService(echo, { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(`${reply}:${call.request.toString()}`)) });
  const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  servers.push(s);
  return port;
}

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
});
after(async () => {
  for (const s of servers) s.forceShutdown();
  await api?.close();
});

test('grpc-js-xds: xds:///reviews:9080 resolves through the ADS server, follows workload moves, an 80/20 split, a header match, a fault abort and a switch to 0/100', async () => {
  const v1 = await echoServer('v1');
  const put = async (path: string, body: unknown) => {
    const r = await api.rest('PUT', path, body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  await put('/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'GRPC', name: 'grpc' }] });
  await put('/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews' }, addresses: ['127.0.0.1'], ports: { '9080': v1 } });
  await meshCaughtUp(api);

  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: api.xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'grpc-client-1', locality: { zone: 'z1' }, metadata: { NAMESPACE: 'default' } },
  });
  const xds = await import('@grpc/grpc-js-xds');
  xds.register();
  const Client = grpc.makeGenericClientConstructor(echo, 'Echo');
  const client = new Client('xds:///reviews:9080', grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Echo(req: Buffer, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Buffer) => void): void;
  };
  const call = (msg: string) =>
    new Promise<string>((resolve, reject) => {
      client.Echo(Buffer.from(msg), { deadline: Date.now() + 5000, waitForReady: true } as grpc.CallOptions, (err, res) => (err ? reject(err) : resolve(res.toString())));
    });
  try {
    assert.equal(await call('hi'), 'v1:hi');
    const status = await eventually(async () => {
      const p = await api.app.xds.getProxy('grpc-client-1');
      return p.status === 'SYNCED' ? p : undefined;
    });
    assert.equal(status.kind, 'proxyless');
    for (const t of ['clusters', 'endpoints', 'listeners', 'routes'] as const) assert.equal(status.types[t].status, 'SYNCED', t);

    // The workload moves to another server: the client follows the EDS push.
    const v2 = await echoServer('v2');
    await put('/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews' }, addresses: ['127.0.0.1'], ports: { '9080': v2 } });
    await eventually(async () => (await call('again')) === 'v2:again', 10_000, 'client reaches the moved workload');

    // Istio's traffic tasks, as a proxyless client sees them: subsets, an 80/20 split, a header
    // match, a fault abort, then a switch to 0/100.
    const v2b = await echoServer('v2');
    await put('/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, addresses: ['127.0.0.1'], ports: { '9080': v1 } });
    await put('/api/v1/registry/workloads/default/reviews-v2', { namespace: 'default', name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, addresses: ['127.0.0.1'], ports: { '9080': v2b } });
    const apply = async (yaml: string) => {
      const r = await api.rest('POST', '/api/v1/apply', { yaml });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    };
    await apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`);
    const split = (w1: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - match: [{ headers: { x-fault: { exact: abort } } }]
    fault: { abort: { grpcStatus: UNAVAILABLE, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews, subset: v1 } }]
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: ${w1} }
    - { destination: { host: reviews, subset: v2 }, weight: ${100 - w1} }
`;
    await apply(split(80));
    const callWith = (msg: string, headers: Record<string, string> = {}) =>
      new Promise<string>((resolve, reject) => {
        const md = new grpc.Metadata();
        for (const [k, v] of Object.entries(headers)) md.set(k, v);
        (client as unknown as { Echo(r: Buffer, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Buffer) => void): void }).Echo(
          Buffer.from(msg),
          md,
          { deadline: Date.now() + 5000 },
          (err, res) => (err ? reject(err) : resolve(res.toString())),
        );
      });
    // The header route only exists once the VirtualService has arrived: wait for it.
    await eventually(async () => (await callWith('j', { 'end-user': 'jason' })) === 'v2:j', 10_000, 'header match routes jason to v2');
    const counts = { v1: 0, v2: 0 };
    for (let i = 0; i < 1000; i++) counts[(await callWith('x')).slice(0, 2) as 'v1' | 'v2']++;
    assert.ok(Math.abs(counts.v1 - 800) <= 50, `80/20 split within 5% over 1,000 calls: ${JSON.stringify(counts)}`);
    for (let i = 0; i < 20; i++) assert.equal(await callWith('j', { 'end-user': 'jason' }), 'v2:j');
    await assert.rejects(callWith('f', { 'x-fault': 'abort' }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);

    await apply(split(0));
    await eventually(async () => {
      for (let i = 0; i < 50; i++) if ((await callWith('y')).startsWith('v1')) return false;
      return true;
    }, 10_000, 'a switch to 0/100 sends everything to v2');
  } finally {
    client.close();
  }
});
