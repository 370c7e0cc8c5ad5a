import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startTestApi } from '../apps/api/test/helpers.ts';
import { registerCrds, startRealApiServer, ternCrds, type RealApiServer } from '../apps/api/test/kube/real-apiserver.ts';
import { ensureBuilt, eventually, openConsole, seedUsers, shot, signIn, USERS, type ConsoleSession, type TestApi } from './lib/console-harness.ts';

// The Config page's Kubernetes panel in a real browser: a control plane writing policy into a real
// kube-apiserver (TERN_KUBE_RECONCILE), a custom resource edited "with kubectl" (a merge patch by
// another field manager) and corrected, and the panel listing that drift for a viewer.

let kube: RealApiServer;
let api: TestApi;
let ui: ConsoleSession;
let page: Page;

before(async () => {
  ensureBuilt();
  kube = await startRealApiServer();
  const kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfig);
  await registerCrds(kc, ternCrds());
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of ['tern-system', 'shop']) await core.createNamespace({ body: { metadata: { name } } });
  api = await startTestApi({ kubeReconcile: true, kubeconfig: kube.kubeconfig, namespace: 'tern-system' });
  await seedUsers(api, USERS.viewer);
  await eventually(() => api.app.kube?.isLeader, 10_000, 'leading');
  const applied = await api.rest('POST', '/api/v1/apply', {
    yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }], timeout: 5s }]
`,
  });
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  const objects = kc.makeApiClient(CustomObjectsApi);
  const VS = { group: 'networking.tern.dev', version: 'v1', plural: 'virtualservices', namespace: 'shop', name: 'reviews' };
  const timeout = async () => ((await objects.getNamespacedCustomObject(VS)) as { spec: { http: { timeout?: string }[] } }).spec.http[0]?.timeout;
  await eventually(async () => (await timeout()) === '5s', 10_000, 'the VirtualService in the cluster');
  await objects.patchNamespacedCustomObject({ ...VS, body: { spec: { http: [{ route: [{ destination: { host: 'reviews' } }], timeout: '30s' }] } }, fieldManager: 'kubectl-edit' }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  await eventually(async () => (await timeout()) === '5s', 10_000, 'the edit corrected');
  ui = await openConsole(api);
  page = ui.page;
});

after(async () => {
  await ui?.close();
  await api?.close();
  await kube?.stop();
});

test('Config page: the Kubernetes panel lists the corrected drift, who edited it and the change', async () => {
  await signIn(page, ui.web.url, USERS.viewer);
  await page.goto(`${ui.web.url}/config`);
  const panel = page.getByTestId('kubernetes-panel');
  await panel.waitFor();
  await assert.doesNotReject(panel.getByText(/^This replica runs the reconciler/).waitFor());
  const row = panel.getByTestId('drift-table').locator('tbody tr').first();
  await row.waitFor();
  const text = await row.innerText();
  assert.match(text, /VirtualService/);
  assert.match(text, /shop\/reviews/);
  assert.match(text, /corrected/);
  assert.match(text, /kubectl-edit/);
  assert.match(text, /spec\.http\[0\]\.timeout "30s" → "5s"/);
  assert.equal(await row.getByRole('link', { name: 'shop/reviews' }).getAttribute('href'), '/config/resource?kind=VirtualService&ns=shop&name=reviews&tab=history');
  await shot(page, 'kubernetes-drift-panel');
});
