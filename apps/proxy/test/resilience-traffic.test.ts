// Fault injection, mirroring, CORS, redirects/direct responses and traffic shifting under live
// change, through the real data plane with small upstreams on loopback.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { EXTENSION_TYPE_URL, type JsonObject } from '@tern/xds';
import { cluster, eventually, httpListener, httpUpstream, request, snapshot, startProxy, type TestProxy, type Upstream } from './dataplane-helpers.ts';
import { shadowHost } from '../src/dataplane/mirror.ts';

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const MIRROR = 'outbound|9080||reviews-mirror.default.svc.cluster.local';
const FILTERS = [
  { name: 'envoy.filters.http.fault', typed_config: { '@type': EXTENSION_TYPE_URL.fault } },
  { name: 'envoy.filters.http.cors', typed_config: { '@type': EXTENSION_TYPE_URL.cors } },
  { name: 'envoy.filters.http.router', typed_config: { '@type': EXTENSION_TYPE_URL.router } },
];

const open: { close(): Promise<void> }[] = [];
after(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function upstream(handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void): Promise<Upstream> {
  const u = await httpUpstream(handler ?? ((_req, res) => res.end('upstream')));
  open.push(u);
  return u;
}

async function proxy(routes: JsonObject[], clusters: JsonObject[], vhExtra: JsonObject = {}): Promise<TestProxy> {
  const p = await startProxy(snapshot({
    listeners: [httpListener({ name: 'out', routes: { name: 'r', virtual_hosts: [{ name: 'reviews', domains: ['*'], routes, ...vhExtra }] }, hcm: { http_filters: FILTERS } })],
    clusters,
  }), { accessLog: true });
  open.push(p);
  return p;
}

const fault = (f: JsonObject) => ({ 'envoy.filters.http.fault': { '@type': EXTENSION_TYPE_URL.fault, ...f } });
const jason = { headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] };

function logs(p: TestProxy): { response_flags: string; response_code: number; path: string }[] {
  return p.accessLog.map((l) => JSON.parse(l) as { response_flags: string; response_code: number; path: string });
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

/** A request the caller abandons after `giveUpMs` (as Bookinfo's productpage does after 3 s). */
function callWithDeadline(port: number, headers: http.OutgoingHttpHeaders, giveUpMs: number): Promise<'ok' | 'timeout'> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reviews/0', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve('ok'));
    });
    req.setTimeout(giveUpMs, () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', () => resolve('timeout'));
    req.end();
  });
}

