import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { cluster, eventually, httpListener, routeTo, snapshot, spawnProxy, startProxy, tcpListener } from './dataplane-helpers.ts';

describe('WebSocket upgrade', () => {
  test('text and binary frames are echoed through the proxy; close propagates', async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    let upgradeHeaders: http.IncomingHttpHeaders | undefined;
    wss.on('connection', (ws, req) => {
      upgradeHeaders = req.headers;
      ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${String(data)}`, { binary: isBinary }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const upPort = (server.address() as AddressInfo).port;
    const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'ws', routes: routeTo('ws') })], clusters: [cluster('ws', [upPort])] }));
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${proxy.port('ws')}/chat`);
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const next = () => new Promise<{ data: Buffer; binary: boolean }>((r) => ws.once('message', (data, binary) => r({ data: data as Buffer, binary })));
      for (let i = 0; i < 5; i++) {
        const p = next();
        ws.send(`hello ${i}`);
        const m = await p;
        assert.equal(String(m.data), `echo:hello ${i}`);
      }
      const big = Buffer.alloc(256 * 1024, 7);
      const p = next();
      ws.send(big);
      const m = await p;
      assert.equal(m.binary, true);
      assert.ok(Buffer.compare(m.data, big) === 0);
      assert.ok(upgradeHeaders?.['x-request-id'], 'the upgrade request went through the normal header pipeline');
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      ws.close(1000, 'bye');
      assert.equal(await closed, 1000);
      await eventually(() => /istio_requests_total\{[^}]*response_code="101"[^}]*\} 1/.test(proxy.engine.metrics.render()));
    } finally {
      await proxy.close();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('an upgrade type the listener does not allow is refused', async () => {
    const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'ws', routes: routeTo('ws'), hcm: { upgrade_configs: [] } })], clusters: [cluster('ws', [1])] }));
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${proxy.port('ws')}/`);
      const status = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', () => resolve(-1));
      });
      assert.equal(status, 403);
    } finally {
      await proxy.close();
    }
  });
});

describe('TCP proxy', () => {
  test('bytes pass both ways (server-first protocol too) and TCP metrics count them', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.write('BANNER\n'); // the server speaks first: the proxy must not wait for client bytes
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const upPort = (server.address() as AddressInfo).port;
    const C = 'outbound|3306||mysql.db.svc.cluster.local';
    const proxy = await startProxy(snapshot({ listeners: [tcpListener('tcp', C)], clusters: [cluster(C, [upPort])] }));
    try {
      const c = net.connect(proxy.port('tcp'), '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d));
      await eventually(() => got === 'BANNER\n');
      c.write('ping-1\n');
      c.write('ping-2\n');
      await eventually(() => got === 'BANNER\nping-1\nping-2\n');
      c.end();
      await new Promise((r) => c.once('close', r));
      await eventually(() => /istio_tcp_connections_closed_total\{[^}]*\} 1/.test(proxy.engine.metrics.render()));
      const text = proxy.engine.metrics.render();
      assert.match(text, /istio_tcp_connections_opened_total\{reporter="source",[^}]*destination_service="mysql.db.svc.cluster.local"[^}]*request_protocol="tcp"[^}]*\} 1/);
      assert.match(text, /istio_tcp_received_bytes_total\{[^}]*\} 14\n/);
      assert.match(text, /istio_tcp_sent_bytes_total\{[^}]*\} 21\n/);
    } finally {
      await proxy.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('a dead upstream closes the downstream connection and counts UF', async () => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const proxy = await startProxy(snapshot({ listeners: [tcpListener('tcp', 'dead')], clusters: [cluster('dead', [port])] }));
    try {
      const c = net.connect(proxy.port('tcp'), '127.0.0.1');
      c.on('error', () => {});
      await new Promise((r) => c.once('close', r));
      await eventually(() => /istio_tcp_connections_closed_total\{[^}]*response_flags="UF"[^}]*\} 1/.test(proxy.engine.metrics.render()));
    } finally {
      await proxy.close();
    }
  });
});

/** Peak resident set size of a process (Linux /proc), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

describe('large bodies are streamed, not buffered', () => {
  test('100 MB up and 100 MB down through a proxy process whose peak RSS grows far less than that', { timeout: 60000 }, async () => {
    const SIZE = 100 * 1024 * 1024;
    let uploaded = 0;
    const upstream = http.createServer((req, res) => {
      if (req.method === 'POST') {
        req.on('data', (c: Buffer) => (uploaded += c.length));
        req.on('end', () => res.end(String(uploaded)));
        return;
      }
      res.writeHead(200, { 'content-length': SIZE });
      Readable.from(chunks(SIZE)).pipe(res);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upPort = (upstream.address() as AddressInfo).port;
    const child = await spawnProxy({ listeners: [httpListener({ name: 'big', routes: routeTo('big') })], clusters: [cluster('big', [upPort])] });
    try {
      const base = peakRss(child.pid);
      // Upload: 100 MB chunked (no content-length), streamed from a generator.
      const upRes = await new Promise<string>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: child.ports.big, method: 'POST', path: '/up' }, (res) => {
          let s = '';
          res.on('data', (d) => (s += d));
          res.on('end', () => resolve(s));
        });
        req.on('error', reject);
        Readable.from(chunks(SIZE)).pipe(req);
      });
      assert.equal(Number(upRes), SIZE);
      // Download: 100 MB, consumed as it arrives.
      const downloaded = await new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: child.ports.big, path: '/down' }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
        }).on('error', reject);
      });
      assert.equal(downloaded, SIZE);
      const growth = peakRss(child.pid) - base;
      if (process.env.TERN_TEST_VERBOSE) console.log(`peak RSS growth ${(growth / 1048576).toFixed(1)} MB (base ${(base / 1048576).toFixed(1)} MB)`);
      // Loose on purpose (GC is lazy): buffering either 100 MB body would exceed it.
      assert.ok(growth < 85 * 1024 * 1024, `proxy peak RSS grew by ${(growth / 1048576).toFixed(1)} MB for 200 MB of traffic`);
    } finally {
      await child.stop();
      upstream.closeAllConnections();
      await new Promise((r) => upstream.close(r));
    }
  });
});

function* chunks(total: number): Generator<Buffer> {
  const chunk = Buffer.alloc(64 * 1024, 120);
  for (let sent = 0; sent < total; sent += chunk.length) yield sent + chunk.length <= total ? chunk : chunk.subarray(0, total - sent);
}

