import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, loadAllYaml, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import YAML from 'yaml';
import { importCommand } from '../src/cli/import-istio.ts';
import { makeClient, reportError } from '../src/cli/client.ts';
import { loadUserKubeConfig } from '../src/kube/istio-source.ts';
import { fixture, startTestApi, type TestApi } from './helpers.ts';
import { registerCrds, startRealApiServer, type RealApiServer } from './kube/real-apiserver.ts';
import { freePort } from './ports.ts';
import { runTern, type TernRun } from './tern-cli.ts';

// `tern import istio` against a real kube-apiserver (Istio's CRDs registered from
// test/fixtures/istio-crds.yaml, Bookinfo objects created through the API server) and a real Tern
// control plane. The real `tern` binary is spawned where the process matters (exit codes, the
// environment); other cases run the command's module in this process (the same code main() runs,
// over real HTTP), because each spawn loads client-node afresh (~2-3 s on this machine).

const root = path.resolve(import.meta.dirname, '../../..');

let kube: RealApiServer;
let kc: KubeConfig;
let objects: CustomObjectsApi;
let api: TestApi;
let home: string;

before(async () => {
  [kube, api] = await Promise.all([startRealApiServer(), startTestApi()]);
  kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfig);
  objects = kc.makeApiClient(CustomObjectsApi);
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-import-'));
});

after(async () => {
  await api?.close();
  await kube?.stop();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

function tern(args: string[], token: string | null = api.token): Promise<TernRun> {
  // HOME points at an empty directory, so no ~/.kube/config of the machine is picked up.
  return runTern(args, { server: api.url, token, config: path.join(home, 'config.json'), env: { HOME: home }, unset: ['KUBECONFIG', 'KUBERNETES_SERVICE_HOST'] });
}

const importIstio = (extra: string[] = [], token?: string | null) => tern(['import', 'istio', '--kubeconfig', kube.kubeconfig, ...extra], token);

/** The command in this process, as main() runs it (errors thrown become exit codes the same way). */
async function importInProcess(extra: string[] = [], token: string | null = api.token): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const err = (t: string) => (stderr += t);
  const ctx = { client: () => makeClient(api.url, token ?? undefined), server: () => api.url };
  const code = await importCommand(['istio', '--kubeconfig', kube.kubeconfig, ...extra], ctx, (t) => (stdout += t), err).catch((e) => reportError(e, api.url, err));
  return { code, stdout, stderr };
}
const stored = async () => (await api.rest('GET', '/api/v1/resources')).body.items as { kind: string; metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec: unknown }[];

const NET = (plural: string, version = 'v1') => ({ group: 'networking.istio.io', version, plural });

// Bookinfo as Istio's tasks set it up (samples/bookinfo): reviews routed to v2 for jason, its
// subsets, strict mTLS, and who may GET ratings. The VirtualService is created at v1beta1 and
// carries kubectl's last-applied annotation, as after a `kubectl apply` of an older file.
const reviewsVs = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'bookinfo', labels: { app: 'reviews' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"kind":"VirtualService"}', 'example.com/owner': 'reviews-team' } },
  spec: { hosts: ['reviews'], http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
};
const reviewsDr = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: 'bookinfo' },
  spec: { host: 'reviews', subsets: [1, 2, 3].map((v) => ({ name: `v${v}`, labels: { version: `v${v}` } })) },
};
const strict = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'bookinfo' }, spec: { mtls: { mode: 'STRICT' } } };
const getRatings = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'get-ratings', namespace: 'bookinfo', labels: { team: 'ratings' } },
  spec: { selector: { matchLabels: { app: 'ratings' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/bookinfo/sa/bookinfo-reviews'] } }], to: [{ operation: { methods: ['GET'] } }] }] },
};
const sidecar = { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'bookinfo' }, spec: { egress: [{ hosts: ['./*', 'istio-system/*'] }] } };
const bookinfo = [reviewsVs, reviewsDr, strict, getRatings];

test('a cluster without Istio\'s CRDs: "no Istio resources API in this cluster", exit 1', async () => {
  const r = await importInProcess();
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no Istio resources API in this cluster/);
  assert.deepEqual(await stored(), []);
});

