/**
 * The whole proxy (runProxy: ADS client, store, listeners, engine) against a scripted control
 * plane: an invalid update is NACKed with the reason while traffic keeps flowing on the last good
 * snapshot, and a later valid update is applied.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import http from 'node:http';
import { TYPE_URL } from '@tern/xds';
import { parseBootstrap } from '../src/config/bootstrap.ts';
import { runProxy, type RunningProxy } from '../src/proxy.ts';
import { cluster, FakeAdsServer, listener, routeConfig, sotwResponse } from './ads-client-helpers.ts';
import { httpUpstream, quiet, type Upstream } from './dataplane-helpers.ts';

const C = TYPE_URL.cluster;
const E = TYPE_URL.endpoint;
const L = TYPE_URL.listener;
const R = TYPE_URL.route;

const cleanups: (() => unknown)[] = [];
after(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const cla = (clusterName: string, port: number) => ({
  '@type': E,
  cluster_name: clusterName,
  endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
cleanups.push(() => agent.destroy());
function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

test('an invalid xDS update is NACKed and traffic keeps flowing on the last good config', { timeout: 30_000 }, async () => {
  const upstreams: Upstream[] = [];
  for (const name of ['one', 'two']) {
    const u = await httpUpstream((_req, res) => res.end(name));
    upstreams.push(u);
    cleanups.push(() => u.close());
  }
  const server = await new FakeAdsServer().start();
  cleanups.push(() => server.stop());
  const [host, port] = server.address.split(':');
  const listenPort = await freePort();
  const bootstrap = parseBootstrap(
    JSON.stringify({
      node: { id: 'sidecar-1', cluster: 'test' },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      dynamic_resources: {
        ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }] },
        cds_config: { ads: {}, resource_api_version: 'V3' },
        lds_config: { ads: {}, resource_api_version: 'V3' },
      },
      static_resources: {
        clusters: [{ name: 'xds', type: 'STATIC', load_assignment: { cluster_name: 'xds', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: Number(port) } } } }] }] } }],
      },
    }),
    'json',
  );
  const proxy: RunningProxy = await runProxy({ bootstrap, log: quiet, adminPort: 0, statsPort: -1, drainMs: 200 });
  cleanups.push(() => proxy.shutdown());

  const s = await server.nextSotwStream();
  await s.nextOf(C);
  await s.nextOf(L);
  s.send(sotwResponse(C, 'c1', 'n1', [cluster('one'), cluster('two')]));
  await s.nextOf(C);
  await s.nextOf(E);
  s.send(sotwResponse(E, 'e1', 'n2', [cla('one', upstreams[0]!.port), cla('two', upstreams[1]!.port)]));
  await s.nextOf(E);
  s.send(sotwResponse(L, 'l1', 'n3', [{ ...listener('out', 'r', listenPort), address: { socket_address: { address: '127.0.0.1', port_value: listenPort } } }]));
  await s.nextOf(L);
  await s.nextOf(R);
  s.send(sotwResponse(R, 'r1', 'n4', [routeConfig('r', 'one')]));
  assert.equal((await s.nextOf(R)).error_detail, undefined);

  // Traffic runs through the whole exchange below.
  let running = true;
  const results: { status: number; body: string }[] = [];
  const errors: unknown[] = [];
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      try {
        results.push(await get(listenPort));
      } catch (err) {
        errors.push(err);
      }
    }
  });
  while (results.length < 50) await new Promise((r) => setTimeout(r, 5));

  // A route whose regex JavaScript (and RE2) cannot compile: NACKed, the old routes stay.
  const bad = routeConfig('r', 'two');
  (bad.virtual_hosts as { routes: { match: object }[] }[])[0]!.routes[0]!.match = { safe_regex: { regex: '(unclosed' } };
  s.send(sotwResponse(R, 'r2', 'n5', [bad]));
  const nack = await s.nextOf(R);
  assert.equal(nack.version_info, 'r1');
  assert.equal(nack.error_detail?.code, 3);
  assert.match(nack.error_detail?.message ?? '', /regex/i);
  const before = results.length;
  while (results.length < before + 50) await new Promise((r) => setTimeout(r, 5));

  // A valid update is applied.
  s.send(sotwResponse(R, 'r3', 'n6', [routeConfig('r', 'two')]));
  assert.equal((await s.nextOf(R)).error_detail, undefined);
  const mark = results.length;
  while (!results.slice(mark).some((r) => r.body === 'two')) await new Promise((r) => setTimeout(r, 5));
  running = false;
  await Promise.all(loops);

  assert.deepEqual(errors, []);
  assert.ok(results.every((r) => r.status === 200), 'every request succeeded');
  const afterNack = results.slice(before, before + 50);
  assert.ok(afterNack.every((r) => r.body === 'one'), 'after the NACK, traffic still follows the last good routes');
  assert.equal(proxy.store.snapshot.typeVersions.get(R), 'r3');
});
