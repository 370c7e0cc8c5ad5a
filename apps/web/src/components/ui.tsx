'use client';
import type { ButtonHTMLAttributes, ReactNode } from 'react';
import { errorInfo } from '../lib/errors.ts';
import { deniedReason } from '../lib/roles.ts';
import type { Role } from '../lib/api-types.ts';
import { useSession } from './session.tsx';

export function Loading({ what }: { what: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      Loading {what}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** An API error as a message: its text and the field issues, never a stack. */
export function ErrorMessage({ error, title }: { error: unknown; title?: string }) {
  const info = errorInfo(error);
  return (
    <div className="msg error" role="alert">
      <strong>{title ?? 'Error'}:</strong> {info.message}
      {info.issues.length > 0 && (
        <ul>
          {info.issues.map((i, n) => (
            <li key={n}>
              {i.kind && i.name ? `${i.kind} ${i.name}: ` : ''}
              <code>{i.path}</code> — {i.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/**
 * A button that needs a role. Below it, the button is disabled and says why (visible text and
 * aria-describedby), so viewers can see every control without being able to use it.
 */
export function RoleButton({ need, children, ...props }: { need: Role } & ButtonHTMLAttributes<HTMLButtonElement>) {
  const { me } = useSession();
  const reason = deniedReason(me?.role, need);
  const id = props.id ? `${props.id}-reason` : undefined;
  return (
    <span className="row">
      <button {...props} disabled={props.disabled || reason !== undefined} title={reason ?? props.title} aria-describedby={reason ? id : undefined}>
        {children}
      </button>
      {reason && (
        <span className="reason" id={id} data-testid="denied-reason">
          {reason}
        </span>
      )}
    </span>
  );
}

export function StatusBadge({ status }: { status: string }) {
  const cls = status === 'SYNCED' ? 'ok' : status === 'STALE' || status === 'NOT SENT' ? 'warn' : status === 'NACKED' ? 'err' : 'neutral';
  return <span className={`badge ${cls}`}>{status}</span>;
}

export function LevelBadge({ level }: { level: string }) {
  const cls = level === 'error' ? 'err' : level === 'warning' ? 'warn' : 'neutral';
  return <span className={`badge ${cls}`}>{level}</span>;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** mTLS mode with a lock: filled and closed for STRICT, open for PERMISSIVE, none (plain text) for DISABLE. */
export function MtlsLock({ mode, title }: { mode: string; title?: string }) {
  const strict = mode === 'STRICT';
  if (mode === 'DISABLE') return <span className="lock plain" title={title ?? 'mTLS DISABLE'} data-testid="mtls-mode">{mode}</span>;
  return (
    <span className={`lock ${strict ? 'strict' : 'open'}`} title={title ?? `mTLS ${mode}`} data-testid="mtls-mode">
      <svg viewBox="0 0 16 16" aria-hidden="true">
        {strict ? (
          <path fill="currentColor" d="M4 7V5a4 4 0 1 1 8 0v2h1v8H3V7h1Zm2 0h4V5a2 2 0 1 0-4 0v2Z" />
        ) : (
          <path fill="none" stroke="currentColor" strokeWidth="1.5" d="M3.75 7.75h8.5v6.5h-8.5zM6 7.5V5a3 3 0 0 1 5.8-1.1" />
        )}
      </svg>
      {mode}
    </span>
  );
}
