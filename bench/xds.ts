// `npm run bench:xds`: convergence of the control plane's ADS server with many proxies. Simulated
// sidecars (bench/xds/sim.ts: real gRPC streams behaving like Envoy, in a separate process)
// connect to one control plane; we then change one route and measure, per affected proxy, the
// time from the write's start to that proxy's ACK of the new routes (the simulator's clock when it
// sends the ACK), and the time for a change that touches every proxy. See docs/benchmarks.md.
//
// Processes: this one seeds the mesh through the API in-process, then closes it; the control plane
// under test (bench/xds/control-plane.ts) is a child process that opens the seeded database as a
// restarted replica would, serves ADS and applies each change (sent over IPC; the clock starts
// before the message is sent). Its RSS, heap and CPU are read in that child after two full garbage
// collections (--expose-gc), so seeding garbage and this driver do not count against it. The
// convergence figures include the ADS debounce (XDS_DEBOUNCE_MS, default 100 ms).
//
// Environment (optional):
//   BENCH_PROXIES      proxy counts (default 1000,5000)
//   BENCH_SERVICES     services in the mesh (default 500, in 10 namespaces, 2 workloads each)
//   BENCH_ROUNDS       timed changes of each kind per proxy count (default 20)
//   BENCH_WARMUP       untimed changes of each kind first (default 2), as the other benchmarks warm
//                      up; the very first change after start (cold JIT, cold write path) is reported
//                      on its own, in the "first change" column
//   BENCH_DATABASE_URL PostgreSQL server (else TERN_TEST_DATABASE_URL, else PGlite)
//   BENCH_JSON         also write the results as JSON to this file
//   BENCH_CPU_PROF     write the control plane's CPU profile (.cpuprofile) into this directory
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';

process.env.TERN_LOG_LEVEL ??= 'warn';
const { reachable } = await import('./lib/backend.ts');
const { createApp } = await import('../apps/api/src/app.ts');
const { loadConfig } = await import('../apps/api/src/config.ts');
const { createScratchDatabase } = await import('../apps/api/test/helpers.ts');
const { growMesh, virtualService, items, ACTOR, NAMESPACES } = await import('./lib/mesh.ts');
const { percentile, table } = await import('./lib/stats.ts');

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const proxyCounts = (process.env.BENCH_PROXIES ?? '1000,5000').split(',').map(Number);
const services = Number(process.env.BENCH_SERVICES ?? 500);
const rounds = Number(process.env.BENCH_ROUNDS ?? 20);
const warmup = Number(process.env.BENCH_WARMUP ?? 2);
const serverUrl = process.env.BENCH_DATABASE_URL ?? process.env.TERN_TEST_DATABASE_URL;
const kind = serverUrl && (await reachable(serverUrl)) ? 'postgres' : 'pglite';

interface Ack {
  t: number;
  p: number;
  type: string;
  v: string;
}

const wallNow = () => performance.timeOrigin + performance.now();

/**
 * How `npm start` runs the control plane — environment assignments (malloc tuning) and node flags
 * (V8 heap settings) before the entry point: the control plane under test runs the same way.
 */
function startCommand(): { env: Record<string, string>; flags: string[] } {
  const start = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start ?? '';
  const words = start.trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) {
    const w = words.shift()!;
    env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
  }
  if (words[0] !== 'node' || words.at(-1) !== 'apps/api/dist/tern-api.mjs') throw new Error(`bench:xds: expected the start script to be "[VAR=value …] node [flags] apps/api/dist/tern-api.mjs", found "${start}"`);
  return { env, flags: words.slice(1, -1) };
}

/** The control plane under test, bundled as `npm start` bundles the control plane (prestart), next to that bundle (it finds node_modules from there). */
function bundleControlPlane(): string {
  const out = path.join(root, 'apps/api/dist/bench-control-plane.mjs');
  execFileSync(process.execPath, [path.join(root, 'apps/api/scripts/bundle.mjs'), path.join(here, 'xds/control-plane.ts'), out], { stdio: 'inherit' });
  return out;
}

interface Stats {
  rssMb: number;
  heapMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  cpuMs: number;
}

