import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { writeKubernetesRegistry } from '../src/kube/registry-writer.ts';
import { startTestApi, type TestApi } from './helpers.ts';

const samples = path.resolve(import.meta.dirname, '../../../samples/bookinfo');
const sample = (f: string) => fs.readFileSync(path.join(samples, f), 'utf8');

const vs = (name: string, spec: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, ...extra },
  spec,
});
const simpleRoute = (host: string) => ({ hosts: [host], http: [{ route: [{ destination: { host } }] }] });

let api: TestApi;
before(async () => {
  api = await startTestApi();
});
after(async () => {
  await api?.close();
});

async function revision(): Promise<string> {
  return (await api.rest('GET', '/api/v1/resources')).body.revision;
}

describe('authentication and roles', () => {
  test('anonymous calls get 401, on REST and tRPC', async () => {
    const r = await api.rest('GET', '/api/v1/resources', undefined, { token: null });
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 'UNAUTHORIZED');
    const t = await fetch(`${api.url}/api/trpc/resources.list`);
    assert.equal(t.status, 401);
  });

  test('a viewer reads but gets 403 on writes; nothing is written', async () => {
    const viewer = await api.makeToken('viewer');
    assert.equal((await api.rest('GET', '/api/v1/resources', undefined, { token: viewer })).status, 200);
    const before = await revision();
    const w = await api.rest('POST', '/api/v1/apply', { resources: [vs('viewer-try', simpleRoute('a'))] }, { token: viewer });
    assert.equal(w.status, 403);
    assert.match(w.body.message, /editor/);
    assert.equal(await revision(), before);
  });

  test('an editor writes, and the audit log names the editor token', async () => {
    const editor = await api.makeToken('editor');
    const w = await api.rest('POST', '/api/v1/apply', { resources: [vs('by-editor', simpleRoute('by-editor'))] }, { token: editor });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    const audit = await api.rest('GET', '/api/v1/audit?name=by-editor');
    const ev = audit.body.events.find((e: any) => e.action === 'resource.created');
    assert.ok(ev, 'audit event recorded');
    assert.match(ev.actor, /^admin\/token:test-editor-/);
    assert.equal(ev.actorKind, 'token');
    assert.ok(ev.diff.some((d: any) => d.path === 'spec.hosts' || d.op === 'add'));
  });

  test('editors cannot manage users; bad and revoked tokens get 401', async () => {
    const editor = await api.makeToken('editor');
    assert.equal((await api.rest('GET', '/api/v1/users', undefined, { token: editor })).status, 403);
    assert.equal((await api.rest('GET', '/api/v1/resources', undefined, { token: 'tern_pat_forged' })).status, 401);
    const list = await api.rest('GET', '/api/v1/tokens');
    const mine = list.body.tokens.find((t: any) => editor.startsWith(t.prefix));
    assert.ok(mine);
    assert.equal((await api.rest('DELETE', `/api/v1/tokens/${mine.id}`)).status, 200);
    assert.equal((await api.rest('GET', '/api/v1/resources', undefined, { token: editor })).status, 401);
  });

  test('tokens are stored hashed and never listed in full', async () => {
    const rows = await api.app.db.prisma.apiToken.findMany();
    assert.ok(rows.length > 0);
    for (const r of rows) assert.ok(!r.tokenHash.startsWith('tern_pat_') && r.tokenHash.length === 64);
    const list = await api.rest('GET', '/api/v1/tokens');
    assert.ok(!JSON.stringify(list.body).includes(api.token));
  });

  test('a token cannot mint tokens, and nobody can mint one above their role', async () => {
    const r = await api.rest('POST', '/api/v1/tokens', { name: 'x', role: 'viewer' });
    assert.equal(r.status, 403);
    const created = await api.rest('POST', '/api/v1/users', { username: 'vera', password: 'vera-password-long', role: 'viewer' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const login = await api.rest('POST', '/api/v1/auth/login', { username: 'vera', password: 'vera-password-long' }, { token: null });
    const session = login.body.sessionToken;
    const above = await api.rest('POST', '/api/v1/tokens', { name: 'up', role: 'editor' }, { token: session });
    assert.equal(above.status, 400);
    assert.equal(above.body.data.issues[0].rule, 'role_exceeds_owner');
    const own = await api.rest('POST', '/api/v1/tokens', { name: 'mine', role: 'viewer' }, { token: session });
    assert.equal(own.status, 200);
    // Disabling the owner ends their sessions and disables their tokens at once.
    await api.rest('PATCH', '/api/v1/users/vera', { disabled: true });
    assert.equal((await api.rest('GET', '/api/v1/resources', undefined, { token: own.body.token })).status, 401);
    assert.equal((await api.rest('GET', '/api/v1/resources', undefined, { token: session })).status, 401);
  });

  test('the last admin cannot be demoted, disabled or deleted', async () => {
    const r = await api.rest('PATCH', '/api/v1/users/admin', { role: 'viewer' });
    assert.equal(r.status, 400);
    assert.equal(r.body.data.issues[0].rule, 'last_admin');
    assert.equal((await api.rest('DELETE', '/api/v1/users/admin')).status, 400);
    assert.equal((await api.rest('GET', '/api/v1/auth/me')).body.role, 'admin');
  });

  test('a session cookie from login authenticates the console; logout ends it', async () => {
    const login = await fetch(`${api.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'correct-horse-battery-staple' }),
    });
    const cookie = login.headers.get('set-cookie') ?? '';
    assert.match(cookie, /tern_session=tern_sess_/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const pair = cookie.split(';')[0]!;
    const me = await api.rest('GET', '/api/v1/auth/me', undefined, { token: null, headers: { cookie: pair } });
    assert.equal(me.status, 200);
    assert.equal(me.body.name, 'admin');
    assert.equal(me.body.via, 'session');
    await api.rest('POST', '/api/v1/auth/logout', {}, { token: null, headers: { cookie: pair } });
    assert.equal((await api.rest('GET', '/api/v1/auth/me', undefined, { token: null, headers: { cookie: pair } })).status, 401);
    const audit = await api.rest('GET', '/api/v1/audit?actor=admin');
    assert.deepEqual(audit.body.events.slice(0, 2).map((e: any) => e.action), ['auth.logout', 'auth.login']);
  });
});

describe('resources', () => {
  test('Bookinfo destination rules and virtual services apply from YAML and read back', async () => {
    const dr = await api.rest('POST', '/api/v1/apply', { yaml: sample('destination-rule-all.yaml') });
    assert.equal(dr.status, 200, JSON.stringify(dr.body));
    assert.deepEqual(dr.body.results.map((r: any) => `${r.name}:${r.action}`), ['productpage:created', 'reviews:created', 'ratings:created', 'details:created']);
    const v = await api.rest('POST', '/api/v1/apply', { yaml: sample('virtual-service-all-v1.yaml') });
    assert.equal(v.status, 200, JSON.stringify(v.body));
    const got = await api.rest('GET', '/api/v1/resources/virtualservices/default/reviews');
    assert.equal(got.status, 200);
    assert.equal(got.body.kind, 'VirtualService');
    assert.equal(got.body.metadata.namespace, 'default');
    assert.equal(got.body.metadata.generation, 1);
    assert.deepEqual(got.body.spec, { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] });
    // Re-applying the same file changes nothing.
    const again = await api.rest('POST', '/api/v1/apply', { yaml: sample('virtual-service-all-v1.yaml') });
    assert.ok(again.body.results.every((r: any) => r.action === 'unchanged'));
  });

  test('raw YAML bodies are accepted (curl --data-binary @file)', async () => {
    const r = await api.rest('POST', '/api/v1/apply', undefined, {
      headers: { 'content-type': 'application/yaml' },
      raw: 'apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata: {name: httpbin-ext}\nspec:\n  hosts: [httpbin.org]\n  location: MESH_EXTERNAL\n  resolution: DNS\n  ports: [{number: 80, name: http, protocol: HTTP}]\n',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.results[0].action, 'created');
  });

  test('a stale resourceVersion gets 409 and changes nothing', async () => {
    const c = await api.rest('POST', '/api/v1/apply', { resources: [vs('stale', simpleRoute('stale'))] });
    const rv = c.body.results[0].resourceVersion;
    const u1 = await api.rest('PUT', '/api/v1/resources/VirtualService/default/stale', {
      resource: vs('stale', { ...simpleRoute('stale'), exportTo: ['.'] }, { resourceVersion: rv }),
    });
    assert.equal(u1.status, 200, JSON.stringify(u1.body));
    const u2 = await api.rest('PUT', '/api/v1/resources/VirtualService/default/stale', {
      resource: vs('stale', { ...simpleRoute('stale'), exportTo: ['*'] }, { resourceVersion: rv }),
    });
    assert.equal(u2.status, 409);
    assert.match(u2.body.message, /modified/);
    const got = await api.rest('GET', '/api/v1/resources/vs/default/stale');
    assert.deepEqual(got.body.spec.exportTo, ['.']);
    assert.equal(got.body.metadata.generation, 2);
  });

  test('concurrent updates of one resource from two clients: exactly one wins, the other gets 409', async () => {
    const c = await api.rest('POST', '/api/v1/apply', { resources: [vs('race', simpleRoute('race'))] });
    const rv = c.body.results[0].resourceVersion;
    const editorA = await api.makeToken('editor');
    const editorB = await api.makeToken('editor');
    const put = (token: string, exportTo: string) =>
      api.rest('PUT', '/api/v1/resources/vs/default/race', { resource: vs('race', { ...simpleRoute('race'), exportTo: [exportTo] }, { resourceVersion: rv }) }, { token });
    const [a, b] = await Promise.all([put(editorA, '.'), put(editorB, '*')]);
    assert.deepEqual([a.status, b.status].sort(), [200, 409]);
    const winner = a.status === 200 ? '.' : '*';
    assert.deepEqual((await api.rest('GET', '/api/v1/resources/vs/default/race')).body.spec.exportTo, [winner]);
    const hist = await api.rest('GET', '/api/v1/history/vs/default/race');
    assert.equal(hist.body.revisions.length, 2);
  });

  test('delete, history and rollback to any earlier revision, including after deletion', async () => {
    const r1 = await api.rest('POST', '/api/v1/apply', { resources: [vs('hist', simpleRoute('hist'))] });
    const first = r1.body.results[0].resourceVersion;
    await api.rest('POST', '/api/v1/apply', { resources: [vs('hist', { ...simpleRoute('hist'), exportTo: ['.'] })] });
    const del = await api.rest('DELETE', '/api/v1/resources/vs/default/hist');
    assert.equal(del.status, 200);
    assert.equal((await api.rest('GET', '/api/v1/resources/vs/default/hist')).status, 404);
    const hist = await api.rest('GET', '/api/v1/history/vs/default/hist');
    assert.deepEqual(hist.body.revisions.map((r: any) => r.action), ['deleted', 'updated', 'created']);
    const badTarget = await api.rest('POST', '/api/v1/rollback', { kind: 'vs', namespace: 'default', name: 'hist', toRevision: hist.body.revisions[0].revision });
    assert.equal(badTarget.status, 400);
    const rb = await api.rest('POST', '/api/v1/rollback', { kind: 'vs', namespace: 'default', name: 'hist', toRevision: first });
    assert.equal(rb.status, 200, JSON.stringify(rb.body));
    assert.equal(rb.body.results[0].action, 'rolled-back');
    const got = await api.rest('GET', '/api/v1/resources/vs/default/hist');
    assert.deepEqual(got.body.spec, simpleRoute('hist'));
    const audit = await api.rest('GET', '/api/v1/audit?kind=VirtualService&name=hist');
    assert.deepEqual(audit.body.events.map((e: any) => e.action), ['resource.rolled-back', 'resource.deleted', 'resource.updated', 'resource.created']);
    const unknown = await api.rest('POST', '/api/v1/rollback', { kind: 'vs', namespace: 'default', name: 'hist', toRevision: '999999' });
    assert.equal(unknown.status, 404);
  });

  test('export returns YAML that applies elsewhere unchanged', async () => {
    const ex = await api.rest('GET', '/api/v1/export?kind=DestinationRule');
    assert.equal(ex.status, 200);
    assert.ok(ex.body.count >= 4);
    assert.doesNotMatch(ex.body.yaml, /resourceVersion|uid:/);
    const re = await api.rest('POST', '/api/v1/apply', { yaml: ex.body.yaml });
    assert.equal(re.status, 200);
    assert.ok(re.body.results.every((r: any) => r.action === 'unchanged'));
  });

  test('the OpenAPI document describes the REST surface', async () => {
    const doc = await api.rest('GET', '/api/openapi.json', undefined, { token: null });
    assert.equal(doc.status, 200);
    assert.match(doc.body.openapi, /^3\./);
    for (const p of ['/apply', '/resources/{kind}/{namespace}/{name}', '/history/{kind}/{namespace}/{name}', '/rollback', '/audit', '/tokens', '/users']) {
      assert.ok(doc.body.paths[p], `missing ${p}`);
    }
  });
});

describe('analysis', () => {
  test('a route to a missing subset is refused on write, naming the field and the rule', async () => {
    await api.rest('POST', '/api/v1/apply', { yaml: sample('destination-rule-all.yaml') });
    const before = await revision();
    const r = await api.rest('POST', '/api/v1/apply', { yaml: sample('virtual-service-reviews-v4-missing.yaml') });
    assert.equal(r.status, 400);
    const issue = r.body.data.issues.find((i: any) => i.path.includes('subset'));
    assert.ok(issue, JSON.stringify(r.body));
    assert.match(issue.message, /v4/);
    assert.equal(await revision(), before);
  });

  test('analyze reports the same for files without writing them', async () => {
    const before = await revision();
    const r = await api.rest('POST', '/api/v1/analyze', { yaml: sample('virtual-service-reviews-v4-missing.yaml') });
    assert.equal(r.status, 200);
    const d = r.body.diagnostics.find((x: any) => x.level === 'error' && x.resourceName === 'reviews');
    assert.ok(d, JSON.stringify(r.body.diagnostics));
    assert.match(d.path, /subset/);
    assert.equal(await revision(), before);
  });

  test('a write leaves other resources’ rows alone when their findings did not change', async () => {
    await api.rest('POST', '/api/v1/apply', { resources: [vs('quiet', simpleRoute('quiet.example.internal'))] });
    const xmin = async () =>
      (await api.app.db.prisma.$queryRaw<Array<{ x: string }>>`SELECT xmin::text AS x FROM "Resource" WHERE name = 'quiet'`)[0]!.x;
    const before = await xmin();
    await api.rest('POST', '/api/v1/apply', { resources: [vs('noisy', simpleRoute('noisy.example.internal'))] });
    assert.equal(await xmin(), before, 'the unrelated row was rewritten');
  });

  test('warnings do not block, are stored and shown on the resource', async () => {
    const r = await api.rest('POST', '/api/v1/apply', { resources: [vs('nowhere', simpleRoute('nowhere.example.internal'))] });
    assert.equal(r.status, 200);
    assert.ok(r.body.results[0].warnings.length > 0);
    const got = await api.rest('GET', '/api/v1/resources/vs/default/nowhere');
    assert.ok(got.body.status.validationMessages.some((m: any) => m.level === 'warning'));
  });
});

describe('bad input', () => {
  const cases: Array<[string, unknown, number, RegExp, RegExp?]> = [
    ['malformed YAML', { yaml: 'kind: VirtualService\nmetadata: {name: x\n' }, 400, /yaml|line/i],
    ['a document that is not an object', { yaml: '- just\n- a list\n' }, 400, /not_an_object/],
    ['unknown kind', { resources: [{ apiVersion: 'networking.istio.io/v1', kind: 'Gateway2', metadata: { name: 'x' }, spec: {} }] }, 400, /unknown_kind/, /^kind$/],
    ['unsupported apiVersion', { resources: [{ apiVersion: 'networking.istio.io/v2', kind: 'VirtualService', metadata: { name: 'x' }, spec: {} }] }, 400, /api_?version/, /^apiVersion$/],
    ['unknown field', { resources: [vs('x', { hosts: ['x'], http: [{ route: [{ destination: { host: 'x', sbset: 'v1' } }] }] })] }, 400, /unknown_field/, /spec\.http\[0\]\.route\[0\]\.destination/],
    ['wrong type', { resources: [vs('x', { hosts: 'x' })] }, 400, /type/, /spec\.hosts/],
    ['negative number', { resources: [vs('x', { hosts: ['x'], http: [{ retries: { attempts: -1 }, route: [{ destination: { host: 'x' } }] }] })] }, 400, /min|negative|range/, /attempts/],
    ['overflowing number', { resources: [vs('x', { hosts: ['x'], http: [{ route: [{ destination: { host: 'x', port: { number: 70000 } } }] }] })] }, 400, /max|range/, /port\.number/],
    ['weight of 101', { resources: [vs('x', { hosts: ['x'], http: [{ route: [{ destination: { host: 'x' }, weight: 101 }] }] })] }, 400, /max|weight/, /weight/],
    ['unicode in a name', { resources: [vs('revíews', simpleRoute('x'))] }, 400, /dns1123/, /metadata\.name/],
    ['control characters in a name', { resources: [vs('a\u0000b', simpleRoute('x'))] }, 400, /dns1123/, /metadata\.name/],
    ['a name that is not DNS-1123', { resources: [vs('Reviews_V1', simpleRoute('x'))] }, 400, /dns1123/, /metadata\.name/],
  ];
  for (const [what, body, status, rule, pathRe] of cases) {
    test(`${what}: ${status} naming the field and rule, nothing written`, async () => {
      const before = await revision();
      const r = await api.rest('POST', '/api/v1/apply', body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      const issues = r.body.data?.issues ?? [];
      assert.ok(issues.length > 0, `issues in ${JSON.stringify(r.body)}`);
      assert.ok(issues.some((i: any) => rule.test(i.rule) || rule.test(i.message)), JSON.stringify(issues));
      if (pathRe) assert.ok(issues.some((i: any) => pathRe.test(i.path)), JSON.stringify(issues));
      assert.doesNotMatch(JSON.stringify(r.body), /at .*\.ts:\d+/, 'no stack trace');
      assert.equal(await revision(), before);
    });
  }

  test('one bad document among good ones: nothing at all is written', async () => {
    const before = await revision();
    const r = await api.rest('POST', '/api/v1/apply', { resources: [vs('good-one', simpleRoute('g')), vs('BAD', simpleRoute('g'))] });
    assert.equal(r.status, 400);
    assert.equal(r.body.data.issues[0].document, 1);
    assert.equal((await api.rest('GET', '/api/v1/resources/vs/default/good-one')).status, 404);
    assert.equal(await revision(), before);
  });

  test('a 10 MB body is refused with 413 before it is parsed', async () => {
    const big = 'x'.repeat(10 * 1024 * 1024);
    const r = await api.rest('POST', '/api/v1/apply', { yaml: big });
    assert.equal(r.status, 413);
    assert.match(r.body.message, /TERN_API_MAX_BODY_BYTES/);
    const t = await fetch(`${api.url}/api/trpc/resources.applyDocuments`, { method: 'POST', headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ yaml: big }) });
    assert.equal(t.status, 413);
  });

  test('invalid JSON gets 400 PARSE_ERROR', async () => {
    const r = await api.rest('POST', '/api/v1/apply', undefined, { headers: { 'content-type': 'application/json' }, raw: '{"yaml": ' });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'PARSE_ERROR');
  });

  test('a procedure’s own input rules answer in the same format, with no raw validator output', async () => {
    const r = await api.rest('POST', '/api/v1/users', { username: 'bob', password: 'short', role: 'boss' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.data.issues.map((i: any) => `${i.path}:${i.rule}`), ['password:min_length', 'role:enum']);
    assert.match(r.body.message, /password must be at least 12 characters/);
    assert.equal(r.body.issues, undefined);
    assert.equal((await api.rest('GET', '/api/v1/users')).body.users.some((u: any) => u.username === 'bob'), false);
  });

  test('unknown kind in a URL gets 400 naming the kind', async () => {
    const r = await api.rest('GET', '/api/v1/resources/gateways2/default/x');
    assert.equal(r.status, 400);
    assert.equal(r.body.data.issues[0].rule, 'unknown_kind');
  });
});

describe('sign-in rate limit', () => {
  test('repeated failures get 429 with Retry-After, even with the right password', async () => {
    const limited = await startTestApi({ loginMaxAttempts: 3, loginWindowMs: 60_000 });
    try {
      const attempt = (password: string) => limited.rest('POST', '/api/v1/auth/login', { username: 'admin', password }, { token: null });
      for (let i = 0; i < 3; i++) assert.equal((await attempt('wrong-password')).status, 401);
      const blocked = await attempt('correct-horse-battery-staple');
      assert.equal(blocked.status, 429);
      assert.ok(Number(blocked.headers.get('retry-after')) > 0);
      const failures = await limited.rest('GET', '/api/v1/audit?actor=admin');
      assert.ok(failures.body.events.filter((e: any) => e.action === 'auth.login-failed').length >= 3);
    } finally {
      await limited.close();
    }
  });
});

describe('registry', () => {
  test('services and workloads register, list, and feed analysis', async () => {
    const s = await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    const w = await api.rest('PUT', '/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'bookinfo-reviews', addresses: ['10.0.0.5'] });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    const list = await api.rest('GET', '/api/v1/registry/services?namespace=default');
    assert.deepEqual(list.body.services.find((x: any) => x.name === 'reviews').hosts, ['reviews.default.svc.cluster.local']);
    const bad = await api.rest('PUT', '/api/v1/registry/services/default/x', { namespace: 'default', name: 'x', ports: [{ number: 0, protocol: 'HTTP' }] });
    assert.equal(bad.status, 400);
    assert.ok(bad.body.data.issues.some((i: any) => i.path === 'ports[0].number'));
  });

  test('rows discovered from the cluster are listed with their source and refused to the API (409), unchanged', async () => {
    await writeKubernetesRegistry(api.app.db.prisma, api.app.analyze, 'cluster.local', {
      services: [{ namespace: 'shop', name: 'cart', ports: [{ number: 8080, protocol: 'HTTP', name: 'http' }] }],
      workloads: [{ namespace: 'shop', name: 'cart-7d9f', labels: { app: 'cart' }, serviceAccount: 'cart', addresses: ['10.1.0.7'], ports: {} }],
    });
    const local = await api.rest('PUT', '/api/v1/registry/services/shop/local-one', { namespace: 'shop', name: 'local-one', ports: [{ number: 80, protocol: 'HTTP' }] });
    assert.equal(local.status, 200);
    const listed = (await api.rest('GET', '/api/v1/registry/services?namespace=shop')).body.services.map((x: any) => `${x.name}:${x.source}`);
    assert.deepEqual(listed, ['cart:kubernetes', 'local-one:local']);
    assert.equal((await api.rest('GET', '/api/v1/registry/workloads?namespace=shop')).body.workloads[0].source, 'kubernetes');
    for (const [method, path, body] of [
      ['PUT', '/api/v1/registry/services/shop/cart', { namespace: 'shop', name: 'cart', ports: [{ number: 9999, protocol: 'HTTP' }] }],
      ['DELETE', '/api/v1/registry/services/shop/cart', undefined],
      ['PUT', '/api/v1/registry/workloads/shop/cart-7d9f', { namespace: 'shop', name: 'cart-7d9f', labels: {}, serviceAccount: 'x', addresses: ['10.9.9.9'] }],
      ['DELETE', '/api/v1/registry/workloads/shop/cart-7d9f', undefined],
    ] as const) {
      const r = await api.rest(method, path, body);
      assert.equal(r.status, 409, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.message, /comes from source "kubernetes"/);
    }
    const after = (await api.rest('GET', '/api/v1/registry/services?namespace=shop')).body.services.find((x: any) => x.name === 'cart');
    assert.equal(after.ports[0].number, 8080, 'the cluster row is unchanged');
    assert.equal((await api.rest('GET', '/api/v1/registry/workloads?namespace=shop')).body.workloads[0].addresses[0], '10.1.0.7');
  });
});
