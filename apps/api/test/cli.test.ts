import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ADMIN_PASSWORD, startTestApi, type TestApi } from './helpers.ts';
import { runTern, type TernRun } from './tern-cli.ts';

// The real `tern` binary, run as a user would, against a real API server.

const root = path.resolve(import.meta.dirname, '../../..');
const samples = path.join(root, 'samples', 'bookinfo');

let api: TestApi;
let home: string;

before(async () => {
  api = await startTestApi();
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-cli-'));
});
after(async () => {
  await api?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

function tern(args: string[], opts: { token?: string | null; stdin?: string } = {}): Promise<TernRun> {
  return runTern(args, { server: api.url, token: opts.token === undefined ? api.token : opts.token, config: path.join(home, 'config.json'), ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) });
}

test('apply -f the Bookinfo samples, then get them back as YAML', async () => {
  const dr = await tern(['apply', '-f', path.join(samples, 'destination-rule-all.yaml')]);
  assert.equal(dr.code, 0, dr.stderr);
  assert.match(dr.stdout, /^destinationrule\.networking\.istio\.io\/reviews created$/m);
  const vs = await tern(['apply', '-f', path.join(samples, 'virtual-service-all-v1.yaml')]);
  assert.equal(vs.code, 0, vs.stderr);
  assert.equal(vs.stdout.trim().split('\n').length, 4);

  const got = await tern(['get', 'virtualservice', '-o', 'yaml']);
  assert.equal(got.code, 0, got.stderr);
  const list = YAML.parse(got.stdout);
  assert.equal(list.kind, 'List');
  assert.deepEqual(list.items.map((i: any) => i.metadata.name).sort(), ['details', 'productpage', 'ratings', 'reviews']);
  const reviews = list.items.find((i: any) => i.metadata.name === 'reviews');
  assert.deepEqual(reviews.spec.http[0].route[0].destination, { host: 'reviews', subset: 'v1' });

  const table = await tern(['get', 'vs']);
  assert.match(table.stdout, /^NAME\s+REVISION\s+GENERATION/m);
  assert.match(table.stdout, /^reviews\s+\d+\s+1\s/m);
});

test('a stale update from a file carrying an old resourceVersion gets 409 and exit 1', async () => {
  const got = await tern(['get', 'vs', 'reviews', '-o', 'yaml']);
  const obj = YAML.parse(got.stdout);
  const file = path.join(home, 'reviews.yaml');
  obj.spec.http[0].route[0].destination.subset = 'v2';
  fs.writeFileSync(file, YAML.stringify(obj));
  const first = await tern(['apply', '-f', file]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /reviews configured|reviews updated/);
  obj.spec.http[0].route[0].destination.subset = 'v3';
  fs.writeFileSync(file, YAML.stringify(obj));
  const stale = await tern(['apply', '-f', file]);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /modified/);
  assert.match(stale.stderr, /409|CONFLICT/);
});

test('analyze -f flags a route to a missing subset; apply refuses it; exit code 1', async () => {
  const bad = path.join(samples, 'virtual-service-reviews-v4-missing.yaml');
  const a = await tern(['analyze', '-f', bad]);
  assert.equal(a.code, 1, a.stdout + a.stderr);
  assert.match(a.stdout, /^Error \[TRN\d{4}\] \(VirtualService default\/reviews spec\.http\[0\]\.route\[0\]\.destination\.subset\).*v4/m);
  const ap = await tern(['apply', '-f', bad]);
  assert.equal(ap.code, 1);
  assert.match(ap.stderr, /subset/);
  const clean = await tern(['analyze']);
  assert.equal(clean.code, 0, clean.stdout);
});

test('apply -f - reads standard input; invalid input prints each issue with its path and rule', async () => {
  const doc = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: bad\nspec:\n  hosts: [x]\n  http:\n  - route:\n    - destination: {host: x}\n      weight: 101\n';
  const r = await tern(['apply', '-f', '-'], { stdin: doc });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /spec\.http\[0\]\.route\[0\]\.weight: .*\[\w+\]/);
});

test('history and rollback', async () => {
  const h = await tern(['history', 'vs', 'reviews']);
  assert.equal(h.code, 0, h.stderr);
  const rows = h.stdout.trim().split('\n').slice(1);
  assert.ok(rows.length >= 2);
  const firstRevision = rows[rows.length - 1]!.split(/\s+/)[0]!;
  const rb = await tern(['rollback', 'vs', 'reviews', '--to', firstRevision]);
  assert.equal(rb.code, 0, rb.stderr);
  assert.match(rb.stdout, /reviews rolled-back/);
  const got = YAML.parse((await tern(['get', 'vs', 'reviews', '-o', 'yaml'])).stdout);
  assert.equal(got.spec.http[0].route[0].destination.subset, 'v1');
});

test('delete by name and by file', async () => {
  const d = await tern(['delete', 'vs', 'details']);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /virtualservice\.networking\.istio\.io\/details deleted/);
  const missing = await tern(['get', 'vs', 'details']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /does not exist/);
  const byFile = await tern(['delete', '-f', path.join(samples, 'virtual-service-all-v1.yaml')]);
  // details is already gone: the whole request is refused and nothing is deleted.
  assert.equal(byFile.code, 1);
  assert.match(byFile.stderr, /details does not exist/);
  assert.match((await tern(['get', 'vs'])).stdout, /productpage/);
  const rest = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: productpage}\nspec: {hosts: [productpage]}\n';
  const one = await tern(['delete', '-f', '-'], { stdin: rest });
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /virtualservice\.networking\.istio\.io\/productpage deleted/);
});

test('usage errors exit 2; missing or bad credentials exit 3', async () => {
  assert.equal((await tern(['frobnicate'])).code, 2);
  assert.equal((await tern(['get'])).code, 2);
  assert.equal((await tern(['get', 'gateways2'])).code, 2);
  assert.equal((await tern(['apply'])).code, 2);
  assert.equal((await tern(['rollback', 'vs', 'reviews'])).code, 2);
  const anon = await tern(['get', 'vs'], { token: null });
  assert.equal(anon.code, 3);
  assert.match(anon.stderr, /tern login/);
  const viewer = await api.makeToken('viewer');
  const denied = await tern(['delete', 'vs', 'reviews'], { token: viewer });
  assert.equal(denied.code, 3);
});

test('login saves a session (mode 0600) that later commands use', async () => {
  const wrong = await tern(['login', '-u', 'admin', '--password-stdin'], { token: null, stdin: 'nope\n' });
  assert.equal(wrong.code, 3);
  const ok = await tern(['login', '-u', 'admin', '--password-stdin'], { token: null, stdin: `${ADMIN_PASSWORD}\n` });
  assert.equal(ok.code, 0, ok.stderr);
  const cfg = path.join(home, 'config.json');
  assert.equal(fs.statSync(cfg).mode & 0o777, 0o600);
  const saved = JSON.parse(fs.readFileSync(cfg, 'utf8'));
  assert.match(saved.token, /^tern_sess_/);
  const got = await tern(['get', 'dr'], { token: null });
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /reviews/);
  await tern(['logout'], { token: null });
  assert.equal((await tern(['get', 'dr'], { token: null })).code, 3);
});
