'use client';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { Role } from '../lib/api-types.ts';
import { RoleButton } from './ui.tsx';

/**
 * A destructive action asked twice, inline (not window.confirm: it stays in the page's look, is
 * reachable by keyboard and says what will happen). `blocked` disables it with a reason of its own
 * (e.g. "You cannot delete your own account"), on top of the role check.
 */
export function ConfirmButton({
  need,
  id,
  label,
  question,
  confirmLabel,
  onConfirm,
  busy,
  blocked,
}: {
  need: Role;
  id: string;
  label: string;
  question: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  busy?: boolean;
  blocked?: string;
}) {
  const [asking, setAsking] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) yes.current?.focus();
  }, [asking]);
  if (asking) {
    return (
      <span className="confirm" role="group" aria-label={typeof question === 'string' ? question : confirmLabel} data-testid="confirm">
        <span>{question}</span>
        <button
          ref={yes}
          type="button"
          className="danger"
          disabled={busy}
          onClick={() => {
            onConfirm();
            setAsking(false);
          }}
        >
          {confirmLabel}
        </button>
        <button type="button" onClick={() => setAsking(false)}>Cancel</button>
      </span>
    );
  }
  return (
    <span className="row">
      <RoleButton need={need} id={id} disabled={busy || blocked !== undefined} title={blocked} onClick={() => setAsking(true)}>
        {label}
      </RoleButton>
      {blocked && <span className="reason" data-testid="blocked-reason">{blocked}</span>}
    </span>
  );
}
