/**
 * A sidecar sits in front of every app: ambiguous HTTP/1.1 framing (the request-smuggling shapes)
 * must be refused with 400 and must never reach an upstream.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { cluster, httpListener, httpUpstream, routeTo, snapshot, startProxy } from './dataplane-helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function raw(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let out = '';
    const timer = setTimeout(() => s.destroy(), 2000);
    s.on('data', (d) => (out += d));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => {});
  });
}

test('ambiguous framing gets 400 and reaches no upstream', async () => {
  const up = await httpUpstream();
  cleanups.push(() => up.close());
  const proxy = await startProxy(snapshot({ listeners: [httpListener({ name: 'out', routes: routeTo('c') })], clusters: [cluster('c', [up.port])] }));
  cleanups.push(() => proxy.close());
  const port = proxy.port('out');
  const cases: Record<string, string> = {
    'Content-Length with Transfer-Encoding': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
    'two Transfer-Encodings': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n',
    'bare CR in a header': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rX-B: c\r\n\r\n',
    'space before the colon': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello',
    'two different Content-Lengths': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello',
  };
  for (const [name, data] of Object.entries(cases)) {
    const out = await raw(port, data);
    assert.match(out, /^HTTP\/1\.1 400 /, name);
  }
  assert.deepEqual(up.requests, [], 'nothing reached the upstream');
  // The same listener still serves a well-formed request.
  assert.match(await raw(port, 'GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
  assert.equal(up.requests.length, 1);
});
