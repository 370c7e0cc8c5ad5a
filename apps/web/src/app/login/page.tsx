'use client';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useRouter, useSearchParams } from 'next/navigation';
import { Suspense, useState, type FormEvent } from 'react';
import { ThemeToggle } from '../../components/theme-toggle.tsx';
import { errorInfo } from '../../lib/errors.ts';
import { useTRPC } from '../../lib/trpc.ts';

function safeNext(raw: string | null): string {
  // Only paths on this site: never an open redirect.
  return raw && raw.startsWith('/') && !raw.startsWith('//') ? raw : '/';
}

function LoginForm() {
  const trpc = useTRPC();
  const router = useRouter();
  const params = useSearchParams();
  const queryClient = useQueryClient();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const login = useMutation(
    trpc.auth.login.mutationOptions({
      onSuccess: () => {
        queryClient.clear();
        router.replace(safeNext(params.get('next')));
      },
    }),
  );
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    login.mutate({ username, password });
  };
  const err = login.error ? errorInfo(login.error) : undefined;
  const message =
    err?.code === 'UNAUTHORIZED' ? 'Wrong username or password.' : err?.code === 'TOO_MANY_REQUESTS' ? `Too many attempts: ${err.message}` : err?.message;
  return (
    <div className="login panel">
      <div className="spread">
        <h1>Sign in to Tern</h1>
        <ThemeToggle />
      </div>
      <form onSubmit={onSubmit} aria-describedby={message ? 'login-error' : undefined}>
        <label>
          Username
          <input name="username" autoComplete="username" autoFocus required value={username} onChange={(e) => setUsername(e.target.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {message && (
          <div className="msg error" role="alert" id="login-error">
            {message}
          </div>
        )}
        <button className="primary" type="submit" disabled={login.isPending}>
          {login.isPending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}

export default function LoginPage() {
  return (
    <Suspense>
      <LoginForm />
    </Suspense>
  );
}
