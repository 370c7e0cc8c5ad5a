import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from 'yaml';
import type { FieldIssue } from './errors.ts';

// The YAML editor's logic, pure so it is tested without a browser: syntax errors with their line
// and column, the API's field paths (`spec.http[0].route[1].weight`) mapped back to the line that
// holds them, and the API's answers (issues, diagnostics, conflicts) turned into one problem list.

export interface Problem {
  source: 'syntax' | 'schema' | 'analysis' | 'conflict' | 'api';
  level: 'error' | 'warning' | 'info';
  message: string;
  /** The API's field path, "" for the document itself. */
  path?: string;
  rule?: string;
  /** 1-based, when the problem could be placed in the text. */
  line?: number;
  col?: number;
  /** "VirtualService default/reviews", when the problem names a resource. */
  resource?: string;
}

/** A field issue as the API reports it (lib/errors.ts). */
export type ApiIssue = FieldIssue;

export interface ApiDiagnostic {
  code: string;
  level: 'error' | 'warning' | 'info';
  kind: string;
  namespace: string;
  resourceName: string;
  path: string;
  message: string;
}

// The same options the control plane parses with (packages/shared/src/istio/yaml.ts), so a text
// the editor accepts is one the API accepts.
const PARSE_OPTIONS = { uniqueKeys: true, merge: true, prettyErrors: false } as const;

function parse(text: string) {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { ...PARSE_OPTIONS, lineCounter });
  // parseAllDocuments returns an EmptyStream (an array with `empty: true`) for blank input.
  return { docs: Array.isArray(docs) ? (docs as Document.Parsed[]) : [docs as Document.Parsed], lineCounter };
}

/** YAML syntax errors with 1-based line and column, in text order. */
export function yamlSyntaxErrors(text: string): Problem[] {
  const { docs, lineCounter } = parse(text);
  const out: Problem[] = [];
  for (const d of docs) {
    for (const e of d.errors) {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      // The library's message may carry its own "at line…" suffix and a code excerpt: keep the sentence.
      const first = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '').trim();
      out.push({ source: 'syntax', level: 'error', line, col, message: `YAML syntax error at line ${line}, column ${col}: ${first}` });
    }
  }
  return out;
}

/** Splits an API field path into keys and indexes: `a.b[0]["x.y"]` → ['a', 'b', 0, 'x.y']. */
export function parsePath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([^.[\]]+)/g;
  for (let m = re.exec(path); m; m = re.exec(path)) {
    if (m[1] !== undefined) out.push(Number(m[1]));
    else if (m[2] !== undefined) out.push(JSON.parse(m[2]) as string);
    else if (m[3] !== undefined) out.push(m[3]);
  }
  return out;
}

/** The non-empty documents of a text, in order, with their index among all documents (the API's `document`). */
function contentDocs(docs: Document.Parsed[]): { index: number; doc: Document.Parsed }[] {
  return docs.map((doc, index) => ({ index, doc })).filter((d) => !isEmptyDoc(d.doc));
}

// `---` alone, comments or `~`: the API skips these documents (but counts them in its indexes).
function isEmptyDoc(doc: Document.Parsed): boolean {
  return doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null);
}

/**
 * Where a field path points in the text: the line of its key (`weight: abc` for
 * `spec.http[0].route[0].weight`), or of the list item for an index. A path that goes further
 * than the text (a missing field) stops at the deepest part that exists. `document` is the API's
 * document index; without it, the first non-empty document.
 */
export function locatePath(text: string, path: string, document?: number): { line: number; col: number } | undefined {
  const { docs, lineCounter } = parse(text);
  const target = document === undefined ? contentDocs(docs)[0]?.doc : docs[document];
  if (!target || isEmptyDoc(target)) return undefined;
  let node: unknown = target.contents;
  let at: [number, number, number] | null | undefined = (target.contents as YamlNode).range;
  for (const key of parsePath(path)) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(key));
      if (!pair) break;
      at = (isScalar(pair.key) ? pair.key.range : undefined) ?? (pair.value as YamlNode | null)?.range ?? at;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as YamlNode | undefined;
      if (!item) break;
      at = item.range ?? at;
      node = item;
    } else break;
  }
  if (!at) return undefined;
  return lineCounter.linePos(at[0]);
}

export interface DocumentRef {
  index: number;
  kind?: string;
  namespace?: string;
  name?: string;
}

/** kind/namespace/name of each non-empty document (to place the analyzer's findings, which name resources). */
export function documentRefs(text: string): DocumentRef[] {
  const { docs } = parse(text);
  return contentDocs(docs).map(({ index, doc }) => {
    const js = (doc.errors.length ? undefined : (doc.toJS() as unknown)) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | undefined;
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    return { index, kind: str(js?.kind), namespace: str(js?.metadata?.namespace), name: str(js?.metadata?.name) };
  });
}

/** The API addresses the edited object as `resource` in `resources.replace`: paths inside it lose that prefix. */
function stripInputPrefix(path: string): string {
  return path.replace(/^(resource|resources\[\d+\])\.?/, '');
}

function placed(text: string, p: Problem, document?: number): Problem {
  if (p.path === undefined || p.line !== undefined) return p;
  // The document itself ("") is placed at its first line; a field at its key.
  const pos = locatePath(text, p.path, document);
  return pos ? { ...p, ...pos } : p;
}

/**
 * The API's answer to a (dry-run) write as problems: a conflict (someone else changed the
 * resource), field issues from schema validation or from analysis errors the change would
 * introduce, or just the message.
 */
