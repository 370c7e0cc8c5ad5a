#!/usr/bin/env node
// `tern-proxy`, the sidecar. Runs the TypeScript sources through tsx (no build step), like `tern`.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/main.ts');
process.exit(await main(process.argv.slice(2)));
