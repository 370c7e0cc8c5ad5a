import type { AuditEventEntry, DiffEntry } from '@tern/shared';
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';

export interface AuditFilter {
  actor?: string | undefined;
  kind?: string | undefined;
  namespace?: string | undefined;
  name?: string | undefined;
  /** Only events with one of these actions. */
  actions?: string[] | undefined;
  /** Only events with an id below this one: the cursor for the next page. */
  before?: string | undefined;
  limit: number;
}

/** An event that is not a store write (those are recorded by the writer, in their transaction). */
export interface AuditRecord {
  actor: string;
  actorKind: 'user' | 'token' | 'system';
  action: string;
  kind?: string;
  namespace?: string;
  name?: string;
  revision?: bigint;
  diff?: DiffEntry[];
  details?: Record<string, unknown>;
}

export class AuditLog {
  constructor(private readonly prisma: PrismaClient) {}

  async record(e: AuditRecord): Promise<void> {
    await this.prisma.auditEvent.create({
      data: {
        actor: e.actor,
        actorKind: e.actorKind,
        action: e.action,
        kind: e.kind ?? null,
        namespace: e.namespace ?? null,
        name: e.name ?? null,
        revision: e.revision ?? null,
        ...(e.diff ? { diff: e.diff as unknown as Prisma.InputJsonValue } : {}),
        ...(e.details ? { details: e.details as Prisma.InputJsonValue } : {}),
      },
    });
  }

  async list(f: AuditFilter): Promise<{ events: AuditEventEntry[]; nextCursor: string | null }> {
    const rows = await this.prisma.auditEvent.findMany({
      where: {
        ...(f.actor ? { actor: f.actor } : {}),
        ...(f.kind ? { kind: f.kind } : {}),
        ...(f.namespace ? { namespace: f.namespace } : {}),
        ...(f.name ? { name: f.name } : {}),
        ...(f.actions ? { action: { in: f.actions } } : {}),
        ...(f.before ? { id: { lt: BigInt(f.before) } } : {}),
      },
      orderBy: { id: 'desc' },
      take: f.limit + 1,
    });
    const page = rows.slice(0, f.limit);
    return {
      events: page.map((e) => ({
        id: e.id.toString(),
        at: e.at.toISOString(),
        actor: e.actor,
        actorKind: e.actorKind,
        action: e.action,
        kind: e.kind,
        namespace: e.namespace,
        name: e.name,
        revision: e.revision?.toString() ?? null,
        diff: (e.diff as DiffEntry[] | null) ?? null,
        details: (e.details as Record<string, unknown> | null) ?? null,
      })),
      nextCursor: rows.length > f.limit ? page[page.length - 1]!.id.toString() : null,
    };
  }
}
