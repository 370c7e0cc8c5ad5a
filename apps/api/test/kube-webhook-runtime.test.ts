import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  loadAllYaml,
  loadYaml,
  type KubernetesObject,
  type V1MutatingWebhookConfiguration,
  type V1Pod,
} from '@kubernetes/client-node';
import { loadConfig, DEFAULT_PROXY_IMAGE } from '../src/config.ts';
import { webhookCaBundle } from '../src/ca/serving-cert.ts';
import { generateRoot } from '../src/ca/issuer.ts';
import { CertRenewer, renewBackoffMs, renewDelayMs } from '../src/kube/inject/cert-renewer.ts';
import { INIT_CONTAINER, PROXY_CONTAINER, TOKEN_FILE } from '../src/kube/inject/mutate.ts';
import { caBundlePatch, CA_BUNDLE_FIELD_MANAGER, WebhookCaBundleKeeper, WEBHOOK_CONFIGURATION } from '../src/kube/webhook-ca-bundle.ts';
import { injectConfigFromSettings, startInjectionWebhook, webhookDnsNames, type InjectionWebhook } from '../src/kube/webhook-runtime.ts';
import { startTestApi, type TestApi } from './helpers.ts';
import { startRealApiServer, type RealApiServer } from './kube/real-apiserver.ts';
import { eventually } from './xds-fixtures.ts';

// The control plane running the sidecar-injection webhook itself (docs/kubernetes-injection.md):
// on a real kube-apiserver (RBAC on), with the control plane authenticating as its own service
// account bound to deploy/kubernetes/base/rbac.yaml, so the manifest's rights are tested too.

const repo = path.resolve(import.meta.dirname, '../../..');
const base = path.join(repo, 'deploy/kubernetes/base');

let kubeStarting: Promise<RealApiServer> | undefined;
before(() => {
  kubeStarting = startRealApiServer();
  kubeStarting.catch(() => {});
});
after(async () => {
  await (await kubeStarting?.catch(() => undefined))?.stop();
});


/** A kubeconfig authenticating as tern-system/tern-control-plane (a TokenRequest), bound by the manifest's RBAC. */
async function controlPlaneKubeconfig(admin: KubeConfig, dir: string): Promise<string> {
  const client = KubernetesObjectApi.makeApiClient(admin);
  for (const doc of loadAllYaml(fs.readFileSync(path.join(base, 'rbac.yaml'), 'utf8')) as KubernetesObject[]) await client.create(doc);
  const core = admin.makeApiClient(CoreV1Api);
  const { status } = await core.createNamespacedServiceAccountToken({ name: 'tern-control-plane', namespace: 'tern-system', body: { spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 } } });
  const kc = new KubeConfig();
  const cluster = admin.getCurrentCluster()!;
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'tern-control-plane', token: status!.token }],
    contexts: [{ name: 'cp', cluster: cluster.name, user: 'tern-control-plane' }],
    currentContext: 'cp',
  });
  const file = path.join(dir, 'control-plane.kubeconfig');
  fs.writeFileSync(file, kc.exportConfig());
  return file;
}

function serialOf(hex: string): string {
  return hex.toLowerCase().replace(/^0+/, '');
}

