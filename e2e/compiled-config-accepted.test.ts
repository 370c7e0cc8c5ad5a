/**
 * Contract between the two apps: every resource set the control plane's compiler produces for a
 * sidecar (its golden files, apps/api/test/fixtures/compile/*.json) must build into a proxy
 * snapshot. Cross-app tests live here, outside both apps. proxyless-grpc.json is for gRPC clients
 * (api_listener), which a sidecar rejects by design.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TYPE_URL, type JsonObject } from '@tern/xds';
import { ConfigError, type ResourceSet } from '../apps/proxy/src/config/model.ts';
import { buildSnapshot } from '../apps/proxy/src/config/snapshot.ts';

const dir = fileURLToPath(new URL('../apps/api/test/fixtures/compile/', import.meta.url));
const KINDS: Record<string, string> = { clusters: TYPE_URL.cluster, endpoints: TYPE_URL.endpoint, listeners: TYPE_URL.listener, routes: TYPE_URL.route };

function load(file: string): Map<string, ResourceSet> {
  const d = JSON.parse(readFileSync(dir + file, 'utf8')) as Record<string, Record<string, JsonObject>>;
  return new Map(Object.entries(KINDS).map(([k, t]) => [t, new Map(Object.entries(d[k] ?? {}).map(([n, json]) => [n, { version: '1', json }]))]));
}

describe('control-plane output', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  it('there are golden files to check', () => assert.ok(files.length >= 10));
  for (const file of files) {
    it(file, () => {
      if (file === 'proxyless-grpc.json') {
        assert.throws(() => buildSnapshot(load(file)), (e: unknown) => e instanceof ConfigError && e.path === 'api_listener');
        return;
      }
      const s = buildSnapshot(load(file));
      assert.ok(s.listeners.size > 0 || s.clusters.size > 0);
    });
  }
});

describe('sample sidecar bootstraps', () => {
  it('carry node metadata the control plane accepts', async () => {
    const { parse } = await import('yaml');
    const { plainToStruct } = await import('@tern/xds');
    const { proxyIdentityFromNode } = await import('../apps/api/src/compile/node.ts');
    const samples = fileURLToPath(new URL('../samples/sidecar/', import.meta.url));
    for (const f of readdirSync(samples).filter((n) => n.endsWith('.yaml'))) {
      const b = parse(readFileSync(samples + f, 'utf8')) as { node: { id: string; metadata: JsonObject } };
      const identity = proxyIdentityFromNode({ id: b.node.id, metadata: plainToStruct(b.node.metadata) });
      assert.equal(identity.kind, 'sidecar', f);
      assert.ok(identity.upstreams.length > 0, f);
    }
  });
});
