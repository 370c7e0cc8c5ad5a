import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// The console's production build (`next build` in apps/web), built only when stale. One staleness
// rule for its two users: the launcher (`npm start`, scripts/start.ts) and the browser tests'
// harness (e2e/lib/console-harness.ts ensureBuilt).

const repoRoot = path.resolve(import.meta.dirname, '..');
export const webDir = path.join(repoRoot, 'apps/web');
export const nextBin = path.join(repoRoot, 'node_modules/next/dist/bin/next');

/** The build output directory: apps/web/<TERN_WEB_DIST_DIR or .next> (next.config.ts reads the same variable). */
export function webDistDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(webDir, env.TERN_WEB_DIST_DIR ?? '.next');
}

/** Newest modification time of a file or of everything under a directory (0 when missing). */
export function newestMtime(p: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const e of fs.readdirSync(p)) max = Math.max(max, newestMtime(path.join(p, e)));
  return max;
}

/** True when `distDir` holds a finished build (BUILD_ID is written last) newer than every source. */
export function isWebBuildFresh(distDir: string = webDistDir()): boolean {
  const buildId = path.join(distDir, 'BUILD_ID');
  if (!fs.existsSync(buildId)) return false;
  const sources = Math.max(newestMtime(path.join(webDir, 'src')), newestMtime(path.join(webDir, 'next.config.ts')), newestMtime(path.join(webDir, 'package.json')));
  return fs.statSync(buildId).mtimeMs >= sources;
}

function buildEnv(distDir: string): NodeJS.ProcessEnv {
  return { ...process.env, TERN_WEB_DIST_DIR: path.relative(webDir, distDir), NEXT_TELEMETRY_DISABLED: '1' };
}

/** Synchronous: builds unless fresh; throws with next's output on failure (the tests' ensureBuilt). */
export function ensureWebBuiltSync(distDir: string = webDistDir()): { built: boolean } {
  if (isWebBuildFresh(distDir)) return { built: false };
  const r = spawnSync(process.execPath, [nextBin, 'build'], { cwd: webDir, env: buildEnv(distDir), stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`next build failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return { built: true };
}

/**
 * Asynchronous, for the launcher: the event loop keeps running (Ctrl-C is handled), and `signal`
 * stops the build. Output is kept and returned in the error on failure.
 */
export function buildWeb(distDir: string = webDistDir(), signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const child = spawn(process.execPath, [nextBin, 'build'], { cwd: webDir, env: buildEnv(distDir), stdio: ['ignore', 'pipe', 'pipe'], signal });
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (err) => reject(err));
    child.on('close', (code, sig) => {
      if (code === 0) resolve();
      else reject(new Error(`next build failed (${code ?? sig}):\n${output}`));
    });
  });
}
