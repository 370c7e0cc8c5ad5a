import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyStatusView } from '@tern/shared';
import { prepareMesh } from '../src/compile/prepare.ts';
import type { PrepareMesh, PreparedMesh, ProxyIdentity } from '../src/compile/types.ts';
import { ConvergenceTracker } from '../src/xds/convergence.ts';
import { MeshTracker, type MeshUpdate } from '../src/xds/mesh.ts';
import { proxyIdentityFromNode } from '../src/compile/node.ts';
import { XdsServer } from '../src/xds/server.ts';
import { ProxyStatusStore } from '../src/xds/status-store.ts';
import { startTestApi, type TestApi } from './helpers.ts';
import { SotwClient, TYPE_URL, eventually, node } from './xds-fixtures.ts';

// The mesh tracker's debounce with a change prepared ahead of its push, and status writes that
// yield to a push in flight — against a real database and change feed.

let api: TestApi;
let n = 0;

before(async () => {
  api = await startTestApi();
});
after(async () => {
  await api?.close();
});

const COMPILE = { domainSuffix: 'cluster.local', trustDomain: 'cluster.local' };

async function dbRevision(): Promise<string> {
  const row = await api.app.db.prisma.revisionCounter.findUnique({ where: { id: 1 } });
  return (row?.value ?? 0n).toString();
}

