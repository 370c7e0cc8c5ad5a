import { TRPCClientError } from '@trpc/client';

// Errors shown to people: the API's message and its field issues, never a stack trace.

export interface FieldIssue {
  path: string;
  rule: string;
  message: string;
  kind?: string;
  name?: string;
  document?: number;
}

export interface ApiErrorInfo {
  message: string;
  code: string | undefined;
  status: number | undefined;
  issues: FieldIssue[];
}

export function errorInfo(err: unknown): ApiErrorInfo {
  if (err instanceof TRPCClientError) {
    const data = (err.data ?? {}) as { code?: string; httpStatus?: number; issues?: FieldIssue[] };
    // A response that is not tRPC's JSON (the proxy's 502, an HTML error page) surfaces as a parse error.
    const raw = typeof err.message === 'string' ? err.message : 'request failed';
    const message = /Unexpected token|JSON/.test(raw) && !data.code ? 'the console could not reach the control plane' : raw;
    return { message, code: data.code, status: data.httpStatus, issues: Array.isArray(data.issues) ? data.issues : [] };
  }
  if (err instanceof Error) return { message: err.message.split('\n')[0] ?? 'error', code: undefined, status: undefined, issues: [] };
  return { message: 'something went wrong', code: undefined, status: undefined, issues: [] };
}

export function isUnauthorized(err: unknown): boolean {
  return errorInfo(err).code === 'UNAUTHORIZED';
}
