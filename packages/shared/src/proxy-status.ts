import { z } from 'zod';

// What the API shows about an xDS proxy. Replicas store it as JSON in the ProxyStatus table, so
// the same schema checks rows written by other replicas (possibly another Tern version).

export const typeSyncStatusSchema = z.enum(['SYNCED', 'STALE', 'NACKED', 'NOT SENT']);
export type TypeSyncStatus = z.infer<typeof typeSyncStatusSchema>;
export const proxySyncStatusSchema = z.enum(['SYNCED', 'STALE', 'NACKED', 'DISCONNECTED']);
export type ProxySyncStatus = z.infer<typeof proxySyncStatusSchema>;

export const typeStatusViewSchema = z.object({
  type: z.enum(['CDS', 'EDS', 'LDS', 'RDS']),
  status: typeSyncStatusSchema,
  /** Version and nonce of the last response sent, and when. */
  sentVersion: z.string().nullable(),
  sentNonce: z.string().nullable(),
  sentAt: z.string().nullable(),
  resourceCount: z.number(),
  ackedVersion: z.string().nullable(),
  ackedAt: z.string().nullable(),
  nack: z.object({ version: z.string(), message: z.string(), at: z.string() }).nullable(),
});
export type TypeStatusView = z.infer<typeof typeStatusViewSchema>;

export const proxyStatusViewSchema = z.object({
  id: z.string(),
  namespace: z.string(),
  workload: z.string().nullable(),
  kind: z.enum(['sidecar', 'proxyless']),
  protocol: z.enum(['sotw', 'delta']),
  replica: z.string(),
  connectedSince: z.string(),
  status: proxySyncStatusSchema,
  /** The mesh revision the proxy's current config was compiled from. */
  meshRevision: z.string(),
  /** The latest mesh revision at which the proxy had ACKed everything (null: not yet). */
  convergedRevision: z.string().nullable(),
  types: z.object({ clusters: typeStatusViewSchema, endpoints: typeStatusViewSchema, listeners: typeStatusViewSchema, routes: typeStatusViewSchema }),
  /** The most recent NACK of any type. */
  lastNack: z.object({ type: z.string(), version: z.string(), message: z.string(), at: z.string() }).nullable(),
  updatedAt: z.string(),
  /**
   * The newest workload certificate the CA issued to this proxy (by node id); null: none issued.
   * Added by the API when it answers, never stored with the status row.
   */
  certificate: z.object({ serial: z.string(), spiffeId: z.string(), notBefore: z.string(), notAfter: z.string(), issuedAt: z.string() }).nullable().optional(),
});
export type ProxyStatusView = z.infer<typeof proxyStatusViewSchema>;
