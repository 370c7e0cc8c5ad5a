import { z } from 'zod';
import {
  dns1123Label,
  dns1123Subdomain,
  fromZodIssues,
  isAcceptedApiVersion,
  isKind,
  parseResource,
  parseYamlDocuments,
  type ApiFieldIssue,
  type FieldIssue,
} from '@tern/shared';
import type { ApplyItem, ResourceRef } from '../store/resources.ts';
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

type Doc = { index: number; doc?: unknown; error?: FieldIssue };

interface Parsed<T> {
  kind: string;
  name: string;
  namespace?: string | undefined;
  value: T;
}

/** Shared by apply and delete: collect documents, parse each, resolve namespaces, reject duplicates. */
function eachDocument<T>(input: DocumentsInput, parse: (doc: unknown) => { ok: true; parsed: Parsed<T> } | { ok: false; issues: FieldIssue[] }): Array<Parsed<T> & { namespace: string }> {
  const docs: Doc[] = [];
  if (input.yaml !== undefined) docs.push(...parseYamlDocuments(input.yaml));
  const base = docs.length;
  if (input.resources) input.resources.forEach((doc, i) => docs.push({ index: base + i, doc }));
  if (docs.length === 0) {
    throw new ValidationError('no resources given', [{ path: input.yaml !== undefined ? 'yaml' : 'resources', rule: 'required', message: 'send at least one resource' }]);
  }
  const many = docs.length > 1;
  const issues: ApiFieldIssue[] = [];
  const out: Array<Parsed<T> & { namespace: string }> = [];
  const seen = new Map<string, number>();
  for (const d of docs) {
    const where = many ? { document: d.index } : {};
    if (d.error) {
      issues.push({ ...where, ...d.error });
      continue;
    }
    const r = parse(d.doc);
    if (!r.ok) {
      const meta = (d.doc as { kind?: unknown; metadata?: { name?: unknown } } | null) ?? {};
      const ident = {
        ...(typeof meta.kind === 'string' ? { kind: meta.kind } : {}),
        ...(typeof meta.metadata?.name === 'string' ? { name: meta.metadata.name } : {}),
      };
      for (const issue of r.issues) issues.push({ ...where, ...ident, ...issue });
      continue;
    }
    const p = r.parsed;
    if (input.namespace && p.namespace && p.namespace !== input.namespace) {
      issues.push({ ...where, kind: p.kind, name: p.name, path: 'metadata.namespace', rule: 'namespace_mismatch', message: `metadata.namespace is "${p.namespace}" but the request is for namespace "${input.namespace}"` });
      continue;
    }
    const namespace = p.namespace ?? input.namespace ?? 'default';
    const key = `${p.kind}/${namespace}/${p.name}`;
    if (seen.has(key)) {
      issues.push({ ...where, kind: p.kind, name: p.name, path: 'metadata.name', rule: 'duplicate', message: `${key} appears twice in one request (documents ${seen.get(key)} and ${d.index})` });
      continue;
    }
    seen.set(key, d.index);
    out.push({ ...p, namespace });
  }
  if (issues.length) {
    throw new ValidationError(`${issues.length} problem${issues.length > 1 ? 's' : ''} in the input; first: ${issues[0]!.message}`, issues);
  }
  return out;
}

type Meta = { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string };

/** Documents to create or update: each validated in full against its kind's schema. */
export function parseDocuments(input: DocumentsInput): ApplyItem[] {
  const parsed = eachDocument(input, (doc) => {
    const r = parseResource(doc);
    if (!r.ok) return r;
    const res = r.resource as unknown as { apiVersion: string; kind: string; metadata: Meta; spec?: Record<string, unknown> };
    return { ok: true, parsed: { kind: res.kind, name: res.metadata.name, namespace: res.metadata.namespace, value: res } };
  });
  return parsed.map(({ value: res, namespace }) => {
    const object: PolicyObject = {
      apiVersion: res.apiVersion,
      kind: res.kind,
      metadata: {
        name: res.metadata.name,
        namespace,
        ...(res.metadata.labels ? { labels: res.metadata.labels } : {}),
        ...(res.metadata.annotations ? { annotations: res.metadata.annotations } : {}),
      },
      spec: res.spec ?? {},
    };
    return { object, resourceVersion: res.metadata.resourceVersion };
  });
}

// Deleting needs only to know which resource is meant, as with `kubectl delete -f`: the spec of a
// file written for an older version of a resource must not stop its deletion.
const identitySchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.looseObject({ name: dns1123Subdomain(), namespace: dns1123Label().optional(), resourceVersion: z.string().regex(/^\d+$/).optional() }),
});

/** Documents naming resources to delete. */
export function parseRefs(input: DocumentsInput): ResourceRef[] {
  return eachDocument(input, (doc) => {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      return { ok: false, issues: [{ path: '', rule: 'not_an_object', message: 'The document must be a mapping with apiVersion, kind and metadata.' }] };
    }
    const { kind, apiVersion } = doc as { kind?: unknown; apiVersion?: unknown };
    if (!isKind(kind)) return { ok: false, issues: [{ path: 'kind', rule: 'unknown_kind', message: `kind ${JSON.stringify(kind)} is not one Tern manages.` }] };
    if (!isAcceptedApiVersion(kind, apiVersion)) {
      return { ok: false, issues: [{ path: 'apiVersion', rule: 'unsupported_api_version', message: `apiVersion ${JSON.stringify(apiVersion)} is not accepted for ${kind}.` }] };
    }
    const r = identitySchema.safeParse(doc);
    if (!r.success) return { ok: false, issues: fromZodIssues(r.error.issues) };
    const m = r.data.metadata;
    return { ok: true, parsed: { kind, name: m.name, namespace: m.namespace, value: m.resourceVersion } };
  }).map((p) => ({ kind: p.kind, namespace: p.namespace, name: p.name, resourceVersion: p.value }));
}
