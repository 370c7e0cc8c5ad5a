'use client';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Suspense, useRef, useState, type FormEvent } from 'react';
import { ConfirmButton } from '../../../../components/confirm-button.tsx';
import { useSession } from '../../../../components/session.tsx';
import { ErrorMessage, Empty, Loading, RoleButton, when } from '../../../../components/ui.tsx';
import type { Role, RouterOutputs } from '../../../../lib/api-types.ts';
import { roleAllows } from '../../../../lib/roles.ts';
import { useTRPC } from '../../../../lib/trpc.ts';

type Token = RouterOutputs['tokens']['list']['tokens'][number];
type Created = RouterOutputs['tokens']['create'];
const ROLES: Role[] = ['viewer', 'editor', 'admin'];

function tokenStatus(t: Token): { label: string; cls: string } {
  if (t.revokedAt) return { label: 'revoked', cls: 'err' };
  if (t.expiresAt && Date.parse(t.expiresAt) <= Date.now()) return { label: 'expired', cls: 'warn' };
  return { label: 'active', cls: 'ok' };
}

/**
 * The new token, once: it lives only in this component's state (never in the URL or the cache),
 * and "Done" drops it. The API stores only its hash, so it cannot be shown again.
 */
function NewSecret({ created, onDone }: { created: Created; onDone: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<string | undefined>();
  async function copy() {
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied('Copied to the clipboard.');
    } catch {
      // No clipboard permission (or not a secure context): select it for Ctrl+C instead.
      input.current?.select();
      setCopied('Selected: press Ctrl+C (⌘C) to copy.');
    }
  }
  return (
    <div className="msg ok" role="status" data-testid="new-token">
      <p style={{ margin: '0 0 6px' }}>
        <strong>Token “{created.info.name}” created ({created.info.role}).</strong> Copy it now: <strong>you will not see it again.</strong> Send it as{' '}
        <code>Authorization: Bearer &lt;token&gt;</code>.
      </p>
      <div className="secret">
        <input ref={input} readOnly aria-label="New API token" data-testid="token-secret" value={created.token} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={() => void copy()}>Copy</button>
        <button type="button" onClick={onDone}>Done</button>
      </div>
      {copied && <div className="small" data-testid="copied">{copied}</div>}
    </div>
  );
}

function CreateToken({ onCreated }: { onCreated: (c: Created) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const { me } = useSession();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [days, setDays] = useState('90');
  const viaToken = me?.via === 'token';
  const create = useMutation(
    trpc.tokens.create.mutationOptions({
      onSuccess: (c) => {
        onCreated(c);
        setName('');
        void queryClient.invalidateQueries({ queryKey: trpc.tokens.list.queryKey() });
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({ name, role, ...(days ? { expiresInDays: Number(days) } : {}) });
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Create an API token">
      <label>
        Name
        <input name="token-name" autoComplete="off" required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. ci-deploy" />
      </label>
      <label>
        Role
        <select name="token-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => (
            // A token never carries more than its owner's role (the API refuses it too).
            <option key={r} value={r} disabled={!roleAllows(me?.role, r)}>{r}{roleAllows(me?.role, r) ? '' : ' (above your role)'}</option>
          ))}
        </select>
      </label>
      <label>
        Expires
        <select name="token-expires" value={days} onChange={(e) => setDays(e.target.value)}>
          <option value="7">in 7 days</option>
          <option value="30">in 30 days</option>
          <option value="90">in 90 days</option>
          <option value="365">in a year</option>
          <option value="">never</option>
        </select>
      </label>
      <RoleButton need="viewer" id="create-token" type="submit" className="primary" disabled={create.isPending || viaToken} title={viaToken ? 'API tokens cannot create API tokens; sign in to create one' : undefined}>
        {create.isPending ? 'Creating…' : 'Create token'}
      </RoleButton>
      {create.isError && <div style={{ flexBasis: '100%' }}><ErrorMessage error={create.error} title="Token not created" /></div>}
    </form>
  );
}

function Tokens() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const { me } = useSession();
  const isAdmin = roleAllows(me?.role, 'admin');
  const tokens = useQuery(trpc.tokens.list.queryOptions());
  const [created, setCreated] = useState<Created | undefined>();
  const [done, setDone] = useState<string | undefined>();
  const revoke = useMutation(
    trpc.tokens.revoke.mutationOptions({
      onSuccess: (t) => {
        setDone(`Revoked “${t.name}” (${t.owner}); it no longer works.`);
        void queryClient.invalidateQueries({ queryKey: trpc.tokens.list.queryKey() });
      },
    }),
  );
  return (
    <>
      <h1>API tokens</h1>
      <p className="muted">
        {isAdmin ? 'Every user’s tokens (you are an admin).' : 'Your tokens.'} Tokens authenticate scripts and the CLI against the REST API with the role they were created
        with, never above their owner&apos;s current role.
      </p>
      <div className="panel">
        <h2>Create a token</h2>
        {created && <NewSecret created={created} onDone={() => setCreated(undefined)} />}
        <CreateToken onCreated={(c) => { setDone(undefined); setCreated(c); }} />
      </div>
      {done && <div className="msg ok" role="status" data-testid="tokens-done">{done}</div>}
      {revoke.isError && <ErrorMessage error={revoke.error} title="Not revoked" />}
      <div className="panel">
        {tokens.isPending ? <Loading what="tokens" /> : tokens.isError ? <ErrorMessage error={tokens.error} /> : tokens.data.tokens.length === 0 ? <Empty>No API tokens yet.</Empty> : (
          <table data-testid="tokens-table">
            <thead><tr><th>Name</th><th>Owner</th><th>Role</th><th>Prefix</th><th>Created</th><th>Expires</th><th>Last used</th><th>Status</th><th></th></tr></thead>
            <tbody>
              {tokens.data.tokens.map((t) => {
                const s = tokenStatus(t);
                return (
                  <tr key={t.id} data-testid={`token-${t.name}`}>
                    <td><strong>{t.name}</strong></td>
                    <td>{t.owner}{t.owner === me?.name ? <span className="small muted"> (you)</span> : null}</td>
                    <td>{t.role}</td>
                    <td><code>{t.prefix}…</code></td>
                    <td className="small">{when(t.createdAt)}</td>
                    <td className="small">{t.expiresAt ? when(t.expiresAt) : 'never'}</td>
                    <td className="small">{t.lastUsedAt ? when(t.lastUsedAt) : 'never'}</td>
                    <td><span className={`badge ${s.cls}`}>{s.label}</span></td>
                    <td>
                      {!t.revokedAt && (
                        <ConfirmButton
                          need="viewer"
                          id={`revoke-${t.id}`}
                          label="Revoke"
                          question={`Revoke “${t.name}”? Anything using it stops working at once.`}
                          confirmLabel="Yes, revoke"
                          busy={revoke.isPending}
                          onConfirm={() => revoke.mutate({ id: t.id })}
                        />
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

export default function TokensPage() {
  return <Suspense fallback={<Loading what="page" />}><Tokens /></Suspense>;
}
