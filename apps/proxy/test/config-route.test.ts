import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TYPE_URL, type JsonObject } from '@tern/xds';
import { compileRouteTable } from '../src/config/compile-route.ts';
import { ConfigError, type RouteAction, type RouteTable } from '../src/config/model.ts';
import { buildRedirectUrl, findVirtualHost, pickWeightedCluster, resolveCluster, rewritePath, selectRoute, type RouteRequest } from '../src/config/route-select.ts';
import { REVIEWS, reviewsRoutes, seeded, V1, V2, V3 } from './config-fixtures.ts';

function table(routes: JsonObject[], domains = ['*']): RouteTable {
  return compileRouteTable({ name: 't', virtual_hosts: [{ name: 'vh', domains, routes }] });
}

function req(path: string, headers: RouteRequest['headers'] = {}, extra: Partial<RouteRequest> = {}): RouteRequest {
  return { method: 'GET', authority: 'example.com', path, headers, ...extra };
}

/** Name of the selected route, or the reason. */
function pick(t: RouteTable, r: RouteRequest): string {
  const s = selectRoute(t, r);
  return 'route' in s ? s.route.name : s.reason;
}

const to = (name: string, match: JsonObject): JsonObject => ({ name, match, route: { cluster: name } });

describe('route matching', () => {
  it('prefix matches the beginning of the whole :path (query included), case-sensitive by default', () => {
    const t = table([to('api', { prefix: '/api' })]);
    assert.equal(pick(t, req('/api')), 'api');
    assert.equal(pick(t, req('/api/v1?x=1')), 'api');
    assert.equal(pick(t, req('/apiary')), 'api');
    assert.equal(pick(t, req('/API')), 'no_route');
    assert.equal(pick(t, req('/other')), 'no_route');
    const q = table([to('q', { prefix: '/a?x' })]);
    assert.equal(pick(q, req('/a?x=1')), 'q');
  });

  it('case_sensitive: false lower-cases both sides', () => {
    const t = table([to('p', { prefix: '/Api', case_sensitive: false }), to('e', { path: '/Exact', case_sensitive: false })]);
    assert.equal(pick(t, req('/API/x')), 'p');
    assert.equal(pick(t, req('/exact')), 'e');
  });

  it('path is an exact match on the path without its query string', () => {
    const t = table([to('e', { path: '/health' })]);
    assert.equal(pick(t, req('/health')), 'e');
    assert.equal(pick(t, req('/health?full=1')), 'e');
    assert.equal(pick(t, req('/health/')), 'no_route');
    assert.equal(pick(t, req('/healthz')), 'no_route');
  });

  it('path_separated_prefix matches the prefix followed by / or the end', () => {
    const t = table([to('s', { path_separated_prefix: '/api' })]);
    assert.equal(pick(t, req('/api')), 's');
    assert.equal(pick(t, req('/api/x')), 's');
    assert.equal(pick(t, req('/api?x')), 's');
    assert.equal(pick(t, req('/apix')), 'no_route');
  });

  it('safe_regex must match the whole path (without query)', () => {
    const t = table([to('r', { safe_regex: { regex: '/users/[0-9]+' } })]);
    assert.equal(pick(t, req('/users/42')), 'r');
    assert.equal(pick(t, req('/users/42?x=1')), 'r');
    assert.equal(pick(t, req('/users/42/x')), 'no_route');
    assert.equal(pick(t, req('/x/users/42')), 'no_route');
  });

  it('first match wins, in configuration order', () => {
    const t = table([to('first', { prefix: '/' }), to('second', { path: '/exact' })]);
    assert.equal(pick(t, req('/exact')), 'first');
    const u = table([to('exact', { path: '/exact' }), to('catch', { prefix: '/' })]);
    assert.equal(pick(u, req('/exact')), 'exact');
    assert.equal(pick(u, req('/other')), 'catch');
  });

  it('header string_match: exact, prefix, suffix, contains, safe_regex, ignore_case', () => {
    const t = table([
      to('exact', { prefix: '/', headers: [{ name: 'x-a', string_match: { exact: 'v' } }] }),
      to('prefix', { prefix: '/', headers: [{ name: 'x-b', string_match: { prefix: 'ab' } }] }),
      to('suffix', { prefix: '/', headers: [{ name: 'x-c', string_match: { suffix: 'yz' } }] }),
      to('contains', { prefix: '/', headers: [{ name: 'x-d', string_match: { contains: 'mid' } }] }),
      to('regex', { prefix: '/', headers: [{ name: 'x-e', string_match: { safe_regex: { regex: 'v[0-9]' } } }] }),
      to('icase', { prefix: '/', headers: [{ name: 'X-F', string_match: { exact: 'Jason', ignore_case: true } }] }),
    ]);
    assert.equal(pick(t, req('/', { 'x-a': 'v' })), 'exact');
    assert.equal(pick(t, req('/', { 'x-a': 'vv' })), 'no_route');
    assert.equal(pick(t, req('/', { 'x-b': 'abc' })), 'prefix');
    assert.equal(pick(t, req('/', { 'x-b': 'cab' })), 'no_route');
    assert.equal(pick(t, req('/', { 'x-c': 'xyz' })), 'suffix');
    assert.equal(pick(t, req('/', { 'x-c': 'yzx' })), 'no_route');
    assert.equal(pick(t, req('/', { 'x-d': 'amidst' })), 'contains');
    assert.equal(pick(t, req('/', { 'x-d': 'mi-d' })), 'no_route');
    assert.equal(pick(t, req('/', { 'x-e': 'v7' })), 'regex');
    assert.equal(pick(t, req('/', { 'x-e': 'v77' })), 'no_route', 'regex is a full match');
    assert.equal(pick(t, req('/', { 'x-f': 'JASON' })), 'icase');
    assert.equal(pick(t, req('/', { 'x-f': 'jasonx' })), 'no_route');
  });

  it('legacy exact_match / prefix_match / suffix_match / contains_match / safe_regex_match', () => {
    const t = table([
      to('exact', { prefix: '/', headers: [{ name: 'a', exact_match: '1' }] }),
      to('prefix', { prefix: '/', headers: [{ name: 'b', prefix_match: 'x' }] }),
      to('suffix', { prefix: '/', headers: [{ name: 'c', suffix_match: 'z' }] }),
      to('contains', { prefix: '/', headers: [{ name: 'd', contains_match: 'm' }] }),
      to('regex', { prefix: '/', headers: [{ name: 'e', safe_regex_match: { regex: '\\d+' } }] }),
    ]);
    assert.equal(pick(t, req('/', { a: '1' })), 'exact');
    assert.equal(pick(t, req('/', { a: '2' })), 'no_route');
    assert.equal(pick(t, req('/', { b: 'xy' })), 'prefix');
    assert.equal(pick(t, req('/', { c: 'yz' })), 'suffix');
    assert.equal(pick(t, req('/', { d: 'amb' })), 'contains');
    assert.equal(pick(t, req('/', { e: '123' })), 'regex');
    assert.equal(pick(t, req('/', { e: '12a' })), 'no_route');
  });

  it('present_match, invert_match and treat_missing_header_as_empty', () => {
    const present = table([to('p', { prefix: '/', headers: [{ name: 'x-debug', present_match: true }] })]);
    assert.equal(pick(present, req('/', { 'x-debug': '' })), 'p');
    assert.equal(pick(present, req('/')), 'no_route');
    const absent = table([to('a', { prefix: '/', headers: [{ name: 'x-debug', present_match: false }] })]);
    assert.equal(pick(absent, req('/')), 'a');
    assert.equal(pick(absent, req('/', { 'x-debug': '1' })), 'no_route');
    const invertedPresent = table([to('ip', { prefix: '/', headers: [{ name: 'x-debug', present_match: true, invert_match: true }] })]);
    assert.equal(pick(invertedPresent, req('/')), 'ip');
    assert.equal(pick(invertedPresent, req('/', { 'x-debug': '1' })), 'no_route');
    const inverted = table([to('i', { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' }, invert_match: true }] })]);
    assert.equal(pick(inverted, req('/', { 'end-user': 'bob' })), 'i');
    assert.equal(pick(inverted, req('/', { 'end-user': 'jason' })), 'no_route');
    assert.equal(pick(inverted, req('/')), 'no_route', 'a missing header never matches a value matcher, inverted or not');
    const empty = table([to('e', { prefix: '/', headers: [{ name: 'x-v', string_match: { exact: '' }, treat_missing_header_as_empty: true }] })]);
    assert.equal(pick(empty, req('/')), 'e');
    assert.equal(pick(empty, req('/', { 'x-v': 'x' })), 'no_route');
  });

  it('pseudo-headers :method, :authority, :path, :scheme and repeated values joined with ","', () => {
    const t = table([
      to('post', { prefix: '/', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }),
      to('auth', { prefix: '/', headers: [{ name: ':authority', string_match: { suffix: '.internal' } }] }),
      to('path', { prefix: '/', headers: [{ name: ':path', string_match: { contains: 'debug' } }] }),
      to('https', { prefix: '/', headers: [{ name: ':scheme', string_match: { exact: 'https' } }] }),
      to('multi', { prefix: '/', headers: [{ name: 'x-m', string_match: { exact: 'a,b' } }] }),
    ]);
    assert.equal(pick(t, req('/', {}, { method: 'POST' })), 'post');
    assert.equal(pick(t, req('/', {}, { authority: 'svc.internal' })), 'auth');
    assert.equal(pick(t, req('/x?debug=1')), 'path');
    assert.equal(pick(t, req('/', {}, { scheme: 'https' })), 'https');
    assert.equal(pick(t, req('/', { 'x-m': ['a', 'b'] })), 'multi');
    assert.equal(pick(t, req('/')), 'no_route');
  });

  it('all header matchers of a route must match', () => {
    const t = table([to('both', { prefix: '/', headers: [{ name: 'a', string_match: { exact: '1' } }, { name: 'b', string_match: { exact: '2' } }] })]);
    assert.equal(pick(t, req('/', { a: '1', b: '2' })), 'both');
    assert.equal(pick(t, req('/', { a: '1' })), 'no_route');
  });

  it('range_match', () => {
    const t = table([to('r', { prefix: '/', headers: [{ name: 'x-n', range_match: { start: 10, end: 20 } }] })]);
    assert.equal(pick(t, req('/', { 'x-n': '10' })), 'r');
    assert.equal(pick(t, req('/', { 'x-n': '19' })), 'r');
    assert.equal(pick(t, req('/', { 'x-n': '20' })), 'no_route');
    assert.equal(pick(t, req('/', { 'x-n': 'abc' })), 'no_route');
  });

  it('query_parameters with string_match and present_match', () => {
    const t = table([
      to('v', { prefix: '/', query_parameters: [{ name: 'version', string_match: { exact: 'v2' } }] }),
      to('p', { prefix: '/', query_parameters: [{ name: 'debug', present_match: true }] }),
    ]);
    assert.equal(pick(t, req('/x?version=v2')), 'v');
    assert.equal(pick(t, req('/x?a=1&version=v2')), 'v');
    assert.equal(pick(t, req('/x?version=v3')), 'no_route');
    assert.equal(pick(t, req('/x?debug')), 'p');
    assert.equal(pick(t, req('/x?debug=0')), 'p');
    assert.equal(pick(t, req('/x')), 'no_route');
    assert.equal(pick(t, req('/x?Version=v2')), 'no_route', 'names are case-sensitive');
  });

  it('grpc: {} matches only gRPC requests', () => {
    const t = table([to('grpc', { prefix: '/', grpc: {} }), to('http', { prefix: '/' })]);
    assert.equal(pick(t, req('/pkg.Svc/Method', { 'content-type': 'application/grpc' })), 'grpc');
    assert.equal(pick(t, req('/pkg.Svc/Method', { 'content-type': 'application/grpc+proto' })), 'grpc');
    assert.equal(pick(t, req('/pkg.Svc/Method', { 'content-type': 'application/json' })), 'http');
    assert.equal(pick(t, req('/pkg.Svc/Method')), 'http');
  });
});

describe('virtual host selection', () => {
  const vh = (name: string, domains: string[]) => ({ name, domains, routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] });
  const t = compileRouteTable({
    name: 'd',
    virtual_hosts: [vh('star', ['*']), vh('prefix-short', ['api.*']), vh('prefix-long', ['api.example.*']), vh('suffix-short', ['*.com']), vh('suffix-long', ['*.example.com']), vh('exact', ['www.example.com']), vh('ported', ['svc:8080'])],
  });
  const host = (h: string) => findVirtualHost(t.domainIndex, h)?.name;

  it('exact beats suffix beats prefix beats *', () => {
    assert.equal(host('www.example.com'), 'exact');
    assert.equal(host('WWW.Example.COM'), 'exact', 'host matching is case-insensitive');
    assert.equal(host('a.example.com'), 'suffix-long');
    assert.equal(host('x.other.com'), 'suffix-short');
    assert.equal(host('api.example.com'), 'suffix-long', 'suffix wildcards are searched before prefix wildcards');
    assert.equal(host('api.example.org'), 'prefix-long');
    assert.equal(host('api.io'), 'prefix-short');
    assert.equal(host('unknown.io'), 'star');
  });

  it('a wildcard must match at least one character', () => {
    assert.equal(host('example.com'), 'suffix-short');
    const u = compileRouteTable({ name: 'u', virtual_hosts: [vh('s', ['*.example.com'])] });
    assert.equal(findVirtualHost(u.domainIndex, '.example.com'), undefined);
  });

  it('host:port is tried with the port, then without', () => {
    assert.equal(host('svc:8080'), 'ported');
    assert.equal(host('svc:9090'), 'star');
    assert.equal(host('www.example.com:443'), 'exact');
    assert.equal(host('a.example.com:8080'), 'suffix-long');
    assert.equal(host('[::1]:80'), 'star');
  });

  it('no virtual host → no_vhost (Envoy answers 404)', () => {
    const u = compileRouteTable({ name: 'u', virtual_hosts: [vh('only', ['only.example'])] });
    assert.equal(pick(u, req('/', {}, { authority: 'other' })), 'no_vhost');
  });

  it('Istio route config "9080": service names with and without port, header route to v2', () => {
    const r = compileRouteTable(reviewsRoutes());
    const sel = (authority: string, headers = {}) => {
      const s = selectRoute(r, { method: 'GET', authority, path: '/reviews/0', headers });
      return 'route' in s ? `${s.virtualHost.name}/${s.route.name}` : s.reason;
    };
    assert.equal(sel('reviews:9080'), `${REVIEWS}:9080/split`);
    assert.equal(sel(`${REVIEWS}`), `${REVIEWS}:9080/split`);
    assert.equal(sel('reviews.default:9080', { 'end-user': 'jason' }), `${REVIEWS}:9080/jason`);
    assert.equal(sel('httpbin.org'), 'allow_any/allow_any');
  });
});

describe('route actions', () => {
  it('weighted clusters split within 2% of their weights over 10,000 picks', () => {
    const r = compileRouteTable(reviewsRoutes());
    const route = r.virtualHosts[0]!.routes[1]!;
    const action = route.action as RouteAction;
    assert.equal(action.target.kind, 'weighted');
    const random = seeded(7);
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const c = resolveCluster(action.target, req('/'), random).cluster!;
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    assert.ok(Math.abs(counts.get(V1)! / 10_000 - 0.8) < 0.02, `v1 ${counts.get(V1)}`);
    assert.ok(Math.abs(counts.get(V3)! / 10_000 - 0.2) < 0.02, `v3 ${counts.get(V3)}`);
    assert.equal(counts.get(V2), undefined);
  });

  it('zero-weight clusters are never picked; three-way split', () => {
    const t = table([{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 50 }, { name: 'b', weight: 0 }, { name: 'c', weight: 30 }, { name: 'd', weight: 20 }] } } }]);
    const action = t.virtualHosts[0]!.routes[0]!.action as RouteAction;
    const target = action.target as Extract<RouteAction['target'], { kind: 'weighted' }>;
    const random = seeded(3);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 10_000; i++) {
      const c = pickWeightedCluster(target, random).cluster;
      counts[c] = (counts[c] ?? 0) + 1;
    }
    assert.equal(counts.b, undefined);
    for (const [c, w] of [['a', 0.5], ['c', 0.3], ['d', 0.2]] as const) assert.ok(Math.abs(counts[c]! / 10_000 - w) < 0.02, `${c}: ${counts[c]}`);
  });

  it('cluster_header takes the cluster from the request; absent header → undefined', () => {
    const t = table([{ match: { prefix: '/' }, route: { cluster_header: 'X-Target' } }]);
    const action = t.virtualHosts[0]!.routes[0]!.action as RouteAction;
    assert.equal(resolveCluster(action.target, req('/', { 'x-target': V1 })).cluster, V1);
    assert.equal(resolveCluster(action.target, req('/')).cluster, undefined);
  });

  it('prefix_rewrite replaces the matched prefix; regex_rewrite substitutes groups and keeps the query', () => {
    const t = table([
      { name: 'p', match: { prefix: '/api/' }, route: { cluster: 'c', prefix_rewrite: '/' } },
      { name: 'e', match: { path: '/old' }, route: { cluster: 'c', prefix_rewrite: '/new' } },
      { name: 'r', match: { prefix: '/users' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '^/users/([0-9]+)/profile$' }, substitution: '/profiles/\\1' } } },
      { name: 'g', match: { prefix: '/g' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: 'o' }, substitution: '0' } } },
    ]);
    const rw = (path: string) => {
      const s = selectRoute(t, req(path));
      assert.ok('route' in s);
      return rewritePath(s.route, s.route.action as RouteAction, path);
    };
    assert.equal(rw('/api/v1/x?y=1'), '/v1/x?y=1');
    assert.equal(rw('/old?q'), '/new?q');
    assert.equal(rw('/users/42/profile?full=1'), '/profiles/42?full=1');
    assert.equal(rw('/users/42/other'), '/users/42/other');
    assert.equal(rw('/goo/foo'), '/g00/f00', 'every match is replaced');
  });

  it('route options are compiled with Envoy defaults', () => {
    const t = table([
      { match: { prefix: '/a' }, route: { cluster: 'c' } },
      {
        match: { prefix: '/b' },
        route: {
          cluster: 'c',
          timeout: '2.5s',
          idle_timeout: '60s',
          auto_host_rewrite: true,
          retry_policy: { retry_on: '5xx,reset', num_retries: 3, per_try_timeout: '1s', retriable_status_codes: [503], retry_back_off: { base_interval: '0.1s' } },
          hash_policy: [{ header: { header_name: 'X-User' } }, { connection_properties: { source_ip: true }, terminal: true }],
          request_mirror_policies: [{ cluster: 'mirror', runtime_fraction: { default_value: { numerator: 10 } } }],
          max_stream_duration: { grpc_timeout_header_max: '30s' },
        },
      },
    ]);
    const a = t.virtualHosts[0]!.routes[0]!.action as RouteAction;
    assert.equal(a.timeoutMs, 15_000);
    assert.equal(a.retryPolicy, undefined);
    assert.equal(a.grpcTimeoutHeaderMaxMs, undefined);
    const b = t.virtualHosts[0]!.routes[1]!.action as RouteAction;
    assert.equal(b.timeoutMs, 2500);
    assert.equal(b.idleTimeoutMs, 60_000);
    assert.deepEqual(b.hostRewrite, { kind: 'auto' });
    assert.deepEqual([...b.retryPolicy!.retryOn], ['5xx', 'reset']);
    assert.equal(b.retryPolicy!.numRetries, 3);
    assert.equal(b.retryPolicy!.perTryTimeoutMs, 1000);
    assert.equal(b.retryPolicy!.backOffBaseMs, 100);
    assert.equal(b.retryPolicy!.backOffMaxMs, 1000);
    assert.ok(b.retryPolicy!.retriableStatusCodes.has(503));
    assert.deepEqual(b.hashPolicies, [{ kind: 'header', header: 'x-user', terminal: false }, { kind: 'sourceIp', terminal: true }]);
    assert.deepEqual(b.mirrors, [{ cluster: 'mirror', fraction: 0.1 }]);
    assert.equal(b.grpcTimeoutHeaderMaxMs, 30_000);
  });

  it('redirects: https upgrade drops the default port, host/port/path/prefix rewrite, strip_query, codes', () => {
    const t = table([
      { name: 'https', match: { prefix: '/secure' }, redirect: { https_redirect: true } },
      { name: 'host', match: { prefix: '/moved' }, redirect: { host_redirect: 'new.example.com', port_redirect: 8443, response_code: 'PERMANENT_REDIRECT' } },
      { name: 'path', match: { prefix: '/p' }, redirect: { path_redirect: '/landing', strip_query: true, response_code: 'FOUND' } },
      { name: 'prefix', match: { prefix: '/v1/' }, redirect: { prefix_rewrite: '/v2/' } },
    ]);
    const go = (path: string, authority = 'example.com') => {
      const s = selectRoute(t, req(path, {}, { authority }));
      assert.ok('route' in s && s.route.action.kind === 'redirect');
      return [s.route.action.status, buildRedirectUrl(s.route, s.route.action, { authority, path, scheme: 'http' })];
    };
    assert.deepEqual(go('/secure?a=1', 'example.com:80'), [301, 'https://example.com/secure?a=1']);
    assert.deepEqual(go('/secure', 'example.com:8080'), [301, 'https://example.com:8080/secure']);
    assert.deepEqual(go('/moved/x?q'), [308, 'http://new.example.com:8443/moved/x?q']);
    assert.deepEqual(go('/p/a?q=1'), [302, 'http://example.com/landing']);
    assert.deepEqual(go('/v1/items?x'), [301, 'http://example.com/v2/items?x']);
  });

  it('direct_response with inline_string and inline_bytes', () => {
    const t = table([
      { match: { path: '/s' }, direct_response: { status: 503, body: { inline_string: 'no healthy upstream' } } },
      { match: { path: '/b' }, direct_response: { status: 200, body: { inline_bytes: Buffer.from('bytes').toString('base64') } } },
      { match: { path: '/n' }, direct_response: { status: 204 } },
    ]);
    const body = (i: number) => {
      const a = t.virtualHosts[0]!.routes[i]!.action;
      assert.equal(a.kind, 'direct');
      return [a.status, a.body?.toString()];
    };
    assert.deepEqual(body(0), [503, 'no healthy upstream']);
    assert.deepEqual(body(1), [200, 'bytes']);
    assert.deepEqual(body(2), [204, undefined]);
  });

  it('header mutations at route table, virtual host, route and weighted cluster level', () => {
    const t = compileRouteTable({
      name: 'h',
      request_headers_to_add: [{ header: { key: 'X-Table', value: 't' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      response_headers_to_remove: ['x-internal'],
      virtual_hosts: [
        {
          name: 'vh',
          domains: ['*'],
          request_headers_to_add: [{ header: { key: 'x-vh', value: 'v' }, append: false }],
          routes: [
            {
              match: { prefix: '/' },
              request_headers_to_remove: ['x-remove-me'],
              response_headers_to_add: [{ header: { key: 'x-route', value: 'r' }, append_action: 'ADD_IF_ABSENT' }],
              route: { weighted_clusters: { clusters: [{ name: 'a', weight: 1, request_headers_to_add: [{ header: { key: 'x-subset', value: 'a' } }] }] } },
            },
          ],
        },
      ],
    });
    assert.deepEqual(t.headers.requestAdd, [{ name: 'x-table', value: 't', appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD', keepEmptyValue: false }]);
    assert.deepEqual(t.headers.responseRemove, ['x-internal']);
    const vh = t.virtualHosts[0]!;
    assert.equal(vh.headers.requestAdd[0]!.appendAction, 'OVERWRITE_IF_EXISTS_OR_ADD', 'append: false means overwrite');
    const r = vh.routes[0]!;
    assert.deepEqual(r.headers.requestRemove, ['x-remove-me']);
    assert.equal(r.headers.responseAdd[0]!.appendAction, 'ADD_IF_ABSENT');
    const w = (r.action as RouteAction).target;
    assert.ok(w.kind === 'weighted');
    assert.equal(w.clusters[0]!.headers.requestAdd[0]!.appendAction, 'APPEND_IF_EXISTS_OR_ADD');
  });

  it('typed_per_filter_config: fault and CORS compiled; unknown types rejected unless optional', () => {
    const t = table([
      {
        match: { prefix: '/' },
        route: { cluster: 'c' },
        typed_per_filter_config: {
          'envoy.filters.http.fault': {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
            abort: { http_status: 503, percentage: { numerator: 50, denominator: 'HUNDRED' } },
            delay: { fixed_delay: '2s', percentage: { numerator: 100000, denominator: 'MILLION' } },
          },
          'envoy.filters.http.cors': {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
            allow_origin_string_match: [{ exact: 'https://app.example.com' }],
            allow_methods: 'GET,POST',
          },
        },
      },
    ]);
    const pfc = t.virtualHosts[0]!.routes[0]!.perFilterConfig;
    assert.deepEqual(pfc.fault?.abort, { httpStatus: 503, headerAbort: false, fraction: 0.5 });
    assert.deepEqual(pfc.fault?.delay, { fixedDelayMs: 2000, headerDelay: false, fraction: 0.1 });
    assert.equal(pfc.cors?.allowMethods, 'GET,POST');
    assert.equal(pfc.cors?.enabled, 1);
    assert.throws(
      () => table([{ match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { 'x.lua': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute' } } }]),
      (e: unknown) => e instanceof ConfigError && e.path === "virtual_hosts[0].routes[0].typed_per_filter_config.x.lua.@type",
    );
  });
});

describe('route configuration errors (NACK)', () => {
  const bad = (routes: JsonObject[], path: string, rule: RegExp, domains?: string[]) =>
    assert.throws(
      () => table(routes, domains),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.typeUrl, TYPE_URL.route);
        assert.equal(e.path, path);
        assert.match(e.rule, rule);
        return true;
      },
    );

  it('regexes that are not RE2 or do not compile', () => {
    bad([{ match: { safe_regex: { regex: '/a(?=b)' } }, route: { cluster: 'c' } }], 'virtual_hosts[0].routes[0].match.safe_regex.regex', /lookahead/);
    bad([{ match: { safe_regex: { regex: '(a)\\1' } }, route: { cluster: 'c' } }], 'virtual_hosts[0].routes[0].match.safe_regex.regex', /backreference/);
    bad([{ match: { prefix: '/', headers: [{ name: 'x', string_match: { safe_regex: { regex: '(unclosed' } } }] }, route: { cluster: 'c' } }], 'virtual_hosts[0].routes[0].match.headers[0].string_match.safe_regex.regex', /does not compile/);
    bad([{ match: { prefix: '/' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '(?<!x)y' }, substitution: '' } } }], 'virtual_hosts[0].routes[0].route.regex_rewrite.pattern.regex', /lookbehind/);
  });

  it('RE2 syntax JS lacks is translated: (?P<name>), leading (?i)', () => {
    const t = table([{ name: 'n', match: { safe_regex: { regex: '(?i)/(?P<id>[a-z]+)' } }, route: { cluster: 'c' } }]);
    assert.equal(pick(t, req('/ABC')), 'n');
  });

  it('weighted clusters whose weights are all zero', () => {
    bad([{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 0 }, { name: 'b' }] } } }], 'virtual_hosts[0].routes[0].route.weighted_clusters.clusters', /sum of weights/);
  });

  it('cluster_header without a header name, missing action, missing path specifier', () => {
    bad([{ match: { prefix: '/' }, route: { cluster_header: '' } }], 'virtual_hosts[0].routes[0].route.cluster_header', /must name a header/);
    bad([{ match: { prefix: '/' } }], 'virtual_hosts[0].routes[0]', /one of route, redirect or direct_response/);
    bad([{ match: {}, route: { cluster: 'c' } }], 'virtual_hosts[0].routes[0].match', /one of prefix, path/);
  });

  it('duplicate domains across virtual hosts and bad wildcards', () => {
    assert.throws(
      () => compileRouteTable({ name: 'd', virtual_hosts: [{ name: 'a', domains: ['x.com'] }, { name: 'b', domains: ['X.com'] }] }),
      (e: unknown) => e instanceof ConfigError && e.path === 'virtual_hosts[1].domains[0]' && /more than one virtual host/.test(e.rule),
    );
    bad([], 'virtual_hosts[0].domains[0]', /wildcard/, ['a*b.com']);
  });

  it('unsupported fields are rejected with their path', () => {
    bad([{ match: { prefix: '/' }, route: { cluster: 'c', hedge_policy: { initial_requests: 2 } } }], 'virtual_hosts[0].routes[0].route.hedge_policy', /not supported/);
    bad([{ match: { safe_regex: { regex: '/x' } }, route: { cluster: 'c', prefix_rewrite: '/y' } }], 'virtual_hosts[0].routes[0].route.prefix_rewrite', /safe_regex/);
    bad([{ match: { prefix: '/', headers: [{ name: 'x', string_match: {} }] }, route: { cluster: 'c' } }], 'virtual_hosts[0].routes[0].match.headers[0].string_match', /one of exact/);
    bad([{ match: { prefix: '/' }, route: { cluster: 'c' }, request_headers_to_add: [{ header: { key: ':path', value: '/' } }] }], 'virtual_hosts[0].routes[0].request_headers_to_add[0].header.key', /pseudo-headers/);
  });
});
