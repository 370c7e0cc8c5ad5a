'use client';
import { createTRPCClient, httpLink } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';
import type { AppRouter } from './api-types.ts';

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

/**
 * Same-origin: /api/trpc is proxied to the control plane by this Next server, so the session
 * cookie (HttpOnly, SameSite=Strict) rides along without CORS. No batching: one request per call
 * keeps errors and the server's logs per procedure.
 */
export function makeTrpcClient() {
  return createTRPCClient<AppRouter>({ links: [httpLink({ url: '/api/trpc' })] });
}
