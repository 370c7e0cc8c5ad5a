import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { istioCertificateServiceDefinition, PROXY_ID_METADATA, TRUST_BUNDLE_METADATA, type CreateCertificateHandler } from '@tern/xds';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { isDatabaseUnavailable } from '../store/db.ts';
import { logger } from '../log.ts';
import { authenticateCaller, CredentialError, type Authenticator } from './authenticator.ts';
import { issuerFromFiles, withTrustedRoots, type CaIssuer } from './issuer.ts';
import { IssueError, issueSvid, type IssuedSvid, type TtlPolicy } from './issue.ts';
import { issueServingCertificate, type ServingCertificate } from './serving-cert.ts';
import { JoinTokenStore } from './join-tokens.ts';
import { loadKek } from './kek.ts';
import { loadOrCreateRoot } from './store.ts';
import { SvidAuthenticator } from './svid-authenticator.ts';
import { TokenReviewAuthenticator, TokenReviewUnavailableError, type TokenReviewer } from './token-review-authenticator.ts';

// The control plane's certificate authority: loads (or creates) the issuer at start, issues
// workload certificates to authenticated callers over gRPC, and answers the API's questions
// (trust bundle, issued certificates). docs/security.md.

export interface CaOptions {
  trustDomain: string;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  dataDir: string;
  kekValue?: string | undefined;
  kekFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  chainFile?: string | undefined;
  /** More roots to trust (TERN_CA_TRUST_BUNDLE_FILE): the next root before a rotation, the previous one after. */
  trustBundleFile?: string | undefined;
  /** Kubernetes service-account tokens (TokenReview), asked after join tokens and renewals. */
  tokenReview?: { reviewer: TokenReviewer; audience: string } | undefined;
  /** Several replicas may share the database (PostgreSQL): a generated KEK would differ per host. */
  sharedDatabase: boolean;
}

export interface TrustBundle {
  trustDomain: string;
  mode: 'generated' | 'provided';
  /** PEM certificates workloads must trust. */
  roots: string[];
  issuer: { subject: string; serial: string; notBefore: string; notAfter: string };
}

export interface IssuedCertificateView {
  serial: string;
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  credential: string;
  requester: string | null;
  proxyId: string | null;
}

/** The newest certificate issued to a proxy, as the proxy list shows it. */
export type ProxyCertificate = Pick<IssuedCertificateView, 'serial' | 'spiffeId' | 'notBefore' | 'notAfter' | 'issuedAt'>;

export interface CreateCertificateInput {
  csrPem: string;
  ttlSeconds: number;
  credential: string;
  requester?: string | undefined;
  proxyId?: string | undefined;
}

export class CaService {
  readonly joinTokens: JoinTokenStore;
  /** Asked in order; a Kubernetes TokenReview authenticator goes here (authenticator.ts). */
  readonly authenticators: Authenticator[];
  private readonly ttl: TtlPolicy;

  private constructor(
    private readonly prisma: PrismaClient,
    private readonly issuer: CaIssuer,
    readonly opts: CaOptions,
  ) {
    this.joinTokens = new JoinTokenStore(prisma);
    this.authenticators = [this.joinTokens, new SvidAuthenticator(prisma, () => this.issuer)];
    if (opts.tokenReview) this.authenticators.push(new TokenReviewAuthenticator(opts.tokenReview.reviewer, opts.tokenReview.audience));
    this.ttl = { defaultSeconds: opts.defaultTtlSeconds, maxSeconds: opts.maxTtlSeconds };
  }

