import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { parseResource, parseYamlDocuments, type ServicePort } from '@tern/shared';
import { encodeJson, plainToStruct, TYPE_URL, type JsonObject, type NodeMessage } from '@tern/xds';
import type { MeshSnapshot, ResourceRow, ServiceRow, WorkloadRow } from '../src/store/snapshot.ts';
import { proxyIdentityFromNode, stableStringify, type ProxyIdentity, type ProxyResources } from '../src/compile/index.ts';

// Building blocks for the compiler tests: meshes from YAML (validated by the real schemas) and a
// registry given inline, proxies from node metadata, and golden-file comparison.

export const OPTIONS = { domainSuffix: 'cluster.local', trustDomain: 'cluster.local' };

export interface ServiceSpec {
  namespace?: string;
  name: string;
  ports: ServicePort[];
  hosts?: string[];
  labels?: Record<string, string>;
}

export interface WorkloadSpec {
  namespace?: string;
  name: string;
  labels: Record<string, string>;
  addresses: string[];
  ports?: Record<string, number>;
  serviceAccount?: string;
}

const CREATED = new Date('2026-01-01T00:00:00Z');

export function resourceRows(yaml: string): ResourceRow[] {
  return parseYamlDocuments(yaml).map((d, i) => {
    if (d.error) throw new Error(`document ${i}: ${d.error.message}`);
    const r = parseResource(d.doc);
    if (!r.ok) throw new Error(`document ${i}: ${r.issues.map((x) => `${x.path}: ${x.message}`).join('; ')}`);
    const doc = d.doc as { kind: string; apiVersion: string; metadata: { name: string; namespace?: string; creationTimestamp?: string; annotations?: Record<string, string> }; spec: Record<string, unknown> };
    const created = doc.metadata.creationTimestamp ? new Date(doc.metadata.creationTimestamp) : CREATED;
    return {
      kind: doc.kind,
      namespace: doc.metadata.namespace ?? 'default',
      name: doc.metadata.name,
      apiVersion: doc.apiVersion,
      uid: `uid-${i}`,
      labels: {},
      annotations: doc.metadata.annotations ?? {},
      spec: doc.spec,
      generation: 1,
      resourceVersion: 1n,
      diagnostics: [],
      createdAt: created,
      updatedAt: created,
      createdBy: 'test',
      updatedBy: 'test',
    };
  });
}

export function buildMesh(input: { yaml?: string; services?: ServiceSpec[]; workloads?: WorkloadSpec[] }): MeshSnapshot {
  const resources = new Map<string, ResourceRow>();
  for (const r of resourceRows(input.yaml ?? '')) resources.set(`${r.kind}/${r.namespace}/${r.name}`, r);
  const services = new Map<string, ServiceRow>();
  for (const s of input.services ?? []) {
    const ns = s.namespace ?? 'default';
    services.set(`${ns}/${s.name}`, { namespace: ns, name: s.name, hosts: s.hosts ?? [], ports: s.ports, labels: s.labels ?? {}, source: 'local', resourceVersion: 1n });
  }
  const workloads = new Map<string, WorkloadRow>();
  for (const w of input.workloads ?? []) {
    const ns = w.namespace ?? 'default';
    workloads.set(`${ns}/${w.name}`, { namespace: ns, name: w.name, labels: w.labels, serviceAccount: w.serviceAccount ?? 'default', addresses: w.addresses, ports: w.ports ?? {}, source: 'local', resourceVersion: 1n });
  }
  return { resources, services, workloads };
}

/** The same mesh with every map in reverse (and rotated) insertion order. */
export function shuffled(mesh: MeshSnapshot): MeshSnapshot {
  const flip = <V>(m: Map<string, V>) => {
    const e = [...m.entries()].reverse();
    if (e.length > 2) e.push(e.shift()!);
    return new Map(e);
  };
  return { resources: flip(mesh.resources), services: flip(mesh.services), workloads: flip(mesh.workloads) };
}

export function node(metadata: JsonObject, extra: Partial<NodeMessage> = {}): NodeMessage {
  return { id: String(metadata['NAMESPACE'] ?? 'default') + '~' + String(metadata['WORKLOAD_NAME'] ?? 'client'), metadata: plainToStruct(metadata), ...extra };
}

