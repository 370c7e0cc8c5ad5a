import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestApi, type TestApi } from '../apps/api/test/helpers.ts';
import { eventually } from '../apps/api/test/xds-fixtures.ts';
import { freePort, httpGet, joinToken, startApp, startSidecar, type Sidecar } from './lib/sidecar.ts';

// Istio AuthorizationPolicy end to end: YAML applied through the REST API, compiled by the control
// plane into RBAC filters, pushed over ADS and enforced by the inbound side of real sidecars, with
// real callers of different identities. The compiler (compile-authz.test.ts) and the proxy's RBAC
// engine are tested on their own; this checks that the two agree on Istio's semantics.
//
// The mesh (local mode, one app behind every inbound listener, PERMISSIVE so plain text reaches
// the same listeners as mutual TLS):
//   reviews-v1      default/sa reviews      inbound 9080 -> ports.rv, 9090 -> ports.rv9090
//   productpage-v1  default/sa productpage  inbound 9080 -> ports.pp; calls reviews:9080 and :9090 over mTLS
//   ratings-v1      other/sa ratings        inbound 9080 -> ports.rt; calls reviews:9080 over mTLS
// plus plaintext clients straight to the inbound ports, from 127.0.0.1 or 127.0.0.2 (Linux routes
// the whole 127/8 to loopback), for ipBlocks and source.ip.
//
// Each case applies one policy set, waits until the whole matrix gives the expected verdicts (the
// push converged and connections that served the old config have drained), then runs the matrix
// once more and asserts every cell, the denial body, that denied requests never reached the app,
// and that the server sidecars counted exactly those denials (and AUDIT matches).

let api: TestApi;
let app: http.Server;
const sidecars: Record<'reviews' | 'productpage' | 'ratings', Sidecar> = {} as never;
const ports = {
  rv: await freePort(), rv9090: await freePort(), pp: await freePort(), rt: await freePort(),
  ppUp: await freePort(), ppUp9090: await freePort(), rtUp: await freePort(),
};
const admin = { reviews: await freePort(), productpage: await freePort(), ratings: await freePort() };
/** x-req-id of every request the app answered. */
const reached = new Set<string>();

before(async () => {
  api = await startTestApi({ xdsDebounceMs: 20, xdsDebounceMaxMs: 200, mtls: true }, undefined, { xds: true });
  const started = await startApp((req, res) => {
    const id = String(req.headers['x-req-id'] ?? '');
    reached.add(id);
    req.resume();
    res.end(`app:${id}`);
  });
  app = started.server;
  const ok = (what: string, r: { status: number; body: unknown }) => assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.body)}`);
  const put = async (p: string, body: unknown) => ok(`PUT ${p}`, await api.rest('PUT', p, body));
  await put('/api/v1/registry/services/default/reviews', { namespace: 'default', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }, { number: 9090, protocol: 'HTTP', name: 'http-admin' }] });
  await put('/api/v1/registry/services/default/productpage', { namespace: 'default', name: 'productpage', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] });
  await put('/api/v1/registry/services/other/ratings', { namespace: 'other', name: 'ratings', ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] });
  await put('/api/v1/registry/workloads/default/reviews-v1', { namespace: 'default', name: 'reviews-v1', serviceAccount: 'reviews', labels: { app: 'reviews', version: 'v1', 'security.istio.io/tlsMode': 'istio' }, addresses: ['127.0.0.1'], ports: { '9080': ports.rv, '9090': ports.rv9090 } });
  await put('/api/v1/registry/workloads/default/productpage-v1', { namespace: 'default', name: 'productpage-v1', serviceAccount: 'productpage', labels: { app: 'productpage', version: 'v1', 'security.istio.io/tlsMode': 'istio' }, addresses: ['127.0.0.1'], ports: { '9080': ports.pp } });
  await put('/api/v1/registry/workloads/other/ratings-v1', { namespace: 'other', name: 'ratings-v1', serviceAccount: 'ratings', labels: { app: 'ratings', version: 'v1', 'security.istio.io/tlsMode': 'istio' }, addresses: ['127.0.0.1'], ports: { '9080': ports.rt } });
  ok('PeerAuthentication', await api.rest('POST', '/api/v1/apply', {
    yaml: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec:
  mtls: { mode: PERMISSIVE }
`,
  }));
  const tokens = { reviews: await joinToken(api, 'default', 'reviews'), productpage: await joinToken(api, 'default', 'productpage'), ratings: await joinToken(api, 'other', 'ratings') };
  const common = { xdsAddress: api.xdsAddress!, args: ['--drain-seconds', '0'] };
  const env = (token: string) => ({ TERN_JOIN_TOKEN: token, TERN_TELEMETRY_INTERVAL_MS: '0' });
  const all = await Promise.allSettled([
    startSidecar({
      ...common, id: 'reviews-v1.default', adminPort: admin.reviews, waitForListener: `127.0.0.1_${ports.rv9090}`, env: env(tokens.reviews),
      metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'reviews', WORKLOAD_NAME: 'reviews-v1', LABELS: { app: 'reviews', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': started.port, '9090': started.port } },
    }),
    startSidecar({
      ...common, id: 'productpage-v1.default', adminPort: admin.productpage, waitForListener: `127.0.0.1_${ports.ppUp9090}`, env: env(tokens.productpage),
      metadata: {
        NAMESPACE: 'default', SERVICE_ACCOUNT: 'productpage', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': started.port },
        UPSTREAMS: [{ host: 'reviews', port: 9080, localPort: ports.ppUp }, { host: 'reviews', port: 9090, localPort: ports.ppUp9090 }],
      },
    }),
    startSidecar({
      ...common, id: 'ratings-v1.other', adminPort: admin.ratings, waitForListener: `127.0.0.1_${ports.rtUp}`, env: env(tokens.ratings),
      metadata: {
        NAMESPACE: 'other', SERVICE_ACCOUNT: 'ratings', WORKLOAD_NAME: 'ratings-v1', LABELS: { app: 'ratings', version: 'v1' }, OUTBOUND_PORT: 0, APP_PORTS: { '9080': started.port },
        UPSTREAMS: [{ host: 'reviews.default.svc.cluster.local', port: 9080, localPort: ports.rtUp }],
      },
    }),
  ]);
  const names = ['reviews', 'productpage', 'ratings'] as const;
  all.forEach((r, i) => r.status === 'fulfilled' && (sidecars[names[i]!] = r.value));
  const failed = all.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
});

