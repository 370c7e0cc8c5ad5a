'use client';
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { isUnauthorized } from '../lib/errors.ts';
import { makeTrpcClient, TRPCProvider } from '../lib/trpc.ts';

/** A session that ends while a page is open (expiry, sign-out elsewhere) sends you to sign in. */
function onError(err: unknown) {
  if (!isUnauthorized(err) || typeof window === 'undefined' || window.location.pathname === '/login') return;
  const here = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(here)}`);
}

export function Providers({ children }: { children: ReactNode }) {
  const [queryClient] = useState(
    () =>
      new QueryClient({
        queryCache: new QueryCache({ onError }),
        mutationCache: new MutationCache({ onError }),
        defaultOptions: {
          queries: {
            staleTime: 2_000,
            // 4xx answers will not change by asking again; network trouble might.
            retry: (n, err) => n < 2 && !isUnauthorized(err) && !/^4/.test(String((err as { data?: { httpStatus?: number } }).data?.httpStatus ?? '')),
            refetchOnWindowFocus: false,
          },
        },
      }),
  );
  const [trpcClient] = useState(() => makeTrpcClient());
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}
