'use client';
import { useQuery } from '@tanstack/react-query';
import type { RouterInputs } from './api-types.ts';
import { useTRPCClient } from './trpc.ts';

/**
 * The analyzer is a tRPC mutation (POST: it takes documents) that writes nothing, so reading it
 * as a query is safe: cached per input, refetched like any other read.
 */
export function useAnalysis(input: RouterInputs['resources']['analyze'] | undefined, opts: { enabled?: boolean } = {}) {
  const client = useTRPCClient();
  return useQuery({
    queryKey: ['analyze', input ?? null],
    queryFn: () => client.resources.analyze.mutate(input ?? {}),
    enabled: opts.enabled ?? true,
    retry: false,
  });
}