after(async () => {
  for (const s of Object.values(sidecars)) await s.stop();
  app?.closeAllConnections();
  app?.close();
  await api?.close();
});

// ---- callers and requests ------------------------------------------------------------------------

/** Who sends a request, and which server inbound listener (by its port) receives it. */
const CALLERS = {
  /** productpage's sidecar -> reviews:9080 (mTLS, spiffe://cluster.local/ns/default/sa/productpage). */
  pp: { port: () => ports.ppUp, server: () => ports.rv, host: 'reviews:9080' },
  /** productpage's sidecar -> reviews:9090 (the other inbound port). */
  pp9090: { port: () => ports.ppUp9090, server: () => ports.rv9090, host: 'reviews:9090' },
  /** ratings' sidecar (namespace other) -> reviews:9080 (mTLS, spiffe://cluster.local/ns/other/sa/ratings). */
  rt: { port: () => ports.rtUp, server: () => ports.rv, host: 'reviews:9080' },
  /** plain text from 127.0.0.1 straight to reviews' inbound 9080 listener (no principal). */
  plain: { port: () => ports.rv, server: () => ports.rv, host: 'reviews:9080', localAddress: '127.0.0.1' },
  /** plain text from 127.0.0.2 to the same listener. */
  plain2: { port: () => ports.rv, server: () => ports.rv, host: 'reviews:9080', localAddress: '127.0.0.2' },
  /** plain text from 127.0.0.1 to reviews' inbound 9090 listener. */
  plain9090: { port: () => ports.rv9090, server: () => ports.rv9090, host: 'reviews:9090', localAddress: '127.0.0.1' },
  /** plain text to productpage's own inbound listener (namespace default, app productpage). */
  ppIn: { port: () => ports.pp, server: () => ports.pp, host: 'productpage:9080', localAddress: '127.0.0.1' },
  /** plain text to ratings' own inbound listener (namespace other). */
  rtIn: { port: () => ports.rt, server: () => ports.rt, host: 'ratings:9080', localAddress: '127.0.0.1' },
} satisfies Record<string, { port(): number; server(): number; host: string; localAddress?: string }>;
type Caller = keyof typeof CALLERS;

interface Req { method?: string; path?: string; headers?: Record<string, string>; host?: string }
type Cell = [from: Caller, expect: 200 | 403, req?: Req];

const describeCell = ([from, , r = {}]: Cell) => `${from} ${r.method ?? 'GET'} ${r.path ?? '/'}${r.host ? ` host=${r.host}` : ''}${r.headers ? ` ${JSON.stringify(r.headers)}` : ''}`;

