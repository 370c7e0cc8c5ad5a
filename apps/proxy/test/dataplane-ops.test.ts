import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { TYPE_URL, type JsonObject } from '@tern/xds';
import { ConfigStore } from '../src/config/store.ts';
import { startAdmin } from '../src/admin/server.ts';
import { Engine } from '../src/dataplane/engine.ts';
import { ListenerManager } from '../src/dataplane/listeners.ts';
import { cluster, eventually, httpListener, httpUpstream, quiet, request, routeTo, spawnProxy } from './dataplane-helpers.ts';

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const set = (list: JsonObject[], version = '1') => new Map(list.map((j) => [String(j.name), { version, json: j }]));

/** A proxy wired like main.ts: ConfigStore → ListenerManager, plus the admin server. */
async function storeProxy(opts: { conntrackPath?: string } = {}) {
  const store = new ConfigStore();
  const engine = new Engine({ snapshot: () => store.snapshot, self: { workload: 'productpage-v1', namespace: 'default', app: 'productpage', version: 'v1', principal: '' }, lb: store.lb });
  const listeners = new ListenerManager(engine, quiet, 200, opts.conntrackPath);
  let ready = false;
  store.onChange(({ snapshot }) => void listeners.apply(snapshot).then(() => (ready = snapshot.listeners.size > 0)));
  const admin = await startAdmin({ engine, listeners, snapshot: () => store.snapshot, ready: () => ready, draining: () => false, drain: () => listeners.startDrain() }, '127.0.0.1', 0);
  return {
    store, engine, listeners, admin,
    port(name: string) {
      const a = listeners.address(name);
      if (!a || typeof a === 'string') throw new Error(`${name} not bound`);
      return a.port;
    },
    async close() {
      await listeners.close(200);
      engine.close();
      await admin.close();
    },
  };
}

