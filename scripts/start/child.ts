import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// The demo's guard: the same rule for the launcher's children as for the demo's sidecars.
const GUARD = path.join(import.meta.dirname, '../../demo/lib/parent-guard.mjs');

// A long-running child of the launcher (control plane, console). It runs in its own process
// group, so a terminal's Ctrl-C reaches the launcher only and the launcher stops the children in
// order (demo, console, control plane); its output goes to a log file, not the terminal. A
// preloaded guard stops it if the launcher dies without doing so.

export interface ManagedChild {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  running(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to its whole process group. */
  kill(): void;
  /** The last lines of its log, for an error message. */
  tail(lines?: number): string;
}

export function startChild(name: string, args: string[], o: { cwd: string; env: NodeJS.ProcessEnv; logFile: string }): ManagedChild {
  const fd = fs.openSync(o.logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, ['--import', GUARD, ...args], { cwd: o.cwd, env: o.env, stdio: ['ignore', fd, fd], detached: true });
  } finally {
    fs.closeSync(fd);
  }
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      done = true;
      fs.appendFileSync(o.logFile, `\nlauncher: could not start: ${err.message}\n`);
      resolve(err.message);
    });
  });
  const signalGroup = (sig: NodeJS.Signals) => {
    if (done || child.pid === undefined) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  return {
    name,
    pid: child.pid ?? -1,
    logFile: o.logFile,
    exited,
    running: () => !done,
    async stop(graceMs = 10_000) {
      if (done) return;
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    kill: () => signalGroup('SIGKILL'),
    tail(lines = 20) {
      try {
        return fs.readFileSync(o.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
  };
}
