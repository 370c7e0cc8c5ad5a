import type { Prisma } from '../generated/prisma/client.ts';
import type { WorkloadIdentity } from './identity.ts';

// How a workload proves who it is before the CA signs for it. The CA asks each Authenticator in
// turn; the first that recognises the credential decides. Join tokens (join-tokens.ts) are the one
// implementation now; a Kubernetes service-account token authenticator (TokenReview against the
// API server, audience-bound, the identity from `status.user.username` =
// `system:serviceaccount:<ns>:<sa>`) slots in next to it without touching the CA.

export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

export interface AuthenticatedCaller {
  identity: WorkloadIdentity;
  /** What proved it, for the issued-certificate record (e.g. `join-token:<id>`); never the secret. */
  credential: string;
  /**
   * Called inside the transaction that records the certificate, so a use is counted exactly when
   * a certificate is handed out. Throws CredentialError when the credential was used up (or
   * revoked) since `authenticate`: the transaction then rolls back and nothing is issued.
   */
  commit?(tx: Prisma.TransactionClient): Promise<void>;
}

/** The request the credential comes with, for credentials that sign it (svid-authenticator.ts). */
export interface CredentialRequest {
  csrPem: string;
}

export interface Authenticator {
  readonly kind: string;
  /**
   * undefined: not this authenticator's kind of credential (ask the next one).
   * Throws CredentialError: its kind, but refused (unknown, expired, revoked, used up, …).
   */
  authenticate(credential: string, request?: CredentialRequest): Promise<AuthenticatedCaller | undefined>;
}

/** The first authenticator that recognises the credential; CredentialError when none does. */
export async function authenticateCaller(authenticators: readonly Authenticator[], credential: string, request?: CredentialRequest): Promise<AuthenticatedCaller> {
  for (const a of authenticators) {
    const caller = await a.authenticate(credential, request);
    if (caller) return caller;
  }
  throw new CredentialError(`the credential is not a credential this control plane accepts (${authenticators.map((a) => a.kind).join(', ')})`);
}
