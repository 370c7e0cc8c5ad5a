import { z } from 'zod';
import { graphWindowSchema } from './telemetry.ts';

// The mTLS status API: the mode the configuration asks for (PeerAuthentication precedence) next to
// the share of requests the telemetry saw over mutual TLS.

export const peerModeSchema = z.enum(['STRICT', 'PERMISSIVE', 'DISABLE']);

export const mtlsStatusQuerySchema = z.object({
  window: graphWindowSchema.default('5m').describe('Telemetry window for the observed share'),
});

export const mtlsStatusSchema = z.object({
  /** Whether the control plane compiles mTLS at all (TERN_MTLS); off, every mode is only what would apply. */
  enabled: z.boolean(),
  namespaces: z.array(z.object({ namespace: z.string(), mode: peerModeSchema })),
  workloads: z.array(
    z.object({
      namespace: z.string(),
      name: z.string(),
      mode: peerModeSchema,
      /** portLevelMtls overrides of the workload's policy, by the port the workload receives on. */
      ports: z.record(z.string(), peerModeSchema),
      /** Requests the workload received in the window and the share over mutual TLS (null: none seen). */
      requests: z.number(),
      mtlsShare: z.number().nullable(),
    }),
  ),
});
export type MtlsStatus = z.infer<typeof mtlsStatusSchema>;
