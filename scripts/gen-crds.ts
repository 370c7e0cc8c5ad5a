// Generates deploy/kubernetes/base/crds/ from the zod schemas in packages/shared/src/istio, so the
// cluster validates custom resources with the same shapes the control plane accepts.
//   node --import tsx scripts/gen-crds.ts          write the files
//   node --import tsx scripts/gen-crds.ts --check  exit 1 when the committed files are stale
//
// Tern's CRDs live in Tern's own API groups with Istio's kinds, field names and versions, so Istio
// YAML ports by changing the group of its apiVersion, and both meshes' CRDs can be installed in
// one cluster without clashing (docs/kubernetes.md).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { z } from 'zod';
import { KIND_API_VERSIONS, KIND_NAMES, KINDS, RESOURCE_SCHEMAS, type Kind } from '../packages/shared/src/istio/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CRD_DIR = path.join(ROOT, 'deploy/kubernetes/base/crds');

/** Istio's API group of each kind -> Tern's. */
export const TERN_API_GROUPS = {
  'networking.istio.io': 'networking.tern.dev',
  'security.istio.io': 'security.tern.dev',
} as const;

/** Tern's group of a kind, e.g. VirtualService -> networking.tern.dev. */
export function ternGroup(kind: Kind): string {
  const istio = KIND_API_VERSIONS[kind][0].split('/')[0] as keyof typeof TERN_API_GROUPS;
  return TERN_API_GROUPS[istio];
}

/**
 * Short names: Istio's own (vs, dr, …) with a `t` in front. With Istio installed too, a bare `vs`
 * would be ambiguous and kubectl would pick one group silently.
 */
export function ternShortNames(kind: Kind): string[] {
  return KIND_NAMES[kind].shortNames.map((s) => `t${s}`);
}

type JsonSchema = Record<string, unknown>;

export class CrdSchemaError extends Error {
  constructor(
    readonly path: string,
    readonly rule: string,
    message: string,
  ) {
    super(`${path || '(root)'}: ${message} [${rule}]`);
  }
}

// Keywords a Kubernetes structural schema accepts with the same meaning as JSON Schema. Anything
// else from zod is an error here, so a new zod construct fails the generator instead of silently
// producing a schema the API server rejects or reads differently.
const PASSTHROUGH = new Set(['type', 'enum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'minimum', 'maximum', 'pattern', 'description', 'format', 'required', 'uniqueItems', 'multipleOf', 'minProperties', 'maxProperties']);
// Keywords that carry no validation Kubernetes could use (or that it forbids): dropped.
const DROPPED = new Set(['$schema', 'default', 'propertyNames', 'examples', 'title', 'readOnly', 'writeOnly']);

const isNull = (s: unknown) => typeof s === 'object' && s !== null && (s as JsonSchema).type === 'null';

/**
 * One JSON Schema node (zod 4's draft 2020-12 output) -> a Kubernetes structural schema node: every
 * node typed (or int-or-string / preserve-unknown-fields), no $ref, no `additionalProperties` next
 * to `properties` (closed objects are Kubernetes' default: unknown fields are pruned), nullable
 * instead of `| null`, OpenAPI 3.0's boolean exclusive bounds.
 */
export function toStructural(node: JsonSchema, at = ''): JsonSchema {
  if ('$ref' in node || '$defs' in node || 'definitions' in node) throw new CrdSchemaError(at, 'no_ref', 'references are not allowed in a structural schema; inline the schema (no z.lazy / reused registries)');
  const keys = Object.keys(node).filter((k) => !DROPPED.has(k));
  if (keys.length === 0) return { 'x-kubernetes-preserve-unknown-fields': true };

  for (const junctor of ['anyOf', 'oneOf'] as const) {
    const variants = node[junctor] as JsonSchema[] | undefined;
    if (!variants) continue;
    const rest = Object.fromEntries(Object.entries(node).filter(([k]) => k !== junctor && !DROPPED.has(k)));
    const nonNull = variants.filter((v) => !isNull(v));
    const nullable = nonNull.length < variants.length;
    let merged: JsonSchema;
    if (nonNull.length === 1) merged = toStructural({ ...nonNull[0], ...rest }, at);
    else if (nonNull.every((v) => v.type === 'object')) merged = toStructural({ ...mergeObjects(nonNull, at), ...rest }, at);
    else if (nonNull.every((v) => v.type === 'string' || v.type === 'number' || v.type === 'integer') && nonNull.some((v) => v.type === 'string')) {
      merged = { 'x-kubernetes-int-or-string': true };
    } else {
      throw new CrdSchemaError(at, 'union', `a union of ${nonNull.map((v) => String(v.type)).join(', ')} has no structural equivalent`);
    }
    return nullable ? { ...merged, nullable: true } : merged;
  }
  if ('allOf' in node || 'not' in node) throw new CrdSchemaError(at, 'junctor', 'allOf/not are not generated; express the rule in the types');

  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node)) {
    if (DROPPED.has(k)) continue;
    if (k === 'properties') {
      out.properties = Object.fromEntries(Object.entries(v as Record<string, JsonSchema>).map(([name, s]) => [name, toStructural(s, `${at}.${name}`)]));
    } else if (k === 'items') {
      if (Array.isArray(v)) throw new CrdSchemaError(at, 'tuple', 'tuple arrays are not allowed');
      out.items = toStructural(v as JsonSchema, `${at}[]`);
    } else if (k === 'additionalProperties') {
      if (v === false || v === true) continue;
      if (node.properties) throw new CrdSchemaError(at, 'properties_and_additional', 'properties and additionalProperties cannot be combined');
      out.additionalProperties = toStructural(v as JsonSchema, `${at}.*`);
    } else if (k === 'const') {
      out.enum = [v];
    } else if (k === 'exclusiveMinimum' || k === 'exclusiveMaximum') {
      out[k === 'exclusiveMinimum' ? 'minimum' : 'maximum'] = v;
      out[k] = true;
    } else if (PASSTHROUGH.has(k)) {
      out[k] = v;
    } else {
      throw new CrdSchemaError(at, 'unsupported_keyword', `keyword ${k} has no Kubernetes equivalent here`);
    }
  }
  if (out.type === 'null') throw new CrdSchemaError(at, 'null_type', 'a field that can only be null has no structural type');
  if (Array.isArray(out.type)) throw new CrdSchemaError(at, 'type_list', 'a list of types has no structural equivalent');
  if (out.type === undefined) throw new CrdSchemaError(at, 'untyped', `every node needs a type (keys: ${Object.keys(node).join(', ')})`);
  if (out.type === 'object' && !out.properties && !out.additionalProperties) out['x-kubernetes-preserve-unknown-fields'] = true;
  return out;
}

