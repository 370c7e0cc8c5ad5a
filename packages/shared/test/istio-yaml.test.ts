import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseResource, parseYamlDocuments, toYaml } from '../src/istio/index.ts';

const REVIEWS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`;

describe('parseYamlDocuments', () => {
  it('splits a stream and skips empty documents', () => {
    const text = `---\n# only a comment\n---\n${REVIEWS}---\n\n---\n~\n---\n${REVIEWS.replace('name: reviews', 'name: reviews-b')}`;
    const docs = parseYamlDocuments(text);
    assert.deepEqual(
      docs.map((d) => d.index),
      [1, 4],
    );
    assert.ok(docs.every((d) => d.error === undefined && parseResource(d.doc).ok));
  });

  it('returns nothing for an empty stream', () => {
    assert.deepEqual(parseYamlDocuments(''), []);
    assert.deepEqual(parseYamlDocuments('\n# nothing\n---\n'), []);
  });

  it('expands kind: List', () => {
    const list = `apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: reviews}
  spec: {host: reviews}
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: default}
  spec: {mtls: {mode: STRICT}}
`;
    const docs = parseYamlDocuments(`${REVIEWS}---\n${list}`);
    assert.deepEqual(
      docs.map((d) => [d.index, d.item]),
      [
        [0, undefined],
        [1, 0],
        [1, 1],
      ],
    );
    assert.deepEqual(
      docs.map((d) => (d.doc as { kind: string }).kind),
      ['VirtualService', 'DestinationRule', 'PeerAuthentication'],
    );
  });

  it('a List whose items is not a list is an error', () => {
    const [entry] = parseYamlDocuments('apiVersion: v1\nkind: List\nitems: {a: 1}\n');
    assert.equal(entry?.error?.rule, 'type');
    assert.equal(entry?.error?.path, 'items');
  });

  it('malformed YAML gives line and column', () => {
    const text = `${REVIEWS}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: [unclosed\n`;
    const docs = parseYamlDocuments(text);
    assert.equal(docs.length, 2);
    assert.equal(docs[0]?.error, undefined);
    const err = docs[1]?.error;
    assert.equal(docs[1]?.index, 1);
    assert.equal(err?.rule, 'yaml_syntax');
    assert.equal(err?.path, '');
    assert.match(err?.message ?? '', /line \d+, column \d+/);
  });

  it('bad indentation is a syntax error', () => {
    const [entry] = parseYamlDocuments('spec:\n  hosts:\n  - a\n bad: 1\n');
    assert.equal(entry?.error?.rule, 'yaml_syntax');
    assert.match(entry?.error?.message ?? '', /line 4, column/);
  });

  it('duplicate keys are an error at the key', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      weight: 50
      weight: 60
`;
    const [entry] = parseYamlDocuments(text);
    assert.equal(entry?.doc, undefined);
    assert.equal(entry?.error?.rule, 'duplicate_key');
    assert.equal(entry?.error?.path, 'spec.http[0].route[0].weight');
    assert.match(entry?.error?.message ?? '', /"weight" at line 11, column 7/);
  });

  it('a scalar document is returned and then rejected as not an object', () => {
    const [entry] = parseYamlDocuments('just a string\n');
    assert.equal(entry?.doc, 'just a string');
    const r = parseResource(entry?.doc);
    assert.ok(!r.ok);
    assert.deepEqual(r.issues.map((i) => [i.path, i.rule]), [['', 'not_an_object']]);
  });

  it('keeps YAML 1.2 scalars as kubectl users expect', () => {
    const [entry] = parseYamlDocuments('a: "0777"\nb: 1.0\nc: on\nd: 2025-01-01\n');
    assert.deepEqual(entry?.doc, { a: '0777', b: 1, c: 'on', d: '2025-01-01' });
  });
});

describe('toYaml', () => {
  it('orders apiVersion, kind, metadata, spec and round-trips', () => {
    const [entry] = parseYamlDocuments(REVIEWS);
    const r = parseResource(entry?.doc);
    assert.ok(r.ok);
    const shuffled = { spec: r.resource.spec, metadata: { namespace: 'default', name: 'reviews' }, kind: r.resource.kind, apiVersion: r.resource.apiVersion };
    const out = toYaml([shuffled, shuffled]);
    const lines = out.split('\n');
    assert.deepEqual(lines.slice(0, 5), ['apiVersion: networking.istio.io/v1', 'kind: VirtualService', 'metadata:', '  name: reviews', '  namespace: default']);
    assert.equal(out.split('\n---\n').length, 2);
    assert.ok(!out.includes('&'), 'no YAML anchors');
    const back = parseYamlDocuments(out).map((d) => parseResource(d.doc));
    assert.equal(back.length, 2);
    for (const b of back) {
      assert.ok(b.ok);
      assert.deepEqual(b.resource, r.resource);
    }
  });

  it('writes nothing for no resources', () => {
    assert.equal(toYaml([]), '');
  });
});
