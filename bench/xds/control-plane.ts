// The control plane under test for `npm run bench:xds`, in its own process: it opens the database
// the parent seeded (as a restarted replica would), serves ADS, and applies the parent's changes
// through the same API call a request would make. Its RSS, heap and CPU are then its own, not the
// seeding's. Talks to the parent over the IPC channel:
//   parent -> child  {type: 'apply', id, objects} | {type: 'stats'} | {type: 'close'}
//   child -> parent  {type: 'ready', address} | {type: 'applied', id, error?} | {type: 'stats', rssMb, heapMb, cpuMs} | {type: 'closed'}
//
//   node --import tsx bench/xds/control-plane.ts CONFIG_JSON   (dataDir, databaseUrl)
process.env.TERN_LOG_LEVEL ??= 'warn';
const { createApp } = await import('../../apps/api/src/app.ts');
const { loadConfig } = await import('../../apps/api/src/config.ts');
const { items, ACTOR } = await import('../lib/mesh.ts');

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
  return { type: 'stats', rssMb: mem.rss / 1024 / 1024, heapMb: mem.heapUsed / 1024 / 1024, cpuMs: (cpu.user + cpu.system) / 1000 };
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
