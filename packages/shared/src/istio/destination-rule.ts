import { z } from 'zod';

import { duration } from './duration.ts';
import { report } from './issues.ts';
import { dns1123Label, exportTo, hostName, hostProblem, labelMap } from './names.ts';
import { isIP } from './net.ts';
import { INT32_MAX, intIn, intPercent, nonNegativeInt32, numberIn, port, uint32, uint64 } from './numbers.ts';
import { workloadSelectorSchema } from './selectors.ts';

// networking.istio.io DestinationRule. Structure follows the CRD; cross-field rules follow
// istiod's webhook (validateTrafficPolicy and friends).

// ---- connection pool -----------------------------------------------------------------------

export const tcpKeepaliveSchema = z.strictObject({
  probes: uint32().optional(),
  time: duration().optional(),
  interval: duration().optional(),
});

export const tcpSettingsSchema = z.strictObject({
  maxConnections: nonNegativeInt32().optional(),
  connectTimeout: duration().optional(),
  tcpKeepalive: tcpKeepaliveSchema.optional(),
  maxConnectionDuration: duration().optional(),
  // "0s" switches the idle timeout off, so zero is allowed here.
  idleTimeout: duration({ minMs: 1, allowZero: true }).optional(),
});
export type TCPSettings = z.infer<typeof tcpSettingsSchema>;

export const H2_UPGRADE_POLICIES = ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'] as const;

export const httpSettingsSchema = z
  .strictObject({
    http1MaxPendingRequests: nonNegativeInt32().optional(),
    http2MaxRequests: nonNegativeInt32().optional(),
    maxRequestsPerConnection: nonNegativeInt32().optional(),
    maxRetries: nonNegativeInt32().optional(),
    idleTimeout: duration().optional(),
    h2UpgradePolicy: z.enum(H2_UPGRADE_POLICIES).optional(),
    useClientProtocol: z.boolean().optional(),
    maxConcurrentStreams: nonNegativeInt32().optional(),
  })
  .superRefine((h, ctx) => {
    if (h.h2UpgradePolicy === 'UPGRADE' && h.useClientProtocol === true) {
      report(ctx, 'use_client_protocol_with_upgrade', 'must not be true when h2UpgradePolicy is UPGRADE: the two ask for different upstream protocols', ['useClientProtocol']);
    }
  });
export type HTTPSettings = z.infer<typeof httpSettingsSchema>;

export const connectionPoolSettingsSchema = z
  .strictObject({
    tcp: tcpSettingsSchema.optional(),
    http: httpSettingsSchema.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.tcp === undefined && c.http === undefined) report(ctx, 'not_empty', 'must set tcp, http or both');
  });
export type ConnectionPoolSettings = z.infer<typeof connectionPoolSettingsSchema>;

// ---- load balancer -------------------------------------------------------------------------

export const httpCookieSchema = z.strictObject({
  name: z.string().min(1),
  path: z.string().optional(),
  // A zero TTL means a session cookie, so zero is meaningful here.
  ttl: duration({ minMs: 0 }).optional(),
});
export type HTTPCookie = z.infer<typeof httpCookieSchema>;