describe('configuration swaps', () => {
  test('50 snapshot swaps under a continuous request loop: every request succeeds, the listener socket is kept', async () => {
    const a = await httpUpstream((_req, res) => res.end('a'));
    const b = await httpUpstream((_req, res) => res.end('b'));
    const p = await storeProxy();
    try {
      p.store.replaceType(TYPE_URL.cluster, set([cluster('a', [a.port]), cluster('b', [b.port])]));
      p.store.replaceType(TYPE_URL.route, set([routeTo('a', {}, ['*'], 'r')]));
      p.store.replaceType(TYPE_URL.listener, set([httpListener({ name: 'out', rds: 'r' })]));
      await eventually(() => p.listeners.address('out') !== undefined);
      const port = p.port('out');
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      let stop = false;
      let ok = 0;
      const failures: string[] = [];
      const loop = async () => {
        while (!stop) {
          try {
            const r = await request(port, { agent, path: '/swap' });
            if (r.status === 200 && (r.body === 'a' || r.body === 'b')) ok++;
            else failures.push(`${r.status} ${r.body}`);
          } catch (err) {
            failures.push(String(err));
          }
        }
      };
      const loops = [loop(), loop(), loop(), loop()];
      for (let i = 0; i < 50; i++) {
        const target = i % 2 ? 'a' : 'b';
        // Alternate route targets, and every 5th swap also rewrites the listener itself.
        p.store.replaceType(TYPE_URL.route, set([routeTo(target, {}, ['*'], 'r')], String(i)));
        if (i % 5 === 0) p.store.replaceType(TYPE_URL.listener, set([httpListener({ name: 'out', rds: 'r', hcm: { stat_prefix: `out-${i}` } })], String(i)));
        await new Promise((r) => setTimeout(r, 10));
        assert.equal(p.port('out'), port, 'same address: same socket');
      }
      stop = true;
      await Promise.all(loops);
      agent.destroy();
      assert.deepEqual(failures, []);
      assert.ok(ok > 50, `only ${ok} requests ran`);
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  test('a removed listener stops accepting; a use_original_dst listener is refused with a clear reason where the conntrack table cannot be read', async () => {
    const up = await httpUpstream();
    const p = await storeProxy({ conntrackPath: '/nonexistent/nf_conntrack' });
    try {
      p.store.replaceType(TYPE_URL.cluster, set([cluster('a', [up.port])]));
      p.store.replaceType(TYPE_URL.listener, set([httpListener({ name: 'one', routes: routeTo('a') }), httpListener({ name: 'two', routes: routeTo('a') })]));
      await eventually(() => p.listeners.address('two') !== undefined);
      const port2 = p.port('two');
      assert.equal((await request(port2)).status, 200);
      const virtual = { ...httpListener({ name: 'virtualOutbound', routes: routeTo('a') }), use_original_dst: true };
      p.store.replaceType(TYPE_URL.listener, set([httpListener({ name: 'one', routes: routeTo('a') }), virtual]));
      await eventually(() => p.listeners.address('two') === undefined);
      await eventually(async () => {
        try {
          await request(port2);
          return false;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
        }
      });
      assert.match(p.listeners.failed.get('virtualOutbound') ?? '', /^listener "virtualOutbound": \/nonexistent\/nf_conntrack cannot be read \(ENOENT\): the original destination of redirected connections is unknown$/);
      const listeners = await (await fetch(`http://127.0.0.1:${p.admin.port}/listeners`)).text();
      assert.match(listeners, /virtualOutbound::FAILED::/);
    } finally {
      await p.close();
      await up.close();
    }
  });
});

describe('metrics', () => {
  test('istio_requests_total equals exactly the requests sent, per response code, with Istio labels', async () => {
    const up = await httpUpstream((req, res) => {
      res.statusCode = req.url === '/fail' ? 500 : 200;
      res.end('x'.repeat(req.url === '/fail' ? 10 : 1000));
    });
    const p = await storeProxy();
    try {
      p.store.replaceType(TYPE_URL.cluster, set([cluster(REVIEWS, [up.port], { metadata: { filter_metadata: { istio: { workload: 'reviews-v2;default;reviews;v2;Kubernetes' } } } })]));
      p.store.replaceType(TYPE_URL.listener, set([httpListener({ name: 'out', routes: routeTo(REVIEWS) })]));
      await eventually(() => p.listeners.address('out') !== undefined);
      const port = p.port('out');
      const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 137; i++) sends.push(request(port, { agent, path: '/ok', method: 'POST', body: 'abc' }));
      for (let i = 0; i < 23; i++) sends.push(request(port, { agent, path: '/fail' }));
      await Promise.all(sends);
      agent.destroy();
      const text = await (await fetch(`http://127.0.0.1:${p.admin.port}/stats/prometheus`)).text();
      const line = (code: number) => text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes(`response_code="${code}"`));
      const ok = line(200);
      assert.ok(ok, text);
      assert.match(ok, / 137$/);
      assert.match(line(500)!, / 23$/);
      for (const label of ['reporter="source"', 'source_workload="productpage-v1"', 'source_workload_namespace="default"', 'source_app="productpage"', 'source_version="v1"',
        'destination_workload="reviews-v2"', 'destination_workload_namespace="default"', 'destination_app="reviews"', 'destination_version="v2"',
        'destination_service="reviews.default.svc.cluster.local"', 'destination_service_name="reviews"', 'destination_service_namespace="default"',
        'request_protocol="http"', 'response_flags="-"', 'grpc_response_status=""', 'connection_security_policy="unknown"', 'source_principal="unknown"']) {
        assert.ok(ok.includes(label), `${label} in ${ok}`);
      }
      assert.match(text, /# TYPE istio_request_duration_milliseconds histogram/);
      assert.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*response_code="200"[^}]*le="0.5"\} \d+/);
      assert.match(text, /istio_request_duration_milliseconds_count\{[^}]*response_code="200"[^}]*\} 137/);
      assert.match(text, /istio_request_bytes_sum\{[^}]*response_code="200"[^}]*\} 411\n/);
      assert.match(text, /istio_response_bytes_sum\{[^}]*response_code="200"[^}]*\} 137000\n/);
      assert.match(text, /istio_response_bytes_bucket\{[^}]*response_code="200"[^}]*le="1000"\} 137\n/);
      assert.match(text, /istio_response_bytes_bucket\{[^}]*response_code="200"[^}]*le="100"\} 0\n/);
    } finally {
      await p.close();
      await up.close();
    }
  });

  test('inbound: the peer header names the source (reporter=destination) and is stripped before the app', async () => {
    const app = await httpUpstream();
    const p = await storeProxy();
    try {
      p.store.replaceType(TYPE_URL.cluster, set([cluster('inbound|9080||', [app.port])]));
      p.store.replaceType(TYPE_URL.listener, set([httpListener({ name: 'inbound', direction: 'INBOUND', routes: routeTo('inbound|9080||') })]));
      await eventually(() => p.listeners.address('inbound') !== undefined);
      const r = await request(p.port('inbound'), { headers: { 'x-tern-peer': 'ratings-v1;prod;ratings;v1;' } });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).headers['x-tern-peer'], undefined, 'stripped before the app');
      assert.equal(r.headers['x-tern-peer'], 'productpage-v1;default;productpage;v1;', 'the response tells the caller who answered');
      const text = p.engine.metrics.render();
      assert.match(text, /istio_requests_total\{reporter="destination",source_workload="ratings-v1",source_workload_namespace="prod",source_principal="unknown",source_app="ratings",source_version="v1",destination_workload="productpage-v1"[^}]*connection_security_policy="none"\} 1/);
    } finally {
      await p.close();
      await app.close();
    }
  });
});

