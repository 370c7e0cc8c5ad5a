import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startTestApi, type TestApi } from './helpers.ts';
import { registerCrds, startRealApiServer, ternCrds, type RealApiServer } from './kube/real-apiserver.ts';
import { eventually, SotwClient, TYPE_URL, node } from './xds-fixtures.ts';

// The reconciler's status conditions and drift, end to end: a running control plane (ADS server,
// TERN_KUBE_RECONCILE) against the real kube-apiserver with Tern's CRDs. Accepted carries the
// analyzer's warnings; ProxiesConverged follows real gRPC ADS clients that ACK or NACK, through the
// shared ProxyStatus table; a kubectl edit is found by the watch and corrected (or adopted), lands
// in the audit log and in GET /api/v1/kubernetes/status; a pass with nothing to do writes nothing.

let kube: RealApiServer;
let kc: KubeConfig;
let objects: CustomObjectsApi;
const VS = { group: 'networking.tern.dev', version: 'v1', plural: 'virtualservices' };
const clients: SotwClient[] = [];

before(async () => {
  kube = await startRealApiServer();
  kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfig);
  await registerCrds(kc, ternCrds());
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of ['tern-system', 'shop', 'adopted']) await core.createNamespace({ body: { metadata: { name } } });
  objects = kc.makeApiClient(CustomObjectsApi);
});

after(async () => {
  for (const c of clients) c.close();
  await kube?.stop();
});

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}
interface Cr {
  metadata: { resourceVersion: string; generation: number; annotations: Record<string, string> };
  spec: { http: { route: { weight: number }[] }[] };
  status?: { conditions?: Cond[] };
}
const read = async (name: string, namespace = 'shop') => (await objects.getNamespacedCustomObject({ ...VS, namespace, name })) as Cr;
const readOrNull = async (name: string, namespace = 'shop') => read(name, namespace).catch(() => null);
const cond = (cr: Cr | null, type: string) => cr?.status?.conditions?.find((c) => c.type === type);
const weights = (cr: Cr | null) => cr?.spec.http[0]!.route.map((r) => r.weight).join('/');

const vs = (name: string, host: string, w: [number, number], namespace = 'shop') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  hosts: [${host}]
  http:
  - route:
    - { destination: { host: ${host}, subset: v1 }, weight: ${w[0]} }
    - { destination: { host: ${host}, subset: v2 }, weight: ${w[1]} }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  host: ${host}
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;

const kubectlEdit = (name: string, w: [number, number], host: string, namespace = 'shop') =>
  objects.patchNamespacedCustomObject(
    { ...VS, namespace, name, body: { spec: { http: [{ route: [{ destination: { host, subset: 'v1' }, weight: w[0] }, { destination: { host, subset: 'v2' }, weight: w[1] }] }] } }, fieldManager: 'kubectl-edit' },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );

/** A proxy in `shop` over a real ADS stream that ACKs every response, or NACKs every CDS one. */
async function proxy(api: TestApi, id: string, nack?: string): Promise<SotwClient> {
  const c = new SotwClient(api.xdsAddress!);
  clients.push(c);
  c.call.on('data', (m: { type_url: string; version_info: string; nonce: string }) => {
    if (nack && m.type_url === TYPE_URL.cluster) c.send({ type_url: m.type_url, response_nonce: m.nonce, error_detail: { code: 3, message: nack } });
    else c.send({ type_url: m.type_url, version_info: m.version_info, response_nonce: m.nonce, resource_names: [] });
  });
  c.send({ node: node(id, { NAMESPACE: 'shop', WORKLOAD_NAME: 'productpage' }), type_url: TYPE_URL.cluster });
  c.send({ type_url: TYPE_URL.listener });
  return c;
}

const kubeStatus = async (api: TestApi) => {
  const r = await api.rest('GET', '/api/v1/kubernetes/status', undefined, { token: await api.makeToken('viewer') });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};

test('outside Kubernetes the status says so', async () => {
  const api = await startTestApi();
  try {
    const s = await kubeStatus(api);
    assert.deepEqual({ ...s, replica: undefined }, { enabled: false, leader: false, replica: undefined, mode: null, lastPass: null, recentDrift: [] });
  } finally {
    await api.close();
  }
});

