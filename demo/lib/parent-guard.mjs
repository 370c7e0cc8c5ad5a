// Preloaded into every demo sidecar (`node --import demo/lib/parent-guard.mjs tern-proxy.mjs`) and
// into npm start's children (scripts/start/child.ts; they run in process groups of their own, so
// nothing else would stop them): when the process that started it goes away without stopping it
// (SIGKILL, a crash), the child is re-parented, its ppid changes, and it stops itself the ordinary
// way (SIGTERM: drain, exit).
// A check every 500 ms costs nothing measurable and needs no change to the proxy.
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) {
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }
}, 500);
timer.unref();
