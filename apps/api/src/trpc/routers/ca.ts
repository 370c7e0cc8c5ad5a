import { z } from 'zod';
import { namespaceName } from '@tern/shared';
import { adminProcedure, router, viewerProcedure } from '../trpc.ts';
import { SERVICE_ACCOUNT_RE } from '../../ca/identity.ts';

// The certificate authority (docs/security.md): its trust bundle, the certificates it issued, and
// join tokens, the bootstrap credentials workloads trade for certificates. A join token mints a
// workload identity, so creating and revoking them is for admins; viewers see the rest. Nothing
// here ever returns key material.

const serviceAccount = z.string().min(1).max(253).regex(SERVICE_ACCOUNT_RE, 'a DNS-1123 subdomain: lowercase letters, digits, "-" and "."');

const joinTokenOutput = z.object({
  id: z.string(),
  prefix: z.string(),
  namespace: z.string(),
  serviceAccount: z.string(),
  maxUses: z.number(),
  uses: z.number(),
  createdAt: z.string(),
  createdBy: z.string(),
  expiresAt: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  state: z.enum(['active', 'expired', 'used-up', 'revoked']),
});

const certificateOutput = z.object({
  serial: z.string(),
  spiffeId: z.string(),
  namespace: z.string(),
  serviceAccount: z.string(),
  notBefore: z.string(),
  notAfter: z.string(),
  issuedAt: z.string(),
  credential: z.string(),
  requester: z.string().nullable(),
  proxyId: z.string().nullable().describe('The xDS node id of the sidecar that asked, when it said'),
});

export const caRouter = router({
  bundle: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/ca', tags: ['ca'], summary: 'The trust bundle: root certificate(s) workloads must trust, and the trust domain' } })
    .input(z.object({}).optional())
    .output(
      z.object({
        trustDomain: z.string(),
        mode: z.enum(['generated', 'provided']),
        roots: z.array(z.string()),
        issuer: z.object({ subject: z.string(), serial: z.string(), notBefore: z.string(), notAfter: z.string() }),
      }),
    )
    .query(({ ctx }) => ctx.app.ca.trustBundle()),

  certificates: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/ca/certificates', tags: ['ca'], summary: 'Workload certificates the CA issued, newest first' } })
    .input(z.object({ namespace: namespaceName.optional(), serviceAccount: serviceAccount.optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) }))
    .output(z.object({ certificates: z.array(certificateOutput) }))
    .query(async ({ ctx, input }) => ({ certificates: await ctx.app.ca.listCertificates(input) })),

  joinTokens: router({
    list: viewerProcedure
      .meta({ openapi: { method: 'GET', path: '/ca/join-tokens', tags: ['ca'], summary: 'Join tokens (never their secrets)' } })
      .input(z.object({ namespace: namespaceName.optional() }))
      .output(z.object({ joinTokens: z.array(joinTokenOutput) }))
      .query(async ({ ctx, input }) => ({ joinTokens: await ctx.app.ca.joinTokens.list(input) })),

    create: adminProcedure
      .meta({ openapi: { method: 'POST', path: '/ca/join-tokens', tags: ['ca'], summary: 'Create a join token for one namespace/service account; the token is shown only in this response' } })
      .input(
        z.object({
          namespace: namespaceName,
          serviceAccount,
          ttlSeconds: z.number().int().min(60).max(30 * 24 * 3600).default(3600).describe('How long the token may be used (seconds)'),
          maxUses: z.number().int().min(1).max(10_000).default(1).describe('How many certificates it may obtain'),
        }),
      )
      .output(z.object({ token: z.string(), info: joinTokenOutput }))
      .mutation(({ ctx, input }) => ctx.app.ca.joinTokens.create(input, ctx.principal)),

    revoke: adminProcedure
      .meta({ openapi: { method: 'DELETE', path: '/ca/join-tokens/{id}', tags: ['ca'], summary: 'Revoke a join token (certificates already issued stay valid until they expire)' } })
      .input(z.object({ id: z.uuid() }))
      .output(joinTokenOutput)
      .mutation(({ ctx, input }) => ctx.app.ca.joinTokens.revoke(input.id, ctx.principal)),
  }),
});
