import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { currentWeights, evenSplit, planTrafficShift, rebalance, toYaml } from '../src/lib/traffic.ts';
import { versionsOf } from '../src/lib/mesh.ts';
import { layeredLayout, layoutGraph } from '../src/lib/graph-layout.ts';
import type { ServiceRecord, StoredResource } from '../src/lib/api-types.ts';

// The wizard's pure logic: weights that always sum to 100 and the resources it writes.

const sum = (w: number[]) => w.reduce((a, b) => a + b, 0);

const reviews: ServiceRecord = { namespace: 'default', name: 'reviews', hosts: ['reviews.default.svc.cluster.local'], ports: [{ number: 9080, protocol: 'HTTP' }], labels: {}, resourceVersion: '1' };

function stored(kind: string, name: string, spec: Record<string, unknown>, rv = '5'): StoredResource {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace: 'default', uid: 'u', resourceVersion: rv, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' }, spec };
}

describe('weights', () => {
  test('evenSplit sums to 100 for any count', () => {
    for (let n = 1; n <= 13; n++) assert.equal(sum(evenSplit(n)), 100, `n=${n}`);
    assert.deepEqual(evenSplit(3), [34, 33, 33]);
    assert.deepEqual(evenSplit(0), []);
  });

  test('rebalance keeps the total at 100 and the moved slider where it was put', () => {
    assert.deepEqual(rebalance([50, 50], 0, 80), [80, 20]);
    assert.deepEqual(rebalance([34, 33, 33], 2, 10), [46, 44, 10]);
    assert.deepEqual(rebalance([100, 0, 0], 0, 40), [40, 30, 30], 'others all at 0: spread evenly');
    assert.deepEqual(rebalance([20, 80], 1, 250), [0, 100], 'clamped to 100');
    assert.deepEqual(rebalance([20, 80], 1, -5), [100, 0], 'clamped to 0');
    assert.deepEqual(rebalance([20, 80], 0, Number.NaN), [0, 100], 'not a number counts as 0');
    assert.deepEqual(rebalance([7], 0, 3), [100]);
    // Random walk: never off 100, never negative.
    let w = evenSplit(5);
    let seed = 7;
    for (let k = 0; k < 500; k++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const i = seed % 5;
      const v = (seed >> 8) % 101;
      w = rebalance(w, i, v);
      assert.equal(sum(w), 100);
      assert.equal(w[i], v);
      assert.ok(w.every((x) => Number.isInteger(x) && x >= 0));
    }
  });
});

describe('planTrafficShift', () => {
  test('new service: a DestinationRule with a subset per version and a weighted VirtualService', () => {
    const plan = planTrafficShift({ service: reviews, versions: ['v1', 'v2'], weights: [80, 20], writeSubsets: true, resources: [] });
    assert.deepEqual(plan.existing, [undefined, undefined]);
    const [dr, vs] = plan.documents as any[];
    assert.equal(dr.kind, 'DestinationRule');
    assert.deepEqual(dr.spec, { host: 'reviews.default.svc.cluster.local', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] });
    assert.equal(vs.metadata.resourceVersion, undefined);
    assert.deepEqual(vs.spec, { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v1' }, weight: 80 }, { destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2' }, weight: 20 }] }] });
  });

  test('existing rules: names, other fields and subsets kept, resourceVersion sent; 0% versions left out', () => {
    const vsOld = stored('VirtualService', 'reviews-route', { hosts: ['reviews.default.svc.cluster.local'], exportTo: ['.'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] }, '7');
    const drOld = stored('DestinationRule', 'reviews-dr', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } }, subsets: [{ name: 'v1', labels: { version: 'v1', track: 'stable' } }, { name: 'canary', labels: { track: 'canary' } }] }, '8');
    const other = stored('VirtualService', 'ratings', { hosts: ['ratings'] });
    assert.deepEqual(currentWeights(vsOld, ['v1', 'v2']), [100, 0]);
    const plan = planTrafficShift({ service: reviews, versions: ['v1', 'v2', 'v3'], weights: [0, 100, 0], writeSubsets: true, resources: [vsOld, drOld, other] });
    const [dr, vs] = plan.documents as any[];
    assert.deepEqual(plan.existing, [drOld, vsOld]);
    assert.equal(dr.metadata.name, 'reviews-dr');
    assert.equal(dr.metadata.resourceVersion, '8');
    assert.equal(dr.spec.host, 'reviews');
    assert.deepEqual(dr.spec.trafficPolicy, { loadBalancer: { simple: 'RANDOM' } });
    assert.deepEqual(dr.spec.subsets.map((s: any) => s.name), ['v1', 'canary', 'v2', 'v3']);
    assert.deepEqual(dr.spec.subsets[0].labels, { version: 'v1', track: 'stable' }, 'an existing subset is not rewritten');
    assert.equal(vs.metadata.name, 'reviews-route');
    assert.equal(vs.metadata.resourceVersion, '7');
    assert.deepEqual(vs.spec.exportTo, ['.']);
    assert.deepEqual(vs.spec.http, [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2' }, weight: 100 }] }]);
  });

  test('without subsets only the VirtualService is written', () => {
    const plan = planTrafficShift({ service: reviews, versions: ['v1', 'v2'], weights: [50, 50], writeSubsets: false, resources: [] });
    assert.deepEqual(plan.documents.map((d) => d.kind), ['VirtualService']);
  });

  test('toYaml: multi-document, keys sorted so diffs ignore stored field order', () => {
    const y = toYaml([{ kind: 'A', apiVersion: 'v', spec: { b: 1, a: 2 } }, { kind: 'B' }]);
    assert.equal(y, 'apiVersion: v\nkind: A\nspec:\n  a: 2\n  b: 1\n---\nkind: B\n');
    assert.equal(parse(y.split('---\n')[0]!).spec.a, 2);
  });
});

