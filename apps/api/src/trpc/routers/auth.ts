import { z } from 'zod';
import { TRPCError } from '@trpc/server';
import { roleSchema } from '@tern/shared';
import { adminProcedure, publicProcedure, router, SESSION_COOKIE, viewerProcedure } from '../trpc.ts';
import { RateLimitedError } from '../../auth/service.ts';

const username = z.string().min(1).max(64).regex(/^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/, 'lowercase letters, digits, ".", "_" and "-"');
const password = z.string().min(12, 'must be at least 12 characters').max(1024);
const userOutput = z.object({ id: z.string(), username: z.string(), role: roleSchema, disabled: z.boolean(), createdAt: z.string() });
const tokenOutput = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  role: roleSchema,
  owner: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});

export const authRouter = router({
  login: publicProcedure
    .meta({ openapi: { method: 'POST', path: '/auth/login', tags: ['auth'], summary: 'Sign in; sets the session cookie and returns the session token' } })
    .input(z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) }))
    .output(z.object({ user: userOutput, sessionToken: z.string(), expiresAt: z.string() }))
    .mutation(async ({ ctx, input }) => {
      try {
        const s = await ctx.app.auth.login(input.username, input.password, ctx.clientAddress);
        const maxAge = Math.floor((s.expiresAt.getTime() - Date.now()) / 1000);
        const secure = ctx.app.config.secureCookies ? '; Secure' : '';
        ctx.res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${encodeURIComponent(s.sessionToken)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}${secure}`);
        return { user: s.user, sessionToken: s.sessionToken, expiresAt: s.expiresAt.toISOString() };
      } catch (err) {
        if (err instanceof RateLimitedError) ctx.res.setHeader('Retry-After', String(err.retryAfterSeconds));
        throw err;
      }
    }),

  logout: publicProcedure
    .meta({ openapi: { method: 'POST', path: '/auth/logout', tags: ['auth'], summary: 'End the session' } })
    .input(z.object({}).optional())
    .output(z.object({ ok: z.boolean() }))
    .mutation(async ({ ctx }) => {
      if (ctx.sessionToken) await ctx.app.auth.logout(ctx.sessionToken);
      ctx.res.setHeader('Set-Cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
      return { ok: true };
    }),

  me: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/auth/me', tags: ['auth'], summary: 'Who the caller is' } })
    .input(z.object({}).optional())
    .output(z.object({ name: z.string(), role: roleSchema, via: z.enum(['session', 'token']) }))
    .query(({ ctx }) => ({ name: ctx.principal.name, role: ctx.principal.role, via: ctx.principal.via })),
});

export const usersRouter = router({
  list: adminProcedure
    .meta({ openapi: { method: 'GET', path: '/users', tags: ['users'], summary: 'List users' } })
    .input(z.object({}).optional())
    .output(z.object({ users: z.array(userOutput) }))
    .query(async ({ ctx }) => ({ users: await ctx.app.auth.listUsers() })),

  create: adminProcedure
    .meta({ openapi: { method: 'POST', path: '/users', tags: ['users'], summary: 'Create a user' } })
    .input(z.object({ username, password, role: roleSchema }))
    .output(userOutput)
    .mutation(({ ctx, input }) => ctx.app.auth.createUser(input, ctx.principal)),

  update: adminProcedure
    .meta({ openapi: { method: 'PATCH', path: '/users/{username}', tags: ['users'], summary: 'Change a user’s role, password or disabled flag' } })
    .input(z.object({ username, password: password.optional(), role: roleSchema.optional(), disabled: z.boolean().optional() }))
    .output(userOutput)
    .mutation(({ ctx, input }) => ctx.app.auth.updateUser(input, ctx.principal)),

  delete: adminProcedure
    .meta({ openapi: { method: 'DELETE', path: '/users/{username}', tags: ['users'], summary: 'Delete a user (their sessions and tokens go too)' } })
    .input(z.object({ username }))
    .output(z.object({ ok: z.boolean() }))
    .mutation(async ({ ctx, input }) => {
      await ctx.app.auth.deleteUser(input.username, ctx.principal);
      return { ok: true };
    }),
});

export const tokensRouter = router({
  list: viewerProcedure
    .meta({ openapi: { method: 'GET', path: '/tokens', tags: ['tokens'], summary: 'Your API tokens (all tokens for admins)' } })
    .input(z.object({}).optional())
    .output(z.object({ tokens: z.array(tokenOutput) }))
    .query(async ({ ctx }) => ({ tokens: await ctx.app.auth.listTokens(ctx.principal) })),

  create: viewerProcedure
    .meta({ openapi: { method: 'POST', path: '/tokens', tags: ['tokens'], summary: 'Create an API token; the token is shown only in this response' } })
    .input(z.object({ name: z.string().min(1).max(100), role: roleSchema, expiresInDays: z.number().int().min(1).max(3650).optional() }))
    .output(z.object({ token: z.string(), info: tokenOutput }))
    .mutation(({ ctx, input }) => {
      if (ctx.principal.via === 'token') {
        // A leaked token must not be able to mint fresh ones that outlive its revocation.
        throw new TRPCError({ code: 'FORBIDDEN', message: 'API tokens cannot create API tokens; sign in to create one' });
      }
      return ctx.app.auth.createToken(input, ctx.principal);
    }),

  revoke: viewerProcedure
    .meta({ openapi: { method: 'DELETE', path: '/tokens/{id}', tags: ['tokens'], summary: 'Revoke an API token' } })
    .input(z.object({ id: z.uuid() }))
    .output(tokenOutput)
    .mutation(({ ctx, input }) => ctx.app.auth.revokeToken(input.id, ctx.principal)),
});
