import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startTestApi, type TestApi } from './helpers.ts';
import { eventually } from './xds-fixtures.ts';

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

test('grpc-js-xds: xds:///reviews:9080 resolves through the ADS server and reaches the registered workload; a workload change moves it', async () => {
  const v1 = await echoServer('v1');
  const put = async (path: string, body: unknown) => {
    const r = await api.rest('PUT', path, body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  await put('/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'GRPC', name: 'grpc' }] });
  await put('/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews' }, addresses: ['127.0.0.1'], ports: { '9080': v1 } });
  await eventually(() => api.app.xds.mesh.meshRevision === api.app.changes.revision);

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
  } finally {
    client.close();
  }
});
