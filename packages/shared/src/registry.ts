import { z } from 'zod';
import { dns1123Label, dns1123Subdomain, labelMap } from './istio/names.ts';
import { isIP } from './istio/net.ts';
import { report } from './istio/issues.ts';

// The registry: what exists in the mesh, independent of policy. Local registration writes these
// directly; the Kubernetes source derives them from Services, EndpointSlices and Pods.

export const namespaceName = dns1123Label();
export const objectName = dns1123Subdomain();

export const PORT_PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'HTTP2', 'MONGO', 'TCP', 'TLS'] as const;

export const servicePortSchema = z.strictObject({
  name: dns1123Label().optional(),
  number: z.int().min(1).max(65535),
  protocol: z.enum(PORT_PROTOCOLS),
  targetPort: z.int().min(1).max(65535).optional(),
});

const fqdn = z.string().superRefine((s, ctx) => {
  if (s.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)) {
    report(ctx, 'hostname', 'must be a lowercase DNS name');
  }
});

const address = z.string().superRefine((s, ctx) => {
  if (!isIP(s)) report(ctx, 'ip', `must be an IPv4 or IPv6 address (got ${JSON.stringify(s)})`);
});

export const serviceSchema = z.strictObject({
  namespace: namespaceName,
  name: namespaceName,
  // Fully qualified names this service answers to; defaults to <name>.<namespace>.svc.<domain>.
  hosts: z.array(fqdn).max(16).optional(),
  ports: z.array(servicePortSchema).min(1).max(64),
  labels: labelMap().optional(),
});

export const workloadSchema = z.strictObject({
  namespace: namespaceName,
  name: objectName,
  labels: labelMap().default({}),
  serviceAccount: objectName.default('default'),
  addresses: z.array(address).max(16).default([]),
  // Where this workload receives each service port, when not on the port itself: in local mode every
  // workload shares 127.0.0.1, so each sidecar's inbound listener gets its own port.
  ports: z
    .record(z.string().regex(/^[1-9][0-9]{0,4}$/, 'must be a service port number'), z.int().min(1).max(65535))
    .refine((m) => Object.keys(m).every((k) => Number(k) <= 65535), 'keys must be port numbers (1-65535)')
    .default({}),
});

export const serviceRecordSchema = z.object({
  namespace: z.string(),
  name: z.string(),
  hosts: z.array(z.string()),
  ports: z.array(servicePortSchema),
  labels: z.record(z.string(), z.string()),
  resourceVersion: z.string(),
});

export const workloadRecordSchema = z.object({
  namespace: z.string(),
  name: z.string(),
  labels: z.record(z.string(), z.string()),
  serviceAccount: z.string(),
  addresses: z.array(z.string()),
  ports: z.record(z.string(), z.number()),
  resourceVersion: z.string(),
});

/** Who registers it: `local` (the API, the CLI) or `kubernetes` (discovered from the cluster; read-only through the API). */
const registrySource = z.string().describe('local (registered through the API or the CLI) or kubernetes (discovered from the cluster, read-only here)');
/** What the registry API lists: the record the compiler reads, and where it came from. */
export const registeredServiceSchema = serviceRecordSchema.extend({ source: registrySource });
export const registeredWorkloadSchema = workloadRecordSchema.extend({ source: registrySource });

export type ServicePort = z.infer<typeof servicePortSchema>;
export type ServiceInput = z.input<typeof serviceSchema>;
export type WorkloadInput = z.input<typeof workloadSchema>;
export type ServiceRecord = z.infer<typeof serviceRecordSchema>;
export type WorkloadRecord = z.infer<typeof workloadRecordSchema>;
export type RegisteredService = z.infer<typeof registeredServiceSchema>;
export type RegisteredWorkload = z.infer<typeof registeredWorkloadSchema>;

export const DEFAULT_DOMAIN_SUFFIX = 'cluster.local';

export function serviceFqdn(name: string, namespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

/**
 * Resolves a host as written in Istio policy to its fully qualified form, the way Istio does:
 * a short name ("reviews") is taken relative to the namespace of the resource naming it.
 */
export function resolveHost(host: string, namespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  if (host.includes('*')) return host;
  // Istio expands only names without a dot; anything dotted is taken as already qualified.
  return host.includes('.') ? host.toLowerCase() : serviceFqdn(host.toLowerCase(), namespace, domainSuffix);
}

/** Istio's endpoint label: `istio` = the workload runs a sidecar that takes mutual TLS (auto mTLS). */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
