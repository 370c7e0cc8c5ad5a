// Stream idle timeouts (HCM stream_idle_timeout, route idle_timeout) through the real data plane:
// a stream silent in both directions is ended, an active one is not, whatever its length.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { JsonObject } from '@tern/xds';
import { cluster, httpListener, httpUpstream, request, routeTo, snapshot, startProxy, type TestProxy } from './dataplane-helpers.ts';
import { SWEEP_MS } from '../src/dataplane/stream-idle.ts';

const SVC = 'outbound|9080||reviews.default.svc.cluster.local';
const IDLE_MS = 500;
const open: { close(): Promise<void> }[] = [];
after(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void, routeExtra: JsonObject = {}): Promise<TestProxy> {
  const up = await httpUpstream(handler);
  open.push(up);
  // Route timeout disabled: only the idle timeout can end these streams.
  const p = await startProxy(snapshot({
    listeners: [httpListener({ name: 'out', routes: routeTo(SVC, { timeout: '0s', ...routeExtra }), hcm: { stream_idle_timeout: `${IDLE_MS / 1000}s` } })],
    clusters: [cluster(SVC, [up.port])],
  }), { accessLog: true });
  open.push(p);
  return p;
}

const lastLog = (p: TestProxy) => JSON.parse(p.accessLog.at(-1)!) as { response_flags: string; response_code: number };

describe('stream idle timeout', { timeout: 20_000 }, () => {
  test('an upstream silent before its response: 408 "stream timeout", flag SI, after about the idle time', async () => {
    const p = await setup((_req, res) => setTimeout(() => res.end('late'), 3000).unref());
    const t0 = performance.now();
    const r = await request(p.port('out'), { agent: false });
    const ms = performance.now() - t0;
    assert.equal(r.status, 408);
    assert.equal(r.body, 'stream timeout');
    assert.ok(ms >= IDLE_MS - SWEEP_MS && ms < IDLE_MS + 3 * SWEEP_MS, `ended after ${ms.toFixed(0)} ms`);
    assert.equal(lastLog(p).response_flags, 'SI');
  });

  test('a response streaming a chunk every 150 ms for 1.5 s (three idle periods) completes', async () => {
    const p = await setup((_req, res) => {
      res.writeHead(200);
      let n = 0;
      const t = setInterval(() => {
        res.write(`chunk${n}\n`);
        if (++n === 10) {
          clearInterval(t);
          res.end();
        }
      }, 150);
    });
    const r = await request(p.port('out'), { agent: false });
    assert.equal(r.status, 200);
    assert.equal(r.body.split('\n').filter(Boolean).length, 10);
    assert.equal(lastLog(p).response_flags, '-');
  });

  test('a response that stalls after its first bytes is reset (the client sees the body cut short)', async () => {
    const p = await setup((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10));
    });
    const outcome = await new Promise<string>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: p.port('out'), path: '/', agent: false }, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve('complete'));
        res.on('error', () => resolve('cut'));
        res.on('aborted', () => resolve('cut'));
      });
      req.on('error', () => resolve('cut'));
      req.end();
    });
    assert.equal(outcome, 'cut');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(lastLog(p).response_flags, 'SI');
  });

  test("a route's idle_timeout overrides the HCM's; 0s disables it", async () => {
    const p = await setup((_req, res) => setTimeout(() => res.end('slow but fine'), IDLE_MS * 2).unref(), { idle_timeout: '0s' });
    const r = await request(p.port('out'), { agent: false });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slow but fine');
  });

  test('HTTP/2 downstream: a silent upstream gets the stream a 408', async () => {
    const p = await setup((_req, res) => setTimeout(() => res.end('late'), 3000).unref());
    const session = http2.connect(`http://127.0.0.1:${p.port('out')}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':path': '/' });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.end();
      });
      assert.equal(status, 408);
    } finally {
      session.close();
    }
  });
});
