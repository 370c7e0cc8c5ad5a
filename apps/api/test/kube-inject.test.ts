import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { normalizeJson } from '@tern/xds';
import {
  APP_PROBERS_ENV,
  BOOTSTRAP_FILE,
  initScript,
  injectSidecar,
  INIT_CONTAINER,
  PROXY_CONTAINER,
  redirectOptions,
  STATUS_ANNOTATION,
  TOKEN_FILE,
  TOKEN_FILE_ENV,
  type InjectConfig,
  type JsonPatchOp,
} from '../src/kube/inject/mutate.ts';
import { iptablesRestoreInput, redirectRules } from '../src/kube/inject/iptables.ts';
import { parseAdmissionReview, startWebhookServer, webhookServiceDns, type AdmissionReviewResponse, type WebhookServer } from '../src/kube/inject/webhook-server.ts';
import { issueServingCertificate, webhookCaBundle } from '../src/ca/serving-cert.ts';
import { generateRoot, issuerFromStoredRoot } from '../src/ca/issuer.ts';
import { x509 } from '../src/ca/x509.ts';
import { startTestApi, type TestApi } from './helpers.ts';
import { startRealApiServer, type RealApiServer } from './kube/real-apiserver.ts';

// The API server (etcd + kube-apiserver, external processes) starts while the other suites run.
let kubeStarting: Promise<RealApiServer> | undefined;
before(() => {
  kubeStarting = startRealApiServer();
  kubeStarting.catch(() => {}); // reported by the suite that awaits it
});
after(async () => {
  // Stopped here too in case its suite never ran (a name filter, an earlier failure).
  await (await kubeStarting?.catch(() => undefined))?.stop();
});

const config: InjectConfig = { proxyImage: 'ghcr.io/tern/proxy:1.0', xdsAddress: 'tern-api.tern-system.svc:15010' };
const ENABLED = { 'tern-injection': 'enabled', 'kubernetes.io/metadata.name': 'shop' };

function pod(o: { annotations?: Record<string, string>; containers?: V1Container[]; initContainers?: V1Container[]; volumes?: boolean; labels?: Record<string, string> | null } = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'cart-7d9f-',
      namespace: 'shop',
      ...(o.labels === null ? {} : { labels: o.labels ?? { app: 'cart', version: 'v1' } }),
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec: {
      serviceAccountName: 'cart',
      containers: o.containers ?? [{ name: 'app', image: 'cart:1', ports: [{ name: 'http', containerPort: 8080 }] }],
      ...(o.initContainers ? { initContainers: o.initContainers } : {}),
      ...(o.volumes ? { volumes: [{ name: 'data', emptyDir: {} }] } : {}),
    },
  };
}

// A small RFC 6902 applier (add/replace/remove) strict enough to catch a patch the API server would refuse.
function applyPatch<T>(doc: T, ops: JsonPatchOp[]): T {
  const out = structuredClone(doc) as unknown;
  for (const [i, op] of ops.entries()) {
    assert.ok(op.path.startsWith('/'), `op ${i}: path must start with /`);
    const parts = op.path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop()!;
    let parent: any = out;
    for (const p of parts) {
      assert.ok(parent !== null && typeof parent === 'object' && p in parent, `op ${i} (${op.op} ${op.path}): ${p} does not exist`);
      parent = parent[p];
    }
    if (Array.isArray(parent)) {
      if (op.op === 'add') {
        const idx = last === '-' ? parent.length : Number(last);
        assert.ok(Number.isInteger(idx) && idx >= 0 && idx <= parent.length, `op ${i}: bad index ${last}`);
        parent.splice(idx, 0, structuredClone(op.value));
      } else {
        const idx = Number(last);
        assert.ok(idx >= 0 && idx < parent.length, `op ${i}: index ${last} out of range`);
        if (op.op === 'replace') parent[idx] = structuredClone(op.value);
        else parent.splice(idx, 1);
      }
    } else {
      assert.ok(parent !== null && typeof parent === 'object', `op ${i} (${op.path}): parent is not an object`);
      if (op.op !== 'add') assert.ok(last in parent, `op ${i} (${op.op} ${op.path}): ${last} does not exist`);
      if (op.op === 'remove') delete parent[last];
      else parent[last] = structuredClone(op.value);
    }
  }
  return out as T;
}

