import type { App } from '../../apps/api/src/app.ts';
import type { Prisma } from '../../apps/api/src/generated/prisma/client.ts';
import { CHANGE_CHANNEL } from '../../apps/api/src/store/writer.ts';
import { ACTOR, items, namespaceOf, serviceName, virtualService } from './mesh.ts';

// The two writes compared: Tern's (app.resources.apply → writer.ts) and the bare database work
// for the same change, without Tern's logic.

/** One VirtualService update through Tern's write path. */
export async function ternWrite(app: App, service: number, weight: number): Promise<void> {
  const o = await app.resources.apply(items([virtualService(service, weight)]), 'apply', ACTOR);
  const r = o.results[0];
  if (!r || r.action !== 'updated') throw new Error(`expected an update of ${serviceName(service)}, got ${JSON.stringify(o.results)}`);
}

/**
 * The baseline: the bare minimum a database must do to record that change, in one interactive
 * transaction on the same Prisma client — take the next revision (UPDATE … RETURNING, which also
 * locks the counter row), update the one Resource row, insert one Revision row and one AuditEvent
 * row, and send the change notification (so the change feed sees dense revisions, as with Tern's
 * writes, rather than catching up from the log). No snapshot, no analysis, no diagnostics.
 */
export async function baselineWrite(app: App, service: number, weight: number): Promise<void> {
  const vs = virtualService(service, weight);
  const key = { kind: 'VirtualService', namespace: namespaceOf(service), name: serviceName(service) };
  const now = new Date();
  await app.db.prisma.$transaction(
    async (tx) => {
      const [counter] = await tx.$queryRaw<Array<{ value: bigint }>>`UPDATE "RevisionCounter" SET value = value + 1 WHERE id = 1 RETURNING value`;
      const revision = counter!.value;
      const row = await tx.resource.update({
        where: { kind_namespace_name: key },
        data: { spec: vs.spec as Prisma.InputJsonValue, resourceVersion: revision, generation: { increment: 1 }, updatedAt: now, updatedBy: ACTOR.name },
      });
      await tx.revision.create({
        data: { revision, ...key, action: 'updated', generation: row.generation, object: vs as unknown as Prisma.InputJsonValue, actor: ACTOR.name },
      });
      await tx.auditEvent.create({
        data: {
          at: now,
          actor: ACTOR.name,
          actorKind: ACTOR.kind,
          action: 'resource.updated',
          ...key,
          revision,
          diff: [{ op: 'replace', path: 'spec.http[0].route[0].weight', to: weight }] as Prisma.InputJsonValue,
        },
      });
      const event = JSON.stringify({ revision: revision.toString(), ...key, action: 'updated' });
      await tx.$executeRaw`SELECT pg_notify(${CHANGE_CHANNEL}, ${event})`;
    },
    { maxWait: 10_000, timeout: 30_000 },
  );
}
