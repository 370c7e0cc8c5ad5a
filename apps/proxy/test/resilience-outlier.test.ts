// Outlier detection (issue 4 item 5): ejection, growth of the ejection time, max_ejection_percent,
// enforcement, local-origin errors, success rate, panic, and the admin view, through the real data
// plane on loopback and (for the clock-driven rules) the detector with a controlled clock.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import type { JsonObject } from '@tern/xds';
import { startAdmin, type AdminServer } from '../src/admin/server.ts';
import { LbRegistry, type UpstreamHost } from '../src/config/lb.ts';
import type { ClusterConfig } from '../src/config/model.ts';
import { OutlierRegistry } from '../src/dataplane/resilience/outlier.ts';
import { cluster, eventually, httpListener, httpUpstream, request, routeTo, snapshot, startProxy, tcpListener, type TestProxy, type Upstream } from './dataplane-helpers.ts';

function outlierCluster(name: string, ports: number[], od: JsonObject, extra: JsonObject = {}): JsonObject {
  return { ...cluster(name, ports), outlier_detection: od, ...extra };
}

/** An upstream answering `status` (and its port in the body). */
async function statusUpstream(status: () => number): Promise<Upstream> {
  const u: Upstream = await httpUpstream((_req, res) => {
    res.statusCode = status();
    res.end(String(u.port));
  });
  return u;
}

function withAdmin(proxy: TestProxy): Promise<AdminServer> {
  return startAdmin({ engine: proxy.engine, listeners: proxy.listeners, snapshot: () => proxy.current, ready: () => true, draining: () => false, drain: () => {} }, '127.0.0.1', 0);
}

