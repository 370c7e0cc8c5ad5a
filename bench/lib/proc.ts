// Processes for the proxy benchmark: ports, children pinned to a CPU (taskset), their CPU time and
// RSS from /proc, and stopping them. Shared by bench/proxy.ts and bench/lib/sidecar-pair.ts.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${port}`);
}

const stopping = new Set<ChildProcess>();

/** A child on CPU 0 (where the app and its proxies live); stderr's tail is printed if it dies. */
export function onCpu0(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const child = spawn('taskset', ['-c', '0', cmd, ...args], { cwd: opts.cwd ?? benchRoot, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
  child.on('exit', (code) => {
    if (code && code !== 143 && !stopping.has(child)) console.error(`${cmd} exited ${code}: ${err}`);
  });
  return child;
}

export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  stopping.add(child);
  child.kill('SIGTERM');
  await new Promise((r) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      r(undefined);
    }, 8000);
    child.once('exit', () => {
      clearTimeout(t);
      r(undefined);
    });
  });
}

/** Process tree CPU (user+system) in seconds, from /proc. */
export function cpuSeconds(pid: number): number {
  let total = 0;
  for (const p of [pid, ...children(pid)]) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    } catch {
      /* exited */
    }
  }
  return total;
}

function children(pid: number): number[] {
  try {
    const out = execFileSync('pgrep', ['-P', String(pid)]).toString().trim();
    const direct = out ? out.split('\n').map(Number) : [];
    return direct.flatMap((c) => [c, ...children(c)]);
  } catch {
    return [];
  }
}

export function rssMb(pid: number): number {
  let kb = 0;
  for (const p of [pid, ...children(pid)]) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      /* exited */
    }
  }
  return kb / 1024;
}

/** Runs a load generator on CPU 1 to completion; resolves with its stdout+stderr. */
export function runOnCpu1(cmd: string, args: string[], onLine?: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: benchRoot });
    let out = '';
    let partial = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (!onLine) return;
      partial += d;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        onLine(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${out}`))));
  });
}
