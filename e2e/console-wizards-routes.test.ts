import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { connectProxy, ensureBuilt, getResource, eventually, openConsole, revision, saveAndConverge, seedServices, seedUsers, shot, signIn, startApi, USERS, type Console, type ConsoleSession, type TestApi } from './lib/console-harness.ts';

// The VirtualService wizards (request routing, fault injection, timeouts and retries) in a real
// browser against a real control plane. Tests run in order on one service, each wizard starting
// from what the previous one wrote, so preservation is checked on real stored state.

const { editor: EDITOR, viewer: VIEWER } = USERS;
const HOST = 'reviews.default.svc.cluster.local';

let api: TestApi;
let web: Console;
let ui: ConsoleSession;
let page: Page;
const proxies: { close(): void }[] = [];

const vs = (name: string) => getResource(api, 'vs', name);

const dest = (subset: string) => ({ destination: { host: HOST, subset } });
const yaml = async () => (await page.getByTestId('proposed-yaml').textContent()) ?? '';
const saveButton = () => page.getByRole('button', { name: 'Save' });

/** Save, then the proxy converges on the write. */
async function saveConverged(): Promise<void> {
  const conv = await saveAndConverge(page);
  assert.match((await conv.textContent()) ?? '', /Converged: all \d+ affected prox(y|ies) ACKed revision \d+/);
}

/** Lines the diff removes and adds, whitespace squashed. */
async function diffLines(): Promise<{ removed: string[]; added: string[] }> {
  const squash = (l: string) => l.replace(/\s+/g, ' ').trim();
  return {
    removed: (await page.locator('[data-testid=diff] .del').allTextContents()).map(squash),
    added: (await page.locator('[data-testid=diff] .add').allTextContents()).map(squash),
  };
}

