import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { NotFoundError } from '../errors.ts';
import type { Actor } from '../store/writer.ts';
import { CredentialError, type AuthenticatedCaller, type Authenticator } from './authenticator.ts';
import type { WorkloadIdentity } from './identity.ts';

// Join tokens: bootstrap credentials for workloads outside Kubernetes, each bound to one
// namespace/service account, expiring, good for a limited number of certificates. Only the
// SHA-256 of the secret is stored; the secret is shown once, when it is created.

export const JOIN_TOKEN_PREFIX = 'tern_join_';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export interface JoinTokenView {
  id: string;
  prefix: string;
  namespace: string;
  serviceAccount: string;
  maxUses: number;
  uses: number;
  createdAt: string;
  createdBy: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  /** active | expired | used-up | revoked */
  state: 'active' | 'expired' | 'used-up' | 'revoked';
}

type Row = { id: string; prefix: string; namespace: string; serviceAccount: string; maxUses: number; uses: number; createdAt: Date; createdBy: string; expiresAt: Date; revokedAt: Date | null; lastUsedAt: Date | null };

function state(t: Row, now: number): JoinTokenView['state'] {
  if (t.revokedAt) return 'revoked';
  if (t.uses >= t.maxUses) return 'used-up';
  if (t.expiresAt.getTime() <= now) return 'expired';
  return 'active';
}

const view = (t: Row, now = Date.now()): JoinTokenView => ({
  id: t.id,
  prefix: t.prefix,
  namespace: t.namespace,
  serviceAccount: t.serviceAccount,
  maxUses: t.maxUses,
  uses: t.uses,
  createdAt: t.createdAt.toISOString(),
  createdBy: t.createdBy,
  expiresAt: t.expiresAt.toISOString(),
  revokedAt: t.revokedAt?.toISOString() ?? null,
  lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
  state: state(t, now),
});

const audit = (tx: Prisma.TransactionClient, actor: Actor, action: string, t: Row) =>
  tx.auditEvent.create({
    data: { actor: actor.name, actorKind: actor.kind, action, namespace: t.namespace, name: t.serviceAccount, details: { id: t.id, prefix: t.prefix, namespace: t.namespace, serviceAccount: t.serviceAccount, maxUses: t.maxUses, expiresAt: t.expiresAt.toISOString() } },
  });

export interface CreateJoinToken extends WorkloadIdentity {
  ttlSeconds: number;
  maxUses: number;
}

export class JoinTokenStore implements Authenticator {
  readonly kind = 'join-token';

  constructor(private readonly prisma: PrismaClient) {}

  async create(input: CreateJoinToken, actor: Actor): Promise<{ token: string; info: JoinTokenView }> {
    const token = JOIN_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const row = await this.prisma.$transaction(async (tx) => {
      const t = await tx.joinToken.create({
        data: {
          id: randomUUID(),
          tokenHash: sha256(token),
          prefix: token.slice(0, JOIN_TOKEN_PREFIX.length + 6),
          namespace: input.namespace,
          serviceAccount: input.serviceAccount,
          maxUses: input.maxUses,
          expiresAt: new Date(Date.now() + input.ttlSeconds * 1000),
          createdBy: actor.name,
        },
      });
      await audit(tx, actor, 'join-token.created', t);
      return t;
    });
    return { token, info: view(row) };
  }

  async list(filter: { namespace?: string | undefined } = {}): Promise<JoinTokenView[]> {
    const rows = await this.prisma.joinToken.findMany({ where: filter.namespace ? { namespace: filter.namespace } : {}, orderBy: { createdAt: 'desc' } });
    const now = Date.now();
    return rows.map((r) => view(r, now));
  }

  async revoke(id: string, actor: Actor): Promise<JoinTokenView> {
    return this.prisma.$transaction(async (tx) => {
      const t = await tx.joinToken.findUnique({ where: { id } });
      if (!t) throw new NotFoundError(`join token ${id} does not exist`);
      if (t.revokedAt) return view(t);
      const updated = await tx.joinToken.update({ where: { id }, data: { revokedAt: new Date() } });
      await audit(tx, actor, 'join-token.revoked', updated);
      return view(updated);
    });
  }

  async authenticate(credential: string): Promise<AuthenticatedCaller | undefined> {
    if (!credential.startsWith(JOIN_TOKEN_PREFIX)) return undefined;
    const tokenHash = sha256(credential);
    const t = await this.prisma.joinToken.findUnique({ where: { tokenHash } });
    // One message for every refusal: a caller learns nothing about which tokens exist.
    const refuse = (why: string) => new CredentialError(`join token refused: ${why}`);
    if (!t) throw refuse('unknown token');
    const s = state(t, Date.now());
    if (s !== 'active') throw refuse(`token ${t.prefix}… is ${s}`);
    return {
      identity: { namespace: t.namespace, serviceAccount: t.serviceAccount },
      credential: `join-token:${t.id}`,
      commit: async (tx) => {
        // One conditional UPDATE: PostgreSQL re-checks the row after taking its lock, so of two
        // concurrent uses of the last remaining use exactly one matches.
        const n = await tx.joinToken.updateMany({
          where: { tokenHash, revokedAt: null, expiresAt: { gt: new Date() }, uses: { lt: tx.joinToken.fields.maxUses } },
          data: { uses: { increment: 1 }, lastUsedAt: new Date() },
        });
        if (n.count !== 1) throw refuse(`token ${t.prefix}… was used up, revoked or expired meanwhile`);
      },
    };
  }
}