test('conditions: Accepted with the analyzer’s warnings; ProxiesConverged with no proxy, ACKing proxies, a NACKing one; a kubectl edit found by the watch, corrected, audited; an idle pass writes nothing', async () => {
  // The resync far away (10 min): a kubectl edit corrected within seconds can only be the watch's doing.
  const cp = await startTestApi({ kubeReconcile: true, kubeResyncMs: 600_000, kubeconfig: kube.kubeconfig, namespace: 'tern-system', xdsDebounceMs: 20, xdsDebounceMaxMs: 200 }, undefined, { xds: true });
  try {
    await eventually(() => cp.app.kube?.isLeader === true, 10_000, 'leading');
    assert.equal((await cp.rest('PUT', '/api/v1/registry/services/shop/reviews', { namespace: 'shop', name: 'reviews', ports: [{ number: 9080, protocol: 'HTTP' }] })).status, 200);
    const applied = await cp.rest('POST', '/api/v1/apply', { yaml: vs('reviews', 'reviews', [90, 10]) + '---\n' + vs('ghost', 'ghost', [50, 50]) });
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const storedRv = applied.body.results.find((r: { kind: string; name: string }) => r.kind === 'VirtualService' && r.name === 'reviews').resourceVersion;

    // No proxy: Accepted, and ProxiesConverged True with reason NoProxies.
    const first = await eventually(async () => {
      const cr = await readOrNull('reviews');
      return cond(cr, 'Accepted')?.status === 'True' && cond(cr, 'ProxiesConverged')?.reason === 'NoProxies' ? cr : null;
    }, 10_000, 'the VirtualService with its conditions');
    const accepted = cond(first, 'Accepted')!;
    assert.deepEqual({ reason: accepted.reason, message: accepted.message, observedGeneration: accepted.observedGeneration }, { reason: 'Stored', message: `stored in Tern at resourceVersion ${storedRv}`, observedGeneration: first!.metadata.generation });
    assert.equal(cond(first, 'ProxiesConverged')!.status, 'True');
    assert.ok(!Number.isNaN(Date.parse(accepted.lastTransitionTime)));

    // The analyzer's warning (a host no registry service provides) is the Accepted message.
    const ghost = await eventually(async () => cond(await readOrNull('ghost'), 'Accepted'), 10_000, 'ghost accepted');
    assert.equal(ghost.status, 'True');
    assert.equal(ghost.reason, 'StoredWithWarnings');
    assert.match(ghost.message, /TRN010[15]/);
    assert.match(ghost.message, /ghost/);

    // A proxy that ACKs: converged.
    await proxy(cp, 'good-proxy');
    const converged = await eventually(async () => {
      const c = cond(await read('reviews'), 'ProxiesConverged');
      return c?.reason === 'Converged' ? c : null;
    }, 20_000, 'ProxiesConverged after the ACK').catch(async (err) => {
      console.log('state at the failure:', JSON.stringify(cond(await read('reviews'), 'ProxiesConverged')), JSON.stringify((await cp.rest('GET', '/api/v1/proxies')).body), JSON.stringify(await kubeStatus(cp)));
      throw err;
    });
    assert.equal(converged.status, 'True');
    assert.equal(cond(await read('reviews'), 'Accepted')!.lastTransitionTime, accepted.lastTransitionTime, 'Accepted did not transition');

    // A proxy that NACKs: Rejected, naming it and its error.
    const bad = await proxy(cp, 'bad-proxy', 'unknown field "foo" in cluster');
    const rejected = await eventually(async () => {
      const c = cond(await read('reviews'), 'ProxiesConverged');
      return c?.reason === 'Rejected' ? c : null;
    }, 20_000, 'ProxiesConverged Rejected');
    assert.equal(rejected.status, 'False');
    assert.match(rejected.message, /proxy bad-proxy rejected CDS version \S+: unknown field "foo" in cluster; 1 of 2 proxies converged/);
    assert.notEqual(rejected.lastTransitionTime, converged.lastTransitionTime, 'True -> False is a transition');
    // It leaves: converged again.
    bad.close();
    await eventually(async () => cond(await read('reviews'), 'ProxiesConverged')?.reason === 'Converged', 20_000, 'converged once the NACKing proxy left');
    await eventually(async () => (await kubeStatus(cp)).lastPass?.unsettled === 0, 10_000, 'a settled pass');

    // A kubectl edit. Nothing is unsettled, so no status pass is due, and the resync is 10 min
    // away: only the watch can bring the next pass within the wait below.
    const eventsBefore = cp.app.kube!.watchEvents;
    await kubectlEdit('reviews', [50, 50], 'reviews');
    await eventually(async () => weights(await read('reviews')) === '90/10', 5_000, 'the edit corrected');
    assert.ok(cp.app.kube!.watchEvents > eventsBefore, 'the watch saw the edit');

    const audit = await cp.rest('GET', '/api/v1/audit?actor=system:kubernetes');
    const entry = audit.body.events.find((e: { action: string }) => e.action === 'drift-corrected');
    assert.ok(entry, JSON.stringify(audit.body.events));
    assert.deepEqual({ kind: entry.kind, namespace: entry.namespace, name: entry.name, revision: entry.revision, actorKind: entry.actorKind }, { kind: 'VirtualService', namespace: 'shop', name: 'reviews', revision: storedRv, actorKind: 'system' });
    assert.deepEqual(entry.diff, [
      { op: 'replace', path: 'spec.http[0].route[0].weight', from: 50, to: 90 },
      { op: 'replace', path: 'spec.http[0].route[1].weight', from: 50, to: 10 },
    ]);
    assert.deepEqual(entry.details.editedBy, ['kubectl-edit']);
    const status = await kubeStatus(cp);
    assert.equal(status.enabled, true);
    assert.equal(status.leader, true);
    assert.equal(status.mode, 'correct');
    assert.equal(status.recentDrift[0].action, 'drift-corrected');
    assert.equal(status.recentDrift[0].name, 'reviews');

    // Idle: nothing is written, by a pass of our own nor by the watch echoing the last writes.
    await eventually(async () => (await kubeStatus(cp)).lastPass?.unsettled === 0 && (await kubeStatus(cp)).lastPass?.statusWritten === 0, 10_000, 'a pass that wrote nothing');
    const versions = async () => JSON.stringify(await Promise.all(['reviews', 'ghost'].map(async (n) => (await read(n)).metadata.resourceVersion)));
    const rvBefore = await versions();
    const passesBefore = cp.app.kube!.passes;
    const idle = await cp.app.kube!.reconciler.reconcileOnce();
    assert.deepEqual(idle, { applied: 0, deleted: 0, drifted: 0, adopted: 0, statusWritten: 0, unsettled: 0, errors: [] });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await versions(), rvBefore, 'no resourceVersion moved');
    assert.equal(cp.app.kube!.passes, passesBefore, 'no pass was triggered by the idle one');
  } finally {
    await cp.close();
  }
});

