// `npm start`: the whole product in one command. Builds what is stale (control plane and sidecar
// bundles, the console's production build), starts the control plane on ./.tern, the console on
// :3000 and, unless --no-demo, the Bookinfo demo mesh with its traffic (demo/mesh.ts); prints where
// everything is and how to sign in. Ctrl-C (or SIGTERM) stops it all, in order; a second Ctrl-C
// forces. `npm run start:api` starts the control plane alone, as `npm start` used to.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildWeb, isWebBuildFresh, nextBin, webDir, webDistDir } from './web-build.ts';
import { API_BUNDLE, isBundleFresh, runBundle, type Bundle } from './start/bundles.ts';
import { canConnect, describeTakenPort, firstTakenPort, type PortNeed } from './start/ports.ts';
import { adminPasswordFile, resolveAdminPassword } from './start/admin-password.ts';
import { startChild, type ManagedChild } from './start/child.ts';
import { readSettings, usage, type Settings } from './start/settings.ts';
// Types only: the demo's code is loaded when it is started (not with --no-demo).
import type { DemoMesh } from '../demo/mesh.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');


class StartError extends Error {}

const say = (line: string) => process.stdout.write(line + '\n');

let stopping = false;
const abort = new AbortController();
const children: ManagedChild[] = [];
let demo: DemoMesh | undefined;
let demoStarting: Promise<DemoMesh> | undefined;
let shutdownDone: Promise<void> | undefined;

