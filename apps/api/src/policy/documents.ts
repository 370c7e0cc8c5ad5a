import { parseResource, parseYamlDocuments, type ApiFieldIssue } from '@tern/shared';
import type { ApplyItem } from '../store/resources.ts';
import type { PolicyObject } from '../store/snapshot.ts';
import { ValidationError } from '../errors.ts';

// Turns what a user sends (YAML text as `kubectl apply -f` takes it, or JSON objects) into
// validated items for the store. Every problem in every document is reported at once.

export interface DocumentsInput {
  yaml?: string | undefined;
  resources?: unknown[] | undefined;
  /** Namespace for documents that name none (like `kubectl -n`). */
  namespace?: string | undefined;
}

export function parseDocuments(input: DocumentsInput): ApplyItem[] {
  const docs: Array<{ index: number; doc?: unknown; error?: { path: string; rule: string; message: string } }> = [];
  if (input.yaml !== undefined) docs.push(...parseYamlDocuments(input.yaml));
  const base = docs.length;
  if (input.resources) input.resources.forEach((doc, i) => docs.push({ index: base + i, doc }));
  if (docs.length === 0) {
    throw new ValidationError('no resources given', [{ path: input.yaml !== undefined ? 'yaml' : 'resources', rule: 'required', message: 'send at least one resource' }]);
  }
  const many = docs.length > 1;
  const issues: ApiFieldIssue[] = [];
  const items: ApplyItem[] = [];
  const seen = new Map<string, number>();
  for (const d of docs) {
    const where = many ? { document: d.index } : {};
    if (d.error) {
      issues.push({ ...where, ...d.error });
      continue;
    }
    const r = parseResource(d.doc);
    if (!r.ok) {
      const meta = (d.doc as { kind?: unknown; metadata?: { name?: unknown } } | null) ?? {};
      const ident = {
        ...(typeof meta.kind === 'string' ? { kind: meta.kind } : {}),
        ...(typeof meta.metadata?.name === 'string' ? { name: meta.metadata.name } : {}),
      };
      for (const issue of r.issues) issues.push({ ...where, ...ident, ...issue });
      continue;
    }
    const res = r.resource as unknown as { apiVersion: string; kind: string; metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string }; spec: Record<string, unknown> };
    const namespace = res.metadata.namespace ?? input.namespace ?? 'default';
    if (input.namespace && res.metadata.namespace && res.metadata.namespace !== input.namespace) {
      issues.push({ ...where, kind: res.kind, name: res.metadata.name, path: 'metadata.namespace', rule: 'namespace_mismatch', message: `metadata.namespace is "${res.metadata.namespace}" but the request is for namespace "${input.namespace}"` });
      continue;
    }
    const key = `${res.kind}/${namespace}/${res.metadata.name}`;
    if (seen.has(key)) {
      issues.push({ ...where, kind: res.kind, name: res.metadata.name, path: 'metadata.name', rule: 'duplicate', message: `${key} appears twice in one request (documents ${seen.get(key)} and ${d.index})` });
      continue;
    }
    seen.set(key, d.index);
    const object: PolicyObject = {
      apiVersion: res.apiVersion,
      kind: res.kind,
      metadata: {
        name: res.metadata.name,
        namespace,
        ...(res.metadata.labels ? { labels: res.metadata.labels as Record<string, string> } : {}),
        ...(res.metadata.annotations ? { annotations: res.metadata.annotations as Record<string, string> } : {}),
      },
      spec: (res.spec ?? {}) as Record<string, unknown>,
    };
    items.push({ object, resourceVersion: res.metadata.resourceVersion });
  }
  if (issues.length) {
    const first = issues[0]!;
    throw new ValidationError(`${issues.length} problem${issues.length > 1 ? 's' : ''} in the input; first: ${first.message}`, issues);
  }
  return items;
}