let seq = 0;
function send(from: Caller, r: Req = {}): Promise<{ id: string; status: number; body: string }> {
  const c: { port(): number; host: string; localAddress?: string } = CALLERS[from];
  const id = `r${++seq}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: c.port(), method: r.method ?? 'GET', path: r.path ?? '/', localAddress: c.localAddress, agent: false, headers: { host: r.host ?? c.host, 'x-req-id': id, ...r.headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ id, status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

// ---- counters ------------------------------------------------------------------------------------

const SERVER_OF_PORT = () => new Map<number, 'reviews' | 'productpage' | 'ratings'>([[ports.rv, 'reviews'], [ports.rv9090, 'reviews'], [ports.pp, 'productpage'], [ports.rt, 'ratings']]);

/** http.inbound_127.0.0.1_<port>.rbac.<name> from each server sidecar's /stats (0 when it never had RBAC). */
async function rbacCounters(): Promise<Map<number, { denied: number; logged: number }>> {
  const texts = await Promise.all((['reviews', 'productpage', 'ratings'] as const).map(async (s) => [s, (await httpGet(admin[s], '/stats')).body] as const));
  const byName = new Map(texts);
  const out = new Map<number, { denied: number; logged: number }>();
  for (const [port, s] of SERVER_OF_PORT()) {
    const text = byName.get(s)!;
    const read = (k: string) => Number(new RegExp(`^http\\.inbound_127\\.0\\.0\\.1_${port}\\.rbac\\.${k}: (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    out.set(port, { denied: read('denied'), logged: read('logged') });
  }
  return out;
}

// ---- the matrix ------------------------------------------------------------------------------------

interface Case {
  /** The policies in force for this case (multi-document YAML); earlier ones not named here are deleted. */
  yaml: string;
  cells: Cell[];
  /** Cells an AUDIT policy matches: each must count one `logged` on its listener. */
  audited?: (cell: Cell) => boolean;
}

/** Runs every cell once; returns what differs from the expectation (empty: all as expected). */
async function runMatrix(c: Case): Promise<string[]> {
  const problems: string[] = [];
  const before = await rbacCounters();
  const want = new Map<number, { denied: number; logged: number }>();
  for (const p of before.keys()) want.set(p, { denied: 0, logged: 0 });
  for (const cell of c.cells) {
    const [from, expect, r] = cell;
    const w = want.get(CALLERS[from].server())!;
    if (expect === 403) w.denied++;
    if (c.audited?.(cell)) w.logged++;
    const got = await send(from, r).catch((err: Error) => ({ id: '', status: 0, body: err.message }));
    if (got.status !== expect) {
      problems.push(`${describeCell(cell)}: ${got.status} ${got.body.slice(0, 80)} (want ${expect})`);
      continue;
    }
    if (expect === 403) {
      if (got.body !== 'RBAC: access denied') problems.push(`${describeCell(cell)}: denial body ${JSON.stringify(got.body)}`);
      if (reached.has(got.id)) problems.push(`${describeCell(cell)}: denied, yet the app saw it`);
    } else if (r?.method === 'HEAD' ? !reached.has(got.id) : got.body !== `app:${got.id}`) problems.push(`${describeCell(cell)}: body ${JSON.stringify(got.body)} is not the app's`);
  }
  const afterwards = await rbacCounters();
  for (const [p, w] of want) {
    const d = { denied: afterwards.get(p)!.denied - before.get(p)!.denied, logged: afterwards.get(p)!.logged - before.get(p)!.logged };
    if (d.denied !== w.denied) problems.push(`inbound_127.0.0.1_${p} (${SERVER_OF_PORT().get(p)}): rbac.denied grew by ${d.denied}, want ${w.denied}`);
    if (d.logged !== w.logged) problems.push(`inbound_127.0.0.1_${p} (${SERVER_OF_PORT().get(p)}): rbac.logged grew by ${d.logged}, want ${w.logged}`);
  }
  return problems;
}

/** Applied AuthorizationPolicies, as `namespace/name`. */
let applied = new Set<string>();

async function setPolicies(yaml: string): Promise<void> {
  const now = new Set<string>();
  if (yaml.trim() !== '') {
    const r = await api.rest('POST', '/api/v1/apply', { yaml });
    assert.equal(r.status, 200, `apply: ${JSON.stringify(r.body)}\n${yaml}`);
    for (const x of r.body.results as { kind: string; namespace: string; name: string }[]) now.add(`${x.namespace}/${x.name}`);
  }
  for (const key of applied) {
    if (now.has(key)) continue;
    const r = await api.rest('DELETE', `/api/v1/resources/AuthorizationPolicy/${key}`);
    assert.equal(r.status, 200, `delete ${key}: ${JSON.stringify(r.body)}`);
  }
  applied = now;
}

