// The pure half of the RBAC HTTP filter: compilation (validation with field paths) and Envoy's
// evaluation semantics over a fake request, including peer-certificate principals.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXTENSION_TYPE_URL, TYPE_URL, type JsonObject } from '@tern/xds';
import { compileRbacFilter, evaluateRbac, type PeerCertificateInfo, type RbacFilterConfig, type RbacInput, type RbacRules } from '../src/config/compile-rbac.ts';
import { compileListener } from '../src/config/compile-listener.ts';
import { compileRouteTable } from '../src/config/compile-route.ts';
import { ipBytes } from '../src/config/compile-listener.ts';
import { ConfigError, type HttpConnectionManagerConfig } from '../src/config/model.ts';
import { normalizeUrlPath, originalClient, parseSans, rfc2253 } from '../src/dataplane/rbac.ts';

const ctx = { typeUrl: TYPE_URL.listener, name: 'l' };

interface FakeOpts {
  method?: string;
  path?: string;
  authority?: string;
  headers?: Record<string, string>;
  remote?: string;
  client?: string;
  dst?: string;
  dstPort?: number;
  sni?: string;
  peer?: PeerCertificateInfo;
}

function req(o: FakeOpts = {}): RbacInput {
  const path = o.path ?? '/';
  return {
    method: o.method ?? 'GET',
    authority: o.authority ?? 'svc.local',
    path,
    headers: o.headers ?? {},
    scheme: 'http',
    urlPath: () => normalizeUrlPath(path.split('?')[0]!, false, false),
    directRemoteIp: () => ipBytes(o.remote ?? '10.0.0.1'),
    remoteIp: () => ipBytes(o.client ?? o.remote ?? '10.0.0.1'),
    destinationIp: () => ipBytes(o.dst ?? '10.0.0.9'),
    destinationPort: () => o.dstPort ?? 8080,
    requestedServerName: () => o.sni ?? '',
    peer: () => o.peer,
  };
}

function rules(action: string, policies: Record<string, JsonObject>): RbacRules {
  return compileRbacFilter(ctx, { rules: { action, policies } }, '').rules!;
}

const any = { any: true };
const policy = (permissions: JsonObject[], principals: JsonObject[] = [any]): JsonObject => ({ permissions, principals });
const allowed = (r: RbacRules, i: RbacInput) => evaluateRbac(r, i).allowed;

function fails(config: JsonObject, path: string, rule: RegExp): void {
  assert.throws(() => compileRbacFilter(ctx, config, 'tc'), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.path, path);
    assert.match(e.rule, rule);
    return true;
  });
}