/** Envoy's Maglev table must be a prime below this. */
export const MAGLEV_MAX_TABLE_SIZE = 5000011;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export const consistentHashLBSchema = z
  .strictObject({
    httpHeaderName: z.string().optional(),
    httpCookie: httpCookieSchema.optional(),
    useSourceIp: z.boolean().optional(),
    httpQueryParameterName: z.string().optional(),
    ringHash: z.strictObject({ minimumRingSize: uint64().optional() }).optional(),
    maglev: z.strictObject({ tableSize: uint64().optional() }).optional(),
    /** Deprecated: use ringHash.minimumRingSize. */
    minimumRingSize: uint64().optional(),
  })
  .superRefine((c, ctx) => {
    const keys = (['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const).filter((k) => c[k] !== undefined);
    if (keys.length > 1) report(ctx, 'one_of', `must hash on only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName (it sets ${keys.join(' and ')})`, [keys[1] as string]);
    if (c.ringHash !== undefined && c.maglev !== undefined) report(ctx, 'one_of', 'must set only one of ringHash or maglev', ['maglev']);
    if (c.minimumRingSize !== undefined && (c.ringHash !== undefined || c.maglev !== undefined)) {
      report(ctx, 'minimum_ring_size_with_hash_algorithm', 'cannot be combined with ringHash or maglev; move it to ringHash.minimumRingSize', ['minimumRingSize']);
    }
    if (c.maglev) {
      const size = c.maglev.tableSize;
      if (size === undefined || size === 0) report(ctx, 'required', 'is required for maglev', ['maglev', 'tableSize']);
      else if (size >= MAGLEV_MAX_TABLE_SIZE) report(ctx, 'max', `must be less than ${MAGLEV_MAX_TABLE_SIZE} (got ${size})`, ['maglev', 'tableSize']);
      else if (!isPrime(size)) report(ctx, 'prime', `must be a prime number (got ${size})`, ['maglev', 'tableSize']);
    }
  });
export type ConsistentHashLB = z.infer<typeof consistentHashLBSchema>;

// Topology labels that already express region/zone/subzone failover.
const TOPOLOGY_LABELS = ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'];

export const localityLoadBalancerSettingSchema = z
  .strictObject({
    distribute: z
      .array(
        z.strictObject({
          from: z.string().optional(),
          to: z.record(z.string(), intIn({ min: 1, max: 100, what: 'a locality weight' })).optional(),
        }),
      )
      .optional(),
    failover: z.array(z.strictObject({ from: z.string().optional(), to: z.string().optional() })).optional(),
    failoverPriority: z.array(z.string()).optional(),
    enabled: z.boolean().optional(),
  })
  .superRefine((l, ctx) => {
    if ((l.distribute?.length ?? 0) > 0 && (l.failover?.length ?? 0) > 0) {
      report(ctx, 'distribute_with_failover', 'cannot set both distribute and failover', ['failover']);
    }
    if ((l.failover?.length ?? 0) > 0) {
      const topo = l.failoverPriority?.find((p) => TOPOLOGY_LABELS.includes(p));
      if (topo) report(ctx, 'failover_with_topology_priority', `cannot list the topology label ${JSON.stringify(topo)} in failoverPriority when failover is set`, ['failoverPriority']);
    }
    l.distribute?.forEach((d, i) => {
      const weights = Object.values(d.to ?? {});
      if (weights.every((w) => Number.isInteger(w))) {
        const total = weights.reduce((a, b) => a + b, 0);
        if (total !== 100) report(ctx, 'weights_sum_100', `must have locality weights that add up to 100 (they add up to ${total})`, ['distribute', i, 'to']);
      }
    });
    l.failover?.forEach((f, i) => {
      if (f.from !== undefined && f.from === f.to) report(ctx, 'failover_same_region', 'must fail over to a different region than it fails over from', ['failover', i]);
      for (const side of ['from', 'to'] as const) {
        const v = f[side];
        if (v !== undefined && (v.includes('/') || v.includes('*'))) {
          report(ctx, 'failover_region', 'must name a single region, without "/" or "*"', ['failover', i, side]);
        }
      }
    });
  });
export type LocalityLoadBalancerSetting = z.infer<typeof localityLoadBalancerSettingSchema>;

export const SIMPLE_LB_ALGORITHMS = ['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'] as const;

export const warmupConfigurationSchema = z.strictObject({
  duration: duration(),
  minimumPercent: numberIn(0, 100, 'a percentage').optional(),
  aggression: numberIn(1, Number.MAX_VALUE, 'an aggression factor').optional(),
});
export type WarmupConfiguration = z.infer<typeof warmupConfigurationSchema>;

export const loadBalancerSettingsSchema = z
  .strictObject({
    simple: z.enum(SIMPLE_LB_ALGORITHMS).optional(),
    consistentHash: consistentHashLBSchema.optional(),
    localityLbSetting: localityLoadBalancerSettingSchema.optional(),
    /** Deprecated: use warmup.duration. */
    warmupDurationSecs: duration().optional(),
    warmup: warmupConfigurationSchema.optional(),
  })
  .superRefine((lb, ctx) => {
    if (lb.simple !== undefined && lb.consistentHash !== undefined) report(ctx, 'one_of', 'must set only one of simple or consistentHash', ['consistentHash']);
  });
export type LoadBalancerSettings = z.infer<typeof loadBalancerSettingsSchema>;

// ---- outlier detection ---------------------------------------------------------------------

export const outlierDetectionSchema = z
  .strictObject({
    splitExternalLocalOriginErrors: z.boolean().optional(),
    consecutiveLocalOriginFailures: uint32().optional(),
    consecutiveGatewayErrors: uint32().optional(),
    consecutive5xxErrors: uint32().optional(),
    /** Deprecated: use consecutiveGatewayErrors or consecutive5xxErrors. */
    consecutiveErrors: intIn({ min: 0, max: INT32_MAX, what: 'a non-negative int32 integer' }).optional(),
    interval: duration().optional(),
    baseEjectionTime: duration().optional(),
    maxEjectionPercent: intPercent().optional(),
    minHealthPercent: intPercent().optional(),
  })
  .superRefine((o, ctx) => {
    if (!o.splitExternalLocalOriginErrors && (o.consecutiveLocalOriginFailures ?? 0) > 0) {
      report(ctx, 'local_origin_failures_requires_split', 'only takes effect with splitExternalLocalOriginErrors: true', ['consecutiveLocalOriginFailures']);
    }
  });
export type OutlierDetection = z.infer<typeof outlierDetectionSchema>;

// ---- TLS -----------------------------------------------------------------------------------

export const CLIENT_TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;

export const clientTLSSettingsSchema = z
  .strictObject({
    mode: z.enum(CLIENT_TLS_MODES).optional(),
    clientCertificate: z.string().optional(),
    privateKey: z.string().optional(),
    caCertificates: z.string().optional(),
    credentialName: z.string().optional(),
    subjectAltNames: z.array(z.string()).optional(),
    sni: z.string().optional(),
    insecureSkipVerify: z.boolean().optional(),
    caCrl: z.string().optional(),
  })
  .superRefine((t, ctx) => {
    const mode = t.mode ?? 'DISABLE';
    if (t.insecureSkipVerify === true) {
      // Skipping verification while also configuring what to verify against is contradictory.
      if (mode === 'SIMPLE' && (t.caCertificates || t.credentialName || t.subjectAltNames !== undefined)) {
        report(ctx, 'insecure_skip_verify_with_verification', 'cannot be true together with caCertificates, credentialName or subjectAltNames', ['insecureSkipVerify']);
      }
      if (mode === 'MUTUAL' && (t.caCertificates || t.subjectAltNames !== undefined)) {
        report(ctx, 'insecure_skip_verify_with_verification', 'cannot be true together with caCertificates or subjectAltNames', ['insecureSkipVerify']);
      }
    }
    if ((mode === 'SIMPLE' || mode === 'MUTUAL') && t.credentialName) {
      if (t.clientCertificate || t.privateKey || t.caCertificates || t.caCrl) {
        report(ctx, 'credential_name_with_files', 'cannot be combined with clientCertificate, privateKey, caCertificates or caCrl: the credential supplies them', ['credentialName']);
      }
      return;
    }
    if (mode === 'MUTUAL') {
      if (!t.clientCertificate) report(ctx, 'required', 'is required when mode is MUTUAL and no credentialName is given', ['clientCertificate']);
      if (!t.privateKey) report(ctx, 'required', 'is required when mode is MUTUAL and no credentialName is given', ['privateKey']);
    }
  });
export type ClientTLSSettings = z.infer<typeof clientTLSSettingsSchema>;

// ---- tunnel, PROXY protocol, retry budget --------------------------------------------------

export const TUNNEL_PROTOCOLS = ['CONNECT', 'POST'] as const;

export const tunnelSettingsSchema = z.strictObject({
  protocol: z.enum(TUNNEL_PROTOCOLS).optional(),
  targetHost: z.string().superRefine((h, ctx) => {
    if (!isIP(h) && hostProblem(h) !== null) report(ctx, 'hostname', `must be a fully qualified host name or an IP address (got ${JSON.stringify(h)})`);
  }),
  targetPort: port(),
});
export type TunnelSettings = z.infer<typeof tunnelSettingsSchema>;

export const PROXY_PROTOCOL_VERSIONS = ['V1', 'V2'] as const;

export const proxyProtocolSchema = z.strictObject({
  version: z.enum(PROXY_PROTOCOL_VERSIONS).optional(),
});
export type ProxyProtocol = z.infer<typeof proxyProtocolSchema>;

export const retryBudgetSchema = z.strictObject({
  percent: numberIn(0, 100, 'a percentage').optional(),
  minRetryConcurrency: uint32().optional(),
});
export type RetryBudget = z.infer<typeof retryBudgetSchema>;

// ---- traffic policy ------------------------------------------------------------------------

export const portTrafficPolicySchema = z
  .strictObject({
    port: z.strictObject({ number: port() }),
    loadBalancer: loadBalancerSettingsSchema.optional(),
    connectionPool: connectionPoolSettingsSchema.optional(),
    outlierDetection: outlierDetectionSchema.optional(),
    tls: clientTLSSettingsSchema.optional(),
  })
  .superRefine((p, ctx) => {
    if (!p.loadBalancer && !p.connectionPool && !p.outlierDetection && !p.tls) {
      report(ctx, 'not_empty', 'must set at least one of loadBalancer, connectionPool, outlierDetection or tls');
    }
  });
export type PortTrafficPolicy = z.infer<typeof portTrafficPolicySchema>;

const TRAFFIC_POLICY_FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'] as const;

export const trafficPolicySchema = z
  .strictObject({
    loadBalancer: loadBalancerSettingsSchema.optional(),
    connectionPool: connectionPoolSettingsSchema.optional(),
    outlierDetection: outlierDetectionSchema.optional(),
    tls: clientTLSSettingsSchema.optional(),
    portLevelSettings: z.array(portTrafficPolicySchema).max(4096).optional(),
    tunnel: tunnelSettingsSchema.optional(),
    proxyProtocol: proxyProtocolSchema.optional(),
    retryBudget: retryBudgetSchema.optional(),
  })
  .superRefine((t, ctx) => {
    if (TRAFFIC_POLICY_FIELDS.every((k) => t[k] === undefined)) {
      report(ctx, 'not_empty', `must set at least one of ${TRAFFIC_POLICY_FIELDS.join(', ')}`);
    }
    if (t.tunnel !== undefined && t.proxyProtocol !== undefined) {
      report(ctx, 'tunnel_with_proxy_protocol', 'cannot set both tunnel and proxyProtocol', ['proxyProtocol']);
    }
  });
export type TrafficPolicy = z.infer<typeof trafficPolicySchema>;

export const subsetSchema = z.strictObject({
  name: dns1123Label(),
  labels: labelMap().optional(),
  trafficPolicy: trafficPolicySchema.optional(),
});
export type Subset = z.infer<typeof subsetSchema>;

// ---- DestinationRule -----------------------------------------------------------------------

export const destinationRuleSpecSchema = z
  .strictObject({
    host: hostName({ wildcard: true }),
    trafficPolicy: trafficPolicySchema.optional(),
    subsets: z.array(subsetSchema).optional(),
    exportTo: exportTo().optional(),
    workloadSelector: workloadSelectorSchema.optional(),
  })
  .superRefine((dr, ctx) => {
    const seen = new Map<string, number>();
    dr.subsets?.forEach((s, i) => {
      if (seen.has(s.name)) report(ctx, 'unique', `repeats the subset name ${JSON.stringify(s.name)} (first used by subsets[${seen.get(s.name)}])`, ['subsets', i, 'name']);
      else seen.set(s.name, i);
    });
    // A DestinationRule aimed at particular workloads only makes sense in their namespace.
    if (dr.workloadSelector !== undefined && dr.exportTo !== undefined && dr.exportTo.length > 0) {
      if (dr.exportTo.length > 1 || dr.exportTo[0] === '*') {
        report(ctx, 'export_to', 'must name only the rule\'s own namespace ("." or its name) when workloadSelector is set', ['exportTo']);
      }
    }
  });
export type DestinationRuleSpec = z.infer<typeof destinationRuleSpecSchema>;