export function proxy(metadata: JsonObject, extra: Partial<NodeMessage> = {}): ProxyIdentity {
  return proxyIdentityFromNode(node(metadata, extra));
}

export function asJson(r: ProxyResources): Record<string, Record<string, JsonObject>> {
  return {
    listeners: Object.fromEntries(r.listeners),
    routes: Object.fromEntries(r.routes),
    clusters: Object.fromEntries(r.clusters),
    endpoints: Object.fromEntries(r.endpoints),
  };
}

export function serialize(r: ProxyResources): string {
  return stableStringify(asJson(r)) + '\n';
}

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'compile');

/** Compares with fixtures/compile/<name>.json byte for byte; UPDATE_GOLDEN=1 rewrites the file. */
export function assertGolden(name: string, r: ProxyResources): void {
  const file = path.join(FIXTURES, `${name}.json`);
  const actual = serialize(r);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    fs.mkdirSync(FIXTURES, { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  assert.ok(fs.existsSync(file), `golden file ${file} is missing: run with UPDATE_GOLDEN=1`);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name}: output differs from ${file} (UPDATE_GOLDEN=1 to accept)`);
}

/** Every resource must encode as its xDS type (what the ADS server sends). */
export function assertEncodes(r: ProxyResources): void {
  const kinds = [
    ['listeners', TYPE_URL.listener],
    ['routes', TYPE_URL.route],
    ['clusters', TYPE_URL.cluster],
    ['endpoints', TYPE_URL.endpoint],
  ] as const;
  for (const [k, url] of kinds) {
    for (const [name, json] of r[k]) {
      try {
        encodeJson(url, json);
      } catch (err) {
        throw new Error(`${k} ${name} does not encode: ${(err as Error).message}`);
      }
    }
  }
}

/**
 * The scoping mesh shared by compile-scope and compile-changes: namespaces a (front, helper), b
 * (backend, target, mirror) and c (other); a VirtualService on helper routes to b's target and
 * mirrors to b's mirror, so b is reachable from a only through it.
 */
export const httpPort = (number: number) => [{ name: 'http', number, protocol: 'HTTP' as const }];

export const SCOPE_SERVICES: ServiceSpec[] = [
  { namespace: 'a', name: 'front', ports: httpPort(8080) },
  { namespace: 'a', name: 'helper', ports: httpPort(8080) },
  { namespace: 'b', name: 'backend', ports: httpPort(9090) },
  { namespace: 'b', name: 'target', ports: httpPort(9090) },
  { namespace: 'b', name: 'mirror', ports: httpPort(9090) },
  { namespace: 'c', name: 'other', ports: httpPort(7070) },
];

/** One workload per service with endpoints (mirror has none); `extra` adds more. */
/** Workloads as Istio's injector leaves them: labelled as running a sidecar (auto mTLS sends them mTLS). */
export function injected(workloads: WorkloadSpec[]): WorkloadSpec[] {
  return workloads.map((w) => ({ ...w, labels: { ...w.labels, 'security.istio.io/tlsMode': 'istio' } }));
}

export function scopeWorkloads(extra: WorkloadSpec[] = []): WorkloadSpec[] {
  return [
    { namespace: 'a', name: 'front-1', labels: { app: 'front' }, addresses: ['10.0.1.1'] },
    ...extra,
    { namespace: 'a', name: 'helper-1', labels: { app: 'helper' }, addresses: ['10.0.1.3'] },
    { namespace: 'b', name: 'backend-1', labels: { app: 'backend' }, addresses: ['10.0.2.1'] },
    { namespace: 'b', name: 'target-1', labels: { app: 'target' }, addresses: ['10.0.2.2'] },
    { namespace: 'c', name: 'other-1', labels: { app: 'other' }, addresses: ['10.0.3.1'] },
  ];
}

export const HELPER_VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: helper, namespace: a }
spec:
  hosts: [helper]
  http:
  - mirror: { host: mirror.b.svc.cluster.local }
    route: [{ destination: { host: target.b.svc.cluster.local } }]
`;
