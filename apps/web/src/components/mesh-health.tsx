'use client';
import { useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { formatValue } from '../lib/chart.ts';
import { healthCounts } from '../lib/golden.ts';
import { useTRPC } from '../lib/trpc.ts';
import { ErrorMessage, Loading } from './ui.tsx';

// The overview's mesh health: golden metrics of every request in the mesh over the last 5 min,
// and the services by health as the graph rates them (Kiali's thresholds), linked to the graph.

const HEALTH = [
  { key: 'healthy', label: 'healthy', cls: 'ok', hint: 'under 0.1 % errors' },
  { key: 'degraded', label: 'degraded', cls: 'warn', hint: '0.1 % to 10 % errors' },
  { key: 'failing', label: 'failing', cls: 'err', hint: '10 % errors or more' },
] as const;

export function MeshHealth() {
  const trpc = useTRPC();
  const q = useQuery({ ...trpc.graph.summary.queryOptions({ window: '5m', by: 'service' }), refetchInterval: 10_000 });
  const graph = '/graph?window=5m&by=service';
  return (
    <section className="panel" aria-labelledby="h-mesh" data-testid="mesh-health">
      <div className="spread">
        <h2 id="h-mesh">Mesh health, last 5 min</h2>
        <Link href={graph}>Service graph →</Link>
      </div>
      {q.isPending ? <Loading what="mesh metrics" /> : q.isError ? <ErrorMessage error={q.error} /> : (() => {
        const t = q.data.total;
        const c = healthCounts(q.data.rows);
        return (
          <div className="mesh-stats">
            <div><span className="small muted">Requests/s</span><span className="stat" data-testid="mesh-rps">{formatValue(t.rps, 'rps')}</span></div>
            <div><span className="small muted">Errors</span><span className={`stat${t.errorPercent >= 10 ? ' text-err' : ''}`} data-testid="mesh-errors">{t.requests > 0 ? formatValue(t.errorPercent, 'percent') : '—'}</span></div>
            <div><span className="small muted">p95 latency</span><span className="stat" data-testid="mesh-p95">{formatValue(t.p95, 'ms')}</span></div>
            <div>
              <span className="small muted">Services</span>
              <span className="row" data-testid="health-counts">
                {HEALTH.map((h) => (
                  <Link key={h.key} href={graph} className={`badge ${h.cls}`} title={`${c[h.key]} ${h.label}: ${h.hint} in the last 5 min`} data-testid={`health-${h.key}`}>
                    {c[h.key]} {h.label}
                  </Link>
                ))}
                {c.idle > 0 && <span className="badge neutral" title="No requests in the last 5 min">{c.idle} idle</span>}
              </span>
            </div>
          </div>
        );
      })()}
      {q.data && q.data.total.requests === 0 && <p className="small muted">No requests were reported in the last 5 min.</p>}
    </section>
  );
}
