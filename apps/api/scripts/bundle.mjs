#!/usr/bin/env node
// Bundles the control plane into apps/api/dist/tern-api.mjs (`npm start` runs it: the `prestart`
// script builds it first). Installed packages stay in node_modules; our TypeScript is bundled.
//   node apps/api/scripts/bundle.mjs [ENTRY OUTFILE]   (the xDS benchmark bundles its own entry)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleNode, externalPackages } from '../../../scripts/bundle-node.mjs';

const app = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [entry = path.join(app, 'src/main.ts'), outfile = path.join(app, 'dist/tern-api.mjs')] = process.argv.slice(2);
// Split: the Kubernetes client (kube/runtime.ts, ~74 MB) is loaded only by a control plane configured for a cluster.
await bundleNode({ entry: path.resolve(entry), outfile: path.resolve(outfile), plugins: [externalPackages], splitting: true });
