import type { ApiFieldIssue, Diagnostic } from '@tern/shared';

// Domain errors raised below the API layer. The tRPC layer maps each to one status code;
// nothing else decides statuses, so REST, tRPC and the CLI agree.

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    message: string,
    readonly issues: ApiFieldIssue[] = [],
    readonly diagnostics: Diagnostic[] = [],
  ) {
    super(message);
  }
}

export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
}
