import { CredentialError, type AuthenticatedCaller, type Authenticator } from './authenticator.ts';
import { NAMESPACE_RE, SERVICE_ACCOUNT_RE } from './identity.ts';

// Kubernetes service-account tokens as CA credentials (issue 9): the injected sidecar presents the
// projected token of its pod (audience-bound, short-lived); the API server says whose it is
// (TokenReview), and the certificate carries that service account's SPIFFE ID — a CSR asking for
// any other identity is refused by the CA as for join tokens. docs/security.md "Kubernetes".

/** What a TokenReview answered, reduced to what the CA needs. */
export interface TokenReviewResult {
  authenticated: boolean;
  username?: string | undefined;
  audiences?: string[] | undefined;
  error?: string | undefined;
  /** `authentication.kubernetes.io/pod-name`, when the token was bound to a pod. */
  podName?: string | undefined;
}

export type TokenReviewer = (token: string, audiences: string[]) => Promise<TokenReviewResult>;

/** The API server could not be asked: the caller should retry (UNAVAILABLE), not give up. */
export class TokenReviewUnavailableError extends Error {
  override readonly name = 'TokenReviewUnavailableError';
}

// A JWT: three base64url parts, the first a JSON header. Join tokens and renewal credentials have
// their own prefixes, so nothing else the CA accepts looks like this.
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const SA_USER_RE = /^system:serviceaccount:([^:]+):([^:]+)$/;

export class TokenReviewAuthenticator implements Authenticator {
  readonly kind = 'kubernetes-token';

  constructor(
    private readonly review: TokenReviewer,
    /** The audience the projected token must be for (TERN_CA_TOKEN_AUDIENCE). */
    private readonly audience: string,
  ) {}

  async authenticate(credential: string): Promise<AuthenticatedCaller | undefined> {
    if (!JWT_RE.test(credential)) return undefined;
    const refuse = (why: string) => new CredentialError(`service-account token refused: ${why}`);
    const r = await this.review(credential, [this.audience]);
    if (!r.authenticated) throw refuse(r.error ? r.error : 'the API server did not authenticate it');
    // An API server that ignores audiences answers without them; one that checked says which matched.
    if (r.audiences && r.audiences.length > 0 && !r.audiences.includes(this.audience)) throw refuse(`it is not for audience "${this.audience}"`);
    const m = SA_USER_RE.exec(r.username ?? '');
    if (!m) throw refuse(`"${r.username ?? ''}" is not a service account`);
    const [, namespace, serviceAccount] = m as unknown as [string, string, string];
    if (!NAMESPACE_RE.test(namespace) || !SERVICE_ACCOUNT_RE.test(serviceAccount)) throw refuse(`"${r.username}" is not a valid service account name`);
    return { identity: { namespace, serviceAccount }, credential: `k8s-sa:${namespace}/${serviceAccount}${r.podName ? `@${r.podName}` : ''}` };
  }
}
