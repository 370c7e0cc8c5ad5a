// Two PGlite instances on one directory corrupt it. Whoever opens a PGlite directory — the
// control plane or the Prisma CLI's schema engine (scripts/schema-engine.mjs) — holds this lock
// file while it does. A lock left by a process that no longer exists is taken over.
// Plain JavaScript so that the CLI adapter, which runs without tsx, can import it too.
import fs from 'node:fs';
import path from 'node:path';

export const LOCK_FILE = '.tern-lock.pid';

export class DirLockedError extends Error {
  constructor(dir, pid) {
    super(`the PGlite directory ${dir} is in use by another process (pid ${pid}); stop it first, or use another TERN_DATA_DIR`);
    this.name = 'DirLockedError';
    this.pid = pid;
  }
}

function alive(pid) {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

export function acquireDirLock(dir, { waitMs = 0 } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const pid = Number(fs.readFileSync(file, 'utf8'));
      if (pid === process.pid || !alive(pid)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (Date.now() >= deadline) throw new DirLockedError(dir, pid);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      try {
        if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.rmSync(file, { force: true });
      } catch {}
    },
  };
}
