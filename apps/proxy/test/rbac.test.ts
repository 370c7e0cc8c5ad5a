// The RBAC HTTP filter end to end: a real proxy built from xDS JSON on loopback, a real upstream,
// HTTP/1.1, h2c and TLS with client certificates; stats on the admin server; the access log.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXTENSION_TYPE_URL, type JsonObject } from '@tern/xds';
import { startAdmin, type AdminServer } from '../src/admin/server.ts';
import { ConfigError } from '../src/config/model.ts';
import { cluster, httpListener, httpUpstream, request, snapshot, startProxy, type TestProxy, type Upstream } from './dataplane-helpers.ts';

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': EXTENSION_TYPE_URL.router } };
const rbacFilter = (rules: JsonObject | undefined, extra: JsonObject = {}, name = 'envoy.filters.http.rbac'): JsonObject => ({
  name,
  typed_config: { '@type': EXTENSION_TYPE_URL.httpRbac, ...(rules ? { rules } : {}), ...extra },
});
const any = { any: true };
const policy = (permissions: JsonObject[], principals: JsonObject[] = [any]): JsonObject => ({ permissions, principals });
const header = (name: string, m: JsonObject): JsonObject => ({ header: { name, string_match: m } });
const urlPath = (m: JsonObject): JsonObject => ({ url_path: { path: m } });

const routes = (name: string, extraRoutes: JsonObject[] = []): JsonObject => ({
  name,
  virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [...extraRoutes, { match: { prefix: '/' }, route: { cluster: 'web' } }] }],
});

function rbacListener(name: string, filters: JsonObject[], opts: { hcm?: JsonObject; routes?: JsonObject[]; transportSocket?: JsonObject } = {}): JsonObject {
  return httpListener({
    name,
    direction: 'INBOUND',
    routes: routes(name, opts.routes),
    hcm: { http_filters: [...filters, ROUTER], ...opts.hcm },
    ...(opts.transportSocket ? { transportSocket: opts.transportSocket } : {}),
  });
}

