import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { EXTENSION_TYPE_URL } from '@tern/xds';
import { cluster, httpListener, httpUpstream, request, routeTo, snapshot, startProxy, type TestProxy, type Upstream } from './dataplane-helpers.ts';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/tern.test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const EchoService = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
} as unknown as grpc.ServiceDefinition;

type Msg = { n?: number; text?: string; fail?: boolean };

function startGrpcServer(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(EchoService, {
    unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      if (call.request.fail) {
        cb({ code: grpc.status.NOT_FOUND, details: 'no such thing: ' + call.request.text });
        return;
      }
      const md = new grpc.Metadata();
      md.set('x-served-by', 'echo');
      call.sendMetadata(md);
      cb(null, { text: `echo:${call.request.text}`, n: Number(call.metadata.get('x-n')[0] ?? 0) });
    },
    serverStream(call: grpc.ServerWritableStream<Msg, Msg>) {
      for (let i = 0; i < (call.request.n ?? 0); i++) call.write({ n: i });
      const tr = new grpc.Metadata();
      tr.set('x-trailer', 'done');
      call.end(tr);
    },
    clientStream(call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      let sum = 0;
      call.on('data', (m: Msg) => (sum += m.n ?? 0));
      call.on('end', () => cb(null, { n: sum }));
    },
    bidi(call: grpc.ServerDuplexStream<Msg, Msg>) {
      call.on('data', (m: Msg) => call.write({ text: `re:${m.text}` }));
      call.on('end', () => call.end());
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, port })));
  });
}

const EchoClient = grpc.makeGenericClientConstructor(EchoService, 'Echo');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => any;
type Client = grpc.Client & { unary: Fn; serverStream: Fn; clientStream: Fn; bidi: Fn };

describe('gRPC through the proxy (h2c downstream, HTTP/2 upstream)', () => {
  let g: { server: grpc.Server; port: number };
  let proxy: TestProxy;
  let client: Client;
  before(async () => {
    g = await startGrpcServer();
    proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'grpc', routes: routeTo('outbound|7070||echo.default.svc.cluster.local') })],
      clusters: [cluster('outbound|7070||echo.default.svc.cluster.local', [g.port], { h2: true })],
    }));
    client = new EchoClient(`127.0.0.1:${proxy.port('grpc')}`, grpc.credentials.createInsecure()) as unknown as Client;
  });
  after(async () => {
    client.close();
    await proxy.close();
    g.server.forceShutdown();
  });

  test('unary: response, headers metadata and request metadata pass', async () => {
    const md = new grpc.Metadata();
    md.set('x-n', '7');
    let headers: grpc.Metadata | undefined;
    const res = await new Promise<Msg>((resolve, reject) => {
      const call = client.unary({ text: 'hi' }, md, (err: grpc.ServiceError | null, r: Msg) => (err ? reject(err) : resolve(r))) as grpc.ClientUnaryCall;
      call.on('metadata', (m: grpc.Metadata) => (headers = m));
    });
    assert.deepEqual(res, { text: 'echo:hi', n: 7 });
    assert.equal(headers?.get('x-served-by')[0], 'echo');
  });

  test('unary error: grpc-status and grpc-message survive (NOT_FOUND)', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      client.unary({ text: 'ghost', fail: true }, (e: grpc.ServiceError | null) => resolve(e!));
    });
    assert.equal(err.code, grpc.status.NOT_FOUND);
    assert.equal(err.details, 'no such thing: ghost');
  });

  test('server streaming with trailers', async () => {
    const got: number[] = [];
    let trailer: string | undefined;
    await new Promise<void>((resolve, reject) => {
      const call = client.serverStream({ n: 50 }) as grpc.ClientReadableStream<Msg>;
      call.on('data', (m: Msg) => got.push(m.n!));
      call.on('status', (s: grpc.StatusObject) => {
        trailer = s.metadata.get('x-trailer')[0] as string | undefined;
        if (s.code === grpc.status.OK) resolve();
        else reject(new Error(s.details));
      });
      call.on('error', reject);
    });
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
    assert.equal(trailer, 'done');
  });

  test('client streaming', async () => {
    const res = await new Promise<Msg>((resolve, reject) => {
      const call = client.clientStream((err: grpc.ServiceError | null, r: Msg) => (err ? reject(err) : resolve(r))) as grpc.ClientWritableStream<Msg>;
      for (let i = 1; i <= 100; i++) call.write({ n: i });
      call.end();
    });
    assert.equal(res.n, 5050);
  });

  test('bidirectional streaming, interleaved', async () => {
    const call = client.bidi() as grpc.ClientDuplexStream<Msg, Msg>;
    const replies: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('status', (s: grpc.StatusObject) => (s.code === 0 ? resolve() : reject(new Error(s.details))));
      call.on('error', reject);
    });
    for (let i = 0; i < 10; i++) {
      const next = new Promise<Msg>((r) => call.once('data', r));
      call.write({ text: `m${i}` });
      replies.push((await next).text!);
    }
    call.end();
    await done;
    assert.deepEqual(replies, Array.from({ length: 10 }, (_, i) => `re:m${i}`));
  });

  test('gRPC metrics carry request_protocol="grpc" and grpc_response_status', () => {
    const text = proxy.engine.metrics.render();
    assert.match(text, /istio_requests_total\{[^}]*request_protocol="grpc",response_code="200",response_flags="-",grpc_response_status="5"[^}]*\} 1/);
    assert.match(text, /istio_requests_total\{[^}]*request_protocol="grpc",response_code="200",response_flags="-",grpc_response_status="0"[^}]*\} 4/);
  });

  test('a gRPC call with no route gets a gRPC status (UNIMPLEMENTED), not an HTTP error page', async () => {
    const p2 = await startProxy(snapshot({ listeners: [httpListener({ name: 'none', routes: { name: 'r', virtual_hosts: [] } })] }));
    const c = new EchoClient(`127.0.0.1:${p2.port('none')}`, grpc.credentials.createInsecure()) as unknown as Client;
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => c.unary({ text: 'x' }, (e: grpc.ServiceError | null) => resolve(e!)));
      assert.equal(err.code, grpc.status.UNIMPLEMENTED);
    } finally {
      c.close();
      await p2.close();
    }
  });
});

