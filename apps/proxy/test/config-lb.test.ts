import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TYPE_URL, type JsonObject } from '@tern/xds';
import { compileCluster } from '../src/config/compile-cluster.ts';
import { cookieToGenerate, hashString, requestHash } from '../src/config/hash.ts';
import { LbRegistry, type UpstreamHost } from '../src/config/lb.ts';
import type { ClusterConfig, HashPolicy } from '../src/config/model.ts';
import { ConfigStore } from '../src/config/store.ts';
import { assignment, edsCluster, seeded, staticCluster, V1 } from './config-fixtures.ts';

function cluster(hosts: [string, number, number?][], extra: JsonObject = {}): ClusterConfig {
  return compileCluster(staticCluster(V1, hosts, extra), undefined);
}

function count(n: number, pick: () => UpstreamHost | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = pick();
    assert.ok(h);
    out.set(h.endpoint.key, (out.get(h.endpoint.key) ?? 0) + 1);
  }
  return out;
}

const four: [string, number][] = [['10.0.0.1', 80], ['10.0.0.2', 80], ['10.0.0.3', 80], ['10.0.0.4', 80]];

describe('round robin', () => {
  it('cycles through equal-weight endpoints in order', () => {
    const lb = new LbRegistry().forCluster(cluster(four));
    const seq = Array.from({ length: 8 }, () => lb.pick()!.endpoint.address);
    assert.deepEqual(seq, ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
  });

  it('honours weights exactly over a cycle, interleaved (smooth)', () => {
    const lb = new LbRegistry().forCluster(cluster([['10.0.0.1', 80, 5], ['10.0.0.2', 80, 1], ['10.0.0.3', 80, 1]]));
    const seq = Array.from({ length: 7 }, () => lb.pick()!.endpoint.address);
    assert.equal(seq.filter((a) => a === '10.0.0.1').length, 5);
    assert.equal(seq.filter((a) => a === '10.0.0.2').length, 1);
    assert.notDeepEqual(seq.slice(0, 5), Array(5).fill('10.0.0.1'), 'picks are interleaved, not bursts');
    const c = count(7000, () => lb.pick());
    assert.deepEqual([c.get('10.0.0.1:80'), c.get('10.0.0.2:80'), c.get('10.0.0.3:80')], [5000, 1000, 1000]);
  });

  it('skips excluded and ejected endpoints; uses ejected ones only when all are ejected', () => {
    const lb = new LbRegistry().forCluster(cluster(four));
    const exclude = new Set(['10.0.0.1:80', '10.0.0.2:80']);
    const c = count(100, () => lb.pick({ exclude }));
    assert.deepEqual([...c.keys()].sort(), ['10.0.0.3:80', '10.0.0.4:80']);
    for (const h of lb.hosts) h.stats.ejected = h.endpoint.address !== '10.0.0.4';
    assert.deepEqual([...count(10, () => lb.pick()).keys()], ['10.0.0.4:80']);
    for (const h of lb.hosts) h.stats.ejected = true;
    assert.equal(count(8, () => lb.pick()).size, 4, 'all ejected: panic uses all');
    assert.equal(lb.pick({ exclude: new Set(four.map(([a, p]) => `${a}:${p}`)) }), undefined);
  });

  it('unhealthy endpoints are skipped; below the panic threshold all are used', () => {
    const json = staticCluster(V1, four);
    const eps = ((json.load_assignment as JsonObject).endpoints as JsonObject[])[0]!.lb_endpoints as JsonObject[];
    eps[0]!.health_status = 'UNHEALTHY';
    const lb = new LbRegistry().forCluster(compileCluster(json, undefined));
    assert.equal(lb.panic, false);
    assert.ok(!count(100, () => lb.pick()).has('10.0.0.1:80'));
    eps[1]!.health_status = 'DRAINING';
    eps[2]!.health_status = 'TIMEOUT';
    const panicking = new LbRegistry().forCluster(compileCluster(json, undefined));
    assert.equal(panicking.panic, true, '1 of 4 healthy is below 50%');
    assert.equal(count(100, () => panicking.pick()).size, 4);
    const noPanic = new LbRegistry().forCluster(compileCluster({ ...json, common_lb_config: { healthy_panic_threshold: { value: 0 } } }, undefined));
    assert.equal(noPanic.panic, false);
    assert.deepEqual([...count(10, () => noPanic.pick()).keys()], ['10.0.0.4:80'], 'threshold 0: only healthy hosts');
    eps[3]!.health_status = 'UNHEALTHY';
    const none = new LbRegistry().forCluster(compileCluster({ ...json, common_lb_config: { healthy_panic_threshold: { value: 0 } } }, undefined));
    assert.equal(none.pick(), undefined, 'threshold 0 and nothing healthy: no host');
  });

  it('an EDS cluster with no assignment yet has no host', () => {
    const c = compileCluster(edsCluster(V1), undefined);
    assert.equal(c.endpoints.known, false);
    assert.equal(new LbRegistry().forCluster(c).pick(), undefined);
  });
});

describe('least request', () => {
  it('prefers the idle endpoint', () => {
    const lb = new LbRegistry().forCluster(cluster(four, { lb_policy: 'LEAST_REQUEST' }));
    for (const h of lb.hosts) h.stats.activeRequests = h.endpoint.address === '10.0.0.3' ? 0 : 10;
    const random = seeded(1);
    const c = count(2000, () => lb.pick({ random }));
    // Power of two choices: the idle host wins whenever it is one of the two samples (~44%+), never loses.
    assert.ok(c.get('10.0.0.3:80')! > 2000 * 0.4, `idle got ${c.get('10.0.0.3:80')}`);
    for (const [k, v] of c) if (k !== '10.0.0.3:80') assert.ok(v < c.get('10.0.0.3:80')! / 2);
  });

  it('with two endpoints always picks the one with fewer active requests', () => {
    const lb = new LbRegistry().forCluster(cluster(four.slice(0, 2), { lb_policy: 'LEAST_REQUEST' }));
    lb.hosts[0]!.stats.activeRequests = 3;
    for (let i = 0; i < 50; i++) assert.equal(lb.pick()!.endpoint.address, '10.0.0.2');
    lb.hosts[1]!.stats.activeRequests = 5;
    assert.equal(lb.pick()!.endpoint.address, '10.0.0.1');
  });

  it('spreads idle traffic over all endpoints (ties are broken at random)', () => {
    const lb = new LbRegistry().forCluster(cluster(four.slice(0, 2), { lb_policy: 'LEAST_REQUEST' }));
    const random = seeded(3);
    const c = count(2000, () => lb.pick({ random }));
    assert.equal(c.size, 2);
    for (const v of c.values()) assert.ok(v > 800, `sequential requests to idle hosts: ${JSON.stringify([...c])}`);
  });

  it('respects weights with the active-request bias', () => {
    const lb = new LbRegistry().forCluster(cluster([['10.0.0.1', 80, 3], ['10.0.0.2', 80, 1]], { lb_policy: 'LEAST_REQUEST' }));
    const c = count(4000, () => lb.pick());
    assert.equal(c.get('10.0.0.1:80'), 3000);
    lb.hosts[0]!.stats.activeRequests = 5; // effective weight 3/6 = 0.5 < 1
    const d = count(3000, () => lb.pick());
    assert.equal(d.get('10.0.0.2:80'), 2000);
  });
});

describe('random', () => {
  it('is weighted', () => {
    const lb = new LbRegistry().forCluster(cluster([['10.0.0.1', 80, 1], ['10.0.0.2', 80, 3]], { lb_policy: 'RANDOM' }));
    const random = seeded(9);
    const c = count(10_000, () => lb.pick({ random }));
    assert.ok(Math.abs(c.get('10.0.0.2:80')! / 10_000 - 0.75) < 0.02);
  });
});

for (const policy of ['RING_HASH', 'MAGLEV'] as const) {
  describe(policy.toLowerCase(), () => {
    const keys = Array.from({ length: 1000 }, (_, i) => hashString(`user-${i}`));

    it('sends the same key to the same endpoint across 1,000 requests', () => {
      const lb = new LbRegistry().forCluster(cluster(four, { lb_policy: policy }));
      const hash = hashString('session-abc');
      const first = lb.pick({ hash })!.endpoint.key;
      for (let i = 0; i < 1000; i++) assert.equal(lb.pick({ hash })!.endpoint.key, first);
      const spread = count(1000, () => lb.pick({ hash: keys[Math.floor(Math.random() * 1000)]! }));
      assert.equal(spread.size, 4, 'different keys use every endpoint');
    });

    it('spreads keys evenly-ish and moves only about 1/4 of them when one of 4 endpoints goes', () => {
      const before = new LbRegistry().forCluster(cluster(four, { lb_policy: policy }));
      const after = new LbRegistry().forCluster(cluster(four.slice(1), { lb_policy: policy }));
      const a = keys.map((hash) => before.pick({ hash })!.endpoint.key);
      const share = a.filter((k) => k === '10.0.0.1:80').length / keys.length;
      assert.ok(share > 0.15 && share < 0.35, `removed host had ${share}`);
      const b = keys.map((hash) => after.pick({ hash })!.endpoint.key);
      const moved = a.filter((k, i) => k !== b[i]).length / keys.length;
      assert.ok(moved < share + 0.06, `moved ${moved}, removed host owned ${share}`);
      const movedFromOthers = a.filter((k, i) => k !== '10.0.0.1:80' && k !== b[i]).length / keys.length;
      assert.ok(movedFromOthers < 0.06, `keys of remaining hosts moved: ${movedFromOthers}`);
    });

    it('an excluded endpoint is skipped, deterministically', () => {
      const lb = new LbRegistry().forCluster(cluster(four, { lb_policy: policy }));
      const hash = keys[0]!;
      const home = lb.pick({ hash })!.endpoint.key;
      const alt = lb.pick({ hash, exclude: new Set([home]) })!.endpoint.key;
      assert.notEqual(alt, home);
      assert.equal(lb.pick({ hash, exclude: new Set([home]) })!.endpoint.key, alt);
    });

    it('weights change the share', () => {
      const lb = new LbRegistry().forCluster(cluster([['10.0.0.1', 80, 3], ['10.0.0.2', 80, 1]], { lb_policy: policy }));
      const share = keys.filter((hash) => lb.pick({ hash })!.endpoint.address === '10.0.0.1').length / keys.length;
      assert.ok(share > 0.65 && share < 0.85, `weight-3 host got ${share}`);
    });
  });
}

describe('hash policies', () => {
  const policies = (p: HashPolicy[]) => p;
  it('header, cookie, source ip, query parameter; terminal stops; absent inputs contribute nothing', () => {
    const h = requestHash(policies([{ kind: 'header', header: 'x-user', terminal: false }]), { headers: { 'x-user': 'alice' }, path: '/' });
    assert.equal(h, hashString('alice'));
    assert.equal(requestHash(policies([{ kind: 'header', header: 'x-user', terminal: false }]), { headers: {}, path: '/' }), undefined);
    assert.equal(requestHash(policies([{ kind: 'cookie', name: 'sid', terminal: false }]), { headers: { cookie: 'a=1; sid="xyz"; b=2' }, path: '/' }), hashString('xyz'));
    assert.equal(requestHash(policies([{ kind: 'sourceIp', terminal: false }]), { headers: {}, path: '/', sourceIp: '10.1.2.3' }), hashString('10.1.2.3'));
    assert.equal(requestHash(policies([{ kind: 'queryParameter', name: 'u', terminal: false }]), { headers: {}, path: '/x?u=bob' }), hashString('bob'));
    const both = requestHash(policies([{ kind: 'header', header: 'a', terminal: false }, { kind: 'header', header: 'b', terminal: false }]), { headers: { a: '1', b: '2' }, path: '/' });
    assert.notEqual(both, hashString('1'));
    const terminal = requestHash(policies([{ kind: 'header', header: 'a', terminal: true }, { kind: 'header', header: 'b', terminal: false }]), { headers: { a: '1', b: '2' }, path: '/' });
    assert.equal(terminal, hashString('1'));
  });
});

describe('cookie generation', () => {
  it('a cookie policy with a ttl and no cookie yields the cookie to set; none when present or without ttl', () => {
    const policy: HashPolicy[] = [{ kind: 'cookie', name: 'session', ttlMs: 60_000, path: '/', terminal: false }];
    const c = cookieToGenerate(policy, {}, '10.0.0.1:80');
    assert.deepEqual(c && { ...c, value: typeof c.value }, { name: 'session', value: 'string', ttlMs: 60_000, path: '/', cookieHeader: `session=${c!.value}` });
    assert.equal(cookieToGenerate(policy, { cookie: 'a=1' }, '10.0.0.1:80')!.cookieHeader, `a=1; session=${c!.value}`);
    assert.equal(cookieToGenerate(policy, {}, '10.0.0.1:80')!.value, c!.value, 'stable per downstream');
    assert.notEqual(cookieToGenerate(policy, {}, '10.0.0.2:80')!.value, c!.value);
    assert.equal(cookieToGenerate(policy, { cookie: 'session=abc' }, '10.0.0.1:80'), undefined);
    assert.equal(cookieToGenerate([{ kind: 'cookie', name: 'session', terminal: false }], {}, '10.0.0.1:80'), undefined);
  });
});

describe('runtime state across snapshot swaps', () => {
  it('least-request counters survive unrelated updates and endpoint changes of other endpoints', () => {
    const store = new ConfigStore();
    store.replaceType(TYPE_URL.cluster, new Map([[V1, { json: edsCluster(V1, { lb_policy: 'LEAST_REQUEST' }) }], ['other', { json: staticCluster('other', [['10.9.9.9', 80]]) }]]), '1');
    store.replaceType(TYPE_URL.endpoint, new Map([[V1, { json: assignment(V1, [['10.0.0.1', 9080], ['10.0.0.2', 9080]]) }]]), '1');
    const lb1 = store.loadBalancer(V1)!;
    lb1.hosts[0]!.stats.activeRequests = 7;
    // An unrelated cluster changes: same compiled cluster object, same load balancer.
    store.replaceType(TYPE_URL.cluster, new Map([[V1, { json: edsCluster(V1, { lb_policy: 'LEAST_REQUEST' }) }], ['other', { json: staticCluster('other', [['10.9.9.8', 80]]) }]]), '2');
    assert.equal(store.loadBalancer(V1), lb1);
    // The endpoint set changes: a new balancer, but 10.0.0.1 keeps its counter.
    store.replaceType(TYPE_URL.endpoint, new Map([[V1, { json: assignment(V1, [['10.0.0.1', 9080], ['10.0.0.3', 9080]]) }]]), '2');
    const lb2 = store.loadBalancer(V1)!;
    assert.notEqual(lb2, lb1);
    assert.equal(lb2.hosts.find((h) => h.endpoint.address === '10.0.0.1')!.stats.activeRequests, 7);
    assert.equal(lb2.hosts.find((h) => h.endpoint.address === '10.0.0.3')!.stats.activeRequests, 0);
    assert.equal(store.lb.statsFor(V1, '10.0.0.2:9080'), undefined, 'stats of removed endpoints are dropped');
  });
});
