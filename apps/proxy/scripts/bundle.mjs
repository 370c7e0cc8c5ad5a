#!/usr/bin/env node
// Bundles the proxy into one ES module (apps/proxy/dist/tern-proxy.mjs) run by plain `node`
// (scripts/bundle-node.mjs says why), which matters for a process that runs next to every
// workload. Small pure-JS dependencies are bundled too; those with data files stay external.
import { bundleNode } from '../../../scripts/bundle-node.mjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const app = path.resolve(here, '..');
const version = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')).version;

/** Source files that read package.json relative to their own path at run time: inline the version (dist/ sits elsewhere). */
const inlineVersion = {
  name: 'inline-package-version',
  setup(b) {
    b.onLoad({ filter: /apps[\\/]proxy[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const text = await fs.promises.readFile(args.path, 'utf8');
      if (!text.includes("require('../../package.json')")) return undefined;
      return { contents: text.replace(/\(require\('\.\.\/\.\.\/package\.json'\) as \{ version: string \}\)\.version/g, JSON.stringify(version)), loader: 'ts' };
    });
  },
};
await bundleNode({
  entry: path.join(app, 'src/main.ts'),
  outfile: path.join(app, 'dist/tern-proxy.mjs'),
  plugins: [inlineVersion],
  // protobufjs/@grpc read .proto files relative to their package at run time; the X.509 library is
  // imported on first use only (src/identity/x509.ts), so it must stay out of the bundle.
  external: ['@grpc/grpc-js', '@grpc/proto-loader', '@grpc/grpc-js-xds', 'protobufjs', 'pino', 'thread-stream', 'pino-pretty', '@peculiar/x509', 'reflect-metadata'],
});
