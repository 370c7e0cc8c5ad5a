import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../apps/api/test/ports.ts';
import { ensureWebBuiltSync } from '../scripts/web-build.ts';

// `npm start` as a user runs it: npm in its own process group (a terminal's foreground job),
// Ctrl-C as the terminal sends it (SIGINT to the whole group), a data directory reused by a second
// start. Ports and the data directory are the launcher's settings, so it runs beside anything else.

const repoRoot = path.resolve(import.meta.dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Every process below `root` now (from /proc: pid -> ppid). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [pid, pp] of parent) if (pp === p) {
      out.push(pid);
      walk(pid);
    }
  };
  walk(root);
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

async function waitFor<T>(what: string, ms: number, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A block of 100 free ports (the demo's), below the ephemeral range. */
async function freeBlock(): Promise<number> {
  const free = (port: number) => new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  for (;;) {
    const base = 20000 + 100 * Math.floor(Math.random() * 120);
    let ok = true;
    for (let p = base; p < base + 100 && ok; p++) ok = await free(p);
    if (ok) return base;
  }
}

interface Run {
  child: ChildProcess;
  output: () => string;
  summary: { consoleUrl: string; password: string; apiUrl: string; bookinfo?: string };
  /**
   * SIGINT to the process group, as Ctrl-C in a terminal; resolves with how npm ended (npm
   * re-raises the signal its script got) and every process that had been running below npm.
   */
  interrupt(): Promise<{ code: number | null; signal: NodeJS.Signals | null; pids: number[] }>;
}

const running = new Set<ChildProcess>();

async function npmStart(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<Run> {
  let out = '';
  const child = spawn(npm, ['start', '--silent', '--', ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.add(child);
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.once('exit', (code, signal) => (ended = { code, signal }));
  let pids = new Set<number>();
  const summary = await waitFor(`the launcher's summary\n${out}`, timeoutMs, () => {
    for (const p of descendants(child.pid!)) pids.add(p);
    if (ended) throw new Error(`npm start exited (${ended.code ?? ended.signal}):\n${out}`);
    if (!out.includes('Ctrl-C stops everything.')) return undefined;
    const m = /Console: (http:\/\/127\.0\.0\.1:\d+) — sign in as admin (?:\/ (\S+)|with your password)/.exec(out);
    const api = /API: +(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
    assert.ok(m && api, `summary lines in:\n${out}`);
    const bookinfo = /Bookinfo: (\S+)/.exec(out)?.[1];
    return { consoleUrl: m[1]!, password: m[2] ?? '', apiUrl: api[1]!, ...(bookinfo ? { bookinfo } : {}) };
  });
  for (const p of descendants(child.pid!)) pids.add(p);
  return {
    child,
    output: () => out,
    summary,
    async interrupt() {
      for (const p of descendants(child.pid!)) pids.add(p);
      process.kill(-child.pid!, 'SIGINT');
      const end = await waitFor(`npm start to stop after SIGINT\n${out}`, 30_000, () => ended);
      running.delete(child);
      return { ...end, pids: [...pids] };
    },
  };
}

async function login(apiUrl: string, password: string): Promise<Response> {
  return fetch(`${apiUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
}

async function token(apiUrl: string, password: string): Promise<string> {
  const r = await login(apiUrl, password);
  assert.equal(r.status, 200, await r.clone().text());
  return ((await r.json()) as { sessionToken: string }).sessionToken;
}

describe('npm start', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    // The console's production build must exist (the launcher would build it; a test must not wait for that).
    ensureWebBuiltSync();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-npm-start-'));
    const block = await freeBlock();
    // Every other port outside the demo's block (the demo would take it).
    const taken = new Set<number>();
    const outside = async () => {
      for (;;) {
        const p = await freePort();
        if ((p < block || p >= block + 100) && !taken.has(p)) {
          taken.add(p);
          return String(p);
        }
      }
    };
    env = {
      TERN_DATA_DIR: dataDir,
      TERN_API_PORT: await outside(),
      TERN_XDS_PORT: await outside(),
      TERN_CONSOLE_PORT: await outside(),
      TERN_DEMO_GATEWAY_PORT: await outside(),
      TERN_DEMO_BASE_PORT: String(block),
      TERN_DEMO_RPS: '5',
      TERN_ADMIN_PASSWORD: '',
      TERN_LOG_LEVEL: 'warn',
    };
  });

  after(() => {
    for (const c of running) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  let firstPassword = '';

  test('--no-demo: control plane and console, the printed sign-in works, Ctrl-C leaves no process behind', async () => {
    const run = await npmStart(['--no-demo'], env);
    const { consoleUrl, password, apiUrl } = run.summary;
    firstPassword = password;
    assert.equal(apiUrl, `http://127.0.0.1:${env.TERN_API_PORT}`);
    assert.equal(consoleUrl, `http://127.0.0.1:${env.TERN_CONSOLE_PORT}`);
    assert.doesNotMatch(run.output(), /Bookinfo/);
    const stat = fs.statSync(path.join(dataDir, 'admin-password'));
    assert.equal(stat.mode & 0o777, 0o600);

    assert.equal((await fetch(`${consoleUrl}/login`)).status, 200);
    // The console's own API proxy reaches the control plane.
    const viaConsole = await fetch(`${consoleUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    assert.equal(viaConsole.status, 200);
    assert.equal((await login(apiUrl, 'not-the-password')).status, 401);

    const t = await token(apiUrl, password);
    const put = await fetch(`${apiUrl}/api/v1/registry/services/default/kept-across-starts`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t}` },
      body: JSON.stringify({ namespace: 'default', name: 'kept-across-starts', ports: [{ number: 8000, protocol: 'HTTP' }] }),
    });
    assert.equal(put.status, 200, await put.text());

    const { code, signal, pids } = await run.interrupt();
    assert.ok(code === 0 || signal === 'SIGINT', `npm ended with ${code ?? signal}:\n${run.output()}`);
    assert.match(run.output(), /SIGINT: stopping/);
    // One Ctrl-C is one orderly stop (npm does not hand the launcher a second, forcing one).
    assert.doesNotMatch(run.output(), /again: killing/);
    assert.ok(pids.length >= 3, `npm, the launcher, the control plane and the console: ${pids}`);
    await waitFor('every process to be gone', 5_000, () => (pids.some(alive) ? undefined : true)).catch(() => {
      assert.fail(`still running after Ctrl-C: ${pids.filter(alive).map((p) => `${p} ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ')}`).join('; ')}`);
    });
    assert.match(run.output(), /Stopped\./);
  });

  test('a second start, with the demo, reuses the data: same password, same resources, Bookinfo through the gateway', async () => {
    assert.ok(firstPassword, 'the first start ran');
    const run = await npmStart([], env, 90_000);
    const { password, apiUrl, bookinfo } = run.summary;
    assert.equal(password, firstPassword);
    const t = await token(apiUrl, password);
    const services = (await (await fetch(`${apiUrl}/api/v1/registry/services?namespace=default`, { headers: { authorization: `Bearer ${t}` } })).json()) as { services: { name: string }[] };
    const names = services.services.map((x) => x.name);
    assert.ok(names.includes('kept-across-starts'), `the first run's service is still there: ${names}`);
    // The demo registered Bookinfo through the launcher's sign-in.
    for (const name of ['productpage', 'details', 'reviews', 'ratings']) assert.ok(names.includes(name), `${name} registered: ${names}`);

    assert.equal(bookinfo, `http://127.0.0.1:${env.TERN_DEMO_GATEWAY_PORT}/productpage`);
    const page = await fetch(bookinfo!);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Book Details/);
    assert.match(html, /Book Reviews/);

    const { code, signal, pids } = await run.interrupt();
    assert.ok(code === 0 || signal === 'SIGINT', `npm ended with ${code ?? signal}:\n${run.output()}`);
    assert.match(run.output(), /SIGINT: stopping/);
    // One Ctrl-C is one orderly stop (npm does not hand the launcher a second, forcing one).
    assert.doesNotMatch(run.output(), /again: killing/);
    // npm, sh, the launcher, the control plane, the console and seven sidecars at least.
    assert.ok(pids.length >= 10, `processes seen: ${pids.length}`);
    await waitFor('every process to be gone', 5_000, () => (pids.some(alive) ? undefined : true)).catch(() => {
      assert.fail(`still running after Ctrl-C: ${pids.filter(alive).map((p) => `${p} ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ')}`).join('; ')}`);
    });
  });

  test("a password set by the user is theirs: used, not printed; a wrong one stops the demo's start, naming it", async () => {
    const own = await npmStart(['--no-demo'], { ...env, TERN_ADMIN_PASSWORD: firstPassword });
    assert.match(own.output(), /sign in as admin with your password \(TERN_ADMIN_PASSWORD\)/);
    assert.ok(!own.output().includes(firstPassword), 'the password is not printed');
    await token(own.summary.apiUrl, firstPassword);
    await own.interrupt();

    const child = spawn(npm, ['start', '--silent'], { cwd: repoRoot, env: { ...process.env, ...env, TERN_ADMIN_PASSWORD: 'not-the-admin-password' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(child);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const pids = new Set<number>();
    const poll = setInterval(() => descendants(child.pid!).forEach((p) => pids.add(p)), 100);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearInterval(poll);
    running.delete(child);
    assert.equal(code, 1, out);
    assert.match(out, /cannot sign in as admin \(HTTP 401\): TERN_ADMIN_PASSWORD is not the password of the user "admin" in this database/);
    assert.match(out, /the demo needs to sign in as admin/);
    assert.doesNotMatch(out, /Ctrl-C stops everything/);
    await waitFor('every process to be gone', 10_000, () => ([...pids].some(alive) ? undefined : true));
  });

  test('a taken port is named, with the setting that moves it, before anything starts', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(Number(env.TERN_CONSOLE_PORT), '127.0.0.1', () => r()));
    const apiLog = path.join(dataDir, 'logs', 'api.log');
    const apiLogBefore = fs.statSync(apiLog, { throwIfNoEntry: false })?.mtimeMs;
    try {
      const child = spawn(npm, ['start', '--silent', '--', '--no-demo'], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      assert.notEqual(code, 0);
      assert.match(out, new RegExp(`port ${env.TERN_CONSOLE_PORT} on 127\\.0\\.0\\.1 \\(the console\\) is already in use.*TERN_CONSOLE_PORT`));
      assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
      assert.equal(fs.statSync(apiLog, { throwIfNoEntry: false })?.mtimeMs, apiLogBefore, 'the control plane was not started');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  test('bad settings are refused with the variable named', async () => {
    const child = spawn(npm, ['start', '--silent', '--', '--no-demo'], { cwd: repoRoot, env: { ...process.env, ...env, TERN_CONSOLE_PORT: 'abc' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stderr.on('data', (d) => (out += d));
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 2);
    assert.match(out, /TERN_CONSOLE_PORT must be a port number \(1-65535\), got "abc"/);
  });
});
