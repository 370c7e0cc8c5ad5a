#!/usr/bin/env node
// `tern`, the command-line client. Runs the TypeScript sources through tsx, so `npx tern` works
// from a fresh clone with no build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
