// `npm run bench:graph`: the service graph API on a 2,000-node synthetic mesh. Rollup rows for
// BENCH_EDGES edges between BENCH_NODES workloads (20 namespaces) are written for the last
// BENCH_MINUTES minutes through the ingest's own upsert; then GET /api/v1/graph is timed over HTTP
// (client in the same process, warm) for several windows and granularities. Also prints the
// measured bytes per stored row, the basis of the storage figures in docs/telemetry.md.
//
// Environment (optional):
//   BENCH_NODES        workloads (default 2000)
//   BENCH_EDGES        caller -> callee pairs (default 5000)
//   BENCH_MINUTES      minutes of data (default 15)
//   BENCH_ROUNDS       timed requests per case (default 20)
//   BENCH_DATABASE_URL PostgreSQL server (else PGlite)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

process.env.TERN_LOG_LEVEL ??= 'warn';
const { startTestApi, createScratchDatabase } = await import('../apps/api/test/helpers.ts');
const { writeRows, EdgeDictionary } = await import('../apps/api/src/telemetry/store.ts');
const { BUCKETS } = await import('../apps/api/src/telemetry/rows.ts');
const { percentile, table } = await import('./lib/stats.ts');
type RollupRow = import('../apps/api/src/telemetry/rows.ts').RollupRow;

const NODES = Number(process.env.BENCH_NODES ?? 2000);
const EDGES = Number(process.env.BENCH_EDGES ?? 5000);
const MINUTES = Number(process.env.BENCH_MINUTES ?? 15);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const NAMESPACES = 20;

const serverUrl = process.env.BENCH_DATABASE_URL;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-bench-graph-'));
const scratch = serverUrl ? await createScratchDatabase(serverUrl, 'tern_bench_graph') : undefined;
const db = { dataDir, ...(scratch ? { databaseUrl: scratch.url } : {}), drop: async () => {} };
const api = await startTestApi({ telemetryRollupIntervalMs: 86_400_000 }, db);
const backend = scratch ? 'PostgreSQL' : 'PGlite';

// Deterministic pseudo-random mesh: each edge from node i to a node j, mostly within a namespace.
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const node = (i: number) => ({ ns: `ns-${i % NAMESPACES}`, workload: `svc-${i}-v${1 + (i % 3)}`, app: `svc-${i}`, version: `v${1 + (i % 3)}` });
const pairs = new Set<string>();
while (pairs.size < EDGES) {
  const a = Math.floor(rnd() * NODES);
  const sameNs = rnd() < 0.8;
  let b = Math.floor(rnd() * NODES);
  if (sameNs) b = (b - (b % NAMESPACES)) + (a % NAMESPACES);
  if (b >= NODES || a === b) continue;
  pairs.add(`${a}:${b}`);
}

const now = Date.now();
const t0 = Date.now();
let rowsWritten = 0;
const dict = new EdgeDictionary();
for (let m = 0; m < MINUTES; m++) {
  const bucket = new Date(Math.floor(now / 60_000) * 60_000 - m * 60_000);
  const rows: RollupRow[] = [];
  for (const p of pairs) {
    const [a, b] = p.split(':').map(Number) as [number, number];
    const s = node(a);
    const d = node(b);
    const dist = new Array<number>(BUCKETS).fill(0);
    dist[3] = 50;
    dist[4] = 40;
    dist[6] = 10;
    const base = {
      bucket, srcWorkload: s.workload, srcNamespace: s.ns, srcPrincipal: `spiffe://cluster.local/ns/${s.ns}/sa/${s.app}`, srcApp: s.app, srcVersion: s.version,
      dstService: `${d.app}.${d.ns}.svc.cluster.local`, dstWorkload: d.workload, dstNamespace: d.ns, dstApp: d.app, dstVersion: d.version,
      protocol: 'http', mtls: true,
    };
    rows.push({ ...base, codeClass: '2xx', requests: 100, errors: 0, bytesIn: 12_000, bytesOut: 480_000, durationSumMs: 1500, d: dist });
    // One edge in five also has some 5xx in the minute.
    if ((a + b) % 5 === 0) rows.push({ ...base, codeClass: '5xx', requests: 2, errors: 2, bytesIn: 200, bytesOut: 40, durationSumMs: 4, d: dist.map((x, i) => (i === 1 ? 2 : 0 * x)) });
  }
  await writeRows(api.app.db.prisma, 'TelemetryMinute', rows, dict);
  rowsWritten += rows.length;
}
const seedSeconds = (Date.now() - t0) / 1000;
const sizeOf = async (t: string) => (await api.app.db.prisma.$queryRawUnsafe<{ bytes: number }[]>(`SELECT pg_total_relation_size('"${t}"')::float8 AS bytes`))[0]!.bytes;
const size = await sizeOf('TelemetryMinute');
const edgeRows = (await api.app.db.prisma.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::float8 AS n FROM "TelemetryEdge"`))[0]!.n;
const edgeSize = await sizeOf('TelemetryEdge');

const cases: Array<[string, string]> = [
  ['workload, 5m', 'window=5m'],
  ['workload, 15m', 'window=15m'],
  ['versioned app, 15m', 'window=15m&granularity=app'],
  ['service, 15m', 'window=15m&granularity=service'],
  ['one namespace, 15m', 'window=15m&namespace=ns-3'],
];
const results: Array<Array<string | number>> = [];
let headline = 0;
for (const [name, q] of cases) {
  let nodes = 0;
  let edges = 0;
  let bytes = 0;
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS + 3; i++) {
    const start = performance.now();
    const res = await fetch(`${api.url}/api/v1/graph?${q}`, { headers: { authorization: `Bearer ${api.token}` } });
    const text = await res.text();
    const ms = performance.now() - start;
    if (res.status !== 200) throw new Error(`${q}: ${res.status} ${text.slice(0, 300)}`);
    if (i >= 3) samples.push(ms);
    const body = JSON.parse(text) as { nodes: unknown[]; edges: unknown[] };
    nodes = body.nodes.length;
    edges = body.edges.length;
    bytes = text.length;
  }
  const p50 = percentile(samples, 50);
  if (name === 'workload, 15m') headline = p50;
  results.push([name, nodes, edges, `${(bytes / 1024).toFixed(0)} KiB`, p50.toFixed(1), percentile(samples, 95).toFixed(1), Math.max(...samples).toFixed(1)]);
}

console.log(`Graph API on ${backend}: ${NODES} workloads, ${EDGES} edges, ${MINUTES} minutes of rollups (${rowsWritten} rows, written in ${seedSeconds.toFixed(1)} s)`);
console.log(`Storage: ${(size / rowsWritten).toFixed(0)} bytes per minute row (table + primary key), ${(size / 1024 / 1024).toFixed(1)} MiB in all; edge dictionary ${(edgeSize / edgeRows).toFixed(0)} bytes per key (${edgeRows} keys)`);
console.log(table(['case', 'nodes', 'edges', 'body', 'p50 ms', 'p95 ms', 'max ms'], results));
console.log(`Headline: the 2,000-node graph (workload granularity, 15 m window) in ${headline.toFixed(0)} ms p50 (target <= 500 ms): ${headline <= 500 ? 'met' : 'NOT met'}`);

await api.close();
await scratch?.drop();
fs.rmSync(dataDir, { recursive: true, force: true });
