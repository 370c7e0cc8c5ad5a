import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadBootstrap } from '../src/config/bootstrap.ts';

// The sample bootstraps the README points users at must load as they are.
const dir = path.resolve(import.meta.dirname, '../../../samples/sidecar');

test('every sample sidecar bootstrap loads and names a control plane', async () => {
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$|\.json$/.test(f));
  assert.ok(files.length > 0);
  for (const f of files) {
    const b = await loadBootstrap(path.join(dir, f));
    assert.ok(b.ads, `${f}: ads_config`);
    assert.ok(b.node.id, `${f}: node.id`);
  }
});
