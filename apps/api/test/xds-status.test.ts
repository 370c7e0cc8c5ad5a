import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { startTestApi, type TestApi } from './helpers.ts';
import { certExpiry } from '../src/cli/main.ts';
import { SotwClient, TYPE_URL, eventually, meshCaughtUp, node } from './xds-fixtures.ts';
import { runTern, type TernRun } from './tern-cli.ts';

// Proxy status across the API, the ProxyStatus table and the CLI.

let api: TestApi;
let home: string;
const clients: SotwClient[] = [];

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-cli-'));
  await api.rest('PUT', '/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP' }] });
  await meshCaughtUp(api);
});
after(async () => {
  for (const c of clients) c.close();
  await api?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

function tern(args: string[]): Promise<TernRun> {
  return runTern(args, { server: api.url, token: api.token, config: path.join(home, 'config.json') });
}

async function proxy(id: string, metadata: Record<string, string>, opts: { nackClusters?: string } = {}) {
  const c = new SotwClient(api.xdsAddress!);
  clients.push(c);
  c.send({ node: node(id, metadata), type_url: TYPE_URL.cluster });
  const cds = await c.next(TYPE_URL.cluster);
  if (opts.nackClusters) c.send({ type_url: TYPE_URL.cluster, response_nonce: cds.nonce, error_detail: { code: 3, message: opts.nackClusters } });
  else c.ack(cds);
  c.send({ type_url: TYPE_URL.listener });
  c.ack(await c.next(TYPE_URL.listener));
  return c;
}

describe('proxy status', () => {
  test('proxies.list: SYNCED after ACK, NACKED after NACK with the error; rows reach the database in batches', async () => {
    await proxy('st-good', { NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-v1' });
    await proxy('st-bad', { NAMESPACE: 'default' }, { nackClusters: 'unknown field "foo"' });
    const list = await eventually(async () => {
      const r = await api.rest('GET', '/api/v1/proxies');
      const good = r.body.proxies.find((p: any) => p.id === 'st-good');
      const bad = r.body.proxies.find((p: any) => p.id === 'st-bad');
      return good?.status === 'SYNCED' && bad?.status === 'NACKED' && bad.types.listeners.status === 'SYNCED' ? { good, bad } : undefined;
    });
    assert.equal(list.good.workload, 'reviews-v1');
    assert.equal(list.good.types.clusters.ackedVersion, list.good.types.clusters.sentVersion);
    assert.equal(list.bad.types.clusters.status, 'NACKED');
    assert.equal(list.bad.types.listeners.status, 'SYNCED');
    assert.equal(list.bad.lastNack.message, 'unknown field "foo"');
    assert.equal(list.good.convergedRevision, api.app.xds.mesh.meshRevision);
    const rows = await eventually(async () => {
      const rows = await api.app.db.prisma.proxyStatus.findMany({ where: { proxyId: { in: ['st-good', 'st-bad'] } } });
      return rows.length === 2 && rows.every((r) => (r.status as any).status !== 'STALE') ? rows : undefined;
    });
    assert.ok(rows.every((r) => r.replicaId === api.app.config.replicaId));
  });

  test('tern proxy-status prints the table; -o json and yaml', async () => {
    await eventually(async () => (await api.app.xds.getProxy('st-good')).status === 'SYNCED');
    const r = await tern(['proxy-status']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+NAMESPACE\s+WORKLOAD\s+CDS\s+LDS\s+EDS\s+RDS\s+REPLICA\s+VERSION\s+CERT EXPIRES$/);
    const good = lines.find((l) => l.startsWith('st-good'))!;
    assert.match(good, /^st-good\s+default\s+reviews-v1\s+SYNCED\s+SYNCED\s+NOT SENT\s+NOT SENT\s+test-\w+\s+\d+\s+-$/);
    assert.match(lines.find((l) => l.startsWith('st-bad'))!, /^st-bad\s+default\s+-\s+NACKED\s+SYNCED\s+/);
    const json = await tern(['proxy-status', '-o', 'json']);
    assert.deepEqual(JSON.parse(json.stdout).find((p: any) => p.id === 'st-good')?.certificate, null, 'no certificate issued to it');
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.deepEqual(
      ['2026-01-02T00:30:00Z', '2026-01-01T23:59:30Z', '2026-01-01T00:04:59Z', '2025-12-31T23:58:00Z'].map((t) => certExpiry(t, now)),
      ['in 1d0h', 'in 23h59m', 'in 4m', 'EXPIRED 2m ago'],
    );
    const yaml = await tern(['proxy-status', '-o', 'yaml', '-n', 'nowhere']);
    assert.deepEqual(YAML.parse(yaml.stdout), []);
  });

  test('tern proxy-config: the table of resources, a type as JSON, and an error for an unknown proxy', async () => {
    const t = await tern(['proxy-config', 'st-good']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^clusters\s+outbound\|9080\|\|reviews\.default\.svc\.cluster\.local$/m);
    assert.match(t.stdout, /^listeners\s+127\.0\.0\.1_15001$/m, 'the forward-proxy listener the real compiler gives a local-mode sidecar');
    const j = await tern(['proxy-config', 'st-good', '--type', 'clusters', '-o', 'json']);
    const dump = JSON.parse(j.stdout);
    assert.deepEqual(Object.keys(dump.types), ['clusters']);
    assert.equal(dump.types.clusters.resources[0]['@type'], TYPE_URL.cluster);
    assert.equal(dump.types.clusters.resources[0].type, 'EDS');
    const missing = await tern(['proxy-config', 'ghost']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ghost/);
  });

  test('rows of other replicas: listed, DISCONNECTED once their replica stops reporting; config names the replica holding the proxy', async () => {
    const view = (id: string) => ({ ...(JSON.parse(JSON.stringify(api.app.xds.liveViews()[0])) as object), id, replica: 'replica-far' });
    await api.app.db.prisma.proxyStatus.createMany({
      data: [
        { proxyId: 'far-live', replicaId: 'replica-far', namespace: 'default', status: view('far-live') },
        { proxyId: 'far-dead', replicaId: 'replica-gone', namespace: 'default', status: view('far-dead'), updatedAt: new Date(Date.now() - 120_000) },
      ],
    });
    const list = (await api.rest('GET', '/api/v1/proxies')).body.proxies;
    assert.notEqual(list.find((p: any) => p.id === 'far-live').status, 'DISCONNECTED');
    assert.equal(list.find((p: any) => p.id === 'far-dead').status, 'DISCONNECTED');
    const cfg = await api.rest('GET', '/api/v1/proxies/far-live/config');
    assert.equal(cfg.status, 404);
    assert.match(cfg.body.message, /replica "replica-far"/);
    const one = await api.rest('GET', '/api/v1/proxies/far-dead');
    assert.equal(one.status, 200);
    assert.equal(one.body.status, 'DISCONNECTED');
    const table = await tern(['proxy-status']);
    assert.match(table.stdout, /^far-dead\s+.*DISCONNECTED\s+DISCONNECTED\s+DISCONNECTED\s+DISCONNECTED\s+replica-gone/m);
  });

  test('the heartbeat keeps this replica’s rows fresh and deletes rows long abandoned', async () => {
    await api.app.db.prisma.proxyStatus.create({
      data: { proxyId: 'ancient', replicaId: 'replica-long-gone', namespace: 'default', status: {}, updatedAt: new Date(Date.now() - 3600_000) },
    });
    await api.app.db.prisma.proxyStatus.updateMany({ where: { proxyId: 'st-good' }, data: { updatedAt: new Date(Date.now() - 60_000) } });
    assert.equal((await api.rest('GET', '/api/v1/proxies/st-good')).body.status, 'SYNCED', 'live proxies come from memory');
    await api.app.xds.status.beat();
    // The periodic heartbeat may have expired rows moments ago (it does so once a minute): expire now.
    await api.app.xds.status.expireAbandoned();
    assert.equal(await api.app.db.prisma.proxyStatus.count({ where: { proxyId: 'ancient' } }), 0);
    const row = await api.app.db.prisma.proxyStatus.findUniqueOrThrow({ where: { proxyId: 'st-good' } });
    assert.ok(Date.now() - row.updatedAt.getTime() < 30_000);
  });

  test('a disconnected proxy leaves the list and its row is deleted', async () => {
    const c = await proxy('st-leaving', { NAMESPACE: 'default' });
    await eventually(async () => (await api.app.db.prisma.proxyStatus.count({ where: { proxyId: 'st-leaving' } })) === 1);
    c.close();
    await eventually(async () => (await api.app.db.prisma.proxyStatus.count({ where: { proxyId: 'st-leaving' } })) === 0, 5000, 'row deleted');
    assert.ok(!(await api.rest('GET', '/api/v1/proxies')).body.proxies.some((p: any) => p.id === 'st-leaving'));
  });

  test('viewers may read proxy status; anonymous callers may not', async () => {
    const viewer = await api.makeToken('viewer');
    assert.equal((await api.rest('GET', '/api/v1/proxies', undefined, { token: viewer })).status, 200);
    assert.equal((await api.rest('GET', '/api/v1/proxies', undefined, { token: null })).status, 401);
    assert.equal((await api.rest('GET', '/api/v1/xds/convergence', undefined, { token: null })).status, 401);
    assert.equal((await fetch(`${api.url}/metrics`)).status, 200);
    const doc = (await api.rest('GET', '/api/openapi.json', undefined, { token: null })).body;
    for (const p of ['/proxies', '/proxies/{id}', '/proxies/{id}/config', '/xds/convergence']) assert.ok(doc.paths[p]?.get, p);
  });
});
