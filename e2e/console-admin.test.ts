import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { ADMIN_PASSWORD, ensureBuilt, eventually, openConsole, seedServices, shot, signIn, startApi, type Console, type ConsoleSession, type TestApi } from './lib/console-harness.ts';

// The console's admin pages (users, API tokens) and its YAML editor, in a real browser against a
// real control plane. Tests run in order and build on each other (users created in the first are
// used later).

const ADMIN = { username: 'admin', password: ADMIN_PASSWORD };
const EDNA = { username: 'edna', password: 'edna-password-12', role: 'editor' };
const VERA = { username: 'vera', password: 'vera-password-12', role: 'viewer' };

const VS_YAML = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 80
    - destination:
        host: reviews
        subset: v2
      weight: 20
`;
const DR_YAML = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;

let api: TestApi;
let web: Console;
let ui: ConsoleSession;
let page: Page;

async function users(): Promise<{ username: string; role: string }[]> {
  const r = await api.rest('GET', '/api/v1/users');
  assert.equal(r.status, 200);
  return r.body.users;
}

async function weights(): Promise<number[]> {
  const r = await api.rest('GET', '/api/v1/resources/vs/default/reviews');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.spec.http[0].route.map((x: { weight: number }) => x.weight);
}

const editor = () => page.getByTestId('yaml-input');
const summary = () => page.getByTestId('problems-summary');
const saveButton = () => page.locator('#yaml-save');

async function waitValid() {
  await eventually(async () => /Valid/.test((await summary().textContent()) ?? ''), 10_000, 'the editor to report the text valid');
}

before(async () => {
  ensureBuilt();
  api = await startApi();
  await seedServices(api);
  const applied = await api.rest('POST', '/api/v1/apply', { yaml: `${DR_YAML}---\n${VS_YAML}` });
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  ui = await openConsole(api);
  ({ web, page } = ui);
});

after(async () => {
  await ui?.close();
  await api?.close();
});

describe('admin pages', () => {
  test('an admin creates an editor and a viewer through the page; the new user signs in', async () => {
    await signIn(page, web.url, ADMIN);
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByTestId('users-table').waitFor();
    // A password the API refuses: its message, nothing created.
    await page.getByLabel('Username').fill('shorty');
    await page.getByLabel('Password').fill('too-short');
    // (minLength in the form would stop the browser from sending it: remove it to reach the API.)
    await page.locator('input[name=new-password]').evaluate((el) => el.removeAttribute('minlength'));
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByText('User not created').waitFor();
    assert.match((await page.locator('.msg.error').textContent()) ?? '', /at least 12 characters/);
    assert.ok(!(await users()).some((u) => u.username === 'shorty'));

    for (const u of [EDNA, VERA]) {
      await page.getByLabel('Username').fill(u.username);
      await page.getByLabel('Password').fill(u.password);
      await page.locator('select[name=new-role]').selectOption(u.role);
      await page.getByRole('button', { name: 'Create user' }).click();
      await page.getByTestId(`user-${u.username}`).waitFor();
    }
    assert.deepEqual(
      (await users()).filter((u) => u.username !== 'admin').map((u) => [u.username, u.role]).sort(),
      [['edna', 'editor'], ['vera', 'viewer']],
    );
    // You cannot delete yourself: the control is disabled with the reason.
    const self = page.getByTestId('user-admin');
    assert.ok(await self.getByRole('button', { name: 'Delete' }).isDisabled());
    assert.equal((await self.getByTestId('blocked-reason').textContent())?.trim(), 'You cannot delete your own account.');
    await shot(page, 'admin-users');

    await signIn(page, web.url, EDNA);
    assert.equal(await page.getByTestId('role').textContent(), 'editor');
    // Navigation fits the role: no Users entry for an editor, API tokens for everyone.
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).count(), 0);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API tokens' }).waitFor();
  });

  test('a role change takes effect at the next request', async () => {
    await signIn(page, web.url, ADMIN);
    await page.goto(`${web.url}/admin/users`);
    const row = page.getByTestId('user-vera');
    await row.getByLabel('Role of vera').selectOption('editor');
    await row.getByRole('button', { name: 'Change role' }).click();
    await page.getByText('vera is now editor.').waitFor();
    await signIn(page, web.url, VERA);
    assert.equal(await page.getByTestId('role').textContent(), 'editor');

    await signIn(page, web.url, ADMIN);
    await page.goto(`${web.url}/admin/users`);
    await page.getByTestId('user-vera').getByLabel('Role of vera').selectOption('viewer');
    await page.getByTestId('user-vera').getByRole('button', { name: 'Change role' }).click();
    await page.getByText('vera is now viewer.').waitFor();
    assert.equal((await users()).find((u) => u.username === 'vera')?.role, 'viewer');
  });

  test('reset password: the old one stops working, the new one works', async () => {
    await page.goto(`${web.url}/admin/users`);
    const row = page.getByTestId('user-edna');
    await row.getByRole('button', { name: 'Reset password' }).click();
    await page.getByLabel('New password for edna').fill('edna-new-password-1');
    await page.getByRole('button', { name: 'Set password', exact: true }).click();
    await page.getByText('Password of edna reset').waitFor();
    EDNA.password = 'edna-new-password-1';
    await signIn(page, web.url, EDNA);
    assert.equal(await page.getByTestId('role').textContent(), 'editor');
  });

  test('delete asks for confirmation; Cancel keeps the user, Yes deletes', async () => {
    const r = await api.rest('POST', '/api/v1/users', { username: 'doomed', password: 'doomed-password-1', role: 'viewer' });
    assert.equal(r.status, 200);
    await signIn(page, web.url, ADMIN);
    await page.goto(`${web.url}/admin/users`);
    const row = page.getByTestId('user-doomed');
    await row.getByRole('button', { name: 'Delete' }).click();
    const confirm = row.getByTestId('confirm');
    assert.match((await confirm.textContent()) ?? '', /Delete doomed\? Their sessions and API tokens go too\./);
    await shot(page, 'admin-users-confirm');
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    assert.ok((await users()).some((u) => u.username === 'doomed'), 'Cancel deleted nothing');
    await row.getByRole('button', { name: 'Delete' }).click();
    await row.getByRole('button', { name: 'Yes, delete doomed' }).click();
    await page.getByText('Deleted doomed').waitFor();
    assert.ok(!(await users()).some((u) => u.username === 'doomed'));
    await eventually(async () => (await page.getByTestId('user-doomed').count()) === 0, 5000, 'the row gone');
  });

  test('an API token is shown once, works against the REST API, and stops working when revoked', async () => {
    await page.getByRole('link', { name: 'API tokens' }).click();
    await page.getByLabel('Name').fill('ci-deploy');
    await page.locator('select[name=token-role]').selectOption('editor');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = page.getByTestId('token-secret');
    await secret.waitFor();
    const token = await secret.inputValue();
    assert.match(token, /^tern_pat_/);
    assert.match((await page.getByTestId('new-token').textContent()) ?? '', /you will not see it again/);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByTestId('copied').waitFor();
    const row = page.getByTestId('token-ci-deploy');
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /admin.*editor.*active/s);
    assert.ok(!((await row.textContent()) ?? '').includes(token), 'the list shows a prefix, not the token');
    await shot(page, 'admin-tokens');

    const call = () => fetch(`${api.url}/api/v1/resources`, { headers: { authorization: `Bearer ${token}` } });
    const ok = await call();
    assert.equal(ok.status, 200);
    assert.ok(((await ok.json()) as { items: unknown[] }).items.length >= 2);

    // Done drops the secret: it is not on the page any more, even after a reload.
    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.getByTestId('token-secret').count(), 0);
    await page.reload();
    await row.waitFor();
    assert.ok(!((await page.content()).includes(token)));
    // Last used is recorded once the token has been used.
    await eventually(async () => !/never\s*active/.test((await row.textContent()) ?? ''), 5000, 'last used shown');

    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.getByRole('button', { name: 'Yes, revoke' }).click();
    await page.getByText('Revoked “ci-deploy”').waitFor();
    await eventually(async () => /revoked/.test((await row.textContent()) ?? ''), 5000, 'listed as revoked');
    const refused = await call();
    assert.equal(refused.status, 401);
  });

  test('a viewer sees user controls disabled with the reason, and manages only their own tokens', async () => {
    await signIn(page, web.url, VERA);
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).count(), 0);
    await page.goto(`${web.url}/admin/users`);
    await page.getByTestId('users-denied').waitFor();
    assert.ok(await page.getByRole('button', { name: 'Create user' }).isDisabled());
    assert.ok(await page.locator('input[name=new-username]').isDisabled());
    assert.equal((await page.getByTestId('denied-reason').textContent())?.trim(), 'Needs the admin role; you are signed in as viewer.');
    assert.equal(await page.getByTestId('users-table').count(), 0);
    await shot(page, 'admin-users-viewer');

    await page.goto(`${web.url}/admin/tokens`);
    // A token never above the owner's role: editor and admin are not offered.
    assert.ok(await page.locator('select[name=token-role] option[value=editor]').isDisabled());
    await page.getByLabel('Name').fill('vera-script');
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = await page.getByTestId('token-secret').inputValue();
    await page.getByTestId('token-vera-script').waitFor();
    // Only her own: the admin's revoked token is not listed.
    assert.equal(await page.getByTestId('token-ci-deploy').count(), 0);
    const r = await fetch(`${api.url}/api/v1/resources`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const write = await fetch(`${api.url}/api/v1/apply`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ yaml: VS_YAML }) });
    assert.equal(write.status, 403, 'a viewer token cannot write');
  });
});

describe('YAML editor', () => {
  const resourceUrl = () => `${web.url}/config/resource?kind=VirtualService&ns=default&name=reviews`;

  test('a viewer sees Edit disabled with the reason', async () => {
    await page.goto(resourceUrl());
    await page.getByTestId('resource-yaml').waitFor();
    assert.ok(await page.locator('#edit-yaml').isDisabled());
  });

  test('edit a weight: validated, diffed, saved; REST shows it; convergence follows', async () => {
    await signIn(page, web.url, EDNA);
    await page.goto(resourceUrl());
    await page.locator('#edit-yaml').click();
    await editor().waitFor();
    await waitValid();
    assert.ok(await saveButton().isDisabled(), 'no change yet: nothing to save');
    const text = await editor().inputValue();
    await editor().fill(text.replace('weight: 80', 'weight: 70').replace('weight: 20', 'weight: 30'));
    await waitValid();
    const squash = (l: string) => l.replace(/\s+/g, ' ').trim();
    const added = (await page.locator('[data-testid=diff] .add').allTextContents()).map(squash);
    assert.deepEqual(added, ['+ weight: 70', '+ weight: 30']);
    await eventually(async () => !(await saveButton().isDisabled()), 5000, 'Save enabled');
    await shot(page, 'yaml-edit');
    assert.deepEqual(await weights(), [80, 20], 'dry runs wrote nothing');
    await saveButton().click();
    await page.getByTestId('saved').waitFor();
    assert.deepEqual(await weights(), [70, 30]);
    const conv = page.getByTestId('convergence');
    await eventually(async () => ['no-proxies', 'converged', 'unaffected'].includes((await conv.getAttribute('data-state')) ?? ''), 15_000, 'convergence settled');
    assert.match((await page.getByTestId('resource-yaml').textContent()) ?? '', /weight: 70/);
    await shot(page, 'yaml-saved');
  });

  test('schema errors are shown with path and line, and Save stays disabled', async () => {
    await page.locator('#edit-yaml').click();
    const text = await editor().inputValue();
    const lines = text.split('\n');
    const weightLine = lines.findIndex((l) => l.includes('weight: 70')) + 1;
    const indent = /^\s*/.exec(lines[weightLine - 1]!)![0];
    await editor().fill(text.replace('weight: 70', 'weight: abc').replace('weight: 30', `weight: 30\n${indent}bogus: 1`));
    await eventually(async () => /2 errors/.test((await summary().textContent()) ?? ''), 10_000, 'two schema errors');
    const problems = (await page.getByTestId('problem').allTextContents()).map((t) => t.replace(/\s+/g, ' '));
    assert.ok(problems.some((p) => p.includes(`line ${weightLine}, column ${indent.length + 1} · spec.http[0].route[0].weight: must be a number, not the string "abc"`)), problems.join('\n'));
    assert.ok(problems.some((p) => /spec\.http\[0\]\.route\[1\]\.bogus: is not a field/.test(p)), problems.join('\n'));
    assert.equal(await page.locator(`.gutter [data-line="${weightLine}"]`).getAttribute('data-mark'), 'error');
    assert.ok(await saveButton().isDisabled());
    assert.equal((await page.getByTestId('save-blocked').textContent())?.trim(), 'Fix the errors first.');
    await shot(page, 'yaml-schema-error');
    assert.deepEqual(await weights(), [70, 30]);
  });

  test('a YAML syntax error shows its line and column', async () => {
    const text = await editor().inputValue();
    const broken = text.replace(/hosts:\n\s+- reviews/, 'hosts: [reviews');
    assert.notEqual(broken, text);
    await editor().fill(broken);
    await eventually(async () => (await page.locator('[data-testid=problem][data-source=syntax]').count()) > 0, 10_000, 'a syntax error');
    const first = (await page.locator('[data-testid=problem][data-source=syntax]').first().textContent()) ?? '';
    assert.match(first, /YAML syntax error at line \d+, column \d+: /);
    assert.ok(await saveButton().isDisabled());
    await shot(page, 'yaml-syntax-error');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByTestId('resource-yaml').waitFor();
  });

  test('a concurrent change between load and save is a conflict, not an overwrite', async () => {
    await page.reload();
    await page.locator('#edit-yaml').click();
    await waitValid();
    const text = await editor().inputValue();
    await editor().fill(text.replace('weight: 70', 'weight: 60').replace('weight: 30', 'weight: 40'));
    await waitValid();
    // Someone else, through the REST API, after the editor loaded and checked.
    const theirs = await api.rest('POST', '/api/v1/apply', { yaml: VS_YAML.replace('weight: 80', 'weight: 90').replace('weight: 20', 'weight: 10') });
    assert.equal(theirs.status, 200, JSON.stringify(theirs.body));
    await saveButton().click();
    const conflict = page.getByTestId('conflict');
    await conflict.waitFor();
    assert.match((await conflict.textContent()) ?? '', /someone else changed VirtualService default\/reviews after you opened the editor.*Nothing was saved/s);
    assert.match((await conflict.textContent()) ?? '', /was modified: your resourceVersion is \d+, the stored one is \d+/);
    assert.deepEqual(await weights(), [90, 10], 'their change stands');
    assert.ok(await saveButton().isDisabled());
    await shot(page, 'yaml-conflict');
    await page.getByRole('button', { name: 'Discard my changes and load the current version' }).click();
    await eventually(async () => (await editor().inputValue()).includes('weight: 90'), 5000, 'the current version loaded');
    await waitValid();
    await page.getByRole('button', { name: 'Cancel' }).click();
  });

  test('new resource: paste YAML, validated (an existing name is refused), created', async () => {
    await page.goto(`${web.url}/config`);
    await page.getByRole('button', { name: 'New resource' }).click();
    await page.waitForURL(/\/config\/new/);
    await editor().fill(DR_YAML);
    await eventually(async () => (await page.getByTestId('problem').count()) > 0, 10_000, 'already exists');
    assert.match((await page.getByTestId('problem').first().textContent()) ?? '', /already exists/);
    assert.ok(await page.locator('#yaml-create').isDisabled());
    const ratings = DR_YAML.replace('name: reviews', 'name: ratings').replace('host: reviews', 'host: ratings.default.svc.cluster.local');
    await editor().fill(ratings);
    await waitValid();
    await shot(page, 'yaml-new');
    await page.locator('#yaml-create').click();
    await page.getByTestId('created').waitFor();
    assert.match((await page.getByTestId('created').textContent()) ?? '', /created DestinationRule default\/ratings/);
    const r = await api.rest('GET', '/api/v1/resources/dr/default/ratings');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.spec.subsets.map((s: { name: string }) => s.name), ['v1', 'v2']);
    await shot(page, 'yaml-created');
  });
});