async function diagnostics(): Promise<string> {
  const proxies = await api.rest('GET', '/api/v1/proxies');
  const stderr = Object.entries(sidecars).map(([n, s]) => `${n}: ${s.stderr().slice(-800)}`).join('\n');
  return `proxies: ${JSON.stringify(proxies.body).slice(0, 3000)}\nsidecar stderr:\n${stderr}`;
}

async function check(c: Case): Promise<void> {
  await setPolicies(c.yaml);
  let last: string[] = [];
  await eventually(async () => (last = await runMatrix(c)).length === 0, 10_000, 'the matrix converges').catch(async (err: Error) => {
    throw new Error(`${err.message}; still wrong:\n  ${last.join('\n  ')}\n${c.yaml}\n${await diagnostics()}`);
  });
  // Converged: now every cell, once, must be right.
  const problems = await runMatrix(c);
  assert.deepEqual(problems, [], `${problems.join('\n')}\n${c.yaml}`);
  await countedInPrometheus();
}

/** The denials are in the reviews sidecar's Prometheus output too: Envoy's RBAC counter and istio_requests_total. */
async function countedInPrometheus(): Promise<void> {
  const stats = (await httpGet(admin.reviews, '/stats')).body;
  const prom = (await httpGet(admin.reviews, '/stats/prometheus')).body;
  let denied = 0;
  for (const p of [ports.rv, ports.rv9090]) {
    const n = Number(new RegExp(`^http\\.inbound_127\\.0\\.0\\.1_${p}\\.rbac\\.denied: (\\d+)$`, 'm').exec(stats)?.[1] ?? 0);
    const m = new RegExp(`^envoy_http_rbac_denied\\{envoy_http_conn_manager_prefix="inbound_127\\.0\\.0\\.1_${p}"\\} (\\d+)$`, 'm').exec(prom);
    if (n > 0) assert.equal(Number(m?.[1]), n, `envoy_http_rbac_denied for inbound_127.0.0.1_${p}:\n${prom.split('\n').filter((l) => l.includes('rbac')).join('\n')}`);
    denied += n;
  }
  // Every 403 reviews answered was an RBAC denial (the app never answers 403), and each is one
  // request in Istio's standard metric (updated when the stream closes: eventually).
  let lines: string[] = [];
  await eventually(async () => {
    lines = (await httpGet(admin.reviews, '/stats/prometheus')).body.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"') && l.includes('response_code="403"'));
    return lines.reduce((n, l) => n + Number(l.split(' ').pop()), 0) === denied;
  }, 3000, 'istio_requests_total counts the denials').catch((err: Error) => {
    throw new Error(`${err.message}: rbac.denied ${denied}, 403 series:\n${lines.join('\n')}`);
  });
}

// ---- the cases -------------------------------------------------------------------------------------