/** The control plane child: requests over IPC, answers in order per type. */
class ControlPlane {
  private readonly waiting = new Map<string, ((m: any) => void)[]>();
  private nextId = 1;
  address = '';
  private readonly failures = new Set<(err: Error) => void>();
  constructor(readonly child: ChildProcess) {
    child.on('message', (m: { type: string; id?: number }) => {
      const key = m.id !== undefined ? `${m.type}:${m.id}` : m.type;
      this.waiting.get(key)?.shift()?.(m);
    });
    child.on('exit', (code) => {
      for (const fail of this.failures) fail(new Error(`control plane exited (${code})`));
    });
  }
  private wait<T>(key: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(key) ?? this.waiting.set(key, []).get(key)!;
      this.failures.add(reject);
      list.push((m: T) => {
        this.failures.delete(reject);
        resolve(m);
      });
    });
  }
  async ready() {
    this.address = (await this.wait<{ address: string }>('ready')).address;
  }
  async apply(objects: unknown[]) {
    const id = this.nextId++;
    const done = this.wait<{ error?: string }>(`applied:${id}`);
    this.child.send({ type: 'apply', id, objects });
    const r = await done;
    if (r.error) throw new Error(`apply failed: ${r.error}`);
  }
  stats(): Promise<Stats> {
    const s = this.wait<Stats>('stats');
    this.child.send({ type: 'stats' });
    return s;
  }
  async close() {
    if (this.child.exitCode !== null) return;
    const closed = this.wait('closed').catch(() => {});
    this.child.send({ type: 'close' });
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    this.child.kill('SIGTERM');
  }
}
const SHARED = { namespace: 'shared', name: 'shared-api' };
function sharedVs(weight: number) {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: SHARED,
    spec: { hosts: ['shared-api.shared.svc.cluster.local'], http: [{ route: [{ destination: { host: 'shared-api.shared.svc.cluster.local', subset: 'v1' }, weight }, { destination: { host: 'shared-api.shared.svc.cluster.local', subset: 'v2' }, weight: 100 - weight }] }] },
  };
}
const sharedDr = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: SHARED,
  spec: { host: 'shared-api.shared.svc.cluster.local', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
};

interface Result {
  proxies: number;
  syncSeconds: number;
  one: { p50: number; p99: number; lastP50: number; lastP99: number; unaffectedPushes: number; affected: number; firstLast: number };
  all: { p50: number; p99: number; lastP50: number; lastP99: number };
  rssMb: number;
  cpuMsPerChange: number;
  idleRssMb: number;
  heapMb: number;
  idleHeapMb: number;
  /** process.memoryUsage() of the control plane (MB, after full collections), for the JSON output. */
  memory: { idle: Stats; after: Stats };
}
const results: Result[] = [];
const controlPlaneBundle = bundleControlPlane();