export function problemsFromApiError(text: string, err: { message: string; code?: string | undefined; issues: ApiIssue[] }, defaultNamespace?: string): Problem[] {
  if (err.code === 'CONFLICT') return [{ source: 'conflict', level: 'error', message: err.message }];
  const refs = documentRefs(text);
  const issues = err.issues.filter((i) => !(i.rule === 'yaml_syntax'));
  if (issues.length === 0) return [{ source: err.code === 'NOT_FOUND' ? 'conflict' : 'api', level: 'error', message: err.message }];
  return issues.map((i) => {
    // Analysis issues carry the analyzer's code as rule (TRN…) and name the resource as "ns/name".
    const analysis = /^TRN\d+/.test(i.rule);
    let document = i.document;
    if (document === undefined && i.kind && i.name && analysis) {
      const [ns, name] = i.name.includes('/') ? (i.name.split('/') as [string, string]) : [defaultNamespace, i.name];
      document = refs.find((r) => r.kind === i.kind && r.name === name && (r.namespace ?? defaultNamespace) === ns)?.index;
      // An error the change causes in another resource: not in this text.
      if (document === undefined && refs.length > 0) {
        return { source: 'analysis' as const, level: 'error' as const, path: i.path, rule: i.rule, message: i.message, resource: `${i.kind} ${i.name}` };
      }
    }
    const p: Problem = {
      source: analysis ? 'analysis' : 'schema',
      level: 'error',
      path: stripInputPrefix(i.path),
      rule: i.rule,
      message: i.message,
      ...(i.kind && i.name ? { resource: `${i.kind} ${i.name}` } : {}),
    };
    return placed(text, p, document);
  });
}

/** The analyzer's findings for the resources in this text (others are about the rest of the mesh). */
export function problemsFromDiagnostics(text: string, diagnostics: ApiDiagnostic[], defaultNamespace?: string): Problem[] {
  const refs = documentRefs(text);
  const out: Problem[] = [];
  for (const d of diagnostics) {
    const ref = refs.find((r) => r.kind === d.kind && r.name === d.resourceName && (r.namespace ?? defaultNamespace) === d.namespace);
    if (!ref) continue;
    out.push(placed(text, { source: 'analysis', level: d.level, path: d.path, rule: d.code, message: d.message, resource: `${d.kind} ${d.namespace}/${d.resourceName}` }, refs.length > 1 ? ref.index : undefined));
  }
  return out;
}

/** Errors block saving; warnings and infos do not. */
export function hasBlockingProblem(problems: Problem[]): boolean {
  return problems.some((p) => p.level === 'error');
}

/** One line for a problem: "line 12, column 7 · spec.http[0].route[0].weight: must be a number (type)". */
export function formatProblem(p: Problem): string {
  const where = p.line !== undefined && p.source !== 'syntax' ? `line ${p.line}${p.col !== undefined ? `, column ${p.col}` : ''} · ` : '';
  const path = p.path ? `${p.path}: ` : '';
  // The API's messages usually start with the path already; do not say it twice.
  const message = p.path && p.message.startsWith(p.path) ? p.message.slice(p.path.length).replace(/^[\s:]+/, '') : p.message;
  const rule = p.rule ? ` (${p.rule})` : '';
  return `${where}${path}${message}${rule}`;
}

/** Problems in text order (placed ones by line), unplaced ones last; errors before warnings on a line. */
export function sortProblems(problems: Problem[]): Problem[] {
  const rank = { error: 0, warning: 1, info: 2 } as const;
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || rank[a.p.level] - rank[b.p.level] || a.i - b.i)
    .map((x) => x.p);
}

export type ParsedSingle =
  | { ok: true; object: Record<string, unknown> }
  | { ok: false; problems: Problem[] };

/**
 * The text as one resource object, for `resources.replace`: exactly one document, a mapping.
 * (The API checks the rest: kind, name, schema.)
 */
export function parseSingleDocument(text: string): ParsedSingle {
  const syntax = yamlSyntaxErrors(text);
  if (syntax.length) return { ok: false, problems: syntax };
  const { docs } = parse(text);
  const content = contentDocs(docs);
  if (content.length !== 1) {
    return { ok: false, problems: [{ source: 'schema', level: 'error', path: '', rule: 'single_document', message: content.length === 0 ? 'The editor is empty: write the resource.' : `This editor holds one resource; the text has ${content.length} documents.` }] };
  }
  const value = content[0]!.doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, problems: [{ source: 'schema', level: 'error', path: '', rule: 'not_an_object', message: 'The document must be a mapping with apiVersion, kind, metadata and spec.', line: 1, col: 1 }] };
  }
  return { ok: true, object: value as Record<string, unknown> };
}

/**
 * The edited object with the resourceVersion it was loaded at, so the API refuses the write (409)
 * if someone else changed the resource meanwhile. The version the editor started from wins over
 * any the text carries: the text is what the user typed, the version is what they saw.
 */
export function withResourceVersion(object: Record<string, unknown>, resourceVersion: string): Record<string, unknown> {
  const metadata = (object.metadata && typeof object.metadata === 'object' && !Array.isArray(object.metadata) ? object.metadata : {}) as Record<string, unknown>;
  return { ...object, metadata: { ...metadata, resourceVersion } };
}

/** Line numbers of the problems placed in the text, for the editor's gutter. */
export function problemLines(problems: Problem[]): Map<number, 'error' | 'warning' | 'info'> {
  const out = new Map<number, 'error' | 'warning' | 'info'>();
  const rank = { error: 0, warning: 1, info: 2 } as const;
  for (const p of problems) {
    if (p.line === undefined) continue;
    const cur = out.get(p.line);
    if (!cur || rank[p.level] < rank[cur]) out.set(p.line, p.level);
  }
  return out;
}
