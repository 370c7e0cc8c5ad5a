import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type { ChangeEvent } from '@tern/shared';
import { onPostgres, openTestDatabase, startTestApi, type TestApi, type TestDatabase } from './helpers.ts';
import { SHARED_KEK, replicaEnv } from './replica-env.ts';

// The change feed, several replicas on one PostgreSQL, and a database that goes away.

const root = path.resolve(import.meta.dirname, '../../..');
const vs = (name: string) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name },
  spec: { hosts: [name], http: [{ route: [{ destination: { host: name } }] }] },
});

function waitFor<T>(events: T[], pred: (e: T) => boolean, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      const hit = events.find(pred);
      if (hit) return resolve(hit);
      if (Date.now() - started > ms) return reject(new Error(`not seen within ${ms} ms`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

describe('change feed in one process', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => api?.close());

  test('every change arrives once, in revision order, registry changes included', async () => {
    const seen: ChangeEvent[] = [];
    const unsubscribe = api.app.changes.subscribe((e) => seen.push(e));
    await api.rest('POST', '/api/v1/apply', { resources: [vs('feed-a'), vs('feed-b')] });
    await api.rest('PUT', '/api/v1/registry/services/default/feed', { namespace: 'default', name: 'feed', ports: [{ number: 80, protocol: 'HTTP' }] });
    await api.rest('DELETE', '/api/v1/resources/vs/default/feed-a');
    await waitFor(seen, (e) => e.action === 'deleted', 2000);
    unsubscribe();
    assert.deepEqual(seen.map((e) => `${e.kind}/${e.name}:${e.action}`), ['VirtualService/feed-a:created', 'VirtualService/feed-b:created', 'Service/feed:created', 'VirtualService/feed-a:deleted']);
    const revs = seen.map((e) => BigInt(e.revision));
    for (let i = 1; i < revs.length; i++) assert.equal(revs[i], revs[i - 1]! + 1n);
  });

  test('the watch stream (SSE) catches up from a revision, then goes live', async () => {
    const since = (await api.rest('GET', '/api/v1/changes?since=0')).body.revision;
    await api.rest('POST', '/api/v1/apply', { resources: [vs('sse-before')] });
    const events: any[] = [];
    const ctrl = new AbortController();
    void readSse(`${api.url}/api/trpc/history.watch?input=${encodeURIComponent(JSON.stringify({ since }))}`, api.token, events, ctrl.signal);
    await waitFor(events, (e) => e.name === 'sse-before', 3000);
    await api.rest('POST', '/api/v1/apply', { resources: [vs('sse-after')] });
    await waitFor(events, (e) => e.name === 'sse-after', 3000);
    ctrl.abort();
  });
});

async function readSse(url: string, token: string, into: any[], signal: AbortSignal) {
  try {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal });
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of block.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          try {
            const d = JSON.parse(line.slice(6));
            if (d && typeof d === 'object' && 'revision' in d) into.push(d);
          } catch {}
        }
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
}

