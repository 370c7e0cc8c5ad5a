import { isDeepStrictEqual } from 'node:util';
import { serviceFqdn, type RegisteredService, type RegisteredWorkload, type ServiceRecord } from '@tern/shared';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { registryKey, serviceRow, serviceToRecord, workloadRow, workloadToRecord, type ServiceRow, type WorkloadRow } from './snapshot.ts';
import { write, type Actor, type AnalyzeFn, type WriteContext, type WriteOutcome } from './writer.ts';

// The registry (services and workloads). Its writes go through the same transaction, revision
// and change feed as policy, so a proxy's config recompiles when either changes; they are never
// blocked by analysis because they describe what exists, not what someone wants.

export interface ServiceSpec {
  namespace: string;
  name: string;
  hosts?: string[] | undefined;
  ports: ServiceRecord['ports'];
  labels?: Record<string, string> | undefined;
}

export interface WorkloadSpec {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  serviceAccount: string;
  addresses: string[];
  ports: Record<string, number>;
}

type Kind = 'service' | 'workload';

/** The stored row of a service, from whichever source registers it (hosts default to its FQDN). */
export function serviceRowFrom(s: ServiceSpec, source: string, domainSuffix: string): Omit<ServiceRow, 'resourceVersion'> {
  return {
    namespace: s.namespace,
    name: s.name,
    hosts: s.hosts?.length ? [...s.hosts] : [serviceFqdn(s.name, s.namespace, domainSuffix)],
    ports: s.ports,
    labels: s.labels ?? {},
    source,
  };
}

/** One row written or deleted (`next` undefined) within a write, with its revision and change record; an equal row is left alone. */
export function planRegistryRow<R extends ServiceRow | WorkloadRow>(ctx: WriteContext, target: Kind, map: Map<string, R>, next: Omit<R, 'resourceVersion'> | undefined, key: string) {
  const prev = map.get(key);
  if (!next) {
    if (!prev) throw new NotFoundError(`${target} ${key} does not exist`);
    map.delete(key);
    ctx.record({ target, action: 'deleted', revision: ctx.nextRevision(), prev } as never);
    return;
  }
  if (prev) {
    const { resourceVersion: _rv, ...rest } = prev;
    if (isDeepStrictEqual(rest, next)) return;
  }
  const revision = ctx.nextRevision();
  const row = { ...next, resourceVersion: revision } as R;
  map.set(key, row);
  ctx.record({ target, action: prev ? 'updated' : 'created', revision, ...(prev ? { prev } : {}), next: row } as never);
}

/**
 * A row written or deleted through the registry API. Only local registrations: a row discovered
 * from the cluster would be put back (or taken away) by its next change there, so changing it here
 * would only mislead.
 */
function planLocalRow<R extends ServiceRow | WorkloadRow>(ctx: WriteContext, target: Kind, map: Map<string, R>, next: Omit<R, 'resourceVersion'> | undefined, key: string): void {
  const source = map.get(key)?.source;
  if (source !== undefined && source !== 'local') {
    throw new ConflictError(`${target} ${key} comes from source "${source}" (discovered from the cluster): change it there; the registry API changes local registrations only`);
  }
  planRegistryRow(ctx, target, map, next, key);
}

export class RegistryStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly analyze: AnalyzeFn,
    private readonly domainSuffix: string,
  ) {}

  async services(namespace?: string): Promise<RegisteredService[]> {
    const rows = await this.prisma.service.findMany({ where: namespace ? { namespace } : {}, orderBy: [{ namespace: 'asc' }, { name: 'asc' }] });
    return rows.map((r) => ({ ...serviceToRecord(serviceRow(r)), source: r.source }));
  }

  async workloads(namespace?: string): Promise<RegisteredWorkload[]> {
    const rows = await this.prisma.workload.findMany({ where: namespace ? { namespace } : {}, orderBy: [{ namespace: 'asc' }, { name: 'asc' }] });
    return rows.map((r) => ({ ...workloadToRecord(workloadRow(r)), source: r.source }));
  }

  upsertService(s: ServiceSpec, actor: Actor): Promise<WriteOutcome> {
    const row = serviceRowFrom(s, 'local', this.domainSuffix);
    return write(this.prisma, this.analyze, actor, { enforce: false }, (ctx) => planLocalRow(ctx, 'service', ctx.after.services, row, registryKey(s.namespace, s.name)));
  }

  deleteService(namespace: string, name: string, actor: Actor): Promise<WriteOutcome> {
    return write(this.prisma, this.analyze, actor, { enforce: false }, (ctx) => planLocalRow(ctx, 'service', ctx.after.services, undefined, registryKey(namespace, name)));
  }

  upsertWorkload(w: WorkloadSpec, actor: Actor): Promise<WriteOutcome> {
    const row: Omit<WorkloadRow, 'resourceVersion'> = { ...w, source: 'local' };
    return write(this.prisma, this.analyze, actor, { enforce: false }, (ctx) => planLocalRow(ctx, 'workload', ctx.after.workloads, row, registryKey(w.namespace, w.name)));
  }

  deleteWorkload(namespace: string, name: string, actor: Actor): Promise<WriteOutcome> {
    return write(this.prisma, this.analyze, actor, { enforce: false }, (ctx) => planLocalRow(ctx, 'workload', ctx.after.workloads, undefined, registryKey(namespace, name)));
  }
}
