import { isDeepStrictEqual } from 'node:util';
import diff from 'microdiff';
import { formatPath, type ApplyResult, type ChangeAction, type ChangeEvent, type Diagnostic, type DiffEntry, type Role } from '@tern/shared';
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { ValidationError } from '../errors.ts';
import {
  advanceSnapshot,
  analysisInput,
  cloneSnapshot,
  loadSnapshot,
  resourceKey,
  rowToPolicy,
  type MeshSnapshot,
  type ResourceRow,
  type ServiceRow,
  type WorkloadRow,
} from './snapshot.ts';

// Every change to the mesh goes through `write`: one transaction that takes the revision lock,
// loads the mesh, lets a planner decide the change, checks it, and writes the rows, their
// revisions, the audit events and the change notifications together. Nothing is half-written.

export const CHANGE_CHANNEL = 'tern_changes';

export interface Actor {
  name: string;
  kind: 'user' | 'token' | 'system';
  role: Role;
}

export type AnalyzeFn = (input: ReturnType<typeof analysisInput>) => Diagnostic[];

type Target =
  | { target: 'resource'; prev?: ResourceRow; next?: ResourceRow }
  | { target: 'service'; prev?: ServiceRow; next?: ServiceRow }
  | { target: 'workload'; prev?: WorkloadRow; next?: WorkloadRow };

export type PlannedChange = Target & {
  action: ChangeAction;
  revision: bigint;
  details?: Record<string, unknown>;
};

export class WriteContext {
  readonly changes: PlannedChange[] = [];
  /** Changes and no-ops in the order they were asked for, for the caller's results. */
  readonly items: Array<{ change: PlannedChange } | { unchanged: ResourceRow }> = [];
  constructor(
    readonly tx: Prisma.TransactionClient,
    readonly before: MeshSnapshot,
    readonly after: MeshSnapshot,
    private revision: bigint,
    readonly actor: Actor,
    readonly now: Date,
  ) {}

  record(change: PlannedChange): void {
    this.changes.push(change);
    this.items.push({ change });
  }

  recordUnchanged(row: ResourceRow): void {
    this.items.push({ unchanged: row });
  }

  nextRevision(): bigint {
    this.revision += 1n;
    return this.revision;
  }

  get lastRevision(): bigint {
    return this.revision;
  }
}

export interface WriteOptions {
  /** Block the write if it introduces analysis errors. Registry writes describe reality and are never blocked. */
  enforce: boolean;
  /** Plan, check and report, then roll everything back. */
  dryRun?: boolean;
}

export interface WriteOutcome {
  results: ApplyResult[];
  revision: bigint;
  /** Every finding about the mesh as it is after the write. */
  diagnostics: Diagnostic[];
  dryRun: boolean;
}

/** Carries a dry run's outcome out of the transaction it aborts. */
class DryRunAbort extends Error {
  constructor(readonly outcome: WriteOutcome) {
    super('dry run');
  }
}

type Planner = (ctx: WriteContext) => Promise<void> | void;

export async function write(
  prisma: PrismaClient,
  analyze: AnalyzeFn,
  actor: Actor,
  opts: WriteOptions,
  plan: Planner,
): Promise<WriteOutcome> {
  try {
    return await transaction(prisma, analyze, actor, opts, plan);
  } catch (err) {
    if (err instanceof DryRunAbort) return err.outcome;
    throw err;
  }
}

/**
 * The mesh as of the last write this process committed, with its findings. Revisions are dense
 * and every change to the mesh's tables takes one (stored findings aside: they are derived, and
 * every write recomputes them), so if the locked revision is still this one, nobody — no other
 * replica either — has changed anything since and the database need not be read. Rows in a
 * snapshot are never mutated; a change replaces them.
 */
interface MeshCache {
  revision: bigint;
  snapshot: MeshSnapshot;
  diagnostics: Diagnostic[];
}
const caches = new WeakMap<PrismaClient, MeshCache>();
/** Beyond this many revisions behind, reading the whole mesh is cheaper than reading the log. */
const MAX_CATCH_UP = 500n;

