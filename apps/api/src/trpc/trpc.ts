import type { IncomingMessage, ServerResponse } from 'node:http';
import { initTRPC, TRPCError } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { fromZodIssues, roleAllows, type ApiFieldIssue, type Role } from '@tern/shared';
import type { App } from '../app.ts';
import { AuthError, RateLimitedError, type Principal } from '../auth/service.ts';
import { ConflictError, NotFoundError, UnavailableError, ValidationError } from '../errors.ts';
import { isDatabaseUnavailable } from '../store/db.ts';
import { logger } from '../log.ts';

// The tRPC context and the procedure kinds. Authorization lives here, in the kind of procedure
// a route is declared with, never inside handlers.

export const SESSION_COOKIE = 'tern_session';

export interface Context {
  app: App;
  principal: Principal | undefined;
  req: IncomingMessage;
  res: ServerResponse;
  clientAddress: string;
  /** The raw session credential, to end it on logout. */
  sessionToken: string | undefined;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

export async function createContext(app: App, req: IncomingMessage, res: ServerResponse): Promise<Context> {
  const auth = req.headers.authorization;
  const bearer = auth?.toLowerCase().startsWith('bearer ') ? auth.slice(7).trim() : undefined;
  const sessionToken = readCookie(req.headers.cookie, SESSION_COOKIE);
  const credential = bearer ?? sessionToken;
  let principal: Principal | undefined;
  try {
    principal = await app.auth.authenticate(credential);
  } catch (err) {
    // Reported as 503 by the procedure middleware if the database is away.
    if (!isDatabaseUnavailable(err)) throw err;
    throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'the database is unavailable; retry shortly' });
  }
  return { app, principal, req, res, clientAddress: req.socket.remoteAddress ?? 'unknown', sessionToken: bearer ? undefined : sessionToken };
}

interface ErrorData {
  issues?: ApiFieldIssue[];
  diagnostics?: unknown[];
  retryAfterSeconds?: number;
}

const t = initTRPC
  .context<Context>()
  .meta<OpenApiMeta>()
  .create({
    errorFormatter({ shape, error }) {
      const data: Record<string, unknown> = { code: shape.data.code, httpStatus: shape.data.httpStatus };
      if (shape.data.path) data.path = shape.data.path;
      const extra = (error.cause as { tern?: ErrorData } | undefined)?.tern;
      if (extra) Object.assign(data, extra);
      // No stack traces: ever.
      return { message: shape.message, code: shape.code, data };
    },
  });

class CarriedError extends Error {
  constructor(
    message: string,
    readonly tern: ErrorData,
  ) {
    super(message);
  }
}

/** Maps domain errors to statuses in one place. */
const errorMapping = t.middleware(async ({ next, path }) => {
  const result = await next();
  if (result.ok) return result;
  const err = result.error;
  const cause = err.cause;
  // Input that fails a procedure's schema: the same issue format and message as every other 400.
  if (err.code === 'BAD_REQUEST' && cause?.name === 'ZodError') {
    const issues = fromZodIssues((cause as unknown as { issues: Parameters<typeof fromZodIssues>[0] }).issues);
    const message = `invalid input: ${issues.map((i) => i.message).join(' ')}`;
    throw new TRPCError({ code: 'BAD_REQUEST', message, cause: new CarriedError(message, { issues }) });
  }
  if (cause instanceof ValidationError) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: cause.message, cause: new CarriedError(cause.message, { issues: cause.issues, ...(cause.diagnostics.length ? { diagnostics: cause.diagnostics } : {}) }) });
  }
  if (cause instanceof NotFoundError) throw new TRPCError({ code: 'NOT_FOUND', message: cause.message });
  if (cause instanceof ConflictError) throw new TRPCError({ code: 'CONFLICT', message: cause.message });
  if (cause instanceof AuthError) throw new TRPCError({ code: 'UNAUTHORIZED', message: cause.message });
  if (cause instanceof RateLimitedError) {
    throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: cause.message, cause: new CarriedError(cause.message, { retryAfterSeconds: cause.retryAfterSeconds }) });
  }
  if (cause instanceof UnavailableError || isDatabaseUnavailable(cause)) {
    throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'the database is unavailable; nothing was changed; retry shortly' });
  }
  if (err.code === 'INTERNAL_SERVER_ERROR') {
    logger.error({ err: cause ?? err, path }, 'unhandled error');
    throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'internal error; see the control plane log' });
  }
  return result;
});

export const router = t.router;
export const publicProcedure = t.procedure.use(errorMapping);

function requireRole(role: Role) {
  return publicProcedure.use(({ ctx, next }) => {
    if (!ctx.principal) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'sign in or send an API token (Authorization: Bearer …)' });
    if (!roleAllows(ctx.principal.role, role)) {
      throw new TRPCError({ code: 'FORBIDDEN', message: `this needs the ${role} role; you are ${ctx.principal.role}` });
    }
    return next({ ctx: { ...ctx, principal: ctx.principal } });
  });
}

export const viewerProcedure = requireRole('viewer');
export const editorProcedure = requireRole('editor');
export const adminProcedure = requireRole('admin');