describe('admin', () => {
  test('/ready is 503 before the first listeners and 200 after; /config_dump and /clusters describe the config', async () => {
    const up = await httpUpstream();
    const p = await storeProxy();
    const base = `http://127.0.0.1:${p.admin.port}`;
    try {
      assert.equal((await fetch(`${base}/ready`)).status, 503);
      p.store.replaceType(TYPE_URL.cluster, set([cluster(REVIEWS, [up.port])], 'c1'), 'c1');
      p.store.replaceType(TYPE_URL.listener, set([httpListener({ name: 'out', routes: routeTo(REVIEWS) })], 'l1'), 'l1');
      await eventually(async () => (await fetch(`${base}/ready`)).status === 200);
      for (let i = 0; i < 3; i++) await request(p.port('out'));
      const dump = (await (await fetch(`${base}/config_dump`)).json()) as { configs: { '@type': string; version_info?: string; dynamic_listeners?: { name: string; active_state: { version_info: string } }[]; dynamic_active_clusters?: { cluster: { name: string } }[] }[] };
      const ls = dump.configs.find((c) => c['@type'].endsWith('ListenersConfigDump'))!;
      assert.equal(ls.version_info, 'l1');
      assert.equal(ls.dynamic_listeners?.[0]?.name, 'out');
      assert.equal(ls.dynamic_listeners?.[0]?.active_state.version_info, 'l1');
      const cs = dump.configs.find((c) => c['@type'].endsWith('ClustersConfigDump'))!;
      assert.equal(cs.dynamic_active_clusters?.[0]?.cluster.name, REVIEWS);
      const clusters = await (await fetch(`${base}/clusters`)).text();
      assert.match(clusters, new RegExp(`${REVIEWS.replace(/\|/g, '\\|')}::127.0.0.1:${up.port}::rq_total::3`));
      assert.match(clusters, /::rq_active::0/);
      assert.match(clusters, /::health_flags::healthy/);
      assert.match(clusters, /::weight::1/);
      const json = (await (await fetch(`${base}/clusters?format=json`)).json()) as { cluster_statuses: { name: string }[] };
      assert.equal(json.cluster_statuses[0]?.name, REVIEWS);
      assert.equal((await fetch(`${base}/nope`)).status, 404);
    } finally {
      await p.close();
      await up.close();
    }
  });
});

