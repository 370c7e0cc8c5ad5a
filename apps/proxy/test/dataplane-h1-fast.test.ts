// The HTTP/1.1 raw-socket fast path (src/dataplane/h1-fast.ts, h1-upstream.ts): framing and
// connection handling that node:http used to do for us, checked on the wire with raw sockets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { cluster, httpListener, httpUpstream, routeTo, snapshot, startProxy, type TestProxy, type Upstream } from './dataplane-helpers.ts';

const C = 'outbound|80||fast.default.svc.cluster.local';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  trailers: Record<string, string>;
}

/**
 * A tiny HTTP/1.1 response reader for raw sockets: content-length, chunked (with trailers),
 * bodyless statuses and HEAD, and 1xx responses (returned like any other).
 */
function readResponses(buf: Buffer, heads: boolean[]): { done: RawResponse[]; rest: Buffer } {
  const done: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    let p = end + 4;
    let body = '';
    const trailers: Record<string, string> = {};
    const isHead = status >= 200 && (heads[done.filter((r) => r.status >= 200).length] ?? false);
    if (status < 200 || status === 204 || status === 304 || isHead) {
      // no body
    } else if (headers['transfer-encoding'] === 'chunked') {
      let complete = false;
      for (;;) {
        const nl = buf.indexOf('\r\n', p);
        if (nl < 0) break;
        const size = parseInt(buf.subarray(p, nl).toString(), 16);
        if (size === 0) {
          const tEnd = buf.indexOf('\r\n\r\n', nl - 2);
          if (tEnd < 0) break;
          for (const l of buf.subarray(nl + 2, tEnd + 2).toString('latin1').split('\r\n')) {
            const i = l.indexOf(':');
            if (i > 0) trailers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
          }
          p = tEnd + 4;
          complete = true;
          break;
        }
        if (buf.length < nl + 2 + size + 2) break;
        body += buf.subarray(nl + 2, nl + 2 + size).toString();
        p = nl + 2 + size + 2;
      }
      if (!complete) break;
    } else {
      const n = Number(headers['content-length'] ?? 0);
      if (buf.length < p + n) break;
      body = buf.subarray(p, p + n).toString();
      p += n;
    }
    done.push({ status, headers, body, trailers });
    at = p;
  }
  return { done, rest: buf.subarray(at) };
}

