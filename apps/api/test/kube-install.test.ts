// Offline validation of deploy/kubernetes and `tern install`: kustomize builds (kubectl's built-in
// kustomize, no cluster), CRD schemas are structural and up to date with the zod schemas, Bookinfo
// validates against them, RBAC is least privilege, built-in kinds have consistent shapes, and the
// CLI renders exactly what kustomize builds.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import YAML from 'yaml';
import { parseResource } from '@tern/shared';
import { UsageError } from '../src/cli/client.ts';
import { InstallError, installCommand, MANIFESTS_DIR, manifestId, renderInstall, type Manifest } from '../src/cli/install.ts';
import { crdFor, CrdSchemaError, staleCrdFiles, TERN_API_GROUPS, toStructural } from '../../../scripts/gen-crds.ts';

const ROOT = path.resolve(MANIFESTS_DIR, '../..');
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
const needsKubectl = { skip: hasKubectl ? false : 'kubectl is not installed' };

function kustomize(dir: string): Manifest[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  return YAML.parseAllDocuments(out).map((d, i) => {
    assert.equal(d.errors.length, 0, `document ${i} of kustomize ${dir}: ${d.errors[0]?.message}`);
    return d.toJS() as Manifest;
  });
}

const byId = (docs: Manifest[]) => new Map(docs.map((d) => [manifestId(d), d]));
const sorted = (docs: Manifest[]) => [...docs].sort((a, b) => manifestId(a).localeCompare(manifestId(b)));
const find = (docs: Manifest[], kind: string, name: string) => {
  const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(d, `${kind} ${name} is missing`);
  return d as Manifest & Record<string, any>;
};

// Built once: each kustomize run takes ~0.2 s.
const base = hasKubectl ? kustomize(MANIFESTS_DIR) : [];
const withPostgres = hasKubectl ? kustomize(path.join(MANIFESTS_DIR, 'overlays/with-postgres')) : [];

// --- structural schema checker (Kubernetes' rules, as far as they can be checked offline) ---------

/** Problems that make a CRD schema non-structural, each with its path. Empty when structural. */
function structuralProblems(node: any, at = ''): string[] {
  const problems: string[] = [];
  if (typeof node !== 'object' || node === null) return [`${at}: not a schema`];
  if ('$ref' in node) problems.push(`${at}: $ref`);
  for (const k of ['anyOf', 'oneOf', 'allOf', 'not', 'definitions', '$defs', 'const', 'propertyNames']) if (k in node) problems.push(`${at}: ${k} is not generated structurally`);
  const special = node['x-kubernetes-int-or-string'] === true || node['x-kubernetes-preserve-unknown-fields'] === true;
  if (!node.type && !special) problems.push(`${at}: no type`);
  if (Array.isArray(node.type)) problems.push(`${at}: type list`);
  if (node.properties && node.additionalProperties !== undefined) problems.push(`${at}: properties and additionalProperties together`);
  if (node.additionalProperties === false || node.additionalProperties === true) problems.push(`${at}: boolean additionalProperties`);
  // (The root's metadata may only be `type: object`: the API server validates it itself.)
  if (node.type === 'object' && !node.properties && !node.additionalProperties && !special && at !== '.metadata') problems.push(`${at}: object with neither properties, additionalProperties nor preserve-unknown-fields`);
  if (node.type === 'array' && !node.items) problems.push(`${at}: array without items`);
  if (typeof node.exclusiveMinimum === 'number' || typeof node.exclusiveMaximum === 'number') problems.push(`${at}: numeric exclusive bound (OpenAPI 3.0 wants a boolean)`);
  for (const [name, s] of Object.entries(node.properties ?? {})) problems.push(...structuralProblems(s, `${at}.${name}`));
  if (node.items) problems.push(...structuralProblems(node.items, `${at}[]`));
  if (typeof node.additionalProperties === 'object') problems.push(...structuralProblems(node.additionalProperties, `${at}.*`));
  return problems;
}

function ajvFor(schema: object) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  return ajv.compile(schema);
}

// --------------------------------------------------------------------------------------------------

