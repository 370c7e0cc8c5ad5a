/**
 * Weighted clusters through the whole proxy: 10,000 real requests split 90/10 and 70/20/10 land
 * within 2 percentage points of the weights (a canary must get its share, not roughly its share).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, test } from 'node:test';
import { cluster, httpListener, httpUpstream, snapshot, startProxy, type TestProxy, type Upstream } from './dataplane-helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
cleanups.push(() => agent.destroy());

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}: ${body}`))));
      })
      .on('error', reject);
  });
}

async function count(port: number, n: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        next++;
        const body = await get(port);
        counts.set(body, (counts.get(body) ?? 0) + 1);
      }
    }),
  );
  return counts;
}

test('weighted split over 10,000 requests is within 2% of the weights', { timeout: 120_000 }, async () => {
  const names = ['v1', 'v2', 'v3'];
  const ups: Upstream[] = [];
  for (const v of names) {
    const u = await httpUpstream((_req, res) => res.end(v));
    ups.push(u);
    cleanups.push(() => u.close());
  }
  const routes = (weights: number[]) => ({
    name: 'split',
    virtual_hosts: [{ name: 'reviews', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: names.map((v, i) => ({ name: `outbound|9080|${v}|reviews.default.svc.cluster.local`, weight: weights[i]! })).filter((c) => c.weight > 0) } } }] }],
  });
  const clusters = names.map((v, i) => cluster(`outbound|9080|${v}|reviews.default.svc.cluster.local`, [ups[i]!.port]));
  // Routes arrive over RDS, as the control plane sends them: a new split applies to the next request.
  const listeners = [httpListener({ name: 'out', rds: 'split' })];
  const proxy: TestProxy = await startProxy(snapshot({ listeners, routes: [routes([90, 10, 0])], clusters }));
  cleanups.push(() => proxy.close());
  const port = proxy.port('out');

  const a = await count(port, 10_000);
  assert.ok(Math.abs((a.get('v1') ?? 0) / 10_000 - 0.9) <= 0.02, `90/10: ${JSON.stringify([...a])}`);
  assert.ok(Math.abs((a.get('v2') ?? 0) / 10_000 - 0.1) <= 0.02, `90/10: ${JSON.stringify([...a])}`);
  assert.equal(a.get('v3'), undefined);

  await proxy.set(snapshot({ listeners, routes: [routes([70, 20, 10])], clusters }, proxy.current));
  const b = await count(port, 10_000);
  for (const [v, w] of [['v1', 0.7], ['v2', 0.2], ['v3', 0.1]] as const) {
    assert.ok(Math.abs((b.get(v) ?? 0) / 10_000 - w) <= 0.02, `70/20/10: ${JSON.stringify([...b])}`);
  }
});
