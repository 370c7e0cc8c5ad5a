import { z } from 'zod';

import { report } from './issues.ts';
import { exportTo, hostProblem, labelMap, portNameProblem } from './names.ts';
import { isCidr, isIP, isIPOrCidr } from './net.ts';
import { port, uint32 } from './numbers.ts';

// networking.istio.io ServiceEntry, with its endpoints in WorkloadEntry shape. The CEL rules
// of Istio's CRD are reproduced here, plus the webhook's checks that need only this resource.

/** Protocols Istio understands on a service port (case-insensitive, as Istio parses them). */
export const SERVICE_PORT_PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY', 'TCP', 'TLS', 'UDP', 'MONGO', 'REDIS', 'MYSQL'] as const;

export const serviceEntryPortSchema = z.strictObject({
  number: port(),
  protocol: z
    .string()
    .max(256)
    .superRefine((p, ctx) => {
      if (!(SERVICE_PORT_PROTOCOLS as readonly string[]).includes(p.toUpperCase())) {
        report(ctx, 'enum', `must be one of ${SERVICE_PORT_PROTOCOLS.join(', ')} (got ${JSON.stringify(p)})`);
      }
    })
    .optional(),
  name: z
    .string()
    .max(256)
    .superRefine((n, ctx) => {
      const p = portNameProblem(n);
      if (p) report(ctx, 'port_name', p);
    }),
  targetPort: port().optional(),
});
export type ServiceEntryPort = z.infer<typeof serviceEntryPortSchema>;

const UNIX_PREFIX = 'unix://';

/** One endpoint, shaped like Istio's WorkloadEntry. */
export const workloadEntrySchema = z
  .strictObject({
    address: z.string().max(256).optional(),
    ports: z
      .record(z.string(), port())
      .superRefine((ports, ctx) => {
        const names = Object.keys(ports);
        if (names.length > 128) report(ctx, 'max_properties', `must have at most 128 entries (it has ${names.length})`);
        for (const name of names) {
          const p = portNameProblem(name);
          if (p) report(ctx, 'port_name', `has an invalid port name: it ${p}`, [name]);
        }
      })
      .optional(),
    labels: labelMap({ maxProperties: 256 }).optional(),
    network: z.string().max(2048).optional(),
    locality: z.string().max(2048).optional(),
    weight: uint32().optional(),
    serviceAccount: z.string().max(253).optional(),
  })
  .superRefine((we, ctx) => {
    if (we.address === undefined && we.network === undefined) {
      report(ctx, 'required', 'is required unless network is set (an endpoint reached through a network gateway)', ['address']);
    }
    if (we.address?.startsWith(UNIX_PREFIX)) {
      const path = we.address.slice(UNIX_PREFIX.length);
      if (!(path.startsWith('/') || path.startsWith('@')) || path.endsWith('/')) {
        report(ctx, 'unix_address', 'must be an absolute socket path ("unix:///var/run/x.sock") or an abstract socket ("unix://@name")', ['address']);
      }
      if (we.ports !== undefined) report(ctx, 'unix_address_with_ports', 'must not be set for a Unix domain socket endpoint', ['ports']);
    }
  });
export type WorkloadEntry = z.infer<typeof workloadEntrySchema>;

/** networking.istio.io WorkloadSelector, which (unlike the security one) uses `labels`. */
export const serviceEntryWorkloadSelectorSchema = z.strictObject({
  labels: labelMap({ noWildcard: true, maxProperties: 256 }).optional(),
});
export type ServiceEntryWorkloadSelector = z.infer<typeof serviceEntryWorkloadSelectorSchema>;

export const SERVICE_ENTRY_LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;
export const SERVICE_ENTRY_RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'] as const;