/** A raw client connection: write bytes, await N final (>= 200) responses, see if it closed. */
class RawClient {
  readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  readonly responses: RawResponse[] = [];
  closed = false;
  heads: boolean[] = [];
  private waiters: (() => void)[] = [];

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      const { done, rest } = readResponses(this.buf, this.heads.slice(this.responses.filter((r) => r.status >= 200).length));
      this.responses.push(...done);
      this.buf = rest;
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('error', () => {});
  }

  write(s: string | Buffer): void {
    this.socket.write(s);
  }

  async until(check: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.responses)} closed=${this.closed}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async final(n: number): Promise<RawResponse[]> {
    await this.until(() => this.responses.filter((r) => r.status >= 200).length >= n, `${n} responses`);
    return this.responses.filter((r) => r.status >= 200);
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('HTTP/1.1 fast path', () => {
  let up: Upstream;
  let proxy: TestProxy;
  let port: number;
  before(async () => {
    up = await httpUpstream((req, res, body) => {
      const url = req.url ?? '/';
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': '42' }).end();
      } else if (url === '/204') {
        res.writeHead(204).end();
      } else if (url === '/304') {
        res.writeHead(304, { etag: '"x"' }).end();
      } else if (url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('one,');
        setTimeout(() => {
          res.write('two,');
          res.addTrailers({ 'x-checksum': 'abc' });
          res.end('three');
        }, 10);
      } else if (url === '/close') {
        res.setHeader('connection', 'close');
        res.end('bye');
      } else {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url, method: req.method, body, expect: req.headers.expect ?? null, te: req.headers['transfer-encoding'] ?? null }));
      }
    });
    proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'out', routes: routeTo(C) })],
      clusters: [cluster(C, [up.port])],
    }));
    port = proxy.port('out');
  });
  after(async () => {
    await proxy.close();
    await up.close();
  });

  test('pipelined requests (one with a body) are answered in order on one connection', async () => {
    const c = new RawClient(port);
    c.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = await c.final(3);
    assert.deepEqual(r.map((x) => JSON.parse(x.body).url), ['/a', '/b', '/c']);
    assert.equal(JSON.parse(r[1]!.body).body, 'hello');
    assert.ok(r.every((x) => x.headers.connection === 'keep-alive'));
    assert.equal(c.closed, false);
    c.close();
  });

  test('HEAD, 204 and 304 carry no body and the connection stays in sync', async () => {
    const c = new RawClient(port);
    c.heads = [true, false, false, false];
    c.write('HEAD /json HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = await c.final(4);
    assert.deepEqual(r.map((x) => x.status), [200, 204, 304, 200]);
    assert.equal(r[0]!.headers['content-length'], '42', 'HEAD keeps the upstream content-length');
    assert.equal(r[0]!.body, '');
    assert.equal(r[1]!.headers['transfer-encoding'], undefined);
    assert.equal(r[2]!.headers.etag, '"x"');
    assert.equal(JSON.parse(r[3]!.body).url, '/after');
    c.close();
  });

  test('Expect: 100-continue is answered by the proxy; the body follows and is forwarded', async () => {
    const c = new RawClient(port);
    c.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
    await c.until(() => c.responses.some((r) => r.status === 100), '100 Continue');
    c.write('data');
    const [r] = await c.final(1);
    const echoed = JSON.parse(r!.body);
    assert.equal(echoed.body, 'data');
    assert.equal(echoed.expect, null, 'the upstream does not see Expect');
    c.close();
  });

  test('chunked request and response bodies pass through, response trailers included', async () => {
    const c = new RawClient(port);
    c.write('POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
    await new Promise((r) => setTimeout(r, 20));
    c.write('4\r\ndefg\r\n0\r\n\r\n');
    const [r] = await c.final(1);
    assert.equal(JSON.parse(r!.body).body, 'abcdefg');
    assert.equal(JSON.parse(r!.body).te, 'chunked');
    c.write('GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n');
    const r2 = (await c.final(2))[1]!;
    assert.equal(r2.headers['transfer-encoding'], 'chunked');
    assert.equal(r2.body, 'one,two,three');
    assert.equal(r2.trailers['x-checksum'], 'abc');
    c.close();
  });

  test('Connection: close from the client: answered with Connection: close, then the proxy closes', async () => {
    const c = new RawClient(port);
    c.write('GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const [r] = await c.final(1);
    assert.equal(r!.headers.connection, 'close');
    await c.until(() => c.closed, 'the proxy to close the connection');
  });

  test('Connection: close from the upstream: that upstream socket is dropped, the client keeps its connection', async () => {
    const before = up.connections;
    const c = new RawClient(port);
    c.write('GET /close HTTP/1.1\r\nHost: x\r\n\r\n');
    const [r] = await c.final(1);
    assert.equal(r!.body, 'bye');
    assert.equal(r!.headers.connection, 'keep-alive');
    c.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
    const r2 = (await c.final(2))[1]!;
    assert.equal(JSON.parse(r2.body).url, '/next');
    assert.ok(up.connections > before, 'a new upstream connection after the closed one');
    assert.equal(c.closed, false);
    c.close();
  });

  test('a request head over 16 KiB is rejected with 431 and the connection closed', async () => {
    const c = new RawClient(port);
    c.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
    const [r] = await c.final(1);
    assert.equal(r!.status, 431);
    await c.until(() => c.closed, 'close after 431');
  });

  test('malformed requests get 400; HTTP/1.0 is served (by node:http) and closed', async () => {
    const bad = new RawClient(port);
    bad.write('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n');
    assert.equal((await bad.final(1))[0]!.status, 400);
    const old = new RawClient(port);
    old.write('GET /old HTTP/1.0\r\nHost: x\r\n\r\n');
    await old.until(() => old.closed, 'HTTP/1.0 response and close');
    assert.equal(JSON.parse(old.responses.at(-1)?.body ?? 'null')?.url ?? '/old', '/old');
  });
});

describe('HTTP/1.1 fast path: stale pooled upstream connections', () => {
  test('an upstream that closes a pooled socket as it is reused: idempotent bodyless requests are retried once, others fail UC', async () => {
    // Each upstream connection answers one request with keep-alive, then closes (without an
    // answer) when the next request arrives on it: the "closed just as it was reused" race.
    let conns = 0;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      conns++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      let served = false;
      s.on('data', () => {
        if (served) {
          s.destroy();
          return;
        }
        served = true;
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const upPort = (server.address() as AddressInfo).port;
    const proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'out', routes: routeTo(C) })],
      clusters: [cluster(C, [upPort])],
    }));
    try {
      const c = new RawClient(proxy.port('out'));
      c.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n');
      await c.final(1);
      c.write('GET /2 HTTP/1.1\r\nHost: x\r\n\r\n');
      const r = await c.final(2);
      assert.equal(r[1]!.status, 200, 'retried on a fresh connection');
      assert.equal(r[1]!.body, 'ok');
      assert.equal(conns, 2);
      // A POST is not replayed: the upstream may have acted on it.
      c.write('POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
      const r3 = (await c.final(3))[2]!;
      assert.equal(r3.status, 503);
      assert.match(r3.body, /connection termination/);
      const metrics = proxy.engine.metrics.render();
      assert.match(metrics, /istio_requests_total\{[^}]*response_code="503",response_flags="UC"[^}]*\} 1/);
      assert.match(metrics, /istio_requests_total\{[^}]*response_code="200",response_flags="-"[^}]*\} 2/);
      c.close();
    } finally {
      await proxy.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