describe('mesh derivations', () => {
  test('versions come from the workloads labelled app=<service> in its namespace', () => {
    const w = (name: string, ns: string, labels: Record<string, string>) => ({ namespace: ns, name, labels, serviceAccount: 'default', addresses: [], ports: {}, resourceVersion: '1' });
    const versions = versionsOf(reviews, [w('a', 'default', { app: 'reviews', version: 'v10' }), w('b', 'default', { app: 'reviews', version: 'v2' }), w('c', 'other', { app: 'reviews', version: 'v3' }), w('d', 'default', { app: 'ratings', version: 'v9' }), w('e', 'default', { app: 'reviews' })]);
    assert.deepEqual(versions, ['v2', 'v10']);
  });

});

describe('graph layout', () => {
  const random = (n: number, m: number) => {
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const ids = Array.from({ length: n }, (_, i) => `n${i}`);
    const edges = Array.from({ length: m }, () => ({ source: `n${Math.floor(rnd() * n)}`, target: `n${Math.floor(rnd() * n)}` }));
    return { ids, edges };
  };
  const overlaps = (pos: Map<string, { x: number; y: number }>) => new Set([...pos.values()].map((p) => `${p.x},${p.y}`)).size !== pos.size;

  test('small graphs (dagre): callers left of callees, no two nodes on one spot', () => {
    const pos = layoutGraph(['a', 'b', 'c', 'd'], [{ source: 'a', target: 'b' }, { source: 'b', target: 'c' }, { source: 'a', target: 'd' }]);
    assert.equal(pos.size, 4);
    assert.ok(pos.get('a')!.x < pos.get('b')!.x && pos.get('b')!.x < pos.get('c')!.x);
    assert.equal(overlaps(pos), false);
  });

  test('2,000 nodes / 4,000 edges with cycles: the linear layout places every node, acyclic parts left to right', () => {
    const { ids, edges } = random(2000, 4000);
    edges.push({ source: 'x', target: 'n1' }, { source: 'n5', target: 'n5' }); // unknown node, self loop: ignored
    const pos = layoutGraph(ids, edges);
    assert.equal(pos.size, 2000);
    assert.equal(overlaps(pos), false);
    const chain = layeredLayout(['a', 'b', 'c'], [{ source: 'c', target: 'b' }, { source: 'b', target: 'a' }, { source: 'a', target: 'c' }]);
    assert.equal(chain.size, 3, 'a pure cycle still gets positions');
    assert.equal(overlaps(chain), false);
  });
});
