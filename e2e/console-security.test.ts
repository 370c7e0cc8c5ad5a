import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Page } from 'playwright-core';
import { createIstioCertificateClient } from '@tern/xds';
import { startTestApi } from '../apps/api/test/helpers.ts';
import { subtle, x509, type CryptoKeyPair } from '../apps/api/src/ca/x509.ts';
import { connectProxy, ensureBuilt, eventually, openConsole, saveAndConverge, seedServices, seedTelemetry, seedUsers, shot, signIn, USERS, type Console, type ConsoleSession, type TestApi } from './lib/console-harness.ts';

// The Security page in a real browser against a real control plane (with its CA): mTLS modes per
// namespace and workload written through the page, an AuthorizationPolicy created through the
// editor and converged on by a proxy, field errors, deletion, the certificates the CA issued,
// observed mTLS from seeded telemetry, and a viewer's disabled Save.

const { editor: EDITOR, viewer: VIEWER } = USERS;

let api: TestApi;
let web: Console;
let ui: ConsoleSession;
let page: Page;
const proxies: { close(): void }[] = [];
let issuedSerial: string;

const get = (kind: string, name: string) => api.rest('GET', `/api/v1/resources/${kind}/default/${name}`);
const saveButton = () => page.getByRole('button', { name: 'Save' });

/** Save, then wait for the convergence panel to settle in any final state; returns that state. */
async function saveSettled(): Promise<string> {
  await eventually(async () => !(await saveButton().isDisabled()), 15_000, 'Save enabled');
  await saveButton().click();
  await page.getByTestId('saved').waitFor();
  const conv = page.getByTestId('convergence');
  let state = '';
  await eventually(async () => ['converged', 'unaffected', 'no-proxies', 'nacked'].includes((state = (await conv.getAttribute('data-state')) ?? '')), 15_000, 'convergence settled');
  return state;
}

