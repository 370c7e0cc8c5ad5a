import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { connectProxy, ensureBuilt, getResource, eventually, openConsole, revision, saveAndConverge, seedServices, seedUsers, shot, signIn, startApi, USERS, type Console, type ConsoleSession, type TestApi } from './lib/console-harness.ts';

// The DestinationRule wizards (circuit breaker + outlier detection, load balancer) in a real
// browser against a real control plane: filled in as a user would, the rule checked through REST
// after Save, convergence from ACKing and NACKing xDS clients. Tests run in order and build on
// each other's writes.

const { editor: EDITOR, viewer: VIEWER } = USERS;
const SUBSETS = [
  { name: 'v1', labels: { version: 'v1' } },
  { name: 'v2', labels: { version: 'v2' } },
];

let api: TestApi;
let web: Console;
let ui: ConsoleSession;
let page: Page;
const proxies: { close(): void }[] = [];

const dr = (name: string) => getResource(api, 'dr', name);

const field = (label: string) => page.getByLabel(label, { exact: true });
const saveButton = () => page.getByRole('button', { name: 'Save' });

before(async () => {
  ensureBuilt();
  api = await startApi();
  await seedUsers(api, EDITOR, VIEWER);
  await seedServices(api, ['reviews-v1', 'reviews-v2', 'ratings-v1']);
  // reviews starts with a DestinationRule the wizards must keep (subsets, exportTo, labels).
  const applied = await api.rest('POST', '/api/v1/apply', {
    resources: [{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default', labels: { team: 'books' } }, spec: { host: 'reviews.default.svc.cluster.local', exportTo: ['.'], subsets: SUBSETS } }],
  });
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  proxies.push(connectProxy(api.xdsAddress!, 'productpage-v1.default', { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1' }));
  ui = await openConsole(api);
  ({ web, page } = ui);
  await signIn(page, web.url, EDITOR);
});

after(async () => {
  for (const p of proxies) p.close();
  await ui?.close();
  await api?.close();
});

describe('DestinationRule wizards', () => {
  test('circuit breaker: fills the limits, says what they do, saves exactly them (subsets kept) and converges', async () => {
    await page.goto(`${web.url}/traffic/circuit-breaker?ns=default&svc=reviews`);
    await page.getByTestId('rule-summary').waitFor();
    assert.match((await page.getByTestId('rule-summary').textContent()) ?? '', /Edits DestinationRule default\/reviews; its subsets \(v1, v2\)/);
    // Both groups start off (the rule has neither).
    assert.equal(await page.getByLabel('Limit connections').isChecked(), false);
    await page.getByLabel('Limit connections').check();
    await field('Max connections').fill('1');
    await field('Max pending requests').fill('1');
    await field('Max requests per connection').fill('1');
    await page.getByLabel('Eject failing endpoints').check();
    await field('Consecutive 5xx errors').fill('1');
    await field('Interval').fill('1s');
    await field('Base ejection time').fill('3m');
    await field('Max ejection percent').fill('100');
    const words = (await page.getByTestId('in-words').textContent()) ?? '';
    assert.match(words, /At most 1 connection from each calling proxy to reviews; a 2nd concurrent request waits, a 3rd gets 503/);
    assert.match(words, /returns 1 consecutive 5xx error is ejected: it gets no requests for 3 minutes/);
    assert.match(page.url(), /maxConnections=1/, 'the form is in the URL');
    await page.getByTestId('analysis-clean').waitFor();
    const yaml = (await page.getByTestId('proposed-yaml').textContent()) ?? '';
    assert.match(yaml, /connectionPool:\n\s+http:\n\s+http1MaxPendingRequests: 1\n\s+maxRequestsPerConnection: 1\n\s+tcp:\n\s+maxConnections: 1/);
    assert.match(yaml, /outlierDetection:\n\s+baseEjectionTime: 3m\n\s+consecutive5xxErrors: 1\n\s+interval: 1s\n\s+maxEjectionPercent: 100/);
    assert.equal(await page.locator('[data-testid=diff] .del').count(), 0, 'nothing removed from the stored rule');
    assert.match((await page.getByTestId('write-plan').textContent()) ?? '', /Updates DestinationRule default\/reviews/);
    await shot(page, 'wizard-circuit-breaker');

    const conv = await saveAndConverge(page, 'converged');
    assert.match((await conv.textContent()) ?? '', /Converged: all 1 affected proxy ACKed revision \d+/);
    const stored = await dr('reviews');
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.body.spec, {
      host: 'reviews.default.svc.cluster.local',
      exportTo: ['.'],
      subsets: SUBSETS,
      trafficPolicy: {
        connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } },
        outlierDetection: { consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '3m', maxEjectionPercent: 100 },
      },
    });
    assert.deepEqual(stored.body.metadata.labels, { team: 'books' });
    const status = await api.rest('GET', '/api/v1/proxies/productpage-v1.default');
    assert.ok(BigInt(status.body.convergedRevision) >= BigInt(stored.body.metadata.resourceVersion));
    await shot(page, 'wizard-circuit-breaker-converged');
  });

  test('circuit breaker: invalid input is named next to its field, Save stays disabled, nothing is written', async () => {
    const before = await revision(api);
    await page.goto(`${web.url}/traffic/circuit-breaker?ns=default&svc=reviews`);
    // The form starts from the stored rule.
    assert.equal(await field('Max connections').inputValue(), '1');
    await field('Max connections').fill('0');
    await field('Base ejection time').fill('abc');
    const conn = page.getByTestId('field-maxConnections').getByTestId('finding');
    await conn.waitFor();
    assert.match((await conn.textContent()) ?? '', /Max connections must be at least 1 \(got 0\)/);
    const base = page.getByTestId('field-baseEjectionTime').getByTestId('finding');
    assert.match((await base.textContent()) ?? '', /Base ejection time must be a duration such as "10s", "500ms" or "1m30s" \(got "abc"\)/);
    assert.equal(await field('Max connections').getAttribute('aria-invalid'), 'true');
    assert.match((await page.getByTestId('in-words').textContent()) ?? '', /Connection pool: fix the marked fields/);
    await page.getByTestId('blocked').waitFor();
    assert.equal((await page.getByTestId('blocked').textContent())?.trim(), 'Fix the 2 errors above to save.');
    // Not even after the analyzer has answered.
    await page.waitForTimeout(800);
    assert.ok(await saveButton().isDisabled());
    await shot(page, 'wizard-circuit-breaker-invalid');
    assert.equal(await revision(api), before, 'no revision was written');
    // The unsaved form is in the URL: a reload (or the link sent to someone) shows it again.
    await page.reload();
    await field('Max connections').waitFor();
    assert.equal(await field('Max connections').inputValue(), '0');
    assert.equal(await field('Base ejection time').inputValue(), 'abc');
    await page.getByTestId('blocked').waitFor();
    // Switching the group off removes the fields and the errors with them.
    await page.getByLabel('Limit connections').uncheck();
    await field('Base ejection time').fill('30s');
    await eventually(async () => (await page.getByTestId('blocked').count()) === 0, 5000, 'errors gone');
    assert.equal(await page.getByTestId('field-maxConnections').count(), 0);
    assert.match((await page.locator('[data-testid=diff] .del').allTextContents()).join('\n'), /connectionPool:/);
  });

  test('load balancer: consistent hash on a cookie keeps the circuit breaker and subsets, and converges', async () => {
    await page.goto(`${web.url}/traffic/load-balancer?ns=default&svc=reviews`);
    await page.getByTestId('rule-summary').waitFor();
    assert.ok(await page.getByRole('radio', { name: "Istio's default" }).isChecked());
    await page.getByLabel('Consistent hash (sticky sessions)').check();
    await page.getByLabel('A cookie').check();
    await field('Cookie name').fill('user');
    await field('Cookie TTL').fill('1h');
    const words = (await page.getByTestId('in-words').textContent()) ?? '';
    assert.match(words, /Requests to reviews carrying the same user cookie go to the same endpoint/);
    assert.match(words, /gets one that lasts 1 hour/);
    await page.getByTestId('analysis-clean').waitFor();
    assert.match((await page.getByTestId('proposed-yaml').textContent()) ?? '', /loadBalancer:\n\s+consistentHash:\n\s+httpCookie:\n\s+name: user\n\s+ttl: 1h/);
    assert.equal(await page.locator('[data-testid=diff] .del').count(), 0);
    await shot(page, 'wizard-load-balancer');
    await saveAndConverge(page, 'converged');
    const stored = await dr('reviews');
    assert.deepEqual(stored.body.spec.trafficPolicy.loadBalancer, { consistentHash: { httpCookie: { name: 'user', ttl: '1h' } } });
    assert.deepEqual(stored.body.spec.trafficPolicy.connectionPool, { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } }, 'the circuit breaker is kept');
    assert.deepEqual(stored.body.spec.subsets, SUBSETS);
    await shot(page, 'wizard-load-balancer-converged');
  });

  test('load balancer per subset: only that subset gets a policy; a missing header name is named', async () => {
    await page.goto(`${web.url}/traffic/load-balancer?ns=default&svc=reviews`);
    await page.getByTestId('subset-select').selectOption('v2');
    await page.waitForURL(/subset=v2/);
    assert.ok(await page.getByRole('radio', { name: 'Same as the whole rule' }).isChecked(), 'v2 has no policy of its own');
    await page.getByLabel('Consistent hash (sticky sessions)').check();
    assert.ok(await page.getByLabel('A request header').isChecked());
    const finding = page.getByTestId('field-httpHeaderName').getByTestId('finding');
    await finding.waitFor();
    assert.match((await finding.textContent()) ?? '', /Header name is required to hash on it/);
    assert.ok(await saveButton().isDisabled());
    await page.getByLabel('Simple', { exact: true }).check();
    await page.getByLabel('Algorithm', { exact: true }).selectOption('RANDOM');
    assert.match((await page.getByTestId('in-words').textContent()) ?? '', /Each request goes to an endpoint picked at random\. \(subset v2 of reviews\)/);
    await page.getByTestId('analysis-clean').waitFor();
    await shot(page, 'wizard-load-balancer-subset');
    await saveAndConverge(page, 'converged');
    const stored = await dr('reviews');
    assert.deepEqual(stored.body.spec.subsets, [SUBSETS[0], { ...SUBSETS[1], trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }]);
    assert.deepEqual(stored.body.spec.trafficPolicy.loadBalancer, { consistentHash: { httpCookie: { name: 'user', ttl: '1h' } } }, 'the rule-wide policy is untouched');
  });

  test('a service without a DestinationRule gets one named after it', async () => {
    await page.goto(`${web.url}/traffic/circuit-breaker`);
    await page.getByTestId('service-select').selectOption('default/ratings');
    await page.getByTestId('rule-summary').waitFor();
    assert.match((await page.getByTestId('rule-summary').textContent()) ?? '', /ratings has no DestinationRule yet: Save creates DestinationRule default\/ratings/);
    await page.getByLabel('Limit connections').check();
    // An empty group is refused at the group, before the analyzer would.
    await page.getByText('Connection pool: set at least one limit, or switch the group off').waitFor();
    await field('Max connections').fill('5');
    await field('Connect timeout').fill('250ms');
    assert.match((await page.getByTestId('write-plan').textContent()) ?? '', /Creates DestinationRule default\/ratings/);
    await page.getByTestId('analysis-clean').waitFor();
    await saveAndConverge(page, 'converged');
    const stored = await dr('ratings');
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.body.spec, { host: 'ratings.default.svc.cluster.local', trafficPolicy: { connectionPool: { tcp: { maxConnections: 5, connectTimeout: '250ms' } } } });
  });

  test('a proxy that NACKs the clusters is named with its reason', async () => {
    proxies.push(connectProxy(api.xdsAddress!, 'details-v1.default', { NAMESPACE: 'default', WORKLOAD_NAME: 'details-v1' }, { nackClusters: 'cluster rejected: test NACK' }));
    await eventually(async () => (await api.rest('GET', '/api/v1/proxies/details-v1.default')).body.status === 'NACKED', 10_000, 'the proxy NACKed');
    await page.goto(`${web.url}/traffic/circuit-breaker?ns=default&svc=reviews`);
    await page.getByLabel('Eject failing endpoints').uncheck();
    assert.match((await page.getByTestId('in-words').textContent()) ?? '', /No outlier detection/);
    const conv = await saveAndConverge(page, 'nacked');
    await eventually(async () => /details-v1\.default.*cluster rejected: test NACK/s.test((await conv.textContent()) ?? ''), 10_000, 'the NACKing proxy and its reason');
    assert.match((await conv.textContent()) ?? '', /1 of 2 affected proxies rejected/);
    assert.equal((await dr('reviews')).body.spec.trafficPolicy.outlierDetection, undefined, 'the group switched off is removed');
    await shot(page, 'wizard-dr-nacked');
  });

  test('a viewer sees both wizards with Save disabled and the reason', async () => {
    await signIn(page, web.url, VIEWER);
    for (const wizard of ['circuit-breaker', 'load-balancer']) {
      await page.goto(`${web.url}/traffic/${wizard}?ns=default&svc=reviews`);
      await page.getByTestId('denied-reason').waitFor();
      assert.equal((await page.getByTestId('denied-reason').textContent())?.trim(), 'Needs the editor role; you are signed in as viewer.');
      assert.ok(await saveButton().isDisabled());
    }
    await shot(page, 'wizard-dr-viewer');
  });
});
