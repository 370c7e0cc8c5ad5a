/**
 * Istio's `consistentHash.httpCookie {name, ttl}` as Envoy runs it: a client without the cookie
 * gets one generated on its first response, and every request carrying it reaches the same host.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, test } from 'node:test';
import { cluster, httpListener, httpUpstream, snapshot, startProxy, type Upstream } from './dataplane-helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function get(port: number, headers: Record<string, string> = {}): Promise<{ body: string; setCookie: string[] | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ body, setCookie: res.headers['set-cookie'] }));
      })
      .on('error', reject);
  });
}

test('ring hash on a generated cookie: Set-Cookie on the first response, the same host ever after', async () => {
  const ups: Upstream[] = [];
  for (let i = 0; i < 4; i++) {
    const u = await httpUpstream((_req, res) => res.end(`host-${i}`));
    ups.push(u);
    cleanups.push(() => u.close());
  }
  const c = { ...cluster('sticky', ups.map((u) => u.port)), lb_policy: 'RING_HASH' };
  const routes = {
    name: 'r',
    virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'sticky', hash_policy: [{ cookie: { name: 'user', ttl: '3600s', path: '/' } }] } }] }],
  };
  const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'out', routes })], clusters: [c] }));
  cleanups.push(() => proxy.close());
  const port = proxy.port('out');

  const first = await get(port);
  assert.ok(first.setCookie, 'a cookie is generated');
  const m = /^user="([0-9a-f]+)"; Max-Age=3600; Path=\/; HttpOnly$/.exec(first.setCookie[0]!);
  assert.ok(m, first.setCookie[0]);
  for (let i = 0; i < 50; i++) {
    const r = await get(port, { cookie: `other=1; user=${m[1]}` });
    assert.equal(r.body, first.body, 'the cookie pins the host chosen for the first request');
    assert.equal(r.setCookie, undefined, 'no new cookie once the client has one');
  }
  // Different cookie values spread over the hosts.
  const seen = new Set<string>();
  for (let i = 0; i < 64; i++) seen.add((await get(port, { cookie: `user=${i.toString(16)}` })).body);
  assert.ok(seen.size >= 3, `keys spread over hosts: ${[...seen]}`);
});