const ap = (name: string, namespace: string, spec: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${spec.trim().replace(/^/gm, '  ')}
`;
const doc = (...docs: string[]) => docs.join('---\n');
const onReviews = 'selector: { matchLabels: { app: reviews } }';
const PP = 'cluster.local/ns/default/sa/productpage';
const RT = 'cluster.local/ns/other/sa/ratings';
/** Every caller of reviews, plain GET /. */
const reviewsCallers = (pp: 200 | 403, pp9090: 200 | 403, rt: 200 | 403, plain: 200 | 403, plain2: 200 | 403): Cell[] => [['pp', pp], ['pp9090', pp9090], ['rt', rt], ['plain', plain], ['plain2', plain2]];

test('AuthorizationPolicy through the control plane and real sidecars: the Istio matrix', async (t) => {
  // Wait for certificates and configs: every caller reaches reviews.
  await eventually(async () => (await runMatrix({ yaml: '', cells: reviewsCallers(200, 200, 200, 200, 200) })).length === 0, 20_000, 'all callers reach reviews').catch(async (err: Error) => {
    throw new Error(`${err.message}\n${(await runMatrix({ yaml: '', cells: reviewsCallers(200, 200, 200, 200, 200) })).join('\n')}\n${await diagnostics()}`);
  });

  const step = (name: string, c: Case) => t.test(name, () => check(c));

  await step('no policy: everything is allowed', {
    yaml: '',
    cells: [...reviewsCallers(200, 200, 200, 200, 200), ['plain9090', 200], ['ppIn', 200], ['rtIn', 200], ['pp', 200, { method: 'DELETE', path: '/admin' }]],
  });

  await step('ALLOW from.source.principals: only that identity; no match means 403; a workload the selector misses allows', {
    yaml: ap('reviews-pp', 'default', `${onReviews}\naction: ALLOW\nrules:\n- from: [{ source: { principals: ["${PP}"] } }]`),
    cells: [...reviewsCallers(200, 200, 403, 403, 403), ['ppIn', 200], ['rtIn', 200]],
  });

  await step('ALLOW notPrincipals: everyone but that identity (plain text has no principal, so it is "not" it)', {
    yaml: ap('reviews-pp', 'default', `${onReviews}\nrules:\n- from: [{ source: { notPrincipals: ["${PP}"] } }]`),
    cells: reviewsCallers(403, 403, 200, 200, 200),
  });

  await step('ALLOW principals with a wildcard: "*" is any authenticated peer; a suffix match', {
    yaml: ap('reviews-pp', 'default', `${onReviews}\nrules:\n- from: [{ source: { principals: ["*"] } }]\n  to: [{ operation: { paths: ["/any"] } }]\n- from: [{ source: { principals: ["*/sa/ratings"] } }]\n  to: [{ operation: { paths: ["/suffix"] } }]`),
    cells: [
      ['pp', 200, { path: '/any' }], ['rt', 200, { path: '/any' }], ['plain', 403, { path: '/any' }],
      ['rt', 200, { path: '/suffix' }], ['pp', 403, { path: '/suffix' }], ['plain', 403, { path: '/suffix' }],
    ],
  });

  await step('ALLOW namespaces; two from entries OR', {
    yaml: ap('reviews-ns', 'default', `${onReviews}\nrules:\n- from: [{ source: { namespaces: ["other"] } }, { source: { ipBlocks: ["127.0.0.2"] } }]`),
    cells: reviewsCallers(403, 403, 200, 403, 200),
  });

  await step('ALLOW notNamespaces (plain text is in no namespace)', {
    yaml: ap('reviews-ns', 'default', `${onReviews}\nrules:\n- from: [{ source: { notNamespaces: ["other"] } }]`),
    cells: reviewsCallers(200, 200, 403, 200, 200),
  });

  await step('ALLOW serviceAccounts (bare: the policy namespace) and notServiceAccounts', {
    yaml: ap('reviews-sa', 'default', `${onReviews}\nrules:\n- from: [{ source: { serviceAccounts: ["productpage"] } }]\n  to: [{ operation: { paths: ["/sa"] } }]\n- from: [{ source: { notServiceAccounts: ["other/ratings"] } }]\n  to: [{ operation: { paths: ["/not-sa"] } }]`),
    cells: [
      ['pp', 200, { path: '/sa' }], ['rt', 403, { path: '/sa' }], ['plain', 403, { path: '/sa' }],
      ['pp', 200, { path: '/not-sa' }], ['rt', 403, { path: '/not-sa' }], ['plain', 200, { path: '/not-sa' }], ['pp', 403],
    ],
  });

  await step('ALLOW ipBlocks (a single address is a /32)', {
    yaml: ap('reviews-ip', 'default', `${onReviews}\nrules:\n- from: [{ source: { ipBlocks: ["127.0.0.1"] } }]`),
    cells: reviewsCallers(200, 200, 200, 200, 403),
  });

  await step('ALLOW ipBlocks CIDR with notIpBlocks', {
    yaml: ap('reviews-ip', 'default', `${onReviews}\nrules:\n- from: [{ source: { ipBlocks: ["127.0.0.0/8"], notIpBlocks: ["127.0.0.1"] } }]`),
    cells: reviewsCallers(403, 403, 403, 403, 200),
  });

  await step('ALLOW remoteIpBlocks: the client address from x-forwarded-for (the inbound HCM does not use the peer address), else the peer', {
    yaml: ap('reviews-ip', 'default', `${onReviews}\nrules:\n- from: [{ source: { remoteIpBlocks: ["10.0.0.0/8", "127.0.0.2"] } }]`),
    cells: [
      ['plain', 200, { headers: { 'x-forwarded-for': '10.1.2.3' } }], ['plain', 200, { headers: { 'x-forwarded-for': '192.0.2.1, 10.1.2.3' } }], ['plain', 403, { headers: { 'x-forwarded-for': '10.1.2.3, 192.0.2.1' } }],
      ['plain', 403], ['plain2', 200], ['pp', 200, { headers: { 'x-forwarded-for': '10.9.9.9' } }], ['pp', 403],
    ],
  });

  await step('ALLOW to.operation methods and paths: exact, prefix /api/*, suffix *.png; rules see the normalised path, without the query', {
    yaml: ap('reviews-op', 'default', `${onReviews}\nrules:\n- to: [{ operation: { methods: ["GET", "HEAD"], paths: ["/exact", "/api/*", "*.png"] } }]`),
    cells: [
      ['pp', 200, { path: '/exact' }], ['plain', 200, { path: '/exact?q=1' }], ['pp', 403, { path: '/exact/more' }], ['pp', 403, { path: '/Exact' }],
      ['pp', 200, { path: '/api/v1/items' }], ['rt', 200, { path: '/api/' }], ['plain', 403, { path: '/api' }], ['plain', 403, { path: '/apix' }],
      ['pp', 200, { path: '/img/logo.png' }], ['plain', 403, { path: '/img/logo.jpg' }], ['plain', 403, { path: '/img.png/x' }],
      ['pp', 403, { method: 'POST', path: '/exact' }], ['plain', 403, { method: 'DELETE', path: '/api/v1' }],
      ['pp', 200, { method: 'HEAD', path: '/exact' }],
      ['plain', 200, { path: '/public/../api/v1' }], ['plain', 403, { path: '/api/../secret' }], ['plain', 403, { path: '//api/v1' }], ['plain', 403, { path: '/api%2Fv1' }], ['plain', 200, { path: '/%61pi/v1' }], ['pp', 403, { path: '/' }],
    ],
  });

  await step('ALLOW notPaths and notMethods', {
    yaml: ap('reviews-op', 'default', `${onReviews}\nrules:\n- to: [{ operation: { notPaths: ["/admin", "/admin/*"], notMethods: ["DELETE"] } }]`),
    cells: [
      ['pp', 200], ['rt', 200, { path: '/adminx' }], ['pp', 403, { path: '/admin' }], ['plain', 403, { path: '/admin/users' }],
      ['plain', 403, { method: 'DELETE', path: '/x' }], ['plain2', 200, { method: 'POST', path: '/x' }],
    ],
  });

  await step('ALLOW ports (the port the sidecar receives on)', {
    yaml: ap('reviews-port', 'default', `${onReviews}\nrules:\n- to: [{ operation: { ports: ["${ports.rv9090}"] } }]`),
    cells: [...reviewsCallers(403, 200, 403, 403, 403), ['plain9090', 200]],
  });

  await step('ALLOW notPorts', {
    yaml: ap('reviews-port', 'default', `${onReviews}\nrules:\n- to: [{ operation: { notPorts: ["${ports.rv9090}"] } }]`),
    cells: [...reviewsCallers(200, 403, 200, 200, 200), ['plain9090', 403]],
  });

  await step('ALLOW hosts (ignoring case; prefix) and notHosts', {
    yaml: ap('reviews-host', 'default', `${onReviews}\nrules:\n- to: [{ operation: { hosts: ["reviews.default.svc.cluster.local", "reviews:*"], notHosts: ["reviews:9999"] } }]`),
    cells: [
      ['pp', 200], ['rt', 200, { host: 'REVIEWS:9080' }], ['plain', 200, { host: 'reviews.default.svc.cluster.local' }],
      ['pp', 403, { host: 'ratings:9080' }], ['plain', 403, { host: 'evil.example' }], ['plain', 403, { host: 'reviews:9999' }],
      ['plain', 403, { host: 'reviews.default.svc.cluster.local:9080' }],
    ],
  });

  await step('ALLOW when request.headers[x-user] (exact and prefix)', {
    yaml: ap('reviews-when', 'default', `${onReviews}\nrules:\n- when: [{ key: "request.headers[x-user]", values: ["alice", "bob*"] }]`),
    cells: [
      ['pp', 200, { headers: { 'x-user': 'alice' } }], ['rt', 200, { headers: { 'x-user': 'bobby' } }], ['plain2', 200, { headers: { 'x-user': 'bob' } }],
      ['pp', 403, { headers: { 'x-user': 'carol' } }], ['plain', 403, { headers: { 'x-user': 'Alice' } }], ['plain', 403],
    ],
  });

  await step('ALLOW when source.principal', {
    yaml: ap('reviews-when', 'default', `${onReviews}\nrules:\n- when: [{ key: source.principal, values: ["${RT}"] }]`),
    cells: reviewsCallers(403, 403, 200, 403, 403),
  });

  await step('ALLOW when source.namespace and destination.port (conditions AND)', {
    yaml: ap('reviews-when', 'default', `${onReviews}\nrules:\n- when: [{ key: source.namespace, values: ["default"] }, { key: destination.port, values: ["${ports.rv}"] }]`),
    cells: [...reviewsCallers(200, 403, 403, 403, 403), ['plain9090', 403]],
  });

  await step('ALLOW when source.ip, and notValues', {
    yaml: ap('reviews-when', 'default', `${onReviews}\nrules:\n- when: [{ key: source.ip, values: ["127.0.0.0/24"], notValues: ["127.0.0.1"] }]\n- when: [{ key: source.principal, notValues: ["${PP}"] }, { key: "request.headers[x-user]", values: ["*"] }]`),
    // rule 0: 127.0.0.2 only; rule 1: any peer but productpage (plain text counts) that sends x-user.
    cells: [
      ...reviewsCallers(403, 403, 403, 403, 200),
      ['rt', 200, { headers: { 'x-user': 'x' } }], ['plain', 200, { headers: { 'x-user': 'x' } }], ['pp', 403, { headers: { 'x-user': 'x' } }],
    ],
  });

  await step('ALLOW when connection.sni: the SNI the client sidecar sent (Istio\'s outbound_.PORT_._.HOST); plain text has none', {
    yaml: ap('reviews-when', 'default', `${onReviews}\nrules:\n- when: [{ key: connection.sni, values: ["outbound_.9090_*"] }]`),
    cells: [...reviewsCallers(403, 200, 403, 403, 403), ['plain9090', 403]],
  });

  await step('JWT conditions (not implemented) fail closed: an ALLOW rule using one is dropped, a DENY rule loses it and denies more', {
    yaml: doc(
      ap('reviews-jwt-allow', 'default', `${onReviews}\nrules:\n- from: [{ source: { requestPrincipals: ["*"] } }]\n- to: [{ operation: { paths: ["/open*"] } }]`),
      ap('reviews-jwt-deny', 'default', `${onReviews}\naction: DENY\nrules:\n- from: [{ source: { requestPrincipals: ["*"] } }]\n  to: [{ operation: { paths: ["/open/jwt"] } }]`),
    ),
    cells: [['pp', 200, { path: '/open' }], ['plain', 200, { path: '/open/x' }], ['pp', 403, { path: '/open/jwt' }], ['plain', 403, { path: '/open/jwt' }], ['pp', 403], ['rt', 403, { path: '/x' }]],
  });

  await step('DENY alone: only what it matches is denied (no ALLOW policy: the rest is allowed)', {
    yaml: ap('reviews-deny', 'default', `${onReviews}\naction: DENY\nrules:\n- to: [{ operation: { paths: ["/admin*"] } }]\n- from: [{ source: { namespaces: ["other"] } }]\n  to: [{ operation: { methods: ["POST"] } }]`),
    cells: [
      ...reviewsCallers(200, 200, 200, 200, 200),
      ['pp', 403, { path: '/admin' }], ['plain', 403, { path: '/admin/x' }], ['rt', 403, { method: 'POST' }], ['pp', 200, { method: 'POST' }], ['plain', 200, { method: 'POST' }],
    ],
  });

  await step('DENY when notValues: a request without the header is denied too', {
    yaml: ap('reviews-deny', 'default', `${onReviews}\naction: DENY\nrules:\n- when: [{ key: "request.headers[x-token]", notValues: ["let-me-in"] }]`),
    cells: [['pp', 403], ['rt', 403, { headers: { 'x-token': 'wrong' } }], ['pp', 200, { headers: { 'x-token': 'let-me-in' } }], ['plain2', 200, { headers: { 'x-token': 'let-me-in' } }]],
  });

  await step('CUSTOM without an external authorizer fails closed: what its rules match is denied', {
    yaml: ap('reviews-ext', 'default', `${onReviews}\naction: CUSTOM\nprovider: { name: ext-authz }\nrules:\n- to: [{ operation: { paths: ["/ext/*"] } }]`),
    cells: [['pp', 403, { path: '/ext/a' }], ['plain', 403, { path: '/ext/b' }], ...reviewsCallers(200, 200, 200, 200, 200)],
  });

  await step('DENY beats ALLOW; with an ALLOW policy present, no match means 403', {
    yaml: doc(
      ap('reviews-deny', 'default', `${onReviews}\naction: DENY\nrules:\n- to: [{ operation: { paths: ["/admin*"] } }]`),
      ap('reviews-allow', 'default', `${onReviews}\naction: ALLOW\nrules:\n- from: [{ source: { principals: ["${PP}", "${RT}"] } }]`),
    ),
    cells: [
      ...reviewsCallers(200, 200, 200, 403, 403),
      ['pp', 403, { path: '/admin' }], ['rt', 403, { path: '/admin/x' }], ['plain', 403, { path: '/admin' }],
    ],
  });

  await step('an ALLOW policy without rules denies everything', {
    yaml: ap('reviews-none', 'default', `${onReviews}\naction: ALLOW`),
    cells: [...reviewsCallers(403, 403, 403, 403, 403), ['plain9090', 403], ['pp', 403, { method: 'POST', path: '/api/x' }], ['ppIn', 200]],
  });

  await step('... and next to it, an ALLOW rule {} allows everything', {
    yaml: doc(ap('reviews-none', 'default', `${onReviews}\naction: ALLOW`), ap('reviews-all', 'default', `${onReviews}\naction: ALLOW\nrules: [{}]`)),
    cells: [...reviewsCallers(200, 200, 200, 200, 200), ['plain9090', 200], ['pp', 200, { method: 'POST', path: '/api/x' }]],
  });

  const auditedPath = (cell: Cell) => cell[2]?.path === '/audited';
  await step('AUDIT never changes the verdict (ALLOW decides), but counts what it matches', {
    yaml: doc(
      ap('reviews-audit', 'default', `${onReviews}\naction: AUDIT\nrules:\n- to: [{ operation: { paths: ["/audited"] } }]`),
      ap('reviews-allow', 'default', `${onReviews}\naction: ALLOW\nrules:\n- from: [{ source: { principals: ["${PP}"] } }]`),
    ),
    cells: [
      ...reviewsCallers(200, 200, 403, 403, 403),
      ['pp', 200, { path: '/audited' }], ['rt', 403, { path: '/audited' }], ['plain', 403, { path: '/audited' }], ['pp9090', 200, { path: '/audited' }],
    ],
    audited: auditedPath,
  });

  await step('AUDIT alone blocks nothing', {
    yaml: ap('reviews-audit', 'default', `${onReviews}\naction: AUDIT\nrules:\n- to: [{ operation: { paths: ["/audited"] } }]`),
    cells: [...reviewsCallers(200, 200, 200, 200, 200), ['rt', 200, { path: '/audited' }], ['plain2', 200, { path: '/audited' }]],
    audited: auditedPath,
  });

  await step('a policy without selector covers its namespace only', {
    yaml: ap('default-none', 'default', 'action: ALLOW'),
    cells: [...reviewsCallers(403, 403, 403, 403, 403), ['ppIn', 403], ['rtIn', 200]],
  });

  await step('a workload selector applies to the selected workload only (productpage allows again)', {
    yaml: ap('reviews-none', 'default', `${onReviews}\naction: ALLOW`),
    cells: [...reviewsCallers(403, 403, 403, 403, 403), ['ppIn', 200], ['rtIn', 200]],
  });

  await step('a policy in the root namespace istio-system applies to the whole mesh', {
    yaml: ap('mesh-block', 'istio-system', `action: DENY\nrules:\n- when: [{ key: "request.headers[x-block]", values: ["1"] }]`),
    cells: [
      ...reviewsCallers(200, 200, 200, 200, 200), ['ppIn', 200], ['rtIn', 200],
      ['pp', 403, { headers: { 'x-block': '1' } }], ['rt', 403, { headers: { 'x-block': '1' } }], ['ppIn', 403, { headers: { 'x-block': '1' } }], ['rtIn', 403, { headers: { 'x-block': '1' } }],
      ['rtIn', 200, { headers: { 'x-block': '0' } }],
    ],
  });

  await step('a root-namespace selector matches in every namespace', {
    yaml: ap('mesh-ratings', 'istio-system', `selector: { matchLabels: { app: ratings } }\naction: ALLOW\nrules:\n- to: [{ operation: { methods: ["GET"] } }]`),
    cells: [['rtIn', 200], ['rtIn', 403, { method: 'POST' }], ['ppIn', 200, { method: 'POST' }], ['pp', 200, { method: 'POST' }]],
  });

  await step('a DENY first, then removing every policy restores access', {
    yaml: ap('reviews-deny', 'default', `${onReviews}\naction: DENY\nrules: [{}]`),
    cells: [...reviewsCallers(403, 403, 403, 403, 403), ['rtIn', 200, { method: 'POST' }]],
  });
  await step('removed: everything is allowed again', {
    yaml: '',
    cells: [...reviewsCallers(200, 200, 200, 200, 200), ['plain9090', 200], ['ppIn', 200], ['rtIn', 200, { method: 'POST' }]],
  });
});