if (onPostgres) {
  describe('two control-plane processes on one PostgreSQL', () => {
    let db: TestDatabase;
    let a: TestApi;
    let b: ChildProcess | undefined;
    let bUrl = '';

    before(async () => {
      db = await openTestDatabase();
      a = await startTestApi({ caKeyEncryptionKey: SHARED_KEK }, db);
      b = spawn(process.execPath, ['--import', 'tsx', 'apps/api/src/main.ts'], {
        cwd: root,
        env: { ...process.env, ...replicaEnv(db), TERN_API_PORT: '0', TERN_XDS_PORT: '0', TERN_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      bUrl = await new Promise<string>((resolve, reject) => {
        let out = '';
        b!.stdout!.on('data', (d) => {
          out += d;
          const m = out.match(/Tern control plane: (http:\/\/\S+)/);
          if (m) resolve(m[1]!);
        });
        b!.on('exit', (code) => reject(new Error(`replica b exited with ${code}`)));
      });
    });
    after(async () => {
      b?.kill('SIGTERM');
      await a?.close();
      await db?.drop();
    });

    test('a write through one replica is in the other replica’s change feed within a second', async () => {
      const events: any[] = [];
      const ctrl = new AbortController();
      void readSse(`${bUrl}/api/trpc/history.watch`, a.token, events, ctrl.signal);
      await new Promise((r) => setTimeout(r, 300)); // let the stream open
      const t0 = performance.now();
      const w = await a.rest('POST', '/api/v1/apply', { resources: [vs('cross-replica')] });
      assert.equal(w.status, 200);
      await waitFor(events, (e) => e.name === 'cross-replica', 1000);
      const ms = performance.now() - t0;
      ctrl.abort();
      console.log(`# change seen on the other replica after ${ms.toFixed(1)} ms`);
      // And B serves what A wrote.
      const got = await fetch(`${bUrl}/api/v1/resources/vs/default/cross-replica`, { headers: { authorization: `Bearer ${a.token}` } });
      assert.equal(got.status, 200);
    });

    test('each replica’s analysis sees the other’s writes (no stale view of the mesh)', async () => {
      const viaB = (body: unknown) =>
        fetch(`${bUrl}/api/v1/apply`, { method: 'POST', headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const route = (subset: string) => ({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'shared' },
        spec: { hosts: ['shared'], http: [{ route: [{ destination: { host: 'shared', subset } }] }] },
      });
      const rule = (subset: string) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'shared' }, spec: { host: 'shared', subsets: [{ name: subset, labels: { version: subset } }] } });
      // A writes (and so knows the mesh as of its write); B then changes it behind A's back.
      assert.equal((await a.rest('POST', '/api/v1/apply', { resources: [rule('v1')] })).status, 200);
      assert.equal((await viaB({ resources: [rule('v9')] })).status, 200);
      // A must judge its next write against B's rule: v9 exists now, v1 no longer does.
      assert.equal((await a.rest('POST', '/api/v1/apply', { resources: [route('v9')] })).status, 200);
      const stale = await a.rest('POST', '/api/v1/apply', { resources: [route('v1')] });
      assert.equal(stale.status, 400, JSON.stringify(stale.body));
      assert.match(stale.body.message, /v1/);
      // A deletion behind A's back counts too: with the rule gone, v9 is no longer a subset.
      await a.rest('DELETE', '/api/v1/resources/vs/default/shared');
      const del = await fetch(`${bUrl}/api/v1/resources/dr/default/shared`, { method: 'DELETE', headers: { authorization: `Bearer ${a.token}` } });
      assert.equal(del.status, 200);
      const gone = await a.rest('POST', '/api/v1/apply', { resources: [route('v9')] });
      assert.equal(gone.status, 400, JSON.stringify(gone.body));
    });
  });

  describe('a database that goes away', () => {
    let db: TestDatabase;
    let relay: Relay;
    let api: TestApi;

    before(async () => {
      db = await openTestDatabase();
      const target = new URL(db.databaseUrl!);
      relay = await startRelay(target.hostname, Number(target.port || 5432));
      const viaRelay = new URL(db.databaseUrl!);
      viaRelay.hostname = '127.0.0.1';
      viaRelay.port = String(relay.port);
      api = await startTestApi({ databaseUrl: viaRelay.toString() }, { ...db, databaseUrl: viaRelay.toString() });
    });
    after(async () => {
      await api?.close().catch(() => {});
      await relay?.stop();
      await db?.drop();
    });

    test('503 while it is down, nothing half-written, and recovery when it returns', async () => {
      assert.equal((await api.rest('POST', '/api/v1/apply', { resources: [vs('before-outage')] })).status, 200);
      const revBefore = (await api.rest('GET', '/api/v1/changes?since=0')).body.revision;
      const seen: ChangeEvent[] = [];
      api.app.changes.subscribe((e) => seen.push(e));

      await relay.stop();
      const w = await api.rest('POST', '/api/v1/apply', { resources: [vs('during-outage')] });
      assert.equal(w.status, 503, JSON.stringify(w.body));
      assert.match(w.body.message, /database is unavailable/);
      const r = await api.rest('GET', '/api/v1/resources');
      assert.equal(r.status, 503);
      const ready = await fetch(`${api.url}/readyz`);
      assert.equal(ready.status, 503);

      await relay.start();
      let after: { status: number; body: any } | undefined;
      for (let i = 0; i < 50; i++) {
        after = await api.rest('GET', '/api/v1/changes?since=0');
        if (after.status === 200) break;
        await new Promise((res) => setTimeout(res, 200));
      }
      assert.equal(after!.status, 200);
      assert.equal(after!.body.revision, revBefore, 'the failed write left no revision');
      assert.equal((await api.rest('GET', '/api/v1/resources/vs/default/during-outage')).status, 404);
      const retry = await api.rest('POST', '/api/v1/apply', { resources: [vs('during-outage')] });
      assert.equal(retry.status, 200);
      // The change feed re-established its LISTEN connection and delivers again.
      await waitFor(seen, (e) => e.name === 'during-outage', 5000);
    });
  });
}

interface Relay {
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A TCP relay in front of PostgreSQL that the test can cut and restore. */
async function startRelay(host: string, port: number): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let listenPort = 0;
  const start = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect(port, host);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(listenPort, '127.0.0.1', () => {
        listenPort = (server!.address() as net.AddressInfo).port;
        resolve();
      });
    });
  await start();
  return {
    get port() {
      return listenPort;
    },
    start,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      server = undefined;
    },
  };
}
