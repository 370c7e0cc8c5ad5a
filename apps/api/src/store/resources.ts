import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { ChangeEvent, RevisionEntry, StoredResource } from '@tern/shared';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { resourceKey, rowToStored, type PolicyObject, type ResourceRow } from './snapshot.ts';
import { write, type Actor, type AnalyzeFn, type WriteContext, type WriteOutcome } from './writer.ts';

// Policy resources: reads, and the planners that turn "apply / delete / roll back" into changes.

export type ApplyMode = 'create' | 'update' | 'apply';

export interface ApplyItem {
  object: PolicyObject;
  /** When set, the write succeeds only if the stored resource is still at this version. */
  resourceVersion?: string | undefined;
}

export interface ResourceRef {
  kind: string;
  namespace: string;
  name: string;
  resourceVersion?: string | undefined;
}

const describe = (r: { kind: string; namespace: string; name: string }) => `${r.kind} ${r.namespace}/${r.name}`;

function checkVersion(current: ResourceRow | undefined, ref: { kind: string; namespace: string; name: string }, expected?: string) {
  if (expected === undefined) return;
  if (!current) throw new NotFoundError(`${describe(ref)} does not exist (expected resourceVersion ${expected})`);
  if (current.resourceVersion.toString() !== expected) {
    throw new ConflictError(
      `${describe(ref)} was modified: your resourceVersion is ${expected}, the stored one is ${current.resourceVersion}; fetch it again and reapply your change`,
    );
  }
}

function planUpsert(ctx: WriteContext, item: ApplyItem, mode: ApplyMode, rollback?: { toRevision: string }) {
  const o = item.object;
  const ref = { kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name };
  const key = resourceKey(ref.kind, ref.namespace, ref.name);
  const prev = ctx.after.resources.get(key);
  if (mode === 'create' && prev) throw new ConflictError(`${describe(ref)} already exists`);
  if (mode === 'update' && !prev) throw new NotFoundError(`${describe(ref)} does not exist`);
  checkVersion(prev, ref, item.resourceVersion);

  const labels = o.metadata.labels ?? {};
  const annotations = o.metadata.annotations ?? {};
  if (prev && prev.apiVersion === o.apiVersion && isDeepStrictEqual(prev.spec, o.spec) && isDeepStrictEqual(prev.labels, labels) && isDeepStrictEqual(prev.annotations, annotations)) {
    ctx.recordUnchanged(prev);
    return;
  }
  const revision = ctx.nextRevision();
  const specChanged = !prev || !isDeepStrictEqual(prev.spec, o.spec);
  const next: ResourceRow = {
    ...ref,
    apiVersion: o.apiVersion,
    uid: prev?.uid ?? randomUUID(),
    labels,
    annotations,
    spec: o.spec,
    // As in Kubernetes, only a spec change is a new generation.
    generation: (prev?.generation ?? 0) + (specChanged ? 1 : 0),
    resourceVersion: revision,
    diagnostics: [],
    createdAt: prev?.createdAt ?? ctx.now,
    updatedAt: ctx.now,
    createdBy: prev?.createdBy ?? ctx.actor.name,
    updatedBy: ctx.actor.name,
  };
  ctx.after.resources.set(key, next);
  const action = rollback ? 'rolled-back' : prev ? 'updated' : 'created';
  ctx.record({ target: 'resource', action, revision, ...(prev ? { prev } : {}), next, ...(rollback ? { details: rollback } : {}) });
}

function planDelete(ctx: WriteContext, ref: ResourceRef) {
  const key = resourceKey(ref.kind, ref.namespace, ref.name);
  const prev = ctx.after.resources.get(key);
  if (!prev) throw new NotFoundError(`${describe(ref)} does not exist`);
  checkVersion(prev, ref, ref.resourceVersion);
  ctx.after.resources.delete(key);
  ctx.record({ target: 'resource', action: 'deleted', revision: ctx.nextRevision(), prev });
}

function toRevisionEntry(r: { revision: bigint; kind: string; namespace: string; name: string; action: string; generation: number; actor: string; createdAt: Date; object: unknown }): RevisionEntry {
  return {
    revision: r.revision.toString(),
    kind: r.kind,
    namespace: r.namespace,
    name: r.name,
    action: r.action as RevisionEntry['action'],
    generation: r.generation,
    actor: r.actor,
    createdAt: r.createdAt.toISOString(),
    object: r.object as Record<string, unknown>,
  };
}

