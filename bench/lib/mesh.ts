import { serviceFqdn } from '@tern/shared';
import type { App } from '../../apps/api/src/app.ts';
import { parseDocuments } from '../../apps/api/src/policy/documents.ts';
import type { ApplyItem } from '../../apps/api/src/store/resources.ts';
import { registryKey, type ServiceRow } from '../../apps/api/src/store/snapshot.ts';
import { write, type Actor } from '../../apps/api/src/store/writer.ts';

// The benchmark mesh: service i is `svc-<i>` in namespace `team-<i % NAMESPACES>`, registered in
// the registry, with a DestinationRule (subsets v1/v2 by `version` label) and a VirtualService
// splitting its traffic between the two subsets.

export const ACTOR: Actor = { name: 'bench', kind: 'system', role: 'admin' };
export const NAMESPACES = 10;

export const serviceName = (i: number) => `svc-${String(i).padStart(5, '0')}`;
export const namespaceOf = (i: number) => `team-${i % NAMESPACES}`;

export function destinationRule(i: number) {
  const host = serviceName(i);
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: host, namespace: namespaceOf(i) },
    spec: {
      host,
      trafficPolicy: { connectionPool: { tcp: { maxConnections: 100 } } },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  };
}

/** `weight` goes to v1, the rest to v2. */
export function virtualService(i: number, weight: number) {
  const host = serviceName(i);
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: host, namespace: namespaceOf(i) },
    spec: {
      hosts: [host],
      http: [
        {
          route: [
            { destination: { host, subset: 'v1' }, weight },
            { destination: { host, subset: 'v2' }, weight: 100 - weight },
          ],
          timeout: '5s',
        },
      ],
    },
  };
}

/** Validated exactly as the API validates a request body. */
export const items = (objects: unknown[]): ApplyItem[] => parseDocuments({ resources: objects });

/** A weight different from the previous one for the same resource, so every write is a real change. */
export const weightFor = (iteration: number) => 10 + (iteration % 80);

const PORTS = [{ number: 8080, protocol: 'HTTP', name: 'http' }] as const;

/**
 * Registers services [from, to) in batches. RegistryStore.upsertService takes one service per
 * transaction (each one loading the whole mesh), which makes seeding thousands of services
 * quadratic; this goes through the same `write()` with the planner doing what upsertService's does,
 * many services per transaction. `checkSeededLikeUpsert` proves the rows are the same.
 */
export async function registerServices(app: App, from: number, to: number, batch = 1000): Promise<void> {
  for (let start = from; start < to; start += batch) {
    const end = Math.min(to, start + batch);
    await write(app.db.prisma, app.analyze, ACTOR, { enforce: false }, (ctx) => {
      for (let i = start; i < end; i++) {
        const namespace = namespaceOf(i);
        const name = serviceName(i);
        const key = registryKey(namespace, name);
        if (ctx.after.services.has(key)) continue;
        const revision = ctx.nextRevision();
        const row: ServiceRow = {
          namespace,
          name,
          hosts: [serviceFqdn(name, namespace, app.config.domainSuffix)],
          ports: PORTS.map((p) => ({ ...p })),
          labels: {},
          source: 'local',
          resourceVersion: revision,
        };
        ctx.after.services.set(key, row);
        ctx.record({ target: 'service', action: 'created', revision, next: row });
      }
    });
  }
}

/** Registers service i through the real API (app.registry.upsertService). */
export function upsertService(app: App, i: number) {
  return app.registry.upsertService({ namespace: namespaceOf(i), name: serviceName(i), ports: PORTS.map((p) => ({ ...p })) }, ACTOR);
}

/**
 * Re-registers a batch-seeded service through upsertService: it must be a no-op (no change, no
 * revision), i.e. the batch seeding wrote exactly the row upsertService would have.
 */
export async function checkSeededLikeUpsert(app: App, i: number): Promise<void> {
  const o = await upsertService(app, i);
  if (o.results.length !== 0) throw new Error(`seeding check: upsertService(${serviceName(i)}) changed the batch-seeded row: ${JSON.stringify(o.results)}`);
}

/** Grows the mesh from `from` to `to` services, each with a DestinationRule and a VirtualService. */
export async function growMesh(app: App, from: number, to: number, batch = 500): Promise<void> {
  if (to <= from) return;
  let start = from;
  if (from === 0) {
    // The very first service through the real registry API; the rest in batches (see registerServices).
    await upsertService(app, 0);
    start = 1;
  }
  await registerServices(app, start, to);
  if (from === 0 && to > 1) await checkSeededLikeUpsert(app, 1);
  for (let s = from; s < to; s += batch) {
    const e = Math.min(to, s + batch);
    const objs: unknown[] = [];
    for (let i = s; i < e; i++) objs.push(destinationRule(i), virtualService(i, 50));
    const o = await app.resources.apply(items(objs), 'apply', ACTOR);
    if (o.results.length !== objs.length) throw new Error(`seeding: expected ${objs.length} results, got ${o.results.length}`);
  }
}