describe('RBAC evaluation (Envoy semantics)', () => {
  it('ALLOW: allowed iff some policy matches; the matched policy is reported', () => {
    const r = rules('ALLOW', { 'get-only': policy([{ header: { name: ':method', string_match: { exact: 'GET' } } }]) });
    assert.deepEqual(evaluateRbac(r, req()), { allowed: true, policy: 'get-only' });
    assert.deepEqual(evaluateRbac(r, req({ method: 'POST' })), { allowed: false, policy: undefined });
  });

  it('ALLOW without policies denies everything; DENY without policies allows everything', () => {
    assert.equal(allowed(rules('ALLOW', {}), req()), false);
    assert.equal(allowed(rules('DENY', {}), req()), true);
  });

  it('DENY: denied iff some policy matches; LOG: always allowed, the policy still reported', () => {
    const p = { admin: policy([{ url_path: { path: { prefix: '/admin' } } }]) };
    assert.equal(allowed(rules('DENY', p), req({ path: '/admin/x' })), false);
    assert.equal(allowed(rules('DENY', p), req({ path: '/public' })), true);
    assert.deepEqual(evaluateRbac(rules('LOG', p), req({ path: '/admin' })), { allowed: true, policy: 'admin' });
  });

  it('a policy needs one permission AND one principal; lists are OR-ed', () => {
    const r = rules('ALLOW', {
      p: policy(
        [{ url_path: { path: { exact: '/a' } } }, { url_path: { path: { exact: '/b' } } }],
        [{ direct_remote_ip: { address_prefix: '10.1.0.0', prefix_len: 16 } }, { direct_remote_ip: { address_prefix: '192.168.0.1', prefix_len: 32 } }],
      ),
    });
    assert.equal(allowed(r, req({ path: '/a', remote: '10.1.2.3' })), true);
    assert.equal(allowed(r, req({ path: '/b', remote: '192.168.0.1' })), true);
    assert.equal(allowed(r, req({ path: '/c', remote: '10.1.2.3' })), false);
    assert.equal(allowed(r, req({ path: '/a', remote: '10.2.0.1' })), false);
  });

  it('policies are evaluated in name order (Envoy keeps them in a sorted map)', () => {
    const r = rules('DENY', { zeta: policy([any]), alpha: policy([any]) });
    assert.equal(evaluateRbac(r, req()).policy, 'alpha');
  });

  it('and_rules, or_rules, not_rule; and_ids, or_ids, not_id', () => {
    const r = rules('ALLOW', {
      p: policy(
        [{ and_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }, { not_rule: { url_path: { path: { prefix: '/private' } } } }] } }],
        [{ or_ids: { ids: [{ not_id: { direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } } }, { and_ids: { ids: [any, { header: { name: 'x-ok', present_match: true } }] } }] } }],
      ),
    });
    assert.equal(allowed(r, req({ remote: '172.16.0.1' })), true);
    assert.equal(allowed(r, req({ remote: '10.0.0.1' })), false);
    assert.equal(allowed(r, req({ remote: '10.0.0.1', headers: { 'x-ok': '1' } })), true);
    assert.equal(allowed(r, req({ remote: '172.16.0.1', path: '/private/x' })), false);
    assert.equal(allowed(r, req({ remote: '172.16.0.1', method: 'POST' })), false);
  });

  it('url_path ignores the query; headers see :path with it, :authority, and joined repeated values', () => {
    const r = rules('ALLOW', {
      path: policy([{ url_path: { path: { suffix: '.json' } } }]),
      q: policy([{ header: { name: ':path', string_match: { contains: 'debug=1' } } }]),
      host: policy([{ header: { name: ':authority', string_match: { exact: 'ADMIN.local', ignore_case: true } } }]),
      multi: policy([{ header: { name: 'x-v', string_match: { exact: 'a,b' } } }]),
    });
    assert.equal(allowed(r, req({ path: '/x.json?y=1' })), true);
    assert.equal(allowed(r, req({ path: '/x.html?debug=1' })), true);
    assert.equal(allowed(r, req({ path: '/x.html', authority: 'admin.local' })), true);
    assert.equal(allowed(r, req({ path: '/x.html', headers: { 'x-v': ['a', 'b'] as unknown as string } })), true);
    assert.equal(allowed(r, req({ path: '/x.html' })), false);
  });

  it('destination ip/port/port range, requested_server_name, remote_ip vs direct_remote_ip', () => {
    const r = rules('ALLOW', {
      port: policy([{ destination_port: 9000 }]),
      range: policy([{ destination_port_range: { start: 7000, end: 7002 } }]),
      dst: policy([{ destination_ip: { address_prefix: '10.9.0.0', prefix_len: 16 } }]),
      sni: policy([{ requested_server_name: { suffix: '.mesh' } }]),
      client: policy([any], [{ remote_ip: { address_prefix: '203.0.113.0', prefix_len: 24 } }]),
    });
    assert.equal(allowed(r, req({ dstPort: 9000 })), true);
    assert.equal(allowed(r, req({ dstPort: 7001 })), true);
    assert.equal(allowed(r, req({ dstPort: 7002 })), false, 'end is exclusive');
    assert.equal(allowed(r, req({ dst: '10.9.3.4' })), true);
    assert.equal(allowed(r, req({ sni: 'a.mesh' })), true);
    assert.equal(allowed(r, req({ remote: '10.0.0.1', client: '203.0.113.7' })), true);
    assert.equal(allowed(r, req({ remote: '203.0.113.7', client: '10.0.0.1' })), false, 'remote_ip is the original client, not the peer');
  });

  it('v4 ranges match v4-mapped v6 peers; v6 ranges work', () => {
    const r = rules('ALLOW', {
      v4: policy([any], [{ source_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }]),
      v6: policy([any], [{ direct_remote_ip: { address_prefix: 'fd00::', prefix_len: 8 } }]),
    });
    assert.equal(allowed(r, req({ remote: '::ffff:127.0.0.1' })), true);
    assert.equal(allowed(r, req({ remote: 'fd12::1' })), true);
    assert.equal(allowed(r, req({ remote: '::1' })), false);
  });

  describe('authenticated principals (peer certificate)', () => {
    const spiffe = (sa: string): PeerCertificateInfo => ({ uriSans: [`spiffe://cluster.local/ns/default/sa/${sa}`], dnsSans: ['svc.default'], subject: 'CN=workload,O=mesh' });
    const r = rules('ALLOW', {
      exact: policy([any], [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/sleep' } } }]),
      ns: policy([{ url_path: { path: { prefix: '/ns' } } }], [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/default/.*' } } } }]),
      dns: policy([{ url_path: { path: { prefix: '/dns' } } }], [{ authenticated: { principal_name: { exact: 'svc.default' } } }]),
      subject: policy([{ url_path: { path: { prefix: '/subject' } } }], [{ authenticated: { principal_name: { prefix: 'CN=workload' } } }]),
      anyTls: policy([{ url_path: { path: { prefix: '/tls' } } }], [{ authenticated: {} }]),
    });

    it('the URI SAN, then DNS SANs, then the subject are matched', () => {
      assert.equal(evaluateRbac(r, req({ peer: spiffe('sleep') })).policy, 'exact');
      assert.equal(allowed(r, req({ peer: spiffe('other') })), false);
      assert.equal(allowed(r, req({ peer: spiffe('other'), path: '/ns/x' })), true);
      assert.equal(allowed(r, req({ peer: spiffe('other'), path: '/dns' })), true);
      assert.equal(allowed(r, req({ peer: spiffe('other'), path: '/subject' })), true);
    });

    it('plaintext: an authenticated principal never matches (ALLOW fails, DENY does not fire)', () => {
      for (const path of ['/', '/ns', '/dns', '/subject', '/tls']) assert.equal(allowed(r, req({ path })), false, path);
      const deny = rules('DENY', { p: policy([any], [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/sleep' } } }]) });
      assert.equal(allowed(deny, req()), true);
      assert.equal(allowed(deny, req({ peer: spiffe('sleep') })), false);
    });

    it('TLS without a client certificate: only an unset principal_name matches', () => {
      const none: PeerCertificateInfo = { uriSans: [], dnsSans: [], subject: '' };
      assert.equal(allowed(r, req({ peer: none, path: '/tls' })), true);
      assert.equal(allowed(r, req({ peer: none, path: '/ns' })), false);
    });
  });
});

describe('RBAC compilation', () => {
  it('absent rules enforce nothing; shadow_rules and stat prefixes are compiled', () => {
    const c: RbacFilterConfig = compileRbacFilter(ctx, { shadow_rules: { action: 'DENY', policies: {} }, rules_stat_prefix: 'r_', shadow_rules_stat_prefix: 's_' }, '');
    assert.equal(c.rules, undefined);
    assert.equal(c.shadowRules?.action, 'DENY');
    assert.equal(c.rulesStatPrefix, 'r_');
    assert.equal(c.shadowRulesStatPrefix, 's_');
    assert.equal(compileRbacFilter(ctx, { rules: {} }, '').rules?.action, 'ALLOW', 'action defaults to ALLOW');
  });

  it('unsupported matchers are rejected with the field path', () => {
    fails({ rules: { policies: { jwt: policy([any], [{ metadata: { filter: 'envoy.filters.http.jwt_authn' } }]) } } }, 'tc.rules.policies.jwt.principals[0].metadata', /metadata principals are not supported/);
    fails({ rules: { policies: { m: policy([{ metadata: {} }]) } } }, 'tc.rules.policies.m.permissions[0].metadata', /not supported/);
    fails({ rules: { policies: { f: policy([any], [{ filter_state: {} }]) } } }, 'tc.rules.policies.f.principals[0].filter_state', /not supported/);
    fails({ rules: { policies: { c: { ...policy([any]), condition: { const_expr: {} } } } } }, 'tc.rules.policies.c.condition', /CEL/);
    fails({ matcher: {} }, 'tc.matcher', /matcher-tree/);
    fails({ shadow_rules: { policies: { s: policy([any], [{ custom: {} }]) } } }, 'tc.shadow_rules.policies.s.principals[0].custom', /not supported/);
  });

  it('malformed policies are rejected with the field path and the rule', () => {
    fails({ rules: { action: 'AUDIT' } }, 'tc.rules.action', /"AUDIT" is not supported/);
    fails({ rules: { policies: { p: { principals: [any] } } } }, 'tc.rules.policies.p.permissions', /at least one permission/);
    fails({ rules: { policies: { p: { permissions: [any] } } } }, 'tc.rules.policies.p.principals', /at least one principal/);
    fails({ rules: { policies: { p: policy([{}]) } } }, 'tc.rules.policies.p.permissions[0]', /is empty/);
    fails({ rules: { policies: { p: policy([{ any: true, destination_port: 80 }]) } } }, 'tc.rules.policies.p.permissions[0]', /exactly one/);
    fails({ rules: { policies: { p: policy([{ any: false }]) } } }, 'tc.rules.policies.p.permissions[0].any', /must be true/);
    fails({ rules: { policies: { p: policy([{ destination_port: 70000 }]) } } }, 'tc.rules.policies.p.permissions[0].destination_port', /port/);
    fails({ rules: { policies: { p: policy([any], [{ remote_ip: { address_prefix: 'nope', prefix_len: 8 } }]) } } }, 'tc.rules.policies.p.principals[0].remote_ip.address_prefix', /IP address/);
    fails({ rules: { policies: { p: policy([{ url_path: {} }]) } } }, 'tc.rules.policies.p.permissions[0].url_path.path', /required/);
    fails({ rules: { policies: { p: policy([{ url_path: { path: { safe_regex: { regex: '(?=x)' } } } }]) } } }, 'tc.rules.policies.p.permissions[0].url_path.path.safe_regex.regex', /lookahead/);
    fails({ rules: { policies: { p: policy([{ and_rules: { rules: [] } }]) } } }, 'tc.rules.policies.p.permissions[0].and_rules.rules', /at least one/);
    fails({ rules: { policies: { p: policy([{ header: {} }]) } } }, 'tc.rules.policies.p.permissions[0].header.name', /required/);
    fails({ rules: { policies: { p: policy([{ bogus: 1 }]) } } }, 'tc.rules.policies.p.permissions[0].bogus', /unknown permission/);
  });

  it('an RBAC filter in a listener is compiled; a bad one rejects the listener naming the field', () => {
    const listener = (rbac: JsonObject): JsonObject => ({
      name: 'in',
      address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
      filter_chains: [{ filters: [{ name: 'hcm', typed_config: {
        '@type': EXTENSION_TYPE_URL.httpConnectionManager,
        stat_prefix: 'in',
        route_config: { name: 'r', virtual_hosts: [] },
        http_filters: [
          { name: 'envoy.filters.http.rbac', typed_config: { '@type': EXTENSION_TYPE_URL.httpRbac, ...rbac } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': EXTENSION_TYPE_URL.router } },
        ],
      } }] }],
    });
    const l = compileListener(listener({ rules: { action: 'DENY', policies: { p: policy([any]) } } }));
    const f = (l.filterChains[0]!.handler as HttpConnectionManagerConfig).httpFilters[0]!;
    assert.equal(f.kind, 'rbac');
    assert.equal(f.kind === 'rbac' && f.config.rules?.action, 'DENY');
    assert.throws(() => compileListener(listener({ rules: { policies: { p: policy([any], [{ metadata: {} }]) } } })), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.path, 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules.policies.p.principals[0].metadata');
      assert.match(e.message, /Listener "in"/);
      return true;
    });
  });

  it('RBACPerRoute is compiled per filter name; one without rbac disables the filter', () => {
    const t = compileRouteTable({ name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{
      match: { prefix: '/' },
      route: { cluster: 'c' },
      typed_per_filter_config: {
        'rbac-a': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', rbac: { rules: { action: 'DENY', policies: {} } } },
        'rbac-b': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute' },
      },
    }] }] });
    const m = t.virtualHosts[0]!.routes[0]!.perFilterConfig.rbac!;
    assert.equal(m.get('rbac-a')?.config?.rules?.action, 'DENY');
    assert.deepEqual(m.get('rbac-b'), {});
    assert.throws(() => compileRouteTable({ name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{
      match: { prefix: '/' },
      route: { cluster: 'c' },
      typed_per_filter_config: { x: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', rbac: { rules: { policies: { p: policy([{ metadata: {} }]) } } } } },
    }] }] }), (e: unknown) => e instanceof ConfigError && e.path === 'virtual_hosts[0].routes[0].typed_per_filter_config.x.rbac.rules.policies.p.permissions[0].metadata');
  });
});

describe('RBAC request helpers', () => {
  it('normalize_path removes dot segments, decodes unreserved escapes, turns \\ into /; merge_slashes merges', () => {
    assert.equal(normalizeUrlPath('/a/../admin', true, false), '/admin');
    assert.equal(normalizeUrlPath('/a/./b/', true, false), '/a/b/');
    assert.equal(normalizeUrlPath('/../../x', true, false), '/x');
    assert.equal(normalizeUrlPath('/a/%2e%2e/admin', true, false), '/admin');
    assert.equal(normalizeUrlPath('/%61dmin%2fx', true, false), '/admin%2Fx');
    assert.equal(normalizeUrlPath('/a\\..\\admin', true, false), '/admin');
    assert.equal(normalizeUrlPath('//a///b', false, true), '/a/b');
    assert.equal(normalizeUrlPath('/a/../b', false, false), '/a/../b', 'untouched when the HCM does not normalize');
  });

  it('remote_ip follows use_remote_address and xff_num_trusted_hops', () => {
    const hcm = (useRemoteAddress: boolean, xffNumTrustedHops: number) => ({ useRemoteAddress, xffNumTrustedHops });
    assert.equal(originalClient(hcm(false, 0), '1.1.1.1, 2.2.2.2', '10.0.0.1'), '2.2.2.2');
    assert.equal(originalClient(hcm(false, 1), '1.1.1.1, 2.2.2.2', '10.0.0.1'), '1.1.1.1');
    assert.equal(originalClient(hcm(false, 0), undefined, '10.0.0.1'), '10.0.0.1');
    assert.equal(originalClient(hcm(false, 0), 'garbage', '10.0.0.1'), '10.0.0.1');
    assert.equal(originalClient(hcm(true, 0), '1.1.1.1', '10.0.0.1'), '10.0.0.1');
    assert.equal(originalClient(hcm(true, 1), '1.1.1.1, 2.2.2.2', '10.0.0.1'), '2.2.2.2');
  });

  it('peer certificate identities: SANs from Node\'s format, subject in RFC 2253 order', () => {
    assert.deepEqual(parseSans('DNS:a.local, URI:spiffe://td/ns/x/sa/y, IP Address:127.0.0.1, URI:"urn:a,b"'), { uriSans: ['spiffe://td/ns/x/sa/y', 'urn:a,b'], dnsSans: ['a.local'] });
    assert.equal(rfc2253('C=US\nO=Mesh, Inc\nCN=w'), 'CN=w,O=Mesh\\, Inc,C=US');
  });
});
