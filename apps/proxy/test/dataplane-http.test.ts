import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { JsonObject } from '@tern/xds';
import { cluster, httpListener, httpUpstream, request, routeTo, snapshot, startProxy, type TestProxy, type Upstream } from './dataplane-helpers.ts';

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';

/** A raw TCP server that runs `onConn` per connection (resets, hangs, garbage). */
async function rawServer(onConn: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('HTTP/1.1 forwarding', () => {
  let up: Upstream;
  let proxy: TestProxy;
  let port: number;
  before(async () => {
    up = await httpUpstream();
    proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'out', routes: routeTo(REVIEWS) })],
      clusters: [cluster(REVIEWS, [up.port])],
    }));
    port = proxy.port('out');
  });
  after(async () => {
    await proxy.close();
    await up.close();
  });

  test('keep-alive on both sides: many requests, one downstream and one upstream connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let downstreamSockets = 0;
    agent.on('free', () => {});
    const before = up.connections;
    for (let i = 0; i < 20; i++) {
      const r = await request(port, { agent, path: `/k/${i}`, method: i % 2 ? 'POST' : 'GET', ...(i % 2 ? { body: `body-${i}` } : {}) });
      assert.equal(r.status, 200);
      const echoed = JSON.parse(r.body);
      assert.equal(echoed.url, `/k/${i}`);
      if (i % 2) assert.equal(echoed.body, `body-${i}`);
    }
    downstreamSockets = Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length;
    assert.equal(downstreamSockets, 1);
    assert.equal(up.connections - before, 1, 'the proxy reuses its upstream connection');
    agent.destroy();
  });

  test('hop-by-hop headers and the ones Connection names are not forwarded, end-to-end ones are', async () => {
    // A raw request: Node's client refuses some of these combinations.
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write('GET /hop HTTP/1.1\r\nHost: reviews\r\nConnection: keep-alive, X-Secret-Hop\r\nKeep-Alive: timeout=5\r\nX-Secret-Hop: no\r\n' +
          'Proxy-Connection: keep-alive\r\nTE: gzip\r\nTrailer: x-t\r\nUpgrade: h2c\r\nX-End-To-End: yes\r\n\r\n');
      });
      let buf = '';
      s.on('data', (d) => {
        buf += d;
        const i = buf.indexOf('\r\n\r\n');
        const len = /content-length: (\d+)/i.exec(buf);
        if (i > 0 && len && buf.length >= i + 4 + Number(len[1])) {
          s.destroy();
          resolve(buf);
        }
      });
      s.on('error', reject);
    });
    const h = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).headers;
    for (const name of ['keep-alive', 'x-secret-hop', 'proxy-connection', 'te', 'trailer', 'upgrade']) assert.equal(h[name], undefined, name);
    assert.equal(h['x-end-to-end'], 'yes');
    assert.equal(h.connection, 'keep-alive', 'only the proxy\'s own upstream connection header');
    assert.match(raw, /x-envoy-upstream-service-time: \d+/);
  });

  test('chunked request and response bodies stream through', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/chunked', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.write('part1-');
      setTimeout(() => req.end('part2'), 20);
    });
    assert.equal(JSON.parse(body).body, 'part1-part2');
  });

  test('x-request-id is generated (UUID v4) when absent and kept when present; traceparent/B3 pass unchanged', async () => {
    const a = JSON.parse((await request(port, { path: '/rid' })).body).headers;
    assert.match(a['x-request-id'], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const trace = { 'x-request-id': 'mine-123', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-b3-traceid': '463ac35c9f6413ad', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-parentspanid': '0020000000000001', 'x-b3-sampled': '1' };
    const b = JSON.parse((await request(port, { path: '/rid', headers: trace })).body).headers;
    for (const [k, v] of Object.entries(trace)) assert.equal(b[k], v, k);
  });

  test('without use_remote_address, x-forwarded-for is left alone and x-envoy-* passes (not an edge)', async () => {
    const h = JSON.parse((await request(port, { path: '/xff', headers: { 'x-forwarded-for': '10.0.0.1', 'x-envoy-foo': 'bar' } })).body).headers;
    assert.equal(h['x-forwarded-for'], '10.0.0.1');
    assert.equal(h['x-envoy-foo'], 'bar');
    assert.equal(h['x-forwarded-proto'], 'http');
  });

  test('the peer-metadata header goes out with our identity and an incoming one is replaced', async () => {
    const h = JSON.parse((await request(port, { path: '/peer', headers: { 'x-tern-peer': 'spoofed;x;y;z;' } })).body).headers;
    assert.equal(h['x-tern-peer'], 'productpage-v1;default;productpage;v1;');
  });
});