for (const count of proxyCounts) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-bench-'));
  const scratch = kind === 'postgres' ? await createScratchDatabase(serverUrl!, 'tern_bench') : undefined;
  const dbConfig = { dataDir, databaseUrl: scratch?.url };
  let sim: ChildProcess | undefined;
  let cp: ControlPlane | undefined;
  try {
    const seeder = await createApp({ ...loadConfig({}), ...dbConfig, apiPort: 0 });
    try {
      await growMesh(seeder, 0, services, { workloads: true });
      await seeder.registry.upsertService({ ...SHARED, ports: [{ name: 'http', number: 8080, protocol: 'HTTP' }] }, ACTOR);
      for (const v of ['v1', 'v2']) {
        await seeder.registry.upsertWorkload({ namespace: 'shared', name: `shared-api-${v}`, labels: { app: 'shared-api', version: v }, serviceAccount: 'shared-api', addresses: [`10.250.0.${v === 'v1' ? 1 : 2}`], ports: {} }, ACTOR);
      }
      await seeder.resources.apply(items([sharedDr, sharedVs(50)]), 'apply', ACTOR);
    } finally {
      await seeder.close();
    }
    cp = new ControlPlane(
      spawn(process.execPath, [...startCommand().flags, '--expose-gc', controlPlaneBundle, JSON.stringify(dbConfig)], {
        cwd: root,
        env: { ...process.env, ...startCommand().env },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    await cp.ready();
    const address = cp.address;
    const idle = await cp.stats();

    const acks: Ack[] = [];
    const rdsSeen = new Set<number>();
    let onAck: ((a: Ack) => void) | undefined;
    const t0 = wallNow();
    sim = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'xds/sim.ts'), address, String(count), String(NAMESPACES), String(services), '50'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    readline.createInterface({ input: sim.stdout! }).on('line', (line) => {
      const a = JSON.parse(line) as Ack;
      acks.push(a);
      if (a.type === 'rds') rdsSeen.add(a.p);
      onAck?.(a);
    });
    // Initial sync: every proxy has ACKed its routes.
    while (rdsSeen.size < count) {
      if (sim.exitCode !== null) throw new Error('simulator exited');
      await new Promise((r) => setTimeout(r, 50));
    }
    const syncSeconds = (wallNow() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1500)); // let the initial EDS/RDS traffic settle

    /** Applies `objects` and waits until every proxy in `affected` ACKs new routes; per-proxy ms. */
    async function change(objects: unknown[], affected: Set<number>): Promise<{ perProxy: number[]; last: number; unaffected: number }> {
      const pending = new Set(affected);
      const perProxy: number[] = [];
      let unaffected = 0;
      const start = wallNow();
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timeout: ${pending.size} of ${affected.size} proxies did not ACK`)), 30_000);
        onAck = (a) => {
          if (a.type !== 'rds' || a.t < start) return;
          if (!affected.has(a.p)) {
            unaffected++;
            return;
          }
          if (pending.delete(a.p)) perProxy.push(a.t - start);
          if (pending.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
      await cp!.apply(objects);
      await done;
      // Stragglers to unaffected proxies would show up shortly after.
      await new Promise((r) => setTimeout(r, 300));
      onAck = undefined;
      return { perProxy, last: Math.max(...perProxy), unaffected };
    }

    const ns3 = new Set<number>();
    for (let p = 0; p < count; p++) if (p % NAMESPACES === 3) ns3.add(p);
    const everyone = new Set(Array.from({ length: count }, (_, p) => p));
    // Warm-up: the first change after start pays for cold code paths; it is reported on its own.
    let firstLast = NaN;
    for (let r = 0; r < warmup; r++) {
      const w1 = await change([virtualService(3, r % 2 === 0 ? 70 : 30)], ns3);
      if (r === 0) firstLast = w1.last;
      await change([sharedVs(r % 2 === 0 ? 70 : 30)], everyone);
    }
    const before = await cp.stats();
    const one = { per: [] as number[], last: [] as number[], unaffected: 0 };
    for (let r = 0; r < rounds; r++) {
      const res = await change([virtualService(3, r % 2 === 0 ? 80 : 20)], ns3);
      one.per.push(...res.perProxy);
      one.last.push(res.last);
      one.unaffected += res.unaffected;
    }
    const all = { per: [] as number[], last: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      const res = await change([sharedVs(r % 2 === 0 ? 80 : 20)], everyone);
      all.per.push(...res.perProxy);
      all.last.push(res.last);
    }
    const after = await cp.stats();
    results.push({
      proxies: count,
      syncSeconds,
      one: { p50: percentile(one.per, 50), p99: percentile(one.per, 99), lastP50: percentile(one.last, 50), lastP99: percentile(one.last, 99), unaffectedPushes: one.unaffected, affected: ns3.size, firstLast },
      all: { p50: percentile(all.per, 50), p99: percentile(all.per, 99), lastP50: percentile(all.last, 50), lastP99: percentile(all.last, 99) },
      rssMb: after.rssMb,
      heapMb: after.heapMb,
      idleRssMb: idle.rssMb,
      idleHeapMb: idle.heapMb,
      memory: { idle, after },
      cpuMsPerChange: (after.cpuMs - before.cpuMs) / (2 * rounds),
    });
    console.error(`${count} proxies done`);
  } finally {
    sim?.kill('SIGTERM');
    await cp?.close();
    await scratch?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
console.log(`\n## ADS convergence (${kind}, ${services} services in ${NAMESPACES} namespaces, ${rounds} timed changes of each kind after ${warmup} untimed)\n`);
console.log(
  table(
    ['proxies', 'initial sync s', 'first change after start: last ACK ms', 'one route: affected', 'per-proxy p50 ms', 'p99 ms', 'last ACK p50 ms', 'last ACK p99 ms', 'pushes to unaffected', 'every proxy: p50 ms', 'p99 ms', 'last ACK p50 ms', 'last ACK p99 ms', 'CP CPU ms/change', 'CP RSS MB (mesh only)', 'CP RSS MB (after)', 'CP heap MB (mesh only)', 'CP heap MB (after)'],
    results.map((r) => [
      String(r.proxies),
      r.syncSeconds.toFixed(1),
      f(r.one.firstLast),
      String(r.one.affected),
      f(r.one.p50),
      f(r.one.p99),
      f(r.one.lastP50),
      f(r.one.lastP99),
      String(r.one.unaffectedPushes),
      f(r.all.p50),
      f(r.all.p99),
      f(r.all.lastP50),
      f(r.all.lastP99),
      f(r.cpuMsPerChange),
      f(r.idleRssMb),
      f(r.rssMb),
      f(r.idleHeapMb),
      f(r.heapMb),
    ]),
  ),
);
if (process.env.BENCH_JSON) (await import('node:fs')).writeFileSync(process.env.BENCH_JSON, JSON.stringify(results, null, 2));
process.exit(0);
