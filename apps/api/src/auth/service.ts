import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { roleAllows, type Role } from '@tern/shared';
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { Actor } from '../store/writer.ts';
import { generatePassword, hashPassword, verifyPassword } from './password.ts';
import { FailureLimiter } from './ratelimit.ts';

// Users, console sessions and API tokens. Session ids and tokens are random 256-bit values;
// only their SHA-256 is stored, so a database dump does not let anyone sign in.

export const SESSION_PREFIX = 'tern_sess_';
export const TOKEN_PREFIX = 'tern_pat_';

export interface Principal extends Actor {
  userId: string;
  via: 'session' | 'token';
  tokenId?: string;
}

export class AuthError extends Error {
  override readonly name = 'AuthError';
}

export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';
  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed sign-ins; try again in ${retryAfterSeconds} s`);
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const secret = (prefix: string) => prefix + randomBytes(32).toString('base64url');

export interface UserView {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
}

export interface TokenView {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  owner: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

const userView = (u: { id: string; username: string; role: string; disabled: boolean; createdAt: Date }): UserView => ({
  id: u.id,
  username: u.username,
  role: u.role as Role,
  disabled: u.disabled,
  createdAt: u.createdAt.toISOString(),
});

const tokenView = (t: { id: string; name: string; prefix: string; role: string; createdAt: Date; expiresAt: Date | null; revokedAt: Date | null; lastUsedAt: Date | null; user: { username: string } }): TokenView => ({
  id: t.id,
  name: t.name,
  prefix: t.prefix,
  role: t.role as Role,
  owner: t.user.username,
  createdAt: t.createdAt.toISOString(),
  expiresAt: t.expiresAt?.toISOString() ?? null,
  revokedAt: t.revokedAt?.toISOString() ?? null,
  lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
});

function audit(tx: Prisma.TransactionClient, actor: Pick<Actor, 'name' | 'kind'>, action: string, details: Record<string, unknown>) {
  return tx.auditEvent.create({ data: { actor: actor.name, actorKind: actor.kind, action, details: details as Prisma.InputJsonValue } });
}

export const SYSTEM: Actor = { name: 'system', kind: 'system', role: 'admin' };

export class AuthService {
  private readonly limiter: FailureLimiter;
  // Dummy hash so an unknown username costs as much as a wrong password (no user enumeration by timing).
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly opts: { sessionTtlMs: number; loginMaxAttempts: number; loginWindowMs: number },
  ) {
    this.limiter = new FailureLimiter(opts.loginMaxAttempts, opts.loginWindowMs);
  }

  /** On a fresh install, creates `admin`. Returns the generated password when one had to be made. */
  async ensureAdmin(password: string | undefined): Promise<{ created: boolean; generatedPassword?: string }> {
    if ((await this.prisma.user.count()) > 0) return { created: false };
    const pw = password ?? generatePassword();
    try {
      await this.prisma.$transaction(async (tx) => {
        await tx.user.create({ data: { id: randomUUID(), username: 'admin', passwordHash: await hashPassword(pw), role: 'admin' } });
        await audit(tx, SYSTEM, 'user.created', { username: 'admin', role: 'admin', reason: 'first start' });
      });
    } catch (err) {
      // Another replica created it first.
      if ((err as { code?: string }).code === 'P2002') return { created: false };
      throw err;
    }
    return password ? { created: true } : { created: true, generatedPassword: pw };
  }

  async login(username: string, password: string, clientAddress: string): Promise<{ sessionToken: string; user: UserView; expiresAt: Date }> {
    const keys = [`ip:${clientAddress}`, `user:${username}`];
    const wait = this.limiter.retryAfterMs(keys);
    if (wait > 0) throw new RateLimitedError(Math.ceil(wait / 1000));
    const user = await this.prisma.user.findUnique({ where: { username } });
    this.dummyHash ??= hashPassword(generatePassword());
    const ok = await verifyPassword(password, user?.passwordHash ?? (await this.dummyHash));
    if (!user || !ok || user.disabled) {
      this.limiter.fail(keys);
      await audit(this.prisma, { name: username, kind: 'user' }, 'auth.login-failed', { clientAddress });
      throw new AuthError('invalid username or password');
    }
    this.limiter.reset(keys);
    const sessionToken = secret(SESSION_PREFIX);
    const expiresAt = new Date(Date.now() + this.opts.sessionTtlMs);
    await this.prisma.$transaction(async (tx) => {
      await tx.session.create({ data: { idHash: sha256(sessionToken), userId: user.id, expiresAt } });
      await audit(tx, { name: user.username, kind: 'user' }, 'auth.login', { clientAddress });
    });
    return { sessionToken, user: userView(user), expiresAt };
  }

  async logout(sessionToken: string): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const s = await tx.session.findUnique({ where: { idHash: sha256(sessionToken) }, include: { user: true } });
      if (!s) return;
      await tx.session.delete({ where: { idHash: s.idHash } });
      await audit(tx, { name: s.user.username, kind: 'user' }, 'auth.logout', {});
    });
  }

  /** Resolves a session cookie or bearer credential to who is calling; undefined if invalid. */
  async authenticate(credential: string | undefined): Promise<Principal | undefined> {
    if (!credential) return undefined;
    const now = new Date();
    if (credential.startsWith(SESSION_PREFIX)) {
      const s = await this.prisma.session.findUnique({ where: { idHash: sha256(credential) }, include: { user: true } });
      if (!s || s.expiresAt <= now || s.user.disabled) return undefined;
      return { name: s.user.username, kind: 'user', role: s.user.role as Role, userId: s.userId, via: 'session' };
    }
    if (credential.startsWith(TOKEN_PREFIX)) {
      const t = await this.prisma.apiToken.findUnique({ where: { tokenHash: sha256(credential) }, include: { user: true } });
      if (!t || t.revokedAt || (t.expiresAt && t.expiresAt <= now) || t.user.disabled) return undefined;
      // Throttled so a busy script does not turn every read into a write.
      if (!t.lastUsedAt || now.getTime() - t.lastUsedAt.getTime() > 60_000) {
        await this.prisma.apiToken.update({ where: { id: t.id }, data: { lastUsedAt: now } }).catch(() => {});
      }
      // A token never has more rights than its owner has now.
      const role = roleAllows(t.user.role as Role, t.role as Role) ? (t.role as Role) : (t.user.role as Role);
      return { name: `${t.user.username}/token:${t.name}`, kind: 'token', role, userId: t.userId, via: 'token', tokenId: t.id };
    }
    return undefined;
  }

  async listUsers(): Promise<UserView[]> {
    return (await this.prisma.user.findMany({ orderBy: { username: 'asc' } })).map(userView);
  }

  async createUser(input: { username: string; password: string; role: Role }, actor: Actor): Promise<UserView> {
    const passwordHash = await hashPassword(input.password);
    try {
      return await this.prisma.$transaction(async (tx) => {
        const u = await tx.user.create({ data: { id: randomUUID(), username: input.username, passwordHash, role: input.role } });
        await audit(tx, actor, 'user.created', { username: u.username, role: u.role });
        return userView(u);
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'P2002') throw new ConflictError(`user "${input.username}" already exists`);
      throw err;
    }
  }

  async updateUser(input: { username: string; password?: string | undefined; role?: Role | undefined; disabled?: boolean | undefined }, actor: Actor): Promise<UserView> {
    const passwordHash = input.password ? await hashPassword(input.password) : undefined;
    return this.prisma.$transaction(async (tx) => {
      const existing = await tx.user.findUnique({ where: { username: input.username } });
      if (!existing) throw new NotFoundError(`user "${input.username}" does not exist`);
      const demotesAdmin = existing.role === 'admin' && ((input.role && input.role !== 'admin') || input.disabled === true);
      if (demotesAdmin && (await tx.user.count({ where: { role: 'admin', disabled: false } })) <= 1) {
        throw new ValidationError('cannot demote or disable the last admin', [{ path: 'role', rule: 'last_admin', message: 'at least one enabled admin must remain' }]);
      }
      const u = await tx.user.update({
        where: { username: input.username },
        data: {
          ...(passwordHash ? { passwordHash } : {}),
          ...(input.role ? { role: input.role } : {}),
          ...(input.disabled !== undefined ? { disabled: input.disabled } : {}),
          updatedAt: new Date(),
        },
      });
      // A changed password or disabled account ends existing sessions.
      if (passwordHash || input.disabled) await tx.session.deleteMany({ where: { userId: u.id } });
      await audit(tx, actor, 'user.updated', {
        username: u.username,
        ...(input.role ? { role: input.role } : {}),
        ...(input.disabled !== undefined ? { disabled: input.disabled } : {}),
        ...(passwordHash ? { passwordChanged: true } : {}),
      });
      return userView(u);
    });
  }

  async deleteUser(username: string, actor: Actor): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const existing = await tx.user.findUnique({ where: { username } });
      if (!existing) throw new NotFoundError(`user "${username}" does not exist`);
      if (existing.role === 'admin' && (await tx.user.count({ where: { role: 'admin', disabled: false } })) <= 1) {
        throw new ValidationError('cannot delete the last admin', [{ path: 'username', rule: 'last_admin', message: 'at least one enabled admin must remain' }]);
      }
      await tx.user.delete({ where: { username } });
      await audit(tx, actor, 'user.deleted', { username });
    });
  }

  async createToken(input: { name: string; role: Role; expiresInDays?: number | undefined }, principal: Principal): Promise<{ token: string; info: TokenView }> {
    if (!roleAllows(principal.role, input.role)) {
      throw new ValidationError(`a ${principal.role} cannot create a token with role ${input.role}`, [
        { path: 'role', rule: 'role_exceeds_owner', message: `role must be at most your own (${principal.role})` },
      ]);
    }
    const token = secret(TOKEN_PREFIX);
    const expiresAt = input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null;
    return this.prisma.$transaction(async (tx) => {
      const t = await tx.apiToken.create({
        data: { id: randomUUID(), name: input.name, tokenHash: sha256(token), prefix: token.slice(0, TOKEN_PREFIX.length + 6), role: input.role, userId: principal.userId, expiresAt },
        include: { user: true },
      });
      await audit(tx, principal, 'token.created', { id: t.id, name: t.name, role: t.role, owner: t.user.username });
      return { token, info: tokenView(t) };
    });
  }

  async listTokens(principal: Principal): Promise<TokenView[]> {
    const rows = await this.prisma.apiToken.findMany({
      where: principal.role === 'admin' ? {} : { userId: principal.userId },
      include: { user: true },
      orderBy: { createdAt: 'desc' },
    });
    return rows.map(tokenView);
  }

  async revokeToken(id: string, principal: Principal): Promise<TokenView> {
    return this.prisma.$transaction(async (tx) => {
      const t = await tx.apiToken.findUnique({ where: { id }, include: { user: true } });
      // Someone else's token is "not found" to a non-admin: do not confirm it exists.
      if (!t || (principal.role !== 'admin' && t.userId !== principal.userId)) throw new NotFoundError(`token ${id} does not exist`);
      const updated = t.revokedAt ? t : await tx.apiToken.update({ where: { id }, data: { revokedAt: new Date() }, include: { user: true } });
      await audit(tx, principal, 'token.revoked', { id, name: t.name, owner: t.user.username });
      return tokenView(updated);
    });
  }
}
