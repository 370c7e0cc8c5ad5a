import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { writeRows } from '../apps/api/src/telemetry/store.ts';
import { BUCKETS, type RollupRow } from '../apps/api/src/telemetry/rows.ts';
import { formatValue } from '../apps/web/src/lib/chart.ts';
import { ensureBuilt, eventually, openConsole, seedServices, seedUsers, shot, signIn, startApi, USERS, type Console, type ConsoleSession, type TestApi } from './lib/console-harness.ts';

// Golden metrics in the console (charts in the graph's side panel, metrics in the services list,
// charts on the service page, mesh health on the overview, keyboard navigation of the graph),
// against a real control plane with telemetry rows written for several minutes.

const VIEWER = USERS.viewer;

let api: TestApi;
let web: Console;
let ui: ConsoleSession;
let page: Page;

/** Per minute: caller -> callee, requests and 5xx among them. All latencies fall in 10-25 ms. */
const TRAFFIC = [
  { src: 'productpage-v1', dst: 'reviews-v1', requests: 60, errors: 0 },
  { src: 'productpage-v1', dst: 'reviews-v2', requests: 120, errors: 6 },
  { src: 'productpage-v1', dst: 'details-v1', requests: 30, errors: 0 },
  { src: 'reviews-v2', dst: 'ratings-v1', requests: 60, errors: 30 },
];
/** Minutes written: the five before the current one, and the current one. */
const MINUTES = 6;

/**
 * seedTelemetry writes one minute; the charts need several. The same traffic every minute from
 * now-5 to now, so the last complete minute (the charts' readout) holds it even if the clock
 * passes a minute boundary during the test.
 */
async function seedMinutes(): Promise<void> {
  const now = Math.floor(Date.now() / 60_000) * 60_000;
  const rows: RollupRow[] = [];
  const split = (w: string) => {
    const [app, version] = w.split('-') as [string, string];
    return { app, version };
  };
  for (let m = MINUTES - 1; m >= 0; m--) {
    for (const e of TRAFFIC) {
      for (const [codeClass, requests] of [['2xx', e.requests - e.errors], ['5xx', e.errors]] as const) {
        if (requests === 0) continue;
        const d = new Array<number>(BUCKETS).fill(0);
        d[4] = requests; // 10-25 ms
        rows.push({
          bucket: new Date(now - m * 60_000),
          srcWorkload: e.src, srcNamespace: 'default', srcPrincipal: 'unknown', srcApp: split(e.src).app, srcVersion: split(e.src).version,
          dstService: `${split(e.dst).app}.default.svc.cluster.local`, dstWorkload: e.dst, dstNamespace: 'default', dstApp: split(e.dst).app, dstVersion: split(e.dst).version,
          codeClass, protocol: 'http', mtls: true,
          requests, errors: codeClass === '5xx' ? requests : 0, bytesIn: 100 * requests, bytesOut: 1000 * requests, durationSumMs: 20 * requests, d,
        });
      }
    }
  }
  await writeRows(api.app.db.prisma, 'TelemetryMinute', rows);
}

async function readout(scope: ReturnType<Page['locator']>, chart: string, line: string): Promise<string> {
  return ((await scope.getByTestId(chart).getByTestId(`value-${line}`).textContent()) ?? '').trim();
}

/** "17.5 ms" -> 17.5 */
// Browser-side expressions as strings: the root type check has no DOM library.
async function activeNodeId(): Promise<string | undefined> {
  return (await page.evaluate("document.activeElement?.classList.contains('react-flow__node') ? document.activeElement.dataset.id : undefined")) as string | undefined;
}

function num(text: string): number {
  return Number.parseFloat(text.replace(/[^\d.]/g, ''));
}

before(async () => {
  ensureBuilt();
  api = await startApi();
  await seedUsers(api, VIEWER);
  await seedServices(api, ['productpage-v1', 'reviews-v1', 'reviews-v2', 'ratings-v1', 'details-v1']);
  ui = await openConsole(api);
  ({ web, page } = ui);
  await signIn(page, web.url, VIEWER);
});

after(async () => {
  await ui?.close();
  await api?.close();
});

