import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { onPostgres, openTestDatabase, startTestApi, type TestApi, type TestDatabase } from './helpers.ts';
import { SHARED_KEK, replicaEnv } from './replica-env.ts';
import { SotwClient, TYPE_URL, eventually, names, node } from './xds-fixtures.ts';

// Two control-plane processes on one PostgreSQL: a write through one replica reaches a proxy
// connected to the other, and each replica lists the other's proxies.

const root = path.resolve(import.meta.dirname, '../../..');

if (onPostgres) {
  describe('xDS across two replicas on one PostgreSQL', () => {
    let db: TestDatabase;
    let a: TestApi;
    let b: ChildProcess | undefined;
    let bUrl = '';
    let bXds = '';
    let bReplica = '';
    const clients: SotwClient[] = [];

    before(async () => {
      db = await openTestDatabase();
      a = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, caKeyEncryptionKey: SHARED_KEK }, db, { xds: true });
      b = spawn(process.execPath, ['--import', 'tsx', 'apps/api/src/main.ts'], {
        cwd: root,
        env: { ...process.env, ...replicaEnv(db), TERN_API_PORT: '0', TERN_XDS_PORT: '0', TERN_XDS_DEBOUNCE_MS: '20', TERN_REPLICA_ID: 'replica-b', TERN_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        b!.stdout!.on('data', (d) => {
          out += d;
          const api = out.match(/Tern control plane: (http:\/\/\S+)/);
          const xds = out.match(/xDS \(ADS\) server: (\S+)\s+\(replica (\S+)\)/);
          if (api && xds) {
            bUrl = api[1]!;
            bXds = xds[1]!;
            bReplica = xds[2]!;
            resolve();
          }
        });
        b!.on('exit', (code) => reject(new Error(`replica b exited with ${code}`)));
      });
    });
    after(async () => {
      for (const c of clients) c.close();
      b?.kill('SIGTERM');
      await a?.close();
      await db?.drop();
    });

    test('a write through replica A reaches a proxy connected to replica B; A lists it as B’s', async () => {
      assert.equal(bReplica, 'replica-b');
      const c = new SotwClient(bXds);
      clients.push(c);
      c.send({ node: node('on-b', { NAMESPACE: 'default' }), type_url: TYPE_URL.cluster });
      const first = await c.next(TYPE_URL.cluster);
      c.ack(first);
      assert.ok(!names(first).some((n) => n.includes('crossing')));

      const w = await a.rest('PUT', '/api/v1/registry/services/default/crossing', { namespace: 'default', name: 'crossing', ports: [{ number: 9080, protocol: 'HTTP' }] });
      assert.equal(w.status, 200);
      const pushed = await c.next(TYPE_URL.cluster);
      assert.ok(names(pushed).includes('outbound|9080||crossing.default.svc.cluster.local'), names(pushed).join(','));
      c.ack(pushed);

      // A sees B's proxy through the ProxyStatus table (B writes it within its flush interval).
      const row = await eventually(async () => {
        const r = await a.rest('GET', '/api/v1/proxies');
        const p = r.body.proxies.find((x: any) => x.id === 'on-b');
        return p?.types.clusters.ackedVersion === pushed.version_info ? p : undefined;
      });
      assert.equal(row.replica, 'replica-b');
      assert.equal(row.status, 'SYNCED');
      const cfg = await a.rest('GET', '/api/v1/proxies/on-b/config');
      assert.equal(cfg.status, 404);
      assert.match(cfg.body.message, /replica "replica-b"/);
      const fromB = await fetch(`${bUrl}/api/v1/proxies/on-b/config`, { headers: { authorization: `Bearer ${a.token}` } });
      assert.equal(fromB.status, 200);
    });
  });
}
