import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { freePortBlock, freePortOutside, httpGet } from './lib/sidecar.ts';
import { type DemoMesh, ensureProxyBundle, startDemoMesh } from '../demo/mesh.ts';
// test: one database backend

// The demo mesh (demo/, issue 10) against a real control plane: Bookinfo's six apps behind seven
// real `tern-proxy` sidecars (bundle), each with its own certificate, mTLS between them, the
// gateway in front. Round robin over the reviews versions, sign-in and `end-user` routing, the
// certificates and the graph's mTLS share, no process left after stop(), and a second demo against
// the same control plane (in a child process that is then SIGKILLed: its sidecars must follow).

let api: TestApi;
let mesh: DemoMesh | undefined;
const basePort = await freePortBlock(40);
const gatewayPort = await freePortOutside(basePort, 40);
// Sidecars push telemetry every 300 ms (they inherit the environment).
process.env.TERN_TELEMETRY_INTERVAL_MS = '300';

/** PIDs of the live processes whose parent is `ppid` and whose command line runs the proxy bundle. */
function proxyChildren(ppid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== ppid || fields[0] === 'Z') continue;
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('tern-proxy')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, telemetryFlushMs: 100, mtls: true }, undefined, { xds: true });
  await ensureProxyBundle();
  mesh = await startDemoMesh({ api: api.url, token: api.token, xdsAddress: api.xdsAddress!, gatewayPort, basePort, traffic: { rps: 4 } });
});

after(async () => {
  await mesh?.stop();
  await api?.close();
});

type Version = 'v1' | 'v2' | 'v3';
/** Which reviews version rendered the page: v1 has no stars, v2 black ones, v3 red ones. */
function reviewsVersion(page: string): Version | 'error' {
  if (!page.includes('Book Reviews')) return 'error';
  const black = page.includes('<font color="black">');
  const red = page.includes('<font color="red">');
  const stars = page.includes('glyphicon-star');
  const v = black && !red ? 'v2' : red && !black ? 'v3' : !stars ? 'v1' : 'error';
  // The page also names the pod that served the reviews: both must agree.
  assert.match(page, new RegExp(`<u>reviews-${v}</u>`));
  return v;
}

async function page(cookie?: string): Promise<string> {
  const r = await httpGet(gatewayPort, '/productpage', cookie ? { cookie } : {});
  assert.equal(r.status, 200, r.body);
  return r.body;
}

test('GET /productpage through the gateway: the book, its details, and reviews from all three versions in turn', async () => {
  const seen = new Set<string>();
  const first = await page();
  assert.match(first, /<h3[^>]*>The Comedy of Errors<\/h3>/);
  assert.match(first, /Book Details[\s\S]*William|paperback/);
  assert.match(first, /<dt>Publisher:<\/dt><dd>PublisherA<\/dd>/);
  assert.match(first, /An extremely entertaining play by Shakespeare/);
  assert.doesNotMatch(first, /Welcome/);
  seen.add(reviewsVersion(first));
  // Round robin over three endpoints (the traffic generator's requests interleave with ours).
  for (let i = 0; i < 30 && seen.size < 3; i++) seen.add(reviewsVersion(await page()));
  assert.deepEqual([...seen].sort(), ['v1', 'v2', 'v3']);
  for (const w of ['productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1']) assert.ok(mesh!.workload(w).requests() > 0, w);
  assert.throws(() => mesh!.workload('reviews-v4'), /no demo workload "reviews-v4"/);
});