async function main(): Promise<void> {
  let s: Settings;
  try {
    s = readSettings(process.argv.slice(2), process.env, process.cwd());
  } catch (err) {
    process.stderr.write(`tern start: ${(err as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (s.help) {
    process.stdout.write(usage);
    return;
  }
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const t0 = Date.now();

  const needs: PortNeed[] = [
    { host: s.apiHost, port: s.apiPort, what: 'the control plane API', setting: 'TERN_API_PORT' },
    { host: s.xdsHost, port: s.xdsPort, what: 'the control plane xDS server', setting: 'TERN_XDS_PORT' },
    { host: '127.0.0.1', port: s.consolePort, what: 'the console', setting: 'TERN_CONSOLE_PORT' },
  ];
  if (s.demo) {
    needs.push({ host: '127.0.0.1', port: s.gatewayPort, what: 'the demo gateway (Bookinfo)', setting: 'TERN_DEMO_GATEWAY_PORT' });
    for (let p = s.demoBasePort; p < s.demoBasePort + 100; p++) {
      needs.push({ host: '127.0.0.1', port: p, what: `the demo's ports ${s.demoBasePort}-${s.demoBasePort + 99}`, setting: 'TERN_DEMO_BASE_PORT' });
    }
  }
  const taken = await firstTakenPort(needs);
  if (taken) throw new StartError(describeTakenPort(taken));

  fs.mkdirSync(s.logDir, { recursive: true });
  const admin = resolveAdminPassword(s.dataDir, process.env);

  // The bundles take a second each; the console build is what takes time, and only after a change.
  // The sidecar's bundle is built by the demo's own ensureProxyBundle (a lock shared with tests).
  const bundles: Bundle[] = [API_BUNDLE].filter((b) => !isBundleFresh(b));
  const demoModule = s.demo ? import('../demo/mesh.ts') : undefined;
  const proxyBundle = demoModule?.then((m) => m.ensureProxyBundle((line) => say(`  demo: ${line}`)));
  const distDir = webDistDir();
  const webStale = !isWebBuildFresh(distDir);
  if (bundles.length) say(`Building ${bundles.map((b) => b.name).join(' and ')}…`);
  await Promise.all([...bundles.map((b) => runBundle(b, abort.signal)), proxyBundle]);
  if (stopping) return;

  const phases: string[] = [];
  const mark = (what: string) => phases.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  let signedIn = false;
  const api = startApi(s, admin.password);
  // The console (build, start) and the control plane then the demo go side by side: on a first
  // start the control plane's migrations and the demo's sidecars overlap the console build.
  const consoleUp = (async () => {
    if (webStale) {
      say('Building the console (next build; only after a change, ~30-60 s)…');
      await buildWeb(distDir, abort.signal);
      mark('console built');
    }
    if (stopping) return;
    await waitForConsole(s, startConsole(s));
    mark('console');
  })();
  const meshUp = (async () => {
    const banner = await waitForApi(s, api);
    mark('control plane');
    if (stopping) return;
    const token = await signIn(s, admin, banner);
    signedIn = token !== undefined;
    if (!s.demo || stopping) return;
    if (!token) throw new StartError('the demo needs to sign in as admin (see above); start with --no-demo to run without it');
    say('Starting the demo mesh (Bookinfo with sidecars)…');
    demoStarting = startDemo(s, token, (await demoModule!).startDemoMesh, (await proxyBundle)!);
    demo = await demoStarting.catch((err: Error) => {
      throw new StartError(`the demo mesh did not start: ${err.message}\n(its log: ${path.join(s.logDir, 'demo.log')}; \`npm start -- --no-demo\` starts without it)`);
    });
    mark('demo');
  })();
  await Promise.all([consoleUp, meshUp]);
  if (stopping) return;

  const lines = ['', `Tern is up in ${((Date.now() - t0) / 1000).toFixed(1)} s (ready: ${phases.join(', ')}).`];
  if (admin.source === 'env') lines.push(`Console: ${s.consoleUrl} — sign in as admin with your password (TERN_ADMIN_PASSWORD)`);
  else if (!signedIn) lines.push(`Console: ${s.consoleUrl} — sign in as admin with the password this database was created with (not ${shortPath(adminPasswordFile(s.dataDir))}: see above)`);
  else lines.push(`Console: ${s.consoleUrl} — sign in as admin / ${admin.password}`);
  lines.push(`API:     ${s.apiUrl}  (REST ${s.apiUrl}/api/v1, OpenAPI ${s.apiUrl}/api/openapi.json); xDS ${s.xdsConnect}`);
  if (demo) lines.push(`Bookinfo: ${demo.gatewayUrl}/productpage  (the demo mesh; traffic ${s.traffic ? `${s.traffic.rps} req/s` : 'off'})`);
  lines.push(`CLI:     npx tern login --server ${s.apiUrl} -u admin`);
  lines.push(`Data:    ${shortPath(s.dataDir)} (delete it to start afresh); logs in ${shortPath(s.logDir)}`);
  lines.push('Ctrl-C stops everything.');
  say(lines.join('\n'));

  // A child that dies on its own takes the rest down: a half-running product is confusing.
  for (const c of children) {
    void c.exited.then((code) => {
      if (stopping) return;
      process.stderr.write(`\ntern start: the ${c.name} exited (${code}). Its last lines (${c.logFile}):\n${c.tail()}\n`);
      void shutdown(1);
    });
  }
}

/** Relative to the working directory when inside it (./.tern), else absolute. */
function shortPath(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? `./${r}` : p;
}

function startApi(s: Settings, adminPassword: string): ManagedChild {
  const c = startChild('control plane', ['--max-semi-space-size=4', API_BUNDLE.outfile], {
    cwd: repoRoot,
    // The environment of `npm run start:api` (package.json says why).
    env: { ...process.env, MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '1048576', TERN_DATA_DIR: s.dataDir, TERN_ADMIN_PASSWORD: adminPassword },
    logFile: path.join(s.logDir, 'api.log'),
  });
  children.push(c);
  return c;
}

/** Ready when the REST API says so and the xDS port accepts (it opens after the HTTP server). Returns the banner. */
async function waitForApi(s: Settings, c: ManagedChild): Promise<string> {
  const deadline = Date.now() + s.readyTimeoutMs;
  while (!stopping) {
    if (!c.running()) throw new StartError(`the control plane exited during start (${await c.exited}). Its last lines (${c.logFile}):\n${c.tail()}`);
    const ready = await fetch(`${s.apiUrl}/readyz`).then((r) => r.ok, () => false);
    if (ready && (await canConnect(s.xdsConnectHost, s.xdsPort))) return fs.readFileSync(c.logFile, 'utf8');
    if (Date.now() > deadline) throw new StartError(`the control plane was not ready within ${s.readyTimeoutMs / 1000} s. Its last lines (${c.logFile}):\n${c.tail()}`);
    await sleep(200);
  }
  return '';
}