// Alternative object shapes (e.g. Istio's oneof fields) -> one object with every property; a property
// appearing in several variants must have the same schema in each.
function mergeObjects(variants: JsonSchema[], at: string): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const v of variants) {
    for (const [name, s] of Object.entries((v.properties ?? {}) as Record<string, JsonSchema>)) {
      const seen = properties[name];
      if (seen && JSON.stringify(seen) !== JSON.stringify(s)) throw new CrdSchemaError(`${at}.${name}`, 'conflicting_variants', 'differs between the variants of a union');
      properties[name] = s;
    }
  }
  return { type: 'object', properties };
}

function specSchema(kind: Kind): { schema: JsonSchema; required: boolean } {
  const spec = RESOURCE_SCHEMAS[kind].shape.spec as z.ZodType;
  const json = z.toJSONSchema(spec, { io: 'input', unrepresentable: 'throw' }) as JsonSchema;
  return { schema: toStructural(json, 'spec'), required: !spec.safeParse(undefined).success };
}

/** The CustomResourceDefinition of one kind, as an object. */
export function crdFor(kind: Kind): Record<string, unknown> {
  const group = ternGroup(kind);
  const names = KIND_NAMES[kind];
  const { schema, required } = specSchema(kind);
  const openAPIV3Schema: JsonSchema = {
    type: 'object',
    description: `Istio's ${kind} (${KIND_API_VERSIONS[kind][0].split('/')[0]}) in Tern's API group; see docs/resources.md.`,
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: schema,
      // Written by the control plane only (validation messages, observed generation).
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
    ...(required ? { required: ['spec'] } : {}),
  };
  // Istio's versions of the kind, all served with one schema and stored as the first (v1), as
  // Istio's CRDs do: no conversion webhook is needed.
  const versions = KIND_API_VERSIONS[kind].map((v, i) => ({
    name: v.split('/')[1]!,
    served: true,
    storage: i === 0,
    subresources: { status: {} },
    additionalPrinterColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
    schema: { openAPIV3Schema },
  }));
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${names.plural}.${group}`,
      labels: { 'app.kubernetes.io/part-of': 'tern', 'app.kubernetes.io/component': 'crd' },
    },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural: names.plural, singular: names.singular, shortNames: ternShortNames(kind), categories: ['tern', group.replace(/\./g, '-')] },
      versions,
    },
  };
}

const HEADER = '# Generated by scripts/gen-crds.ts from packages/shared/src/istio (zod). Do not edit: run\n# `node --import tsx scripts/gen-crds.ts` after changing a schema.\n';

const yaml = (doc: unknown) => YAML.stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });

/** File name (relative to CRD_DIR) -> content, for every generated file. */
export function renderCrdFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const names: string[] = [];
  for (const kind of KINDS) {
    const crd = crdFor(kind);
    const file = `${(crd.metadata as { name: string }).name}.yaml`;
    names.push(file);
    files.set(file, HEADER + yaml(crd));
  }
  files.set('kustomization.yaml', HEADER + yaml({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: names }));
  return files;
}

/** Files under CRD_DIR that differ from what the generator writes (missing, stale or extra). */
export function staleCrdFiles(dir = CRD_DIR): string[] {
  const want = renderCrdFiles();
  const have = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  const stale = [...want].filter(([f, content]) => !have.includes(f) || fs.readFileSync(path.join(dir, f), 'utf8') !== content).map(([f]) => f);
  return [...stale, ...have.filter((f) => !want.has(f))].sort();
}

function main() {
  if (process.argv.includes('--check')) {
    const stale = staleCrdFiles();
    if (stale.length) {
      console.error(`stale CRDs in ${path.relative(ROOT, CRD_DIR)}: ${stale.join(', ')}; run node --import tsx scripts/gen-crds.ts`);
      process.exit(1);
    }
    console.log('CRDs up to date');
    return;
  }
  fs.mkdirSync(CRD_DIR, { recursive: true });
  const want = renderCrdFiles();
  for (const f of fs.readdirSync(CRD_DIR)) if (!want.has(f)) fs.rmSync(path.join(CRD_DIR, f));
  for (const [f, content] of want) fs.writeFileSync(path.join(CRD_DIR, f), content);
  console.log(`wrote ${want.size} files to ${path.relative(ROOT, CRD_DIR)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
