import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from './helpers.ts';
import { writeRows } from '../src/telemetry/store.ts';
import { BUCKETS, type RollupRow } from '../src/telemetry/rows.ts';

// security.mtls / GET /api/v1/security/mtls: the configured PeerAuthentication mode per namespace
// and workload (compile/mtls.ts precedence) and the observed mTLS share from real rollup rows.

let api: TestApi;
const bucket = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);

function row(src: string, dst: string, dstNamespace: string, requests: number, mtls: boolean): RollupRow {
  const d = new Array<number>(BUCKETS).fill(0);
  d[4] = requests;
  const [srcApp, srcVersion] = src.split('-') as [string, string];
  const [app, version] = dst.split('-') as [string, string];
  return {
    bucket,
    srcWorkload: src, srcNamespace: 'default', srcPrincipal: mtls ? `spiffe://cluster.local/ns/default/sa/${srcApp}` : 'unknown', srcApp, srcVersion,
    dstService: `${app}.${dstNamespace}.svc.cluster.local`, dstWorkload: dst, dstNamespace, dstApp: app, dstVersion: version,
    codeClass: '2xx', protocol: 'http', mtls,
    requests, errors: 0, bytesIn: 0, bytesOut: 0, durationSumMs: 0, d,
  };
}

before(async () => {
  api = await startTestApi({ mtls: true });
  const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
  for (const [ns, name, app] of [['default', 'reviews-v1', 'reviews'], ['default', 'legacy-v1', 'legacy'], ['other', 'ratings-v1', 'ratings']] as const) {
    ok(await api.rest('PUT', `/api/v1/registry/workloads/${ns}/${name}`, { namespace: ns, name, labels: { app, version: 'v1' }, addresses: ['127.0.0.1'] }));
  }
  ok(await api.rest('POST', '/api/v1/apply', {
    yaml: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: default }
spec:
  mtls: { mode: STRICT }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: legacy, namespace: default }
spec:
  selector: { matchLabels: { app: legacy } }
  mtls: { mode: PERMISSIVE }
  portLevelMtls:
    "8080": { mode: DISABLE }
`,
  }));
  await writeRows(api.app.db.prisma, 'TelemetryMinute', [
    row('productpage-v1', 'reviews-v1', 'default', 30, true),
    row('ratings-v1', 'reviews-v1', 'default', 10, false),
    row('productpage-v1', 'legacy-v1', 'default', 5, false),
  ]);
});
after(() => api.close());

test('configured modes by precedence (namespace policy, workload selector, port level) and the observed share per workload', async () => {
  const viewer = await api.makeToken('viewer');
  const r = await api.rest('GET', '/api/v1/security/mtls?window=5m', undefined, { token: viewer });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.enabled, true);
  assert.deepEqual(r.body.namespaces, [{ namespace: 'default', mode: 'STRICT' }, { namespace: 'other', mode: 'PERMISSIVE' }]);
  assert.deepEqual(r.body.workloads, [
    { namespace: 'default', name: 'legacy-v1', mode: 'PERMISSIVE', ports: { 8080: 'DISABLE' }, requests: 5, mtlsShare: 0 },
    { namespace: 'default', name: 'reviews-v1', mode: 'STRICT', ports: {}, requests: 40, mtlsShare: 0.75 },
    { namespace: 'other', name: 'ratings-v1', mode: 'PERMISSIVE', ports: {}, requests: 0, mtlsShare: null },
  ]);
});

test('bad input is refused with the field named; no token, no answer', async () => {
  const bad = await api.rest('GET', '/api/v1/security/mtls?window=11m');
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.match(JSON.stringify(bad.body), /window/);
  const anon = await api.rest('GET', '/api/v1/security/mtls', undefined, { token: null });
  assert.equal(anon.status, 401, JSON.stringify(anon.body));
});
