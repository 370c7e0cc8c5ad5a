import { z } from 'zod';
import { namespaceName, proxyStatusViewSchema, type ProxyStatusView } from '@tern/shared';
import type { CaService } from '../../ca/service.ts';
import { router, viewerProcedure } from '../trpc.ts';

// xDS proxies: who is connected (to any replica), their sync status, what they were sent, and how
// fast changes converge. See docs/xds.md "Proxy status".

const typeDump = z.object({ version: z.string().nullable(), resources: z.array(z.record(z.string(), z.unknown())) });

const convergenceSchema = z.object({
  revision: z.string(),
  startedAt: z.string(),
  affectedProxies: z.number(),
  ackedProxies: z.number(),
  nackedProxies: z.number(),
  disconnectedProxies: z.number(),
  convergedAt: z.string().nullable(),
  durationMs: z.number().nullable(),
});

const proxyId = z.string().min(1).max(512).describe('The xDS node id');
const resourceType = z.enum(['clusters', 'listeners', 'routes', 'endpoints']);

/** Certificate expiry per proxy: the CA's newest certificate for each node id. */
async function withCertificates(ca: CaService, proxies: ProxyStatusView[]): Promise<ProxyStatusView[]> {
  const certs = await ca.latestByProxy(proxies.map((p) => p.id));
  return proxies.map((p) => ({ ...p, certificate: certs.get(p.id) ?? null }));
}

export const proxiesRouter = router({
  list: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/proxies', tags: ['proxies'], summary: 'xDS proxies connected to any replica, with their sync status' } })
    .input(z.object({ namespace: namespaceName.optional() }))
    .output(z.object({ proxies: z.array(proxyStatusViewSchema), replica: z.string(), meshRevision: z.string() }))
    .query(async ({ ctx, input }) => ({
      proxies: await withCertificates(ctx.app.ca, await ctx.app.xds.listProxies(input.namespace)),
      replica: ctx.app.config.replicaId,
      meshRevision: ctx.app.xds.mesh.meshRevision,
    })),

  get: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/proxies/{id}', tags: ['proxies'], summary: 'One proxy’s sync status' } })
    .input(z.object({ id: proxyId }))
    .output(proxyStatusViewSchema)
    .query(async ({ ctx, input }) => (await withCertificates(ctx.app.ca, [await ctx.app.xds.getProxy(input.id)]))[0]!),

  config: viewerProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/proxies/{id}/config',
        tags: ['proxies'],
        summary: 'What a proxy was last sent (Envoy JSON per type); only on the replica holding its stream',
      },
    })
    .input(z.object({ id: proxyId, type: resourceType.optional() }))
    .output(
      z.object({
        id: z.string(),
        replica: z.string(),
        protocol: z.enum(['sotw', 'delta']),
        meshRevision: z.string(),
        types: z.object({ clusters: typeDump.optional(), listeners: typeDump.optional(), routes: typeDump.optional(), endpoints: typeDump.optional() }),
      }),
    )
    .query(async ({ ctx, input }) => {
      const dump = await ctx.app.xds.proxyConfig(input.id);
      if (!input.type) return dump;
      return { ...dump, types: { [input.type]: dump.types[input.type] } };
    }),

  convergence: viewerProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/xds/convergence',
        tags: ['proxies'],
        summary: 'Recent mesh revisions and how long their pushes took to be ACKed (this replica’s proxies)',
      },
    })
    .input(z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }))
    .output(z.object({ replica: z.string(), revisions: z.array(convergenceSchema) }))
    .query(({ ctx, input }) => ({ replica: ctx.app.config.replicaId, revisions: ctx.app.xds.recentConvergence(input.limit) })),
});
