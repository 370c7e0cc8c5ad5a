/**
 * The proxy the demo runs: the single-file bundle apps/proxy/dist/tern-proxy.mjs (plain `node`, no
 * TypeScript loader in each of the seven sidecars: ~35 MB less RSS apiece), rebuilt when missing
 * or older than the sources it is made of.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const DEFAULT_PROXY_BUNDLE = path.join(REPO_ROOT, 'apps/proxy/dist/tern-proxy.mjs');
const SOURCE_DIRS = ['apps/proxy/src', 'packages/xds/src', 'packages/shared/src'].map((d) => path.join(REPO_ROOT, d));

function newestMtime(dir: string): number {
  let newest = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function proxyBundleIsStale(bundle = DEFAULT_PROXY_BUNDLE): boolean {
  let built: number;
  try {
    built = fs.statSync(bundle).mtimeMs;
  } catch {
    return true;
  }
  return SOURCE_DIRS.some((d) => newestMtime(d) > built);
}

/**
 * Builds the bundle if it is missing or stale; returns its path. Several processes may ask at
 * once (the launcher, test files): a lock directory lets one build while the others wait, so no
 * one starts a half-written file.
 */
export async function ensureProxyBundle(log: (line: string) => void = () => {}): Promise<string> {
  const lock = path.join(REPO_ROOT, 'apps/proxy/dist/.bundle-lock');
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock left by a killed build is stale after a minute.
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 60_000) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`proxy bundle: ${lock} held for over 2 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (proxyBundleIsStale()) {
      log('building the proxy bundle (apps/proxy/dist/tern-proxy.mjs)…');
      await promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'apps/proxy/scripts/bundle.mjs')], { cwd: REPO_ROOT });
    }
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
  return DEFAULT_PROXY_BUNDLE;
}
