import { z } from 'zod';

import { report } from './issues.ts';
import { workloadSelectorSchema } from './selectors.ts';

// security.istio.io PeerAuthentication: the mTLS mode a workload accepts, optionally per port.

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;

export const mutualTLSSchema = z.strictObject({
  mode: z.enum(MTLS_MODES).optional(),
});
export type MutualTLS = z.infer<typeof mutualTLSSchema>;

export const peerAuthenticationSpecSchema = z
  .strictObject({
    selector: workloadSelectorSchema.optional(),
    mtls: mutualTLSSchema.optional(),
    // Keys are port numbers; YAML and JSON object keys are always strings.
    portLevelMtls: z.record(z.string(), mutualTLSSchema).optional(),
  })
  .superRefine((pa, ctx) => {
    if (pa.portLevelMtls === undefined) return;
    const ports = Object.keys(pa.portLevelMtls);
    if (ports.length === 0) report(ctx, 'min_properties', 'must have at least one port when set', ['portLevelMtls']);
    for (const key of ports) {
      const n = /^[0-9]+$/.test(key) ? Number(key) : NaN;
      if (!(n >= 1 && n <= 65535)) report(ctx, 'port', `must be keyed by port numbers from 1 to 65535 (got ${JSON.stringify(key)})`, ['portLevelMtls', key]);
    }
    // Ports are a workload's ports: a mesh- or namespace-wide policy has no ports to name.
    if (Object.keys(pa.selector?.matchLabels ?? {}).length === 0) {
      report(ctx, 'port_level_mtls_requires_selector', 'requires a selector with matchLabels: only a workload-specific policy can set per-port modes', ['portLevelMtls']);
    }
  });
export type PeerAuthenticationSpec = z.infer<typeof peerAuthenticationSpecSchema>;