test('an unreachable cluster: a clear error naming the server, exit 1', async () => {
  const port = await freePort();
  const dead = path.join(home, 'dead-kubeconfig');
  fs.writeFileSync(dead, fs.readFileSync(kube.kubeconfig, 'utf8').replace(/https:\/\/127\.0\.0\.1:\d+/, `https://127.0.0.1:${port}`));
  const r = await tern(['import', 'istio', '--kubeconfig', dead]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot reach the Kubernetes API server at https://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
});

test('only `tern import` loads @kubernetes/client-node: other commands do not pay for it', async () => {
  // A resolve hook in the spawned CLI records every import of client-node.
  const hooks = path.join(home, 'hooks.mjs');
  const register = path.join(home, 'register.mjs');
  const log = path.join(home, 'loaded.log');
  fs.writeFileSync(hooks, `import fs from 'node:fs';\nexport async function resolve(s, c, next) {\n  if (s.includes('@kubernetes/client-node')) fs.appendFileSync(${JSON.stringify(log)}, s + '\\n');\n  return next(s, c);\n}\n`);
  fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${hooks}`).href)});\n`);
  const loads = (args: string[]) =>
    new Promise<number>((resolve) => {
      fs.rmSync(log, { force: true });
      const child = spawn(process.execPath, ['--import', register, path.join(root, 'apps/api/bin/tern.mjs'), ...args], { env: { ...process.env, HOME: home, TERN_API_URL: api.url }, stdio: 'ignore' });
      child.on('close', () => resolve(fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').length : 0));
    });
  assert.equal(await loads(['version']), 0);
  assert.equal(await loads(['get', 'vs']), 0);
  assert.ok((await loads(['import', 'istio', '--kubeconfig', path.join(home, 'missing')])) > 0, 'the hook sees the import command load it');
});

test('the kubeconfig: --kubeconfig, else KUBECONFIG, else ~/.kube/config; --context must exist', () => {
  const other = path.join(home, 'other-kubeconfig');
  fs.writeFileSync(other, fs.readFileSync(kube.kubeconfig, 'utf8').replace(/https:\/\/127\.0\.0\.1:\d+/, 'https://127.0.0.1:1'));
  fs.mkdirSync(path.join(home, '.kube'), { recursive: true });
  fs.copyFileSync(kube.kubeconfig, path.join(home, '.kube', 'config'));
  try {
    const server = (kubeconfig: string | undefined, env: NodeJS.ProcessEnv) => loadUserKubeConfig({ kubeconfig }, env).getCurrentCluster()?.server;
    assert.equal(server(other, { HOME: home, KUBECONFIG: kube.kubeconfig }), 'https://127.0.0.1:1');
    assert.equal(server(undefined, { HOME: home, KUBECONFIG: other }), 'https://127.0.0.1:1');
    assert.equal(server(undefined, { HOME: home }), kube.server);
    assert.throws(() => loadUserKubeConfig({ context: 'nope' }, { HOME: home }), /no context "nope"/);
    assert.throws(() => loadUserKubeConfig({}, { HOME: path.join(home, 'nowhere') }), /no Kubernetes configuration.*--kubeconfig/);
  } finally {
    fs.rmSync(path.join(home, '.kube'), { recursive: true, force: true });
  }
});

test('with Istio\'s CRDs and Bookinfo\'s objects: --dry-run validates through the API and writes nothing; -o yaml prints clean documents', async () => {
  const crds = loadAllYaml(fixture('istio-crds.yaml')) as V1CustomResourceDefinition[];
  assert.equal(crds.length, 6);
  await registerCrds(kc, crds);
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of ['bookinfo', 'other']) await core.createNamespace({ body: { metadata: { name } } });
  for (const o of [...bookinfo, sidecar]) {
    const [group, version] = o.apiVersion.split('/') as [string, string];
    const plural = { VirtualService: 'virtualservices', DestinationRule: 'destinationrules', PeerAuthentication: 'peerauthentications', AuthorizationPolicy: 'authorizationpolicies', Sidecar: 'sidecars' }[o.kind]!;
    await objects.createNamespacedCustomObject({ group, version, plural, namespace: o.metadata.namespace, body: o });
  }
  // Discovery can lag behind a new CRD by a moment: wait until the group lists the kinds.
  for (let i = 0; !(await objects.getAPIResources({ group: 'security.istio.io', version: 'v1' }).catch(() => ({ resources: [] }))).resources.some((r) => r.kind === 'AuthorizationPolicy'); i++) {
    if (i > 50) throw new Error('security.istio.io/v1 not discovered');
    await new Promise((r) => setTimeout(r, 100));
  }

  const dry = await importInProcess(['--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^bookinfo\s+VirtualService\s+reviews\s+networking\.istio\.io\/v1\s+created \(dry run\)$/m);
  assert.match(dry.stdout, /^bookinfo\s+Sidecar\s+default\s+networking\.istio\.io\/v1\s+skipped$/m);
  assert.match(dry.stdout, /Dry run, nothing written: would import 4 objects: 4 created, 0 updated, 0 unchanged; 1 skipped\./);
  assert.match(dry.stdout, /skipped sidecar\.networking\.istio\.io\/default -n bookinfo: .*Sidecar scoping/);
  assert.deepEqual(await stored(), []);

  const yaml = await importInProcess(['--dry-run', '-o', 'yaml'], null);
  assert.equal(yaml.code, 0, yaml.stderr);
  const docs = YAML.parseAllDocuments(yaml.stdout).map((d) => d.toJS());
  assert.deepEqual(docs.map((d) => `${d.kind}/${d.metadata.name}`), ['VirtualService/reviews', 'DestinationRule/reviews', 'PeerAuthentication/default', 'AuthorizationPolicy/get-ratings']);
  // Read at v1 (the preferred served version) though created at v1beta1; server fields gone.
  assert.equal(docs[0].apiVersion, 'networking.istio.io/v1');
  assert.deepEqual(docs[0].metadata, { name: 'reviews', namespace: 'bookinfo', labels: { app: 'reviews' }, annotations: { 'example.com/owner': 'reviews-team' } });
  assert.match(yaml.stderr, /skipped sidecar\.networking\.istio\.io\/default -n bookinfo/);
  assert.deepEqual(await stored(), []);

  // -n and -l narrow what is read.
  const sel = await importInProcess(['--dry-run', '-o', 'yaml', '-n', 'bookinfo', '-l', 'team=ratings'], null);
  assert.equal(sel.code, 0, sel.stderr);
  assert.deepEqual(YAML.parseAllDocuments(sel.stdout).map((d) => d.toJS().metadata.name), ['get-ratings']);
  const elsewhere = await importInProcess(['--dry-run', '-o', 'yaml', '-n', 'other'], null);
  assert.equal(elsewhere.stdout, '');
});

test('a viewer\'s token is refused (exit 3) and nothing is written', async () => {
  const r = await importInProcess([], await api.makeToken('viewer'));
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /editor|FORBIDDEN|forbidden/i);
  assert.match(r.stderr, /Nothing was written/);
  assert.deepEqual(await stored(), []);
});

test('an object Tern refuses fails the whole import with the message naming it and its field; nothing is written', async () => {
  const bad = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'ratings', namespace: 'bookinfo' }, spec: { hosts: ['ratings'], http: [{ route: [{ destination: { host: 'ratings', subset: 'v1' }, weight: 60 }, { destination: { host: 'ratings', subset: 'v2' }, weight: 30 }] }] } };
  await objects.createNamespacedCustomObject({ ...NET('virtualservices'), namespace: 'bookinfo', body: bad });
  try {
    const r = await importInProcess();
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^  VirtualService bookinfo\/ratings: spec\.http\[0\]\.route: .*must add up to 100 \(60 \+ 30 = 90\)\.? \[weights_sum_100\]$/m);
    assert.match(r.stderr, /Nothing was written/);
    assert.deepEqual(await stored(), []);
  } finally {
    await objects.deleteNamespacedCustomObject({ ...NET('virtualservices'), namespace: 'bookinfo', name: 'ratings' });
  }

  // The analyzer's cross-resource check too: a route to a subset no DestinationRule defines.
  const v4 = { ...bad, metadata: { name: 'ratings-v4', namespace: 'bookinfo' }, spec: { hosts: ['reviews-canary'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v4' } }] }] } };
  await objects.createNamespacedCustomObject({ ...NET('virtualservices'), namespace: 'bookinfo', body: v4 });
  try {
    const r = await importInProcess();
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^  VirtualService bookinfo\/ratings-v4: spec\.http\[0\]\.route\[0\]\.destination.*v4/m);
    assert.deepEqual(await stored(), []);
  } finally {
    await objects.deleteNamespacedCustomObject({ ...NET('virtualservices'), namespace: 'bookinfo', name: 'ratings-v4' });
  }
});

test('an editor imports Bookinfo: same specs in Tern, audited as the editor, the Sidecar reported; a second run updates what changed', async () => {
  const editor = await api.makeToken('editor');
  const r = await importIstio([], editor);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Imported 4 objects: 4 created, 0 updated, 0 unchanged; 1 skipped\./);
  assert.match(r.stdout, /skipped sidecar\.networking\.istio\.io\/default -n bookinfo/);

  for (const o of bookinfo) {
    const got = await api.rest('GET', `/api/v1/resources/${o.kind}/${o.metadata.namespace}/${o.metadata.name}`);
    assert.equal(got.status, 200, `${o.kind} ${o.metadata.name}: ${JSON.stringify(got.body)}`);
    assert.deepEqual(got.body.spec, o.spec, `${o.kind} ${o.metadata.name}`);
  }
  const vs = (await api.rest('GET', '/api/v1/resources/VirtualService/bookinfo/reviews')).body;
  assert.deepEqual(vs.metadata.annotations, { 'example.com/owner': 'reviews-team' });
  assert.deepEqual(vs.metadata.labels, { app: 'reviews' });
  assert.equal((await stored()).length, 4, 'the Sidecar is not in Tern');
  const audit = await api.rest('GET', '/api/v1/audit?namespace=bookinfo');
  const created = audit.body.events.filter((e: { action: string }) => e.action === 'resource.created');
  assert.equal(created.length, 4);
  for (const e of created) assert.match(e.actor, /^admin\/token:test-editor-/);

  // Someone edits the DestinationRule in the cluster; importing again updates only it.
  await objects.patchNamespacedCustomObject({ ...NET('destinationrules'), namespace: 'bookinfo', name: 'reviews', body: [{ op: 'add', path: '/spec/trafficPolicy', value: { loadBalancer: { simple: 'LEAST_REQUEST' } } }] });
  const again = await importInProcess([], editor);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^bookinfo\s+DestinationRule\s+reviews\s+networking\.istio\.io\/v1\s+updated$/m);
  assert.match(again.stdout, /Imported 4 objects: 0 created, 1 updated, 3 unchanged; 1 skipped\./);
  const dr = (await api.rest('GET', '/api/v1/resources/DestinationRule/bookinfo/reviews')).body;
  assert.deepEqual(dr.spec.trafficPolicy, { loadBalancer: { simple: 'LEAST_REQUEST' } });
});