const container = (p: V1Pod, name: string) => p.spec!.containers.find((c) => c.name === name) ?? p.spec!.initContainers?.find((c) => c.name === name);

describe('injectSidecar: deciding', () => {
  test('a namespace without the label gets nothing', () => {
    const r = injectSidecar(pod(), { 'kubernetes.io/metadata.name': 'shop' }, config);
    assert.equal(r.reason, 'namespace-not-enabled');
    assert.deepEqual(r.patch, []);
    assert.equal(injectSidecar(pod(), { 'tern-injection': 'disabled' }, config).reason, 'namespace-not-enabled');
  });

  test('tern-injection=enabled and Istio\'s istio-injection=enabled opt a namespace in', () => {
    assert.equal(injectSidecar(pod(), ENABLED, config).reason, 'injected');
    assert.equal(injectSidecar(pod(), { 'istio-injection': 'enabled' }, config).reason, 'injected');
  });

  test('a pod annotated sidecar.tern.dev/inject: "false" (or Istio\'s) opts out', () => {
    for (const a of ['sidecar.tern.dev/inject', 'sidecar.istio.io/inject']) {
      const r = injectSidecar(pod({ annotations: { [a]: 'false' } }), ENABLED, config);
      assert.equal(r.reason, 'pod-opted-out', a);
      assert.deepEqual(r.patch, []);
    }
    assert.equal(injectSidecar(pod({ annotations: { 'sidecar.tern.dev/inject': 'true' } }), ENABLED, config).reason, 'injected');
  });

  test('reinvocation with an already injected pod gives an empty patch (idempotent)', () => {
    const first = injectSidecar(pod(), ENABLED, config);
    const injected = applyPatch(pod(), first.patch);
    const again = injectSidecar(injected, ENABLED, config);
    assert.equal(again.reason, 'already-injected');
    assert.deepEqual(again.patch, []);
    // Even if another webhook dropped the annotation, the container itself proves it.
    const noAnnotation = structuredClone(injected);
    delete noAnnotation.metadata!.annotations![STATUS_ANNOTATION];
    assert.deepEqual(injectSidecar(noAnnotation, ENABLED, config).patch, []);
  });

  test('hostNetwork pods are left alone', () => {
    const p = pod();
    p.spec!.hostNetwork = true;
    assert.equal(injectSidecar(p, ENABLED, config).reason, 'host-network');
  });

  test('a bad traffic annotation skips injection with a message naming it', () => {
    const r = injectSidecar(pod({ annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432,http' } }), ENABLED, config);
    assert.equal(r.reason, 'invalid-annotation');
    assert.deepEqual(r.patch, []);
    assert.match(r.message, /traffic\.sidecar\.istio\.io\/excludeOutboundPorts: item 2 \("http"\) must be a port number/);
    const c = injectSidecar(pod({ annotations: { 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.0/33' } }), ENABLED, config);
    assert.match(c.message, /excludeOutboundIPRanges: item 1 \("10\.0\.0\.0\/33"\) must be an IPv4 address or CIDR/);
  });
});

describe('injectSidecar: what is injected', () => {
  test('the patch applies cleanly to pods with and without existing arrays and maps', () => {
    for (const p of [pod(), pod({ labels: null, volumes: true, annotations: { note: 'x' }, initContainers: [{ name: 'migrate', image: 'm:1' }] })]) {
      const r = injectSidecar(p, ENABLED, config);
      const out = applyPatch(p, r.patch);
      assert.deepEqual(out.spec!.containers.map((c) => c.name), [...p.spec!.containers.map((c) => c.name), PROXY_CONTAINER]);
      // The redirecting init container runs before any other init container.
      assert.equal(out.spec!.initContainers![0]!.name, INIT_CONTAINER);
      assert.equal(out.spec!.initContainers!.length, (p.spec!.initContainers?.length ?? 0) + 1);
      assert.deepEqual(out.spec!.volumes!.map((v) => v.name).slice(-2), ['tern-config', 'tern-token']);
      assert.equal(out.metadata!.labels!['security.istio.io/tlsMode'], 'istio');
      const status = JSON.parse(out.metadata!.annotations![STATUS_ANNOTATION]!);
      assert.deepEqual(status.containers, [PROXY_CONTAINER]);
      assert.deepEqual(status.initContainers, [INIT_CONTAINER]);
      if (p.metadata!.annotations) assert.equal(out.metadata!.annotations!.note, 'x');
      if (p.metadata!.labels) assert.equal(out.metadata!.labels!.app, 'cart');
    }
  });

  test('the proxy container: image, bootstrap, downward API, token for the CA, uid 1337, readiness', () => {
    const out = applyPatch(pod(), injectSidecar(pod(), ENABLED, config).patch);
    const proxy = container(out, PROXY_CONTAINER)!;
    assert.equal(proxy.image, config.proxyImage);
    assert.deepEqual(proxy.args, ['--bootstrap', BOOTSTRAP_FILE]);
    const env = Object.fromEntries(proxy.env!.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));
    assert.equal(env.POD_NAME, 'metadata.name');
    assert.equal(env.POD_NAMESPACE, 'metadata.namespace');
    assert.equal(env.POD_IP, 'status.podIP');
    assert.equal(env.TERN_XDS_ADDRESS, config.xdsAddress);
    assert.equal(env[TOKEN_FILE_ENV], TOKEN_FILE);
    assert.equal(env.TERN_JOIN_TOKEN_FILE, undefined, 'the service-account token is not a join token: the proxy reads it through TERN_SA_TOKEN_FILE');
    assert.equal(proxy.securityContext!.runAsUser, 1337);
    assert.equal(proxy.securityContext!.runAsNonRoot, true);
    assert.deepEqual(proxy.readinessProbe!.httpGet, { path: '/healthz/ready', port: 15021 });
    assert.ok(proxy.resources!.requests);
    // The token is mounted where TERN_SA_TOKEN_FILE points, audience-bound and short-lived.
    const tokenVol = out.spec!.volumes!.find((v) => v.name === 'tern-token')!;
    assert.deepEqual(tokenVol.projected!.sources![0]!.serviceAccountToken, { audience: 'tern-ca', expirationSeconds: 3600, path: 'tern-token' });
    const mount = proxy.volumeMounts!.find((m) => m.name === 'tern-token')!;
    assert.equal(`${mount.mountPath}/tern-token`, TOKEN_FILE);
  });

  test('the init container: NET_ADMIN/NET_RAW, root, the bootstrap template and the iptables rules', () => {
    const out = applyPatch(pod(), injectSidecar(pod(), ENABLED, config).patch);
    const init = container(out, INIT_CONTAINER)!;
    assert.deepEqual(init.securityContext!.capabilities!.add, ['NET_ADMIN', 'NET_RAW']);
    assert.equal(init.securityContext!.runAsUser, 0);
    assert.equal(init.command![0], 'sh');
    assert.match(init.command![2]!, /iptables-restore --noflush/);
    assert.match(init.command![2]!, /-A TERN_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    assert.match(init.command![2]!, /-A TERN_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    const template = JSON.parse(init.env!.find((e) => e.name === 'TERN_BOOTSTRAP_TEMPLATE')!.value!);
    assert.equal(template.node.metadata.INTERCEPTION, 'REDIRECT');
    assert.equal(template.node.metadata.SERVICE_ACCOUNT, 'cart');
    assert.deepEqual(template.node.metadata.LABELS, { app: 'cart', version: 'v1', 'security.istio.io/tlsMode': 'istio' });
    assert.equal(template.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address, 'tern-api.tern-system.svc');
  });

  test('the bootstrap, with the placeholders filled, is a valid Envoy Bootstrap', () => {
    const out = applyPatch(pod(), injectSidecar(pod(), ENABLED, config).patch);
    const text = container(out, INIT_CONTAINER)!.env!.find((e) => e.name === 'TERN_BOOTSTRAP_TEMPLATE')!.value!;
    const filled = JSON.parse(text.replaceAll('@POD_NAME@', 'cart-7d9f-abcde').replaceAll('@POD_NAMESPACE@', 'shop').replaceAll('@POD_IP@', '10.1.2.3'));
    const normalized = normalizeJson('type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap', filled);
    assert.equal((normalized.node as any).id, 'sidecar~10.1.2.3~cart-7d9f-abcde.shop~shop.svc.cluster.local');
  });

  test('httpGet and tcpSocket probes are rewritten to the proxy, originals kept for it', () => {
    const app: V1Container = {
      name: 'app',
      image: 'cart:1',
      ports: [{ name: 'http', containerPort: 8080 }],
      livenessProbe: { httpGet: { path: '/healthz', port: 'http' as never, httpHeaders: [{ name: 'X-Probe', value: '1' }] }, periodSeconds: 7, timeoutSeconds: 2 },
      readinessProbe: { tcpSocket: { port: 8080 as never }, initialDelaySeconds: 3 },
      startupProbe: { exec: { command: ['true'] } },
    };
    const side: V1Container = { name: 'side', image: 's:1', readinessProbe: { httpGet: { path: '/r', port: 'missing' as never } } };
    const p = pod({ containers: [app, side] });
    const r = injectSidecar(p, ENABLED, config);
    const out = applyPatch(p, r.patch);
    const a = out.spec!.containers[0]!;
    assert.deepEqual(a.livenessProbe, { periodSeconds: 7, timeoutSeconds: 2, httpGet: { path: '/app-health/app/livez', port: 15020, scheme: 'HTTP' } });
    assert.deepEqual(a.readinessProbe, { initialDelaySeconds: 3, httpGet: { path: '/app-health/app/readyz', port: 15020, scheme: 'HTTP' } });
    assert.deepEqual(a.startupProbe, { exec: { command: ['true'] } }, 'exec probes need no rewrite');
    // A named port no container declares: left alone, with a warning.
    assert.deepEqual(out.spec!.containers[1]!.readinessProbe, side.readinessProbe);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /containers\[1\] \(side\)\.readinessProbe: httpGet\.port "missing" names no port/);
    const probers = JSON.parse(container(out, PROXY_CONTAINER)!.env!.find((e) => e.name === APP_PROBERS_ENV)!.value!);
    assert.deepEqual(probers, {
      '/app-health/app/livez': { httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP', httpHeaders: [{ name: 'X-Probe', value: '1' }] }, timeoutSeconds: 2 },
      '/app-health/app/readyz': { tcpSocket: { port: 8080 } },
    });
    const status = JSON.parse(out.metadata!.annotations![STATUS_ANNOTATION]!);
    assert.deepEqual(status.rewrittenProbes, ['/app-health/app/livez', '/app-health/app/readyz']);
    // The original app containers are untouched otherwise, and the input was not mutated.
    assert.equal(p.spec!.containers[0]!.livenessProbe!.httpGet!.path, '/healthz');
  });

  test('rewriteAppHTTPProbers: "false" keeps the probes', () => {
    const app: V1Container = { name: 'app', image: 'cart:1', livenessProbe: { httpGet: { path: '/healthz', port: 8080 as never } } };
    const p = pod({ containers: [app], annotations: { 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' } });
    const out = applyPatch(p, injectSidecar(p, ENABLED, config).patch);
    assert.deepEqual(out.spec!.containers[0]!.livenessProbe, app.livenessProbe);
    assert.equal(container(out, PROXY_CONTAINER)!.env!.some((e) => e.name === APP_PROBERS_ENV), false);
  });
});

describe('iptables rules', () => {
  const defaults = redirectOptions({});

  test('istio-init\'s shape: proxy uid/gid skipped before any REDIRECT, inbound to 15006, outbound to 15001', () => {
    const lines = redirectRules(defaults).map((r) => r.join(' '));
    assert.deepEqual(lines, [
      '-N TERN_INBOUND',
      '-N TERN_IN_REDIRECT',
      '-N TERN_OUTPUT',
      '-N TERN_REDIRECT',
      '-A TERN_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      '-A TERN_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A PREROUTING -p tcp -j TERN_INBOUND',
      '-A TERN_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A TERN_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A TERN_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A TERN_INBOUND -p tcp -j TERN_IN_REDIRECT',
      '-A OUTPUT -p tcp -j TERN_OUTPUT',
      '-A TERN_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A TERN_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A TERN_OUTPUT -o lo -j RETURN',
      '-A TERN_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A TERN_OUTPUT -j TERN_REDIRECT',
    ]);
  });

  test('the traffic annotations narrow the rules', () => {
    const o = redirectOptions({
      'traffic.sidecar.istio.io/includeInboundPorts': '9080,9090,15021',
      'traffic.sidecar.istio.io/excludeOutboundPorts': '5432',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': '169.254.169.254,10.96.0.0/12',
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8',
    });
    const lines = redirectRules(o).map((r) => r.join(' '));
    assert.ok(lines.includes('-A TERN_INBOUND -p tcp --dport 9080 -j TERN_IN_REDIRECT'));
    assert.ok(lines.includes('-A TERN_INBOUND -p tcp --dport 9090 -j TERN_IN_REDIRECT'));
    assert.ok(!lines.some((l) => l.includes('--dport 15021 -j TERN_IN_REDIRECT')), 'the health port is never redirected');
    assert.ok(!lines.includes('-A TERN_INBOUND -p tcp -j TERN_IN_REDIRECT'));
    assert.ok(lines.includes('-A TERN_OUTPUT -p tcp --dport 5432 -j RETURN'));
    assert.ok(lines.includes('-A TERN_OUTPUT -d 169.254.169.254/32 -j RETURN'));
    assert.ok(lines.includes('-A TERN_OUTPUT -d 10.96.0.0/12 -j RETURN'));
    assert.equal(lines.at(-1), '-A TERN_OUTPUT -d 10.0.0.0/8 -j TERN_REDIRECT');
    // Exclusions come before the redirect they exclude from.
    assert.ok(lines.indexOf('-A TERN_OUTPUT -p tcp --dport 5432 -j RETURN') < lines.length - 1);
    assert.ok(iptablesRestoreInput(o).startsWith('*nat\n') && iptablesRestoreInput(o).endsWith('COMMIT\n'));
  });

  // The real thing: the init container's script, run by sh in a fresh network namespace, writes the
  // bootstrap and installs rules iptables accepts. Needs root and unshare (as the e2e netns tests).
  const canNetns = process.getuid?.() === 0 && spawnSync('unshare', ['--net', 'true']).status === 0 && spawnSync('sh', ['-c', 'command -v iptables-restore']).status === 0;
  test('the init script runs: bootstrap written, rules installed', { skip: canNetns ? false : 'needs root, unshare and iptables-restore' }, () => {
    const p = pod({ annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432' } });
    const out = applyPatch(p, injectSidecar(p, ENABLED, config).patch);
    const init = container(out, INIT_CONTAINER)!;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-init-'));
    try {
      const file = path.join(dir, 'bootstrap.json');
      const env = {
        PATH: process.env.PATH!,
        POD_NAME: 'cart-7d9f-abcde',
        POD_NAMESPACE: 'shop',
        POD_IP: '10.1.2.3',
        TERN_BOOTSTRAP_FILE: file,
        TERN_BOOTSTRAP_TEMPLATE: init.env!.find((e) => e.name === 'TERN_BOOTSTRAP_TEMPLATE')!.value!,
      };
      const saved = execFileSync('unshare', ['--net', 'sh', '-c', `${init.command![2]!}\niptables-save -t nat`], { env, encoding: 'utf8' });
      assert.match(saved, /-A OUTPUT -p tcp -j TERN_OUTPUT/);
      assert.match(saved, /-A TERN_OUTPUT -m owner --uid-owner 1337 -j RETURN/);
      assert.match(saved, /-A TERN_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN/);
      assert.match(saved, /-A TERN_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
      assert.match(saved, /-A TERN_INBOUND -p tcp -m tcp --dport 15020 -j RETURN/);
      const bootstrap = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert.equal(bootstrap.node.id, 'sidecar~10.1.2.3~cart-7d9f-abcde.shop~shop.svc.cluster.local');
      assert.equal(bootstrap.node.metadata.NAMESPACE, 'shop');
      assert.equal(fs.existsSync(`${file}.tmp`), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the script fails (and so the pod does not start unprotected) when the rules are refused', { skip: canNetns ? false : 'needs root, unshare and iptables-restore' }, () => {
    const script = initScript({ ...redirectOptions({}), includeOutboundIpRanges: ['999.0.0.0/8'] });
    const r = spawnSync('unshare', ['--net', 'sh', '-c', script], { env: { PATH: process.env.PATH!, POD_NAME: 'x', POD_NAMESPACE: 'y', POD_IP: '1.2.3.4', TERN_BOOTSTRAP_FILE: path.join(os.tmpdir(), `tern-init-${process.pid}.json`), TERN_BOOTSTRAP_TEMPLATE: '{}' }, encoding: 'utf8' });
    fs.rmSync(path.join(os.tmpdir(), `tern-init-${process.pid}.json`), { force: true });
    assert.notEqual(r.status, 0);
  });
});

// The API server dials the Service's DNS name; here the address is 127.0.0.1, so the name is checked explicitly.
function postAs(port: number, caPem: string, body: string, dnsName: string, urlPath = '/inject') {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: 'POST',
        servername: dnsName,
        ca: caPem,
        checkServerIdentity: (_host, cert) => tlsCheck(dnsName, cert),
        headers: { 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
const tlsCheck = (name: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(name, cert);

const review = (object: unknown, uid = 'b5f3c0de-1') => JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', object },
});

describe('the webhook server over HTTPS, certificate from the Tern CA', () => {
  let api: TestApi;
  let server: WebhookServer;
  let caBundle: string;
  let caPem: string;
  const nsLabels: Record<string, Record<string, string>> = { shop: ENABLED, plain: {} };

  before(async () => {
    api = await startTestApi();
    const cert = await api.app.ca.servingCertificate(webhookServiceDns('tern-system'));
    caBundle = webhookCaBundle(api.app.ca);
    caPem = Buffer.from(caBundle, 'base64').toString('utf8');
    server = await startWebhookServer({
      config,
      cert,
      namespaceLabels: async (ns) => {
        if (ns === 'broken') throw new Error('the namespace cache is not synced');
        return nsLabels[ns] ?? {};
      },
    });
  });
  after(async () => {
    await server?.close();
    await api?.close();
  });

  test('caBundle is the CA\'s roots; the serving certificate carries the DNS names and verifies against it', async () => {
    assert.equal(caPem, api.app.ca.trustBundle().roots.join('\n'));
    const cert = await api.app.ca.servingCertificate(['tern-webhook.tern-system.svc']);
    const leaf = new x509.X509Certificate(cert.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0]);
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    assert.deepEqual(san.names.items.map((n) => [n.type, n.value]), [['dns', 'tern-webhook.tern-system.svc']]);
    await assert.rejects(api.app.ca.servingCertificate(['Not A Name']), /dnsNames\[0\]: "Not A Name" is not a lower-case DNS name/);
  });

  test('an AdmissionReview gets the uid echoed, allowed, and the patch mutate builds', async () => {
    const p = pod();
    const r = await postAs(server.port, caPem, review(p, 'uid-123'), 'tern-webhook.tern-system.svc');
    assert.equal(r.status, 200);
    const body = JSON.parse(r.text) as AdmissionReviewResponse;
    assert.equal(body.apiVersion, 'admission.k8s.io/v1');
    assert.equal(body.kind, 'AdmissionReview');
    assert.equal(body.response.uid, 'uid-123');
    assert.equal(body.response.allowed, true);
    assert.equal(body.response.patchType, 'JSONPatch');
    const patch = JSON.parse(Buffer.from(body.response.patch!, 'base64').toString('utf8'));
    assert.deepEqual(patch, injectSidecar(p, ENABLED, config).patch);
    const injected = applyPatch(p, patch);
    assert.ok(container(injected, PROXY_CONTAINER));
  });

  test('a pod in a namespace that is not enabled, or whose labels cannot be read, is allowed without a patch', async () => {
    for (const ns of ['plain', 'broken']) {
      const body = JSON.parse(review(pod()));
      body.request.namespace = ns;
      const r = await postAs(server.port, caPem, JSON.stringify(body), 'tern-webhook.tern-system.svc');
      assert.equal(r.status, 200, ns);
      const res = (JSON.parse(r.text) as AdmissionReviewResponse).response;
      assert.deepEqual({ uid: res.uid, allowed: res.allowed, patch: res.patch }, { uid: 'b5f3c0de-1', allowed: true, patch: undefined }, ns);
      if (ns === 'broken') assert.match(res.warnings![0]!, /not injected: internal error/);
    }
  });

  test('a bad traffic annotation: allowed, no patch, a warning naming the annotation', async () => {
    const r = await postAs(server.port, caPem, review(pod({ annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': 'x' } })), 'tern-webhook.tern-system.svc');
    const res = (JSON.parse(r.text) as AdmissionReviewResponse).response;
    assert.equal(res.allowed, true);
    assert.equal(res.patch, undefined);
    assert.match(res.warnings![0]!, /excludeOutboundPorts: item 1 \("x"\) must be a port number/);
  });

  test('malformed reviews get 400 with a clear message', async () => {
    const cases: [string, RegExp][] = [
      ['{not json', /malformed AdmissionReview: body: is not JSON/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), /apiVersion: must be "admission\.k8s\.io\/v1"/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request: is required/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { kind: 'Pod' }, operation: 'CREATE', object: {} } }), /request\.uid: is required/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { kind: 'Pod' }, operation: 'CREATE' } }), /request\.object: is required for CREATE/],
    ];
    for (const [body, re] of cases) {
      const r = await postAs(server.port, caPem, body, 'tern-webhook.tern-system.svc');
      assert.equal(r.status, 400, body);
      assert.match(r.text, re);
    }
    assert.equal((await postAs(server.port, caPem, review(pod()), 'tern-webhook.tern-system.svc', '/other')).status, 404);
  });

  test('a client that expects another name, or trusts another CA, refuses the connection', async () => {
    await assert.rejects(postAs(server.port, caPem, review(pod()), 'other.tern-system.svc'), /altnames|Hostname\/IP does not match/i);
    const { certificate } = await generateRoot();
    await assert.rejects(postAs(server.port, certificate.toString('pem'), review(pod()), 'tern-webhook.tern-system.svc'), /self[- ]signed|unable to verify|certificate/i);
  });

  test('setCertificate: a renewed certificate is served on new connections', async () => {
    const { certificate, pkcs8 } = await generateRoot();
    const other = await issuerFromStoredRoot(certificate.toString('pem'), pkcs8);
    const fresh = await issueServingCertificate(other, { dnsNames: ['tern-webhook.tern-system.svc'] });
    server.setCertificate(fresh);
    try {
      const r = await postAs(server.port, fresh.caPem, review(pod()), 'tern-webhook.tern-system.svc');
      assert.equal(r.status, 200);
      await assert.rejects(postAs(server.port, caPem, review(pod()), 'tern-webhook.tern-system.svc'));
    } finally {
      server.setCertificate(await api.app.ca.servingCertificate(webhookServiceDns('tern-system')));
    }
  });
});

test('parseAdmissionReview takes the namespace from the object when the request lacks it', () => {
  const r = parseAdmissionReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { kind: 'Pod' }, operation: 'CREATE', object: { metadata: { namespace: 'shop' } } } });
  assert.equal(r.namespace, 'shop');
});


// The real API server calls the webhook (TLS verified against caBundle), applies the patch and
// validates the injected pod: what no fake can tell us. Pods stay Pending (no scheduler).
describe('a real kube-apiserver calling the webhook', () => {
  let kube: RealApiServer;
  let core: CoreV1Api;
  let server: WebhookServer;

  before(async () => {
    kube = await kubeStarting!;
    const kc = new KubeConfig();
    kc.loadFromFile(kube.kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'mesh', labels: { 'tern-injection': 'enabled' } } } });
    await core.createNamespace({ body: { metadata: { name: 'plain' } } });
    const { certificate, pkcs8 } = await generateRoot();
    const issuer = await issuerFromStoredRoot(certificate.toString('pem'), pkcs8);
    // The API server dials the URL's host name: localhost here, the Service's name in a cluster.
    const cert = await issueServingCertificate(issuer, { dnsNames: ['localhost', ...webhookServiceDns('tern-system')] });
    server = await startWebhookServer({
      config,
      cert,
      namespaceLabels: async (name) => (await core.readNamespace({ name })).metadata?.labels ?? {},
    });
    await kc.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: {
        metadata: { name: 'tern-sidecar-injector' },
        webhooks: [{
          name: 'namespace.sidecar-injector.tern.dev',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          // Fail, in the test only: a webhook the API server cannot use must fail the test, not pass unnoticed.
          failurePolicy: 'Fail',
          reinvocationPolicy: 'IfNeeded',
          timeoutSeconds: 10,
          clientConfig: { url: `https://localhost:${server.port}/inject`, caBundle: webhookCaBundle(issuer.roots.map((r) => r.toString('pem')).join('\n')) },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
          namespaceSelector: { matchLabels: { 'tern-injection': 'enabled' } },
        }],
      },
    });
  });
  after(async () => {
    await server?.close();
  });

  const app = (): V1Container => ({
    name: 'app',
    image: 'cart:1',
    ports: [{ name: 'http', containerPort: 8080 }],
    readinessProbe: { httpGet: { path: '/ready', port: 'http' as never } },
  });

  test('a pod in an enabled namespace is created with the sidecar, the patch accepted and validated', async () => {
    // The API server picks the configuration up asynchronously: retry until it calls us.
    let created: V1Pod | undefined;
    for (let i = 0; i < 40 && !created?.spec?.containers.some((c) => c.name === PROXY_CONTAINER); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      created = await core.createNamespacedPod({ namespace: 'mesh', body: { metadata: { generateName: 'cart-', labels: { app: 'cart' } }, spec: { serviceAccountName: 'cart', containers: [app()] } } });
    }
    const names = created!.spec!.containers.map((c) => c.name);
    assert.deepEqual(names, ['app', PROXY_CONTAINER]);
    assert.deepEqual(created!.spec!.initContainers!.map((c) => c.name), [INIT_CONTAINER]);
    assert.equal(created!.metadata!.labels!['security.istio.io/tlsMode'], 'istio');
    assert.ok(created!.metadata!.annotations![STATUS_ANNOTATION]);
    assert.deepEqual({ ...created!.spec!.containers[0]!.readinessProbe!.httpGet }, { path: '/app-health/app/readyz', port: 15020, scheme: 'HTTP' });
    const token = created!.spec!.volumes!.find((v) => v.name === 'tern-token')!;
    assert.equal(token.projected!.sources![0]!.serviceAccountToken!.audience, 'tern-ca');
  });

  test('opted-out pods and pods in other namespaces are created as they are', async () => {
    const optOut = await core.createNamespacedPod({ namespace: 'mesh', body: { metadata: { name: 'legacy', annotations: { 'sidecar.tern.dev/inject': 'false' } }, spec: { containers: [app()] } } });
    assert.deepEqual(optOut.spec!.containers.map((c) => c.name), ['app']);
    assert.equal(optOut.spec!.initContainers, undefined);
    const plain = await core.createNamespacedPod({ namespace: 'plain', body: { metadata: { name: 'web' }, spec: { containers: [app()] } } });
    assert.deepEqual(plain.spec!.containers.map((c) => c.name), ['app']);
  });
});
