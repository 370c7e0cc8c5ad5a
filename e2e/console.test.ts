import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { connectProxy, ensureBuilt, getResource, eventually, openConsole, seedServices, seedTelemetry, seedUsers, shot, signIn, startApi, startConsole, USERS, type Console, type ConsoleSession, type TestApi } from './lib/console-harness.ts';

// The console in a real browser against a real control plane. One browser, one console, one API
// for the file; tests run in order and build on each other's writes (history needs changes).

const { editor: EDITOR, viewer: VIEWER } = USERS;

let api: TestApi;
let web: Console;
let ui: ConsoleSession;
let page: Page;
const proxies: { close(): void }[] = [];

const vs = (name: string) => getResource(api, 'vs', name);

before(async () => {
  ensureBuilt();
  api = await startApi();
  await seedUsers(api, EDITOR, VIEWER);
  await seedServices(api);
  ui = await openConsole(api);
  ({ web, page } = ui);
});

after(async () => {
  for (const p of proxies) p.close();
  await ui?.close();
  await api?.close();
});

describe('console', () => {
  test('signed out, every page sends you to sign in, and back afterwards', async () => {
    await page.goto(`${web.url}/config?q=reviews`);
    await page.waitForURL(/\/login\?next=/);
    assert.match(decodeURIComponent(page.url()), /next=\/config\?q=reviews/);
  });

  test('sign in: a wrong password gets a message; the right one shows the user and role', async () => {
    await page.goto(`${web.url}/login`);
    await page.getByLabel('Username').fill(EDITOR.username);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // (Not getByRole('alert'): Next's route announcer has that role too.)
    const alert = page.locator('#login-error');
    await alert.waitFor();
    assert.equal(await alert.getAttribute('role'), 'alert');
    assert.equal((await alert.textContent())?.trim(), 'Wrong username or password.');
    assert.equal(await page.getByTestId('role').count(), 0, 'not signed in');
    await shot(page, 'login-error');

    await signIn(page, web.url, EDITOR);
    assert.equal(await page.getByTestId('role').textContent(), 'editor');
    assert.match((await page.getByTestId('whoami').textContent()) ?? '', /erin/);
  });

  test('overview: proxies by status, namespaces with mTLS, changes, validation messages', async () => {
    proxies.push(connectProxy(api.xdsAddress!, 'productpage-v1.default', { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1' }));
    await page.goto(`${web.url}/`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await eventually(async () => /SYNCED\s*1/.test((await page.getByTestId('proxy-counts').textContent()) ?? ''), 15_000, 'the proxy listed as SYNCED');
    await page.getByRole('cell', { name: 'productpage-v1.default' }).waitFor();
    await page.getByRole('link', { name: 'default', exact: true }).waitFor();
    assert.equal((await page.getByTestId('mtls-mode').first().textContent())?.trim(), 'PERMISSIVE');
    await page.getByText('Workload default/reviews-v1').first().waitFor();
    await shot(page, 'overview');
  });

  test('traffic wizard: 80/20 shows the YAML and diff, saves the VirtualService and DestinationRule, and shows convergence', async () => {
    await page.goto(`${web.url}/traffic?ns=default&svc=reviews`);
    await page.getByTestId('weight-v1').waitFor();
    // Sliders always sum to 100: setting v1 moves v2.
    await page.getByTestId('weight-v1').fill('80');
    await eventually(async () => (await page.getByTestId('weight-v2').inputValue()) === '20', 5000, 'v2 at 20');
    await eventually(() => /w=80%2C20|w=80,20/.test(page.url()), 5000, 'weights in the URL');
    assert.equal((await page.getByTestId('weight-total').textContent())?.trim(), 'Total: 100%');
    await page.getByTestId('analysis-clean').waitFor();
    const yaml = (await page.getByTestId('proposed-yaml').textContent()) ?? '';
    assert.match(yaml, /kind: VirtualService/);
    assert.match(yaml, /kind: DestinationRule/);
    assert.match(yaml, /subset: v1\n\s+weight: 80/);
    assert.match((await page.getByTestId('diff').textContent()) ?? '', /\+ kind: VirtualService/);
    await shot(page, 'traffic-wizard');
    assert.equal((await vs('reviews')).status, 404, 'nothing written before Save');

    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('saved').waitFor();
    const stored = await vs('reviews');
    assert.equal(stored.status, 200);
    assert.deepEqual(
      stored.body.spec.http[0].route.map((r: any) => [r.destination.subset, r.weight]),
      [['v1', 80], ['v2', 20]],
    );
    const dr = await api.rest('GET', '/api/v1/resources/dr/default/reviews');
    assert.deepEqual(dr.body.spec.subsets.map((s: any) => s.name), ['v1', 'v2']);

    const conv = page.getByTestId('convergence');
    await eventually(async () => (await conv.getAttribute('data-state')) === 'converged', 15_000, 'convergence shown');
    assert.match((await conv.textContent()) ?? '', /Converged: all 1 affected proxy ACKed revision \d+/);
    // The API agrees: the proxy ACKed a revision at or after the write.
    const status = await api.rest('GET', '/api/v1/proxies/productpage-v1.default');
    assert.ok(BigInt(status.body.convergedRevision) >= BigInt(stored.body.metadata.resourceVersion));
    await shot(page, 'traffic-converged');
  });

  test('an invalid wizard input shows the analyzer message, blocks Save and writes nothing', async () => {
    const before = await api.rest('GET', '/api/v1/changes?since=0&limit=1000');
    // ratings has no DestinationRule: a VirtualService naming subsets without one is an error (TRN0102).
    await page.goto(`${web.url}/traffic?ns=default&svc=ratings&subsets=0`);
    const finding = page.getByTestId('finding').filter({ hasText: 'TRN0102' }).first();
    await finding.waitFor({ timeout: 15_000 });
    assert.match((await finding.textContent()) ?? '', /subset/i);
    assert.ok(await page.getByRole('button', { name: 'Save' }).isDisabled());
    await page.getByTestId('blocked').waitFor();
    assert.equal((await page.getByTestId('analysis-summary').textContent())?.trim(), '2 errors shown next to the versions concerned.');
    await shot(page, 'traffic-invalid');
    assert.equal((await vs('ratings')).status, 404);
    const afterChanges = await api.rest('GET', '/api/v1/changes?since=0&limit=1000');
    assert.equal(afterChanges.body.revision, before.body.revision, 'no revision was written');
  });

  test('a proxy that NACKs: the wizard shows which one and why', async () => {
    proxies.push(connectProxy(api.xdsAddress!, 'details-v1.default', { NAMESPACE: 'default', WORKLOAD_NAME: 'details-v1' }, { nackClusters: 'cluster rejected: test NACK' }));
    await eventually(async () => (await api.rest('GET', '/api/v1/proxies/details-v1.default')).body.status === 'NACKED', 10_000, 'the proxy NACKed');
    await page.goto(`${web.url}/traffic?ns=default&svc=reviews&extra=v3`);
    // A version with no workloads yet: a warning shown inline, which does not block.
    const warning = page.getByTestId('finding').filter({ hasText: 'TRN0202' }).first();
    await warning.waitFor({ timeout: 15_000 });
    await page.getByTestId('weight-v3').fill('10');
    // Save is enabled for the weights before the edit too: wait for the YAML of the new ones first.
    await eventually(async () => /subset: v3\n\s+weight: 10\b/.test((await page.getByTestId('proposed-yaml').textContent()) ?? ''), 10_000, 'the YAML with v3 at 10%');
    await eventually(async () => !(await page.getByRole('button', { name: 'Save' }).isDisabled()), 10_000, 'Save enabled despite the warning');
    await page.getByRole('button', { name: 'Save' }).click();
    const conv = page.getByTestId('convergence');
    await eventually(async () => (await conv.getAttribute('data-state')) === 'nacked', 15_000, 'the NACK shown');
    await eventually(async () => /details-v1\.default.*cluster rejected: test NACK/s.test((await conv.textContent()) ?? ''), 10_000, 'the NACKing proxy and its reason');
    assert.match((await conv.textContent()) ?? '', /1 of 2 affected proxies rejected/);
    await shot(page, 'traffic-nacked');
  });

  test('history: diff between revisions and one-click rollback', async () => {
    const current = await vs('reviews');
    assert.equal(current.body.spec.http[0].route.length, 3, 'the v3 change is stored');
    await page.goto(`${web.url}/config/resource?kind=VirtualService&ns=default&name=reviews&tab=history`);
    const table = page.getByTestId('history-table');
    await table.waitFor();
    assert.equal(await table.locator('tbody tr').count(), 2);
    const squash = (l: string) => l.replace(/\s+/g, ' ').trim();
    const removed = (await page.locator('[data-testid=diff] .del').allTextContents()).map(squash);
    const added = (await page.locator('[data-testid=diff] .add').allTextContents()).map(squash);
    assert.deepEqual(removed, ['- weight: 80', '- weight: 20']);
    assert.ok(added.includes('+ weight: 72') && added.includes('+ subset: v3'), added.join('\n'));
    await shot(page, 'history');
    const first = (await table.locator('tbody tr').nth(1).locator('td').first().textContent())!.trim();
    await page.getByRole('button', { name: `Roll back to ${first}` }).click();
    await page.getByText(/Rolled back: now at revision \d+/).waitFor();
    const rolled = await vs('reviews');
    assert.deepEqual(rolled.body.spec.http[0].route.map((r: any) => r.weight), [80, 20]);
    await eventually(async () => (await table.locator('tbody tr').count()) === 3, 5000, 'the rollback listed');
    assert.equal((await table.locator('tbody tr').first().locator('td').nth(1).textContent())?.trim(), 'rolled-back');
  });

  test('config, audit log, services: search in the URL, the resource YAML, who changed what', async () => {
    await page.goto(`${web.url}/config?q=reviews`);
    await page.getByTestId('resource-table').waitFor();
    assert.equal(await page.getByTestId('resource-table').locator('tbody tr').count(), 2);
    await page.getByLabel('Kind').selectOption('DestinationRule');
    await page.waitForURL(/kind=DestinationRule/);
    assert.equal(await page.getByTestId('resource-table').locator('tbody tr').count(), 1);
    await shot(page, 'config');
    await page.getByRole('link', { name: 'reviews' }).click();
    await page.getByTestId('resource-yaml').waitFor();
    assert.match((await page.getByTestId('resource-yaml').textContent()) ?? '', /host: reviews\.default\.svc\.cluster\.local/);
    await shot(page, 'resource-yaml');

    await page.goto(`${web.url}/audit?actor=erin`);
    await page.getByTestId('audit-table').waitFor();
    const audit = (await page.getByTestId('audit-table').textContent()) ?? '';
    assert.match(audit, /resource\.rolled-back/);
    assert.match(audit, /VirtualService default\/reviews/);
    await shot(page, 'audit');

    await page.goto(`${web.url}/services`);
    await page.getByTestId('services-table').waitFor();
    await page.getByRole('link', { name: 'default/reviews' }).click();
    await page.getByRole('heading', { name: 'Workloads and versions' }).waitFor();
    await page.getByRole('cell', { name: '10.0.0.1:9080' }).waitFor();
    await page.getByRole('link', { name: 'VirtualService default/reviews' }).waitFor();
    await shot(page, 'service-detail');
  });

  test('graph: the services with edges, mTLS locks, switchable labels and a side panel', async () => {
    await page.goto(`${web.url}/graph`);
    await page.getByText(/No traffic was reported in the last 10m/).waitFor();
    await seedTelemetry(api, [
      { src: 'productpage-v1', dst: 'reviews-v1', requests: 600, mtls: true },
      { src: 'productpage-v1', dst: 'reviews-v2', requests: 300, errors: 30, mtls: false },
      { src: 'reviews-v2', dst: 'ratings-v1', requests: 300, mtls: true },
    ]);
    await page.goto(`${web.url}/graph?window=5m`);
    await page.getByTestId('graph').waitFor();
    await eventually(async () => (await page.getByTestId('edge-label').count()) === 3, 10_000, 'three edges');
    const labels = await page.getByTestId('edge-label').allTextContents();
    assert.ok(labels.every((l) => /\d rps$/.test(l.trim())), labels.join(' | '));
    assert.equal(await page.locator('[data-testid=edge-label] svg[aria-label=mTLS]').count(), 2, 'locks on the two all-mTLS edges');
    for (const name of ['productpage-v1', 'reviews-v1', 'reviews-v2', 'ratings-v1']) await page.locator('.react-flow__node', { hasText: name }).first().waitFor();
    await shot(page, 'graph');
    await page.getByLabel('Edge labels').selectOption('errors');
    await page.waitForURL(/label=errors/);
    await eventually(async () => (await page.getByTestId('edge-label').allTextContents()).some((l) => l.trim() === '10.0%'), 5000, 'the error % label');
    await page.locator('.react-flow__node', { hasText: 'reviews-v2' }).first().click();
    await page.getByTestId('side-panel').waitFor();
    assert.match((await page.getByTestId('side-panel').textContent()) ?? '', /Callers.*productpage-v1/s);
    assert.match(page.url(), /sel=/, 'the selection is in the URL');
    await shot(page, 'graph-selected');
  });

  test('a viewer sees the wizard with Save disabled and a reason; the API refuses anyway', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login/);
    await signIn(page, web.url, VIEWER);
    assert.equal(await page.getByTestId('role').textContent(), 'viewer');
    await page.goto(`${web.url}/traffic?ns=default&svc=reviews&w=50,50`);
    await page.getByTestId('denied-reason').waitFor();
    const save = page.getByRole('button', { name: 'Save' });
    assert.ok(await save.isDisabled());
    assert.equal((await page.getByTestId('denied-reason').textContent())?.trim(), 'Needs the editor role; you are signed in as viewer.');
    // The v3 subset kept in the DestinationRule has no slider here: its warning is listed under Analysis.
    await page.getByTestId('finding').filter({ hasText: 'TRN0202' }).first().waitFor();
    await shot(page, 'traffic-viewer');
    // The same session, straight at the API through the console: 403, nothing written.
    const res = await page.request.post(`${web.url}/api/trpc/resources.applyDocuments`, {
      data: { resources: [{ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] } }] },
    });
    assert.equal(res.status(), 403);
    assert.match(JSON.stringify(await res.json()), /needs the editor role/);
    assert.deepEqual((await vs('reviews')).body.spec.http[0].route.map((r: any) => r.weight), [80, 20]);
    // Rollback is disabled too.
    await page.goto(`${web.url}/config/resource?kind=VirtualService&ns=default&name=reviews&tab=history`);
    await page.getByTestId('history-table').waitFor();
    assert.ok(await page.getByRole('button', { name: /Roll back to/ }).first().isDisabled());
  });

  test('dark theme by toggle, remembered across pages', async () => {
    await page.goto(`${web.url}/`);
    await page.getByTestId('theme-toggle').click(); // system -> light
    await page.getByTestId('theme-toggle').click(); // light -> dark
    assert.equal(await page.evaluate('document.documentElement.dataset.theme'), 'dark');
    await page.goto(`${web.url}/services`);
    assert.equal(await page.evaluate('document.documentElement.dataset.theme'), 'dark');
    const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    assert.equal(bg, 'rgb(13, 17, 23)');
    await page.goto(`${web.url}/`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByTestId('proxy-counts').waitFor();
    await shot(page, 'overview-dark');
  });

  test('a session that ends while a page is open sends you to sign in', async () => {
    await page.goto(`${web.url}/audit`);
    await page.getByTestId('audit-table').waitFor();
    // Ended behind the page's back (another tab signing out, expiry): the next read is a 401.
    const out = await page.request.post(`${web.url}/api/v1/auth/logout`, { data: {} });
    assert.equal(out.status(), 200);
    await page.getByLabel('Actor').fill('erin');
    await page.waitForURL(/\/login\?next=%2Faudit/);
  });

  test('the console reports an unreachable control plane as a message', async () => {
    const dead = await startConsole('http://127.0.0.1:9'); // discard port: nothing listens
    try {
      await page.goto(`${dead.url}/login`);
      await page.getByLabel('Username').fill('x');
      await page.getByLabel('Password').fill('y');
      await page.getByLabel('Password').press('Enter');
      const alert = page.locator('#login-error');
      await alert.waitFor();
      assert.equal((await alert.textContent())?.trim(), 'the console could not reach the control plane');
    } finally {
      await dead.close();
    }
  });
});
