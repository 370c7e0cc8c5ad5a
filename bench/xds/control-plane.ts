// The control plane under test for `npm run bench:xds`, in its own process: it opens the database
// the parent seeded (as a restarted replica would), serves ADS, and applies the parent's changes
// through the same API call a request would make. Its RSS, heap and CPU are then its own, not the
// seeding's. Talks to the parent over the IPC channel:
//   parent -> child  {type: 'apply', id, objects} | {type: 'stats'} | {type: 'close'}
//   child -> parent  {type: 'ready', address} | {type: 'applied', id, error?} | {type: 'stats', rssMb, heapMb, ...} | {type: 'closed'}
//
//   node [the node flags of `npm start`] --expose-gc BUNDLE CONFIG_JSON   (dataDir, databaseUrl)
// where BUNDLE is this file bundled as `npm start` bundles the control plane (bench/xds.ts builds it).
//
// For finding where memory goes: BENCH_HEAP_SNAPSHOT=dir writes a heap snapshot at every stats
// request (idle, before and after the timed changes); BENCH_MEM_TRACE=1 prints the peak RSS, heap
// and ArrayBuffer memory of every second to stderr.
process.env.TERN_LOG_LEVEL ??= 'warn';
const { createApp } = await import('../../apps/api/src/app.ts');
const { loadConfig } = await import('../../apps/api/src/config.ts');
const { items, ACTOR } = await import('../lib/mesh.ts');
const v8 = await import('node:v8');

type Msg = { type: 'apply'; id: number; objects: unknown[] } | { type: 'stats' } | { type: 'close' };

const given = JSON.parse(process.argv[2] ?? '{}') as { dataDir: string; databaseUrl?: string };
const app = await createApp({ ...loadConfig({}), dataDir: given.dataDir, databaseUrl: given.databaseUrl, apiPort: 0 });
const address = await app.xds.start('127.0.0.1', 0);
const send = (m: unknown) => process.send!(m);

// BENCH_CPU_PROF=dir: profile from here (mesh loaded) to the close request.
const profileDir = process.env.BENCH_CPU_PROF;
const { Session } = await import('node:inspector/promises');
const session = profileDir ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
async function writeProfile() {
  if (!session || !profileDir) return;
  const { profile } = await session.post('Profiler.stop');
  const fs = await import('node:fs');
  fs.mkdirSync(profileDir, { recursive: true });
  fs.writeFileSync(`${profileDir}/control-plane-${Date.now()}.cpuprofile`, JSON.stringify(profile));
}

function stats() {
  // After full collections, so the figure is what the control plane holds, not garbage not yet collected.
  const cpu = process.cpuUsage(); // before the collections, which are the benchmark's, not the control plane's
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const mem = process.memoryUsage();
  const mb = (n: number) => n / 1024 / 1024;
  if (process.env.BENCH_HEAP_SNAPSHOT) v8.writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT}/control-plane-${Date.now()}.heapsnapshot`);
  return { type: 'stats', rssMb: mb(mem.rss), heapMb: mb(mem.heapUsed), heapTotalMb: mb(mem.heapTotal), externalMb: mb(mem.external), arrayBuffersMb: mb(mem.arrayBuffers), cpuMs: (cpu.user + cpu.system) / 1000 };
}

if (process.env.BENCH_MEM_TRACE) {
  // Sampled, so a peak between two samples is missed; good enough to see what grows when.
  let peak = { ab: 0, ext: 0, heap: 0, rss: 0 };
  setInterval(() => {
    const m = process.memoryUsage();
    peak = { ab: Math.max(peak.ab, m.arrayBuffers), ext: Math.max(peak.ext, m.external), heap: Math.max(peak.heap, m.heapUsed), rss: Math.max(peak.rss, m.rss) };
  }, 20).unref();
  setInterval(() => {
    const f = (n: number) => (n / 1048576).toFixed(0);
    process.stderr.write(`mem peak: rss ${f(peak.rss)} heapUsed ${f(peak.heap)} external ${f(peak.ext)} arrayBuffers ${f(peak.ab)}\n`);
    peak = { ab: 0, ext: 0, heap: 0, rss: 0 };
  }, 1000).unref();
}
process.on('message', (m: Msg) => {
  if (m.type === 'apply') {
    app.resources.apply(items(m.objects), 'apply', ACTOR).then(
      () => send({ type: 'applied', id: m.id }),
      (err: Error) => send({ type: 'applied', id: m.id, error: err.message }),
    );
  } else if (m.type === 'stats') {
    send(stats());
  } else if (m.type === 'close') {
    void writeProfile()
      .then(() => app.close())
      .finally(() => {
        send({ type: 'closed' });
        process.exit(0);
      });
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', address });