  static async start(prisma: PrismaClient, opts: CaOptions): Promise<CaService> {
    let issuer: CaIssuer;
    if (opts.certFile && opts.keyFile) {
      issuer = await issuerFromFiles({ certFile: opts.certFile, keyFile: opts.keyFile, chainFile: opts.chainFile });
    } else {
      const generatePath = path.join(opts.dataDir, 'ca-kek');
      const { kek, generated } = loadKek({ value: opts.kekValue, file: opts.kekFile, generatePath });
      if (generated) {
        logger.warn({ path: generatePath, fingerprint: kek.fingerprint }, 'CA: generated a key-encryption key (mode 0600); keep it with the database backups, or set TERN_CA_KEY_ENCRYPTION_KEY');
      }
      if (opts.sharedDatabase && !opts.kekValue && !opts.kekFile) {
        logger.warn({ path: generatePath }, 'CA: no TERN_CA_KEY_ENCRYPTION_KEY on a shared database: every replica must use the same key-encryption key, or the others cannot start');
      }
      const loaded = await loadOrCreateRoot(prisma, kek);
      issuer = loaded.issuer;
      if (loaded.created) logger.info({ serial: issuer.certificate.serialNumber, notAfter: issuer.certificate.notAfter.toISOString() }, 'CA: generated the root certificate');
    }
    if (opts.trustBundleFile) issuer = await withTrustedRoots(issuer, opts.trustBundleFile);
    logger.info({ mode: issuer.mode, roots: issuer.roots.length, trustDomain: opts.trustDomain, issuer: issuer.certificate.subject, serial: issuer.certificate.serialNumber, notAfter: issuer.certificate.notAfter.toISOString() }, 'CA ready');
    return new CaService(prisma, issuer, opts);
  }

  trustBundle(): TrustBundle {
    const c = this.issuer.certificate;
    return {
      trustDomain: this.opts.trustDomain,
      mode: this.issuer.mode,
      roots: this.issuer.roots.map((r) => r.toString('pem')),
      issuer: { subject: c.subject, serial: c.serialNumber, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() },
    };
  }

  /** A server certificate with DNS names for the control plane's own servers (the injection webhook); never for workloads. */
  servingCertificate(dnsNames: string[], ttlSeconds?: number): Promise<ServingCertificate> {
    return issueServingCertificate(this.issuer, { dnsNames, ...(ttlSeconds !== undefined ? { ttlSeconds } : {}) });
  }

  /** Authenticates the caller, issues for the credential's identity, counts the use and records the certificate. */
  async createCertificate(input: CreateCertificateInput): Promise<IssuedSvid> {
    const caller = await authenticateCaller(this.authenticators, input.credential, { csrPem: input.csrPem });
    const svid = await issueSvid(this.issuer, { csrPem: input.csrPem, identity: caller.identity, trustDomain: this.opts.trustDomain, ttlSeconds: input.ttlSeconds, ttl: this.ttl });
    await this.prisma.$transaction(async (tx) => {
      await caller.commit?.(tx);
      await tx.issuedCertificate.create({
        data: {
          serial: svid.serial,
          spiffeId: svid.spiffeId,
          namespace: caller.identity.namespace,
          serviceAccount: caller.identity.serviceAccount,
          notBefore: svid.notBefore,
          notAfter: svid.notAfter,
          credential: caller.credential,
          requester: input.requester ?? null,
          proxyId: input.proxyId ?? null,
        },
      });
    });
    logger.info({ serial: svid.serial, spiffeId: svid.spiffeId, notAfter: svid.notAfter.toISOString(), credential: caller.credential, requester: input.requester }, 'CA: issued a workload certificate');
    return svid;
  }

  async listCertificates(f: { namespace?: string | undefined; serviceAccount?: string | undefined; limit: number }): Promise<IssuedCertificateView[]> {
    const rows = await this.prisma.issuedCertificate.findMany({
      where: { ...(f.namespace ? { namespace: f.namespace } : {}), ...(f.serviceAccount ? { serviceAccount: f.serviceAccount } : {}) },
      orderBy: { issuedAt: 'desc' },
      take: f.limit,
    });
    return rows.map((r) => ({
      serial: r.serial,
      spiffeId: r.spiffeId,
      namespace: r.namespace,
      serviceAccount: r.serviceAccount,
      notBefore: r.notBefore.toISOString(),
      notAfter: r.notAfter.toISOString(),
      issuedAt: r.issuedAt.toISOString(),
      credential: r.credential,
      requester: r.requester,
      proxyId: r.proxyId,
    }));
  }