test('signed in as jason: the page says so, and reviews gets end-user: jason (a VirtualService sends jason to v2)', async () => {
  const login = await new Promise<{ status: number; cookie: string; location: string }>((resolve, reject) => {
    const body = 'user=jason';
    import('node:http').then(({ default: http }) => {
      const req = http.request({ host: '127.0.0.1', port: gatewayPort, method: 'POST', path: '/login', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, cookie: String(res.headers['set-cookie']?.[0] ?? '').split(';')[0]!, location: String(res.headers.location) }));
      });
      req.on('error', reject);
      req.end(body);
    }, reject);
  });
  assert.equal(login.status, 302);
  assert.equal(login.location, '/productpage');
  assert.equal(login.cookie, 'user=jason');
  assert.match(await page(login.cookie), /Welcome jason/);

  const vs = fs.readFileSync(path.join(import.meta.dirname, '../samples/bookinfo/virtual-service-reviews-test-v2.yaml'), 'utf8');
  await apply(vs);
  try {
    // Once the route is in the sidecars: jason only ever sees black stars, everyone else v1.
    await eventually(async () => {
      const [j, a] = await Promise.all([page(login.cookie), page()]);
      return reviewsVersion(j) === 'v2' && reviewsVersion(a) === 'v1';
    }, 10_000, 'jason routed to v2');
    for (let i = 0; i < 6; i++) {
      assert.equal(reviewsVersion(await page(login.cookie)), 'v2');
      assert.equal(reviewsVersion(await page()), 'v1');
    }

    // Failure paths, for jason only. ratings answers 500: reviews v2 says so under each review.
    const abort = fs.readFileSync(path.join(import.meta.dirname, '../samples/bookinfo/virtual-service-ratings-test-abort.yaml'), 'utf8');
    await apply(abort);
    const unavailable = await eventually(async () => {
      const j = await page(login.cookie);
      return j.includes('Ratings service is currently unavailable') ? j : undefined;
    }, 10_000, 'ratings fails for jason');
    assert.match(unavailable, /<u>reviews-v2<\/u>/);
    assert.doesNotMatch(unavailable, /glyphicon-star/);
    assert.equal(reviewsVersion(await page()), 'v1');
    // details and reviews answer 503 to jason: the page still renders, with the sample's messages.
    await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: details }
spec:
  hosts: [details]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    fault: { abort: { percentage: { value: 100 }, httpStatus: 503 } }
    route: [{ destination: { host: details, subset: v1 } }]
  - route: [{ destination: { host: details, subset: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    fault: { abort: { percentage: { value: 100 }, httpStatus: 503 } }
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
    const broken = await eventually(async () => {
      const j = await page(login.cookie);
      return j.includes('Error fetching product details!') && j.includes('Error fetching product reviews!') ? j : undefined;
    }, 10_000, 'details and reviews fail for jason');
    assert.match(broken, /Sorry, product details are currently unavailable for this book\./);
    assert.match(broken, /Sorry, product reviews are currently unavailable for this book\./);
    assert.match(broken, /Welcome jason/);
    const anonymous = await page();
    assert.match(anonymous, /<dt>Publisher:<\/dt><dd>PublisherA<\/dd>/);
    assert.equal(reviewsVersion(anonymous), 'v1');

    // Signed out, jason is anyone.
    const out = await httpGet(gatewayPort, '/logout', { cookie: login.cookie });
    assert.equal(out.status, 302);
    assert.match(String(out.headers['set-cookie']), /user=;.*Max-Age=0/);
  } finally {
    for (const name of ['reviews', 'ratings', 'details']) {
      const del = await api.rest('DELETE', `/api/v1/resources/VirtualService/default/${name}`);
      assert.equal(del.status, 200, `delete VirtualService ${name}: ${JSON.stringify(del.body)}`);
    }
  }
});