function parseRevision(value: string, field: string): bigint {
  if (!/^\d{1,19}$/.test(value)) throw new ValidationError(`${field} must be a revision number`, [{ path: field, rule: 'revision', message: `${field} must be a non-negative integer, got "${value}"` }]);
  return BigInt(value);
}

export class ResourceStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly analyze: AnalyzeFn,
  ) {}

  async list(filter: { kind?: string | undefined; namespace?: string | undefined } = {}): Promise<StoredResource[]> {
    const rows = await this.prisma.resource.findMany({
      where: { ...(filter.kind ? { kind: filter.kind } : {}), ...(filter.namespace ? { namespace: filter.namespace } : {}) },
      orderBy: [{ kind: 'asc' }, { namespace: 'asc' }, { name: 'asc' }],
    });
    return rows.map((r) => rowToStored(r as unknown as ResourceRow));
  }

  async get(kind: string, namespace: string, name: string): Promise<StoredResource> {
    const row = await this.prisma.resource.findUnique({ where: { kind_namespace_name: { kind, namespace, name } } });
    if (!row) throw new NotFoundError(`${kind} ${namespace}/${name} does not exist`);
    return rowToStored(row as unknown as ResourceRow);
  }

  /** Applies all items in one transaction: all of them land, or none. */
  apply(items: ApplyItem[], mode: ApplyMode, actor: Actor, opts: { dryRun?: boolean; enforce?: boolean } = {}): Promise<WriteOutcome> {
    return write(this.prisma, this.analyze, actor, { enforce: opts.enforce ?? true, dryRun: opts.dryRun ?? false }, (ctx) => {
      for (const item of items) planUpsert(ctx, item, mode);
    });
  }

  delete(refs: ResourceRef[], actor: Actor, opts: { dryRun?: boolean } = {}): Promise<WriteOutcome> {
    return write(this.prisma, this.analyze, actor, { enforce: true, dryRun: opts.dryRun ?? false }, (ctx) => {
      for (const ref of refs) planDelete(ctx, ref);
    });
  }

  /** Makes the resource what it was at `toRevision` (recreating it if it was deleted since). */
  rollback(ref: ResourceRef, toRevision: string, actor: Actor): Promise<WriteOutcome> {
    const target = parseRevision(toRevision, 'toRevision');
    return write(this.prisma, this.analyze, actor, { enforce: true }, async (ctx) => {
      const rev = await ctx.tx.revision.findUnique({ where: { revision: target } });
      if (!rev || rev.kind !== ref.kind || rev.namespace !== ref.namespace || rev.name !== ref.name) {
        throw new NotFoundError(`revision ${toRevision} is not a revision of ${describe(ref)}; see its history`);
      }
      if (rev.action === 'deleted') {
        throw new ValidationError(`revision ${toRevision} is the deletion of ${describe(ref)}; roll back to a revision before it`, [
          { path: 'toRevision', rule: 'not_a_deletion', message: `revision ${toRevision} deleted the resource; choose an earlier revision` },
        ]);
      }
      const object = rev.object as unknown as PolicyObject;
      planUpsert(ctx, { object, resourceVersion: ref.resourceVersion }, 'apply', { toRevision });
    });
  }

  async history(ref: ResourceRef, limit = 100): Promise<RevisionEntry[]> {
    const rows = await this.prisma.revision.findMany({
      where: { kind: ref.kind, namespace: ref.namespace, name: ref.name },
      orderBy: { revision: 'desc' },
      take: limit,
    });
    return rows.map(toRevisionEntry);
  }

  async currentRevision(): Promise<string> {
    const row = await this.prisma.revisionCounter.findUnique({ where: { id: 1 } });
    return (row?.value ?? 0n).toString();
  }

  /** The change log after `revision`, oldest first: how a replica catches up after missing notifications. */
  async changesSince(revision: string, limit = 1000): Promise<ChangeEvent[]> {
    const rows = await this.prisma.revision.findMany({
      where: { revision: { gt: parseRevision(revision, 'since') } },
      orderBy: { revision: 'asc' },
      take: limit,
      select: { revision: true, kind: true, namespace: true, name: true, action: true },
    });
    return rows.map((r) => ({ ...r, revision: r.revision.toString(), action: r.action as ChangeEvent['action'] }));
  }
}
