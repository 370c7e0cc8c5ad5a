import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../trpc/root.ts';

export type Client = ReturnType<typeof makeClient>;

export function makeClient(server: string, token: string | undefined) {
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${server}/api/trpc`,
        headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
      }),
    ],
  });
}

export const EXIT = { ok: 0, failed: 1, usage: 2, auth: 3 } as const;

export class UsageError extends Error {}

export interface Issue {
  document?: number;
  kind?: string;
  name?: string;
  path: string;
  rule: string;
  message: string;
}

/** Prints a failure the way kubectl would and returns the exit code for it. */
export function reportError(err: unknown, server: string, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  if (err instanceof UsageError) {
    write(`error: ${err.message}\nRun 'tern help' for usage.\n`);
    return EXIT.usage;
  }
  if (err instanceof TRPCClientError) {
    const data = (err.data ?? {}) as { code?: string; httpStatus?: number; issues?: Issue[] };
    const code = data.code ?? 'UNKNOWN';
    if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') {
      write(`error: ${err.message}${code === 'UNAUTHORIZED' ? `\nRun 'tern login --server ${server}' or set TERN_TOKEN.` : ''}\n`);
      return EXIT.auth;
    }
    if (data.issues?.length) {
      write(`error: ${err.message}\n`);
      for (const i of data.issues) {
        const where = [i.document !== undefined ? `document ${i.document}` : '', i.kind && i.name ? `${i.kind} "${i.name}"` : i.kind ?? ''].filter(Boolean).join(', ');
        write(`  ${where ? `${where}: ` : ''}${i.path || '(document)'}: ${i.message} [${i.rule}]\n`);
      }
      return EXIT.failed;
    }
    if (!data.httpStatus && /fetch failed|ECONNREFUSED/.test(err.message)) {
      write(`error: cannot reach the Tern API at ${server} (${err.message}); is it running? Set TERN_API_URL or --server.\n`);
      return EXIT.failed;
    }
    write(`error: ${err.message} (${data.httpStatus ?? '?'} ${code})\n`);
    return EXIT.failed;
  }
  write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.failed;
}