describe('console golden metrics', () => {
  test('without traffic: the overview and the services list say so instead of showing zeros as data', async () => {
    await page.goto(`${web.url}/`);
    await page.getByTestId('mesh-health').getByText('No requests were reported in the last 5 min.').waitFor();
    assert.equal((await page.getByTestId('mesh-errors').textContent())?.trim(), '—');
    await page.goto(`${web.url}/services`);
    await page.getByTestId('services-table').waitFor();
    await eventually(async () => (await page.getByTestId('svc-rps').allTextContents()).every((t) => t === '—') && (await page.getByTestId('svc-rps').count()) === 4, 5000, 'dashes for every service');
    await page.goto(`${web.url}/services/detail?ns=default&name=reviews&window=10m`);
    await page.getByTestId('golden-charts-empty').waitFor();
    await page.getByText('No requests reached this service in the last 10m.').waitFor();
    await seedMinutes();
  });

  test('graph: a node’s side panel shows its charts with the seeded figures; hover reads earlier points', async () => {
    await page.goto(`${web.url}/graph?window=10m`);
    await page.getByTestId('graph').waitFor();
    await page.locator('.react-flow__node', { hasText: 'reviews-v2' }).first().click();
    const panel = page.getByTestId('side-panel');
    await panel.getByTestId('golden-charts').waitFor();
    // reviews-v2 receives 120 requests a minute, 6 of them 5xx, all in the 10-25 ms bucket.
    assert.equal(await readout(panel, 'chart-rps', 'requests/s'), formatValue(120 / 60, 'rps'));
    assert.equal(await readout(panel, 'chart-success', 'success'), formatValue(95, 'percent'));
    assert.ok(Math.abs(num(await readout(panel, 'chart-latency', 'p50')) - 17.5) < 0.05);
    assert.ok(Math.abs(num(await readout(panel, 'chart-latency', 'p95')) - 24.25) < 0.1);
    const label = (await panel.getByTestId('chart-rps').locator('svg').getAttribute('aria-label')) ?? '';
    assert.equal(label, 'Requests/s, last 10m: min 0 req/s, max 2 req/s, latest 2 req/s');
    await shot(page, 'metrics-graph-node');
    // Hover the chart's left edge: the readout follows to an early minute without traffic.
    const box = (await panel.getByTestId('chart-rps').locator('svg').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.14, box.y + box.height / 2);
    await eventually(async () => (await readout(panel, 'chart-rps', 'requests/s')) === '0 req/s', 5000, 'the hover readout');
    await page.mouse.move(0, 0);
    // A caller that only sends: its panel opens on outbound traffic, switchable to inbound.
    await page.locator('.react-flow__node', { hasText: 'productpage-v1' }).first().click();
    await eventually(async () => (await panel.getByTestId('chart-rps').getByTestId('value-requests/s').textContent()) === formatValue(210 / 60, 'rps'), 5000, 'productpage outbound');
    await panel.getByRole('button', { name: 'inbound' }).click();
    await panel.getByTestId('golden-charts-empty').waitFor();
    assert.match(page.url(), /dir=inbound/);
  });

  test('graph: an edge’s side panel shows the series of that edge only', async () => {
    await page.goto(`${web.url}/graph?window=10m`);
    await page.locator('.react-flow__node', { hasText: 'reviews-v1' }).first().click();
    const panel = page.getByTestId('side-panel');
    await panel.getByRole('button', { name: 'productpage-v1' }).click();
    await page.waitForURL(/sel=edge/);
    await panel.getByRole('heading', { name: 'productpage-v1 → reviews-v1' }).waitFor();
    await panel.getByTestId('golden-charts').waitFor();
    assert.equal(await readout(panel, 'chart-rps', 'requests/s'), formatValue(1, 'rps'));
    assert.equal(await readout(panel, 'chart-success', 'success'), formatValue(100, 'percent'));
    await shot(page, 'metrics-graph-edge');
    // The failing edge: half the requests to ratings fail.
    await page.goto(`${web.url}/graph?window=10m&sel=${encodeURIComponent('edge:workload:default:reviews-v2->workload:default:ratings-v1:http')}`);
    await panel.getByTestId('golden-charts').waitFor();
    assert.equal(await readout(panel, 'chart-success', 'success'), formatValue(50, 'percent'));
  });

  test('graph keyboard: Tab reaches a node, arrows move between nodes, Enter opens the panel, Escape closes it', async () => {
    await page.goto(`${web.url}/graph?window=10m`);
    await page.getByTestId('graph').waitFor();
    // Every node laid out and shown (React Flow hides a node until it has measured it, and Tab skips hidden ones).
    await eventually(async () => (await page.locator('.react-flow__node:visible').count()) === 5, 5000, 'five nodes shown');
    await page.getByLabel('Edge labels').focus();
    let onNode = false;
    for (let i = 0; i < 15 && !onNode; i++) {
      await page.keyboard.press('Tab');
      onNode = (await activeNodeId()) !== undefined;
    }
    assert.ok(onNode, 'Tab reached a node');
    const outline = (await page.evaluate('getComputedStyle(document.activeElement).outlineStyle')) as string;
    assert.equal(outline, 'solid', 'the focused node shows a focus ring');
    const first = await activeNodeId();
    // Some arrow leads to another node (the layout decides which).
    let moved = first;
    for (const key of ['ArrowRight', 'ArrowDown', 'ArrowLeft', 'ArrowUp']) {
      await page.keyboard.press(key);
      moved = await activeNodeId();
      if (moved !== first) break;
    }
    assert.notEqual(moved, first, 'an arrow key moved the focus to another node');
    await shot(page, 'metrics-graph-focus');
    await page.keyboard.press('Enter');
    await page.getByTestId('side-panel').waitFor();
    // The panel follows the URL; waiting on the URL itself keeps a slow router update out of the result.
    await page.waitForURL((u) => u.searchParams.get('sel') === moved);
    await page.keyboard.press('Escape');
    await page.getByTestId('side-panel').waitFor({ state: 'detached' });
    await page.waitForURL((u) => !u.searchParams.has('sel'));
    await eventually(async () => (await activeNodeId()) === moved, 5000, `focus back on ${moved}`);
  });

  test('services list: rates, success and p95 per service for the window, sortable by each', async () => {
    await page.goto(`${web.url}/services?window=5m`);
    const table = page.getByTestId('services-table');
    await table.waitFor();
    const row = (svc: string) => table.locator('tr', { has: page.getByRole('link', { name: `default/${svc}` }) });
    await eventually(async () => (await row('reviews').getByTestId('svc-rps').textContent()) !== '…', 5000, 'metrics');
    // The 5 min window starts at the minute holding now-5m (300-360 s): all six minutes, or five
    // once the clock has passed a minute boundary since they were written.
    const rps = num((await row('reviews').getByTestId('svc-rps').textContent()) ?? '');
    assert.ok(rps >= ((MINUTES - 1) * 180) / 360 - 0.01 && rps <= (MINUTES * 180) / 300 + 0.01, String(rps));
    assert.equal(await row('reviews').getByTestId('svc-success').textContent(), formatValue(100 - (6 / 180) * 100, 'percent'));
    assert.equal(await row('ratings').getByTestId('svc-success').textContent(), formatValue(50, 'percent'));
    assert.ok(Math.abs(num((await row('reviews').getByTestId('svc-p95').textContent()) ?? '') - 24.25) < 0.1);
    assert.equal(await row('productpage').getByTestId('svc-rps').textContent(), '—', 'nothing calls productpage');
    const order = async () => (await table.locator('tbody tr td:first-child a').allTextContents()).map((t) => t.replace('default/', ''));
    await table.getByRole('button', { name: 'Requests/s' }).click();
    await page.waitForURL(/sort=-rps/);
    assert.deepEqual(await order(), ['reviews', 'ratings', 'details', 'productpage']);
    await table.getByRole('button', { name: /Requests\/s/ }).click();
    await page.waitForURL(/sort=rps/);
    assert.deepEqual(await order(), ['details', 'ratings', 'reviews', 'productpage'], 'ascending; no traffic stays last');
    await table.getByRole('button', { name: 'Success' }).click();
    await page.waitForURL(/sort=-success/);
    assert.deepEqual(await order(), ['details', 'reviews', 'ratings', 'productpage']);
    assert.equal(await table.locator('th[aria-sort=descending]').textContent(), 'Success ▼');
    await shot(page, 'metrics-services');
    // The window selector is in the URL.
    await page.getByLabel('Window').selectOption('1h');
    await page.waitForURL(/window=1h/);
  });

  test('service page: charts with the latest minute, and rows per workload and version', async () => {
    await page.goto(`${web.url}/services/detail?ns=default&name=reviews`);
    const metrics = page.getByTestId('service-metrics');
    await metrics.getByTestId('golden-charts').waitFor();
    assert.equal(await readout(metrics, 'chart-rps', 'requests/s'), formatValue(180 / 60, 'rps'));
    assert.equal(await readout(metrics, 'chart-success', 'success'), formatValue(100 - (6 / 180) * 100, 'percent'));
    for (const p of ['p50', 'p95', 'p99']) assert.match(await readout(metrics, 'chart-latency', p), /^\d+(\.\d+)? ms$/);
    assert.equal(await metrics.locator('.chart-legend li').allTextContents().then((l) => l.join(',')), 'p50,p95,p99');
    const rows = metrics.getByTestId('workload-metrics').locator('tbody tr');
    assert.equal(await rows.count(), 2);
    assert.match((await rows.nth(0).textContent()) ?? '', /reviews-v1.*v1.*100%.*healthy/);
    assert.match((await rows.nth(1).textContent()) ?? '', /reviews-v2.*v2.*95%.*degraded/);
    await shot(page, 'metrics-service-detail');
  });

  test('overview: mesh requests/s, error % and p95 for 5 min, and services by health linked to the graph', async () => {
    await page.goto(`${web.url}/`);
    const mesh = page.getByTestId('mesh-health');
    await mesh.getByTestId('mesh-rps').waitFor();
    const perMinute = TRAFFIC.reduce((a, e) => a + e.requests, 0);
    const errors = TRAFFIC.reduce((a, e) => a + e.errors, 0);
    const rps = num((await mesh.getByTestId('mesh-rps').textContent()) ?? '');
    assert.ok(rps >= ((MINUTES - 1) * perMinute) / 360 - 0.01 && rps <= (MINUTES * perMinute) / 300 + 0.01, String(rps));
    assert.equal(await mesh.getByTestId('mesh-errors').textContent(), formatValue((errors / perMinute) * 100, 'percent'));
    assert.ok(Math.abs(num((await mesh.getByTestId('mesh-p95').textContent()) ?? '') - 24.25) < 0.1);
    // details healthy, reviews degraded (3.3 %), ratings failing (50 %).
    assert.equal((await mesh.getByTestId('health-healthy').textContent())?.trim(), '1 healthy');
    assert.equal((await mesh.getByTestId('health-degraded').textContent())?.trim(), '1 degraded');
    assert.equal((await mesh.getByTestId('health-failing').textContent())?.trim(), '1 failing');
    await shot(page, 'metrics-overview');
    await mesh.getByTestId('health-failing').click();
    await page.waitForURL(/\/graph\?window=5m&by=service/);
    await page.locator('.react-flow__node', { hasText: 'ratings' }).first().waitFor();
  });

  test('dark theme: the charts use the theme colours', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${web.url}/services/detail?ns=default&name=reviews`);
    await page.getByTestId('service-metrics').getByTestId('golden-charts').waitFor();
    const fill = (await page.evaluate("getComputedStyle(document.querySelector('[data-testid=service-metrics] .chart-grid text')).fill")) as string;
    assert.equal(fill, 'rgb(154, 164, 174)', 'tick labels in the dark theme’s muted colour');
    await shot(page, 'metrics-service-detail-dark');
    await page.goto(`${web.url}/graph?window=10m&sel=${encodeURIComponent('workload:default:reviews-v2')}`);
    await page.getByTestId('side-panel').getByTestId('golden-charts').waitFor();
    await shot(page, 'metrics-graph-node-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });
});