async function transaction(prisma: PrismaClient, analyze: AnalyzeFn, actor: Actor, opts: WriteOptions, plan: Planner): Promise<WriteOutcome> {
  const outcome = await prisma.$transaction(
    async (tx) => {
      // A dry run (and so every analysis) reads without taking the lock: it must not queue writers.
      const value = opts.dryRun ? await readRevision(tx) : await lockRevision(tx);
      const cached = caches.get(prisma);
      const hit = cached?.revision === value ? cached : undefined;
      // Someone else wrote since (another replica): catch up from the change log if it is short.
      const behind = cached && !hit && cached.revision < value && value - cached.revision <= MAX_CATCH_UP ? cached : undefined;
      const before = hit?.snapshot ?? (behind ? await advanceSnapshot(tx, behind.snapshot, behind.revision, value) : await loadSnapshot(tx));
      const ctx = new WriteContext(tx, before, cloneSnapshot(before), value, actor, new Date());
      await plan(ctx);

      const diagnostics = analyzeChange(analyze, ctx, opts.enforce, hit?.diagnostics);
      const byResource = groupByResource(diagnostics);
      if (opts.dryRun) throw new DryRunAbort({ results: results(ctx, byResource), revision: value, diagnostics, dryRun: true });

      for (const c of ctx.changes) await persistRow(tx, c, byResource);
      await refreshDiagnostics(tx, ctx, byResource);
      if (ctx.changes.length) {
        await tx.revision.createMany({ data: ctx.changes.map((c) => revisionRow(c, actor)) });
        await tx.auditEvent.createMany({ data: ctx.changes.map((c) => auditRow(c, actor, ctx.now)) });
        await tx.$executeRaw`UPDATE "RevisionCounter" SET value = ${ctx.lastRevision} WHERE id = 1`;
        for (const c of ctx.changes) {
          await tx.$executeRaw`SELECT pg_notify(${CHANGE_CHANNEL}, ${JSON.stringify(changeEvent(c))})`;
        }
      }
      return { results: results(ctx, byResource), revision: ctx.lastRevision, diagnostics, dryRun: false, after: ctx.after };
    },
    // Without the lock, repeatable read still gives the dry run one consistent view of the mesh.
    { maxWait: 10_000, timeout: 30_000, ...(opts.dryRun ? { isolationLevel: 'RepeatableRead' as const } : {}) },
  );
  // Committed. Concurrent writers may finish out of order here: keep the newest.
  const { after, ...result } = outcome;
  const current = caches.get(prisma);
  if (!current || current.revision <= result.revision) caches.set(prisma, { revision: result.revision, snapshot: after, diagnostics: result.diagnostics });
  return result;
}

async function lockRevision(tx: Prisma.TransactionClient): Promise<bigint> {
  await tx.$executeRaw`INSERT INTO "RevisionCounter" (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`;
  const [row] = await tx.$queryRaw<[{ value: bigint }]>`SELECT value FROM "RevisionCounter" WHERE id = 1 FOR UPDATE`;
  return BigInt(row.value);
}

async function readRevision(tx: Prisma.TransactionClient): Promise<bigint> {
  const rows = await tx.$queryRaw<Array<{ value: bigint }>>`SELECT value FROM "RevisionCounter" WHERE id = 1`;
  return BigInt(rows[0]?.value ?? 0n);
}

const diagId = (d: Diagnostic) => `${d.code}|${d.kind}|${d.namespace}|${d.resourceName}|${d.path}|${d.message}`;

/** Analyses the mesh after the change; errors that the change introduces block it. */
function analyzeChange(analyze: AnalyzeFn, ctx: WriteContext, enforce: boolean, known?: Diagnostic[]): Diagnostic[] {
  const after = analyze(analysisInput(ctx.after));
  if (!enforce || ctx.changes.length === 0) return after;
  const errorsAfter = after.filter((d) => d.level === 'error');
  if (errorsAfter.length === 0) return after;
  const before = new Set((known ?? analyze(analysisInput(ctx.before))).filter((d) => d.level === 'error').map(diagId));
  const introduced = errorsAfter.filter((d) => !before.has(diagId(d)));
  if (introduced.length) {
    throw new ValidationError(
      `the change introduces ${introduced.length} analysis error${introduced.length > 1 ? 's' : ''}: ${introduced[0]!.message}`,
      introduced.map((d) => ({ kind: d.kind, name: `${d.namespace}/${d.resourceName}`, path: d.path, rule: d.code, message: d.message })),
      introduced,
    );
  }
  return after;
}

function groupByResource(diags: Diagnostic[]): Map<string, Diagnostic[]> {
  const m = new Map<string, Diagnostic[]>();
  for (const d of diags) {
    const k = resourceKey(d.kind, d.namespace, d.resourceName);
    const list = m.get(k);
    if (list) list.push(d);
    else m.set(k, [d]);
  }
  return m;
}

async function persistRow(tx: Prisma.TransactionClient, c: PlannedChange, diags: Map<string, Diagnostic[]>) {
  switch (c.target) {
    case 'resource': {
      const row = c.next;
      if (!row) {
        const p = c.prev!;
        await tx.resource.delete({ where: { kind_namespace_name: { kind: p.kind, namespace: p.namespace, name: p.name } } });
        return;
      }
      const data = { ...row, diagnostics: (diags.get(resourceKey(row.kind, row.namespace, row.name)) ?? []) as unknown as Prisma.InputJsonValue, spec: row.spec as Prisma.InputJsonValue };
      row.diagnostics = data.diagnostics as unknown as Diagnostic[];
      if (c.prev) {
        await tx.resource.update({ where: { kind_namespace_name: { kind: row.kind, namespace: row.namespace, name: row.name } }, data });
      } else {
        await tx.resource.create({ data });
      }
      return;
    }
    case 'service': {
      const row = c.next;
      if (!row) {
        await tx.service.delete({ where: { namespace_name: { namespace: c.prev!.namespace, name: c.prev!.name } } });
        return;
      }
      const data = { ...row, ports: row.ports as unknown as Prisma.InputJsonValue, updatedAt: new Date() };
      await tx.service.upsert({ where: { namespace_name: { namespace: row.namespace, name: row.name } }, create: data, update: data });
      return;
    }
    case 'workload': {
      const row = c.next;
      if (!row) {
        await tx.workload.delete({ where: { namespace_name: { namespace: c.prev!.namespace, name: c.prev!.name } } });
        return;
      }
      const data = { ...row, ports: row.ports as Prisma.InputJsonValue, updatedAt: new Date() };
      await tx.workload.upsert({ where: { namespace_name: { namespace: row.namespace, name: row.name } }, create: data, update: data });
      return;
    }
  }
}

