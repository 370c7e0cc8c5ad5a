import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, stringify, type YAMLError } from 'yaml';

import type { FieldIssue } from './issues.ts';
import { formatPath } from './issues.ts';

// Reading and writing manifests the way `kubectl apply -f` takes them: any number of documents
// separated by `---`, empty documents skipped, and `kind: List` wrappers unwrapped.

export interface YamlDocument {
  /** 0-based position of the document in the stream (empty documents count, so this matches what an editor shows). */
  index: number;
  /** For an entry unwrapped from a `kind: List` document, its 0-based position in `items`. */
  item?: number;
  /** The parsed value, when the document is well-formed. */
  doc?: unknown;
  /** Why the document could not be read. */
  error?: FieldIssue;
}

/** Finds the path of the mapping key or item that starts at `offset`, for pointing at duplicate keys. */
function pathAt(node: unknown, offset: number, path: PropertyKey[] = []): PropertyKey[] | null {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const keyRange = (pair.key as { range?: [number, number, number] } | null)?.range;
      if (keyRange && keyRange[0] === offset) return [...path, key];
      const found = pathAt(pair.value, offset, [...path, key]);
      if (found) return found;
    }
  } else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) {
      const found = pathAt(node.items[i], offset, [...path, i]);
      if (found) return found;
    }
  }
  return null;
}

function yamlIssue(err: YAMLError, contents: unknown, text: string, lineCounter: LineCounter): FieldIssue {
  const start = err.pos[0];
  const { line, col } = err.linePos?.[0] ?? lineCounter.linePos(start);
  if (err.code === 'DUPLICATE_KEY') {
    const found = pathAt(contents, start);
    const key = found ? String(found[found.length - 1]) : text.slice(err.pos[0], err.pos[1]).trim();
    // The whole document is rejected, so point at the key rather than at a half-read object.
    return {
      path: found ? formatPath(found) : '',
      rule: 'duplicate_key',
      message: `Duplicate key ${JSON.stringify(key)} at line ${line}, column ${col}: a key may appear only once in a mapping.`,
    };
  }
  const reason = err.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? err.message;
  return { path: '', rule: 'yaml_syntax', message: `YAML syntax error at line ${line}, column ${col}: ${reason}.`.replace(/\.\.$/, '.') };
}

function isListDocument(v: unknown): v is { kind: string; items: unknown } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const kind = (v as { kind?: unknown }).kind;
  return typeof kind === 'string' && (kind === 'List' || (kind.endsWith('List') && 'items' in v));
}

/**
 * Splits a YAML stream into documents. Each returned entry carries either the parsed value
 * (`doc`) or the reason it could not be read (`error`, with line and column in the message).
 */
export function parseYamlDocuments(text: string): YamlDocument[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { uniqueKeys: true, merge: true, prettyErrors: true, lineCounter });
  const out: YamlDocument[] = [];

  docs.forEach((document, index) => {
    const err = document.errors[0];
    if (err) {
      out.push({ index, error: yamlIssue(err, document.contents, text, lineCounter) });
      return;
    }
    if (document.contents === null) return; // empty document: only `---`, comments or whitespace

    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: 100 });
    } catch (e) {
      out.push({ index, error: { path: '', rule: 'yaml_syntax', message: `YAML document ${index + 1} could not be read: ${(e as Error).message}` } });
      return;
    }
    if (value === null || value === undefined) return; // an explicit `~` is as empty as nothing

    if (isListDocument(value)) {
      if (!Array.isArray(value.items)) {
        out.push({ index, error: { path: 'items', rule: 'type', message: `items must be a list in a ${value.kind} document.` } });
        return;
      }
      value.items.forEach((item, i) => out.push({ index, item: i, doc: item }));
      return;
    }
    out.push({ index, doc: value });
  });
  return out;
}

const TOP_LEVEL_ORDER = ['apiVersion', 'kind', 'metadata', 'spec'];
const METADATA_ORDER = ['name', 'namespace'];

function ordered(obj: Record<string, unknown>, first: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of first) if (k in obj && obj[k] !== undefined) out[k] = obj[k];
  for (const [k, v] of Object.entries(obj)) if (!(k in out) && v !== undefined) out[k] = v;
  return out;
}

/**
 * Writes resources as one multi-document YAML stream with a stable layout: apiVersion, kind,
 * metadata (name and namespace first) and spec lead, and everything else keeps its order.
 */
export function toYaml(resources: readonly object[]): string {
  return resources
    .map((r) => {
      const top = ordered(r as Record<string, unknown>, TOP_LEVEL_ORDER);
      const meta = top.metadata;
      if (typeof meta === 'object' && meta !== null && !Array.isArray(meta)) {
        top.metadata = ordered(meta as Record<string, unknown>, METADATA_ORDER);
      }
      // No anchors/aliases: a reader should see every value where it applies.
      return stringify(top, { lineWidth: 0, aliasDuplicateObjects: false });
    })
    .join('---\n');
}