describe('deploy/kubernetes builds with kustomize', needsKubectl, () => {
  test('the default install and the postgres overlay build, every document well formed', () => {
    assert.ok(base.length > 10);
    for (const docs of [base, withPostgres]) {
      const ids = new Set<string>();
      for (const d of docs) {
        assert.equal(typeof d.apiVersion, 'string', JSON.stringify(d).slice(0, 80));
        assert.equal(typeof d.kind, 'string');
        assert.match(d.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, `${d.kind} name`);
        assert.ok(!ids.has(manifestId(d)), `duplicate ${manifestId(d)}`);
        ids.add(manifestId(d));
      }
    }
    const kinds = (docs: Manifest[]) => new Set(docs.map((d) => d.kind));
    for (const k of ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment', 'Service', 'MutatingWebhookConfiguration']) {
      assert.ok(kinds(base).has(k), `${k} in the default install`);
    }
    assert.ok(!kinds(base).has('StatefulSet'), 'no database in the default install');
    assert.ok(kinds(withPostgres).has('StatefulSet'));
    // The overlay is the base plus the component: nothing of the base changes.
    const pg = byId(withPostgres);
    for (const d of base) assert.deepEqual(pg.get(manifestId(d)), d, manifestId(d));
  });

  test('namespaced objects are in tern-system; cluster-scoped ones have no namespace', () => {
    const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);
    for (const d of withPostgres) {
      if (clusterScoped.has(d.kind)) assert.equal(d.metadata.namespace, undefined, `${d.kind} ${d.metadata.name}`);
      else assert.equal(d.metadata.namespace, 'tern-system', `${d.kind} ${d.metadata.name}`);
    }
  });

  test('workloads: images set, selectors match their templates, Services target real container ports', () => {
    const workloads = withPostgres.filter((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet') as (Manifest & Record<string, any>)[];
    assert.ok(workloads.length >= 3);
    const secrets = new Set(withPostgres.filter((d) => d.kind === 'Secret').map((d) => d.metadata.name));
    for (const w of workloads) {
      const labels = w.spec.template.metadata.labels as Record<string, string>;
      for (const [k, v] of Object.entries(w.spec.selector.matchLabels as Record<string, string>)) assert.equal(labels[k], v, `${w.metadata.name} selector ${k}`);
      for (const c of w.spec.template.spec.containers) {
        assert.match(c.image, /^[a-z0-9./-]+:[\w.-]+$/, `${w.metadata.name}/${c.name} image with a tag`);
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${w.metadata.name}/${c.name}`);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          // Secrets the user creates (docs/kubernetes.md "Secrets"), or ones the install provides.
          if (ref) assert.ok(secrets.has(ref.name) || ['tern-database', 'tern-ca-kek'].includes(ref.name), `${w.metadata.name}: secret ${ref.name}`);
        }
        const portNames = new Set((c.ports ?? []).map((p: any) => p.name));
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
          const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
          if (port !== undefined) assert.ok(portNames.has(port), `${w.metadata.name}: probe port ${port}`);
        }
      }
      const sa = w.spec.template.spec.serviceAccountName;
      assert.ok(withPostgres.some((d) => d.kind === 'ServiceAccount' && d.metadata.name === sa), `${w.metadata.name}: service account ${sa}`);
    }
    for (const svc of withPostgres.filter((d) => d.kind === 'Service') as (Manifest & Record<string, any>)[]) {
      const selected = workloads.filter((w) => Object.entries(svc.spec.selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v));
      assert.equal(selected.length, 1, `Service ${svc.metadata.name} selects exactly one workload`);
      const ports = selected[0]!.spec.template.spec.containers.flatMap((c: any) => c.ports ?? []);
      for (const p of svc.spec.ports) {
        const target = ports.find((cp: any) => cp.name === p.targetPort || cp.containerPort === p.targetPort);
        assert.ok(target, `Service ${svc.metadata.name} port ${p.name} targets ${p.targetPort}, which no container exposes`);
      }
    }
  });

  test('the control plane: 2 replicas, probes on /readyz and /healthz, xDS 15010, API 8080, secrets from Secrets', () => {
    const cp = find(base, 'Deployment', 'tern-control-plane');
    assert.equal(cp.spec.replicas, 2);
    const c = cp.spec.template.spec.containers[0];
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    const port = (name: string) => c.ports.find((p: any) => p.name === name)?.containerPort;
    assert.equal(port('http'), 8080);
    assert.equal(port('grpc-xds'), 15010);
    const env = new Map(c.env.map((e: any) => [e.name, e]));
    assert.equal((env.get('TERN_API_PORT') as any).value, '8080');
    assert.equal((env.get('TERN_XDS_PORT') as any).value, '15010');
    assert.equal((env.get('TERN_API_HOST') as any).value, '0.0.0.0');
    assert.deepEqual((env.get('DATABASE_URL') as any).valueFrom.secretKeyRef, { name: 'tern-database', key: 'url' });
    assert.deepEqual((env.get('TERN_CA_KEY_ENCRYPTION_KEY') as any).valueFrom.secretKeyRef, { name: 'tern-ca-kek', key: 'key' });
    assert.equal((env.get('TERN_REPLICA_ID') as any).valueFrom.fieldRef.fieldPath, 'metadata.name');
    // The Service name the sidecar docs use.
    const svc = find(base, 'Service', 'tern-api');
    assert.deepEqual(svc.spec.ports.map((p: any) => p.port).sort(), [15010, 8080].sort());
    assert.equal(find(base, 'Service', 'tern-webhook').spec.ports[0].targetPort, 'https-webhook');
    assert.equal(port('https-webhook'), 15017);
    const console = find(base, 'Deployment', 'tern-console');
    assert.equal(console.spec.template.spec.containers[0].ports[0].containerPort, 3000);
    assert.equal(console.spec.template.spec.automountServiceAccountToken, false);
  });

  test('the postgres component provides the tern-database Secret the control plane reads', () => {
    const secret = find(withPostgres, 'Secret', 'tern-database');
    const url = new URL(secret.stringData.url);
    assert.equal(url.hostname, 'tern-postgres');
    assert.equal(url.password, secret.stringData.password);
    assert.equal(url.username, secret.stringData.username);
    assert.equal(url.pathname, `/${secret.stringData.database}`);
    const sts = find(withPostgres, 'StatefulSet', 'tern-postgres');
    assert.equal(sts.spec.serviceName, 'tern-postgres');
    assert.ok(find(withPostgres, 'NetworkPolicy', 'tern-postgres'));
  });

  test('the webhook: one entry per injection label, opt-out labels, Ignore, no caBundle, served by tern-webhook:443', () => {
    const mwc = find(base, 'MutatingWebhookConfiguration', 'tern-sidecar-injector');
    assert.deepEqual(
      mwc.webhooks.map((w: any) => [w.name, w.namespaceSelector]),
      [
        ['namespace.sidecar-injector.tern.dev', { matchLabels: { 'tern-injection': 'enabled' } }],
        ['istio-namespace.sidecar-injector.tern.dev', { matchLabels: { 'istio-injection': 'enabled' } }],
      ],
    );
    for (const w of mwc.webhooks) {
      assert.equal(w.failurePolicy, 'Ignore');
      assert.equal(w.reinvocationPolicy, 'IfNeeded');
      assert.equal(w.sideEffects, 'None');
      assert.deepEqual(w.admissionReviewVersions, ['v1']);
      assert.deepEqual(
        w.objectSelector.matchExpressions.map((e: any) => `${e.key} ${e.operator} ${e.values}`).sort(),
        ['sidecar.istio.io/inject NotIn false', 'sidecar.tern.dev/inject NotIn false'],
      );
      assert.equal('caBundle' in w.clientConfig, false, 'caBundle is filled at run time; a value here would be reset on every apply');
      assert.deepEqual(w.rules, [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }]);
      assert.equal(w.clientConfig.service.path, '/inject');
      // The name the webhook's serving certificate carries (kube/inject/webhook-server.ts).
      assert.equal(w.clientConfig.service.name, 'tern-webhook');
      const svc = find(base, 'Service', w.clientConfig.service.name);
      assert.equal(svc.metadata.namespace, w.clientConfig.service.namespace);
      assert.ok(svc.spec.ports.some((p: any) => p.port === w.clientConfig.service.port));
    }
    // The control plane's own namespace is never injected.
    const nsLabels = (find(base, 'Namespace', 'tern-system').metadata.labels ?? {}) as Record<string, string>;
    assert.notEqual(nsLabels['tern-injection'], 'enabled');
    assert.notEqual(nsLabels['istio-injection'], 'enabled');
  });

  test('RBAC: no wildcards, no secrets, webhook access limited to its own object, leases only in tern-system', () => {
    const roles = withPostgres.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role') as (Manifest & Record<string, any>)[];
    assert.ok(roles.length >= 2);
    for (const r of roles) {
      for (const rule of r.rules) {
        for (const field of ['verbs', 'resources', 'apiGroups', 'resourceNames']) {
          for (const v of rule[field] ?? []) assert.ok(!v.includes('*'), `${r.kind} ${r.metadata.name}: wildcard in ${field}`);
        }
        assert.ok(!rule.resources.includes('secrets'), `${r.metadata.name} must not read secrets`);
        assert.ok(!rule.nonResourceURLs, 'no non-resource URLs');
      }
    }
    const cr = find(base, 'ClusterRole', 'tern-control-plane');
    const rulesFor = (group: string, resource: string) => cr.rules.filter((r: any) => r.apiGroups.includes(group) && r.resources.includes(resource));
    for (const [g, res] of [['', 'services'], ['', 'pods'], ['', 'namespaces'], ['', 'endpoints'], ['discovery.k8s.io', 'endpointslices']] as const) {
      const verbs = rulesFor(g, res).flatMap((r: any) => r.verbs).sort();
      assert.deepEqual(verbs, ['get', 'list', 'watch'], `${g}/${res} is read-only`);
    }
    for (const crd of base.filter((d) => d.kind === 'CustomResourceDefinition') as any[]) {
      assert.ok(rulesFor(crd.spec.group, crd.spec.names.plural).some((r: any) => r.verbs.includes('patch')), `patch ${crd.metadata.name}`);
      assert.ok(rulesFor(crd.spec.group, `${crd.spec.names.plural}/status`).some((r: any) => r.verbs.includes('patch')), `patch ${crd.metadata.name} status`);
    }
    assert.deepEqual(rulesFor('authentication.k8s.io', 'tokenreviews').flatMap((r: any) => r.verbs), ['create']);
    const hook = rulesFor('admissionregistration.k8s.io', 'mutatingwebhookconfigurations');
    assert.equal(hook.length, 1);
    assert.deepEqual(hook[0].resourceNames, ['tern-sidecar-injector']);
    assert.deepEqual([...hook[0].verbs].sort(), ['get', 'patch']);
    assert.equal(rulesFor('coordination.k8s.io', 'leases').length, 0, 'leases through a Role in tern-system, not cluster-wide');
    const leaseRole = roles.find((r) => r.kind === 'Role' && r.rules.some((x: any) => x.resources.includes('leases')));
    assert.equal(leaseRole?.metadata.namespace, 'tern-system');
    // Every binding points at an existing role and service account.
    for (const b of withPostgres.filter((d) => d.kind.endsWith('RoleBinding')) as any[]) {
      assert.ok(find(withPostgres, b.roleRef.kind, b.roleRef.name));
      for (const s of b.subjects) assert.ok(withPostgres.some((d) => d.kind === 'ServiceAccount' && d.metadata.name === s.name && d.metadata.namespace === s.namespace));
    }
  });
});

describe('CRDs', () => {
  test('the committed CRDs are what scripts/gen-crds.ts generates from the zod schemas', () => {
    assert.deepEqual(staleCrdFiles(), [], 'run: node --import tsx scripts/gen-crds.ts');
  });

  test('every CRD is in a Tern group with Istio kinds and versions, and its schemas are structural', { skip: needsKubectl.skip }, () => {
    const crds = base.filter((d) => d.kind === 'CustomResourceDefinition') as any[];
    assert.deepEqual(crds.map((c) => c.spec.names.kind).sort(), ['AuthorizationPolicy', 'DestinationRule', 'PeerAuthentication', 'ServiceEntry', 'VirtualService']);
    for (const crd of crds) {
      assert.ok(Object.values(TERN_API_GROUPS).includes(crd.spec.group), crd.metadata.name);
      assert.equal(crd.metadata.name, `${crd.spec.names.plural}.${crd.spec.group}`);
      assert.ok(!crd.spec.names.shortNames.some((s: string) => ['vs', 'dr', 'se', 'pa', 'ap'].includes(s)), 'no short name shared with Istio');
      assert.equal(crd.spec.versions.filter((v: any) => v.storage).length, 1);
      assert.equal(crd.spec.versions[0].name, 'v1');
      for (const v of crd.spec.versions) {
        assert.deepEqual(v.subresources, { status: {} });
        const schema = v.schema.openAPIV3Schema;
        assert.equal(schema.type, 'object');
        assert.deepEqual(structuralProblems(schema), [], `${crd.metadata.name} ${v.name}`);
      }
    }
  });

  test('the structural checker and the converter refuse what Kubernetes refuses', () => {
    assert.deepEqual(structuralProblems({ type: 'object', properties: { a: {} } }), ['.a: no type']);
    assert.ok(structuralProblems({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } }).length > 0);
    assert.ok(structuralProblems({ type: 'object', properties: { a: { $ref: '#/x', type: 'object', properties: {} } } }).length > 0);
    assert.throws(() => toStructural({ $ref: '#/$defs/x' }, 'spec'), (e: unknown) => e instanceof CrdSchemaError && e.rule === 'no_ref' && e.path === 'spec');
    assert.throws(() => toStructural({ anyOf: [{ type: 'object', properties: {} }, { type: 'array', items: { type: 'string' } }] }, 'spec.x'), /spec\.x: a union of object, array/);
    assert.throws(() => toStructural({ type: 'string', if: {} }, 'spec.y'), (e: unknown) => e instanceof CrdSchemaError && e.rule === 'unsupported_keyword');
    // What it does produce: nullable objects, int-or-string, closed objects without additionalProperties.
    assert.deepEqual(toStructural({ anyOf: [{ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false }, { type: 'null' }] }), {
      type: 'object',
      properties: { a: { type: 'string' } },
      nullable: true,
    });
    assert.deepEqual(toStructural({ anyOf: [{ type: 'string' }, { type: 'integer' }] }), { 'x-kubernetes-int-or-string': true });
    assert.deepEqual(toStructural({ type: 'number', exclusiveMinimum: 0 }), { type: 'number', minimum: 0, exclusiveMinimum: true });
  });

  test('Bookinfo samples validate against the CRD schemas once their apiVersion names the Tern group', () => {
    const files = fs.readdirSync(path.join(ROOT, 'samples/bookinfo')).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 5);
    let checked = 0;
    for (const f of files) {
      for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(ROOT, 'samples/bookinfo', f), 'utf8'))) {
        const istio = doc.toJS() as { apiVersion: string; kind: string; [k: string]: unknown } | null;
        if (!istio) continue;
        assert.ok(parseResource(istio).ok, `${f} is a valid Istio resource`);
        const [group, version] = istio.apiVersion.split('/') as [keyof typeof TERN_API_GROUPS, string];
        const tern = { ...istio, apiVersion: `${TERN_API_GROUPS[group]}/${version}` };
        const crd = crdFor(istio.kind as any) as any;
        const served = crd.spec.versions.find((v: any) => v.name === version);
        assert.ok(served, `${f}: ${istio.kind} ${version} is served`);
        const validate = ajvFor(served.schema.openAPIV3Schema);
        assert.ok(validate(tern), `${f}: ${JSON.stringify(validate.errors)}`);
        checked++;
      }
    }
    assert.ok(checked >= files.length);
  });

  test('the CRD schemas reject what the zod schemas reject (wrong types, unknown enum values, missing required fields)', () => {
    const vs = (crdFor('VirtualService') as any).spec.versions[0].schema.openAPIV3Schema;
    const validate = ajvFor(vs);
    const good = { apiVersion: 'networking.tern.dev/v1', kind: 'VirtualService', metadata: { name: 'r' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 100 }] }] } };
    assert.ok(validate(good), JSON.stringify(validate.errors));
    assert.equal(validate({ ...good, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' }, weight: 'all' }] }] } }), false);
    assert.match(JSON.stringify(validate.errors), /\/spec\/http\/0\/route\/0\/weight/);
    assert.equal(validate({ ...good, spec: { hosts: ['reviews'], http: [{ route: [{ destination: {} }] }] } }), false, 'destination.host is required');
    assert.equal(validate({ apiVersion: good.apiVersion, kind: good.kind, metadata: good.metadata }), false, 'a VirtualService needs a spec');
    const pa = ajvFor((crdFor('PeerAuthentication') as any).spec.versions[0].schema.openAPIV3Schema);
    assert.equal(pa({ apiVersion: 'security.tern.dev/v1', kind: 'PeerAuthentication', metadata: { name: 'x' }, spec: { mtls: { mode: 'STRICTEST' } } }), false);
    assert.ok(pa({ apiVersion: 'security.tern.dev/v1', kind: 'PeerAuthentication', metadata: { name: 'x' } }), 'a PeerAuthentication may omit its spec');
  });
});

describe('tern install', () => {
  async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await installCommand(args, { out: (s) => ((out += s), true), err: (s) => ((err += s), true) });
    return { code, out, err };
  }
  const parse = (yaml: string) => YAML.parseAllDocuments(yaml).map((d) => d.toJS() as Manifest);

  test('--dry-run prints what kustomize builds', needsKubectl, async () => {
    const r = await run(['--dry-run']);
    assert.equal(r.code, 0);
    assert.deepEqual(sorted(parse(r.out)), sorted(base));
    assert.match(r.err, /create secret generic tern-ca-kek/);
    assert.match(r.err, /tern-database --from-literal=url=/);
  });

  test('--dry-run --with-postgres prints what the with-postgres overlay builds', needsKubectl, async () => {
    const r = await run(['--dry-run', '--with-postgres']);
    assert.equal(r.code, 0);
    assert.deepEqual(sorted(parse(r.out)), sorted(withPostgres));
    assert.doesNotMatch(r.err, /create secret generic tern-database/);
  });

  test('-n moves everything as a kustomize namespace overlay does, and the webhook with it', needsKubectl, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-kustomize-'));
    try {
      const rel = path.relative(tmp, path.join(MANIFESTS_DIR, 'overlays/with-postgres'));
      fs.writeFileSync(path.join(tmp, 'kustomization.yaml'), YAML.stringify({ namespace: 'mesh-ctl', resources: [rel] }));
      const expected = kustomize(tmp);
      // kustomize follows the webhook to its Service (it is in the same build); so must tern install.
      const mwc = expected.find((d) => d.kind === 'MutatingWebhookConfiguration') as any;
      assert.equal(mwc.webhooks[0].clientConfig.service.namespace, 'mesh-ctl');
      const r = await run(['--dry-run', '--with-postgres', '-n', 'mesh-ctl']);
      assert.equal(r.code, 0);
      const got = parse(r.out);
      assert.deepEqual(sorted(got), sorted(expected));
      assert.ok(!r.out.includes('tern-system'), 'nothing is left in tern-system');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('the tern binary prints the same manifests (multi-document YAML on stdout, notes on stderr)', needsKubectl, () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'apps/api/bin/tern.mjs'), 'install', '--dry-run'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(sorted(parse(r.stdout)), sorted(base));
  });

  test('refuses to run without --dry-run, with a bad namespace or an unknown flag', async () => {
    await assert.rejects(run([]), (e: unknown) => e instanceof UsageError && /kubectl apply --server-side -f -/.test(e.message));
    await assert.rejects(run(['--dry-run', '-n', 'Not_A_Namespace']), (e: unknown) => e instanceof UsageError && /--namespace: "Not_A_Namespace" is not a valid namespace name/.test(e.message));
    await assert.rejects(run(['--dry-run', '--with-postgress']), (e: unknown) => e instanceof UsageError && /with-postgress/.test(e.message));
  });

  test('refuses kustomize features it does not implement instead of ignoring them', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-install-'));
    try {
      fs.writeFileSync(path.join(tmp, 'kustomization.yaml'), 'resources: [a.yaml]\npatches: [{path: p.yaml}]\n');
      fs.writeFileSync(path.join(tmp, 'a.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n');
      assert.throws(() => renderInstall({ dir: tmp }), (e: unknown) => e instanceof InstallError && /field "patches" is not supported/.test(e.message));
      fs.writeFileSync(path.join(tmp, 'kustomization.yaml'), 'resources: [a.yaml, a.yaml]\n');
      assert.throws(() => renderInstall({ dir: tmp }), /ConfigMap a is defined twice/);
      fs.writeFileSync(path.join(tmp, 'kustomization.yaml'), 'resources: [a.yaml]\n');
      fs.writeFileSync(path.join(tmp, 'a.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n');
      assert.throws(() => renderInstall({ dir: tmp }), /a\.yaml: document 1: apiVersion, kind and metadata.name are required/);
      assert.throws(() => renderInstall({ dir: path.join(tmp, 'missing') }), /cannot find the Kubernetes manifests/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