before(async () => {
  ensureBuilt();
  api = await startApi();
  await seedUsers(api, EDITOR, VIEWER);
  await seedServices(api, ['reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1']);
  ui = await openConsole(api);
  ({ web, page } = ui);
  proxies.push(connectProxy(api.xdsAddress!, 'productpage-v1.default', { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1' }));
  await eventually(async () => (await api.rest('GET', '/api/v1/proxies/productpage-v1.default')).body.status === 'SYNCED', 10_000, 'the proxy synced');
  await signIn(page, web.url, EDITOR);
});

after(async () => {
  for (const p of proxies) p.close();
  await ui?.close();
  await api?.close();
});

describe('VirtualService wizards', () => {
  test('request routing: end-user jason to v2, /api/v3 GETs to v3, the rest to v1; saved exactly, proxies converge', async () => {
    await page.goto(`${web.url}/traffic/routing?ns=default&svc=reviews`);
    await page.getByRole('heading', { name: 'Request routing' }).waitFor();
    // The traffic wizards link to each other, keeping the service.
    assert.equal(await page.getByRole('link', { name: 'Fault injection' }).getAttribute('href'), '/traffic/faults?ns=default&svc=reviews');
    await page.getByTestId('add-rule').click();
    await page.getByLabel('Rule 1 header name').fill('end-user');
    await page.getByLabel('Rule 1 header value').fill('jason');
    await page.getByTestId('rule-0-version').selectOption('v2');
    await page.getByTestId('add-rule').click();
    await page.getByLabel('Rule 2 URI match').selectOption('prefix');
    await page.getByLabel('Rule 2 URI path').fill('/api/v3');
    await page.getByLabel('Rule 2 method').selectOption('GET');
    await page.getByTestId('rule-1-version').selectOption('v3');
    await page.getByTestId('default-version').selectOption('v1');
    await page.getByTestId('analysis-clean').waitFor({ timeout: 15_000 });
    const y = await yaml();
    assert.match(y, /kind: DestinationRule/);
    assert.match(y, /end-user:\n\s+exact: jason/);
    assert.match(y, /uri:\n\s+prefix: \/api\/v3/);
    assert.match(y, /method:\n\s+exact: GET/);
    assert.equal((await vs('reviews')).status, 404, 'nothing written before Save');
    await shot(page, 'wizard-routing');

    await saveConverged();
    const stored = await vs('reviews');
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.body.spec, {
      hosts: ['reviews'],
      http: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [dest('v2')] },
        { match: [{ uri: { prefix: '/api/v3' }, method: { exact: 'GET' } }], route: [dest('v3')] },
        { route: [dest('v1')] },
      ],
    });
    const dr = await api.rest('GET', '/api/v1/resources/dr/default/reviews');
    assert.deepEqual(dr.body.spec.subsets.map((s: { name: string }) => s.name), ['v2', 'v3', 'v1']);
    // The form now matches what is stored: nothing left to change.
    await eventually(async () => /No changes\./.test((await page.getByTestId('diff').textContent()) ?? ''), 10_000, 'the diff empty after saving');
    await page.getByTestId('unchanged').waitFor();
    assert.ok(await saveButton().isDisabled(), 'nothing to save');
    await shot(page, 'wizard-routing-converged');
  });

  test('request routing: a header value with no name is flagged next to the rule and Save stays disabled', async () => {
    const rev = await revision(api);
    await page.goto(`${web.url}/traffic/routing?ns=default&svc=reviews`);
    // The stored rules come back into the form.
    await page.getByLabel('Rule 2 URI path').waitFor();
    assert.equal(await page.getByLabel('Rule 1 header value').inputValue(), 'jason');
    await page.getByTestId('add-rule').click();
    await page.getByLabel('Rule 3 header value').fill('tester');
    await page.getByTestId('rule-2-version').selectOption('v3');
    const msg = page.getByRole('group', { name: 'Rule 3' }).getByTestId('finding');
    await msg.first().waitFor();
    assert.match((await msg.first().textContent()) ?? '', /Rule 3, header: a header name is required/);
    await page.getByTestId('blocked').waitFor();
    assert.ok(await saveButton().isDisabled());
    await shot(page, 'wizard-routing-invalid');
    assert.equal(await revision(api), rev, 'no revision was written');
  });

  test('fault injection: a 7 s delay for end-user jason, in a route of its own; everything else kept', async () => {
    const beforeSpec = (await vs('reviews')).body.spec;
    await page.goto(`${web.url}/traffic/faults?ns=default&svc=reviews`);
    await page.getByRole('heading', { name: 'Fault injection' }).waitFor();
    await page.getByLabel('Delay requests').check();
    await page.getByLabel('Fixed delay').fill('7s');
    await page.getByLabel('Only requests with a header').check();
    assert.equal(await page.getByLabel('Header name').inputValue(), 'end-user');
    await page.getByLabel('Header value').fill('jason');
    await page.getByTestId('analysis-clean').waitFor({ timeout: 15_000 });
    const y = await yaml();
    assert.match(y, /name: fault-injection/);
    assert.match(y, /fixedDelay: 7s/);
    // The diff only adds: no line of the stored VirtualService goes away.
    const d = await diffLines();
    assert.deepEqual(d.removed, []);
    assert.ok(d.added.includes('+ fixedDelay: 7s'), d.added.join('\n'));
    await shot(page, 'wizard-faults');

    await saveConverged();
    const stored = (await vs('reviews')).body.spec;
    assert.deepEqual(stored.http[0], {
      name: 'fault-injection',
      match: [{ headers: { 'end-user': { exact: 'jason' } } }],
      // jason's requests still go where the routing rule sent them.
      route: [dest('v2')],
      fault: { delay: { fixedDelay: '7s', percentage: { value: 100 } } },
    });
    assert.deepEqual(stored.http.slice(1), beforeSpec.http);
    await shot(page, 'wizard-faults-converged');
  });

  test('fault injection: an abort percentage of 150 is flagged next to the field and Save stays disabled', async () => {
    const rev = await revision(api);
    await page.goto(`${web.url}/traffic/faults?ns=default&svc=reviews`);
    // The stored fault comes back into the form.
    await eventually(async () => (await page.getByLabel('Fixed delay').inputValue()) === '7s', 10_000, 'the stored delay');
    await page.getByLabel('Abort requests with an HTTP status').check();
    await page.getByLabel('Abort percentage').fill('150');
    const msg = page.getByTestId('finding').filter({ hasText: 'Abort percentage' });
    await msg.waitFor();
    assert.equal((await msg.textContent())?.replace(/\s+/g, ' ').trim(), 'error Abort percentage must be a percentage from 0 to 100 (got 150) percent');
    assert.equal(await page.getByLabel('Abort percentage').getAttribute('aria-invalid'), 'true');
    await page.getByTestId('blocked').waitFor();
    assert.ok(await saveButton().isDisabled());
    await shot(page, 'wizard-faults-invalid');
    assert.equal(await revision(api), rev, 'no revision was written');
  });

  test('timeouts and retries: 1.5 s and 3 retries on every route; matches, destinations and the fault kept', async () => {
    const beforeSpec = (await vs('reviews')).body.spec;
    await page.goto(`${web.url}/traffic/timeouts?ns=default&svc=reviews`);
    await page.getByRole('heading', { name: 'Timeouts and retries' }).waitFor();
    await page.getByLabel('Route timeout').fill('1.5s');
    await page.getByLabel('Custom').check();
    await page.getByLabel('Retry attempts').fill('3');
    await page.getByLabel('Per-try timeout').fill('500ms');
    await page.getByLabel('5xx').check();
    await page.getByLabel('connect-failure').check();
    await page.getByLabel('unavailable').check();
    await page.getByTestId('analysis-clean').waitFor({ timeout: 15_000 });
    const y = await yaml();
    assert.match(y, /timeout: 1.5s/);
    assert.match(y, /retryOn: 5xx,connect-failure,unavailable/);
    // Only additions: a removed line is at most a list item's first key moving down ("- route:").
    const d = await diffLines();
    assert.ok(d.removed.every((l) => /^- - \w+:$/.test(l)), d.removed.join('\n'));
    await shot(page, 'wizard-timeouts');

    await saveConverged();
    const stored = (await vs('reviews')).body.spec;
    const retries = { attempts: 3, perTryTimeout: '500ms', retryOn: '5xx,connect-failure,unavailable' };
    assert.deepEqual(stored.http, beforeSpec.http.map((r: Record<string, unknown>) => ({ ...r, timeout: '1.5s', retries })));
    assert.equal(stored.http.length, 4);
    await shot(page, 'wizard-timeouts-converged');
  });

  test('timeouts and retries: bad durations and negative attempts are flagged next to their fields', async () => {
    const rev = await revision(api);
    await page.goto(`${web.url}/traffic/timeouts?ns=default&svc=reviews`);
    await eventually(async () => (await page.getByLabel('Route timeout').inputValue()) === '1.5s', 10_000, 'the stored timeout');
    await page.getByLabel('Route timeout').fill('soon');
    await page.getByLabel('Retry attempts').fill('-1');
    await page.getByTestId('finding').filter({ hasText: 'Timeout must be a duration such as "10s", "500ms" or "1m30s" (got "soon")' }).waitFor();
    await page.getByTestId('finding').filter({ hasText: 'Retry attempts must be at least 0 (got -1)' }).waitFor();
    await page.getByTestId('blocked').waitFor();
    // The analyzer waits for the form: its schema check would repeat these once per route.
    await page.getByTestId('analysis-waiting').waitFor();
    assert.match((await page.getByTestId('blocked').textContent()) ?? '', /Fix the 2 errors above to save/);
    assert.equal(await page.getByTestId('finding').count(), 2);
    assert.ok(await saveButton().isDisabled());
    await shot(page, 'wizard-timeouts-invalid');
    assert.equal(await revision(api), rev, 'no revision was written');
  });

  test('traffic shifting afterwards changes only the default route: rules, fault, timeouts and retries stay', async () => {
    const beforeSpec = (await vs('reviews')).body.spec;
    await page.goto(`${web.url}/traffic?ns=default&svc=reviews&w=80,20,0`);
    await page.getByTestId('weight-v1').waitFor();
    await page.getByTestId('analysis-clean').waitFor({ timeout: 15_000 });
    await saveConverged();
    const stored = (await vs('reviews')).body.spec;
    assert.deepEqual(stored.http.slice(0, 3), beforeSpec.http.slice(0, 3));
    assert.deepEqual(stored.http[3], { ...beforeSpec.http[3], route: [{ ...dest('v1'), weight: 80 }, { ...dest('v2'), weight: 20 }] });
    await shot(page, 'wizard-shifting-after');
  });

  test('a viewer sees each wizard with Save disabled and the reason', async () => {
    await signIn(page, web.url, VIEWER);
    for (const [p, name] of [['routing', 'Request routing'], ['faults', 'Fault injection'], ['timeouts', 'Timeouts and retries']] as const) {
      await page.goto(`${web.url}/traffic/${p}?ns=default&svc=reviews`);
      await page.getByRole('heading', { name }).waitFor();
      await page.getByTestId('denied-reason').waitFor();
      assert.equal((await page.getByTestId('denied-reason').textContent())?.trim(), 'Needs the editor role; you are signed in as viewer.');
      assert.ok(await saveButton().isDisabled(), p);
    }
    await shot(page, 'wizard-viewer');
  });
});