const LISTENERS: JsonObject[] = [
  rbacListener('allow', [rbacFilter({
    action: 'ALLOW',
    policies: {
      'api-get': policy([{ and_rules: { rules: [urlPath({ prefix: '/api/' }), { or_rules: { rules: [header(':method', { exact: 'GET' }), header(':method', { exact: 'HEAD' })] } }] } }]),
      exact: policy([urlPath({ exact: '/healthz' })]),
      suffix: policy([urlPath({ suffix: '.css' })]),
      token: policy([header('x-token', { exact: 'let-me-in' })]),
      host: policy([header(':authority', { exact: 'admin.example.com', ignore_case: true })]),
    },
  })]),
  rbacListener('deny-ip', [rbacFilter({ action: 'DENY', policies: { loopback: policy([any], [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }]) } })]),
  rbacListener('deny-not', [rbacFilter({ action: 'DENY', policies: { 'not-public': policy([{ not_rule: urlPath({ prefix: '/public' }) }]) } })]),
  rbacListener('deny-xff', [rbacFilter({ action: 'DENY', policies: { blocked: policy([any], [{ remote_ip: { address_prefix: '203.0.113.0', prefix_len: 24 } }]) } })]),
  rbacListener('deny-then-allow', [
    rbacFilter({ action: 'DENY', policies: { 'ns[x]-policy[no-admin]-rule[0]': policy([urlPath({ prefix: '/admin' })]) } }),
    rbacFilter({ action: 'ALLOW', policies: { 'ns[x]-policy[allow-get]-rule[0]': policy([header(':method', { exact: 'GET' })]) } }),
  ], { hcm: { stat_prefix: 'inbound_0.0.0.0_9080', normalize_path: true } }),
  rbacListener('allow-none', [rbacFilter({ action: 'ALLOW' })]),
  rbacListener('log', [rbacFilter({ action: 'LOG', policies: { audit: policy([urlPath({ prefix: '/audit' })]) } })]),
  rbacListener('shadow', [rbacFilter(undefined, { shadow_rules: { action: 'DENY', policies: { would: policy([urlPath({ prefix: '/x' })]) } }, shadow_rules_stat_prefix: 'istio_dry_run_allow_' })]),
  rbacListener('per-route', [rbacFilter({ action: 'ALLOW', policies: {} }, {}, 'rbac-allow')], {
    routes: [
      { match: { prefix: '/open' }, route: { cluster: 'web' }, typed_per_filter_config: { 'rbac-allow': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute' } } },
      { match: { prefix: '/own' }, route: { cluster: 'web' }, typed_per_filter_config: { 'rbac-allow': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', rbac: { rules: { action: 'ALLOW', policies: { own: policy([header(':method', { exact: 'GET' })]) } } } } } },
      { match: { prefix: '/direct' }, direct_response: { status: 200, body: { inline_string: 'direct' } } },
    ],
  }),
  rbacListener('plain-principal', [rbacFilter({ action: 'ALLOW', policies: { mtls: policy([any], [{ authenticated: { principal_name: { prefix: 'spiffe://' } } }]) } })]),
  rbacListener('plain-deny-principal', [rbacFilter({ action: 'DENY', policies: { sleep: policy([any], [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/sleep' } } }]) } })]),
  httpListener({ name: 'no-rbac', direction: 'INBOUND', routes: routes('no-rbac') }),
];

describe('RBAC HTTP filter', () => {
  let up: Upstream;
  let proxy: TestProxy;
  let admin: AdminServer;
  before(async () => {
    up = await httpUpstream();
    proxy = await startProxy(snapshot({ listeners: LISTENERS, clusters: [cluster('web', [up.port])] }), { accessLog: true });
    admin = await startAdmin({ engine: proxy.engine, listeners: proxy.listeners, snapshot: () => proxy.current, ready: () => true, draining: () => false, drain: () => {} }, '127.0.0.1', 0);
  });
  after(async () => {
    await admin.close();
    await proxy.close();
    await up.close();
  });

  /** Status and body of one request to a listener; asserts denials are Envoy's exact local reply and never reach the upstream. */
  async function call(listener: string, opts: http.RequestOptions & { body?: string } = {}): Promise<number> {
    const before = up.requests.length;
    const r = await request(proxy.port(listener), opts);
    if (r.status === 403) {
      assert.equal(r.body, 'RBAC: access denied');
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(up.requests.length, before, 'a denied request must not reach the upstream');
    }
    return r.status;
  }

  async function stat(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${admin.port}/stats`)).text();
    const m = new RegExp(`^${name.replace(/[.[\]]/g, '\\$&')}: (\\d+)$`, 'm').exec(text);
    assert.ok(m, `${name} not in /stats`);
    return Number(m[1]);
  }

  test('ALLOW: path prefix + methods, exact, suffix, header and host policies', async () => {
    assert.equal(await call('allow', { path: '/api/items' }), 200);
    assert.equal(await call('allow', { path: '/api/items', method: 'HEAD' }), 200);
    assert.equal(await call('allow', { path: '/api/items', method: 'POST' }), 403);
    assert.equal(await call('allow', { path: '/api' }), 403, 'prefix /api/ does not match /api');
    assert.equal(await call('allow', { path: '/healthz' }), 200);
    assert.equal(await call('allow', { path: '/healthz?verbose=1' }), 200, 'url_path ignores the query');
    assert.equal(await call('allow', { path: '/healthz/x' }), 403);
    assert.equal(await call('allow', { path: '/static/site.css' }), 200);
    assert.equal(await call('allow', { path: '/static/site.js' }), 403);
    assert.equal(await call('allow', { path: '/secret', headers: { 'x-token': 'let-me-in' } }), 200);
    assert.equal(await call('allow', { path: '/secret', headers: { 'x-token': 'nope' } }), 403);
    assert.equal(await call('allow', { path: '/secret', headers: { host: 'Admin.Example.com' } }), 200);
    assert.equal(await call('allow', { path: '/secret' }), 403);
  });

  test('DENY on the peer address (ipBlocks) and on not_rule', async () => {
    assert.equal(await call('deny-ip', { path: '/' }), 403);
    assert.equal(await call('deny-not', { path: '/public/page' }), 200);
    assert.equal(await call('deny-not', { path: '/private' }), 403);
  });

  test('DENY on remote_ip reads x-forwarded-for (use_remote_address false: its last entry)', async () => {
    assert.equal(await call('deny-xff', { path: '/', headers: { 'x-forwarded-for': '198.51.100.1, 203.0.113.9' } }), 403);
    assert.equal(await call('deny-xff', { path: '/', headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' } }), 200);
    assert.equal(await call('deny-xff', { path: '/' }), 200, 'no x-forwarded-for: the peer (127.0.0.1) is the client');
  });

  test('DENY runs before ALLOW; the access log names the denying policy; normalize_path applies to url_path', async () => {
    const log = proxy.accessLog;
    const from = log.length;
    assert.equal(await call('deny-then-allow', { path: '/admin/users' }), 403);
    assert.equal(await call('deny-then-allow', { path: '/public/../admin' }), 403, 'dot segments removed before matching');
    assert.equal(await call('deny-then-allow', { path: '/page', method: 'POST' }), 403);
    assert.equal(await call('deny-then-allow', { path: '/page' }), 200);
    await new Promise((r) => setTimeout(r, 20));
    const lines = log.slice(from).map((l) => JSON.parse(l) as { response_code: number; response_code_details: string | null; response_flags: string; path: string });
    assert.deepEqual(lines.map((l) => [l.path, l.response_code, l.response_code_details, l.response_flags]), [
      ['/admin/users', 403, 'rbac_access_denied_matched_policy[ns[x]-policy[no-admin]-rule[0]]', '-'],
      ['/public/../admin', 403, 'rbac_access_denied_matched_policy[ns[x]-policy[no-admin]-rule[0]]', '-'],
      ['/page', 403, 'rbac_access_denied_matched_policy[none]', '-'],
      ['/page', 200, null, '-'],
    ]);
    // Two filters: the allowed GET counted by both, each denial by the filter that denied it.
    assert.equal(await stat('http.inbound_0.0.0.0_9080.rbac.denied'), 3);
    assert.equal(await stat('http.inbound_0.0.0.0_9080.rbac.allowed'), 3);
  });

  test('ALLOW with no policies denies everything, and each denial is counted', async () => {
    const before = await stat('http.allow-none.rbac.denied');
    for (const p of ['/', '/a', '/b?c']) assert.equal(await call('allow-none', { path: p }), 403);
    assert.equal(await stat('http.allow-none.rbac.denied'), before + 3);
    assert.equal(await stat('http.allow-none.rbac.allowed'), 0);
  });

  test('LOG never blocks and counts the requests it matched', async () => {
    assert.equal(await call('log', { path: '/audit/1' }), 200);
    assert.equal(await call('log', { path: '/other' }), 200);
    assert.equal(await stat('http.log.rbac.allowed'), 2);
    assert.equal(await stat('http.log.rbac.logged'), 1);
    assert.equal(await stat('http.log.rbac.denied'), 0);
  });

  test('shadow rules only count (Istio dry-run)', async () => {
    assert.equal(await call('shadow', { path: '/x' }), 200);
    assert.equal(await call('shadow', { path: '/y' }), 200);
    assert.equal(await stat('http.shadow.rbac.istio_dry_run_allow_shadow_denied'), 1);
    assert.equal(await stat('http.shadow.rbac.istio_dry_run_allow_shadow_allowed'), 1);
  });

  test('RBACPerRoute: a route without rbac disables the filter; one with rbac replaces it; direct responses are authorised first', async () => {
    assert.equal(await call('per-route', { path: '/open' }), 200);
    assert.equal(await call('per-route', { path: '/own' }), 200);
    assert.equal(await call('per-route', { path: '/own', method: 'DELETE' }), 403);
    assert.equal(await call('per-route', { path: '/direct' }), 403);
    assert.equal(await call('per-route', { path: '/elsewhere' }), 403);
  });

  test('plaintext: an authenticated principal never matches (ALLOW denies, DENY does not fire)', async () => {
    assert.equal(await call('plain-principal', { path: '/' }), 403);
    assert.equal(await call('plain-deny-principal', { path: '/' }), 200);
  });

  test('HTTP/2 (h2c) requests are authorised too; pseudo-headers come from the HTTP/2 request', async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.port('allow')}`);
    try {
      const get = (p: string, method = 'GET') => new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = session.request({ ':path': p, ':method': method });
        let status = 0;
        let body = '';
        s.on('response', (h) => (status = Number(h[':status'])));
        s.on('data', (d: Buffer) => (body += d));
        s.on('end', () => resolve({ status, body }));
        s.on('error', reject);
        s.end();
      });
      assert.equal((await get('/api/x')).status, 200);
      assert.deepEqual(await get('/api/x', 'POST'), { status: 403, body: 'RBAC: access denied' });
    } finally {
      session.close();
    }
  });

  test('gRPC requests are denied with grpc-status 7 (PERMISSION_DENIED), as Envoy answers', async () => {
    const r = await request(proxy.port('allow-none'), { path: '/pkg.Svc/Call', method: 'POST', headers: { 'content-type': 'application/grpc' }, body: '' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '7');
    assert.equal(decodeURIComponent(String(r.headers['grpc-message'])), 'RBAC: access denied');
  });

  test('a WebSocket upgrade is authorised before it is forwarded', async () => {
    const before = up.requests.length;
    const head = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(proxy.port('allow-none'), '127.0.0.1', () => {
        sock.write('GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      });
      let data = '';
      sock.on('data', (d: Buffer) => (data += d));
      sock.on('close', () => resolve(data));
      sock.on('error', reject);
    });
    assert.match(head, /^HTTP\/1\.1 403 /);
    assert.match(head, /RBAC: access denied$/);
    assert.equal(up.requests.length, before);
  });

  test('a listener without RBAC is untouched', async () => {
    assert.equal(await call('no-rbac', { path: '/anything', method: 'DELETE' }), 200);
  });

  test('Prometheus exposition: envoy_http_rbac_* with the HCM stat prefix as a label', async () => {
    const text = await (await fetch(`http://127.0.0.1:${admin.port}/stats/prometheus`)).text();
    assert.match(text, /^# TYPE envoy_http_rbac_denied counter$/m);
    assert.match(text, /^envoy_http_rbac_denied\{envoy_http_conn_manager_prefix="allow-none"\} [1-9]\d*$/m);
    assert.match(text, /^envoy_http_rbac_allowed\{envoy_http_conn_manager_prefix="log"\} 2$/m);
    assert.match(text, /^envoy_http_rbac_istio_dry_run_allow_shadow_denied\{envoy_http_conn_manager_prefix="shadow"\} 1$/m);
    assert.doesNotMatch(text, /conn_manager_prefix="no-rbac"/);
  });
});

describe('RBAC with TLS client certificates (authenticated principals)', () => {
  let dir: string;
  let up: Upstream;
  let proxy: TestProxy;
  const file = (n: string) => path.join(dir, n);
  const read = (n: string) => fs.readFileSync(file(n));

  /** A leaf certificate signed by the test CA, with the given SAN. */
  function leaf(name: string, san: string): void {
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/O=mesh/CN=${name}`], { stdio: 'ignore' });
    fs.writeFileSync(file(`${name}.ext`), `subjectAltName=${san}\n`);
    execFileSync('openssl', ['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file(`${name}.pem`), '-days', '1', '-extfile', file(`${name}.ext`)], { stdio: 'ignore' });
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-rbac-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-subj', '/CN=test-ca', '-days', '1'], { stdio: 'ignore' });
    leaf('server', 'DNS:localhost,IP:127.0.0.1');
    leaf('sleep', 'URI:spiffe://cluster.local/ns/default/sa/sleep');
    leaf('other', 'URI:spiffe://cluster.local/ns/other/sa/curl');
    up = await httpUpstream();
    const transportSocket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': EXTENSION_TYPE_URL.downstreamTls,
        require_client_certificate: true,
        common_tls_context: {
          tls_certificates: [{ certificate_chain: { filename: file('server.pem') }, private_key: { filename: file('server.key') } }],
          validation_context: { trusted_ca: { filename: file('ca.pem') } },
          alpn_protocols: ['h2', 'http/1.1'],
        },
      },
    };
    proxy = await startProxy(snapshot({
      listeners: [
        rbacListener('mtls-allow', [rbacFilter({
          action: 'ALLOW',
          policies: {
            sleep: policy([any], [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/sleep' } } }]),
            'ns-other-reads': policy([header(':method', { exact: 'GET' })], [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/other/.*' } } } }]),
          },
        })], { transportSocket }),
        rbacListener('mtls-deny', [rbacFilter({ action: 'DENY', policies: { 'not-sleep': policy([any], [{ not_id: { authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/sleep' } } } }]) } })], { transportSocket }),
      ],
      clusters: [cluster('web', [up.port])],
    }));
  });
  after(async () => {
    await proxy.close();
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function tlsGet(listener: string, who: string, method = 'GET'): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: 'localhost', port: proxy.port(listener), path: '/x', method, ca: read('ca.pem'), cert: read(`${who}.pem`), key: read(`${who}.key`), agent: false, ALPNProtocols: ['http/1.1'] } as https.RequestOptions, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  test('the URI SAN of the verified client certificate is the principal (HTTP/1.1 over TLS)', async () => {
    assert.equal((await tlsGet('mtls-allow', 'sleep', 'POST')).status, 200);
    assert.equal((await tlsGet('mtls-allow', 'other')).status, 200, 'namespace regex, GET');
    assert.deepEqual(await tlsGet('mtls-allow', 'other', 'POST'), { status: 403, body: 'RBAC: access denied' });
    assert.equal((await tlsGet('mtls-deny', 'sleep')).status, 200);
    assert.deepEqual(await tlsGet('mtls-deny', 'other'), { status: 403, body: 'RBAC: access denied' });
  });

  test('HTTP/2 over TLS sees the same peer identity', async () => {
    const connect = (who: string) => http2.connect(`https://localhost:${proxy.port('mtls-allow')}`, { ca: read('ca.pem'), cert: read(`${who}.pem`), key: read(`${who}.key`) });
    const status = (s: http2.ClientHttp2Session, method: string) => new Promise<number>((resolve, reject) => {
      const r = s.request({ ':path': '/h2', ':method': method });
      let st = 0;
      r.on('response', (h) => (st = Number(h[':status'])));
      r.resume();
      r.on('end', () => resolve(st));
      r.on('error', reject);
      r.end();
    });
    const sleep = connect('sleep');
    const other = connect('other');
    try {
      assert.equal(await status(sleep, 'DELETE'), 200);
      assert.equal(await status(other, 'DELETE'), 403);
      assert.equal(await status(other, 'GET'), 200);
    } finally {
      sleep.close();
      other.close();
    }
  });
});

describe('invalid RBAC config', () => {
  test('the listener is rejected with an error naming the field', () => {
    const bad = rbacListener('bad', [rbacFilter({ action: 'ALLOW', policies: { jwt: policy([any], [{ metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'sub' }], value: { string_match: { exact: 'x' } } } }]) } })]);
    assert.throws(() => snapshot({ listeners: [bad], clusters: [cluster('web', [1])] }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.resourceName, 'bad');
      assert.equal(e.path, 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules.policies.jwt.principals[0].metadata');
      assert.match(e.message, /metadata principals are not supported/);
      return true;
    });
    const badAction = rbacListener('bad2', [rbacFilter({ action: 'CUSTOM', policies: {} })]);
    assert.throws(() => snapshot({ listeners: [badAction], clusters: [cluster('web', [1])] }), /http_filters\[0\]\.typed_config\.rules\.action: "CUSTOM" is not supported/);
  });
});
