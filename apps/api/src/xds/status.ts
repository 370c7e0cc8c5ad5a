import type { AnyConnection, TypeState } from './connection.ts';
import type { ProxyStatusView, ProxySyncStatus, TypeStatusView, TypeSyncStatus } from '@tern/shared';
import { TYPES, type ResourceType } from './resources.ts';

export type { ProxyStatusView };

// What the API shows about a proxy, computed from its connection (pure), and stored as JSON in the
// ProxyStatus table so every replica can list every proxy.

function typeStatus(st: TypeState | undefined): TypeSyncStatus {
  if (!st?.lastSent) return 'NOT SENT';
  if (st.nack?.nonce === st.lastSent.nonce) return 'NACKED';
  if (st.acked?.nonce === st.lastSent.nonce) return 'SYNCED';
  return 'STALE';
}

export function proxyStatusView(conn: AnyConnection, replica: string, meshRevision: string): ProxyStatusView {
  const id = conn.identity!;
  const types = {} as Record<ResourceType, TypeStatusView>;
  let lastNack: ProxyStatusView['lastNack'] = null;
  let status: ProxySyncStatus = 'SYNCED';
  for (const t of TYPES) {
    const st = conn.types.get(t.url);
    const s = typeStatus(st);
    types[t.key] = {
      type: t.short,
      status: s,
      sentVersion: st?.lastSent?.version ?? null,
      sentNonce: st?.lastSent?.nonce ?? null,
      sentAt: st?.lastSent?.at.toISOString() ?? null,
      resourceCount: st?.lastSent ? st.sent.size : 0,
      ackedVersion: st?.acked?.version ?? null,
      ackedAt: st?.acked?.at.toISOString() ?? null,
      nack: st?.nack ? { version: st.nack.version, message: st.nack.message, at: st.nack.at.toISOString() } : null,
    };
    if (st?.nack && (!lastNack || st.nack.at.toISOString() > lastNack.at)) {
      lastNack = { type: t.short, version: st.nack.version, message: st.nack.message, at: st.nack.at.toISOString() };
    }
    if (s === 'NACKED') status = 'NACKED';
    else if (s === 'STALE' && status !== 'NACKED') status = 'STALE';
  }
  // Compiled from an older mesh than this replica's current one: an update is on its way.
  if (status === 'SYNCED' && BigInt(conn.desiredRevision) < BigInt(meshRevision)) status = 'STALE';
  if (status === 'SYNCED' && ![...conn.types.values()].some((st) => st.lastSent)) status = 'STALE';
  return {
    id: id.id,
    namespace: id.namespace,
    workload: id.workload ?? null,
    kind: id.kind,
    protocol: conn.protocol,
    replica,
    connectedSince: conn.connectedAt.toISOString(),
    status,
    meshRevision: conn.desiredRevision,
    convergedRevision: conn.convergedRevision ?? null,
    types,
    lastNack,
    updatedAt: new Date().toISOString(),
  };
}
