/**
 * Runs inside a fresh network namespace (`unshare --net`, started by ../transparent-redirect.test.ts):
 * a control plane on PGlite, a `tern-proxy` in REDIRECT mode, apps on their own addresses, and
 * iptables rules as istio-init writes them (the proxy's group 1337 is excluded, inbound to this
 * pod's address goes to 15006, every other outbound TCP connection to 15001). The app side dials
 * plain addresses and never knows a proxy exists. Prints one JSON object with what it observed.
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { startTestApi } from '../../apps/api/test/helpers.ts';
import { eventually } from '../../apps/api/test/xds-fixtures.ts';
import { httpGet, startSidecar } from '../lib/sidecar.ts';

const POD = '10.99.0.10'; // this pod (productpage); its app listens on 127.0.0.1:9080
const REVIEWS_V1 = '10.99.0.21';
const REVIEWS_V2 = '10.99.0.22';
const OUTSIDE = '10.99.0.50'; // not in the registry: passthrough
const PROXY_GID = 1337;

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
run('ip', ['link', 'set', 'lo', 'up']);
for (const a of [POD, REVIEWS_V1, REVIEWS_V2, OUTSIDE]) run('ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
run('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-m', 'owner', '--gid-owner', String(PROXY_GID), '-j', 'RETURN']);
run('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', POD, '--dport', '9080', '-j', 'REDIRECT', '--to-ports', '15006']);
run('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '10.99.0.0/24', '-j', 'REDIRECT', '--to-ports', '15001']);

const servers: net.Server[] = [];
function listen(server: net.Server, host: string, port: number): Promise<void> {
  servers.push(server);
  return new Promise((resolve) => server.listen(port, host, () => resolve()));
}
const text = (body: string) => http.createServer((req, res) => {
  req.resume();
  res.end(body);
});
await listen(text('reviews-v1'), REVIEWS_V1, 9080);
await listen(text('reviews-v2'), REVIEWS_V2, 9080);
await listen(text('productpage'), '127.0.0.1', 9080);
await listen(net.createServer((s) => s.pipe(s)), OUTSIDE, 7000);

const api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
const ok = (r: { status: number; body: unknown }) => {
  if (r.status >= 300) throw new Error(`API answered ${r.status}: ${JSON.stringify(r.body)}`);
};
ok(await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
ok(await api.rest('PUT', '/api/v1/registry/services/default/productpage', { namespace: 'default', name: 'productpage', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] }));
ok(await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, addresses: [REVIEWS_V1] }));
ok(await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v2', { namespace: 'default', name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, addresses: [REVIEWS_V2] }));
ok(await api.rest('PUT', '/api/v1/registry/workloads/default/productpage-v1', { namespace: 'default', name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, addresses: [POD] }));

// The proxy runs in group 1337, whose connections the first rule leaves alone (istio-init does the
// same for the proxy's user and group); otherwise its own upstream connections would loop back.
const proxy = await startSidecar({
  id: 'productpage-v1.default',
  metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', INTERCEPTION: 'REDIRECT' },
  xdsAddress: api.xdsAddress!,
  adminPort: 15000,
  waitForListener: 'virtualOutbound',
  spawn: { gid: PROXY_GID },
});

const get = (host: string, port: number, urlPath: string, headers: Record<string, string> = {}) => httpGet(port, urlPath, headers, host);

function echo(host: string, port: number, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => s.end(message));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (got += d));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

const count = (bodies: string[]) => bodies.reduce<Record<string, number>>((a, b) => ((a[b] = (a[b] ?? 0) + 1), a), {});
const result: Record<string, unknown> = {};
try {
  result.listeners = (await get('127.0.0.1', 15000, '/listeners')).body;

  // The app dials reviews-v1's address with Host "reviews": the sidecar routes by the service,
  // balancing over both versions, as Envoy's per-port listener does.
  const first: string[] = [];
  for (let i = 0; i < 20; i++) first.push((await get(REVIEWS_V1, 9080, '/', { host: 'reviews' })).body);
  result.defaultRoute = count(first);

  ok(await api.rest('POST', '/api/v1/apply', {
    yaml: [
      'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: reviews, namespace: default }\nspec:\n  host: reviews\n  subsets:\n    - { name: v1, labels: { version: v1 } }\n    - { name: v2, labels: { version: v2 } }',
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: reviews, namespace: default }\nspec:\n  hosts: [reviews]\n  http:\n    - route:\n        - destination: { host: reviews, subset: v2 }',
    ].join('\n---\n'),
  }));
  await eventually(async () => {
    for (let i = 0; i < 5; i++) if ((await get(REVIEWS_V1, 9080, '/', { host: 'reviews' })).body !== 'reviews-v2') return false;
    return true;
  }, 10_000, 'all traffic to v2');
  const after: string[] = [];
  for (let i = 0; i < 20; i++) after.push((await get(REVIEWS_V1, 9080, '/', { host: 'reviews' })).body);
  result.allToV2 = count(after);

  // A destination the mesh does not know: virtualOutbound's catch-all passes it through to the
  // address the app dialled (PassthroughCluster, ORIGINAL_DST).
  result.passthrough = await echo(OUTSIDE, 7000, 'ping through the passthrough cluster');

  // Traffic to this pod's port 9080 lands on virtualInbound, whose chain for destination port
  // 9080 forwards to the app on 127.0.0.1:9080.
  const inbound = await get(POD, 9080, '/');
  result.inbound = { status: inbound.status, body: inbound.body };

  // A connection made to 15001 directly (not redirected) has no original destination: the
  // passthrough refuses it instead of dialling the proxy's own address in a loop.
  result.direct = await echo('127.0.0.1', 15001, 'hello?').catch((e: Error) => `error: ${e.message}`);

  const stats = (await get('127.0.0.1', 15000, '/stats/prometheus')).body;
  result.stats = stats.split('\n').filter((l) => /^istio_(requests_total|tcp_connections_opened_total)\{/.test(l));
} catch (err) {
  result.error = (err as Error).message;
  result.proxyStderr = proxy.stderr();
} finally {
  await proxy.stop();
  await api.close();
  for (const s of servers) s.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
