import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  documentRefs,
  formatProblem,
  hasBlockingProblem,
  locatePath,
  parsePath,
  parseSingleDocument,
  problemLines,
  problemsFromApiError,
  problemsFromDiagnostics,
  sortProblems,
  withResourceVersion,
  yamlSyntaxErrors,
} from '../src/lib/yaml-editor.ts';

const VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: abc
    - destination:
        host: reviews
        subset: v2
      weight: 20
      bogus: 1
`;

describe('parsePath', () => {
  test('keys, indexes and quoted keys', () => {
    assert.deepEqual(parsePath('spec.http[0].route[1].weight'), ['spec', 'http', 0, 'route', 1, 'weight']);
    assert.deepEqual(parsePath('metadata.labels["app.kubernetes.io/name"]'), ['metadata', 'labels', 'app.kubernetes.io/name']);
    assert.deepEqual(parsePath(''), []);
  });
});

describe('yamlSyntaxErrors', () => {
  test('valid YAML has none, blank text has none', () => {
    assert.deepEqual(yamlSyntaxErrors(VS), []);
    assert.deepEqual(yamlSyntaxErrors(''), []);
  });
  test('an unclosed flow sequence: line and column', () => {
    const [e, ...rest] = yamlSyntaxErrors('kind: VirtualService\nspec:\n  hosts: [a, b\nx: 1\n');
    assert.ok(e);
    assert.equal(e.source, 'syntax');
    assert.equal(e.level, 'error');
    assert.equal(typeof e.line, 'number');
    assert.match(e.message, new RegExp(`^YAML syntax error at line ${e.line}, column ${e.col}: `));
    assert.ok(rest.every((r) => r.source === 'syntax'));
  });
  test('a duplicate key is an error at the second key', () => {
    const [e] = yamlSyntaxErrors('a: 1\nb: 2\na: 3\n');
    assert.equal(e?.line, 3);
    assert.equal(e?.col, 1);
    assert.match(e?.message ?? '', /unique/);
  });
  test('errors in a later document keep their absolute line', () => {
    const [e] = yamlSyntaxErrors('a: 1\n---\nb: "open\n');
    assert.ok((e?.line ?? 0) >= 3, JSON.stringify(e));
  });
});

describe('locatePath', () => {
  test('a field: the line of its key', () => {
    assert.deepEqual(locatePath(VS, 'spec.http[0].route[0].weight'), { line: 14, col: 7 });
    assert.deepEqual(locatePath(VS, 'spec.http[0].route[1].bogus'), { line: 19, col: 7 });
    assert.deepEqual(locatePath(VS, 'metadata.name'), { line: 4, col: 3 });
  });
  test('a list item: the line of the item', () => {
    assert.equal(locatePath(VS, 'spec.hosts[0]')?.line, 8);
    assert.equal(locatePath(VS, 'spec.http[0].route[1]')?.line, 15);
  });
  test('a path beyond the text stops at the deepest part that exists', () => {
    assert.equal(locatePath(VS, 'spec.http[0].route[1].destination.port.number')?.line, 15);
    assert.equal(locatePath(VS, 'spec.tcp[0]')?.line, 6);
    assert.equal(locatePath(VS, 'spec.http[7]')?.line, 9);
  });
  test('the document itself is its first line', () => {
    assert.equal(locatePath(VS, '')?.line, 1);
  });
  test('quoted keys and flow collections', () => {
    const text = 'metadata:\n  labels: {"app.kubernetes.io/name": x, b: y}\nspec: {hosts: [a, b]}\n';
    assert.equal(locatePath(text, 'metadata.labels["app.kubernetes.io/name"]')?.line, 2);
    assert.deepEqual(locatePath(text, 'spec.hosts[1]'), { line: 3, col: 19 });
  });
  test('a document index picks the document (the API counts empty ones too)', () => {
    const text = '---\na: 1\n---\n---\nkind: X\nspec:\n  b: 2\n';
    assert.equal(locatePath(text, 'spec.b', 2)?.line, 7);
    assert.equal(locatePath(text, 'a')?.line, 2, 'without an index: the first non-empty document');
    assert.equal(locatePath(text, 'a', 1), undefined, 'an empty document has no place');
    assert.equal(locatePath(text, 'a', 9), undefined);
  });
  test('invalid YAML still places what it can', () => {
    assert.equal(locatePath('a:\n  b: 1\n  b: 2\n', 'a.b')?.line, 2);
  });
});

describe('problemsFromApiError', () => {
  test('schema issues get their line; the input prefix of resources.replace is dropped', () => {
    const problems = problemsFromApiError(VS, {
      message: '2 problems',
      code: 'BAD_REQUEST',
      issues: [
        { kind: 'VirtualService', name: 'reviews', path: 'spec.http[0].route[0].weight', rule: 'type', message: 'spec.http[0].route[0].weight must be a number, not the string "abc".' },
        { path: 'resource.spec.http[0].route[1].bogus', rule: 'unknown_field', message: 'spec.http[0].route[1].bogus is not a field of spec.http[0].route[1].' },
      ],
    });
    assert.equal(problems.length, 2);
    assert.deepEqual(
      problems.map((p) => [p.source, p.path, p.line]),
      [
        ['schema', 'spec.http[0].route[0].weight', 14],
        ['schema', 'spec.http[0].route[1].bogus', 19],
      ],
    );
    assert.ok(hasBlockingProblem(problems));
    assert.equal(formatProblem(problems[0]!), 'line 14, column 7 · spec.http[0].route[0].weight: must be a number, not the string "abc". (type)');
  });
  test('a conflict is one conflict problem, with the API message', () => {
    const [p, ...rest] = problemsFromApiError(VS, { message: 'VirtualService default/reviews was modified: your resourceVersion is 3, the stored one is 4', code: 'CONFLICT', issues: [] });
    assert.equal(rest.length, 0);
    assert.equal(p?.source, 'conflict');
    assert.match(p?.message ?? '', /was modified/);
  });
  test('an error without issues keeps the message', () => {
    const [p] = problemsFromApiError(VS, { message: 'this needs the editor role; you are viewer', code: 'FORBIDDEN', issues: [] });
    assert.deepEqual(p, { source: 'api', level: 'error', message: 'this needs the editor role; you are viewer' });
  });
  test('analysis errors are placed in the document they name, or listed against another resource', () => {
    const two = `${VS}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n`;
    const problems = problemsFromApiError(two, {
      message: 'the change introduces 2 analysis errors',
      code: 'BAD_REQUEST',
      issues: [
        { kind: 'DestinationRule', name: 'default/reviews', path: 'spec.subsets[0]', rule: 'TRN0102', message: 'subset has no workloads' },
        { kind: 'VirtualService', name: 'default/other', path: 'spec.http[0]', rule: 'TRN0101', message: 'elsewhere' },
      ],
    }, 'default');
    assert.equal(problems[0]?.source, 'analysis');
    assert.equal(problems[0]?.line, 28, 'the DestinationRule is the second document; the namespace defaults');
    assert.equal(problems[1]?.line, undefined);
    assert.equal(problems[1]?.resource, 'VirtualService default/other');
  });
});

describe('problemsFromDiagnostics', () => {
  test('only findings about resources in the text, placed at their path', () => {
    const diags = [
      { code: 'TRN0202', level: 'warning' as const, kind: 'VirtualService', namespace: 'default', resourceName: 'reviews', path: 'spec.http[0].route[1].destination', message: 'no workload' },
      { code: 'TRN0001', level: 'error' as const, kind: 'VirtualService', namespace: 'default', resourceName: 'ratings', path: 'spec', message: 'not ours' },
    ];
    const problems = problemsFromDiagnostics(VS, diags);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.line, 15);
    assert.equal(problems[0]?.level, 'warning');
    assert.equal(hasBlockingProblem(problems), false, 'warnings do not block');
    assert.deepEqual([...problemLines(problems)], [[15, 'warning']]);
  });
});

describe('parseSingleDocument and withResourceVersion', () => {
  test('one mapping', () => {
    const r = parseSingleDocument(VS);
    assert.ok(r.ok);
    const o = withResourceVersion(r.object, '7');
    assert.deepEqual(o.metadata, { name: 'reviews', namespace: 'default', resourceVersion: '7' });
    assert.equal((r.object.metadata as Record<string, unknown>).resourceVersion, undefined, 'the parsed object is not mutated');
  });
  test('the loaded version wins over one typed in the text', () => {
    const o = withResourceVersion({ kind: 'X', metadata: { name: 'a', resourceVersion: '99' } }, '3');
    assert.equal((o.metadata as Record<string, unknown>).resourceVersion, '3');
  });
  test('refusals: syntax, empty, several documents, not a mapping', () => {
    const bad = parseSingleDocument('a: [');
    assert.ok(!bad.ok && bad.problems[0]?.source === 'syntax');
    const empty = parseSingleDocument('# nothing\n');
    assert.ok(!empty.ok && /empty/.test(empty.problems[0]?.message ?? ''));
    const many = parseSingleDocument('a: 1\n---\nb: 2\n');
    assert.ok(!many.ok && /2 documents/.test(many.problems[0]?.message ?? ''));
    const list = parseSingleDocument('- a\n- b\n');
    assert.ok(!list.ok && list.problems[0]?.rule === 'not_an_object');
  });
});

describe('documentRefs, sortProblems', () => {
  test('identity of each non-empty document', () => {
    assert.deepEqual(documentRefs('---\nkind: A\nmetadata: {name: a, namespace: n}\n---\nkind: B\nmetadata: {name: b}\n'), [
      { index: 0, kind: 'A', namespace: 'n', name: 'a' },
      { index: 1, kind: 'B', namespace: undefined, name: 'b' },
    ]);
  });
  test('by line, errors first, unplaced last', () => {
    const s = sortProblems([
      { source: 'api', level: 'error', message: 'x' },
      { source: 'analysis', level: 'warning', message: 'w', line: 3 },
      { source: 'schema', level: 'error', message: 'e', line: 3 },
      { source: 'schema', level: 'error', message: 'first', line: 1 },
    ]);
    assert.deepEqual(s.map((p) => p.message), ['first', 'e', 'w', 'x']);
  });
});