async function apply(yaml: string): Promise<void> {
  const r = await api.rest('POST', '/api/v1/apply', { yaml, namespace: 'default' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

test('every sidecar has its certificate, and the graph shows the calls over mutual TLS', async () => {
  for (const w of mesh!.workloads) {
    const certs = JSON.parse((await httpGet(w.adminPort, '/certs')).body) as { identity: { state: string; spiffe_id?: string } };
    assert.equal(certs.identity.state, 'ready', `${w.name}: ${JSON.stringify(certs.identity)}`);
    const sa = w.name === 'istio-ingressgateway' ? 'istio-ingressgateway-service-account' : `bookinfo-${w.service}`;
    assert.ok(JSON.stringify(certs.identity).includes(`spiffe://cluster.local/ns/default/sa/${sa}`), JSON.stringify(certs.identity));
  }
  const proxies = await api.rest('GET', '/api/v1/proxies?namespace=default');
  assert.equal(proxies.status, 200, JSON.stringify(proxies.body));
  const list = proxies.body.proxies as { id: string; certificate: { spiffeId: string } | null }[];
  for (const w of mesh!.workloads) {
    const p = list.find((x) => x.id === `${w.name}.default`);
    assert.ok(p?.certificate, `${w.name}: ${JSON.stringify(p)}`);
  }

  type Edge = { source: string; target: string; requests: number; mtlsShare: number };
  const id = (w: string) => `workload:default:${w}`;
  const wanted: [string, string][] = [
    ['istio-ingressgateway', 'productpage-v1'], ['productpage-v1', 'details-v1'], ['productpage-v1', 'reviews-v1'], ['productpage-v1', 'reviews-v2'],
    ['productpage-v1', 'reviews-v3'], ['reviews-v2', 'ratings-v1'], ['reviews-v3', 'ratings-v1'],
  ];
  let edges: Edge[] = [];
  await eventually(async () => {
    const r = await api.rest('GET', '/api/v1/graph?window=5m&granularity=workload&namespace=default');
    edges = r.body.edges as Edge[];
    return wanted.every(([s, t]) => edges.some((e) => e.source === id(s) && e.target === id(t) && e.requests > 0));
  }, 15_000, 'the graph has every Bookinfo edge').catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(edges)}`);
  });
  for (const [s, t] of wanted) {
    const e = edges.find((x) => x.source === id(s) && x.target === id(t))!;
    assert.equal(e.mtlsShare, 1, `${s} -> ${t}: ${JSON.stringify(e)}`);
  }
  assert.ok(!edges.some((e) => e.source === id('reviews-v1') && e.target === id('ratings-v1')), 'reviews v1 never calls ratings');
});

test('stop() leaves no process; a second demo against the same control plane works, and its sidecars die with their parent', async () => {
  const pids = proxyChildren(process.pid);
  assert.equal(pids.length, 7, `sidecar processes: ${pids.join(' ')}`);
  await mesh!.stop();
  await mesh!.stop();
  mesh = undefined;
  assert.deepEqual(pids.filter(alive), []);
  await assert.rejects(httpGet(gatewayPort, '/productpage'), /ECONNREFUSED/);

  // Refusals: a bad option names itself; a token that may not mint identities fails cleanly,
  // releasing the ports it took (the second run below binds the same ones).
  const common = { api: api.url, xdsAddress: api.xdsAddress!, gatewayPort, basePort, traffic: false as const };
  await assert.rejects(startDemoMesh({ ...common, token: api.token, basePort: 80 }), /basePort: must be an integer port in 1024…65436, got 80/);
  await assert.rejects(startDemoMesh({ ...common, token: api.token, proxyBundle: '/nonexistent/tern-proxy.mjs' }), /proxyBundle: \/nonexistent\/tern-proxy.mjs does not exist/);
  await assert.rejects(startDemoMesh({ ...common, token: await api.makeToken('editor') }), /join-tokens: 403 .*admin role/);
  assert.deepEqual(proxyChildren(process.pid), []);

  // The second run, in a process of its own (demo/run.ts), on the same ports and control plane,
  // naming it by host name as a compose file or a cluster would (the bootstrap resolves it by DNS).
  const xdsByName = api.xdsAddress!.replace(/^127\.0\.0\.1:/, 'localhost:');
  assert.notEqual(xdsByName, api.xdsAddress);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, '../demo/run.ts'), '--api', api.url, '--token', api.token, '--xds', xdsByName, '--gateway-port', String(gatewayPort), '--base-port', String(basePort), '--rps', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await eventually(() => out.includes('open http://127.0.0.1:'), 40_000, 'the second demo is up').catch((err: Error) => {
      throw new Error(`${err.message}; output:\n${out}`);
    });
    assert.equal(reviewsVersion(await page()) === 'error', false);
    const second = proxyChildren(child.pid!);
    assert.equal(second.length, 7, out);
    // No stop(), no signal handler: the parent vanishes, the sidecars notice and go.
    child.kill('SIGKILL');
    await exited;
    await eventually(() => second.every((pid) => !alive(pid)), 10_000, 'orphaned sidecars exit').catch((err: Error) => {
      throw new Error(`${err.message}; alive: ${second.filter(alive).join(' ')}`);
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