export const serviceEntrySpecSchema = z
  .strictObject({
    hosts: z
      .array(z.string())
      .min(1)
      .max(256)
      .superRefine((hosts, ctx) => {
        hosts.forEach((h, i) => {
          if (h === '*') {
            report(ctx, 'hostname', 'cannot be the bare wildcard "*"', [i]);
            return;
          }
          const p = hostProblem(h, { wildcard: true });
          if (p) report(ctx, 'hostname', p, [i]);
        });
      }),
    addresses: z
      .array(z.string().max(64))
      .max(256)
      .superRefine((addrs, ctx) => {
        addrs.forEach((a, i) => {
          if (!isIPOrCidr(a)) report(ctx, 'ip_address', `must be an IP address or CIDR block (got ${JSON.stringify(a)})`, [i]);
        });
      })
      .optional(),
    ports: z.array(serviceEntryPortSchema).max(256).optional(),
    location: z.enum(SERVICE_ENTRY_LOCATIONS).optional(),
    resolution: z.enum(SERVICE_ENTRY_RESOLUTIONS).optional(),
    endpoints: z.array(workloadEntrySchema).max(4096).optional(),
    workloadSelector: serviceEntryWorkloadSelectorSchema.optional(),
    exportTo: exportTo({ allowNone: true }).optional(),
    subjectAltNames: z.array(z.string()).optional(),
  })
  .superRefine((se, ctx) => {
    const resolution = se.resolution ?? 'NONE';
    const endpoints = se.endpoints ?? [];

    // Port numbers and names identify ports; either repeating is ambiguous.
    const numbers = new Map<number, number>();
    const names = new Map<string, number>();
    se.ports?.forEach((p, i) => {
      if (numbers.has(p.number)) report(ctx, 'unique', `repeats port number ${p.number} (first used by ports[${numbers.get(p.number)}])`, ['ports', i, 'number']);
      else numbers.set(p.number, i);
      if (names.has(p.name)) report(ctx, 'unique', `repeats port name ${JSON.stringify(p.name)} (first used by ports[${names.get(p.name)}])`, ['ports', i, 'name']);
      else names.set(p.name, i);
    });

    if (se.workloadSelector !== undefined && se.endpoints !== undefined) {
      report(ctx, 'workload_selector_with_endpoints', 'cannot set both workloadSelector and endpoints', ['workloadSelector']);
    }
    if (resolution === 'NONE' && se.endpoints !== undefined) {
      report(ctx, 'resolution_none_with_endpoints', 'cannot list endpoints when resolution is NONE (the default); set resolution to STATIC or DNS', ['endpoints']);
    }
    if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
      report(ctx, 'dns_round_robin_endpoints', 'may list at most one endpoint when resolution is DNS_ROUND_ROBIN', ['endpoints']);
    }
    if (resolution !== 'NONE' && resolution !== 'STATIC') {
      se.addresses?.forEach((a, i) => {
        if (isCidr(a)) report(ctx, 'cidr_requires_static', 'may only be a CIDR block when resolution is NONE or STATIC', ['addresses', i]);
      });
    }
    if (resolution === 'STATIC') {
      endpoints.forEach((e, i) => {
        if (e.address !== undefined && !e.address.startsWith(UNIX_PREFIX) && !isIP(e.address)) {
          report(ctx, 'ip_address', `must be an IP address or unix:// socket when resolution is STATIC (got ${JSON.stringify(e.address)})`, ['endpoints', i, 'address']);
        }
      });
    }
    if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0) {
      // Without endpoints the hosts themselves are resolved, so they must be resolvable names.
      se.hosts.forEach((h, i) => {
        if (h.includes('*')) report(ctx, 'hostname', 'must be a fully qualified name, not a wildcard, when resolution is DNS and no endpoints are given', ['hosts', i]);
      });
    }
    if (se.ports !== undefined) {
      endpoints.forEach((e, i) => {
        for (const name of Object.keys(e.ports ?? {})) {
          if (!names.has(name)) report(ctx, 'unknown_port', `names port ${JSON.stringify(name)}, which is not among the ServiceEntry's ports`, ['endpoints', i, 'ports', name]);
        }
      });
    }
  });
export type ServiceEntrySpec = z.infer<typeof serviceEntrySpecSchema>;
