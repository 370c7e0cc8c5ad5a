// `npm run bench`: the control plane's write path (apps/api/src/store/writer.ts), measured against
// the bare database work for the same change, in the same run. See docs/benchmarks.md.
//
// Environment (all optional):
//   BENCH_DATABASE_URL        PostgreSQL server URL allowed to CREATE/DROP DATABASE; falls back to
//                             TERN_TEST_DATABASE_URL. Without either, only PGlite is measured.
//   BENCH_BACKENDS            pglite,postgres (default: both; postgres only with a URL)
//   BENCH_SIZES               mesh sizes N (services, each with 2 workloads, a DestinationRule and a
//                             VirtualService); default 10,100,1000,3000
//   BENCH_ROUNDS              max timed rounds per size (default 40); BENCH_MIN_ROUNDS (default 10)
//   BENCH_POINT_SECONDS       time cap per size once BENCH_MIN_ROUNDS are done (default 8)
//   BENCH_WARMUP              untimed rounds per size (default 3)
//   BENCH_STALL_ROUNDS        rounds per size probed for event-loop stalls (default 10; cap half BENCH_POINT_SECONDS)
//   BENCH_BREAKDOWN_REPS      runs per step of the breakdown (default 5)
//   BENCH_THROUGHPUT_SIZE     N for the throughput and HTTP runs (default 100)
//   BENCH_THROUGHPUT_SECONDS  duration of each throughput run (default 5)
//   BENCH_WRITERS             concurrent writers (default 4, at most 4)
//   BENCH_HTTP_REQUESTS       timed requests of each kind (default 100)
//   BENCH_WARN_SIZES          sizes for the mesh without workloads (every DestinationRule carries
//                             two warnings); default 10,100,1000; empty to skip
//   BENCH_ANALYZE_SIZES       sizes for analyze() alone, no database (default: largest N and twice it)
//   BENCH_JSON                also write all results as JSON to this file
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

process.env.TERN_LOG_LEVEL ??= 'warn';
const { openBackend, reachable } = await import('./lib/backend.ts');
const { growMesh } = await import('./lib/mesh.ts');
const S = await import('./lib/scenarios.ts');
const { ms, now, pct, ratio, table } = await import('./lib/stats.ts');
const { analyzerScaling } = await import('./lib/analyzer.ts');
const { analyze } = await import('../apps/api/src/policy/analyze.ts');
const { loadConfig } = await import('../apps/api/src/config.ts');

type BackendKind = 'pglite' | 'postgres';

