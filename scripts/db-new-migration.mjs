#!/usr/bin/env node
// Creates the next migration, offline: what `prisma migrate dev --create-only --name NAME` writes,
// without a development database.
//
//   node scripts/db-new-migration.mjs NAME [--schema prisma/schema.prisma] [--migrations prisma/migrations]
//
// The Prisma schema engine (WebAssembly, see scripts/schema-engine.mjs) replays prisma/migrations
// on a throwaway in-memory PGlite (its shadow database), diffs the result with prisma/schema.prisma
// and renders the next migration, warnings included, exactly as `migrate dev` would. We write it to
// prisma/migrations/<timestamp>_<name>/migration.sql and (re)write migration_lock.toml. When the
// schema and the migrations already agree, nothing is written and we print "no changes".
// See docs/database.md.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openEngine } from './schema-engine.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node scripts/db-new-migration.mjs NAME [--schema FILE] [--migrations DIR]');
  process.exit(2);
}

function parseArgs(argv) {
  const out = { name: undefined, schema: path.join(root, 'prisma', 'schema.prisma'), migrations: path.join(root, 'prisma', 'migrations') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--schema') out.schema = path.resolve(argv[++i] ?? usage('--schema needs a file'));
    else if (a === '--migrations') out.migrations = path.resolve(argv[++i] ?? usage('--migrations needs a folder'));
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (out.name === undefined) out.name = a;
    else usage('only one NAME');
  }
  if (!out.name) usage('NAME is required');
  return out;
}

// As the Prisma CLI names migration folders: lowercase, anything but [a-z0-9_] becomes "_".
function slug(name) {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!s) usage(`"${name}" is not usable as a migration name`);
  return s.slice(0, 200);
}

// The list the Prisma CLI hands the engine (node_modules/prisma/build/cli.js, "migration_lock.toml").
function migrationsList(baseDir) {
  const lockPath = path.join(baseDir, 'migration_lock.toml');
  const entries = fs.existsSync(baseDir) ? fs.readdirSync(baseDir, { withFileTypes: true }) : [];
  const migrationDirectories = entries
    .filter((e) => e.isDirectory())
    .map((e) => {
      const file = path.join(baseDir, e.name, 'migration.sql');
      let content;
      try {
        content = { tag: 'ok', value: fs.readFileSync(file, 'utf8') };
      } catch (err) {
        content = { tag: 'error', value: err.message };
      }
      return { path: e.name, migrationFile: { path: 'migration.sql', content } };
    })
    .sort((a, b) => a.path.localeCompare(b.path));
  return {
    baseDir,
    lockfile: { path: 'migration_lock.toml', content: fs.existsSync(lockPath) ? fs.readFileSync(lockPath, 'utf8') : null },
    migrationDirectories,
    shadowDbInitScript: '',
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const schema = fs.readFileSync(args.schema, 'utf8');
  const list = migrationsList(args.migrations);
  // The engine logs to stderr as JSON lines; keep quiet unless something fails.
  const { engine, close } = await openEngine('pglite:memory', { datamodels: [[args.schema, schema]], quiet: true });
  const filters = { externalTables: [], externalEnums: [] };
  const schemas = { files: [{ path: args.schema, content: schema }] };
  let out;
  let loss;
  try {
    // The calls `prisma migrate dev --create-only` makes, on a development database that starts
    // empty. The WebAssembly engine (this version) only renders a new migration once the existing
    // ones are applied to the development database and devDiagnostic has run on it; in any other
    // order it fails with "PostgreSQL shadow DB must be provided through an external factory".
    await engine.applyMigrations({ migrationsList: list, filters });
    await engine.devDiagnostic({ migrationsList: list, filters });
    loss = await engine.evaluateDataLoss({ migrationsList: list, schema: schemas, filters });
    out = await engine.createMigration({ draft: false, migrationName: slug(args.name), migrationsList: list, schema: schemas, filters });
  } finally {
    await close();
  }
  for (const w of loss?.unexecutableSteps ?? []) console.error(`error: ${w.message}`);
  for (const w of loss?.warnings ?? []) console.error(`warning: ${w.message}`);
  if (out.migrationScript === null || out.migrationScript === undefined) {
    console.log('no changes');
    return;
  }
  const dir = path.join(args.migrations, out.generatedMigrationName);
  if (fs.existsSync(dir)) throw new Error(`The migration directory already exists at ${dir}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `migration.${out.extension}`), out.migrationScript, 'utf8');
  fs.writeFileSync(
    path.join(args.migrations, 'migration_lock.toml'),
    `# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = "${out.connectorType}"\n`,
    'utf8',
  );
  console.log(`created ${path.relative(process.cwd(), path.join(dir, `migration.${out.extension}`)) || dir}`);
}

main().catch((err) => {
  console.error(`db-new-migration: ${err?.message ?? err}`);
  process.exit(1);
});
