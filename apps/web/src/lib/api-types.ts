// The one place the console names the control plane's code: a type-only import (erased at
// build time, so no runtime dependency between the apps). tRPC infers every procedure's input and
// output from it, and the zod output schemas behind it live in packages/shared.
import type { AppRouter } from '../../../api/src/trpc/root.ts';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';

export type { AppRouter };
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;

export type StoredResource = RouterOutputs['resources']['get'];
export type Diagnostic = RouterOutputs['resources']['analyze']['diagnostics'][number];
export type RevisionEntry = RouterOutputs['history']['list']['revisions'][number];
export type AuditEvent = RouterOutputs['history']['audit']['events'][number];
export type ProxyView = RouterOutputs['proxies']['list']['proxies'][number];
export type RegisteredService = RouterOutputs['registry']['services']['services'][number];
export type RegisteredWorkload = RouterOutputs['registry']['workloads']['workloads'][number];
/** What the planners read: a registration without where it came from. */
export type ServiceRecord = Omit<RegisteredService, 'source'>;
export type WorkloadRecord = Omit<RegisteredWorkload, 'source'>;
export type Convergence = RouterOutputs['proxies']['convergence']['revisions'][number];
export type Role = RouterOutputs['auth']['me']['role'];