  /** The newest certificate issued to each of these proxies (by the node id they sent), if any. */
  async latestByProxy(proxyIds: readonly string[]): Promise<Map<string, ProxyCertificate>> {
    const out = new Map<string, ProxyCertificate>();
    if (proxyIds.length === 0) return out;
    const rows = await this.prisma.issuedCertificate.findMany({
      where: { proxyId: { in: [...new Set(proxyIds)] } },
      orderBy: { issuedAt: 'desc' },
      distinct: ['proxyId'],
      select: { proxyId: true, serial: true, spiffeId: true, notBefore: true, notAfter: true, issuedAt: true },
    });
    for (const r of rows) {
      out.set(r.proxyId!, { serial: r.serial, spiffeId: r.spiffeId, notBefore: r.notBefore.toISOString(), notAfter: r.notAfter.toISOString(), issuedAt: r.issuedAt.toISOString() });
    }
    return out;
  }

  /** Istio's IstioCertificateService, for `grpc.Server.addService` next to ADS. */
  grpcService(): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
    const CreateCertificate: CreateCertificateHandler = (call, callback) => {
      const fail = (code: grpc.status, details: string) => callback({ code, details });
      const auth = call.metadata.get('authorization')[0];
      const header = typeof auth === 'string' ? auth : auth?.toString('utf8');
      const bearer = header && /^bearer\s+/i.test(header) ? header.replace(/^bearer\s+/i, '').trim() : undefined;
      if (!bearer) return fail(grpc.status.UNAUTHENTICATED, 'missing credential: send "authorization: Bearer <join token>" (or, to renew, the current certificate: docs/security.md) in the call metadata');
      const fields = call.request.metadata?.fields ?? {};
      if ('ImpersonatedIdentity' in fields) return fail(grpc.status.PERMISSION_DENIED, 'metadata.ImpersonatedIdentity: impersonation is not supported; a certificate carries only its credential\'s identity');
      const proxyId = call.metadata.get(PROXY_ID_METADATA)[0];
      if (proxyId !== undefined && (typeof proxyId !== 'string' || proxyId.length === 0 || proxyId.length > 512)) {
        return fail(grpc.status.INVALID_ARGUMENT, `${PROXY_ID_METADATA}: must be the proxy's xDS node id (1-512 characters)`);
      }
      this.createCertificate({ csrPem: call.request.csr, ttlSeconds: Number(call.request.validity_duration ?? 0), credential: bearer, requester: call.getPeer(), proxyId }).then(
        (svid) => {
          const md = new grpc.Metadata();
          md.set(TRUST_BUNDLE_METADATA, Buffer.from(this.trustBundle().roots.join('\n')));
          call.sendMetadata(md);
          callback(null, { cert_chain: svid.chainPem });
        },
        (err: unknown) => {
          if (err instanceof CredentialError) return fail(grpc.status.UNAUTHENTICATED, err.message);
          if (err instanceof IssueError) return fail(err.code === 'identity-mismatch' ? grpc.status.PERMISSION_DENIED : grpc.status.INVALID_ARGUMENT, err.message);
          if (isDatabaseUnavailable(err)) return fail(grpc.status.UNAVAILABLE, 'the database is unavailable; retry shortly');
          if (err instanceof TokenReviewUnavailableError) return fail(grpc.status.UNAVAILABLE, `the Kubernetes API server could not review the token; retry shortly (${err.message})`);
          logger.error({ err: err instanceof Error ? err.message : String(err) }, 'CA: CreateCertificate failed');
          fail(grpc.status.INTERNAL, 'internal error; see the control plane log');
        },
      );
    };
    return { definition: istioCertificateServiceDefinition(), implementation: { CreateCertificate } };
  }
}
