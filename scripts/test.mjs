#!/usr/bin/env node
// `npm test`: every test file on the embedded database (PGlite); then, when
// TERN_TEST_DATABASE_URL points at a PostgreSQL server, the database-backed suites again on it.
// Ends with one line "N passed, N failed" covering both runs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

function findTests(dir) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'fixtures') out.push(...findTests(p));
    else if (e.isFile() && e.name.endsWith('.test.ts')) out.push(path.relative(root, p));
  }
  return out;
}

const all = args.length ? args : ['packages', 'apps'].flatMap((d) => fs.readdirSync(path.join(root, d)).map((p) => path.join(d, p, 'test'))).concat('e2e').flatMap((d) => findTests(path.join(root, d))).sort();
// Suites built on the database test helpers run on both backends, except those that say they test
// the mesh over a control plane rather than its storage (a line `// test: one database backend`):
// the demo's end-to-end suites, minutes each, would only repeat themselves on PostgreSQL.
const usesDb = (f) => {
  const text = fs.readFileSync(path.join(root, f), 'utf8');
  return /from '[./a-z]*(api\/test\/|\.\/)helpers\.ts'/.test(text) && !/^\/\/ test: one database backend$/m.test(text);
};

function run(files, env, label) {
  return new Promise((resolve) => {
    console.log(`\n=== ${label}: ${files.length} test files ===`);
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // The runner's own summary ("ℹ pass N", "ℹ fail N") comes before its list of failures, which
    // can be long: remember the counts as they pass by instead of reading a tail afterwards.
    const counts = { pass: 0, fail: 0 };
    // The failures' details, to repeat after both runs: CI shows only the tail of the output.
    const failures = [];
    let inFailures = false;
    let partial = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^ℹ (pass|fail) (\d+)$/.exec(line);
        if (m) counts[m[1]] = Number(m[2]);
        if (line.startsWith('✖ failing tests:')) inFailures = true;
        else if (inFailures && failures.length < 200) failures.push(line);
      }
    });
    child.on('close', (code) => {
      resolve({ label, code: code ?? 1, ...counts, failures });
    });
  });
}

const results = [];
results.push(await run(all, { TERN_TEST_DB: 'pglite' }, 'PGlite (embedded)'));
const pgUrl = process.env.TERN_TEST_DATABASE_URL;
if (pgUrl) {
  const dbFiles = all.filter(usesDb);
  if (dbFiles.length) results.push(await run(dbFiles, { TERN_TEST_DB: 'postgres' }, 'PostgreSQL'));
} else {
  console.log('\n(TERN_TEST_DATABASE_URL not set: the database suites ran on PGlite only)');
}
const pass = results.reduce((a, r) => a + r.pass, 0);
const fail = results.reduce((a, r) => a + r.fail, 0);
const failedRun = results.some((r) => r.code !== 0);
for (const r of results) {
  if (r.failures.length) console.log(`\n=== ${r.label}: the failures again ===\n${r.failures.join('\n')}`);
}
for (const r of results) console.log(`${r.label}: ${r.pass} passed, ${r.fail} failed${r.code !== 0 && r.fail === 0 ? ` (the runner exited with ${r.code})` : ''}`);
console.log(`\n${pass} passed, ${fail} failed`);
process.exit(failedRun || fail > 0 ? 1 : 0);