describe('edge behaviour (use_remote_address)', () => {
  test('x-forwarded-for gets the peer appended, x-envoy-* request headers are stripped', async () => {
    const up = await httpUpstream();
    const proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'edge', routes: routeTo(REVIEWS), hcm: { use_remote_address: true } })],
      clusters: [cluster(REVIEWS, [up.port])],
    }));
    try {
      const h = JSON.parse((await request(proxy.port('edge'), { headers: { 'x-forwarded-for': '10.0.0.1', 'x-envoy-retry-on': '5xx', 'x-envoy-foo': '1' } })).body).headers;
      assert.equal(h['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
      assert.equal(h['x-envoy-retry-on'], undefined);
      assert.equal(h['x-envoy-foo'], undefined);
      const h2 = JSON.parse((await request(proxy.port('edge'))).body).headers;
      assert.equal(h2['x-forwarded-for'], '127.0.0.1');
      assert.equal(h2['x-envoy-external-address'], undefined, 'a loopback client is internal');
    } finally {
      await proxy.close();
      await up.close();
    }
  });

  test('xff_num_trusted_hops picks the external client from x-forwarded-for (x-envoy-external-address)', async () => {
    const up = await httpUpstream();
    const proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'edge', routes: routeTo(REVIEWS), hcm: { use_remote_address: true, xff_num_trusted_hops: 1 } })],
      clusters: [cluster(REVIEWS, [up.port])],
    }));
    try {
      const h = JSON.parse((await request(proxy.port('edge'), { headers: { 'x-forwarded-for': '198.51.100.9, 203.0.113.7' } })).body).headers;
      assert.equal(h['x-envoy-external-address'], '203.0.113.7');
      assert.equal(h['x-forwarded-for'], '198.51.100.9, 203.0.113.7, 127.0.0.1');
    } finally {
      await proxy.close();
      await up.close();
    }
  });
});

describe('forward-proxy mode (HTTP_PROXY)', () => {
  test('absolute-form URIs and Host headers pick the virtual host; CONNECT is answered 405', async () => {
    const reviews = await httpUpstream();
    const ratings = await httpUpstream();
    const routes = {
      name: 'proxy',
      virtual_hosts: [
        { name: 'reviews', domains: ['reviews', 'reviews:9080'], routes: [{ match: { prefix: '/' }, route: { cluster: 'reviews' } }] },
        { name: 'ratings', domains: ['ratings', 'ratings:9080'], routes: [{ match: { prefix: '/' }, route: { cluster: 'ratings' } }] },
      ],
    };
    const proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'fwd', routes })],
      clusters: [cluster('reviews', [reviews.port]), cluster('ratings', [ratings.port])],
    }));
    const port = proxy.port('fwd');
    try {
      const a = await request(port, { path: 'http://reviews:9080/x?q=1' });
      assert.equal(a.status, 200);
      assert.equal(JSON.parse(a.body).url, '/x?q=1');
      assert.equal(JSON.parse(a.body).headers.host, 'reviews:9080');
      assert.equal(reviews.requests.length, 1);
      const b = await request(port, { path: '/y', headers: { host: 'ratings:9080' } });
      assert.equal(b.status, 200);
      assert.equal(JSON.parse(b.body).url, '/y');
      assert.equal(ratings.requests.length, 1);
      const c = await request(port, { path: '/z', headers: { host: 'details:9080' } });
      assert.equal(c.status, 404);
      const connect = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'CONNECT', path: 'reviews:443' });
        req.on('connect', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('response', (res) => resolve(res.statusCode ?? 0));
        req.on('error', reject);
        req.end();
      });
      assert.equal(connect, 405);
    } finally {
      await proxy.close();
      await reviews.close();
      await ratings.close();
    }
  });
});

