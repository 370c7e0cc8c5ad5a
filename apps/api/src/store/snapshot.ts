import type { Diagnostic, ServicePort, ServiceRecord, StoredResource, WorkloadRecord } from '@tern/shared';
import type { Prisma } from '../generated/prisma/client.ts';

// The whole mesh as one value: what analysis reads and what a write transforms.

export type Json = Prisma.JsonValue;

/** A policy object as the store keeps it: the user's resource with its namespace filled in. */
export interface PolicyObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string> | undefined;
    annotations?: Record<string, string> | undefined;
  };
  spec: Record<string, unknown>;
}

export interface ResourceRow {
  kind: string;
  namespace: string;
  name: string;
  apiVersion: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: Record<string, unknown>;
  generation: number;
  resourceVersion: bigint;
  diagnostics: Diagnostic[];
  createdAt: Date;
  updatedAt: Date;
  createdBy: string;
  updatedBy: string;
}

export interface ServiceRow {
  namespace: string;
  name: string;
  hosts: string[];
  ports: ServicePort[];
  labels: Record<string, string>;
  source: string;
  resourceVersion: bigint;
}

export interface WorkloadRow {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  serviceAccount: string;
  addresses: string[];
  ports: Record<string, number>;
  source: string;
  resourceVersion: bigint;
}

export interface MeshSnapshot {
  resources: Map<string, ResourceRow>;
  services: Map<string, ServiceRow>;
  workloads: Map<string, WorkloadRow>;
}

export const resourceKey = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;
export const registryKey = (namespace: string, name: string) => `${namespace}/${name}`;

type Tx = Pick<Prisma.TransactionClient, 'resource' | 'service' | 'workload'>;

export async function loadSnapshot(tx: Tx): Promise<MeshSnapshot> {
  const [resources, services, workloads] = await Promise.all([
    tx.resource.findMany(),
    tx.service.findMany(),
    tx.workload.findMany(),
  ]);
  return {
    resources: new Map(resources.map((r) => [resourceKey(r.kind, r.namespace, r.name), r as unknown as ResourceRow])),
    services: new Map(services.map((s) => [registryKey(s.namespace, s.name), serviceRow(s)])),
    workloads: new Map(workloads.map((w) => [registryKey(w.namespace, w.name), workloadRow(w)])),
  };
}

/**
 * Brings a snapshot taken at some revision up to date by re-reading only what the change log
 * says was touched since: a handful of rows instead of the whole mesh.
 */
export async function advanceSnapshot(
  tx: Tx & Pick<Prisma.TransactionClient, 'revision'>,
  from: MeshSnapshot,
  sinceRevision: bigint,
  toRevision: bigint,
): Promise<MeshSnapshot> {
  const touched = await tx.revision.findMany({
    where: { revision: { gt: sinceRevision, lte: toRevision } },
    select: { kind: true, namespace: true, name: true },
  });
  const next = cloneSnapshot(from);
  const resources = touched.filter((t) => t.kind !== 'Service' && t.kind !== 'Workload');
  const services = touched.filter((t) => t.kind === 'Service');
  const workloads = touched.filter((t) => t.kind === 'Workload');
  const ref = ({ namespace, name }: { namespace: string; name: string }) => ({ namespace, name });
  const [r, sv, wl] = await Promise.all([
    resources.length ? tx.resource.findMany({ where: { OR: resources.map((t) => ({ kind: t.kind, ...ref(t) })) } }) : [],
    services.length ? tx.service.findMany({ where: { OR: services.map(ref) } }) : [],
    workloads.length ? tx.workload.findMany({ where: { OR: workloads.map(ref) } }) : [],
  ]);
  // Deleted since: touched, and no longer there.
  for (const t of resources) next.resources.delete(resourceKey(t.kind, t.namespace, t.name));
  for (const t of services) next.services.delete(registryKey(t.namespace, t.name));
  for (const t of workloads) next.workloads.delete(registryKey(t.namespace, t.name));
  for (const row of r) next.resources.set(resourceKey(row.kind, row.namespace, row.name), row as unknown as ResourceRow);
  for (const row of sv) next.services.set(registryKey(row.namespace, row.name), serviceRow(row));
  for (const row of wl) next.workloads.set(registryKey(row.namespace, row.name), workloadRow(row));
  return next;
}

// Explicit fields, so comparing a stored row with a planned one is not thrown off by timestamps.
export function serviceRow(s: { namespace: string; name: string; hosts: string[]; ports: unknown; labels: unknown; source: string; resourceVersion: bigint }): ServiceRow {
  return { namespace: s.namespace, name: s.name, hosts: s.hosts, ports: s.ports as ServicePort[], labels: s.labels as Record<string, string>, source: s.source, resourceVersion: s.resourceVersion };
}

export function workloadRow(w: { namespace: string; name: string; labels: unknown; serviceAccount: string; addresses: string[]; ports: unknown; source: string; resourceVersion: bigint }): WorkloadRow {
  return { namespace: w.namespace, name: w.name, labels: w.labels as Record<string, string>, serviceAccount: w.serviceAccount, addresses: w.addresses, ports: (w.ports ?? {}) as Record<string, number>, source: w.source, resourceVersion: w.resourceVersion };
}

export function cloneSnapshot(s: MeshSnapshot): MeshSnapshot {
  return { resources: new Map(s.resources), services: new Map(s.services), workloads: new Map(s.workloads) };
}

export function rowToPolicy(r: ResourceRow): PolicyObject {
  return {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: {
      name: r.name,
      namespace: r.namespace,
      ...(Object.keys(r.labels).length ? { labels: r.labels } : {}),
      ...(Object.keys(r.annotations).length ? { annotations: r.annotations } : {}),
    },
    spec: r.spec,
  };
}

export function rowToStored(r: ResourceRow): StoredResource {
  const p = rowToPolicy(r);
  return {
    apiVersion: p.apiVersion,
    kind: p.kind,
    metadata: {
      ...p.metadata,
      uid: r.uid,
      resourceVersion: r.resourceVersion.toString(),
      generation: r.generation,
      creationTimestamp: r.createdAt.toISOString(),
    },
    spec: r.spec,
    status: {
      observedGeneration: r.generation,
      ...(r.diagnostics.length ? { validationMessages: r.diagnostics } : {}),
    },
  };
}

export function serviceToRecord(s: ServiceRow): ServiceRecord {
  return { namespace: s.namespace, name: s.name, hosts: s.hosts, ports: s.ports, labels: s.labels, resourceVersion: s.resourceVersion.toString() };
}

export function workloadToRecord(w: WorkloadRow): WorkloadRecord {
  return {
    namespace: w.namespace,
    name: w.name,
    labels: w.labels,
    serviceAccount: w.serviceAccount,
    addresses: w.addresses,
    ports: w.ports,
    resourceVersion: w.resourceVersion.toString(),
  };
}

/** The inputs analysis works on, in a stable order. */
export function analysisInput(s: MeshSnapshot) {
  const sorted = <K, V>(m: Map<K, V>) => [...m.entries()].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)).map(([, v]) => v);
  return {
    resources: sorted(s.resources).map(rowToPolicy),
    services: sorted(s.services).map(serviceToRecord),
    workloads: sorted(s.workloads).map(workloadToRecord),
  };
}