function numEnv(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got "${raw}"`);
  return n;
}
function listEnv(name: string, fallback: string): number[] {
  const raw = process.env[name] ?? fallback;
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (list.some((n) => !Number.isInteger(n))) throw new Error(`${name} must be a comma-separated list of integers, got "${raw}"`);
  return [...new Set(list)].sort((a, b) => a - b);
}

const cfg = {
  sizes: listEnv('BENCH_SIZES', '10,100,1000,3000'),
  warnSizes: listEnv('BENCH_WARN_SIZES', '10,100,1000'),
  analyzeSizes: [] as number[],
  rounds: numEnv('BENCH_ROUNDS', 40, 1),
  minRounds: numEnv('BENCH_MIN_ROUNDS', 10, 1),
  pointSeconds: numEnv('BENCH_POINT_SECONDS', 8),
  warmup: numEnv('BENCH_WARMUP', 3),
  stallRounds: numEnv('BENCH_STALL_ROUNDS', 10, 1),
  breakdownReps: numEnv('BENCH_BREAKDOWN_REPS', 5, 1),
  throughputSize: numEnv('BENCH_THROUGHPUT_SIZE', 100, 2 * S.WRITERS_MAX),
  throughputSeconds: numEnv('BENCH_THROUGHPUT_SECONDS', 5, 0.5),
  writers: Math.min(S.WRITERS_MAX, numEnv('BENCH_WRITERS', 4, 1)),
  httpRequests: numEnv('BENCH_HTTP_REQUESTS', 100, 1),
};
if (cfg.sizes.length === 0) throw new Error('BENCH_SIZES is empty');
if ([...cfg.sizes, ...cfg.warnSizes].some((n) => n < 2 * S.WRITERS_MAX)) throw new Error(`mesh sizes must be >= ${2 * S.WRITERS_MAX}`);
if (!cfg.sizes.includes(cfg.throughputSize)) cfg.sizes = [...cfg.sizes, cfg.throughputSize].sort((a, b) => a - b);
const largest = cfg.sizes[cfg.sizes.length - 1]!;
cfg.analyzeSizes = listEnv('BENCH_ANALYZE_SIZES', `${largest},${2 * largest}`);

const serverUrl = process.env.BENCH_DATABASE_URL || process.env.TERN_TEST_DATABASE_URL || undefined;
const wanted = (process.env.BENCH_BACKENDS ?? 'pglite,postgres').split(',').map((s) => s.trim()).filter(Boolean) as BackendKind[];
const t0 = now();
const progress = (msg: string) => process.stderr.write(`[bench ${((now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);
const out = (s = '') => process.stdout.write(`${s}\n`);

const backends: BackendKind[] = [];
for (const k of wanted) {
  if (k === 'pglite') backends.push(k);
  else if (k === 'postgres') {
    if (!serverUrl) progress('postgres: skipped (set BENCH_DATABASE_URL or TERN_TEST_DATABASE_URL to a server that allows CREATE DATABASE)');
    else if (!(await reachable(serverUrl))) progress('postgres: skipped (server not reachable)');
    else backends.push(k);
  } else throw new Error(`BENCH_BACKENDS: unknown backend "${k}"`);
}

async function pgVersion(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  } finally {
    await c.end();
  }
}
function pgliteVersion(): string {
  // The package does not export its package.json; find it above its entry point.
  try {
    const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
    for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const f = path.join(dir, 'package.json');
      if (!fs.existsSync(f)) continue;
      const p = JSON.parse(fs.readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (p.name === '@electric-sql/pglite') return p.version ?? '?';
    }
  } catch {}
  return '?';
}
/** The code measured: the commit, and any uncommitted changes to the product. */
function codeVersion(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: path.resolve(import.meta.dirname, '..'), encoding: 'utf8' }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'apps', 'packages', 'prisma').split('\n').filter(Boolean);
    return dirty.length ? `${head} + uncommitted changes to ${dirty.length} file(s) under apps/, packages/, prisma/` : `${head} (clean)`;
  } catch {
    return 'unknown (no git)';
  }
}

const cpu = os.cpus();
out('# Tern write-path benchmark');
out();
out(`machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown cpu'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}; Node ${process.version}`);
out(`code: ${codeVersion()}`);
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
out(`load average at start: ${load()} (1/5/15 min; anything else running on the machine skews the figures)`);
out(`databases: PGlite ${pgliteVersion()} (temp dir)${backends.includes('postgres') ? `, PostgreSQL ${await pgVersion(serverUrl!)} (fresh database)` : ''}`);
out(`sizes: ${cfg.sizes.join(', ')}; ${cfg.minRounds}..${cfg.rounds} rounds per size (cap ${cfg.pointSeconds}s); throughput and HTTP at N=${cfg.throughputSize}`);
out();
out('N = registry services, each with 2 workloads (version v1/v2), a DestinationRule (subsets v1/v2) and a');
out('VirtualService (weighted v1/v2 split): the mesh holds N services, 2N workloads, 2N resources.');
out('Tern = app.resources.apply([one VirtualService update]), i.e. writer.ts: lock, mesh, analyze, rows, revision, audit, NOTIFY.');
out('  warm = the previous write was this process\'s own: the writer reuses the mesh it cached at its last commit;');
out('  cold = someone else wrote in between (here the baseline; in production another replica): the writer catches up from the change log.');
out('baseline = one Prisma interactive transaction: UPDATE counter RETURNING, UPDATE the Resource row, INSERT a Revision');
out('  row, INSERT an AuditEvent row, pg_notify. Rounds of baseline, cold, warm, interleaved on the same database.');

