'use client';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useTRPC } from '../lib/trpc.ts';
import { ErrorMessage, StatusBadge } from './ui.tsx';

const GIVE_UP_MS = 60_000;

/**
 * After a write at `revision`: did every affected proxy ACK it (convergence), did some NACK (and
 * why), or were no proxies affected at all. Polls the API until it settles.
 */
export function Convergence({ revision }: { revision: string }) {
  const trpc = useTRPC();
  const [startedAt] = useState(() => Date.now());
  const [settled, setSettled] = useState(false);
  const interval = settled || Date.now() - startedAt > GIVE_UP_MS ? false : 1_000;
  const proxies = useQuery({ ...trpc.proxies.list.queryOptions({}), refetchInterval: interval });
  const conv = useQuery({ ...trpc.proxies.convergence.queryOptions({ limit: 50 }), refetchInterval: interval });

  const R = BigInt(revision);
  const list = proxies.data?.proxies ?? [];
  const meshAt = proxies.data ? BigInt(proxies.data.meshRevision) : undefined;
  // The mesh may fold several writes into one push: the first push at or after R carries ours.
  const entry = (conv.data?.revisions ?? []).filter((c) => BigInt(c.revision) >= R).sort((a, b) => (BigInt(a.revision) < BigInt(b.revision) ? -1 : 1))[0];
  // The two reads are separate requests: the proxies that NACKed this push are those whose last
  // NACK came after it started (keep polling until the list has caught up with the count).
  const nacked = entry ? list.filter((p) => p.lastNack && Date.parse(p.lastNack.at) >= Date.parse(entry.startedAt)) : [];
  const allAtR = list.length > 0 && list.every((p) => p.convergedRevision !== null && BigInt(p.convergedRevision) >= R);

  let state: 'waiting' | 'no-proxies' | 'converged' | 'nacked' | 'unaffected' | 'pending' = 'waiting';
  if (proxies.data && conv.data) {
    if (meshAt !== undefined && meshAt < R) state = 'waiting';
    else if (entry && entry.nackedProxies > 0) state = 'nacked';
    else if (entry && entry.convergedAt) state = 'converged';
    else if (entry) state = 'pending';
    else if (list.length === 0) state = 'no-proxies';
    else if (allAtR) state = 'unaffected';
    else state = 'pending';
  }
  const done = state === 'converged' || (state === 'nacked' && nacked.length >= (entry?.nackedProxies ?? 0)) || state === 'no-proxies' || state === 'unaffected';
  useEffect(() => {
    if (done) setSettled(true);
  }, [done]);

  if (proxies.isError) return <ErrorMessage error={proxies.error} title="Cannot read proxy status" />;
  if (conv.isError) return <ErrorMessage error={conv.error} title="Cannot read convergence" />;
  return (
    <div data-testid="convergence" data-state={state} aria-live="polite">
      {state === 'waiting' && <div className="msg info">Saved at revision {revision}; waiting for the control plane to push it…</div>}
      {state === 'pending' && entry && (
        <div className="msg info">
          Pushing revision {entry.revision}: {entry.ackedProxies} of {entry.affectedProxies} affected proxies have ACKed…
        </div>
      )}
      {state === 'converged' && entry && (
        <div className="msg ok">
          Converged: all {entry.affectedProxies} affected {entry.affectedProxies === 1 ? 'proxy' : 'proxies'} ACKed revision {entry.revision}
          {entry.durationMs !== null ? ` in ${entry.durationMs} ms` : ''}.
          {entry.disconnectedProxies > 0 ? ` (${entry.disconnectedProxies} disconnected meanwhile.)` : ''}
        </div>
      )}
      {state === 'nacked' && entry && (
        <div className="msg error" role="alert">
          {entry.nackedProxies} of {entry.affectedProxies} affected proxies rejected (NACKed) revision {entry.revision}; they keep their last good configuration.
          <ul>
            {nacked.map((p) => (
              <li key={p.id}><code>{p.id}</code> <StatusBadge status={p.status} /> {p.lastNack ? `${p.lastNack.type}: ${p.lastNack.message}` : ''}</li>
            ))}
          </ul>
        </div>
      )}
      {state === 'no-proxies' && <div className="msg info">Saved at revision {revision}. No proxies are connected, so no proxy was affected.</div>}
      {state === 'unaffected' && <div className="msg ok">Saved at revision {revision}. No proxy&apos;s configuration changed; all {list.length} connected proxies are up to date.</div>}
      {!done && interval === false && <div className="msg warning">No answer from the proxies after {GIVE_UP_MS / 1000} s; see the Overview for their status.</div>}
    </div>
  );
}