async function text(port: number, path: string): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}${path}`)).text();
}

function hostOf(proxy: TestProxy, name: string, port: number): UpstreamHost {
  return proxy.engine.lb.forCluster(proxy.current.clusters.get(name)!).hosts.find((h) => h.endpoint.port === port)!;
}

describe('outlier detection through the proxy', () => {
  test('one of three endpoints returns 500s: ejected after consecutive_5xx, then every request succeeds; /clusters and stats show it', async () => {
    const good1 = await statusUpstream(() => 200);
    const good2 = await statusUpstream(() => 200);
    const bad = await statusUpstream(() => 500);
    // A long ejection: the measurement below must not straddle the host's return.
    const od = { consecutive_5xx: 3, interval: '10s', base_ejection_time: '60s', max_ejection_percent: 100 };
    const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'h', routes: routeTo('svc') })], clusters: [outlierCluster('svc', [good1.port, good2.port, bad.port], od)] }));
    const admin = await withAdmin(proxy);
    try {
      const port = proxy.port('h');
      const host = hostOf(proxy, 'svc', bad.port);
      // Round robin: the bad endpoint gets every third request; the third 500 in a row ejects it.
      let failures = 0;
      for (let i = 0; i < 9; i++) if ((await request(port, { agent: false })).status === 500) failures++;
      assert.equal(failures, 3, 'exactly consecutive_5xx failures before the ejection');
      assert.equal(host.stats.ejected, true);
      const detector = proxy.engine.outliers.get('svc')!;
      assert.equal(detector.counters.ejections_enforced_consecutive_5xx, 1);
      assert.equal(detector.counters.ejections_total, 1);

      const clusters = await text(admin.port, '/clusters');
      assert.match(clusters, new RegExp(`^svc::127\\.0\\.0\\.1:${bad.port}::health_flags::/failed_outlier_check$`, 'm'));
      assert.match(clusters, new RegExp(`^svc::127\\.0\\.0\\.1:${good1.port}::health_flags::healthy$`, 'm'));
      const json = JSON.parse(await text(admin.port, '/clusters?format=json')) as { cluster_statuses: { name: string; host_statuses: { address: { socket_address: { port_value: number } }; health_status: { failed_outlier_check: boolean } }[] }[] };
      const statuses = json.cluster_statuses.find((c) => c.name === 'svc')!.host_statuses;
      assert.equal(statuses.find((h) => h.address.socket_address.port_value === bad.port)!.health_status.failed_outlier_check, true);
      assert.match(await text(admin.port, '/stats/prometheus'), /^envoy_cluster_outlier_detection_ejections_active\{cluster_name="svc"\} 1$/m);
      assert.match(await text(admin.port, '/stats'), /^cluster\.svc\.outlier_detection\.ejections_total: 1$/m);

      // After the ejection: no request fails. This route has no retry policy, so the three
      // failures above are the price of detection (see the test with retries).
      const badBefore = bad.requests.length;
      let ok = 0;
      for (let b = 0; b < 30; b++) ok += (await Promise.all(Array.from({ length: 10 }, () => request(port, { agent: false })))).filter((r) => r.status === 200).length;
      assert.ok(ok / 300 >= 0.999, `success ${ok}/300 after the ejection`);
      assert.equal(ok, 300);
      assert.equal(bad.requests.length, badBefore, 'the ejected host got no request');
      assert.equal(host.stats.ejected, true);
    } finally {
      await admin.close();
      await proxy.close();
      await Promise.all([good1.close(), good2.close(), bad.close()]);
    }
  });

  test('an ejected host returns after base_ejection_time (at an interval sweep) and serves again', async () => {
    let badStatus = 500;
    const good = await statusUpstream(() => 200);
    const bad = await statusUpstream(() => badStatus);
    const od = { consecutive_5xx: 2, interval: '0.05s', base_ejection_time: '0.3s', max_ejection_percent: 100 };
    const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'h', routes: routeTo('svc') })], clusters: [outlierCluster('svc', [good.port, bad.port], od)] }));
    const admin = await withAdmin(proxy);
    try {
      const host = hostOf(proxy, 'svc', bad.port);
      const t0 = Date.now();
      for (let i = 0; i < 4; i++) await request(proxy.port('h'), { agent: false });
      const t1 = Date.now();
      assert.equal(host.stats.ejected, true);
      badStatus = 200;
      // Ejected for base_ejection_time × 1 from the moment of detection (between t0 and t1).
      assert.ok(host.stats.ejectedUntilMs >= t0 + 300 && host.stats.ejectedUntilMs <= t1 + 300, 'ejected for 300 ms');
      await eventually(() => !host.stats.ejected, 5000);
      assert.ok(Date.now() >= host.stats.ejectedUntilMs, 'not before its time');
      const before = bad.requests.length;
      for (let i = 0; i < 4; i++) assert.equal((await request(proxy.port('h'), { agent: false })).status, 200);
      assert.equal(bad.requests.length, before + 2, 'back in the rotation');
      assert.match(await text(admin.port, '/clusters'), new RegExp(`^svc::127\\.0\\.0\\.1:${bad.port}::health_flags::healthy$`, 'm'));
      assert.match(await text(admin.port, '/stats/prometheus'), /^envoy_cluster_outlier_detection_ejections_active\{cluster_name="svc"\} 0$/m);
      assert.equal(proxy.engine.outliers.get('svc')!.counters.ejections_total, 1);
    } finally {
      await admin.close();
      await proxy.close();
      await Promise.all([good.close(), bad.close()]);
    }
  });

  test('with retries (retry_on 5xx, previous_hosts): callers see no failure at all, before or after the ejection', async () => {
    const good1 = await statusUpstream(() => 200);
    const good2 = await statusUpstream(() => 200);
    const bad = await statusUpstream(() => 500);
    const od = { consecutive_5xx: 3, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 };
    const retry = { retry_policy: { retry_on: '5xx', num_retries: 2, retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }] } };
    const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'h', routes: routeTo('svc', retry) })], clusters: [outlierCluster('svc', [good1.port, good2.port, bad.port], od)] }));
    try {
      let ok = 0;
      let sent = 0;
      let badAtEjection = -1;
      for (let b = 0; b < 30; b++) {
        const batch = await Promise.all(Array.from({ length: 10 }, () => request(proxy.port('h'), { agent: false })));
        sent += batch.length;
        ok += batch.filter((r) => r.status === 200).length;
        if (badAtEjection < 0 && hostOf(proxy, 'svc', bad.port).stats.ejected) badAtEjection = bad.requests.length;
      }
      assert.ok(ok / sent >= 0.999, `success ${ok}/${sent}`);
      assert.ok(badAtEjection >= 3 && badAtEjection <= 10, `the bad host got ${badAtEjection} requests before its ejection`);
      assert.equal(bad.requests.length, badAtEjection, 'none after it');
      assert.equal(good1.requests.length + good2.requests.length, sent, 'every request was served by a good host');
    } finally {
      await proxy.close();
      await Promise.all([good1.close(), good2.close(), bad.close()]);
    }
  });

  test('max_ejection_percent: with two bad endpoints of three and 50%, only one is ejected (ejections_overflow)', async () => {
    const good = await statusUpstream(() => 200);
    const bad1 = await statusUpstream(() => 503);
    const bad2 = await statusUpstream(() => 503);
    const od = { consecutive_5xx: 2, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 50 };
    const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'h', routes: routeTo('svc') })], clusters: [outlierCluster('svc', [good.port, bad1.port, bad2.port], od)] }));
    try {
      for (let i = 0; i < 30; i++) await request(proxy.port('h'), { agent: false });
      const ejected = [bad1.port, bad2.port].filter((p) => hostOf(proxy, 'svc', p).stats.ejected);
      assert.equal(ejected.length, 1, 'one of three is 33% (allowed); two would be 67%');
      const d = proxy.engine.outliers.get('svc')!;
      assert.ok(d.counters.ejections_overflow >= 1);
      assert.equal(d.counters.ejections_active, 1);
      assert.equal(proxy.engine.lb.forCluster(proxy.current.clusters.get('svc')!).panic, false);
    } finally {
      await proxy.close();
      await Promise.all([good.close(), bad1.close(), bad2.close()]);
    }
  });

  test('panic: when the non-ejected share falls below healthy_panic_threshold, every host gets traffic again', async () => {
    const good = await statusUpstream(() => 200);
    const bad1 = await statusUpstream(() => 503);
    const bad2 = await statusUpstream(() => 503);
    const od = { consecutive_5xx: 1, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 };
    const make = (threshold?: number) => outlierCluster('svc', [good.port, bad1.port, bad2.port], od, threshold === undefined ? {} : { common_lb_config: { healthy_panic_threshold: { value: threshold } } });
    const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'h', routes: routeTo('svc') })], clusters: [make()] }));
    try {
      for (let i = 0; i < 10 && !(hostOf(proxy, 'svc', bad1.port).stats.ejected && hostOf(proxy, 'svc', bad2.port).stats.ejected); i++) await request(proxy.port('h'), { agent: false });
      const lb = () => proxy.engine.lb.forCluster(proxy.current.clusters.get('svc')!);
      assert.deepEqual([bad1.port, bad2.port].map((p) => hostOf(proxy, 'svc', p).stats.ejected), [true, true]);
      assert.equal(lb().panic, true, '1 healthy of 3 is below the default 50%');
      const before = [bad1.requests.length, bad2.requests.length];
      for (let i = 0; i < 9; i++) await request(proxy.port('h'), { agent: false });
      assert.ok(bad1.requests.length > before[0]! && bad2.requests.length > before[1]!, 'panic: ejected hosts are picked too');

      // healthy_panic_threshold 0 disables panic: only the healthy host is used.
      await proxy.set(snapshot({ listeners: [httpListener({ name: 'h', routes: routeTo('svc') })], clusters: [make(0)] }, proxy.current));
      assert.equal(lb().panic, false);
      const after = [bad1.requests.length, bad2.requests.length, good.requests.length];
      for (let i = 0; i < 9; i++) assert.equal((await request(proxy.port('h'), { agent: false })).status, 200);
      assert.deepEqual([bad1.requests.length, bad2.requests.length], after.slice(0, 2), 'ejection state survived the snapshot');
      assert.equal(good.requests.length, after[2]! + 9);
    } finally {
      await proxy.close();
      await Promise.all([good.close(), bad1.close(), bad2.close()]);
    }
  });

  test('local-origin failures: connect failures eject with split_external_local_origin_errors (consecutive_local_origin_failure), and count as 5xx without it', async () => {
    const good = await statusUpstream(() => 200);
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadPort = (dead.address() as net.AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r())); // nothing listens there now: ECONNREFUSED
    const split = { consecutive_5xx: 100, consecutive_local_origin_failure: 2, split_external_local_origin_errors: true, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 };
    const mapped = { consecutive_5xx: 2, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 };
    const proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'a', routes: routeTo('split', {}, ['*'], 'ra') }), httpListener({ name: 'b', routes: routeTo('mapped', {}, ['*'], 'rb') }), tcpListener('t', 'tcp')],
      clusters: [outlierCluster('split', [good.port, deadPort], split), outlierCluster('mapped', [good.port, deadPort], mapped), outlierCluster('tcp', [good.port, deadPort], mapped)],
    }));
    try {
      for (const [listener, name, counter] of [['a', 'split', 'ejections_enforced_consecutive_local_origin_failure'], ['b', 'mapped', 'ejections_enforced_consecutive_5xx']] as const) {
        const statuses: number[] = [];
        for (let i = 0; i < 4; i++) statuses.push((await request(proxy.port(listener), { agent: false })).status);
        assert.deepEqual(statuses.sort(), [200, 200, 503, 503], `${name}: two connect failures, then ejected`);
        assert.equal(hostOf(proxy, name, deadPort).stats.ejected, true, name);
        assert.equal(proxy.engine.outliers.get(name)!.counters[counter], 1, name);
        for (let i = 0; i < 4; i++) assert.equal((await request(proxy.port(listener), { agent: false })).status, 200);
      }
      // TCP proxy: connect failures are reported too.
      const attempt = () => new Promise<void>((resolve) => {
        const s = net.connect(proxy.port('t'), '127.0.0.1');
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.on('connect', () => setTimeout(() => s.destroy(), 30));
      });
      for (let i = 0; i < 4; i++) await attempt();
      await eventually(() => hostOf(proxy, 'tcp', deadPort).stats.ejected);
    } finally {
      await proxy.close();
      await good.close();
    }
  });
});

describe('outlier detector rules (controlled clock)', () => {
  function setup(od: JsonObject, ports = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], extra: JsonObject = {}) {
    const snap = snapshot({ clusters: [{ ...cluster('c', ports), outlier_detection: { interval: '1s', ...od }, ...extra }] });
    const c: ClusterConfig = snap.clusters.get('c')!;
    const lb = new LbRegistry();
    const clock = { now: 1_000_000, random: 0 };
    const reg = new OutlierRegistry(lb, () => clock.now, () => clock.random);
    const hosts = lb.forCluster(c).hosts;
    const fail = (h: UpstreamHost, n: number, status: number | 'connect_failed' | 'timeout' = 500) => {
      for (let i = 0; i < n; i++) reg.report(c, h, status);
    };
    return { c, lb, reg, hosts, clock, fail, sweep: () => reg.get('c')!.sweep(), counters: () => reg.get('c')!.counters };
  }

  test('the ejection time grows with each ejection (base × n), is capped by max_ejection_time, and decays while healthy', () => {
    const t = setup({ consecutive_5xx: 2, base_ejection_time: '10s', max_ejection_time: '25s', max_ejection_percent: 100 });
    const h = t.hosts[0]!;
    const ejectFor = () => {
      const from = t.clock.now;
      t.fail(h, 2);
      assert.equal(h.stats.ejected, true);
      return h.stats.ejectedUntilMs - from;
    };
    const returnHost = () => {
      t.clock.now = h.stats.ejectedUntilMs - 1;
      t.sweep();
      assert.equal(h.stats.ejected, true, 'not before its time');
      t.clock.now += 1;
      t.sweep();
      assert.equal(h.stats.ejected, false);
    };
    assert.equal(ejectFor(), 10_000);
    returnHost();
    assert.equal(ejectFor(), 20_000, 'second ejection: 2 × base');
    returnHost();
    assert.equal(ejectFor(), 25_000, 'third: capped by max_ejection_time');
    returnHost();
    // Healthy intervals bring the multiplier down again.
    for (let i = 0; i < 5; i++) {
      t.clock.now += 1000;
      t.sweep();
    }
    assert.equal(ejectFor(), 10_000, 'after healthy intervals the ejection is short again');
    assert.equal(t.counters().ejections_total, 4);
  });

  test('a success in between resets consecutive_5xx; max_ejection_percent 10 of 10 hosts allows one ejection; enforcing 0 detects without ejecting', () => {
    const t = setup({ consecutive_5xx: 3, max_ejection_percent: 10 });
    const [a, b] = t.hosts;
    t.fail(a!, 2);
    t.reg.report(t.c, a!, 200);
    t.fail(a!, 2);
    assert.equal(a!.stats.ejected, false, 'never three in a row');
    t.fail(a!, 1);
    assert.equal(a!.stats.ejected, true);
    t.fail(b!, 3);
    assert.equal(b!.stats.ejected, false, '2 of 10 is 20% > 10%');
    assert.equal(t.counters().ejections_overflow, 1);

    const g = setup({ consecutive_gateway_failure: 2, consecutive_5xx: 100 });
    g.fail(g.hosts[0]!, 3, 503);
    assert.equal(g.hosts[0]!.stats.ejected, false, 'enforcing_consecutive_gateway_failure defaults to 0');
    assert.equal(g.counters().ejections_detected_consecutive_gateway_failure, 1);
    const g2 = setup({ consecutive_gateway_failure: 2, consecutive_5xx: 100, enforcing_consecutive_gateway_failure: 100 });
    g2.fail(g2.hosts[0]!, 1, 502);
    g2.fail(g2.hosts[0]!, 1, 500);
    g2.fail(g2.hosts[0]!, 1, 504);
    assert.equal(g2.hosts[0]!.stats.ejected, false, 'a 500 breaks a gateway-failure run');
    g2.fail(g2.hosts[0]!, 1, 'timeout');
    assert.equal(g2.hosts[0]!.stats.ejected, true, 'a timeout counts as 504 without split');

    const e = setup({ consecutive_5xx: 1, enforcing_consecutive_5xx: 30, max_ejection_percent: 100 });
    e.clock.random = 0.5; // 50 ≥ 30: not enforced
    e.fail(e.hosts[0]!, 1);
    assert.equal(e.hosts[0]!.stats.ejected, false);
    e.clock.random = 0.2;
    e.fail(e.hosts[0]!, 1);
    assert.equal(e.hosts[0]!.stats.ejected, true);
  });

  test('success rate: at the interval, a host far below the others (with enough requests) is ejected', () => {
    const t = setup({ consecutive_5xx: 1000, success_rate_minimum_hosts: 5, success_rate_request_volume: 50, max_ejection_percent: 100 }, [1, 2, 3, 4, 5, 6]);
    t.hosts.forEach((h, i) => {
      for (let k = 0; k < 100; k++) t.reg.report(t.c, h, i === 5 ? (k % 2 === 0 ? 500 : 200) : k === 0 ? 500 : 200);
    });
    t.sweep();
    assert.deepEqual(t.hosts.map((h) => h.stats.ejected), [false, false, false, false, false, true]);
    assert.equal(t.counters().ejections_enforced_success_rate, 1);
    // Too few requests: no verdict.
    const few = setup({ consecutive_5xx: 1000, success_rate_minimum_hosts: 5, success_rate_request_volume: 50 }, [1, 2, 3, 4, 5, 6]);
    few.hosts.forEach((h, i) => {
      for (let k = 0; k < 40; k++) few.reg.report(few.c, h, i === 5 ? 500 : 200);
    });
    few.sweep();
    assert.ok(few.hosts.every((h) => !h.stats.ejected));
  });

  test('ejections rebuild the candidates once; a cluster without outlier_detection ignores results', () => {
    const t = setup({ consecutive_5xx: 1, max_ejection_percent: 100 }, [1, 2, 3, 4]);
    const lb = t.lb.forCluster(t.c);
    assert.equal(lb.candidates.length, 4);
    t.fail(t.hosts[1]!, 1);
    assert.deepEqual(lb.candidates.map((h) => h.endpoint.port), [1, 3, 4]);
    assert.equal(lb.panic, false);
    const picked = new Set(Array.from({ length: 12 }, () => lb.pick()!.endpoint.port));
    assert.deepEqual([...picked].sort(), [1, 3, 4]);
    t.fail(t.hosts[2]!, 1);
    t.fail(t.hosts[3]!, 1);
    assert.equal(lb.panic, true, '1 of 4 healthy');
    assert.equal(lb.candidates.length, 4);
    const plain = snapshot({ clusters: [cluster('p', [1, 2])] }).clusters.get('p')!;
    const h = t.lb.forCluster(plain).hosts[0]!;
    for (let i = 0; i < 10; i++) t.reg.report(plain, h, 500);
    assert.equal(h.stats.ejected, false);
    assert.equal(t.reg.get('p'), undefined);
    t.reg.close();
  });
});

describe('outlier detection across snapshots', () => {
  test('an ejected endpoint removed by a new snapshot no longer counts against max_ejection_percent', () => {
    const lb = new LbRegistry();
    const reg = new OutlierRegistry(lb, () => 0, () => 0);
    const od = { consecutive_5xx: 1, interval: '1s', base_ejection_time: '30s', max_ejection_percent: 50 };
    const v1 = snapshot({ clusters: [{ ...cluster('c', [1, 2, 3, 4]), outlier_detection: od }] });
    const c1 = v1.clusters.get('c')!;
    const [h1, h2] = lb.forCluster(c1).hosts;
    reg.report(c1, h1!, 500);
    reg.report(c1, h2!, 500);
    assert.equal(reg.get('c')!.activeEjections(), 2, '2 of 4 = 50%');
    // Port 1 leaves: one ejection (port 2) of three hosts is 33%; a second would be 67%.
    const v2 = snapshot({ clusters: [{ ...cluster('c', [2, 3, 4]), outlier_detection: od }] }, v1);
    reg.retain(v2.clusters);
    lb.retain(v2);
    const c2 = v2.clusters.get('c')!;
    assert.equal(reg.get('c')!.activeEjections(), 1);
    const hosts = lb.forCluster(c2).hosts;
    assert.equal(hosts.find((h) => h.endpoint.port === 2)!.stats.ejected, true, 'ejection survives the snapshot');
    reg.report(c2, hosts.find((h) => h.endpoint.port === 3)!, 500);
    assert.equal(hosts.find((h) => h.endpoint.port === 3)!.stats.ejected, false);
    assert.equal(reg.get('c')!.counters.ejections_overflow, 1);
    reg.close();
  });
});
