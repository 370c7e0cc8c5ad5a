import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { newestMtime } from '../web-build.ts';

// The control plane's esbuild bundle as the launcher runs it, rebuilt only when a source is
// newer than the bundle: a start without changes builds nothing.

const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface Bundle {
  name: string;
  script: string;
  outfile: string;
  /** Files and directories whose newest modification time decides staleness. */
  inputs: string[];
}

/** What every bundle is made of besides its own app: the shared packages and the bundler. */
function commonInputs(): string[] {
  const pkgs = path.join(repoRoot, 'packages');
  const dirs = fs.existsSync(pkgs) ? fs.readdirSync(pkgs).map((p) => path.join(pkgs, p)) : [];
  return [...dirs.flatMap((d) => [path.join(d, 'src'), path.join(d, 'package.json')]), path.join(repoRoot, 'scripts/bundle-node.mjs'), path.join(repoRoot, 'package-lock.json')];
}

function appBundle(app: 'api' | 'proxy', outName: string): Bundle {
  const dir = path.join(repoRoot, 'apps', app);
  return {
    name: app === 'api' ? 'control plane' : 'sidecar',
    script: path.join(dir, 'scripts/bundle.mjs'),
    outfile: path.join(dir, 'dist', outName),
    inputs: [path.join(dir, 'src'), path.join(dir, 'scripts'), path.join(dir, 'package.json'), ...commonInputs()],
  };
}

export const API_BUNDLE = appBundle('api', 'tern-api.mjs');

export function isBundleFresh(b: Bundle): boolean {
  if (!fs.existsSync(b.outfile)) return false;
  const newest = Math.max(...b.inputs.map((p) => newestMtime(p)));
  return fs.statSync(b.outfile).mtimeMs >= newest;
}

/** Runs the app's own bundle script (the one CI and the Dockerfiles run). */
export function runBundle(b: Bundle, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const child = spawn(process.execPath, [b.script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], signal });
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code, sig) => (code === 0 ? resolve() : reject(new Error(`bundling the ${b.name} failed (${code ?? sig}):\n${output}`))));
  });
}