describe('configuration', () => {
  test('defaults: on in a pod, port 15017, names and xDS address follow the namespace', () => {
    const off = loadConfig({});
    assert.equal(off.kubeInject, false);
    assert.equal(off.kubeInjectPort, 15017);
    assert.equal(off.proxyImage, DEFAULT_PROXY_IMAGE);
    assert.equal(off.kubeInjectXdsAddress, 'tern-api.tern-system.svc:15010');
    const inPod = loadConfig({ KUBERNETES_SERVICE_HOST: '10.0.0.1', POD_NAMESPACE: 'mesh-ctl', TERN_API_HOST: '0.0.0.0' });
    assert.equal(inPod.kubeInject, true);
    assert.equal(inPod.kubeInjectHost, '0.0.0.0', 'the webhook listens where the API does unless told');
    assert.equal(inPod.kubeInjectXdsAddress, 'tern-api.mesh-ctl.svc:15010');
    assert.deepEqual(webhookDnsNames(inPod), ['tern-webhook.mesh-ctl.svc', 'tern-webhook.mesh-ctl.svc.cluster.local', 'tern-webhook.mesh-ctl', 'tern-webhook']);
    assert.equal(loadConfig({ KUBERNETES_SERVICE_HOST: '10.0.0.1', TERN_KUBE_INJECT: 'false' }).kubeInject, false);
    const s = loadConfig({ TERN_PROXY_IMAGE: 'reg.example/tern-proxy:2', TERN_KUBE_INJECT_XDS_ADDRESS: 'cp.example:15012', TERN_TRUST_DOMAIN: 'example.org', TERN_KUBE_INJECT_DNS_NAMES: 'hook.example, localhost' });
    assert.deepEqual(injectConfigFromSettings(s), { proxyImage: 'reg.example/tern-proxy:2', xdsAddress: 'cp.example:15012', trustDomain: 'example.org', clusterDomain: 'cluster.local', tokenAudience: 'tern-ca' });
    assert.deepEqual(webhookDnsNames(s).slice(-2), ['hook.example', 'localhost']);
  });

  test('the manifest agrees: the container port the webhook Service targets, the proxy image default', () => {
    const docs = loadAllYaml(fs.readFileSync(path.join(base, 'control-plane.yaml'), 'utf8')) as any[];
    const c = docs.find((d) => d.kind === 'Deployment').spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
    const port = c.ports.find((p: any) => p.name === 'https-webhook').containerPort;
    const cfg = loadConfig({ ...env, KUBERNETES_SERVICE_HOST: '10.0.0.1', POD_NAMESPACE: 'tern-system' });
    assert.equal(cfg.kubeInject, true);
    assert.equal(cfg.kubeInjectPort, port);
    assert.equal(cfg.kubeInjectHost, '0.0.0.0');
    assert.equal(cfg.proxyImage, DEFAULT_PROXY_IMAGE);
    const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'tern-webhook');
    assert.equal(svc.spec.ports[0].targetPort, 'https-webhook');
  });

  test('bad values are refused naming the variable', () => {
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [{ TERN_KUBE_INJECT_PORT: '70000' }, /^Error: TERN_KUBE_INJECT_PORT must be a port number \(0-65535\), got "70000"/],
      [{ TERN_KUBE_INJECT_PORT: 'https' }, /^Error: TERN_KUBE_INJECT_PORT must be an integer >= 0, got "https"/],
      [{ TERN_PROXY_IMAGE: '' }, /^Error: TERN_PROXY_IMAGE must name an image .*got an empty value/],
      [{ TERN_PROXY_IMAGE: '   ' }, /^Error: TERN_PROXY_IMAGE must name an image/],
      [{ TERN_PROXY_IMAGE: 'tern proxy' }, /^Error: TERN_PROXY_IMAGE must be an image reference without spaces/],
      [{ TERN_KUBE_INJECT_XDS_ADDRESS: 'tern-api.tern-system.svc' }, /^Error: TERN_KUBE_INJECT_XDS_ADDRESS must be host:port/],
      [{ TERN_KUBE_INJECT_XDS_ADDRESS: 'tern-api:0' }, /^Error: TERN_KUBE_INJECT_XDS_ADDRESS must be host:port/],
      [{ TERN_KUBE_INJECT: 'yes' }, /^Error: TERN_KUBE_INJECT must be true or false/],
      [{ TERN_KUBE_INJECT_CERT_TTL_SECONDS: '10' }, /^Error: TERN_KUBE_INJECT_CERT_TTL_SECONDS must be an integer >= 60/],
      [{ TERN_KUBE_INJECT_DNS_NAMES: 'ok.example,Bad_Name' }, /^Error: TERN_KUBE_INJECT_DNS_NAMES: item 2 \("Bad_Name"\) must be a lower-case DNS name/],
      [{ TERN_KUBE_INJECT_CA_BUNDLE_CHECK_SECONDS: '0' }, /^Error: TERN_KUBE_INJECT_CA_BUNDLE_CHECK_SECONDS must be an integer >= 1/],
    ];
    for (const [env, re] of cases) assert.throws(() => loadConfig(env), (e: Error) => re.test(String(e)), JSON.stringify(env));
  });
});