describe('HTTP/2 and protocol translation', () => {
  let up: Upstream;
  let proxy: TestProxy;
  before(async () => {
    up = await httpUpstream();
    proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'h', routes: routeTo('web') })],
      clusters: [cluster('web', [up.port])],
    }));
  });
  after(async () => {
    await proxy.close();
    await up.close();
  });

  test('h2c (prior knowledge) downstream to an HTTP/1.1 upstream, many streams on one session', async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.port('h')}`);
    try {
      const one = (i: number) => new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': `/h2/${i}`, 'content-type': 'text/plain' });
        let status = 0;
        let body = '';
        s.on('response', (h) => (status = Number(h[':status'])));
        s.on('data', (d: Buffer) => (body += d));
        s.on('end', () => resolve({ status, body }));
        s.on('error', reject);
        s.end(`payload-${i}`);
      });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => one(i)));
      results.forEach((r, i) => {
        assert.equal(r.status, 200);
        const e = JSON.parse(r.body);
        assert.equal(e.url, `/h2/${i}`);
        assert.equal(e.body, `payload-${i}`);
        assert.ok(e.headers.host, 'the :authority became Host');
      });
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 upstream sessions', () => {
  test('one session is multiplexed; after GOAWAY the next request opens a new one', async () => {
    let sessions = 0;
    let goawayNext = false;
    const server = http2.createServer();
    server.on('session', () => sessions++);
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`served ${headers[':path']}`);
      if (goawayNext) {
        goawayNext = false;
        stream.session?.close(); // GOAWAY, then the connection closes once this stream is done
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'h', routes: routeTo('h2up') })], clusters: [cluster('h2up', [port], { h2: true })] }));
    try {
      const get = (p: string) => request(proxy.port('h'), { path: p });
      const first = await Promise.all(Array.from({ length: 10 }, (_, i) => get(`/m${i}`)));
      first.forEach((r, i) => assert.equal(r.body, `served /m${i}`));
      assert.equal(sessions, 1, 'ten concurrent requests share one upstream session');
      goawayNext = true;
      assert.equal((await get('/bye')).body, 'served /bye');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await get('/after')).body, 'served /after');
      assert.equal(sessions, 2, 'a new session after GOAWAY');
    } finally {
      await proxy.close();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('TLS listener with ALPN (h2 and http/1.1)', () => {
  let dir: string;
  let cert: Buffer;
  let up: Upstream;
  let proxy: TestProxy;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-days', '1', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    cert = fs.readFileSync(path.join(dir, 'cert.pem'));
    up = await httpUpstream();
    const transportSocket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': EXTENSION_TYPE_URL.downstreamTls,
        common_tls_context: {
          tls_certificates: [{ certificate_chain: { inline_string: cert.toString() }, private_key: { filename: path.join(dir, 'key.pem') } }],
          alpn_protocols: ['h2', 'http/1.1'],
        },
      },
    };
    proxy = await startProxy(snapshot({
      listeners: [httpListener({ name: 'tls', routes: routeTo('web'), transportSocket })],
      clusters: [cluster('web', [up.port])],
    }));
  });
  after(async () => {
    await proxy.close();
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an h2 client negotiates h2 and gets x-forwarded-proto https', async () => {
    const session = http2.connect(`https://localhost:${proxy.port('tls')}`, { ca: cert });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = session.request({ ':path': '/tls' });
        let st = 0;
        let b = '';
        s.on('response', (h) => (st = Number(h[':status'])));
        s.on('data', (d: Buffer) => (b += d));
        s.on('end', () => resolve({ status: st, body: b }));
        s.on('error', reject);
        s.end();
      });
      assert.equal(status, 200);
      assert.equal(session.alpnProtocol, 'h2');
      assert.equal(JSON.parse(body).headers['x-forwarded-proto'], 'https');
    } finally {
      session.close();
    }
  });

  test('an HTTP/1.1 client negotiates http/1.1', async () => {
    const { status, alpn } = await new Promise<{ status: number; alpn: string | false | null }>((resolve, reject) => {
      const req = https.request({ host: 'localhost', port: proxy.port('tls'), path: '/tls1', ca: cert, ALPNProtocols: ['http/1.1'] } as https.RequestOptions, (res) => {
        const negotiated = (res.socket as import('node:tls').TLSSocket).alpnProtocol;
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, alpn: negotiated }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200);
    assert.equal(alpn, 'http/1.1');
  });
});
