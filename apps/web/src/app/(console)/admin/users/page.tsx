'use client';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { Suspense, useState, type FormEvent } from 'react';
import { ConfirmButton } from '../../../../components/confirm-button.tsx';
import { useSession } from '../../../../components/session.tsx';
import { ErrorMessage, Empty, Loading, RoleButton, when } from '../../../../components/ui.tsx';
import type { Role, RouterOutputs } from '../../../../lib/api-types.ts';
import { deniedReason, roleAllows } from '../../../../lib/roles.ts';
import { useTRPC } from '../../../../lib/trpc.ts';

type User = RouterOutputs['users']['list']['users'][number];
const ROLES: Role[] = ['viewer', 'editor', 'admin'];

function CreateUser({ onDone }: { onDone: (msg: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const { me } = useSession();
  const allowed = roleAllows(me?.role, 'admin');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const create = useMutation(
    trpc.users.create.mutationOptions({
      onSuccess: (u) => {
        onDone(`Created ${u.username} (${u.role}).`);
        setUsername('');
        setPassword('');
        void queryClient.invalidateQueries({ queryKey: trpc.users.list.queryKey() });
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (allowed) create.mutate({ username, password, role });
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Create a user">
      <label>
        Username
        <input name="new-username" autoComplete="off" required value={username} disabled={!allowed} onChange={(e) => setUsername(e.target.value.toLowerCase())} />
      </label>
      <label>
        Password
        <input name="new-password" type="password" autoComplete="new-password" required minLength={12} value={password} disabled={!allowed} onChange={(e) => setPassword(e.target.value)} placeholder="at least 12 characters" />
      </label>
      <label>
        Role
        <select name="new-role" value={role} disabled={!allowed} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
      </label>
      <RoleButton need="admin" id="create-user" type="submit" className="primary" disabled={create.isPending}>
        {create.isPending ? 'Creating…' : 'Create user'}
      </RoleButton>
      {create.isError && <div style={{ flexBasis: '100%' }}><ErrorMessage error={create.error} title="User not created" /></div>}
    </form>
  );
}

function UserRow({ user, self, onDone }: { user: User; self: boolean; onDone: (msg: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [role, setRole] = useState<Role>(user.role);
  const [resetting, setResetting] = useState(false);
  const [password, setPassword] = useState('');
  const refresh = () => void queryClient.invalidateQueries({ queryKey: trpc.users.list.queryKey() });
  const update = useMutation(
    trpc.users.update.mutationOptions({
      onSuccess: (u, input) => {
        onDone(input.password ? `Password of ${u.username} reset; their sessions were ended.` : input.disabled !== undefined ? `${u.username} ${u.disabled ? 'disabled; their sessions were ended' : 'enabled'}.` : `${u.username} is now ${u.role}.`);
        setResetting(false);
        setPassword('');
        refresh();
      },
      onError: () => setRole(user.role),
    }),
  );
  const del = useMutation(
    trpc.users.delete.mutationOptions({
      onSuccess: () => {
        onDone(`Deleted ${user.username} (and their sessions and tokens).`);
        refresh();
      },
    }),
  );
  const slug = user.username.replace(/[^a-z0-9]/g, '-');
  return (
    <>
      <tr data-testid={`user-${user.username}`}>
        <td>
          <strong>{user.username}</strong>
          {self && <span className="small muted"> (you)</span>}
        </td>
        <td>
          <div className="row nowrap">
            <select aria-label={`Role of ${user.username}`} value={role} onChange={(e) => setRole(e.target.value as Role)}>
              {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
            </select>
            <RoleButton need="admin" id={`role-${slug}`} disabled={role === user.role || update.isPending} onClick={() => update.mutate({ username: user.username, role })}>
              Change role
            </RoleButton>
          </div>
        </td>
        <td>{user.disabled ? <span className="badge err">disabled</span> : <span className="badge ok">active</span>}</td>
        <td className="small">{when(user.createdAt)}</td>
        <td>
          <div className="row">
            <button type="button" aria-expanded={resetting} onClick={() => setResetting((x) => !x)}>Reset password</button>
            <button
              type="button"
              disabled={update.isPending || (self && !user.disabled)}
              title={self && !user.disabled ? 'You cannot disable your own account' : undefined}
              onClick={() => update.mutate({ username: user.username, disabled: !user.disabled })}
            >
              {user.disabled ? 'Enable' : 'Disable'}
            </button>
            <ConfirmButton
              need="admin"
              id={`delete-${slug}`}
              label="Delete"
              question={`Delete ${user.username}? Their sessions and API tokens go too.`}
              confirmLabel={`Yes, delete ${user.username}`}
              busy={del.isPending}
              blocked={self ? 'You cannot delete your own account.' : undefined}
              onConfirm={() => del.mutate({ username: user.username })}
            />
          </div>
        </td>
      </tr>
      {(resetting || update.isError || del.isError) && (
        <tr>
          <td colSpan={5}>
            {resetting && (
              <form
                className="inline-form"
                aria-label={`Reset the password of ${user.username}`}
                onSubmit={(e) => {
                  e.preventDefault();
                  update.mutate({ username: user.username, password });
                }}
              >
                <label>
                  New password for {user.username}
                  <input type="password" name={`password-${slug}`} autoComplete="new-password" required minLength={12} value={password} onChange={(e) => setPassword(e.target.value)} placeholder="at least 12 characters" />
                </label>
                <RoleButton need="admin" id={`set-password-${slug}`} type="submit" disabled={update.isPending}>Set password</RoleButton>
                <span className="small muted">Ends their current sessions.</span>
              </form>
            )}
            {update.isError && <ErrorMessage error={update.error} title={`Not changed (${user.username})`} />}
            {del.isError && <ErrorMessage error={del.error} title={`Not deleted (${user.username})`} />}
          </td>
        </tr>
      )}
    </>
  );
}

function Users() {
  const trpc = useTRPC();
  const { me } = useSession();
  const isAdmin = roleAllows(me?.role, 'admin');
  const users = useQuery({ ...trpc.users.list.queryOptions(), enabled: isAdmin });
  const [done, setDone] = useState<string | undefined>();
  return (
    <>
      <h1>Users</h1>
      {!isAdmin && (
        <div className="msg info" data-testid="users-denied">
          {deniedReason(me?.role, 'admin')} Only admins see and manage users; you can manage <Link href="/admin/tokens">your own API tokens</Link>.
        </div>
      )}
      {done && <div className="msg ok" role="status" data-testid="users-done">{done}</div>}
      <div className="panel">
        <h2>Create a user</h2>
        <CreateUser onDone={setDone} />
      </div>
      {isAdmin && (
        <div className="panel">
          {users.isPending ? <Loading what="users" /> : users.isError ? <ErrorMessage error={users.error} /> : users.data.users.length === 0 ? <Empty>No users.</Empty> : (
            <table data-testid="users-table">
              <thead><tr><th>User</th><th>Role</th><th>Status</th><th>Created</th><th>Actions</th></tr></thead>
              <tbody>
                {users.data.users.map((u) => (
                  <UserRow key={`${u.id}-${u.role}-${u.disabled}`} user={u} self={u.username === me?.name} onDone={(m) => setDone(m)} />
                ))}
              </tbody>
            </table>
          )}
          <p className="small muted">
            A user&apos;s API tokens never carry more than the user&apos;s role: demoting a user demotes their tokens. At least one enabled admin must remain.
          </p>
        </div>
      )}
    </>
  );
}

export default function UsersPage() {
  return <Suspense fallback={<Loading what="page" />}><Users /></Suspense>;
}