describe('drain_listeners', () => {
  test('HTTP/2 clients get GOAWAY, idle HTTP/1.1 keep-alive connections are closed, /ready turns 503', async () => {
    const up = await httpUpstream();
    const p = await storeProxy();
    let draining = false;
    const admin = await startAdmin({ engine: p.engine, listeners: p.listeners, snapshot: () => p.store.snapshot, ready: () => true, draining: () => draining, drain: () => {
      draining = true;
      p.listeners.startDrain();
    } }, '127.0.0.1', 0);
    try {
      p.store.replaceType(TYPE_URL.cluster, set([cluster('a', [up.port])]));
      p.store.replaceType(TYPE_URL.listener, set([httpListener({ name: 'out', routes: routeTo('a') })]));
      await eventually(() => p.listeners.address('out') !== undefined);
      const port = p.port('out');
      const session = http2.connect(`http://127.0.0.1:${port}`);
      const goaway = new Promise<void>((r) => session.once('goaway', () => r()));
      await new Promise<void>((resolve, reject) => {
        const s = session.request({ ':path': '/h2' });
        s.resume();
        s.on('end', resolve);
        s.on('error', reject);
        s.end();
      });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      assert.equal((await request(port, { agent })).headers.connection, 'keep-alive');
      assert.equal(Object.values(agent.freeSockets).flat().length, 1, 'an idle keep-alive connection');
      const r = await fetch(`http://127.0.0.1:${admin.port}/drain_listeners`, { method: 'POST' });
      assert.equal(r.status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${admin.port}/ready`)).status, 503);
      await goaway;
      await eventually(() => Object.values(agent.freeSockets).flat().length === 0); // closed by the proxy
      session.close();
      agent.destroy();
    } finally {
      await admin.close();
      await p.close();
      await up.close();
    }
  });
});

describe('graceful drain on SIGTERM (real process)', () => {
  test('a slow in-flight request completes, new connections are refused, the process exits 0', { timeout: 30000 }, async () => {
    let releaseSlow: () => void = () => {};
    const up = await httpUpstream((req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part1-');
        releaseSlow = () => res.end('part2');
      } else res.end('fast');
    });
    const child = await spawnProxy({ listeners: [httpListener({ name: 'out', routes: routeTo('up') })], clusters: [cluster('up', [up.port])] }, { TERN_DRAIN_SECONDS: '10' });
    try {
      const port = child.ports.out!;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      assert.equal((await request(port, { path: '/fast' })).body, 'fast');
      const slow = new Promise<{ body: string; connection: string | undefined }>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/slow' }, (res) => {
          let s = '';
          res.on('data', (d) => (s += d));
          res.on('end', () => resolve({ body: s, connection: res.headers.connection }));
          res.on('error', reject);
        }).on('error', reject);
      });
      await eventually(() => up.requests.some((r) => r.url === '/slow'));
      const dbg = (m: string) => process.env.TERN_TEST_VERBOSE && console.log(`[drain] ${m}`);
      dbg('sigterm');
      child.child.kill('SIGTERM');
      // New connections are refused once the listener stopped accepting.
      await eventually(() => new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(false);
        });
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
      }));
      dbg('refused');
      const ready = await fetch(`http://127.0.0.1:${child.admin}/ready`).then((r) => r.status, () => 0);
      assert.ok(ready === 503 || ready === 0, `ready while draining: ${ready}`);
      dbg(`ready ${ready}`);
      releaseSlow();
      const r = await slow;
      dbg('slow done');
      assert.equal(r.body, 'part1-part2');
      const code = await child.exited;
      dbg(child.log());
      assert.equal(code, 0);
      agent.destroy();
    } finally {
      await child.stop();
      await up.close();
    }
  });
});