const results: Record<string, unknown> = { config: cfg, node: process.version, cores: cpu.length, code: codeVersion(), backends: {} };

for (const kind of backends) {
  const label = kind === 'pglite' ? 'PGlite (embedded, temp dir)' : 'PostgreSQL (127.0.0.1, fresh database)';
  const r: Record<string, any> = { latency: [], breakdown: [], warn: [] };
  (results.backends as Record<string, unknown>)[kind] = r;

  progress(`${kind}: opening`);
  const b = await openBackend(kind, serverUrl);
  S.resetWeights();
  try {
    let n = 0;
    for (const size of cfg.sizes) {
      progress(`${kind}: seeding N=${size}`);
      const s = now();
      await growMesh(b.app, n, size, { workloads: true });
      const seedSeconds = (now() - s) / 1000;
      n = size;
      progress(`${kind}: N=${size} latency`);
      const lat = await S.latency(b.app, { warmup: cfg.warmup, rounds: cfg.rounds, minRounds: cfg.minRounds, seconds: cfg.pointSeconds });
      progress(`${kind}: N=${size} event-loop stalls`);
      const stall = await S.stalls(b.app, { rounds: cfg.stallRounds, minRounds: 3, seconds: cfg.pointSeconds / 2 });
      r.latency.push({ n: size, seedSeconds, ...lat, stall });
      progress(`${kind}: N=${size} breakdown`);
      r.breakdown.push({ n: size, ...(await S.breakdown(b.app, cfg.breakdownReps)) });

      if (size === cfg.throughputSize) {
        const T = cfg.throughputSeconds;
        progress(`${kind}: N=${size} throughput (${T}s runs)`);
        const tp: Record<string, unknown> = { n: size };
        tp.ternSeq = await S.throughput((w) => S.tern(b.app, w), 1, T);
        tp.ternConc = await S.throughput((w) => S.tern(b.app, w), cfg.writers, T);
        if (kind === 'postgres' && cfg.writers >= 2) {
          const other = await b.openReplica();
          tp.ternReplicas = await S.throughput((w) => S.tern(w % 2 === 0 ? b.app : other, w), cfg.writers, T);
        }
        tp.baseSeq = await S.throughput((w) => S.baseline(b.app, w), 1, T);
        tp.baseConc = await S.throughput((w) => S.baseline(b.app, w), cfg.writers, T);
        r.throughput = tp;
        progress(`${kind}: N=${size} HTTP`);
        r.http = { n: size, ...(await S.http(b.app, { requests: cfg.httpRequests, warmup: 5 })) };
      }
    }
  } finally {
    await b.close();
  }

  if (cfg.warnSizes.length) {
    const w = await openBackend(kind, serverUrl);
    S.resetWeights();
    try {
      let n = 0;
      for (const size of cfg.warnSizes) {
        progress(`${kind}: mesh without workloads, seeding N=${size}`);
        await growMesh(w.app, n, size, { workloads: false });
        n = size;
        progress(`${kind}: mesh without workloads, N=${size} latency`);
        const lat = await S.latency(w.app, { warmup: Math.min(cfg.warmup, 2), rounds: cfg.rounds, minRounds: Math.max(3, Math.floor(cfg.minRounds / 2)), seconds: cfg.pointSeconds });
        r.warn.push({ n: size, ...lat });
      }
    } finally {
      await w.close();
    }
  }

  // ---- print this backend ----
  const latAt = (n: number) => r.latency.find((y: any) => y.n === n);
  out();
  out(`## ${label}`);
  out();
  out('### 1-2. One VirtualService update vs the bare transaction (ms)');
  out();
  out(
    table(
      ['N', 'rounds', 'warm p50', 'warm p95', 'cold p50', 'cold p95', 'baseline p50', 'baseline p95', 'warm/baseline p50', 'cold/baseline p50', 'cold/baseline p95', 'rows written'],
      r.latency.map((l: any) => [
        l.n, l.warm.n, ms(l.warm.p50), ms(l.warm.p95), ms(l.cold.p50), ms(l.cold.p95), ms(l.baseline.p50), ms(l.baseline.p95),
        ratio(l.warm.p50, l.baseline.p50), ratio(l.cold.p50, l.baseline.p50), ratio(l.cold.p95, l.baseline.p95), l.rowsWritten,
      ]),
    ),
  );
  out();
  out('rows written = Resource rows written by one update (1 = only the VirtualService itself).');
  out();
  out('Event-loop stall: the longest stretch during one write in which this process could run nothing else');
  out('(1 ms timer probe; any other request to this replica waits that long), ms:');
  out();
  out(
    table(
      ['N', 'rounds', 'warm p50', 'warm p95', 'cold p50', 'cold p95', 'baseline p50', 'baseline p95'],
      r.latency.map((l: any) => [l.n, l.stall.warm.n, ms(l.stall.warm.p50), ms(l.stall.warm.p95), ms(l.stall.cold.p50), ms(l.stall.cold.p95), ms(l.stall.baseline.p50), ms(l.stall.baseline.p95)]),
    ),
  );
  out();
  out('### 3. Where the time goes (ms; steps are medians of direct calls, rest = p50 minus its steps, 0 if negative)');
  out();
  out(
    table(
      ['N', 'rows loaded', 'loadSnapshot', 'analysisInput', 'analyze', 'cloneSnapshot', 'warm p50', 'warm rest', 'cold p50', 'cold rest', 'baseline p50'],
      r.breakdown.map((x: any) => {
        const l = latAt(x.n);
        const every = x.analysisInput + x.analyze + x.cloneSnapshot;
        return [
          x.n, x.rows.resources + x.rows.services + x.rows.workloads, ms(x.loadSnapshot), ms(x.analysisInput), ms(x.analyze), ms(x.cloneSnapshot),
          ms(l.warm.p50), ms(Math.max(0, l.warm.p50 - every)), ms(l.cold.p50), ms(Math.max(0, l.cold.p50 - every - x.loadSnapshot)), ms(l.baseline.p50),
        ];
      }),
    ),
  );
  const last = r.breakdown[r.breakdown.length - 1];
  const lastLat = latAt(last.n);
  {
    const every = last.analysisInput + last.analyze + last.cloneSnapshot;
    const c = lastLat.cold.p50;
    const w = lastLat.warm.p50;
    out();
    out(
      `At N=${last.n}, cold (${ms(c)} ms): loadSnapshot ${pct(last.loadSnapshot, c)}, analysisInput + analyze ${pct(last.analysisInput + last.analyze, c)}, ` +
        `cloneSnapshot ${pct(last.cloneSnapshot, c)}, rest ${pct(Math.max(0, c - every - last.loadSnapshot), c)}. ` +
        `Warm (${ms(w)} ms): analysisInput + analyze ${pct(last.analysisInput + last.analyze, w)}, cloneSnapshot ${pct(last.cloneSnapshot, w)}, rest ${pct(Math.max(0, w - every), w)}. ` +
        `The bare transaction: ${ms(lastLat.baseline.p50)} ms.`,
    );
    const t = last.loadByTable;
    out(`loadSnapshot's queries one by one at N=${last.n}: Resource ${ms(t.resources)} ms (${last.rows.resources} rows), Service ${ms(t.services)} ms (${last.rows.services}), Workload ${ms(t.workloads)} ms (${last.rows.workloads}).`);
  }
  if (r.throughput) {
    const t = r.throughput;
    out();
    out(`### 4. Throughput at N=${t.n} (${cfg.throughputSeconds}s per run; each writer updates its own VirtualService)`);
    out();
    const row = (name: string, x: any, ref: any) => [name, x.writers, x.writes, x.perSecond.toFixed(1), ms(x.latency.p50), ms(x.latency.p95), ratio(x.perSecond, ref.perSecond)];
    const rows = [row('Tern, one process (warm)', t.ternSeq, t.ternSeq), row('Tern, one process (warm)', t.ternConc, t.ternSeq)];
    if (t.ternReplicas) rows.push(row('Tern, 2 replicas alternating (mostly cold)', t.ternReplicas, t.ternSeq));
    rows.push(row('baseline', t.baseSeq, t.baseSeq), row('baseline', t.baseConc, t.baseSeq));
    out(table(['writer', 'writers', 'writes', 'writes/s', 'latency p50', 'latency p95', 'writes/s vs 1 writer'], rows));
    out();
    out(`Tern/baseline writes/s: ${ratio(t.ternSeq.perSecond, t.baseSeq.perSecond)} with 1 writer, ${ratio(t.ternConc.perSecond, t.baseConc.perSecond)} with ${t.ternConc.writers}.`);
  }
  if (r.http) {
    const h = r.http;
    const inproc = latAt(h.n);
    out();
    out(`### 5. Over HTTP at N=${h.n}, ms (client in the same process: both share the cores; applies are warm)`);
    out();
    out(
      table(
        ['request', 'p50', 'p95', 'p50 vs /healthz'],
        [
          ['GET /healthz (baseline)', ms(h.healthz.p50), ms(h.healthz.p95), ratio(h.healthz.p50, h.healthz.p50)],
          ['GET /api/v1/resources/vs/… (token auth + one read)', ms(h.getOne.p50), ms(h.getOne.p95), ratio(h.getOne.p50, h.healthz.p50)],
          ['POST /api/v1/apply (one small VirtualService)', ms(h.apply.p50), ms(h.apply.p95), ratio(h.apply.p50, h.healthz.p50)],
          [`in-process apply, warm (table 1, N=${h.n})`, ms(inproc.warm.p50), ms(inproc.warm.p95), ratio(inproc.warm.p50, h.healthz.p50)],
        ],
      ),
    );
    out();
    out(`POST /api/v1/apply minus in-process warm apply, p50: ${ms(h.apply.p50 - inproc.warm.p50)} ms.`);
  }
  if (r.warn.length) {
    out();
    out('### The same mesh without workloads: every DestinationRule carries 2 TRN0202 warnings (ms)');
    out();
    out(
      table(
        ['N', 'rounds', 'warm p50', 'cold p50', 'cold p95', 'baseline p50', 'cold/baseline p50', 'cold vs with workloads', 'rows written'],
        r.warn.map((l: any) => {
          const clean = latAt(l.n);
          return [l.n, l.warm.n, ms(l.warm.p50), ms(l.cold.p50), ms(l.cold.p95), ms(l.baseline.p50), ratio(l.cold.p50, l.baseline.p50), clean ? ratio(l.cold.p50, clean.cold.p50) : '-', l.rowsWritten];
        }),
      ),
    );
  }
}

