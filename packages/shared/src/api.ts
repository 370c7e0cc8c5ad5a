import { z } from 'zod';

// Shapes the control plane's API returns. The console and the CLI get their types from here
// (and from tRPC's inference), so a field renamed here is renamed everywhere.

export const ROLES = ['viewer', 'editor', 'admin'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

/** True when `have` grants at least what `need` does. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export const diagnosticSchema = z.object({
  code: z.string(),
  name: z.string(),
  level: z.enum(['error', 'warning', 'info']),
  kind: z.string(),
  namespace: z.string(),
  resourceName: z.string(),
  path: z.string(),
  message: z.string(),
});
export type Diagnostic = z.infer<typeof diagnosticSchema>;

export const fieldIssueSchema = z.object({
  /** Index of the document in a multi-document input, when there was more than one. */
  document: z.number().int().optional(),
  kind: z.string().optional(),
  name: z.string().optional(),
  path: z.string(),
  rule: z.string(),
  message: z.string(),
});
export type ApiFieldIssue = z.infer<typeof fieldIssueSchema>;

export const storedResourceSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.object({
    name: z.string(),
    namespace: z.string(),
    uid: z.string(),
    resourceVersion: z.string(),
    generation: z.number().int(),
    creationTimestamp: z.string(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.record(z.string(), z.unknown()),
  status: z
    .object({
      observedGeneration: z.number().int().optional(),
      validationMessages: z.array(diagnosticSchema).optional(),
    })
    .optional(),
});
export type StoredResource = z.infer<typeof storedResourceSchema>;

export const changeActionSchema = z.enum(['created', 'updated', 'deleted', 'rolled-back']);
export type ChangeAction = z.infer<typeof changeActionSchema>;

export const applyResultSchema = z.object({
  kind: z.string(),
  namespace: z.string(),
  name: z.string(),
  action: z.enum(['created', 'updated', 'deleted', 'rolled-back', 'unchanged']),
  resourceVersion: z.string(),
  warnings: z.array(diagnosticSchema),
});
export type ApplyResult = z.infer<typeof applyResultSchema>;

export const revisionSchema = z.object({
  revision: z.string(),
  kind: z.string(),
  namespace: z.string(),
  name: z.string(),
  action: changeActionSchema,
  generation: z.number().int(),
  actor: z.string(),
  createdAt: z.string(),
  object: z.record(z.string(), z.unknown()),
});
export type RevisionEntry = z.infer<typeof revisionSchema>;

export const diffEntrySchema = z.object({
  op: z.enum(['add', 'remove', 'replace']),
  path: z.string(),
  from: z.unknown().optional(),
  to: z.unknown().optional(),
});
export type DiffEntry = z.infer<typeof diffEntrySchema>;

export const auditEventSchema = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.string(),
  actorKind: z.string(),
  action: z.string(),
  kind: z.string().nullable(),
  namespace: z.string().nullable(),
  name: z.string().nullable(),
  revision: z.string().nullable(),
  diff: z.array(diffEntrySchema).nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
});
export type AuditEventEntry = z.infer<typeof auditEventSchema>;

/** What the change feed carries: enough to know what to recompute, never the object itself. */
export const changeEventSchema = z.object({
  revision: z.string(),
  kind: z.string(),
  namespace: z.string(),
  name: z.string(),
  action: changeActionSchema,
});
export type ChangeEvent = z.infer<typeof changeEventSchema>;