/** Other resources' findings can change with this write (a DestinationRule added fixes a VirtualService). */
async function refreshDiagnostics(tx: Prisma.TransactionClient, ctx: WriteContext, diags: Map<string, Diagnostic[]>) {
  const written = new Set(ctx.changes.filter((c) => c.target === 'resource').map((c) => {
    const r = (c.next ?? c.prev)!;
    return resourceKey(r.kind, r.namespace, r.name);
  }));
  for (const [key, row] of ctx.after.resources) {
    if (written.has(key)) continue;
    const now = diags.get(key) ?? [];
    // Deep equality, not JSON text: jsonb hands objects back with its own key order.
    if (isDeepStrictEqual(now, row.diagnostics)) continue;
    ctx.after.resources.set(key, { ...row, diagnostics: now });
    await tx.resource.update({
      where: { kind_namespace_name: { kind: row.kind, namespace: row.namespace, name: row.name } },
      data: { diagnostics: now as unknown as Prisma.InputJsonValue },
    });
  }
}

function identity(c: PlannedChange) {
  const r = (c.next ?? c.prev)!;
  const kind = c.target === 'resource' ? (r as ResourceRow).kind : c.target === 'service' ? 'Service' : 'Workload';
  return { kind, namespace: r.namespace, name: r.name };
}

function objectOf(c: PlannedChange, which: 'prev' | 'next'): Record<string, unknown> | undefined {
  const r = c[which];
  if (!r) return undefined;
  if (c.target === 'resource') return rowToPolicy(r as ResourceRow) as unknown as Record<string, unknown>;
  const { resourceVersion: _rv, ...rest } = r as ServiceRow | WorkloadRow;
  return { kind: identity(c).kind, ...rest };
}

function revisionRow(c: PlannedChange, actor: Actor) {
  const id = identity(c);
  const generation = c.target === 'resource' ? ((c.next ?? c.prev) as ResourceRow).generation : 0;
  // A delete records the object as it was, so it can be restored.
  const object = objectOf(c, c.next ? 'next' : 'prev')!;
  return { revision: c.revision, ...id, action: c.action, generation, object: object as Prisma.InputJsonValue, actor: actor.name };
}

export function diffObjects(prev: unknown, next: unknown): DiffEntry[] {
  const a = (prev ?? {}) as Record<string, unknown>;
  const b = (next ?? {}) as Record<string, unknown>;
  return diff(a, b).map((d) => {
    const path = formatPath(d.path);
    if (d.type === 'CREATE') return { op: 'add', path, to: d.value };
    if (d.type === 'REMOVE') return { op: 'remove', path, from: d.oldValue };
    return { op: 'replace', path, from: d.oldValue, to: d.value };
  });
}

function auditRow(c: PlannedChange, actor: Actor, at: Date) {
  const id = identity(c);
  const d = diffObjects(objectOf(c, 'prev'), objectOf(c, 'next'));
  return {
    at,
    actor: actor.name,
    actorKind: actor.kind,
    action: `${id.kind === 'Service' || id.kind === 'Workload' ? 'registry' : 'resource'}.${c.action}`,
    ...id,
    revision: c.revision,
    diff: d as unknown as Prisma.InputJsonValue,
    details: (c.details ?? null) as Prisma.InputJsonValue,
  };
}

function changeEvent(c: PlannedChange): ChangeEvent {
  return { revision: c.revision.toString(), ...identity(c), action: c.action };
}

function results(ctx: WriteContext, diags: Map<string, Diagnostic[]>): ApplyResult[] {
  const warnings = (kind: string, namespace: string, name: string) =>
    (diags.get(resourceKey(kind, namespace, name)) ?? []).filter((d) => d.level !== 'info');
  return ctx.items.map((item) => {
    if ('unchanged' in item) {
      const r = item.unchanged;
      const base = { kind: r.kind, namespace: r.namespace, name: r.name };
      return { ...base, action: 'unchanged' as const, resourceVersion: r.resourceVersion.toString(), warnings: warnings(r.kind, r.namespace, r.name) };
    }
    const c = item.change;
    const id = identity(c);
    const resourceVersion = (c.next ? c.next.resourceVersion : c.revision).toString();
    return { ...id, action: c.action, resourceVersion, warnings: warnings(id.kind, id.namespace, id.name) };
  });
}
