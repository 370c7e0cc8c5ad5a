import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { AppProbersError, parseAppProbers, startAppHealth, startHealth } from '../src/admin/health.ts';

// Kubelet's view of an injected pod: the proxy's readiness on the health port, and the app's
// original probes run by the proxy behind the rewritten /app-health/... paths.

const closers: (() => void)[] = [];
after(() => closers.forEach((c) => c()));

async function app(handler: http.RequestListener): Promise<number> {
  const s = http.createServer(handler).listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  closers.push(() => s.close());
  return (s.address() as AddressInfo).port;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

test('/healthz/ready: 503 until the proxy is ready, 200 then, 503 while draining', async () => {
  let ready = false;
  let draining = false;
  const s = await startHealth({ ready: () => ready, draining: () => draining }, '127.0.0.1', 0);
  closers.push(() => s.close());
  const port = (s.address() as AddressInfo).port;
  assert.equal((await get(port, '/healthz/ready')).status, 503);
  ready = true;
  assert.deepEqual(await get(port, '/healthz/ready'), { status: 200, body: 'LIVE\n' });
  draining = true;
  assert.deepEqual(await get(port, '/healthz/ready'), { status: 503, body: 'DRAINING\n' });
  assert.equal((await get(port, '/other')).status, 404);
});

test('/app-health/<container>/<probe> runs the original probe against the app: http status passed on, tcp, unknown path, timeouts', async () => {
  let appStatus = 200;
  const appPort = await app((req, res) => {
    if (req.url === '/slow') return setTimeout(() => res.end('late'), 1500);
    assert.equal(req.headers['x-probe'], 'yes');
    res.writeHead(appStatus).end();
  });
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const probers = parseAppProbers(JSON.stringify({
    '/app-health/web/readyz': { httpGet: { path: '/ready', port: appPort, scheme: 'HTTP', httpHeaders: [{ name: 'x-probe', value: 'yes' }] } },
    '/app-health/web/livez': { tcpSocket: { port: appPort } },
    '/app-health/db/livez': { tcpSocket: { port: closed } },
    '/app-health/web/startupz': { httpGet: { path: '/slow', port: appPort }, timeoutSeconds: 0.3 },
  }));
  const s = await startAppHealth(probers, '127.0.0.1', 0);
  closers.push(() => s.close());
  const port = (s.address() as AddressInfo).port;
  assert.equal((await get(port, '/app-health/web/readyz')).status, 200);
  appStatus = 500;
  assert.deepEqual(await get(port, '/app-health/web/readyz'), { status: 500, body: 'app answered 500\n' });
  appStatus = 302;
  assert.equal((await get(port, '/app-health/web/readyz')).status, 200, 'kubelet passes 3xx');
  assert.equal((await get(port, '/app-health/web/livez')).status, 200);
  const down = await get(port, '/app-health/db/livez');
  assert.equal(down.status, 503);
  assert.match(down.body, /ECONNREFUSED/);
  const slow = await get(port, '/app-health/web/startupz');
  assert.equal(slow.status, 503);
  assert.match(slow.body, /no answer within 300 ms/);
  assert.equal((await get(port, '/app-health/nope/livez')).status, 404);
});

test('TERN_KUBE_APP_PROBERS: bad input is refused naming the entry and the rule', () => {
  const bad = (v: unknown, re: RegExp) => assert.throws(() => parseAppProbers(typeof v === 'string' ? v : JSON.stringify(v)), (e: Error) => e instanceof AppProbersError && re.test(e.message));
  bad('{oops', /not JSON/);
  bad([], /must be an object/);
  bad({ '/healthz': { tcpSocket: { port: 1 } } }, /\["\/healthz"\]: the path must be \/app-health/);
  bad({ '/app-health/a/livez': { httpGet: { port: 0 } } }, /\.httpGet\.port: must be a port number/);
  bad({ '/app-health/a/livez': { httpGet: { port: 80, scheme: 'FTP' } } }, /\.httpGet\.scheme: must be HTTP or HTTPS/);
  bad({ '/app-health/a/livez': {} }, /needs httpGet or tcpSocket/);
  bad({ '/app-health/a/livez': { tcpSocket: { port: 80 }, timeoutSeconds: -1 } }, /timeoutSeconds: must be a positive number/);
});