describe('routing outcomes and response flags', () => {
  let proxy: TestProxy;
  let port: number;
  let up: Upstream;
  const servers: { close: () => Promise<void> }[] = [];
  before(async () => {
    up = await httpUpstream();
    const reset = await rawServer((s) => s.once('data', () => s.resetAndDestroy()));
    const hang = await rawServer(() => {});
    const garbage = await rawServer((s) => s.once('data', () => s.end('this is not HTTP at all\r\n\r\n')));
    const dead = await freePort();
    servers.push(reset, hang, garbage);
    const routes: JsonObject = {
      name: 'r',
      virtual_hosts: [{
        name: 'all',
        domains: ['*'],
        routes: [
          { match: { prefix: '/ok' }, route: { cluster: 'ok', prefix_rewrite: '/rewritten' }, request_headers_to_add: [{ header: { key: 'x-added', value: 'yes' } }], response_headers_to_add: [{ header: { key: 'x-resp', value: 'r' } }] },
          { match: { prefix: '/reset' }, route: { cluster: 'reset' } },
          { match: { prefix: '/hang' }, route: { cluster: 'hang', timeout: '0.3s' } },
          { match: { prefix: '/garbage' }, route: { cluster: 'garbage' } },
          { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
          { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
          { match: { prefix: '/unknown' }, route: { cluster: 'nope' } },
          { match: { prefix: '/direct' }, direct_response: { status: 418, body: { inline_string: 'short and stout' } } },
          { match: { prefix: '/old' }, redirect: { path_redirect: '/new', response_code: 'FOUND' } },
        ],
      }],
    };
    proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'out', routes })],
      clusters: [
        cluster('ok', [up.port]), cluster('reset', [reset.port]), cluster('hang', [hang.port]), cluster('garbage', [garbage.port]),
        cluster('dead', [dead], { connectTimeout: '0.5s' }),
        { name: 'empty', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'empty', endpoints: [] } },
      ],
    }), { accessLog: true });
    port = proxy.port('out');
  });
  after(async () => {
    await proxy.close();
    await up.close();
    for (const s of servers) await s.close();
  });

  const lastLog = () => JSON.parse(proxy.accessLog[proxy.accessLog.length - 1]!);

  test('a matched route: prefix rewrite and header mutations', async () => {
    const r = await request(port, { path: '/ok/a?b=1' });
    assert.equal(r.status, 200);
    const e = JSON.parse(r.body);
    assert.equal(e.url, '/rewritten/a?b=1');
    assert.equal(e.headers['x-added'], 'yes');
    assert.equal(r.headers['x-resp'], 'r');
    assert.equal(lastLog().response_flags, '-');
  });

  test('no route: 404 NR', async () => {
    const r = await request(port, { path: '/nothing-here' });
    assert.equal(r.status, 404);
    assert.equal(lastLog().response_flags, 'NR');
  });

  test('unknown cluster: 503 NC', async () => {
    const r = await request(port, { path: '/unknown' });
    assert.equal(r.status, 503);
    assert.equal(lastLog().response_flags, 'NC');
  });

  test('no endpoint: 503 UH', async () => {
    const r = await request(port, { path: '/empty' });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'no healthy upstream');
    assert.equal(lastLog().response_flags, 'UH');
  });

  test('connection refused: 503 UF', async () => {
    const r = await request(port, { path: '/dead' });
    assert.equal(r.status, 503);
    assert.match(r.body, /connection failure/);
    assert.equal(lastLog().response_flags, 'UF');
  });

  test('upstream resets before responding: 503 UC', async () => {
    const r = await request(port, { path: '/reset' });
    assert.equal(r.status, 503);
    assert.match(r.body, /reset/);
    assert.equal(lastLog().response_flags, 'UC');
  });

  test('upstream hangs past the route timeout: 504 UT', async () => {
    const r = await request(port, { path: '/hang' });
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.equal(lastLog().response_flags, 'UT');
  });

  test('garbage from upstream: 502 UPE', async () => {
    const r = await request(port, { path: '/garbage' });
    assert.equal(r.status, 502);
    assert.equal(lastLog().response_flags, 'UPE');
  });

  test('direct responses and redirects are answered by the proxy', async () => {
    const d = await request(port, { path: '/direct' });
    assert.equal(d.status, 418);
    assert.equal(d.body, 'short and stout');
    const r = await request(port, { path: '/old?x=1', headers: { host: 'shop.example:8080' } });
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'http://shop.example:8080/new?x=1');
  });

  test('the proxy still works after all those failures (keep-alive pool not poisoned)', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await request(port, { path: '/ok' })).status, 200);
  });

  test('access log lines are JSON with Envoy field names', () => {
    const e = lastLog();
    for (const k of ['start_time', 'method', 'path', 'response_code', 'response_flags', 'bytes_received', 'bytes_sent', 'duration', 'upstream_cluster', 'upstream_host', 'request_id', 'authority']) assert.ok(k in e, k);
    assert.equal(e.upstream_cluster, 'ok');
    assert.equal(e.path, '/ok');
  });
});
