import type { PrismaClient } from '../generated/prisma/client.ts';
import { planRegistryRow, serviceRowFrom } from '../store/registry.ts';
import { registryKey, type ServiceRow, type WorkloadRow } from '../store/snapshot.ts';
import { write, type AnalyzeFn, type WriteContext } from '../store/writer.ts';
import { KUBERNETES_ACTOR } from './actor.ts';
import { KUBERNETES_SOURCE, type DesiredRegistry } from './registry-map.ts';

// Makes the registry's Kubernetes-sourced rows equal to what the cluster says, in one write
// (one transaction, revisions, audit, NOTIFY: the same path as local registration). Rows
// registered locally are never touched: a cluster object with the same namespace/name is
// reported as a conflict and left out.

export interface RegistrySyncResult {
  revision: bigint;
  changed: number;
  /** `service ns/name` / `workload ns/name` the cluster has but a local registration holds. */
  conflicts: string[];
}

type Kind = 'service' | 'workload';

/** The kubernetes rows of one kind made equal to `desired`; a row another source holds is a conflict, left alone. */
function reconcile<R extends ServiceRow | WorkloadRow>(ctx: WriteContext, target: Kind, rows: Map<string, R>, desired: Map<string, Omit<R, 'resourceVersion'>>, conflicts: string[]): void {
  for (const [key, next] of desired) {
    const prev = rows.get(key);
    if (prev && prev.source !== KUBERNETES_SOURCE) conflicts.push(`${target} ${key}`);
    else planRegistryRow(ctx, target, rows, next, key);
  }
  for (const [key, prev] of [...rows]) {
    if (prev.source === KUBERNETES_SOURCE && !desired.has(key)) planRegistryRow(ctx, target, rows, undefined, key);
  }
}

export async function writeKubernetesRegistry(prisma: PrismaClient, analyze: AnalyzeFn, domainSuffix: string, desired: DesiredRegistry): Promise<RegistrySyncResult> {
  const services = new Map<string, Omit<ServiceRow, 'resourceVersion'>>();
  for (const s of desired.services) {
    services.set(registryKey(s.namespace, s.name), serviceRowFrom(s, KUBERNETES_SOURCE, domainSuffix));
  }
  const workloads = new Map<string, Omit<WorkloadRow, 'resourceVersion'>>();
  for (const w of desired.workloads) workloads.set(registryKey(w.namespace, w.name), { ...w, source: KUBERNETES_SOURCE });
  const conflicts: string[] = [];
  let changed = 0;
  const outcome = await write(prisma, analyze, KUBERNETES_ACTOR, { enforce: false }, (ctx) => {
    conflicts.length = 0; // a retried transaction plans again
    reconcile(ctx, 'service', ctx.after.services, services, conflicts);
    reconcile(ctx, 'workload', ctx.after.workloads, workloads, conflicts);
    changed = ctx.changes.length;
  });
  return { revision: outcome.revision, changed, conflicts };
}