describe('fault injection (Bookinfo end-user: jason)', () => {
  test('abort 500 for jason only: an immediate 500 FI, the upstream never sees it; others get through', async () => {
    const up = await upstream();
    const p = await proxy([
      { match: { prefix: '/', ...jason }, route: { cluster: REVIEWS }, typed_per_filter_config: fault({ abort: { http_status: 500, percentage: { numerator: 100 } } }) },
      { match: { prefix: '/' }, route: { cluster: REVIEWS } },
    ], [cluster(REVIEWS, [up.port])]);
    const port = p.port('out');
    for (let i = 0; i < 10; i++) {
      const [r, ms] = await timed(() => request(port, { path: '/ratings', headers: { 'end-user': 'jason' } }));
      assert.equal(r.status, 500);
      assert.equal(r.body, 'fault filter abort');
      assert.ok(ms < 300, `abort took ${ms} ms`);
    }
    for (let i = 0; i < 10; i++) {
      const r = await request(port, { path: '/ratings', headers: { 'end-user': 'alice' } });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'upstream');
    }
    assert.equal(up.requests.length, 10, 'only the non-jason requests reached the upstream');
    assert.ok(up.requests.every((r) => r.headers['end-user'] === 'alice'));
    const l = logs(p);
    assert.equal(l.filter((x) => x.response_flags === 'FI' && x.response_code === 500).length, 10);
  });

  test('delay 0.7 s for jason (Istio task scaled down 10x): a caller giving up at 0.3 s and retrying once fails after ~0.6 s; others unaffected', async () => {
    const up = await upstream();
    const p = await proxy([
      { match: { prefix: '/', ...jason }, route: { cluster: REVIEWS }, typed_per_filter_config: fault({ delay: { fixed_delay: '0.7s', percentage: { numerator: 100 } } }) },
      { match: { prefix: '/' }, route: { cluster: REVIEWS } },
    ], [cluster(REVIEWS, [up.port])]);
    const port = p.port('out');
    const [outcome, ms] = await timed(async () => {
      const first = await callWithDeadline(port, { 'end-user': 'jason' }, 300);
      return first === 'ok' ? first : callWithDeadline(port, { 'end-user': 'jason' }, 300);
    });
    assert.equal(outcome, 'timeout');
    console.log(`delay fault, caller giving up at 300 ms and retrying once: failed after ${ms.toFixed(0)} ms`);
    assert.ok(ms >= 580 && ms < 1300, `took ${ms} ms`);
    const [r, fast] = await timed(() => request(port, { headers: { 'end-user': 'alice' } }));
    assert.equal(r.status, 200);
    assert.ok(fast < 250, `an unaffected request took ${fast} ms`);
    // The abandoned calls were HTTP/1.1 half-closes of complete requests: the fast path still
    // answers them (documented), after the delay.
    await eventually(() => logs(p).filter((x) => x.response_flags.includes('DI')).length === 2, 3000);
    // A patient caller gets the response after the delay.
    const [slow, slowMs] = await timed(() => request(port, { headers: { 'end-user': 'jason' } }));
    assert.equal(slow.status, 200);
    console.log(`delay fault, patient caller: ${slowMs.toFixed(0)} ms`);
    assert.ok(slowMs >= 680 && slowMs < 1500, `delayed request took ${slowMs} ms`);
    await eventually(() => logs(p).filter((x) => x.response_flags === 'DI').length === 3);
  });

  test('a delayed POST keeps its body (fast path holds it during the delay)', async () => {
    const up = await upstream((_req, res, body) => res.end(`got ${body.length}`));
    const p = await proxy([{ match: { prefix: '/' }, route: { cluster: REVIEWS }, typed_per_filter_config: fault({ delay: { fixed_delay: '0.2s', percentage: { numerator: 100 } } }) }], [cluster(REVIEWS, [up.port])]);
    // 3 MB: more than the connection holds before it pauses reading (1 MiB), so reading must resume.
    const r = await request(p.port('out'), { method: 'POST', body: 'q'.repeat(3_000_000) });
    assert.equal(r.body, 'got 3000000');
  });

  test('percentage: abort 50% over 400 requests lands near half; header_abort takes the status from x-envoy-fault-abort-request', async () => {
    const up = await upstream();
    const p = await proxy([
      { match: { prefix: '/hdr' }, route: { cluster: REVIEWS }, typed_per_filter_config: fault({ abort: { header_abort: {}, percentage: { numerator: 100 } } }) },
      { match: { prefix: '/' }, route: { cluster: REVIEWS }, typed_per_filter_config: fault({ abort: { http_status: 503, percentage: { numerator: 50 } } }) },
    ], [cluster(REVIEWS, [up.port])]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    let aborted = 0;
    const N = 400;
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < N / 4; i++) if ((await request(p.port('out'), { agent })).status === 503) aborted++;
    }));
    agent.destroy();
    assert.ok(aborted > 140 && aborted < 260, `${aborted} of ${N} aborted`);
    assert.equal(up.requests.length, N - aborted);
    assert.equal((await request(p.port('out'), { path: '/hdr', headers: { 'x-envoy-fault-abort-request': '418' } })).status, 418);
    assert.equal((await request(p.port('out'), { path: '/hdr' })).status, 200, 'no header, no abort');
  });

  test('max_active_faults 1: while one request is being delayed, another is not faulted', async () => {
    const up = await upstream();
    const p = await proxy([{ match: { prefix: '/' }, route: { cluster: REVIEWS }, typed_per_filter_config: fault({ delay: { fixed_delay: '0.4s', percentage: { numerator: 100 } }, max_active_faults: 1 }) }], [cluster(REVIEWS, [up.port])]);
    const first = timed(() => request(p.port('out'), { path: '/a' }));
    await new Promise((r) => setTimeout(r, 50));
    const [, secondMs] = await timed(() => request(p.port('out'), { path: '/b' }));
    const [, firstMs] = await first;
    assert.ok(firstMs >= 380, `first took ${firstMs} ms`);
    assert.ok(secondMs < 250, `second took ${secondMs} ms`);
  });

  test('no fault filter in the HCM: per-route fault config is ignored', async () => {
    const up = await upstream();
    const p = await startProxy(snapshot({
      listeners: [httpListener({ name: 'out', routes: { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: REVIEWS }, typed_per_filter_config: fault({ abort: { http_status: 500, percentage: { numerator: 100 } } }) }] }] } })],
      clusters: [cluster(REVIEWS, [up.port])],
    }));
    open.push(p);
    assert.equal((await request(p.port('out'))).status, 200);
  });
});