/** A certificate from the CA the way a workload gets one: a join token, then CreateCertificate over gRPC. */
async function issueCertificate(): Promise<string> {
  const jt = await api.rest('POST', '/api/v1/ca/join-tokens', { namespace: 'default', serviceAccount: 'reviews' });
  assert.equal(jt.status, 200, JSON.stringify(jt.body));
  const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=workload',
    keys,
    signingAlgorithm: EC,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://cluster.local/ns/default/sa/reviews' }])],
  });
  const client = createIstioCertificateClient(api.xdsAddress!, grpc.credentials.createInsecure());
  try {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${jt.body.token}`);
    await new Promise<void>((resolve, reject) =>
      client.CreateCertificate({ csr: csr.toString('pem'), validity_duration: 3600 }, md, { deadline: Date.now() + 10_000 }, (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    client.close();
  }
  const list = await api.rest('GET', '/api/v1/ca/certificates');
  assert.equal(list.status, 200, JSON.stringify(list.body));
  return list.body.certificates[0].serial;
}

before(async () => {
  ensureBuilt();
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, caKeyEncryptionKey: randomBytes(32).toString('base64') }, undefined, { xds: true });
  await seedUsers(api, EDITOR, VIEWER);
  await seedServices(api, ['reviews-v1', 'reviews-v2', 'ratings-v1', 'productpage-v1']);
  await seedTelemetry(api, [
    { src: 'productpage-v1', dst: 'reviews-v1', requests: 120, mtls: true },
    { src: 'productpage-v1', dst: 'ratings-v1', requests: 60, mtls: false },
  ]);
  ui = await openConsole(api);
  ({ web, page } = ui);
  // An app port of its own, so the proxy has an inbound listener: where the RBAC filter goes.
  proxies.push(connectProxy(api.xdsAddress!, 'reviews-v1.default', { NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-v1', APP_PORTS: { '9080': 19080 } } as unknown as Record<string, string>));
  await eventually(async () => (await api.rest('GET', '/api/v1/proxies/reviews-v1.default')).body.status === 'SYNCED', 10_000, 'the proxy synced');
  await signIn(page, web.url, EDITOR);
});

after(async () => {
  for (const p of proxies) p.close();
  await ui?.close();
  await api?.close();
});

describe('Security page', () => {
  test('namespace default set to STRICT through the page: stored, filled lock, workloads inherit it', async () => {
    await page.goto(`${web.url}/`);
    await page.getByRole('link', { name: 'Security' }).click();
    await page.getByRole('heading', { name: 'Security' }).waitFor();
    const nsRow = page.getByTestId('ns-default');
    assert.equal(await nsRow.getByTestId('mtls-mode').textContent(), 'PERMISSIVE');
    assert.match((await nsRow.textContent()) ?? '', /Istio's default/);
    await page.getByRole('button', { name: 'Edit the mode of namespace default' }).click();
    await page.getByTestId('pa-editor').waitFor();
    await page.getByLabel('mTLS mode').selectOption('STRICT');
    await page.getByTestId('analysis-clean').waitFor({ timeout: 15_000 });
    assert.match((await page.getByTestId('proposed-yaml').textContent()) ?? '', /kind: PeerAuthentication[\s\S]*name: default[\s\S]*namespace: default[\s\S]*mode: STRICT/);
    await saveSettled();
    const r = await get('PeerAuthentication', 'default');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.spec, { mtls: { mode: 'STRICT' } });
    await eventually(async () => (await nsRow.getByTestId('mtls-mode').textContent()) === 'STRICT', 10_000, 'the namespace row shows STRICT');
    assert.equal(await nsRow.locator('.lock.strict svg path').getAttribute('fill'), 'currentColor', 'filled lock');
    const wl = page.getByTestId('wl-default-reviews-v2');
    assert.equal(await wl.getByTestId('mtls-mode').textContent(), 'STRICT');
    assert.match((await wl.getByTestId('source').textContent()) ?? '', /inherited: namespace policy default\/default/);
    await shot(page, 'security-mtls-namespace');
  });

  test('a workload override to PERMISSIVE for reviews-v1 only', async () => {
    await page.getByRole('button', { name: 'Override the mode of reviews-v1' }).click();
    await page.getByTestId('pa-editor').waitFor();
    assert.equal(await page.getByLabel('Workload labels').inputValue(), 'app=reviews, version=v1');
    assert.equal(await page.getByLabel('Policy name', { exact: true }).inputValue(), 'reviews-v1-mtls');
    await page.getByLabel('mTLS mode').selectOption('PERMISSIVE');
    await page.getByRole('button', { name: 'Add a port' }).click();
    await page.getByLabel('Port 1', { exact: true }).fill('99999');
    await page.getByTestId('pa-editor').getByText('Port 1 must be at most 65535').waitFor();
    assert.ok(await saveButton().isDisabled(), 'Save disabled while a port is invalid');
    await page.getByLabel('Port 1', { exact: true }).fill('9443');
    await page.getByLabel('Port 1 mode').selectOption('STRICT');
    await page.getByTestId('analysis-clean').waitFor({ timeout: 15_000 });
    await saveSettled();
    const r = await get('PeerAuthentication', 'reviews-v1-mtls');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.spec, { mtls: { mode: 'PERMISSIVE' }, selector: { matchLabels: { app: 'reviews', version: 'v1' } }, portLevelMtls: { '9443': { mode: 'STRICT' } } });
    const v1 = page.getByTestId('wl-default-reviews-v1');
    await eventually(async () => (await v1.getByTestId('mtls-mode').first().textContent()) === 'PERMISSIVE', 10_000, 'reviews-v1 PERMISSIVE');
    assert.match((await v1.getByTestId('source').textContent()) ?? '', /workload policy default\/reviews-v1-mtls/);
    assert.equal(await v1.getByTestId('port-9443').getByTestId('mtls-mode').textContent(), 'STRICT');
    assert.equal(await page.getByTestId('wl-default-reviews-v2').getByTestId('mtls-mode').textContent(), 'STRICT', 'the other version keeps the namespace mode');
    await shot(page, 'security-mtls-workload');
  });

  test('an ALLOW policy created through the editor: REST shows exactly it, the proxy converges', async () => {
    await page.getByRole('link', { name: 'Authorization policies' }).click();
    await page.getByText('No AuthorizationPolicy').waitFor();
    await page.getByRole('button', { name: 'New policy' }).click();
    await page.getByTestId('ap-editor').waitFor();
    await page.getByLabel('Policy name', { exact: true }).fill('reviews-viewer');
    await page.getByLabel('Selector').fill('app=reviews');
    await page.getByRole('button', { name: 'Add a source (from)' }).click();
    await page.getByLabel('Rule 1 source 1 Principals').fill('cluster.local/ns/default/sa/productpage');
    await page.getByRole('button', { name: 'Add an operation (to)' }).click();
    await page.getByLabel('Rule 1 operation 1 Methods').fill('GET, HEAD');
    await page.getByLabel('Rule 1 operation 1 Paths').fill('/reviews/*');
    assert.match((await page.getByTestId('policy-notes').textContent()) ?? '', /only requests over mTLS/);
    // No workload runs as productpage's service account here: the analyzer's warning sits next to the source; Save stays possible.
    await page.getByTestId('rule-0').getByTestId('finding').filter({ hasText: 'names service account "productpage"' }).waitFor({ timeout: 15_000 });
    assert.match((await page.getByTestId('analysis-summary').textContent()) ?? '', /1 warning shown next to the field concerned/);
    await shot(page, 'security-authz-editor');
    const conv = await saveAndConverge(page);
    assert.match((await conv.textContent()) ?? '', /Converged: all \d+ affected prox(y|ies) ACKed revision \d+/);
    const r = await get('AuthorizationPolicy', 'reviews-viewer');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.spec, {
      action: 'ALLOW',
      selector: { matchLabels: { app: 'reviews' } },
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/productpage'] } }], to: [{ operation: { methods: ['GET', 'HEAD'], paths: ['/reviews/*'] } }] }],
    });
    const row = page.getByTestId('ap-default-reviews-viewer');
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /ALLOW.*app=reviews.*1.*from principals cluster\.local\/ns\/default\/sa\/productpage to paths \/reviews\/\*; methods GET, HEAD/);
  });

  test('an invalid ipBlock is named next to the field and Save stays disabled; then the policy is deleted after confirmation', async () => {
    await page.getByRole('button', { name: 'Edit default/reviews-viewer' }).click();
    await page.getByTestId('ap-editor').waitFor();
    const before = (await get('AuthorizationPolicy', 'reviews-viewer')).body.metadata.resourceVersion;
    await page.getByLabel('Rule 1 source 1 IP blocks', { exact: true }).fill('10.0.0.0/33');
    const issue = page.getByTestId('rule-0').getByTestId('finding');
    await issue.waitFor();
    assert.match((await issue.textContent()) ?? '', /Rule 1, source 1, IP blocks: must be IP addresses or CIDR blocks .*"10\.0\.0\.0\/33"/);
    assert.equal(await page.getByLabel('Rule 1 source 1 IP blocks', { exact: true }).getAttribute('aria-invalid'), 'true');
    await page.getByTestId('analysis-waiting').waitFor();
    assert.ok(await saveButton().isDisabled(), 'Save disabled');
    assert.match((await page.getByTestId('blocked').textContent()) ?? '', /Fix the error above to save/);
    await shot(page, 'security-authz-invalid');
    assert.equal((await get('AuthorizationPolicy', 'reviews-viewer')).body.metadata.resourceVersion, before, 'nothing written');

    await page.getByRole('button', { name: 'Close' }).click();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByTestId('confirm').getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await get('AuthorizationPolicy', 'reviews-viewer')).status, 200, 'Cancel keeps it');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await page.getByTestId('deleted').waitFor();
    assert.equal((await get('AuthorizationPolicy', 'reviews-viewer')).status, 404);
    await page.getByText('No AuthorizationPolicy').waitFor();
  });

  test('certificates: the issued certificate with its SPIFFE ID, serial and time left; the root', async () => {
    await page.getByRole('link', { name: 'Certificates' }).click();
    // Nothing issued yet: the empty state says how a workload gets a certificate.
    await page.getByText('The CA has issued no workload certificate yet').waitFor();
    await shot(page, 'security-certificates-empty');
    issuedSerial = await issueCertificate();
    await page.reload();
    const row = page.getByTestId('certificate').first();
    await row.waitFor();
    const text = (await row.textContent()) ?? '';
    assert.match(text, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/);
    assert.ok(text.includes(issuedSerial), `${text} has ${issuedSerial}`);
    // One hour of validity: under an hour left is red.
    assert.equal(await row.getByTestId('time-left').getAttribute('data-urgency'), 'critical');
    assert.match((await page.getByTestId('trust-bundle').textContent()) ?? '', /Trust domaincluster\.local[\s\S]*Expires/);
    assert.equal(await page.getByTestId('trust-bundle').getByTestId('time-left').getAttribute('data-urgency'), 'ok');
    await shot(page, 'security-certificates');
  });

  test('observed mTLS: the plain-text edge first, flagged because ratings is STRICT', async () => {
    await page.getByRole('link', { name: 'Observed mTLS' }).click();
    const rows = page.getByTestId('observed-edge');
    await eventually(async () => (await rows.count()) === 2, 10_000, 'two edges');
    const first = (await rows.nth(0).textContent()) ?? '';
    assert.match(first, /default\/productpage-v1default\/ratings-v160.*0%.*STRICT.*plain text to STRICT/);
    assert.equal(await rows.nth(0).getAttribute('data-flagged'), 'true');
    assert.match((await rows.nth(1).textContent()) ?? '', /reviews-v1120.*100%.*PERMISSIVE/);
    assert.equal(await rows.nth(1).getAttribute('data-flagged'), 'false');
    assert.match((await page.getByTestId('flagged-summary').textContent()) ?? '', /1 edge sent only plain text to a STRICT workload/);
    await shot(page, 'security-observed');
  });

  test('a viewer sees everything, but Save and Delete disabled with the reason', async () => {
    await api.rest('POST', '/api/v1/apply', { resources: [{ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-all', namespace: 'default' }, spec: { action: 'DENY', rules: [{}] } }] });
    await signIn(page, web.url, VIEWER);
    await page.goto(`${web.url}/security?tab=mtls&edit=ns:default`);
    await page.getByTestId('pa-editor').waitFor();
    await page.getByLabel('mTLS mode').selectOption('PERMISSIVE');
    await page.getByTestId('proposed-yaml').waitFor();
    assert.ok(await saveButton().isDisabled());
    assert.match((await page.getByTestId('denied-reason').first().textContent()) ?? '', /Needs the editor role; you are signed in as viewer/);
    await shot(page, 'security-viewer-mtls');
    await page.goto(`${web.url}/security?tab=authz`);
    await page.getByTestId('ap-default-deny-all').waitFor();
    assert.ok(await page.getByRole('button', { name: 'Delete' }).isDisabled());
    assert.ok(await page.getByRole('button', { name: 'New policy' }).isDisabled());
    await shot(page, 'security-viewer');
  });
});