// ---- analyze() alone, no database ----
if (cfg.analyzeSizes.length) {
  progress(`analyze() alone at N=${cfg.analyzeSizes.join(', ')}`);
  const domainSuffix = loadConfig({}).domainSuffix;
  const scaling = analyzerScaling((input) => analyze(input as Parameters<typeof analyze>[0], { domainSuffix }), domainSuffix, cfg.analyzeSizes, 3);
  results.analyzer = { sizes: cfg.analyzeSizes, scaling };
  out();
  out('## analyze() alone on the same mesh built in memory (no database), ms');
  out();
  out('Each row takes one ingredient out. A linear cost grows like N, a quadratic one like N squared.');
  out();
  const s = cfg.analyzeSizes;
  const growth = s.length > 1 ? [`growth ${s[0]}→${s[s.length - 1]} (N x${(s[s.length - 1]! / s[0]!).toFixed(1)})`] : [];
  out(
    table(
      ['mesh', ...s.map((n) => `N=${n}`), ...growth],
      scaling.map((v) => [v.label, ...v.ms.map(ms), ...(s.length > 1 ? [ratio(v.ms[v.ms.length - 1]!, v.ms[0]!)] : [])]),
    ),
  );
}

const total = (now() - t0) / 1000;
results.seconds = total;
out();
out(`load average at end: ${load()}`);
out(`total: ${total.toFixed(0)} s`);
if (process.env.BENCH_JSON) {
  fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify(results, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
  progress(`results written to ${process.env.BENCH_JSON}`);
}