function startConsole(s: Settings): ManagedChild {
  const c = startChild('console', [nextBin, 'start', '-p', String(s.consolePort), '-H', '127.0.0.1'], {
    cwd: webDir,
    env: { ...process.env, TERN_API_URL: s.apiUrl, NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1' },
    logFile: path.join(s.logDir, 'console.log'),
  });
  children.push(c);
  return c;
}

async function waitForConsole(s: Settings, c: ManagedChild): Promise<void> {
  const deadline = Date.now() + s.readyTimeoutMs;
  while (!stopping) {
    if (!c.running()) throw new StartError(`the console exited during start (${await c.exited}). Its last lines (${c.logFile}):\n${c.tail()}`);
    if (await fetch(`${s.consoleUrl}/login`).then((r) => r.ok, () => false)) return;
    if (Date.now() > deadline) throw new StartError(`the console did not answer within ${s.readyTimeoutMs / 1000} s. Its last lines (${c.logFile}):\n${c.tail()}`);
    await sleep(200);
  }
}

/**
 * A session token for the demo (REST login, as the console signs in). Undefined, with a warning,
 * when the stored password does not open this database (its admin was created by another start).
 */
async function signIn(s: Settings, admin: { password: string; source: string }, banner: string): Promise<string | undefined> {
  const r = await fetch(`${s.apiUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: admin.password }) });
  if (r.ok) return ((await r.json()) as { sessionToken: string }).sessionToken;
  const created = banner.includes('First start: created user');
  const why =
    admin.source === 'env'
      ? 'TERN_ADMIN_PASSWORD is not the password of the user "admin" in this database.'
      : `the user "admin" in this database was created ${created ? '' : 'before the launcher kept its password, '}with another password.`;
  process.stderr.write(`tern start: cannot sign in as admin (HTTP ${r.status}): ${why} Start with TERN_ADMIN_PASSWORD=<admin's password>, or delete ${s.dataDir} to start afresh.\n`);
  return undefined;
}

async function startDemo(s: Settings, token: string, startDemoMesh: typeof import('../demo/mesh.ts').startDemoMesh, proxyBundle: string): Promise<DemoMesh> {
  const demoLog = fs.createWriteStream(path.join(s.logDir, 'demo.log'));
  let started = false;
  const mesh = await startDemoMesh({
    api: s.apiUrl,
    token,
    xdsAddress: s.xdsConnect,
    gatewayPort: s.gatewayPort,
    basePort: s.demoBasePort,
    traffic: s.traffic,
    proxyBundle,
    // Progress on the terminal while starting; afterwards into the log.
    log: (line: string) => {
      demoLog.write(line + '\n');
      if (!started) say(`  demo: ${line}`);
    },
  });
  started = true;
  return mesh;
}

function onSignal(sig: NodeJS.Signals): void {
  if (stopping) {
    process.stderr.write(`\n${sig} again: killing everything now.\n`);
    for (const c of children) c.kill();
    process.exit(130);
  }
  say(`\n${sig}: stopping (again to force)…`);
  void shutdown(0);
}

/** Stops the demo (its sidecars talk to the control plane), then the console and the control plane. */
function shutdown(code: number): Promise<void> {
  shutdownDone ??= (async () => {
    stopping = true;
    abort.abort();
    const mesh = demo ?? (await demoStarting?.catch(() => undefined));
    if (mesh) await Promise.race([mesh.stop().catch((e: Error) => process.stderr.write(`demo stop: ${e.message}\n`)), sleep(15_000)]);
    await Promise.all(children.map((c) => c.stop()));
    if (children.length) say('Stopped.');
    process.exit(code);
  })();
  return shutdownDone;
}

main().catch((err: unknown) => {
  if (stopping) return;
  const message = err instanceof StartError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`\ntern start: ${message}\n`);
  void shutdown(1);
});
