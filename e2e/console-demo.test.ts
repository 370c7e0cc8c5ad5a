import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { ADMIN_PASSWORD, ensureBuilt, eventually, openConsole, saveAndConverge, shot, signIn, type ConsoleSession, type TestApi } from './lib/console-harness.ts';
import { startTestApi } from '../apps/api/test/helpers.ts';
import { freePortBlock, freePortOutside, httpGet } from './lib/sidecar.ts';
import { ensureProxyBundle, startDemoMesh, type DemoMesh } from '../demo/mesh.ts';
// test: one database backend

// The console over the live demo mesh (Bookinfo with a sidecar per app, mTLS between them, the
// traffic generator running), as a newcomer sees it after `npm start`: the graph draws the demo's
// services from the sidecars' own telemetry, every edge locked; the traffic-shifting wizard's
// 80/20 reaches every one of the demo's proxies and moves the traffic.

let api: TestApi;
let mesh: DemoMesh | undefined;
let ui: ConsoleSession;
let page: Page;
// Sidecars report every 300 ms (the default is 10 s) so the graph fills within the test.
process.env.TERN_TELEMETRY_INTERVAL_MS = '300';

before(async () => {
  ensureBuilt();
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, telemetryFlushMs: 100 }, undefined, { xds: true });
  const basePort = await freePortBlock(40);
  mesh = await startDemoMesh({ api: api.url, token: api.token, xdsAddress: api.xdsAddress!, basePort, gatewayPort: await freePortOutside(basePort, 40), traffic: { rps: 5 }, proxyBundle: await ensureProxyBundle() });
  ui = await openConsole(api);
  page = ui.page;
  await signIn(page, ui.web.url, { username: 'admin', password: ADMIN_PASSWORD });
});

after(async () => {
  await ui?.close();
  await mesh?.stop();
  await api?.close();
});

/** Every call Bookinfo makes, as the graph names its nodes (workloads). */
const DEMO_EDGES = [
  'istio-ingressgateway → productpage-v1',
  'productpage-v1 → details-v1',
  'productpage-v1 → reviews-v1',
  'productpage-v1 → reviews-v2',
  'productpage-v1 → reviews-v3',
  'reviews-v2 → ratings-v1',
  'reviews-v3 → ratings-v1',
];

test('the graph shows the demo services with their edges, each with an mTLS lock', async () => {
  await page.goto(`${ui.web.url}/graph?window=5m`);
  // The graph refreshes every 10 s; reload until the sidecars' reports cover every call.
  await eventually(async () => {
    await page.reload();
    await page.getByTestId('graph').waitFor();
    return (await page.getByTestId('edge-label').count()) === DEMO_EDGES.length;
  }, 60_000, `${DEMO_EDGES.length} edges`);
  for (const name of ['istio-ingressgateway', 'productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1']) {
    await page.locator('.react-flow__node', { hasText: name }).first().waitFor();
  }
  assert.equal(await page.locator('[data-testid=edge-label] svg[aria-label=mTLS]').count(), DEMO_EDGES.length, 'a lock on every edge: the demo is mutual TLS end to end');
  // The same edges through the API the graph draws from.
  const graph = (await api.rest('GET', '/api/v1/graph?window=5m')).body as { edges: { source: string; target: string; mtlsShare: number }[] };
  const name = (id: string) => id.split(':').pop();
  assert.deepEqual(graph.edges.map((e) => `${name(e.source)} → ${name(e.target)}`).sort(), [...DEMO_EDGES].sort());
  assert.ok(graph.edges.every((e) => e.mtlsShare === 1), JSON.stringify(graph.edges));
  await shot(page, 'demo-graph');
  // The overview and the security view of the same mesh (README screenshots): seven proxies synced,
  // a certificate per workload.
  await page.goto(`${ui.web.url}/`);
  await eventually(async () => /SYNCED\s*7/.test((await page.getByTestId('proxy-counts').textContent()) ?? ''), 15_000, 'seven proxies SYNCED');
  await shot(page, 'demo-overview');
  await page.goto(`${ui.web.url}/security`);
  await page.getByRole('link', { name: 'Certificates' }).click();
  await eventually(async () => (await page.getByTestId('certificate').count()) >= 7, 15_000, 'a certificate per sidecar');
  await shot(page, 'demo-certificates');
});

test('the traffic wizard at 80/20 v1/v2 converges on all of the demo’s proxies, and the traffic follows', async () => {
  await page.goto(`${ui.web.url}/traffic?ns=default&svc=reviews`);
  await page.getByTestId('weight-v1').waitFor();
  // Three versions: 80 to v1, 20 to v2, none to v3.
  await page.getByTestId('weight-v3').fill('0');
  await page.getByTestId('weight-v1').fill('80');
  await eventually(async () => (await page.getByTestId('weight-v2').inputValue()) === '20' && (await page.getByTestId('weight-v3').inputValue()) === '0', 5000, 'v2 at 20, v3 at 0');
  const conv = await saveAndConverge(page);
  assert.match((await conv.textContent()) ?? '', /Converged: all \d+ affected prox/);
  const stored = (await api.rest('GET', '/api/v1/resources/vs/default/reviews')).body;
  assert.deepEqual(stored.spec.http[0].route.map((r: { destination: { subset: string }; weight?: number }) => [r.destination.subset, r.weight ?? 0]).filter(([, w]: [string, number]) => w > 0), [['v1', 80], ['v2', 20]]);
  // Every proxy of the demo has ACKed the write (the API's own view, what `tern proxy-status` shows).
  const proxies = (await api.rest('GET', '/api/v1/proxies')).body.proxies as { id: string; convergedRevision: string | null }[];
  assert.equal(proxies.length, 7, proxies.map((p) => p.id).join(', '));
  for (const p of proxies) assert.ok(p.convergedRevision !== null && BigInt(p.convergedRevision) >= BigInt(stored.metadata.resourceVersion), `${p.id} at ${p.convergedRevision}`);
  // The pages follow: no red stars (v3) any more, black ones (v2) on roughly a fifth.
  let v2 = 0;
  const loads = 40;
  for (let i = 0; i < loads; i++) {
    const r = await httpGet(Number(new URL(mesh!.gatewayUrl).port), '/productpage');
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes('<font color="red">'), 'no v3 (red stars) page after the shift');
    if (r.body.includes('<font color="black">')) v2++;
  }
  // Binomial(40, 0.2): mean 8, sd 2.5; 1-20 is far outside chance.
  assert.ok(v2 >= 1 && v2 <= 20, `${v2} of ${loads} pages from v2`);
  await shot(page, 'demo-traffic-converged');
});