describe('renewal timing and the caBundle patch (pure)', () => {
  test('renewal at half the lifetime, ± jitter; backoff doubles to a cap', () => {
    assert.equal(renewDelayMs(0, 100_000, 0.5, 0.1, () => 0.5), 50_000);
    assert.equal(renewDelayMs(0, 100_000, 0.5, 0.1, () => 0), 45_000);
    assert.equal(renewDelayMs(0, 100_000, 0.5, 0.1, () => 1), 55_000);
    assert.equal(renewDelayMs(10, 5, 0.5, 0.1, () => 0.5), 0, 'already expired: at once');
    const b = { initialMs: 1000, maxMs: 8000 };
    assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => renewBackoffMs(n, b, () => 0.5)), [1000, 2000, 4000, 8000, 8000, 8000]);
  });

  test('caBundlePatch touches only the caBundle of entries that differ, guarded by the resourceVersion', () => {
    const mwc: V1MutatingWebhookConfiguration = {
      metadata: { name: 'x', resourceVersion: '42' },
      webhooks: [
        { name: 'a', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: { caBundle: 'QUJD' } },
        { name: 'b', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: {} },
      ],
    };
    assert.deepEqual(caBundlePatch(mwc, 'QUJD'), [
      { op: 'test', path: '/metadata/resourceVersion', value: '42' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: 'QUJD' },
    ]);
    mwc.webhooks![1]!.clientConfig.caBundle = 'QUJD';
    assert.deepEqual(caBundlePatch(mwc, 'QUJD'), []);
  });

  test('a failed renewal keeps the current certificate, is retried with backoff and recovers', async () => {
    let calls = 0;
    const applied: string[] = [];
    const inUseDuringFailures: (string | undefined)[] = [];
    const cert = (serial: string) => ({ certPem: '', keyPem: '', caPem: '', serial, notAfter: new Date(Date.now() + 60_000) });
    const r = new CertRenewer({
      issue: async () => {
        calls++;
        if (calls === 2 || calls === 3) {
          inUseDuringFailures.push(r.current?.serial);
          throw new Error(`CA unavailable (${calls})`);
        }
        return cert(`s${calls}`);
      },
      apply: (c) => applied.push(c.serial),
      renewFraction: 0.001, // about 60 ms
      jitter: 0,
      backoff: { initialMs: 20, maxMs: 40 },
    });
    assert.equal((await r.start()).serial, 's1');
    await eventually(() => r.renewals >= 1, 20_000, 'renewed after two failures');
    await r.stop();
    assert.deepEqual(inUseDuringFailures, ['s1', 's1'], 'the current certificate stays while renewals fail');
    assert.equal(applied[0], 's4', 'nothing applied for the failed attempts');
    assert.equal(r.failures, 0);
  });
});

