import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';

// The whole path as a user runs it: a control plane with its ADS server, a real `tern-proxy`
// process bootstrapped to it (local mode: an HTTP forward-proxy port and a Consul-style upstream
// port), and two versions of an app on loopback. Policy written through the REST API changes
// where the proxy sends requests.

const root = path.resolve(import.meta.dirname, '..');
let api: TestApi;
let proxy: ChildProcess | undefined;
const servers: http.Server[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-e2e-'));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function app(version: string): Promise<number> {
  const s = http.createServer((req, res) => {
    req.resume();
    res.setHeader('content-type', 'text/plain');
    res.end(`reviews-${version} ${req.headers['x-request-id'] ? 'with-request-id' : 'no-request-id'}`);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as net.AddressInfo).port;
}

function get(port: number, pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}


const forwardPort = await freePort();
const upstreamPort = await freePort();
const adminPort = await freePort();

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
  const [v1, v2] = [await app('v1'), await app('v2')];
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, addresses: ['127.0.0.1'], ports: { '9080': v1 } }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v2', { namespace: 'default', name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, addresses: ['127.0.0.1'], ports: { '9080': v2 } }));
  ok(await api.rest('PUT', '/api/v1/registry/workloads/default/productpage-v1', { namespace: 'default', name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, addresses: ['127.0.0.1'] }));

  const [xdsHost, xdsPort] = api.xdsAddress!.split(':');
  const bootstrap = {
    node: {
      id: 'productpage-v1.default',
      cluster: 'productpage',
      metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', OUTBOUND_PORT: forwardPort, UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: upstreamPort }] },
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    dynamic_resources: {
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }] },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [
        {
          name: 'xds',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: { cluster_name: 'xds', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: xdsHost, port_value: Number(xdsPort) } } } }] }] },
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        },
      ],
    },
  };
  const file = path.join(dir, 'bootstrap.yaml');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  proxy = spawn(process.execPath, ['--import', 'tsx', 'apps/proxy/src/main.ts', '--bootstrap', file, '--stats-port', 'off'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TERN_LOG_LEVEL: 'warn' } });
  let stderr = '';
  proxy.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  proxy.on('exit', (code) => {
    if (code) console.error(`tern-proxy exited ${code}: ${stderr}`);
  });
  await eventually(async () => (await get(adminPort, '/ready')).status === 200, 20_000, 'proxy ready');
});

after(async () => {
  if (proxy && proxy.exitCode === null) {
    proxy.kill('SIGTERM');
    await new Promise((r) => proxy!.once('exit', r));
  }
  for (const s of servers) s.close();
  await api?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a sidecar follows policy written through the API: default route, all to v2, a header match, back to v1', async () => {
  // No VirtualService yet: the default route spreads over both versions.
  const seen = new Set<string>();
  await eventually(async () => {
    const r = await get(forwardPort, '/reviews/1', { host: 'reviews:9080' });
    if (r.status === 200) seen.add(r.body.split(' ')[0]!);
    return seen.size === 2;
  }, 15_000, 'default route reaches both versions through the forward proxy');

  const apply = async (yaml: string) => {
    const r = await api.rest('POST', '/api/v1/apply', { yaml });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  await apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - route: [{ destination: { host: reviews, subset: v2 } }]
`);
  const allV2 = async (port: number, headers: Record<string, string>) => {
    for (let i = 0; i < 20; i++) {
      const r = await get(port, '/reviews/1', headers);
      if (r.status !== 200 || !r.body.startsWith('reviews-v2')) return false;
    }
    return true;
  };
  await eventually(() => allV2(forwardPort, { host: 'reviews:9080' }), 10_000, 'all to v2 through the forward proxy');
  // The Consul-style upstream port routes the same way, whatever Host the app sends.
  await eventually(() => allV2(upstreamPort, { host: '127.0.0.1' }), 10_000, 'all to v2 through the upstream port');
  const jason = await get(forwardPort, '/reviews/1', { host: 'reviews:9080', 'end-user': 'jason' });
  assert.equal(jason.status, 200);
  assert.match(jason.body, /^reviews-v1 with-request-id$/);

  // An unknown host gets Envoy's answer, not a hang.
  const unknown = await get(forwardPort, '/', { host: 'nowhere:9080' });
  assert.equal(unknown.status, 404);

  // The control plane reports the proxy synced, and what it sent.
  const status = await api.rest('GET', '/api/v1/proxies');
  assert.equal(status.status, 200);
  const me = (status.body.proxies as { id: string; status: string }[]).find((p) => p.id === 'productpage-v1.default');
  assert.equal(me?.status, 'SYNCED');
});
