// Preloaded into the launcher's children (`node --import scripts/start/parent-guard.mjs …`): they
// run in their own process group, so if the launcher dies without stopping them (SIGKILL, a
// crash) nothing else would. Re-parented, the child stops itself the ordinary way (SIGTERM).
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) {
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }
}, 500);
timer.unref();
