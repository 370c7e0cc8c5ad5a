// One ES module run by plain `node`, for a long-running process (the sidecar, the control plane):
// no TypeScript loader in memory — tsx's hooks run on their own thread with their own V8 heap, and
// keep every transformed source — and nothing to compile at start-up. Shared by the apps' bundle
// scripts (apps/proxy/scripts/bundle.mjs, apps/api/scripts/bundle.mjs).
import path from 'node:path';
import { build } from 'esbuild';

/**
 * @param {{ entry: string, outfile: string, external?: string[], plugins?: import('esbuild').Plugin[], splitting?: boolean }} o
 * `external`: packages left to node_modules at run time (those that read their own files, or large ones).
 * `splitting`: a module imported with `import()` becomes a chunk of its own (`chunks/` beside the
 * outfile), so the packages it imports are loaded only when it is — in one file, esbuild would
 * hoist their imports to the top and load them at start.
 */
export async function bundleNode({ entry, outfile, external = [], plugins = [], splitting = false }) {
  await build({
    ...(splitting
      ? { entryPoints: [{ in: entry, out: path.basename(outfile, '.mjs') }], outdir: path.dirname(outfile), splitting: true, chunkNames: 'chunks/[name]-[hash]', outExtension: { '.js': '.mjs' } }
      : { entryPoints: [entry], outfile }),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // The map is for reading a stack trace (`node --enable-source-maps`, off by default: it costs memory).
    sourcemap: true,
    logLevel: 'warning',
    plugins,
    external,
    // Bundled CommonJS dependencies call require().
    banner: { js: "import { createRequire as __ternCreateRequire } from 'node:module'; const require = __ternCreateRequire(import.meta.url);" },
  });
}

/** Leaves every installed package except the workspace's own (`@tern/*`, TypeScript sources) to node_modules. */
export const externalPackages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@tern/') || args.path.startsWith('node:') ? undefined : { path: args.path, external: true }));
  },
};
