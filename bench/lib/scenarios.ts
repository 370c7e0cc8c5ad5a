import type { App } from '../../apps/api/src/app.ts';
import { startHttpServer } from '../../apps/api/src/http/server.ts';
import { analysisInput, cloneSnapshot, loadSnapshot } from '../../apps/api/src/store/snapshot.ts';
import { namespaceOf, serviceName, virtualService } from './mesh.ts';
import { median, now, summarize, type Summary } from './stats.ts';
import { baselineWrite, ternWrite } from './writes.ts';

// The measurements. Each returns plain numbers; run.ts prints them.

/** Tern's writers update the VirtualServices of services 0..WRITERS-1, the baseline those after. */
export const WRITERS_MAX = 4;
const baselineService = (w: number) => WRITERS_MAX + w;

/** Per-service counters, so each write sets a weight different from the one before it. */
const counters = new Map<number, number>();
export function nextWeight(service: number): number {
  const c = counters.get(service) ?? 0;
  counters.set(service, c + 1);
  return 10 + (c % 80); // 10..89; the seed is 50 and consecutive values always differ
}
export const resetWeights = () => counters.clear();

export const tern = (app: App, w = 0) => ternWrite(app, w, nextWeight(w));
export const baseline = (app: App, w = 0) => baselineWrite(app, baselineService(w), nextWeight(baselineService(w)));

export interface LatencyResult {
  /** Tern's write right after another Tern write in this process: the writer reuses its cached mesh. */
  warm: Summary;
  /** Tern's write right after a write it did not make (here the baseline's; in production another replica's): the writer catches up from the change log. */
  cold: Summary;
  baseline: Summary;
  /** Resource rows the last Tern write wrote (the VirtualService itself, plus any whose findings it refreshed). */
  rowsWritten: number;
}

/**
 * Rounds of: one baseline write, one Tern write (cold: the baseline moved the revision, so the
 * writer's cached mesh is stale and it loads the mesh), one Tern write (warm: nothing happened since
 * its last commit, so the cache is used). Interleaved so all three see the same database, cache
 * and GC conditions. At most `rounds` rounds or `seconds`, but at least `minRounds`.
 */
export async function latency(app: App, opts: { warmup: number; rounds: number; minRounds: number; seconds: number }): Promise<LatencyResult> {
  for (let i = 0; i < opts.warmup; i++) {
    await baseline(app);
    await tern(app);
    await tern(app);
  }
  const warm: number[] = [];
  const cold: number[] = [];
  const b: number[] = [];
  const time = async (into: number[], fn: () => Promise<void>) => {
    const s = now();
    await fn();
    into.push(now() - s);
  };
  const deadline = now() + opts.seconds * 1000;
  while (b.length < opts.rounds && (b.length < opts.minRounds || now() < deadline)) {
    await time(b, () => baseline(app));
    await time(cold, () => tern(app));
    await time(warm, () => tern(app));
  }
  return { warm: summarize(warm), cold: summarize(cold), baseline: summarize(b), rowsWritten: await rowsWrittenWith(app, 0) };
}

export interface StallResult {
  warm: Summary;
  cold: Summary;
  baseline: Summary;
}

/**
 * How long each write keeps the event loop from running anything else: a 1 ms interval timer
 * runs while one write is in flight, and the longest gap between its ticks is the write's stall
 * (a request arriving meanwhile, on this replica, waits at least that long). Same rounds as
 * `latency`, with a short pause between writes so the loop runs between them.
 */
export async function stalls(app: App, opts: { rounds: number; minRounds: number; seconds: number }): Promise<StallResult> {
  const probe = async (into: number[], write: () => Promise<void>) => {
    let last = now();
    let worst = 0;
    const iv = setInterval(() => {
      const t = now();
      worst = Math.max(worst, t - last);
      last = t;
    }, 1);
    await new Promise((r) => setTimeout(r, 3));
    last = now();
    await write();
    await new Promise((r) => setTimeout(r, 3)); // lets the timer record the gap that ends with the write
    clearInterval(iv);
    into.push(worst);
  };
  const warm: number[] = [];
  const cold: number[] = [];
  const b: number[] = [];
  const deadline = now() + opts.seconds * 1000;
  while (b.length < opts.rounds && (b.length < opts.minRounds || now() < deadline)) {
    await probe(b, () => baseline(app));
    await probe(cold, () => tern(app));
    await probe(warm, () => tern(app));
  }
  return { warm: summarize(warm), cold: summarize(cold), baseline: summarize(b) };
}

/** How many Resource rows were written by the transaction that last wrote service i's VirtualService. */
export async function rowsWrittenWith(app: App, i: number): Promise<number> {
  const [r] = await app.db.prisma.$queryRaw<Array<{ n: bigint }>>`
    SELECT count(*) AS n FROM "Resource"
    WHERE xmin::text = (SELECT xmin::text FROM "Resource" WHERE kind = 'VirtualService' AND namespace = ${namespaceOf(i)} AND name = ${serviceName(i)})`;
  return Number(r!.n);
}