describe('mirroring', () => {
  test('every request reaches the mirror with the -shadow host and the same body; the mirror response is discarded', async () => {
    const main = await upstream((_req, res, body) => res.end(`main:${body}`));
    const mirror = await upstream((_req, res) => {
      res.writeHead(500);
      res.end('mirror says no');
    });
    const p = await proxy([{ match: { prefix: '/' }, route: { cluster: REVIEWS, request_mirror_policies: [{ cluster: MIRROR }] } }], [cluster(REVIEWS, [main.port]), cluster(MIRROR, [mirror.port])]);
    const N = 20;
    for (let i = 0; i < N; i++) {
      const r = await request(p.port('out'), { method: i % 2 ? 'POST' : 'GET', path: `/m${i}`, headers: { host: 'reviews:9080' }, ...(i % 2 ? { body: `body${i}` } : {}) });
      assert.equal(r.status, 200);
      assert.equal(r.body, `main:${i % 2 ? `body${i}` : ''}`);
    }
    await eventually(() => mirror.requests.length === N);
    assert.ok(mirror.requests.every((r) => r.headers.host === 'reviews-shadow:9080'));
    assert.deepEqual(mirror.requests.map((r) => r.url).sort(), main.requests.map((r) => r.url).sort());
    for (const m of mirror.requests) assert.equal(m.body, main.requests.find((x) => x.url === m.url)!.body);
    assert.equal(shadowHost('reviews'), 'reviews-shadow');
    assert.equal(shadowHost('[::1]:80'), '[::1]-shadow:80');
  });

  test('a dead mirror and a mirror that never answers change nothing for callers', async () => {
    const main = await upstream((_req, res) => res.end('main'));
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const dead = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    const hung = new Set<net.Socket>();
    const blackhole = net.createServer((c) => hung.add(c)); // accepts, reads nothing, never answers
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    open.push({ close: () => new Promise((r) => { for (const c of hung) c.destroy(); blackhole.close(() => r()); }) });
    const SLOW = 'outbound|9080||slow.default.svc.cluster.local';
    const p = await proxy([
      { match: { prefix: '/dead' }, route: { cluster: REVIEWS, timeout: '1s', request_mirror_policies: [{ cluster: MIRROR }] } },
      { match: { prefix: '/slow' }, route: { cluster: REVIEWS, timeout: '1s', request_mirror_policies: [{ cluster: SLOW }] } },
    ], [cluster(REVIEWS, [main.port]), cluster(MIRROR, [dead]), cluster(SLOW, [(blackhole.address() as AddressInfo).port])]);
    for (const path of ['/dead', '/slow']) {
      for (let i = 0; i < 10; i++) {
        const [r, ms] = await timed(() => request(p.port('out'), { path, method: 'POST', body: 'b'.repeat(200_000) }));
        assert.equal(r.status, 200, path);
        assert.equal(r.body, 'main');
        assert.ok(ms < 500, `${path} took ${ms} ms`);
      }
    }
    assert.equal(main.requests.length, 20);
    assert.ok(logs(p).every((l) => l.response_flags === '-' && l.response_code === 200));
  });

  test('runtime_fraction 50%: about half the requests are mirrored', async () => {
    const main = await upstream();
    const mirror = await upstream();
    const p = await proxy([{ match: { prefix: '/' }, route: { cluster: REVIEWS, request_mirror_policies: [{ cluster: MIRROR, runtime_fraction: { default_value: { numerator: 50 } } }] } }], [cluster(REVIEWS, [main.port]), cluster(MIRROR, [mirror.port])]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    for (let i = 0; i < 200; i++) await request(p.port('out'), { agent });
    agent.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(mirror.requests.length > 65 && mirror.requests.length < 135, `${mirror.requests.length} of 200 mirrored`);
  });
});

describe('CORS', () => {
  const cors: JsonObject = {
    'envoy.filters.http.cors': {
      '@type': EXTENSION_TYPE_URL.corsPolicy,
      allow_origin_string_match: [{ exact: 'https://shop.example' }, { suffix: '.trusted.example' }],
      allow_methods: 'GET,POST', allow_headers: 'x-custom', expose_headers: 'x-served-by', max_age: '600', allow_credentials: true,
    },
  };

  test('preflight answered locally for an allowed origin; simple requests get allow-origin/expose headers; others are untouched', async () => {
    const up = await upstream((_req, res) => {
      res.setHeader('x-served-by', 'reviews');
      res.end('ok');
    });
    const p = await proxy([{ match: { prefix: '/' }, route: { cluster: REVIEWS } }], [cluster(REVIEWS, [up.port])], { typed_per_filter_config: cors });
    const port = p.port('out');
    const pre = await request(port, { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://shop.example');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET,POST');
    assert.equal(pre.headers['access-control-allow-headers'], 'x-custom');
    assert.equal(pre.headers['access-control-max-age'], '600');
    assert.equal(pre.headers['access-control-allow-credentials'], 'true');
    assert.equal(up.requests.length, 0, 'the preflight never reached the upstream');

    const other = await request(port, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    assert.equal(up.requests.length, 1, 'a preflight from an origin not allowed is forwarded');

    const simple = await request(port, { headers: { origin: 'https://api.trusted.example' } });
    assert.equal(simple.body, 'ok');
    assert.equal(simple.headers['access-control-allow-origin'], 'https://api.trusted.example');
    assert.equal(simple.headers['access-control-expose-headers'], 'x-served-by');
    assert.equal(simple.headers['access-control-allow-credentials'], 'true');
    const plain = await request(port, { headers: { origin: 'https://evil.example' } });
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
    const noOrigin = await request(port);
    assert.equal(noOrigin.headers['access-control-allow-origin'], undefined);
  });
});

describe('redirects and direct responses', () => {
  test('redirect with scheme/host/port/prefix and code; direct_response with a body', async () => {
    const p = await proxy([
      { match: { prefix: '/old/' }, redirect: { scheme_redirect: 'https', host_redirect: 'new.example', port_redirect: 8443, prefix_rewrite: '/new/', response_code: 'PERMANENT_REDIRECT' } },
      { match: { prefix: '/moved' }, redirect: { path_redirect: '/here', response_code: 'FOUND', strip_query: true } },
      { match: { prefix: '/https' }, redirect: { https_redirect: true } },
      { match: { path: '/teapot' }, direct_response: { status: 418, body: { inline_string: 'short and stout' } } },
    ], []);
    const port = p.port('out');
    const a = await request(port, { path: '/old/page?x=1', headers: { host: 'shop.example' } });
    assert.equal(a.status, 308);
    assert.equal(a.headers.location, 'https://new.example:8443/new/page?x=1');
    const b = await request(port, { path: '/moved?y=2', headers: { host: 'shop.example:8080' } });
    assert.equal(b.status, 302);
    assert.equal(b.headers.location, 'http://shop.example:8080/here');
    const c = await request(port, { path: '/https/x', headers: { host: 'shop.example:80' } });
    assert.equal(c.status, 301);
    assert.equal(c.headers.location, 'https://shop.example/https/x');
    const d = await request(port, { path: '/teapot' });
    assert.equal(d.status, 418);
    assert.equal(d.body, 'short and stout');
  });
});

describe('traffic shifting under live change', () => {
  test('weighted 100/0 → 50/50 → 0/100 over RDS while 4 callers loop: no failed request, the split follows each update', async () => {
    const V1 = 'outbound|9080|v1|reviews.default.svc.cluster.local';
    const V2 = 'outbound|9080|v2|reviews.default.svc.cluster.local';
    const v1 = await upstream((_req, res) => res.end('v1'));
    const v2 = await upstream((_req, res) => res.end('v2'));
    const table = (w1: number, w2: number) => ({
      name: 'reviews', virtual_hosts: [{ name: 'reviews', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: V1, weight: w1 }, { name: V2, weight: w2 }] } } }] }],
    });
    const clusters = [cluster(V1, [v1.port]), cluster(V2, [v2.port])];
    const listeners = [httpListener({ name: 'out', rds: 'reviews' })];
    const p = await startProxy(snapshot({ listeners, clusters, routes: [table(100, 0)] }));
    open.push(p);
    const port = p.port('out');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    let phase = 0;
    const seen = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
    const failures: string[] = [];
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const at = phase;
        try {
          const r = await request(port, { agent });
          if (r.status !== 200) failures.push(`${r.status}`);
          // Count only responses that started and ended within one phase.
          else if (at === phase) seen[at]!.set(r.body, (seen[at]!.get(r.body) ?? 0) + 1);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 300));
    await p.set(snapshot({ listeners, clusters, routes: [table(50, 50)] }, p.current));
    phase = 1;
    await new Promise((r) => setTimeout(r, 500));
    await p.set(snapshot({ listeners, clusters, routes: [table(0, 100)] }, p.current));
    phase = 2;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    agent.destroy();
    assert.deepEqual(failures, []);
    assert.equal(seen[0]!.get('v2') ?? 0, 0);
    assert.equal(seen[2]!.get('v1') ?? 0, 0);
    const half1 = seen[1]!.get('v1') ?? 0;
    const half2 = seen[1]!.get('v2') ?? 0;
    console.log(`traffic shift: phase 100/0 ${JSON.stringify([...seen[0]!])}, 50/50 ${JSON.stringify([...seen[1]!])}, 0/100 ${JSON.stringify([...seen[2]!])}`);
    assert.ok(half1 + half2 > 50, 'enough requests in the 50/50 phase');
    assert.ok(Math.abs(half1 - half2) / (half1 + half2) < 0.3, `50/50 split: ${half1}/${half2}`);
  });
});