describe('the control plane runs the webhook (real kube-apiserver)', () => {
  let kube: RealApiServer;
  let admin: KubeConfig;
  let core: CoreV1Api;
  let admission: AdmissionregistrationV1Api;
  let cp: TestApi;
  let dir: string;
  let want: string;

  before(async () => {
    kube = await kubeStarting!;
    admin = new KubeConfig();
    admin.loadFromFile(kube.kubeconfig);
    core = admin.makeApiClient(CoreV1Api);
    admission = admin.makeApiClient(AdmissionregistrationV1Api);
    for (const ns of ['tern-system', 'plain']) await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespace({ body: { metadata: { name: 'mesh', labels: { 'tern-injection': 'enabled' } } } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-webhook-rt-'));
    const kubeconfig = await controlPlaneKubeconfig(admin, dir);
    cp = await startTestApi({
      kubeconfig,
      namespace: 'tern-system',
      kubeInject: true,
      kubeInjectHost: '127.0.0.1',
      kubeInjectPort: 0,
      // The API server here dials localhost (no Service network); in a cluster: tern-webhook.<ns>.svc.
      kubeInjectDnsNames: ['localhost'],
      kubeInjectCaBundleCheckMs: 1000,
      proxyImage: 'registry.test/tern-proxy:9',
    });
    want = webhookCaBundle(cp.app.ca);
    // The manifest's configuration, as `kubectl apply` would create it: no caBundle. The URL stands
    // in for the Service; failurePolicy Fail so that a webhook the API server cannot use fails the test.
    const mwc = loadYaml<V1MutatingWebhookConfiguration>(fs.readFileSync(path.join(base, 'webhook.yaml'), 'utf8'));
    for (const w of mwc.webhooks!) {
      assert.equal(w.clientConfig.caBundle, undefined, 'the manifest carries no caBundle');
      w.clientConfig = { url: `https://localhost:${cp.app.webhook!.port}/inject`, caBundle: '' };
      w.failurePolicy = 'Fail';
    }
    await admission.createMutatingWebhookConfiguration({ body: mwc });
  });
  after(async () => {
    await cp?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const read = () => admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });

  test('every replica serves the webhook; its certificate names the Service in the control plane\'s namespace', () => {
    const w = cp.app.webhook!;
    assert.ok(w.port > 0);
    assert.deepEqual(w.dnsNames, ['tern-webhook.tern-system.svc', 'tern-webhook.tern-system.svc.cluster.local', 'tern-webhook.tern-system', 'tern-webhook', 'localhost']);
  });

  test('the leader fills caBundle of every entry with the CA trust bundle (its own field manager)', async () => {
    const mwc = await eventually(async () => {
      const m = await read();
      return m.webhooks!.every((w) => w.clientConfig.caBundle === want) && m;
    }, 20_000, 'caBundle filled');
    assert.equal(cp.app.kube!.isLeader, true);
    assert.equal(mwc.webhooks!.length, 2);
    assert.equal(Buffer.from(want, 'base64').toString('utf8'), cp.app.ca.trustBundle().roots.join('\n'));
    assert.ok(mwc.metadata!.managedFields!.some((f) => f.manager === CA_BUNDLE_FIELD_MANAGER));
    // Nothing else changed: the manifest's selectors and policies are as applied.
    assert.deepEqual(mwc.webhooks!.map((w) => [w.name, w.namespaceSelector?.matchLabels, w.failurePolicy]), [
      ['namespace.sidecar-injector.tern.dev', { 'tern-injection': 'enabled' }, 'Fail'],
      ['istio-namespace.sidecar-injector.tern.dev', { 'istio-injection': 'enabled' }, 'Fail'],
    ]);
  });

  test('a pod in a labelled namespace comes back mutated with the configured image, address and token source', async () => {
    const body = { metadata: { generateName: 'cart-', labels: { app: 'cart' } }, spec: { serviceAccountName: 'cart', containers: [{ name: 'app', image: 'cart:1' }] } };
    // The API server picks the configuration change up asynchronously.
    const created = await eventually(async () => {
      const p: V1Pod = await core.createNamespacedPod({ namespace: 'mesh', body });
      return p.spec!.containers.some((c) => c.name === PROXY_CONTAINER) && p;
    }, 20_000, 'a mutated pod');
    assert.deepEqual(created.spec!.containers.map((c) => c.name), ['app', PROXY_CONTAINER]);
    assert.deepEqual(created.spec!.initContainers!.map((c) => c.name), [INIT_CONTAINER]);
    const proxy = created.spec!.containers[1]!;
    assert.equal(proxy.image, 'registry.test/tern-proxy:9');
    const env = Object.fromEntries(proxy.env!.map((e) => [e.name, e.value]));
    assert.equal(env.TERN_SA_TOKEN_FILE, TOKEN_FILE);
    assert.equal(env.TERN_JOIN_TOKEN_FILE, undefined);
    assert.equal(env.TERN_XDS_ADDRESS, 'tern-api.tern-system.svc:15010');
    const template = JSON.parse(created.spec!.initContainers![0]!.env!.find((e) => e.name === 'TERN_BOOTSTRAP_TEMPLATE')!.value!);
    assert.equal(template.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address, 'tern-api.tern-system.svc');
  });

  test('a pod in an unlabelled namespace is not mutated', async () => {
    const p = await core.createNamespacedPod({ namespace: 'plain', body: { metadata: { name: 'web' }, spec: { containers: [{ name: 'app', image: 'web:1' }] } } });
    assert.deepEqual(p.spec!.containers.map((c) => c.name), ['app']);
    assert.equal(p.spec!.initContainers, undefined);
  });

  test('namespace labels come from the informer; a namespace labelled a moment ago is read live', async () => {
    const ns = cp.app.webhook!.namespaces;
    await eventually(() => ns.synced, 20_000, 'informer synced');
    const hits = ns.hits;
    // serviceAccountName is explicit: this API server runs without the ServiceAccount admission
    // plugin, which in a cluster sets `default` before the webhook (the projected token needs one).
    const p = await core.createNamespacedPod({ namespace: 'mesh', body: { metadata: { generateName: 'cached-' }, spec: { serviceAccountName: 'cart', containers: [{ name: 'app', image: 'cart:1' }] } } });
    assert.ok(p.spec!.containers.some((c) => c.name === PROXY_CONTAINER));
    assert.ok(ns.hits > hits, 'answered from the cache');
    // Created and used at once: whether or not the watch event has arrived, the pod is injected.
    await core.createNamespace({ body: { metadata: { name: 'fresh', labels: { 'istio-injection': 'enabled' } } } });
    const q = await core.createNamespacedPod({ namespace: 'fresh', body: { metadata: { name: 'first' }, spec: { serviceAccountName: 'default', containers: [{ name: 'app', image: 'x:1' }] } } });
    assert.deepEqual(q.spec!.containers.map((c) => c.name), ['app', PROXY_CONTAINER]);
  });

  test('a caBundle reset (kubectl apply of the manifest, an edit) is restored by the leader\'s periodic check', async () => {
    const m = await read();
    await admission.patchMutatingWebhookConfiguration({
      name: WEBHOOK_CONFIGURATION,
      body: [
        { op: 'remove', path: '/webhooks/0/clientConfig/caBundle' },
        { op: 'replace', path: '/webhooks/1/clientConfig/caBundle', value: Buffer.from('not a bundle').toString('base64') },
      ],
    });
    const reset = await read();
    assert.notEqual(reset.metadata!.resourceVersion, m.metadata!.resourceVersion);
    assert.notEqual(reset.webhooks![1]!.clientConfig.caBundle, want);
    await eventually(async () => (await read()).webhooks!.every((w) => w.clientConfig.caBundle === want), 20_000, 'caBundle restored');
  });

  test('RBAC: the control plane\'s account may patch only its own webhook configuration', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(path.join(dir, 'control-plane.kubeconfig'));
    const other = await admission.createMutatingWebhookConfiguration({ body: { metadata: { name: 'someone-elses' }, webhooks: [] } });
    assert.ok(other.metadata!.uid);
    const asCp = kc.makeApiClient(AdmissionregistrationV1Api);
    await assert.rejects(asCp.patchMutatingWebhookConfiguration({ name: 'someone-elses', body: [{ op: 'add', path: '/metadata/labels', value: { x: 'y' } }] }), (e: { code?: number }) => e.code === 403);
    await assert.rejects(asCp.deleteMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION }), (e: { code?: number }) => e.code === 403);
    const mine = await asCp.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });
    assert.equal(mine.metadata!.name, WEBHOOK_CONFIGURATION);
  });

  test('a trust bundle change (a root added for a rotation) reaches caBundle without waiting for the periodic check', async () => {
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: 'rotation-test' },
        webhooks: [{
          name: 'never.rotation-test.tern.dev',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Ignore',
          clientConfig: { url: 'https://localhost:1/never' },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
          namespaceSelector: { matchLabels: { 'never-matches': 'true' } },
        }],
      },
    });
    const current = cp.app.ca.trustBundle().roots;
    const next = (await generateRoot()).certificate.toString('pem');
    let roots = current;
    const keeper = new WebhookCaBundleKeeper({ kc: admin, trustBundle: () => roots, name: 'rotation-test', checkMs: 60_000, bundlePollMs: 100 });
    await keeper.start();
    try {
      const caBundle = async () => (await admission.readMutatingWebhookConfiguration({ name: 'rotation-test' })).webhooks![0]!.clientConfig.caBundle;
      await eventually(async () => (await caBundle()) === webhookCaBundle(current.join('\n')), 20_000, 'first bundle');
      roots = [...current, next];
      await eventually(async () => (await caBundle()) === webhookCaBundle([...current, next].join('\n')), 5000, 'the new root added');
      assert.equal(keeper.patches, 2);
    } finally {
      await keeper.stop();
    }
  });

  test('a missing configuration is reported, not fatal', async () => {
    const keeper = new WebhookCaBundleKeeper({ kc: admin, trustBundle: () => cp.app.ca.trustBundle().roots, name: 'not-installed' });
    assert.equal(await keeper.syncOnce(), 'missing');
  });

  describe('serving certificate renewal', () => {
    let hook: InjectionWebhook;
    before(async () => {
      hook = await startInjectionWebhook({
        kc: admin,
        ca: cp.app.ca,
        settings: { ...cp.app.config, kubeInjectHost: '127.0.0.1', kubeInjectPort: 0, kubeInjectCertTtlSeconds: 60, kubeInjectDnsNames: ['localhost'] },
        // 60 s (the shortest lifetime the CA issues) × 0.04: a renewal about every 2.4 s.
        renew: { renewFraction: 0.04, jitter: 0 },
      });
    });
    after(async () => {
      await hook?.close();
    });

    const get = (agent: https.Agent | false, ca: string) =>
      new Promise<{ status: number; serial: string; socket: tls.TLSSocket }>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: hook.port, path: '/inject', method: 'GET', servername: 'localhost', ca, agent }, (res) => {
          const socket = res.socket as tls.TLSSocket;
          const serial = serialOf(socket.getPeerCertificate().serialNumber);
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, serial, socket }));
        });
        req.on('error', reject);
        req.end();
      });

    test('renewed before expiry: new handshakes get the new serial, an open connection keeps working, the new one chains to the root', async () => {
      const root = cp.app.ca.trustBundle().roots.join('\n');
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = await get(agent, root);
        assert.equal(first.status, 405, 'the webhook answers (GET is not allowed)');
        assert.equal(first.serial, serialOf(hook.renewer.current!.serial));
        await eventually(() => hook.renewer.renewals >= 1, 15_000, 'a renewal');
        // The connection opened before the renewal still carries requests.
        const again = await get(agent, root);
        assert.equal(again.socket, first.socket, 'same connection');
        assert.equal(again.status, 405);
        assert.equal(again.serial, first.serial);
        // A new handshake: the renewed certificate, verified against the CA root alone.
        const fresh = await get(false, root);
        assert.notEqual(fresh.serial, first.serial);
        assert.equal(fresh.serial, serialOf(hook.renewer.current!.serial));
        const leaf = new X509Certificate(hook.renewer.current!.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0]);
        assert.ok(leaf.verify(new X509Certificate(cp.app.ca.trustBundle().roots[0]!).publicKey), 'signed by the CA root');
        assert.ok(leaf.checkHost('tern-webhook.tern-system.svc'));
      } finally {
        agent.destroy();
      }
    });
  });
});