export interface Breakdown {
  rows: { resources: number; services: number; workloads: number };
  loadSnapshot: number;
  /** The three queries of loadSnapshot timed one after the other (they share one connection). */
  loadByTable: { resources: number; services: number; workloads: number };
  analysisInput: number;
  analyze: number;
  cloneSnapshot: number;
  diagnostics: number;
}

/**
 * The big steps of writer.ts, called directly (medians of `reps` runs): loadSnapshot inside a
 * Prisma transaction as the writer does (on a cold write), then analysisInput + analyze and
 * cloneSnapshot (on every write).
 */
export async function breakdown(app: App, reps: number): Promise<Breakdown> {
  const load: number[] = [];
  const byTable = { resources: [] as number[], services: [] as number[], workloads: [] as number[] };
  const input: number[] = [];
  const analyze: number[] = [];
  const clone: number[] = [];
  let rows = { resources: 0, services: 0, workloads: 0 };
  let diagnostics = 0;
  for (let r = 0; r < reps; r++) {
    let snapshot!: Awaited<ReturnType<typeof loadSnapshot>>;
    await app.db.prisma.$transaction(
      async (tx) => {
        const s = now();
        snapshot = await loadSnapshot(tx);
        load.push(now() - s);
        for (const t of ['resources', 'services', 'workloads'] as const) {
          const s2 = now();
          if (t === 'resources') await tx.resource.findMany();
          else if (t === 'services') await tx.service.findMany();
          else await tx.workload.findMany();
          byTable[t].push(now() - s2);
        }
      },
      { maxWait: 10_000, timeout: 30_000 },
    );
    rows = { resources: snapshot.resources.size, services: snapshot.services.size, workloads: snapshot.workloads.size };
    let s = now();
    const inp = analysisInput(snapshot);
    input.push(now() - s);
    s = now();
    const diags = app.analyze(inp);
    analyze.push(now() - s);
    diagnostics = diags.length;
    s = now();
    cloneSnapshot(snapshot);
    clone.push(now() - s);
  }
  const loadByTable = { resources: median(byTable.resources), services: median(byTable.services), workloads: median(byTable.workloads) };
  return { rows, loadSnapshot: median(load), loadByTable, analysisInput: median(input), analyze: median(analyze), cloneSnapshot: median(clone), diagnostics };
}

export interface ThroughputResult {
  writers: number;
  writes: number;
  seconds: number;
  perSecond: number;
  latency: Summary;
}

/**
 * `writers` loops issuing writes back to back for `seconds`; each writer updates its own
 * VirtualService (writer w through `write(w)`, which picks the replica).
 */
export async function throughput(write: (w: number) => Promise<void>, writers: number, seconds: number): Promise<ThroughputResult> {
  const lat: number[] = [];
  const start = now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      while (now() < end) {
        const s = now();
        await write(w);
        lat.push(now() - s);
      }
    }),
  );
  const elapsed = (now() - start) / 1000;
  return { writers, writes: lat.length, seconds: elapsed, perSecond: lat.length / elapsed, latency: summarize(lat) };
}

export interface HttpResult {
  healthz: Summary;
  getOne: Summary;
  apply: Summary;
}

/**
 * A running API (startHttpServer) on this app: GET /healthz (baseline), an authenticated
 * GET of one resource, and POST /api/v1/apply of one small VirtualService (an update), interleaved.
 */
export async function http(app: App, opts: { requests: number; warmup: number }): Promise<HttpResult> {
  const password = 'bench-admin-password-not-secret';
  await app.auth.ensureAdmin(password);
  const server = await startHttpServer(app, '127.0.0.1', 0);
  try {
    const call = async (method: string, p: string, body?: unknown, token?: string) => {
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${server.url}${p}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 300)}`);
      return JSON.parse(text) as Record<string, any>;
    };
    const { sessionToken } = await call('POST', '/api/v1/auth/login', { username: 'admin', password });
    const { token } = await call('POST', '/api/v1/tokens', { name: 'bench', role: 'admin' }, sessionToken);
    const service = 0;
    const getPath = `/api/v1/resources/vs/${namespaceOf(service)}/${serviceName(service)}`;
    const apply = async () => {
      const r = await call('POST', '/api/v1/apply', { resources: [virtualService(service, nextWeight(service))] }, token);
      if (r.results?.[0]?.action !== 'updated') throw new Error(`POST /api/v1/apply: expected an update, got ${JSON.stringify(r)}`);
    };
    for (let i = 0; i < opts.warmup; i++) {
      await call('GET', '/healthz');
      await call('GET', getPath, undefined, token);
      await apply();
    }
    const h: number[] = [];
    const g: number[] = [];
    const a: number[] = [];
    for (let i = 0; i < opts.requests; i++) {
      let s = now();
      await call('GET', '/healthz');
      h.push(now() - s);
      s = now();
      await call('GET', getPath, undefined, token);
      g.push(now() - s);
      s = now();
      await apply();
      a.push(now() - s);
    }
    return { healthz: summarize(h), getOne: summarize(g), apply: summarize(a) };
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}
