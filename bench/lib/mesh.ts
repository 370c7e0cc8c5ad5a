import { serviceFqdn } from '@tern/shared';
import type { App } from '../../apps/api/src/app.ts';
import { parseDocuments } from '../../apps/api/src/policy/documents.ts';
import type { ApplyItem } from '../../apps/api/src/store/resources.ts';
import { registryKey, type ServiceRow, type WorkloadRow } from '../../apps/api/src/store/snapshot.ts';
import { write, type Actor } from '../../apps/api/src/store/writer.ts';

// The benchmark mesh: service i is `svc-<i>` in namespace `team-<i % NAMESPACES>`, registered in
// the registry (optionally with two workloads, `version: v1` and `version: v2`), with a
// DestinationRule (subsets v1/v2 by `version` label) and a VirtualService splitting its traffic
// between the two subsets.

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

const PORTS = [{ number: 8080, protocol: 'HTTP', name: 'http' }] as const;
const VERSIONS = ['v1', 'v2'] as const;

const serviceSpec = (i: number) => ({ namespace: namespaceOf(i), name: serviceName(i), ports: PORTS.map((p) => ({ ...p })) });
const workloadSpec = (i: number, version: string) => ({
  namespace: namespaceOf(i),
  name: `${serviceName(i)}-${version}`,
  labels: { app: serviceName(i), version },
  serviceAccount: serviceName(i),
  addresses: [`10.${(i >> 8) & 255}.${i & 255}.${version === 'v1' ? 1 : 2}`],
  ports: {} as Record<string, number>,
});

/**
 * Registers services [from, to) — and, with `workloads`, the two workloads (version v1 and v2)
 * behind each — in batches. RegistryStore.upsertService/upsertWorkload take one object per
 * transaction, each loading the whole mesh, which makes seeding thousands of them quadratic; this
 * goes through the same `write()` with a planner doing what theirs does, many objects per
 * transaction. `checkSeededLikeUpsert` proves the rows are the ones the registry API writes.
 */
export async function registerServices(app: App, from: number, to: number, opts: { services: boolean; workloads: boolean }, batch = 1000): Promise<void> {
  for (let start = from; start < to; start += batch) {
    const end = Math.min(to, start + batch);
    await write(app.db.prisma, app.analyze, ACTOR, { enforce: false }, (ctx) => {
      for (let i = start; i < end; i++) {
        if (opts.services) {
          const s = serviceSpec(i);
          const key = registryKey(s.namespace, s.name);
          if (!ctx.after.services.has(key)) {
            const revision = ctx.nextRevision();
            const row: ServiceRow = { ...s, hosts: [serviceFqdn(s.name, s.namespace, app.config.domainSuffix)], labels: {}, source: 'local', resourceVersion: revision };
            ctx.after.services.set(key, row);
            ctx.record({ target: 'service', action: 'created', revision, next: row });
          }
        }
        if (opts.workloads) {
          for (const v of VERSIONS) {
            const w = workloadSpec(i, v);
            const key = registryKey(w.namespace, w.name);
            if (ctx.after.workloads.has(key)) continue;
            const revision = ctx.nextRevision();
            const row: WorkloadRow = { ...w, source: 'local', resourceVersion: revision };
            ctx.after.workloads.set(key, row);
            ctx.record({ target: 'workload', action: 'created', revision, next: row });
          }
        }
      }
    });
  }
}

/** Unregisters the workloads of services [from, to), in one write. */
export async function removeWorkloads(app: App, from: number, to: number): Promise<void> {
  await write(app.db.prisma, app.analyze, ACTOR, { enforce: false }, (ctx) => {
    for (let i = from; i < to; i++) {
      for (const v of VERSIONS) {
        const w = workloadSpec(i, v);
        const key = registryKey(w.namespace, w.name);
        const prev = ctx.after.workloads.get(key);
        if (!prev) continue;
        ctx.after.workloads.delete(key);
        ctx.record({ target: 'workload', action: 'deleted', revision: ctx.nextRevision(), prev });
      }
    }
  });
}

/**
 * Re-registers a batch-seeded service (and its workloads) through the registry API: each must be
 * a no-op, i.e. the batch seeding wrote exactly the rows upsertService/upsertWorkload write.
 */
export async function checkSeededLikeUpsert(app: App, i: number, workloads: boolean): Promise<void> {
  const outcomes = [await app.registry.upsertService(serviceSpec(i), ACTOR)];
  if (workloads) for (const v of VERSIONS) outcomes.push(await app.registry.upsertWorkload(workloadSpec(i, v), ACTOR));
  for (const o of outcomes) {
    if (o.results.length !== 0) throw new Error(`seeding check: the registry API changed a batch-seeded row: ${JSON.stringify(o.results)}`);
  }
}

/**
 * Grows the mesh from `from` to `to` services, each with a DestinationRule and a VirtualService
 * (and, with `workloads`, two workloads v1/v2). Resources are applied through app.resources.apply,
 * `batch` resources per call.
 */
export async function growMesh(app: App, from: number, to: number, opts: { workloads: boolean }, batch = 1000): Promise<void> {
  if (to <= from) return;
  let start = from;
  if (from === 0) {
    // The first service (and its workloads) through the registry API itself.
    await app.registry.upsertService(serviceSpec(0), ACTOR);
    if (opts.workloads) for (const v of VERSIONS) await app.registry.upsertWorkload(workloadSpec(0, v), ACTOR);
    start = 1;
  }
  await registerServices(app, start, to, { services: true, workloads: opts.workloads });
  if (from === 0 && to > 1) await checkSeededLikeUpsert(app, 1, opts.workloads);
  for (let s = from; s < to; s += batch / 2) {
    const e = Math.min(to, s + batch / 2);
    const objs: unknown[] = [];
    for (let i = s; i < e; i++) objs.push(destinationRule(i), virtualService(i, 50));
    const o = await app.resources.apply(items(objs), 'apply', ACTOR);
    if (o.results.length !== objs.length) throw new Error(`seeding: expected ${objs.length} results, got ${o.results.length}`);
  }
}
