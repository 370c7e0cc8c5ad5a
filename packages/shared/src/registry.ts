import { z } from 'zod';

// The registry: what exists in the mesh, independent of policy. Local registration writes these
// directly; the Kubernetes source derives them from Services, EndpointSlices and Pods.

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const namespaceName = z
  .string()
  .max(63, 'must be at most 63 characters (DNS-1123 label)')
  .regex(dns1123Label, 'must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit');

export const objectName = z
  .string()
  .max(253, 'must be at most 253 characters (DNS-1123 subdomain)')
  .regex(dns1123Subdomain, 'must be a DNS-1123 subdomain: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit');

export const PORT_PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'HTTP2', 'MONGO', 'TCP', 'TLS'] as const;

export const servicePortSchema = z.strictObject({
  name: z.string().max(63).regex(dns1123Label).optional(),
  number: z.int().min(1).max(65535),
  protocol: z.enum(PORT_PROTOCOLS),
  targetPort: z.int().min(1).max(65535).optional(),
});

export const labelsSchema = z.record(z.string().max(317), z.string().max(63));

export const serviceSchema = z.strictObject({
  namespace: namespaceName,
  name: namespaceName,
  // Fully qualified names this service answers to; defaults to <name>.<namespace>.svc.<domain>.
  hosts: z.array(z.string().min(1).max(253).regex(dns1123Subdomain)).max(16).optional(),
  ports: z.array(servicePortSchema).min(1).max(64),
  labels: labelsSchema.optional(),
});

export const workloadSchema = z.strictObject({
  namespace: namespaceName,
  name: objectName,
  labels: labelsSchema.default({}),
  serviceAccount: objectName.default('default'),
  addresses: z.array(z.union([z.ipv4(), z.ipv6()])).max(16).default([]),
});

export type ServicePort = z.infer<typeof servicePortSchema>;
export type ServiceInput = z.input<typeof serviceSchema>;
export type WorkloadInput = z.input<typeof workloadSchema>;

export interface ServiceRecord {
  namespace: string;
  name: string;
  hosts: string[];
  ports: ServicePort[];
  labels: Record<string, string>;
  resourceVersion: string;
}

export interface WorkloadRecord {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  serviceAccount: string;
  addresses: string[];
  resourceVersion: string;
}

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

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
