// A listener updated in place (same name and address, new config): connections accepted on the
// old filter chains drain as in Envoy (HTTP/1.1: Connection: close on the next response, idle ones
// closed; HTTP/2: GOAWAY), so keep-alive clients move to the new chains without a failed request.
// Routes delivered over RDS are looked up per request and must not disturb any connection.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { fastPathEnabled } from '../src/dataplane/h1-fast.ts';
import { cluster, eventually, httpListener, httpUpstream, request, routeTo, snapshot, startProxy, type Upstream } from './dataplane-helpers.ts';

/** Set in the child process that repeats the HTTP/1.1 test with the fast path off. */
const CHILD = process.env.TERN_TEST_LISTENER_UPDATE_CHILD === '1';

let upA: Upstream;
let upB: Upstream;
before(async () => {
  upA = await httpUpstream((_req, res) => res.end('A'));
  upB = await httpUpstream((_req, res) => res.end('B'));
});
after(async () => {
  await upA.close();
  await upB.close();
});

const clusters = () => [cluster('a', [upA.port]), cluster('b', [upB.port])];

/** Sequential keep-alive requests on `workers` loops until stopped; every outcome is recorded. */
function requestLoop(port: number, agent: http.Agent, workers: number) {
  const results: { body?: string; error?: string; status?: number }[] = [];
  let stop = false;
  const loops = Array.from({ length: workers }, async () => {
    // Bounded: a failing test must not leave a loop spinning against a closed proxy.
    while (!stop && results.length < 20000) {
      try {
        const r = await request(port, { agent, path: '/loop' });
        results.push({ body: r.body, status: r.status });
      } catch (err) {
        results.push({ error: (err as Error).message });
      }
    }
  });
  return {
    results,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

function h2Get(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':path': path });
    let body = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (body += d));
    s.on('end', () => resolve(body));
    s.on('error', reject);
    s.end();
  });
}

describe('listener updated in place', () => {
  test(`HTTP/1.1 keep-alive connections move to the new chain without a failed request (fast path ${fastPathEnabled ? 'on' : 'off'})`, { timeout: 20000 }, async () => {
    if (CHILD) assert.equal(fastPathEnabled, false, 'the child runs with TERN_H1_FASTPATH=0');
    const p = await startProxy(snapshot({ listeners: [httpListener({ name: 'out', routes: routeTo('a') })], clusters: clusters() }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const idleAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let loop: ReturnType<typeof requestLoop> | undefined;
    try {
      const port = p.port('out');
      // One connection left idle on the old chain: the proxy closes it after the swap.
      assert.equal((await request(port, { agent: idleAgent })).body, 'A');
      assert.equal(Object.values(idleAgent.freeSockets).flat().length, 1);
      loop = requestLoop(port, agent, 4);
      const results = loop.results;
      await eventually(() => results.filter((r) => r.body === 'A').length >= 40);
      await p.set(snapshot({ listeners: [httpListener({ name: 'out', routes: routeTo('b') })], clusters: clusters() }));
      // Only new chains serve from now on: every connection of the old one is told to close.
      await eventually(() => results.length >= 20 && results.slice(-20).every((r) => r.body === 'B'));
      const aServed = upA.requests.length;
      const from = results.length;
      await eventually(() => results.length >= from + 40);
      await loop.stop();
      assert.equal(upA.requests.length, aServed, 'no request reaches the old route once the connections moved');
      assert.ok(results.slice(from).every((r) => r.body === 'B'));
      assert.deepEqual(results.filter((r) => r.error !== undefined || r.status !== 200), [], 'no request failed');
      await eventually(() => Object.values(idleAgent.freeSockets).flat().length === 0);
      assert.equal((await request(port, { agent: idleAgent })).body, 'B');
    } finally {
      await loop?.stop();
      agent.destroy();
      idleAgent.destroy();
      await p.close();
    }
  });

  test('the HTTP/1.1 test again with node:http serving (TERN_H1_FASTPATH=0, child process)', { skip: CHILD, timeout: 30000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, TERN_H1_FASTPATH: '0', TERN_TEST_LISTENER_UPDATE_CHILD: '1' };
    delete env.NODE_TEST_CONTEXT; // a plain run of this file, not a sub-run reporting to our runner
    const child = spawn(process.execPath, ['--import', 'tsx', '--test-reporter=tap', '--test-name-pattern=fast path off', import.meta.filename], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0, out);
    assert.match(out, /^# pass 1$/m, out);
    assert.match(out, /^# fail 0$/m, out);
  });

  test('HTTP/2: in-flight streams finish, GOAWAY makes the client open a session on the new chain', { skip: CHILD, timeout: 10000 }, async () => {
    let release: () => void = () => {};
    const slowA = await httpUpstream((req, res) => {
      if (req.url === '/slow') release = () => res.end('A-slow');
      else res.end('A');
    });
    const cl = () => [cluster('a', [slowA.port]), cluster('b', [upB.port])];
    const p = await startProxy(snapshot({ listeners: [httpListener({ name: 'out', routes: routeTo('a') })], clusters: cl() }));
    const sessions: http2.ClientHttp2Session[] = [];
    try {
      const url = `http://127.0.0.1:${p.port('out')}`;
      const first = http2.connect(url);
      sessions.push(first);
      const goaway = new Promise<void>((r) => first.once('goaway', () => r()));
      assert.equal(await h2Get(first, '/'), 'A');
      const slow = h2Get(first, '/slow');
      await eventually(() => slowA.requests.some((r) => r.url === '/slow'));
      await p.set(snapshot({ listeners: [httpListener({ name: 'out', routes: routeTo('b') })], clusters: cl() }));
      await goaway;
      release();
      assert.equal(await slow, 'A-slow', 'the stream in flight during the update completes');
      // A client that got GOAWAY opens a new session: it is served by the new chain.
      const second = http2.connect(url);
      sessions.push(second);
      assert.equal(await h2Get(second, '/'), 'B');
      assert.equal(await h2Get(second, '/'), 'B');
      await eventually(() => first.closed);
    } finally {
      for (const s of sessions) s.destroy();
      await p.close();
      await slowA.close();
    }
  });

  test('an RDS-only update changes where requests go without closing any connection', { skip: CHILD, timeout: 20000 }, async () => {
    const listener = httpListener({ name: 'out', rds: 'r' });
    const p = await startProxy(snapshot({ listeners: [listener], clusters: clusters(), routes: [routeTo('a', {}, ['*'], 'r')] }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let session: http2.ClientHttp2Session | undefined;
    try {
      const port = p.port('out');
      const sockets = new Set<Socket>();
      agent.on('free', (s: Socket) => sockets.add(s));
      session = http2.connect(`http://127.0.0.1:${port}`);
      let goaways = 0;
      session.on('goaway', () => goaways++);
      assert.equal((await request(port, { agent })).body, 'A');
      assert.equal(await h2Get(session, '/'), 'A');
      await p.set(snapshot({ listeners: [listener], clusters: clusters(), routes: [routeTo('b', {}, ['*'], 'r')] }));
      assert.equal((await request(port, { agent })).body, 'B');
      assert.equal(await h2Get(session, '/'), 'B');
      // Longer than a replaced chain's idle connections are given: nothing is closed here.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await request(port, { agent })).body, 'B');
      assert.equal(await h2Get(session, '/'), 'B');
      assert.equal(sockets.size, 1, 'the HTTP/1.1 client kept its one connection');
      assert.equal(goaways, 0);
      assert.equal(session.closed, false);
    } finally {
      session?.destroy();
      agent.destroy();
      await p.close();
    }
  });
});