test('adopt mode: a kubectl edit found by the watch is taken into the store and audited as drift-adopted', async () => {
  const cp = await startTestApi({ kubeReconcile: true, kubeDrift: 'adopt', kubeResyncMs: 600_000, kubeconfig: kube.kubeconfig, namespace: 'tern-system' });
  try {
    await eventually(() => cp.app.kube?.isLeader === true, 20_000, 'leading');
    assert.equal((await cp.rest('POST', '/api/v1/apply', { yaml: vs('ratings', 'ratings', [70, 30], 'adopted') })).status, 200);
    await eventually(async () => weights(await readOrNull('ratings', 'adopted')) === '70/30' && cond(await read('ratings', 'adopted'), 'Accepted'), 10_000, 'in the cluster').catch(async (err) => {
      console.log('state at the failure:', JSON.stringify(await readOrNull('ratings', 'adopted')), JSON.stringify(await kubeStatus(cp)));
      throw err;
    });
    await kubectlEdit('ratings', [60, 40], 'ratings', 'adopted');
    await eventually(async () => {
      const stored = (await cp.rest('GET', '/api/v1/resources/VirtualService/adopted/ratings')).body;
      return stored.spec.http[0].route.map((x: { weight: number }) => x.weight).join('/') === '60/40';
    }, 5_000, 'the edit adopted into the store');
    const status = await kubeStatus(cp);
    assert.equal(status.mode, 'adopt');
    const entry = status.recentDrift.find((e: { action: string; name: string }) => e.action === 'drift-adopted' && e.name === 'ratings');
    assert.ok(entry, JSON.stringify(status.recentDrift));
    assert.deepEqual(entry.diff, [
      { op: 'replace', path: 'spec.http[0].route[0].weight', from: 70, to: 60 },
      { op: 'replace', path: 'spec.http[0].route[1].weight', from: 30, to: 40 },
    ]);
    // The cluster keeps the adopted spec, now written from the store's new revision.
    const storedRv = (await cp.rest('GET', '/api/v1/resources/VirtualService/adopted/ratings')).body.metadata.resourceVersion;
    await eventually(async () => (await read('ratings', 'adopted')).metadata.annotations['tern.dev/resource-version'] === storedRv, 10_000, 'rewritten from the new revision').catch(async (err) => {
      console.log('state at the failure:', storedRv, JSON.stringify(await kubeStatus(cp)), JSON.stringify((await read('ratings', 'adopted'))));
      throw err;
    });
    assert.equal(weights(await read('ratings', 'adopted')), '60/40');
  } finally {
    await cp.close();
  }
});