async function addService(): Promise<string> {
  const name = `svc-${++n}`;
  const r = await api.rest('PUT', `/api/v1/registry/services/default/${name}`, { namespace: 'default', name, ports: [{ number: 80, protocol: 'HTTP' }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return name;
}

/** A tracker whose preparations (and failures to order) are recorded. */
async function tracker(debounceMs: number, opts: { failFirst?: boolean } = {}) {
  const prepared: { revision: string; mesh: PreparedMesh; updatesSoFar: number }[] = [];
  const updates: MeshUpdate[] = [];
  let calls = 0;
  const prepare: PrepareMesh = (mesh, revision, options) => {
    calls++;
    // The first call is the start's; the second the first change's.
    if (opts.failFirst && calls === 2) throw new Error('prepare failed on purpose');
    const p = prepareMesh(mesh, revision, options);
    prepared.push({ revision, mesh: p, updatesSoFar: updates.length });
    return p;
  };
  const t = new MeshTracker(api.app.db.prisma, api.app.changes, prepare, { debounceMs, debounceMaxMs: Math.max(debounceMs * 4, 5000), compile: COMPILE });
  t.onUpdate((u) => updates.push(u));
  await t.start();
  return { t, prepared, updates };
}

describe('mesh tracker', () => {
  test('the first change of a batch is read and prepared while the debounce runs, before any push', async () => {
    const { t, prepared, updates } = await tracker(60_000);
    try {
      await addService();
      const rev = await dbRevision();
      await eventually(() => prepared.some((p) => p.revision === rev), 10_000, 'the change to be prepared ahead');
      assert.equal(updates.length, 0, 'nothing is pushed before the quiet period ends');
      assert.ok(prepared.find((p) => p.revision === rev)!.mesh.compileFor, 'a prepared mesh');
      assert.notEqual(t.meshRevision, rev, 'the prepared revision is not published yet');
    } finally {
      await t.stop();
    }
  });

  test('a single change: prepared once, and the push carries that very preparation', async () => {
    const { t, prepared, updates } = await tracker(300);
    try {
      await addService();
      const rev = await dbRevision();
      await eventually(() => updates.some((u) => u.revision === rev), 10_000, 'the push');
      const forRev = prepared.filter((p) => p.revision === rev);
      assert.equal(forRev.length, 1, 'prepared exactly once');
      assert.equal(forRev[0]!.updatesSoFar, 0, 'prepared before the push');
      const u = updates.find((x) => x.revision === rev)!;
      assert.equal(u.prepared, forRev[0]!.mesh);
      assert.equal(t.meshRevision, rev);
    } finally {
      await t.stop();
    }
  });

  test('a burst: one push of the last revision with every change in it, at most one extra preparation', async () => {
    const { t, prepared, updates } = await tracker(1500);
    try {
      const start = prepared.length;
      const names = [await addService(), await addService(), await addService()];
      const rev = await dbRevision();
      await eventually(() => updates.some((u) => u.revision === rev), 15_000, 'the push');
      assert.equal(updates.length, 1, `one push for the burst, got revisions ${updates.map((u) => u.revision).join(', ')}`);
      assert.ok(prepared.length - start <= 2, `prepared ${prepared.length - start} times`);
      const client: ProxyIdentity = { id: 'p', namespace: 'default', kind: 'sidecar', labels: {}, upstreams: [], appPorts: {}, interception: 'NONE', outboundPort: 15001, inboundPort: 15006, metadata: {} };
      const hosts = JSON.stringify([...updates[0]!.prepared.compileFor(client).clusters.keys()]);
      for (const name of names) assert.match(hosts, new RegExp(`${name}\\.default\\.svc\\.cluster\\.local`), `${name} in the pushed mesh`);
    } finally {
      await t.stop();
    }
  });

  test('a failure preparing ahead: the push prepares it itself', async () => {
    const { t, prepared, updates } = await tracker(300, { failFirst: true });
    try {
      await addService();
      const rev = await dbRevision();
      await eventually(() => updates.some((u) => u.revision === rev), 10_000, 'the push');
      assert.equal(prepared.filter((p) => p.revision === rev).length, 1, 'prepared by the push');
      assert.equal(t.meshRevision, rev);
    } finally {
      await t.stop();
    }
  });
});

describe('ADS server', () => {
  test('compiles for the proxies a change affects while the debounce runs, and pushes from those results', async () => {
    // Which proxies the prepared meshes compiled for.
    const compiled: { revision: string; proxy: string }[] = [];
    const prepare: PrepareMesh = (mesh, revision, options) => {
      const p = prepareMesh(mesh, revision, options);
      const compileFor = p.compileFor.bind(p);
      p.compileFor = (proxy) => {
        compiled.push({ revision, proxy: proxy.id });
        return compileFor(proxy);
      };
      return p;
    };
    const server = new XdsServer(api.app.db.prisma, api.app.changes, { prepareMesh: prepare, proxyIdentityFromNode }, { replicaId: 'warm-test', compile: COMPILE, debounceMs: 800, debounceMaxMs: 5000 });
    const address = await server.start('127.0.0.1', 0);
    const client = new SotwClient(address);
    try {
      client.send({ node: node('warm-1', { NAMESPACE: 'default' }), type_url: TYPE_URL.cluster });
      client.ack(await client.next(TYPE_URL.cluster));
      // Listeners run in the order they were added: the server's (warming) before this one.
      const warmed: { revision: string; proxy: boolean }[] = [];
      server.mesh.onStaged((next) => warmed.push({ revision: next.revision, proxy: compiled.some((c) => c.revision === next.revision && c.proxy === 'warm-1') }));
      await addService();
      const rev = await dbRevision();
      const res = await client.next(TYPE_URL.cluster, 10_000);
      assert.match(JSON.stringify(res.resources.map((r) => r.value.toString('latin1'))), new RegExp(`svc-${n}\\.default`), 'the new service is pushed');
      assert.deepEqual(warmed, [{ revision: rev, proxy: true }], 'prepared ahead, and compiled for the proxy then');
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('proxy status writes and pushes in flight', () => {
  const view = (id: string): ProxyStatusView => {
    const type = { status: 'SYNCED' as const, sentVersion: 'v', sentNonce: '1', sentAt: null, resourceCount: 0, ackedVersion: 'v', ackedAt: null, nack: null };
    return {
      id,
      namespace: 'default',
      workload: null,
      kind: 'sidecar',
      protocol: 'sotw',
      replica: 'hold-test',
      connectedSince: new Date().toISOString(),
      status: 'SYNCED',
      meshRevision: '1',
      convergedRevision: '1',
      types: { clusters: { type: 'CDS', ...type }, endpoints: { type: 'EDS', ...type }, listeners: { type: 'LDS', ...type }, routes: { type: 'RDS', ...type } },
      lastNack: null,
      updatedAt: new Date().toISOString(),
    };
  };
  const stored = async (id: string) => (await api.app.db.prisma.proxyStatus.findUnique({ where: { proxyId: id } })) !== null;

  test('a due flush waits while a push is in flight, and goes out when it settles', async () => {
    let busy = true;
    const store = new ProxyStatusStore(api.app.db.prisma, { replicaId: 'hold-test', flushMs: 1000, busy: () => busy });
    store.start();
    try {
      store.markDirty('held-1', () => view('held-1'));
      // Past the flush's due time, well within the hold (another flushMs).
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal(await stored('held-1'), false, 'held while busy');
      busy = false;
      await eventually(() => stored('held-1'), 5000, 'the held row to be written');
    } finally {
      await store.stop();
    }
  });

  test('a push that never settles holds a flush back for one more interval only', async () => {
    const store = new ProxyStatusStore(api.app.db.prisma, { replicaId: 'hold-test', flushMs: 300, busy: () => true });
    store.start();
    try {
      store.markDirty('held-2', () => view('held-2'));
      await eventually(() => stored('held-2'), 5000, 'the row to be written despite the push');
    } finally {
      await store.stop();
    }
  });

  test('convergence: a push awaiting ACKs is in flight until answered, and not once it is old', () => {
    const c = new ConvergenceTracker();
    assert.equal(c.inFlight(2000), false);
    c.begin('5', Date.now(), new Map([[1, [{ type: 'rds', nonce: '3' }]]]));
    assert.equal(c.inFlight(2000), true);
    c.ack(1, 'rds', '3');
    assert.equal(c.inFlight(2000), false);
    c.begin('6', Date.now() - 5000, new Map([[2, [{ type: 'rds', nonce: '4' }]]]));
    assert.equal(c.inFlight(2000), false, 'a push older than the window does not count');
  });
});
