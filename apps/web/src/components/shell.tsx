'use client';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { usePathname, useRouter } from 'next/navigation';
import { useEffect, type ReactNode } from 'react';
import type { Role } from '../lib/api-types.ts';
import { isUnauthorized } from '../lib/errors.ts';
import { roleAllows } from '../lib/roles.ts';
import { useTRPC } from '../lib/trpc.ts';
import { SessionContext } from './session.tsx';
import { ThemeToggle } from './theme-toggle.tsx';
import { ErrorMessage, Loading } from './ui.tsx';

const NAV: { href: string; label: string; need?: Role }[] = [
  { href: '/', label: 'Overview' },
  { href: '/graph', label: 'Graph' },
  { href: '/services', label: 'Services' },
  { href: '/traffic', label: 'Traffic' },
  { href: '/security', label: 'Security' },
  { href: '/config', label: 'Config' },
  { href: '/audit', label: 'Audit log' },
  { href: '/admin/users', label: 'Users', need: 'admin' },
  { href: '/admin/tokens', label: 'API tokens' },
];

export function Shell({ children }: { children: ReactNode }) {
  const trpc = useTRPC();
  const router = useRouter();
  const pathname = usePathname();
  const queryClient = useQueryClient();
  const me = useQuery({ ...trpc.auth.me.queryOptions(), staleTime: 60_000 });
  const logout = useMutation(
    trpc.auth.logout.mutationOptions({
      onSettled: () => {
        queryClient.clear();
        router.replace('/login');
      },
    }),
  );

  const signedOut = me.isError && isUnauthorized(me.error);
  useEffect(() => {
    if (signedOut) {
      const here = typeof window === 'undefined' ? pathname : window.location.pathname + window.location.search;
      router.replace(`/login?next=${encodeURIComponent(here)}`);
    }
  }, [signedOut, router, pathname]);

  if (me.isPending || signedOut) return <main><Loading what="session" /></main>;
  if (me.isError) return <main><ErrorMessage error={me.error} title="Cannot load your session" /></main>;

  const active = (href: string) => (href === '/' ? pathname === '/' : pathname === href || pathname.startsWith(`${href}/`));
  return (
    <SessionContext.Provider value={{ me: me.data }}>
      <a className="skip" href="#content">Skip to content</a>
      <div className="shell">
        <aside className="sidebar">
          <div className="brand">Tern</div>
          <nav aria-label="Main">
            {NAV.filter((n) => !n.need || roleAllows(me.data.role, n.need)).map((n) => (
              <Link key={n.href} href={n.href} aria-current={active(n.href) ? 'page' : undefined}>
                {n.label}
              </Link>
            ))}
          </nav>
          <div className="who">
            <div>
              <div data-testid="whoami"><strong>{me.data.name}</strong></div>
              <div className="small muted">role: <span data-testid="role">{me.data.role}</span></div>
            </div>
            <ThemeToggle />
            <button type="button" onClick={() => logout.mutate()} disabled={logout.isPending}>
              Sign out
            </button>
          </div>
        </aside>
        <main id="content" tabIndex={-1}>
          {children}
        </main>
      </div>
    </SessionContext.Provider>
  );
}
